package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/notify"
	"github.com/flowlake/flowlake/internal/pipeline"
	"github.com/flowlake/flowlake/internal/pipeline/pipelinetest"
	"github.com/flowlake/flowlake/internal/store"
	"github.com/flowlake/flowlake/internal/store/miniotest"
)

// buildFlowlake builds the flowlake binary into a temporary directory.
func buildFlowlake(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the flowlake binary: not in -short mode")
	}
	bin := filepath.Join(t.TempDir(), "flowlake")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// proc is a flowlake subprocess.
type proc struct {
	cmd    *exec.Cmd
	log    string // its stderr
	exited chan struct{}
}

// startProc starts bin with args and env (added to the test's
// environment). The process is killed when the test ends, and by the
// kernel if the test process dies.
func startProc(t *testing.T, bin string, env []string, logFile string, args ...string) *proc {
	t.Helper()
	f, err := os.Create(logFile)
	if err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: exec.Command(bin, args...), log: logFile, exited: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	p.cmd.Stdout, p.cmd.Stderr = f, f
	p.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	started := make(chan error, 1)
	go func() {
		// The parent-death signal follows the thread that started the
		// child: keep it until the child ends.
		runtime.LockOSThread()
		if err := p.cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = p.cmd.Wait()
		f.Close()
		close(p.exited)
	}()
	if err := <-started; err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.exited
	})
	return p
}

// logLines returns the JSON log lines of the process.
func (p *proc) logLines(t *testing.T) []map[string]any {
	t.Helper()
	b, err := os.ReadFile(p.log)
	if err != nil {
		t.Fatal(err)
	}
	var out []map[string]any
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var m map[string]any
		if json.Unmarshal(sc.Bytes(), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

func (p *proc) logText(t *testing.T) string {
	b, _ := os.ReadFile(p.log)
	s := string(b)
	if len(s) > 6000 {
		s = "…" + s[len(s)-6000:]
	}
	return s
}

// waitHealthy waits until GET url/healthz answers 200.
func waitHealthy(t *testing.T, p *proc, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		select {
		case <-p.exited:
			t.Fatalf("functions host exited: %s", p.logText(t))
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("functions host not healthy at %s: %v\n%s", url, err, p.logText(t))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// countState counts the segment indexes and checkpoints of the store.
func countState(t *testing.T, st store.Store) (indexed, committed int) {
	t.Helper()
	err := st.List(context.Background(), keys.PrefixState, func(info store.Info) error {
		switch {
		case strings.HasSuffix(info.Key, keys.ExtIndex):
			indexed++
		case strings.HasSuffix(info.Key, keys.ExtState):
			committed++
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return indexed, committed
}

// The functions host as a real process, killed with SIGKILL while it
// parses: events delivered while it is down wait in MinIO's queue
// directory, Reconcile at the restart redoes the work the kill lost, and
// the lake equals one parse of the packets. SIGTERM then stops it cleanly.
func TestFunctionsServeKilled(t *testing.T) {
	segs := pipelinetest.Cut(t, "ndpi-1kxun.pcap", 128<<10)
	bin := buildFlowlake(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	token := rand.Text()
	arn := notify.ARN("FLOWLAKE", notify.KindWebhook)
	env, err := notify.Webhook{ID: "FLOWLAKE", Endpoint: "http://" + addr + "/minio/events", AuthToken: token, QueueDir: t.TempDir()}.Env()
	if err != nil {
		t.Fatal(err)
	}
	srv := miniotest.StartWithEnv(t, env)
	var awsEnv []string
	for k, v := range srv.Env() {
		awsEnv = append(awsEnv, k+"="+v)
	}
	storeURL := "s3://" + srv.Bucket
	dir := t.TempDir()

	// The notification rules, set by the CLI.
	notifier := startProc(t, bin, awsEnv, filepath.Join(dir, "notify.log"), "functions", "notify", "--store", storeURL, "--arn", arn)
	<-notifier.exited
	if !notifier.cmd.ProcessState.Success() || !strings.Contains(notifier.logText(t), "raw/, secrets/, status/ -> "+arn) {
		t.Fatalf("functions notify: %v\n%s", notifier.cmd.ProcessState, notifier.logText(t))
	}

	serve := func(n int) *proc {
		p := startProc(t, bin, append(awsEnv, "FLOWLAKE_WEBHOOK_TOKEN="+token), filepath.Join(dir, fmt.Sprintf("host%d.log", n)),
			"functions", "serve", "--store", storeURL, "--addr", addr, "--workers", "1", "--log-level", "debug")
		waitHealthy(t, p, "http://"+addr)
		return p
	}
	srv.SetEnv(t)
	st, err := store.Open(t.Context(), storeURL)
	if err != nil {
		t.Fatal(err)
	}
	upload := func(idx []int) {
		for _, i := range idx {
			_, err := srv.Client().PutObject(t.Context(), &s3.PutObjectInput{
				Bucket: aws.String(srv.Bucket), Key: aws.String(segs[i].Key), Body: bytes.NewReader(segs[i].Data),
			})
			if err != nil {
				t.Fatalf("upload segment %d: %v", i, err)
			}
		}
	}
	// The first batch holds segments 0-13, the second 14-20; each is
	// uploaded shuffled.
	rng := mrand.New(mrand.NewPCG(3, 5))
	cut := len(segs) * 2 / 3
	first, second := rng.Perm(cut), rng.Perm(len(segs)-cut)
	for i := range second {
		second[i] += cut
	}

	// inFlight returns the segments whose parse the host logged as started
	// and that have no checkpoint.
	inFlight := func(p *proc) []uint64 {
		var out []uint64
		for _, m := range p.logLines(t) {
			if m["msg"] != "functions host: parse start" {
				continue
			}
			seq, _ := m["seq"].(float64)
			if _, err := st.Stat(t.Context(), keys.State(pipelinetest.Stream, uint64(seq))); err != nil {
				out = append(out, uint64(seq))
			}
		}
		return out
	}
	began := time.Now()
	// Kill the host while it parses. The commit may land between the look
	// and the kill: then the parse was not lost, and another host is
	// started and killed the same way.
	var lost []uint64
	run := 0
	for run < 3 && len(lost) == 0 {
		run++
		h := serve(run)
		if run == 1 {
			upload(first)
		}
		// The first host is killed once a few checkpoints are there.
		ready := func() bool {
			_, c := countState(t, st)
			return (run > 1 || c >= 2) && len(inFlight(h)) > 0
		}
		deadline := time.Now().Add(60 * time.Second)
		for !ready() {
			if time.Now().After(deadline) {
				t.Fatalf("host %d started no parse in a minute:\n%s", run, h.logText(t))
			}
			time.Sleep(2 * time.Millisecond)
		}
		if err := h.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		<-h.exited
		lost = inFlight(h)
		indexed, committed := countState(t, st)
		t.Logf("host %d killed %v after the first upload: %d indexed, %d committed, parses lost: %v",
			run, time.Since(began).Round(time.Millisecond), indexed, committed, lost)
	}
	if len(lost) == 0 {
		t.Fatal("three hosts committed their parse before the kill landed")
	}

	// Events of these arrive while the host is down.
	upload(second)
	time.Sleep(500 * time.Millisecond)
	host2 := serve(run + 1)
	waitFor := time.Now().Add(90 * time.Second)
	for {
		if _, c := countState(t, st); c == len(segs) {
			break
		}
		if time.Now().After(waitFor) {
			i, c := countState(t, st)
			t.Fatalf("after the restart: %d of %d segments committed (%d indexed):\n%s", c, len(segs), i, host2.logText(t))
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("all %d segments committed %v after the first upload", len(segs), time.Since(began).Round(time.Millisecond))

	if err := host2.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-host2.exited:
	case <-time.After(40 * time.Second):
		t.Fatal("no exit 40 s after SIGTERM")
	}
	if !host2.cmd.ProcessState.Success() {
		t.Errorf("exit after SIGTERM: %v\n%s", host2.cmd.ProcessState, host2.logText(t))
	}
	reconciled, ingested, stopped := 0.0, 0, false
	for _, m := range host2.logLines(t) {
		switch m["msg"] {
		case "functions host: reconcile":
			n, _ := m["started"].(float64)
			reconciled += n
		case "functions host: ingested":
			ingested++
		case "functions host: stopped":
			stopped = true
		}
	}
	// The parse the kill lost was indexed but uncommitted: no event brings
	// it back, Reconcile does. The second batch came through MinIO's queued
	// events or, whichever was first, through the restarted host's listing
	// of the segments after the stream's newest indexed one (Reconcile at
	// start).
	if reconciled < 1 || int(reconciled)+ingested < 1+len(second) || !stopped {
		t.Errorf("restarted host: reconcile started %v parses, %d ingests (want at least %d together), stopped cleanly: %v\n%s",
			reconciled, ingested, 1+len(second), stopped, host2.logText(t))
	}

	p := pipeline.New(pipeline.Config{Store: st})
	if err := p.FlushStream(t.Context(), pipelinetest.Stream, uint64(len(segs)-1)); err != nil {
		t.Fatal(err)
	}
	pipelinetest.CheckLake(t, st, pipelinetest.Reference(t, segs))
	ps := pipelinetest.StatusRows(t, st)
	if len(ps) != len(segs) {
		t.Fatalf("%d parse_status rows for %d segments", len(ps), len(segs))
	}
	for i, r := range ps {
		if r.Status != "ok" || r.Gap || r.Seq != int64(i) {
			t.Errorf("parse_status %d: seq %d status %q gap %v error %q", i, r.Seq, r.Status, r.Gap, r.Error)
		}
	}
}

// Usage mistakes exit with status 2 and say what is wrong.
func TestFunctionsUsage(t *testing.T) {
	getenv := func(env map[string]string) func(string) string { return func(k string) string { return env[k] } }
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		env  map[string]string
		want string
	}{
		{[]string{"functions"}, nil, "no command given"},
		{[]string{"functions", "dance"}, nil, `unknown command "dance"`},
		{[]string{"functions", "serve"}, nil, "no --store"},
		{[]string{"functions", "serve", "--store", "x", "extra"}, nil, "unexpected arguments"},
		{[]string{"functions", "serve", "--store", "x", "--workers", "-1"}, nil, "--workers -1"},
		{[]string{"functions", "serve", "--store", "x", "--log-level", "loud"}, nil, "--log-level"},
		{[]string{"functions", "serve", "--store", "x"}, map[string]string{"FLOWLAKE_WAIT_PREDECESSOR": "soon"}, "FLOWLAKE_WAIT_PREDECESSOR"},
		{[]string{"functions", "serve", "--store", dir, "--nats", "nats://127.0.0.1:1", "--nats-stream", "a.b"}, nil, "stream name"},
		{[]string{"functions", "notify", "--store", "/tmp/x", "--arn", "arn:minio:sqs::A:webhook"}, nil, "want s3://BUCKET"},
		{[]string{"functions", "notify", "--store", "s3://b"}, nil, "no --arn"},
		{[]string{"functions", "notify", "--store", "s3://b", "--arn", "webhook"}, nil, "want an ARN"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			err := run(t.Context(), tc.args, getenv(tc.env), &stdout, &stderr)
			var ue usageError
			if !errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v (%T), want a usage error with %q", err, err, tc.want)
			}
		})
	}
}

// freeAddrs returns n loopback addresses whose ports were free a moment ago.
func freeAddrs(t *testing.T, n int) []string {
	t.Helper()
	var out []string
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		out = append(out, l.Addr().String())
	}
	return out
}

// localstack/up.sh brings up MinIO, the bucket notifications and the
// functions host; segments uploaded with `flowlake segment` are parsed;
// a second up.sh changes nothing; down.sh stops both processes.
func TestLocalstackUpDown(t *testing.T) {
	minioBin, err := miniotest.Binary()
	if err != nil {
		t.Skip(err.Error())
	}
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl not installed: localstack/up.sh needs it")
	}
	sample := filepath.Join("..", "..", "localstack", "samples", "ndpi-1kxun.pcap")
	bin := buildFlowlake(t)
	state := t.TempDir()
	addrs := freeAddrs(t, 3)
	env := append(os.Environ(),
		"FLOWLAKE_BIN="+bin, "FLOWLAKE_LOCALSTACK_DIR="+state,
		"MINIO_ADDR="+addrs[0], "MINIO_CONSOLE_ADDR="+addrs[1], "FLOWLAKE_ADDR="+addrs[2],
		"PATH="+filepath.Dir(minioBin)+string(os.PathListSeparator)+os.Getenv("PATH"))
	script := func(name string) string {
		cmd := exec.Command("bash", filepath.Join("..", "..", "localstack", name))
		cmd.Env = env
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, out)
		}
		return string(out)
	}
	t.Cleanup(func() { script("down.sh") })
	out := script("up.sh")
	for _, want := range []string{"http://" + addrs[0], "http://" + addrs[2], "segment --store s3://flowlake"} {
		if !strings.Contains(out, want) {
			t.Errorf("up.sh output lacks %q:\n%s", want, out)
		}
	}
	pids := map[string]int{}
	for _, name := range []string{"minio", "functions"} {
		b, err := os.ReadFile(filepath.Join(state, name+".pid"))
		if err != nil {
			t.Fatal(err)
		}
		var pid int
		if _, err := fmt.Sscan(string(b), &pid); err != nil || syscall.Kill(pid, 0) != nil {
			t.Fatalf("%s pid file %q: no running process", name, b)
		}
		pids[name] = pid
	}
	if again := script("up.sh"); !strings.Contains(again, "MinIO already running") || !strings.Contains(again, "functions host already running") {
		t.Errorf("second up.sh:\n%s", again)
	}

	// The printed recipe: source the env file, segment a capture.
	cmd := exec.Command("bash", "-c", `. "$1/env" && "$2" segment --store s3://flowlake --agent demo --max-bytes 512KiB "$3"`, "sh", state, bin, sample)
	cmd.Env = env
	segOut, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("segment: %v\n%s", err, segOut)
	}
	var files, n int
	if _, err := fmt.Sscanf(string(segOut[bytes.Index(segOut, []byte("segmented ")):]), "segmented %d file(s) into %d segment(s)", &files, &n); err != nil || n < 2 {
		t.Fatalf("segment output (%v): %s", err, segOut)
	}
	var health struct{ Ingested, Committed int }
	deadline := time.Now().Add(60 * time.Second)
	for health.Committed < n {
		if time.Now().After(deadline) {
			b, _ := os.ReadFile(filepath.Join(state, "functions.log"))
			t.Fatalf("health %+v a minute after uploading %d segments:\n%s", health, n, b)
		}
		time.Sleep(100 * time.Millisecond)
		resp, err := http.Get("http://" + addrs[2] + "/healthz")
		if err != nil {
			continue
		}
		_ = json.NewDecoder(resp.Body).Decode(&health)
		resp.Body.Close()
	}
	t.Logf("%d segments parsed by the local stack", n)

	out = script("down.sh")
	for name, pid := range pids {
		if syscall.Kill(pid, 0) == nil {
			t.Errorf("%s (pid %d) still runs after down.sh:\n%s", name, pid, out)
		}
		if _, err := os.Stat(filepath.Join(state, name+".pid")); err == nil {
			t.Errorf("%s.pid left behind", name)
		}
	}
}
