package lake

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	_ "github.com/marcboeker/go-duckdb"

	"github.com/flowlake/flowlake/schema"
)

// duckType maps a schema SQL type to the type DuckDB reports for the column.
var duckType = map[string]string{
	"timestamp":     "TIMESTAMP WITH TIME ZONE",
	"bigint":        "BIGINT",
	"int":           "INTEGER",
	"boolean":       "BOOLEAN",
	"string":        "VARCHAR",
	"array<string>": "VARCHAR[]",
}

// TestDuckDBReadsLake writes rows of every table to a directory, reads them
// back with DuckDB's read_parquet and compares every column of every row,
// the hive partition columns and the column types.
func TestDuckDBReadsLake(t *testing.T) {
	root := t.TempDir()
	rows := makeTestRows()
	w := NewWriter(DirSink{Root: root}, Options{Name: "run-duck", RowGroupBytes: 64 << 10})
	rows.addTo(w, nil)
	stats := mustClose(t, w)
	if got := stats[schema.TableHTTP].RepairedUTF8; got != 2 {
		t.Errorf("http: %d strings repaired, want 2", got)
	}

	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatalf("open duckdb: %v", err)
	}
	defer db.Close()
	db.SetMaxOpenConns(1) // views are created on the one in-memory connection

	lakeRoot := filepath.ToSlash(filepath.Join(root, "lake"))
	check := func(table string, want any) {
		t.Run(table, func(t *testing.T) {
			wantRows := reflect.ValueOf(want)
			if got := stats[table].Rows; got != int64(wantRows.Len()) {
				t.Fatalf("stats say %d rows written, want %d", got, wantRows.Len())
			}
			if stats[table].Files != 2 {
				t.Errorf("%d files, want one per partition (2)", stats[table].Files)
			}
			src := fmt.Sprintf("read_parquet('%s', hive_partitioning=true)", schema.Glob(lakeRoot, table))
			cols := schema.Columns(table)
			checkDuckTypes(t, db, src, cols, "VARCHAR")
			checkDuckRows(t, db, src, cols, wantRows)
		})
	}
	check(schema.TableHTTP, rows.http)
	check(schema.TableTCP, rows.tcp)
	check(schema.TableDNS, rows.dns)
	check(schema.TableTLS, rows.tls)
	check(schema.TableParseStatus, rows.parse)
	check(schema.TableCaptureStatus, rows.status)

	t.Run("views", func(t *testing.T) {
		for _, stmt := range schema.DuckDBViews(lakeRoot) {
			if _, err := db.Exec(stmt); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
		for _, table := range schema.Tables {
			var n int64
			if err := db.QueryRow(fmt.Sprintf("SELECT count(*) FROM %s", table)).Scan(&n); err != nil {
				t.Fatalf("count %s: %v", table, err)
			}
			if n != stats[table].Rows {
				t.Errorf("view %s has %d rows, want %d", table, n, stats[table].Rows)
			}
			checkDuckTypes(t, db, table, schema.Columns(table), "INTEGER") // the views declare hive_types
		}
	})

	t.Run("metadata", func(t *testing.T) {
		file := filepath.ToSlash(filepath.Join(root, stats[schema.TableHTTP].Keys[0]))
		var version, table string
		err := db.QueryRow(fmt.Sprintf(`SELECT
				max(CASE WHEN decode(key) = 'flowlake.schema_version' THEN decode(value) END),
				max(CASE WHEN decode(key) = 'flowlake.table' THEN decode(value) END)
			FROM parquet_kv_metadata('%s')`, file)).Scan(&version, &table)
		if err != nil {
			t.Fatalf("parquet_kv_metadata: %v", err)
		}
		if version != fmt.Sprint(schema.Version) || table != schema.TableHTTP {
			t.Errorf("kv metadata version=%q table=%q", version, table)
		}

		// DuckDB must see min/max statistics for ts in every row group, and
		// zstd on every column chunk.
		q := fmt.Sprintf(`SELECT row_group_id, stats_min_value, stats_max_value, compression
			FROM parquet_metadata('%s') WHERE path_in_schema = 'ts' ORDER BY row_group_id`, file)
		rs, err := db.Query(q)
		if err != nil {
			t.Fatalf("parquet_metadata: %v", err)
		}
		defer rs.Close()
		groups := 0
		for rs.Next() {
			var id int64
			var lo, hi sql.NullString
			var comp string
			if err := rs.Scan(&id, &lo, &hi, &comp); err != nil {
				t.Fatalf("scan parquet_metadata: %v", err)
			}
			groups++
			if !lo.Valid || !hi.Valid || lo.String == "" || hi.String == "" {
				t.Errorf("row group %d: ts statistics missing (min=%v max=%v)", id, lo, hi)
			}
			if lo.String > hi.String {
				t.Errorf("row group %d: ts min %s > max %s", id, lo.String, hi.String)
			}
			if comp != "ZSTD" {
				t.Errorf("row group %d: compression %s", id, comp)
			}
		}
		if err := rs.Err(); err != nil {
			t.Fatal(err)
		}
		if groups < 2 {
			t.Errorf("%d row groups in %s, want several (RowGroupBytes is 64 KiB and a body is 300 KiB)", groups, file)
		}
		var notZstd int
		if err := db.QueryRow(fmt.Sprintf(`SELECT count(*) FROM parquet_metadata('%s') WHERE compression <> 'ZSTD'`, file)).Scan(&notZstd); err != nil {
			t.Fatal(err)
		}
		if notZstd != 0 {
			t.Errorf("%d column chunks not zstd-compressed", notZstd)
		}
	})

	t.Run("ts value", func(t *testing.T) {
		// ts reads as a timestamp equal to the microseconds written, also
		// when compared with a literal and converted back to epoch micros.
		h := rows.http[7]
		var us int64
		var got time.Time
		src := fmt.Sprintf("read_parquet('%s', hive_partitioning=true)", schema.Glob(lakeRoot, schema.TableHTTP))
		err := db.QueryRow(fmt.Sprintf(`SELECT epoch_us(ts), ts FROM %s WHERE id = ? AND ts = TIMESTAMPTZ '%s'`,
			src, time.UnixMicro(h.TS).UTC().Format("2006-01-02 15:04:05.999999Z")), h.ID).Scan(&us, &got)
		if err != nil {
			t.Fatalf("query ts: %v", err)
		}
		if us != h.TS || !got.Equal(time.UnixMicro(h.TS)) {
			t.Errorf("ts = %d (%v), want %d", us, got, h.TS)
		}
	})

	t.Run("pinned hive types", func(t *testing.T) {
		// With hive_types the partition column types no longer depend on
		// which partitions exist, and a filter on them selects one hour.
		want := 0
		for _, h := range rows.http {
			if schema.PartitionPath(h.TS) == "dt=2024-03-11/hour=00" {
				want++
			}
		}
		src := fmt.Sprintf("read_parquet('%s', hive_partitioning=true, hive_types={'dt': DATE, 'hour': INTEGER})",
			schema.Glob(lakeRoot, schema.TableHTTP))
		var n, files int
		err := db.QueryRow(fmt.Sprintf(`SELECT count(*), count(DISTINCT filename) FROM (SELECT *, filename FROM read_parquet('%s',
			hive_partitioning=true, hive_types={'dt': DATE, 'hour': INTEGER}, filename=true)) WHERE dt = DATE '2024-03-11' AND hour = 0`,
			schema.Glob(lakeRoot, schema.TableHTTP))).Scan(&n, &files)
		if err != nil {
			t.Fatal(err)
		}
		if n != want || files != 1 {
			t.Errorf("%d rows in %d files for dt=2024-03-11/hour=0, want %d in 1", n, files, want)
		}
		var typ string
		if err := db.QueryRow(fmt.Sprintf(`SELECT typeof(hour) FROM %s LIMIT 1`, src)).Scan(&typ); err != nil {
			t.Fatal(err)
		}
		if typ != "INTEGER" {
			t.Errorf("hour is %s with hive_types, want INTEGER", typ)
		}
	})
}

// TestDuckDBInvalidUTF8 checks that a file holding strings that were not
// UTF-8 stays readable: DuckDB fails every query touching a column with one
// invalid value, so the writer must repair them.
func TestDuckDBInvalidUTF8(t *testing.T) {
	root := t.TempDir()
	w := NewWriter(DirSink{Root: root}, Options{Name: "run-utf8"})
	w.HTTP.Add(schema.HTTP{ID: "a", TS: hour0, RespBody: "\x1f\x8b\x08\x00gzip\xff\xfe", ReqHeaders: "X: \xc3\x28"})
	w.HTTP.Add(schema.HTTP{ID: "b", TS: hour0 + 1, RespBody: "fine ü", ReqHeaders: "X: y"})
	answers := []string{"ok", "b\xe2\x82ad"}
	w.DNS.Add(schema.DNS{ID: "d", TS: hour0, Answers: answers})
	stats := mustClose(t, w)
	if stats[schema.TableHTTP].RepairedUTF8 != 2 || stats[schema.TableDNS].RepairedUTF8 != 1 {
		t.Errorf("repaired http %d dns %d, want 2 and 1", stats[schema.TableHTTP].RepairedUTF8, stats[schema.TableDNS].RepairedUTF8)
	}
	if answers[1] != "b\xe2\x82ad" {
		t.Errorf("caller's list was modified: %q", answers)
	}

	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatalf("open duckdb: %v", err)
	}
	defer db.Close()
	lakeRoot := filepath.ToSlash(filepath.Join(root, "lake"))
	var body, hdr string
	var n int64
	q := fmt.Sprintf("SELECT resp_body, req_headers, length(resp_body) FROM read_parquet('%s') WHERE id = 'a'",
		schema.Glob(lakeRoot, schema.TableHTTP))
	if err := db.QueryRow(q).Scan(&body, &hdr, &n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	if body != "\x1f\ufffd\x08\x00gzip\ufffd" || hdr != "X: \ufffd(" || n != 9 {
		t.Errorf("read %q %q (length %d)", body, hdr, n)
	}
	var got []any
	q = fmt.Sprintf("SELECT answers FROM read_parquet('%s')", schema.Glob(lakeRoot, schema.TableDNS))
	if err := db.QueryRow(q).Scan(&got); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	if !reflect.DeepEqual(got, []any{"ok", "b\ufffdad"}) {
		t.Errorf("answers %q", got)
	}
}

// checkDuckTypes compares DuckDB's column types of src with cols.
func checkDuckTypes(t *testing.T, db *sql.DB, src string, cols []schema.Column, hourType string) {
	t.Helper()
	rs, err := db.Query("DESCRIBE SELECT * FROM " + src)
	if err != nil {
		t.Fatalf("describe %s: %v", src, err)
	}
	defer rs.Close()
	got := map[string]string{}
	var order []string
	for rs.Next() {
		var name, typ string
		var null, key, def, extra sql.NullString
		if err := rs.Scan(&name, &typ, &null, &key, &def, &extra); err != nil {
			t.Fatalf("scan describe: %v", err)
		}
		got[name] = typ
		order = append(order, name)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, c := range cols {
		want = append(want, c.Name)
		if got[c.Name] != duckType[c.SQLType] {
			t.Errorf("column %s: DuckDB type %q, want %q", c.Name, got[c.Name], duckType[c.SQLType])
		}
	}
	want = append(want, "dt", "hour")
	if !slices.Equal(order, want) {
		t.Errorf("DuckDB columns %v, want %v", order, want)
	}
	// DuckDB infers the hive column types from the values present: hour is
	// VARCHAR here because "00" does not round-trip through an integer (with
	// only hours 10..23 present it would be BIGINT).
	if got["dt"] != "DATE" || got["hour"] != hourType {
		t.Errorf("partition columns dt %q hour %q, want DATE and %s", got["dt"], got["hour"], hourType)
	}
}

// checkDuckRows reads every column of src and checks that the rows equal
// the rows in want (a slice of row structs) one to one, value by value,
// with dt/hour equal to the partition of the row's ts.
func checkDuckRows(t *testing.T, db *sql.DB, src string, cols []schema.Column, want reflect.Value) {
	t.Helper()
	names := make([]string, len(cols))
	for i, c := range cols {
		names[i] = c.Name
	}
	exp := make([]reflect.Value, want.Len())
	for i := range exp {
		exp[i] = want.Index(i)
	}
	q := fmt.Sprintf("SELECT %s, strftime(dt, '%%Y-%%m-%%d'), hour FROM %s", strings.Join(names, ", "), src)
	rs, err := db.Query(q)
	if err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	defer rs.Close()
	var got [][]any
	for rs.Next() {
		vals := make([]any, len(cols)+2)
		ptrs := make([]any, len(vals))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rs.Scan(ptrs...); err != nil {
			t.Fatalf("scan: %v", err)
		}
		got = append(got, vals)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(exp) {
		t.Fatalf("DuckDB returned %d rows, want %d", len(got), len(exp))
	}
	// Match each returned row to an equal, not yet matched written row.
	used := make([]bool, len(exp))
	for ri, g := range got {
		found := -1
		var firstDiff string
		for ei, e := range exp {
			if used[ei] {
				continue
			}
			diff := diffRow(cols, e, g)
			if diff == "" {
				found = ei
				break
			}
			if firstDiff == "" {
				firstDiff = diff
			}
		}
		if found < 0 {
			t.Errorf("DuckDB row %d matches no written row; closest difference: %s", ri, firstDiff)
			continue
		}
		used[found] = true
	}
}

// diffRow compares one row struct e with the values DuckDB returned for
// cols followed by dt and hour. It returns "" when they are equal.
func diffRow(cols []schema.Column, e reflect.Value, g []any) string {
	var ts int64
	for i, c := range cols {
		f := fieldByColumn(e, c.Name)
		var want any
		switch c.SQLType {
		case "timestamp":
			want = time.UnixMicro(f.Int()).UTC()
			if c.Name == "ts" {
				ts = f.Int()
			}
		case "bigint":
			want = f.Int()
		case "int":
			want = int32(f.Int())
		case "boolean":
			want = f.Bool()
		case "string":
			want = strings.ToValidUTF8(f.String(), "\uFFFD")
		case "array<string>":
			l := []any{}
			for j := range f.Len() {
				l = append(l, strings.ToValidUTF8(f.Index(j).String(), "\uFFFD"))
			}
			want = l
		}
		have := g[i]
		if tm, ok := have.(time.Time); ok {
			have = tm.UTC()
		}
		if !reflect.DeepEqual(have, want) {
			return fmt.Sprintf("column %s: DuckDB %s, written %s", c.Name, short(have), short(want))
		}
	}
	part := schema.PartitionPath(ts) // dt=YYYY-MM-DD/hour=HH
	dt, hour, _ := strings.Cut(part, "/")
	wantDT, wantHour := strings.TrimPrefix(dt, "dt="), strings.TrimPrefix(hour, "hour=")
	if g[len(cols)] != wantDT || g[len(cols)+1] != wantHour {
		return fmt.Sprintf("partition dt=%v hour=%v, want %s/%s", g[len(cols)], g[len(cols)+1], wantDT, wantHour)
	}
	return ""
}

// fieldByColumn returns the field of struct value v tagged with column name.
func fieldByColumn(v reflect.Value, name string) reflect.Value {
	t := v.Type()
	for i := range t.NumField() {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("parquet"), ",")
		if tag == name {
			return v.Field(i)
		}
	}
	return reflect.Value{}
}

// short formats v for an error message, eliding long strings.
func short(v any) string {
	s := fmt.Sprintf("%T %q", v, fmt.Sprint(v))
	if len(s) > 120 {
		s = s[:120] + "…"
	}
	return s
}
