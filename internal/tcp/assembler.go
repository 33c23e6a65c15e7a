package tcp

import (
	"fmt"
	"net/netip"
	"time"

	"github.com/flowlake/flowlake/internal/decode"
)

// Config bounds the assembler. Zero values take the defaults.
type Config struct {
	// IdleTimeout ends a connection that has seen no packet for this long
	// (capture time). Default 5 minutes.
	IdleTimeout time.Duration
	// CloseLinger keeps a closed connection around this long so that the
	// trailing ACKs of its close are counted in it. Default 10 seconds.
	CloseLinger time.Duration
	// MaxBufferedPerConn bounds out-of-order bytes held for one connection.
	// When it is reached the hole is declared a gap. Default 4 MiB.
	MaxBufferedPerConn int
	// MaxBufferedTotal bounds out-of-order bytes held for all connections.
	// Default 256 MiB.
	MaxBufferedTotal int64
	// MaxConns bounds the number of tracked connections; the least recently
	// active is ended (as a timeout) to make room. Default 1,000,000.
	MaxConns int
}

func (c *Config) defaults() {
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = 5 * time.Minute
	}
	if c.CloseLinger <= 0 {
		c.CloseLinger = 10 * time.Second
	}
	if c.MaxBufferedPerConn <= 0 {
		c.MaxBufferedPerConn = 4 << 20
	}
	if c.MaxBufferedTotal <= 0 {
		c.MaxBufferedTotal = 256 << 20
	}
	if c.MaxConns <= 0 {
		c.MaxConns = 1_000_000
	}
}

// Endpoint is one side of a connection.
type Endpoint struct {
	IP   netip.Addr
	Port uint16
}

func (e Endpoint) String() string { return netip.AddrPortFrom(e.IP, e.Port).String() }

func (e Endpoint) less(o Endpoint) bool {
	if c := e.IP.Compare(o.IP); c != 0 {
		return c < 0
	}
	return e.Port < o.Port
}

// Key identifies a connection independently of direction.
type Key struct{ A, B Endpoint }

// KeyOf returns the canonical key of a packet's connection.
func KeyOf(src, dst Endpoint) Key {
	if dst.less(src) {
		return Key{dst, src}
	}
	return Key{src, dst}
}

// Close reasons (the tcp table's close column).
const (
	ReasonFIN     = "fin"
	ReasonRST     = "rst"
	ReasonTimeout = "timeout"
	ReasonOpen    = "open"
)

// Conn is one tracked TCP connection. Its exported fields are the facts the
// tcp table records; they are final when the assembler's done callback runs.
type Conn struct {
	Key            Key
	Client, Server Endpoint
	FirstTS        int64
	LastTS         int64
	SawSYN         bool
	Packets        [2]int64
	Bytes          [2]int64 // payload bytes seen on the wire, retransmissions included
	Missing        int64
	Retrans        int64
	OutOfOrder     int64
	LimitHits      int32
	RTT            int64 // ns from SYN to the client's ACK of the SYN-ACK; 0 if unseen
	Reason         string
	// Inputs names the inputs (capture segments) that held packets of the
	// connection, in order, as set by Assembler.SetInput; at most
	// MaxInputs (the first ones and the last).
	Inputs []string
	// Handler receives the reassembled bytes. Set by the assembler's
	// factory when the connection is created.
	Handler StreamHandler
	// Data is free for the owner of the assembler (e.g. an id and names).
	Data any

	half     [2]half
	closed   bool // Handler.Close has been called
	synTS    int64
	synAckTS int64
	prev     *Conn
	next     *Conn
	list     *lruList
}

type half struct {
	init     bool
	next     uint32
	isnSeen  bool
	isn      uint32
	finSeen  bool
	finSeq   uint32
	done     bool // FIN consumed
	pend     []seg
	pendSize int
	acked    bool   // the peer has acknowledged bytes of this direction
	ackedTo  uint32 // highest acknowledgement the peer sent
}

type seg struct {
	seq     uint32
	data    []byte
	missing int // uncaptured bytes that follow data (truncated packet)
}

func (s seg) end() uint32 { return s.seq + uint32(len(s.data)+s.missing) }

// Stats counts assembler activity.
type Stats struct {
	Packets      int64
	Conns        int64 // connections created
	ActiveConns  int   // tracked now
	Buffered     int64 // out-of-order bytes held now
	MissingBytes int64
	LimitHits    int64 // memory bounds that forced a gap
	Evicted      int64 // connections ended early by MaxConns
}

// Assembler reassembles all TCP connections of a packet stream.
type Assembler struct {
	cfg        Config
	conns      map[Key]*Conn
	open       lruList
	closedList lruList
	newHandler func(*Conn) StreamHandler
	done       func(*Conn)
	buffered   int64
	stats      Stats
	input      string // SetInput
}

// NewAssembler returns an assembler. newHandler is called once per new
// connection, after its roles are known, and returns the StreamHandler for
// its bytes; done is called once per connection when it is finished.
func NewAssembler(cfg Config, newHandler func(*Conn) StreamHandler, done func(*Conn)) *Assembler {
	cfg.defaults()
	return &Assembler{cfg: cfg, conns: make(map[Key]*Conn), newHandler: newHandler, done: done}
}

// Stats returns the current counters.
func (a *Assembler) Stats() Stats {
	s := a.stats
	s.ActiveConns = len(a.conns)
	s.Buffered = a.buffered
	return s
}

// wellKnown are ports that identify a server when the handshake was missed.
var wellKnown = map[uint16]bool{
	21: true, 22: true, 25: true, 53: true, 80: true, 110: true, 143: true, 443: true, 445: true,
	465: true, 587: true, 993: true, 995: true, 1433: true, 1521: true, 2049: true, 3000: true,
	3128: true, 3306: true, 4222: true, 5000: true, 5432: true, 5672: true, 6379: true, 8000: true,
	8080: true, 8081: true, 8443: true, 8888: true, 9000: true, 9042: true, 9092: true, 9200: true,
	9300: true, 11211: true, 27017: true,
}

// serverSide guesses which endpoint is the server when no SYN was seen.
func serverSide(src, dst Endpoint) (client, server Endpoint) {
	sw, dw := wellKnown[src.Port], wellKnown[dst.Port]
	switch {
	case dw && !sw:
		return src, dst
	case sw && !dw:
		return dst, src
	case dst.Port < 1024 && src.Port >= 1024:
		return src, dst
	case src.Port < 1024 && dst.Port >= 1024:
		return dst, src
	case src.Port > dst.Port:
		return src, dst
	case dst.Port > src.Port:
		return dst, src
	}
	return src, dst
}

// Packet processes one decoded TCP packet.
// MaxInputs bounds Conn.Inputs: a connection open across more inputs
// keeps the first MaxInputs-1 and the latest.
const MaxInputs = 256

// SetInput names the input whose packets follow (a segment key); each
// connection records the inputs that held its packets in Conn.Inputs.
// The empty name records nothing.
func (a *Assembler) SetInput(name string) { a.input = name }

// noteInput records the current input on c.
func (a *Assembler) noteInput(c *Conn) {
	n := len(c.Inputs)
	switch {
	case a.input == "" || (n > 0 && c.Inputs[n-1] == a.input):
	case n < MaxInputs:
		c.Inputs = append(c.Inputs, a.input)
	default:
		c.Inputs[n-1] = a.input
	}
}

func (a *Assembler) Packet(p *decode.Packet) {
	a.stats.Packets++
	a.expire(p.TS)
	src := Endpoint{p.Src, p.SrcPort}
	dst := Endpoint{p.Dst, p.DstPort}
	key := KeyOf(src, dst)
	c := a.conns[key]
	syn := p.Flags&decode.FlagSYN != 0
	ack := p.Flags&decode.FlagACK != 0
	if c != nil && syn && a.isNewConnection(c, src, p.Seq, ack) {
		a.finish(c, p.TS)
		c = nil
	}
	if c == nil {
		c = a.create(key, src, dst, p)
	}
	d := ClientToServer
	if src != c.Client {
		d = ServerToClient
	}
	c.LastTS = p.TS
	a.noteInput(c)
	c.Packets[d]++
	c.Bytes[d] += int64(len(p.Payload))
	c.list.touch(c)

	h := &c.half[d]
	if syn {
		if !h.isnSeen {
			h.isnSeen, h.isn = true, p.Seq
			if !h.init {
				h.init, h.next = true, p.Seq+1
			}
			if ack {
				c.synAckTS = p.TS
			} else {
				c.synTS = p.TS
				c.SawSYN = true
			}
		} else if p.Seq == h.isn {
			c.Retrans++
		}
	}
	if c.closed {
		return
	}
	if ack && d == ClientToServer && c.RTT == 0 && c.synTS != 0 && c.synAckTS != 0 && !syn {
		if peer := &c.half[ServerToClient]; peer.isnSeen && p.Ack == peer.isn+1 {
			c.RTT = p.TS - c.synTS
		}
	}
	if p.Flags&decode.FlagRST != 0 {
		c.Reason = ReasonRST
		a.closeConn(c, p.TS)
		return
	}
	if ack {
		a.acked(c, d.Reverse(), p.Ack, p.TS)
		if c.closed {
			return
		}
	}
	fin := p.Flags&decode.FlagFIN != 0
	if len(p.Payload) == 0 && p.Missing == 0 && !fin {
		return
	}
	seq := p.Seq
	if syn {
		seq++ // data on a SYN (TFO) starts after it
	}
	if !h.init {
		// First bytes of a direction whose handshake was not seen. If the
		// peer already acknowledged up to some point, the stream resumes
		// there: bytes between that point and this segment were sent but
		// not captured, and become a gap once acknowledged.
		h.init, h.next = true, seq
		if h.acked && seqBefore(h.ackedTo, seq) && seq-h.ackedTo < 1<<30 {
			h.next = h.ackedTo
		}
	}
	if fin && !h.finSeen {
		h.finSeen, h.finSeq = true, seq+uint32(len(p.Payload)+p.Missing)
	}
	a.segment(c, d, seq, p.Payload, p.Missing, p.TS)
	a.checkFin(c, p.TS)
}

// acked records that direction d has been acknowledged up to ackNo. Bytes
// the receiver acknowledged were sent, so holes before that point that the
// capture still lacks will never be filled: they become gaps.
func (a *Assembler) acked(c *Conn, d Dir, ackNo uint32, ts int64) {
	h := &c.half[d]
	if !h.acked || seqAfter(ackNo, h.ackedTo) {
		h.acked, h.ackedTo = true, ackNo
	}
	if !h.init {
		return
	}
	if len(h.pend) > 0 && seqAfter(ackNo, h.pend[0].seq) {
		a.flushUpTo(c, d, ackNo, ts)
	}
	if h.finSeen && !h.done && len(h.pend) == 0 && seqAfter(ackNo, h.finSeq) && seqAfter(h.finSeq, h.next) {
		// The FIN was acknowledged but data before it never came.
		a.gap(c, d, int(h.finSeq-h.next), ts)
		a.checkFin(c, ts)
	}
}

// isNewConnection tells whether a SYN on an existing key starts a new
// connection (port reuse) rather than repeating the old handshake.
func (a *Assembler) isNewConnection(c *Conn, src Endpoint, seq uint32, ack bool) bool {
	if ack {
		return false
	}
	if src != c.Client {
		return c.closed // a SYN from the old server side: only after a close
	}
	h := &c.half[ClientToServer]
	if !h.isnSeen {
		return c.closed || c.Packets[0]+c.Packets[1] > 0 && h.init
	}
	return seq != h.isn
}

func (a *Assembler) create(key Key, src, dst Endpoint, p *decode.Packet) *Conn {
	if len(a.conns) >= a.cfg.MaxConns {
		if victim := a.closedList.tail; victim != nil {
			a.finish(victim, p.TS)
		} else if victim := a.open.tail; victim != nil {
			victim.Reason = ReasonTimeout
			a.stats.Evicted++
			a.finish(victim, p.TS)
		}
	}
	c := &Conn{Key: key, FirstTS: p.TS, LastTS: p.TS}
	syn := p.Flags&decode.FlagSYN != 0
	ack := p.Flags&decode.FlagACK != 0
	switch {
	case syn && !ack:
		c.Client, c.Server = src, dst
	case syn && ack:
		c.Client, c.Server = dst, src
	default:
		c.Client, c.Server = serverSide(src, dst)
	}
	a.conns[key] = c
	a.open.pushFront(c)
	a.stats.Conns++
	c.Handler = a.newHandler(c)
	return c
}

// segment places payload of direction d at seq.
func (a *Assembler) segment(c *Conn, d Dir, seq uint32, data []byte, missing int, ts int64) {
	h := &c.half[d]
	if h.done {
		if len(data) > 0 {
			c.Retrans++
		}
		return
	}
	end := seq + uint32(len(data)+missing)
	diff := int32(seq - h.next)
	if diff > 0 {
		if len(data) == 0 && missing == 0 {
			return
		}
		// Out of order: hold a copy until the hole is filled, acked past,
		// or a bound bites.
		c.OutOfOrder++
		a.hold(c, d, seg{seq: seq, data: data, missing: missing})
		switch {
		case h.acked && !seqBefore(h.ackedTo, end):
			// Already acknowledged: what is missing before it is lost.
			a.flushUpTo(c, d, end, ts)
		case c.half[d].pendSize+c.half[d.Reverse()].pendSize > a.cfg.MaxBufferedPerConn || a.buffered > a.cfg.MaxBufferedTotal:
			c.LimitHits++
			a.stats.LimitHits++
			a.flushUpTo(c, d, h.pend[len(h.pend)-1].end(), ts)
		}
		return
	}
	if !seqAfter(end, h.next) {
		if len(data) > 0 {
			c.Retrans++
		}
		return
	}
	if diff < 0 {
		c.Retrans++
		skip := int(-diff)
		if skip >= len(data) {
			missing -= skip - len(data)
			data = nil
		} else {
			data = data[skip:]
		}
	}
	a.deliver(c, d, data, missing, ts)
	a.drain(c, d, ts)
}

func (a *Assembler) deliver(c *Conn, d Dir, data []byte, missing int, ts int64) {
	h := &c.half[d]
	if len(data) > 0 {
		c.Handler.Data(d, ts, data)
		h.next += uint32(len(data))
	}
	if missing > 0 {
		a.gap(c, d, missing, ts)
	}
}

func (a *Assembler) gap(c *Conn, d Dir, n int, ts int64) {
	c.Missing += int64(n)
	a.stats.MissingBytes += int64(n)
	c.half[d].next += uint32(n)
	c.Handler.Gap(d, ts, n)
}

// hold inserts a private copy of an out-of-order segment, sorted by seq.
func (a *Assembler) hold(c *Conn, d Dir, s seg) {
	h := &c.half[d]
	s.data = append([]byte(nil), s.data...)
	i := len(h.pend)
	for i > 0 && seqAfter(h.pend[i-1].seq, s.seq) {
		i--
	}
	h.pend = append(h.pend, seg{})
	copy(h.pend[i+1:], h.pend[i:])
	h.pend[i] = s
	h.pendSize += len(s.data)
	a.buffered += int64(len(s.data))
}

// drain delivers held segments that have become contiguous.
func (a *Assembler) drain(c *Conn, d Dir, ts int64) {
	h := &c.half[d]
	for len(h.pend) > 0 {
		s := h.pend[0]
		diff := int32(s.seq - h.next)
		if diff > 0 {
			return
		}
		a.pop(c, d)
		if !seqAfter(s.end(), h.next) {
			continue
		}
		data, missing := s.data, s.missing
		if skip := int(-diff); skip >= len(data) {
			missing -= skip - len(data)
			data = nil
		} else {
			data = data[skip:]
		}
		a.deliver(c, d, data, missing, ts)
	}
}

func (a *Assembler) pop(c *Conn, d Dir) {
	h := &c.half[d]
	n := len(h.pend[0].data)
	h.pendSize -= n
	a.buffered -= int64(n)
	h.pend[0] = seg{}
	h.pend = h.pend[1:]
	if len(h.pend) == 0 {
		h.pend = nil
	}
}

// flushUpTo gives up on holes before limit: each hole becomes a gap and the
// held segments behind it are delivered.
func (a *Assembler) flushUpTo(c *Conn, d Dir, limit uint32, ts int64) {
	h := &c.half[d]
	for len(h.pend) > 0 && seqBefore(h.pend[0].seq, limit) {
		s := h.pend[0]
		if diff := int32(s.seq - h.next); diff > 0 {
			a.gap(c, d, int(diff), ts)
		}
		a.drain(c, d, ts)
	}
	a.checkFin(c, ts)
}

// checkFin closes halves whose FIN has been reached and the connection when
// both are closed.
func (a *Assembler) checkFin(c *Conn, ts int64) {
	for d := range c.half {
		h := &c.half[d]
		if h.finSeen && !h.done && !seqBefore(h.next, h.finSeq) {
			h.done = true
			h.next = h.finSeq + 1
		}
	}
	if c.half[0].done && c.half[1].done && !c.closed {
		if c.Reason == "" {
			c.Reason = ReasonFIN
		}
		a.closeConn(c, ts)
	}
}

// closeConn ends the byte stream (giving up on any held data) and moves the
// connection to the lingering list; its row is emitted when it expires.
func (a *Assembler) closeConn(c *Conn, ts int64) {
	if c.closed {
		return
	}
	for d := Dir(0); d <= 1; d++ {
		h := &c.half[d]
		if len(h.pend) > 0 {
			a.flushUpTo(c, d, h.pend[len(h.pend)-1].end()+1, ts)
		}
		if h.finSeen && !h.done && seqAfter(h.finSeq, h.next) && c.Reason == ReasonFIN {
			a.gap(c, d, int(h.finSeq-h.next), ts)
		}
	}
	if c.closed {
		return
	}
	c.closed = true
	c.Handler.Close(ts)
	c.list.remove(c)
	a.closedList.pushFront(c)
}

// finish closes c if needed, removes it and reports it.
func (a *Assembler) finish(c *Conn, ts int64) {
	if !c.closed {
		if c.Reason == "" {
			switch {
			case c.half[0].finSeen || c.half[1].finSeen:
				c.Reason = ReasonFIN
			default:
				c.Reason = ReasonOpen
			}
		}
		a.closeConn(c, ts)
	}
	c.list.remove(c)
	delete(a.conns, c.Key)
	a.done(c)
}

// expire ends connections idle for longer than their timeout at time now.
func (a *Assembler) expire(now int64) {
	for c := a.closedList.tail; c != nil && now-c.LastTS > int64(a.cfg.CloseLinger); c = a.closedList.tail {
		a.finish(c, now)
	}
	for c := a.open.tail; c != nil && now-c.LastTS > int64(a.cfg.IdleTimeout); c = a.open.tail {
		if c.Reason == "" {
			c.Reason = ReasonTimeout
			if c.half[0].finSeen || c.half[1].finSeen {
				c.Reason = ReasonFIN
			}
		}
		a.finish(c, now)
	}
}

// Advance moves capture time to now without a packet, ending idle
// connections.
func (a *Assembler) Advance(now int64) { a.expire(now) }

// Flush ends every connection (end of input). Connections that were still
// open are reported with reason "open" unless a FIN was seen.
func (a *Assembler) Flush() {
	for _, l := range []*lruList{&a.closedList, &a.open} {
		for c := l.tail; c != nil; c = l.tail {
			a.finish(c, c.LastTS)
		}
	}
}

// seqAfter reports a > b in sequence space.
func seqAfter(a, b uint32) bool { return int32(a-b) > 0 }

// seqBefore reports a < b in sequence space.
func seqBefore(a, b uint32) bool { return int32(a-b) < 0 }

// lruList is an intrusive list ordered by last activity, newest first.
type lruList struct{ head, tail *Conn }

func (l *lruList) pushFront(c *Conn) {
	c.list, c.prev, c.next = l, nil, l.head
	if l.head != nil {
		l.head.prev = c
	}
	l.head = c
	if l.tail == nil {
		l.tail = c
	}
}

func (l *lruList) remove(c *Conn) {
	if c.list != l || l == nil {
		return
	}
	if c.prev != nil {
		c.prev.next = c.next
	} else {
		l.head = c.next
	}
	if c.next != nil {
		c.next.prev = c.prev
	} else {
		l.tail = c.prev
	}
	c.prev, c.next, c.list = nil, nil, nil
}

func (l *lruList) touch(c *Conn) {
	if l == nil || l.head == c {
		return
	}
	l.remove(c)
	l.pushFront(c)
}

// String describes a connection for logs.
func (c *Conn) String() string {
	return fmt.Sprintf("%s -> %s", c.Client, c.Server)
}
