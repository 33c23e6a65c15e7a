package bench

import (
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/flowlake/flowlake/internal/tlsdecrypt/tlstest"
)

// realKeylog is the key log of the real-world capture, beside it.
const realKeylog = "bench-mixed-web.keylog"

// keyedTools are flowlake and tshark decrypting with the key log at keys.
// With h2, tshark prints the HTTP/2 requests' fields instead of HTTP/1's.
func keyedTools(fl tool, keys string, h2 bool) []tool {
	fl.note = "parse --keylog: TCP reassembly + TLS decryption + HTTP/DNS/TLS parsing + Parquet lake"
	fl.args = func(capture, dir string) []string {
		return []string{"parse", "--lake", dir, "--keylog", keys, capture}
	}
	ts := tsharkTool()
	if h2 {
		ts.args = func(capture, _ string) []string {
			return []string{"-n", "-r", capture, "-Y", "http2.headers.method", "-T", "fields",
				"-e", "ip.src", "-e", "ip.dst", "-e", "http2.headers.method", "-e", "http2.headers.authority", "-e", "http2.headers.path"}
		}
	}
	plain := ts.args
	ts.note = "full dissection with -o tls.keylog_file, HTTP request fields to /dev/null"
	ts.args = func(capture, dir string) []string {
		return append([]string{"-o", "tls.keylog_file:" + keys}, plain(capture, dir)...)
	}
	return []tool{fl, ts}
}

// makeHTTPSCapture records HTTPS traffic made on the spot (net/http client
// and server over loopback through a recording relay, no root needed) as
// a pcap of synthetic TCP packets, with its key log: 48 keep-alive
// connections of TLS 1.2 (AES-128-GCM, AES-256-GCM, ChaCha20-Poly1305)
// and TLS 1.3, 24 requests each, answers of 64 KiB and POST bodies of
// 8 KiB; HTTP/2 (ALPN h2) when h2 is set, else HTTP/1.1. It is made once
// and kept beside the synthetic capture.
func makeHTTPSCapture(t *testing.T, c config, h2 bool) (capture, keys string) {
	t.Helper()
	dir := filepath.Dir(c.capture)
	name := "https-generated"
	if h2 {
		name = "h2-generated"
	}
	capture, keys = filepath.Join(dir, name+".pcap"), filepath.Join(dir, name+".keylog")
	if _, err := os.Stat(capture); err == nil {
		if _, err := os.Stat(keys); err == nil {
			return capture, keys
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	certs := tlstest.NewCerts(t)
	server := &tls.Config{Certificates: []tls.Certificate{certs.ECDSA}}
	var protos []string
	if h2 {
		protos = []string{"h2"}
		server.NextProtos = protos
	}
	var xs []tlstest.HTTPExchange
	for i := range 24 {
		x := tlstest.HTTPExchange{Method: "GET", Path: fmt.Sprintf("/bytes/%d", 64<<10)}
		if i%4 == 3 {
			x = tlstest.HTTPExchange{Method: "POST", Path: "/bytes/512", Body: string(make([]byte, 8<<10))}
		}
		xs = append(xs, x)
	}
	var sessions []*tlstest.Session
	var keylog []byte
	suites := []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, tls.TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384,
		tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, 0}
	for i := range 48 {
		client := &tls.Config{InsecureSkipVerify: true, NextProtos: protos}
		if id := suites[i%len(suites)]; id != 0 {
			client.MaxVersion, client.CipherSuites = tls.VersionTLS12, []uint16{id}
		}
		s, k := tlstest.HTTPSessions(t, client, server, xs, false)
		sessions = append(sessions, s...)
		keylog = append(keylog, k...)
	}
	tlstest.WritePcap(t, capture+".tmp", sessions)
	if err := os.WriteFile(keys, keylog, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(capture+".tmp", capture); err != nil {
		t.Fatal(err)
	}
	return capture, keys
}
