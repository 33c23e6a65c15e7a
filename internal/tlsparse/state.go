package tlsparse

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"unicode/utf8"
)

// stateVersion is bumped whenever the meaning of the serialized state
// changes; RestoreStream refuses other versions.
const stateVersion = 1

// maxStateLen bounds the serialized state RestoreStream accepts: two
// directions each holding a partial record and a partial handshake message,
// the client's offered lists and names at their bounds, and room for gob's
// type descriptions.
const maxStateLen = 2*(5+MaxRecordLen+DefaultMaxHandshake) +
	maxListLen*(3*maxNameLen+4) + 2*maxListLen*4 + 2*3*maxNameLen + 4096

// ErrBadState is returned by RestoreStream for state it cannot use.
var ErrBadState = errors.New("tlsparse: bad stream state")

// The state is a gob stream of three values: the int stateVersion, a bool
// telling whether the Stream has finished (emitted its Hello, or was
// closed), and, only when it has not, a snapshot. Top-level basic values
// carry no type description, so the state of the many connections past
// their handshake is a few bytes, and the version is read before anything
// whose layout it governs.

// snapshot is the serialized form of a Stream that has not finished.
type snapshot struct {
	// Seen is set once the connection delivered bytes or a gap.
	Seen  bool
	Hello Hello
	// NoSuites tells an empty but non-nil Hello.CipherSuitesOffered (a
	// ClientHello offering only GREASE suites) from nil, which gob cannot.
	NoSuites bool
	// ClientSession and ServerSession are the hellos' session IDs; TLS13
	// and PSK what the ServerHello showed (see serverHello).
	ClientSession, ServerSession []byte
	TLS13, PSK                   bool
	Dirs                         [2]dirSnapshot
}

// dirSnapshot is the state of one direction.
type dirSnapshot struct {
	// Done is set once this side's hello was decoded; the fields below
	// are then empty.
	Done bool
	// Started is RecordReader.started.
	Started bool
	// Header holds the bytes of a record header that spans calls (at most
	// 5); Record the fragment bytes of the record whose header is complete.
	Header, Record []byte
	// Handshake holds the bytes of a handshake message that spans records.
	Handshake []byte
}

// MarshalState serializes the stream state (buffered record and handshake
// bytes, the Hello decoded so far, and whether it was emitted) with
// encoding/gob, so that parsing of the connection can continue in another
// process with RestoreStream. Once the Hello has been emitted the state
// is a few bytes.
func (s *Stream) MarshalState() ([]byte, error) {
	var buf bytes.Buffer
	enc := gob.NewEncoder(&buf)
	err := enc.Encode(stateVersion)
	if err == nil {
		err = enc.Encode(s.finished)
	}
	if err == nil && !s.finished {
		err = enc.Encode(s.snapshot())
	}
	if err != nil {
		return nil, fmt.Errorf("tlsparse: marshal state: %w", err)
	}
	return buf.Bytes(), nil
}

// snapshot returns the state of a stream that has not finished.
func (s *Stream) snapshot() *snapshot {
	snap := &snapshot{
		Seen:          s.seen,
		Hello:         s.h,
		NoSuites:      s.h.CipherSuitesOffered != nil && len(s.h.CipherSuitesOffered) == 0,
		ClientSession: s.ch.sessionID[:s.ch.sessionIDLen],
		ServerSession: s.sh.sessionID[:s.sh.sessionIDLen],
		TLS13:         s.sh.tls13,
		PSK:           s.sh.psk,
	}
	for i := range s.dirs {
		d := &s.dirs[i]
		ds := &snap.Dirs[i]
		ds.Done = d.done
		if d.done {
			// The readers stopped with errDone and are not fed again.
			continue
		}
		r := &d.records
		ds.Started = r.started
		ds.Header = r.hdr[:r.nhdr]
		if r.nhdr == len(r.hdr) {
			ds.Record = r.body
		}
		ds.Handshake = d.handshake.buf
	}
	return snap
}

// RestoreStream returns a Stream that continues from state produced by
// MarshalState, emitting its Hello (if it was not emitted before the state
// was taken) to emit. Corrupt or foreign state is refused with an error
// wrapping ErrBadState.
func RestoreStream(state []byte, emit func(*Hello)) (*Stream, error) {
	s, err := restoreStream(state, emit)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadState, err)
	}
	return s, nil
}

func restoreStream(state []byte, emit func(*Hello)) (*Stream, error) {
	if len(state) > maxStateLen {
		return nil, fmt.Errorf("%d bytes, more than the bound %d", len(state), maxStateLen)
	}
	r := bytes.NewReader(state)
	dec := gob.NewDecoder(r)
	var version int
	if err := dec.Decode(&version); err != nil {
		return nil, err
	}
	if version != stateVersion {
		return nil, fmt.Errorf("version %d, want %d", version, stateVersion)
	}
	var finished bool
	if err := dec.Decode(&finished); err != nil {
		return nil, err
	}
	var snap snapshot
	if !finished {
		if err := dec.Decode(&snap); err != nil {
			return nil, err
		}
	}
	// The decoder reads exactly the messages of the values from a
	// bytes.Reader, so anything left is not part of the state.
	if r.Len() != 0 {
		return nil, fmt.Errorf("%d bytes after the state", r.Len())
	}
	s := NewStream(emit)
	if finished {
		s.seen, s.finished = true, true
		for i := range s.dirs {
			s.dirs[i] = direction{done: true}
		}
		return s, nil
	}
	if err := validate(&snap); err != nil {
		return nil, err
	}
	s.seen = snap.Seen
	s.h = snap.Hello
	if snap.NoSuites {
		s.h.CipherSuitesOffered = []uint16{}
	}
	s.ch.sessionIDLen = copy(s.ch.sessionID[:], snap.ClientSession)
	s.sh.sessionIDLen = copy(s.sh.sessionID[:], snap.ServerSession)
	s.sh.tls13, s.sh.psk = snap.TLS13, snap.PSK
	for i := range s.dirs {
		d := &s.dirs[i]
		ds := &snap.Dirs[i]
		if ds.Done {
			// As the hello left it: both readers stopped.
			d.done = true
			d.records.err, d.handshake.err = errDone, errDone
			continue
		}
		rr := &d.records
		rr.started = ds.Started
		rr.nhdr = copy(rr.hdr[:], ds.Header)
		if len(ds.Record) > 0 {
			rr.body = bytes.Clone(ds.Record)
		}
		if len(ds.Handshake) > 0 {
			d.handshake.buf = bytes.Clone(ds.Handshake)
		}
	}
	return s, nil
}

// isZeroDir reports whether d is the state of a direction that saw nothing.
func isZeroDir(d *dirSnapshot) bool {
	return !d.Done && !d.Started && len(d.Header) == 0 && len(d.Record) == 0 && len(d.Handshake) == 0
}

// isZeroHello reports whether h is the Hello of a stream that decoded nothing.
func isZeroHello(h *Hello) bool {
	return isZeroClient(h) && isZeroServer(h) && !h.SessionResumed && h.Error == ""
}

// isZeroClient reports whether h has no field that a ClientHello sets.
func isZeroClient(h *Hello) bool {
	return !h.SawClientHello && h.ClientRandom == nil && h.SNI == "" && h.ALPNOffered == nil &&
		h.OfferedVersions == nil && h.CipherSuitesOffered == nil && h.ClientTS == 0
}

// isZeroServer reports whether h has no field that a ServerHello sets.
func isZeroServer(h *Hello) bool {
	return !h.SawServerHello && h.ServerVersion == 0 && h.CipherSuite == 0 && h.ALPN == "" && h.ServerTS == 0 &&
		h.ServerRandom == nil && !h.EncryptThenMAC && !h.ExtendedMasterSecret
}

// validate checks the invariants the Stream relies on, and the bounds its
// parsing keeps, so that corrupt or foreign state cannot make it
// misbehave or hold more memory than a live Stream would.
func validate(snap *snapshot) error {
	h := &snap.Hello
	if !snap.Seen && !(isZeroHello(h) && !snap.NoSuites && isZeroDir(&snap.Dirs[0]) && isZeroDir(&snap.Dirs[1])) {
		return errors.New("parsing state before any bytes")
	}
	if h.SessionResumed || h.Error != "" {
		return errors.New("Hello completed but not emitted")
	}
	if snap.Dirs[0].Done && snap.Dirs[1].Done {
		return errors.New("both hellos decoded but not emitted")
	}
	// A side is done exactly when its hello was decoded.
	if h.SawClientHello != snap.Dirs[0].Done || h.SawServerHello != snap.Dirs[1].Done {
		return errors.New("hello flags disagree with the directions")
	}
	if !h.SawClientHello && (!isZeroClient(h) || snap.NoSuites || len(snap.ClientSession) > 0) {
		return errors.New("ClientHello fields without a ClientHello")
	}
	if !h.SawServerHello && (!isZeroServer(h) || len(snap.ServerSession) > 0 || snap.TLS13 || snap.PSK) {
		return errors.New("ServerHello fields without a ServerHello")
	}
	if h.ClientRandom != nil && len(h.ClientRandom) != 32 {
		return fmt.Errorf("client random of %d bytes", len(h.ClientRandom))
	}
	if h.ServerRandom != nil && len(h.ServerRandom) != 32 {
		return fmt.Errorf("server random of %d bytes", len(h.ServerRandom))
	}
	if snap.NoSuites && len(h.CipherSuitesOffered) > 0 {
		return errors.New("cipher suites both empty and not")
	}
	if len(snap.ClientSession) > 32 || len(snap.ServerSession) > 32 {
		return errors.New("session ID longer than 32 bytes")
	}
	if len(h.CipherSuitesOffered) > maxListLen || len(h.OfferedVersions) > maxListLen || len(h.ALPNOffered) > maxListLen {
		return errors.New("offered list over its bound")
	}
	if !validName(h.SNI) || !validName(h.ALPN) {
		return errors.New("bad name")
	}
	for _, p := range h.ALPNOffered {
		if !validName(p) {
			return errors.New("bad ALPN protocol")
		}
	}
	for i := range snap.Dirs {
		if err := validateDir(&snap.Dirs[i]); err != nil {
			return fmt.Errorf("direction %d: %w", i, err)
		}
	}
	return nil
}

// validName reports whether s could have come from text: valid UTF-8 of
// at most maxNameLen input bytes, where each invalid input byte may have
// become a 3-byte U+FFFD.
func validName(s string) bool {
	return len(s) <= 3*maxNameLen && utf8.ValidString(s)
}

// validateDir checks the buffered bytes of one direction: at most one
// incomplete record and one incomplete handshake message, within their
// bounds, as the readers leave them between calls.
func validateDir(d *dirSnapshot) error {
	if d.Done {
		if d.Started || len(d.Header) > 0 || len(d.Record) > 0 || len(d.Handshake) > 0 {
			return errors.New("buffered bytes after the hello")
		}
		return nil
	}
	if len(d.Header) > 5 {
		return fmt.Errorf("record header of %d bytes", len(d.Header))
	}
	if len(d.Header) < 5 {
		if len(d.Record) > 0 {
			return errors.New("record bytes without a complete header")
		}
	} else {
		if !d.Started {
			return errors.New("complete record header before the start")
		}
		var r RecordReader
		r.started = true
		n, err := r.check(d.Header)
		if err != nil {
			return fmt.Errorf("record header: %w", err)
		}
		if len(d.Record) >= n {
			return fmt.Errorf("%d bytes buffered of a %d-byte record", len(d.Record), n)
		}
	}
	if len(d.Handshake) > 0 && !d.Started {
		return errors.New("handshake bytes before the first record")
	}
	if b := d.Handshake; len(b) >= 4 {
		var hr HandshakeReader
		total, err := hr.size(b)
		if err != nil {
			return fmt.Errorf("handshake message: %w", err)
		}
		if len(b) >= total {
			return fmt.Errorf("%d bytes buffered of a %d-byte handshake message", len(b), total)
		}
	}
	return nil
}
