package lake

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/flowlake/flowlake/schema"
)

// openFile opens a Parquet object from the sink.
func openFile(t *testing.T, body []byte) *parquet.File {
	t.Helper()
	f, err := parquet.OpenFile(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatalf("open parquet: %v", err)
	}
	return f
}

// readRows reads all rows of type T from a Parquet object.
func readRows[T any](t *testing.T, body []byte) []T {
	t.Helper()
	rows, err := parquet.Read[T](bytes.NewReader(body), int64(len(body)))
	if err != nil {
		t.Fatalf("read parquet: %v", err)
	}
	return rows
}

// columnIndex returns the index of the leaf column named name.
func columnIndex(t *testing.T, f *parquet.File, name string) int {
	t.Helper()
	leaf, ok := f.Schema().Lookup(name)
	if !ok {
		t.Fatalf("no column %s", name)
	}
	return leaf.ColumnIndex
}

func TestWriterPartitionsAndRoundTrip(t *testing.T) {
	sink := newMemSink()
	rows := makeTestRows()
	w := NewWriter(sink, Options{Name: "run-abc"})
	rows.addTo(w, nil)
	stats := mustClose(t, w)

	var wantKeys []string
	for _, table := range schema.Tables {
		for _, p := range []string{"dt=2024-03-10/hour=23", "dt=2024-03-11/hour=00"} {
			wantKeys = append(wantKeys, fmt.Sprintf("lake/%s/%s/run-abc-0000.parquet", table, p))
		}
		st := stats[table]
		if st.Files != 2 || len(st.Keys) != 2 {
			t.Errorf("%s: %d files %v, want 2", table, st.Files, st.Keys)
		}
		var size int64
		for _, k := range st.Keys {
			size += int64(len(sink.objects[k]))
		}
		if st.Bytes != size {
			t.Errorf("%s: stats say %d bytes, objects hold %d", table, st.Bytes, size)
		}
	}
	slices.Sort(wantKeys)
	if got := sink.keys(); !slices.Equal(got, wantKeys) {
		t.Fatalf("keys\n%v\nwant\n%v", got, wantKeys)
	}

	// Read the http table back with parquet-go: the same rows, in ts order,
	// ties broken by id.
	var got []schema.HTTP
	for _, k := range stats[schema.TableHTTP].Keys {
		part := readRows[schema.HTTP](t, sink.objects[k])
		for _, r := range part {
			if p := schema.PartitionPath(r.TS); !strings.Contains(k, "/"+p+"/") {
				t.Errorf("row ts %d (%s) in %s", r.TS, p, k)
			}
		}
		got = append(got, part...)
	}
	want := slices.Clone(rows.http)
	for i := range want {
		for _, s := range []*string{&want[i].ReqBody, &want[i].RespHeaders} {
			*s = strings.ToValidUTF8(*s, "\uFFFD")
		}
	}
	slices.SortStableFunc(want, func(a, b schema.HTTP) int {
		if a.TS != b.TS {
			return int(a.TS - b.TS)
		}
		return strings.Compare(a.ID, b.ID)
	})
	if len(got) != len(want) {
		t.Fatalf("read %d rows, want %d", len(got), len(want))
	}
	for i := range want {
		if !reflect.DeepEqual(got[i], want[i]) {
			t.Errorf("row %d:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	if got[0].ID != "h-00000000" || got[1].ID != "h-tie-a" || got[2].ID != "h-tie-b" {
		t.Errorf("first ids %s %s %s, want h-00000000 h-tie-a h-tie-b", got[0].ID, got[1].ID, got[2].ID)
	}

	// Lists survive, nil and empty alike read back as empty.
	var tcp []schema.TCP
	for _, k := range stats[schema.TableTCP].Keys {
		tcp = append(tcp, readRows[schema.TCP](t, sink.objects[k])...)
	}
	segs := map[string][]string{}
	for _, r := range tcp {
		segs[r.ID] = r.Segments
	}
	for _, r := range rows.tcp {
		if len(segs[r.ID]) != len(r.Segments) || (len(r.Segments) > 0 && !slices.Equal(segs[r.ID], r.Segments)) {
			t.Errorf("tcp %s segments %q, want %q", r.ID, segs[r.ID], r.Segments)
		}
	}
}

func TestDeterministicBytes(t *testing.T) {
	rows := makeTestRows()
	write := func(perm func(int) []int) *memSink {
		sink := newMemSink()
		w := NewWriter(sink, Options{Name: "det", RowGroupBytes: 32 << 10, Agent: "agent-1"})
		rows.addTo(w, perm)
		mustClose(t, w)
		return sink
	}
	a := write(nil)
	b := write(nil)
	rng := rand.New(rand.NewPCG(1, 2))
	c := write(func(n int) []int { return rng.Perm(n) }) // same rows, added in another order

	if !slices.Equal(a.keys(), b.keys()) || !slices.Equal(a.keys(), c.keys()) {
		t.Fatalf("keys differ:\n%v\n%v\n%v", a.keys(), b.keys(), c.keys())
	}
	for _, k := range a.keys() {
		if !bytes.Equal(a.objects[k], b.objects[k]) {
			t.Errorf("%s: two writes of the same rows differ", k)
		}
		// Rows that compare equal under the tie-break keep their insertion
		// order, and no table has such rows in the test data, so a shuffled
		// insertion order must give the same bytes too.
		if !bytes.Equal(a.objects[k], c.objects[k]) {
			t.Errorf("%s: shuffled insertion order changed the output", k)
		}
	}
}

func TestFileMetadata(t *testing.T) {
	sink := newMemSink()
	rows := makeTestRows()
	w := NewWriter(sink, Options{Name: "meta", Agent: "agent-7"})
	rows.addTo(w, nil)
	stats := mustClose(t, w)

	for _, table := range schema.Tables {
		for _, k := range stats[table].Keys {
			f := openFile(t, sink.objects[k])
			md := f.Metadata()
			kv := map[string]string{}
			for _, e := range md.KeyValueMetadata {
				kv[e.Key] = e.Value
			}
			if kv[MetaSchemaVersion] != fmt.Sprint(schema.Version) || kv[MetaTable] != table || kv[MetaAgent] != "agent-7" {
				t.Errorf("%s: key/value metadata %v", k, kv)
			}
			if len(f.ColumnIndexes()) == 0 || len(f.OffsetIndexes()) == 0 {
				t.Errorf("%s: no page index", k)
			}
			tsCol := columnIndex(t, f, "ts")
			dict := dictColumns(table)
			for gi, rg := range md.RowGroups {
				if len(rg.SortingColumns) != 1 || int(rg.SortingColumns[0].ColumnIdx) != tsCol || rg.SortingColumns[0].Descending {
					t.Errorf("%s row group %d: sorting columns %+v, want ts ascending", k, gi, rg.SortingColumns)
				}
				for _, cc := range rg.Columns {
					name := strings.Join(cc.MetaData.PathInSchema, ".")
					if cc.MetaData.Codec != format.Zstd {
						t.Errorf("%s %s: codec %v", k, name, cc.MetaData.Codec)
					}
					//lint:ignore SA1019 older writers mark dictionary pages with PlainDictionary
					usesDict := slices.Contains(cc.MetaData.Encoding, format.RLEDictionary) || slices.Contains(cc.MetaData.Encoding, format.PlainDictionary)
					if usesDict != dict[cc.MetaData.PathInSchema[0]] {
						t.Errorf("%s %s: dictionary encoding %v, dict tag %v", k, name, usesDict, dict[cc.MetaData.PathInSchema[0]])
					}
				}
			}
		}
	}
}

// dictColumns returns the columns of table whose parquet tag says dict.
func dictColumns(table string) map[string]bool {
	out := map[string]bool{}
	rt := schema.RowType(table)
	for i := range rt.NumField() {
		parts := strings.Split(rt.Field(i).Tag.Get("parquet"), ",")
		if slices.Contains(parts[1:], "dict") {
			out[parts[0]] = true
		}
	}
	return out
}

func TestRowGroupStatistics(t *testing.T) {
	sink := newMemSink()
	tbl := NewTable(schema.TableHTTP, sink, Options{Name: "stats", RowGroupBytes: 16 << 10},
		func(r *schema.HTTP) int64 { return r.TS }, lessHTTP)
	const n = 2000
	for i := range n {
		tbl.Add(httpRow(i, hour0+int64(n-i)*1000)) // added in reverse time order
	}
	st, err := tbl.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Files != 1 || st.Rows != n {
		t.Fatalf("stats %+v", st)
	}
	body := sink.objects[st.Keys[0]]
	f := openFile(t, body)
	md := f.Metadata()
	if len(md.RowGroups) != st.RowGroups || st.RowGroups < 5 {
		t.Fatalf("%d row groups in file, stats say %d, want at least 5", len(md.RowGroups), st.RowGroups)
	}
	rows := readRows[schema.HTTP](t, body)
	tsCol := columnIndex(t, f, "ts")
	first := 0
	for gi, rg := range md.RowGroups {
		group := rows[first : first+int(rg.NumRows)]
		first += int(rg.NumRows)
		s := rg.Columns[tsCol].MetaData.Statistics
		if len(s.MinValue) != 8 || len(s.MaxValue) != 8 {
			t.Fatalf("row group %d: ts min/max missing: %+v", gi, s)
		}
		lo, hi := int64(binary.LittleEndian.Uint64(s.MinValue)), int64(binary.LittleEndian.Uint64(s.MaxValue))
		if lo != group[0].TS || hi != group[len(group)-1].TS {
			t.Errorf("row group %d: ts stats [%d, %d], rows span [%d, %d]", gi, lo, hi, group[0].TS, group[len(group)-1].TS)
		}
		if s.NullCount != 0 {
			t.Errorf("row group %d: ts null count %d", gi, s.NullCount)
		}
		// The column index (page-level min/max) agrees with the chunk statistics.
		ci := f.ColumnIndexes()[gi*len(rg.Columns)+tsCol]
		if len(ci.MinValues) == 0 || int64(binary.LittleEndian.Uint64(ci.MinValues[0])) != lo {
			t.Errorf("row group %d: column index min %v, want %d", gi, ci.MinValues, lo)
		}
		// Row groups are cut by the size estimate: every group but the last
		// reaches RowGroupBytes, and not by more than one row.
		var est, last int64
		for i := range group {
			pb, _, _ := tbl.sizer.prepare(reflect.ValueOf(&group[i]).Elem())
			est += pb
			last = pb
		}
		if gi < len(md.RowGroups)-1 && (est < 16<<10 || est-last >= 16<<10) {
			t.Errorf("row group %d: estimated %d bytes, limit %d", gi, est, 16<<10)
		}
	}
	if first != n {
		t.Errorf("row groups hold %d rows, want %d", first, n)
	}
	if !slices.IsSortedFunc(rows, func(a, b schema.HTTP) int { return int(a.TS - b.TS) }) {
		t.Error("rows not sorted by ts")
	}
}

func TestLargeColumnsSkipPageStatistics(t *testing.T) {
	// A compressible body is stored compressed in its page, so plain copies of
	// it in the file can only come from statistics: the column chunk min and
	// max (2), but not the page header statistics (4 more).
	body := "BODY-MARKER-" + strings.Repeat("abc", 2000)
	sink := newMemSink()
	tbl := NewTable(schema.TableHTTP, sink, Options{Name: "big"}, func(r *schema.HTTP) int64 { return r.TS }, lessHTTP)
	tbl.Add(schema.HTTP{ID: "x", TS: hour0, RespBody: body, Path: "/PATH-MARKER-" + strings.Repeat("p", 100)})
	st, err := tbl.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	file := sink.objects[st.Keys[0]]
	if n := bytes.Count(file, []byte(body)); n != 2 {
		t.Errorf("body appears %d times in the file, want 2 (column chunk min and max)", n)
	}
	// path keeps page statistics: chunk min/max plus the page header's
	// min/max and deprecated min/max.
	if n := bytes.Count(file, []byte("/PATH-MARKER-"+strings.Repeat("p", 100))); n != 6 {
		t.Errorf("path appears %d times in the file, want 6", n)
	}
}

func TestFileRowsSplitsInOrder(t *testing.T) {
	sink := newMemSink()
	tbl := NewTable(schema.TableDNS, sink, Options{Name: "split", FileRows: 3},
		func(r *schema.DNS) int64 { return r.TS }, lessDNS)
	for i := range 8 {
		tbl.Add(schema.DNS{ID: fmt.Sprintf("d%d", i), TS: hour0 + int64(8-i)})
	}
	st, err := tbl.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"lake/dns/dt=2024-03-10/hour=23/split-0000.parquet",
		"lake/dns/dt=2024-03-10/hour=23/split-0001.parquet",
		"lake/dns/dt=2024-03-10/hour=23/split-0002.parquet",
	}
	if !slices.Equal(st.Keys, want) || st.Files != 3 || st.Rows != 8 {
		t.Fatalf("stats %+v", st)
	}
	var ids []string
	for _, k := range st.Keys {
		for _, r := range readRows[schema.DNS](t, sink.objects[k]) {
			ids = append(ids, r.ID)
		}
	}
	if got := strings.Join(ids, ","); got != "d7,d6,d5,d4,d3,d2,d1,d0" {
		t.Errorf("order across files %s", got)
	}
}

func TestSpill(t *testing.T) {
	sink := newMemSink()
	const limit = 64 << 10
	tbl := NewTable(schema.TableHTTP, sink, Options{Name: "spill", MaxBufferBytes: limit},
		func(r *schema.HTTP) int64 { return r.TS }, lessHTTP)
	const n = 3000
	for i := range n {
		// Two partitions, interleaved, with time going backwards in each.
		tbl.Add(httpRow(i, hour0+int64(i%2)*hourUS+int64(n-i)))
		if tbl.buffered > limit {
			t.Fatalf("after row %d: %d bytes buffered, limit %d", i, tbl.buffered, limit)
		}
	}
	if tbl.Err() != nil {
		t.Fatal(tbl.Err())
	}
	st, err := tbl.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.Spills == 0 || st.Files < 4 {
		t.Fatalf("no spill: %+v", st)
	}
	seen := map[string]bool{}
	next := map[string]int{}
	for _, k := range st.Keys {
		dir, name := k[:strings.LastIndex(k, "/")], k[strings.LastIndex(k, "/")+1:]
		if want := fmt.Sprintf("spill-%04d.parquet", next[dir]); name != want {
			t.Errorf("%s: want parts numbered in order, next is %s", k, want)
		}
		next[dir]++
		rows := readRows[schema.HTTP](t, sink.objects[k])
		if !slices.IsSortedFunc(rows, func(a, b schema.HTTP) int { return int(a.TS - b.TS) }) {
			t.Errorf("%s: rows not sorted", k)
		}
		for _, r := range rows {
			if seen[r.ID] {
				t.Errorf("row %s written twice", r.ID)
			}
			seen[r.ID] = true
		}
	}
	if len(seen) != n || st.Rows != n {
		t.Errorf("%d distinct rows written (stats %d), want %d", len(seen), st.Rows, n)
	}
	if len(next) != 2 {
		t.Errorf("files in %d partitions, want 2", len(next))
	}
}

func TestSinkErrors(t *testing.T) {
	t.Run("close", func(t *testing.T) {
		sink := newMemSink()
		sink.failAt = 2
		tbl := NewTable(schema.TableTLS, sink, Options{Name: "e"}, func(r *schema.TLS) int64 { return r.TS }, lessTLS)
		tbl.Add(schema.TLS{TS: hour0})
		tbl.Add(schema.TLS{TS: hour0 + hourUS})
		st, err := tbl.Close(context.Background())
		if !errors.Is(err, errSinkFull) || !strings.Contains(err.Error(), "lake/tls/dt=2024-03-11/hour=00/e-0000.parquet") {
			t.Fatalf("err = %v", err)
		}
		if st.Files != 1 {
			t.Errorf("stats %+v, want the first file counted", st)
		}
		if _, err := tbl.Close(context.Background()); !errors.Is(err, errSinkFull) {
			t.Errorf("second close: %v", err)
		}
	})
	t.Run("spill", func(t *testing.T) {
		sink := newMemSink()
		sink.failAt = 1
		tbl := NewTable(schema.TableHTTP, sink, Options{Name: "e", MaxBufferBytes: 4 << 10},
			func(r *schema.HTTP) int64 { return r.TS }, lessHTTP)
		for i := range 100 {
			tbl.Add(httpRow(i, hour0))
		}
		if !errors.Is(tbl.Err(), errSinkFull) {
			t.Fatalf("Err() = %v", tbl.Err())
		}
		if tbl.buffered != 0 {
			t.Errorf("%d bytes still buffered after a failed spill", tbl.buffered)
		}
		if _, err := tbl.Close(context.Background()); !errors.Is(err, errSinkFull) {
			t.Errorf("close: %v", err)
		}
		if len(sink.puts) != 1 {
			t.Errorf("%d puts after the failure, want none", len(sink.puts)-1)
		}
	})
	t.Run("canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		w := NewWriter(newMemSink(), Options{Name: "c"})
		w.TCP.Add(schema.TCP{ID: "x", TS: hour0})
		st, err := w.Close(ctx)
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("err = %v", err)
		}
		if _, ok := st[schema.TableTCP]; !ok {
			t.Errorf("stats of the failed table missing: %v", st)
		}
	})
}

func TestInvalidArguments(t *testing.T) {
	ts := func(r *schema.DNS) int64 { return r.TS }
	cases := map[string]*Table[schema.DNS]{
		"empty name":  NewTable(schema.TableDNS, newMemSink(), Options{}, ts, lessDNS),
		"slash name":  NewTable(schema.TableDNS, newMemSink(), Options{Name: "a/b"}, ts, lessDNS),
		"dot name":    NewTable(schema.TableDNS, newMemSink(), Options{Name: ".."}, ts, lessDNS),
		"bad table":   NewTable("../dns", newMemSink(), Options{Name: "x"}, ts, lessDNS),
		"nil sink":    NewTable(schema.TableDNS, nil, Options{Name: "x"}, ts, lessDNS),
		"nil ts":      NewTable(schema.TableDNS, newMemSink(), Options{Name: "x"}, nil, lessDNS),
		"nil less":    NewTable[schema.DNS](schema.TableDNS, newMemSink(), Options{Name: "x"}, ts, nil),
		"closed once": NewTable(schema.TableDNS, newMemSink(), Options{Name: "x"}, ts, lessDNS),
	}
	if _, err := cases["closed once"].Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	for name, tbl := range cases {
		tbl.Add(schema.DNS{ID: "x", TS: hour0})
		if _, err := tbl.Close(context.Background()); err == nil {
			t.Errorf("%s: Close succeeded", name)
		}
	}
	if _, err := cases["closed once"].Close(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("close after close: %v", err)
	}

	type notFlat struct {
		M map[string]string `parquet:"m"`
	}
	bad := NewTable("x", newMemSink(), Options{Name: "x"}, func(*notFlat) int64 { return 0 }, func(a, b *notFlat) bool { return false })
	bad.Add(notFlat{})
	if _, err := bad.Close(context.Background()); err == nil || !strings.Contains(err.Error(), "unsupported type") {
		t.Errorf("map field: %v", err)
	}
	type badTag struct {
		A int64 `parquet:"a,timestamp(fortnight)"`
	}
	bt := NewTable("x", newMemSink(), Options{Name: "x"}, func(*badTag) int64 { return 0 }, func(a, b *badTag) bool { return false })
	if _, err := bt.Close(context.Background()); err == nil || !strings.Contains(err.Error(), "parquet schema") {
		t.Errorf("bad tag: %v", err)
	}
}

func TestEmptyWriterWritesNothing(t *testing.T) {
	sink := newMemSink()
	st := mustClose(t, NewWriter(sink, Options{Name: "empty"}))
	if len(sink.puts) != 0 {
		t.Errorf("puts %v", sink.puts)
	}
	for _, table := range schema.Tables {
		if s, ok := st[table]; !ok || s.Files != 0 || s.Rows != 0 {
			t.Errorf("%s: %+v %v", table, s, ok)
		}
	}
}

func TestPartitionBeforeEpoch(t *testing.T) {
	sink := newMemSink()
	tbl := NewTable(schema.TableDNS, sink, Options{Name: "old"}, func(r *schema.DNS) int64 { return r.TS }, lessDNS)
	tbl.Add(schema.DNS{ID: "a", TS: -1})
	tbl.Add(schema.DNS{ID: "b", TS: 0})
	st, err := tbl.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"lake/dns/dt=1969-12-31/hour=23/old-0000.parquet",
		"lake/dns/dt=1970-01-01/hour=00/old-0000.parquet",
	}
	if !slices.Equal(st.Keys, want) {
		t.Errorf("keys %v, want %v", st.Keys, want)
	}
	for _, c := range []struct{ a, b, q int64 }{{7, 2, 3}, {-7, 2, -4}, {-8, 2, -4}, {0, 5, 0}, {-1, 3600, -1}} {
		if got := floorDiv(c.a, c.b); got != c.q {
			t.Errorf("floorDiv(%d, %d) = %d, want %d", c.a, c.b, got, c.q)
		}
	}
}

func TestDirSink(t *testing.T) {
	root := t.TempDir()
	s := DirSink{Root: root}
	ctx := context.Background()
	key := "lake/http/dt=2024-01-01/hour=00/run-0000.parquet"
	for _, body := range []string{"first", "second, longer"} {
		if err := s.Put(ctx, key, []byte(body)); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(key)))
		if err != nil || string(got) != body {
			t.Fatalf("read back %q, %v; want %q", got, err, body)
		}
	}
	fi, err := os.Stat(filepath.Join(root, filepath.FromSlash(key)))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644", fi.Mode().Perm())
	}
	entries, err := os.ReadDir(filepath.Dir(filepath.Join(root, filepath.FromSlash(key))))
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("directory holds %d entries (temporary files left?)", len(entries))
	}

	for _, bad := range []string{"", ".", "/abs", "../escape", "a/../../b", "a//b", "a/"} {
		if err := s.Put(ctx, bad, []byte("x")); err == nil {
			t.Errorf("key %q accepted", bad)
		}
	}
	if err := (DirSink{}).Put(ctx, "a", nil); err == nil {
		t.Error("empty root accepted")
	}
	canceled, cancel := context.WithCancel(ctx)
	cancel()
	if err := s.Put(canceled, "lake/x", nil); !errors.Is(err, context.Canceled) {
		t.Errorf("canceled put: %v", err)
	}
	// A file where a directory must go fails and leaves nothing behind.
	if err := s.Put(ctx, "lake/http/dt=2024-01-01/hour=00/run-0000.parquet/x", []byte("x")); err == nil {
		t.Error("put below a file succeeded")
	}
}

func TestDirSinkNoTempFileOnFailure(t *testing.T) {
	root := t.TempDir()
	dir := filepath.Join(root, "lake")
	if err := os.MkdirAll(filepath.Join(dir, "target"), 0o755); err != nil {
		t.Fatal(err)
	}
	// Renaming a file over a non-empty directory fails after the temp file
	// was written.
	if err := os.WriteFile(filepath.Join(dir, "target", "keep"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := (DirSink{Root: root}).Put(context.Background(), "lake/target", []byte("x")); err == nil {
		t.Fatal("put over a directory succeeded")
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "target" {
			t.Errorf("left behind %s", e.Name())
		}
	}
}

func TestRepairDoesNotTouchCallerRow(t *testing.T) {
	sink := newMemSink()
	tbl := NewTable(schema.TableTCP, sink, Options{Name: "u"}, func(r *schema.TCP) int64 { return r.TS }, lessTCP)
	segs := []string{"ok", "b\xffd"}
	row := schema.TCP{ID: "a\xfe", TS: hour0, Segments: segs}
	tbl.Add(row)
	if row.ID != "a\xfe" || segs[1] != "b\xffd" {
		t.Errorf("caller's row changed: %q %q", row.ID, segs)
	}
	st, err := tbl.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if st.RepairedUTF8 != 2 {
		t.Errorf("repaired %d, want 2", st.RepairedUTF8)
	}
	got := readRows[schema.TCP](t, sink.objects[st.Keys[0]])
	if got[0].ID != "a\uFFFD" || !slices.Equal(got[0].Segments, []string{"ok", "b\uFFFDd"}) {
		t.Errorf("read %q %q", got[0].ID, got[0].Segments)
	}
}
