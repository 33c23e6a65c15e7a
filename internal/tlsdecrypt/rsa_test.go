package tlsdecrypt

import (
	"bytes"
	"crypto/rsa"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowlake/flowlake/internal/keylog"
	"github.com/flowlake/flowlake/internal/tcp"
	"github.com/flowlake/flowlake/internal/tlsdecrypt/tlstest"
	"github.com/flowlake/flowlake/internal/tlsparse"
)

// encryptedPremaster returns the encrypted premaster secret of the
// ClientKeyExchange in a client's TLS 1.0–1.2 byte stream.
func encryptedPremaster(t *testing.T, c2s []byte) []byte {
	t.Helper()
	var hs []byte
	for off := 0; off+5 <= len(c2s); {
		typ, n := c2s[off], int(c2s[off+3])<<8|int(c2s[off+4])
		if typ == tlsparse.RecordChangeCipherSpec || off+5+n > len(c2s) {
			break
		}
		if typ == tlsparse.RecordHandshake {
			hs = append(hs, c2s[off+5:off+5+n]...)
		}
		off += 5 + n
	}
	for len(hs) >= 4 {
		n := 4 + (int(hs[1])<<16 | int(hs[2])<<8 | int(hs[3]))
		if n > len(hs) {
			break
		}
		if hs[0] == hsClientKeyExchange {
			body := hs[4:n]
			if len(body) < 2 || int(body[0])<<8|int(body[1]) != len(body)-2 {
				t.Fatalf("ClientKeyExchange of %d bytes is not an encrypted premaster secret", len(body))
			}
			return body[2:]
		}
		hs = hs[n:]
	}
	t.Fatal("no ClientKeyExchange in the client's stream")
	return nil
}

// rsaLine returns the NSS "RSA" key log line of a recorded session with
// the RSA key exchange, made as a server would: by decrypting the
// ClientKeyExchange with the server's private key.
func rsaLine(t *testing.T, s *tlstest.Session, key *rsa.PrivateKey) string {
	t.Helper()
	enc := encryptedPremaster(t, s.Stream(true))
	pms, err := key.Decrypt(nil, enc, nil) // PKCS #1 v1.5, as TLS uses it
	if err != nil {
		t.Fatalf("decrypt the premaster secret: %v", err)
	}
	if len(pms) != keylog.PremasterLen {
		t.Fatalf("premaster secret of %d bytes", len(pms))
	}
	return fmt.Sprintf("RSA %x %x\n", enc[:keylog.RSAPrefixLen], pms)
}

// logOf reads key log text into a new log.
func logOf(t *testing.T, text string) *keylog.Log {
	t.Helper()
	l := keylog.New()
	if err := l.Read(strings.NewReader(text)); err != nil {
		t.Fatal(err)
	}
	return l
}

// decryptFresh is decrypt, except that every restore gets a key log made
// anew by fresh (as another process would read it): the master secret
// derived before the checkpoint is not in it.
func decryptFresh(t *testing.T, s *tlstest.Session, fresh func() *keylog.Log, piece int) (*result, *keylog.Log) {
	t.Helper()
	res := &result{plain: &plainRecorder{}}
	asked := false
	keys := fresh()
	cfg := func(keys *keylog.Log) Config {
		return Config{
			Keys: keys,
			Emit: func(h *tlsparse.Hello, o *Outcome) {
				res.emitted++
				hc := *h
				res.hello, res.out = &hc, *o
			},
			Plain: func(alpn string) tcp.StreamHandler { asked = true; return res.plain },
		}
	}
	c := NewConn(cfg(keys))
	ts := int64(1)
	for _, ch := range s.Chunks {
		dir := tcp.ServerToClient
		if ch.FromClient {
			dir = tcp.ClientToServer
		}
		for b := ch.Data; len(b) > 0; {
			n := min(len(b), piece)
			c.Data(dir, ts, b[:n])
			ts++
			b = b[n:]
			st, err := c.MarshalState()
			if err != nil {
				t.Fatal(err)
			}
			if pms := premasterOf(t, keys); bytes.Contains(st, pms) {
				t.Fatal("state holds the premaster secret")
			}
			var plain tcp.StreamHandler
			if asked && !c.plainDone {
				plain = res.plain
			}
			keys = fresh()
			if c, err = Restore(cfg(keys), st, plain); err != nil {
				t.Fatal(err)
			}
		}
	}
	c.Close(ts)
	return res, keys
}

// premasterOf returns the premaster secret of the RSA line of a log.
func premasterOf(t *testing.T, l *keylog.Log) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := l.Write(&b, nil); err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(b.String(), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == keylog.RSA {
			var pms []byte
			fmt.Sscanf(f[2], "%x", &pms)
			return pms
		}
	}
	t.Fatal("no RSA line")
	return nil
}

// masterOf returns the CLIENT_RANDOM secret a log holds for a client
// random.
func masterOf(l *keylog.Log, clientRandom []byte) []byte {
	s, _ := l.Lookup(clientRandom)
	return s[keylog.ClientRandom]
}

// TestRSALine decrypts real sessions of every suite with the RSA key
// exchange that crypto/tls implements, at every version it runs them at,
// with nothing but an NSS "RSA" line made from the server's private key:
// crypto/tls negotiates the extended master secret (RFC 7627), so the
// master secret comes from the session hash. The master secret derived
// must be the one the client logged, it is added to the key log as the
// session's CLIENT_RANDOM secret, and checkpoints restored with a key
// log read anew (without it) decrypt all the same.
func TestRSALine(t *testing.T) {
	certs := tlstest.NewCerts(t)
	key := certs.RSA.PrivateKey.(*rsa.PrivateKey)
	reqs, answer := messages()
	wantC2S := bytes.Join(reqs, nil)
	var wantS2C []byte
	for i := range reqs {
		wantS2C = append(wantS2C, answer(i)...)
	}
	n := 0
	for _, s := range goSuites(certs) {
		if !suites[s.id].rsaKex {
			continue
		}
		for _, v := range s.versions {
			t.Run(fmt.Sprintf("%s/%s", tlsparse.VersionName(v), tls.CipherSuiteName(s.id)), func(t *testing.T) {
				client := &tls.Config{InsecureSkipVerify: true, MinVersion: v, MaxVersion: v, CipherSuites: []uint16{s.id}}
				server := &tls.Config{Certificates: []tls.Certificate{certs.RSA}, MinVersion: v, MaxVersion: v, CipherSuites: []uint16{s.id}}
				sess, kl, err := tlstest.GoSession(t, client, server, reqs, answer)
				if err != nil {
					t.Skipf("crypto/tls refuses this configuration: %v", err)
				}
				n++
				line := rsaLine(t, sess, key)
				clientLog := readKeys(t, kl)
				check := func(mode string, res *result, keys *keylog.Log) {
					t.Helper()
					if res.emitted != 1 || res.out.KeyStatus != StatusDecrypted || !res.hello.ExtendedMasterSecret {
						t.Fatalf("%s: emitted %d, outcome %+v, extended master secret %v", mode, res.emitted, res.out, res.hello.ExtendedMasterSecret)
					}
					if !bytes.Equal(res.plain.data[0], wantC2S) || !bytes.Equal(res.plain.data[1], wantS2C) {
						t.Fatalf("%s: plaintext differs: client %d bytes (want %d), server %d bytes (want %d)",
							mode, len(res.plain.data[0]), len(wantC2S), len(res.plain.data[1]), len(wantS2C))
					}
					want := masterOf(clientLog, res.hello.ClientRandom)
					if got := masterOf(keys, res.hello.ClientRandom); want == nil || !bytes.Equal(got, want) {
						t.Fatalf("%s: the master secret added to the key log is not the one the client logged", mode)
					}
				}
				for _, piece := range []int{0, 7, 1} {
					keys := logOf(t, line)
					check(fmt.Sprintf("piece %d", piece), decrypt(t, sess, keys, piece, false), keys)
				}
				keys := logOf(t, line)
				check("checkpoints", decrypt(t, sess, keys, 1000, true), keys)
				res, keys := decryptFresh(t, sess, func() *keylog.Log { return logOf(t, line) }, 300)
				check("checkpoints with fresh key logs", res, keys)

				// The premaster secret of another session: the records do
				// not authenticate.
				res = decrypt(t, sess, logOf(t, flipSecrets(line)), 0, false)
				if res.out.KeyStatus != StatusDecryptFailed || len(res.plain.data[0])+len(res.plain.data[1]) != 0 {
					t.Fatalf("wrong premaster secret: %+v", res.out)
				}
				// An RSA line of another encrypted premaster secret.
				other := "RSA 0000000000000000" + line[len("RSA 0000000000000000"):]
				if res = decrypt(t, sess, logOf(t, other), 0, false); res.out.KeyStatus != StatusNoKeys {
					t.Fatalf("RSA line of another session: %+v", res.out)
				}
			})
		}
	}
	if n < 7 {
		t.Fatalf("%d sessions with the RSA key exchange ran, want at least one per TLS_RSA_WITH_* suite of crypto/tls", n)
	}
}

// With the extended master secret, a server handshake message lost to a
// gap leaves the session hash unknown: the RSA line is logged but cannot
// be used, which the status says (keys-available, not no-keys).
func TestRSALineHandshakeLost(t *testing.T) {
	certs := tlstest.NewCerts(t)
	reqs, answer := messages()
	cfg := &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256}}
	server := &tls.Config{Certificates: []tls.Certificate{certs.RSA}, MaxVersion: tls.VersionTLS12, CipherSuites: cfg.CipherSuites}
	sess, _, err := tlstest.GoSession(t, cfg, server, reqs, answer)
	if err != nil {
		t.Fatal(err)
	}
	line := rsaLine(t, sess, certs.RSA.PrivateKey.(*rsa.PrivateKey))
	for _, lose := range []bool{false, true} {
		keys := logOf(t, line)
		var out Outcome
		plain := &plainRecorder{}
		c := NewConn(Config{Keys: keys, Emit: func(_ *tlsparse.Hello, o *Outcome) { out = *o },
			Plain: func(string) tcp.StreamHandler { return plain }})
		first := true
		for _, ch := range sess.Chunks {
			if ch.FromClient {
				c.Data(tcp.ClientToServer, 1, ch.Data)
				continue
			}
			if !first || !lose {
				c.Data(tcp.ServerToClient, 1, ch.Data)
				continue
			}
			// The server's first flight: ServerHello, then the
			// Certificate record loses 20 bytes from its middle.
			first = false
			sh := 5 + (int(ch.Data[3])<<8 | int(ch.Data[4]))
			if ch.Data[sh] != tlsparse.RecordHandshake || len(ch.Data) < sh+60 {
				t.Fatalf("the server's first chunk does not hold a second handshake record")
			}
			c.Data(tcp.ServerToClient, 1, ch.Data[:sh+30])
			c.Gap(tcp.ServerToClient, 1, 20)
			c.Data(tcp.ServerToClient, 1, ch.Data[sh+50:])
		}
		c.Close(2)
		want := StatusDecrypted
		if lose {
			want = StatusKeysAvailable
		}
		if out.KeyStatus != want {
			t.Errorf("handshake lost %v: status %q, want %q", lose, out.KeyStatus, want)
		}
	}
}

// opensslNoEMS points OpenSSL at a configuration that turns the extended
// master secret off, for the rest of the test.
func opensslNoEMS(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "openssl.cnf")
	err := os.WriteFile(conf, []byte("openssl_conf = flowlake_conf\n[flowlake_conf]\nssl_conf = flowlake_ssl\n"+
		"[flowlake_ssl]\nsystem_default = flowlake_system\n[flowlake_system]\nOptions = -ExtendedMasterSecret\n"), 0o644)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("OPENSSL_CONF", conf)
}

// TestRSALineOpenSSL decrypts openssl s_client/s_server sessions with the
// RSA key exchange with an RSA line alone, with and without the extended
// master secret (turned off in OpenSSL's configuration), at TLS 1.0 and
// 1.2 (MD5/SHA-1 and SHA-256 session hashes and PRFs), and checks the
// derived master secret against the client's CLIENT_RANDOM line.
func TestRSALineOpenSSL(t *testing.T) {
	tlstest.HaveOpenSSL(t)
	certs := tlstest.NewCerts(t)
	key := certs.RSA.PrivateKey.(*rsa.PrivateKey)
	page := strings.Repeat("flowlake decrypts with RSA lines\n", 500)
	for _, tc := range []struct {
		name, version, cipher string
		ems                   bool
		id                    uint16
	}{
		{"TLS1.2 AES128-SHA", "-tls1_2", "AES128-SHA", true, 0x002f},
		{"TLS1.2 AES128-SHA no EMS", "-tls1_2", "AES128-SHA", false, 0x002f},
		{"TLS1.2 AES256-GCM-SHA384 no EMS", "-tls1_2", "AES256-GCM-SHA384", false, 0x009d},
		{"TLS1.2 AES256-GCM-SHA384", "-tls1_2", "AES256-GCM-SHA384", true, 0x009d},
		{"TLS1.0 AES256-SHA", "-tls1", "AES256-SHA:@SECLEVEL=0", true, 0x0035},
		{"TLS1.0 AES256-SHA no EMS", "-tls1", "AES256-SHA:@SECLEVEL=0", false, 0x0035},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if !tc.ems {
				opensslNoEMS(t)
			}
			args := []string{tc.version, "-cipher", tc.cipher}
			addr, dir := tlstest.OpenSSLServer(t, certs.RSACert, certs.RSAKey, args...)
			if err := os.WriteFile(filepath.Join(dir, "page.txt"), []byte(page), 0o644); err != nil {
				t.Fatal(err)
			}
			relay := tlstest.NewRelay(t, addr)
			request := "GET /page.txt HTTP/1.0\r\n\r\n"
			clientKeys := tlstest.OpenSSLClient(t, relay.Addr(), []string{request}, append(args, "-ign_eof")...)
			sessions := relay.Sessions(t, 10*time.Second)
			if len(sessions) != 1 {
				t.Fatalf("%d sessions", len(sessions))
			}
			line := rsaLine(t, sessions[0], key)
			clientLog := readKeys(t, clientKeys)
			for _, mode := range []struct {
				piece      int
				checkpoint bool
			}{{0, false}, {500, true}} {
				keys := logOf(t, line)
				r := decrypt(t, sessions[0], keys, mode.piece, mode.checkpoint)
				if r.hello.CipherSuite != tc.id || r.hello.ExtendedMasterSecret != tc.ems {
					t.Fatalf("negotiated %04x, extended master secret %v; want %04x, %v", r.hello.CipherSuite, r.hello.ExtendedMasterSecret, tc.id, tc.ems)
				}
				if r.out.KeyStatus != StatusDecrypted {
					t.Fatalf("status %q", r.out.KeyStatus)
				}
				if want := masterOf(clientLog, r.hello.ClientRandom); want == nil || !bytes.Equal(masterOf(keys, r.hello.ClientRandom), want) {
					t.Fatal("the derived master secret is not the one the client logged")
				}
				if string(r.plain.data[0]) != request || !bytes.HasSuffix(r.plain.data[1], []byte(page)) {
					t.Fatalf("plaintext: client %q, server %d bytes", r.plain.data[0], len(r.plain.data[1]))
				}
			}
		})
	}
}
