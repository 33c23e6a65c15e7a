package tlsdecrypt

import (
	"bytes"
	"crypto/tls"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowlake/flowlake/internal/tlsdecrypt/tlstest"
)

// decryptRelayed decrypts every session the relay recorded (fed in 500
// byte pieces through a checkpoint after each) and returns the results.
func decryptRelayed(t *testing.T, relay *tlstest.Relay, keys []byte) []*result {
	t.Helper()
	kl := readKeys(t, keys)
	var out []*result
	for _, s := range relay.Sessions(t, 10*time.Second) {
		out = append(out, decrypt(t, s, kl, 500, true))
		// The same, whole and without checkpoints.
		whole := decrypt(t, s, kl, 0, false)
		last := out[len(out)-1]
		if !bytes.Equal(whole.plain.data[0], last.plain.data[0]) || !bytes.Equal(whole.plain.data[1], last.plain.data[1]) ||
			whole.out != last.out {
			t.Fatalf("checkpointed decryption differs from whole: %+v vs %+v", last.out, whole.out)
		}
	}
	return out
}

// TestOpenSSLTLS13 runs openssl s_client against a Go HTTPS server with
// each TLS 1.3 suite, sending key updates (k: the client's, K: both) between
// requests.
func TestOpenSSLTLS13(t *testing.T) {
	tlstest.HaveOpenSSL(t)
	certs := tlstest.NewCerts(t)
	srv := tlstest.GoHTTPServer(t, &tls.Config{Certificates: []tls.Certificate{certs.RSA}, MinVersion: tls.VersionTLS13})
	req := func(p string) string { return "GET " + p + " HTTP/1.1\r\nHost: localhost\r\n\r\n" }
	for _, suite := range []string{"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"} {
		t.Run(suite, func(t *testing.T) {
			relay := tlstest.NewRelay(t, srv)
			input := []string{req("/a"), "K\n", req("/b"), "k\n", "k\n", req("/c"), "K\n", req("/d")}
			keys := tlstest.OpenSSLClient(t, relay.Addr(), input, "-tls1_3", "-ciphersuites", suite)
			res := decryptRelayed(t, relay, keys)
			if len(res) != 1 {
				t.Fatalf("%d sessions", len(res))
			}
			r := res[0]
			if r.out.KeyStatus != StatusDecrypted || r.hello.CipherSuite != suiteID(t, suite) {
				t.Fatalf("outcome %+v, suite %04x", r.out, r.hello.CipherSuite)
			}
			if want := req("/a") + req("/b") + req("/c") + req("/d"); string(r.plain.data[0]) != want {
				t.Fatalf("client plaintext %q, want %q", r.plain.data[0], want)
			}
			for _, p := range []string{"/a", "/b", "/c", "/d"} {
				if !bytes.Contains(r.plain.data[1], []byte("resp:"+p)) {
					t.Fatalf("server plaintext lacks the answer to %s: %q", p, r.plain.data[1])
				}
			}
			if r.gens[0] != 4 || r.gens[1] != 2 {
				t.Fatalf("key updates: client %d, server %d; want 4 and 2", r.gens[0], r.gens[1])
			}
		})
	}
}

func suiteID(t *testing.T, name string) uint16 {
	for _, cs := range tls.CipherSuites() {
		if cs.Name == name {
			return cs.ID
		}
	}
	t.Fatalf("unknown suite %s", name)
	return 0
}

// TestOpenSSLCBC runs openssl s_client against openssl s_server with CBC
// suites, which OpenSSL protects with encrypt-then-MAC (RFC 7366) unless
// told not to, at TLS 1.0, 1.1 and 1.2, and checks suites this package
// does not decrypt are reported as such.
func TestOpenSSLCBC(t *testing.T) {
	tlstest.HaveOpenSSL(t)
	certs := tlstest.NewCerts(t)
	page := strings.Repeat("flowlake decrypts encrypt-then-MAC records\n", 800)
	for _, tc := range []struct {
		name, version, cipher string
		ecdsa, noETM          bool
		id                    uint16
		status                string
	}{
		{name: "ECDHE-RSA-AES128-SHA", version: "-tls1_2", cipher: "ECDHE-RSA-AES128-SHA", id: 0xc013},
		{name: "ECDHE-RSA-AES256-SHA384", version: "-tls1_2", cipher: "ECDHE-RSA-AES256-SHA384", id: 0xc028},
		{name: "ECDHE-ECDSA-AES256-SHA", version: "-tls1_2", cipher: "ECDHE-ECDSA-AES256-SHA", ecdsa: true, id: 0xc00a},
		{name: "AES256-SHA256", version: "-tls1_2", cipher: "AES256-SHA256", id: 0x003d},
		{name: "DHE-RSA-AES128-SHA256", version: "-tls1_2", cipher: "DHE-RSA-AES128-SHA256", id: 0x0067},
		{name: "ECDHE-RSA-AES128-SHA256 no ETM", version: "-tls1_2", cipher: "ECDHE-RSA-AES128-SHA256", noETM: true, id: 0xc027},
		{name: "TLS1.1 ECDHE-RSA-AES256-SHA", version: "-tls1_1", cipher: "ECDHE-RSA-AES256-SHA:@SECLEVEL=0", id: 0xc014},
		{name: "TLS1.0 AES128-SHA", version: "-tls1", cipher: "AES128-SHA:@SECLEVEL=0", id: 0x002f},
		{name: "TLS1.0 AES128-SHA no ETM", version: "-tls1", cipher: "AES128-SHA:@SECLEVEL=0", noETM: true, id: 0x002f},
		{name: "DHE-RSA-AES256-GCM-SHA384", version: "-tls1_2", cipher: "DHE-RSA-AES256-GCM-SHA384", id: 0x009f},
		{name: "AES128-CCM unsupported", version: "-tls1_2", cipher: "AES128-CCM", id: 0xc09c, status: StatusUnsupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cert, key := certs.RSACert, certs.RSAKey
			if tc.ecdsa {
				cert, key = certs.ECDSACertFile, certs.ECDSAKeyFile
			}
			args := []string{tc.version, "-cipher", tc.cipher}
			if tc.noETM {
				args = append(args, "-no_etm")
			}
			addr, dir := tlstest.OpenSSLServer(t, cert, key, args...)
			if err := os.WriteFile(filepath.Join(dir, "page.txt"), []byte(page), 0o644); err != nil {
				t.Fatal(err)
			}
			relay := tlstest.NewRelay(t, addr)
			request := "GET /page.txt HTTP/1.0\r\n\r\n"
			keys := tlstest.OpenSSLClient(t, relay.Addr(), []string{request}, append(args, "-ign_eof")...)
			res := decryptRelayed(t, relay, keys)
			if len(res) != 1 {
				t.Fatalf("%d sessions", len(res))
			}
			r := res[0]
			if r.hello.CipherSuite != tc.id {
				t.Fatalf("negotiated %04x, want %04x", r.hello.CipherSuite, tc.id)
			}
			want := tc.status
			if want == "" {
				want = StatusDecrypted
			}
			if r.out.KeyStatus != want {
				t.Fatalf("status %q, want %q", r.out.KeyStatus, want)
			}
			if want != StatusDecrypted {
				return
			}
			isCBC := suites[tc.id].kind == kindCBC
			if r.hello.EncryptThenMAC != (isCBC && !tc.noETM) {
				t.Fatalf("encrypt_then_mac %v", r.hello.EncryptThenMAC)
			}
			if string(r.plain.data[0]) != request {
				t.Fatalf("client plaintext %q", r.plain.data[0])
			}
			if !bytes.HasPrefix(r.plain.data[1], []byte("HTTP/1.0 200 ok")) || !bytes.HasSuffix(r.plain.data[1], []byte(page)) {
				t.Fatalf("server plaintext %d bytes: %.80q…", len(r.plain.data[1]), r.plain.data[1])
			}
		})
	}
}
