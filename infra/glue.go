package infra

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/flowlake/flowlake/schema"
)

// GlueTablesFile is the generated Terraform file of the AWS module, relative
// to this package's directory.
const GlueTablesFile = "terraform/modules/aws/glue_tables.tf.json"

// locationTemplate is the table property the module sets itself: it holds
// the bucket name.
const locationTemplate = "storage.location.template"

// GlueColumn is a column or partition key of a Glue table.
type GlueColumn struct {
	Name string `json:"name"`
	Type string `json:"type"`
}

// GlueTable is what the AWS module needs to declare one Glue table.
type GlueTable struct {
	Description   string            `json:"description"`
	Columns       []GlueColumn      `json:"columns"`
	PartitionKeys []GlueColumn      `json:"partition_keys"`
	Parameters    map[string]string `json:"parameters"`
}

// GlueTables returns the Glue table of every lake table, from schema: the
// columns of schema.Columns, the partition keys dt and hour (strings, as in
// schema.AthenaDDL) and the table properties of schema.AthenaProperties
// except the location template, which the module builds from the bucket.
func GlueTables() (map[string]GlueTable, error) {
	out := map[string]GlueTable{}
	for _, table := range schema.Tables {
		cols := schema.Columns(table)
		if len(cols) == 0 {
			return nil, fmt.Errorf("glue tables: table %q has no columns in schema", table)
		}
		t := GlueTable{
			Description:   fmt.Sprintf("flowlake lake table %s (schema v%d, generated from schema/)", table, schema.Version),
			PartitionKeys: []GlueColumn{{"dt", "string"}, {"hour", "string"}},
			Parameters:    map[string]string{},
		}
		for _, c := range cols {
			t.Columns = append(t.Columns, GlueColumn{c.Name, c.SQLType})
		}
		for _, p := range schema.AthenaProperties("s3://bucket/lake/" + table + "/") {
			if p[0] != locationTemplate {
				t.Parameters[p[0]] = p[1]
			}
		}
		out[table] = t
	}
	return out, nil
}

// GlueTablesJSON returns the content of GlueTablesFile: a Terraform JSON
// file defining local.glue_tables from GlueTables. Strings are escaped
// for Terraform's template syntax ("${" and "%{" are literal).
func GlueTablesJSON() ([]byte, error) {
	tables, err := GlueTables()
	if err != nil {
		return nil, err
	}
	doc := map[string]any{
		"//":     "Generated from schema/ by `go generate ./infra` (infra/gluegen). DO NOT EDIT.",
		"locals": map[string]any{"glue_tables": tables},
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("glue tables: %w", err)
	}
	return []byte(escapeTemplate(buf.String())), nil
}

// escapeTemplate makes Terraform read "${" and "%{" in JSON strings
// literally.
func escapeTemplate(s string) string {
	return strings.NewReplacer("${", "$${", "%{", "%%{").Replace(s)
}
