package query

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	_ "github.com/marcboeker/go-duckdb"

	"github.com/flowlake/flowlake/internal/engine"
	"github.com/flowlake/flowlake/internal/lake"
	"github.com/flowlake/flowlake/internal/store"
	"github.com/flowlake/flowlake/internal/store/miniotest"
	"github.com/flowlake/flowlake/internal/testcap"
	"github.com/flowlake/flowlake/schema"
)

// testLake is a lake built from the shared captures (through the parse
// engine, as flowlake parse writes it) and synthetic rows, read by both the
// engine and DuckDB.
type testLake struct {
	dir string
	st  store.Store
	db  *sql.DB
	// windows of data: the captures' and the synthetic rows'.
	capFrom, capTo     int64
	synthFrom, synthTo int64
}

var (
	lakeOnce sync.Once
	theLake  *testLake
	lakeErr  error
)

var synthTestStart = time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)

// captures parsed into the test lake, with their agent.
var testCaptures = []struct{ agent, file string }{
	{"cap-web", "bench-mixed-web-24mb.pcap"},
	{"cap-small", "ark-http-simple-get.pcap"},
	{"cap-small", "ark-dns-udp.pcap"},
	{"cap-small", "ark-http-post-upload.pcap"},
}

func buildTestLake(t *testing.T) *testLake {
	t.Helper()
	lakeOnce.Do(func() {
		dir, err := os.MkdirTemp("", "flowlake-query-test-")
		if err != nil {
			lakeErr = err
			return
		}
		theLake, lakeErr = makeTestLake(t, dir)
	})
	if lakeErr != nil {
		t.Fatal(lakeErr)
	}
	return theLake
}

func makeTestLake(t *testing.T, dir string) (*testLake, error) {
	ctx := context.Background()
	st, err := store.NewLocal(dir)
	if err != nil {
		return nil, err
	}
	byAgent := map[string][]string{}
	var order []string
	for _, c := range testCaptures {
		if _, ok := byAgent[c.agent]; !ok {
			order = append(order, c.agent)
		}
		byAgent[c.agent] = append(byAgent[c.agent], testcap.Path(t, c.file))
	}
	for _, agent := range order {
		w := lake.NewWriter(lake.StoreSink{Store: st}, lake.Options{Name: "run-" + agent, Agent: agent})
		sink := engine.LakeSink{W: w}
		if _, err := engine.ParseFiles(ctx, byAgent[agent], engine.Config{Agent: agent}, sink, sink, engine.FilesOptions{}); err != nil {
			return nil, fmt.Errorf("parse %s: %w", agent, err)
		}
		if _, err := w.Close(ctx); err != nil {
			return nil, err
		}
	}
	err = synthLake(ctx, lake.StoreSink{Store: st}, synthSpec{Start: synthTestStart, Hours: 3, HTTPRows: 150_000,
		Agents: 3, Clients: 60, Servers: 12, Seed: 7, Bodies: true})
	if err != nil {
		return nil, err
	}
	db, err := sql.Open("duckdb", "")
	if err != nil {
		return nil, err
	}
	for _, stmt := range schema.DuckDBViews(filepath.Join(dir, "lake")) {
		if _, err := db.Exec(stmt); err != nil {
			return nil, fmt.Errorf("%s: %w", stmt, err)
		}
	}
	l := &testLake{dir: dir, st: st, db: db}
	if err := db.QueryRow(`SELECT min(epoch_us(ts)), max(epoch_us(ts))+1 FROM http WHERE agent = 'cap-web'`).Scan(&l.capFrom, &l.capTo); err != nil {
		return nil, err
	}
	l.synthFrom = synthTestStart.UnixMicro()
	l.synthTo = synthTestStart.Add(3 * time.Hour).UnixMicro()
	return l, nil
}

func TestMain(m *testing.M) {
	code := m.Run()
	if theLake != nil {
		theLake.db.Close()
		os.RemoveAll(theLake.dir)
	}
	os.Exit(code)
}

func newTestEngine(t *testing.T, l *testLake, opts Options) *Engine {
	t.Helper()
	e, err := New(l.st, opts)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// filterCase is a filter with its SQL meaning per raw table (a table
// missing from sql is one the filter does not apply to).
type filterCase struct {
	q   string
	sql map[string]string
}

var filterCases = []filterCase{
	{"", map[string]string{"http": "true", "tcp": "true", "dns": "true"}},
	{`agent = "agent-a"`, map[string]string{"http": "agent = 'agent-a'", "tcp": "agent = 'agent-a'", "dns": "agent = 'agent-a'"}},
	{`client ~ "^10\.1\.0\.[1-3]" or server_name = "svc-03.internal"`, map[string]string{
		"http": `regexp_matches(client_ip, '^10\.1\.0\.[1-3]') OR regexp_matches(client_name, '^10\.1\.0\.[1-3]') OR server_name = 'svc-03.internal'`,
		"tcp":  `regexp_matches(client_ip, '^10\.1\.0\.[1-3]') OR regexp_matches(client_name, '^10\.1\.0\.[1-3]') OR server_name = 'svc-03.internal'`,
		"dns":  `regexp_matches(client_ip, '^10\.1\.0\.[1-3]')`}},
	{`status >= 500 and not method in (GET, HEAD)`, map[string]string{"http": "status >= 500 AND method NOT IN ('GET', 'HEAD')"}},
	{`duration > 5ms and tls = false`, map[string]string{"http": "duration_us > 5000 AND NOT tls",
		"tcp": "duration_us > 5000 AND app_protocol NOT IN ('tls', 'https', 'h2')", "dns": "latency_us > 5000"}},
	{`port = 443 or port in (53, 80)`, map[string]string{"http": "server_port IN (443, 53, 80)", "tcp": "server_port IN (443, 53, 80)", "dns": "server_port IN (443, 53, 80)"}},
	{`error = true`, map[string]string{"http": "(status >= 500 OR status = 0 OR error <> '')", "tcp": "close = 'rst'",
		"dns": "(NOT responded OR rcode <> 'NOERROR')"}},
	{`host = "svc-07.example" and status != 200 or path ~ "^/api/v2/orders/1"`, map[string]string{
		"http": `(host = 'svc-07.example' AND status <> 200) OR regexp_matches(path, '^/api/v2/orders/1')`}},
	{`not (server = "svc-02.internal" or client_port < 30000) and protocol != dns`, map[string]string{
		"http": "NOT (server_ip = 'svc-02.internal' OR server_name = 'svc-02.internal' OR client_port < 30000)",
		"tcp":  "NOT (server_ip = 'svc-02.internal' OR server_name = 'svc-02.internal' OR client_port < 30000)"}},
}

// rawSelect returns SQL rows (client_ip, server_ip, protocol, err, bytes,
// d, hasd, ts, agent) of the tables the case applies to.
func rawSelect(fc filterCase, from, to int64, scope []string) string {
	var parts []string
	scopeSQL := "true"
	if scope != nil {
		q := make([]string, len(scope))
		for i, s := range scope {
			q[i] = "'" + s + "'"
		}
		scopeSQL = "agent IN (" + strings.Join(append(q, "''"), ",") + ")"
	}
	win := fmt.Sprintf("epoch_us(ts) >= %d AND epoch_us(ts) < %d AND %s", from, to, scopeSQL)
	if w, ok := fc.sql["http"]; ok {
		parts = append(parts, fmt.Sprintf(`SELECT client_ip, server_ip, client_name AS cn, server_name AS sn, 'http' AS protocol,
			(status >= 500 OR status = 0 OR error <> '') AS err, req_body_bytes + resp_body_bytes AS bytes, duration_us AS d, true AS hasd, epoch_us(ts) AS t
			FROM http WHERE %s AND (%s)`, win, w))
	}
	if w, ok := fc.sql["tcp"]; ok {
		parts = append(parts, fmt.Sprintf(`SELECT client_ip, server_ip, client_name, server_name, CASE WHEN app_protocol IN ('tls', 'https', 'h2') THEN 'tls' ELSE 'tcp' END,
			close = 'rst', bytes_c2s + bytes_s2c, duration_us, true, epoch_us(ts)
			FROM tcp WHERE %s AND http_exchanges = 0 AND app_protocol <> 'dns' AND (%s)`, win, w))
	}
	if w, ok := fc.sql["dns"]; ok {
		parts = append(parts, fmt.Sprintf(`SELECT client_ip, server_ip, '', '', 'dns', (NOT responded OR rcode <> 'NOERROR'), 0, latency_us, responded, epoch_us(ts)
			FROM dns WHERE %s AND (%s)`, win, w))
	}
	return strings.Join(parts, "\nUNION ALL\n")
}

// expStats is what DuckDB says about a group of rows.
type expStats struct {
	count, errors, bytes int64
	durs                 []int64 // sorted
	names                [2][]string
}

// nearestRank returns the q-quantile by nearest rank of sorted values.
func nearestRank(sorted []int64, q float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	r := int(float64(len(sorted))*q + 0.999999999)
	r = min(max(r, 1), len(sorted))
	return sorted[r-1]
}

// checkQuantile checks an estimate against the exact value: same
// histogram bucket, not above the maximum.
func checkQuantile(t *testing.T, what string, got int64, durs []int64, q float64) {
	t.Helper()
	if len(durs) == 0 {
		if got != 0 {
			t.Errorf("%s: p%v = %d, want 0 (no durations)", what, q*100, got)
		}
		return
	}
	exact := max(nearestRank(durs, q), 0)
	if schema.LatencyBucket(got) != schema.LatencyBucket(exact) || got > durs[len(durs)-1] {
		t.Errorf("%s: p%v = %d, exact %d (bucket %d vs %d, max %d)", what, q*100, got, exact,
			schema.LatencyBucket(got), schema.LatencyBucket(exact), durs[len(durs)-1])
	}
}

func queryGroups(t *testing.T, db *sql.DB, sel string, key string) map[string]*expStats {
	t.Helper()
	q := fmt.Sprintf(`SELECT %s AS k, count(*), sum(err::BIGINT), sum(bytes),
		coalesce(list(greatest(d, 0) ORDER BY greatest(d, 0)) FILTER (WHERE hasd), []::BIGINT[]),
		coalesce(list(DISTINCT cn) FILTER (WHERE cn <> ''), []::VARCHAR[]), coalesce(list(DISTINCT sn) FILTER (WHERE sn <> ''), []::VARCHAR[])
		FROM (%s) GROUP BY k`, key, sel)
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%v\n%s", err, q)
	}
	defer rows.Close()
	out := map[string]*expStats{}
	for rows.Next() {
		var k string
		var s expStats
		var durs, cn, sn []any
		var bytes sql.NullInt64
		if err := rows.Scan(&k, &s.count, &s.errors, &bytes, &durs, &cn, &sn); err != nil {
			t.Fatal(err)
		}
		s.bytes = bytes.Int64
		for _, d := range durs {
			s.durs = append(s.durs, d.(int64))
		}
		for _, n := range cn {
			s.names[0] = append(s.names[0], n.(string))
		}
		for _, n := range sn {
			s.names[1] = append(s.names[1], n.(string))
		}
		out[k] = &s
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

type window struct {
	name     string
	from, to int64
}

func testWindows(l *testLake) []window {
	return []window{
		{"captures", l.capFrom, l.capTo},
		{"synthetic", l.synthFrom, l.synthTo},
		// Not minute-aligned: rollups for the whole minutes, raw rows at both ends.
		{"synthetic-partial", l.synthFrom + 1_234_567, l.synthTo - 7*60_000_000 - 42},
		{"synthetic-30m", l.synthFrom + 61*60_000_000, l.synthFrom + 91*60_000_000 + 500},
	}
}

func TestMapMatchesDuckDB(t *testing.T) {
	l := buildTestLake(t)
	ctx := context.Background()
	e := newTestEngine(t, l, Options{})
	raw := newTestEngine(t, l, Options{NoRollups: true})
	scopes := [][]string{nil, {"agent-a", "cap-web"}}
	for _, w := range testWindows(l) {
		for _, fc := range filterCases {
			for _, scope := range scopes {
				name := fmt.Sprintf("%s/%q/scope=%v", w.name, fc.q, scope)
				t.Run(name, func(t *testing.T) {
					req := Request{From: time.UnixMicro(w.from), To: time.UnixMicro(w.to), Q: fc.q, Scope: scope}
					got, err := e.Map(ctx, req)
					if err != nil {
						t.Fatal(err)
					}
					gotRaw, err := raw.Map(ctx, req)
					if err != nil {
						t.Fatal(err)
					}
					diffMaps(t, got, gotRaw)
					sel := rawSelect(fc, w.from, w.to, scope)
					want := queryGroups(t, l.db, sel, "client_ip || '->' || server_ip || '/' || protocol")
					if len(got.Edges) != len(want) {
						t.Errorf("%d edges, DuckDB %d", len(got.Edges), len(want))
					}
					for _, ed := range got.Edges {
						x := want[ed.ID]
						if x == nil {
							t.Errorf("edge %s not in DuckDB's answer", ed.ID)
							continue
						}
						if ed.Count != x.count || ed.Errors != x.errors || ed.Bytes != x.bytes {
							t.Errorf("edge %s: count/errors/bytes %d/%d/%d, DuckDB %d/%d/%d", ed.ID, ed.Count, ed.Errors, ed.Bytes, x.count, x.errors, x.bytes)
						}
						checkQuantile(t, ed.ID, ed.P50US, x.durs, 0.5)
						checkQuantile(t, ed.ID, ed.P95US, x.durs, 0.95)
					}
					// Nodes: totals over the edges they take part in.
					nodes := queryGroups(t, l.db, fmt.Sprintf(`SELECT client_ip AS ip, cn, '' AS sn, err, bytes, d, hasd FROM (%[1]s)
						UNION ALL SELECT server_ip, sn, '', err, bytes, d, hasd FROM (%[1]s) WHERE server_ip <> client_ip`, sel), "ip")
					if len(got.Nodes) != len(nodes) {
						t.Errorf("%d nodes, DuckDB %d", len(got.Nodes), len(nodes))
					}
					for _, n := range got.Nodes {
						x := nodes[n.ID]
						if x == nil {
							t.Errorf("node %s not in DuckDB's answer", n.ID)
							continue
						}
						if n.Requests != x.count || n.Errors != x.errors || n.Bytes != x.bytes {
							t.Errorf("node %s: requests/errors/bytes %d/%d/%d, DuckDB %d/%d/%d", n.ID, n.Requests, n.Errors, n.Bytes, x.count, x.errors, x.bytes)
						}
						if len(x.names[0]) > 0 && !slices.Contains(x.names[0], n.Name) {
							t.Errorf("node %s named %q, rows name it %v", n.ID, n.Name, x.names[0])
						}
					}
				})
			}
		}
	}
}

func TestTimelineMatchesDuckDB(t *testing.T) {
	l := buildTestLake(t)
	ctx := context.Background()
	e := newTestEngine(t, l, Options{})
	raw := newTestEngine(t, l, Options{NoRollups: true})
	for _, w := range testWindows(l) {
		for _, step := range []time.Duration{0, time.Minute, 5 * time.Minute, 7 * time.Second} {
			for _, fc := range filterCases[:5] {
				t.Run(fmt.Sprintf("%s/%s/%q", w.name, step, fc.q), func(t *testing.T) {
					req := Request{From: time.UnixMicro(w.from), To: time.UnixMicro(w.to), Q: fc.q, Step: step}
					got, err := e.Timeline(ctx, req)
					if err != nil {
						if strings.Contains(err.Error(), "buckets") {
							t.Skip(err)
						}
						t.Fatal(err)
					}
					gotRaw, err := raw.Timeline(ctx, req)
					if err != nil {
						t.Fatal(err)
					}
					if fmt.Sprint(got) != fmt.Sprint(gotRaw) {
						t.Errorf("timeline from rollups differs from the raw one")
					}
					if step != 0 && got.StepUS != step.Microseconds() {
						t.Fatalf("step %d, want %d", got.StepUS, step.Microseconds())
					}
					want := queryGroups(t, l.db, rawSelect(fc, w.from, w.to, nil), fmt.Sprintf("(floor(t / %d)::BIGINT * %d)::VARCHAR", got.StepUS, got.StepUS))
					var total int64
					for _, b := range got.Buckets {
						k := fmt.Sprint(b.TS.UnixMicro())
						x := want[k]
						total += b.Count
						if x == nil {
							if b.Count != 0 {
								t.Errorf("bucket %s: %d rows, DuckDB none", b.TS, b.Count)
							}
							continue
						}
						if b.Count != x.count || b.Errors != x.errors {
							t.Errorf("bucket %s: %d/%d, DuckDB %d/%d", b.TS, b.Count, b.Errors, x.count, x.errors)
						}
						checkQuantile(t, "bucket "+k, b.P50US, x.durs, 0.5)
						checkQuantile(t, "bucket "+k, b.P95US, x.durs, 0.95)
					}
					var wantTotal int64
					for _, x := range want {
						wantTotal += x.count
					}
					if total != wantTotal {
						t.Errorf("%d rows in buckets, DuckDB %d", total, wantTotal)
					}
				})
			}
		}
	}
}

// sqlIDs returns the ids of the http rows of a filter in SQL order.
func sqlIDs(t *testing.T, db *sql.DB, where string, from, to int64, orderBy string, limit int) []string {
	t.Helper()
	q := fmt.Sprintf(`SELECT id FROM http WHERE epoch_us(ts) >= %d AND epoch_us(ts) < %d AND (%s) ORDER BY %s LIMIT %d`, from, to, where, orderBy, limit)
	rows, err := db.Query(q)
	if err != nil {
		t.Fatalf("%v\n%s", err, q)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			t.Fatal(err)
		}
		out = append(out, id)
	}
	return out
}

func TestCommunicationsMatchDuckDB(t *testing.T) {
	l := buildTestLake(t)
	ctx := context.Background()
	e := newTestEngine(t, l, Options{})
	sorts := map[string]string{
		"":             "ts DESC, id DESC",
		"-ts":          "ts DESC, id DESC",
		"ts":           "ts ASC, id ASC",
		"-duration_us": "duration_us DESC, id DESC",
		"status":       "status ASC, id ASC",
	}
	for _, w := range testWindows(l)[:3] {
		for _, fc := range filterCases {
			where, ok := fc.sql["http"]
			if !ok {
				continue
			}
			for sortName, orderBy := range sorts {
				t.Run(fmt.Sprintf("%s/%q/%s", w.name, fc.q, sortName), func(t *testing.T) {
					const pageSize, pages = 37, 3
					want := sqlIDs(t, l.db, where, w.from, w.to, orderBy, pageSize*pages+1)
					var got []string
					cursor := ""
					for range pages {
						page, err := e.Communications(ctx, Request{From: time.UnixMicro(w.from), To: time.UnixMicro(w.to), Q: fc.q,
							Limit: pageSize, Sort: sortName, Cursor: cursor})
						if err != nil {
							t.Fatal(err)
						}
						for _, it := range page.Items {
							got = append(got, it.ID)
						}
						if (page.Next == "") != (len(got) >= len(want)) {
							t.Fatalf("after %d items next=%q, DuckDB has %d rows", len(got), page.Next, len(want))
						}
						if page.Next == "" {
							break
						}
						cursor = page.Next
					}
					want = want[:min(len(want), pageSize*pages)]
					if !slices.Equal(got, want) {
						i := 0
						for i < min(len(got), len(want)) && got[i] == want[i] {
							i++
						}
						t.Errorf("%d ids, DuckDB %d; first difference at %d:\n got %v\nwant %v", len(got), len(want), i, head(got[i:]), head(want[i:]))
					}
				})
			}
		}
	}
}

// diffMaps reports the first differences of two maps.
func diffMaps(t *testing.T, a, b *MapResult) {
	t.Helper()
	n := 0
	for i := range max(len(a.Edges), len(b.Edges)) {
		var x, y Edge
		if i < len(a.Edges) {
			x = a.Edges[i]
		}
		if i < len(b.Edges) {
			y = b.Edges[i]
		}
		if x != y && n < 5 {
			t.Errorf("rollup vs raw edge %d:\n%+v\n%+v", i, x, y)
			n++
		}
	}
	for i := range max(len(a.Nodes), len(b.Nodes)) {
		var x, y Node
		if i < len(a.Nodes) {
			x = a.Nodes[i]
		}
		if i < len(b.Nodes) {
			y = b.Nodes[i]
		}
		if x != y && n < 10 {
			t.Errorf("rollup vs raw node %d:\n%+v\n%+v", i, x, y)
			n++
		}
	}
}

func head(s []string) []string { return s[:min(len(s), 8)] }

func TestScopeIsolation(t *testing.T) {
	l := buildTestLake(t)
	ctx := context.Background()
	e := newTestEngine(t, l, Options{})
	req := Request{From: time.UnixMicro(l.synthFrom), To: time.UnixMicro(l.synthTo), Scope: []string{"agent-b"}}
	m, err := e.Map(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	var n int64
	if err := l.db.QueryRow(fmt.Sprintf(`SELECT (SELECT count(*) FROM http WHERE agent = 'agent-b' AND epoch_us(ts) BETWEEN %[1]d AND %[2]d)
		+ (SELECT count(*) FROM tcp WHERE agent = 'agent-b' AND http_exchanges = 0 AND app_protocol <> 'dns' AND epoch_us(ts) BETWEEN %[1]d AND %[2]d)
		+ (SELECT count(*) FROM dns WHERE agent = 'agent-b' AND epoch_us(ts) BETWEEN %[1]d AND %[2]d)`, l.synthFrom, l.synthTo-1)).Scan(&n); err != nil {
		t.Fatal(err)
	}
	var sum int64
	for _, ed := range m.Edges {
		sum += ed.Count
	}
	if sum != n || n == 0 {
		t.Errorf("map in scope counts %d, agent-b has %d", sum, n)
	}
	page, err := e.Communications(ctx, Request{From: req.From, To: req.To, Scope: req.Scope, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range page.Items {
		if it.Agent != "agent-b" {
			t.Fatalf("item of agent %s outside scope", it.Agent)
		}
	}
	// An id of another agent is not found, nor its pcap.
	other := sqlIDs(t, l.db, "agent = 'agent-a'", l.synthFrom, l.synthTo, "ts DESC", 1)[0]
	if _, err := e.Communication(ctx, other, []string{"agent-b"}, time.Time{}); err == nil {
		t.Errorf("detail of agent-a's %s visible in scope agent-b", other)
	}
	d, err := e.Communication(ctx, other, []string{"agent-a"}, time.Time{})
	if err != nil || d.ID != other {
		t.Errorf("detail of %s in its own scope: %v, %v", other, d, err)
	}
	// Empty scope: nothing at all.
	for _, s := range [][]string{{}, {"nobody"}} {
		m, err := e.Map(ctx, Request{From: req.From, To: req.To, Scope: s})
		if err != nil || len(m.Edges) != 0 || len(m.Nodes) != 0 {
			t.Errorf("scope %v: %d edges, %v", s, len(m.Edges), err)
		}
		tl, err := e.Timeline(ctx, Request{From: req.From, To: req.To, Scope: s})
		if err != nil {
			t.Fatal(err)
		}
		for _, b := range tl.Buckets {
			if b.Count != 0 {
				t.Fatalf("scope %v: timeline counts %d", s, b.Count)
			}
		}
		for _, q := range tl.Quality {
			if q.Captured != 0 || q.Gaps != 0 {
				t.Fatalf("scope %v: quality %+v", s, q)
			}
		}
		st, err := e.Status(ctx, Request{From: req.From, To: req.To, Scope: s})
		if err != nil || len(st.Agents) != 0 {
			t.Errorf("scope %v: status %v, %v", s, st.Agents, err)
		}
	}
}

func TestDetail(t *testing.T) {
	l := buildTestLake(t)
	ctx := context.Background()
	e := newTestEngine(t, l, Options{})
	var id, tcpID, reqHeaders, respBody, method, path string
	var status int32
	err := l.db.QueryRow(`SELECT id, tcp_id, req_headers, resp_body, method, path, status FROM http
		WHERE agent = 'cap-web' AND req_headers <> '' AND resp_body <> '' ORDER BY id LIMIT 1`).Scan(&id, &tcpID, &reqHeaders, &respBody, &method, &path, &status)
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.Communication(ctx, id, nil, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if d.ID != id || d.TCPID != tcpID || d.Method != method || d.Path != path || d.Status != status || d.RespBody != respBody {
		t.Errorf("detail %+v", d.Summary)
	}
	if len(d.ReqHeaders) != strings.Count(reqHeaders, "\n") {
		t.Errorf("%d request headers from %q", len(d.ReqHeaders), reqHeaders)
	}
	if d.TCP == nil || d.TCP.ID != tcpID || d.TCP.PacketsC2S == 0 {
		t.Errorf("tcp facts %+v", d.TCP)
	}
	if _, err := e.Communication(ctx, "no-such-id", nil, time.Time{}); err == nil || !strings.Contains(err.Error(), "not found") {
		t.Errorf("unknown id: %v", err)
	}
}

func TestStatusAndQuality(t *testing.T) {
	l := buildTestLake(t)
	ctx := context.Background()
	e := newTestEngine(t, l, Options{})
	from, to := time.UnixMicro(l.synthFrom), time.UnixMicro(l.synthFrom).Add(time.Hour)
	st, err := e.Status(ctx, Request{From: from, To: to})
	if err != nil {
		t.Fatal(err)
	}
	var agents []string
	for _, a := range st.Agents {
		agents = append(agents, a.Agent)
		if a.Streams != 2 || a.Captured == 0 {
			t.Errorf("agent %+v", a)
		}
	}
	if !slices.Equal(agents, []string{"agent-a", "agent-b", "agent-c"}) {
		t.Errorf("agents %v", agents)
	}
	// The synthetic agent-a dropped 40 packets per stream at 00:20.
	tl, err := e.Timeline(ctx, Request{From: from, To: to, Step: 10 * time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	var dropped, gaps, missing int64
	for _, q := range tl.Quality {
		dropped += q.Dropped
		gaps += q.Gaps
		missing += q.MissingBytes
	}
	var wantMissing, wantGaps int64
	if err := l.db.QueryRow(fmt.Sprintf(`SELECT sum(missing_bytes), count(*) FILTER (WHERE gap) FROM parse_status WHERE epoch_us(ts) >= %d AND epoch_us(ts) < %d`,
		from.UnixMicro(), to.UnixMicro())).Scan(&wantMissing, &wantGaps); err != nil {
		t.Fatal(err)
	}
	if missing != wantMissing || gaps != wantGaps || dropped == 0 {
		t.Errorf("quality: missing %d (want %d), gaps %d (want %d), dropped %d", missing, wantMissing, gaps, wantGaps, dropped)
	}
}

func TestBadRequests(t *testing.T) {
	l := buildTestLake(t)
	ctx := context.Background()
	e := newTestEngine(t, l, Options{})
	now := time.UnixMicro(l.synthTo)
	cases := []Request{
		{From: now, To: now.Add(-time.Hour)},
		{Q: `status >= "x"`},
		{Limit: 5000},
		{Sort: "host"},
		{Cursor: "!!!"},
		{Step: -time.Second},
	}
	for _, req := range cases {
		_, err1 := e.Communications(ctx, req)
		_, err2 := e.Timeline(ctx, req)
		if err1 == nil && err2 == nil {
			t.Errorf("%+v accepted", req)
		}
	}
	var page *Page
	page, err := e.Communications(ctx, Request{From: now.Add(-time.Hour), To: now, Limit: 2})
	if err != nil || page.Next == "" {
		t.Fatal(err)
	}
	if _, err := e.Communications(ctx, Request{From: now.Add(-time.Hour), To: now, Limit: 2, Sort: "status", Cursor: page.Next}); err == nil {
		t.Error("cursor of another sort accepted")
	}
}

// TestHoursWithoutRollups checks that hours whose rollup partition is
// missing (a lake written before rollups existed) are read raw.
func TestHoursWithoutRollups(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	start := time.Date(2024, 6, 1, 0, 0, 0, 0, time.UTC)
	err := synthLake(ctx, lake.DirSink{Root: dir}, synthSpec{Start: start, Hours: 3, HTTPRows: 30_000, Agents: 2, Clients: 20, Servers: 5, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(dir, "lake", schema.TableEdges1m, "dt=2024-06-01", "hour=01")); err != nil {
		t.Fatal(err)
	}
	st, err := store.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	e, _ := New(st, Options{})
	raw, _ := New(st, Options{NoRollups: true})
	req := Request{From: start.Add(17 * time.Minute), To: start.Add(3 * time.Hour)}
	a, err := e.Map(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	b, err := raw.Map(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	diffMaps(t, a, b)
	var n int64
	for _, ed := range a.Edges {
		n += ed.Count
	}
	if n < 30_000*2/3 {
		t.Errorf("map counts %d rows", n)
	}
	ta, err := e.Timeline(ctx, Request{From: req.From, To: req.To, Step: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	tb, err := raw.Timeline(ctx, Request{From: req.From, To: req.To, Step: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(ta.Buckets) != fmt.Sprint(tb.Buckets) {
		t.Error("timeline with a missing rollup hour differs from the raw one")
	}
}

// TestS3MatchesLocal reads the same lake from a real MinIO server (range
// reads through the S3 store) and from the local directory.
func TestS3MatchesLocal(t *testing.T) {
	if testing.Short() {
		t.Skip("MinIO: not with -short")
	}
	ctx := context.Background()
	dir := t.TempDir()
	start := time.Date(2024, 7, 1, 0, 0, 0, 0, time.UTC)
	spec := synthSpec{Start: start, Hours: 2, HTTPRows: 20_000, Agents: 2, Clients: 20, Servers: 5, Seed: 5, Bodies: true}
	if err := synthLake(ctx, lake.DirSink{Root: dir}, spec); err != nil {
		t.Fatal(err)
	}
	srv := miniotest.Start(t)
	srv.SetEnv(t)
	s3st, err := store.NewS3(ctx, store.S3Options{Bucket: srv.Bucket})
	if err != nil {
		t.Fatal(err)
	}
	if err := synthLake(ctx, lake.StoreSink{Store: s3st}, spec); err != nil {
		t.Fatal(err)
	}
	local, err := store.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	el, _ := New(local, Options{})
	es, _ := New(s3st, Options{})
	req := Request{From: start.Add(5 * time.Minute), To: start.Add(2 * time.Hour), Q: `agent = agent-a or status >= 500`, Limit: 200}
	ml, err := el.Map(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	ms, err := es.Map(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	diffMaps(t, ml, ms)
	pl, err := el.Communications(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	ps, err := es.Communications(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(pl.Items) != 200 || fmt.Sprint(pl) != fmt.Sprint(ps) {
		t.Errorf("communications from S3 differ from local (%d and %d items)", len(pl.Items), len(ps.Items))
	}
	d, err := es.Communication(ctx, ps.Items[7].ID, nil, time.Time{})
	if err != nil || d.ReqHeaders == nil || d.ID != ps.Items[7].ID {
		t.Errorf("detail from S3: %v %v", d, err)
	}
	// Footers are cached: a second engine on a counting store reads the
	// file tails (footers) once, not again for the second query.
	cs := &tailCounter{Store: s3st}
	ec, _ := New(cs, Options{})
	if _, err := ec.Map(ctx, req); err != nil {
		t.Fatal(err)
	}
	first := cs.tails.Load()
	if _, err := ec.Map(ctx, req); err != nil {
		t.Fatal(err)
	}
	if first == 0 || cs.tails.Load() != first {
		t.Errorf("footer reads: %d in the first query, %d after the second", first, cs.tails.Load())
	}
}

// tailCounter counts range reads that end at the end of an object (Parquet
// footer reads).
type tailCounter struct {
	store.Store
	tails atomic.Int64
}

func (c *tailCounter) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	b, err := c.Store.GetRange(ctx, key, off, n)
	if err == nil {
		if info, serr := c.Store.Stat(ctx, key); serr == nil && off+n == info.Size {
			c.tails.Add(1)
		}
	}
	return b, err
}
