package testcap

import (
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

// Packet is one TCP or UDP packet of a shared capture, decoded with
// gopacket (independently of flowlake's own decoder, so that parser tests
// do not depend on it).
type Packet struct {
	TS       int64 // Unix ns
	TCP      bool  // else UDP
	Src, Dst netip.AddrPort
	SYN, ACK bool
	Seq      uint32
	Payload  []byte
}

// Packets returns the IPv4/IPv6 TCP and UDP packets of a shared pcap or
// pcapng capture, in capture order.
func Packets(t testing.TB, name string) []Packet {
	t.Helper()
	f, err := os.Open(Path(t, name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var (
		next func() ([]byte, gopacket.CaptureInfo, error)
		link layers.LinkType
	)
	if filepath.Ext(name) == ".pcapng" {
		r, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		next, link = r.ReadPacketData, r.LinkType()
	} else {
		r, err := pcapgo.NewReader(f)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		next, link = r.ReadPacketData, r.LinkType()
	}
	var out []Packet
	for {
		data, ci, err := next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		pkt := gopacket.NewPacket(data, link, gopacket.Default)
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
		p := Packet{TS: ci.Timestamp.UnixNano()}
		switch l := pkt.TransportLayer().(type) {
		case *layers.UDP:
			p.Src, p.Dst = netip.AddrPortFrom(src, uint16(l.SrcPort)), netip.AddrPortFrom(dst, uint16(l.DstPort))
			p.Payload = l.Payload
		case *layers.TCP:
			p.TCP = true
			p.Src, p.Dst = netip.AddrPortFrom(src, uint16(l.SrcPort)), netip.AddrPortFrom(dst, uint16(l.DstPort))
			p.SYN, p.ACK, p.Seq = l.SYN, l.ACK, l.Seq
			p.Payload = l.Payload
		default:
			continue
		}
		out = append(out, p)
	}
	return out
}
