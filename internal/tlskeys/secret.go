package tlskeys

import (
	"crypto/hkdf"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"strings"
)

// NSS key log labels.
const (
	ClientRandom                 = "CLIENT_RANDOM"
	ClientHandshakeTrafficSecret = "CLIENT_HANDSHAKE_TRAFFIC_SECRET"
	ServerHandshakeTrafficSecret = "SERVER_HANDSHAKE_TRAFFIC_SECRET"
	ClientTrafficSecret0         = "CLIENT_TRAFFIC_SECRET_0"
	ServerTrafficSecret0         = "SERVER_TRAFFIC_SECRET_0"
	ExporterSecret               = "EXPORTER_SECRET"
	ClientEarlyTrafficSecret     = "CLIENT_EARLY_TRAFFIC_SECRET"
)

// Secret is one line of an NSS key log: a label, the client random that
// names the TLS connection, and the secret. It never prints its secret:
// String, the fmt verbs and slog show only the label and the start of the
// client random. Line is the one way to get the key log line.
type Secret struct {
	Label        string
	ClientRandom [32]byte
	Value        []byte
	// PID and Comm name the process the eBPF programs took it from (0 and
	// "" for a key log file).
	PID  uint32
	Comm string
}

// AppendLine appends the NSS key log line, newline included.
func (s Secret) AppendLine(b []byte) []byte {
	b = append(b, s.Label...)
	b = append(b, ' ')
	b = hex.AppendEncode(b, s.ClientRandom[:])
	b = append(b, ' ')
	b = hex.AppendEncode(b, s.Value)
	return append(b, '\n')
}

// Key identifies the line (label and connection) without its secret.
func (s Secret) Key() string { return s.Label + " " + hex.EncodeToString(s.ClientRandom[:]) }

// String names the secret without showing it.
func (s Secret) String() string {
	return fmt.Sprintf("%s %x… (%d-byte secret hidden)", s.Label, s.ClientRandom[:4], len(s.Value))
}

// Format makes every fmt verb print String, so that no %v, %+v or %#v of
// a Secret (or of a struct holding one) shows the secret.
func (s Secret) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(s.String())) }

// LogValue is what slog prints.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

var (
	errLine   = errors.New("not an NSS key log line (want LABEL <64 hex digits> <hex secret>)")
	errLabel  = errors.New("unknown key log label")
	errSecret = errors.New("secret is not 1-64 bytes of hex")
)

// ParseLine parses one NSS key log line (without its newline). Comments
// and blank lines give ok == false and no error. Errors never quote the
// line (it may hold a secret).
func ParseLine(line string) (s Secret, ok bool, err error) {
	line = strings.TrimSpace(line)
	if line == "" || line[0] == '#' {
		return s, false, nil
	}
	f := strings.Fields(line)
	if len(f) != 3 || len(f[1]) != 64 {
		return s, false, errLine
	}
	switch f[0] {
	case ClientRandom, ClientHandshakeTrafficSecret, ServerHandshakeTrafficSecret, ClientTrafficSecret0,
		ServerTrafficSecret0, ExporterSecret, ClientEarlyTrafficSecret, "EARLY_EXPORTER_SECRET":
	default:
		return s, false, errLabel
	}
	if _, err := hex.Decode(s.ClientRandom[:], []byte(f[1])); err != nil {
		return Secret{}, false, errLine
	}
	v, err := hex.DecodeString(f[2])
	if err != nil || len(v) == 0 || len(v) > 64 {
		return Secret{}, false, errSecret
	}
	s.Label, s.Value = f[0], v
	return s, true, nil
}

// conn is what the eBPF programs read out of one connection's structs.
type conn struct {
	pid          uint32
	comm         string
	version      int32
	cipherID     uint32
	clientRandom [32]byte
	masterKey    []byte // TLS 1.2 and older: session master key
	// TLS 1.3 (64-byte buffers, of which the cipher's hash size is used).
	handshakeSecret, handshakeHash, clientApp, serverApp, exporter []byte
}

// ErrUnknownCipher reports a TLS 1.3 cipher suite whose hash is unknown.
var ErrUnknownCipher = errors.New("TLS 1.3 cipher suite with an unknown hash")

// tls13Hash returns the hash of a TLS 1.3 cipher suite, by OpenSSL's
// SSL_CIPHER id (0x03000000 | the IANA value).
func tls13Hash(cipherID uint32) (func() hash.Hash, int, error) {
	switch cipherID {
	case 0x03001301, 0x03001303, 0x03001304, 0x03001305: // AES_128_GCM, CHACHA20_POLY1305, AES_128_CCM(_8): SHA-256
		return sha256.New, sha256.Size, nil
	case 0x03001302: // AES_256_GCM_SHA384
		return sha512.New384, sha512.Size384, nil
	}
	return nil, 0, fmt.Errorf("%w: 0x%08x", ErrUnknownCipher, cipherID)
}

// expandLabel is TLS 1.3's HKDF-Expand-Label (RFC 8446 7.1).
func expandLabel(h func() hash.Hash, secret []byte, label string, context []byte, length int) ([]byte, error) {
	info := make([]byte, 0, 4+6+len(label)+len(context))
	info = binary.BigEndian.AppendUint16(info, uint16(length))
	info = append(info, byte(6+len(label)))
	info = append(info, "tls13 "...)
	info = append(info, label...)
	info = append(info, byte(len(context)))
	info = append(info, context...)
	return hkdf.Expand(h, secret, string(info), length)
}

// secrets turns one connection's structs into key log lines: CLIENT_RANDOM
// for TLS 1.2 and older; for TLS 1.3 the handshake traffic secrets
// (derived from handshake_secret and the transcript hash up to ServerHello,
// as OpenSSL's tls13_change_cipher_state does), the application traffic
// secrets and the exporter secret.
func (c *conn) secrets() ([]Secret, error) {
	mk := func(label string, v []byte) Secret {
		return Secret{Label: label, ClientRandom: c.clientRandom, Value: v, PID: c.pid, Comm: c.comm}
	}
	if c.version != 0x0304 {
		if len(c.masterKey) == 0 {
			return nil, errors.New("no master key")
		}
		return []Secret{mk(ClientRandom, c.masterKey)}, nil
	}
	h, n, err := tls13Hash(c.cipherID)
	if err != nil {
		return nil, err
	}
	if len(c.handshakeSecret) < n || len(c.handshakeHash) < n || len(c.clientApp) < n || len(c.serverApp) < n || len(c.exporter) < n {
		return nil, errors.New("short TLS 1.3 secrets")
	}
	chts, err := expandLabel(h, c.handshakeSecret[:n], "c hs traffic", c.handshakeHash[:n], n)
	if err != nil {
		return nil, err
	}
	shts, err := expandLabel(h, c.handshakeSecret[:n], "s hs traffic", c.handshakeHash[:n], n)
	if err != nil {
		return nil, err
	}
	return []Secret{
		mk(ClientHandshakeTrafficSecret, chts),
		mk(ServerHandshakeTrafficSecret, shts),
		mk(ClientTrafficSecret0, clone(c.clientApp[:n])),
		mk(ServerTrafficSecret0, clone(c.serverApp[:n])),
		mk(ExporterSecret, clone(c.exporter[:n])),
	}, nil
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }
