package http1

import (
	"fmt"
	"strings"
	"testing"

	"github.com/flowlake/flowlake/internal/tcp"
)

// benchCall is one Data call of a benchmark stream.
type benchCall struct {
	dir tcp.Dir
	b   []byte
}

// keepAliveStream is n GET exchanges on one connection, each response
// carrying a body of bodyLen bytes, delivered in segments of at most mss
// bytes as a reassembler would.
func keepAliveStream(n, bodyLen, mss int) ([]benchCall, int64) {
	body := strings.Repeat(`{"id":12345,"name":"Widget","price":19.99,"tags":["a","b"]}`, bodyLen/60+1)[:bodyLen]
	var calls []benchCall
	var total int64
	add := func(dir tcp.Dir, s string) {
		for len(s) > 0 {
			k := min(len(s), mss)
			calls = append(calls, benchCall{dir, []byte(s[:k])})
			total += int64(k)
			s = s[k:]
		}
	}
	for i := range n {
		add(c2s, fmt.Sprintf("GET /api/items/%d?fields=name,price HTTP/1.1\r\n"+
			"Host: shop.example.com\r\n"+
			"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n"+
			"Accept: application/json\r\n"+
			"Accept-Encoding: gzip, deflate, br\r\n"+
			"Accept-Language: en-US,en;q=0.9\r\n"+
			"Cookie: session=6f1c2a9e0b; theme=dark\r\n"+
			"Connection: keep-alive\r\n\r\n", i))
		add(s2c, fmt.Sprintf("HTTP/1.1 200 OK\r\n"+
			"Date: Tue, 03 Feb 2026 10:00:00 GMT\r\n"+
			"Server: nginx/1.27.0\r\n"+
			"Content-Type: application/json\r\n"+
			"Content-Length: %d\r\n"+
			"Cache-Control: no-cache\r\n"+
			"Connection: keep-alive\r\n\r\n%s", len(body), body))
	}
	return calls, total
}

// BenchmarkParser parses a keep-alive connection of 1000 GET exchanges
// with 1 KiB response bodies, delivered in 1448-byte segments.
func BenchmarkParser(b *testing.B) {
	const exchanges = 1000
	calls, total := keepAliveStream(exchanges, 1024, 1448)
	b.SetBytes(total)
	b.ReportAllocs()
	n := 0
	emit := func(e *Exchange) { n++ }
	for b.Loop() {
		p := NewParser(Config{}, emit)
		for i, c := range calls {
			p.Data(c.dir, int64(i), c.b)
		}
		p.Close(int64(len(calls)))
	}
	if n != exchanges*b.N {
		b.Fatalf("%d exchanges, want %d", n, exchanges*b.N)
	}
	b.ReportMetric(float64(exchanges*b.N)/b.Elapsed().Seconds(), "exchanges/s")
}

// BenchmarkParserByteAtATime measures the slow path: every byte is its own
// Data call.
func BenchmarkParserByteAtATime(b *testing.B) {
	calls, total := keepAliveStream(100, 1024, 1)
	b.SetBytes(total)
	b.ReportAllocs()
	for b.Loop() {
		p := NewParser(Config{}, nil)
		for i, c := range calls {
			p.Data(c.dir, int64(i), c.b)
		}
		p.Close(int64(len(calls)))
	}
}

func TestAllocsPerExchange(t *testing.T) {
	calls, _ := keepAliveStream(100, 1024, 1448)
	allocs := testing.AllocsPerRun(5, func() {
		p := NewParser(Config{}, func(*Exchange) {})
		for i, c := range calls {
			p.Data(c.dir, int64(i), c.b)
		}
		p.Close(0)
	})
	// Per exchange: the Exchange, two header-block strings, two header
	// slices and the body preview; the rest is per connection.
	if per := allocs / 100; per > 7 {
		t.Errorf("%.1f allocations per exchange, want at most 7", per)
	}
}
