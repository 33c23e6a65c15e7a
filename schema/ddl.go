package schema

import (
	"fmt"
	"reflect"
	"strings"
)

// Column is one column of a lake table as SQL engines see it.
type Column struct {
	// Name is the Parquet column name, taken from the row type's parquet tag.
	Name string
	// SQLType is the Hive/Athena type: timestamp, bigint, int, boolean,
	// string or array<string>.
	SQLType string
}

// AthenaProjectionStart is the first day of the dt partition projection in
// the Athena DDL. Queries that do not filter on dt enumerate every hour from
// this day to now.
const AthenaProjectionStart = "2020-01-01"

// rowTypes maps each table to its Go row type.
var rowTypes = map[string]reflect.Type{
	TableHTTP:          reflect.TypeFor[HTTP](),
	TableTCP:           reflect.TypeFor[TCP](),
	TableDNS:           reflect.TypeFor[DNS](),
	TableTLS:           reflect.TypeFor[TLS](),
	TableParseStatus:   reflect.TypeFor[ParseStatus](),
	TableCaptureStatus: reflect.TypeFor[CaptureStatus](),
	TableEdges1m:       reflect.TypeFor[Edges1m](),
}

// RowType returns the Go row type of table, or nil for an unknown table.
func RowType(table string) reflect.Type {
	return rowTypes[table]
}

// largeColumns lists, per table, the columns holding bulky free text
// (headers and bodies). Writers skip page-level statistics on them: min/max
// of a body is useless for pruning and would copy whole bodies into every
// page header.
var largeColumns = map[string][]string{
	TableHTTP: {"req_headers", "resp_headers", "req_body", "resp_body"},
}

// LargeColumns returns the columns of table that hold bulky free text
// (headers, bodies). The result is a copy.
func LargeColumns(table string) []string {
	return append([]string(nil), largeColumns[table]...)
}

// Columns returns the columns of table in file order, derived by reflection
// from the parquet tags of its row type. It returns nil for an unknown table
// or for a row type with a field of a type the lake does not use (the
// schema tests make sure that never happens).
func Columns(table string) []Column {
	t := rowTypes[table]
	if t == nil {
		return nil
	}
	cols, err := columnsOf(t)
	if err != nil {
		return nil
	}
	return cols
}

// columnsOf maps the exported fields of struct type t to columns.
func columnsOf(t reflect.Type) ([]Column, error) {
	if t.Kind() != reflect.Struct {
		return nil, fmt.Errorf("row type %s is not a struct", t)
	}
	cols := make([]Column, 0, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts := parseTag(f.Tag.Get("parquet"))
		if name == "-" && len(opts) == 0 {
			continue
		}
		if name == "" {
			name = f.Name
		}
		typ, err := sqlType(f.Type, opts)
		if err != nil {
			return nil, fmt.Errorf("column %s of %s: %w", name, t, err)
		}
		cols = append(cols, Column{Name: name, SQLType: typ})
	}
	return cols, nil
}

// parseTag splits a parquet struct tag into the column name and its options.
func parseTag(tag string) (name string, opts []string) {
	parts := strings.Split(tag, ",")
	return parts[0], parts[1:]
}

// sqlType maps a Go field type and its parquet tag options to a Hive type.
func sqlType(t reflect.Type, opts []string) (string, error) {
	switch t.Kind() {
	case reflect.Int64:
		for _, o := range opts {
			if o == "timestamp" || strings.HasPrefix(o, "timestamp(") {
				return "timestamp", nil
			}
		}
		return "bigint", nil
	case reflect.Int32:
		return "int", nil
	case reflect.Bool:
		return "boolean", nil
	case reflect.String:
		return "string", nil
	case reflect.Slice:
		if t.Elem().Kind() == reflect.String {
			return "array<string>", nil
		}
	}
	return "", fmt.Errorf("unsupported Go type %s", t)
}

// AthenaDDL returns the CREATE EXTERNAL TABLE statement for table, whose
// files live below lakeRoot (an s3:// URL ending in /lake, the same root
// DuckDBViews takes): the table location is lakeRoot/<table>/. The columns
// come from Columns; dt and hour are string partition columns resolved by
// partition projection (dt as a date from AthenaProjectionStart to NOW,
// hour as two digits 00..23), so no partition ever has to be registered.
// It returns "" for an unknown table.
func AthenaDDL(table, lakeRoot string) string {
	cols := Columns(table)
	if cols == nil {
		return ""
	}
	loc := strings.TrimRight(lakeRoot, "/") + "/" + table + "/"
	loc = strings.ReplaceAll(loc, "'", `\'`)

	var b strings.Builder
	fmt.Fprintf(&b, "CREATE EXTERNAL TABLE IF NOT EXISTS `%s` (\n", table)
	for i, c := range cols {
		sep := ","
		if i == len(cols)-1 {
			sep = ""
		}
		fmt.Fprintf(&b, "  `%s` %s%s\n", c.Name, c.SQLType, sep)
	}
	b.WriteString(")\n")
	b.WriteString("PARTITIONED BY (`dt` string, `hour` string)\n")
	b.WriteString("STORED AS PARQUET\n")
	fmt.Fprintf(&b, "LOCATION '%s'\n", loc)
	b.WriteString("TBLPROPERTIES (\n")
	props := AthenaProperties(loc)
	for i, p := range props {
		sep := ","
		if i == len(props)-1 {
			sep = ""
		}
		fmt.Fprintf(&b, "  '%s'='%s'%s\n", p[0], p[1], sep)
	}
	b.WriteString(")")
	return b.String()
}

// AthenaProperties returns the table properties (TBLPROPERTIES) of the
// Athena table whose files live at location (an s3:// URL ending in
// /<table>/), in DDL order: partition projection of dt and hour, the
// location template and the schema version. AthenaDDL writes them; the Glue
// tables of infra/terraform/modules/aws carry the same ones.
func AthenaProperties(location string) [][2]string {
	return [][2]string{
		{"projection.enabled", "true"},
		{"projection.dt.type", "date"},
		{"projection.dt.format", "yyyy-MM-dd"},
		{"projection.dt.range", AthenaProjectionStart + ",NOW"},
		{"projection.dt.interval", "1"},
		{"projection.dt.interval.unit", "DAYS"},
		{"projection.hour.type", "integer"},
		{"projection.hour.range", "0,23"},
		{"projection.hour.digits", "2"},
		{"storage.location.template", location + "dt=${dt}/hour=${hour}/"},
		{"flowlake.schema_version", fmt.Sprint(Version)},
	}
}
