package agent

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/flowlake/flowlake/internal/agent/source"
	"github.com/flowlake/flowlake/internal/agent/spool"
	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/segment"
)

// counters are one stream's cumulative counters.
type counters struct {
	captured         atomic.Int64 // packets read from the source
	capturedBytes    atomic.Int64
	invalid          atomic.Int64 // packets a segment cannot hold (bad timestamp)
	overflow         atomic.Int64 // packets in segments dropped because the spool was full
	overflowSegments atomic.Int64
	segments         atomic.Int64 // segments cut and spooled
	segmentsUploaded atomic.Int64 // segments the store has (including ones it had already)
	segmentsExisting atomic.Int64 // of those, the ones the store had already
	bytesUploaded    atomic.Int64 // bytes of the uploaded segments (compressed)
	errors           atomic.Int64 // failed upload attempts, spool write errors, conflicts
	nextSeq          atomic.Uint64
}

// finished is a segment the cutter emitted, on its way to the spool.
type finished struct {
	data  []byte
	meta  segment.Meta
	cutAt time.Time
}

// Batches carry packets from the capture goroutine to the cutter.
const (
	batchPackets = 256
	batchBytes   = 256 << 10
	// queueBatches bounds the batches waiting for the cutter (up to 16 MiB
	// of packets per stream): beyond, the capture goroutine waits and the
	// kernel ring absorbs, then drops (and counts).
	queueBatches = 64
)

// batch is a run of packets copied out of the ring.
type batch struct {
	buf  []byte
	pkts []batchPacket
}

type batchPacket struct {
	ts       int64
	link     layers.LinkType
	wire     int
	off, n   int
	origin   string
	received time.Time // set on the first packet only
}

// item is what the cutter goroutine receives, in order.
type item struct {
	b     *batch    // packets
	tick  time.Time // close the open segment if it has been open for the span
	flush bool      // close the open segment
}

// stream segments one stream of packets. Three goroutines share it: the
// source's goroutine for the stream copies packets into batches (add),
// the cutter goroutine (cut) feeds them to the segment.Cutter, which
// compresses each finished segment, and the writer goroutine (Agent.write)
// puts finished segments into the spool. So neither compression nor disk
// latency stalls the reading of the kernel ring. The flush ticker sends
// ticks through the same queue, so that a segment that has been open for
// the span is closed however quiet the link (with wallClock; a tick also
// hands a partly filled batch to the cutter).
type stream struct {
	id        keys.Stream
	span      time.Duration
	wallClock bool // ticks close segments open for the span
	c         *counters

	mu  sync.Mutex // guards cur and the sending on in (which keeps items in order)
	cur *batch
	in  chan item

	pool sync.Pool // *batch

	// Used by the cutter goroutine only.
	cut      *segment.Cutter
	origin   string
	open     bool      // the cutter holds packets
	openedAt time.Time // when the first packet of the open segment was read

	out chan finished

	errMu sync.Mutex
	err   error // the cutter's failure: stops the capture
}

func newStream(id keys.Stream, firstSeq uint64, maxBytes int64, span time.Duration, c *counters) *stream {
	s := &stream{id: id, span: span, c: c, in: make(chan item, queueBatches), out: make(chan finished, 4)}
	s.cut = segment.NewCutter(id.Agent, id.Stream, firstSeq, maxBytes, span, "", func(data []byte, m segment.Meta) error {
		s.out <- finished{data, m, time.Now()}
		return nil
	})
	s.cur = s.newBatch()
	c.nextSeq.Store(firstSeq)
	return s
}

func (s *stream) newBatch() *batch {
	if b, ok := s.pool.Get().(*batch); ok {
		b.buf, b.pkts = b.buf[:0], b.pkts[:0]
		return b
	}
	return &batch{buf: make([]byte, 0, batchBytes+64<<10), pkts: make([]batchPacket, 0, batchPackets)}
}

func (s *stream) failed() error {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	return s.err
}

func (s *stream) fail(err error) {
	s.errMu.Lock()
	defer s.errMu.Unlock()
	if s.err == nil {
		s.err = fmt.Errorf("stream %d: %w", s.id.Stream, err)
	}
}

// add copies one packet into the current batch, handing the batch to the
// cutter when it is full. It runs on the source's goroutine for the
// stream. The error is the cutter's, which stops the capture; packets no
// segment can hold are counted and skipped.
func (s *stream) add(p *source.Packet) error {
	if err := s.failed(); err != nil {
		return err
	}
	if p.TS < 0 || len(p.Data) > segment.MaxPacketSize {
		s.c.invalid.Add(1)
		return nil
	}
	s.mu.Lock()
	b := s.cur
	bp := batchPacket{ts: p.TS, link: p.Link, wire: p.WireLen, off: len(b.buf), n: len(p.Data), origin: p.Origin}
	if len(b.pkts) == 0 {
		bp.received = time.Now()
	}
	b.buf = append(b.buf, p.Data...)
	b.pkts = append(b.pkts, bp)
	if len(b.pkts) >= batchPackets || len(b.buf) >= batchBytes {
		s.in <- item{b: b}
		s.cur = s.newBatch()
	}
	s.mu.Unlock()
	s.c.captured.Add(1)
	s.c.capturedBytes.Add(int64(len(p.Data)))
	return nil
}

// send hands the partial batch, then it, to the cutter.
func (s *stream) send(it item) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.cur.pkts) > 0 {
		s.in <- item{b: s.cur}
		s.cur = s.newBatch()
	}
	s.in <- it
}

// tick asks the cutter to close a segment that has been open for the span.
func (s *stream) tick(now time.Time) { s.send(item{tick: now}) }

// close hands everything to the cutter, which closes the open segment and
// then the out channel. add must not be called any more.
func (s *stream) close() {
	s.send(item{flush: true})
	s.mu.Lock()
	close(s.in)
	s.mu.Unlock()
}

// cutLoop runs the cutter until close; it closes out at the end.
func (s *stream) cutLoop() {
	defer close(s.out)
	for it := range s.in {
		if s.failed() != nil {
			continue // drain
		}
		switch {
		case it.b != nil:
			s.cutBatch(it.b)
			s.pool.Put(it.b)
		case it.flush:
			s.flush()
		case !it.tick.IsZero():
			if s.wallClock && s.open && it.tick.Sub(s.openedAt) >= s.span {
				s.flush()
			}
		}
	}
}

func (s *stream) cutBatch(b *batch) {
	received := b.pkts[0].received
	for _, p := range b.pkts {
		if p.origin != s.origin {
			s.cut.SetSource(p.origin)
			s.origin = p.origin
		}
		before := s.cut.NextSeq()
		if err := s.cut.Add(p.ts, p.link, b.buf[p.off:p.off+p.n], p.wire); err != nil {
			s.fail(err)
			return
		}
		if !s.open || s.cut.NextSeq() != before {
			s.open, s.openedAt = true, received
		}
	}
}

func (s *stream) flush() {
	s.open = false
	if err := s.cut.Flush(); err != nil {
		s.fail(err)
	}
}

// write puts the finished segments into the spool until out is closed,
// recording after each the next sequence number, so that a restarted agent
// goes on from there. A segment the spool has no room for is dropped and
// counted as overflow: its number stays used, and the parse side records
// the hole as a gap.
func (a *Agent) write(s *stream) {
	for f := range s.out {
		key := segment.Key(f.meta)
		a.waitForKeys(f.cutAt)
		a.spoolSecrets(s.id, f.meta.Seq, key, f.cutAt) // before the segment: see spoolSecrets
		err := a.spool.Put(key, f.data)
		switch {
		case err == nil:
			s.c.segments.Add(1)
		case errors.Is(err, spool.ErrFull):
			s.c.overflow.Add(f.meta.Packets)
			s.c.overflowSegments.Add(1)
			a.log.Warn("spool full: segment dropped (overflow)", "key", key, "packets", f.meta.Packets,
				"spool_bytes", a.spool.Bytes(""), "spool_max", a.spool.MaxBytes())
		default:
			s.c.overflow.Add(f.meta.Packets)
			s.c.overflowSegments.Add(1)
			s.c.errors.Add(1)
			a.log.Error("segment not written to the spool: dropped", "key", key, "packets", f.meta.Packets, "err", err)
		}
		if err := a.spool.SaveNextSeq(s.id, f.meta.Seq+1); err != nil {
			s.c.errors.Add(1)
			a.log.Error("next sequence number not saved", "stream", s.id.Stream, "err", err)
		}
		s.c.nextSeq.Store(f.meta.Seq + 1)
		if err == nil {
			a.up.Add(key)
			a.log.Debug("segment spooled", "key", key, "packets", f.meta.Packets, "bytes", len(f.data))
		}
	}
}
