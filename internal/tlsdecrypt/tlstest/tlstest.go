// Package tlstest makes real TLS sessions for tests: Go's crypto/tls or
// OpenSSL's s_client/s_server talking over loopback TCP through a relay
// that records what each side sent, with the key log the endpoints wrote;
// and writes recorded sessions as a pcap of synthetic TCP packets, so that
// decryption is tested on real handshakes and records of every suite the
// endpoints support.
package tlstest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// Chunk is what one side sent in one read of the relay.
type Chunk struct {
	FromClient bool
	Data       []byte
}

// Session is one recorded TCP connection.
type Session struct {
	Chunks []Chunk
}

// Stream returns the bytes one side sent, concatenated.
func (s *Session) Stream(fromClient bool) []byte {
	var b []byte
	for _, c := range s.Chunks {
		if c.FromClient == fromClient {
			b = append(b, c.Data...)
		}
	}
	return b
}

// Relay accepts connections on a loopback port, connects each to target,
// forwards both ways and records every connection as a Session.
type Relay struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	conns  []*Session
	wg     sync.WaitGroup
}

// NewRelay starts a relay to target; Close stops it.
func NewRelay(t testing.TB, target string) *Relay {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &Relay{ln: ln, target: target}
	go r.accept()
	t.Cleanup(func() { ln.Close() })
	return r
}

// Addr is the address clients dial.
func (r *Relay) Addr() string { return r.ln.Addr().String() }

func (r *Relay) accept() {
	for {
		c, err := r.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", r.target)
		if err != nil {
			c.Close()
			continue
		}
		sess := &Session{}
		r.mu.Lock()
		r.conns = append(r.conns, sess)
		r.mu.Unlock()
		r.wg.Add(2)
		var once sync.Once
		closeBoth := func() { c.Close(); s.Close() }
		pipe := func(dst, src net.Conn, fromClient bool) {
			defer r.wg.Done()
			buf := make([]byte, 32<<10)
			for {
				n, err := src.Read(buf)
				if n > 0 {
					r.mu.Lock()
					sess.Chunks = append(sess.Chunks, Chunk{FromClient: fromClient, Data: bytes.Clone(buf[:n])})
					r.mu.Unlock()
					if _, werr := dst.Write(buf[:n]); werr != nil {
						once.Do(closeBoth)
						return
					}
				}
				if err != nil {
					// Pass the half-close on, as TCP would.
					if tc, ok := dst.(*net.TCPConn); ok && errors.Is(err, io.EOF) {
						tc.CloseWrite()
					} else {
						once.Do(closeBoth)
					}
					return
				}
			}
		}
		go pipe(s, c, true)
		go pipe(c, s, false)
	}
}

// Sessions waits until every relayed connection has ended in both
// directions (or timeout passed) and returns them in the order they were
// accepted.
func (r *Relay) Sessions(t testing.TB, timeout time.Duration) []*Session {
	t.Helper()
	r.ln.Close()
	done := make(chan struct{})
	go func() { r.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(timeout):
		t.Fatalf("relayed connections still open after %v", timeout)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.conns
}

// Certs holds a self-signed RSA and ECDSA certificate for "localhost",
// and their PEM files (in the test's temporary directory) for OpenSSL.
type Certs struct {
	RSA, ECDSA                  tls.Certificate
	RSACert, RSAKey             string
	ECDSACertFile, ECDSAKeyFile string
}

// keyPair is a certificate with its PEM encoding.
type keyPair struct {
	cert            tls.Certificate
	certPEM, keyPEM []byte
}

var (
	certsOnce sync.Once
	pairs     [2]keyPair // RSA, ECDSA
	certsErr  error
)

// NewCerts returns the test certificates (made once per process), with
// their files written to a temporary directory of t.
func NewCerts(t testing.TB) *Certs {
	t.Helper()
	certsOnce.Do(func() {
		rk, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			certsErr = err
			return
		}
		if pairs[0], err = selfSigned(rk, &rk.PublicKey); err != nil {
			certsErr = err
			return
		}
		ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			certsErr = err
			return
		}
		pairs[1], certsErr = selfSigned(ek, &ek.PublicKey)
	})
	if certsErr != nil {
		t.Fatal(certsErr)
	}
	dir := t.TempDir()
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return &Certs{
		RSA: pairs[0].cert, ECDSA: pairs[1].cert,
		RSACert: write("rsa.crt", pairs[0].certPEM), RSAKey: write("rsa.key", pairs[0].keyPEM),
		ECDSACertFile: write("ecdsa.crt", pairs[1].certPEM), ECDSAKeyFile: write("ecdsa.key", pairs[1].keyPEM),
	}
}

func selfSigned(key any, pub any) (keyPair, error) {
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "localhost"},
		DNSNames:     []string{"localhost"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		return keyPair{}, err
	}
	kder, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return keyPair{}, err
	}
	kp := keyPair{
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}),
	}
	kp.cert, err = tls.X509KeyPair(kp.certPEM, kp.keyPEM)
	return kp, err
}
