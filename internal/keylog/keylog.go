// Package keylog reads TLS key log files in the NSS format that browsers,
// curl and OpenSSL write when SSLKEYLOGFILE is set. A line is
// "<LABEL> <client_random hex> <secret hex>", or, for a TLS 1.0–1.2 RSA
// key exchange, "RSA <first 8 bytes of the encrypted premaster secret,
// hex> <48-byte premaster secret, hex>" (NSS, Wireshark). The secrets are
// held in memory only; nothing in this package formats a secret into a
// string.
package keylog

import (
	"bufio"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strings"
)

// Labels of the NSS key log format.
const (
	ClientRandom                 = "CLIENT_RANDOM" // TLS 1.2 master secret
	ClientHandshakeTrafficSecret = "CLIENT_HANDSHAKE_TRAFFIC_SECRET"
	ServerHandshakeTrafficSecret = "SERVER_HANDSHAKE_TRAFFIC_SECRET"
	ClientTrafficSecret0         = "CLIENT_TRAFFIC_SECRET_0"
	ServerTrafficSecret0         = "SERVER_TRAFFIC_SECRET_0"
	ExporterSecret               = "EXPORTER_SECRET"
	EarlyTrafficSecret           = "CLIENT_EARLY_TRAFFIC_SECRET"
	// RSA keys a premaster secret by the first RSAPrefixLen bytes of its
	// RSA-encrypted form, as the ClientKeyExchange carries it.
	RSA = "RSA"
)

// RSAPrefixLen is how many bytes of the encrypted premaster secret key an
// RSA line; PremasterLen is the length of the premaster secret it gives
// (RFC 5246 §7.4.7.1).
const (
	RSAPrefixLen = 8
	PremasterLen = 48
)

// Secrets holds the secrets of one TLS session, by label.
type Secrets map[string][]byte

// Log maps a 32-byte client random to its session secrets, and the first
// bytes of an encrypted premaster secret to the premaster secret (RSA
// lines).
type Log struct {
	m   map[[32]byte]Secrets
	rsa map[[RSAPrefixLen]byte][]byte
	// Skipped counts lines that were not understood (comments excluded).
	Skipped int
}

// New returns an empty log.
func New() *Log { return &Log{m: map[[32]byte]Secrets{}, rsa: map[[RSAPrefixLen]byte][]byte{}} }

// Len returns the number of sessions with at least one secret: the client
// randoms with a secret, plus the RSA lines.
func (l *Log) Len() int { return len(l.m) + len(l.rsa) }

// Lookup returns the secrets for a client random.
func (l *Log) Lookup(clientRandom []byte) (Secrets, bool) {
	if len(clientRandom) != 32 {
		return nil, false
	}
	s, ok := l.m[[32]byte(clientRandom)]
	return s, ok
}

// LookupRSA returns the premaster secret of an RSA line for the encrypted
// premaster secret of a ClientKeyExchange (RFC 5246 §7.4.7.1, without its
// length prefix), of which only the first RSAPrefixLen bytes are used.
// The caller must not modify the secret.
func (l *Log) LookupRSA(encrypted []byte) ([]byte, bool) {
	if len(encrypted) < RSAPrefixLen {
		return nil, false
	}
	pms, ok := l.rsa[[RSAPrefixLen]byte(encrypted)]
	return pms, ok
}

// Add records a secret of the session of clientRandom under label, as a
// key log line would (RSA excepted: RSA lines are not keyed by client
// random). Decryption adds the master secret it derives from an RSA line
// as a ClientRandom entry, so that the session's secrets are found by
// client random, and carried by a filtered Write, like any other. The log
// keeps secret; the caller must not modify it afterwards.
func (l *Log) Add(label string, clientRandom [32]byte, secret []byte) {
	if label == RSA || len(secret) == 0 {
		return
	}
	s := l.m[clientRandom]
	if s == nil {
		s = Secrets{}
		l.m[clientRandom] = s
	}
	s[label] = secret
}

// ReadFile adds the lines of a key log file.
func (l *Log) ReadFile(name string) error {
	f, err := os.Open(name)
	if err != nil {
		return fmt.Errorf("key log: %w", err)
	}
	defer f.Close()
	if err := l.Read(f); err != nil {
		return fmt.Errorf("key log %s: %w", name, err)
	}
	return nil
}

// Read adds the lines read from r. Malformed lines are counted in Skipped;
// the error reports only I/O failures. Error messages never contain secrets.
func (l *Log) Read(r io.Reader) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		f := strings.Fields(line)
		if len(f) == 3 && f[0] == RSA {
			l.readRSA(f[1], f[2])
			continue
		}
		if len(f) != 3 || len(f[1]) != 64 {
			l.Skipped++
			continue
		}
		var cr [32]byte
		if _, err := hex.Decode(cr[:], []byte(f[1])); err != nil {
			l.Skipped++
			continue
		}
		secret, err := hex.DecodeString(f[2])
		if err != nil || len(secret) == 0 {
			l.Skipped++
			continue
		}
		s := l.m[cr]
		if s == nil {
			s = Secrets{}
			l.m[cr] = s
		}
		s[f[0]] = secret
	}
	return sc.Err()
}

// readRSA adds an RSA line's fields: the first bytes of the encrypted
// premaster secret and the premaster secret, in hex. Other RSA lines (the
// old "RSA Session-ID:… Master-Key:…" form) are counted in Skipped.
func (l *Log) readRSA(prefixHex, pmsHex string) {
	var prefix [RSAPrefixLen]byte
	if len(prefixHex) != 2*RSAPrefixLen || len(pmsHex) != 2*PremasterLen {
		l.Skipped++
		return
	}
	if _, err := hex.Decode(prefix[:], []byte(prefixHex)); err != nil {
		l.Skipped++
		return
	}
	pms, err := hex.DecodeString(pmsHex)
	if err != nil {
		l.Skipped++
		return
	}
	l.rsa[prefix] = pms
}
