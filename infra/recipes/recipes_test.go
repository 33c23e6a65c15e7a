package recipes

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"flag"
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	_ "github.com/marcboeker/go-duckdb"

	"github.com/flowlake/flowlake/internal/compact"
	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/lake"
	"github.com/flowlake/flowlake/internal/pipeline"
	"github.com/flowlake/flowlake/internal/pipeline/pipelinetest"
	"github.com/flowlake/flowlake/internal/report"
	"github.com/flowlake/flowlake/internal/store"
	"github.com/flowlake/flowlake/internal/store/miniotest"
	"github.com/flowlake/flowlake/schema"
)

var update = flag.Bool("update", false, "rewrite the generated recipes (views.sql, exact-read.sql, athena/ddl.sql)")

// recipeLake is the lake path the DuckDB recipes are written for: the
// output of `make demo`, run from the repository root.
const recipeLake = "flowlake-data/lake"

// athenaLake is the placeholder location of the generated Athena DDL.
const athenaLake = "s3://YOUR-BUCKET/lake"

// testCapture is the shared capture the test lake is made of.
const testCapture = "bench-mixed-web-24mb.pcap"

// statusTime is the time of the status report of the test lake.
var statusTime = time.Date(2024, 1, 1, 0, 30, 0, 0, time.UTC)

// testLake is a lake made by the pipeline from testCapture (segments of
// 8 MiB, ingested and parsed in order, the stream flushed) and one agent
// status report, with its rows read back by parquet-go.
type testLake struct {
	dir  string // the store's directory; the lake is dir/lake
	st   store.Store
	http []schema.HTTP
	tcp  []schema.TCP
	dns  []schema.DNS
	tls  []schema.TLS
	ps   []schema.ParseStatus
}

func buildLake(t *testing.T) *testLake {
	t.Helper()
	segs := pipelinetest.Cut(t, testCapture, 8<<20)
	dir := t.TempDir()
	st, err := store.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	pipelinetest.Upload(t, st, segs)
	rep, err := json.Marshal(report.Status{Version: report.Version, Agent: pipelinetest.Agent, Time: statusTime, Interface: "eth0",
		Streams: []report.Stream{{Stream: 0, Captured: 42201, Dropped: 7, SegmentsUploaded: int64(len(segs))}}})
	if err != nil {
		t.Fatal(err)
	}
	statusKey := keys.Status(pipelinetest.Agent, statusTime)
	if err := st.Put(t.Context(), statusKey, bytes.NewReader(rep), int64(len(rep))); err != nil {
		t.Fatal(err)
	}
	p := pipeline.New(pipeline.Config{Store: st})
	for _, s := range segs {
		if err := p.Ingest(t.Context(), s.Key); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Ingest(t.Context(), statusKey); err != nil {
		t.Fatal(err)
	}
	if err := p.FlushStream(t.Context(), pipelinetest.Stream, uint64(len(segs)-1)); err != nil {
		t.Fatal(err)
	}
	l := &testLake{dir: dir, st: st,
		http: pipelinetest.ReadTable[schema.HTTP](t, st, schema.TableHTTP),
		tcp:  pipelinetest.ReadTable[schema.TCP](t, st, schema.TableTCP),
		dns:  pipelinetest.ReadTable[schema.DNS](t, st, schema.TableDNS),
		tls:  pipelinetest.ReadTable[schema.TLS](t, st, schema.TableTLS),
		ps:   pipelinetest.ReadTable[schema.ParseStatus](t, st, schema.TableParseStatus),
	}
	if len(l.http) == 0 || len(l.tcp) == 0 || len(l.dns) == 0 || len(l.tls) == 0 {
		t.Fatalf("test lake: %d http, %d tcp, %d dns, %d tls rows", len(l.http), len(l.tcp), len(l.dns), len(l.tls))
	}
	t.Logf("test lake from %d segments: %d http, %d tcp, %d dns, %d tls rows", len(segs), len(l.http), len(l.tcp), len(l.dns), len(l.tls))
	return l
}

func openDuckDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1) // views, secrets and settings live on the one connection
	t.Cleanup(func() { db.Close() })
	return db
}

// readRecipe returns a recipe with its lake path replaced by lakeRoot.
func readRecipe(t *testing.T, name, lakeRoot string) string {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(b, []byte(recipeLake)) {
		t.Fatalf("%s does not read %s", name, recipeLake)
	}
	return strings.ReplaceAll(string(b), "'"+recipeLake, "'"+lakeRoot)
}

// query runs q and returns its rows, each cell formatted by cell.
func query(t *testing.T, db *sql.DB, q string) [][]string {
	t.Helper()
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%v\n%s", err, q)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out [][]string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		row := make([]string, len(cols))
		for i, v := range vals {
			row[i] = cell(v)
		}
		out = append(out, row)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// cell formats a value the way the expectations do.
func cell(v any) string {
	switch x := v.(type) {
	case nil:
		return "NULL"
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case *big.Int:
		return x.String()
	default:
		return fmt.Sprint(x)
	}
}

func tsCell(us int64) string { return time.UnixMicro(us).UTC().Format(time.RFC3339Nano) }

// row formats cells.
func row(vals ...any) []string {
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = cell(v)
	}
	return out
}

func sortRows(rows [][]string) [][]string {
	rows = slices.Clone(rows)
	sort.Slice(rows, func(i, j int) bool { return strings.Join(rows[i], "\x00") < strings.Join(rows[j], "\x00") })
	return rows
}

func checkRows(t *testing.T, name string, got, want [][]string, ordered bool) {
	t.Helper()
	if len(want) == 0 {
		t.Fatalf("%s: the expectation is empty: the test lake does not exercise the recipe", name)
	}
	if !ordered {
		got, want = sortRows(got), sortRows(want)
	}
	if len(got) != len(want) {
		t.Errorf("%s: %d rows, want %d\n got %v\nwant %v", name, len(got), len(want), head(got), head(want))
		return
	}
	for i := range want {
		if !slices.Equal(got[i], want[i]) {
			t.Errorf("%s: row %d is %v, want %v", name, i, got[i], want[i])
			return
		}
	}
}

func head(rows [][]string) [][]string { return rows[:min(len(rows), 5)] }

// expectations computes, from the rows parquet-go read, what each DuckDB
// recipe must return; ordered tells whether the order is part of it.
func expectations(l *testLake) map[string]struct {
	rows    [][]string
	ordered bool
} {
	type exp = struct {
		rows    [][]string
		ordered bool
	}
	out := map[string]exp{}

	// http-errors.sql
	type cnt struct {
		key []any
		n   int64
	}
	errs := map[string]*cnt{}
	for _, h := range l.http {
		if h.Status >= 400 {
			k := fmt.Sprint(h.ServerName, "\x00", h.ServerIP, "\x00", h.Status)
			if errs[k] == nil {
				errs[k] = &cnt{key: []any{h.ServerName, h.ServerIP, h.Status}}
			}
			errs[k].n++
		}
	}
	var rows [][]string
	for _, c := range errs {
		rows = append(rows, row(append(c.key, c.n)...))
	}
	out["http-errors.sql"] = exp{rows, false}

	// slowest-requests.sql
	var done []schema.HTTP
	for _, h := range l.http {
		if h.Complete && h.Status > 0 {
			done = append(done, h)
		}
	}
	sort.Slice(done, func(i, j int) bool {
		if done[i].DurationUS != done[j].DurationUS {
			return done[i].DurationUS > done[j].DurationUS
		}
		return done[i].ID < done[j].ID
	})
	rows = nil
	for _, h := range done[:min(10, len(done))] {
		rows = append(rows, row(tsCell(h.TS), h.ClientIP, h.ServerName, h.ServerIP, h.Method, h.Path, h.Status, h.DurationUS))
	}
	out["slowest-requests.sql"] = exp{rows, true}

	// service-map.sql
	type edge struct {
		key                []any
		requests, failures int64
		maxDur             int64
		seen               bool
	}
	edges := map[string]*edge{}
	for _, h := range l.http {
		k := fmt.Sprint(h.ClientIP, "\x00", h.ServerIP, "\x00", h.ServerPort)
		e := edges[k]
		if e == nil {
			e = &edge{key: []any{h.ClientIP, h.ServerIP, h.ServerPort}}
			edges[k] = e
		}
		e.requests++
		if h.Status >= 500 || h.Status == 0 {
			e.failures++
		}
		if !e.seen || h.DurationUS > e.maxDur {
			e.maxDur, e.seen = h.DurationUS, true
		}
	}
	rows = nil
	for _, e := range edges {
		rows = append(rows, row(append(e.key, e.requests, e.failures, e.maxDur)...))
	}
	out["service-map.sql"] = exp{rows, false}

	// requests-per-hour.sql
	hours := map[int32]int64{}
	for _, h := range l.http {
		tm := time.UnixMicro(h.TS).UTC()
		if tm.Format("2006-01-02") == "2024-01-01" {
			hours[int32(tm.Hour())]++
		}
	}
	rows = nil
	for _, hr := range slices.Sorted(mapKeys(hours)) {
		rows = append(rows, row("2024-01-01T00:00:00Z", hr, hours[hr]))
	}
	out["requests-per-hour.sql"] = exp{rows, true}

	// tcp-quality.sql
	type q struct {
		key                  []any
		conns, miss, retrans int64
	}
	qs := map[string]*q{}
	for _, c := range l.tcp {
		if c.MissingBytes > 0 || c.Retrans > 0 {
			k := fmt.Sprint(c.ServerIP, "\x00", c.ServerPort)
			if qs[k] == nil {
				qs[k] = &q{key: []any{c.ServerIP, c.ServerPort}}
			}
			qs[k].conns++
			qs[k].miss += c.MissingBytes
			qs[k].retrans += c.Retrans
		}
	}
	rows = nil
	for _, v := range qs {
		rows = append(rows, row(append(v.key, v.conns, v.miss, v.retrans)...))
	}
	out["tcp-quality.sql"] = exp{rows, false}

	// dns-failures.sql
	fails := map[string]*cnt{}
	for _, d := range l.dns {
		if d.Responded && d.RCode == "NOERROR" {
			continue
		}
		outcome := d.RCode
		if !d.Responded {
			outcome = "no answer"
		}
		k := fmt.Sprint(d.Query, "\x00", d.QType, "\x00", outcome)
		if fails[k] == nil {
			fails[k] = &cnt{key: []any{d.Query, d.QType, outcome}}
		}
		fails[k].n++
	}
	rows = nil
	for _, c := range fails {
		rows = append(rows, row(append(c.key, c.n)...))
	}
	out["dns-failures.sql"] = exp{rows, false}

	// tls-versions.sql
	type ver struct {
		n    int64
		snis map[string]bool
	}
	vers := map[string]*ver{}
	for _, h := range l.tls {
		if vers[h.Version] == nil {
			vers[h.Version] = &ver{snis: map[string]bool{}}
		}
		vers[h.Version].n++
		vers[h.Version].snis[h.SNI] = true
	}
	rows = nil
	for v, s := range vers {
		rows = append(rows, row(v, s.n, int64(len(s.snis))))
	}
	out["tls-versions.sql"] = exp{rows, false}

	// parse-health.sql
	type health struct {
		key                              []any
		segs, gaps, errs, packets, bytes int64
	}
	hs := map[string]*health{}
	for _, p := range l.ps {
		k := fmt.Sprint(p.Agent, "\x00", p.Stream)
		if hs[k] == nil {
			hs[k] = &health{key: []any{p.Agent, p.Stream}}
		}
		v := hs[k]
		v.segs++
		if p.Gap {
			v.gaps++
		}
		if p.Status == "error" {
			v.errs++
		}
		v.packets += p.Packets
		v.bytes += p.Bytes
	}
	rows = nil
	for _, v := range hs {
		rows = append(rows, row(append(v.key, v.segs, v.gaps, v.errs, v.packets, v.bytes)...))
	}
	out["parse-health.sql"] = exp{rows, false}
	return out
}

func mapKeys[K comparable, V any](m map[K]V) func(func(K) bool) {
	return func(yield func(K) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

// TestDuckDBRecipes runs every DuckDB recipe of duckdb/ against a lake the
// pipeline made, and compares its result with the same question answered
// in Go from the rows parquet-go reads.
func TestDuckDBRecipes(t *testing.T) {
	l := buildLake(t)
	lakeRoot := filepath.ToSlash(filepath.Join(l.dir, "lake"))
	db := openDuckDB(t)
	exp := expectations(l)
	names, err := filepath.Glob("duckdb/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	ran := map[string]bool{}
	for _, name := range names {
		base := filepath.Base(name)
		switch base {
		case "minio.sql", "views.sql", "exact-read.sql":
			continue // TestDuckDBS3Recipe, TestDuckDBViews
		}
		e, ok := exp[base]
		if !ok {
			t.Errorf("%s has no expectation in this test", name)
			continue
		}
		ran[base] = true
		t.Run(base, func(t *testing.T) {
			got := query(t, db, readRecipe(t, name, lakeRoot))
			checkRows(t, base, got, e.rows, e.ordered)
		})
	}
	for name := range exp {
		if !ran[name] {
			t.Errorf("expectation for %s, but no such recipe", name)
		}
	}
}

// generated are the recipe files made from schema/ and internal/lake, and
// their content.
func generated() map[string]string {
	var views []string
	for _, v := range schema.DuckDBViews(recipeLake) {
		views = append(views, v+";")
	}
	var ddl []string
	for _, table := range schema.Tables {
		ddl = append(ddl, schema.AthenaDDL(table, athenaLake)+";")
	}
	return map[string]string{
		"duckdb/views.sql": "-- Generated from schema.DuckDBViews by `go test ./infra/recipes -update`. DO NOT EDIT.\n" +
			"-- A view per lake table of ./flowlake-data (make demo); replace the path for another lake.\n" +
			strings.Join(views, "\n") + "\n",
		"duckdb/exact-read.sql": "-- Generated from lake.DuckDBQuery by `go test ./infra/recipes -update`. DO NOT EDIT.\n" +
			"-- Every http row exactly once, also while `flowlake compact` replaces files\n" +
			"-- (it follows the partition manifests; see internal/compact/README.md).\n" +
			lake.DuckDBQuery(recipeLake, schema.TableHTTP) + ";\n",
		"athena/ddl.sql": "-- Generated from schema.AthenaDDL by `go test ./infra/recipes -update`. DO NOT EDIT.\n" +
			"-- The same tables as the Glue tables of infra/terraform/modules/aws, for Athena\n" +
			"-- without Terraform: replace YOUR-BUCKET, run each statement in a database.\n" +
			strings.Join(ddl, "\n\n") + "\n",
	}
}

// TestGeneratedRecipes checks that the generated recipes are up to date
// (-update rewrites them).
func TestGeneratedRecipes(t *testing.T) {
	for name, want := range generated() {
		if *update {
			if err := os.WriteFile(name, []byte(want), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != want {
			t.Errorf("%s is out of date: go test ./infra/recipes -update", name)
		}
	}
}

// TestDuckDBViews creates the views of views.sql on the test lake (those
// of tables the lake has files of) and checks their row counts, and runs
// exact-read.sql.
func TestDuckDBViews(t *testing.T) {
	l := buildLake(t)
	lakeRoot := filepath.ToSlash(filepath.Join(l.dir, "lake"))
	db := openDuckDB(t)
	counts := map[string]int{
		schema.TableHTTP: len(l.http), schema.TableTCP: len(l.tcp), schema.TableDNS: len(l.dns),
		schema.TableTLS: len(l.tls), schema.TableParseStatus: len(l.ps),
		schema.TableCaptureStatus: len(pipelinetest.ReadTable[schema.CaptureStatus](t, l.st, schema.TableCaptureStatus)),
	}
	views := readRecipe(t, "duckdb/views.sql", lakeRoot)
	for _, stmt := range strings.Split(views, ";\n") {
		stmt = strings.TrimSpace(stripComments(stmt))
		if stmt == "" {
			continue
		}
		table := strings.Fields(stmt)[4] // CREATE OR REPLACE VIEW <table> AS …
		want, ok := counts[table]
		if !ok || want == 0 {
			t.Logf("view %s: the test lake has no %s rows; not created", table, table)
			continue
		}
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("%v\n%s", err, stmt)
		}
		if got := query(t, db, "SELECT count(*) FROM "+table); got[0][0] != fmt.Sprint(want) {
			t.Errorf("view %s: %s rows, parquet-go reads %d", table, got[0][0], want)
		}
	}

	// Compact the http table: the replaced files stay for the grace
	// period, so a plain glob reads their rows twice; exact-read.sql reads
	// every row once.
	c, err := compact.New(compact.Config{Store: l.st, Tables: []string{schema.TableHTTP}})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := c.Run(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("compaction: %+v", rep)
	exact := query(t, db, "SELECT count(*) FROM ("+strings.TrimSuffix(strings.TrimSpace(stripComments(readRecipe(t, "duckdb/exact-read.sql", lakeRoot))), ";")+")")
	if exact[0][0] != fmt.Sprint(len(l.http)) {
		t.Errorf("exact-read.sql: %s rows, want %d", exact[0][0], len(l.http))
	}
	plain := query(t, db, "SELECT count(*) FROM http")
	if plain[0][0] == exact[0][0] {
		t.Errorf("after compaction the plain view reads %s rows, as many as exact-read.sql: the compaction replaced nothing", plain[0][0])
	}
	t.Logf("after compaction: plain glob %s rows, exact-read.sql %s", plain[0][0], exact[0][0])
}

func stripComments(s string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "--") {
			out = append(out, line)
		}
	}
	return strings.Join(out, "\n")
}

// TestAthenaQueries runs the Athena example queries under DuckDB, standing
// in for Athena (which cannot run here): the tables are views named
// flowlake.<table> over the test lake with dt and hour as strings, as
// partition projection declares them. It checks the names, the partition
// semantics and that every query returns rows; the requests per hour agree
// with the DuckDB recipe's.
func TestAthenaQueries(t *testing.T) {
	l := buildLake(t)
	lakeRoot := filepath.ToSlash(filepath.Join(l.dir, "lake"))
	db := openDuckDB(t)
	if _, err := db.Exec("ATTACH ':memory:' AS flowlake"); err != nil {
		t.Fatal(err)
	}
	for _, table := range schema.Tables {
		files, _ := filepath.Glob(filepath.Join(lakeRoot, table, "*", "*", "*.parquet"))
		if len(files) == 0 {
			continue
		}
		stmt := fmt.Sprintf("CREATE VIEW flowlake.%s AS SELECT * FROM read_parquet('%s', hive_partitioning = true, hive_types = {'dt': VARCHAR, 'hour': VARCHAR}, union_by_name = true)",
			table, schema.Glob(lakeRoot, table))
		if _, err := db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile("athena/queries.sql")
	if err != nil {
		t.Fatal(err)
	}
	var results [][][]string
	for _, stmt := range strings.Split(string(b), ";\n") {
		stmt = strings.TrimSpace(stripComments(stmt))
		if stmt == "" {
			continue
		}
		rows := query(t, db, stmt)
		if len(rows) == 0 {
			t.Errorf("no rows from\n%s", stmt)
		}
		results = append(results, rows)
	}
	if len(results) != 6 {
		t.Fatalf("%d Athena queries, want 6", len(results))
	}
	// Requests per hour: the same as requests-per-hour.sql, hours as
	// two-digit strings.
	var want [][]string
	for _, r := range expectations(l)["requests-per-hour.sql"].rows {
		var hr int
		fmt.Sscan(r[1], &hr)
		want = append(want, []string{fmt.Sprintf("%02d", hr), r[2]})
	}
	checkRows(t, "athena requests per hour", results[1], want, true)
	if got := results[5]; len(got) != 1 || got[0][0] != pipelinetest.Agent || got[0][1] != "7" {
		t.Errorf("capture_status query: %v, want agent %s with 7 kernel drops", got, pipelinetest.Agent)
	}
}

// TestDuckDBS3Recipe runs minio.sql against the test lake copied to a
// real MinIO, if DuckDB's httpfs extension can be installed (DuckDB
// downloads it from extensions.duckdb.org the first time).
func TestDuckDBS3Recipe(t *testing.T) {
	db := openDuckDB(t)
	if _, err := db.Exec("INSTALL httpfs; LOAD httpfs"); err != nil {
		t.Skipf("DuckDB's httpfs extension cannot be installed here (offline?), so the S3 form of the recipes is not run: %v", err)
	}
	l := buildLake(t)
	srv := miniotest.Start(t)
	err := l.st.List(t.Context(), keys.PrefixLake, func(info store.Info) error {
		rc, err := l.st.Get(context.Background(), info.Key)
		if err != nil {
			return err
		}
		defer rc.Close()
		var buf bytes.Buffer
		if _, err := buf.ReadFrom(rc); err != nil {
			return err
		}
		_, err = srv.Client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String(info.Key), Body: bytes.NewReader(buf.Bytes())})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile("duckdb/minio.sql")
	if err != nil {
		t.Fatal(err)
	}
	q := strings.NewReplacer(
		"'flowlake-query'", "'"+srv.AccessKey+"'",
		"'the-query-user-secret'", "'"+srv.SecretKey+"'",
		"'127.0.0.1:9000'", "'"+strings.TrimPrefix(srv.Endpoint, "http://")+"'",
		"s3://flowlake/", "s3://"+srv.Bucket+"/",
	).Replace(string(b))
	stmts := strings.Split(q, ";\n")
	for _, s := range stmts[:len(stmts)-2] {
		if s = strings.TrimSpace(stripComments(s)); s != "" {
			if _, err := db.Exec(s); err != nil {
				t.Fatalf("%v\n%s", err, s)
			}
		}
	}
	got := query(t, db, stmts[len(stmts)-2])
	checkRows(t, "minio.sql", got, expectations(l)["http-errors.sql"].rows, false)
}
