//go:build linux

// Package agenttest builds the small network the capture agent's root
// tests and benchmark run in: two network namespaces joined by a veth pair
// (MTU 1500, offloads off so that frames are real 1500-byte frames with
// real checksums, IPv6 off so that nothing else is sent), nginx serving a
// few files in one, curl, wrk and a UDP sender in the other, and tcpdump
// as the reference capture. Nothing leaves the two namespaces: they have
// no other link and no route out.
//
// Everything a test starts is stopped, and the namespaces removed, when
// the test ends, whatever happens; namespaces left by a test process that
// was killed are removed by the next NewNet.
package agenttest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// Addresses of the pair: a /30 that exists only inside the namespaces.
const (
	SrvAddr = "10.201.0.1"
	CliAddr = "10.201.0.2"
)

// nsPrefix starts the names of the namespaces this package makes.
const nsPrefix = "flagt-"

// RequireRoot skips t unless the process runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root: network namespaces, veth pairs and AF_PACKET capture (run the tests as root)")
	}
}

// RequireTools skips t when one of the commands is not installed.
func RequireTools(t testing.TB, tools ...string) {
	t.Helper()
	var missing []string
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			missing = append(missing, tool)
		}
	}
	if len(missing) > 0 {
		t.Skipf("needs %s (Debian: apt-get install iproute2 nginx curl wrk tcpdump ethtool)", strings.Join(missing, ", "))
	}
}

// Net is a pair of namespaces joined by a veth pair.
type Net struct {
	Srv, Cli     string // namespace names
	SrvIf, CliIf string // veth ends
}

var seq atomic.Int64

// NewNet makes the namespaces; t's cleanup removes them and kills what
// runs in them.
func NewNet(t testing.TB) *Net {
	t.Helper()
	RequireRoot(t)
	RequireTools(t, "ip")
	removeStale(t)
	k := seq.Add(1)
	id := fmt.Sprintf("%d-%d", os.Getpid(), k)
	n := &Net{
		Srv: nsPrefix + id + "-s", Cli: nsPrefix + id + "-c",
		// Interface names hold 15 characters.
		SrvIf: fmt.Sprintf("fl%d-%ds", os.Getpid()%100000, k%100), CliIf: fmt.Sprintf("fl%d-%dc", os.Getpid()%100000, k%100),
	}
	t.Cleanup(func() {
		deleteNetns(n.Cli)
		deleteNetns(n.Srv)
	})
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
			t.Fatalf("%s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	run("ip", "netns", "add", n.Srv)
	run("ip", "netns", "add", n.Cli)
	run("ip", "link", "add", n.SrvIf, "netns", n.Srv, "type", "veth", "peer", "name", n.CliIf, "netns", n.Cli)
	for _, e := range []struct{ ns, dev, addr string }{{n.Srv, n.SrvIf, SrvAddr}, {n.Cli, n.CliIf, CliAddr}} {
		run("ip", "netns", "exec", e.ns, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1", "net.ipv6.conf.default.disable_ipv6=1")
		run("ip", "-n", e.ns, "link", "set", "lo", "up")
		run("ip", "-n", e.ns, "link", "set", e.dev, "mtu", "1500")
		if _, err := exec.LookPath("ethtool"); err == nil {
			// Real frames, as a physical NIC shows them; best effort.
			_ = exec.Command("ip", "netns", "exec", e.ns, "ethtool", "-K", e.dev, "tso", "off", "gso", "off", "gro", "off", "tx", "off", "rx", "off").Run()
		}
		run("ip", "-n", e.ns, "addr", "add", e.addr+"/30", "dev", e.dev)
		run("ip", "-n", e.ns, "link", "set", e.dev, "up")
	}
	// Permanent neighbour entries: no ARP exchange shows up in one capture
	// and not in another.
	srvMAC, cliMAC := mac(t, n.Srv, n.SrvIf), mac(t, n.Cli, n.CliIf)
	run("ip", "-n", n.Srv, "neigh", "replace", CliAddr, "lladdr", cliMAC, "dev", n.SrvIf, "nud", "permanent")
	run("ip", "-n", n.Cli, "neigh", "replace", SrvAddr, "lladdr", srvMAC, "dev", n.CliIf, "nud", "permanent")
	return n
}

// mac returns the MAC address of dev in namespace ns.
func mac(t testing.TB, ns, dev string) string {
	t.Helper()
	out, err := exec.Command("ip", "-n", ns, "-o", "link", "show", "dev", dev).CombinedOutput()
	if err != nil {
		t.Fatalf("ip link show %s: %v\n%s", dev, err, out)
	}
	m := regexp.MustCompile(`link/ether ([0-9a-f:]{17})`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no MAC address for %s in: %s", dev, out)
	}
	return string(m[1])
}

// removeStale deletes the namespaces of test processes that no longer run.
func removeStale(t testing.TB) {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	re := regexp.MustCompile(`^` + nsPrefix + `(\d+)-\d+-[sc]$`)
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		m := re.FindStringSubmatch(f[0])
		if m == nil {
			continue
		}
		pid, _ := strconv.Atoi(m[1])
		if pid == os.Getpid() || syscall.Kill(pid, 0) == nil {
			continue
		}
		t.Logf("removing namespace %s left by process %d", f[0], pid)
		deleteNetns(f[0])
	}
}

// deleteNetns kills every process in a namespace and deletes it.
func deleteNetns(ns string) {
	for _, sig := range []syscall.Signal{syscall.SIGTERM, syscall.SIGKILL} {
		out, _ := exec.Command("ip", "netns", "pids", ns).Output()
		pids := strings.Fields(string(out))
		if len(pids) == 0 {
			break
		}
		for _, p := range pids {
			if pid, err := strconv.Atoi(p); err == nil {
				_ = syscall.Kill(pid, sig)
			}
		}
		time.Sleep(300 * time.Millisecond)
	}
	_ = exec.Command("ip", "netns", "del", ns).Run()
}

// Command returns a command that runs in namespace ns, in its own process
// group, killed if the test process dies.
func (n *Net) Command(ns, name string, args ...string) *exec.Cmd {
	cmd := exec.Command("ip", append([]string{"netns", "exec", ns, name}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	return cmd
}

// Run runs a command in ns and returns its combined output, failing t on
// error.
func (n *Net) Run(t testing.TB, ns, name string, args ...string) string {
	t.Helper()
	out, err := n.Command(ns, name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s in %s: %v\n%s", name, strings.Join(args, " "), ns, err, out)
	}
	return string(out)
}

// Proc is a background process.
type Proc struct {
	Cmd  *exec.Cmd
	Out  *SafeBuffer
	done chan struct{}
	err  error
}

// SafeBuffer is a bytes.Buffer safe for one writer and concurrent readers.
type SafeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

// Write implements io.Writer.
func (s *SafeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

// String returns what was written.
func (s *SafeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Start starts cmd in the background with its output collected; t's
// cleanup kills it (its process group) if it still runs.
func Start(t testing.TB, cmd *exec.Cmd) *Proc {
	t.Helper()
	p := &Proc{Cmd: cmd, Out: &SafeBuffer{}, done: make(chan struct{})}
	if cmd.Stdout == nil {
		cmd.Stdout = p.Out
	}
	if cmd.Stderr == nil {
		cmd.Stderr = p.Out
	}
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	go func() {
		p.err = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.Kill() })
	return p
}

// Signal sends sig to the process group.
func (p *Proc) Signal(sig syscall.Signal) {
	_ = syscall.Kill(-p.Cmd.Process.Pid, sig)
}

// Kill kills the process group and waits for the process.
func (p *Proc) Kill() {
	select {
	case <-p.done:
		return
	default:
	}
	p.Signal(syscall.SIGKILL)
	<-p.done
}

// Done is closed when the process has exited.
func (p *Proc) Done() <-chan struct{} { return p.done }

// Wait waits up to timeout for the process to exit and returns its error;
// a process still running then is killed.
func (p *Proc) Wait(timeout time.Duration) error {
	select {
	case <-p.done:
		return p.err
	case <-time.After(timeout):
		p.Kill()
		return fmt.Errorf("%s still running after %v: killed; output:\n%s", p.Cmd.Path, timeout, p.Out.String())
	}
}

// Nginx starts nginx in the server namespace on SrvAddr:80, serving
//
//	/small (200 bytes), /page.html (2 KiB), /style.css (16 KiB),
//	/blob.bin (128 KiB, random), /api/items (POST: 201 with JSON),
//	and 404 for anything else,
//
// and waits until it accepts connections.
func (n *Net) Nginx(t testing.TB) {
	t.Helper()
	RequireTools(t, "nginx")
	dir := t.TempDir()
	www := filepath.Join(dir, "www")
	if err := os.MkdirAll(www, 0o755); err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"small":     bytes.Repeat([]byte("flowlake "), 23)[:200],
		"page.html": bytes.Repeat([]byte("<p>flowlake agent test page</p>\n"), 64),
		"style.css": bytes.Repeat([]byte("body { color: #123456; }\n"), 656)[:16384],
	}
	blob := make([]byte, 128<<10)
	for i := range blob {
		blob[i] = byte(i*7919 + i>>8)
	}
	files["blob.bin"] = blob
	for name, b := range files {
		if err := os.WriteFile(filepath.Join(www, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	conf := fmt.Sprintf(`daemon off;
user root;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 1024; }
http {
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    keepalive_requests 100000;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    server {
        listen %[2]s:80 default_server;
        root %[3]s;
        location = /api/items { default_type application/json; return 201 '{"id":1,"created":true}\n'; }
    }
}
`, dir, SrvAddr, www)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	p := Start(t, n.Command(n.Srv, "nginx", "-c", confPath))
	for range 100 {
		select {
		case <-p.Done():
			t.Fatalf("nginx exited: %s", p.Out.String())
		default:
		}
		if n.dialable() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("nginx did not start: %s", p.Out.String())
}

// dialable reports whether the client namespace reaches SrvAddr:80.
func (n *Net) dialable() bool {
	return n.Command(n.Cli, "bash", "-c", "exec 3<>/dev/tcp/"+SrvAddr+"/80").Run() == nil
}

// Tcpdump is a reference capture.
type Tcpdump struct {
	p    *Proc
	Path string
}

// TcpdumpStats are the counts tcpdump prints when it stops.
type TcpdumpStats struct {
	Captured, Received, Dropped int64
}

// Tcpdump starts tcpdump on iface of namespace ns, writing whole packets
// with nanosecond timestamps to path, with a 64 MiB kernel buffer in
// immediate mode (so that it has read every packet a moment after the
// traffic stops: tcpdump does not read its buffer once it is told to
// stop), and waits until it listens.
func (n *Net) Tcpdump(t testing.TB, ns, iface, path string, filter ...string) *Tcpdump {
	t.Helper()
	RequireTools(t, "tcpdump")
	args := append([]string{"-i", iface, "-s", "0", "-B", "65536", "--immediate-mode", "-Z", "root", "--time-stamp-precision=nano", "-w", path}, filter...)
	p := Start(t, n.Command(ns, "tcpdump", args...))
	for range 200 {
		if strings.Contains(p.Out.String(), "listening on") {
			return &Tcpdump{p: p, Path: path}
		}
		select {
		case <-p.Done():
			t.Fatalf("tcpdump exited: %s", p.Out.String())
		default:
		}
		time.Sleep(25 * time.Millisecond)
	}
	t.Fatalf("tcpdump did not start: %s", p.Out.String())
	return nil
}

// Stop stops tcpdump (SIGINT: it writes what it has) and returns its
// counts.
func (d *Tcpdump) Stop(t testing.TB) TcpdumpStats {
	t.Helper()
	d.p.Signal(syscall.SIGINT)
	if err := d.p.Wait(30 * time.Second); err != nil {
		t.Fatalf("tcpdump: %v\n%s", err, d.p.Out.String())
	}
	return ParseTcpdumpStats(d.p.Out.String())
}

// ParseTcpdumpStats reads the "N packets captured / received by filter /
// dropped by kernel" lines.
func ParseTcpdumpStats(out string) TcpdumpStats {
	var s TcpdumpStats
	get := func(what string) int64 {
		m := regexp.MustCompile(`(\d+) packets? ` + what).FindStringSubmatch(out)
		if m == nil {
			return -1
		}
		v, _ := strconv.ParseInt(m[1], 10, 64)
		return v
	}
	s.Captured, s.Received, s.Dropped = get("captured"), get("received by filter"), get("dropped by kernel")
	return s
}

// Curl runs curl in the client namespace with args and returns its
// output. Arguments starting with '/' that are not the value of an option
// are paths on the server: they become http://SrvAddr/….
func (n *Net) Curl(t testing.TB, args ...string) string {
	t.Helper()
	RequireTools(t, "curl")
	args = slices.Clone(args)
	for i, a := range args {
		if strings.HasPrefix(a, "/") && (i == 0 || !curlValueOption[args[i-1]]) {
			args[i] = "http://" + SrvAddr + a
		}
	}
	return n.Run(t, n.Cli, "curl", append([]string{"-sS", "--max-time", "30"}, args...)...)
}

// curlValueOption lists the curl options the tests use that take a value.
var curlValueOption = map[string]bool{"-o": true, "--output": true, "-d": true, "--data": true, "--data-binary": true,
	"-H": true, "--header": true, "-X": true, "--request": true, "-w": true, "--rate": true, "--limit-rate": true}

// Wrk runs wrk in the client namespace against url path for d with conns
// connections on one thread, and returns its report.
func (n *Net) Wrk(t testing.TB, d time.Duration, conns int, path string, extra ...string) string {
	t.Helper()
	RequireTools(t, "wrk")
	args := append([]string{"-t1", "-c" + strconv.Itoa(conns), "-d" + strconv.Itoa(int(d.Seconds())) + "s", "--timeout", "5s"}, extra...)
	args = append(args, "http://"+SrvAddr+path)
	return n.Run(t, n.Cli, "wrk", args...)
}
