//go:build linux

package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/flowlake/flowlake/internal/agent/agenttest"
	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/pipeline"
	"github.com/flowlake/flowlake/internal/pipeline/pipelinetest"
	"github.com/flowlake/flowlake/internal/store"
	"github.com/flowlake/flowlake/schema"
)

// tlsRig is nginx serving HTTPS on 127.0.0.1 (TLS 1.2 and 1.3, a
// self-signed certificate) and a cgroup v2 for the clients whose secrets
// the agent takes.
type tlsRig struct {
	dir    string
	port   int
	cgroup string
}

func newTLSRig(t *testing.T) *tlsRig {
	t.Helper()
	agenttest.RequireRoot(t)
	agenttest.RequireTools(t, "nginx", "curl", "openssl", "tshark", "mergecap", "tcpdump")
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		t.Skip("the kernel has no BTF (/sys/kernel/btf/vmlinux): eBPF TLS key capture cannot run here")
	}
	r := &tlsRig{dir: t.TempDir()}
	cert, key := filepath.Join(r.dir, "cert.pem"), filepath.Join(r.dir, "key.pem")
	if out, err := exec.Command("openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
		"-keyout", key, "-out", cert, "-subj", "/CN=flowlake.test", "-days", "1").CombinedOutput(); err != nil {
		t.Fatalf("openssl req: %v\n%s", err, out)
	}
	r.port = freeTCPPort(t)
	conf := fmt.Sprintf(`daemon off;
user root;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 256; }
http {
    default_type text/plain;
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    server {
        listen 127.0.0.1:%[2]d ssl;
        ssl_certificate %[3]s;
        ssl_certificate_key %[4]s;
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_session_tickets off;
        location = /hello { return 200 "hello over TLS\n"; }
        location = /api/items { default_type application/json; return 201 '{"id":1}\n'; }
        location = /go-client { return 200 "not for your eyes\n"; }
        location / { return 404; }
    }
}
`, r.dir, r.port, cert, key)
	confPath := filepath.Join(r.dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	p := agenttest.Start(t, exec.Command("nginx", "-c", confPath))
	deadline := time.Now().Add(10 * time.Second)
	for exec.Command("bash", "-c", fmt.Sprintf("exec 3<>/dev/tcp/127.0.0.1/%d", r.port)).Run() != nil {
		select {
		case <-p.Done():
			t.Fatalf("nginx exited: %s", p.Out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("nginx did not start: %s", p.Out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	r.cgroup = newCgroup(t)
	return r
}

// newCgroup makes a cgroup v2 directory for the test, removed at the end.
func newCgroup(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	mount := ""
	for _, line := range strings.Split(string(data), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if f := strings.Fields(pre); ok && strings.HasPrefix(post, "cgroup2 ") && len(f) >= 5 {
			mount = f[4]
			break
		}
	}
	if mount == "" {
		t.Skip("no cgroup v2 hierarchy mounted")
	}
	cg := filepath.Join(mount, fmt.Sprintf("flowlake-agent-tls-%d", os.Getpid()))
	if err := os.Mkdir(cg, 0o755); err != nil {
		t.Skipf("cannot create a cgroup: %v", err)
	}
	t.Cleanup(func() {
		for range 50 {
			if os.Remove(cg) == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	})
	return cg
}

// curl runs curl inside the rig's cgroup with SSLKEYLOGFILE, HTTP/1.1.
func (r *tlsRig) curl(t *testing.T, keylog string, args ...string) {
	t.Helper()
	script := `echo $$ > "$0/cgroup.procs" && exec curl -sS -k --http1.1 --max-time 20 "$@"`
	cmd := exec.Command("sh", append([]string{"-c", script, r.cgroup}, args...)...)
	cmd.Env = append(os.Environ(), "SSLKEYLOGFILE="+keylog)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("curl %v: %v\n%s", args, err, out)
	}
}

func (r *tlsRig) url(path string) string { return fmt.Sprintf("https://127.0.0.1:%d%s", r.port, path) }

// goClient makes a request with crypto/tls (no OpenSSL), outside the
// cgroup, and returns the connection's key log lines.
func (r *tlsRig) goClient(t *testing.T, path string, version uint16) []string {
	t.Helper()
	var kl bytes.Buffer
	c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", r.port), &tls.Config{
		InsecureSkipVerify: true, KeyLogWriter: &kl, NextProtos: []string{"http/1.1"}, MinVersion: version, MaxVersion: version,
	})
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: flowlake.test\r\nConnection: close\r\n\r\n", path)
	body, err := io.ReadAll(c)
	c.Close()
	if err != nil || !bytes.Contains(body, []byte("not for your eyes")) {
		t.Fatalf("go client: %v %q", err, body)
	}
	lines := strings.Split(strings.TrimSpace(kl.String()), "\n")
	if len(lines) == 0 || len(strings.Fields(lines[0])) != 3 {
		t.Fatal("go client wrote no key log")
	}
	return lines
}

// runAgent runs `flowlake agent --iface lo` on nginx's port into a
// directory store, with the extra flags, while traffic runs; it returns
// the store and the agent's log.
func (r *tlsRig) runAgent(t *testing.T, id string, extra []string, traffic func()) (store.Store, string) {
	t.Helper()
	storeDir := filepath.Join(r.dir, id+"-store")
	logs := &syncBuf{}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	args := append([]string{"agent", "--iface", "lo", "--filter", fmt.Sprintf("tcp port %d", r.port),
		"--store", storeDir, "--agent-id", id, "--streams", "2", "--spool", filepath.Join(r.dir, id+"-spool"),
		"--max-span", "1s", "--status-every", "2s", "--metrics", "off", "--hosts", "off", "--promisc=false",
		"--log-level", "debug"}, extra...)
	go func() { done <- run(ctx, args, func(string) string { return "" }, io.Discard, logs) }()
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(logs.String(), `"msg":"agent started"`) {
		select {
		case err := <-done:
			t.Fatalf("agent: %v\n%s", err, logs.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent not started after 60 s:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	traffic()
	time.Sleep(500 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("agent: %v\n%s", err, logs.String())
	}
	st, err := store.NewLocal(storeDir)
	if err != nil {
		t.Fatal(err)
	}
	return st, logs.String()
}

// parseAll runs the pipeline over an agent's secrets and segments, as the
// bucket notifications would (a stream's secrets before its segments).
func parseAll(t *testing.T, st store.Store, id string, segs map[int][]storedSegment) {
	t.Helper()
	pl := pipeline.New(pipeline.Config{Store: st, WaitPredecessor: 5 * time.Second})
	ctx := context.Background()
	secrets := secretsObjects(t, st, id)
	for k, ss := range segs {
		for _, s := range secrets[k] {
			if err := pl.Ingest(ctx, s.key); err != nil {
				t.Fatal(err)
			}
		}
		for _, s := range ss {
			if err := pl.Ingest(ctx, s.key); err != nil {
				t.Fatal(err)
			}
		}
		if err := pl.FlushStream(ctx, keys.Stream{Agent: id, Stream: k}, uint64(len(ss)-1)); err != nil {
			t.Fatal(err)
		}
	}
}

// syncBuf is a log buffer written by the agent and read by the test.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// The whole TLS path on one host: nginx serves HTTPS on 127.0.0.1; curl
// (OpenSSL 3) makes requests over TLS 1.2 and 1.3 from a cgroup, with
// SSLKEYLOGFILE; a Go client (crypto/tls, no OpenSSL) makes one outside
// it. `flowlake agent --iface lo --tls-cgroup CG` captures the packets
// (AF_PACKET, filtered on nginx's port) and, with eBPF, the secrets of the
// cgroup's processes into a directory store.
//
//   - The secrets objects hold exactly curl's own key log, byte for byte
//     (every stream all of it), and nothing of the Go client's connection;
//     every secrets object serves a segment; no secret shows in the
//     agent's log.
//   - The pipeline parses the segments and secrets into the lake, which
//     holds exactly the HTTP exchanges tshark decrypts from the same
//     packets with curl's key log (method, uri, status); the Go client's
//     handshake is a tls row without keys and no http row.
func TestAgentTLSKeysEndToEnd(t *testing.T) {
	r := newTLSRig(t)
	keylog := filepath.Join(r.dir, "curl.keylog")
	var goLines []string
	st, log := r.runAgent(t, "tls-e2e", []string{"--tls-cgroup", r.cgroup}, func() {
		r.curl(t, keylog, "--tlsv1.3", "-o", "/dev/null", r.url("/hello"), "-o", "/dev/null", r.url("/missing"))
		r.curl(t, keylog, "--tlsv1.2", "--tls-max", "1.2", "-o", "/dev/null", r.url("/hello"))
		r.curl(t, keylog, "--tlsv1.2", "--tls-max", "1.2", "-o", "/dev/null", "-X", "POST", "-H", "Content-Type: application/json",
			"-d", `{"name":"x"}`, r.url("/api/items"))
		time.Sleep(1500 * time.Millisecond) // a segment cut between the connections
		r.curl(t, keylog, "--tlsv1.3", "-o", "/dev/null", r.url("/api/items?x=1"), "-o", "/dev/null", r.url("/hello"))
		goLines = r.goClient(t, "/go-client", tls.VersionTLS13)
	})
	goRandom := strings.Fields(goLines[0])[1]
	want := keylogLines(t, keylog)
	if len(want) < 4 {
		t.Fatalf("curl's key log has %d connections", len(want))
	}
	segs := agentSegments(t, st, "tls-e2e")

	t.Run("secrets match curl's key log", func(t *testing.T) {
		wantLines := slices.Concat(slices.Collect(mapValues(want))...)
		slices.Sort(wantLines)
		secrets := secretsObjects(t, st, "tls-e2e")
		if len(secrets) == 0 {
			t.Fatalf("no secrets object; agent log:\n%s", log)
		}
		t.Logf("curl's key log: %d connections, %d lines; %d secrets objects on stream 0, %d on stream 1",
			len(want), len(wantLines), len(secrets[0]), len(secrets[1]))
		// A line goes into every stream's next segment (and the one after
		// when it came during a cut's key grace); a stream that sees no
		// packet after it has no segment for it (nor needs it). So every
		// stream holds only curl's lines, in one segment's secrets or two
		// consecutive ones, and together they hold all; the lake below
		// shows that each connection's stream had its keys in time.
		var union []string
		for k := range 2 {
			var got []string
			inSeg := map[string][]uint64{}
			for _, s := range secrets[k] {
				if s.seq >= uint64(len(segs[k])) || keys.Secrets(keys.Stream{Agent: "tls-e2e", Stream: k}, s.seq, time.Unix(0, segs[k][s.seq].meta.FirstTS)) != s.key {
					t.Errorf("%s serves no segment", s.key)
				}
				for _, l := range s.lines {
					if len(inSeg[l]) == 0 {
						got = append(got, l)
					}
					inSeg[l] = append(inSeg[l], s.seq)
				}
			}
			for _, l := range got {
				if !slices.Contains(wantLines, l) {
					t.Errorf("stream %d: a line that is not in curl's key log (label %s)", k, strings.Fields(l)[0])
				}
				if seqs := inSeg[l]; len(seqs) > 2 || len(seqs) == 2 && seqs[1] != seqs[0]+1 {
					t.Errorf("stream %d: a line in the secrets of segments %v", k, seqs)
				}
				if strings.Contains(l, goRandom) {
					t.Errorf("stream %d: a secret of the Go client's connection (outside the cgroup)", k)
				}
				if !slices.Contains(union, l) {
					union = append(union, l)
				}
			}
		}
		slices.Sort(union)
		if !slices.Equal(union, wantLines) {
			t.Errorf("the secrets objects hold %d of curl's %d key log lines", countCommon(union, wantLines), len(wantLines))
		}
		for _, l := range wantLines {
			if secret := strings.Fields(l)[2]; strings.Contains(log, secret[:32]) {
				t.Fatalf("a secret shows in the agent's log")
			}
		}
		if !strings.Contains(log, `"msg":"tls keys: attached to libssl"`) || !strings.Contains(log, `"msg":"tls keys summary"`) {
			t.Errorf("the log does not tell the TLS key capture:\n%s", log)
		}
	})

	t.Run("lake matches tshark", func(t *testing.T) {
		// tshark's view: the agent's segments merged into one capture,
		// decrypted with curl's own key log.
		var files []string
		for k, ss := range segs {
			for _, s := range ss {
				files = append(files, writeSegmentPcapng(t, r.dir, fmt.Sprintf("s%d-%d", k, s.meta.Seq), s.data))
			}
		}
		merged := filepath.Join(r.dir, "merged.pcapng")
		if out, err := exec.Command("mergecap", append([]string{"-w", merged}, files...)...).CombinedOutput(); err != nil {
			t.Fatalf("mergecap: %v\n%s", err, out)
		}
		ref := tsharkExchanges(t, merged, keylog, r.port)
		if len(ref) != 6 {
			t.Errorf("tshark decrypts %d exchanges, want the 6 curl made: %v", len(ref), ref)
		}

		parseAll(t, st, "tls-e2e", segs)
		var got []string
		for _, h := range pipelinetest.ReadTable[schema.HTTP](t, st, schema.TableHTTP) {
			got = append(got, fmt.Sprintf("%s %s %d tls=%v", h.Method, h.URI, h.Status, h.TLS))
			if strings.Contains(h.URI, "go-client") {
				t.Errorf("the Go client's request was decrypted without keys: %s", h.URI)
			}
		}
		var wantRows []string
		for _, e := range ref {
			wantRows = append(wantRows, e+" tls=true")
		}
		slices.Sort(got)
		slices.Sort(wantRows)
		t.Logf("lake: %d http rows, tshark: %d exchanges: %s", len(got), len(wantRows), strings.Join(got, "; "))
		if !slices.Equal(got, wantRows) {
			t.Errorf("lake http rows:\n  %s\ntshark:\n  %s", strings.Join(got, "\n  "), strings.Join(wantRows, "\n  "))
		}
		tlsRows := pipelinetest.ReadTable[schema.TLS](t, st, schema.TableTLS)
		var goRow *schema.TLS
		decrypted := 0
		for i := range tlsRows {
			if tlsRows[i].Decrypted {
				decrypted++
			} else if goRow == nil {
				goRow = &tlsRows[i]
			}
		}
		if decrypted != len(want) || len(tlsRows) != len(want)+1 {
			t.Errorf("tls rows: %d, %d decrypted; want %d (curl's connections) + 1 (the Go client's)", len(tlsRows), decrypted, len(want))
		}
		if goRow == nil || goRow.KeyStatus == "" || goRow.KeyStatus == "decrypted" {
			t.Errorf("the Go client's tls row: %+v, want not decrypted with a key_status that says why", goRow)
		} else {
			t.Logf("Go client's tls row: version %s, key_status %q", goRow.Version, goRow.KeyStatus)
		}
	})
}

// Without a filter the agent takes the secrets of every process that uses
// OpenSSL: here nginx's (it calls SSL_do_handshake, SSL_read and SSL_write
// itself), for clients that do not use OpenSSL (crypto/tls) over TLS 1.2
// and 1.3. The secrets objects hold the clients' own key log lines (and
// OpenSSL's EXPORTER_SECRET), and the lake holds the decrypted requests.
func TestAgentTLSKeysAllProcesses(t *testing.T) {
	r := newTLSRig(t)
	var clients [][]string
	st, log := r.runAgent(t, "tls-all", []string{"--tls-keys"}, func() {
		clients = append(clients, r.goClient(t, "/go-client", tls.VersionTLS13), r.goClient(t, "/go-client", tls.VersionTLS12))
	})
	secrets := secretsObjects(t, st, "tls-all")
	var got []string
	for k := range 2 {
		for _, s := range secrets[k] {
			got = append(got, s.lines...)
		}
	}
	for _, lines := range clients {
		for _, l := range lines {
			if !slices.Contains(got, l) {
				t.Errorf("the secrets lack the client's %s line", strings.Fields(l)[0])
			}
		}
	}
	for _, l := range got {
		if strings.Contains(log, strings.Fields(l)[2][:32]) {
			t.Fatal("a secret shows in the agent's log")
		}
	}
	parseAll(t, st, "tls-all", agentSegments(t, st, "tls-all"))
	var rows []string
	for _, h := range pipelinetest.ReadTable[schema.HTTP](t, st, schema.TableHTTP) {
		rows = append(rows, fmt.Sprintf("%s %s %d tls=%v", h.Method, h.URI, h.Status, h.TLS))
	}
	want := []string{"GET /go-client 200 tls=true", "GET /go-client 200 tls=true"}
	if !slices.Equal(rows, want) {
		t.Errorf("lake http rows %q, want %q", rows, want)
	}
}

// keylogLines reads an NSS key log: its lines by client random.
func keylogLines(t *testing.T, path string) map[string][]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) == 3 && !strings.HasPrefix(line, "#") {
			out[f[1]] = append(out[f[1]], line)
		}
	}
	return out
}

func mapValues[K comparable, V any](m map[K]V) func(func(V) bool) {
	return func(yield func(V) bool) {
		for _, v := range m {
			if !yield(v) {
				return
			}
		}
	}
}

func countCommon(a, b []string) int {
	n := 0
	for _, x := range a {
		if slices.Contains(b, x) {
			n++
		}
	}
	return n
}

// writeSegmentPcapng writes a segment's pcapng (zstd-decompressed).
func writeSegmentPcapng(t *testing.T, dir, name string, data []byte) string {
	t.Helper()
	d, err := zstd.NewReader(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	raw, err := io.ReadAll(d)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name+".pcapng")
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// tsharkExchanges returns the HTTP exchanges tshark decrypts from a
// capture with a key log: "METHOD URI STATUS" (0 without a response).
func tsharkExchanges(t *testing.T, pcap, keylog string, port int) []string {
	t.Helper()
	out, err := exec.Command("tshark", "-r", pcap, "-2", "-o", "tls.keylog_file:"+keylog, "-d", fmt.Sprintf("tcp.port==%d,tls", port),
		"-Y", "http", "-T", "fields", "-E", "separator=|", "-e", "frame.number", "-e", "http.request.method",
		"-e", "http.request.uri", "-e", "http.response.code", "-e", "http.request_in").Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	type req struct{ method, uri string }
	reqs := map[string]req{}
	answered := map[string]string{}
	var order []string
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Split(sc.Text(), "|")
		if len(f) != 5 {
			continue
		}
		switch {
		case f[1] != "":
			reqs[f[0]] = req{f[1], f[2]}
			order = append(order, f[0])
		case f[3] != "":
			answered[f[4]] = f[3]
		}
	}
	var ex []string
	for _, n := range order {
		status := answered[n]
		if status == "" {
			status = "0"
		}
		ex = append(ex, fmt.Sprintf("%s %s %s", reqs[n].method, reqs[n].uri, status))
	}
	return ex
}

func freeTCPPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
