package pipeline

import (
	"testing"
	"time"

	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/pipeline/pipelinetest"
	"github.com/flowlake/flowlake/internal/store"
)

// Events lost in the middle of a stream (every third segment's): parse of
// the next segment finds the object and parses it first, so the lake is
// whole and parse_status records no gap.
func TestLostEventsInTheMiddle(t *testing.T) {
	segs := pipelinetest.Cut(t, "ndpi-1kxun.pcap", 64<<10)
	if len(segs) < 6 {
		t.Fatalf("only %d segments", len(segs))
	}
	for _, async := range []bool{false, true} {
		st := store.NewMem()
		pipelinetest.Upload(t, st, segs)
		cfg := Config{Store: st, WaitPredecessor: 10 * time.Second, Poll: 5 * time.Millisecond}
		h := &asyncHost{}
		if async {
			cfg.Invoke = h.invoke
		}
		p := New(cfg)
		h.p = p
		for i, s := range segs {
			if i%3 == 1 {
				continue // its event never comes
			}
			if err := p.Ingest(t.Context(), s.Key); err != nil {
				t.Fatal(err)
			}
			h.wg.Wait()
		}
		if len(h.errs) > 0 {
			t.Fatal(h.errs)
		}
		if err := p.FlushStream(t.Context(), stream, uint64(len(segs)-1)); err != nil {
			t.Fatal(err)
		}
		pipelinetest.CheckLake(t, st, pipelinetest.Reference(t, segs))
		ps := pipelinetest.StatusRows(t, st)
		if len(ps) != len(segs) {
			t.Fatalf("async %v: %d parse_status rows for %d segments", async, len(ps), len(segs))
		}
		for i, r := range ps {
			if r.Gap || r.Status != "ok" {
				t.Errorf("async %v: parse_status %d: status %q gap %v", async, i, r.Status, r.Gap)
			}
		}
	}
}

// Reconcile finds segments whose events never came: a stream's tail
// (listing the hours after its newest indexed segment) and, when the full
// listing is due, a stream none of whose events came.
func TestReconcileFindsLostSegments(t *testing.T) {
	segs := pipelinetest.Cut(t, "ndpi-1kxun.pcap", 64<<10)
	other := pipelinetest.CutAs(t, "other", "zeek-http-bro.org.pcap", 16<<10)
	st := store.NewMem()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	p := New(Config{Store: st, WaitPredecessor: time.Second, Now: func() time.Time { return now }})
	pipelinetest.Upload(t, st, segs[:2])
	for _, s := range segs[:2] {
		if err := p.Ingest(t.Context(), s.Key); err != nil {
			t.Fatal(err)
		}
	}
	// The first run lists all of raw/: nothing is missing.
	if n, err := p.Reconcile(t.Context()); err != nil || n != 0 {
		t.Fatalf("first reconcile: %d, %v", n, err)
	}
	// The rest of the stream and another agent's stream arrive, and no
	// event comes.
	pipelinetest.Upload(t, st, segs[2:])
	pipelinetest.Upload(t, st, other)
	now = now.Add(time.Minute)
	if n, err := p.Reconcile(t.Context()); err != nil || n != len(segs)-2 {
		t.Fatalf("reconcile of the tail found %d segments, want %d: %v", n, len(segs)-2, err)
	}
	if err := p.FlushStream(t.Context(), stream, uint64(len(segs)-1)); err != nil {
		t.Fatal(err)
	}
	pipelinetest.CheckLake(t, st, pipelinetest.Reference(t, segs))
	if ok, _ := p.exists(t.Context(), keys.SegmentIndex(keys.Stream{Agent: "other"}, 0)); ok {
		t.Fatal("the unknown stream was found before the full listing was due")
	}
	now = now.Add(DefaultDiscoverAllEvery)
	if n, err := p.Reconcile(t.Context()); err != nil || n != len(other) {
		t.Fatalf("full reconcile found %d segments, want %d: %v", n, len(other), err)
	}
	otherStream := keys.Stream{Agent: "other"}
	if err := p.FlushStream(t.Context(), otherStream, uint64(len(other)-1)); err != nil {
		t.Fatal(err)
	}
	for i := range other {
		if ok, err := p.exists(t.Context(), keys.State(otherStream, uint64(i))); err != nil || !ok {
			t.Fatalf("segment %d of the unknown stream not parsed (%v)", i, err)
		}
	}
	if n, err := p.Reconcile(t.Context()); err != nil || n != 0 {
		t.Fatalf("reconcile after all was found: %d, %v", n, err)
	}
}
