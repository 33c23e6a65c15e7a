package tlsparse

import "errors"

// Record content types (RFC 8446 §5.1, RFC 6520).
const (
	RecordChangeCipherSpec uint8 = 20
	RecordAlert            uint8 = 21
	RecordHandshake        uint8 = 22
	RecordApplicationData  uint8 = 23
	RecordHeartbeat        uint8 = 24
)

// Handshake message types used here (RFC 8446 §4).
const (
	HandshakeHelloRequest uint8 = 0
	HandshakeClientHello  uint8 = 1
	HandshakeServerHello  uint8 = 2
)

// MaxRecordLen is the largest record fragment accepted: 2^14 plus the
// 2048 bytes of expansion TLS 1.2 allows for ciphertext (RFC 5246 §6.2.3).
const MaxRecordLen = 1<<14 + 2048

// DefaultMaxHandshake is the default bound of a HandshakeReader: the
// largest handshake message (with its 4-byte header) it will buffer.
const DefaultMaxHandshake = 64 << 10

var (
	// ErrNotTLS reports a record header with an unknown content type or a
	// version other than 3.x.
	ErrNotTLS = errors.New("not a TLS record")
	// ErrRecordTooLarge reports a record longer than MaxRecordLen.
	ErrRecordTooLarge = errors.New("TLS record too large")
	// ErrSSLv2 reports an SSLv2-compatible ClientHello (a 2-byte SSLv2
	// record header) at the start of a stream, which this package does not
	// decode.
	ErrSSLv2 = errors.New("SSLv2-compatible ClientHello")
	// ErrHandshakeTooLarge reports a handshake message larger than the
	// reader's bound.
	ErrHandshakeTooLarge = errors.New("handshake too large")
)

// Record is one TLS record. Fragment aliases the input or the reader's
// buffer and is only valid during the callback.
type Record struct {
	Type    uint8
	Version uint16
	// Fragment is the record payload (ciphertext once encryption is on).
	Fragment []byte
}

// RecordReader splits one direction of a TLS byte stream into records,
// across calls to Feed. Complete records inside one input slice are passed
// without copying; only a record that spans calls is buffered (at most
// MaxRecordLen bytes). The zero value is ready to use.
type RecordReader struct {
	hdr     [5]byte
	nhdr    int
	body    []byte
	started bool
	err     error
}

// Feed consumes b and calls fn for every record it completes, in order. It
// stops at the first error, from the framing or returned by fn, and returns
// it; the reader then stays failed and returns that error from every later
// call.
func (r *RecordReader) Feed(b []byte, fn func(Record) error) error {
	if r.err != nil {
		return r.err
	}
	for len(b) > 0 {
		if r.nhdr == 0 && len(b) >= 5 {
			// Fast path: a whole record at the start of b.
			n, err := r.check(b[:5])
			if err != nil {
				return r.fail(err)
			}
			if len(b) >= 5+n {
				r.started = true
				rec := Record{Type: b[0], Version: uint16(b[1])<<8 | uint16(b[2]), Fragment: b[5 : 5+n : 5+n]}
				b = b[5+n:]
				if err := fn(rec); err != nil {
					return r.fail(err)
				}
				continue
			}
		}
		if r.nhdr < 5 {
			c := copy(r.hdr[r.nhdr:], b)
			r.nhdr += c
			b = b[c:]
			if r.nhdr < 5 {
				return nil
			}
			if _, err := r.check(r.hdr[:]); err != nil {
				return r.fail(err)
			}
			r.started = true
			r.body = r.body[:0]
		}
		n := int(r.hdr[3])<<8 | int(r.hdr[4])
		c := min(n-len(r.body), len(b))
		r.body = append(r.body, b[:c]...)
		b = b[c:]
		if len(r.body) < n {
			return nil
		}
		r.nhdr = 0
		rec := Record{Type: r.hdr[0], Version: uint16(r.hdr[1])<<8 | uint16(r.hdr[2]), Fragment: r.body}
		if err := fn(rec); err != nil {
			return r.fail(err)
		}
	}
	return nil
}

// Buffered returns the number of bytes of an incomplete record held.
func (r *RecordReader) Buffered() int {
	if r.nhdr < 5 {
		return r.nhdr
	}
	return 5 + len(r.body)
}

// Err returns the error that stopped the reader, if any.
func (r *RecordReader) Err() error { return r.err }

// AppendPending appends the bytes of the incomplete record the reader
// holds (header, then the fragment so far) to dst. Feeding them to a new
// reader recreates this one's state, which is how a caller carries the
// reader across processes.
func (r *RecordReader) AppendPending(dst []byte) []byte {
	dst = append(dst, r.hdr[:r.nhdr]...)
	if r.nhdr == len(r.hdr) {
		dst = append(dst, r.body...)
	}
	return dst
}

func (r *RecordReader) fail(err error) error {
	r.err = err
	r.body = nil
	return err
}

// check validates a record header and returns the fragment length.
func (r *RecordReader) check(h []byte) (int, error) {
	if !r.started && h[0]&0x80 != 0 && h[2] == HandshakeClientHello {
		return 0, ErrSSLv2
	}
	if h[0] < RecordChangeCipherSpec || h[0] > RecordHeartbeat || h[1] != 3 || h[2] > 4 {
		return 0, ErrNotTLS
	}
	n := int(h[3])<<8 | int(h[4])
	if n > MaxRecordLen {
		return 0, ErrRecordTooLarge
	}
	return n, nil
}

// HandshakeReader reassembles handshake messages from the fragments of
// handshake records, which may split a message or hold several. Messages
// inside one fragment are passed without copying; a message that spans
// fragments is buffered up to Max bytes. The zero value is ready to use.
type HandshakeReader struct {
	// Max bounds a message with its 4-byte header; 0 means
	// DefaultMaxHandshake.
	Max int
	buf []byte
	err error
}

// Feed consumes one record fragment and calls fn with the type and body of
// every handshake message it completes (body is only valid during the
// call). Errors stop the reader as for RecordReader.Feed.
func (h *HandshakeReader) Feed(frag []byte, fn func(typ uint8, body []byte) error) error {
	if h.err != nil {
		return h.err
	}
	if len(h.buf) == 0 {
		rest, err := h.messages(frag, fn)
		if err != nil {
			return h.fail(err)
		}
		h.buf = append(h.buf[:0], rest...)
		return nil
	}
	// Complete the buffered message before appending anything else, so
	// the buffer never holds more than one message.
	if len(h.buf) < 4 {
		c := min(4-len(h.buf), len(frag))
		h.buf = append(h.buf, frag[:c]...)
		frag = frag[c:]
		if len(h.buf) < 4 {
			return nil
		}
	}
	total, err := h.size(h.buf)
	if err != nil {
		return h.fail(err)
	}
	c := min(total-len(h.buf), len(frag))
	h.buf = append(h.buf, frag[:c]...)
	frag = frag[c:]
	if len(h.buf) < total {
		return nil
	}
	if err := fn(h.buf[0], h.buf[4:total]); err != nil {
		return h.fail(err)
	}
	h.buf = h.buf[:0]
	rest, err := h.messages(frag, fn)
	if err != nil {
		return h.fail(err)
	}
	h.buf = append(h.buf, rest...)
	return nil
}

// Buffered returns the number of bytes of an incomplete message held.
func (h *HandshakeReader) Buffered() int { return len(h.buf) }

// AppendPending appends the bytes of the incomplete message the reader
// holds to dst; feeding them to a new reader recreates this one's state.
func (h *HandshakeReader) AppendPending(dst []byte) []byte { return append(dst, h.buf...) }

// messages passes the complete messages at the start of b to fn and
// returns the incomplete remainder.
func (h *HandshakeReader) messages(b []byte, fn func(uint8, []byte) error) ([]byte, error) {
	for len(b) >= 4 {
		total, err := h.size(b)
		if err != nil {
			return nil, err
		}
		if len(b) < total {
			break
		}
		if err := fn(b[0], b[4:total]); err != nil {
			return nil, err
		}
		b = b[total:]
	}
	return b, nil
}

// size returns the length of the message whose header starts b, header
// included, checking it against the bound.
func (h *HandshakeReader) size(b []byte) (int, error) {
	total := 4 + (int(b[1])<<16 | int(b[2])<<8 | int(b[3]))
	limit := h.Max
	if limit <= 0 {
		limit = DefaultMaxHandshake
	}
	if total > limit {
		return 0, ErrHandshakeTooLarge
	}
	return total, nil
}

func (h *HandshakeReader) fail(err error) error {
	h.err = err
	h.buf = nil
	return err
}
