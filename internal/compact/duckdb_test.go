package compact

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/marcboeker/go-duckdb"

	"github.com/flowlake/flowlake/internal/lake"
	"github.com/flowlake/flowlake/internal/store"
	"github.com/flowlake/flowlake/schema"
)

// duckCols are the columns compared between DuckDB and the rows written.
const duckCols = "id, epoch_us(ts), epoch_us(ts_end), client_port, tcp_id, seq, method, uri, status, req_headers, resp_body, complete, strftime(dt, '%Y-%m-%d'), hour"

// duckRow renders one written row as DuckDB returns duckCols.
func duckRow(r schema.HTTP) string {
	t := time.UnixMicro(r.TS).UTC()
	return join(r.ID, r.TS, r.TSEnd, r.ClientPort, r.TCPID, r.Seq, r.Method, r.URI, r.Status, r.ReqHeaders, r.RespBody, r.Complete,
		t.Format(time.DateOnly), t.Hour())
}

// join renders values separated by |.
func join(vals ...any) string {
	s := make([]string, len(vals))
	for i, v := range vals {
		s[i] = fmt.Sprint(v)
	}
	return strings.Join(s, "|")
}

// duckRows runs a query returning duckCols, ordered by id.
func duckRows(t *testing.T, db *sql.DB, from string) []string {
	t.Helper()
	rs, err := db.Query(fmt.Sprintf("SELECT %s FROM %s ORDER BY id, hour", duckCols, from))
	if err != nil {
		t.Fatalf("query %s: %v", from, err)
	}
	defer rs.Close()
	var out []string
	for rs.Next() {
		var id, tcpID, method, uri, reqHeaders, respBody, dt string
		var ts, tsEnd int64
		var port, seq, status, hour int32
		var complete bool
		if err := rs.Scan(&id, &ts, &tsEnd, &port, &tcpID, &seq, &method, &uri, &status, &reqHeaders, &respBody, &complete, &dt, &hour); err != nil {
			t.Fatal(err)
		}
		out = append(out, join(id, ts, tsEnd, port, tcpID, seq, method, uri, status, reqHeaders, respBody, complete, dt, hour))
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestDuckDB reads a compacted lake with DuckDB: the plain glob of
// DESIGN.md gives exactly the rows written before compaction and once the
// replaced files are deleted, and replaced rows twice in between; the
// protocol reader (ListFiles, or lake.DuckDBQuery in SQL) is exact
// throughout.
func TestDuckDB(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	segs := slices.Concat(segments(hour7, 0, 30, 15, 0), segments(hour8, 0, 5, 15, 10_000))
	writeAll(t, st, segs...)
	var want []string
	for _, r := range wantRows(segs...) {
		want = append(want, duckRow(r))
	}
	slices.Sort(want) // ids are unique and sort as DuckDB orders them

	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	lakeRoot := filepath.ToSlash(filepath.Join(dir, "lake"))
	glob := fmt.Sprintf("read_parquet('%s', hive_partitioning=true)", schema.Glob(lakeRoot, schema.TableHTTP))
	protocol := "(" + lake.DuckDBQuery(lakeRoot, schema.TableHTTP) + ")"
	listed := func() string { // the Go reader protocol, handing DuckDB the file list
		files, err := lake.ListFiles(ctx, st, schema.TableHTTP, hour7.UnixMicro(), hour8.Add(time.Hour).UnixMicro())
		if err != nil {
			t.Fatal(err)
		}
		for i, f := range files {
			files[i] = "'" + filepath.ToSlash(filepath.Join(dir, f)) + "'"
		}
		return fmt.Sprintf("read_parquet([%s], hive_partitioning=true)", strings.Join(files, ", "))
	}
	check := func(stage, from string, want []string) {
		t.Helper()
		if got := duckRows(t, db, from); !slices.Equal(got, want) {
			t.Errorf("%s: %s gives %d rows, want %d (first: %.200q)", stage, from[:min(len(from), 60)], len(got), len(want), got[:min(len(got), 1)])
		}
	}

	check("before compaction", glob, want)
	check("before compaction", listed(), want)

	clk := &clock{t: time.Now()}
	c := newCompactor(t, st, clk)
	run(t, c)
	twice := slices.Sorted(slices.Values(slices.Concat(want, want)))
	check("within the grace period", glob, twice)
	check("within the grace period", listed(), want)
	check("within the grace period", protocol, want)

	clk.advance(testGrace + time.Second)
	if r := result(t, run(t, c), part7); r.Deleted != 30 {
		t.Fatalf("deleting step %+v", r)
	}
	check("after the deletion", glob, want)
	check("after the deletion", protocol, want)
	for range 3 { // forget, then remove old manifests
		clk.advance(testGrace + time.Second)
		run(t, c)
	}
	if !isSettled(ctx, st, part7) || !isSettled(ctx, st, part8) {
		t.Fatal("lake not settled")
	}
	check("settled", glob, want)
	check("settled", listed(), want)
	check("settled", protocol, want)
}
