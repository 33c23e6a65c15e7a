//go:build linux

package tlskeys

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// liveCollector opens a collector, or skips the test when this host cannot
// run eBPF (not root, no BTF, no uprobes). As root with eBPF it must work.
func liveCollector(t *testing.T, cfg Config) (*Collector, *lineSink) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("eBPF TLS key capture needs root (CI runs the tests as root)")
	}
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		t.Skip("the kernel has no BTF (/sys/kernel/btf/vmlinux): the eBPF programs cannot be loaded")
	}
	if _, err := os.Stat("/sys/bus/event_source/devices/uprobe"); err != nil {
		t.Skip("the kernel has no uprobe PMU (CONFIG_UPROBE_EVENTS)")
	}
	if cfg.Rescan == 0 {
		cfg.Rescan = -1
	}
	c, err := Open(cfg)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	sink := &lineSink{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, sink.add) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		c.Close()
	})
	return c, sink
}

// lineSink collects key log lines by client random.
type lineSink struct {
	mu    sync.Mutex
	lines map[string][]string // client random hex → lines
}

func (s *lineSink) add(sec Secret) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.lines == nil {
		s.lines = map[string][]string{}
	}
	cr := fmt.Sprintf("%x", sec.ClientRandom)
	s.lines[cr] = append(s.lines[cr], strings.TrimSuffix(string(sec.AppendLine(nil)), "\n"))
}

func (s *lineSink) get(cr string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.lines[cr])
}

// waitFor waits until the sink holds n lines for the client random.
func (s *lineSink) waitFor(t *testing.T, cr string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		got := s.get(cr)
		if len(got) >= n || time.Now().After(deadline) {
			return got
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// readKeylog reads an NSS key log into lines by client random.
func readKeylog(t *testing.T, path string) map[string][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' {
			continue
		}
		fs := strings.Fields(line)
		if len(fs) != 3 {
			t.Fatalf("key log %s: malformed line", path)
		}
		out[fs[1]] = append(out[fs[1]], line)
	}
	return out
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// startSServer starts `openssl s_server -www` on 127.0.0.1 and waits until
// it accepts connections.
func startSServer(t *testing.T, dir string, extra ...string) (port int, pid int) {
	t.Helper()
	cert, key := writeCert(t, dir)
	port = freePort(t)
	args := append([]string{"s_server", "-accept", fmt.Sprintf("127.0.0.1:%d", port), "-cert", cert, "-key", key, "-www", "-quiet"}, extra...)
	cmd := exec.Command("openssl", args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitListening(t, port)
	return port, cmd.Process.Pid
}

func waitListening(t *testing.T, port int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("nothing listens on port %d: %v", port, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func needTool(t *testing.T, name string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("%s is not installed (CI installs it)", name)
	}
}

// handshake is one client run against a server: what it is, and the
// command line that writes the key log file.
type handshake struct {
	name string
	cmd  func(port int, keylog string) *exec.Cmd
}

func sClient(args ...string) func(int, string) *exec.Cmd {
	return func(port int, keylog string) *exec.Cmd {
		a := append([]string{"s_client", "-connect", fmt.Sprintf("127.0.0.1:%d", port), "-keylogfile", keylog, "-quiet"}, args...)
		cmd := exec.Command("openssl", a...)
		cmd.Stdin = strings.NewReader("GET / HTTP/1.0\r\n\r\n")
		return cmd
	}
}

func curl(args ...string) func(int, string) *exec.Cmd {
	return func(port int, keylog string) *exec.Cmd {
		a := append([]string{"-sS", "-k", "-o", "/dev/null", "--max-time", "20"}, args...)
		a = append(a, fmt.Sprintf("https://127.0.0.1:%d/", port))
		cmd := exec.Command("curl", a...)
		cmd.Env = append(os.Environ(), "SSLKEYLOGFILE="+keylog)
		return cmd
	}
}

// TestCollectorMatchesKeylog does real handshakes with the OpenSSL
// installed here (openssl s_client and curl as clients), TLS 1.2 and 1.3
// with each hash size, and checks that the key log lines the eBPF
// programs produce are byte for byte those of the library's own key log
// (-keylogfile, SSLKEYLOGFILE), for each connection. The server is
// openssl s_server (both ends use OpenSSL) or a crypto/tls server (only
// the client's side can give the secrets); the collector runs with all
// hooks and with HandshakeOnly.
func TestCollectorMatchesKeylog(t *testing.T) {
	needTool(t, "openssl")
	needTool(t, "curl")
	cases := []handshake{
		{"s_client TLS1.3 AES_256_GCM_SHA384", sClient("-tls1_3", "-ciphersuites", "TLS_AES_256_GCM_SHA384")},
		{"s_client TLS1.3 AES_128_GCM_SHA256", sClient("-tls1_3", "-ciphersuites", "TLS_AES_128_GCM_SHA256")},
		{"s_client TLS1.3 CHACHA20_POLY1305_SHA256", sClient("-tls1_3", "-ciphersuites", "TLS_CHACHA20_POLY1305_SHA256")},
		{"s_client TLS1.2 ECDHE-ECDSA-AES128-GCM-SHA256", sClient("-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-GCM-SHA256")},
		{"s_client TLS1.2 ECDHE-ECDSA-AES256-GCM-SHA384", sClient("-tls1_2", "-cipher", "ECDHE-ECDSA-AES256-GCM-SHA384")},
		{"curl TLS1.3", curl("--tlsv1.3")},
		{"curl TLS1.2", curl("--tlsv1.2", "--tls-max", "1.2")},
	}
	for _, handshakeOnly := range []bool{false, true} {
		t.Run(fmt.Sprintf("handshake-only=%v", handshakeOnly), func(t *testing.T) {
			c, sink := liveCollector(t, Config{HandshakeOnly: handshakeOnly})
			libs := c.Libraries()
			if len(libs) == 0 {
				t.Fatal("no libssl attached")
			}
			for _, l := range libs {
				t.Logf("attached: %s (OpenSSL %s from %s; offsets verified on: %q)", l.Path, l.Version, l.VersionFrom, l.Layout.Verified)
			}
			dir := t.TempDir()
			sPort, _ := startSServer(t, dir)
			goPort, _ := goTLSServer(t, dir, true)
			for _, server := range []struct {
				name string
				port int
			}{{"s_server", sPort}, {"crypto-tls", goPort}} {
				for _, hc := range cases {
					t.Run(server.name+" "+hc.name, func(t *testing.T) {
						keylog := filepath.Join(dir, strings.NewReplacer(" ", "_", "/", "_").Replace(server.name+" "+hc.name)+".keylog")
						cmd := hc.cmd(server.port, keylog)
						if out, err := cmd.CombinedOutput(); err != nil {
							t.Fatalf("%s: %v\n%s", cmd, err, out)
						}
						want := readKeylog(t, keylog)
						if len(want) == 0 {
							t.Fatalf("%s wrote no key log", cmd)
						}
						for cr, lines := range want {
							got := sink.waitFor(t, cr, len(lines))
							slices.Sort(lines)
							slices.Sort(got)
							if !slices.Equal(got, lines) {
								t.Errorf("connection %s…: eBPF lines differ from the library's key log:\n got %d lines, labels %v\nwant %d lines, labels %v\n(identical lines: %d)",
									cr[:8], len(got), labels(got), len(lines), labels(lines), common(got, lines))
							}
						}
					})
				}
			}
			st := c.Stats()
			t.Logf("stats: %+v", st)
			if st.Faults != 0 {
				t.Errorf("%d reads of process memory failed", st.Faults)
			}
		})
	}
}

// keylogBuf is a crypto/tls KeyLogWriter that keeps the lines by client
// random, in the order of the connections.
type keylogBuf struct {
	mu    sync.Mutex
	lines map[string][]string
	order []string
}

func (k *keylogBuf) Write(p []byte) (int, error) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.lines == nil {
		k.lines = map[string][]string{}
	}
	for _, line := range strings.Split(strings.TrimSpace(string(p)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			return 0, errors.New("bad key log line")
		}
		if _, ok := k.lines[f[1]]; !ok {
			k.order = append(k.order, f[1])
		}
		k.lines[f[1]] = append(k.lines[f[1]], line)
	}
	return len(p), nil
}

// conn returns the client random and lines of the i-th connection, waiting
// for it.
func (k *keylogBuf) conn(t *testing.T, i int) (string, []string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		k.mu.Lock()
		if len(k.order) > i {
			cr := k.order[i]
			lines := slices.Clone(k.lines[cr])
			k.mu.Unlock()
			return cr, lines
		}
		k.mu.Unlock()
		if time.Now().After(deadline) {
			t.Fatalf("no TLS connection #%d", i+1)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// goTLSServer is a TLS server without OpenSSL (crypto/tls): it answers
// each line with "pong" (an HTTP request with a short HTTP response), and
// closes the connection after the first answer when once is set. Its key
// log is the reference for the client's secrets.
func goTLSServer(t *testing.T, dir string, once bool) (int, *keylogBuf) {
	t.Helper()
	certFile, keyFile := writeCert(t, dir)
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatal(err)
	}
	kl := &keylogBuf{}
	l, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{cert}, KeyLogWriter: kl})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				r := bufio.NewReader(c)
				for {
					line, err := r.ReadString('\n')
					if err != nil {
						return
					}
					if strings.HasPrefix(line, "GET ") {
						for line != "\r\n" && err == nil {
							line, err = r.ReadString('\n')
						}
						c.Write([]byte("HTTP/1.0 200 OK\r\nContent-Length: 5\r\n\r\npong\n"))
						return
					}
					if _, err := c.Write([]byte("pong\n")); err != nil || once {
						return
					}
				}
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port, kl
}

// checkSubset checks that the eBPF lines of a connection hold every line
// of the reference key log, and only labels that OpenSSL logs.
func checkSubset(t *testing.T, got, want []string) {
	t.Helper()
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("the eBPF lines (labels %v) miss the reference line with label %s", labels(got), strings.Fields(w)[0])
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) && strings.Fields(g)[0] != ExporterSecret {
			t.Errorf("the eBPF lines hold a %s line the reference does not have", strings.Fields(g)[0])
		}
	}
}

// TestCollectorServerSide checks the secrets taken from an OpenSSL server
// (openssl s_server, which reads and writes through BIO_f_ssl, so the
// secrets come at SSL_shutdown/SSL_free) against the key log of a client
// that does not use OpenSSL (crypto/tls).
func TestCollectorServerSide(t *testing.T) {
	needTool(t, "openssl")
	_, sink := liveCollector(t, Config{})
	dir := t.TempDir()
	port, _ := startSServer(t, dir)
	for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
		t.Run(tls.VersionName(v), func(t *testing.T) {
			kl := &keylogBuf{}
			c, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{
				InsecureSkipVerify: true, MinVersion: v, MaxVersion: v, KeyLogWriter: kl,
			})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := c.Write([]byte("GET / HTTP/1.0\r\n\r\n")); err != nil {
				t.Fatal(err)
			}
			if _, err := io.ReadAll(c); err != nil {
				t.Fatal(err)
			}
			c.Close()
			cr, want := kl.conn(t, 0)
			n := len(want)
			if v == tls.VersionTLS13 {
				n++ // and EXPORTER_SECRET
			}
			checkSubset(t, sink.waitFor(t, cr, n), want)
		})
	}
}

// TestCollectorPIDFilter attaches to a process that is already connected
// (the secrets are taken at its next SSL_write/SSL_read) and checks that
// another process's connection is left out.
func TestCollectorPIDFilter(t *testing.T) {
	needTool(t, "openssl")
	if os.Geteuid() != 0 {
		t.Skip("eBPF TLS key capture needs root (CI runs the tests as root)")
	}
	dir := t.TempDir()
	port, kl := goTLSServer(t, dir, false)
	type client struct {
		cmd   *exec.Cmd
		stdin io.WriteCloser
		out   *bufio.Reader
	}
	start := func() client {
		cmd := exec.Command("openssl", "s_client", "-connect", fmt.Sprintf("127.0.0.1:%d", port), "-quiet", "-tls1_3")
		stdin, err := cmd.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		stdout, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		return client{cmd, stdin, bufio.NewReader(stdout)}
	}
	ping := func(c client) {
		if _, err := c.stdin.Write([]byte("ping\n")); err != nil {
			t.Fatal(err)
		}
		if line, err := c.out.ReadString('\n'); err != nil || line != "pong\n" {
			t.Fatalf("ping: %q %v", line, err)
		}
	}
	a := start()
	crA, wantA := kl.conn(t, 0)
	b := start()
	crB, _ := kl.conn(t, 1)

	_, sink := liveCollector(t, Config{PID: a.cmd.Process.Pid})
	ping(b) // not in the filter
	ping(a)
	checkSubset(t, sink.waitFor(t, crA, len(wantA)+1), wantA)
	if got := sink.get(crB); len(got) > 0 {
		t.Errorf("%d lines of process %d, outside the PID filter", len(got), b.cmd.Process.Pid)
	}
}

// cgroup2Mount returns where the cgroup v2 hierarchy is mounted.
func cgroup2Mount(t *testing.T) string {
	t.Helper()
	data, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Skip(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		pre, post, ok := strings.Cut(line, " - ")
		if ok && strings.HasPrefix(post, "cgroup2 ") {
			if f := strings.Fields(pre); len(f) >= 5 {
				return f[4]
			}
		}
	}
	t.Skip("no cgroup v2 hierarchy mounted")
	return ""
}

// TestCollectorCgroupFilter runs one client in a new cgroup v2 and one
// outside, and checks that only the first one's secrets come.
func TestCollectorCgroupFilter(t *testing.T) {
	needTool(t, "openssl")
	if os.Geteuid() != 0 {
		t.Skip("eBPF TLS key capture needs root (CI runs the tests as root)")
	}
	cg := filepath.Join(cgroup2Mount(t), fmt.Sprintf("flowlake-tlskeys-test-%d", os.Getpid()))
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
	// Below it, so that descendants are tested too.
	sub := filepath.Join(cg, "child")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.Remove(sub) })

	_, sink := liveCollector(t, Config{Cgroup: cg})
	dir := t.TempDir()
	port, kl := goTLSServer(t, dir, true)
	run := func(inside bool) {
		script := "exec openssl s_client -connect 127.0.0.1:$0 -quiet"
		if inside {
			script = "echo $$ > " + filepath.Join(sub, "cgroup.procs") + " && " + script
		}
		cmd := exec.Command("sh", "-c", script, fmt.Sprint(port))
		cmd.Stdin = strings.NewReader("ping\n")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", cmd, err, out)
		}
	}
	run(false)
	crOut, _ := kl.conn(t, 0)
	run(true)
	crIn, wantIn := kl.conn(t, 1)
	checkSubset(t, sink.waitFor(t, crIn, len(wantIn)+1), wantIn)
	if got := sink.get(crOut); len(got) > 0 {
		t.Errorf("%d lines of a process outside the cgroup", len(got))
	}
}

const unprivilegedEnv = "FLOWLAKE_TLSKEYS_UNPRIVILEGED_CHILD"

// TestOpenUnprivileged runs Open as an unprivileged user (this test
// binary, re-run as nobody) and checks that the error says what is
// missing.
func TestOpenUnprivileged(t *testing.T) {
	if os.Getenv(unprivilegedEnv) != "" {
		_, err := Open(Config{Rescan: -1})
		fmt.Printf("open error: %v\nis ErrPermission: %v\n", err, errors.Is(err, ErrPermission))
		return
	}
	if os.Geteuid() != 0 {
		_, err := Open(Config{Rescan: -1})
		if !errors.Is(err, ErrPermission) && !errors.Is(err, ErrNoBPF) {
			t.Errorf("Open without root: %v, want ErrPermission or ErrNoBPF", err)
		}
		return
	}
	dir, err := os.MkdirTemp("", "tlskeys-unpriv-")
	if err != nil {
		t.Fatal(err)
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "tlskeys.test")
	self, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bin, self, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "-test.run=^TestOpenUnprivileged$", "-test.count=1", "-test.v")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), unprivilegedEnv+"=1")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "is ErrPermission: true") || !strings.Contains(string(out), "needs root (or CAP_BPF, CAP_PERFMON and CAP_SYS_RESOURCE)") {
		t.Errorf("Open as nobody:\n%s", out)
	}
	t.Logf("as nobody: %s", strings.SplitN(string(out), "\n", 3)[1])
}

// implicitClient is a Python client (the ssl module, on this system's
// libssl) that never calls SSL_do_handshake: its handshake happens inside
// its first SSL_write_ex. It writes the library's key log to keylog.
const implicitClient = `
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.keylog_filename = sys.argv[2]
ctx.minimum_version = ctx.maximum_version = getattr(ssl.TLSVersion, sys.argv[3])
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))), do_handshake_on_connect=False)
s.sendall(b"ping\n")
assert s.recv(100) == b"pong\n"
print("ok", flush=True)
sys.stdin.read()  # the connection stays open (no SSL_shutdown, no SSL_free) until stdin closes
s.close()
`

// TestCollectorImplicitHandshake checks the read and write hooks: a
// client whose handshake runs inside SSL_write_ex, against a server
// without OpenSSL, so that only the client's side can give the secrets,
// which must come while the connection is still open (not from the
// SSL_shutdown and SSL_free hooks).
func TestCollectorImplicitHandshake(t *testing.T) {
	needTool(t, "python3")
	_, sink := liveCollector(t, Config{})
	dir := t.TempDir()
	port, _ := goTLSServer(t, dir, true)
	for _, v := range []string{"TLSv1_2", "TLSv1_3"} {
		t.Run(v, func(t *testing.T) {
			keylog := filepath.Join(dir, v+".keylog")
			script := filepath.Join(dir, "client.py")
			if err := os.WriteFile(script, []byte(implicitClient), 0o600); err != nil {
				t.Fatal(err)
			}
			cmd := exec.Command("python3", script, fmt.Sprint(port), keylog, v)
			stdin, err := cmd.StdinPipe()
			if err != nil {
				t.Fatal(err)
			}
			stdout, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			cmd.Stderr = os.Stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				stdin.Close()
				if err := cmd.Wait(); err != nil {
					t.Errorf("python client: %v", err)
				}
			}()
			if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || line != "ok\n" {
				t.Fatalf("python client: %q %v", line, err)
			}
			for cr, want := range readKeylog(t, keylog) {
				got := sink.waitFor(t, cr, len(want))
				slices.Sort(got)
				slices.Sort(want)
				if !slices.Equal(got, want) {
					t.Errorf("eBPF lines (labels %v) differ from the library's key log (labels %v)", labels(got), labels(want))
				}
			}
		})
	}
}

// laterClient is a Python client that loads its libssl at start, then
// waits for a line on stdin before it connects.
const laterClient = `
import socket, ssl, sys
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
ctx.check_hostname = False
ctx.verify_mode = ssl.CERT_NONE
ctx.keylog_filename = sys.argv[2]
print("loaded", flush=True)
sys.stdin.readline()
s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", int(sys.argv[1]))))
s.sendall(b"ping\n")
assert s.recv(100) == b"pong\n"
print("done", flush=True)
sys.stdin.read()
`

// TestCollectorRescanFindsNewLibrary starts a process on a copy of libssl
// and libcrypto in a directory of its own (LD_LIBRARY_PATH) after the
// collector: a rescan finds the copy in the process's memory map, reads
// its version from the copied libcrypto, attaches, and the process's
// connection gives its secrets.
func TestCollectorRescanFindsNewLibrary(t *testing.T) {
	needTool(t, "python3")
	sys := Candidates(t.TempDir(), 0)
	if len(sys) == 0 {
		t.Skip("no system libssl")
	}
	libDir := t.TempDir()
	if err := os.Chmod(libDir, 0o755); err != nil {
		t.Fatal(err)
	}
	real, err := filepath.EvalSymlinks(sys[0])
	if err != nil {
		t.Fatal(err)
	}
	lib, err := OpenLibrary(sys[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{real, lib.VersionFrom} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(libDir, filepath.Base(src)), b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	c, sink := liveCollector(t, Config{Rescan: 100 * time.Millisecond})
	dir := t.TempDir()
	port, _ := goTLSServer(t, dir, false)
	script := filepath.Join(dir, "client.py")
	if err := os.WriteFile(script, []byte(laterClient), 0o600); err != nil {
		t.Fatal(err)
	}
	keylog := filepath.Join(dir, "later.keylog")
	cmd := exec.Command("python3", script, fmt.Sprint(port), keylog)
	cmd.Env = append(os.Environ(), "LD_LIBRARY_PATH="+libDir)
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { stdin.Close(); cmd.Wait() }()
	out := bufio.NewReader(stdout)
	if line, err := out.ReadString('\n'); err != nil || line != "loaded\n" {
		t.Fatalf("python client: %q %v", line, err)
	}
	maps, _ := os.ReadFile(fmt.Sprintf("/proc/%d/maps", cmd.Process.Pid))
	if !strings.Contains(string(maps), libDir) {
		t.Fatalf("the client did not load the copy of libssl in %s", libDir)
	}
	deadline := time.Now().Add(15 * time.Second)
	for !slices.ContainsFunc(c.Libraries(), func(l Library) bool { return strings.Contains(l.Path, libDir) }) {
		if time.Now().After(deadline) {
			t.Fatalf("the copy of libssl was not attached; attached: %v", c.Libraries())
		}
		time.Sleep(50 * time.Millisecond)
	}
	if _, err := stdin.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	if line, err := out.ReadString('\n'); err != nil || line != "done\n" {
		t.Fatalf("python client: %q %v", line, err)
	}
	for cr, want := range readKeylog(t, keylog) {
		got := sink.waitFor(t, cr, len(want))
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("eBPF lines (labels %v) differ from the library's key log (labels %v)", labels(got), labels(want))
		}
	}
}
