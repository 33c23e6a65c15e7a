package tlsparse

import (
	"encoding/json"
	"errors"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/flowlake/flowlake/internal/tcp"
	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
)

// pcapDir is the shared capture corpus, beside the repository.
const pcapDir = "../../../shared/testdata/pcaps"

// truth is the part of a <stem>.truth.json file the tests use.
type truth struct {
	ClientHellos int            `json:"tls_client_hellos"`
	ServerHellos int            `json:"tls_server_hellos"`
	Versions     map[string]int `json:"tls_versions"`
	SNI          []string       `json:"tls_sni"`
	Analysis     map[string]int `json:"tcp_analysis"`
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

// event is one call to make on a connection's handler.
type event struct {
	dir  tcp.Dir
	ts   int64
	data []byte
	gap  int
}

// conn is one TCP connection of a capture, as handler calls in capture
// order.
type conn struct {
	client, server netip.AddrPort
	events         []event
}

// half tracks one direction for the test's minimal reassembly.
type half struct {
	init bool
	next uint32
	// ooo holds segments beyond next, by sequence number.
	ooo map[uint32][]byte
}

// deliver feeds a segment with sequence seq: retransmitted bytes are
// dropped, early segments wait for the bytes before them.
func (h *half) deliver(c *conn, dir tcp.Dir, ts int64, seq uint32, data []byte) {
	if !h.init {
		h.init, h.next = true, seq
	}
	if d := int32(seq - h.next); d > 0 {
		if h.ooo == nil {
			h.ooo = map[uint32][]byte{}
		}
		if old, ok := h.ooo[seq]; !ok || len(old) < len(data) {
			h.ooo[seq] = slices.Clone(data)
		}
		return
	} else if -int(d) >= len(data) {
		return // entirely retransmitted
	} else {
		data = data[-d:]
	}
	c.events = append(c.events, event{dir: dir, ts: ts, data: slices.Clone(data)})
	h.next += uint32(len(data))
	h.drain(c, dir, ts)
}

// drain delivers waiting segments that have become contiguous.
func (h *half) drain(c *conn, dir tcp.Dir, ts int64) {
	for progress := true; progress; {
		progress = false
		for _, seq := range sortedKeys(h.ooo) {
			data := h.ooo[seq]
			d := int32(seq - h.next)
			if d > 0 {
				continue
			}
			delete(h.ooo, seq)
			if -int(d) < len(data) {
				data = data[-d:]
				c.events = append(c.events, event{dir: dir, ts: ts, data: data})
				h.next += uint32(len(data))
			}
			progress = true
		}
	}
}

// flush reports the bytes never filled as gaps and delivers the rest.
func (h *half) flush(c *conn, dir tcp.Dir, ts int64) {
	for len(h.ooo) > 0 {
		seq := sortedKeys(h.ooo)[0]
		c.events = append(c.events, event{dir: dir, ts: ts, gap: int(seq - h.next)})
		h.next = seq
		h.drain(c, dir, ts)
	}
}

func sortedKeys(m map[uint32][]byte) []uint32 {
	out := make([]uint32, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// readConns reads a pcap or pcapng file and rebuilds its TCP connections
// with a simple sequence-number reassembly: it drops retransmissions,
// reorders early segments and reports never-filled holes as gaps at the
// end. The client is the sender of the SYN, or, without one, the side with
// the higher port.
func readConns(t testing.TB, name string) []*conn {
	t.Helper()
	f, err := os.Open(filepath.Join(pcapDir, name))
	if err != nil {
		t.Fatalf("open capture (the shared corpus must sit beside the repository): %v", err)
	}
	defer f.Close()
	var (
		next     func() ([]byte, gopacket.CaptureInfo, error)
		linkType layers.LinkType
	)
	if filepath.Ext(name) == ".pcapng" {
		r, err := pcapgo.NewNgReader(f, pcapgo.DefaultNgReaderOptions)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		next, linkType = r.ReadPacketData, r.LinkType()
	} else {
		r, err := pcapgo.NewReader(f)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		next, linkType = r.ReadPacketData, r.LinkType()
	}
	type key struct{ a, b netip.AddrPort }
	type state struct {
		c      *conn
		halves [2]half
	}
	conns := map[key]*state{}
	var order []*state
	var last int64
	for {
		data, ci, err := next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		pkt := gopacket.NewPacket(data, linkType, gopacket.Default)
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
		tcpl, ok := pkt.TransportLayer().(*layers.TCP)
		if !ok {
			continue
		}
		ts := ci.Timestamp.UnixNano()
		last = ts
		sa := netip.AddrPortFrom(src, uint16(tcpl.SrcPort))
		da := netip.AddrPortFrom(dst, uint16(tcpl.DstPort))
		k := key{sa, da}
		if da.Compare(sa) < 0 {
			k = key{da, sa}
		}
		st := conns[k]
		if st == nil {
			client, server := sa, da
			if !(tcpl.SYN && !tcpl.ACK) && sa.Port() < da.Port() {
				client, server = da, sa
			}
			st = &state{c: &conn{client: client, server: server}}
			conns[k] = st
			order = append(order, st)
		}
		dir := tcp.ServerToClient
		if sa == st.c.client {
			dir = tcp.ClientToServer
		}
		h := &st.halves[dir]
		if tcpl.SYN {
			h.init, h.next = true, tcpl.Seq+1
			continue
		}
		if len(tcpl.Payload) > 0 {
			h.deliver(st.c, dir, ts, tcpl.Seq, tcpl.Payload)
		}
	}
	out := make([]*conn, 0, len(order))
	for _, st := range order {
		for d := range st.halves {
			st.halves[d].flush(st.c, tcp.Dir(d), last)
		}
		out = append(out, st.c)
	}
	return out
}

// play makes the calls of c on h and closes it at ts.
func play(c *conn, h tcp.StreamHandler, closeTS int64) {
	for _, e := range c.events {
		if e.gap > 0 {
			h.Gap(e.dir, e.ts, e.gap)
		} else {
			h.Data(e.dir, e.ts, e.data)
		}
	}
	h.Close(closeTS)
}
