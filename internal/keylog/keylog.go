// Package keylog reads TLS key log files in the NSS format that browsers,
// curl and OpenSSL write when SSLKEYLOGFILE is set. A line is
// "<LABEL> <client_random hex> <secret hex>". The secrets are held in memory
// only; nothing in this package formats a secret into a string.
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
)

// Secrets holds the secrets of one TLS session, by label.
type Secrets map[string][]byte

// Log maps a 32-byte client random to its session secrets.
type Log struct {
	m map[[32]byte]Secrets
	// Skipped counts lines that were not understood (comments excluded).
	Skipped int
}

// New returns an empty log.
func New() *Log { return &Log{m: map[[32]byte]Secrets{}} }

// Len returns the number of sessions with at least one secret.
func (l *Log) Len() int { return len(l.m) }

// Lookup returns the secrets for a client random.
func (l *Log) Lookup(clientRandom []byte) (Secrets, bool) {
	if len(clientRandom) != 32 {
		return nil, false
	}
	s, ok := l.m[[32]byte(clientRandom)]
	return s, ok
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
