package source

import (
	"errors"
	"os/exec"
	"strings"
	"testing"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"golang.org/x/net/bpf"
)

func TestParseDDD(t *testing.T) {
	prog, err := parseDDD("4\n40 0 0 12\n21 0 1 2048\n6 0 0 262144\n6 0 0 0\n")
	if err != nil {
		t.Fatal(err)
	}
	want := []bpf.RawInstruction{{Op: 40, K: 12}, {Op: 21, Jf: 1, K: 2048}, {Op: 6, K: 262144}, {Op: 6}}
	if len(prog) != len(want) {
		t.Fatalf("got %v", prog)
	}
	for i := range want {
		if prog[i] != want[i] {
			t.Errorf("instruction %d: %+v, want %+v", i, prog[i], want[i])
		}
	}
	for _, bad := range []string{"", "x\n", "2\n6 0 0 0\n", "1\n6 0 0\n", "1\n6 0 0 99999999999\n", "1\n6 0 300 0\n", "0\n"} {
		if _, err := parseDDD(bad); err == nil {
			t.Errorf("parseDDD(%q) accepted", bad)
		}
	}
}

// frame builds an Ethernet/IPv4 frame carrying TCP or UDP between two
// ports.
func frame(t *testing.T, tcp bool, sport, dport uint16) []byte {
	t.Helper()
	eth := &layers.Ethernet{SrcMAC: []byte{2, 0, 0, 0, 0, 1}, DstMAC: []byte{2, 0, 0, 0, 0, 2}, EthernetType: layers.EthernetTypeIPv4}
	ip := &layers.IPv4{Version: 4, TTL: 64, SrcIP: []byte{10, 0, 0, 1}, DstIP: []byte{10, 0, 0, 2}}
	var l4 gopacket.SerializableLayer
	if tcp {
		ip.Protocol = layers.IPProtocolTCP
		tl := &layers.TCP{SrcPort: layers.TCPPort(sport), DstPort: layers.TCPPort(dport), SYN: true, Window: 1000}
		if err := tl.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
		l4 = tl
	} else {
		ip.Protocol = layers.IPProtocolUDP
		ul := &layers.UDP{SrcPort: layers.UDPPort(sport), DstPort: layers.UDPPort(dport)}
		if err := ul.SetNetworkLayerForChecksum(ip); err != nil {
			t.Fatal(err)
		}
		l4 = ul
	}
	buf := gopacket.NewSerializeBuffer()
	if err := gopacket.SerializeLayers(buf, gopacket.SerializeOptions{FixLengths: true, ComputeChecksums: true}, eth, ip, l4, gopacket.Payload("hello")); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func needTcpdump(t *testing.T) {
	t.Helper()
	if FilterCompiler == "tcpdump -ddd" {
		if _, err := exec.LookPath("tcpdump"); err != nil {
			t.Skip("tcpdump not installed: filters are compiled with it (apt-get install tcpdump)")
		}
	}
}

// A compiled filter matches what tcpdump's expression means, its negation
// matches the rest, and bad expressions fail with ErrBadFilter.
func TestCompileFilter(t *testing.T) {
	needTcpdump(t)
	if f, err := CompileFilter("  ", layers.LinkTypeEthernet); f != nil || err != nil {
		t.Fatalf("empty filter: %v, %v", f, err)
	}
	f, err := CompileFilter("tcp port 80", layers.LinkTypeEthernet)
	if err != nil {
		t.Fatal(err)
	}
	if !f.CanMatch() {
		t.Fatal("the VM does not run a plain port filter")
	}
	neg, err := f.Negated()
	if err != nil {
		t.Fatal(err)
	}
	insts, ok := bpf.Disassemble(neg)
	if !ok {
		t.Fatal("negated program does not disassemble")
	}
	vm, err := bpf.NewVM(insts)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		tcp          bool
		sport, dport uint16
		want         bool
	}{
		{true, 1234, 80, true}, {true, 80, 1234, true}, {true, 1234, 81, false}, {false, 1234, 80, false},
	} {
		fr := frame(t, c.tcp, c.sport, c.dport)
		if got := f.Match(fr); got != c.want {
			t.Errorf("tcp=%v %d->%d: match %v, want %v", c.tcp, c.sport, c.dport, got, c.want)
		}
		n, err := vm.Run(fr)
		if err != nil {
			t.Fatal(err)
		}
		if (n > 0) == c.want {
			t.Errorf("tcp=%v %d->%d: negated program returned %d", c.tcp, c.sport, c.dport, n)
		}
		if n > 1 {
			t.Errorf("negated program keeps %d bytes, want 1", n)
		}
	}
	// Raw IP frames get a program for raw IP: the same UDP packet without
	// its Ethernet header matches "udp".
	raw, err := CompileFilter("udp", layers.LinkTypeRaw)
	if err != nil {
		t.Fatal(err)
	}
	if !raw.Match(frame(t, false, 1, 2)[14:]) || raw.Match(frame(t, true, 1, 2)[14:]) {
		t.Error("raw-IP program does not tell UDP from TCP")
	}
	_, err = CompileFilter("tcp port", layers.LinkTypeEthernet)
	if !errors.Is(err, ErrBadFilter) || !strings.Contains(err.Error(), "syntax error") {
		t.Errorf("bad expression: %v", err)
	}
}

func TestNegatedRefusesComputedReturn(t *testing.T) {
	f := &Filter{Expr: "x", Program: []bpf.RawInstruction{{Op: 0x16}}} // ret A
	if _, err := f.Negated(); err == nil {
		t.Error("ret A negated")
	}
}

func TestDropOutgoing(t *testing.T) {
	prog := dropOutgoing(nil)
	if len(prog) != 4 || prog[3] != (bpf.RawInstruction{Op: opRetK, K: Snaplen}) {
		t.Errorf("accept-all with the loopback prefix: %v", prog)
	}
	user := []bpf.RawInstruction{{Op: 40, K: 12}, {Op: 6}}
	if got := dropOutgoing(user); len(got) != 5 || got[3] != user[0] || got[1].Jt != 0 || got[1].Jf != 1 {
		t.Errorf("prefix: %v", got)
	}
}
