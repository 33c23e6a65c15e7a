// Package decode turns captured frames into the transport-level facts the
// rest of flowlake needs: addresses, ports, TCP sequence numbers and flags,
// and the payload. It handles Ethernet, Linux SLL and SLL2, BSD loopback/NULL
// and raw IPv4/IPv6 link types, 802.1Q and QinQ tags, IPv6 extension
// headers, and reassembles fragmented IPv4 datagrams. Layer decoding is done
// by gopacket's allocation-free DecodingLayerParser.
package decode

import (
	"errors"
	"fmt"
	"net/netip"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/ip4defrag"
	"github.com/gopacket/gopacket/layers"
)

// Transport protocol numbers stored in Packet.Proto.
const (
	ProtoTCP = 6
	ProtoUDP = 17
)

// TCP flag bits stored in Packet.Flags (the TCP header's own bit order).
const (
	FlagFIN = 1 << iota
	FlagSYN
	FlagRST
	FlagPSH
	FlagACK
	FlagURG
)

// Packet is a decoded TCP or UDP packet. Payload aliases the frame buffer and
// is only valid until the next Decode call.
type Packet struct {
	TS               int64 // Unix nanoseconds
	Src, Dst         netip.Addr
	SrcPort, DstPort uint16
	Proto            uint8
	Flags            uint8
	Seq, Ack         uint32
	Window           uint16
	Payload          []byte
	// Missing counts payload bytes the IP header announces but the capture
	// does not hold (snap length, truncated file).
	Missing int
	// Fragmented is true when the packet was rebuilt from IPv4 fragments.
	Fragmented bool
}

// Errors Decode returns. ErrNotTransport is not a failure: the frame was
// valid but carries something other than TCP or UDP (ARP, ICMP, …).
var (
	ErrNotTransport    = errors.New("not TCP or UDP")
	ErrUnsupportedLink = errors.New("unsupported link type")
	ErrFragment        = errors.New("IPv4 fragment held for reassembly")
)

// Stats counts what the decoder has seen.
type Stats struct {
	Frames        int64
	TCP           int64
	UDP           int64
	Other         int64 // valid frames that are not TCP/UDP over IP
	Errors        int64 // malformed frames
	Truncated     int64 // frames cut short by the capture
	Fragments     int64 // IPv4 fragments consumed
	Reassembled   int64 // datagrams rebuilt from fragments
	UnknownLink   int64
	IPv6Fragments int64 // IPv6 fragments (not reassembled; counted as Other)
}

// Decoder decodes frames of any supported link type. It is not safe for
// concurrent use; make one per goroutine.
type Decoder struct {
	eth     layers.Ethernet
	dot1q   layers.Dot1Q
	sll     layers.LinuxSLL
	sll2    layers.LinuxSLL2
	loop    layers.Loopback
	ip4     layers.IPv4
	ip6     layers.IPv6
	ip6ext  layers.IPv6ExtensionSkipper
	ip6frag layers.IPv6Fragment
	tcp     layers.TCP
	udp     layers.UDP
	payload gopacket.Payload

	parsers map[gopacket.LayerType]*gopacket.DecodingLayerParser
	decoded []gopacket.LayerType
	defrag  *ip4defrag.IPv4Defragmenter
	lastGC  int64
	Stats   Stats
}

// New returns a Decoder.
func New() *Decoder {
	d := &Decoder{parsers: map[gopacket.LayerType]*gopacket.DecodingLayerParser{}, decoded: make([]gopacket.LayerType, 0, 12)}
	return d
}

func (d *Decoder) parser(first gopacket.LayerType) *gopacket.DecodingLayerParser {
	if p, ok := d.parsers[first]; ok {
		return p
	}
	p := gopacket.NewDecodingLayerParser(first,
		&d.eth, &d.dot1q, &d.sll, &d.sll2, &d.loop, &d.ip4, &d.ip6, &d.ip6ext, &d.ip6frag, &d.tcp, &d.udp, &d.payload)
	p.IgnoreUnsupported = true
	d.parsers[first] = p
	return p
}

func firstLayer(link layers.LinkType, data []byte) (gopacket.LayerType, bool) {
	switch link {
	case layers.LinkTypeEthernet:
		return layers.LayerTypeEthernet, true
	case layers.LinkTypeLinuxSLL:
		return layers.LayerTypeLinuxSLL, true
	case layers.LinkTypeLinuxSLL2:
		return layers.LayerTypeLinuxSLL2, true
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		return layers.LayerTypeLoopback, true
	case layers.LinkTypeIPv4:
		return layers.LayerTypeIPv4, true
	case layers.LinkTypeIPv6:
		return layers.LayerTypeIPv6, true
	case layers.LinkTypeRaw, 12, 14: // 12 and 14 are LINKTYPE_RAW on some BSDs
		if len(data) > 0 && data[0]>>4 == 6 {
			return layers.LayerTypeIPv6, true
		}
		return layers.LayerTypeIPv4, true
	}
	return 0, false
}

// Decode decodes one frame captured at ts (Unix ns) into p. It returns nil
// for a TCP or UDP packet, ErrNotTransport for other valid frames,
// ErrFragment for an IPv4 fragment that does not complete a datagram, and
// another error for malformed or unsupported frames.
func (d *Decoder) Decode(link layers.LinkType, ts int64, data []byte, p *Packet) (err error) {
	d.Stats.Frames++
	defer func() {
		// gopacket's layer decoders are bounds-checked, but a decoder must
		// never take the process down on hostile input.
		if r := recover(); r != nil {
			d.Stats.Errors++
			err = fmt.Errorf("decode panic: %v", r)
		}
	}()
	first, ok := firstLayer(link, data)
	if !ok {
		d.Stats.UnknownLink++
		return fmt.Errorf("%w %d", ErrUnsupportedLink, link)
	}
	if err := d.parser(first).DecodeLayers(data, &d.decoded); err != nil {
		if d.lastIs(layers.LayerTypeIPv4) || d.lastIs(layers.LayerTypeIPv6) {
			// The IP header decoded but the transport header did not.
			d.Stats.Errors++
			return fmt.Errorf("malformed transport header: %w", err)
		}
		d.Stats.Errors++
		return fmt.Errorf("malformed frame: %w", err)
	}
	*p = Packet{TS: ts}
	var ipPayload int // transport bytes the IP header announces
	for _, lt := range d.decoded {
		switch lt {
		case layers.LayerTypeIPv4:
			p.Src, _ = netip.AddrFromSlice(d.ip4.SrcIP)
			p.Dst, _ = netip.AddrFromSlice(d.ip4.DstIP)
			ipPayload = int(d.ip4.Length) - int(d.ip4.IHL)*4
			if d.ip4.Flags&layers.IPv4MoreFragments != 0 || d.ip4.FragOffset != 0 {
				return d.fragment(ts, p)
			}
		case layers.LayerTypeIPv6:
			p.Src, _ = netip.AddrFromSlice(d.ip6.SrcIP)
			p.Dst, _ = netip.AddrFromSlice(d.ip6.DstIP)
			ipPayload = int(d.ip6.Length)
			if d.ip6.HopByHop != nil {
				ipPayload -= len(d.ip6.HopByHop.Contents)
			}
		case layers.LayerTypeIPv6Fragment:
			d.Stats.IPv6Fragments++
			d.Stats.Other++
			return ErrNotTransport
		case layers.LayerTypeTCP:
			d.fillTCP(p, &d.tcp)
			p.Missing = ipPayload - len(d.tcp.Contents) - len(p.Payload)
			if p.Missing < 0 {
				p.Missing = 0
			}
			if p.Missing > 0 {
				d.Stats.Truncated++
			}
			d.Stats.TCP++
			return nil
		case layers.LayerTypeUDP:
			d.fillUDP(p, &d.udp)
			p.Missing = ipPayload - 8 - len(p.Payload)
			if p.Missing < 0 {
				p.Missing = 0
			}
			if p.Missing > 0 {
				d.Stats.Truncated++
			}
			d.Stats.UDP++
			return nil
		}
	}
	d.Stats.Other++
	return ErrNotTransport
}

func (d *Decoder) lastIs(lt gopacket.LayerType) bool {
	return len(d.decoded) > 0 && d.decoded[len(d.decoded)-1] == lt
}

func (d *Decoder) fillTCP(p *Packet, t *layers.TCP) {
	p.Proto = ProtoTCP
	p.SrcPort, p.DstPort = uint16(t.SrcPort), uint16(t.DstPort)
	p.Seq, p.Ack, p.Window = t.Seq, t.Ack, t.Window
	var f uint8
	if t.FIN {
		f |= FlagFIN
	}
	if t.SYN {
		f |= FlagSYN
	}
	if t.RST {
		f |= FlagRST
	}
	if t.PSH {
		f |= FlagPSH
	}
	if t.ACK {
		f |= FlagACK
	}
	if t.URG {
		f |= FlagURG
	}
	p.Flags = f
	p.Payload = t.Payload
}

func (d *Decoder) fillUDP(p *Packet, u *layers.UDP) {
	p.Proto = ProtoUDP
	p.SrcPort, p.DstPort = uint16(u.SrcPort), uint16(u.DstPort)
	p.Payload = u.Payload
}

// fragment feeds an IPv4 fragment to the defragmenter; when it completes a
// datagram, the transport header is decoded from the rebuilt payload.
func (d *Decoder) fragment(ts int64, p *Packet) error {
	d.Stats.Fragments++
	if d.defrag == nil {
		d.defrag = ip4defrag.NewIPv4Defragmenter()
	}
	// The defragmenter keeps the layers it is given, and our IPv4 layer and
	// its buffer are reused for the next frame: hand it a private copy.
	frag := &layers.IPv4{}
	if err := frag.DecodeFromBytes(append([]byte(nil), d.ip4.Contents...), gopacket.NilDecodeFeedback); err != nil {
		d.Stats.Errors++
		return fmt.Errorf("fragment header: %w", err)
	}
	frag.Payload = append([]byte(nil), d.ip4.Payload...)
	t := time.Unix(0, ts)
	whole, err := d.defrag.DefragIPv4WithTimestamp(frag, t)
	if ts-d.lastGC > int64(30*time.Second) {
		d.defrag.DiscardOlderThan(t.Add(-60 * time.Second))
		d.lastGC = ts
	}
	if err != nil {
		d.Stats.Errors++
		return fmt.Errorf("IPv4 reassembly: %w", err)
	}
	if whole == nil {
		return ErrFragment
	}
	d.Stats.Reassembled++
	p.Fragmented = true
	switch whole.Protocol {
	case layers.IPProtocolTCP:
		var t layers.TCP
		if err := t.DecodeFromBytes(whole.Payload, gopacket.NilDecodeFeedback); err != nil {
			d.Stats.Errors++
			return fmt.Errorf("reassembled TCP: %w", err)
		}
		d.fillTCP(p, &t)
		d.Stats.TCP++
		return nil
	case layers.IPProtocolUDP:
		var u layers.UDP
		if err := u.DecodeFromBytes(whole.Payload, gopacket.NilDecodeFeedback); err != nil {
			d.Stats.Errors++
			return fmt.Errorf("reassembled UDP: %w", err)
		}
		d.fillUDP(p, &u)
		d.Stats.UDP++
		return nil
	}
	d.Stats.Other++
	return ErrNotTransport
}
