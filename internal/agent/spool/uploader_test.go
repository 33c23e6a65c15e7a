package spool

import (
	"bytes"
	"context"
	"errors"
	"io"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/store"
)

// flaky is a store that is down while down is set, and records the order
// of successful writes.
type flaky struct {
	store.Store
	mu       sync.Mutex
	down     bool
	attempts map[string]int
	written  []string
}

var errDown = errors.New("connection refused")

func newFlaky() *flaky { return &flaky{Store: store.NewMem(), attempts: map[string]int{}} }

func (f *flaky) setDown(v bool) {
	f.mu.Lock()
	f.down = v
	f.mu.Unlock()
}

func (f *flaky) try(key string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.attempts[key]++
	if f.down {
		return errDown
	}
	return nil
}

func (f *flaky) done(key string) {
	f.mu.Lock()
	f.written = append(f.written, key)
	f.mu.Unlock()
}

func (f *flaky) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := f.try(key); err != nil {
		return err
	}
	err := f.Store.Put(ctx, key, r, size)
	if err == nil {
		f.done(key)
	}
	return err
}

func (f *flaky) PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) error {
	if err := f.try(key); err != nil {
		return err
	}
	err := f.Store.PutIfAbsent(ctx, key, r, size)
	if err == nil {
		f.done(key)
	}
	return err
}

type events struct {
	mu      sync.Mutex
	done    []string
	existed []string
	errs    []error
}

func (e *events) onDone(key string, _ int64, existed bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.done = append(e.done, key)
	if existed {
		e.existed = append(e.existed, key)
	}
}

func (e *events) onError(_ string, err error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.errs = append(e.errs, err)
}

func newUploader(t *testing.T, st store.Store, sp *Spool, ev *events) (*Uploader, context.CancelFunc) {
	t.Helper()
	u := NewUploader(UploaderConfig{Store: st, Spool: sp, MinBackoff: 10 * time.Millisecond, MaxBackoff: 40 * time.Millisecond,
		OnDone: ev.onDone, OnError: ev.onError})
	ctx, cancel := context.WithCancel(context.Background())
	u.Start(ctx)
	t.Cleanup(func() { cancel(); u.Wait() })
	return u, cancel
}

func waitIdle(t *testing.T, u *Uploader) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := u.WaitIdle(ctx); err != nil {
		t.Fatal(err)
	}
}

// While the store is down uploads are retried; once it is back, every
// object arrives once, each stream in sequence order, and leaves the spool.
func TestUploaderRetriesInOrder(t *testing.T) {
	sp, err := Open(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	st := newFlaky()
	st.setDown(true)
	var ev events
	u, _ := newUploader(t, st, sp, &ev)
	st1 := keys.Stream{Agent: "a1", Stream: 1}
	var want0, want1 []string
	for seq := range uint64(5) {
		for _, s := range []keys.Stream{st0, st1} {
			k := segKey(s, seq)
			if err := sp.Put(k, []byte(k)); err != nil {
				t.Fatal(err)
			}
			u.Add(k)
			if s == st0 {
				want0 = append(want0, k)
			} else {
				want1 = append(want1, k)
			}
		}
	}
	status := keys.Status("a1", time.Unix(1e9, 0))
	if err := sp.Put(status, []byte("{}")); err != nil {
		t.Fatal(err)
	}
	u.Add(status)
	time.Sleep(200 * time.Millisecond)
	if u.Pending() != 11 {
		t.Fatalf("%d pending while the store is down", u.Pending())
	}
	st.mu.Lock()
	retried := st.attempts[want0[0]]
	st.mu.Unlock()
	if retried < 3 {
		t.Errorf("first segment tried %d times in 200 ms", retried)
	}
	st.setDown(false)
	waitIdle(t, u)
	var got0, got1 []string
	for _, k := range st.written {
		switch {
		case slices.Contains(want0, k):
			got0 = append(got0, k)
		case slices.Contains(want1, k):
			got1 = append(got1, k)
		}
	}
	if !slices.Equal(got0, want0) || !slices.Equal(got1, want1) || len(st.written) != 11 {
		t.Errorf("written %v", st.written)
	}
	if len(sp.Keys()) != 0 || sp.Bytes("") != 0 {
		t.Errorf("spool still holds %v", sp.Keys())
	}
	if len(ev.done) != 11 || len(ev.existed) != 0 || len(ev.errs) < 3 {
		t.Errorf("events: %d done, %d existed, %d errors", len(ev.done), len(ev.existed), len(ev.errs))
	}
}

// A segment the store already holds, byte for byte, is done; a different
// object under the key is a conflict, set aside; objects left in the spool
// by an earlier run are uploaded at Start; status objects are replaced.
func TestUploaderExistingAndConflict(t *testing.T) {
	dir := t.TempDir()
	sp, err := Open(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	mem := store.NewMem()
	ctx := context.Background()
	same, other, fresh := segKey(st0, 0), segKey(st0, 1), segKey(st0, 2)
	status := keys.Status("a1", time.Unix(1e9, 0))
	for k, v := range map[string]string{same: "same", other: "stored", status: "old"} {
		if err := mem.Put(ctx, k, bytes.NewReader([]byte(v)), int64(len(v))); err != nil {
			t.Fatal(err)
		}
	}
	for k, v := range map[string]string{same: "same", other: "spooled", fresh: "fresh", status: "new"} {
		if err := sp.Put(k, []byte(v)); err != nil {
			t.Fatal(err)
		}
	}
	var ev events
	u, _ := newUploader(t, mem, sp, &ev) // Start queues the spooled objects
	waitIdle(t, u)
	read := func(k string) string {
		b, err := mem.GetRange(ctx, k, 0, -1)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if read(same) != "same" || read(other) != "stored" || read(fresh) != "fresh" || read(status) != "new" {
		t.Errorf("store: %q %q %q %q", read(same), read(other), read(fresh), read(status))
	}
	if !slices.Equal(ev.existed, []string{same}) || len(ev.done) != 3 {
		t.Errorf("done %v, existed %v", ev.done, ev.existed)
	}
	if len(ev.errs) != 1 || !errors.Is(ev.errs[0], ErrConflict) {
		t.Errorf("errors %v", ev.errs)
	}
	if len(sp.Keys()) != 0 {
		t.Errorf("spool holds %v", sp.Keys())
	}
}

func TestBackoff(t *testing.T) {
	minD, maxD := 100*time.Millisecond, 2*time.Second
	for attempt := range 40 {
		d := backoff(minD, maxD, attempt)
		ceil := min(maxD, minD<<min(attempt, 20))
		if d < ceil/2 || d > ceil {
			t.Errorf("attempt %d: %v outside [%v, %v]", attempt, d, ceil/2, ceil)
		}
	}
	seen := map[time.Duration]bool{}
	for range 20 {
		seen[backoff(minD, maxD, 10)] = true
	}
	if len(seen) < 5 {
		t.Errorf("no jitter: %v", seen)
	}
}

// In a stream's lane the secrets object of segment N goes before segment
// N, and after segment N-1, whatever the order the spool holds them in
// (spooled at once here, while the store is down; and across an hour).
func TestUploaderSecretsBeforeSegment(t *testing.T) {
	sp, err := Open(t.TempDir(), 0)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	st := newFlaky()
	st.setDown(true)
	var ev events
	u, _ := newUploader(t, st, sp, &ev)
	var want []string
	for seq := range uint64(4) {
		hour := time.Date(2024, 5, 1, 10+int(seq/2), 0, 0, 0, time.UTC)
		seg := keys.Segment(st0, seq, hour)
		for _, k := range []string{seg, keys.Secrets(st0, seq, hour)} { // the segment first into the spool
			if seq == 2 && k != seg {
				continue // a segment without keys
			}
			if err := sp.Put(k, []byte(k)); err != nil {
				t.Fatal(err)
			}
			u.Add(k)
		}
		if seq != 2 {
			want = append(want, keys.Secrets(st0, seq, hour))
		}
		want = append(want, seg)
	}
	st.setDown(false)
	waitIdle(t, u)
	if !slices.Equal(st.written, want) {
		t.Errorf("upload order:\n%s\nwant:\n%s", strings.Join(st.written, "\n"), strings.Join(want, "\n"))
	}
}
