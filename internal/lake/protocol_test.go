package lake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/store"
)

const testPart = "dt=2024-01-02/hour=07"

// put stores a small object under key.
func put(t *testing.T, st store.Store, key, body string) {
	t.Helper()
	if err := st.Put(context.Background(), key, strings.NewReader(body), int64(len(body))); err != nil {
		t.Fatal(err)
	}
}

// putManifest stores m as its version's manifest.
func putManifest(t *testing.T, st store.Store, m *Manifest) {
	t.Helper()
	m.Format = ManifestFormat
	b, err := m.Encode()
	if err != nil {
		t.Fatal(err)
	}
	put(t, st, keys.LakeManifest(m.Table, m.Partition, m.Version), string(b))
}

func infos(names ...string) []store.Info {
	var out []store.Info
	for _, n := range names {
		out = append(out, store.Info{Key: "lake/http/" + testPart + "/" + n})
	}
	return out
}

func names(is []store.Info) []string {
	out := []string{}
	for _, i := range is {
		out = append(out, path.Base(i.Key))
	}
	return out
}

func TestSelectFiles(t *testing.T) {
	m := &Manifest{
		Files:    []string{"compact-b-0000.parquet", "compact-b-0001.parquet"},
		Replaces: []Replaced{{Name: "seg-1-0000.parquet"}, {Name: "compact-a-0000.parquet"}, {Name: "seg-2-0000.parquet", Deleted: time.Now()}},
	}
	tests := []struct {
		name                string
		m                   *Manifest
		listed              []string
		live, dead, missing []string
	}{
		{
			name:   "no manifest: every non-compact file, no compact file",
			listed: []string{"compact-x-0000.parquet", "run-a-0000.parquet", "seg-1-0000.parquet"},
			live:   []string{"run-a-0000.parquet", "seg-1-0000.parquet"},
			dead:   []string{"compact-x-0000.parquet"},
		},
		{
			name: "manifest: listed compact files, unreplaced others",
			m:    m,
			listed: []string{"_manifest-00000000000000000002.json", "compact-a-0000.parquet", "compact-b-0000.parquet", "compact-b-0001.parquet",
				"compact-c-0000.parquet", "seg-1-0000.parquet", "seg-2-0000.parquet", "seg-3-0000.parquet"},
			live: []string{"compact-b-0000.parquet", "compact-b-0001.parquet", "seg-3-0000.parquet"},
			dead: []string{"compact-a-0000.parquet", "compact-c-0000.parquet", "seg-1-0000.parquet", "seg-2-0000.parquet"},
		},
		{
			name:    "manifest file missing from the listing",
			m:       m,
			listed:  []string{"compact-b-0000.parquet", "seg-3-0000.parquet"},
			live:    []string{"compact-b-0000.parquet", "seg-3-0000.parquet"},
			dead:    []string{},
			missing: []string{"compact-b-0001.parquet"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			live, dead, missing := SelectFiles(tt.m, infos(tt.listed...))
			if got := names(live); !slices.Equal(got, tt.live) {
				t.Errorf("live %v, want %v", got, tt.live)
			}
			if got := names(dead); !slices.Equal(got, orEmpty(tt.dead)) {
				t.Errorf("dead %v, want %v", got, tt.dead)
			}
			if !slices.Equal(missing, tt.missing) {
				t.Errorf("missing %v, want %v", missing, tt.missing)
			}
		})
	}
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func TestDecodeManifest(t *testing.T) {
	key := keys.LakeManifest("http", testPart, 3)
	good := &Manifest{Format: ManifestFormat, Table: "http", Partition: testPart, Version: 3, Created: time.Unix(1700000000, 0).UTC(),
		Files: []string{"compact-a-0000.parquet"}, Rows: 5, Replaces: []Replaced{{Name: "seg-1-0000.parquet", Since: time.Unix(1700000000, 0).UTC()}}}
	b, err := good.Encode()
	if err != nil {
		t.Fatal(err)
	}
	m, err := DecodeManifest(key, b)
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	if !m.Live("compact-a-0000.parquet") || !m.IsReplaced("seg-1-0000.parquet") || m.Live("seg-1-0000.parquet") || m.Rows != 5 {
		t.Errorf("decoded %+v", m)
	}
	if strings.Contains(string(b), "deleted") {
		t.Errorf("zero Deleted is encoded: %s", b)
	}

	bad := map[string]func(m *Manifest){
		"version differs from key": func(m *Manifest) { m.Version = 4 },
		"table differs":            func(m *Manifest) { m.Table = "dns" },
		"format":                   func(m *Manifest) { m.Format = 2 },
		"live and replaced":        func(m *Manifest) { m.Replaces = append(m.Replaces, Replaced{Name: "compact-a-0000.parquet"}) },
		"live not compact":         func(m *Manifest) { m.Files = append(m.Files, "seg-9-0000.parquet") },
		"path in name":             func(m *Manifest) { m.Replaces[0].Name = "x/seg-1-0000.parquet" },
		"duplicate replaced":       func(m *Manifest) { m.Replaces = append(m.Replaces, m.Replaces[0]) },
	}
	for name, mutate := range bad {
		c := *good
		c.Files = slices.Clone(good.Files)
		c.Replaces = slices.Clone(good.Replaces)
		mutate(&c)
		b, err := c.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := DecodeManifest(key, b); !errors.Is(err, ErrBadManifest) {
			t.Errorf("%s: err %v, want ErrBadManifest", name, err)
		}
	}
	for _, body := range []string{"", "{", `{"format":1,"unknown":true}`} {
		if _, err := DecodeManifest(key, []byte(body)); !errors.Is(err, ErrBadManifest) {
			t.Errorf("body %q: err %v, want ErrBadManifest", body, err)
		}
	}
	if _, err := DecodeManifest("lake/http/"+testPart+"/_manifest.json", b); !errors.Is(err, ErrBadManifest) {
		t.Errorf("unversioned key: %v", err)
	}
}

// TestListFilesPrunesAndFollowsManifests builds a lake of several
// partitions and checks the files ListFiles picks for time ranges that use
// each listing granularity.
func TestListFilesPrunesAndFollowsManifests(t *testing.T) {
	ctx := context.Background()
	st := store.NewMem()
	day := time.Date(2024, 1, 2, 0, 0, 0, 0, time.UTC)
	file := func(table string, h time.Time, name string) string {
		k := keys.Lake(table, keys.LakePartition(h), name)
		put(t, st, k, "x")
		return k
	}
	var want06, want07, want08, wantNext []string
	want06 = append(want06, file("http", day.Add(6*time.Hour), "seg-a-0-1-0000"))
	// Hour 07 is compacted: two inputs replaced, one late file, a stale
	// compact file of an older version, an orphan, and old manifests.
	h7 := day.Add(7 * time.Hour)
	file("http", h7, "seg-a-0-2-0000")
	file("http", h7, "seg-a-0-3-0000")
	file("http", h7, "compact-old-0000")
	file("http", h7, "compact-orphan-0000")
	want07 = append(want07, file("http", h7, "compact-new-0000"), file("http", h7, "seg-a-0-4-0000"))
	putManifest(t, st, &Manifest{Table: "http", Partition: keys.LakePartition(h7), Version: 1, Files: []string{"compact-old-0000.parquet"}})
	putManifest(t, st, &Manifest{Table: "http", Partition: keys.LakePartition(h7), Version: 2, Files: []string{"compact-new-0000.parquet"},
		Replaces: []Replaced{{Name: "seg-a-0-2-0000.parquet"}, {Name: "seg-a-0-3-0000.parquet"}, {Name: "compact-old-0000.parquet"}}})
	want08 = append(want08, file("http", day.Add(8*time.Hour), "seg-a-0-5-0000"), file("http", day.Add(8*time.Hour), "seg-b-0-1-0000"))
	wantNext = append(wantNext, file("http", day.Add(30*time.Hour), "seg-a-0-9-0000"))
	file("dns", h7, "seg-a-0-2-0000")                                     // another table
	put(t, st, "lake/http/"+keys.LakePartition(h7)+"/sub/x.parquet", "x") // not a partition file
	put(t, st, "lake/http/junk.parquet", "x")

	us := func(t time.Time) int64 { return t.UnixMicro() }
	tests := []struct {
		name     string
		from, to time.Time
		want     [][]string
	}{
		{"one hour", h7, h7.Add(time.Hour), [][]string{want07}},
		{"one microsecond", h7.Add(time.Hour - time.Microsecond), h7.Add(time.Hour), [][]string{want07}},
		{"end is exclusive", day.Add(6 * time.Hour), h7, [][]string{want06}},
		{"hours", day, day.Add(24 * time.Hour), [][]string{want06, want07, want08}},
		{"days", day.Add(-30 * 24 * time.Hour), day.Add(3 * 24 * time.Hour), [][]string{want06, want07, want08, wantNext}},
		{"whole table", time.Unix(0, 0), day.Add(5000 * 24 * time.Hour), [][]string{want06, want07, want08, wantNext}},
		{"empty range", h7, h7, nil},
		{"nothing there", day.Add(-48 * time.Hour), day, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ListFiles(ctx, st, "http", us(tt.from), us(tt.to))
			if err != nil {
				t.Fatal(err)
			}
			want := slices.Concat(tt.want...)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("files\n%v\nwant\n%v", got, want)
			}
		})
	}

	p, err := ReadPartition(ctx, st, "http", keys.LakePartition(h7))
	if err != nil {
		t.Fatal(err)
	}
	if p.Manifest == nil || p.Manifest.Version != 2 || len(p.Manifests) != 2 || !p.Hour.Equal(h7) {
		t.Fatalf("partition %+v", p)
	}
	if got, want := names(p.Dead), []string{"compact-old-0000.parquet", "compact-orphan-0000.parquet", "seg-a-0-2-0000.parquet", "seg-a-0-3-0000.parquet"}; !slices.Equal(got, want) {
		t.Errorf("dead %v, want %v", got, want)
	}
	if _, err := ListFiles(ctx, st, "../x", 0, 1); err == nil {
		t.Error("bad table name accepted")
	}
}

// flakyStore fails the first Get of each manifest with ErrNotExist, as if
// an old version had been deleted between a reader's listing and its read,
// and counts listings.
type flakyStore struct {
	store.Store
	lists  atomic.Int64
	mu     sync.Mutex
	failed map[string]bool
}

func (s *flakyStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	s.mu.Lock()
	fail := !s.failed[key]
	s.failed[key] = true
	s.mu.Unlock()
	if _, ok := keys.ParseManifestName(path.Base(key)); ok && fail {
		return nil, fmt.Errorf("flaky get %s: %w", key, store.ErrNotExist)
	}
	return s.Store.Get(ctx, key)
}

func (s *flakyStore) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	s.lists.Add(1)
	return s.Store.List(ctx, prefix, fn)
}

func TestReadPartitionRetriesAndReportsInconsistency(t *testing.T) {
	ctx := context.Background()
	mem := store.NewMem()
	prefix := keys.LakePartitionPrefix("http", testPart)
	put(t, mem, prefix+"compact-a-0000.parquet", "x")
	put(t, mem, prefix+"seg-1-0000.parquet", "x")
	putManifest(t, mem, &Manifest{Table: "http", Partition: testPart, Version: 1, Files: []string{"compact-a-0000.parquet"},
		Replaces: []Replaced{{Name: "seg-1-0000.parquet"}}})

	st := &flakyStore{Store: mem, failed: map[string]bool{}}
	p, err := ReadPartition(ctx, st, "http", testPart)
	if err != nil {
		t.Fatal(err)
	}
	if got := names(p.Live); !slices.Equal(got, []string{"compact-a-0000.parquet"}) || st.lists.Load() != 2 {
		t.Errorf("live %v after %d listings, want compact-a after 2", got, st.lists.Load())
	}

	// Through ListFiles: the partition is listed again on its own.
	st = &flakyStore{Store: mem, failed: map[string]bool{}}
	h, _ := keys.ParseLakePartition(testPart)
	files, err := ListFiles(ctx, st, "http", h.UnixMicro(), h.Add(time.Hour).UnixMicro())
	if err != nil || len(files) != 1 || path.Base(files[0]) != "compact-a-0000.parquet" {
		t.Errorf("ListFiles = %v, %v", files, err)
	}

	// A live compacted file that is gone is never skipped silently.
	if err := mem.Delete(ctx, prefix+"compact-a-0000.parquet"); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadPartition(ctx, mem, "http", testPart); !errors.Is(err, ErrInconsistent) {
		t.Errorf("missing live file: err %v, want ErrInconsistent", err)
	}
	if _, err := ListFiles(ctx, mem, "http", h.UnixMicro(), h.Add(time.Hour).UnixMicro()); !errors.Is(err, ErrInconsistent) {
		t.Errorf("ListFiles with a missing live file: err %v, want ErrInconsistent", err)
	}

	// A damaged manifest is an error, not an empty partition.
	put(t, mem, keys.LakeManifest("http", testPart, 2), "{not json")
	if _, err := ReadPartition(ctx, mem, "http", testPart); !errors.Is(err, ErrBadManifest) {
		t.Errorf("damaged manifest: err %v, want ErrBadManifest", err)
	}
}
