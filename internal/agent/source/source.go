// Package source is where the capture agent's packets come from: an
// AF_PACKET capture of a live interface ([OpenAFPacket], Linux only) or the
// replay of capture files ([NewReplay]). Both split the traffic into K
// streams so that every packet of a TCP connection, both directions, lands
// in one stream, and both push packets to an [Emit] callback.
package source

import (
	"context"
	"errors"

	"github.com/gopacket/gopacket/layers"
)

// Packet is one captured frame. Data belongs to the source and is valid
// only during the Emit call that receives it.
type Packet struct {
	// TS is the capture time in Unix nanoseconds.
	TS int64
	// Link is the link type of Data.
	Link layers.LinkType
	// Data is the captured frame.
	Data []byte
	// WireLen is the length of the frame on the wire (>= len(Data)).
	WireLen int
	// Origin says where the packet came from, for the segment metadata:
	// "afpacket:<iface>" or "file:<name>".
	Origin string
}

// Emit receives the packets of stream stream (0 to Streams()-1). Calls for
// one stream are sequential and in capture order; calls for different
// streams may run concurrently. An error stops the source's Run.
type Emit func(stream int, p *Packet) error

// StreamStats are the cumulative counters of one stream.
type StreamStats struct {
	// Received counts the packets the kernel put in the stream's ring (or
	// the replay read for it), after the filter.
	Received int64
	// Dropped counts the packets the kernel dropped because the ring was
	// full.
	Dropped int64
	// QueueFreezes counts TPACKET_V3 ring freezes (a full ring).
	QueueFreezes int64
}

// Stats are a source's cumulative counters.
type Stats struct {
	Streams []StreamStats
	// Filtered counts the packets the filter rejected, over all streams
	// (the kernel decides the stream of a packet only for packets that
	// pass the filter).
	Filtered int64
	// FilteredKnown is false when the source cannot count rejected packets
	// (see the AF_PACKET source's doc); Filtered is then 0.
	FilteredKnown bool
}

// Source is a packet source.
type Source interface {
	// Interface names what is captured: the interface, or "pcap" for a
	// replay.
	Interface() string
	// Streams returns the number of streams, K.
	Streams() int
	// Run captures until ctx is done or the input ends (replay), calling
	// emit for each packet. It returns nil in both cases, and the first
	// error of the capture or of emit otherwise. Run is called once.
	Run(ctx context.Context, emit Emit) error
	// Stats returns the counters so far; it is safe to call during Run.
	Stats() Stats
	// Close releases the source; call it after Run has returned.
	Close() error
}

// Errors that OpenAFPacket wraps so that callers can explain them.
var (
	// ErrPermission: the process may not open AF_PACKET sockets
	// (CAP_NET_RAW is missing).
	ErrPermission = errors.New("no permission to capture")
	// ErrNoInterface: the interface does not exist.
	ErrNoInterface = errors.New("no such interface")
	// ErrUnsupported: capture is not possible on this system or interface.
	ErrUnsupported = errors.New("capture not supported")
)
