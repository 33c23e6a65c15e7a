package engine

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/xml"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/http2"

	"github.com/flowlake/flowlake/internal/testcap"
	"github.com/flowlake/flowlake/internal/tlsdecrypt/tlstest"
	"github.com/flowlake/flowlake/schema"
)

// lockedBuffer is a bytes.Buffer for the writes of several goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) Bytes() []byte {
	l.mu.Lock()
	defer l.mu.Unlock()
	return bytes.Clone(l.b.Bytes())
}

// h2Req is one request of h2Session.
type h2Req struct {
	Method, Path, Body, ContentType string
}

// h2Handler answers /bytes/N with N bytes, /missing… with 404, a gRPC
// call (content-type application/grpc) with a length-prefixed message
// and the trailers grpc-status 0 and grpc-message, and anything else
// with "resp:<path> <n>" where n is the request body's length.
func h2Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, _ := io.Copy(io.Discard, r.Body)
		if r.Header.Get("Content-Type") == "application/grpc" {
			w.Header().Set("Content-Type", "application/grpc")
			w.Header().Set("Trailer", "Grpc-Status, Grpc-Message")
			msg := "\n\x0bHello world"
			w.Write(append([]byte{0, 0, 0, 0, byte(len(msg))}, msg...))
			w.Header().Set("Grpc-Status", "0")
			w.Header().Set("Grpc-Message", "OK")
			return
		}
		w.Header().Set("Content-Type", "text/plain")
		if k, err := strconv.Atoi(strings.TrimPrefix(r.URL.Path, "/bytes/")); err == nil && k >= 0 && k <= 16<<20 {
			w.Write(bytes.Repeat([]byte("x"), k))
			return
		}
		if strings.HasPrefix(r.URL.Path, "/missing") {
			w.WriteHeader(http.StatusNotFound)
		}
		fmt.Fprintf(w, "resp:%s %d", r.URL.Path, n)
	})
}

// h2Session runs net/http's HTTP/2 server and client on one connection
// through a recording relay: over TLS with ALPN h2 when certs is set
// (version bounds the TLS version), else cleartext with prior knowledge.
// The first request is made alone, the others concurrently on the same
// connection. Both sides keep their flow-control windows at 64 KiB, so
// large bodies need WINDOW_UPDATE frames. It returns the session and the
// client's key log.
func h2Session(t *testing.T, certs *tlstest.Certs, version uint16, reqs []h2Req) (*tlstest.Session, []byte) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h2Handler(), Protocols: new(http.Protocols),
		HTTP2: &http.HTTP2Config{MaxReceiveBufferPerStream: 64 << 10, MaxReceiveBufferPerConnection: 64 << 10}}
	keys := &lockedBuffer{}
	tr := &http.Transport{Protocols: new(http.Protocols),
		HTTP2: &http.HTTP2Config{MaxReceiveBufferPerStream: 64 << 10, MaxReceiveBufferPerConnection: 64 << 10}}
	scheme := "http"
	if certs != nil {
		scheme = "https"
		srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{certs.ECDSA}, NextProtos: []string{"h2"}}
		srv.Protocols.SetHTTP2(true)
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true, MaxVersion: version, NextProtos: []string{"h2"}, KeyLogWriter: keys}
		tr.Protocols.SetHTTP2(true)
		go srv.ServeTLS(ln, "", "")
	} else {
		srv.Protocols.SetUnencryptedHTTP2(true)
		tr.Protocols.SetUnencryptedHTTP2(true)
		go srv.Serve(ln)
	}
	defer srv.Close()
	relay := tlstest.NewRelay(t, ln.Addr().String())
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, network, relay.Addr())
	}
	hc := &http.Client{Transport: tr, Timeout: 30 * time.Second}
	do := func(x h2Req) error {
		var body io.Reader
		if x.Body != "" {
			body = strings.NewReader(x.Body)
		}
		req, err := http.NewRequest(x.Method, scheme+"://localhost"+x.Path, body)
		if err != nil {
			return err
		}
		if x.ContentType != "" {
			req.Header.Set("Content-Type", x.ContentType)
		}
		resp, err := hc.Do(req)
		if err != nil {
			return fmt.Errorf("%s %s: %w", x.Method, x.Path, err)
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return err
		}
		if resp.ProtoMajor != 2 {
			return fmt.Errorf("%s %s: %s", x.Method, x.Path, resp.Proto)
		}
		return nil
	}
	if err := do(reqs[0]); err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, len(reqs))
	for _, x := range reqs[1:] {
		go func() { errs <- do(x) }()
	}
	for range reqs[1:] {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	tr.CloseIdleConnections()
	sess := relay.Sessions(t, 10*time.Second)
	if len(sess) != 1 {
		t.Fatalf("%d connections, want 1", len(sess))
	}
	return sess[0], keys.Bytes()
}

// h2Reqs are the requests of the generated HTTP/2 sessions.
var h2Reqs = []h2Req{
	{Method: "GET", Path: "/index.html"},
	{Method: "GET", Path: "/bytes/1000000"},
	{Method: "POST", Path: "/api/items?x=1", Body: strings.Repeat("payload ", 25000), ContentType: "text/plain"},
	{Method: "GET", Path: "/missing/thing"},
	{Method: "POST", Path: "/helloworld.Greeter/SayHello", Body: "\x00\x00\x00\x00\x07\n\x05world", ContentType: "application/grpc"},
	{Method: "GET", Path: "/bytes/10"},
	{Method: "GET", Path: "/a?" + strings.Repeat("q", 100)},
}

// checkH2Rows checks the http rows of one h2Reqs session.
func checkH2Rows(t *testing.T, rows []schema.HTTP, tlsOn bool) {
	t.Helper()
	var got, want []string
	for _, x := range h2Reqs {
		st := 200
		if strings.HasPrefix(x.Path, "/missing") {
			st = 404
		}
		want = append(want, fmt.Sprintf("%s %s %d tls=%v", x.Method, x.Path, st, tlsOn))
	}
	sort.Strings(want)
	got = httpLines(rows)
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("http rows\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	seqs := map[int32]bool{}
	for _, r := range rows {
		if r.Version != "HTTP/2" || !r.Complete || r.Error != "" || r.Host != "localhost" || r.TS == 0 || r.TSEnd < r.TS {
			t.Errorf("row %s %s: version %q complete %v error %q host %q ts %d..%d", r.Method, r.URI, r.Version, r.Complete, r.Error, r.Host, r.TS, r.TSEnd)
		}
		seqs[r.Seq] = true
		switch {
		case r.URI == "/bytes/1000000":
			if r.RespBodyBytes != 1000000 || !strings.HasPrefix(r.RespBody, "xxxx") {
				t.Errorf("large response: %d bytes, preview %.10q", r.RespBodyBytes, r.RespBody)
			}
		case strings.HasPrefix(r.URI, "/api/items"):
			if r.ReqBodyBytes != 200000 || r.Path != "/api/items" || r.Query != "x=1" || r.RespBody != "resp:/api/items 200000" {
				t.Errorf("POST: %d bytes, path %q query %q, response %q", r.ReqBodyBytes, r.Path, r.Query, r.RespBody)
			}
		case strings.Contains(r.URI, "Greeter"):
			if r.ContentType != "application/grpc" || r.Reason != "grpc-status 0" || !strings.Contains(r.RespHeaders, "grpc-status: 0\n") ||
				!strings.Contains(r.RespHeaders, "grpc-message: OK\n") || r.RespBodyBytes != 18 {
				t.Errorf("gRPC: content type %q reason %q headers %q body %d", r.ContentType, r.Reason, r.RespHeaders, r.RespBodyBytes)
			}
		}
	}
	if len(seqs) != len(rows) {
		t.Errorf("%d distinct seq for %d rows", len(seqs), len(rows))
	}
}

// TestGeneratedH2 runs net/http's HTTP/2 client and server (concurrent
// streams, a 1 MB response and a 200 KB upload under 64 KiB flow-control
// windows, a 404, a gRPC-shaped call with trailers) over TLS 1.2, TLS 1.3
// with the key log, and cleartext with prior knowledge; writes each
// session as a pcap and parses it: the http rows are the requests made,
// cutting the pcap into pieces changes no row, and tshark, where
// installed, sees the same exchanges.
func TestGeneratedH2(t *testing.T) {
	certs := tlstest.NewCerts(t)
	_, haveTshark := exec.LookPath("tshark")
	for _, c := range []struct {
		name    string
		version uint16
	}{{"TLS 1.2", tls.VersionTLS12}, {"TLS 1.3", tls.VersionTLS13}, {"h2c", 0}} {
		t.Run(c.name, func(t *testing.T) {
			cc := certs
			if c.version == 0 {
				cc = nil
			}
			sess, keys := h2Session(t, cc, c.version, h2Reqs)
			dir := t.TempDir()
			pcap, keyPath := filepath.Join(dir, "s.pcap"), filepath.Join(dir, "keys")
			tlstest.WritePcap(t, pcap, []*tlstest.Session{sess})
			if err := os.WriteFile(keyPath, keys, 0o600); err != nil {
				t.Fatal(err)
			}
			col := parseKeyed(t, keyPath, pcap)
			checkH2Rows(t, col.HTTPRows, cc != nil)
			if len(col.TCPRows) != 1 {
				t.Fatalf("%d tcp rows", len(col.TCPRows))
			}
			app := "h2c"
			if cc != nil {
				app = "h2"
				if len(col.TLSRows) != 1 || col.TLSRows[0].KeyStatus != "decrypted" || col.TLSRows[0].ALPN != "h2" {
					t.Fatalf("tls rows %+v", col.TLSRows)
				}
			} else {
				// the scenario exercises flow control
				if n := countFrames(t, sess.Stream(true), http2.FrameWindowUpdate); n < 5 {
					t.Errorf("client sent %d WINDOW_UPDATE frames", n)
				}
				if n := countFrames(t, sess.Stream(false), http2.FrameWindowUpdate); n < 2 {
					t.Errorf("server sent %d WINDOW_UPDATE frames", n)
				}
			}
			if r := col.TCPRows[0]; r.AppProtocol != app || r.HTTPExchanges != int32(len(h2Reqs)) {
				t.Errorf("tcp row: app %q, %d exchanges", r.AppProtocol, r.HTTPExchanges)
			}
			// split into pieces of 7 and 50 packets
			whole := col
			sortRows(whole)
			for _, n := range []int{7, 50} {
				files := splitGo(t, pcap, t.TempDir(), n)
				split := &Collector{}
				if _, err := ParseFiles(t.Context(), files, Config{Agent: "test", Keys: readKeylog(t, keyPath)}, split, split, FilesOptions{}); err != nil {
					t.Fatal(err)
				}
				sortRows(split)
				compareRows(t, "http", whole.HTTPRows, split.HTTPRows)
				compareRows(t, "tcp", whole.TCPRows, split.TCPRows)
			}
			if haveTshark == nil {
				opts := []string{"-o", "tls.keylog_file:" + keyPath}
				if cc == nil {
					opts = []string{"-d", "tcp.port==443,http2"}
				}
				ours := flowlakeExchanges(col)
				theirs := tsharkH2(t, pcap, opts)
				onlyUs, onlyThem := diff(ours, theirs)
				for _, x := range onlyUs {
					t.Errorf("only flowlake: %s", x)
				}
				for _, x := range onlyThem {
					t.Errorf("only tshark: %s", x)
				}
				t.Logf("tshark: %d HTTP/2 exchanges, flowlake %d, matched %d", len(theirs), len(ours), len(ours)-len(onlyUs))
			}
		})
	}
}

// countFrames counts the frames of a type in one direction of a cleartext
// session.
func countFrames(t *testing.T, b []byte, typ http2.FrameType) int {
	b = bytes.TrimPrefix(b, []byte(http2.ClientPreface))
	fr := http2.NewFramer(nil, bytes.NewReader(b))
	fr.SetMaxReadFrameSize(1 << 24)
	n := 0
	for {
		f, err := fr.ReadFrame()
		if err != nil {
			return n
		}
		if f.Header().Type == typ {
			n++
		}
	}
}

// pdml is the part of tshark's PDML output the HTTP/2 comparison reads.
type pdmlField struct {
	Name   string      `xml:"name,attr"`
	Show   string      `xml:"show,attr"`
	Fields []pdmlField `xml:"field"`
}

type pdmlPacket struct {
	Protos []struct {
		Name   string      `xml:"name,attr"`
		Fields []pdmlField `xml:"field"`
	} `xml:"proto"`
}

func (f *pdmlField) find(name string) string {
	for i := range f.Fields {
		if f.Fields[i].Name == name {
			return f.Fields[i].Show
		}
	}
	return ""
}

// headers collects the name/value pairs of http2.header fields below f.
func (f *pdmlField) headers(out map[string]string) {
	for i := range f.Fields {
		c := &f.Fields[i]
		if c.Name == "http2.header" {
			if n := c.find("http2.header.name"); n != "" {
				if _, ok := out[n]; !ok {
					out[n] = c.find("http2.header.value")
				}
			}
			continue
		}
		c.headers(out)
	}
}

// tsharkH2 runs tshark on a capture and returns its HTTP/2 requests (from
// HEADERS and PUSH_PROMISE frames) with the status of their responses.
func tsharkH2(t *testing.T, path string, opts []string) []exchange {
	t.Helper()
	args := append([]string{"-n", "-r", path}, opts...)
	out, err := exec.Command("tshark", append(args, "-Y", "http2", "-T", "pdml")...).Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	type key struct {
		tcp    string
		stream string
	}
	xs := map[key]*exchange{}
	var order []key
	dec := xml.NewDecoder(bytes.NewReader(out))
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("tshark pdml: %v", err)
		}
		se, ok := tok.(xml.StartElement)
		if !ok || se.Name.Local != "packet" {
			continue
		}
		var p pdmlPacket
		if err := dec.DecodeElement(&p, &se); err != nil {
			t.Fatal(err)
		}
		var src, dst, sport, dport, stream string
		for _, pr := range p.Protos {
			for _, f := range pr.Fields {
				switch f.Name {
				case "ip.src", "ipv6.src":
					src = f.Show
				case "ip.dst", "ipv6.dst":
					dst = f.Show
				case "tcp.srcport":
					sport = f.Show
				case "tcp.dstport":
					dport = f.Show
				case "tcp.stream":
					stream = f.Show
				}
			}
		}
		for _, pr := range p.Protos {
			if pr.Name != "http2" {
				continue
			}
			for i := range pr.Fields {
				f := &pr.Fields[i]
				if f.Name != "http2.stream" {
					continue
				}
				typ, sid := f.find("http2.type"), f.find("http2.streamid")
				if typ != "1" && typ != "5" {
					continue
				}
				hs := map[string]string{}
				f.headers(hs)
				client, server := hostPort(src, sport), hostPort(dst, dport)
				if typ == "5" {
					sid = f.find("http2.push_promise.promised_stream_id")
					client, server = server, client
				}
				k := key{stream, sid}
				if m, ok := hs[":method"]; ok {
					if xs[k] == nil {
						order = append(order, k)
					}
					xs[k] = &exchange{Client: client, Server: server, Method: m, Host: hs[":authority"], URI: hs[":path"]}
				}
				if st, ok := hs[":status"]; ok && xs[k] != nil {
					if v, _ := strconv.Atoi(st); v >= 200 {
						xs[k].Status = v
					}
				}
			}
		}
	}
	var res []exchange
	for _, k := range order {
		res = append(res, *xs[k])
	}
	return res
}

// h2Truth is the HTTP/2 part of a capture's truth file.
type h2Truth struct {
	Protocols       []string `json:"protocols"`
	HTTP2Requests   int      `json:"http2_requests"`
	HTTP2RequestLst [][4]any `json:"http2_request_list"` // frame, method, authority, path
}

func loadH2Truth(t *testing.T, name string) h2Truth {
	t.Helper()
	p := testcap.Path(t, name)
	p = strings.TrimSuffix(p, filepath.Ext(p)) + ".truth.json"
	var tr h2Truth
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(raw, &tr); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return tr
}

func (h h2Truth) hasHTTP2() bool {
	for _, p := range h.Protocols {
		if p == "http2" {
			return true
		}
	}
	return false
}
