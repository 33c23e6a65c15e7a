package tlsparse

import (
	"net/netip"
	"slices"
	"testing"

	"github.com/flowlake/flowlake/internal/tcp"
	"github.com/flowlake/flowlake/internal/testcap"
)

func loadTruth(t testing.TB, stem string) testcap.Truth {
	t.Helper()
	return testcap.LoadTruth(t, stem+".pcap")
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
	type key struct{ a, b netip.AddrPort }
	type state struct {
		c      *conn
		halves [2]half
	}
	conns := map[key]*state{}
	var order []*state
	var last int64
	for _, p := range testcap.Packets(t, name) {
		if !p.TCP {
			continue
		}
		ts := p.TS
		last = ts
		sa, da := p.Src, p.Dst
		k := key{sa, da}
		if da.Compare(sa) < 0 {
			k = key{da, sa}
		}
		st := conns[k]
		if st == nil {
			client, server := sa, da
			if !(p.SYN && !p.ACK) && sa.Port() < da.Port() {
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
		if p.SYN {
			h.init, h.next = true, p.Seq+1
			continue
		}
		if len(p.Payload) > 0 {
			h.deliver(st.c, dir, ts, p.Seq, p.Payload)
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
