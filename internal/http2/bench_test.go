package http2

import (
	"fmt"
	"strings"
	"testing"
)

// benchStream is n GET exchanges on one connection, ten streams in flight
// at a time, each response a 1 KiB body, cut into 1448-byte segments.
func benchStream(b *testing.B, n int) ([]ev, int64) {
	bl := newBuilder(b).start()
	body := strings.Repeat(`{"id":12345,"name":"Widget","price":19.99,"tags":["a","b"]}`, 1024/60+1)[:1024]
	for i := 0; i < n; i += 10 {
		for j := i; j < i+10 && j < n; j++ {
			bl.headers(c2s, uint32(2*j+1), true, ":method", "GET", ":scheme", "https", ":authority", "shop.example.com",
				":path", fmt.Sprintf("/api/items/%d?fields=name,price", j),
				"user-agent", "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0",
				"accept", "application/json", "accept-encoding", "gzip, deflate, br", "cookie", "session=6f1c2a9e0b; theme=dark")
		}
		for j := i; j < i+10 && j < n; j++ {
			bl.status(uint32(2*j+1), 200, false, "content-type", "application/json", "server", "nginx/1.27.0",
				"content-length", "1024", "cache-control", "no-cache")
			bl.data(s2c, uint32(2*j+1), true, body)
		}
	}
	var evs []ev
	var total int64
	for _, e := range bl.evs {
		for d := e.data; len(d) > 0; d = d[min(1448, len(d)):] {
			evs = append(evs, ev{dir: e.dir, data: d[:min(1448, len(d))]})
			total += int64(min(1448, len(d)))
		}
	}
	return append(evs, ev{close: true}), total
}

// BenchmarkParser parses a connection of 1000 exchanges.
func BenchmarkParser(b *testing.B) {
	evs, total := benchStream(b, 1000)
	b.SetBytes(total)
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		p := NewParser(Config{}, func(*Exchange) { n++ })
		for i, e := range evs {
			apply(p, e, stamp(i))
		}
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "exchanges/s")
}
