package tlsparse

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"

	"github.com/flowlake/flowlake/internal/tcp"
)

// errDone stops feeding a direction once its hello has been decoded.
var errDone = errors.New("hello decoded")

// Stream reads the handshake of one TCP connection and emits one Hello:
// as soon as both the ClientHello (client to server) and the ServerHello
// (server to client) are decoded, or, with what it has and Error set, on a
// gap or malformed data before that, or at Close. After emitting it ignores
// the rest of the connection. A connection that delivered no bytes at all
// emits nothing.
//
// Stream implements tcp.StreamHandler. It is not safe for concurrent use.
type Stream struct {
	emit func(*Hello)
	h    Hello
	dirs [2]direction
	ch   clientHello
	sh   serverHello
	ts   int64
	// seen is set by the first Data or Gap call; finished once the Hello
	// has been emitted.
	seen, finished bool
}

// direction is the parsing state of one side.
type direction struct {
	records     RecordReader
	handshake   HandshakeReader
	onRecord    func(Record) error
	onHandshake func(uint8, []byte) error
	// done is set once this side's hello is decoded: its later bytes are
	// not needed.
	done bool
}

var _ tcp.StreamHandler = (*Stream)(nil)

// NewStream returns the handler for one connection; emit receives the
// connection's Hello, which the Stream does not touch afterwards.
func NewStream(emit func(*Hello)) *Stream {
	if emit == nil {
		emit = func(*Hello) {}
	}
	s := &Stream{emit: emit}
	for i := range s.dirs {
		dir := tcp.Dir(i)
		d := &s.dirs[i]
		d.onRecord = func(r Record) error { return s.record(dir, r) }
		d.onHandshake = func(typ uint8, body []byte) error { return s.handshakeMessage(dir, typ, body) }
	}
	return s
}

// ClientRandom returns the ClientHello's random once it is decoded, nil
// before; the caller must not modify it.
func (s *Stream) ClientRandom() []byte { return s.h.ClientRandom }

// Data delivers the next in-order bytes of direction dir.
func (s *Stream) Data(dir tcp.Dir, ts int64, b []byte) {
	if s.finished || dir > tcp.ServerToClient || len(b) == 0 {
		return
	}
	s.seen = true
	d := &s.dirs[dir]
	if d.done {
		return
	}
	s.ts = ts
	err := d.records.Feed(b, d.onRecord)
	switch {
	case s.finished:
	case err == nil, errors.Is(err, errDone):
		if s.dirs[0].done && s.dirs[1].done {
			s.finish("")
		}
	default:
		s.finish(dir.String() + ": " + err.Error())
	}
}

// Gap reports n missing bytes in direction dir. A gap before that side's
// hello ends the parse with an error.
func (s *Stream) Gap(dir tcp.Dir, ts int64, n int) {
	if s.finished || dir > tcp.ServerToClient {
		return
	}
	s.seen = true
	if s.dirs[dir].done {
		return
	}
	s.finish(dir.String() + ": gap of " + strconv.Itoa(n) + " bytes before " + helloName(dir))
}

// Close ends the connection, emitting what was decoded if the Hello was
// not emitted yet.
func (s *Stream) Close(ts int64) {
	if s.finished || !s.seen {
		s.finished = true
		return
	}
	switch {
	case !s.h.SawClientHello && !s.h.SawServerHello:
		s.finish("connection closed before ClientHello and ServerHello")
	case !s.h.SawClientHello:
		s.finish("connection closed before ClientHello")
	default:
		s.finish("connection closed before ServerHello")
	}
}

func helloName(dir tcp.Dir) string {
	if dir == tcp.ClientToServer {
		return "ClientHello"
	}
	return "ServerHello"
}

// record handles one record of direction dir before its hello.
func (s *Stream) record(dir tcp.Dir, r Record) error {
	switch r.Type {
	case RecordHandshake:
		return s.dirs[dir].handshake.Feed(r.Fragment, s.dirs[dir].onHandshake)
	case RecordChangeCipherSpec, RecordHeartbeat:
		// Middlebox-compatibility CCS after a HelloRetryRequest; heartbeats.
		return nil
	case RecordAlert:
		if len(r.Fragment) >= 2 {
			return fmt.Errorf("alert %s before %s", alertName(r.Fragment[0], r.Fragment[1]), helloName(dir))
		}
		return fmt.Errorf("alert before %s", helloName(dir))
	default:
		return fmt.Errorf("application data before %s", helloName(dir))
	}
}

// handshakeMessage handles one handshake message of direction dir before
// its hello.
func (s *Stream) handshakeMessage(dir tcp.Dir, typ uint8, body []byte) error {
	d := &s.dirs[dir]
	if dir == tcp.ClientToServer {
		if typ != HandshakeClientHello {
			return fmt.Errorf("handshake message %d before ClientHello", typ)
		}
		s.h.SawClientHello = true
		s.h.ClientTS = s.ts
		if err := parseClientHello(body, &s.h, &s.ch); err != nil {
			return err
		}
		d.done = true
		return errDone
	}
	switch typ {
	case HandshakeHelloRequest:
		return nil
	case HandshakeServerHello:
		retry, err := parseServerHello(body, &s.h, &s.sh)
		if retry {
			// A HelloRetryRequest: the real ServerHello follows the
			// client's second ClientHello.
			return nil
		}
		s.h.SawServerHello = true
		s.h.ServerTS = s.ts
		if err != nil {
			return err
		}
		d.done = true
		return errDone
	}
	return fmt.Errorf("handshake message %d before ServerHello", typ)
}

// finish completes the Hello with errText and emits it.
func (s *Stream) finish(errText string) {
	s.finished = true
	if s.h.SawServerHello {
		if s.sh.tls13 {
			s.h.SessionResumed = s.sh.psk
		} else {
			s.h.SessionResumed = s.h.SawClientHello && s.ch.sessionIDLen > 0 &&
				bytes.Equal(s.ch.sessionID[:s.ch.sessionIDLen], s.sh.sessionID[:s.sh.sessionIDLen])
		}
	}
	s.h.Error = errText
	for i := range s.dirs {
		s.dirs[i] = direction{done: true}
	}
	s.emit(&s.h)
}

// alertName renders an alert's level and description (RFC 8446 §6).
func alertName(level, desc uint8) string {
	l := "warning"
	if level == 2 {
		l = "fatal"
	}
	if n, ok := alertDescriptions[desc]; ok {
		return l + " " + n
	}
	return l + " " + strconv.Itoa(int(desc))
}

var alertDescriptions = map[uint8]string{
	0: "close_notify", 10: "unexpected_message", 20: "bad_record_mac",
	22: "record_overflow", 40: "handshake_failure", 42: "bad_certificate",
	43: "unsupported_certificate", 44: "certificate_revoked",
	45: "certificate_expired", 46: "certificate_unknown",
	47: "illegal_parameter", 48: "unknown_ca", 49: "access_denied",
	50: "decode_error", 51: "decrypt_error", 70: "protocol_version",
	71: "insufficient_security", 80: "internal_error",
	86: "inappropriate_fallback", 90: "user_canceled",
	109: "missing_extension", 110: "unsupported_extension",
	112: "unrecognized_name", 113: "bad_certificate_status_response",
	115: "unknown_psk_identity", 116: "certificate_required",
	120: "no_application_protocol",
}
