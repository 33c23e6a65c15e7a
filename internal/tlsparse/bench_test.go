package tlsparse

import "testing"

// BenchmarkStream runs the 59 TLS connections of ndpi-reddit (handshakes
// and the application data after them, which the Stream skips) through
// Streams; one op is the whole capture. Bytes are all the payload bytes
// delivered, pkt/s counts Data calls.
func BenchmarkStream(b *testing.B) {
	var conns []*conn
	var bytes, calls int64
	for _, c := range readConns(b, "ndpi-reddit.pcap") {
		if len(c.events) == 0 || !Looks(c.events[0].data) {
			continue
		}
		conns = append(conns, c)
		for _, e := range c.events {
			bytes += int64(len(e.data))
			calls++
		}
	}
	emit := func(*Hello) {}
	b.SetBytes(bytes)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, c := range conns {
			play(c, NewStream(emit), 0)
		}
	}
	b.ReportMetric(float64(calls*int64(b.N))/b.Elapsed().Seconds(), "pkt/s")
	b.ReportMetric(float64(len(conns)*b.N)/b.Elapsed().Seconds(), "conn/s")
}

// BenchmarkHandshake measures the handshakes alone: the bytes up to and
// including both hellos of the six ndpi-chrome connections.
func BenchmarkHandshake(b *testing.B) {
	type pair struct{ c2s, s2c []byte }
	var pairs []pair
	var bytes int64
	for _, c := range readConns(b, "ndpi-chrome.pcap") {
		var p pair
		for _, e := range c.events {
			if e.dir == 0 && p.c2s == nil {
				p.c2s = e.data
			} else if e.dir == 1 && p.s2c == nil {
				p.s2c = e.data
			}
		}
		pairs = append(pairs, p)
		bytes += int64(len(p.c2s) + len(p.s2c))
	}
	complete := 0
	emit := func(h *Hello) {
		if h.SawClientHello && h.SawServerHello {
			complete++
		}
	}
	b.SetBytes(bytes)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for _, p := range pairs {
			s := NewStream(emit)
			s.Data(0, 1, p.c2s)
			s.Data(1, 2, p.s2c)
		}
	}
	if complete != len(pairs)*b.N {
		b.Fatalf("%d complete handshakes, want %d", complete, len(pairs)*b.N)
	}
	b.ReportMetric(float64(len(pairs)*b.N)/b.Elapsed().Seconds(), "handshakes/s")
}
