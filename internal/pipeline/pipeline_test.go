package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/pipeline/pipelinetest"
	"github.com/flowlake/flowlake/internal/store"
)

// stream is the stream of the segments pipelinetest.Cut makes.
var stream = pipelinetest.Stream

// The lake made by ingesting a chain of segments in order equals the lake
// of one parse over the same packets.
func TestChainEqualsOneParse(t *testing.T) {
	for _, name := range []string{"ndpi-1kxun.pcap", "zeek-http-bro.org.pcap", "ppp-DnsPackets.pcap"} {
		t.Run(name, func(t *testing.T) {
			segs := pipelinetest.Cut(t, name, 16<<10)
			if len(segs) < 4 {
				t.Fatalf("only %d segments", len(segs))
			}
			st := store.NewMem()
			pipelinetest.Upload(t, st, segs)
			p := New(Config{Store: st, WaitPredecessor: time.Second})
			for _, s := range segs {
				if err := p.Ingest(t.Context(), s.Key); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.FlushStream(t.Context(), stream, uint64(len(segs)-1)); err != nil {
				t.Fatal(err)
			}
			pipelinetest.CheckLake(t, st, pipelinetest.Reference(t, segs))
			ps := pipelinetest.StatusRows(t, st)
			if len(ps) != len(segs) {
				t.Fatalf("%d parse_status rows for %d segments", len(ps), len(segs))
			}
			for i, r := range ps {
				if r.Status != "ok" || r.Gap || r.Seq != int64(i) || r.Packets != segs[i].Meta.Packets {
					t.Errorf("parse_status %d: %+v", i, r)
				}
			}
			// Ingesting everything again changes nothing.
			for _, s := range segs {
				if err := p.Ingest(t.Context(), s.Key); err != nil {
					t.Fatal(err)
				}
			}
			pipelinetest.CheckLake(t, st, pipelinetest.Reference(t, segs))
		})
	}
}

// asyncHost runs parses the way the functions host does: each start in its
// own goroutine.
type asyncHost struct {
	wg   sync.WaitGroup
	p    *Pipeline
	mu   sync.Mutex
	errs []error
}

func (h *asyncHost) invoke(ctx context.Context, s keys.Stream, seq uint64) error {
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		if err := h.p.Parse(ctx, s, seq); err != nil && !errors.Is(err, ErrDone) {
			h.mu.Lock()
			h.errs = append(h.errs, err)
			h.mu.Unlock()
		}
	}()
	return nil
}

// Events out of order, each delivered twice and concurrently, one corrupt
// segment: the lake equals the reference over the readable segments, the
// corrupt one is quarantined with a readable reason, and parse_status tells
// the story.
func TestFaults(t *testing.T) {
	segs := pipelinetest.Cut(t, "ndpi-1kxun.pcap", 64<<10)
	st := store.NewMem()
	pipelinetest.Upload(t, st, segs)
	bad := len(segs) / 2
	garbage := []byte("this is not a segment")
	if err := st.Put(t.Context(), segs[bad].Key, bytes.NewReader(garbage), int64(len(garbage))); err != nil {
		t.Fatal(err)
	}
	h := &asyncHost{}
	h.p = New(Config{Store: st, WaitPredecessor: 20 * time.Second, Poll: 5 * time.Millisecond, Invoke: h.invoke})
	var wg sync.WaitGroup
	for i := len(segs) - 1; i >= 0; i-- {
		for dup := 0; dup < 2; dup++ {
			wg.Add(1)
			go func(key string) {
				defer wg.Done()
				if err := h.p.Ingest(t.Context(), key); err != nil {
					t.Error(err)
				}
			}(segs[i].Key)
		}
	}
	wg.Wait()
	h.wg.Wait()
	if len(h.errs) > 0 {
		t.Fatal(h.errs)
	}
	if err := h.p.FlushStream(t.Context(), stream, uint64(len(segs)-1)); err != nil {
		t.Fatal(err)
	}
	readable := append(append([]pipelinetest.Segment(nil), segs[:bad]...), segs[bad+1:]...)
	pipelinetest.CheckLake(t, st, pipelinetest.Reference(t, readable))

	doc, err := st.GetRange(t.Context(), keys.QuarantineError(segs[bad].Key), 0, -1)
	if err != nil {
		t.Fatalf("no error document: %v", err)
	}
	var ed errorDoc
	if err := json.Unmarshal(doc, &ed); err != nil || ed.Key != segs[bad].Key || !strings.Contains(ed.Error, "not a pcap or pcapng") {
		t.Errorf("error document %s (%v)", doc, err)
	}
	if q, err := st.GetRange(t.Context(), keys.Quarantine(segs[bad].Key), 0, -1); err != nil || !bytes.Equal(q, garbage) {
		t.Errorf("quarantined copy: %q %v", q, err)
	}
	ps := pipelinetest.StatusRows(t, st)
	if len(ps) != len(segs) {
		t.Fatalf("%d parse_status rows for %d segments", len(ps), len(segs))
	}
	for i, r := range ps {
		want := "ok"
		if i == bad {
			want = "error"
		}
		if r.Status != want || r.Gap {
			t.Errorf("parse_status %d: status %q gap %v error %q", i, r.Status, r.Gap, r.Error)
		}
	}
}

// A predecessor that never comes: after the bounded wait the segment is
// parsed from empty state and the gap is recorded.
func TestMissingPredecessorIsAGap(t *testing.T) {
	segs := pipelinetest.Cut(t, "zeek-http-bro.org.pcap", 64<<10)
	st := store.NewMem()
	pipelinetest.Upload(t, st, segs[1:])
	p := New(Config{Store: st, WaitPredecessor: 50 * time.Millisecond, Poll: 5 * time.Millisecond})
	for _, s := range segs[1:] {
		if err := p.Ingest(t.Context(), s.Key); err != nil {
			t.Fatal(err)
		}
	}
	ps := pipelinetest.StatusRows(t, st)
	if len(ps) != len(segs)-1 || !ps[0].Gap || ps[0].Status != "gap" || ps[1].Gap {
		t.Fatalf("parse_status: %+v", ps)
	}
}

// A worker that dies mid-parse leaves no checkpoint; Reconcile (run by the
// host at start) parses the segment again and the chain completes.
func TestReconcileAfterCrash(t *testing.T) {
	segs := pipelinetest.Cut(t, "ndpi-1kxun.pcap", 64<<10)
	st := store.NewMem()
	pipelinetest.Upload(t, st, segs)
	p := New(Config{Store: st, WaitPredecessor: time.Second})
	crash := 3
	for i, s := range segs {
		ctx := t.Context()
		if i == crash {
			c, cancel := context.WithCancel(ctx)
			cancel() // the worker dies before committing
			ctx = c
		}
		if err := p.Ingest(ctx, s.Key); err != nil && i != crash {
			t.Fatal(err)
		}
		if i == crash {
			// Ingest's index write survives only if it happened before the
			// crash; write it as the event would have.
			idx := keys.SegmentIndex(stream, uint64(i))
			st.PutIfAbsent(t.Context(), idx, strings.NewReader(s.Key), int64(len(s.Key)))
			break
		}
	}
	// The rest arrives while the host is down: only indexed.
	for _, s := range segs[crash+1:] {
		k, _ := keys.Parse(s.Key)
		idx := keys.SegmentIndex(stream, k.Seq)
		st.PutIfAbsent(t.Context(), idx, strings.NewReader(s.Key), int64(len(s.Key)))
	}
	n, err := p.Reconcile(t.Context())
	if err != nil || n != 1 {
		t.Fatalf("reconcile started %d: %v", n, err)
	}
	if err := p.FlushStream(t.Context(), stream, uint64(len(segs)-1)); err != nil {
		t.Fatal(err)
	}
	pipelinetest.CheckLake(t, st, pipelinetest.Reference(t, segs))
}
