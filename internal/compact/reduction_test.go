package compact

import (
	"context"
	"fmt"
	"io"
	"path"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/lake"
	"github.com/flowlake/flowlake/internal/store"
	"github.com/flowlake/flowlake/schema"
)

// countingStore counts the requests a reader makes.
type countingStore struct {
	store.Store
	lists, gets atomic.Int64
}

func (s *countingStore) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	s.lists.Add(1)
	return s.Store.List(ctx, prefix, fn)
}

func (s *countingStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	s.gets.Add(1)
	return s.Store.Get(ctx, key)
}

// partitionSize returns the number and bytes of the .parquet objects of a
// partition of a table.
func partitionSize(t *testing.T, st store.Store, table, partition string) (files int, size int64) {
	t.Helper()
	err := st.List(context.Background(), keys.LakePartitionPrefix(table, partition), func(o store.Info) error {
		if path.Ext(o.Key) == keys.ExtParquet {
			files++
			size += o.Size
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files, size
}

// TestFileCountReduction compacts an hour as the pipeline writes it: two
// streams of one agent cut every 10 s (720 segments), each segment
// writing its HTTP exchanges and its parse_status row as files of their
// own. It reports files, bytes and the requests of a reader of the hour
// before and after.
func TestFileCountReduction(t *testing.T) {
	ctx := context.Background()
	streams, perStream, perSeg := 2, 360, 40
	if testing.Short() {
		perStream = 60
	}
	mem := store.NewMem()
	id := 0
	for s := range streams {
		for seq := range perStream {
			name := fmt.Sprintf("seg-a1-%d-%020d", s, seq)
			w := lake.NewWriter(lake.StoreSink{Store: mem}, lake.Options{Name: name})
			segStart := hour7.Add(time.Duration(seq) * 10 * time.Second)
			for range perSeg {
				r := httpRow(hour7, id)
				r.TS = segStart.Add(time.Duration(id%10_000) * time.Millisecond).UnixMicro()
				w.HTTP.Add(r)
				id++
			}
			w.ParseStatus.Add(schema.ParseStatus{TS: segStart.UnixMicro(), TSEnd: segStart.Add(10 * time.Second).UnixMicro(), Agent: "a1",
				Stream: int32(s), Seq: int64(seq), Input: name, Packets: 4000, HTTPExchanges: int64(perSeg), Status: "ok"})
			if _, err := w.Close(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	segs := streams * perStream
	type size struct {
		files       int
		bytes       int64
		lists, gets int64
	}
	measure := func() map[string]size {
		out := map[string]size{}
		for _, table := range []string{schema.TableHTTP, schema.TableParseStatus} {
			f, b := partitionSize(t, mem, table, part7)
			cs := &countingStore{Store: mem}
			files, err := lake.ListFiles(ctx, cs, table, hour7.UnixMicro(), hour8.UnixMicro())
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range files {
				rc, err := cs.Get(ctx, k)
				if err != nil {
					t.Fatal(err)
				}
				rc.Close()
			}
			out[table] = size{f, b, cs.lists.Load(), cs.gets.Load()}
		}
		return out
	}
	before := measure()

	clk := &clock{t: time.Now()}
	c, err := New(Config{Store: mem, Grace: testGrace, Now: clk.now})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	rep, err := c.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	for range 4 { // deletions, forgetting, old manifests
		clk.advance(testGrace + time.Second)
		if _, err := c.Run(ctx); err != nil {
			t.Fatal(err)
		}
	}
	after := measure()

	for _, table := range []string{schema.TableHTTP, schema.TableParseStatus} {
		b, a := before[table], after[table]
		t.Logf("%-12s %4d files %8.1f KiB, reader %d list + %3d get  ->  %d file %8.1f KiB, reader %d list + %d get",
			table, b.files, float64(b.bytes)/1024, b.lists, b.gets, a.files, float64(a.bytes)/1024, a.lists, a.gets)
		if b.files != segs || a.files != 1 || a.gets != 2 || b.gets != int64(segs) || a.bytes >= b.bytes {
			t.Errorf("%s: %+v -> %+v, want %d files -> 1 smaller file read with 2 gets (manifest, data)", table, b, a, segs)
		}
		if !isSettledTable(ctx, mem, table, part7) {
			t.Errorf("%s not settled", table)
		}
	}
	t.Logf("first run: %d partitions merged in %v", len(rep.Partitions), took.Round(time.Millisecond))
}

// isSettledTable is isSettled for any table.
func isSettledTable(ctx context.Context, st store.Store, table, partition string) bool {
	p, err := lake.ReadPartition(ctx, st, table, partition)
	return err == nil && p.Manifest != nil && len(p.Manifests) == 1 && len(p.Manifest.Replaces) == 0 && len(p.Dead) == 0 && len(p.Live) == len(p.Manifest.Files)
}
