package infra

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"

	"github.com/flowlake/flowlake/infra/cost"
	"github.com/flowlake/flowlake/internal/notify"
	"github.com/flowlake/flowlake/schema"
)

var update = flag.Bool("update", false, "rewrite the generated files (glue tables, recipes' DDL) instead of comparing")

const (
	awsModule   = "terraform/modules/aws"
	minioModule = "terraform/modules/minio"
	awsExample  = "terraform/examples/aws"
	lambdaMK    = "../functions/lambda.mk"
)

// lambdaBuild is what functions/lambda.mk builds.
type lambdaBuild struct {
	functions, archs []string
	out              string
}

// readLambdaMK reads the function and architecture lists and the output
// directory of `make lambda`, and checks its zip name pattern.
func readLambdaMK(t *testing.T) lambdaBuild {
	t.Helper()
	b, err := os.ReadFile(lambdaMK)
	if err != nil {
		t.Fatal(err)
	}
	get := func(name string) string {
		m := regexp.MustCompile(`(?m)^` + name + `\s*:=\s*(.*)$`).FindSubmatch(b)
		if m == nil {
			t.Fatalf("%s: no %s := …", lambdaMK, name)
		}
		return strings.TrimSpace(string(m[1]))
	}
	lb := lambdaBuild{functions: strings.Fields(get("LAMBDA_FUNCTIONS")), archs: strings.Fields(get("LAMBDA_ARCHS")), out: get("LAMBDA_OUT")}
	if zips := get("LAMBDA_ZIPS"); !strings.Contains(zips, "$(LAMBDA_OUT)/$(f)-$(a).zip") {
		t.Fatalf("%s: LAMBDA_ZIPS = %s: the test expects $(LAMBDA_OUT)/$(f)-$(a).zip", lambdaMK, zips)
	}
	return lb
}

// TestAWSLambdaZips checks that each function of the AWS module deploys
// the zip `make lambda` builds for it, for both architectures, as a
// provided.al2023 bootstrap, and that the example points lambda_dir at
// make's output directory.
func TestAWSLambdaZips(t *testing.T) {
	lb := readLambdaMK(t)
	if want := []string{"ingest", "parse", "query"}; !slices.Equal(lb.functions, want) {
		t.Errorf("make lambda builds %v, want %v", lb.functions, want)
	}
	for _, arch := range lb.archs {
		m := loadModule(t, awsModule, map[string]cty.Value{"lambda_dir": cty.StringVal("LAMBDA_DIR"), "architecture": cty.StringVal(arch)})
		wantArch := map[string]string{"arm64": "arm64", "amd64": "x86_64"}[arch]
		for _, fn := range lb.functions {
			r := m.resource(t, "aws_lambda_function", fn).Body
			want := "LAMBDA_DIR/" + fn + "-" + arch + ".zip"
			if got := m.evalString(t, attr(t, r, "filename"), nil); got != want {
				t.Errorf("%s: %s deploys %s, want %s", arch, fn, got, want)
			}
			hash := attr(t, r, "source_code_hash").(*hclsyntax.FunctionCallExpr)
			if hash.Name != "filebase64sha256" || m.text(hash.Args[0]) != m.text(attr(t, r, "filename")) {
				t.Errorf("%s: source_code_hash %s does not hash the deployed zip", fn, m.text(hash))
			}
			for name, want := range map[string]string{"runtime": "provided.al2023", "handler": "bootstrap"} {
				if got := m.evalString(t, attr(t, r, name), nil); got != want {
					t.Errorf("%s: %s %q, want %q", fn, name, got, want)
				}
			}
			if got := m.evalStrings(t, attr(t, r, "architectures"), nil); !slices.Equal(got, []string{wantArch}) {
				t.Errorf("%s: architectures %v with zips of %s, want [%s]", fn, got, arch, wantArch)
			}
			role := refs(attr(t, r, "role"))
			if !slices.Equal(role, []string{`aws_iam_role.fn["` + fn + `"].arn`}) {
				t.Errorf("%s: role %v, want its own role", fn, role)
			}
		}
	}
	// The example: lambda_dir is make's output directory at the repository root.
	ex := loadModule(t, awsExample, map[string]cty.Value{"bucket_name": cty.StringVal("b")})
	mod := ex.find("module", "flowlake")[0].Body
	dir := filepath.Clean(ex.evalString(t, attr(t, mod, "lambda_dir"), nil))
	if want := filepath.Clean(filepath.Join("..", lb.out)); dir != want {
		t.Errorf("example lambda_dir %s, want %s (the repository's %s)", dir, want, lb.out)
	}
	if src := filepath.Clean(filepath.Join(awsExample, ex.evalString(t, attr(t, mod, "source"), nil))); src != filepath.Clean(awsModule) {
		t.Errorf("example uses module %s, want %s", src, awsModule)
	}
}

// TestAWSEventWiring checks the event path: the bucket notifies the event
// queue of the ObjectCreated events of the prefixes the functions handle
// (notify.Prefixes); the queue feeds ingest with partial batch failures and
// a dead-letter queue; ingest starts parse by name; parse's asynchronous
// failures go to its own dead-letter queue; the schedule runs parse.
func TestAWSEventWiring(t *testing.T) {
	m := loadModule(t, awsModule, map[string]cty.Value{"lambda_dir": cty.StringVal("L")})
	n := m.resource(t, "aws_s3_bucket_notification", "data").Body
	if got := refs(attr(t, n, "bucket")); !slices.Equal(got, []string{"aws_s3_bucket.data.id"}) {
		t.Errorf("notification of %v, want the data bucket", got)
	}
	checkQueueRules(t, m, n, "aws_sqs_queue.events.arn")

	esm := m.resource(t, "aws_lambda_event_source_mapping", "ingest").Body
	if got := refs(attr(t, esm, "event_source_arn")); !slices.Equal(got, []string{"aws_sqs_queue.events.arn"}) {
		t.Errorf("ingest reads %v, want the event queue", got)
	}
	if got := refs(attr(t, esm, "function_name")); !slices.Equal(got, []string{"aws_lambda_function.ingest.arn"}) {
		t.Errorf("the event queue feeds %v, want ingest", got)
	}
	if got := m.evalStrings(t, attr(t, esm, "function_response_types"), nil); !slices.Equal(got, []string{"ReportBatchItemFailures"}) {
		t.Errorf("function_response_types %v: ingest reports partial batch failures", got)
	}
	q := m.resource(t, "aws_sqs_queue", "events").Body
	if got := refs(attr(t, q, "redrive_policy")); !slices.Equal(got, []string{"aws_sqs_queue.events_dlq.arn"}) {
		t.Errorf("event queue redrives to %v, want events_dlq", got)
	}
	qp := m.resource(t, "aws_sqs_queue_policy", "events").Body
	if got := refs(attr(t, qp, "queue_url")); !slices.Equal(got, []string{"aws_sqs_queue.events.id"}) {
		t.Errorf("queue policy of %v", got)
	}

	ingest := m.resource(t, "aws_lambda_function", "ingest").Body
	env := attr(t, child(ingest, "environment")[0].Body, "variables")
	if got := refs(objectItem(t, env, "FLOWLAKE_PARSE_FUNCTION")); !slices.Equal(got, []string{"aws_lambda_function.parse.function_name"}) {
		t.Errorf("ingest starts %v, want parse", got)
	}
	for _, fn := range []string{"ingest", "parse", "query"} {
		r := m.resource(t, "aws_lambda_function", fn).Body
		env := attr(t, child(r, "environment")[0].Body, "variables")
		if fn == "query" {
			env = env.(*hclsyntax.FunctionCallExpr).Args[2] // merge(local.query_defaults, var.query_environment, {…})
		}
		if got := refs(objectItem(t, env, "FLOWLAKE_STORE")); !slices.Equal(got, []string{"local.store_url"}) {
			t.Errorf("%s: FLOWLAKE_STORE from %v", fn, got)
		}
	}

	inv := m.resource(t, "aws_lambda_function_event_invoke_config", "parse").Body
	if got := refs(attr(t, inv, "function_name")); !slices.Equal(got, []string{"aws_lambda_function.parse.function_name"}) {
		t.Errorf("invoke config of %v, want parse", got)
	}
	dest := child(child(inv, "destination_config")[0].Body, "on_failure")
	if len(dest) != 1 || !slices.Equal(refs(attr(t, dest[0].Body, "destination")), []string{"aws_sqs_queue.parse_dlq.arn"}) {
		t.Errorf("parse's failed invocations do not go to parse_dlq")
	}
	tgt := m.resource(t, "aws_cloudwatch_event_target", "reconcile").Body
	if got := refs(attr(t, tgt, "arn")); !slices.Equal(got, []string{"aws_lambda_function.parse.arn"}) {
		t.Errorf("the reconcile schedule runs %v, want parse", got)
	}

	// query behind the HTTP API, which may invoke it.
	integ := m.resource(t, "aws_apigatewayv2_integration", "query").Body
	if got := refs(attr(t, integ, "integration_uri")); !slices.Equal(got, []string{"aws_lambda_function.query.invoke_arn"}) {
		t.Errorf("API integration with %v, want query", got)
	}
	if got := m.evalString(t, attr(t, integ, "payload_format_version"), nil); got != "2.0" {
		t.Errorf("payload format %s", got)
	}
	perm := m.resource(t, "aws_lambda_permission", "api").Body
	if got := refs(attr(t, perm, "function_name")); !slices.Equal(got, []string{"aws_lambda_function.query.function_name"}) {
		t.Errorf("API permission on %v", got)
	}

	// CloudFront: the UI bucket through OAC by default, the API under /api/.
	cf := m.resource(t, "aws_cloudfront_distribution", "ui").Body
	origins := map[string][]string{}
	for _, o := range child(cf, "origin") {
		r := refs(attr(t, o.Body, "domain_name"))
		if oac, ok := o.Body.Attributes["origin_access_control_id"]; ok {
			r = append(r, refs(oac.Expr)...)
		}
		origins[m.evalString(t, attr(t, o.Body, "origin_id"), nil)] = r
	}
	if got := origins["ui"]; !slices.Equal(got, []string{"aws_s3_bucket.ui.bucket_regional_domain_name", "aws_cloudfront_origin_access_control.ui.id"}) {
		t.Errorf("UI origin %v: want the UI bucket through the origin access control", got)
	}
	if got := origins["api"]; !slices.Equal(got, []string{"aws_apigatewayv2_api.query.api_endpoint"}) {
		t.Errorf("API origin %v", got)
	}
	if got := m.evalString(t, attr(t, child(cf, "default_cache_behavior")[0].Body, "target_origin_id"), nil); got != "ui" {
		t.Errorf("default behavior to %s, want ui", got)
	}
	api := child(cf, "ordered_cache_behavior")
	if len(api) != 1 || m.evalString(t, attr(t, api[0].Body, "path_pattern"), nil) != "/api/*" || m.evalString(t, attr(t, api[0].Body, "target_origin_id"), nil) != "api" {
		t.Errorf("no /api/* behavior to the API origin")
	}
	if len(child(cf, "custom_error_response")) != 0 {
		t.Error("custom error responses would replace the API's 403 and 404 too")
	}
}

// TestAWSLifecycle checks the data bucket's lifecycle: what only serves
// parsing expires (each prefix after its variable's days), the lake's files
// larger than cost.MinTransitionBytes move to Standard-IA and Glacier IR;
// and the bucket blocks public access and is encrypted.
func TestAWSLifecycle(t *testing.T) {
	m := loadModule(t, awsModule, map[string]cty.Value{"lambda_dir": cty.StringVal("L")})
	lc := m.resource(t, "aws_s3_bucket_lifecycle_configuration", "data").Body
	expire := map[string]string{}
	for _, r := range child(lc, "rule") {
		f := child(r.Body, "filter")[0].Body
		exp := child(r.Body, "expiration")
		if a, ok := f.Attributes["prefix"]; ok && len(exp) == 1 {
			expire[m.evalString(t, a.Expr, nil)] = m.text(attr(t, exp[0].Body, "days"))
		}
	}
	want := map[string]string{
		"raw/": "var.raw_retention_days", "state/": "var.raw_retention_days", "secrets/": "var.secrets_retention_days",
		"status/": "var.status_retention_days", "quarantine/": "var.quarantine_retention_days",
	}
	for p, v := range want {
		if expire[p] != v {
			t.Errorf("%s expires after %q, want %s", p, expire[p], v)
		}
	}
	var tiers *hclsyntax.Body
	for _, d := range child(lc, "dynamic", "rule") {
		c := child(d.Body, "content")[0].Body
		if m.evalString(t, attr(t, c, "id"), nil) == "lake-tiers" {
			tiers = c
		}
	}
	if tiers == nil {
		t.Fatal("no lake-tiers rule")
	}
	and := child(child(tiers, "filter")[0].Body, "and")[0].Body
	if p := m.evalString(t, attr(t, and, "prefix"), nil); p != "lake/" {
		t.Errorf("lake-tiers on %s", p)
	}
	if n := m.text(attr(t, and, "object_size_greater_than")); n != fmt.Sprint(cost.MinTransitionBytes) {
		t.Errorf("lake-tiers for objects above %s bytes; the cost model assumes %d", n, cost.MinTransitionBytes)
	}
	var classes []string
	for _, d := range child(tiers, "dynamic", "transition") {
		classes = append(classes, m.evalString(t, attr(t, child(d.Body, "content")[0].Body, "storage_class"), nil))
	}
	if !slices.Equal(classes, []string{"STANDARD_IA", "GLACIER_IR"}) {
		t.Errorf("lake transitions %v", classes)
	}
	pab := m.resource(t, "aws_s3_bucket_public_access_block", "data").Body
	for _, a := range []string{"block_public_acls", "block_public_policy", "ignore_public_acls", "restrict_public_buckets"} {
		if m.text(attr(t, pab, a)) != "true" {
			t.Errorf("public access block: %s is not true", a)
		}
	}
	sse := m.resource(t, "aws_s3_bucket_server_side_encryption_configuration", "data").Body
	def := child(child(sse, "rule")[0].Body, "apply_server_side_encryption_by_default")[0].Body
	if got := m.evalString(t, attr(t, def, "sse_algorithm"), nil); got != "AES256" {
		t.Errorf("default encryption %s", got)
	}
}

// checkQueueRules checks the dynamic "queue" blocks of a bucket
// notification: one per notify.Prefixes, event notify.EventCreated, to the
// target arnRef.
func checkQueueRules(t *testing.T, m *tfModule, n *hclsyntax.Body, arnRef string) {
	t.Helper()
	dyn := child(n, "dynamic", "queue")
	if len(dyn) != 1 {
		t.Fatalf("%d dynamic queue blocks, want 1", len(dyn))
	}
	prefixes := m.evalStrings(t, attr(t, dyn[0].Body, "for_each"), nil)
	if !sameSet(prefixes, notify.Prefixes) {
		t.Errorf("notifications for prefixes %v, want notify.Prefixes %v", prefixes, notify.Prefixes)
	}
	content := child(dyn[0].Body, "content")[0].Body
	if got := refs(attr(t, content, "queue_arn")); !slices.Equal(got, []string{arnRef}) {
		t.Errorf("notifications go to %v, want %s", got, arnRef)
	}
	if got := m.evalStrings(t, attr(t, content, "events"), nil); !slices.Equal(got, []string{notify.EventCreated}) {
		t.Errorf("notification events %v, want [%s]", got, notify.EventCreated)
	}
	if got := m.text(attr(t, content, "filter_prefix")); got != "queue.value" {
		t.Errorf("filter_prefix = %s, want queue.value", got)
	}
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// principalDocs maps each principal of a module to the S3 policy documents
// (file names in terraform/policies, without .json) it gets.
type principalDocs map[string][]string

// TestAWSPolicies checks who gets which policy document in the AWS module
// (each function its own document, each agent user the agent document),
// that templatefile passes exactly the variables each template uses, and
// that no Allow statement of any document the module renders — the shared
// S3 documents, the runtime documents, the queue and bucket policies —
// puts a write action on a wildcard resource.
func TestAWSPolicies(t *testing.T) {
	m := loadModule(t, awsModule, map[string]cty.Value{"lambda_dir": cty.StringVal("L")})
	got := principalDocs{}
	for _, tc := range m.templateCalls(t) {
		checkTemplateVars(t, tc)
		if filepath.Dir(tc.File) != filepath.Clean(policyDir) {
			checkRuntimePolicy(t, m, tc)
			continue
		}
		doc := strings.TrimSuffix(filepath.Base(tc.File), ".json")
		blockType, name, _ := strings.Cut(tc.Block, ".")
		b := m.resource(t, blockType, name).Body
		var principal string
		switch blockType {
		case "aws_iam_role_policy":
			r := refs(attr(t, b, "role"))
			if len(r) != 1 || !regexp.MustCompile(`^aws_iam_role\.fn\["[a-z]+"\]\.id$`).MatchString(r[0]) {
				t.Fatalf("%s: role %v", tc.Block, r)
			}
			principal = strings.Split(r[0], `"`)[1]
		case "aws_iam_user_policy":
			if u := m.text(attr(t, b, "user")); u != "aws_iam_user.agent[each.key].name" {
				t.Fatalf("%s: user %s, want each agent's own user", tc.Block, u)
			}
			principal = "agent"
			if got := m.text(objectItem(t, tc.Call.Args[1], "agent")); got != "each.key" {
				t.Errorf("%s: agent = %s, want each.key (the agent's own id)", tc.Block, got)
			}
		default:
			t.Fatalf("%s renders %s: not a role or user policy", tc.Block, tc.File)
		}
		if got := m.text(objectItem(t, tc.Call.Args[1], "bucket_arn")); got != "local.bucket_arn" {
			t.Errorf("%s: bucket_arn = %s", tc.Block, got)
		}
		got[principal] = append(got[principal], doc)
	}
	want := principalDocs{"ingest": {"ingest"}, "parse": {"parse"}, "query": {"query"}, "agent": {"agent"}}
	checkPrincipalDocs(t, got, want)
	if v, ok := m.locals["policy_dir"]; !ok || filepath.Clean(v.AsString()) != filepath.Clean(policyDir) {
		t.Errorf("local.policy_dir %v, want %s", v, policyDir)
	}
}

// TestMinIOModule checks the MinIO module: the notification target and
// bucket rules (webhook or NATS, the prefixes of notify.Prefixes), and who
// gets which shared policy document: the functions hosts ingest and
// parse, the query server query, each agent the agent document for its id.
func TestMinIOModule(t *testing.T) {
	for _, kind := range []string{notify.KindWebhook, notify.KindNATS} {
		m := loadModule(t, minioModule, map[string]cty.Value{"notification_target": cty.StringVal(kind), "target_id": cty.StringVal("FLOWLAKE")})
		if got, want := m.locals["queue_arn"].AsString(), notify.ARN("FLOWLAKE", kind); got != want {
			t.Errorf("%s: queue ARN %s, want %s", kind, got, want)
		}
		n := m.resource(t, "minio_s3_bucket_notification", "functions").Body
		checkQueueRules(t, m, n, "local.queue_arn")
	}
	m := loadModule(t, minioModule, nil)
	for _, target := range []string{"minio_notify_webhook", "minio_notify_nats"} {
		b := m.resource(t, target, "functions").Body
		if got := refs(attr(t, b, "queue_dir")); !slices.Equal(got, []string{"var.queue_dir"}) {
			t.Errorf("%s: queue_dir from %v: without it MinIO drops undelivered events", target, got)
		}
		if got := refs(attr(t, b, "name")); !slices.Equal(got, []string{"var.target_id"}) {
			t.Errorf("%s: name from %v", target, got)
		}
	}
	policyDoc := map[string]string{} // minio_iam_policy name -> document
	for _, tc := range m.templateCalls(t) {
		checkTemplateVars(t, tc)
		blockType, name, _ := strings.Cut(tc.Block, ".")
		if blockType != "minio_iam_policy" || filepath.Dir(tc.File) != filepath.Clean(policyDir) {
			t.Errorf("%s renders %s", tc.Block, tc.File)
			continue
		}
		policyDoc[name] = strings.TrimSuffix(filepath.Base(tc.File), ".json")
	}
	got := principalDocs{}
	userRe := regexp.MustCompile(`^minio_iam_user\.(\w+)(\[each\.key\])?\.id$`)
	policyRe := regexp.MustCompile(`^minio_iam_policy\.(\w+)(\[each\.key\])?\.id$`)
	for _, b := range m.find("resource", "minio_iam_user_policy_attachment") {
		u := userRe.FindStringSubmatch(m.text(attr(t, b.Body, "user_name")))
		p := policyRe.FindStringSubmatch(m.text(attr(t, b.Body, "policy_name")))
		if u == nil || p == nil {
			t.Fatalf("attachment %s: user %s, policy %s", b.Labels[1], m.text(attr(t, b.Body, "user_name")), m.text(attr(t, b.Body, "policy_name")))
		}
		if perAgent := u[1] == "agent"; perAgent != (u[2] != "") || perAgent != (p[2] != "") {
			t.Errorf("attachment %s: each agent must get its own policy (%s, %s)", b.Labels[1], u[0], p[0])
		}
		got[u[1]] = append(got[u[1]], policyDoc[p[1]])
	}
	checkPrincipalDocs(t, got, principalDocs{"functions": {"ingest", "parse"}, "query": {"query"}, "agent": {"agent"}})
	for _, b := range m.find("resource", "minio_iam_policy", "agent") {
		call := attr(t, b.Body, "policy").(*hclsyntax.FunctionCallExpr)
		if got := m.text(objectItem(t, call.Args[1], "agent")); got != "each.key" {
			t.Errorf("agent policy: agent = %s, want each.key", got)
		}
	}
}

func checkPrincipalDocs(t *testing.T, got, want principalDocs) {
	t.Helper()
	for p := range got {
		slices.Sort(got[p])
	}
	if len(got) != len(want) {
		t.Errorf("principals %v, want %v", got, want)
	}
	for p, docs := range want {
		if !slices.Equal(got[p], docs) {
			t.Errorf("%s gets policy documents %v, want %v", p, got[p], docs)
		}
	}
}

// checkTemplateVars checks that a templatefile call passes exactly the
// variables its template uses.
func checkTemplateVars(t *testing.T, tc templateCall) {
	t.Helper()
	if want := templateVars(t, tc.File); !slices.Equal(tc.Vars, want) {
		t.Errorf("%s: templatefile(%s) passes %v, the template uses %v", tc.Block, tc.File, tc.Vars, want)
	}
}

// checkRuntimePolicy renders a non-S3 policy template with distinct values
// and checks that no Allow statement has a wildcard action or puts a write
// action on anything but one of the resources passed in (or the log
// streams of a log group: <log_group_arn>:*).
func checkRuntimePolicy(t *testing.T, m *tfModule, tc templateCall) {
	t.Helper()
	vars := map[string]string{}
	for _, v := range tc.Vars {
		switch v {
		case "account_id":
			vars[v] = "123456789012"
		case "bucket_arn":
			vars[v] = "arn:aws:s3:::" + testBucket
		default:
			vars[v] = "arn:aws:test:us-east-1:123456789012:" + v
		}
	}
	p := parsePolicy(t, tc.File, renderTemplate(t, tc.File, vars))
	for _, s := range p.Statement {
		if s.Effect != "Allow" {
			continue
		}
		for _, a := range s.Action {
			if strings.Contains(a, "*") {
				t.Errorf("%s %s: wildcard action %s", tc.File, s.Sid, a)
			}
			if readOnly(a) {
				continue
			}
			for _, r := range s.Resource {
				ok := false
				for name, v := range vars {
					if r == v || (name == "log_group_arn" && r == v+":*") || (name == "bucket_arn" && r == v+"/*" && a == "s3:GetObject") {
						ok = true
					}
				}
				if !ok {
					t.Errorf("%s %s: %s on %q: a write action on a resource that is not one passed in", tc.File, s.Sid, a, r)
				}
			}
		}
	}
}

// TestGlueTables checks that glue_tables.tf.json is what GlueTables makes
// from schema/ now (go generate ./infra, or -update, rewrites it), that
// Terraform can read it, and that the module's table location and location
// template are those of schema.AthenaDDL.
func TestGlueTables(t *testing.T) {
	want, err := GlueTablesJSON()
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(GlueTablesFile, want, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(GlueTablesFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s is out of date with schema/: run `go generate ./infra`", GlueTablesFile)
	}
	m := loadModule(t, awsModule, map[string]cty.Value{"lambda_dir": cty.StringVal("L")})
	tables, ok := m.locals["glue_tables"]
	if !ok {
		t.Fatal("local.glue_tables is not defined (or cannot be evaluated)")
	}
	var names []string
	for it := tables.ElementIterator(); it.Next(); {
		k, v := it.Element()
		names = append(names, k.AsString())
		cols := v.GetAttr("columns")
		if n := cols.LengthInt(); n != len(schema.Columns(k.AsString())) {
			t.Errorf("table %s: %d columns, schema has %d", k.AsString(), n, len(schema.Columns(k.AsString())))
		}
	}
	if !sameSet(names, schema.Tables) {
		t.Errorf("glue tables %v, schema tables %v", names, schema.Tables)
	}
	table := m.resource(t, "aws_glue_catalog_table", "lake").Body
	if got := refs(attr(t, table, "for_each")); !slices.Equal(got, []string{"local.glue_tables"}) {
		t.Errorf("glue tables for_each %v", got)
	}
	params := attr(t, table, "parameters").(*hclsyntax.FunctionCallExpr)
	for _, tbl := range schema.Tables {
		ctx := map[string]cty.Value{
			"each":          cty.ObjectVal(map[string]cty.Value{"key": cty.StringVal(tbl)}),
			"aws_s3_bucket": cty.ObjectVal(map[string]cty.Value{"data": cty.ObjectVal(map[string]cty.Value{"bucket": cty.StringVal(testBucket)})}),
		}
		loc := m.evalString(t, attr(t, child(table, "storage_descriptor")[0].Body, "location"), ctx)
		if want := "s3://" + testBucket + "/lake/" + tbl + "/"; loc != want {
			t.Errorf("%s: location %s, want %s", tbl, loc, want)
		}
		tmpl := m.evalString(t, objectItem(t, params.Args[1], locationTemplate), ctx)
		var want string
		for _, p := range schema.AthenaProperties(loc) {
			if p[0] == locationTemplate {
				want = p[1]
			}
		}
		if tmpl != want {
			t.Errorf("%s: %s %q, schema.AthenaDDL has %q", tbl, locationTemplate, tmpl, want)
		}
	}
}

// terraformBinary returns terraform's path, or skips t.
func terraformBinary(t *testing.T) string {
	t.Helper()
	if bin, err := exec.LookPath("terraform"); err == nil {
		return bin
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		for _, dir := range filepath.SplitList(strings.TrimSpace(string(out))) {
			if bin := filepath.Join(dir, "bin", "terraform"); isExecutable(bin) {
				return bin
			}
		}
	}
	t.Skip("terraform not installed: `make terraform` installs the pinned version (go install github.com/hashicorp/terraform@v1.5.7)")
	return ""
}

func isExecutable(path string) bool {
	st, err := os.Stat(path)
	return err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0
}

// TestTerraformFmt runs `terraform fmt -check -recursive` over
// infra/terraform (it needs no provider).
func TestTerraformFmt(t *testing.T) {
	bin := terraformBinary(t)
	cmd := exec.Command(bin, "fmt", "-check", "-recursive", "-diff", "terraform")
	cmd.Env = append(os.Environ(), "TF_CLI_CONFIG_FILE="+os.DevNull, "CHECKPOINT_DISABLE=1")
	out, err := cmd.CombinedOutput()
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		t.Fatalf("terraform fmt -check found unformatted files (run terraform fmt -recursive infra/terraform):\n%s", out)
	case err != nil:
		t.Fatal(err)
	}
}
