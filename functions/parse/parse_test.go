package parse_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/flowlake/flowlake/functions/parse"
	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/pipeline"
	"github.com/flowlake/flowlake/internal/pipeline/pipelinetest"
	"github.com/flowlake/flowlake/internal/store"
)

const capture = "zeek-http-bro.org.pcap"

// starts records the parses a pipeline asked to start.
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

// indexed uploads segs and ingests them with a pipeline that only records
// the parses it would start: the state a parse invocation finds.
func indexed(t *testing.T, st store.Store, segs []pipelinetest.Segment) {
	t.Helper()
	rec := &starts{}
	p := pipeline.New(pipeline.Config{Store: st, Invoke: rec.invoke})
	pipelinetest.Upload(t, st, segs)
	for _, s := range segs {
		if err := p.Ingest(t.Context(), s.Key); err != nil {
			t.Fatalf("ingest %s: %v", s.Key, err)
		}
	}
	if n := len(rec.list()); n != len(segs) {
		t.Fatalf("ingest started %d parses for %d segments", n, len(segs))
	}
}

// invoke calls h through aws-lambda-go's handler, JSON in and out, as the
// Lambda runtime does.
func invoke(t *testing.T, h *parse.Handler, payload string) (parse.Response, error) {
	t.Helper()
	out, err := lambda.NewHandler(h.Handle).Invoke(t.Context(), []byte(payload))
	if err != nil {
		return parse.Response{}, err
	}
	var resp parse.Response
	if err := json.Unmarshal(out, &resp); err != nil {
		t.Fatalf("response %s: %v", out, err)
	}
	return resp, nil
}

func exists(t *testing.T, st store.Store, key string) bool {
	t.Helper()
	_, err := st.Stat(t.Context(), key)
	if err != nil && !errors.Is(err, store.ErrNotExist) {
		t.Fatal(err)
	}
	return err == nil
}

// A request per segment, each answered by a parse of that segment that
// asks for the next one; a repeated request is a success that does nothing.
// The lake equals the one-pass parse.
func TestRequests(t *testing.T) {
	segs := pipelinetest.Cut(t, capture, 16<<10)
	if len(segs) < 3 {
		t.Fatalf("only %d segments", len(segs))
	}
	st := store.NewMem()
	indexed(t, st, segs)
	rec := &starts{}
	p := pipeline.New(pipeline.Config{Store: st, WaitPredecessor: time.Second, Invoke: rec.invoke})
	h := parse.New(p)
	stream := pipelinetest.Stream
	for i := range segs {
		resp, err := invoke(t, h, fmt.Sprintf(`{"agent":"probe","stream":0,"seq":%d}`, i))
		if err != nil || resp.Result != parse.ResultParsed {
			t.Fatalf("seq %d: %+v, %v", i, resp, err)
		}
		if !exists(t, st, keys.State(stream, uint64(i))) {
			t.Fatalf("seq %d: no checkpoint after a successful parse", i)
		}
		// The next indexed segment is started; after the last there is none.
		want := i + 1
		if i == len(segs)-1 {
			want = i
		}
		if got := rec.list(); len(got) != want || (i < len(segs)-1 && got[i] != fmt.Sprintf("%s#%d", stream, i+1)) {
			t.Fatalf("after seq %d, started %v", i, got)
		}
	}
	resp, err := invoke(t, h, `{"agent":"probe","stream":0,"seq":1}`)
	if err != nil || resp.Result != parse.ResultDone {
		t.Fatalf("repeated request: %+v, %v", resp, err)
	}
	// A reparse request (what ingest sends when keys come late) parses
	// segments 1… again and replaces their rows: the lake stays the same.
	resp, err = invoke(t, h, `{"agent":"probe","stream":0,"seq":1,"reparse":true}`)
	if err != nil || resp.Result != parse.ResultReparsed || resp.Reparsed != len(segs)-1 {
		t.Fatalf("reparse request: %+v, %v; want %d segments reparsed", resp, err, len(segs)-1)
	}
	if err := p.FlushStream(t.Context(), stream, uint64(len(segs)-1)); err != nil {
		t.Fatal(err)
	}
	checkLake(t, st, segs)
	ps := pipelinetest.StatusRows(t, st)
	if len(ps) != len(segs) {
		t.Fatalf("%d parse_status rows for %d segments", len(ps), len(segs))
	}
	for i, r := range ps {
		if r.Seq != int64(i) || r.Status != "ok" || r.Gap {
			t.Errorf("parse_status %d: %+v", i, r)
		}
	}
}

// Bad payloads and failed parses are errors (Lambda retries an
// asynchronous invocation, then sends it to the dead-letter queue), never
// panics, and touch nothing.
func TestErrors(t *testing.T) {
	for _, tc := range []struct {
		name, payload, want string
	}{
		{"not indexed", `{"agent":"web-1","stream":0,"seq":7}`, "segment index"},
		{"no agent", `{"stream":0,"seq":0}`, `lacks "agent"`},
		{"no stream", `{"agent":"web-1","seq":0}`, `lacks "stream"`},
		{"no seq", `{"agent":"web-1","stream":0}`, `lacks "seq"`},
		{"empty agent", `{"agent":"","stream":0,"seq":0}`, "agent id"},
		{"agent with a slash", `{"agent":"a/../b","stream":0,"seq":0}`, "not allowed"},
		{"negative stream", `{"agent":"web-1","stream":-1,"seq":0}`, "out of range"},
		{"stream too large", `{"agent":"web-1","stream":65536,"seq":0}`, "out of range"},
		{"negative seq", `{"agent":"web-1","stream":0,"seq":-1}`, "cannot unmarshal"},
		{"string stream", `{"agent":"web-1","stream":"0","seq":0}`, "cannot unmarshal"},
		{"unknown field", `{"agent":"web-1","stream":0,"seq":0,"key":"raw/x"}`, `unknown field "key"`},
		{"null", `null`, "not a JSON object"},
		{"array", `[{"agent":"web-1","stream":0,"seq":0}]`, "not a JSON object"},
		{"string", `"web-1"`, "not a JSON object"},
		{"bad EventBridge event", `{"detail-type":"Scheduled Event","time":"yesterday"}`, "EventBridge event"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st := store.NewMem()
			var logs bytes.Buffer
			h := parse.New(pipeline.New(pipeline.Config{Store: st, WaitPredecessor: time.Millisecond}))
			h.Log = slog.New(slog.NewJSONHandler(&logs, nil))
			resp, err := invoke(t, h, tc.payload)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %+v, %v; want an error containing %q", resp, err, tc.want)
			}
			if !strings.Contains(logs.String(), `"level":"ERROR"`) {
				t.Errorf("the failure was not logged: %s", logs.String())
			}
			n := 0
			if err := st.List(t.Context(), "", func(store.Info) error { n++; return nil }); err != nil || n != 0 {
				t.Errorf("store has %d objects after a failed invocation (%v)", n, err)
			}
		})
	}
}

// The payload ingest sends is exactly the documented JSON.
func TestRequestJSON(t *testing.T) {
	b, err := json.Marshal(parse.Request{Agent: "web-1", Stream: 3, Seq: 42})
	if err != nil || string(b) != `{"agent":"web-1","stream":3,"seq":42}` {
		t.Fatalf("%s %v", b, err)
	}
}

// A scheduled EventBridge event runs Reconcile: a stream with indexed but
// uncommitted segments is restarted and its chain completes; the lake
// equals the one-pass parse.
func TestScheduledEventReconciles(t *testing.T) {
	event, err := os.ReadFile("testdata/scheduled-event.json")
	if err != nil {
		t.Fatal(err)
	}
	st := store.NewMem()
	segs := pipelinetest.Cut(t, capture, 32<<10)
	indexed(t, st, segs)
	// Parse runs in process (no Invoke): Reconcile's start completes the
	// chain before it returns.
	p := pipeline.New(pipeline.Config{Store: st, WaitPredecessor: time.Second})
	h := parse.New(p)
	resp, err := invoke(t, h, string(event))
	if err != nil || resp != (parse.Response{Result: parse.ResultReconciled, Started: 1}) {
		t.Fatalf("got %+v, %v", resp, err)
	}
	if err := p.FlushStream(t.Context(), pipelinetest.Stream, uint64(len(segs)-1)); err != nil {
		t.Fatal(err)
	}
	checkLake(t, st, segs)
	// Nothing is left to do.
	resp, err = invoke(t, h, string(event))
	if err != nil || resp != (parse.Response{Result: parse.ResultReconciled}) {
		t.Fatalf("second event: %+v, %v", resp, err)
	}
	// And a store failure is returned.
	h = parse.New(pipeline.New(pipeline.Config{Store: failingList{st}}))
	if _, err := invoke(t, h, string(event)); err == nil || !strings.Contains(err.Error(), "list broken") {
		t.Fatalf("reconcile over a failing store: %v", err)
	}
}

// failingList is a store whose List fails.
type failingList struct{ store.Store }

func (failingList) List(context.Context, string, func(store.Info) error) error {
	return errors.New("list broken")
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
