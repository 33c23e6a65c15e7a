//go:debug tlsrsakex=1
//go:debug tls3des=1
//go:debug tls10server=1

package tlsdecrypt

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"strings"
	"testing"

	"github.com/flowlake/flowlake/internal/keylog"
	"github.com/flowlake/flowlake/internal/tcp"
	"github.com/flowlake/flowlake/internal/tlsdecrypt/tlstest"
	"github.com/flowlake/flowlake/internal/tlsparse"
)

// plainRecorder is a plaintext handler that keeps what it is given.
type plainRecorder struct {
	data   [2][]byte
	gaps   int
	closed bool
}

func (p *plainRecorder) Data(dir tcp.Dir, _ int64, b []byte) { p.data[dir] = append(p.data[dir], b...) }
func (p *plainRecorder) Gap(tcp.Dir, int64, int)             { p.gaps++ }
func (p *plainRecorder) Close(int64)                         { p.closed = true }

// result is what decrypting a session gave.
type result struct {
	hello   *tlsparse.Hello
	out     Outcome
	emitted int
	plain   *plainRecorder
	alpn    string // asked for
	gens    [2]int // TLS 1.3 key updates followed per direction
}

// decrypt feeds a recorded session to a Conn in pieces of at most piece
// bytes (0: as recorded); with checkpoint set, the Conn is marshalled and
// restored after every piece.
func decrypt(t *testing.T, s *tlstest.Session, keys *keylog.Log, piece int, checkpoint bool) *result {
	t.Helper()
	res := &result{plain: &plainRecorder{}}
	asked := false
	cfg := Config{
		Keys: keys,
		Emit: func(h *tlsparse.Hello, o *Outcome) {
			res.emitted++
			hc := *h
			res.hello, res.out = &hc, *o
		},
		Plain: func(alpn string) tcp.StreamHandler {
			asked = true
			res.alpn = alpn
			return res.plain
		},
	}
	c := NewConn(cfg)
	ts := int64(1)
	for _, ch := range s.Chunks {
		dir := tcp.ServerToClient
		if ch.FromClient {
			dir = tcp.ClientToServer
		}
		for b := ch.Data; len(b) > 0; {
			n := len(b)
			if piece > 0 {
				n = min(n, piece)
			}
			c.Data(dir, ts, b[:n])
			ts++
			b = b[n:]
			if checkpoint {
				st, err := c.MarshalState()
				if err != nil {
					t.Fatal(err)
				}
				if bytes.Contains(st, keysOf(keys)) {
					t.Fatal("state holds a secret")
				}
				var plain tcp.StreamHandler
				if asked && !c.plainDone {
					plain = res.plain
				}
				if c, err = Restore(cfg, st, plain); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	c.Close(ts)
	res.gens = [2]int{c.dirs[0].gen, c.dirs[1].gen}
	return res
}

// keysOf returns the first 16 bytes of some secret of the log, to look for
// in serialized state (nil when the log is empty).
func keysOf(l *keylog.Log) []byte {
	var b bytes.Buffer
	l.Write(&b, nil)
	line, _, _ := strings.Cut(b.String(), "\n")
	f := strings.Fields(line)
	if len(f) != 3 {
		return []byte("\x00no secret\x00")
	}
	var s []byte
	fmt.Sscanf(f[2][:32], "%x", &s)
	return s
}

func readKeys(t *testing.T, b []byte) *keylog.Log {
	t.Helper()
	l := keylog.New()
	if err := l.Read(bytes.NewReader(b)); err != nil {
		t.Fatal(err)
	}
	if l.Len() == 0 {
		t.Fatal("empty key log")
	}
	return l
}

// messages are the plaintexts of the Go sessions: small ones, and ones
// that span several records.
func messages() (reqs [][]byte, answer func(int) []byte) {
	reqs = [][]byte{[]byte("hello"), bytes.Repeat([]byte("request-1;"), 3000), []byte("x")}
	answers := [][]byte{[]byte("hi"), bytes.Repeat([]byte("answer-1:"), 9000), bytes.Repeat([]byte{0, 1, 2, 255}, 10)}
	return reqs, func(i int) []byte { return answers[i] }
}

// goSuites lists the TLS 1.2 suites of crypto/tls with the certificate
// they need and the versions to run them at.
func goSuites(c *tlstest.Certs) []struct {
	id       uint16
	cert     tls.Certificate
	versions []uint16
} {
	type s = struct {
		id       uint16
		cert     tls.Certificate
		versions []uint16
	}
	var out []s
	for _, cs := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		if cs.SupportedVersions[0] == tls.VersionTLS13 {
			continue
		}
		cert := c.RSA
		if strings.Contains(cs.Name, "ECDSA") {
			cert = c.ECDSA
		}
		var vs []uint16
		for _, v := range cs.SupportedVersions {
			if v != tls.VersionTLS11 || strings.Contains(cs.Name, "CBC") {
				vs = append(vs, v)
			}
		}
		out = append(out, s{cs.ID, cert, vs})
	}
	return out
}

// TestGoSuites decrypts real sessions of every TLS 1.0–1.2 suite Go
// implements (and TLS 1.3 as Go negotiates it), fed whole, in small pieces
// and through a checkpoint after every piece, and compares the plaintext
// with what the endpoints sent.
func TestGoSuites(t *testing.T) {
	certs := tlstest.NewCerts(t)
	reqs, answer := messages()
	wantC2S := bytes.Join(reqs, nil)
	var wantS2C []byte
	for i := range reqs {
		wantS2C = append(wantS2C, answer(i)...)
	}
	type tc struct {
		name           string
		client, server *tls.Config
	}
	var cases []tc
	for _, s := range goSuites(certs) {
		for _, v := range s.versions {
			cases = append(cases, tc{
				name:   fmt.Sprintf("%s/%s", tlsparse.VersionName(v), tls.CipherSuiteName(s.id)),
				client: &tls.Config{InsecureSkipVerify: true, MinVersion: v, MaxVersion: v, CipherSuites: []uint16{s.id}},
				server: &tls.Config{Certificates: []tls.Certificate{s.cert}, MinVersion: v, MaxVersion: v, CipherSuites: []uint16{s.id}},
			})
		}
	}
	for _, cert := range []tls.Certificate{certs.RSA, certs.ECDSA} {
		cases = append(cases, tc{
			name:   "TLS 1.3/" + cert.Leaf.PublicKeyAlgorithm.String(),
			client: &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13},
			server: &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS13},
		})
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			sess, kl, err := tlstest.GoSession(t, tc.client, tc.server, reqs, answer)
			if err != nil {
				t.Skipf("crypto/tls refuses this configuration: %v", err)
			}
			keys := readKeys(t, kl)
			for _, mode := range []struct {
				piece      int
				checkpoint bool
			}{{0, false}, {7, false}, {1000, true}, {1, false}} {
				res := decrypt(t, sess, keys, mode.piece, mode.checkpoint)
				if res.emitted != 1 || res.out.KeyStatus != StatusDecrypted || !res.out.Decrypted {
					t.Fatalf("piece %d: emitted %d, outcome %+v", mode.piece, res.emitted, res.out)
				}
				if !bytes.Equal(res.plain.data[0], wantC2S) || !bytes.Equal(res.plain.data[1], wantS2C) {
					t.Fatalf("piece %d checkpoint %v: plaintext differs: client %d bytes (want %d), server %d bytes (want %d)",
						mode.piece, mode.checkpoint, len(res.plain.data[0]), len(wantC2S), len(res.plain.data[1]), len(wantS2C))
				}
				if !res.plain.closed || res.plain.gaps != 0 {
					t.Fatalf("closed %v, gaps %d", res.plain.closed, res.plain.gaps)
				}
			}
			// Without keys: nothing decrypted, the status says why.
			res := decrypt(t, sess, keylog.New(), 0, false)
			if res.emitted != 1 || res.out.KeyStatus != StatusNoKeys || res.plain.data[0] != nil {
				t.Fatalf("without keys: %+v", res.out)
			}
			// With another session's keys: the records do not authenticate.
			wrong := keylog.New()
			var b bytes.Buffer
			keys.Write(&b, nil)
			if err := wrong.Read(strings.NewReader(flipSecrets(b.String()))); err != nil {
				t.Fatal(err)
			}
			res = decrypt(t, sess, wrong, 0, false)
			if res.emitted != 1 || res.out.KeyStatus != StatusDecryptFailed || len(res.plain.data[0])+len(res.plain.data[1]) != 0 {
				t.Fatalf("wrong keys: %+v, %d plaintext bytes", res.out, len(res.plain.data[0])+len(res.plain.data[1]))
			}
		})
	}
}

// flipSecrets changes the last hex digit of every secret of a key log.
func flipSecrets(log string) string {
	var out strings.Builder
	for _, line := range strings.Split(strings.TrimSpace(log), "\n") {
		last := line[len(line)-1]
		if last == '0' {
			last = '1'
		} else {
			last = '0'
		}
		out.WriteString(line[:len(line)-1] + string(last) + "\n")
	}
	return out.String()
}

// Secrets logged after the hellos (a key log written as the handshake
// ends, a pcapng Decryption Secrets Block after the ServerHello) are
// looked up at the first encrypted record.
func TestLateKeys(t *testing.T) {
	certs := tlstest.NewCerts(t)
	reqs, answer := messages()
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		sess, kl, err := tlstest.GoSession(t, &tls.Config{InsecureSkipVerify: true, MaxVersion: v},
			&tls.Config{Certificates: []tls.Certificate{certs.ECDSA}}, reqs, answer)
		if err != nil {
			t.Fatal(err)
		}
		keys := keylog.New()
		var out Outcome
		plain := &plainRecorder{}
		c := NewConn(Config{Keys: keys, Emit: func(_ *tlsparse.Hello, o *Outcome) { out = *o },
			Plain: func(string) tcp.StreamHandler { return plain }})
		added := false
		for _, ch := range sess.Chunks {
			dir := tcp.ServerToClient
			if ch.FromClient {
				dir = tcp.ClientToServer
			}
			// The ServerHello record leads the server's first chunk:
			// add the keys right after it.
			if !ch.FromClient && !added {
				n := 5 + (int(ch.Data[3])<<8 | int(ch.Data[4]))
				c.Data(dir, 1, ch.Data[:n])
				if c.hello == nil || c.ready || !c.awaitKeys {
					t.Fatalf("after the ServerHello: hello %v, ready %v, awaiting %v", c.hello != nil, c.ready, c.awaitKeys)
				}
				keys.Merge(readKeys(t, kl))
				c.Data(dir, 1, ch.Data[n:])
				added = true
				continue
			}
			c.Data(dir, 1, ch.Data)
		}
		c.Close(2)
		if out.KeyStatus != StatusDecrypted || len(plain.data[1]) == 0 {
			t.Errorf("%s: %+v, %d bytes", tlsparse.VersionName(v), out, len(plain.data[1]))
		}
	}
}

// A gap inside a record loses that record only: decryption goes on with
// the next one (the sequence number counting the lost one), and the
// plaintext handler is told of the gap. A gap that swallows a record
// header stops the direction, without a failure.
func TestGapInsideRecord(t *testing.T) {
	certs := tlstest.NewCerts(t)
	reqs, answer := messages()
	var want []byte
	for i := range reqs {
		want = append(want, answer(i)...)
	}
	for _, tc := range []struct {
		name  string
		suite uint16
		max   uint16
	}{
		{"TLS 1.3", 0, tls.VersionTLS13},
		{"TLS 1.2 GCM", tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.VersionTLS12},
		{"TLS 1.2 CBC", tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, tls.VersionTLS12},
		{"TLS 1.2 ChaCha20", tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, tls.VersionTLS12},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client := &tls.Config{InsecureSkipVerify: true, MaxVersion: tc.max}
			if tc.suite != 0 {
				client.CipherSuites = []uint16{tc.suite}
			}
			server := &tls.Config{Certificates: []tls.Certificate{certs.ECDSA}, CipherSuites: client.CipherSuites}
			sess, kl, err := tlstest.GoSession(t, client, server, reqs, answer)
			if err != nil {
				t.Fatal(err)
			}
			keys := readKeys(t, kl)
			s2c := sess.Stream(false)
			// The records of the server's stream: the third large one
			// loses 500 bytes from its middle.
			var starts []int
			for off := 0; off+5 <= len(s2c); off += 5 + (int(s2c[off+3])<<8 | int(s2c[off+4])) {
				if s2c[off] == 23 && int(s2c[off+3])<<8|int(s2c[off+4]) > 4000 {
					starts = append(starts, off)
				}
			}
			if len(starts) < 4 {
				t.Fatalf("%d large records", len(starts))
			}
			for _, lose := range []struct {
				from, n int
				stops   bool
			}{{starts[2] + 100, 500, false}, {starts[2] - 10, 500, true}} {
				plain := &plainRecorder{}
				var out Outcome
				c := NewConn(Config{Keys: keys, Emit: func(_ *tlsparse.Hello, o *Outcome) { out = *o },
					Plain: func(string) tcp.StreamHandler { return plain }})
				c.Data(tcp.ClientToServer, 1, sess.Stream(true))
				c.Data(tcp.ServerToClient, 2, s2c[:lose.from])
				c.Gap(tcp.ServerToClient, 3, lose.n)
				c.Data(tcp.ServerToClient, 4, s2c[lose.from+lose.n:])
				c.Close(5)
				got := plain.data[1]
				if out.KeyStatus != StatusDecrypted || c.failures != 0 {
					t.Fatalf("outcome %+v, %d failures", out, c.failures)
				}
				if lose.stops {
					if !bytes.HasPrefix(want, got) || len(got) >= len(want) {
						t.Fatalf("header lost: %d of %d bytes, not a prefix", len(got), len(want))
					}
					continue
				}
				p := 0
				for p < len(got) && got[p] == want[p] {
					p++
				}
				lost := len(want) - len(got)
				if plain.gaps != 1 || lost <= 0 || lost > 1<<14 || !bytes.Equal(got[p:], want[len(want)-(len(got)-p):]) {
					t.Fatalf("gaps %d, %d of %d bytes, not the stream less one record", plain.gaps, len(got), len(want))
				}
			}
		})
	}
}
