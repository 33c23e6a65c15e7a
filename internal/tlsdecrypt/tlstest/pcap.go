package tlstest

import (
	"net"
	"os"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// mss is the TCP payload of the synthetic packets.
const mss = 1400

// Epoch is the time of the first synthetic packet.
var Epoch = time.Date(2024, 5, 1, 12, 0, 0, 0, time.UTC)

// ClientAddr and ServerAddr are the endpoints of session i in the pcap
// (the client port is 40000+i, the server port 443).
func ClientAddr(i int) (net.IP, int) {
	return net.IPv4(10, 0, byte(i>>8), byte(i)+1).To4(), 40000 + i%20000
}

// ServerAddr is the server of every session.
func ServerAddr() (net.IP, int) { return net.IPv4(10, 1, 0, 1).To4(), 443 }

// WritePcap writes the sessions, one after the other, as Ethernet/IPv4/TCP
// packets with a three-way handshake, the chunks cut into segments of at
// most 1400 bytes each acknowledged by the peer's next packet, and FINs.
func WritePcap(t testing.TB, path string, sessions []*Session) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriterNanos(f)
	if err := w.WriteFileHeader(65536, layers.LinkTypeEthernet); err != nil {
		t.Fatal(err)
	}
	ts := Epoch
	for i, s := range sessions {
		cip, cport := ClientAddr(i)
		sip, sport := ServerAddr()
		p := &packetWriter{t: t, w: w, ts: &ts, cip: cip, sip: sip, cport: cport, sport: sport,
			seq: [2]uint32{1000, 500000}}
		p.send(true, layers.TCP{SYN: true}, nil)
		p.seq[0]++
		p.send(false, layers.TCP{SYN: true, ACK: true}, nil)
		p.seq[1]++
		p.send(true, layers.TCP{ACK: true}, nil)
		for _, c := range s.Chunks {
			for b := c.Data; len(b) > 0; {
				n := min(len(b), mss)
				p.send(c.FromClient, layers.TCP{ACK: true, PSH: n == len(b)}, b[:n])
				b = b[n:]
			}
		}
		p.send(true, layers.TCP{FIN: true, ACK: true}, nil)
		p.seq[0]++
		p.send(false, layers.TCP{FIN: true, ACK: true}, nil)
		p.seq[1]++
		p.send(true, layers.TCP{ACK: true}, nil)
	}
}

type packetWriter struct {
	t        testing.TB
	w        *pcapgo.Writer
	ts       *time.Time
	cip, sip net.IP
	cport    int
	sport    int
	seq      [2]uint32 // next sequence number of client, server
	buf      gopacket.SerializeBuffer
}

func (p *packetWriter) send(fromClient bool, tcp layers.TCP, payload []byte) {
	src, dst := p.cip, p.sip
	sport, dport := p.cport, p.sport
	me, peer := 0, 1
	if !fromClient {
		src, dst, sport, dport, me, peer = dst, src, dport, sport, 1, 0
	}
	tcp.SrcPort, tcp.DstPort = layers.TCPPort(sport), layers.TCPPort(dport)
	tcp.Seq = p.seq[me]
	if tcp.ACK {
		tcp.Ack = p.seq[peer]
	}
	tcp.Window = 65535
	ip := layers.IPv4{Version: 4, TTL: 64, Protocol: layers.IPProtocolTCP, SrcIP: src, DstIP: dst}
	eth := layers.Ethernet{SrcMAC: net.HardwareAddr{2, 0, 0, 0, 0, byte(me + 1)}, DstMAC: net.HardwareAddr{2, 0, 0, 0, 0, byte(peer + 1)},
		EthernetType: layers.EthernetTypeIPv4}
	if err := tcp.SetNetworkLayerForChecksum(&ip); err != nil {
		p.t.Fatal(err)
	}
	if p.buf == nil {
		p.buf = gopacket.NewSerializeBuffer()
	}
	if err := gopacket.SerializeLayers(p.buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true},
		&eth, &ip, &tcp, gopacket.Payload(payload)); err != nil {
		p.t.Fatal(err)
	}
	data := p.buf.Bytes()
	ci := gopacket.CaptureInfo{Timestamp: *p.ts, CaptureLength: len(data), Length: len(data)}
	if err := p.w.WritePacket(ci, data); err != nil {
		p.t.Fatal(err)
	}
	*p.ts = p.ts.Add(time.Millisecond)
	p.seq[me] += uint32(len(payload))
}
