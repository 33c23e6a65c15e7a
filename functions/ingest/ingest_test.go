package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/events"
	awslambda "github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/lambda"

	"github.com/flowlake/flowlake/functions/ingest"
	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/pipeline"
	"github.com/flowlake/flowlake/internal/pipeline/pipelinetest"
	"github.com/flowlake/flowlake/internal/store"
)

const capture = "zeek-http-bro.org.pcap"

// The keys of the fixtures, decoded: key0 and key1 are those of the first
// two segments pipelinetest.Cut makes of capture (checked by segments).
const (
	key0 = "raw/agent=probe/stream=0/2014/01/14/17/00000000000000000000.pcapng.zst"
	key1 = "raw/agent=probe/stream=0/2014/01/14/17/00000000000000000001.pcapng.zst"
	// keySpace is the key of the fixture sent as raw/agent%3Dweb+1/…
	keySpace = "raw/agent=web 1/stream=0/2024/01/01/00/00000000000000000000.pcapng.zst"
)

// stream is the stream of key0 and key1.
var stream = pipelinetest.Stream

// segments returns the segments of capture, the first two of which the
// fixtures name.
func segments(t *testing.T) []pipelinetest.Segment {
	t.Helper()
	segs := pipelinetest.Cut(t, capture, 16<<10)
	if len(segs) < 2 || segs[0].Key != key0 || segs[1].Key != key1 {
		t.Fatalf("the fixtures name %s and %s, not the first segments of %s", key0, key1, capture)
	}
	return segs
}

func put(t *testing.T, st store.Store, key string, data []byte) {
	t.Helper()
	if err := st.Put(t.Context(), key, bytes.NewReader(data), int64(len(data))); err != nil {
		t.Fatal(err)
	}
}

func fixture(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// starts records the parses a pipeline asks to start.
type starts struct {
	mu  sync.Mutex
	got []string
}

func (s *starts) invoke(_ context.Context, st keys.Stream, seq uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, fmt.Sprintf("%s#%d", st, seq))
	return nil
}

func (s *starts) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got...)
}

// invoke calls h through aws-lambda-go's handler, JSON in and out, as the
// Lambda runtime does.
func invoke(ctx context.Context, t *testing.T, h *ingest.Handler, event []byte) (events.SQSEventResponse, error) {
	t.Helper()
	out, err := awslambda.NewHandler(h.Handle).Invoke(ctx, event)
	if err != nil {
		return events.SQSEventResponse{}, err
	}
	var resp events.SQSEventResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("response %s: %v", out, err)
	}
	return resp, nil
}

func failed(resp events.SQSEventResponse) []string {
	ids := []string{}
	for _, f := range resp.BatchItemFailures {
		ids = append(ids, f.ItemIdentifier)
	}
	return ids
}

func get(t *testing.T, st store.Store, key string) (string, bool) {
	t.Helper()
	b, err := st.GetRange(t.Context(), key, 0, -1)
	if errors.Is(err, store.ErrNotExist) {
		return "", false
	}
	if err != nil {
		t.Fatal(err)
	}
	return string(b), true
}

func count(t *testing.T, st store.Store) int {
	t.Helper()
	n := 0
	if err := st.List(t.Context(), "", func(store.Info) error { n++; return nil }); err != nil {
		t.Fatal(err)
	}
	return n
}

// logLines decodes JSON log output.
func logLines(t *testing.T, b *bytes.Buffer) []map[string]any {
	t.Helper()
	var out []map[string]any
	for line := range strings.Lines(b.String()) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		out = append(out, m)
	}
	return out
}

func jsonLogger(b *bytes.Buffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(b, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// An SQS event of two S3 notifications with URL-encoded keys, parsed in
// process: both segments are indexed under their decoded keys and parsed,
// and the lake equals the one-pass parse of the two.
func TestSQSEvent(t *testing.T) {
	segs := segments(t)[:2]
	st := store.NewMem()
	pipelinetest.Upload(t, st, segs)
	p := pipeline.New(pipeline.Config{Store: st, WaitPredecessor: time.Second})
	h := ingest.New(p, "")
	resp, err := invoke(t.Context(), t, h, fixture(t, "sqs-s3-put.json"))
	if err != nil || len(resp.BatchItemFailures) != 0 {
		t.Fatalf("got %+v, %v", resp, err)
	}
	for i, key := range []string{key0, key1} {
		if idx, ok := get(t, st, keys.SegmentIndex(stream, uint64(i))); idx != key {
			t.Errorf("index of seq %d: %q %v, want %q", i, idx, ok, key)
		}
		if _, ok := get(t, st, keys.State(stream, uint64(i))); !ok {
			t.Errorf("seq %d not committed", i)
		}
	}
	if err := p.FlushStream(t.Context(), stream, 1); err != nil {
		t.Fatal(err)
	}
	checkLake(t, st, segs)
	if ps := pipelinetest.StatusRows(t, st); len(ps) != 2 || ps[0].Input != key0 || ps[1].Input != key1 {
		t.Errorf("parse_status: %+v", ps)
	}
}

// A direct S3 event: the store prefix is removed from the key, however
// the prefix is spelled, and parse is started through Invoke. When the
// object is missing the invocation fails, for Lambda to retry it.
func TestS3Event(t *testing.T) {
	seg := segments(t)[0]
	for _, prefix := range []string{"flowlake/prod", "flowlake/prod/", "/flowlake/prod/"} {
		t.Run(prefix, func(t *testing.T) {
			st := store.NewMem()
			put(t, st, key0, seg.Data)
			rec := &starts{}
			h := ingest.New(pipeline.New(pipeline.Config{Store: st, Invoke: rec.invoke}), prefix)
			h.Bucket = "flowlake-data"
			resp, err := invoke(t.Context(), t, h, fixture(t, "s3-put.json"))
			if err != nil || len(resp.BatchItemFailures) != 0 {
				t.Fatalf("got %+v, %v", resp, err)
			}
			if idx, _ := get(t, st, keys.SegmentIndex(stream, 0)); idx != key0 {
				t.Errorf("index body %q, want %q", idx, key0)
			}
			if got := rec.list(); !slices.Equal(got, []string{"agent=probe/stream=0#0"}) {
				t.Errorf("started %v", got)
			}
		})
	}
	var logs bytes.Buffer
	h := ingest.New(pipeline.New(pipeline.Config{Store: store.NewMem()}), "flowlake/prod")
	h.Log = jsonLogger(&logs)
	_, err := invoke(t.Context(), t, h, fixture(t, "s3-put.json"))
	if err == nil || !strings.Contains(err.Error(), key0) || !errors.Is(err, store.ErrNotExist) {
		t.Fatalf("missing object: %v", err)
	}
	if !strings.Contains(logs.String(), `"msg":"ingest: failed"`) {
		t.Errorf("not logged: %s", logs.String())
	}
}

// The s3:TestEvent S3 sends when the notification is configured is
// ignored, through SQS and directly.
func TestS3TestEvent(t *testing.T) {
	for _, event := range [][]byte{
		fixture(t, "sqs-s3-test-event.json"),
		[]byte(`{"Service":"Amazon S3","Event":"s3:TestEvent","Time":"2024-01-01T00:00:00.089Z","Bucket":"flowlake-data","RequestId":"5582815E1AEA5ADF","HostId":"8cLeGAmw098X5cv4Zkwcmo8vvZa3eH3eKxsPzbB9wrR+YstdA6Knx4Ip8EXAMPLE"}`),
	} {
		st := store.NewMem()
		rec := &starts{}
		var logs bytes.Buffer
		h := ingest.New(pipeline.New(pipeline.Config{Store: st, Invoke: rec.invoke}), "")
		h.Log = jsonLogger(&logs)
		resp, err := invoke(t.Context(), t, h, event)
		if err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("got %+v, %v", resp, err)
		}
		if n := count(t, st); n != 0 || len(rec.list()) != 0 {
			t.Errorf("test event wrote %d objects, started %v", n, rec.list())
		}
		if !strings.Contains(logs.String(), "ignoring s3:TestEvent") {
			t.Errorf("not logged: %s", logs.String())
		}
	}
}

// A batch mixing good, ignorable and bad messages: exactly the bad ones
// are reported as batch item failures, each with an error log naming the
// message and the reason; the good one is ingested once, the ignorable ones
// do nothing, and a key with "+" for a space is decoded (the object is
// found and quarantined under its decoded key).
func TestMixedBatch(t *testing.T) {
	segs := segments(t)
	st := store.NewMem()
	pipelinetest.Upload(t, st, segs[:2]) // segs[1] is named by the other bucket's and the unprefixed notifications
	put(t, st, keySpace, []byte("not a segment"))
	rec := &starts{}
	var logs bytes.Buffer
	h := ingest.New(pipeline.New(pipeline.Config{Store: st, Invoke: rec.invoke}), "flowlake/prod")
	h.Bucket = "flowlake-data"
	h.Log = jsonLogger(&logs)
	resp, err := invoke(t.Context(), t, h, fixture(t, "sqs-mixed.json"))
	if err != nil {
		t.Fatal(err)
	}
	// message id → the error log message that explains its failure.
	wantFailed := map[string]string{
		"1f7a3c5e-8d2b-4e9f-a0c6-7b4d2e1f5a03": "ingest: SQS message body is not JSON: want an S3 event notification",
		"4d8e1a6b-2c7f-4b3e-9d05-8a1c6f2e7b04": "ingest: SQS message body is not an S3 event notification (no Records)", // an SNS envelope
		"7e3b9c1d-5f4a-4a2e-8c16-2d9b7a4f1c05": "ingest: object key is not URL-encoded",
		"3a6f2d8e-9c1b-4d7a-b3e5-6c0e8f2a9d06": "ingest: failed", // the object (agent web-1) does not exist
		"0d7c3a9e-1f5b-4b8d-9e26-4a1f8c3d7e10": "ingest: S3 event record without eventName or s3.object.key",
	}
	got := failed(resp)
	slices.Sort(got)
	var want []string
	for id := range wantFailed {
		want = append(want, id)
	}
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("batch item failures %v, want %v", got, want)
	}
	lines := logLines(t, &logs)
	for id, msg := range wantFailed {
		if !slices.ContainsFunc(lines, func(l map[string]any) bool {
			return l["level"] == "ERROR" && l["message_id"] == id && l["msg"] == msg
		}) {
			t.Errorf("no error log %q for message %s", msg, id)
		}
	}
	for _, msg := range []string{"ingest: ignoring object of another bucket", "ingest: ignoring object outside the store prefix", "ingest: ignoring s3:TestEvent", "ingest: ignoring event"} {
		if !slices.ContainsFunc(lines, func(l map[string]any) bool { return l["msg"] == msg }) {
			t.Errorf("no log %q", msg)
		}
	}
	if got := rec.list(); !slices.Equal(got, []string{"agent=probe/stream=0#0"}) {
		t.Errorf("started %v, want only the good segment", got)
	}
	if doc, ok := get(t, st, keys.QuarantineError(keySpace)); !ok || !strings.Contains(doc, keySpace) {
		t.Errorf("no quarantine error document for %q: %q", keySpace, doc)
	}
	if _, ok := get(t, st, keys.SegmentIndex(stream, 1)); ok {
		t.Error("seq 1 indexed from a notification that is not ours")
	}
}

// Out of time before the batch starts: every message is a failure, to be
// retried, and nothing is done.
func TestCanceled(t *testing.T) {
	st := store.NewMem()
	rec := &starts{}
	h := ingest.New(pipeline.New(pipeline.Config{Store: st, Invoke: rec.invoke}), "")
	h.Log = slog.New(slog.DiscardHandler)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	resp, err := invoke(ctx, t, h, fixture(t, "sqs-s3-put.json"))
	if err != nil {
		t.Fatal(err)
	}
	if got := failed(resp); !slices.Equal(got, []string{"059f36b4-87a3-44ab-83d2-661975830a7d", "2e1424d4-f796-459a-8184-9c92662be6da"}) {
		t.Errorf("failures %v", got)
	}
	if count(t, st) != 0 || len(rec.list()) != 0 {
		t.Error("work done after the deadline")
	}
}

// Events that are neither SQS nor S3 fail the invocation with a clear
// error, without panicking.
func TestBadEvents(t *testing.T) {
	for _, tc := range []struct{ name, event, want string }{
		{"empty object", `{}`, "has no Records"},
		{"null", `null`, "has no Records"},
		{"array", `[1,2]`, "cannot unmarshal array"},
		{"string", `"raw/x"`, "cannot unmarshal string"},
		{"number record", `{"Records":[42]}`, "record 0"},
		{"kinesis", `{"Records":[{"eventSource":"aws:kinesis","kinesis":{}}]}`, `unknown event source "aws:kinesis"`},
		{"S3 record with a bad key", `{"Records":[{"eventSource":"aws:s3","eventName":"ObjectCreated:Put","s3":{"object":{"key":"raw/%zz"}}}]}`, `decode key "raw/%zz"`},
		{"S3 record without a name", `{"Records":[{"eventSource":"aws:s3","s3":{"object":{"key":"raw/x"}}}]}`, "no eventName"},
		{"SQS record without an id", `{"Records":[{"eventSource":"aws:sqs","body":"{}"}]}`, "without a message id"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var logs bytes.Buffer
			h := ingest.New(pipeline.New(pipeline.Config{Store: store.NewMem()}), "")
			h.Log = jsonLogger(&logs)
			resp, err := invoke(t.Context(), t, h, []byte(tc.event))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %+v, %v; want an error containing %q", resp, err, tc.want)
			}
			if !strings.Contains(logs.String(), `"level":"ERROR"`) {
				t.Errorf("not logged: %s", logs.String())
			}
		})
	}
	// A malformed SQS record with an id is a batch item failure.
	var logs bytes.Buffer
	h := ingest.New(pipeline.New(pipeline.Config{Store: store.NewMem()}), "")
	h.Log = jsonLogger(&logs)
	resp, err := invoke(t.Context(), t, h, []byte(`{"Records":[{"eventSource":"aws:sqs","messageId":"m-1","body":{"Records":[]}}]}`))
	if err != nil || !slices.Equal(failed(resp), []string{"m-1"}) || !strings.Contains(logs.String(), `"msg":"ingest: malformed SQS record","message_id":"m-1"`) {
		t.Errorf("malformed SQS record: %+v, %v, logs %s", resp, err, logs.String())
	}
	// An empty batch is nothing to do.
	if resp, err := invoke(t.Context(), t, h, []byte(`{"Records":[]}`)); err != nil || len(resp.BatchItemFailures) != 0 {
		t.Errorf("empty batch: %+v, %v", resp, err)
	}
}

// fakeLambda serves the Invoke operation of the Lambda API
// (POST /2015-03-31/functions/{name}/invocations) to the real SDK client.
type fakeLambda struct {
	URL string
	// run, if set, handles an asynchronous invocation's payload in its own
	// goroutine after the 202 answer, as Lambda does.
	run func(ctx context.Context, function string, payload []byte) error
	ctx context.Context

	wg    sync.WaitGroup
	mu    sync.Mutex
	calls []invocation
	errs  []error
}

// invocation is one request the fake received.
type invocation struct {
	Function, Type, Auth string
	Payload              []byte
}

func newFakeLambda(t *testing.T) *fakeLambda {
	f := &fakeLambda{ctx: t.Context()}
	srv := httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(srv.Close)
	t.Cleanup(f.wg.Wait) // before srv.Close: cleanups run last-added first
	f.URL = srv.URL
	return f
}

func (f *fakeLambda) serve(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutPrefix(r.URL.Path, "/2015-03-31/functions/")
	name, ok2 := strings.CutSuffix(name, "/invocations")
	if r.Method != http.MethodPost || !ok || !ok2 {
		http.Error(w, "not an Invoke request", http.StatusBadRequest)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	inv := invocation{Function: name, Type: r.Header.Get("X-Amz-Invocation-Type"), Auth: r.Header.Get("Authorization"), Payload: body}
	f.mu.Lock()
	f.calls = append(f.calls, inv)
	f.mu.Unlock()
	switch {
	case strings.HasSuffix(name, "missing"):
		w.Header().Set("X-Amzn-Errortype", "ResourceNotFoundException")
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"Type":"User","message":"Function not found: arn:aws:lambda:eu-west-1:123456789012:function:%s"}`, name)
		return
	case inv.Type != "Event" || strings.HasSuffix(name, "sync"):
		// A synchronous invocation answers 200 with the function's result.
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, `null`)
		return
	}
	if f.run != nil {
		f.wg.Add(1)
		go func() {
			defer f.wg.Done()
			if err := f.run(f.ctx, name, body); err != nil {
				f.mu.Lock()
				f.errs = append(f.errs, err)
				f.mu.Unlock()
			}
		}()
	}
	w.WriteHeader(http.StatusAccepted)
}

func (f *fakeLambda) invocations() []invocation {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]invocation(nil), f.calls...)
}

func (f *fakeLambda) client(region string) *lambda.Client {
	return lambda.New(lambda.Options{
		Region:       region,
		BaseEndpoint: aws.String(f.URL),
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", ""),
	})
}

// LambdaInvoker makes a signed asynchronous Invoke request whose payload
// is the parse request; API errors and a synchronous answer are errors.
func TestLambdaInvoker(t *testing.T) {
	f := newFakeLambda(t)
	c := f.client("eu-west-1")
	arn := "arn:aws:lambda:eu-west-1:123456789012:function:flowlake-parse:live"
	for _, fn := range []string{"flowlake-parse", arn} {
		if err := ingest.LambdaInvoker(c, fn)(t.Context(), keys.Stream{Agent: "web-1", Stream: 3}, 42); err != nil {
			t.Fatalf("%s: %v", fn, err)
		}
	}
	calls := f.invocations()
	if len(calls) != 2 {
		t.Fatalf("%d calls", len(calls))
	}
	for i, fn := range []string{"flowlake-parse", arn} {
		c := calls[i]
		if c.Function != fn || c.Type != "Event" || string(c.Payload) != `{"agent":"web-1","stream":3,"seq":42}` ||
			!strings.HasPrefix(c.Auth, "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/") || !strings.Contains(c.Auth, "/eu-west-1/lambda/aws4_request") {
			t.Errorf("call %d: %+v (payload %s)", i, c, c.Payload)
		}
	}

	err := ingest.LambdaInvoker(c, "flowlake-missing")(t.Context(), stream, 7)
	if err == nil || !strings.Contains(err.Error(), "ResourceNotFoundException") || !strings.Contains(err.Error(), "invoke flowlake-missing for agent=probe/stream=0 seq 7") {
		t.Errorf("missing function: %v", err)
	}
	// Anything but 202 Accepted means the function did not get queued as
	// the pipeline expects (a proxy that runs it synchronously, say).
	if err := ingest.LambdaInvoker(c, "flowlake-sync")(t.Context(), stream, 7); err == nil || !strings.Contains(err.Error(), "status 200, want 202") {
		t.Errorf("synchronous answer: %v", err)
	}
}

// checkLake compares the lake in st with the one-pass parse of segs, which
// must have rows for the comparison to mean something.
func checkLake(t *testing.T, st store.Store, segs []pipelinetest.Segment) {
	t.Helper()
	ref := pipelinetest.Reference(t, segs)
	if len(ref.HTTPRows) == 0 || len(ref.TCPRows) == 0 {
		t.Fatalf("the reference has %d http and %d tcp rows: pick segments with HTTP traffic", len(ref.HTTPRows), len(ref.TCPRows))
	}
	pipelinetest.CheckLake(t, st, ref)
}
