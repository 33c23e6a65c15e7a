package query

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	_ "github.com/marcboeker/go-duckdb"

	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/pipeline"
	"github.com/flowlake/flowlake/internal/pipeline/pipelinetest"
	"github.com/flowlake/flowlake/internal/report"
	"github.com/flowlake/flowlake/internal/store"
)

// The test lake: two shared captures, each cut into segments of its own
// agent and run through the pipeline (ingest → parse → lake), so that the
// lake, the raw segments behind pcap export and the capture status are
// what a deployment holds. Agent "a" saw captureA, agent "b" captureB.
const (
	captureA = "zeek-http-bro.org.pcap"
	captureB = "zeek-http-methods.pcap"
)

var (
	lakeOnce sync.Once
	lakeDir  string // a built lake, copied by each test
	lakeErr  error
)

// testLake returns a fresh copy of the test lake in a local store.
func testLake(t *testing.T) *store.Local {
	t.Helper()
	lakeOnce.Do(func() {
		lakeDir, lakeErr = os.MkdirTemp("", "flowlake-query-lake-")
		if lakeErr != nil {
			return
		}
		lakeErr = buildLake(t, lakeDir)
	})
	if lakeErr != nil {
		t.Fatalf("build the test lake: %v", lakeErr)
	}
	dir := t.TempDir()
	if err := os.CopyFS(dir, os.DirFS(lakeDir)); err != nil {
		t.Fatal(err)
	}
	st, err := store.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	return st
}

func buildLake(t *testing.T, dir string) error {
	st, err := store.NewLocal(dir)
	if err != nil {
		return err
	}
	ctx := t.Context()
	p := pipeline.New(pipeline.Config{Store: st, WaitPredecessor: time.Second})
	for agent, capture := range map[string]string{"a": captureA, "b": captureB} {
		segs := pipelinetest.CutAs(t, agent, capture, 64<<10)
		pipelinetest.Upload(t, st, segs)
		for _, s := range segs {
			if err := p.Ingest(ctx, s.Key); err != nil {
				return fmt.Errorf("ingest %s: %w", s.Key, err)
			}
		}
		if err := p.FlushStream(ctx, keys.Stream{Agent: agent, Stream: 0}, uint64(len(segs)-1)); err != nil {
			return err
		}
		// Two status reports of the agent, at its first and last segment.
		for i, seg := range []pipelinetest.Segment{segs[0], segs[len(segs)-1]} {
			ts := time.Unix(0, seg.Meta.LastTS).UTC()
			rep := report.Status{Version: report.Version, Agent: agent, Time: ts, Interface: "eth0",
				Streams: []report.Stream{{Stream: 0, Captured: int64(100 * (i + 1)), Dropped: int64(i), SegmentsUploaded: int64(i + 1)}}}
			b, _ := json.Marshal(rep)
			key := keys.Status(agent, ts)
			if err := st.Put(ctx, key, bytes.NewReader(b), int64(len(b))); err != nil {
				return err
			}
			if err := p.Ingest(ctx, key); err != nil {
				return fmt.Errorf("ingest %s: %w", key, err)
			}
		}
	}
	return nil
}

// duck opens DuckDB over the lake of st.
func duck(t *testing.T, st *store.Local) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	for _, table := range []string{"http", "tcp"} {
		q := fmt.Sprintf(`CREATE VIEW %s AS SELECT * FROM read_parquet('%s', hive_partitioning = true, union_by_name = true)`,
			table, filepath.Join(st.Dir(), "lake", table, "*", "*", "*.parquet"))
		if _, err := db.Exec(q); err != nil {
			t.Fatal(err)
		}
	}
	return db
}

// strings1 runs a query of one string column.
func strings1(t *testing.T, db *sql.DB, q string, args ...any) []string {
	t.Helper()
	rows, err := db.Query(q, args...)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// lakeWindow is a window that holds every row of the test lake.
func lakeWindow(t *testing.T, db *sql.DB) (from, to time.Time) {
	t.Helper()
	var lo, hi time.Time
	if err := db.QueryRow(`SELECT min(ts), max(ts_end) FROM http`).Scan(&lo, &hi); err != nil {
		t.Fatal(err)
	}
	return lo.Add(-time.Hour).UTC().Truncate(time.Second), hi.Add(time.Hour).UTC().Truncate(time.Second)
}
