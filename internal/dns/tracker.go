package dns

import (
	"net/netip"
)

// maxPending bounds the number of unanswered queries a Tracker holds; past
// it the oldest is emitted as unanswered.
const maxPending = 1 << 16

// Endpoint is one side of a DNS exchange.
type Endpoint struct {
	IP   netip.Addr
	Port uint16
}

// Query is one row of the dns table: a query with its response, a query
// that got no response, a response whose query was not seen, or a message
// that could not be decoded (Error set).
type Query struct {
	// TS is the Unix time in ns of the query, or of the response when the
	// query was not seen, or of the malformed message or TCP event.
	TS int64
	// Transport is "udp" or "tcp".
	Transport string
	// Client sent the query; Server answered it (for a query sent to a
	// multicast group, Server is the unicast responder when one answered).
	Client, Server Endpoint
	// ID is the DNS transaction ID.
	ID uint16
	// Name and QType are the question (see Message). For a response without
	// a question (an mDNS announcement) Name is the first answer's owner.
	Name, QType string
	// RCode is the response code name; empty when there was no response.
	RCode string
	// Answers are the response's answer records (see Message.Answers).
	Answers []string
	// LatencyNS is the response time minus the query time; 0 when either is
	// missing.
	LatencyNS int64
	// Responded reports whether a response was seen.
	Responded bool
	// Error describes why the message, or the TCP framing, was malformed.
	Error string
}

// Stats counts what a Tracker has seen.
type Stats struct {
	// Queries and Responses count messages whose header decoded, by QR bit.
	Queries, Responses int64
	// Paired counts responses matched to a pending query; Unmatched counts
	// responses without one; Unanswered counts queries emitted without a
	// response (by Advance, Flush, a retransmission or the pending bound).
	Paired, Unmatched, Unanswered int64
	// Malformed counts messages that did not decode completely, and TCP
	// framing errors (gaps, truncated messages).
	Malformed int64
}

// pending is a query waiting for its response.
type pending struct {
	q    Query
	next *pending // next query with the same pendKey, oldest first
	idx  int      // position in Tracker.heap
	seq  uint64   // arrival order, the last tie-breaker
}

// pendKey groups pending queries for lookup. The server and the name are
// compared along the chain so that a response to a multicast query, which
// comes from a unicast address, can still be paired.
type pendKey struct {
	client Endpoint
	id     uint16
}

// Tracker pairs DNS queries with their responses by client, server,
// transaction ID and question name (compared case-insensitively), and emits
// one Query per exchange. Emission order depends only on the input.
//
// The *Query passed to emit, and its Answers slice, are only valid during
// the call: the Tracker reuses them. A Tracker is not safe for concurrent
// use.
type Tracker struct {
	timeout  int64
	emit     func(*Query)
	onAnswer func(name string, ip netip.Addr)

	pending map[pendKey]*pending
	heap    []*pending // min-heap by (TS, ID, seq)
	free    []*pending
	seq     uint64

	dec   decoder
	msg   Message
	row   Query
	stats Stats
}

// NewTracker returns a Tracker that reports a query as unanswered once
// capture time has advanced more than timeoutNS past it, and hands every
// row to emit.
func NewTracker(timeoutNS int64, emit func(*Query)) *Tracker {
	if emit == nil {
		emit = func(*Query) {}
	}
	return &Tracker{
		timeout: timeoutNS,
		emit:    emit,
		pending: make(map[pendKey]*pending),
	}
}

// OnAnswer registers fn to be called for every A and AAAA record in the
// answer section of a well-formed response, before that response's row is
// emitted. name is the question name (spelled as in the query when the
// query was seen) when the record answers it, directly or through a CNAME
// chain; otherwise it is the record's owner name. A later
// call replaces fn; nil removes it.
func (t *Tracker) OnAnswer(fn func(name string, ip netip.Addr)) {
	t.onAnswer = fn
}

// Stats returns the counters so far.
func (t *Tracker) Stats() Stats { return t.stats }

// Pending returns the number of queries waiting for a response.
func (t *Tracker) Pending() int { return len(t.heap) }

// Packet processes one DNS message sent from src to dst at ts (Unix ns)
// over transport ("udp" or "tcp"). The QR bit decides whether it is a query
// or a response. A response with no pending query is emitted at once with
// Responded set and LatencyNS 0; a malformed message is emitted at once
// with Error set. payload is not retained.
func (t *Tracker) Packet(ts int64, transport string, src, dst Endpoint, payload []byte) {
	t.msg = Message{Answers: t.msg.Answers[:0]}
	m := &t.msg
	err := t.dec.decode(payload, m, t.onAnswer != nil)
	if len(payload) < headerLen {
		t.stats.Malformed++
		t.emitError(ts, transport, src, dst, m, err)
		return
	}
	if !m.Response {
		t.stats.Queries++
		m.Name = t.dec.questionName()
		if err != nil {
			t.stats.Malformed++
			t.emitError(ts, transport, src, dst, m, err)
			return
		}
		t.addQuery(ts, transport, src, dst, m)
		return
	}

	t.stats.Responses++
	errText := ""
	if err != nil {
		t.stats.Malformed++
		errText = "dns: " + err.Error()
	}
	p := t.match(dst, src, m)
	if p != nil {
		// The query's spelling of the name serves the row and the hook.
		m.Name = p.q.Name
	} else {
		m.Name = t.dec.questionName()
	}
	if err == nil && t.onAnswer != nil {
		for i := range t.dec.addrs {
			a := &t.dec.addrs[i]
			name := a.owner
			if a.asked {
				name = m.Name
			}
			t.onAnswer(name, a.ip)
		}
	}
	if p != nil {
		t.remove(p)
		t.stats.Paired++
		t.row = p.q
		t.recycle(p)
		t.row.Server = src
		t.row.RCode = m.RCode
		t.row.Answers = m.Answers
		t.row.Responded = true
		if lat := ts - t.row.TS; lat > 0 {
			t.row.LatencyNS = lat
		}
		t.row.Error = errText
		t.emit(&t.row)
		return
	}
	t.stats.Unmatched++
	name := m.Name
	if !t.dec.hasQuestion && t.dec.hasFirstOwner {
		name = t.dec.nameString(&t.dec.firstOwner)
	}
	t.row = Query{
		TS:        ts,
		Transport: transport,
		Client:    dst,
		Server:    src,
		ID:        m.ID,
		Name:      name,
		QType:     m.QType,
		RCode:     m.RCode,
		Answers:   m.Answers,
		Responded: true,
		Error:     errText,
	}
	t.emit(&t.row)
}

// emitError emits a row for a query, or a message too short to tell, that
// failed to decode. (Malformed responses still try to pair.)
func (t *Tracker) emitError(ts int64, transport string, src, dst Endpoint, m *Message, err error) {
	t.row = Query{
		TS:        ts,
		Transport: transport,
		Client:    src,
		Server:    dst,
		ID:        m.ID,
		Name:      m.Name,
		QType:     m.QType,
		Error:     "dns: " + err.Error(),
	}
	t.emit(&t.row)
}

// framingError emits a row for a TCP framing problem on a connection.
func (t *Tracker) framingError(ts int64, client, server Endpoint, msg string) {
	t.stats.Malformed++
	t.row = Query{
		TS:        ts,
		Transport: "tcp",
		Client:    client,
		Server:    server,
		Error:     msg,
	}
	t.emit(&t.row)
}

// addQuery records a well-formed query.
func (t *Tracker) addQuery(ts int64, transport string, src, dst Endpoint, m *Message) {
	key := pendKey{client: src, id: m.ID}
	for p := t.pending[key]; p != nil; p = p.next {
		if p.q.Server == dst && p.q.QType == m.QType && equalFoldASCII(p.q.Name, m.Name) {
			// A retransmission: the earlier copy went unanswered.
			t.expire(p)
			break
		}
	}
	if len(t.heap) >= maxPending {
		t.expire(t.heap[0])
	}
	var p *pending
	if n := len(t.free); n > 0 {
		p = t.free[n-1]
		t.free = t.free[:n-1]
	} else {
		p = new(pending)
	}
	p.q = Query{
		TS:        ts,
		Transport: transport,
		Client:    src,
		Server:    dst,
		ID:        m.ID,
		Name:      m.Name,
		QType:     m.QType,
	}
	p.next = nil
	p.seq = t.seq
	t.seq++
	if head := t.pending[key]; head == nil {
		t.pending[key] = p
	} else {
		for head.next != nil {
			head = head.next
		}
		head.next = p
	}
	p.idx = len(t.heap)
	t.heap = append(t.heap, p)
	t.up(p.idx)
}

// match finds the oldest pending query that the response m from server to
// client answers.
func (t *Tracker) match(client, server Endpoint, m *Message) *pending {
	for p := t.pending[pendKey{client: client, id: m.ID}]; p != nil; p = p.next {
		if p.q.Server != server && !p.q.Server.IP.IsMulticast() {
			continue
		}
		if t.dec.hasQuestion && !t.dec.questionIs(p.q.Name) {
			continue
		}
		return p
	}
	return nil
}

// expire emits p as unanswered and forgets it.
func (t *Tracker) expire(p *pending) {
	t.remove(p)
	t.stats.Unanswered++
	t.row = p.q
	t.recycle(p)
	t.emit(&t.row)
}

func (t *Tracker) recycle(p *pending) {
	p.q = Query{}
	p.next = nil
	t.free = append(t.free, p)
}

// remove unlinks p from the lookup map and the heap.
func (t *Tracker) remove(p *pending) {
	key := pendKey{client: p.q.Client, id: p.q.ID}
	if head := t.pending[key]; head == p {
		if p.next == nil {
			delete(t.pending, key)
		} else {
			t.pending[key] = p.next
		}
	} else {
		for q := head; q != nil; q = q.next {
			if q.next == p {
				q.next = p.next
				break
			}
		}
	}
	i := p.idx
	last := len(t.heap) - 1
	if i != last {
		t.swap(i, last)
	}
	t.heap[last] = nil
	t.heap = t.heap[:last]
	if i != last {
		t.down(i)
		t.up(i)
	}
}

// Advance emits, in (TS, ID) order, every pending query that capture time
// ts has left more than the timeout behind.
func (t *Tracker) Advance(ts int64) {
	for len(t.heap) > 0 && ts-t.heap[0].q.TS > t.timeout {
		t.expire(t.heap[0])
	}
}

// Flush emits every pending query as unanswered, ordered by TS then ID
// (then arrival). Call it at the end of input.
func (t *Tracker) Flush() {
	for len(t.heap) > 0 {
		t.expire(t.heap[0])
	}
}

func (t *Tracker) less(i, j int) bool {
	a, b := t.heap[i], t.heap[j]
	if a.q.TS != b.q.TS {
		return a.q.TS < b.q.TS
	}
	if a.q.ID != b.q.ID {
		return a.q.ID < b.q.ID
	}
	return a.seq < b.seq
}

func (t *Tracker) swap(i, j int) {
	t.heap[i], t.heap[j] = t.heap[j], t.heap[i]
	t.heap[i].idx = i
	t.heap[j].idx = j
}

func (t *Tracker) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !t.less(i, parent) {
			return
		}
		t.swap(i, parent)
		i = parent
	}
}

func (t *Tracker) down(i int) {
	n := len(t.heap)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		c := l
		if r := l + 1; r < n && t.less(r, l) {
			c = r
		}
		if !t.less(c, i) {
			return
		}
		t.swap(i, c)
		i = c
	}
}
