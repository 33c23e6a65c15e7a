package dns

import (
	"encoding/json"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// pcapDir is the shared capture corpus, beside the repository.
const pcapDir = "../../../shared/testdata/pcaps"

// segment is one UDP datagram or TCP segment of a capture.
type segment struct {
	ts       int64
	tcp      bool
	src, dst Endpoint
	syn, ack bool
	seq      uint32
	payload  []byte
}

// truth is the part of a <stem>.truth.json file the tests use.
type truth struct {
	DNSQueries   int      `json:"dns_queries"`
	DNSResponses int      `json:"dns_responses"`
	DNSNames     []string `json:"dns_query_names"`
}

func loadTruth(t testing.TB, stem string) truth {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(pcapDir, stem+".truth.json"))
	if err != nil {
		t.Fatalf("read truth (the shared corpus must sit beside the repository): %v", err)
	}
	var tr truth
	if err := json.Unmarshal(b, &tr); err != nil {
		t.Fatalf("parse truth %s: %v", stem, err)
	}
	return tr
}

// readSegments decodes every IPv4/IPv6 UDP or TCP packet of a pcap file.
func readSegments(t testing.TB, name string) []segment {
	t.Helper()
	f, err := os.Open(filepath.Join(pcapDir, name))
	if err != nil {
		t.Fatalf("open capture (the shared corpus must sit beside the repository): %v", err)
	}
	defer f.Close()
	r, err := pcapgo.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	var out []segment
	for {
		data, ci, err := r.ReadPacketData()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		pkt := gopacket.NewPacket(data, r.LinkType(), gopacket.Default)
		var src, dst netip.Addr
		switch ip := pkt.NetworkLayer().(type) {
		case *layers.IPv4:
			src, _ = netip.AddrFromSlice(ip.SrcIP)
			dst, _ = netip.AddrFromSlice(ip.DstIP)
		case *layers.IPv6:
			src, _ = netip.AddrFromSlice(ip.SrcIP)
			dst, _ = netip.AddrFromSlice(ip.DstIP)
		default:
			continue
		}
		s := segment{ts: ci.Timestamp.UnixNano()}
		switch l := pkt.TransportLayer().(type) {
		case *layers.UDP:
			s.src = Endpoint{src, uint16(l.SrcPort)}
			s.dst = Endpoint{dst, uint16(l.DstPort)}
			s.payload = l.Payload
		case *layers.TCP:
			s.tcp = true
			s.src = Endpoint{src, uint16(l.SrcPort)}
			s.dst = Endpoint{dst, uint16(l.DstPort)}
			s.syn, s.ack, s.seq = l.SYN, l.ACK, l.Seq
			s.payload = l.Payload
		default:
			continue
		}
		out = append(out, s)
	}
	return out
}

// dnsPort reports whether p is a port on which DNS, mDNS or LLMNR runs.
func dnsPort(p uint16) bool { return p == 53 || p == 5353 || p == 5355 }
