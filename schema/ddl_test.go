package schema

import (
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"
)

// TestColumnsMatchParquetSchema checks Columns against the schema parquet-go
// derives from the same row types (an independent reading of the tags): same
// names in the same order, and each SQL type matching the physical and
// logical Parquet type.
func TestColumnsMatchParquetSchema(t *testing.T) {
	for _, table := range Tables {
		t.Run(table, func(t *testing.T) {
			rt := RowType(table)
			if rt == nil {
				t.Fatalf("no row type")
			}
			cols := Columns(table)
			if len(cols) == 0 {
				t.Fatalf("no columns")
			}
			if rt.NumField() != len(cols) {
				t.Errorf("%d struct fields, %d columns", rt.NumField(), len(cols))
			}
			ps := parquet.SchemaOf(reflect.New(rt).Interface())
			fields := ps.Fields()
			if len(fields) != len(cols) {
				t.Fatalf("parquet schema has %d fields, Columns %d", len(fields), len(cols))
			}
			for i, f := range fields {
				c := cols[i]
				if f.Name() != c.Name {
					t.Errorf("column %d: parquet %q, Columns %q", i, f.Name(), c.Name)
				}
				if want := sqlTypeOfNode(t, f); want != c.SQLType {
					t.Errorf("column %s: SQL type %q, parquet schema implies %q", c.Name, c.SQLType, want)
				}
			}
		})
	}
}

// sqlTypeOfNode maps a parquet-go schema node to the Hive type it must get.
func sqlTypeOfNode(t *testing.T, n parquet.Node) string {
	t.Helper()
	var lv format.LogicalTypeValue
	if lt := n.Type().LogicalType(); lt != nil {
		lv = lt.Value
	}
	if _, ok := lv.(*format.ListType); ok {
		elem := n.Fields()[0].Fields()[0]
		if elem.Type().Kind() != parquet.ByteArray {
			t.Fatalf("list %s has element kind %s", n, elem.Type().Kind())
		}
		return "array<" + sqlTypeOfNode(t, elem) + ">"
	}
	switch n.Type().Kind() {
	case parquet.Int64:
		if ts, ok := lv.(*format.TimestampType); ok {
			if _, ok := ts.Unit.Value.(*format.MicroSeconds); !ok {
				t.Errorf("timestamp column is not in microseconds: %v", ts)
			}
			return "timestamp"
		}
		return "bigint"
	case parquet.Int32:
		return "int"
	case parquet.Boolean:
		return "boolean"
	case parquet.ByteArray:
		if _, ok := lv.(*format.StringType); !ok {
			t.Errorf("byte array column without STRING logical type")
		}
		return "string"
	}
	t.Fatalf("unexpected parquet kind %s", n.Type().Kind())
	return ""
}

// TestColumnsKeepDesignColumns checks that the core columns that DESIGN.md
// promises (and that must never be renamed) are present with their types.
func TestColumnsKeepDesignColumns(t *testing.T) {
	core := map[string][]string{
		TableHTTP: {"id", "ts:timestamp", "ts_end:timestamp", "duration_us:bigint", "agent", "client_ip",
			"client_port:int", "server_ip", "server_port:int", "client_name", "server_name", "tcp_id", "method",
			"uri", "host", "path", "query", "status:int", "req_headers", "resp_headers", "req_body_bytes:bigint",
			"resp_body_bytes:bigint", "req_body", "resp_body", "content_type", "tls:boolean", "complete:boolean",
			"community_id"},
		TableTCP: {"id", "ts:timestamp", "ts_end:timestamp", "agent", "client_ip", "client_port:int",
			"server_ip", "server_port:int", "packets_c2s:bigint", "packets_s2c:bigint", "bytes_c2s:bigint",
			"bytes_s2c:bigint", "missing_bytes:bigint", "retransmissions:bigint", "rtt_us:bigint", "close",
			"app_protocol", "community_id", "segments:array<string>"},
		TableDNS: {"ts:timestamp", "client_ip", "server_ip", "query", "qtype", "rcode",
			"answers:array<string>", "latency_us:bigint"},
		TableTLS:           {"ts:timestamp", "tcp_id", "version", "sni", "alpn", "cipher", "decrypted:boolean"},
		TableParseStatus:   {"ts:timestamp"},
		TableCaptureStatus: {"ts:timestamp"},
	}
	for table, want := range core {
		have := map[string]string{}
		for _, c := range Columns(table) {
			have[c.Name] = c.SQLType
		}
		for _, w := range want {
			name, typ, ok := strings.Cut(w, ":")
			if !ok {
				typ = "string"
			}
			got, present := have[name]
			switch {
			case !present:
				t.Errorf("%s: core column %s missing", table, name)
			case got != typ:
				t.Errorf("%s.%s: type %s, want %s", table, name, got, typ)
			}
		}
	}
}

func TestColumnsUnknownTable(t *testing.T) {
	if c := Columns("nope"); c != nil {
		t.Errorf("Columns(nope) = %v, want nil", c)
	}
	if d := AthenaDDL("nope", "s3://b/lake"); d != "" {
		t.Errorf("AthenaDDL(nope) = %q, want empty", d)
	}
}

func TestColumnsOfRejectsUnsupportedTypes(t *testing.T) {
	type bad struct {
		A float64 `parquet:"a"`
	}
	if _, err := columnsOf(reflect.TypeFor[bad]()); err == nil {
		t.Error("float64 field accepted")
	}
	type skip struct {
		A int64 `parquet:"-"`
		B int32
		c bool //lint:ignore U1000 an unexported field must be skipped by columnsOf
	}
	cols, err := columnsOf(reflect.TypeFor[skip]())
	if err != nil {
		t.Fatal(err)
	}
	if want := []Column{{"B", "int"}}; !slices.Equal(cols, want) {
		t.Errorf("columns %v, want %v", cols, want)
	}
}

func TestAthenaDDL(t *testing.T) {
	got := AthenaDDL(TableDNS, "s3://bucket/lake/")
	want := "CREATE EXTERNAL TABLE IF NOT EXISTS `dns` (\n" +
		"  `id` string,\n" +
		"  `ts` timestamp,\n" +
		"  `agent` string,\n" +
		"  `transport` string,\n" +
		"  `client_ip` string,\n" +
		"  `client_port` int,\n" +
		"  `server_ip` string,\n" +
		"  `server_port` int,\n" +
		"  `txid` int,\n" +
		"  `query` string,\n" +
		"  `qtype` string,\n" +
		"  `rcode` string,\n" +
		"  `answers` array<string>,\n" +
		"  `latency_us` bigint,\n" +
		"  `responded` boolean,\n" +
		"  `error` string\n" +
		")\n" +
		"PARTITIONED BY (`dt` string, `hour` string)\n" +
		"STORED AS PARQUET\n" +
		"LOCATION 's3://bucket/lake/dns/'\n" +
		"TBLPROPERTIES (\n" +
		"  'projection.enabled'='true',\n" +
		"  'projection.dt.type'='date',\n" +
		"  'projection.dt.format'='yyyy-MM-dd',\n" +
		"  'projection.dt.range'='2020-01-01,NOW',\n" +
		"  'projection.dt.interval'='1',\n" +
		"  'projection.dt.interval.unit'='DAYS',\n" +
		"  'projection.hour.type'='integer',\n" +
		"  'projection.hour.range'='0,23',\n" +
		"  'projection.hour.digits'='2',\n" +
		"  'storage.location.template'='s3://bucket/lake/dns/dt=${dt}/hour=${hour}/',\n" +
		"  'flowlake.schema_version'='1'\n" +
		")"
	if got != want {
		t.Errorf("AthenaDDL(dns):\n%s\nwant:\n%s", got, want)
	}

	// Every table gets one line per column, in Columns order.
	for _, table := range Tables {
		ddl := AthenaDDL(table, "s3://bucket/lake")
		if !strings.Contains(ddl, "LOCATION 's3://bucket/lake/"+table+"/'") {
			t.Errorf("%s: wrong location in\n%s", table, ddl)
		}
		var names []string
		for _, line := range strings.Split(ddl, "\n") {
			if strings.HasPrefix(line, "  `") {
				name, _, _ := strings.Cut(strings.TrimPrefix(line, "  `"), "`")
				names = append(names, name)
			}
		}
		var want []string
		for _, c := range Columns(table) {
			want = append(want, c.Name)
		}
		if !slices.Equal(names, want) {
			t.Errorf("%s: DDL columns %v, want %v", table, names, want)
		}
	}
}

func TestLargeColumnsExist(t *testing.T) {
	for _, table := range Tables {
		have := map[string]bool{}
		for _, c := range Columns(table) {
			have[c.Name] = true
		}
		for _, c := range LargeColumns(table) {
			if !have[c] {
				t.Errorf("%s: large column %s is not a column", table, c)
			}
		}
	}
	if len(LargeColumns(TableHTTP)) == 0 {
		t.Error("http has no large columns")
	}
}
