package query

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowlake/flowlake/internal/lake"
	"github.com/flowlake/flowlake/internal/store"
	"github.com/flowlake/flowlake/schema"
)

// benchSpec is the lake of `make bench-query`: 10 million HTTP exchanges
// over 24 hours (plus their TCP connections, TLS-only connections, DNS
// queries, status rows and the edges_1m rollup), written through the lake
// writer one hour at a time.
func benchSpec() synthSpec {
	rows := 10_000_000
	if v := os.Getenv("FLOWLAKE_BENCH_ROWS"); v != "" {
		if n, err := strconv.Atoi(v); err == nil && n > 0 {
			rows = n
		}
	}
	return synthSpec{Start: time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC), Hours: 24, HTTPRows: rows,
		Agents: 4, Clients: 200, Servers: 40, Seed: 42, Bodies: true}
}

// benchLake returns the cached bench lake, building it first if needed.
func benchLake(t *testing.T, spec synthSpec) string {
	b, _ := json.Marshal(spec)
	sum := sha256.Sum256(append(b, []byte("v3")...))
	dir := filepath.Join(os.TempDir(), "flowlake-bench-query", hex.EncodeToString(sum[:6]))
	done := filepath.Join(dir, "done")
	if _, err := os.Stat(done); err == nil {
		return dir
	}
	os.RemoveAll(dir)
	t.Logf("building the bench lake (%d HTTP rows over %d hours) in %s", spec.HTTPRows, spec.Hours, dir)
	start := time.Now()
	if err := synthLake(context.Background(), lake.DirSink{Root: dir}, spec); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(done, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("built in %s", time.Since(start).Round(time.Second))
	return dir
}

// TestBenchQuery times the engine against DuckDB (the same files, the
// equivalent SQL, in the same run) and prints a table. It runs only with
// FLOWLAKE_BENCH_QUERY=1 (make bench-query); FLOWLAKE_BENCH_PROFILE=DIR
// writes a CPU profile per engine query.
func TestBenchQuery(t *testing.T) {
	if os.Getenv("FLOWLAKE_BENCH_QUERY") == "" {
		t.Skip("set FLOWLAKE_BENCH_QUERY=1 (make bench-query) to run the query benchmark")
	}
	if os.Getenv("GOGC") == "" {
		// As the flowlake binary runs (cmd/flowlake sets the same target).
		defer debug.SetGCPercent(debug.SetGCPercent(400))
	}
	spec := benchSpec()
	dir := benchLake(t, spec)
	ctx := context.Background()
	st, err := store.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	eng, err := New(st, Options{})
	if err != nil {
		t.Fatal(err)
	}
	rawEng, err := New(st, Options{NoRollups: true})
	if err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	root := filepath.Join(dir, "lake")
	for i, stmt := range schema.DuckDBViews(root) {
		if _, err := os.Stat(filepath.Join(root, schema.Tables[i])); err != nil {
			continue // no rows of that table (tls)
		}
		if _, err := db.Exec(stmt); err != nil {
			t.Fatal(err)
		}
	}
	var threads string
	_ = db.QueryRow(`SELECT current_setting('threads')`).Scan(&threads)

	from, to := spec.Start, spec.Start.Add(time.Duration(spec.Hours)*time.Hour)
	fu, tu := from.UnixMicro(), to.UnixMicro()
	win := fmt.Sprintf("ts >= make_timestamp(%d) AND ts < make_timestamp(%d)", fu, tu)
	mapSQL := func(httpWhere string, withOthers bool) string {
		others := ""
		if withOthers {
			others = fmt.Sprintf(`
			UNION ALL SELECT client_ip, server_ip, CASE WHEN app_protocol IN ('tls', 'https', 'h2') THEN 'tls' ELSE 'tcp' END, close = 'rst', bytes_c2s + bytes_s2c, duration_us
			  FROM tcp WHERE %[1]s AND http_exchanges = 0 AND app_protocol <> 'dns'
			UNION ALL SELECT client_ip, server_ip, 'dns', NOT responded OR rcode <> 'NOERROR', 0, CASE WHEN responded THEN latency_us END
			  FROM dns WHERE %[1]s`, win)
		}
		return fmt.Sprintf(`SELECT client_ip, server_ip, p, count(*), sum(e::BIGINT), sum(b), quantile_disc(d, 0.5), quantile_disc(d, 0.95) FROM (
			SELECT client_ip, server_ip, 'http' AS p, status >= 500 OR status = 0 OR error <> '' AS e, req_body_bytes + resp_body_bytes AS b, duration_us AS d
			  FROM http WHERE %s AND (%s)%s) GROUP BY ALL`, win, httpWhere, others)
	}
	timelineSQL := func(step int64) string {
		return fmt.Sprintf(`SELECT floor(epoch_us(ts) / %[2]d)::BIGINT AS k, count(*), sum(e::BIGINT), quantile_disc(d, 0.5), quantile_disc(d, 0.95) FROM (
			SELECT ts, status >= 500 OR status = 0 OR error <> '' AS e, duration_us AS d FROM http WHERE %[1]s
			UNION ALL SELECT ts, close = 'rst', duration_us FROM tcp WHERE %[1]s AND http_exchanges = 0 AND app_protocol <> 'dns'
			UNION ALL SELECT ts, NOT responded OR rcode <> 'NOERROR', CASE WHEN responded THEN latency_us END FROM dns WHERE %[1]s) GROUP BY k`, win, step)
	}
	searchSQL := func(where string) string {
		return fmt.Sprintf(`SELECT %s FROM http WHERE %s AND (%s) ORDER BY ts DESC, id DESC LIMIT 101`,
			strings.Join(summaryColumns, ", "), win, where)
	}
	var someID string
	var someTS int64
	if err := db.QueryRow(`SELECT id, epoch_us(ts) FROM http WHERE `+win+` ORDER BY id LIMIT 1 OFFSET 12345`).Scan(&someID, &someTS); err != nil {
		t.Fatal(err)
	}
	req := func(q string) Request { return Request{From: from, To: to, Q: q, Limit: 100} }
	type bench struct {
		name   string
		engine func() (int, error)
		sql    string
	}
	benches := []bench{
		{"map 24h, q empty (rollups)", func() (int, error) { m, err := eng.Map(ctx, req("")); return len(m.Edges), err }, mapSQL("true", true)},
		{"map 24h, q empty (raw rows, rollups off)", func() (int, error) { m, err := rawEng.Map(ctx, req("")); return len(m.Edges), err }, mapSQL("true", true)},
		{"map 24h, q `server = svc-03.internal` (rollups)", func() (int, error) {
			m, err := eng.Map(ctx, req(`server = svc-03.internal`))
			return len(m.Edges), err
		}, mapSQL("server_ip = 'svc-03.internal' OR server_name = 'svc-03.internal'", false)},
		{"map 24h, q `status >= 500` (raw rows)", func() (int, error) { m, err := eng.Map(ctx, req(`status >= 500`)); return len(m.Edges), err }, mapSQL("status >= 500", false)},
		{"timeline 24h, step 10m (rollups)", func() (int, error) { tl, err := eng.Timeline(ctx, req("")); return len(tl.Buckets), err }, timelineSQL(600_000_000)},
		{"timeline 24h, step 10m (raw rows, rollups off)", func() (int, error) { tl, err := rawEng.Timeline(ctx, req("")); return len(tl.Buckets), err }, timelineSQL(600_000_000)},
		{"search 24h `host = svc-07.example and status >= 500`, newest 100", func() (int, error) {
			p, err := eng.Communications(ctx, req(`host = "svc-07.example" and status >= 500`))
			return len(p.Items), err
		}, searchSQL(`host = 'svc-07.example' AND status >= 500`)},
		{"search 24h rare `path ~ ^/api/v2/payments/4999$ and method = DELETE`", func() (int, error) {
			p, err := eng.Communications(ctx, req(`path ~ "^/api/v2/payments/4999$" and method = DELETE`))
			return len(p.Items), err
		}, searchSQL(`regexp_matches(path, '^/api/v2/payments/4999$') AND method = 'DELETE'`)},
		{"search 24h `status = 503 and duration > 20ms`, newest 100", func() (int, error) {
			p, err := eng.Communications(ctx, req(`status = 503 and duration > 20ms`))
			return len(p.Items), err
		}, searchSQL(`status = 503 AND duration_us > 20000`)},
		{"detail by id (whole lake, newest first)", func() (int, error) {
			d, err := eng.Communication(ctx, someID, nil, time.Time{})
			if err != nil {
				return 0, err
			}
			return len(d.ReqHeaders), nil
		}, fmt.Sprintf(`SELECT * FROM http WHERE id = '%s'`, someID)},
		{"detail by id, hinted with its ts (list/UI path)", func() (int, error) {
			d, err := eng.Communication(ctx, someID, nil, time.UnixMicro(someTS))
			if err != nil {
				return 0, err
			}
			return len(d.ReqHeaders), nil
		}, fmt.Sprintf(`SELECT * FROM http WHERE id = '%s' AND ts BETWEEN make_timestamp(%d) AND make_timestamp(%d)`,
			someID, someTS-HintSlack.Microseconds(), someTS+HintSlack.Microseconds())},
	}
	runs := 7
	if v := os.Getenv("FLOWLAKE_BENCH_RUNS"); v != "" {
		runs, _ = strconv.Atoi(v)
	}
	profDir := os.Getenv("FLOWLAKE_BENCH_PROFILE")
	var out strings.Builder
	fmt.Fprintf(&out, "\nflowlake query engine vs DuckDB — %d HTTP rows over %dh, %d CPUs (DuckDB threads=%s), best of %d runs, same run\n\n",
		spec.HTTPRows, spec.Hours, runtime.GOMAXPROCS(0), threads, runs)
	fmt.Fprintf(&out, "| query | flowlake ms | DuckDB ms | flowlake/DuckDB | rows |\n|---|---:|---:|---:|---:|\n")
	for i, b := range benches {
		var et, dt []time.Duration
		n := 0
		for r := range runs {
			if profDir != "" && r == runs-1 {
				f, err := os.Create(filepath.Join(profDir, fmt.Sprintf("query-%02d.pprof", i)))
				if err != nil {
					t.Fatal(err)
				}
				_ = pprof.StartCPUProfile(f)
				defer f.Close()
			}
			s := time.Now()
			k, err := b.engine()
			et = append(et, time.Since(s))
			if profDir != "" && r == runs-1 {
				pprof.StopCPUProfile()
			}
			if err != nil {
				t.Fatalf("%s: %v", b.name, err)
			}
			n = k
			s = time.Now()
			rows, err := db.Query(b.sql)
			if err != nil {
				t.Fatalf("%s: %v\n%s", b.name, err, b.sql)
			}
			for rows.Next() {
			}
			rows.Close()
			dt = append(dt, time.Since(s))
		}
		e, d := slices.Min(et), slices.Min(dt)
		fmt.Fprintf(&out, "| %s | %.1f | %.1f | %.2f | %d |\n", b.name, ms(e), ms(d), float64(e)/float64(d), n)
	}
	fmt.Print(out.String())
	_ = os.WriteFile(filepath.Join(filepath.Dir(dir), "results.md"), []byte(out.String()), 0o644)
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
