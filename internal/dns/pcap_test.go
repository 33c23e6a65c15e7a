package dns

import (
	"testing"

	"github.com/flowlake/flowlake/internal/testcap"
)

// segment is one UDP datagram or TCP segment of a capture.
type segment struct {
	ts       int64
	tcp      bool
	src, dst Endpoint
	syn, ack bool
	seq      uint32
	payload  []byte
}

func loadTruth(t testing.TB, stem string) testcap.Truth {
	t.Helper()
	return testcap.LoadTruth(t, stem+".pcap")
}

// readSegments returns every IPv4/IPv6 UDP or TCP packet of a capture.
func readSegments(t testing.TB, name string) []segment {
	t.Helper()
	var out []segment
	for _, p := range testcap.Packets(t, name) {
		out = append(out, segment{ts: p.TS, tcp: p.TCP, src: Endpoint{p.Src.Addr(), p.Src.Port()}, dst: Endpoint{p.Dst.Addr(), p.Dst.Port()},
			syn: p.SYN, ack: p.ACK, seq: p.Seq, payload: p.Payload})
	}
	return out
}

// dnsPort reports whether p is a port on which DNS, mDNS or LLMNR runs.
func dnsPort(p uint16) bool { return p == 53 || p == 5353 || p == 5355 }
