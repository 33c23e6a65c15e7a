package tlsdecrypt

import (
	"errors"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"

	"github.com/flowlake/flowlake/internal/keylog"
	"github.com/flowlake/flowlake/internal/tcp"
	"github.com/flowlake/flowlake/internal/tlsparse"
)

// Key statuses of Outcome.KeyStatus (the tls table's key_status column).
const (
	// StatusNoClientHello: the ClientHello was not captured, so there is
	// no client random to look the keys up by.
	StatusNoClientHello = "no-client-hello"
	// StatusNoKeys: the key log holds no secrets for this session.
	StatusNoKeys = "no-keys"
	// StatusKeysAvailable: secrets are logged, but no encrypted record was
	// decrypted: the connection ended, or data was lost, before one, or
	// the ServerHello was not captured, or (an RSA line with the extended
	// master secret) handshake messages the master secret depends on were
	// not captured.
	StatusKeysAvailable = "keys-available"
	// StatusDecrypted: records were decrypted and authenticated with the
	// logged secrets.
	StatusDecrypted = "decrypted"
	// StatusDecryptFailed: secrets are logged, but the records did not
	// authenticate with them (wrong or foreign keys, corrupt data).
	StatusDecryptFailed = "decrypt-failed"
	// StatusUnsupported: the negotiated version or cipher suite is one
	// this package does not decrypt (SSL 3.0, CCM, Camellia, NULL …).
	StatusUnsupported = "unsupported"
)

// Outcome is what decryption tells about a connection, next to its Hello.
type Outcome struct {
	KeyStatus string
	Decrypted bool
	// ALPN is the protocol the server selected in its encrypted
	// extensions (TLS 1.3, when decrypted); empty otherwise.
	ALPN string
}

// Buffer is the plaintext buffer of one decrypted record. One Buffer can
// serve every Conn driven by one goroutine, as the plaintext is handed on
// before Data returns.
type Buffer struct{ b []byte }

// Config wires a Conn to its surroundings.
type Config struct {
	// Keys is the key log the secrets are looked up in, by client random
	// (or, for an RSA key exchange, by the encrypted premaster secret);
	// nil means no keys. A master secret derived from an RSA line is added
	// to it (keylog.Log.Add) as the session's CLIENT_RANDOM secret, so a
	// Keys log must not be used by Conns of several goroutines at once.
	Keys *keylog.Log
	// Emit receives the handshake metadata and the decryption outcome,
	// once per connection: as soon as the outcome is known (the first
	// encrypted server record, or at once when there are no keys), else at
	// Close. The Hello must not be kept.
	Emit func(*tlsparse.Hello, *Outcome)
	// Plain is asked, once the connection decrypts, for the handler of
	// its application data, given the negotiated ALPN protocol. It returns
	// nil when the plaintext is not wanted (say, HTTP/2), and decryption
	// then stops. A handler that implements Done() bool and returns true
	// also stops it.
	Plain func(alpn string) tcp.StreamHandler
	// Buffer is shared plaintext space; nil gives the Conn its own.
	Buffer *Buffer
}

// epochs of a TLS 1.3 direction.
const (
	epochNone uint8 = iota
	epochHandshake
	epochApp
)

// Bounds.
const (
	// maxHeld bounds the record bytes held per direction while the
	// hellos are not both decoded (TLS 1.3 early data, reordering).
	maxHeld = 64 << 10
	// maxTrials bounds the records skipped while trying keys: early data
	// the server rejected, handshake records without handshake secrets.
	maxTrials = 32
)

// errStop ends the processing of a direction without an error to report.
var errStop = errors.New("stop")

// Conn decrypts the TLS of one TCP connection: it reads the handshake
// metadata (with tlsparse), looks the session's secrets up in the key log
// by client random, decrypts each direction's records with their sequence
// numbers, follows the handshake (TLS 1.2 ChangeCipherSpec; TLS 1.3
// handshake and application traffic keys, KeyUpdate) and passes the
// application data to the Plain handler. Records are reassembled across
// TCP segments and across calls; a gap inside a record loses that record
// only.
//
// Conn implements tcp.StreamHandler. It is not safe for concurrent use.
type Conn struct {
	cfg  Config
	meta *tlsparse.Stream // reads the hellos; nil once they are decoded
	// hello is the Hello once meta emitted it.
	hello   *tlsparse.Hello
	out     Outcome
	emitted bool
	// ready is set when the suite is supported and secrets are logged;
	// awaitKeys while the suite is supported but the secrets were not
	// logged yet.
	ready, awaitKeys bool
	s                *suite
	version          uint16
	secrets          keylog.Secrets
	keys12           [2]keyMaterial
	dirs             [2]direction
	plain            tcp.StreamHandler
	// plainAsked is set once Plain was called; plainDone when its handler
	// wants nothing more.
	plainAsked, plainDone bool
	ts                    int64
	buf                   *Buffer
	// Failures counts records that did not authenticate after the outcome
	// was emitted.
	failures int
	// kx follows an RSA key exchange whose secrets may come from an RSA
	// line: from the start until the ServerHello tells whether that is
	// needed; nil when it is not.
	kx *rsaKex
}

// direction is the state of one side.
type direction struct {
	c   *Conn
	dir tcp.Dir
	rr  tlsparse.RecordReader
	hs  tlsparse.HandshakeReader
	rc  *recordCipher // nil while records are plaintext
	// early decrypts TLS 1.3 0-RTT data (client, with an early secret).
	early *recordCipher
	epoch uint8
	gen   int // TLS 1.3 key updates applied
	// trialApp is set in TLS 1.3 while the handshake traffic key cannot be
	// followed (no secret logged, or a record lost): records that fail are
	// tried with the application key, and skipped.
	trialApp bool
	trials   int
	ok       bool // a record of this direction authenticated
	stopped  bool
	// skip is how many bytes of a record partly lost to a gap are still to
	// come and be dropped.
	skip int
	// held records wait for the hellos.
	held  []heldRecord
	heldN int

	onRecord    func(tlsparse.Record) error
	onHandshake func(uint8, []byte) error
}

type heldRecord struct {
	Type    uint8
	Version uint16
	Frag    []byte
}

var _ tcp.StreamHandler = (*Conn)(nil)

// NewConn returns the handler of one connection.
func NewConn(cfg Config) *Conn {
	c := &Conn{cfg: cfg, kx: &rsaKex{}}
	c.init()
	c.meta = tlsparse.NewStream(c.onHello)
	return c
}

func (c *Conn) init() {
	if c.cfg.Emit == nil {
		c.cfg.Emit = func(*tlsparse.Hello, *Outcome) {}
	}
	c.buf = c.cfg.Buffer
	if c.buf == nil {
		c.buf = &Buffer{}
	}
	for i := range c.dirs {
		d := &c.dirs[i]
		d.c, d.dir = c, tcp.Dir(i)
		d.onRecord = d.record
		d.onHandshake = d.handshake
	}
}

// Data delivers the next in-order bytes of direction dir.
func (c *Conn) Data(dir tcp.Dir, ts int64, b []byte) {
	if dir > tcp.ServerToClient || len(b) == 0 {
		return
	}
	c.ts = ts
	if c.meta != nil {
		c.meta.Data(dir, ts, b)
	}
	d := &c.dirs[dir]
	if d.stopped {
		return
	}
	if d.skip > 0 {
		n := min(d.skip, len(b))
		d.skip -= n
		b = b[n:]
		if len(b) == 0 {
			return
		}
	}
	if err := d.rr.Feed(b, d.onRecord); err != nil {
		d.stop()
	}
}

// Gap reports n missing bytes in direction dir.
func (c *Conn) Gap(dir tcp.Dir, ts int64, n int) {
	if dir > tcp.ServerToClient {
		return
	}
	c.ts = ts
	if c.meta != nil {
		c.meta.Gap(dir, ts, n)
	}
	d := &c.dirs[dir]
	if d.stopped {
		return
	}
	if c.kx != nil && d.rc == nil {
		c.kx.lose(dir) // handshake bytes may be lost
	}
	if d.skip > 0 {
		if n < d.skip {
			d.skip -= n
			return
		}
		d.stop() // the next record header is lost too
		return
	}
	// A gap inside a record whose header arrived loses that record only:
	// the next one starts where it ends.
	p := d.rr.AppendPending(c.buf.b[:0])
	if len(p) < 5 {
		d.stop()
		return
	}
	size := int(p[3])<<8 | int(p[4])
	rest := size - (len(p) - 5)
	if n >= rest {
		d.stop()
		return
	}
	d.skip = rest - n
	d.rr = tlsparse.RecordReader{}
	d.lost(p[0], size)
}

// lost accounts for a record of the given type and size lost to a gap.
func (d *direction) lost(typ uint8, size int) {
	c := d.c
	if d.rc == nil {
		if typ != tlsparse.RecordApplicationData || !c.ready || c.version != 0x0304 {
			return // plaintext
		}
		// The first encrypted record of TLS 1.3.
		if err := d.start13(); err != nil {
			d.stop()
			return
		}
	}
	if d.rc.cbc != nil && d.rc.version < 0x0302 {
		d.stop() // the next record's IV was in this one
		return
	}
	if d.rc.tls13 && d.trialApp && !d.ok {
		return // under a key not followed: it does not count
	}
	d.rc.seq++
	d.rc.skipStream(int64(size))
	d.hs = tlsparse.HandshakeReader{}
	if d.rc.tls13 && d.epoch == epochHandshake {
		d.trialApp = true // the Finished may have been in it
	}
	if c.plain != nil && !c.plainDone {
		c.plain.Gap(d.dir, c.ts, max(size-overhead(d.rc), 1))
	}
}

// overhead estimates the bytes a record adds to its plaintext.
func overhead(rc *recordCipher) int {
	switch {
	case rc.aead != nil && rc.tls13:
		return rc.aead.Overhead() + 1
	case rc.aead != nil && rc.s.kind == kindGCM:
		return rc.aead.Overhead() + 8
	case rc.aead != nil:
		return rc.aead.Overhead()
	case rc.cbc != nil:
		return rc.macLen + 2*rc.cbc.BlockSize()
	}
	return rc.macLen
}

// Close ends the connection.
func (c *Conn) Close(ts int64) {
	c.ts = ts
	if c.meta != nil {
		c.meta.Close(ts)
		c.meta = nil
	}
	if !c.emitted && c.hello != nil {
		switch {
		case c.dirs[0].ok || c.dirs[1].ok:
			c.settle(StatusDecrypted)
		case c.ready, c.awaitKeys && c.lookupKeys():
			c.settle(StatusKeysAvailable)
		case c.awaitKeys:
			c.settle(c.noKeysStatus())
		}
	}
	if c.plain != nil {
		c.plain.Close(ts)
	}
	for i := range c.dirs {
		c.dirs[i].stop()
	}
}

// onHello receives the Hello from tlsparse and sets up decryption.
func (c *Conn) onHello(h *tlsparse.Hello) {
	c.hello = h
	c.meta = nil
	ok := c.prepare()
	if !ok || !c.awaitKeys || !c.s.rsaKex {
		c.kx = nil // no RSA key exchange to follow
	}
	if !ok {
		c.stopAll()
		return
	}
	for i := range c.dirs {
		d := &c.dirs[i]
		held := d.held
		d.held, d.heldN = nil, 0
		for _, r := range held {
			if d.stopped {
				break
			}
			if err := d.record(tlsparse.Record{Type: r.Type, Version: r.Version, Fragment: r.Frag}); err != nil {
				d.stop()
			}
		}
	}
}

// prepare checks the hellos and the suite and looks the secrets up; it
// settles the outcome and returns false when the connection cannot be
// decrypted. Secrets not logged yet are looked up again at the first
// encrypted record (awaitKeys), as key logs are often written after the
// hellos.
func (c *Conn) prepare() bool {
	h := c.hello
	if !h.SawClientHello || len(h.ClientRandom) != 32 {
		c.settle(StatusNoClientHello)
		return false
	}
	if !h.SawServerHello || len(h.ServerRandom) != 32 {
		if c.cfg.Keys != nil {
			if _, ok := c.cfg.Keys.Lookup(h.ClientRandom); ok {
				c.settle(StatusKeysAvailable)
				return false
			}
		}
		c.settle(StatusNoKeys)
		return false
	}
	c.version = h.ServerVersion
	s, known := suites[h.CipherSuite]
	tls13 := c.version == 0x0304
	if !known || s.tls13 != tls13 || c.version < 0x0301 || c.version > 0x0304 {
		if c.lookupKeys() {
			c.settle(StatusUnsupported)
		} else {
			c.settle(StatusNoKeys)
		}
		c.secrets = nil
		return false
	}
	c.s = &s
	if !c.lookupKeys() {
		c.awaitKeys = true
		return true
	}
	c.ready = true
	return true
}

// lookupKeys looks the session's secrets up and, for TLS 1.2 and
// earlier, expands the key block. It reports whether the secrets the
// version needs are logged. The suite need not be supported.
func (c *Conn) lookupKeys() bool {
	h := c.hello
	if c.cfg.Keys == nil {
		return false
	}
	secrets, _ := c.cfg.Keys.Lookup(h.ClientRandom)
	var ok bool
	if h.ServerVersion == 0x0304 {
		ok = secrets[keylog.ClientTrafficSecret0] != nil || secrets[keylog.ServerTrafficSecret0] != nil ||
			secrets[keylog.ClientHandshakeTrafficSecret] != nil || secrets[keylog.ServerHandshakeTrafficSecret] != nil
	} else {
		ok = secrets[keylog.ClientRandom] != nil
		if !ok {
			if master := c.rsaMaster(); master != nil {
				c.cfg.Keys.Add(keylog.ClientRandom, [32]byte(h.ClientRandom), master)
				secrets, ok = c.cfg.Keys.Lookup(h.ClientRandom)
			}
		}
	}
	if !ok {
		return false
	}
	c.secrets = secrets
	if c.s != nil && h.ServerVersion != 0x0304 {
		c.keys12[0], c.keys12[1] = keyBlock12(c.s, h.ServerVersion, secrets[keylog.ClientRandom], h.ClientRandom, h.ServerRandom)
	}
	return true
}

// settle emits the Hello with the outcome, once.
func (c *Conn) settle(status string) {
	if c.emitted || c.hello == nil {
		return
	}
	c.emitted = true
	c.out.KeyStatus = status
	c.out.Decrypted = status == StatusDecrypted
	c.cfg.Emit(c.hello, &c.out)
	if c.out.Decrypted {
		c.askPlain()
	}
}

// askPlain asks for the plaintext handler; without one, decryption stops.
func (c *Conn) askPlain() {
	if c.plainAsked {
		return
	}
	c.plainAsked = true
	alpn := c.out.ALPN
	if alpn == "" {
		alpn = c.hello.ALPN
	}
	if c.cfg.Plain != nil {
		c.plain = c.cfg.Plain(alpn)
	}
	if c.plain == nil {
		c.plainDone = true
		c.stopAll()
	}
}

func (c *Conn) stopAll() {
	for i := range c.dirs {
		c.dirs[i].stop()
	}
}

func (d *direction) stop() {
	d.stopped = true
	d.rr = tlsparse.RecordReader{}
	d.hs = tlsparse.HandshakeReader{}
	d.held, d.heldN, d.skip = nil, 0, 0
	d.rc, d.early = nil, nil
}

// hold keeps a record until the hellos are decoded.
func (d *direction) hold(r tlsparse.Record) error {
	if d.heldN+len(r.Fragment) > maxHeld {
		return errStop
	}
	d.held = append(d.held, heldRecord{r.Type, r.Version, append([]byte(nil), r.Fragment...)})
	d.heldN += len(r.Fragment)
	return nil
}

// record handles one record of the direction.
func (d *direction) record(r tlsparse.Record) error {
	c := d.c
	if d.stopped {
		return errStop
	}
	if c.hello == nil {
		if len(d.held) == 0 {
			switch r.Type {
			case tlsparse.RecordHandshake, tlsparse.RecordAlert, tlsparse.RecordHeartbeat:
				d.plainHandshake(r)
				return nil // plaintext; tlsparse reads the hellos
			}
		}
		// A ChangeCipherSpec or encrypted data, and everything after it,
		// waits for the hellos.
		return d.hold(r)
	}
	if !c.ready {
		if !c.awaitKeys {
			return errStop
		}
		encrypted := r.Type == tlsparse.RecordApplicationData || r.Type == tlsparse.RecordChangeCipherSpec && c.version != 0x0304
		if !encrypted {
			d.plainHandshake(r)
			return nil
		}
		c.awaitKeys = false
		if !c.lookupKeys() {
			c.settle(c.noKeysStatus())
			c.kx = nil
			c.stopAll()
			return errStop
		}
		c.ready = true
	}
	if c.version == 0x0304 {
		return d.record13(r)
	}
	return d.record12(r)
}

// record12 handles a record of TLS 1.0–1.2.
func (d *direction) record12(r tlsparse.Record) error {
	c := d.c
	if d.rc == nil {
		switch r.Type {
		case tlsparse.RecordChangeCipherSpec:
			rc, err := newRecordCipher(c.s, c.version, c.hello.EncryptThenMAC, c.keys12[d.dir])
			if err != nil {
				return d.fail()
			}
			d.rc = rc
			return nil
		case tlsparse.RecordApplicationData:
			return errStop // application data before ChangeCipherSpec
		}
		return nil // plaintext handshake, alert, heartbeat
	}
	pt, typ, err := d.rc.open(d.buffer(len(r.Fragment)), r.Type, r.Version, r.Fragment)
	if err != nil {
		return d.fail()
	}
	if d.rc.streamPos > maxStreamPos {
		return errStop // beyond what a checkpoint restores
	}
	d.succeeded()
	switch typ {
	case tlsparse.RecordHandshake:
		d.feedHandshake(pt)
	case tlsparse.RecordApplicationData:
		d.deliver(pt)
	case tlsparse.RecordChangeCipherSpec:
		return errStop // renegotiation: the new keys are not followed
	}
	if d.dir == tcp.ServerToClient || c.dirs[tcp.ServerToClient].stopped {
		c.settle(StatusDecrypted)
	}
	return d.after()
}

// record13 handles a record of TLS 1.3.
func (d *direction) record13(r tlsparse.Record) error {
	c := d.c
	if r.Type != tlsparse.RecordApplicationData {
		// Plaintext hellos, the compatibility ChangeCipherSpec, and
		// alerts sent before keys.
		return nil
	}
	if d.epoch == epochNone {
		if err := d.start13(); err != nil {
			return d.fail()
		}
	}
	pt, typ, err := d.rc.open(d.buffer(len(r.Fragment)), r.Type, r.Version, r.Fragment)
	if err != nil {
		pt, typ, err = d.retry13(r)
		if err != nil {
			return err
		}
		if pt == nil {
			return nil // skipped
		}
	}
	d.succeeded()
	switch typ {
	case tlsparse.RecordHandshake:
		d.feedHandshake(pt)
	case tlsparse.RecordApplicationData:
		d.deliver(pt)
	}
	if d.dir == tcp.ServerToClient || c.dirs[tcp.ServerToClient].stopped {
		c.settle(StatusDecrypted)
	}
	return d.after()
}

// start13 sets up the first TLS 1.3 key of the direction: the handshake
// traffic key, or the application key when no handshake secret is logged.
func (d *direction) start13() error {
	hsLabel, appLabel := d.labels()
	if secret := d.c.secrets[hsLabel]; secret != nil {
		d.epoch = epochHandshake
		return d.key13(secret)
	}
	d.trialApp = true
	return d.switchApp(appLabel)
}

// labels returns the key log labels of the direction's handshake and
// application traffic secrets.
func (d *direction) labels() (hs, app string) {
	if d.dir == tcp.ClientToServer {
		return keylog.ClientHandshakeTrafficSecret, keylog.ClientTrafficSecret0
	}
	return keylog.ServerHandshakeTrafficSecret, keylog.ServerTrafficSecret0
}

// key13 installs the traffic key of secret, with sequence number 0.
func (d *direction) key13(secret []byte) error {
	km, err := trafficKeys13(d.c.s, secret)
	if err != nil {
		return err
	}
	rc, err := newRecordCipher(d.c.s, 0x0304, false, km)
	if err != nil {
		return err
	}
	d.rc = rc
	return nil
}

// switchApp installs the application traffic key after gen key updates.
func (d *direction) switchApp(appLabel string) error {
	secret := d.c.secrets[appLabel]
	if secret == nil {
		return errors.New("no application traffic secret")
	}
	for range d.gen {
		var err error
		if secret, err = nextSecret13(d.c.s, secret); err != nil {
			return err
		}
	}
	d.epoch = epochApp
	return d.key13(secret)
}

// retry13 tries the other keys a failed TLS 1.3 record may be under. It
// returns the plaintext, nil to skip the record, or an error to stop.
func (d *direction) retry13(r tlsparse.Record) ([]byte, uint8, error) {
	_, appLabel := d.labels()
	if !d.ok && d.dir == tcp.ClientToServer {
		// 0-RTT data, under the early traffic secret; skipped when that
		// is not logged, as a server that rejected it does.
		if d.early == nil {
			if secret := d.c.secrets[keylog.EarlyTrafficSecret]; secret != nil {
				if km, err := trafficKeys13(d.c.s, secret); err == nil {
					d.early, _ = newRecordCipher(d.c.s, 0x0304, false, km)
				}
			}
		}
		if d.early != nil {
			if pt, typ, err := d.early.open(d.buffer(len(r.Fragment)), r.Type, r.Version, r.Fragment); err == nil {
				return pt, typ, nil
			}
		}
		return nil, 0, d.trial()
	}
	if d.trialApp && d.epoch == epochHandshake && d.c.secrets[appLabel] != nil {
		saved := d.rc
		if err := d.switchApp(appLabel); err == nil {
			if pt, typ, err := d.rc.open(d.buffer(len(r.Fragment)), r.Type, r.Version, r.Fragment); err == nil {
				d.trialApp = false
				return pt, typ, nil
			}
		}
		d.rc, d.epoch = saved, epochHandshake
		return nil, 0, d.trial()
	}
	if d.trialApp && !d.ok {
		return nil, 0, d.trial() // a handshake record, without its key
	}
	return nil, 0, d.fail()
}

// feedHandshake passes decrypted handshake data on. A message over the
// reader's bound (a huge certificate chain) or a malformed one is passed
// over: in TLS 1.3 the Finished that ends the handshake epoch is then
// found by trying the application key.
func (d *direction) feedHandshake(pt []byte) {
	if d.stopped {
		return
	}
	if err := d.hs.Feed(pt, d.onHandshake); err != nil && !d.stopped {
		d.hs = tlsparse.HandshakeReader{}
		if d.epoch == epochHandshake {
			d.trialApp = true
		}
	}
}

// trial counts a skipped record; too many fail the direction.
func (d *direction) trial() error {
	d.trials++
	if d.trials > maxTrials {
		return d.fail()
	}
	return nil
}

// fail records a record that did not authenticate and stops the
// direction.
func (d *direction) fail() error {
	if d.c.emitted {
		d.c.failures++
	}
	d.c.settle(StatusDecryptFailed)
	return errStop
}

func (d *direction) succeeded() {
	d.ok = true
	d.trials = 0
}

// after stops the direction once nothing needs its plaintext.
func (d *direction) after() error {
	if d.c.plainDone {
		return errStop
	}
	return nil
}

// buffer returns the shared plaintext buffer, with room for n bytes.
func (d *direction) buffer(n int) []byte {
	b := d.c.buf
	if cap(b.b) < n {
		b.b = make([]byte, max(n, tlsparse.MaxRecordLen))
	}
	return b.b[:n]
}

// deliver hands application data on.
func (d *direction) deliver(pt []byte) {
	c := d.c
	if len(pt) == 0 || c.plainDone {
		return
	}
	if !c.plainAsked {
		if !c.emitted {
			c.settle(StatusDecrypted) // asks for the handler
		} else {
			c.askPlain()
		}
		if c.plain == nil {
			return
		}
	}
	c.plain.Data(d.dir, c.ts, pt)
	if dn, ok := c.plain.(interface{ Done() bool }); ok && dn.Done() {
		c.plainDone = true
		c.stopAll()
	}
}

// Handshake message types read from decrypted records.
const (
	hsEncryptedExtensions = 8
	hsFinished            = 20
	hsKeyUpdate           = 24
)

// handshake handles a decrypted handshake message.
func (d *direction) handshake(typ uint8, body []byte) error {
	c := d.c
	if c.version != 0x0304 {
		// Finished, NewSessionTicket; a renegotiation's hellos are read
		// past (its keys are not followed: the ChangeCipherSpec that
		// starts them stops the direction).
		return nil
	}
	switch typ {
	case hsEncryptedExtensions:
		if d.dir == tcp.ServerToClient {
			c.out.ALPN = alpnFromExtensions(body)
		}
	case hsFinished:
		if d.epoch == epochHandshake {
			_, appLabel := d.labels()
			d.trialApp = false
			if err := d.switchApp(appLabel); err != nil {
				d.stop()
				return errStop
			}
		}
	case hsKeyUpdate:
		if d.epoch == epochApp {
			if d.gen >= maxKeyUpdates {
				d.stop() // beyond what a checkpoint restores
				return errStop
			}
			d.gen++
			_, appLabel := d.labels()
			if err := d.switchApp(appLabel); err != nil {
				d.stop()
				return errStop
			}
		}
	}
	return nil
}

// alpnFromExtensions returns the ALPN protocol of an EncryptedExtensions
// body, or "".
func alpnFromExtensions(body []byte) string {
	s := cryptobyte.String(body)
	var exts cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&exts) {
		return ""
	}
	for !exts.Empty() {
		var typ uint16
		var data cryptobyte.String
		if !exts.ReadUint16(&typ) || !exts.ReadUint16LengthPrefixed(&data) {
			return ""
		}
		if typ == 16 {
			var list, proto cryptobyte.String
			if !data.ReadUint16LengthPrefixed(&list) || !list.ReadUint8LengthPrefixed(&proto) || len(proto) > 255 {
				return ""
			}
			if utf8.Valid(proto) {
				return string(proto)
			}
			return strings.ToValidUTF8(string(proto), "\uFFFD")
		}
	}
	return ""
}
