package compact

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowlake/flowlake/internal/lake"
	"github.com/flowlake/flowlake/internal/store"
	"github.com/flowlake/flowlake/internal/store/miniotest"
	"github.com/flowlake/flowlake/schema"
)

// TestReadersDuringCompaction runs readers that list and read a partition
// by the protocol, over and over, while two compactors step it on the real
// clock with a short grace period: the first merge, eight batches of late
// segments (each merged again with the compacted files while the files the
// previous merge replaced wait for their delayed deletion), deletions,
// forgetting, removal of old manifests, until the partition settles. A
// reader must never see a row twice or miss one, on the in-memory, local
// directory and MinIO stores.
func TestReadersDuringCompaction(t *testing.T) {
	t.Run("mem", func(t *testing.T) {
		stress(t, store.NewMem(), 200*time.Millisecond)
	})
	t.Run("local", func(t *testing.T) {
		st, err := store.NewLocal(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		stress(t, st, 250*time.Millisecond)
	})
	t.Run("minio", func(t *testing.T) {
		if testing.Short() {
			t.Skip("MinIO: not with -short")
		}
		srv := miniotest.Start(t)
		srv.SetEnv(t)
		st, err := store.NewS3(context.Background(), store.S3Options{Bucket: srv.Bucket})
		if err != nil {
			t.Fatal(err)
		}
		// S3 object times have whole seconds; a request takes milliseconds.
		stress(t, st, 500*time.Millisecond)
	})
}

// stressStats counts what happened in a stress run.
type stressStats struct {
	mu                                     sync.Mutex
	checked, slow, afterSettle             int
	versions, merges, conflicts, stale     int
	deleted, forgotten, orphans, manifests int
	failures                               []string
}

func (s *stressStats) fail(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failures = append(s.failures, fmt.Sprintf(format, args...))
}

func stress(t *testing.T, st store.Store, grace time.Duration) {
	timeout := 45 * time.Second
	if raceEnabled {
		grace *= 3
		timeout *= 3
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()

	base := segments(hour7, 0, 24, 20, 0)
	other := segments(hour8, 0, 4, 20, 50_000) // a neighbour partition, compacted too
	const batches, perBatch, checksPerBatch = 8, 3, 10
	var late []segment
	for b := range batches {
		late = append(late, segments(hour7, 100+b*perBatch, perBatch, 20, 10_000+b*perBatch*20)...)
	}
	writeAll(t, st, slices.Concat(base, other)...)
	fileOf := map[string]int{} // row id -> index in late, -1 for base
	for _, s := range base {
		for _, id := range s.ids {
			fileOf[httpRow(hour7, id).ID] = -1
		}
	}
	for i, s := range late {
		for _, id := range s.ids {
			fileOf[httpRow(hour7, id).ID] = i
		}
	}
	// Late segments are written in order; started counts those whose
	// write began, done those whose write returned.
	var started, done atomic.Int64
	var settled atomic.Bool

	var stats stressStats
	stop := make(chan struct{})
	var wg sync.WaitGroup
	halt := sync.OnceFunc(func() {
		close(stop)
		wg.Wait()
		t.Logf("%s: %d reader iterations checked (%d after settling, %d too slow to check); %d manifest versions, %d merges, "+
			"%d lost races, %d stale, %d deletions, %d forgotten, %d orphans, %d old manifests removed",
			st.URL(), stats.checked, stats.afterSettle, stats.slow, stats.versions, stats.merges, stats.conflicts, stats.stale,
			stats.deleted, stats.forgotten, stats.orphans, stats.manifests)
		for i, f := range stats.failures {
			if i == 10 {
				t.Errorf("… and %d more failures", len(stats.failures)-10)
				break
			}
			t.Error(f)
		}
	})
	defer halt() // also when the driver fails
	stopped := func() bool {
		select {
		case <-stop:
			return true
		default:
			return ctx.Err() != nil
		}
	}

	// Two compactors, stepping every few milliseconds.
	for range 2 {
		c, err := New(Config{Store: st, Tables: []string{schema.TableHTTP}, Grace: grace, Lake: lake.Options{FileRows: 300}})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			for !stopped() {
				rep, err := c.Run(ctx)
				if err != nil && ctx.Err() == nil {
					stats.fail("compactor: %v", err)
				}
				stats.mu.Lock()
				for _, r := range rep.Partitions {
					if r.Version != 0 && !r.Conflict && !r.Stale {
						stats.versions++
					}
					if r.InputFiles > 0 && !r.Conflict {
						stats.merges++
					}
					stats.conflicts += b2i(r.Conflict)
					stats.stale += b2i(r.Stale)
					stats.deleted += r.Deleted
					stats.forgotten += r.Forgotten
					stats.orphans += r.Orphans
					stats.manifests += r.OldManifests
				}
				stats.mu.Unlock()
				time.Sleep(time.Duration(2+rand.IntN(8)) * time.Millisecond)
			}
		})
	}

	// Two readers, pausing up to a quarter of the grace period between
	// listing and reading. The protocol holds for readers that finish
	// within the grace period less the time a manifest write takes to
	// become visible; iterations longer than half the grace period are
	// counted, not checked.
	for range 2 {
		wg.Go(func() {
			for !stopped() {
				k0 := int(done.Load())
				wasSettled := settled.Load()
				start := time.Now()
				got, files, err := readIDs(ctx, st, time.Duration(rand.Int64N(int64(grace/4))))
				elapsed := time.Since(start)
				k1 := int(started.Load())
				if stopped() {
					return
				}
				if elapsed > grace/2 {
					stats.mu.Lock()
					stats.slow++
					stats.mu.Unlock()
					continue
				}
				if err == nil {
					err = checkView(got, fileOf, late, k0, k1)
				}
				if err != nil {
					stats.fail("reader (%v, files %v): %v", elapsed, files, err)
					continue
				}
				stats.mu.Lock()
				stats.checked++
				stats.afterSettle += b2i(wasSettled)
				stats.mu.Unlock()
			}
		})
	}

	// The driver: late batches once the first switch happened, each a
	// little before the previous batch's inputs are deleted and after the
	// readers checked the lake a few times since the previous one (on a
	// loaded machine they are slower); then wait for the partitions to
	// settle and for readers to check the settled state.
	checks := func() (n int, failed bool) { // fast iterations; any failure
		stats.mu.Lock()
		defer stats.mu.Unlock()
		return stats.checked, len(stats.failures) > 0
	}
	waitFor(ctx, t, "the first switch", func() bool {
		p, err := lake.ReadPartition(ctx, st, schema.TableHTTP, part7)
		return err == nil && p.Manifest != nil
	})
	for b := range batches {
		time.Sleep(grace * 6 / 10)
		n, _ := checks()
		waitFor(ctx, t, "reader checks", func() bool {
			m, failed := checks()
			return m >= n+checksPerBatch || failed
		})
		if _, failed := checks(); failed {
			return // halt reports the failures
		}
		for _, s := range late[b*perBatch : (b+1)*perBatch] {
			started.Add(1)
			if err := s.write(ctx, st); err != nil {
				t.Fatal(err)
			}
			done.Add(1)
			time.Sleep(time.Millisecond)
		}
	}
	waitFor(ctx, t, "the partitions to settle", func() bool {
		_, failed := checks()
		return failed || isSettled(ctx, st, part7) && isSettled(ctx, st, part8)
	})
	settled.Store(true)
	waitFor(ctx, t, "readers of the settled partition", func() bool {
		stats.mu.Lock()
		defer stats.mu.Unlock()
		return stats.afterSettle >= 20 || len(stats.failures) > 0
	})
	halt()

	all := slices.Concat(base, late)
	files := checkHour(t, st, hour7, all...)
	checkHour(t, st, hour8, other...)
	inputs := len(base) + len(late)
	t.Logf("hour 07: %d input files -> %d", inputs, len(files))
	// Every batch arrived after a merge, so hour 07 was merged at least
	// once per batch after the first merge; hour 08 once.
	if stats.merges < 1+batches+1 {
		t.Errorf("%d merges, want at least %d", stats.merges, 1+batches+1)
	}
	if n := len(objects(t, st, part7)); n != len(files)+1 || stats.deleted < inputs+len(other) {
		t.Errorf("hour 07 holds %d objects for %d live files, %d deletions for %d inputs", n, len(files), stats.deleted, inputs+len(other))
	}
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}

// readIDs lists hour 07 by the protocol and, after a pause (a reader
// planning its query), reads the id of every row.
func readIDs(ctx context.Context, st store.Store, pause time.Duration) (map[string]int, []string, error) {
	files, err := lake.ListFiles(ctx, st, schema.TableHTTP, hour7.UnixMicro(), hour8.UnixMicro())
	if err != nil {
		return nil, nil, err
	}
	time.Sleep(pause)
	got := map[string]int{}
	for _, f := range files {
		rows, err := readFile(ctx, st, f)
		if err != nil {
			return nil, files, err
		}
		for _, r := range rows {
			got[r.ID]++
		}
	}
	return got, files, nil
}

// checkView checks one reader's rows: every row at most once, every base
// row and every row of the late segments written before the reader
// started (the first k0), of the late segments written while it ran
// (k0..k1) either all rows or none, and nothing of later ones.
func checkView(got map[string]int, fileOf map[string]int, late []segment, k0, k1 int) error {
	seen := make([]int, len(late))
	var errs []error
	for id, n := range got {
		f, ok := fileOf[id]
		switch {
		case !ok:
			errs = append(errs, fmt.Errorf("row %s was never written", id))
		case n > 1:
			errs = append(errs, fmt.Errorf("row %s seen %d times", id, n))
		case f >= 0:
			seen[f]++
		}
	}
	for id, f := range fileOf {
		if f < 0 && got[id] == 0 {
			errs = append(errs, fmt.Errorf("row %s missing", id))
		}
	}
	for i, n := range seen {
		want := len(late[i].ids)
		switch {
		case i < k0 && n != want:
			errs = append(errs, fmt.Errorf("late segment %d (written before the read) has %d of %d rows", i, n, want))
		case i >= k0 && i < k1 && n != 0 && n != want:
			errs = append(errs, fmt.Errorf("late segment %d (written during the read) has %d of %d rows", i, n, want))
		case i >= k1 && n != 0:
			errs = append(errs, fmt.Errorf("late segment %d (written after the read) has %d rows", i, n))
		}
	}
	if len(errs) > 5 {
		errs = append(errs[:5], fmt.Errorf("and %d more", len(errs)-5))
	}
	return errors.Join(errs...)
}

// isSettled reports whether an http partition has one manifest version
// that replaces nothing, and only the compacted files it lists.
func isSettled(ctx context.Context, st store.Store, partition string) bool {
	return isSettledTable(ctx, st, schema.TableHTTP, partition)
}

// waitFor polls cond until it holds, failing t when ctx ends first.
func waitFor(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s (%v)", what, context.Cause(ctx))
		case <-time.After(5 * time.Millisecond):
		}
	}
}
