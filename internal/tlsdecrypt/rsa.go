package tlsdecrypt

import (
	"crypto/md5"
	"crypto/sha1"
	"errors"
	"fmt"

	"golang.org/x/crypto/cryptobyte"

	"github.com/flowlake/flowlake/internal/keylog"
	"github.com/flowlake/flowlake/internal/tcp"
	"github.com/flowlake/flowlake/internal/tlsparse"
)

// Handshake message types of a TLS 1.0–1.2 RSA key exchange.
const (
	hsHelloRequest      = 0
	hsClientHello       = 1
	hsServerHelloDone   = 14
	hsClientKeyExchange = 16
)

// maxTranscript bounds the plaintext handshake bytes kept per direction
// for an RSA key exchange (a server's certificate chain, mostly).
const maxTranscript = 2 * tlsparse.DefaultMaxHandshake

// masterLen is the length of a TLS 1.0–1.2 master secret.
const masterLen = 48

// rsaKex follows a TLS 1.0–1.2 handshake whose master secret may have to
// come from an NSS "RSA" line, which gives the premaster secret by the
// first bytes of its RSA-encrypted form in the ClientKeyExchange. The
// master secret is PRF(premaster, "master secret", client random + server
// random), or, with the extended master secret (RFC 7627),
// PRF(premaster, "extended master secret", session hash), the session
// hash being that of the handshake messages from the ClientHello to the
// ClientKeyExchange. So the plaintext handshake bytes of both directions
// are kept until the ClientKeyExchange is read. All of it is public (sent
// in the clear); no secret is kept here.
type rsaKex struct {
	// log holds each direction's plaintext handshake bytes until the
	// ClientKeyExchange is read.
	log [2][]byte
	// broken is set for a direction whose handshake bytes were not all
	// seen (a gap, the bound): the transcript cannot be rebuilt from it.
	broken [2]bool
	// done is set once the ClientKeyExchange was read: prefix and, with
	// the extended master secret, sessionHash are known, and log is
	// dropped.
	done bool
	// prefix is the start of the encrypted premaster secret, the key of
	// the RSA line.
	prefix [keylog.RSAPrefixLen]byte
	// sessionHash is the hash of the handshake messages (RFC 7627 §3),
	// nil without the extended master secret or when the server's
	// messages were not all seen.
	sessionHash []byte
	// unusable is set when the RSA line is logged but the master secret
	// cannot be derived: the extended master secret was negotiated and
	// the server's handshake messages were not all captured.
	unusable bool
}

// add appends a plaintext handshake record's fragment of direction dir.
func (k *rsaKex) add(dir tcp.Dir, frag []byte) {
	if k.done || k.broken[dir] {
		return
	}
	if len(k.log[dir])+len(frag) > maxTranscript {
		k.lose(dir)
		return
	}
	k.log[dir] = append(k.log[dir], frag...)
}

// lose marks direction dir's handshake bytes as incomplete.
func (k *rsaKex) lose(dir tcp.Dir) {
	if k.done {
		return
	}
	k.broken[dir] = true
	k.log[dir] = nil
}

// nextMessage returns the first complete handshake message of b, with its
// 4-byte header.
func nextMessage(b []byte) ([]byte, bool) {
	if len(b) < 4 {
		return nil, false
	}
	n := 4 + (int(b[1])<<16 | int(b[2])<<8 | int(b[3]))
	if len(b) < n {
		return nil, false
	}
	return b[:n], true
}

// finish reads the ClientKeyExchange, and the session hash when the
// extended master secret was negotiated, once the client sent it. It
// reports whether the encrypted premaster secret's prefix is known.
func (k *rsaKex) finish(h *tlsparse.Hello, s *suite) bool {
	if k.done {
		return true
	}
	if k.broken[tcp.ClientToServer] {
		return false
	}
	client := k.log[tcp.ClientToServer]
	ch, ok := nextMessage(client)
	if !ok || ch[0] != hsClientHello {
		return false
	}
	end := len(ch)
	var cke []byte
	for cke == nil {
		m, ok := nextMessage(client[end:])
		if !ok {
			return false // not sent yet
		}
		end += len(m)
		if m[0] == hsClientKeyExchange {
			cke = m[4:]
		}
	}
	// TLS 1.0 and later length-prefix the encrypted premaster secret
	// (RFC 5246 §7.4.7.1).
	body := cryptobyte.String(cke)
	var enc cryptobyte.String
	if !body.ReadUint16LengthPrefixed(&enc) || !body.Empty() || len(enc) < keylog.RSAPrefixLen {
		k.lose(tcp.ClientToServer)
		return false
	}
	copy(k.prefix[:], enc)
	if h.ExtendedMasterSecret {
		k.sessionHash = k.hash(h.ServerVersion, s, ch, client[len(ch):end])
	}
	k.done, k.log = true, [2][]byte{}
	return true
}

// hash returns the session hash of RFC 7627 §3 over the ClientHello, the
// server's messages up to the ServerHelloDone (HelloRequest left out) and
// the client's following messages up to the ClientKeyExchange; nil when
// the server's messages were not all seen.
func (k *rsaKex) hash(version uint16, s *suite, clientHello, clientRest []byte) []byte {
	if k.broken[tcp.ServerToClient] {
		return nil
	}
	parts := [][]byte{clientHello}
	server := k.log[tcp.ServerToClient]
	for done := false; !done; {
		m, ok := nextMessage(server)
		if !ok {
			return nil
		}
		server = server[len(m):]
		switch m[0] {
		case hsHelloRequest:
			continue
		case hsServerHelloDone:
			done = true
		}
		parts = append(parts, m)
	}
	parts = append(parts, clientRest)
	if version >= 0x0303 {
		h := s.prfHash()()
		for _, p := range parts {
			h.Write(p)
		}
		return h.Sum(nil)
	}
	// TLS 1.0 and 1.1: MD5 and SHA-1 of the messages, concatenated.
	m5, s1 := md5.New(), sha1.New()
	for _, p := range parts {
		m5.Write(p)
		s1.Write(p)
	}
	return s1.Sum(m5.Sum(nil))
}

// masterSecret derives a TLS 1.0–1.2 master secret from a premaster
// secret (RFC 5246 §8.1; RFC 7627 §4 when sessionHash is given).
func masterSecret(s *suite, version uint16, premaster, clientRandom, serverRandom, sessionHash []byte) []byte {
	label, seed := "master secret", append(append(make([]byte, 0, 64), clientRandom...), serverRandom...)
	if sessionHash != nil {
		label, seed = "extended master secret", sessionHash
	}
	out := make([]byte, masterLen)
	if version >= 0x0303 {
		prf12(out, premaster, label, seed, s.prfHash())
	} else {
		prf10(out, premaster, label, seed)
	}
	return out
}

// rsaMaster derives the session's master secret from an RSA line of the
// key log: for a supported suite with the RSA key exchange whose
// ClientKeyExchange was read. It returns nil otherwise.
func (c *Conn) rsaMaster() []byte {
	k, h := c.kx, c.hello
	if k == nil || c.s == nil || !c.s.rsaKex || h.ServerVersion < 0x0301 || h.ServerVersion > 0x0303 ||
		len(h.ClientRandom) != 32 || len(h.ServerRandom) != 32 || !k.finish(h, c.s) {
		return nil
	}
	pms, ok := c.cfg.Keys.LookupRSA(k.prefix[:])
	if !ok || len(pms) != keylog.PremasterLen {
		return nil
	}
	if h.ExtendedMasterSecret && k.sessionHash == nil {
		k.unusable = true
		return nil
	}
	return masterSecret(c.s, h.ServerVersion, pms, h.ClientRandom, h.ServerRandom, k.sessionHash)
}

// plainHandshake keeps a plaintext handshake record's fragment for the
// RSA key exchange, while that is followed.
func (d *direction) plainHandshake(r tlsparse.Record) {
	if k := d.c.kx; k != nil && r.Type == tlsparse.RecordHandshake {
		k.add(d.dir, r.Fragment)
	}
}

// noKeysStatus is the status of a connection whose secrets were not
// found: StatusKeysAvailable when an RSA line is logged for it but the
// handshake messages its master secret needs were lost.
func (c *Conn) noKeysStatus() string {
	if c.kx != nil && c.kx.unusable {
		return StatusKeysAvailable
	}
	return StatusNoKeys
}

// rsaSnapshot is an rsaKex in a Conn's state.
type rsaSnapshot struct {
	Log         [2][]byte
	Broken      [2]bool
	Done        bool
	Prefix      []byte
	SessionHash []byte
	Unusable    bool
}

func (k *rsaKex) snapshot() *rsaSnapshot {
	if k == nil {
		return nil
	}
	rs := &rsaSnapshot{Log: k.log, Broken: k.broken, Done: k.done, SessionHash: k.sessionHash, Unusable: k.unusable}
	if k.done {
		rs.Prefix = k.prefix[:]
	}
	return rs
}

// restoreRSA rebuilds an rsaKex from its snapshot, checking its bounds.
func restoreRSA(rs *rsaSnapshot) (*rsaKex, error) {
	if rs == nil {
		return nil, nil
	}
	k := &rsaKex{log: rs.Log, broken: rs.Broken, done: rs.Done, unusable: rs.Unusable}
	for i, l := range rs.Log {
		if len(l) > maxTranscript || len(l) > 0 && (rs.Done || rs.Broken[i]) {
			return nil, fmt.Errorf("RSA key exchange: %d handshake bytes in direction %d", len(l), i)
		}
	}
	switch n := len(rs.SessionHash); {
	case !rs.Done && (len(rs.Prefix) != 0 || n != 0):
		return nil, errors.New("RSA key exchange: prefix before the ClientKeyExchange")
	case rs.Done && len(rs.Prefix) != keylog.RSAPrefixLen:
		return nil, fmt.Errorf("RSA key exchange: prefix of %d bytes", len(rs.Prefix))
	case n != 0 && n != 32 && n != 36 && n != 48:
		return nil, fmt.Errorf("RSA key exchange: session hash of %d bytes", n)
	}
	copy(k.prefix[:], rs.Prefix)
	if len(rs.SessionHash) > 0 {
		k.sessionHash = rs.SessionHash
	}
	return k, nil
}
