package tlsdecrypt

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"

	"github.com/flowlake/flowlake/internal/keylog"
	"github.com/flowlake/flowlake/internal/tcp"
	"github.com/flowlake/flowlake/internal/tlsparse"
)

// stateVersion is bumped whenever the meaning of the serialized state
// changes; Restore refuses other versions.
const stateVersion = 1

// maxStateLen bounds the state Restore accepts: per direction a partial
// record, a partial handshake message, the held records and the handshake
// bytes of an RSA key exchange, plus the hello parser's own bounded state
// and room for gob's type descriptions.
const maxStateLen = 2*(5+tlsparse.MaxRecordLen+tlsparse.DefaultMaxHandshake+2*maxHeld+maxTranscript) + 1<<20

// Bounds of restored counters: the key updates and the RC4 key stream
// position are replayed on restore, so they bound its work.
const (
	maxKeyUpdates = 1 << 16
	maxStreamPos  = 1 << 36
)

// ErrBadState is returned by Restore for state it cannot use.
var ErrBadState = errors.New("tlsdecrypt: bad connection state")

// snapshot is the serialized Conn. It holds no secret and nothing derived
// from one: the keys are derived again from the key log on restore, from
// the client random (or, for an RSA line, the encrypted premaster
// secret's prefix and the session hash), the negotiated parameters and,
// per direction, the epoch, the key update count and the sequence number.
type snapshot struct {
	Version int
	// Meta is the hello parser's state while the hellos are read.
	Meta  []byte
	Hello *tlsparse.Hello
	// Ready tells that keys were found and the suite is supported;
	// AwaitKeys that the suite is supported and the keys are looked up at
	// the first encrypted record.
	Ready, AwaitKeys      bool
	Emitted               bool
	Out                   Outcome
	PlainAsked, PlainDone bool
	Failures              int
	Dirs                  [2]dirSnapshot
	// RSA is the RSA key exchange followed (see rsaKex), if any: public
	// handshake bytes, or the encrypted premaster secret's prefix and the
	// session hash.
	RSA *rsaSnapshot
}

type dirSnapshot struct {
	Stopped bool
	// Record and Handshake are the partial record and handshake message
	// held (ciphertext, and plaintext handshake data such as
	// certificates).
	Record, Handshake []byte
	Skip              int
	// Keyed is set when records are decrypted (rc != nil).
	Keyed bool
	Seq   uint64
	// StreamPos is the RC4 key stream position.
	StreamPos int64
	// ChainIV is the TLS 1.0 CBC IV of the next record: the last
	// ciphertext block of the previous one, public. Empty before the
	// first record, whose IV comes from the key block.
	ChainIV  []byte
	Epoch    uint8
	Gen      int
	TrialApp bool
	Trials   int
	OK       bool
	// Early is set when 0-RTT data was decrypted, EarlySeq its next
	// sequence number.
	Early    bool
	EarlySeq uint64
	Held     []heldRecord
}

// MarshalState serializes the connection state (partial records, the
// handshake progress, per-direction sequence numbers and key epochs)
// without any secret, so that Restore can continue the connection in
// another process. The plaintext handler's state is the caller's.
func (c *Conn) MarshalState() ([]byte, error) {
	snap := snapshot{Version: stateVersion, Hello: c.hello, Ready: c.ready, AwaitKeys: c.awaitKeys, Emitted: c.emitted, Out: c.out,
		PlainAsked: c.plainAsked, PlainDone: c.plainDone, Failures: c.failures, RSA: c.kx.snapshot()}
	if c.meta != nil {
		m, err := c.meta.MarshalState()
		if err != nil {
			return nil, fmt.Errorf("tlsdecrypt: marshal state: %w", err)
		}
		snap.Meta = m
	}
	for i := range c.dirs {
		d := &c.dirs[i]
		ds := &snap.Dirs[i]
		ds.Stopped, ds.OK, ds.Gen = d.stopped, d.ok, d.gen
		if d.stopped {
			continue
		}
		ds.Record = d.rr.AppendPending(nil)
		ds.Handshake = d.hs.AppendPending(nil)
		ds.Skip, ds.Epoch, ds.TrialApp, ds.Trials = d.skip, d.epoch, d.trialApp, d.trials
		ds.Held = d.held
		if rc := d.rc; rc != nil {
			ds.Keyed, ds.Seq, ds.StreamPos = true, rc.seq, rc.streamPos
			if rc.cbc != nil && rc.version < 0x0302 && rc.seq > 0 {
				ds.ChainIV = rc.iv
			}
		}
		if d.early != nil {
			ds.Early, ds.EarlySeq = true, d.early.seq
		}
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&snap); err != nil {
		return nil, fmt.Errorf("tlsdecrypt: marshal state: %w", err)
	}
	return buf.Bytes(), nil
}

// Restore returns a Conn that continues from state made by MarshalState.
// plain is the restored plaintext handler (nil if none had been asked
// for, or none wanted the plaintext). The keys are derived again from
// cfg.Keys; when they are no longer there the connection goes on
// undecrypted and, if its outcome was not emitted yet, reports
// StatusNoKeys. Corrupt or foreign state is refused with an error
// wrapping ErrBadState.
func Restore(cfg Config, state []byte, plain tcp.StreamHandler) (*Conn, error) {
	c, err := restore(cfg, state, plain)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadState, err)
	}
	return c, nil
}

func restore(cfg Config, state []byte, plain tcp.StreamHandler) (*Conn, error) {
	if len(state) > maxStateLen {
		return nil, fmt.Errorf("%d bytes, more than the bound %d", len(state), maxStateLen)
	}
	var snap snapshot
	r := bytes.NewReader(state)
	if err := gob.NewDecoder(r).Decode(&snap); err != nil {
		return nil, err
	}
	if r.Len() != 0 {
		return nil, fmt.Errorf("%d bytes after the state", r.Len())
	}
	if snap.Version != stateVersion {
		return nil, fmt.Errorf("version %d, want %d", snap.Version, stateVersion)
	}
	if err := validate(&snap); err != nil {
		return nil, err
	}
	c := &Conn{cfg: cfg}
	c.init()
	kx, err := restoreRSA(snap.RSA)
	if err != nil {
		return nil, err
	}
	c.kx = kx
	if snap.Meta != nil {
		m, err := tlsparse.RestoreStream(snap.Meta, c.onHello)
		if err != nil {
			return nil, err
		}
		c.meta = m
	}
	c.hello, c.emitted, c.out, c.failures = snap.Hello, snap.Emitted, snap.Out, snap.Failures
	c.plainAsked, c.plainDone, c.plain = snap.PlainAsked, snap.PlainDone, plain
	for i := range c.dirs {
		d := &c.dirs[i]
		ds := &snap.Dirs[i]
		d.ok, d.gen = ds.OK, ds.Gen
		if ds.Stopped {
			d.stopped = true
			continue
		}
		if err := refeed(&d.rr, ds.Record); err != nil {
			return nil, fmt.Errorf("direction %d: %w", i, err)
		}
		if err := d.hs.Feed(ds.Handshake, func(uint8, []byte) error { return errors.New("complete handshake message") }); err != nil {
			return nil, fmt.Errorf("direction %d: %w", i, err)
		}
		d.skip, d.epoch, d.trialApp, d.trials = ds.Skip, ds.Epoch, ds.TrialApp, ds.Trials
		d.held = ds.Held
		for _, h := range d.held {
			d.heldN += len(h.Frag)
		}
	}
	if snap.AwaitKeys {
		s := suites[c.hello.CipherSuite]
		c.s, c.version, c.awaitKeys = &s, c.hello.ServerVersion, true
		return c, nil
	}
	if !snap.Ready {
		return c, nil
	}
	// Derive the keys again, where each direction had got to.
	if !c.prepareKeys() {
		c.keysLost()
		return c, nil
	}
	for i := range c.dirs {
		d := &c.dirs[i]
		ds := &snap.Dirs[i]
		if d.stopped {
			continue
		}
		if err := d.rekey(ds); err != nil {
			if errors.Is(err, errNoSecret) {
				c.keysLost()
				return c, nil
			}
			return nil, fmt.Errorf("direction %d: %w", i, err)
		}
	}
	return c, nil
}

// errNoSecret reports a secret that the key log no longer holds.
var errNoSecret = errors.New("secret not in the key log")

// prepareKeys repeats the key lookup of prepare for a restored
// connection, without settling anything.
func (c *Conn) prepareKeys() bool {
	s := suites[c.hello.CipherSuite]
	c.s, c.version = &s, c.hello.ServerVersion
	if !c.lookupKeys() {
		return false
	}
	c.ready = true
	return true
}

// keysLost leaves a restored connection undecrypted: its keys are gone.
// If the outcome was not emitted, it is StatusNoKeys.
func (c *Conn) keysLost() {
	c.ready, c.secrets, c.keys12 = false, nil, [2]keyMaterial{}
	c.stopAll()
	c.settle(StatusNoKeys)
}

// rekey rebuilds the record cipher of a restored direction.
func (d *direction) rekey(ds *dirSnapshot) error {
	c := d.c
	if c.version != 0x0304 {
		if !ds.Keyed {
			return nil
		}
		rc, err := newRecordCipher(c.s, c.version, c.hello.EncryptThenMAC, c.keys12[d.dir])
		if err != nil {
			return err
		}
		rc.seq = ds.Seq
		if len(ds.ChainIV) > 0 {
			if len(ds.ChainIV) != len(rc.iv) {
				return fmt.Errorf("CBC IV of %d bytes", len(ds.ChainIV))
			}
			copy(rc.iv, ds.ChainIV)
		}
		rc.skipStream(ds.StreamPos)
		rc.streamPos = ds.StreamPos
		d.rc = rc
		return nil
	}
	hsLabel, appLabel := d.labels()
	switch ds.Epoch {
	case epochHandshake:
		secret := c.secrets[hsLabel]
		if secret == nil {
			return errNoSecret
		}
		if err := d.key13(secret); err != nil {
			return err
		}
	case epochApp:
		if c.secrets[appLabel] == nil {
			return errNoSecret
		}
		if err := d.switchApp(appLabel); err != nil {
			return err
		}
	}
	if d.rc != nil {
		d.rc.seq = ds.Seq
	}
	if ds.Early {
		secret := c.secrets[keylog.EarlyTrafficSecret]
		if secret == nil {
			return errNoSecret
		}
		km, err := trafficKeys13(c.s, secret)
		if err != nil {
			return err
		}
		if d.early, err = newRecordCipher(c.s, 0x0304, false, km); err != nil {
			return err
		}
		d.early.seq = ds.EarlySeq
	}
	return nil
}

// refeed recreates a record reader's state from its pending bytes.
func refeed(r *tlsparse.RecordReader, pending []byte) error {
	err := r.Feed(pending, func(tlsparse.Record) error { return errors.New("complete record") })
	if err != nil {
		return fmt.Errorf("record: %w", err)
	}
	return nil
}

// validate checks the invariants a Conn relies on, so that corrupt state
// cannot make it misbehave or hold more than a live Conn would.
func validate(s *snapshot) error {
	if s.Meta != nil && s.Hello != nil {
		return errors.New("hello both pending and decoded")
	}
	if h := s.Hello; h != nil {
		if h.ClientRandom != nil && len(h.ClientRandom) != 32 || h.ServerRandom != nil && len(h.ServerRandom) != 32 {
			return errors.New("bad random")
		}
	}
	if s.Ready && s.AwaitKeys {
		return errors.New("keyed and awaiting keys")
	}
	if s.Ready || s.AwaitKeys {
		h := s.Hello
		if h == nil || len(h.ClientRandom) != 32 || len(h.ServerRandom) != 32 {
			return errors.New("keyed without both randoms")
		}
		st, ok := suites[h.CipherSuite]
		if !ok || st.tls13 != (h.ServerVersion == 0x0304) || h.ServerVersion < 0x0301 || h.ServerVersion > 0x0304 {
			return errors.New("keyed with an unsupported suite or version")
		}
	}
	if s.Emitted && s.Hello == nil {
		return errors.New("outcome emitted without a hello")
	}
	for i := range s.Dirs {
		d := &s.Dirs[i]
		if d.Gen < 0 || d.Gen > maxKeyUpdates {
			return fmt.Errorf("direction %d: %d key updates", i, d.Gen)
		}
		if d.Stopped {
			continue
		}
		if len(d.Record) > 5+tlsparse.MaxRecordLen || len(d.Handshake) > tlsparse.DefaultMaxHandshake {
			return fmt.Errorf("direction %d: buffers over their bounds", i)
		}
		if d.Skip < 0 || d.Skip > tlsparse.MaxRecordLen || d.Trials < 0 || d.Trials > maxTrials ||
			d.Gen < 0 || d.Gen > maxKeyUpdates || d.StreamPos < 0 || d.StreamPos > maxStreamPos || d.Epoch > epochApp {
			return fmt.Errorf("direction %d: counters out of range", i)
		}
		n := 0
		for _, h := range d.Held {
			n += len(h.Frag)
		}
		if n > maxHeld {
			return fmt.Errorf("direction %d: %d bytes held, more than %d", i, n, maxHeld)
		}
		if (d.Keyed || d.Early || d.Epoch != epochNone) && !s.Ready {
			return fmt.Errorf("direction %d: keyed without keys", i)
		}
		if len(d.ChainIV) > 16 {
			return fmt.Errorf("direction %d: CBC IV of %d bytes", i, len(d.ChainIV))
		}
	}
	return nil
}

// ClientRandom returns the client random of a connection whose keys may
// still be needed: its ClientHello was decoded and it may have records
// left to decrypt. ok is false otherwise.
func (c *Conn) ClientRandom() (cr [32]byte, ok bool) {
	var b []byte
	switch {
	case c.meta != nil:
		b = c.meta.ClientRandom()
	case (c.ready || c.awaitKeys) && !(c.dirs[0].stopped && c.dirs[1].stopped):
		b = c.hello.ClientRandom
	}
	if len(b) != 32 {
		return cr, false
	}
	return [32]byte(b), true
}
