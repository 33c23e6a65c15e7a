package tcp

import (
	"fmt"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/flowlake/flowlake/internal/decode"
)

// recorder is a StreamHandler that writes what it is given as text:
// "c:<bytes>" for data, "c:[gap n]" for gaps, per direction.
type recorder struct {
	out    [2]strings.Builder
	closed int
}

func (r *recorder) Data(d Dir, _ int64, b []byte) { r.out[d].Write(b) }
func (r *recorder) Gap(d Dir, _ int64, n int)     { fmt.Fprintf(&r.out[d], "[gap %d]", n) }
func (r *recorder) Close(int64)                   { r.closed++ }

var (
	cli = Endpoint{netip.MustParseAddr("10.0.0.1"), 40000}
	srv = Endpoint{netip.MustParseAddr("10.0.0.2"), 80}
)

type harness struct {
	t     *testing.T
	a     *Assembler
	recs  []*recorder
	done  []*Conn
	clock int64
}

func newHarness(t *testing.T, cfg Config) *harness {
	h := &harness{t: t, clock: int64(time.Hour)}
	h.a = NewAssembler(cfg, func(c *Conn) StreamHandler {
		r := &recorder{}
		h.recs = append(h.recs, r)
		return r
	}, func(c *Conn) { h.done = append(h.done, c) })
	return h
}

// pkt sends a packet from src to dst; flags is a string of S A F R.
func (h *harness) pkt(src, dst Endpoint, flags string, seq, ack uint32, payload string) {
	h.clock += int64(time.Millisecond)
	p := &decode.Packet{TS: h.clock, Src: src.IP, Dst: dst.IP, SrcPort: src.Port, DstPort: dst.Port, Proto: decode.ProtoTCP,
		Seq: seq, Ack: ack, Payload: []byte(payload)}
	for _, f := range flags {
		switch f {
		case 'S':
			p.Flags |= decode.FlagSYN
		case 'A':
			p.Flags |= decode.FlagACK
		case 'F':
			p.Flags |= decode.FlagFIN
		case 'R':
			p.Flags |= decode.FlagRST
		}
	}
	h.a.Packet(p)
}

func (h *harness) handshake() {
	h.pkt(cli, srv, "S", 1000, 0, "")
	h.pkt(srv, cli, "SA", 5000, 1001, "")
	h.pkt(cli, srv, "A", 1001, 5001, "")
}

func (h *harness) finish() *Conn {
	h.a.Flush()
	if len(h.done) != 1 {
		h.t.Fatalf("%d connections done, want 1", len(h.done))
	}
	return h.done[0]
}

func TestInOrderAndClose(t *testing.T) {
	h := newHarness(t, Config{})
	h.handshake()
	h.pkt(cli, srv, "A", 1001, 5001, "GET / HTTP/1.1\r\n\r\n")
	h.pkt(srv, cli, "A", 5001, 1019, "HTTP/1.1 200 OK\r\n")
	h.pkt(srv, cli, "FA", 5018, 1019, "\r\n")
	h.pkt(cli, srv, "FA", 1019, 5021, "")
	h.pkt(srv, cli, "A", 5021, 1020, "")
	r := h.recs[0]
	if got := r.out[ClientToServer].String(); got != "GET / HTTP/1.1\r\n\r\n" {
		t.Errorf("c2s %q", got)
	}
	if got := r.out[ServerToClient].String(); got != "HTTP/1.1 200 OK\r\n\r\n" {
		t.Errorf("s2c %q", got)
	}
	if r.closed != 1 {
		t.Errorf("closed %d", r.closed)
	}
	c := h.finish()
	if c.Reason != ReasonFIN || !c.SawSYN || c.Client != cli || c.Missing != 0 || c.Packets != [2]int64{4, 4} {
		t.Errorf("conn %+v", c)
	}
	if c.RTT != int64(2*time.Millisecond) {
		t.Errorf("rtt %d", c.RTT)
	}
}

func TestOutOfOrderRetransOverlap(t *testing.T) {
	h := newHarness(t, Config{})
	h.handshake()
	h.pkt(cli, srv, "A", 1006, 5001, "56789")  // ahead
	h.pkt(cli, srv, "A", 1001, 5001, "01234")  // fills the hole
	h.pkt(cli, srv, "A", 1001, 5001, "01234")  // retransmission
	h.pkt(cli, srv, "A", 1009, 5001, "89abcd") // overlaps 2 bytes
	h.pkt(cli, srv, "A", 1021, 5001, "klm")    // ahead again
	h.pkt(cli, srv, "A", 1015, 5001, "efghij") // fills
	if got := h.recs[0].out[ClientToServer].String(); got != "0123456789abcdefghijklm" {
		t.Errorf("got %q", got)
	}
	c := h.finish()
	if c.OutOfOrder != 2 || c.Retrans != 2 || c.Missing != 0 || c.Reason != ReasonOpen {
		t.Errorf("ooo %d retrans %d missing %d reason %s", c.OutOfOrder, c.Retrans, c.Missing, c.Reason)
	}
}

func TestGapDeclaredByAck(t *testing.T) {
	h := newHarness(t, Config{})
	h.handshake()
	h.pkt(cli, srv, "A", 1001, 5001, "aaaa")
	// 1005..1009 lost by the capture
	h.pkt(cli, srv, "A", 1009, 5001, "cccc")
	if got := h.recs[0].out[ClientToServer].String(); got != "aaaa" {
		t.Fatalf("delivered before the ack: %q", got)
	}
	h.pkt(srv, cli, "A", 5001, 1013, "") // server acked everything
	if got := h.recs[0].out[ClientToServer].String(); got != "aaaa[gap 4]cccc" {
		t.Errorf("got %q", got)
	}
	c := h.finish()
	if c.Missing != 4 {
		t.Errorf("missing %d", c.Missing)
	}
}

func TestMidStreamRolesAndLateSegmentAlreadyAcked(t *testing.T) {
	h := newHarness(t, Config{})
	// No handshake: first packet is from the server (port 80).
	h.pkt(srv, cli, "A", 7000, 3000, "HTTP/1.1")
	h.pkt(cli, srv, "A", 3000, 7008, "GET")
	h.pkt(srv, cli, "A", 7012, 3003, "late") // 4 bytes missing, and the client...
	h.pkt(cli, srv, "A", 3003, 7016, "")     // ...acks past them
	c := h.a.conns[KeyOf(cli, srv)]
	if c.Client != cli || c.Server != srv || c.SawSYN {
		t.Errorf("roles %v %v syn %v", c.Client, c.Server, c.SawSYN)
	}
	if got := h.recs[0].out[ServerToClient].String(); got != "HTTP/1.1[gap 4]late" {
		t.Errorf("s2c %q", got)
	}
	h.finish()
}

func TestRSTAndLingerThenPortReuse(t *testing.T) {
	h := newHarness(t, Config{CloseLinger: time.Second})
	h.handshake()
	h.pkt(cli, srv, "A", 1001, 5001, "x")
	h.pkt(srv, cli, "R", 5001, 0, "")
	h.pkt(cli, srv, "A", 1002, 5001, "") // trailing packet counted in the old conn
	if len(h.done) != 0 || h.recs[0].closed != 1 {
		t.Fatalf("done %d closed %d", len(h.done), h.recs[0].closed)
	}
	// New connection on the same ports with a new ISN.
	h.pkt(cli, srv, "S", 90000, 0, "")
	if len(h.done) != 1 || h.done[0].Reason != ReasonRST || h.done[0].Packets[0] != 4 {
		t.Fatalf("old conn: %+v", h.done)
	}
	h.pkt(srv, cli, "SA", 1, 90001, "")
	h.a.Flush()
	if len(h.done) != 2 || len(h.recs) != 2 || !h.done[1].SawSYN {
		t.Fatalf("new conn not separate: %d done", len(h.done))
	}
}

func TestIdleTimeout(t *testing.T) {
	h := newHarness(t, Config{IdleTimeout: time.Minute})
	h.handshake()
	h.clock += int64(2 * time.Minute)
	h.a.Advance(h.clock)
	if len(h.done) != 1 || h.done[0].Reason != ReasonTimeout {
		t.Fatalf("done %+v", h.done)
	}
}

func TestTruncatedPayloadIsGap(t *testing.T) {
	h := newHarness(t, Config{})
	h.handshake()
	h.clock++
	h.a.Packet(&decode.Packet{TS: h.clock, Src: cli.IP, Dst: srv.IP, SrcPort: cli.Port, DstPort: srv.Port, Proto: decode.ProtoTCP,
		Seq: 1001, Ack: 5001, Flags: decode.FlagACK, Payload: []byte("abc"), Missing: 7})
	h.pkt(cli, srv, "A", 1011, 5001, "next")
	if got := h.recs[0].out[ClientToServer].String(); got != "abc[gap 7]next" {
		t.Errorf("got %q", got)
	}
}

func TestPerConnLimitForcesGap(t *testing.T) {
	h := newHarness(t, Config{MaxBufferedPerConn: 10})
	h.handshake()
	h.pkt(cli, srv, "A", 1011, 5001, "0123456789")
	h.pkt(cli, srv, "A", 1021, 5001, "abcdef") // 16 bytes held > 10
	if got := h.recs[0].out[ClientToServer].String(); got != "[gap 10]0123456789abcdef" {
		t.Errorf("got %q", got)
	}
	c := h.finish()
	if c.LimitHits != 1 || h.a.Stats().LimitHits != 1 || h.a.Stats().Buffered != 0 {
		t.Errorf("limit hits %d stats %+v", c.LimitHits, h.a.Stats())
	}
}

func TestMaxConnsEvicts(t *testing.T) {
	h := newHarness(t, Config{MaxConns: 2})
	for i := 0; i < 3; i++ {
		c := Endpoint{cli.IP, uint16(50000 + i)}
		h.pkt(c, srv, "S", 1, 0, "")
	}
	if len(h.done) != 1 || h.a.Stats().Evicted != 1 || h.a.Stats().ActiveConns != 2 {
		t.Fatalf("done %d stats %+v", len(h.done), h.a.Stats())
	}
}

func TestSequenceWrap(t *testing.T) {
	h := newHarness(t, Config{})
	h.pkt(cli, srv, "S", 0xfffffffd, 0, "")
	h.pkt(cli, srv, "A", 0, 0, "cd") // after wrap, out of order
	h.pkt(cli, srv, "A", 0xfffffffe, 0, "ab")
	if got := h.recs[0].out[ClientToServer].String(); got != "abcd" {
		t.Errorf("got %q", got)
	}
}

// A connection seen mid-stream: the client's first packet already
// acknowledges server bytes up to 7000, so server data starting at 7100
// means 100 bytes were not captured.
func TestMidStreamResumesAtPeerAck(t *testing.T) {
	h := newHarness(t, Config{})
	h.pkt(cli, srv, "A", 3000, 7000, "GET /")
	h.pkt(srv, cli, "A", 7100, 3005, "body")
	if got := h.recs[0].out[ServerToClient].String(); got != "" {
		t.Fatalf("delivered across an unknown hole: %q", got)
	}
	h.pkt(cli, srv, "A", 3005, 7104, "")
	if got := h.recs[0].out[ServerToClient].String(); got != "[gap 100]body" {
		t.Errorf("s2c %q", got)
	}
	if c := h.finish(); c.Missing != 100 {
		t.Errorf("missing %d", c.Missing)
	}
}

// Conn.Inputs lists the inputs that held packets of the connection, each
// once, in order, bounded by MaxInputs (the latest one always kept).
func TestInputs(t *testing.T) {
	h := newHarness(t, Config{})
	h.a.SetInput("seg-0")
	h.handshake()
	h.a.SetInput("seg-1") // no packet of the connection
	h.a.SetInput("seg-2")
	h.pkt(cli, srv, "A", 1001, 5001, "a")
	h.pkt(cli, srv, "A", 1002, 5001, "b")
	c := h.a.conns[KeyOf(cli, srv)]
	if got := strings.Join(c.Inputs, ","); got != "seg-0,seg-2" {
		t.Fatalf("Inputs %q, want seg-0,seg-2", got)
	}
	for i := 3; i < MaxInputs+10; i++ {
		h.a.SetInput(fmt.Sprintf("seg-%d", i))
		h.pkt(srv, cli, "A", 5001, 1003, "")
	}
	if n := len(c.Inputs); n != MaxInputs || c.Inputs[n-1] != fmt.Sprintf("seg-%d", MaxInputs+9) || c.Inputs[0] != "seg-0" {
		t.Fatalf("%d inputs, first %s, last %s", n, c.Inputs[0], c.Inputs[n-1])
	}
}
