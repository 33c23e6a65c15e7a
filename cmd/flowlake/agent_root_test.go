//go:build linux

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowlake/flowlake/internal/pipeline/pipelinetest"

	"github.com/parquet-go/parquet-go"

	"github.com/flowlake/flowlake/internal/agent/agenttest"
	"github.com/flowlake/flowlake/internal/agent/hosts"
	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/pipeline"
	"github.com/flowlake/flowlake/internal/report"
	"github.com/flowlake/flowlake/internal/store"
	"github.com/flowlake/flowlake/internal/store/miniotest"
	"github.com/flowlake/flowlake/schema"
)

// The root tests run `flowlake agent` as a child process (this test
// binary, re-run with FLOWLAKE_AGENT_TEST_ARGS): it captures in the server
// namespace of an agenttest.Net (--netns) and uploads to a MinIO server on
// this host's loopback.

const agentArgsEnv = "FLOWLAKE_AGENT_TEST_ARGS"

// TestAgentProcess is the child: `flowlake agent` with the arguments of
// FLOWLAKE_AGENT_TEST_ARGS (JSON), stopped by SIGTERM like the real one.
func TestAgentProcess(t *testing.T) {
	js := os.Getenv(agentArgsEnv)
	if js == "" {
		t.Skip("runs only as a child of the agent root tests")
	}
	var args []string
	if err := json.Unmarshal([]byte(js), &args); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	err := run(ctx, append([]string{"agent"}, args...), os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "flowlake:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// agentRig is the network, MinIO, and what every agent of a test shares.
type agentRig struct {
	n     *agenttest.Net
	srv   *miniotest.Server
	st    store.Store
	id    string
	spool string
	hosts string
	dir   string
}

func newRig(t *testing.T, id string) *agentRig {
	t.Helper()
	n := agenttest.NewNet(t)
	agenttest.RequireTools(t, "nginx", "curl", "tcpdump")
	n.Nginx(t)
	srv := miniotest.Start(t)
	srv.SetEnv(t)
	st, err := store.Open(context.Background(), "s3://"+srv.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	r := &agentRig{n: n, srv: srv, st: st, id: id, spool: filepath.Join(dir, "spool"), hosts: filepath.Join(dir, "hosts"), dir: dir}
	h := fmt.Sprintf("127.0.0.1 localhost\n%s web.test web\n%s client.test\n", agenttest.SrvAddr, agenttest.CliAddr)
	if err := os.WriteFile(r.hosts, []byte(h), 0o644); err != nil {
		t.Fatal(err)
	}
	return r
}

// startAgent starts an agent process capturing on the server end of the
// veth pair with K=2 streams, 1-second segments and 2-second status
// reports, and waits until it captures.
func (r *agentRig) startAgent(t *testing.T, extra ...string) *agenttest.Proc {
	t.Helper()
	args := []string{
		"--iface", r.n.SrvIf, "--netns", r.n.Srv, "--store", "s3://" + r.srv.Bucket, "--agent-id", r.id,
		"--streams", "2", "--spool", r.spool, "--max-span", "1s", "--status-every", "2s",
		"--metrics", "127.0.0.1:0", "--hosts", r.hosts, "--retry-min", "200ms", "--retry-max", "2s",
	}
	js, _ := json.Marshal(append(args, extra...))
	cmd := exec.Command(os.Args[0], "-test.run=^TestAgentProcess$", "-test.count=1")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "FLOWLAKE_") && !strings.HasPrefix(kv, "AWS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, agentArgsEnv+"="+string(js))
	for k, v := range r.srv.Env() {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	p := agenttest.Start(t, cmd)
	deadline := time.Now().Add(60 * time.Second)
	for !strings.Contains(p.Out.String(), `"msg":"agent started"`) {
		select {
		case <-p.Done():
			t.Fatalf("agent exited:\n%s", p.Out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("agent not started after 60 s:\n%s", p.Out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	return p
}

// stopAgent sends SIGTERM and waits for a clean exit.
func stopAgent(t *testing.T, p *agenttest.Proc) string {
	t.Helper()
	p.Signal(syscall.SIGTERM)
	if err := p.Wait(60 * time.Second); err != nil {
		t.Fatalf("agent: %v\n%s", err, p.Out.String())
	}
	return p.Out.String()
}

// statusReports reads the agent's status reports, oldest first.
func statusReports(t *testing.T, st store.Store, id string) ([]report.Status, []string) {
	t.Helper()
	var out []report.Status
	var ks []string
	err := st.List(context.Background(), keys.PrefixStatus+"agent="+id+"/", func(info store.Info) error {
		b, err := st.GetRange(context.Background(), info.Key, 0, -1)
		if err != nil {
			return err
		}
		s, err := report.Parse(b)
		if err != nil {
			return fmt.Errorf("%s: %w", info.Key, err)
		}
		out = append(out, s)
		ks = append(ks, info.Key)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out, ks
}

// lastStatus returns the agent's last report: the one it writes when it
// stops, with the totals of its run.
func lastStatus(t *testing.T, st store.Store, id string) report.Status {
	t.Helper()
	all, _ := statusReports(t, st, id)
	if len(all) == 0 {
		t.Fatal("no status report in the store")
	}
	slices.SortFunc(all, func(a, b report.Status) int { return a.Time.Compare(b.Time) })
	return all[len(all)-1]
}

// httpKey is an exchange without timestamps, ids and names, which the
// lake and a parse of another capture of the same packets share.
func httpKey(r *schema.HTTP) string {
	return fmt.Sprintf("%s:%d>%s:%d #%d %s %s %d %d/%d complete=%v err=%q cid=%s\n%s\n%s",
		r.ClientIP, r.ClientPort, r.ServerIP, r.ServerPort, r.Seq, r.Method, r.URI, r.Status,
		r.ReqBodyBytes, r.RespBodyBytes, r.Complete, r.Error, r.CommunityID, r.ReqHeaders, r.RespHeaders)
}

func lakeHTTP(t *testing.T, st store.Store) []schema.HTTP {
	t.Helper()
	return pipelinetest.ReadTable[schema.HTTP](t, st, schema.TableHTTP)
}

// The agent captures on a veth pair with K=2 streams and uploads to MinIO:
// its segments hold exactly the packets tcpdump captured on the same
// interface (when neither dropped any), every stream numbered from 0; the
// pipeline turns them into the HTTP exchanges `flowlake parse` finds in
// tcpdump's capture, named from the agent's /etc/hosts; status reports and
// /metrics tell the counts.
func TestAgentCaptureMatchesTcpdump(t *testing.T) {
	r := newRig(t, "veth-agent")
	agenttest.RequireTools(t, "wrk")
	ctx := context.Background()
	td := r.n.Tcpdump(t, r.n.Srv, r.n.SrvIf, filepath.Join(r.dir, "tcpdump.pcap"))
	p := r.startAgent(t)

	// Traffic: assorted requests on kept-alive and new connections, then a
	// short burst of wrk.
	r.n.Curl(t, "-o", "/dev/null", "/small", "-o", "/dev/null", "/page.html", "-o", "/dev/null", "/style.css",
		"-o", "/dev/null", "/blob.bin", "-o", "/dev/null", "/missing")
	r.n.Curl(t, "-o", "/dev/null", "-X", "POST", "-H", "Content-Type: application/json", "-d", `{"name":"x"}`, "/api/items")
	r.n.Curl(t, "-o", "/dev/null", "--head", "/page.html")
	r.n.Curl(t, "-o", "/dev/null", "/blob.bin?[1-5]")
	r.n.Wrk(t, 2*time.Second, 4, "/page.html")
	r.n.Wrk(t, time.Second, 2, "/small", "-H", "Connection: close")

	// /metrics while it runs.
	m := regexp.MustCompile(`"url":"(http://127\.0\.0\.1:\d+/metrics)"`).FindStringSubmatch(p.Out.String())
	if m == nil {
		t.Fatalf("no metrics URL in the log:\n%s", p.Out.String())
	}
	resp, err := http.Get(m[1])
	if err != nil {
		t.Fatal(err)
	}
	var body bytes.Buffer
	body.ReadFrom(resp.Body)
	resp.Body.Close()
	if !regexp.MustCompile(`flowlake_agent_packets_captured_total\{stream="1"\} [1-9]`).Match(body.Bytes()) {
		t.Errorf("/metrics shows no capture on stream 1:\n%s", body.String())
	}

	time.Sleep(500 * time.Millisecond)
	log := stopAgent(t, p)
	tds := td.Stop(t)

	segs := agentSegments(t, r.st, r.id)
	if len(segs) != 2 || len(segs[0]) == 0 || len(segs[1]) == 0 {
		t.Fatalf("segments per stream: %d, %d", len(segs[0]), len(segs[1]))
	}
	final := lastStatus(t, r.st, r.id)
	var captured, dropped, uploaded int64
	var datas [][]byte
	for k, ss := range segs {
		for _, s := range ss {
			datas = append(datas, s.data)
		}
		st := final.Streams[k]
		captured += st.Captured
		dropped += st.Dropped
		uploaded += st.SegmentsUploaded
		if st.SegmentsUploaded != int64(len(ss)) || st.SpoolBytes != 0 || st.Errors != 0 || st.Overflow != 0 {
			t.Errorf("final status of stream %d: %+v (%d segments in the store)", k, st, len(ss))
		}
	}
	got := packetSet(t, datas...)
	want := packetSet(t, capturePackets(t, td.Path))
	var ngot int
	for _, c := range got {
		ngot += c
	}
	if int64(ngot) != captured {
		t.Errorf("segments hold %d packets, the agent reports %d captured", ngot, captured)
	}
	t.Logf("agent: %d packets in %d segments; tcpdump: %+v", ngot, uploaded, tds)
	if dropped != 0 || tds.Dropped != 0 {
		t.Logf("drops (agent %d, tcpdump %d): packet sets not compared", dropped, tds.Dropped)
	} else {
		diff := 0
		for k, c := range want {
			if got[k] != c {
				diff++
			}
		}
		for k := range got {
			if _, ok := want[k]; !ok {
				diff++
			}
		}
		if diff != 0 || ngot != tcpdumpCount(want) {
			t.Errorf("the agent's %d packets and tcpdump's %d differ in %d distinct packets", ngot, tcpdumpCount(want), diff)
		}
	}
	if ngot < 2000 {
		t.Errorf("only %d packets captured", ngot)
	}
	if !strings.Contains(log, `"msg":"agent stopped"`) {
		t.Errorf("no clean stop in the log:\n%s", log)
	}

	// The pipeline over the uploaded segments and reports.
	pl := pipeline.New(pipeline.Config{Store: r.st, WaitPredecessor: 5 * time.Second})
	for k, ss := range segs {
		for _, s := range ss {
			if err := pl.Ingest(ctx, s.key); err != nil {
				t.Fatal(err)
			}
		}
		if err := pl.FlushStream(ctx, keys.Stream{Agent: r.id, Stream: k}, uint64(len(ss)-1)); err != nil {
			t.Fatal(err)
		}
	}
	_, statusKeys := statusReports(t, r.st, r.id)
	for _, k := range statusKeys {
		if err := pl.Ingest(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	lake := lakeHTTP(t, r.st)
	ref := filepath.Join(r.dir, "ref")
	if out, err := runCLI(t, "parse", "-q", "--lake", ref, "--agent", r.id, td.Path); err != nil {
		t.Fatalf("parse: %v\n%s", err, out)
	}
	refSt, err := store.NewLocal(ref)
	if err != nil {
		t.Fatal(err)
	}
	parsed := lakeHTTP(t, refSt)
	gotKeys, wantKeys := make([]string, len(lake)), make([]string, len(parsed))
	for i := range lake {
		gotKeys[i] = httpKey(&lake[i])
		if lake[i].ServerName != "web.test" || lake[i].ClientName != "client.test" {
			t.Errorf("exchange %s named %q -> %q, want the agent's hosts names", lake[i].URI, lake[i].ClientName, lake[i].ServerName)
			break
		}
	}
	for i := range parsed {
		wantKeys[i] = httpKey(&parsed[i])
	}
	slices.Sort(gotKeys)
	slices.Sort(wantKeys)
	if dropped == 0 && tds.Dropped == 0 && !slices.Equal(gotKeys, wantKeys) {
		t.Errorf("lake: %d exchanges, parse of tcpdump's capture: %d; they differ", len(gotKeys), len(wantKeys))
		for i := 0; i < min(len(gotKeys), len(wantKeys)); i++ {
			if gotKeys[i] != wantKeys[i] {
				t.Errorf("first difference:\n lake  %s\n parse %s", gotKeys[i], wantKeys[i])
				break
			}
		}
	}
	t.Logf("lake: %d http exchanges; parse of tcpdump's capture: %d", len(gotKeys), len(wantKeys))
	if len(lake) < 100 {
		t.Errorf("only %d exchanges in the lake", len(lake))
	}
	var cs []schema.CaptureStatus
	err = r.st.List(ctx, keys.LakeTable(schema.TableCaptureStatus), func(info store.Info) error {
		b, err := r.st.GetRange(ctx, info.Key, 0, -1)
		if err != nil {
			return err
		}
		rs, err := parquet.Read[schema.CaptureStatus](bytes.NewReader(b), int64(len(b)))
		cs = append(cs, rs...)
		return err
	})
	if err != nil || len(cs) < 2*len(statusKeys) {
		t.Errorf("%d capture_status rows from %d reports: %v", len(cs), len(statusKeys), err)
	}
	if names, err := hosts.Load(ctx, r.st, r.id); err != nil || len(names) != 3 {
		t.Errorf("published host names: %v %v", names, err)
	}
}

func tcpdumpCount(m map[string]int) int {
	n := 0
	for _, c := range m {
		n += c
	}
	return n
}

// objectFiles lists the files under the spool's objects/ directory.
func objectFiles(t *testing.T, spool string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	root := filepath.Join(spool, "objects")
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		b, err := os.ReadFile(path)
		out[filepath.ToSlash(rel)] = b
		return err
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return out
}

// steadyTraffic runs curl in the background: count requests at rate per
// second, each on a connection of its own (so that both streams get some).
func steadyTraffic(t *testing.T, n *agenttest.Net, count, rate int) *agenttest.Proc {
	t.Helper()
	url := fmt.Sprintf("http://%s/small?n=[1-%d]", agenttest.SrvAddr, count)
	return agenttest.Start(t, n.Command(n.Cli, "curl", "-sS", "-o", "/dev/null", "-H", "Connection: close",
		"--rate", fmt.Sprintf("%d/s", rate), url))
}

// MinIO is killed for 30 s while the agent captures: the segments wait in
// the spool and all arrive once it is back, each once, every stream
// numbered 0..n-1 without a hole, holding every packet captured.
func TestAgentStoreOutage(t *testing.T) {
	r := newRig(t, "outage-agent")
	p := r.startAgent(t)
	traffic := steadyTraffic(t, r.n, 40*40, 40) // 40 s
	time.Sleep(4 * time.Second)
	r.srv.Stop(t)
	t.Log("minio stopped")
	time.Sleep(30 * time.Second)
	spooled := objectFiles(t, r.spool)
	r.srv.Restart(t)
	t.Logf("minio restarted; %d objects were waiting in the spool", len(spooled))
	if err := traffic.Wait(30 * time.Second); err != nil {
		t.Fatalf("curl: %v", err)
	}
	log := stopAgent(t, p)

	var segsWaiting int
	for k := range spooled {
		if strings.HasPrefix(k, keys.PrefixRaw) {
			segsWaiting++
		}
	}
	if segsWaiting < 20 {
		t.Errorf("only %d segments waited in the spool during a 30 s outage with 1 s segments", segsWaiting)
	}
	if !strings.Contains(log, "upload failed; retrying") {
		t.Error("the agent never saw the outage")
	}
	checkAllArrived(t, r, spooled, true)
}

// checkAllArrived checks that the store holds every segment once, numbered
// without holes, that each spooled object arrived byte for byte, and that
// the spool is empty. With oneRun (the segments are all of the agent's last
// run) the segments hold exactly the packets it reports captured.
func checkAllArrived(t *testing.T, r *agentRig, spooled map[string][]byte, oneRun bool) {
	t.Helper()
	segs := agentSegments(t, r.st, r.id)
	final := lastStatus(t, r.st, r.id)
	for k, ss := range segs {
		var pkts int64
		for _, s := range ss {
			pkts += s.meta.Packets
		}
		st := final.Streams[k]
		if st.SpoolBytes != 0 || st.Overflow != 0 {
			t.Errorf("stream %d: final status %+v", k, st)
		}
		t.Logf("stream %d: %d segments, %d packets (last run captured %d, uploaded %d segments)", k, len(ss), pkts, st.Captured, st.SegmentsUploaded)
		if oneRun && (pkts != st.Captured || int64(len(ss)) != st.SegmentsUploaded) {
			t.Errorf("stream %d: the store holds %d segments with %d packets; the agent captured %d and uploaded %d segments",
				k, len(ss), pkts, st.Captured, st.SegmentsUploaded)
		}
	}
	for k, want := range spooled {
		got, err := r.st.GetRange(context.Background(), k, 0, -1)
		if err != nil {
			t.Errorf("spooled %s: %v", k, err)
			continue
		}
		if strings.HasPrefix(k, keys.PrefixRaw) && !bytes.Equal(got, want) {
			t.Errorf("%s: the store holds other bytes than the spool had", k)
		}
	}
	if left := objectFiles(t, r.spool); len(left) != 0 {
		t.Errorf("%d objects left in the spool", len(left))
	}
}

// The agent is killed (SIGKILL) while the store is down and segments wait
// in its spool; started again with the same spool, it goes on with the
// numbering and uploads what the first one left, each segment once.
func TestAgentKilledAndRestarted(t *testing.T) {
	r := newRig(t, "restart-agent")
	p := r.startAgent(t)
	traffic := steadyTraffic(t, r.n, 40*20, 40) // 20 s
	time.Sleep(3 * time.Second)
	r.srv.Stop(t)
	time.Sleep(4 * time.Second)
	p.Kill() // SIGKILL: no flush, no last report
	spooled := objectFiles(t, r.spool)
	lastSeq := map[int]int{0: -1, 1: -1}
	for k := range spooled {
		if kp, err := keys.Parse(k); err == nil {
			lastSeq[kp.Stream.Stream] = max(lastSeq[kp.Stream.Stream], int(kp.Seq))
		}
	}
	t.Logf("killed with %d objects in the spool; last spooled seqs %v", len(spooled), lastSeq)
	if lastSeq[0] < 1 || lastSeq[1] < 1 {
		t.Fatalf("the spool held too little to test: %v", lastSeq)
	}

	p2 := r.startAgent(t) // the store is still down
	for k := range 2 {
		want := regexp.MustCompile(fmt.Sprintf(`"msg":"stream resumes","cmd":"agent","stream":%d,"next_seq":%d[,}]`, k, lastSeq[k]+1))
		if !want.MatchString(p2.Out.String()) {
			t.Errorf("restarted agent does not resume stream %d at %d:\n%s", k, lastSeq[k]+1, p2.Out.String())
		}
	}
	time.Sleep(2 * time.Second)
	r.srv.Restart(t)
	if err := traffic.Wait(30 * time.Second); err != nil {
		t.Fatalf("curl: %v", err)
	}
	stopAgent(t, p2)
	checkAllArrived(t, r, spooled, false)
	segs := agentSegments(t, r.st, r.id)
	for k := range 2 {
		if len(segs[k]) <= lastSeq[k]+1 {
			t.Errorf("stream %d: %d segments, the restarted agent added none after seq %d", k, len(segs[k]), lastSeq[k])
		}
	}
}
