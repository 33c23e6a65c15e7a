//go:build linux

package agent_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"text/tabwriter"
	"time"

	"golang.org/x/net/ipv4"

	"github.com/flowlake/flowlake/internal/agent/agenttest"
)

// The comparative benchmark (make agent-bench): on a veth pair, at rising
// packet rates, the agent (the flowlake binary named by FLOWLAKE_BIN, K=2
// streams, segments to a local store) and tcpdump (a buffer as large as
// the agent's two rings together, writing a pcap file) capture the same
// traffic at the same time. It prints, per rate, what each captured, what
// the kernel dropped for each, and the CPU time each used, per GB
// captured. Nothing is asserted about speed.

const (
	blastEnv   = "FLOWLAKE_BENCH_BLAST" // helper mode: "send" or "sink"
	blastRate  = "FLOWLAKE_BENCH_RATE"  // packets per second, 0 for as fast as possible
	blastSecs  = "FLOWLAKE_BENCH_SECS"
	blastBytes = 64 // UDP payload: 106-byte frames
	blastPort  = 9
)

// TestBlastHelper is the traffic source of the benchmark, run in the
// client namespace: it sends UDP datagrams to SrvAddr at a rate with
// sendmmsg, and prints how many it sent. In "sink" mode (server namespace)
// it binds the port and never reads, so that the kernel answers no ICMP.
func TestBlastHelper(t *testing.T) {
	mode := os.Getenv(blastEnv)
	switch mode {
	case "":
		t.Skip("runs only as a child of TestAgentBench")
	case "sink":
		c, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.ParseIP(agenttest.SrvAddr), Port: blastPort})
		if err != nil {
			fmt.Println("sink:", err)
			os.Exit(1)
		}
		_ = c.SetReadBuffer(4096)
		fmt.Println("sink ready")
		time.Sleep(time.Hour)
		return
	}
	rate, _ := strconv.Atoi(os.Getenv(blastRate))
	secs, _ := strconv.ParseFloat(os.Getenv(blastSecs), 64)
	conn, err := net.DialUDP("udp4", nil, &net.UDPAddr{IP: net.ParseIP(agenttest.SrvAddr), Port: blastPort})
	if err != nil {
		fmt.Println("send:", err)
		os.Exit(1)
	}
	pc := ipv4.NewPacketConn(conn)
	payload := make([]byte, blastBytes)
	msgs := make([]ipv4.Message, 64)
	for i := range msgs {
		msgs[i].Buffers = [][]byte{payload}
	}
	start := time.Now()
	end := start.Add(time.Duration(secs * float64(time.Second)))
	sent := 0
	for now := start; now.Before(end); now = time.Now() {
		batch := msgs
		if rate > 0 {
			due := int(float64(rate)*now.Sub(start).Seconds()) - sent
			if due <= 0 {
				time.Sleep(200 * time.Microsecond)
				continue
			}
			batch = msgs[:min(due, len(msgs))]
		}
		n, err := pc.WriteBatch(batch, 0)
		if err != nil && n <= 0 {
			continue // ENOBUFS and the like: the offered load is what went out
		}
		sent += n
	}
	fmt.Printf("sent %d %f\n", sent, time.Since(start).Seconds())
	os.Exit(0)
}

// run is one measured step.
type run struct {
	label                string
	sent                 int64
	secs                 float64
	agentPkts, agentDrop int64
	agentBytes           int64
	agentCPU             float64
	tdPkts, tdDrop       int64
	tdBytes              int64
	tdCPU                float64
}

func TestAgentBench(t *testing.T) {
	if os.Getenv("FLOWLAKE_BENCH") == "" {
		t.Skip("benchmark: run `make agent-bench` (FLOWLAKE_BENCH=1, needs root)")
	}
	bin := os.Getenv("FLOWLAKE_BIN")
	if bin == "" {
		t.Fatal("FLOWLAKE_BIN must name the flowlake binary (make agent-bench builds it)")
	}
	n := agenttest.NewNet(t)
	agenttest.RequireTools(t, "tcpdump", "wrk")
	n.Nginx(t)
	sink := n.Command(n.Srv, os.Args[0], "-test.run=^TestBlastHelper$")
	sink.Env = append(os.Environ(), blastEnv+"=sink")
	sp := agenttest.Start(t, sink)
	waitFor(t, sp, "sink ready")
	secs := 3.0
	if v := os.Getenv("BENCH_SECS"); v != "" {
		secs, _ = strconv.ParseFloat(v, 64)
	}
	var runs []run
	for _, step := range []struct{ rate, senders int }{{50_000, 1}, {100_000, 1}, {200_000, 1}, {0, 1}, {0, 2}, {0, 3}} {
		label := fmt.Sprintf("UDP %dk pkt/s", step.rate/1000)
		if step.rate == 0 {
			label = fmt.Sprintf("UDP max, %d sender(s)", step.senders)
		}
		runs = append(runs, measure(t, n, bin, label, secs, 64, func() (int64, float64) { return blast(t, n, step.rate, step.senders, secs) }))
	}
	// The same with small buffers (2 MiB per ring, 4 MiB for tcpdump): who
	// keeps up without a large buffer.
	runs = append(runs, measure(t, n, bin, "UDP max, 2 senders, 4 MiB buffers", secs, 2, func() (int64, float64) { return blast(t, n, 0, 2, secs) }))
	runs = append(runs, measure(t, n, bin, "HTTP wrk /small 8 conns", secs, 64, func() (int64, float64) {
		start := time.Now()
		n.Wrk(t, time.Duration(secs)*time.Second, 8, "/small")
		return -1, time.Since(start).Seconds()
	}))
	report(t, runs)
}

// blast sends UDP for secs from the client namespace: senders processes
// (each from its own port, so each flow its own stream), each at rate.
func blast(t *testing.T, n *agenttest.Net, rate, senders int, secs float64) (int64, float64) {
	t.Helper()
	type result struct {
		sent int64
		took float64
		err  error
	}
	results := make(chan result, senders)
	for range senders {
		go func() {
			cmd := n.Command(n.Cli, os.Args[0], "-test.run=^TestBlastHelper$")
			cmd.Env = append(os.Environ(), blastEnv+"=send", blastRate+"="+strconv.Itoa(rate), blastSecs+"="+strconv.FormatFloat(secs, 'f', -1, 64))
			out, err := cmd.CombinedOutput()
			if err != nil {
				results <- result{err: fmt.Errorf("blast: %v\n%s", err, out)}
				return
			}
			for _, l := range strings.Split(string(out), "\n") {
				var r result
				if _, err := fmt.Sscanf(l, "sent %d %f", &r.sent, &r.took); err == nil {
					results <- r
					return
				}
			}
			results <- result{err: fmt.Errorf("blast said: %s", out)}
		}()
	}
	var sent int64
	var took float64
	for range senders {
		r := <-results
		if r.err != nil {
			t.Fatal(r.err)
		}
		sent += r.sent
		took = max(took, r.took)
	}
	return sent, took
}

// measure runs the agent (rings of ringMiB per stream) and tcpdump (a
// buffer as large as both rings) around traffic().
func measure(t *testing.T, n *agenttest.Net, bin, label string, secs float64, ringMiB int, traffic func() (int64, float64)) run {
	t.Helper()
	dir := t.TempDir()
	agent := exec.Command("ip", "netns", "exec", n.Srv, bin, "agent", "--iface", n.SrvIf, "--streams", "2",
		"--store", filepath.Join(dir, "store"), "--spool", filepath.Join(dir, "spool"), "--agent-id", "bench",
		"--metrics", "off", "--hosts", "off", "--status-every", "1h", "--ring", fmt.Sprintf("%dMiB", ringMiB))
	ap := agenttest.Start(t, agent)
	waitFor(t, ap, `"msg":"agent started"`)
	pcap := filepath.Join(dir, "tcpdump.pcap")
	tp := agenttest.Start(t, n.Command(n.Srv, "tcpdump", "-i", n.SrvIf, "-s", "0", "-B", strconv.Itoa(2*ringMiB<<10), "-Z", "root", "-w", pcap))
	waitFor(t, tp, "listening on")
	sent, took := traffic()
	time.Sleep(1500 * time.Millisecond) // both read what the kernel holds
	ap.Signal(syscall.SIGINT)
	tp.Signal(syscall.SIGINT)
	if err := ap.Wait(2 * time.Minute); err != nil {
		t.Fatalf("agent: %v", err)
	}
	if err := tp.Wait(time.Minute); err != nil {
		t.Fatalf("tcpdump: %v", err)
	}
	r := run{label: label, sent: sent, secs: took}
	sc := bufio.NewScanner(strings.NewReader(ap.Out.String()))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var l struct {
			Msg           string `json:"msg"`
			Captured      int64  `json:"captured"`
			CapturedBytes int64  `json:"captured_bytes"`
			Dropped       int64  `json:"dropped"`
		}
		if json.Unmarshal(sc.Bytes(), &l) == nil && l.Msg == "stream summary" {
			r.agentPkts += l.Captured
			r.agentBytes += l.CapturedBytes
			r.agentDrop += l.Dropped
		}
	}
	r.agentCPU = cpu(ap.Cmd)
	ts := agenttest.ParseTcpdumpStats(tp.Out.String())
	r.tdPkts, r.tdDrop, r.tdCPU = ts.Captured, ts.Dropped, cpu(tp.Cmd)
	if fi, err := os.Stat(pcap); err == nil {
		r.tdBytes = fi.Size() - 24 - 16*ts.Captured
	}
	t.Logf("%s: sent %d in %.2fs; agent %d pkts (%d dropped) %.2f CPU s; tcpdump %d pkts (%d dropped) %.2f CPU s",
		label, sent, took, r.agentPkts, r.agentDrop, r.agentCPU, r.tdPkts, r.tdDrop, r.tdCPU)
	return r
}

// waitFor waits until p printed s.
func waitFor(t *testing.T, p *agenttest.Proc, s string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(p.Out.String(), s) {
		select {
		case <-p.Done():
			t.Fatalf("%s exited: %s", p.Cmd.Path, p.Out.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not print %q: %s", p.Cmd.Path, s, p.Out.String())
		}
	}
}

func cpu(c *exec.Cmd) float64 {
	if c.ProcessState == nil {
		return 0
	}
	return (c.ProcessState.UserTime() + c.ProcessState.SystemTime()).Seconds()
}

func report(t *testing.T, runs []run) {
	t.Helper()
	var b strings.Builder
	w := tabwriter.NewWriter(&b, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(w, "traffic\tsent pkt/s\tagent pkts\tagent drops\tagent pkt/s\tagent CPU s\tagent CPU s/GB\ttcpdump pkts\ttcpdump drops\ttcpdump pkt/s\ttcpdump CPU s\ttcpdump CPU s/GB\t")
	perGB := func(cpu float64, bytes int64) string {
		if bytes <= 0 {
			return "-"
		}
		return fmt.Sprintf("%.1f", cpu/(float64(bytes)/1e9))
	}
	bestAgent, bestTd := 0.0, 0.0
	for _, r := range runs {
		sent := "-"
		if r.sent >= 0 {
			sent = fmt.Sprintf("%.0f", float64(r.sent)/r.secs)
		}
		ap, tp := float64(r.agentPkts)/r.secs, float64(r.tdPkts)/r.secs
		if r.agentDrop == 0 && ap > bestAgent {
			bestAgent = ap
		}
		if r.tdDrop == 0 && tp > bestTd {
			bestTd = tp
		}
		fmt.Fprintf(w, "%s\t%s\t%d\t%d\t%.0f\t%.2f\t%s\t%d\t%d\t%.0f\t%.2f\t%s\t\n", r.label, sent,
			r.agentPkts, r.agentDrop, ap, r.agentCPU, perGB(r.agentCPU, r.agentBytes),
			r.tdPkts, r.tdDrop, tp, r.tdCPU, perGB(r.tdCPU, r.tdBytes))
	}
	w.Flush()
	fmt.Fprintf(&b, "\nhighest rate captured with zero kernel drops: agent %.0f pkt/s, tcpdump %.0f pkt/s\n", bestAgent, bestTd)
	b.WriteString("(pkt/s over the traffic's duration; CPU is the process's user+system time for the whole run, including start and the final flush/upload;\n" +
		" the agent compresses (zstd) and uploads to a local-directory store, tcpdump writes an uncompressed pcap; 2 shared cores.)\n")
	fmt.Print("\n" + b.String())
	if out := os.Getenv("BENCH_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(b.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
}
