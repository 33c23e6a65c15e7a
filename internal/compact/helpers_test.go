package compact

import (
	"bytes"
	"cmp"
	"context"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/lake"
	"github.com/flowlake/flowlake/internal/store"
	"github.com/flowlake/flowlake/schema"
)

// hour7 is the partition most tests compact; hour8 is the next one.
var (
	hour7 = time.Date(2024, 1, 2, 7, 0, 0, 0, time.UTC)
	hour8 = hour7.Add(time.Hour)
)

var (
	part7 = keys.LakePartition(hour7)
	part8 = keys.LakePartition(hour8)
)

// httpRow returns exchange number id with a ts somewhere in hour h.
func httpRow(h time.Time, id int) schema.HTTP {
	ts := h.Add(time.Duration(id*7919%3_600_000) * time.Millisecond).UnixMicro()
	return schema.HTTP{
		ID: fmt.Sprintf("h%06d", id), TS: ts, TSEnd: ts + 1500, DurationUS: 1500,
		Agent: "a1", ClientIP: "10.0.0.1", ClientPort: int32(40000 + id%1000), ServerIP: "10.0.0.2", ServerPort: 80,
		ServerName: "orders", TCPID: fmt.Sprintf("t%d", id/3), Seq: int32(id % 3),
		Method: []string{"GET", "POST"}[id%2], URI: fmt.Sprintf("/orders/%d?x=1", id), Host: "orders", Path: fmt.Sprintf("/orders/%d", id),
		Query: "x=1", Version: "HTTP/1.1", Status: []int32{200, 404, 500}[id%3], Reason: "OK",
		ReqHeaders: "Host: orders\r\nAccept: */*\r\n", RespHeaders: "Content-Type: application/json\r\n",
		RespBodyBytes: 20, RespBody: fmt.Sprintf(`{"order":%d}`, id), ContentType: "application/json", Complete: true,
	}
}

// segment is one small input file of a test lake.
type segment struct {
	name string // base name given to the writer
	hour time.Time
	ids  []int
}

// key is the object key the lake writer gives the segment's file.
func (s segment) key() string {
	return keys.Lake(schema.TableHTTP, keys.LakePartition(s.hour), s.name+"-0000")
}

// segments returns n segments of per rows each in hour h, numbered from
// first, with row ids from firstID on.
func segments(h time.Time, first, n, per, firstID int) []segment {
	var out []segment
	for i := range n {
		s := segment{name: fmt.Sprintf("seg-a1-0-%020d", first+i), hour: h}
		for j := range per {
			s.ids = append(s.ids, firstID+i*per+j)
		}
		out = append(out, s)
	}
	return out
}

// write stores the segment's rows as the pipeline does: one lake writer
// per segment.
func (s segment) write(ctx context.Context, st store.Store) error {
	w := lake.NewWriter(lake.StoreSink{Store: st}, lake.Options{Name: s.name})
	for _, id := range s.ids {
		w.HTTP.Add(httpRow(s.hour, id))
	}
	stats, err := w.Close(ctx)
	if err != nil {
		return err
	}
	if k := stats[schema.TableHTTP].Keys; len(k) != 1 || k[0] != s.key() {
		return fmt.Errorf("segment %s wrote %v, want %s", s.name, k, s.key())
	}
	return nil
}

func writeAll(t testing.TB, st store.Store, segs ...segment) {
	t.Helper()
	for _, s := range segs {
		if err := s.write(context.Background(), st); err != nil {
			t.Fatal(err)
		}
	}
}

// readFile returns the rows of one lake file.
func readFile(ctx context.Context, st store.Store, key string) ([]schema.HTTP, error) {
	rc, err := st.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	body, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", key, err)
	}
	rows, err := parquet.Read[schema.HTTP](bytes.NewReader(body), int64(len(body)))
	if err != nil {
		return nil, fmt.Errorf("parquet %s: %w", key, err)
	}
	return rows, nil
}

// readHour reads the rows of the http table in hour h as a protocol
// reader does, in file order.
func readHour(ctx context.Context, st store.Store, h time.Time) ([]schema.HTTP, []string, error) {
	files, err := lake.ListFiles(ctx, st, schema.TableHTTP, h.UnixMicro(), h.Add(time.Hour).UnixMicro())
	if err != nil {
		return nil, nil, err
	}
	var rows []schema.HTTP
	for _, f := range files {
		r, err := readFile(ctx, st, f)
		if err != nil {
			return nil, files, err
		}
		rows = append(rows, r...)
	}
	return rows, files, nil
}

// wantRows returns the rows of the segments, sorted by ts and id.
func wantRows(segs ...segment) []schema.HTTP {
	var out []schema.HTTP
	for _, s := range segs {
		for _, id := range s.ids {
			out = append(out, httpRow(s.hour, id))
		}
	}
	sortRows(out)
	return out
}

func sortRows(rows []schema.HTTP) {
	slices.SortFunc(rows, func(a, b schema.HTTP) int { return cmp.Or(cmp.Compare(a.TS, b.TS), strings.Compare(a.ID, b.ID)) })
}

// checkHour fails t unless a protocol reader of hour h gets exactly the
// rows of segs, every column equal, and returns the files it read.
func checkHour(t *testing.T, st store.Store, h time.Time, segs ...segment) []string {
	t.Helper()
	got, files, err := readHour(context.Background(), st, h)
	if err != nil {
		t.Fatalf("read hour %s: %v", h.Format(time.DateTime), err)
	}
	sortRows(got)
	want := wantRows(segs...)
	if len(got) != len(want) {
		t.Fatalf("hour %s: %d rows from %d files, want %d", h.Format(time.DateTime), len(got), len(files), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("hour %s: row %d\n got %+v\nwant %+v", h.Format(time.DateTime), i, got[i], want[i])
		}
	}
	return files
}

// objects lists the base names of the objects of one partition.
func objects(t testing.TB, st store.Store, partition string) []string {
	t.Helper()
	prefix := keys.LakePartitionPrefix(schema.TableHTTP, partition)
	var out []string
	err := st.List(context.Background(), prefix, func(o store.Info) error {
		out = append(out, path.Base(o.Key))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// count returns how many names satisfy f.
func count(names []string, f func(string) bool) int {
	n := 0
	for _, s := range names {
		if f(s) {
			n++
		}
	}
	return n
}

func isManifest(name string) bool { _, ok := keys.ParseManifestName(name); return ok }

// clock is a settable test clock.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }
