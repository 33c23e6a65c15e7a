package compact

import (
	"bytes"
	"context"
	"errors"
	"io"
	"path"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/lake"
	"github.com/flowlake/flowlake/internal/store"
	"github.com/flowlake/flowlake/schema"
)

const testGrace = 10 * time.Minute

func newCompactor(t testing.TB, st store.Store, clk *clock) *Compactor {
	t.Helper()
	c, err := New(Config{Store: st, Tables: []string{schema.TableHTTP}, Grace: testGrace, Now: clk.now,
		Lake: lake.Options{FileRows: 150, RowGroupBytes: 16 << 10}})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// result returns the result for a partition in rep, failing t if absent.
func result(t *testing.T, rep Report, partition string) Result {
	t.Helper()
	for _, r := range rep.Partitions {
		if r.Partition == partition {
			return r
		}
	}
	t.Fatalf("no step on %s in %+v", partition, rep)
	return Result{}
}

func run(t *testing.T, c *Compactor) Report {
	t.Helper()
	rep, err := c.Run(context.Background())
	if err != nil {
		t.Fatalf("run: %v", err)
	}
	return rep
}

func manifest(t *testing.T, st store.Store, partition string) *lake.Manifest {
	t.Helper()
	p, err := lake.ReadPartition(context.Background(), st, schema.TableHTTP, partition)
	if err != nil {
		t.Fatal(err)
	}
	return p.Manifest
}

// TestLifecycle walks one partition through every state on a test clock:
// merge and switch, grace, deletion, late files merged with the compacted
// ones, an orphan, forgetting, removal of old manifests, settled. After
// every step a protocol reader gets exactly the rows written.
func TestLifecycle(t *testing.T) {
	st := store.NewMem()
	clk := &clock{t: time.Now()}
	c := newCompactor(t, st, clk)

	segs := segments(hour7, 0, 40, 10, 0)
	single := segments(hour8, 0, 1, 10, 10_000)
	young := segments(clk.t.Truncate(time.Hour), 0, 3, 10, 20_000)
	writeAll(t, st, slices.Concat(segs, single, young)...)
	t0 := clk.t
	// A reader that lists before the switch and reads within the grace
	// period after it.
	before, err := lake.ListFiles(context.Background(), st, schema.TableHTTP, hour7.UnixMicro(), hour8.UnixMicro())
	if err != nil || len(before) != 40 {
		t.Fatalf("listing before the switch: %d files, %v", len(before), err)
	}

	// 1. Merge and switch.
	rep := run(t, c)
	if rep.Checked != 3 || rep.Skipped != 2 || len(rep.Partitions) != 1 {
		t.Fatalf("report %+v: want 3 partitions checked, the single-file and the young one skipped", rep)
	}
	r := result(t, rep, part7)
	if r.Version != 1 || r.InputFiles != 40 || r.OutputFiles != 3 || r.Rows != 400 || r.Deleted != 0 || !r.Changed() {
		t.Fatalf("first step %+v", r)
	}
	files := checkHour(t, st, hour7, segs...)
	if len(files) != 3 || count(files, func(k string) bool { return keys.IsCompact(path.Base(k)) }) != 3 {
		t.Fatalf("reader reads %v, want the 3 compacted files", files)
	}
	checkHour(t, st, hour8, single...)
	m := manifest(t, st, part7)
	if len(m.Files) != 3 || len(m.Replaces) != 40 || m.Rows != 400 || !m.Switched.Equal(t0) || !m.Replaces[0].Since.Equal(t0) {
		t.Fatalf("manifest v1 %+v", m)
	}
	checkSameAsWriter(t, st, m)
	if got := objects(t, st, part7); len(got) != 44 {
		t.Fatalf("%d objects after the switch, want 40 inputs + 3 compacted + 1 manifest: %v", len(got), got)
	}

	// 2. Within the grace period nothing is deleted: the early reader
	// still reads exactly the rows.
	clk.advance(testGrace / 2)
	if r := result(t, run(t, c), part7); r.Changed() || r.Version != 0 {
		t.Fatalf("step within the grace period changed something: %+v", r)
	}
	var early []schema.HTTP
	for _, f := range before {
		rows, err := readFile(context.Background(), st, f)
		if err != nil {
			t.Fatalf("early reader: %v", err)
		}
		early = append(early, rows...)
	}
	if sortRows(early); !slices.Equal(early, wantRows(segs...)) {
		t.Fatal("early reader got other rows")
	}

	// 3. After it, the inputs go; the manifest marks them deleted.
	clk.advance(testGrace/2 + time.Second)
	r = result(t, run(t, c), part7)
	if r.Version != 2 || r.Deleted != 40 || r.Forgotten != 0 || r.InputFiles != 0 {
		t.Fatalf("deleting step %+v", r)
	}
	if got := objects(t, st, part7); len(got) != 5 {
		t.Fatalf("objects after deletion: %v, want 3 compacted + 2 manifests", got)
	}
	checkHour(t, st, hour7, segs...)
	if m := manifest(t, st, part7); len(m.Replaces) != 40 || m.Replaces[0].Deleted.IsZero() || !m.Switched.Equal(t0) {
		t.Fatalf("manifest v2 %+v", m)
	}

	// 4. Late segments and an orphan compacted file (a copy of a live one:
	// read, it would duplicate rows): merged with the compacted files.
	late := segments(hour7, 40, 2, 10, 400)
	writeAll(t, st, late...)
	orphan := keys.Lake(schema.TableHTTP, part7, "compact-0123456789abcdef01234567-0000")
	copyObject(t, st, files[0], orphan)
	checkHour(t, st, hour7, slices.Concat(segs, late)...)
	clk.advance(time.Minute)
	t4 := clk.t
	r = result(t, run(t, c), part7)
	if r.Version != 3 || r.InputFiles != 5 || r.OutputFiles != 3 || r.Rows != 420 || r.Orphans != 1 {
		t.Fatalf("second merge %+v", r)
	}
	checkHour(t, st, hour7, slices.Concat(segs, late)...)
	m = manifest(t, st, part7)
	if len(m.Replaces) != 40+3+2+1 || !m.Switched.Equal(t4) {
		t.Fatalf("manifest v3 replaces %d, switched %v: %+v", len(m.Replaces), m.Switched, m)
	}
	checkSameAsWriter(t, st, m)

	// 5. The first inputs are forgotten a grace period after deletion.
	clk.advance(testGrace - time.Minute/2)
	r = result(t, run(t, c), part7)
	if r.Version != 4 || r.Forgotten != 40 || r.Deleted != 0 {
		t.Fatalf("forgetting step %+v", r)
	}
	// 6. The second ones are deleted, then forgotten.
	clk.advance(time.Minute)
	r = result(t, run(t, c), part7)
	if r.Version != 5 || r.Deleted != 6 || r.OldManifests != 0 {
		t.Fatalf("second deleting step %+v", r)
	}
	checkHour(t, st, hour7, slices.Concat(segs, late)...)
	clk.advance(testGrace + time.Second)
	r = result(t, run(t, c), part7)
	if r.Version != 6 || r.Forgotten != 6 || r.OldManifests != 4 {
		t.Fatalf("forgetting step %+v: want 6 forgotten and manifests 1-4 deleted", r)
	}
	// Version 5 goes once version 6 is a grace period old (the Mem store's
	// object times are real, the test clock is ahead of them).
	r = result(t, run(t, c), part7)
	if r.Version != 0 || r.OldManifests != 1 {
		t.Fatalf("last step %+v: want manifest 5 deleted", r)
	}

	// Settled: one manifest, the compacted files, and nothing to do.
	got := objects(t, st, part7)
	if len(got) != 4 || count(got, isManifest) != 1 || count(got, keys.IsCompact) != 3 {
		t.Fatalf("settled partition holds %v", got)
	}
	if m := manifest(t, st, part7); m.Version != 6 || len(m.Replaces) != 0 || len(m.Files) != 3 {
		t.Fatalf("settled manifest %+v", m)
	}
	clk.advance(time.Minute)
	rep = run(t, c)
	if len(rep.Partitions) != 0 || rep.Skipped != 3 {
		t.Fatalf("run on a settled lake: %+v", rep)
	}
	if r, err := c.Step(context.Background(), schema.TableHTTP, part7); err != nil || r.Changed() {
		t.Fatalf("step on a settled partition: %+v, %v", r, err)
	}
	checkHour(t, st, hour7, slices.Concat(segs, late)...)
	checkHour(t, st, hour8, single...)
}

// checkSameAsWriter fails t unless the manifest's files are byte for byte
// what the lake writer makes of the same rows under the same name.
func checkSameAsWriter(t *testing.T, st store.Store, m *lake.Manifest) {
	t.Helper()
	var rows []schema.HTTP
	for _, f := range m.Files {
		r, err := readFile(context.Background(), st, keys.LakePartitionPrefix(m.Table, m.Partition)+f)
		if err != nil {
			t.Fatal(err)
		}
		rows = append(rows, r...)
	}
	if !slices.IsSortedFunc(rows, func(a, b schema.HTTP) int { return int(a.TS - b.TS) }) {
		t.Error("compacted rows are not in ts order across the files")
	}
	name := strings.TrimSuffix(m.Files[0], "-0000"+keys.ExtParquet)
	ref := store.NewMem()
	w := lake.NewWriter(lake.StoreSink{Store: ref}, lake.Options{Name: name, FileRows: 150, RowGroupBytes: 16 << 10})
	for i := len(rows) - 1; i >= 0; i-- { // any order: the writer sorts
		w.HTTP.Add(rows[i])
	}
	stats, err := w.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(stats[schema.TableHTTP].Keys) != len(m.Files) {
		t.Fatalf("writer makes %d files of the rows, compaction made %d", len(stats[schema.TableHTTP].Keys), len(m.Files))
	}
	for i, k := range stats[schema.TableHTTP].Keys {
		if path.Base(k) != m.Files[i] {
			t.Fatalf("writer names file %d %s, manifest %s", i, path.Base(k), m.Files[i])
		}
		if !bytes.Equal(getAll(t, ref, k), getAll(t, st, k)) {
			t.Errorf("%s differs from the lake writer's output of the same rows", k)
		}
	}
}

func getAll(t *testing.T, st store.Store, key string) []byte {
	t.Helper()
	rc, err := st.Get(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func copyObject(t *testing.T, st store.Store, from, to string) {
	t.Helper()
	b := getAll(t, st, from)
	if err := st.Put(context.Background(), to, bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatal(err)
	}
}

// hookStore runs hook once, before the first write of an object whose
// base name satisfies match.
type hookStore struct {
	store.Store
	match func(name string) bool
	once  sync.Once
	hook  func()
}

func (s *hookStore) before(key string) {
	if s.match(path.Base(key)) {
		s.once.Do(s.hook)
	}
}

func (s *hookStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	s.before(key)
	return s.Store.Put(ctx, key, r, size)
}

func (s *hookStore) PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) error {
	s.before(key)
	return s.Store.PutIfAbsent(ctx, key, r, size)
}

// TestConcurrentSwitch lets a second compactor switch the partition while
// the first one merges: the first loses, changes nothing, and its merged
// files, when they differ from the winner's, are removed as orphans.
func TestConcurrentSwitch(t *testing.T) {
	for _, tt := range []struct {
		name      string
		late      bool              // a late segment arrives before the winner lists
		at        func(string) bool // the loser's write before which the winner runs
		won, next int               // orphans found by the winner and by the next step
	}{
		{"same inputs", false, isManifest, 0, 0},
		{"winner saw a late segment", true, isManifest, 1, 0},
		{"winner switched before the loser wrote", true, keys.IsCompact, 0, 1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			mem := store.NewMem()
			clk := &clock{t: time.Now()}
			segs := segments(hour7, 0, 12, 10, 0)
			late := segments(hour7, 12, 1, 10, 120)
			writeAll(t, mem, segs...)
			all := segs
			winner := newCompactor(t, mem, clk)
			var won Result
			hs := &hookStore{Store: mem, match: tt.at, hook: func() {
				if tt.late {
					writeAll(t, mem, late...)
					all = slices.Concat(segs, late)
				}
				var err error
				if won, err = winner.Step(ctx, schema.TableHTTP, part7); err != nil {
					t.Error(err)
				}
			}}
			loser := newCompactor(t, hs, clk)
			lost, err := loser.Step(ctx, schema.TableHTTP, part7)
			if err != nil {
				t.Fatal(err)
			}
			if !lost.Conflict || lost.Changed() || won.Conflict || won.Version != 1 {
				t.Fatalf("loser %+v, winner %+v", lost, won)
			}
			checkHour(t, mem, hour7, all...)
			orphans := tt.won + tt.next
			if n := count(objects(t, mem, part7), keys.IsCompact); n != 1+orphans {
				t.Fatalf("%d compacted files, want 1 and %d orphans", n, orphans)
			}
			// The winner listed the loser's files when they were written
			// first: the same names as its own when the inputs were the
			// same, else an orphan it marked.
			if won.Orphans != tt.won {
				t.Fatalf("winner found %d orphans, want %d", won.Orphans, tt.won)
			}
			r, err := loser.Step(ctx, schema.TableHTTP, part7)
			if err != nil || r.Orphans != tt.next || r.Conflict || r.InputFiles != 0 {
				t.Fatalf("step after the race: %+v, %v", r, err)
			}
			checkHour(t, mem, hour7, all...)
			// After the grace period the inputs and orphans go.
			clk.advance(testGrace + time.Second)
			r, err = loser.Step(ctx, schema.TableHTTP, part7)
			if err != nil {
				t.Fatal(err)
			}
			if r.Deleted != len(all)+orphans {
				t.Errorf("deleted %d, want %d inputs and %d orphans", r.Deleted, len(all), orphans)
			}
			checkHour(t, mem, hour7, all...)
			if n := count(objects(t, mem, part7), keys.IsCompact); n != 1 {
				t.Errorf("%d compacted files left, want 1", n)
			}
		})
	}
}

// TestBadInputsAbortTheMerge checks that a merge whose inputs do not
// belong to the partition changes nothing that readers see.
func TestBadInputsAbortTheMerge(t *testing.T) {
	for _, tt := range []struct {
		name string
		bad  func(t *testing.T, st store.Store)
		want string
	}{
		{"row of another hour", func(t *testing.T, st store.Store) {
			s := segments(hour8, 100, 1, 5, 5000)[0]
			writeAll(t, st, s)
			copyObject(t, st, s.key(), keys.Lake(schema.TableHTTP, part7, "misplaced-0000"))
		}, "outside the partition"},
		{"file of another table", func(t *testing.T, st store.Store) {
			w := lake.NewWriter(lake.StoreSink{Store: st}, lake.Options{Name: "dns"})
			w.DNS.Add(schema.DNS{ID: "d1", TS: hour7.Add(time.Minute).UnixMicro(), Query: "x."})
			stats, err := w.Close(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			copyObject(t, st, stats[schema.TableDNS].Keys[0], keys.Lake(schema.TableHTTP, part7, "dns-0000"))
		}, `table "dns"`},
		{"not parquet", func(t *testing.T, st store.Store) {
			if err := st.Put(context.Background(), keys.Lake(schema.TableHTTP, part7, "junk"), strings.NewReader("junk"), 4); err != nil {
				t.Fatal(err)
			}
		}, "parquet"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			st := store.NewMem()
			clk := &clock{t: time.Now()}
			segs := segments(hour7, 0, 5, 10, 0)
			writeAll(t, st, segs...)
			tt.bad(t, st)
			before := objects(t, st, part7)
			_, err := newCompactor(t, st, clk).Step(context.Background(), schema.TableHTTP, part7)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("step: %v, want an error about %q", err, tt.want)
			}
			if after := objects(t, st, part7); !slices.Equal(before, after) {
				t.Errorf("objects changed by a failed merge:\n%v\n%v", before, after)
			}
		})
	}
}

// TestStaleVersion re-creates a version that was deleted as old while a
// newer one exists: readers ignore it, and the step reports it stale.
func TestStaleVersion(t *testing.T) {
	ctx := context.Background()
	st := store.NewMem()
	clk := &clock{t: time.Now()}
	c := newCompactor(t, st, clk)
	m := &lake.Manifest{Format: lake.ManifestFormat, Table: schema.TableHTTP, Partition: part7, Version: 3, Created: clk.t}
	b, _ := m.Encode()
	if err := st.Put(ctx, keys.LakeManifest(schema.TableHTTP, part7, 3), bytes.NewReader(b), int64(len(b))); err != nil {
		t.Fatal(err)
	}
	old := &lake.Manifest{Format: lake.ManifestFormat, Table: schema.TableHTTP, Partition: part7, Version: 2, Created: clk.t}
	var res Result
	if err := c.publish(ctx, old, &res); err != nil {
		t.Fatal(err)
	}
	if !res.Stale || res.Conflict || res.Changed() {
		t.Fatalf("publish of an old version: %+v", res)
	}
	if p, err := lake.ReadPartition(ctx, st, schema.TableHTTP, part7); err != nil || p.Manifest.Version != 3 {
		t.Fatalf("readers use %+v, %v; want version 3", p, err)
	}
}

func TestNewRejects(t *testing.T) {
	st := store.NewMem()
	for _, cfg := range []Config{
		{},
		{Store: st, Tables: []string{"nope"}},
		{Store: st, Grace: -time.Second},
		{Store: st, OlderThan: -time.Second},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
	c, err := New(Config{Store: st, Tables: []string{schema.TableDNS}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Step(context.Background(), schema.TableHTTP, part7); err == nil {
		t.Error("step on a table that is not configured")
	}
	if _, err := c.Step(context.Background(), schema.TableDNS, "dt=2024-01-02"); !errors.Is(err, keys.ErrBadKey) {
		t.Errorf("step on a bad partition: %v", err)
	}
}
