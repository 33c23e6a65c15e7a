package infra

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// This file reads Terraform configurations with hashicorp/hcl, the parser
// Terraform itself uses, so that the tests can check the wiring of the
// modules without providers (terraform validate needs them from the
// registry): which resources reference which, what the literal settings
// are, and which policy documents each principal gets.

// tfModule is the parsed configuration of one Terraform directory.
type tfModule struct {
	dir    string
	blocks []*hclsyntax.Block // top-level blocks of every .tf file
	json   []*hcl.File        // .tf.json files
	src    map[string][]byte  // file name -> source
	vars   map[string]cty.Value
	locals map[string]cty.Value
}

// loadModule parses every .tf and .tf.json file of dir (not recursively)
// and evaluates the variable defaults, overridden by vars, and the locals
// that depend only on variables and other such locals.
func loadModule(t *testing.T, dir string, vars map[string]cty.Value) *tfModule {
	t.Helper()
	m := &tfModule{dir: dir, src: map[string][]byte{}, vars: map[string]cty.Value{}, locals: map[string]cty.Value{}}
	p := hclparse.NewParser()
	names, err := filepath.Glob(filepath.Join(dir, "*.tf"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no .tf files in %s (%v)", dir, err)
	}
	for _, name := range names {
		f, diags := p.ParseHCLFile(name)
		if diags.HasErrors() {
			t.Fatalf("parse %s: %s", name, diags.Error())
		}
		m.src[name] = f.Bytes
		m.blocks = append(m.blocks, f.Body.(*hclsyntax.Body).Blocks...)
	}
	jsonNames, _ := filepath.Glob(filepath.Join(dir, "*.tf.json"))
	for _, name := range jsonNames {
		f, diags := p.ParseJSONFile(name)
		if diags.HasErrors() {
			t.Fatalf("parse %s: %s", name, diags.Error())
		}
		m.json = append(m.json, f)
	}
	for _, b := range m.find("variable") {
		name := b.Labels[0]
		if v, ok := vars[name]; ok {
			m.vars[name] = v
			continue
		}
		if d, ok := b.Body.Attributes["default"]; ok {
			v, diags := d.Expr.Value(nil)
			if diags.HasErrors() {
				t.Fatalf("default of variable %s: %s", name, diags.Error())
			}
			m.vars[name] = v
		}
	}
	for name := range vars {
		if _, ok := m.vars[name]; !ok {
			t.Fatalf("%s has no variable %q", dir, name)
		}
	}
	// Locals: evaluate those that can be, until nothing changes.
	pending := map[string]hcl.Expression{}
	for _, b := range m.find("locals") {
		for name, a := range b.Body.Attributes {
			pending[name] = a.Expr
		}
	}
	for _, f := range m.json {
		attrs, diags := jsonLocals(f)
		if diags.HasErrors() {
			t.Fatalf("locals of %s: %s", dir, diags.Error())
		}
		for name, a := range attrs {
			pending[name] = a.Expr
		}
	}
	for progress := true; progress; {
		progress = false
		for name, expr := range pending {
			v, diags := expr.Value(m.ctx(nil))
			if !diags.HasErrors() && v.IsWhollyKnown() {
				m.locals[name] = v
				delete(pending, name)
				progress = true
			}
		}
	}
	return m
}

// jsonLocals returns the attributes of the locals blocks of a .tf.json file.
func jsonLocals(f *hcl.File) (hcl.Attributes, hcl.Diagnostics) {
	content, _, diags := f.Body.PartialContent(&hcl.BodySchema{Blocks: []hcl.BlockHeaderSchema{{Type: "locals"}}})
	out := hcl.Attributes{}
	for _, b := range content.Blocks {
		attrs, d := b.Body.JustAttributes()
		diags = append(diags, d...)
		for k, v := range attrs {
			out[k] = v
		}
	}
	return out, diags
}

// functions are the Terraform functions the tests evaluate.
var functions = map[string]function.Function{
	"trimsuffix": stdlib.TrimSuffixFunc,
	"replace":    stdlib.ReplaceFunc,
	"lower":      stdlib.LowerFunc,
	"concat":     stdlib.ConcatFunc,
	"merge":      stdlib.MergeFunc,
	"jsonencode": stdlib.JSONEncodeFunc,
}

// ctx returns an evaluation context with var, local, path.module and extra
// (each, resources, …).
func (m *tfModule) ctx(extra map[string]cty.Value) *hcl.EvalContext {
	vars := map[string]cty.Value{
		"var":   cty.ObjectVal(m.vars),
		"local": cty.ObjectVal(m.locals),
		"path":  cty.ObjectVal(map[string]cty.Value{"module": cty.StringVal(m.dir), "root": cty.StringVal(m.dir)}),
	}
	for k, v := range extra {
		vars[k] = v
	}
	return &hcl.EvalContext{Variables: vars, Functions: functions}
}

// find returns the top-level blocks of type typ whose labels start with
// labels.
func (m *tfModule) find(typ string, labels ...string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, b := range m.blocks {
		if b.Type == typ && len(b.Labels) >= len(labels) && slices.Equal(b.Labels[:len(labels)], labels) {
			out = append(out, b)
		}
	}
	return out
}

// resource returns resource typ.name, failing t if there is none.
func (m *tfModule) resource(t *testing.T, typ, name string) *hclsyntax.Block {
	t.Helper()
	bs := m.find("resource", typ, name)
	if len(bs) != 1 {
		t.Fatalf("%s: %d resources %s.%s, want 1", m.dir, len(bs), typ, name)
	}
	return bs[0]
}

// attr returns attribute name of body, failing t if it is missing.
func attr(t *testing.T, b *hclsyntax.Body, name string) hclsyntax.Expression {
	t.Helper()
	a, ok := b.Attributes[name]
	if !ok {
		t.Fatalf("%s: no attribute %q", b.SrcRange, name)
	}
	return a.Expr
}

// child returns the nested blocks of body of type typ (for dynamic blocks,
// typ "dynamic" and the label).
func child(b *hclsyntax.Body, typ string, labels ...string) []*hclsyntax.Block {
	var out []*hclsyntax.Block
	for _, c := range b.Blocks {
		if c.Type == typ && slices.Equal(c.Labels, labels) {
			out = append(out, c)
		}
	}
	return out
}

// text returns the source text of expr.
func (m *tfModule) text(expr hcl.Expression) string {
	r := expr.Range()
	src := m.src[r.Filename]
	if src == nil || r.End.Byte > len(src) {
		return fmt.Sprintf("<%s>", r)
	}
	return string(src[r.Start.Byte:r.End.Byte])
}

// refs returns the references of expr as dotted strings (index steps as
// ["key"]), sorted.
func refs(expr hcl.Expression) []string {
	var out []string
	for _, tr := range expr.Variables() {
		out = append(out, traversalString(tr))
	}
	sort.Strings(out)
	return out
}

func traversalString(tr hcl.Traversal) string {
	var b strings.Builder
	for _, step := range tr {
		switch s := step.(type) {
		case hcl.TraverseRoot:
			b.WriteString(s.Name)
		case hcl.TraverseAttr:
			b.WriteString("." + s.Name)
		case hcl.TraverseIndex:
			if s.Key.Type() == cty.String {
				fmt.Fprintf(&b, "[%q]", s.Key.AsString())
			} else {
				fmt.Fprintf(&b, "[%s]", s.Key.GoString())
			}
		}
	}
	return b.String()
}

// evalString evaluates expr to a string in m's context plus extra.
func (m *tfModule) evalString(t *testing.T, expr hcl.Expression, extra map[string]cty.Value) string {
	t.Helper()
	v, diags := expr.Value(m.ctx(extra))
	if diags.HasErrors() {
		t.Fatalf("evaluate %s: %s", m.text(expr), diags.Error())
	}
	if v.Type() != cty.String || !v.IsKnown() || v.IsNull() {
		t.Fatalf("%s is %#v, not a string", m.text(expr), v)
	}
	return v.AsString()
}

// evalStrings evaluates expr to a list of strings.
func (m *tfModule) evalStrings(t *testing.T, expr hcl.Expression, extra map[string]cty.Value) []string {
	t.Helper()
	v, diags := expr.Value(m.ctx(extra))
	if diags.HasErrors() {
		t.Fatalf("evaluate %s: %s", m.text(expr), diags.Error())
	}
	if !v.CanIterateElements() {
		t.Fatalf("%s is %#v, not a list", m.text(expr), v)
	}
	var out []string
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		if e.Type() != cty.String {
			t.Fatalf("%s has a non-string element %#v", m.text(expr), e)
		}
		out = append(out, e.AsString())
	}
	return out
}

// objectItem returns the value expression of key in an object constructor
// expression (keys as bare words or strings).
func objectItem(t *testing.T, expr hclsyntax.Expression, key string) hclsyntax.Expression {
	t.Helper()
	obj, ok := expr.(*hclsyntax.ObjectConsExpr)
	if !ok {
		t.Fatalf("%s: not an object constructor", expr.Range())
	}
	for _, it := range obj.Items {
		if objectKey(it.KeyExpr) == key {
			return it.ValueExpr
		}
	}
	t.Fatalf("%s: no key %q", expr.Range(), key)
	return nil
}

// objectKey returns the key of an object item: its bare word or its
// constant string value ("" when it is neither).
func objectKey(k hclsyntax.Expression) string {
	if w := hcl.ExprAsKeyword(k); w != "" {
		return w
	}
	v, diags := k.Value(nil)
	if diags.HasErrors() || v.Type() != cty.String {
		return ""
	}
	return v.AsString()
}

// templateCall is a templatefile(path, vars) call of a configuration.
type templateCall struct {
	Block string   // the resource address the call is in, "aws_iam_role_policy.ingest_s3"
	Attr  string   // the attribute
	File  string   // the template's path, cleaned
	Vars  []string // the names of the variables passed, sorted
	Call  *hclsyntax.FunctionCallExpr
}

// templateCalls returns every templatefile call in the module's resources,
// with the template path evaluated.
func (m *tfModule) templateCalls(t *testing.T) []templateCall {
	t.Helper()
	var out []templateCall
	for _, b := range m.blocks {
		if b.Type != "resource" {
			continue
		}
		addr := strings.Join(b.Labels, ".")
		var walkBody func(body *hclsyntax.Body)
		walkBody = func(body *hclsyntax.Body) {
			for name, a := range body.Attributes {
				_ = hclsyntax.VisitAll(a.Expr, func(n hclsyntax.Node) hcl.Diagnostics {
					call, ok := n.(*hclsyntax.FunctionCallExpr)
					if !ok || call.Name != "templatefile" {
						return nil
					}
					if len(call.Args) != 2 {
						t.Fatalf("%s: templatefile with %d arguments", call.Range(), len(call.Args))
					}
					tc := templateCall{Block: addr, Attr: name, Call: call}
					tc.File = filepath.Clean(m.evalString(t, call.Args[0], nil))
					obj, ok := call.Args[1].(*hclsyntax.ObjectConsExpr)
					if !ok {
						t.Fatalf("%s: templatefile variables are not an object constructor", call.Range())
					}
					for _, it := range obj.Items {
						tc.Vars = append(tc.Vars, objectKey(it.KeyExpr))
					}
					sort.Strings(tc.Vars)
					out = append(out, tc)
					return nil
				})
			}
			for _, c := range body.Blocks {
				walkBody(c.Body)
			}
		}
		walkBody(b.Body)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Block+out[i].Attr < out[j].Block+out[j].Attr })
	return out
}

// placeholder matches Terraform template interpolations and directives.
var placeholder = regexp.MustCompile(`[$%]\{([^}]*)\}`)

// renderTemplate renders a policy template the way Terraform's templatefile
// does for templates made only of ${name} interpolations, which is all the
// policy templates may use: any other interpolation, directive or
// undefined name fails t.
func renderTemplate(t *testing.T, file string, vars map[string]string) string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	src := string(b)
	for _, m := range placeholder.FindAllStringSubmatch(src, -1) {
		name := m[1]
		if !strings.HasPrefix(m[0], "$") || !regexp.MustCompile(`^[a-z_]+$`).MatchString(name) {
			t.Fatalf("%s: %s: policy templates may hold only ${name} interpolations", file, m[0])
		}
		if _, ok := vars[name]; !ok {
			t.Fatalf("%s: ${%s} is not among the variables passed (%v)", file, name, vars)
		}
	}
	return placeholder.ReplaceAllStringFunc(src, func(s string) string { return vars[s[2:len(s)-1]] })
}

// templateVars returns the names of the ${…} interpolations of a template.
func templateVars(t *testing.T, file string) []string {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, m := range placeholder.FindAllStringSubmatch(string(b), -1) {
		seen[m[1]] = true
	}
	var out []string
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// policy is an IAM (or MinIO) policy document.
type policy struct {
	Version   string
	Statement []statement
}

type statement struct {
	Sid       string
	Effect    string
	Principal any
	Action    []string
	Resource  []string
	Condition map[string]map[string]any
}

func parsePolicy(t *testing.T, name, doc string) policy {
	t.Helper()
	var p policy
	dec := json.NewDecoder(strings.NewReader(doc))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		t.Fatalf("policy %s: %v\n%s", name, err, doc)
	}
	if p.Version != "2012-10-17" || len(p.Statement) == 0 {
		t.Fatalf("policy %s: version %q, %d statements", name, p.Version, len(p.Statement))
	}
	return p
}

// readOnly reports whether an action only reads.
func readOnly(action string) bool {
	_, verb, _ := strings.Cut(action, ":")
	for _, p := range []string{"Get", "List", "Describe", "Head"} {
		if strings.HasPrefix(verb, p) {
			return true
		}
	}
	return false
}

// globMatch reports whether an IAM resource pattern (* and ? wildcards)
// matches s.
func globMatch(pattern, s string) bool {
	re := "^" + strings.NewReplacer(`\*`, ".*", `\?`, ".").Replace(regexp.QuoteMeta(pattern)) + "$"
	return regexp.MustCompile(re).MatchString(s)
}
