package tlstest

import (
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for the writes of several goroutines
// (a KeyLogWriter).
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) Bytes() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return bytes.Clone(s.b.Bytes())
}

// GoSession runs one TLS connection between crypto/tls endpoints through
// a relay: the client writes each of reqs and reads the server's answer,
// which is answer(i) for request i, then closes. It returns the recorded
// session and the key log the client wrote. A failed handshake is
// returned as an error (say, a suite one side refuses).
func GoSession(t testing.TB, client, server *tls.Config, reqs [][]byte, answer func(i int) []byte) (*Session, []byte, error) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srvErr := make(chan error, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			srvErr <- err
			return
		}
		tc := tls.Server(c, server)
		defer tc.Close()
		for i, req := range reqs {
			if _, err := io.ReadFull(tc, make([]byte, len(req))); err != nil {
				srvErr <- fmt.Errorf("server read %d: %w", i, err)
				return
			}
			if _, err := tc.Write(answer(i)); err != nil {
				srvErr <- fmt.Errorf("server write %d: %w", i, err)
				return
			}
		}
		// Wait for the client's close_notify.
		io.Copy(io.Discard, tc)
		srvErr <- nil
	}()
	relay := NewRelay(t, ln.Addr().String())
	keys := &syncBuffer{}
	cc := client.Clone()
	cc.KeyLogWriter = keys
	conn, err := net.Dial("tcp", relay.Addr())
	if err != nil {
		t.Fatal(err)
	}
	tc := tls.Client(conn, cc)
	tc.SetDeadline(time.Now().Add(20 * time.Second))
	if err := tc.Handshake(); err != nil {
		tc.Close()
		relay.Sessions(t, 10*time.Second)
		return nil, nil, err
	}
	for i, req := range reqs {
		if _, err := tc.Write(req); err != nil {
			t.Fatalf("client write %d: %v", i, err)
		}
		want := answer(i)
		got := make([]byte, len(want))
		if _, err := io.ReadFull(tc, got); err != nil {
			t.Fatalf("client read %d: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("answer %d garbled", i)
		}
	}
	tc.Close()
	if err := <-srvErr; err != nil {
		t.Fatal(err)
	}
	sess := relay.Sessions(t, 10*time.Second)
	if len(sess) != 1 {
		t.Fatalf("%d relayed connections, want 1", len(sess))
	}
	return sess[0], keys.Bytes(), nil
}

// HTTPExchange is one request of HTTPSessions.
type HTTPExchange struct {
	Method, Path string
	Body         string
}

// HTTPSessions serves HTTP over TLS with net/http and makes the requests
// with an http.Client through a relay, one connection per request when
// fresh is set (else keep-alive). The handler answers every request with
// status 200 and the body "resp:<path>" (404 for paths starting
// "/missing", N bytes for /bytes/N). It returns the recorded sessions and the client's key log.
func HTTPSessions(t testing.TB, client, server *tls.Config, xs []HTTPExchange, fresh bool) ([]*Session, []byte) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(server)
	go srv.ServeTLS(ln, "", "")
	defer srv.Close()
	relay := NewRelay(t, ln.Addr().String())
	keys := &syncBuffer{}
	cc := client.Clone()
	cc.KeyLogWriter = keys
	tr := &http.Transport{
		TLSClientConfig:   cc,
		DisableKeepAlives: fresh,
		ForceAttemptHTTP2: len(cc.NextProtos) > 0 && cc.NextProtos[0] == "h2",
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, relay.Addr())
		},
	}
	hc := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	for _, x := range xs {
		var body io.Reader
		if x.Body != "" {
			body = strings.NewReader(x.Body)
		}
		req, err := http.NewRequest(x.Method, "https://localhost"+x.Path, body)
		if err != nil {
			t.Fatal(err)
		}
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", x.Method, x.Path, err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	tr.CloseIdleConnections()
	return relay.Sessions(t, 10*time.Second), keys.Bytes()
}

// freePort returns a loopback port that was free a moment ago.
func freePort(t testing.TB) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// HaveOpenSSL skips the test when the openssl command is missing.
func HaveOpenSSL(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("openssl"); err != nil {
		t.Skip("openssl not installed (Debian: apt-get install openssl): OpenSSL-made sessions not tested")
	}
}

// OpenSSLServer starts `openssl s_server -WWW` on a loopback port,
// serving the files of a directory it returns with its address; args add
// to the command line (say -cipher). It is stopped at the end of the test.
func OpenSSLServer(t testing.TB, certFile, keyFile string, args ...string) (addr, dir string) {
	t.Helper()
	dir = t.TempDir()
	port := freePort(t)
	addr = fmt.Sprintf("127.0.0.1:%d", port)
	cmdArgs := append([]string{"s_server", "-accept", addr, "-cert", certFile, "-key", keyFile, "-WWW", "-quiet"}, args...)
	cmd := exec.Command("openssl", cmdArgs...)
	cmd.Dir = dir
	var stderr syncBuffer
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	for deadline := time.Now().Add(10 * time.Second); ; {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("openssl s_server did not listen on %s: %s", addr, stderr.Bytes())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return addr, dir
}

// OpenSSLClient runs `openssl s_client` to addr, writing each of input's
// pieces to its standard input with a pause between them (so that a
// piece "k\n" or "K\n" arrives as the key update command), then waits
// for the server to close. It returns the key log s_client wrote.
func OpenSSLClient(t testing.TB, addr string, input []string, args ...string) []byte {
	t.Helper()
	keylog := filepath.Join(t.TempDir(), "keylog")
	cmdArgs := append([]string{"s_client", "-connect", addr, "-keylogfile", keylog, "-servername", "localhost"}, args...)
	cmd := exec.Command("openssl", cmdArgs...)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	time.Sleep(300 * time.Millisecond) // the handshake
	for _, in := range input {
		if _, err := io.WriteString(stdin, in); err != nil {
			break // the server closed already
		}
		time.Sleep(300 * time.Millisecond)
	}
	select {
	case <-done:
	case <-time.After(time.Second):
		stdin.Close()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("openssl s_client did not end: %s", out.Bytes())
		}
	}
	b, err := os.ReadFile(keylog)
	if err != nil {
		t.Fatalf("openssl s_client wrote no key log: %v\n%s", err, out.Bytes())
	}
	return b
}

// GoHTTPServer serves HTTP/1.1 over TLS with net/http on a loopback port
// (the handler of HTTPSessions) until the end of the test, and returns
// its address.
func GoHTTPServer(t testing.TB, cfg *tls.Config) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := newServer(cfg)
	go srv.ServeTLS(ln, "", "")
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// newServer returns the test HTTPS server; it speaks HTTP/2 only when
// cfg.NextProtos offers "h2" (net/http would otherwise refuse suites that
// HTTP/2 forbids).
func newServer(cfg *tls.Config) *http.Server {
	srv := &http.Server{Handler: handler(), TLSConfig: cfg.Clone()}
	h2 := false
	for _, p := range cfg.NextProtos {
		h2 = h2 || p == "h2"
	}
	if !h2 {
		srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	}
	return srv
}

// maxBytes bounds the body of /bytes/N.
const maxBytes = 16 << 20

// handler answers "resp:<path>" (404 under /missing), or N bytes for
// /bytes/N.
func handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "text/plain")
		if n, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/bytes/")); err == nil && n >= 0 && n <= maxBytes {
			w.Write(bytes.Repeat([]byte("x"), n))
			return
		}
		if strings.HasPrefix(r.URL.Path, "/missing") {
			w.WriteHeader(http.StatusNotFound)
		}
		fmt.Fprintf(w, "resp:%s", r.URL.Path)
	})
}
