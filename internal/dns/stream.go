package dns

import (
	"strconv"

	"github.com/flowlake/flowlake/internal/tcp"
)

// Stream splits the two directions of a DNS-over-TCP connection into
// messages (RFC 1035 §4.2.2: each prefixed by a 2-byte length) and hands
// them to a Tracker. Messages may span Data calls. After a gap, or after a
// message that does not decode, the direction drops its partial message and
// resynchronises on the next offset that holds a plausible message; each
// such event is recorded as an error row.
//
// Stream implements tcp.StreamHandler.
type Stream struct {
	t              *Tracker
	client, server Endpoint
	dirs           [2]half
}

// maxRetained bounds the buffer capacity a direction keeps between calls
// once it holds no more than half of it.
const maxRetained = 256 << 10

// half is the framing state of one direction. The live bytes are
// buf[off:]: a message (with its length prefix) that spans Data calls, or,
// while resync is set, the bytes being scanned for a boundary. Consumed
// bytes before off are dropped lazily so that scanning stays linear.
type half struct {
	buf    []byte
	off    int
	resync bool
}

// live returns the bytes held.
func (h *half) live() []byte { return h.buf[h.off:] }

// set makes b (which must not alias buf) the live bytes.
func (h *half) set(b []byte) {
	h.buf = append(h.buf[:0], b...)
	h.off = 0
}

// compact drops the consumed prefix when it is at least as large as what
// is live, so that copying costs no more than the bytes consumed.
func (h *half) compact() {
	if h.off > 0 && h.off >= len(h.buf)-h.off {
		n := copy(h.buf, h.buf[h.off:])
		h.buf = h.buf[:n]
		h.off = 0
	}
	if cap(h.buf) > maxRetained && len(h.buf) <= maxRetained/2 {
		// A large Data call grew the buffer: give the memory back.
		h.buf = append([]byte(nil), h.buf...)
	}
}

// add appends b to the live bytes.
func (h *half) add(b []byte) {
	h.compact()
	h.buf = append(h.buf, b...)
}

var _ tcp.StreamHandler = (*Stream)(nil)

// NewStream returns the handler for one TCP connection between client (the
// initiator) and server, feeding t.
func NewStream(t *Tracker, client, server Endpoint) *Stream {
	return &Stream{t: t, client: client, server: server}
}

// endpoints returns source and destination for direction dir.
func (s *Stream) endpoints(dir tcp.Dir) (src, dst Endpoint) {
	if dir == tcp.ClientToServer {
		return s.client, s.server
	}
	return s.server, s.client
}

// Data delivers the next in-order bytes of direction dir.
func (s *Stream) Data(dir tcp.Dir, ts int64, b []byte) {
	if dir > tcp.ServerToClient {
		return
	}
	h := &s.dirs[dir]
	if !h.resync && len(h.live()) > 0 {
		// Complete the message that spans calls.
		if p := h.live(); len(p) < 2 {
			n := min(2-len(p), len(b))
			h.buf = append(h.buf, b[:n]...)
			b = b[n:]
			if len(h.live()) < 2 {
				return
			}
		}
		p := h.live()
		total := 2 + (int(p[0])<<8 | int(p[1]))
		n := min(total-len(p), len(b))
		h.buf = append(h.buf, b[:n]...)
		b = b[n:]
		p = h.live()
		if len(p) < total {
			return
		}
		ok := s.deliver(dir, ts, p[2:total])
		h.set(nil)
		if !ok {
			h.resync = true
		}
	}
	if !h.resync {
		rest, ok := s.frames(dir, ts, b)
		h.set(rest)
		if ok {
			return
		}
		h.resync = true
	} else {
		h.add(b)
	}
	for h.resync {
		i, found := findSync(h.live())
		h.off += i
		if !found {
			h.compact()
			return
		}
		h.resync = false
		rest, ok := s.frames(dir, ts, h.live())
		h.off = len(h.buf) - len(rest)
		if !ok {
			h.resync = true
		}
	}
}

// frames delivers the complete messages at the start of b. It returns the
// bytes after them, and ok false when a message did not decode (rest then
// starts after that message).
func (s *Stream) frames(dir tcp.Dir, ts int64, b []byte) (rest []byte, ok bool) {
	for len(b) >= 2 {
		total := 2 + (int(b[0])<<8 | int(b[1]))
		if len(b) < total {
			break
		}
		if !s.deliver(dir, ts, b[2:total]) {
			return b[total:], false
		}
		b = b[total:]
	}
	return b, true
}

// deliver passes one message to the tracker; it reports false when the
// message did not decode, which suggests the framing is lost.
func (s *Stream) deliver(dir tcp.Dir, ts int64, msg []byte) bool {
	src, dst := s.endpoints(dir)
	before := s.t.stats.Malformed
	s.t.Packet(ts, "tcp", src, dst, msg)
	return s.t.stats.Malformed == before
}

// findSync looks in b for an offset holding a plausible length-prefixed
// message. found reports a complete plausible message at i; otherwise the
// bytes before i cannot start a message, and from i on the candidate is
// either plausible but incomplete or too short to judge.
func findSync(b []byte) (i int, found bool) {
	for ; i+2+headerLen <= len(b); i++ {
		l := int(b[i])<<8 | int(b[i+1])
		if l < headerLen {
			continue
		}
		end := i + 2 + l
		if end <= len(b) {
			if looks(b[i+2:end], true) {
				return i, true
			}
			continue
		}
		if looks(b[i+2:], false) {
			return i, false
		}
	}
	return i, false
}

// Gap reports that n bytes of direction dir are missing: the partial
// message is dropped, an error row is emitted, and the direction
// resynchronises on the following bytes.
func (s *Stream) Gap(dir tcp.Dir, ts int64, n int) {
	if dir > tcp.ServerToClient {
		return
	}
	h := &s.dirs[dir]
	h.set(nil)
	if h.resync {
		return
	}
	h.resync = true
	s.t.framingError(ts, s.client, s.server, "dns/tcp: "+dir.String()+" gap of "+strconv.Itoa(n)+" bytes; resynchronising")
}

// Close ends the connection; a message cut short is recorded as an error
// row. The Tracker is not flushed (it outlives connections).
func (s *Stream) Close(ts int64) {
	for dir := tcp.ClientToServer; dir <= tcp.ServerToClient; dir++ {
		h := &s.dirs[dir]
		if p := h.live(); !h.resync && len(p) > 0 {
			want := 2
			if len(p) >= 2 {
				want += int(p[0])<<8 | int(p[1])
			}
			s.t.framingError(ts, s.client, s.server, "dns/tcp: "+dir.String()+" connection closed inside a message ("+
				strconv.Itoa(len(p))+" of "+strconv.Itoa(want)+" bytes)")
		}
		*h = half{}
	}
}
