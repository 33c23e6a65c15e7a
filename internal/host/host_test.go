package host_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowlake/flowlake/internal/host"
	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/pipeline"
	"github.com/flowlake/flowlake/internal/pipeline/pipelinetest"
	"github.com/flowlake/flowlake/internal/store"
)

// testLog sends the host's log to the test log.
func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// minioEvent is a notification as MinIO's webhook and NATS targets send it
// (event.Log of MinIO), for an object created in bucket.
func minioEvent(bucket, key string) []byte {
	return minioEventNamed("s3:ObjectCreated:Put", bucket, url.QueryEscape(key))
}

func minioEventNamed(name, bucket, encodedKey string) []byte {
	decoded, err := url.QueryUnescape(encodedKey)
	if err != nil {
		decoded = encodedKey
	}
	rec := map[string]any{
		"eventVersion": "2.0", "eventSource": "minio:s3", "awsRegion": "", "eventTime": "2024-05-01T10:00:00.123Z",
		"eventName":         name,
		"userIdentity":      map[string]any{"principalId": "flowlake"},
		"requestParameters": map[string]any{"principalId": "flowlake", "region": "", "sourceIPAddress": "127.0.0.1"},
		"responseElements":  map[string]any{"x-amz-id-2": "dd9025ba", "x-amz-request-id": "17C8A2", "x-minio-deployment-id": "7c1d", "x-minio-origin-endpoint": "http://127.0.0.1:9000"},
		"s3": map[string]any{
			"s3SchemaVersion": "1.0", "configurationId": "flowlake-raw-webhook",
			"bucket": map[string]any{"name": bucket, "ownerIdentity": map[string]any{"principalId": "flowlake"}, "arn": "arn:aws:s3:::" + bucket},
			"object": map[string]any{"key": encodedKey, "size": 1234, "eTag": "0b3f", "contentType": "application/octet-stream",
				"userMetadata": map[string]any{"content-type": "application/octet-stream"}, "sequencer": "17C8A2"},
		},
		"source": map[string]any{"host": "127.0.0.1", "port": "", "userAgent": "aws-sdk-go-v2"},
	}
	b, _ := json.Marshal(map[string]any{"EventName": name, "Key": bucket + "/" + decoded, "Records": []any{rec}})
	return b
}

// urlStore is a store that claims another URL: an S3 bucket and prefix.
type urlStore struct {
	store.Store
	url string
}

func (s urlStore) URL() string { return s.url }

// running is a host running on a loopback listener.
type running struct {
	h    *host.Host
	url  string // http://addr
	stop func() error
}

func start(t *testing.T, cfg host.Config) *running {
	t.Helper()
	if cfg.Log == nil {
		cfg.Log = testLog(t)
	}
	h, err := host.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx, ln) }()
	var once sync.Once
	var runErr error
	stop := func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(time.Minute):
				runErr = fmt.Errorf("Run did not return a minute after its context was cancelled")
			}
		})
		return runErr
	}
	t.Cleanup(func() { _ = stop() })
	return &running{h: h, url: "http://" + ln.Addr().String(), stop: stop}
}

func post(t *testing.T, url, token string, body []byte) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitFor polls cond until it holds or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: still waiting for %s", timeout, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func committed(st store.Store, s keys.Stream, n int) func() bool {
	return func() bool {
		for i := range n {
			if _, err := st.Stat(context.Background(), keys.State(s, uint64(i))); err != nil {
				return false
			}
		}
		return true
	}
}

// flushAndCheck ends the stream and compares the lake with one parse of
// segs, and checks that every segment has a parse_status row without gap.
func flushAndCheck(t *testing.T, st store.Store, segs []pipelinetest.Segment) {
	t.Helper()
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

// Webhooks in reverse order with one worker and a long predecessor wait:
// the parses that wait for their predecessor do not hold the worker, so
// the stream completes at once, without gaps, each segment committed once.
func TestOutOfOrderOneWorker(t *testing.T) {
	segs := pipelinetest.Cut(t, "ndpi-1kxun.pcap", 128<<10)
	st := store.NewMem()
	pipelinetest.Upload(t, st, segs)
	r := start(t, host.Config{Store: st, Workers: 1, WaitPredecessor: time.Minute})
	began := time.Now()
	for i := len(segs) - 1; i >= 0; i-- {
		if code, body := post(t, r.url+"/minio/events", "", minioEvent("any", segs[i].Key)); code != http.StatusOK {
			t.Fatalf("segment %d: %d %s", i, code, body)
		}
	}
	// A stuck worker would show as a gap after the pipeline's last wait
	// (2 s) per segment, or as no progress for a minute.
	waitFor(t, 30*time.Second, "every checkpoint", committed(st, pipelinetest.Stream, len(segs)))
	t.Logf("%d segments in reverse order parsed in %v", len(segs), time.Since(began).Round(time.Millisecond))
	if err := r.stop(); err != nil {
		t.Fatal(err)
	}
	s := r.h.Stats()
	if s.Committed != int64(len(segs)) || s.Ingested != int64(len(segs)) || s.ParseErrors != 0 || s.WaitsExpired != 0 {
		t.Errorf("stats %+v: want %d ingested and committed, no errors, no expired waits", s, len(segs))
	}
	flushAndCheck(t, st, segs)
}

// A segment that never arrives: its successor is parsed after
// WaitPredecessor from empty state, with the gap recorded, and the stream
// goes on.
func TestMissingPredecessorBecomesAGap(t *testing.T) {
	segs := pipelinetest.Cut(t, "ndpi-1kxun.pcap", 256<<10)[:4]
	st := store.NewMem()
	r := start(t, host.Config{Store: st, Workers: 2, WaitPredecessor: 300 * time.Millisecond, Recheck: 50 * time.Millisecond})
	for _, i := range []int{3, 2, 0} {
		pipelinetest.Upload(t, st, segs[i:i+1])
		if code, body := post(t, r.url+"/minio/events", "", minioEvent("b", segs[i].Key)); code != http.StatusOK {
			t.Fatalf("segment %d: %d %s", i, code, body)
		}
	}
	waitFor(t, 20*time.Second, "checkpoint 3", func() bool {
		_, err := st.Stat(context.Background(), keys.State(pipelinetest.Stream, 3))
		return err == nil
	})
	ps := pipelinetest.StatusRows(t, st)
	if len(ps) != 3 || ps[0].Seq != 0 || ps[0].Gap || ps[1].Seq != 2 || !ps[1].Gap || ps[1].Status != "gap" || ps[2].Gap {
		t.Errorf("parse_status: %+v", ps)
	}
	if s := r.h.Stats(); s.WaitsExpired != 1 || s.Committed != 3 {
		t.Errorf("stats %+v: want one expired wait, 3 commits", s)
	}
}

// A predecessor that has arrived (indexed) but is not parsed is on its way,
// not missing: its successor waits past WaitPredecessor, and parses without
// a gap once the predecessor is parsed.
func TestArrivedPredecessorIsNotAGap(t *testing.T) {
	segs := pipelinetest.Cut(t, "ndpi-1kxun.pcap", 256<<10)[:2]
	st := store.NewMem()
	r := start(t, host.Config{Store: st, Workers: 2, WaitPredecessor: 200 * time.Millisecond, Recheck: 20 * time.Millisecond, ReconcileEvery: time.Hour})
	waitFor(t, 10*time.Second, "the first reconcile", func() bool { return r.h.Stats().ReconcileRuns == 1 })
	pipelinetest.Upload(t, st, segs) // after it: it would ingest them
	// Segment 0 was ingested by a host that died before parsing it.
	idx := keys.SegmentIndex(pipelinetest.Stream, 0)
	if err := st.PutIfAbsent(t.Context(), idx, strings.NewReader(segs[0].Key), int64(len(segs[0].Key))); err != nil {
		t.Fatal(err)
	}
	if code, body := post(t, r.url+"/minio/events", "", minioEvent("b", segs[1].Key)); code != http.StatusOK {
		t.Fatalf("%d %s", code, body)
	}
	time.Sleep(time.Second) // five times WaitPredecessor
	if _, err := st.Stat(t.Context(), keys.State(pipelinetest.Stream, 1)); err == nil {
		t.Fatal("segment 1 was parsed before its (arrived) predecessor")
	}
	if s := r.h.Stats(); s.Parked != 1 {
		t.Fatalf("stats %+v: want segment 1 parked", s)
	}
	// The event of segment 0 again (MinIO's retry, or Reconcile).
	if code, body := post(t, r.url+"/minio/events", "", minioEvent("b", segs[0].Key)); code != http.StatusOK {
		t.Fatalf("%d %s", code, body)
	}
	waitFor(t, 10*time.Second, "both checkpoints", committed(st, pipelinetest.Stream, 2))
	flushAndCheck(t, st, segs)
}

// failStore fails writes of index objects: ingest cannot complete.
type failStore struct{ store.Store }

func (f failStore) PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) error {
	if strings.HasSuffix(key, keys.ExtIndex) {
		return fmt.Errorf("put-if-absent %s: injected failure", key)
	}
	return f.Store.PutIfAbsent(ctx, key, r, size)
}

// The webhook endpoint: authentication, precise 4xx for malformed
// notifications, 503 when ingest fails (MinIO retries), and what it
// ignores.
func TestWebhook(t *testing.T) {
	segs := pipelinetest.Cut(t, "ndpi-1kxun.pcap", 256<<10)[:1]
	mem := store.NewMem()
	// The store is s3://lake-bucket/site1: keys in the bucket carry site1/.
	st := urlStore{mem, "s3://lake-bucket/site1"}
	pipelinetest.Upload(t, mem, segs)
	const token = "s3cr3t"
	r := start(t, host.Config{Store: st, Workers: 1, WebhookToken: token})
	badMem := store.NewMem()
	pipelinetest.Upload(t, badMem, segs)
	bad := start(t, host.Config{Store: failStore{badMem}, Workers: 1})

	good := minioEvent("lake-bucket", "site1/"+segs[0].Key)
	for _, tc := range []struct {
		name     string
		url      string
		token    string
		body     []byte
		code     int
		contains string
	}{
		{"no token", r.url, "", good, 401, "Bearer"},
		{"wrong token", r.url, "nope", good, 401, "Bearer"},
		{"not JSON", r.url, token, []byte("hello"), 400, "not a JSON object"},
		{"no records", r.url, token, []byte(`{"EventName":"s3:ObjectCreated:Put","Records":[]}`), 400, "no Records"},
		{"bad key escape", r.url, token, minioEventNamed("s3:ObjectCreated:Put", "lake-bucket", "site1%2Fraw%zz"), 400, "record 0: invalid URL escape"},
		{"record without key", r.url, token, []byte(`{"Records":[{"eventName":"s3:ObjectCreated:Put","s3":{"bucket":{"name":"lake-bucket"},"object":{}}}]}`), 400, "want eventName, s3.bucket.name and s3.object.key"},
		{"bad event time", r.url, token, bytes.Replace(good, []byte("2024-05-01T10:00:00.123Z"), []byte("yesterday"), 1), 400, "record 0"},
		{"too large", r.url, token, bytes.Repeat([]byte(" "), 2<<20), 413, "larger than"},
		{"test event", r.url, token, []byte(`{"Event":"s3:TestEvent","Bucket":"lake-bucket"}`), 200, `"ingested":0`},
		{"other bucket", r.url, token, minioEvent("other", "site1/"+segs[0].Key), 200, `"ingested":0`},
		{"outside the prefix", r.url, token, minioEvent("lake-bucket", segs[0].Key), 200, `"ingested":0`},
		{"removal", r.url, token, minioEventNamed("s3:ObjectRemoved:Delete", "lake-bucket", url.QueryEscape("site1/"+segs[0].Key)), 200, `"ingested":0`},
		{"object gone", r.url, token, minioEvent("lake-bucket", "site1/raw/agent=probe/stream=0/2024/01/01/00/00000000000000000009.pcapng.zst"), 200, `"ingested":0`},
		{"secrets (no handler yet)", r.url, token, minioEvent("lake-bucket", "site1/secrets/agent=probe/x.keylog"), 200, `"ingested":1`},
		{"good", r.url, token, good, 200, `"ingested":1`},
		{"ingest fails", bad.url, "", minioEvent("b", segs[0].Key), 503, "injected failure"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := post(t, tc.url+"/minio/events", tc.token, tc.body)
			if code != tc.code || !strings.Contains(body, tc.contains) {
				t.Errorf("got %d %q, want %d with %q", code, body, tc.code, tc.contains)
			}
		})
	}
	waitFor(t, 10*time.Second, "checkpoint 0", committed(mem, pipelinetest.Stream, 1))
	// The key reached the pipeline without the prefix.
	if b, err := mem.GetRange(t.Context(), keys.SegmentIndex(pipelinetest.Stream, 0), 0, -1); err != nil || string(b) != segs[0].Key {
		t.Errorf("index holds %q (%v), want %q", b, err, segs[0].Key)
	}

	resp, err := http.Get(r.url + "/minio/events")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("GET /minio/events: %d", resp.StatusCode)
	}
	resp, err = http.Get(r.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	var health struct {
		Status string
		host.Stats
	}
	err = json.NewDecoder(resp.Body).Decode(&health)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 || health.Status != "ok" || health.Ingested != 2 || health.BadEvents != 5 || health.Committed != 1 {
		t.Errorf("healthz: %d %+v %v", resp.StatusCode, health, err)
	}
	if s := bad.h.Stats(); s.IngestErrors != 1 {
		t.Errorf("failing host: %+v", s)
	}
}

// gateStore holds the second read of a raw segment (the first is
// ingest's, the second parse's) until the gate opens or its context ends,
// to keep a parse in flight.
type gateStore struct {
	store.Store
	gate    chan struct{}
	holding chan struct{} // closed when the read is held
	mu      sync.Mutex
	reads   int
}

func (g *gateStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if strings.HasPrefix(key, keys.PrefixRaw) {
		g.mu.Lock()
		g.reads++
		hold := g.reads == 2
		g.mu.Unlock()
		if hold {
			close(g.holding)
			select {
			case <-g.gate:
			case <-ctx.Done():
				return nil, fmt.Errorf("get %s: %w", key, ctx.Err())
			}
		}
	}
	return g.Store.Get(ctx, key)
}

// Shutdown lets a running parse finish and commit; one that outlasts the
// drain timeout is cancelled, uncommitted, for Reconcile to redo.
func TestDrain(t *testing.T) {
	segs := pipelinetest.Cut(t, "ndpi-1kxun.pcap", 256<<10)[:1]
	for _, tc := range []struct {
		name   string
		open   bool // the held read goes on during the drain
		commit bool
	}{
		{"finishes", true, true},
		{"cancelled at the drain timeout", false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mem := store.NewMem()
			g := &gateStore{Store: mem, gate: make(chan struct{}), holding: make(chan struct{})}
			const drain = time.Second
			r := start(t, host.Config{Store: g, Workers: 1, DrainTimeout: drain})
			waitFor(t, 10*time.Second, "the first reconcile", func() bool { return r.h.Stats().ReconcileRuns == 1 })
			pipelinetest.Upload(t, mem, segs) // after it: it would ingest the segment
			if code, body := post(t, r.url+"/minio/events", "", minioEvent("b", segs[0].Key)); code != http.StatusOK {
				t.Fatalf("%d %s", code, body)
			}
			select {
			case <-g.holding:
			case <-time.After(10 * time.Second):
				t.Fatal("the parse did not start")
			}
			if tc.open {
				time.AfterFunc(200*time.Millisecond, func() { close(g.gate) })
			}
			began := time.Now()
			if err := r.stop(); err != nil {
				t.Fatal(err)
			}
			took := time.Since(began)
			_, err := mem.Stat(t.Context(), keys.State(pipelinetest.Stream, 0))
			if got := err == nil; got != tc.commit {
				t.Errorf("checkpoint written: %v, want %v", got, tc.commit)
			}
			if took > drain+2*time.Second {
				t.Errorf("shutdown took %v with a drain timeout of %v", took, drain)
			}
			if !tc.commit && took < drain {
				t.Errorf("shutdown took %v: did not wait the drain timeout %v for the running parse", took, drain)
			}
			s := r.h.Stats()
			if tc.commit && s.Committed != 1 || !tc.commit && s.ParseErrors != 1 {
				t.Errorf("stats %+v", s)
			}
			// A stopped host takes no more events.
			if _, err := http.Post(r.url+"/minio/events", "application/json", bytes.NewReader(minioEvent("b", segs[0].Key))); err == nil {
				t.Error("the webhook endpoint still answers after Run returned")
			}
		})
	}
}

func TestNewErrors(t *testing.T) {
	st := store.NewMem()
	for _, tc := range []struct {
		name string
		cfg  host.Config
		want string
	}{
		{"no store", host.Config{}, "no store"},
		{"negative workers", host.Config{Store: st, Workers: -1}, "-1 workers"},
		{"token with a space", host.Config{Store: st, WebhookToken: "Basic abc"}, "white space"},
		{"nats without URL", host.Config{Store: st, NATS: &host.NATSConfig{Stream: "s", Subject: "a.b"}}, "no server URL"},
		{"nats stream with a dot", host.Config{Store: st, NATS: &host.NATSConfig{URL: "nats://x", Stream: "a.b", Subject: "a.b"}}, "stream name"},
		{"nats without subject", host.Config{Store: st, NATS: &host.NATSConfig{URL: "nats://x", Stream: "s"}}, "no subject"},
		{"nats consumer with a wildcard", host.Config{Store: st, NATS: &host.NATSConfig{URL: "nats://x", Stream: "s", Subject: "a", Consumer: "c*"}}, "consumer name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := host.New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %v, want %q", err, tc.want)
			}
		})
	}
}
