package dns

import (
	"testing"
)

// benchMessages returns the UDP DNS payloads of ppp-DnsPackets (464
// messages of many record types) with their endpoints and times.
func benchMessages(b *testing.B) (segs []segment, bytes int64) {
	for _, s := range readSegments(b, "ppp-DnsPackets.pcap") {
		if !s.tcp && (dnsPort(s.src.Port) || dnsPort(s.dst.Port)) {
			segs = append(segs, s)
			bytes += int64(len(s.payload))
		}
	}
	return segs, bytes
}

// BenchmarkTracker measures decoding and pairing: one op is the whole
// capture.
func BenchmarkTracker(b *testing.B) {
	segs, bytes := benchMessages(b)
	tr := NewTracker(5e9, func(*Query) {})
	b.SetBytes(bytes)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for i := range segs {
			s := &segs[i]
			tr.Advance(s.ts)
			tr.Packet(s.ts, "udp", s.src, s.dst, s.payload)
		}
		tr.Flush()
	}
	b.ReportMetric(float64(len(segs)*b.N)/b.Elapsed().Seconds(), "pkt/s")
}

// BenchmarkParse measures Parse alone over the same messages.
func BenchmarkParse(b *testing.B) {
	segs, bytes := benchMessages(b)
	b.SetBytes(bytes)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for i := range segs {
			_, _ = Parse(segs[i].payload)
		}
	}
	b.ReportMetric(float64(len(segs)*b.N)/b.Elapsed().Seconds(), "pkt/s")
}

// BenchmarkStream measures TCP framing plus tracking: the ppp-DnsPackets
// messages sent back to back over one connection in 1400-byte chunks.
func BenchmarkStream(b *testing.B) {
	segs, _ := benchMessages(b)
	var c2s []byte
	for _, s := range segs {
		c2s = append(c2s, byte(len(s.payload)>>8), byte(len(s.payload)))
		c2s = append(c2s, s.payload...)
	}
	tr := NewTracker(5e9, func(*Query) {})
	b.SetBytes(int64(len(c2s)))
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		s := NewStream(tr, client, server)
		for off := 0; off < len(c2s); off += 1400 {
			s.Data(0, 1, c2s[off:min(off+1400, len(c2s))])
		}
		s.Close(2)
		tr.Flush()
	}
	b.ReportMetric(float64(len(segs)*b.N)/b.Elapsed().Seconds(), "pkt/s")
}
