package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/flowlake/flowlake/internal/capture"
	"github.com/flowlake/flowlake/internal/engine"
	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/segment"
	"github.com/flowlake/flowlake/internal/store"
	"github.com/flowlake/flowlake/internal/testcap"
	"github.com/flowlake/flowlake/schema"
)

const agent = "probe"

var stream = keys.Stream{Agent: agent, Stream: 0}

type seg struct {
	key  string
	data []byte
	meta segment.Meta
}

// cut makes segments of a shared capture, about maxBytes each.
func cut(t *testing.T, name string, maxBytes int64) []seg {
	t.Helper()
	return cutTB(t, name, maxBytes)
}

func cutTB(t testing.TB, name string, maxBytes int64) []seg {
	t.Helper()
	var out []seg
	c := segment.NewCutter(agent, 0, 0, maxBytes, time.Hour, "file:"+name, func(data []byte, m segment.Meta) error {
		out = append(out, seg{segment.Key(m), data, m})
		return nil
	})
	src := capture.Open([]string{testcap.Path(t, name)})
	defer src.Close()
	var p capture.Packet
	for {
		err := src.Next(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Add(p.TS, p.Link, p.Data, p.WireLen); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	return out
}

// reference parses the packets of the given segments in one engine run.
func reference(t *testing.T, segs []seg) *engine.Collector {
	t.Helper()
	col := &engine.Collector{}
	e := engine.New(engine.Config{Agent: agent}, col)
	for _, s := range segs {
		r, err := capture.NewReader(bytes.NewReader(s.data))
		if err != nil {
			t.Fatal(err)
		}
		for {
			data, ts, link, _, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			e.Frame(link, ts, data)
		}
		r.Close()
	}
	e.Finish()
	return col
}

func readTable[T any](t *testing.T, st store.Store, table string) []T {
	t.Helper()
	var rows []T
	err := st.List(context.Background(), keys.LakeTable(table), func(info store.Info) error {
		if !strings.HasSuffix(info.Key, keys.ExtParquet) {
			return nil
		}
		b, err := st.GetRange(context.Background(), info.Key, 0, -1)
		if err != nil {
			return err
		}
		rs, err := parquet.Read[T](bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return fmt.Errorf("%s: %w", info.Key, err)
		}
		rows = append(rows, rs...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func sortByID[T any](rows []T, id func(*T) string) {
	sort.Slice(rows, func(i, j int) bool { return id(&rows[i]) < id(&rows[j]) })
}

// checkLake compares the lake in st with the reference rows exactly.
func checkLake(t *testing.T, st store.Store, want *engine.Collector) {
	t.Helper()
	http := readTable[schema.HTTP](t, st, schema.TableHTTP)
	tcp := readTable[schema.TCP](t, st, schema.TableTCP)
	dns := readTable[schema.DNS](t, st, schema.TableDNS)
	sortByID(http, func(r *schema.HTTP) string { return r.ID })
	sortByID(want.HTTPRows, func(r *schema.HTTP) string { return r.ID })
	sortByID(tcp, func(r *schema.TCP) string { return r.ID })
	sortByID(want.TCPRows, func(r *schema.TCP) string { return r.ID })
	sortByID(dns, func(r *schema.DNS) string { return r.ID })
	sortByID(want.DNSRows, func(r *schema.DNS) string { return r.ID })
	compare(t, "http", want.HTTPRows, http)
	compare(t, "tcp", want.TCPRows, tcp)
	compare(t, "dns", want.DNSRows, dns)
}

func compare[T any](t *testing.T, table string, want, got []T) {
	t.Helper()
	if len(want) != len(got) {
		t.Errorf("%s: lake has %d rows, reference %d", table, len(got), len(want))
		return
	}
	for i := range want {
		w, g := want[i], got[i]
		// Parquet gives back empty lists as nil.
		if !reflect.DeepEqual(normalize(w), normalize(g)) {
			t.Errorf("%s row %d differs:\n  want %+v\n  got  %+v", table, i, w, g)
			return
		}
	}
}

func normalize(v any) string {
	b, _ := json.Marshal(v)
	return strings.ReplaceAll(string(b), "null", "[]")
}

func upload(t *testing.T, st store.Store, segs []seg) {
	t.Helper()
	for _, s := range segs {
		if err := st.Put(context.Background(), s.key, bytes.NewReader(s.data), int64(len(s.data))); err != nil {
			t.Fatal(err)
		}
	}
}

func statusRows(t *testing.T, st store.Store) []schema.ParseStatus {
	rows := readTable[schema.ParseStatus](t, st, schema.TableParseStatus)
	sort.Slice(rows, func(i, j int) bool { return rows[i].Seq < rows[j].Seq })
	return rows
}

// The lake made by ingesting a chain of segments in order equals the lake
// of one parse over the same packets.
func TestChainEqualsOneParse(t *testing.T) {
	for _, name := range []string{"ndpi-1kxun.pcap", "zeek-http-bro.org.pcap", "ppp-DnsPackets.pcap"} {
		t.Run(name, func(t *testing.T) {
			segs := cut(t, name, 16<<10)
			if len(segs) < 4 {
				t.Fatalf("only %d segments", len(segs))
			}
			st := store.NewMem()
			upload(t, st, segs)
			p := New(Config{Store: st, WaitPredecessor: time.Second})
			for _, s := range segs {
				if err := p.Ingest(t.Context(), s.key); err != nil {
					t.Fatal(err)
				}
			}
			if err := p.FlushStream(t.Context(), stream, uint64(len(segs)-1)); err != nil {
				t.Fatal(err)
			}
			checkLake(t, st, reference(t, segs))
			ps := statusRows(t, st)
			if len(ps) != len(segs) {
				t.Fatalf("%d parse_status rows for %d segments", len(ps), len(segs))
			}
			for i, r := range ps {
				if r.Status != "ok" || r.Gap || r.Seq != int64(i) || r.Packets != segs[i].meta.Packets {
					t.Errorf("parse_status %d: %+v", i, r)
				}
			}
			// Ingesting everything again changes nothing.
			for _, s := range segs {
				if err := p.Ingest(t.Context(), s.key); err != nil {
					t.Fatal(err)
				}
			}
			checkLake(t, st, reference(t, segs))
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
	segs := cut(t, "ndpi-1kxun.pcap", 64<<10)
	st := store.NewMem()
	upload(t, st, segs)
	bad := len(segs) / 2
	garbage := []byte("this is not a segment")
	if err := st.Put(t.Context(), segs[bad].key, bytes.NewReader(garbage), int64(len(garbage))); err != nil {
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
			}(segs[i].key)
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
	readable := append(append([]seg(nil), segs[:bad]...), segs[bad+1:]...)
	checkLake(t, st, reference(t, readable))

	doc, err := st.GetRange(t.Context(), keys.QuarantineError(segs[bad].key), 0, -1)
	if err != nil {
		t.Fatalf("no error document: %v", err)
	}
	var ed errorDoc
	if err := json.Unmarshal(doc, &ed); err != nil || ed.Key != segs[bad].key || !strings.Contains(ed.Error, "not a pcap or pcapng") {
		t.Errorf("error document %s (%v)", doc, err)
	}
	if q, err := st.GetRange(t.Context(), keys.Quarantine(segs[bad].key), 0, -1); err != nil || !bytes.Equal(q, garbage) {
		t.Errorf("quarantined copy: %q %v", q, err)
	}
	ps := statusRows(t, st)
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
	segs := cut(t, "zeek-http-bro.org.pcap", 64<<10)
	st := store.NewMem()
	upload(t, st, segs[1:])
	p := New(Config{Store: st, WaitPredecessor: 50 * time.Millisecond, Poll: 5 * time.Millisecond})
	for _, s := range segs[1:] {
		if err := p.Ingest(t.Context(), s.key); err != nil {
			t.Fatal(err)
		}
	}
	ps := statusRows(t, st)
	if len(ps) != len(segs)-1 || !ps[0].Gap || ps[0].Status != "gap" || ps[1].Gap {
		t.Fatalf("parse_status: %+v", ps)
	}
}

// A worker that dies mid-parse leaves no checkpoint; Reconcile (run by the
// host at start) parses the segment again and the chain completes.
func TestReconcileAfterCrash(t *testing.T) {
	segs := cut(t, "ndpi-1kxun.pcap", 64<<10)
	st := store.NewMem()
	upload(t, st, segs)
	p := New(Config{Store: st, WaitPredecessor: time.Second})
	crash := 3
	for i, s := range segs {
		ctx := t.Context()
		if i == crash {
			c, cancel := context.WithCancel(ctx)
			cancel() // the worker dies before committing
			ctx = c
		}
		if err := p.Ingest(ctx, s.key); err != nil && i != crash {
			t.Fatal(err)
		}
		if i == crash {
			// Ingest's index write survives only if it happened before the
			// crash; write it as the event would have.
			idx := keys.SegmentIndex(stream, uint64(i))
			st.PutIfAbsent(t.Context(), idx, strings.NewReader(s.key), int64(len(s.key)))
			break
		}
	}
	// The rest arrives while the host is down: only indexed.
	for _, s := range segs[crash+1:] {
		k, _ := keys.Parse(s.key)
		idx := keys.SegmentIndex(stream, k.Seq)
		st.PutIfAbsent(t.Context(), idx, strings.NewReader(s.key), int64(len(s.key)))
	}
	n, err := p.Reconcile(t.Context())
	if err != nil || n != 1 {
		t.Fatalf("reconcile started %d: %v", n, err)
	}
	if err := p.FlushStream(t.Context(), stream, uint64(len(segs)-1)); err != nil {
		t.Fatal(err)
	}
	checkLake(t, st, reference(t, segs))
}
