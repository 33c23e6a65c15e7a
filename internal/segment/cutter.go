package segment

import (
	"fmt"
	"time"

	"github.com/gopacket/gopacket/layers"
)

// Default limits of a segment.
const (
	// DefaultMaxBytes is the default limit of captured bytes per segment.
	DefaultMaxBytes = 8 << 20
	// DefaultMaxSpan is the default limit of capture time per segment.
	DefaultMaxSpan = 10 * time.Second
)

// Cutter turns a stream of packets into consecutive segments, numbered from
// a first sequence number on. A segment is cut before the packet that would
// make it hold more than maxBytes captured bytes, or span more than maxSpan
// between its earliest and latest packet timestamps; a packet larger than
// maxBytes gets a segment of its own. The cut points depend only on the
// packets, never on the wall clock, so the same packets always give the same
// segments. A live source that wants segments closed after a quiet period
// calls Flush on its own timer.
//
// A Cutter is not safe for concurrent use.
type Cutter struct {
	agent    string
	stream   int
	seq      uint64
	maxBytes int64
	maxSpan  time.Duration
	source   string
	emit     func(data []byte, m Meta) error
	w        *Writer
	open     bool  // w holds the segment being filled
	err      error // sticky: an emit or encode failure
}

// NewCutter returns a Cutter for stream stream of agent whose first segment
// is firstSeq. maxBytes <= 0 means DefaultMaxBytes and maxSpan <= 0 means
// DefaultMaxSpan. emit receives each finished segment, in sequence order;
// it owns data. An error from emit stops the Cutter: Add and Flush return it
// from then on.
func NewCutter(agent string, stream int, firstSeq uint64, maxBytes int64, maxSpan time.Duration, source string, emit func(data []byte, m Meta) error) *Cutter {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	if maxSpan <= 0 {
		maxSpan = DefaultMaxSpan
	}
	return &Cutter{
		agent: agent, stream: stream, seq: firstSeq,
		maxBytes: maxBytes, maxSpan: maxSpan, source: source, emit: emit,
		w: NewWriter(agent, stream, firstSeq, source),
	}
}

// SetSource sets the Source recorded in the segments started from now on;
// the segment being filled keeps the source of its first packet.
func (c *Cutter) SetSource(source string) { c.source = source }

// NextSeq returns the sequence number of the segment being filled, or of the
// next one when none is: the number to resume from after a Flush.
func (c *Cutter) NextSeq() uint64 { return c.seq }

// Add adds a packet (see Writer.Add), first emitting the segment being
// filled when the packet would take it over a limit. An invalid packet is
// rejected with an error and leaves the Cutter usable.
func (c *Cutter) Add(ts int64, link layers.LinkType, data []byte, wireLen int) error {
	if c.err != nil {
		return c.err
	}
	if c.open {
		if err := c.w.checkPacket(ts, data); err != nil {
			return err
		}
		if c.w.Size()+int64(len(data)) > c.maxBytes || c.w.span(ts) > c.maxSpan {
			if err := c.Flush(); err != nil {
				return err
			}
		}
	}
	if !c.open {
		c.w.reset(c.agent, c.stream, c.seq, c.source)
	}
	if err := c.w.Add(ts, link, data, wireLen); err != nil {
		return err
	}
	c.open = true
	return nil
}

// Flush emits the segment being filled, if it holds any packet.
func (c *Cutter) Flush() error {
	if c.err != nil {
		return c.err
	}
	if !c.open || c.w.Len() == 0 {
		return nil
	}
	data, m, err := c.w.Finish()
	if err != nil {
		c.err = fmt.Errorf("cut segment: %w", err)
		return c.err
	}
	if err := c.emit(data, m); err != nil {
		c.err = fmt.Errorf("emit segment %d: %w", m.Seq, err)
		return c.err
	}
	c.open = false
	c.seq++
	return nil
}
