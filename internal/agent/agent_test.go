package agent

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/flowlake/flowlake/internal/agent/hosts"
	"github.com/flowlake/flowlake/internal/agent/source"
	"github.com/flowlake/flowlake/internal/agent/spool"
	"github.com/flowlake/flowlake/internal/capture"
	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/report"
	"github.com/flowlake/flowlake/internal/segment"
	"github.com/flowlake/flowlake/internal/store"
	"github.com/flowlake/flowlake/internal/testcap"
)

// fakeSource emits its packets round-robin over k streams, then, if hold
// is set, waits for the end of the capture.
type fakeSource struct {
	k    int
	pkts [][]byte
	ts   int64
	hold bool
}

func (f *fakeSource) Interface() string { return "fake0" }
func (f *fakeSource) Streams() int      { return f.k }
func (f *fakeSource) Stats() source.Stats {
	return source.Stats{Streams: make([]source.StreamStats, f.k), Filtered: 3, FilteredKnown: true}
}
func (f *fakeSource) Close() error { return nil }
func (f *fakeSource) Run(ctx context.Context, emit source.Emit) error {
	for i, d := range f.pkts {
		p := source.Packet{TS: f.ts + int64(i), Link: layers.LinkTypeEthernet, Data: d, WireLen: len(d), Origin: "fake:x"}
		if err := emit(i%f.k, &p); err != nil {
			return err
		}
	}
	if f.hold {
		<-ctx.Done()
	}
	return nil
}

// segmentsOf lists the segments of agent in st per stream, in key order.
func segmentsOf(t *testing.T, st store.Store, agent string) map[int][]segment.Meta {
	t.Helper()
	out := map[int][]segment.Meta{}
	err := st.List(context.Background(), keys.PrefixRaw+"agent="+agent+"/", func(info store.Info) error {
		p, err := keys.Parse(info.Key)
		if err != nil {
			return err
		}
		b, err := st.GetRange(context.Background(), info.Key, 0, -1)
		if err != nil {
			return err
		}
		m, err := segment.ReadMeta(bytes.NewReader(b))
		if err != nil {
			return fmt.Errorf("%s: %w", info.Key, err)
		}
		if m.Seq != p.Seq || m.Stream != p.Stream.Stream || segment.Key(m) != info.Key {
			return fmt.Errorf("%s holds segment %+v", info.Key, m)
		}
		out[m.Stream] = append(out[m.Stream], m)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for k := range out {
		slices.SortFunc(out[k], func(a, b segment.Meta) int { return int(a.Seq) - int(b.Seq) })
	}
	return out
}

// checkNumbering fails t unless each stream's segments are numbered 0..n-1.
func checkNumbering(t *testing.T, segs map[int][]segment.Meta) {
	t.Helper()
	for k, ms := range segs {
		for i, m := range ms {
			if m.Seq != uint64(i) {
				t.Errorf("stream %d: segment %d has seq %d", k, i, m.Seq)
				break
			}
		}
	}
}

func statuses(t *testing.T, st store.Store, agent string) []report.Status {
	t.Helper()
	var out []report.Status
	err := st.List(context.Background(), keys.PrefixStatus+"agent="+agent+"/", func(info store.Info) error {
		b, err := st.GetRange(context.Background(), info.Key, 0, -1)
		if err != nil {
			return err
		}
		s, err := report.Parse(b)
		if err != nil {
			return err
		}
		out = append(out, s)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(out, func(a, b report.Status) int { return a.Time.Compare(b.Time) })
	return out
}

func newAgent(t *testing.T, cfg Config) *Agent {
	t.Helper()
	if cfg.ID == "" {
		cfg.ID = "test-agent"
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	a, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// A replayed capture reaches the store whole: every packet in exactly one
// segment, each stream numbered from 0, a status report and the host names
// beside them, nothing left in the spool. A second run with the same spool
// goes on with the numbering.
func TestAgentReplayAndRestart(t *testing.T) {
	path := testcap.Path(t, "zeek-wikipedia.pcap")
	want := packetsOf(t, path)
	mem := store.NewMem()
	spoolDir := t.TempDir()
	hostsFile := filepath.Join(t.TempDir(), "hosts")
	if err := os.WriteFile(hostsFile, []byte("10.0.0.1 web\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run := func() report.Status {
		src, err := source.NewReplay(source.ReplayConfig{Files: []string{path}, Streams: 2})
		if err != nil {
			t.Fatal(err)
		}
		a := newAgent(t, Config{Store: mem, Source: src, SpoolDir: spoolDir, SegmentBytes: 4 << 10, HostsFile: hostsFile})
		if err := a.Run(context.Background()); err != nil {
			t.Fatal(err)
		}
		return a.Status()
	}
	first := run()
	segs := segmentsOf(t, mem, "test-agent")
	checkNumbering(t, segs)
	var got []string
	var n0, n1 int
	for k, ms := range segs {
		for _, m := range ms {
			key := segment.Key(m)
			b, err := mem.GetRange(context.Background(), key, 0, -1)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, packetsIn(t, b)...)
			if k == 0 {
				n0++
			} else {
				n1++
			}
		}
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("%d packets in the segments, %d in the capture (or different)", len(got), len(want))
	}
	if n0 == 0 || n1 == 0 {
		t.Errorf("segments per stream: %d, %d", n0, n1)
	}
	var captured, uploaded int64
	for _, s := range first.Streams {
		captured += s.Captured
		uploaded += s.SegmentsUploaded
		if s.SpoolBytes != 0 || s.Errors != 0 || s.Overflow != 0 {
			t.Errorf("stream %d: %+v", s.Stream, s)
		}
	}
	if captured != int64(len(want)) || uploaded != int64(n0+n1) {
		t.Errorf("status: captured %d uploaded %d; want %d, %d", captured, uploaded, len(want), n0+n1)
	}
	if st := statuses(t, mem, "test-agent"); len(st) != 1 || st[0].Interface != "pcap" {
		t.Errorf("status reports %+v", st)
	}
	if names, err := hosts.Load(context.Background(), mem, "test-agent"); err != nil || len(names) != 1 {
		t.Errorf("host names %v %v", names, err)
	}

	second := run()
	segs = segmentsOf(t, mem, "test-agent")
	checkNumbering(t, segs)
	if len(segs[0]) != 2*n0 || len(segs[1]) != 2*n1 {
		t.Errorf("after a second run: %d and %d segments, want %d and %d", len(segs[0]), len(segs[1]), 2*n0, 2*n1)
	}
	if second.Streams[0].SegmentsUploaded != int64(n0) {
		t.Errorf("second run uploaded %d segments on stream 0", second.Streams[0].SegmentsUploaded)
	}

	// A new spool (a lost disk) takes the numbering from the store.
	spoolDir = t.TempDir()
	run()
	segs = segmentsOf(t, mem, "test-agent")
	checkNumbering(t, segs)
	if len(segs[0]) != 3*n0 {
		t.Errorf("after a run with a new spool: %d segments on stream 0, want %d", len(segs[0]), 3*n0)
	}
}

func packetsOf(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(f)
	if err != nil {
		t.Fatal(err)
	}
	ps := packetsIn(t, b)
	slices.Sort(ps)
	return ps
}

// packetsIn returns the packets of a capture as "ts bytes" strings.
func packetsIn(t *testing.T, b []byte) []string {
	t.Helper()
	r, err := capture.NewReader(bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []string
	for {
		data, ts, _, _, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%d %x", ts, data))
	}
}

// flakyStore fails every call while down is set.
type flakyStore struct {
	store.Store
	mu   sync.Mutex
	down bool
}

func (f *flakyStore) err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return errors.New("connection refused")
	}
	return nil
}

func (f *flakyStore) set(down bool) {
	f.mu.Lock()
	f.down = down
	f.mu.Unlock()
}

func (f *flakyStore) PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.Store.PutIfAbsent(ctx, key, r, size)
}

func (f *flakyStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.Store.Put(ctx, key, r, size)
}

func (f *flakyStore) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	if err := f.err(); err != nil {
		return err
	}
	return f.Store.List(ctx, prefix, fn)
}

// frames returns n frames of size pseudo-random (incompressible) bytes.
func frames(n, size int) [][]byte {
	r := rand.New(rand.NewPCG(1, 2))
	out := make([][]byte, n)
	for i := range out {
		out[i] = make([]byte, size)
		for j := range out[i] {
			out[i][j] = byte(r.Uint32())
		}
	}
	return out
}

// With the store down and a spool too small for everything, the segments
// that do not fit are dropped and counted as overflow, never silently; what
// was spooled is uploaded once the store is back, on the next start.
func TestAgentOverflow(t *testing.T) {
	fl := &flakyStore{Store: store.NewMem(), down: true}
	spoolDir := t.TempDir()
	// The store is unreachable, but the spool knows the numbering.
	sp, err := spool.Open(spoolDir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.SaveNextSeq(keys.Stream{Agent: "test-agent", Stream: 0}, 0); err != nil {
		t.Fatal(err)
	}
	sp.Close()
	// 64 frames of 1000 random bytes in segments of 8 frames: 8 segments of
	// a little more than 8 KB; the spool takes 20 KB.
	src := &fakeSource{k: 1, pkts: frames(64, 1000), ts: 1e18}
	a := newAgent(t, Config{Store: fl, Source: src, SpoolDir: spoolDir, SpoolBytes: 20000, SegmentBytes: 8000,
		DrainTimeout: 200 * time.Millisecond, MinBackoff: 10 * time.Millisecond, MaxBackoff: 20 * time.Millisecond})
	if err := a.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := a.Status().Streams[0]
	c := a.c[0]
	spooled, dropped := c.segments.Load(), c.overflowSegments.Load()
	if dropped == 0 || spooled == 0 || spooled+dropped != 8 {
		t.Fatalf("%d segments spooled, %d dropped, of 8", spooled, dropped)
	}
	if st.Overflow != dropped*8 || st.Captured != 64 || st.Filtered != 3 || st.Errors == 0 || st.SpoolBytes == 0 || st.SegmentsUploaded != 0 {
		t.Errorf("status %+v", st)
	}
	// Next start with the store up: the spooled segments go out, numbered
	// as they were (with holes where segments overflowed).
	fl.set(false)
	a = newAgent(t, Config{Store: fl, Source: &fakeSource{k: 1}, SpoolDir: spoolDir})
	if err := a.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	segs := segmentsOf(t, fl.Store, "test-agent")
	if int64(len(segs[0])) != spooled {
		t.Errorf("%d segments uploaded after the restart, %d were spooled", len(segs[0]), spooled)
	}
	if next := a.c[0].nextSeq.Load(); next != 8 {
		t.Errorf("next seq %d after 8 segments", next)
	}
}

// A segment of a quiet link is closed by the clock, not only by the next
// packet; the status reports come every StatusEvery; /metrics serves the
// counters.
func TestAgentQuietLinkStatusMetrics(t *testing.T) {
	mem := store.NewMem()
	src := &fakeSource{k: 2, pkts: frames(6, 100), ts: time.Now().UnixNano(), hold: true}
	a := newAgent(t, Config{Store: mem, Source: src, SpoolDir: t.TempDir(), SegmentSpan: 300 * time.Millisecond, WallClock: true,
		StatusEvery: 500 * time.Millisecond, MetricsAddr: "127.0.0.1:0"})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for len(segmentsOf(t, mem, "test-agent")) < 2 {
		if time.Now().After(deadline) {
			cancel()
			t.Fatal("no segment 5 s after the packets of a quiet link")
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The uploader counts an upload just after the object appears in the
	// store: read /metrics until the counters caught up (or the deadline).
	wants := []string{`flowlake_agent_packets_captured_total{stream="0"} 3`, `flowlake_agent_segments_uploaded_total{stream="1"} 1`,
		"flowlake_agent_packets_filtered_total 3", "go_goroutines"}
	for {
		resp, err := http.Get("http://" + a.MetricsAddr() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var missing []string
		for _, want := range wants {
			if !strings.Contains(string(body), want) {
				missing = append(missing, want)
			}
		}
		if len(missing) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("/metrics lacks %q", missing)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(1500 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Report keys have a resolution of one second.
	if n := len(statuses(t, mem, "test-agent")); n < 2 {
		t.Errorf("%d status reports in 2 s at one every 500 ms", n)
	}
}

// An agent started while the store is unreachable captures into its spool
// and uploads once the store can be opened.
func TestLazyStore(t *testing.T) {
	mem := store.NewMem()
	var mu sync.Mutex
	fails := 3
	open := func(ctx context.Context, url string) (store.Store, error) {
		mu.Lock()
		defer mu.Unlock()
		if fails > 0 {
			fails--
			return nil, errors.New("dial tcp: connection refused")
		}
		return mem, nil
	}
	l, err := NewLazyStore(context.Background(), "s3://bucket", open, time.Second)
	if err == nil || !strings.Contains(err.Error(), "connection refused") {
		t.Fatalf("first open: %v", err)
	}
	if l.URL() != "s3://bucket" {
		t.Errorf("URL %s", l.URL())
	}
	// Not retried more than once a second.
	if err := l.Put(context.Background(), "k", strings.NewReader("v"), 1); err == nil {
		t.Error("put before the store opened")
	}
	spoolDir := t.TempDir()
	sp, err := spool.Open(spoolDir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := sp.SaveNextSeq(keys.Stream{Agent: "test-agent", Stream: 0}, 0); err != nil {
		t.Fatal(err)
	}
	sp.Close()
	a := newAgent(t, Config{Store: l, Source: &fakeSource{k: 1, pkts: frames(5, 100), ts: 1e18}, SpoolDir: spoolDir,
		DrainTimeout: 10 * time.Second, MinBackoff: 100 * time.Millisecond, MaxBackoff: 500 * time.Millisecond})
	if err := a.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if segs := segmentsOf(t, mem, "test-agent"); len(segs[0]) != 1 {
		t.Errorf("segments %v", segs)
	}
	if l.URL() != mem.URL() {
		t.Errorf("URL after open %s", l.URL())
	}
}

func TestNewErrors(t *testing.T) {
	mem := store.NewMem()
	src := &fakeSource{k: 1}
	for _, c := range []Config{
		{ID: "bad/id", Store: mem, Source: src, SpoolDir: t.TempDir()},
		{ID: "a", Source: src, SpoolDir: t.TempDir()},
		{ID: "a", Store: mem, Source: src},
		{ID: "a", Store: mem, Source: src, SpoolDir: t.TempDir(), MetricsAddr: "256.0.0.1:1"},
	} {
		if _, err := New(context.Background(), c); err == nil {
			t.Errorf("New(%+v) accepted", c)
		}
	}
	// A new spool and a store that cannot say where the numbering is.
	fl := &flakyStore{Store: mem, down: true}
	_, err := New(context.Background(), Config{ID: "a", Store: fl, Source: src, SpoolDir: t.TempDir(), StartTimeout: 100 * time.Millisecond})
	if err == nil || !strings.Contains(err.Error(), "numbering") {
		t.Errorf("unknown numbering: %v", err)
	}
}
