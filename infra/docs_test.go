package infra

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

const (
	beginInputs = "<!-- inputs: generated from variables.tf by `go test ./infra -update`; do not edit -->\n"
	endInputs   = "<!-- end of inputs -->\n"
)

// inputsTable renders the variables of a Terraform directory as a
// Markdown table, in file order.
func inputsTable(t *testing.T, dir string) string {
	t.Helper()
	m := loadModule(t, dir, nil)
	var b strings.Builder
	b.WriteString("| name | type | default | description |\n| --- | --- | --- | --- |\n")
	for _, v := range m.find("variable") {
		body := v.Body
		typ, def := "", "**required**"
		if a, ok := body.Attributes["type"]; ok {
			typ = "`" + m.text(a.Expr) + "`"
		}
		if a, ok := body.Attributes["default"]; ok {
			def = "`" + strings.Join(strings.Fields(m.text(a.Expr)), " ") + "`"
		}
		desc := ""
		if a, ok := body.Attributes["description"]; ok {
			desc = m.evalString(t, a.Expr, nil)
		} else {
			t.Errorf("%s: variable %s has no description", dir, v.Labels[0])
		}
		if a, ok := body.Attributes["sensitive"]; ok && m.text(a.Expr) == "true" {
			desc += " (sensitive)"
		}
		fmt.Fprintf(&b, "| `%s` | %s | %s | %s |\n", v.Labels[0], typ, def, strings.ReplaceAll(desc, "|", `\|`))
	}
	return b.String()
}

// TestTerraformREADMEs checks that the inputs table of the README of each
// module and example is the one made from its variables.tf (-update
// rewrites it), so every variable is documented where users read.
func TestTerraformREADMEs(t *testing.T) {
	for _, dir := range []string{awsModule, minioModule, awsExample, "terraform/examples/minio-onprem"} {
		file := filepath.Join(dir, "README.md")
		doc, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		before, rest, ok1 := strings.Cut(string(doc), beginInputs)
		_, after, ok2 := strings.Cut(rest, endInputs)
		if !ok1 || !ok2 {
			t.Errorf("%s: no inputs markers", file)
			continue
		}
		fresh := before + beginInputs + inputsTable(t, dir) + endInputs + after
		if *update {
			if err := os.WriteFile(file, []byte(fresh), 0o644); err != nil {
				t.Fatal(err)
			}
		} else if fresh != string(doc) {
			t.Errorf("%s: the inputs table is not that of variables.tf: go test ./infra -update", file)
		}
	}
}
