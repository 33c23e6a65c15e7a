// Package tcp reassembles TCP connections from decoded packets: it orders
// segments, drops retransmitted and overlapping bytes, reports missing data as
// gaps, follows the connection through SYN/FIN/RST or an idle timeout, and
// hands each direction's in-order bytes to a StreamHandler. Memory is bounded
// per connection and in total; when a bound bites the data is skipped as a gap
// and counted.
package tcp

// Dir is the direction of bytes within a connection.
type Dir uint8

const (
	// ClientToServer is the direction of the connection's initiator (the
	// sender of the SYN, or the side judged to be the client when the
	// handshake was not captured).
	ClientToServer Dir = 0
	// ServerToClient is the other direction.
	ServerToClient Dir = 1
)

// Reverse returns the other direction.
func (d Dir) Reverse() Dir { return d ^ 1 }

func (d Dir) String() string {
	if d == ClientToServer {
		return "c2s"
	}
	return "s2c"
}

// StreamHandler consumes one connection's reassembled bytes. Calls for both
// directions are interleaved in capture order. Timestamps are Unix
// nanoseconds of the packet that completed the bytes. The slice passed to
// Data is only valid during the call.
type StreamHandler interface {
	// Data delivers the next in-order bytes of direction dir.
	Data(dir Dir, ts int64, b []byte)
	// Gap reports that n bytes of direction dir are missing before the next
	// Data call for that direction.
	Gap(dir Dir, ts int64, n int)
	// Close ends the connection; no further calls follow.
	Close(ts int64)
}
