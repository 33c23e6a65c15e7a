package decode

import (
	"errors"
	"io"
	"net/netip"
	"testing"

	"github.com/gopacket/gopacket/layers"

	"github.com/flowlake/flowlake/internal/capture"
	"github.com/flowlake/flowlake/internal/testcap"
)

type convKey struct {
	a, b netip.AddrPort
}

func key(p *Packet) convKey {
	a, b := netip.AddrPortFrom(p.Src, p.SrcPort), netip.AddrPortFrom(p.Dst, p.DstPort)
	if b.Compare(a) < 0 {
		a, b = b, a
	}
	return convKey{a, b}
}

// Every shared capture decodes without errors, and the TCP conversations
// (address/port pairs) match tshark's count.
func TestSharedCapturesDecode(t *testing.T) {
	for _, name := range testcap.Captures(t) {
		t.Run(name, func(t *testing.T) {
			truth := testcap.LoadTruth(t, name)
			src := capture.Open([]string{testcap.Path(t, name)})
			defer src.Close()
			d := New()
			conv := map[convKey]bool{}
			var cp capture.Packet
			var p Packet
			for {
				err := src.Next(&cp)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				err = d.Decode(cp.Link, cp.TS, cp.Data, &p)
				if err == nil && p.Proto == ProtoTCP {
					conv[key(&p)] = true
				}
			}
			if d.Stats.Errors != 0 || d.Stats.UnknownLink != 0 {
				t.Errorf("stats %+v", d.Stats)
			}
			if len(conv) != truth.TCPConversations {
				t.Errorf("%d TCP conversations, tshark %d", len(conv), truth.TCPConversations)
			}
		})
	}
}

func TestLinkTypesAndTags(t *testing.T) {
	// Ethernet / 802.1Q / 802.1Q (QinQ) / IPv4 / TCP 1.2.3.4:1000 -> 5.6.7.8:80 "hi"
	frame := []byte{
		0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x81, 0x00, // dst, src, TPID
		0x00, 0x0a, 0x81, 0x00, // VLAN 10, inner TPID
		0x00, 0x14, 0x08, 0x00, // VLAN 20, IPv4
		0x45, 0, 0, 42, 0, 1, 0x40, 0, 64, 6, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8,
		0x03, 0xe8, 0, 80, 0, 0, 0, 1, 0, 0, 0, 0, 0x50, 0x18, 0xff, 0xff, 0, 0, 0, 0,
		'h', 'i',
	}
	d := New()
	var p Packet
	if err := d.Decode(layers.LinkTypeEthernet, 7, frame, &p); err != nil {
		t.Fatal(err)
	}
	if p.Src != netip.MustParseAddr("1.2.3.4") || p.DstPort != 80 || string(p.Payload) != "hi" || p.Flags != FlagPSH|FlagACK || p.TS != 7 {
		t.Fatalf("%+v", p)
	}
	// The same IP packet as raw IP (link type 101) and BSD NULL (0).
	ip := frame[22:]
	if err := d.Decode(layers.LinkTypeRaw, 0, ip, &p); err != nil || string(p.Payload) != "hi" {
		t.Fatalf("raw: %v %+v", err, p)
	}
	null := append([]byte{2, 0, 0, 0}, ip...)
	if err := d.Decode(layers.LinkTypeNull, 0, null, &p); err != nil || string(p.Payload) != "hi" {
		t.Fatalf("null: %v %+v", err, p)
	}
	// Snap length cut the payload: the missing bytes are reported.
	if err := d.Decode(layers.LinkTypeRaw, 0, ip[:len(ip)-1], &p); err != nil || p.Missing != 1 || string(p.Payload) != "h" {
		t.Fatalf("truncated: %v %+v", err, p)
	}
	// Unknown link type and garbage are errors, not panics.
	if err := d.Decode(layers.LinkType(999), 0, ip, &p); !errors.Is(err, ErrUnsupportedLink) {
		t.Fatalf("link 999: %v", err)
	}
	if err := d.Decode(layers.LinkTypeEthernet, 0, []byte{1, 2, 3}, &p); err == nil {
		t.Fatal("garbage decoded")
	}
}

func TestIPv4Fragments(t *testing.T) {
	// A UDP datagram (8-byte header + 16 bytes) split into two fragments.
	udp := []byte{0x30, 0x39, 0, 53, 0, 24, 0, 0, 'a', 'b', 'c', 'd', 'e', 'f', 'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', 'p'}
	hdr := func(off uint16, more bool, n int) []byte {
		fl := off / 8
		if more {
			fl |= 0x2000
		}
		return []byte{0x45, 0, 0, byte(20 + n), 0x12, 0x34, byte(fl >> 8), byte(fl), 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2}
	}
	f1 := append(hdr(0, true, 16), udp[:16]...)
	f2 := append(hdr(16, false, 8), udp[16:]...)
	d := New()
	var p Packet
	if err := d.Decode(layers.LinkTypeRaw, 1, f1, &p); !errors.Is(err, ErrFragment) {
		t.Fatalf("first fragment: %v", err)
	}
	if err := d.Decode(layers.LinkTypeRaw, 2, f2, &p); err != nil {
		t.Fatalf("second fragment: %v", err)
	}
	if !p.Fragmented || p.Proto != ProtoUDP || p.DstPort != 53 || string(p.Payload) != "abcdefghijklmnop" {
		t.Fatalf("%+v", p)
	}
}

func FuzzDecode(f *testing.F) {
	f.Add(uint16(1), []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 0x08, 0x00, 0x45, 0, 0, 20, 0, 0, 0, 0, 64, 6, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2})
	f.Add(uint16(101), []byte{0x60, 0, 0, 0, 0, 8, 17, 64})
	f.Add(uint16(113), make([]byte, 40))
	f.Add(uint16(276), make([]byte, 40))
	f.Add(uint16(0), []byte{30, 0, 0, 0, 0x60})
	f.Fuzz(func(t *testing.T, link uint16, data []byte) {
		d := New()
		var p Packet
		for i := 0; i < 2; i++ { // twice: fragment state carries over
			if err := d.Decode(layers.LinkType(link), int64(i), data, &p); err == nil {
				if p.Proto != ProtoTCP && p.Proto != ProtoUDP {
					t.Fatalf("nil error but proto %d", p.Proto)
				}
			}
		}
	})
}
