package infra

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowlake/flowlake/internal/notify/natstest"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/minio/madmin-go/v3"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/zclconf/go-cty/cty"

	"github.com/flowlake/flowlake/internal/agent"
	"github.com/flowlake/flowlake/internal/agent/hosts"
	"github.com/flowlake/flowlake/internal/agent/source"
	"github.com/flowlake/flowlake/internal/host"
	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/notify"
	"github.com/flowlake/flowlake/internal/pipeline"
	"github.com/flowlake/flowlake/internal/pipeline/pipelinetest"
	"github.com/flowlake/flowlake/internal/store"
	"github.com/flowlake/flowlake/internal/store/miniotest"
	"github.com/flowlake/flowlake/internal/testcap"
	"github.com/flowlake/flowlake/schema"
)

// These tests apply the settings of terraform/modules/minio to a real
// MinIO the way the aminueza/minio provider does (S3 API for the bucket,
// its lifecycle and notification rules; admin API for policies, users and
// the notification target), reading every value from the module's HCL, and
// then run the pipeline through them with each principal's own
// credentials.

// captureFile is the shared capture the agent replays.
const captureFile = "ndpi-1kxun.pcap"

// applied is a MinIO configured from the module.
type applied struct {
	srv    *miniotest.Server
	bucket string
	users  map[string]string // user name -> secret key
}

// applyMinIOModule applies terraform/modules/minio with vars to srv.
func applyMinIOModule(t *testing.T, srv *miniotest.Server, vars map[string]cty.Value) *applied {
	t.Helper()
	ctx := t.Context()
	m := loadModule(t, minioModule, vars)
	adm := newAdmin(t, srv)
	a := &applied{srv: srv, users: map[string]string{}}

	// minio_s3_bucket.data
	a.bucket = m.evalString(t, attr(t, m.resource(t, "minio_s3_bucket", "data").Body, "bucket"), nil)
	srv.CreateBucket(t, a.bucket)
	res := map[string]cty.Value{"minio_s3_bucket": cty.ObjectVal(map[string]cty.Value{"data": cty.ObjectVal(map[string]cty.Value{"bucket": cty.StringVal(a.bucket)})})}
	bucketARN := m.evalString(t, m.localExpr(t, "bucket_arn"), res)

	// minio_ilm_policy.data: the expiration rules.
	var rules []s3types.LifecycleRule
	ilm := m.resource(t, "minio_ilm_policy", "data").Body
	for _, r := range ilm.Blocks {
		if r.Type == "lifecycle" {
			continue
		}
		if r.Type == "dynamic" {
			if n := len(m.evalStrings(t, attr(t, r.Body, "for_each"), nil)); n != 0 {
				t.Fatalf("dynamic lifecycle rule with %d elements: the test applies static rules only", n)
			}
			continue
		}
		id := m.evalString(t, attr(t, r.Body, "id"), nil)
		exp := m.evalString(t, attr(t, r.Body, "expiration"), nil)
		days, err := strconv.Atoi(strings.TrimSuffix(exp, "d"))
		if err != nil || !strings.HasSuffix(exp, "d") {
			t.Fatalf("rule %s: expiration %q: want <days>d", id, exp)
		}
		rules = append(rules, s3types.LifecycleRule{
			ID: aws.String(id), Status: s3types.ExpirationStatusEnabled,
			Filter:     &s3types.LifecycleRuleFilter{Prefix: aws.String(m.evalString(t, attr(t, r.Body, "filter"), nil))},
			Expiration: &s3types.LifecycleExpiration{Days: aws.Int32(int32(days))},
		})
	}
	if _, err := srv.Client().PutBucketLifecycleConfiguration(ctx, &s3.PutBucketLifecycleConfigurationInput{
		Bucket: aws.String(a.bucket), LifecycleConfiguration: &s3types.BucketLifecycleConfiguration{Rules: rules},
	}); err != nil {
		t.Fatalf("lifecycle rules: %v", err)
	}

	// minio_iam_policy.*: each rendered from its template.
	agentIDs := m.setVar(t, "agents")
	for _, b := range m.find("resource", "minio_iam_policy") {
		for _, each := range m.instances(t, b, agentIDs) {
			name := m.evalString(t, attr(t, b.Body, "name"), each)
			call := attr(t, b.Body, "policy").(*hclsyntax.FunctionCallExpr)
			vals := map[string]string{}
			for _, it := range call.Args[1].(*hclsyntax.ObjectConsExpr).Items {
				vals[objectKey(it.KeyExpr)] = m.evalString(t, it.ValueExpr, mergeCtx(each, res, map[string]cty.Value{"local": m.withLocal(t, "bucket_arn", bucketARN)}))
			}
			doc := renderTemplate(t, filepath.Clean(m.evalString(t, call.Args[0], nil)), vals)
			if err := adm.AddCannedPolicy(ctx, name, []byte(doc)); err != nil {
				t.Fatalf("policy %s: %v", name, err)
			}
		}
	}
	// minio_iam_user.*, with generated secrets.
	for _, b := range m.find("resource", "minio_iam_user") {
		for _, each := range m.instances(t, b, agentIDs) {
			name := m.evalString(t, attr(t, b.Body, "name"), each)
			secret := rand.Text()
			if err := adm.AddUser(ctx, name, secret); err != nil {
				t.Fatalf("user %s: %v", name, err)
			}
			a.users[name] = secret
		}
	}
	// minio_iam_user_policy_attachment.*
	userRe := regexp.MustCompile(`^minio_iam_user\.(\w+)(\[each\.key\])?\.id$`)
	policyRe := regexp.MustCompile(`^minio_iam_policy\.(\w+)(\[each\.key\])?\.id$`)
	for _, b := range m.find("resource", "minio_iam_user_policy_attachment") {
		for _, each := range m.instances(t, b, agentIDs) {
			u := userRe.FindStringSubmatch(m.text(attr(t, b.Body, "user_name")))
			p := policyRe.FindStringSubmatch(m.text(attr(t, b.Body, "policy_name")))
			if u == nil || p == nil {
				t.Fatalf("attachment %s: unexpected references", b.Labels[1])
			}
			user := m.evalString(t, attr(t, m.resource(t, "minio_iam_user", u[1]).Body, "name"), each)
			pol := m.evalString(t, attr(t, m.resource(t, "minio_iam_policy", p[1]).Body, "name"), each)
			if _, err := adm.AttachPolicy(ctx, madmin.PolicyAssociationReq{Policies: []string{pol}, User: user}); err != nil {
				t.Fatalf("attach %s to %s: %v", pol, user, err)
			}
		}
	}

	// The notification target (minio_notify_webhook or minio_notify_nats,
	// whichever its count enables) as the provider sets it: a config KV.
	restart := false
	for typ, sub := range map[string]string{"minio_notify_webhook": "notify_webhook", "minio_notify_nats": "notify_nats"} {
		b := m.resource(t, typ, "functions")
		count, diags := attr(t, b.Body, "count").Value(m.ctx(nil))
		if diags.HasErrors() {
			t.Fatal(diags.Error())
		}
		if n, _ := count.AsBigFloat().Int64(); n == 0 {
			continue
		}
		var names []string
		for k := range b.Body.Attributes {
			names = append(names, k)
		}
		sort.Strings(names)
		kv := sub + ":" + m.evalString(t, attr(t, b.Body, "name"), nil)
		for _, k := range names {
			if k == "count" || k == "name" {
				continue
			}
			v, diags := b.Body.Attributes[k].Expr.Value(m.ctx(nil))
			if diags.HasErrors() {
				t.Fatal(diags.Error())
			}
			var s string
			switch v.Type() {
			case cty.Bool:
				s = map[bool]string{true: "on", false: "off"}[v.True()]
			case cty.Number:
				s = v.AsBigFloat().Text('f', 0)
			default:
				s = v.AsString()
			}
			kv += fmt.Sprintf(" %s=%q", k, s)
		}
		r, err := adm.SetConfigKV(ctx, kv)
		if err != nil {
			t.Fatalf("notification target %s: %v", kv, err)
		}
		t.Logf("applied %s (restart required: %v)", redactToken(kv), r)
		restart = restart || r
	}
	if restart {
		srv.Stop(t)
		srv.Restart(t)
	}

	// minio_s3_bucket_notification.functions: the rules of notify.Prefixes
	// (TestMinIOModule checks the module lists exactly those) to the target.
	n := m.resource(t, "minio_s3_bucket_notification", "functions").Body
	dyn := child(n, "dynamic", "queue")[0].Body
	if got := m.evalStrings(t, attr(t, dyn, "for_each"), nil); !sameSet(got, notify.Prefixes) {
		t.Fatalf("notification prefixes %v, want %v", got, notify.Prefixes)
	}
	arn := m.locals["queue_arn"].AsString()
	// notify.Configure waits while MinIO, just restarted, brings the
	// target up.
	if err := notify.Configure(ctx, srv.Client(), a.bucket, "", arn); err != nil {
		t.Fatal(err)
	}
	return a
}

// newAdmin returns a MinIO admin client of srv with its root credentials.
func newAdmin(t *testing.T, srv *miniotest.Server) *madmin.AdminClient {
	t.Helper()
	adm, err := madmin.NewWithOptions(strings.TrimPrefix(srv.Endpoint, "http://"), &madmin.Options{
		Creds: miniocreds.NewStaticV4(srv.AccessKey, srv.SecretKey, ""),
	})
	if err != nil {
		t.Fatal(err)
	}
	return adm
}

var tokenRe = regexp.MustCompile(`auth_token="[^"]*"`)

func redactToken(kv string) string { return tokenRe.ReplaceAllString(kv, `auth_token="…"`) }

// setVar returns the elements of a set(string) variable.
func (m *tfModule) setVar(t *testing.T, name string) []string {
	t.Helper()
	v, ok := m.vars[name]
	if !ok {
		t.Fatalf("no variable %s", name)
	}
	var out []string
	for it := v.ElementIterator(); it.Next(); {
		_, e := it.Element()
		out = append(out, e.AsString())
	}
	return out
}

// instances returns the evaluation contexts of a resource's instances:
// one per agent when it has for_each = var.agents, else one.
func (m *tfModule) instances(t *testing.T, b *hclsyntax.Block, agents []string) []map[string]cty.Value {
	t.Helper()
	fe, ok := b.Body.Attributes["for_each"]
	if !ok {
		return []map[string]cty.Value{nil}
	}
	if got := m.text(fe.Expr); got != "var.agents" {
		t.Fatalf("%s: for_each = %s; the test knows only var.agents", strings.Join(b.Labels, "."), got)
	}
	var out []map[string]cty.Value
	for _, id := range agents {
		out = append(out, map[string]cty.Value{"each": cty.ObjectVal(map[string]cty.Value{"key": cty.StringVal(id), "value": cty.StringVal(id)})})
	}
	return out
}

// localExpr returns the expression of a local value.
func (m *tfModule) localExpr(t *testing.T, name string) hclsyntax.Expression {
	t.Helper()
	for _, b := range m.find("locals") {
		if a, ok := b.Body.Attributes[name]; ok {
			return a.Expr
		}
	}
	t.Fatalf("no local %s", name)
	return nil
}

// withLocal returns the locals object with one more value.
func (m *tfModule) withLocal(t *testing.T, name, value string) cty.Value {
	t.Helper()
	l := map[string]cty.Value{}
	for k, v := range m.locals {
		l[k] = v
	}
	l[name] = cty.StringVal(value)
	return cty.ObjectVal(l)
}

func mergeCtx(ms ...map[string]cty.Value) map[string]cty.Value {
	out := map[string]cty.Value{}
	for _, m := range ms {
		for k, v := range m {
			out[k] = v
		}
	}
	return out
}

// storeAs opens bucket of srv with the credentials of a user.
func (a *applied) storeAs(t *testing.T, bucket, user string) *store.S3 {
	t.Helper()
	secret, ok := a.users[user]
	if !ok {
		t.Fatalf("no user %s (users: %v)", user, slices.Sorted(mapsKeys(a.users)))
	}
	return openStore(t, a.srv, bucket, user, secret)
}

func openStore(t *testing.T, srv *miniotest.Server, bucket, access, secret string) *store.S3 {
	t.Helper()
	st, err := store.NewS3(t.Context(), store.S3Options{Bucket: bucket, Config: &aws.Config{
		Region:       srv.Region,
		BaseEndpoint: aws.String(srv.Endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider(access, secret, ""),
	}})
	if err != nil {
		t.Fatalf("open s3://%s as %s: %v", bucket, access, err)
	}
	return st
}

func mapsKeys(m map[string]string) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func testLog(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func waitFor(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %v: still waiting for %s", timeout, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// rawSegments returns the segments of stream s in st, in order.
func rawSegments(t *testing.T, st store.Store, s keys.Stream) []pipelinetest.Segment {
	t.Helper()
	type seg struct {
		key string
		seq uint64
	}
	var found []seg
	err := st.List(t.Context(), keys.PrefixRaw+s.String()+"/", func(info store.Info) error {
		p, err := keys.Parse(info.Key)
		if err != nil {
			return err
		}
		found = append(found, seg{info.Key, p.Seq})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Slice(found, func(i, j int) bool { return found[i].seq < found[j].seq })
	var segs []pipelinetest.Segment
	for i, f := range found {
		if f.seq != uint64(i) {
			t.Fatalf("segment %d is %s: the numbering has a hole", i, f.key)
		}
		segs = append(segs, pipelinetest.Segment{Key: f.key, Data: getAll(t, st, f.key)})
	}
	return segs
}

func getAll(t *testing.T, st store.Store, key string) []byte {
	t.Helper()
	rc, err := st.Get(t.Context(), key)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func committed(st store.Store, s keys.Stream, n int) func() bool {
	return func() bool {
		for i := range n {
			if _, err := st.Stat(context.Background(), keys.State(s, uint64(i))); err != nil {
				return false
			}
		}
		return true
	}
}

// flushAndCheck ends stream pipelinetest.Stream with the parse
// credentials of st and compares the lake, read through check (root: the
// functions do not read lake/), with one parse of segs, every segment
// parsed once without gap.
func flushAndCheck(t *testing.T, st, check store.Store, segs []pipelinetest.Segment) {
	t.Helper()
	p := pipeline.New(pipeline.Config{Store: st})
	if err := p.FlushStream(t.Context(), pipelinetest.Stream, uint64(len(segs)-1)); err != nil {
		t.Fatal(err)
	}
	pipelinetest.CheckLake(t, check, pipelinetest.Reference(t, segs))
	ps := pipelinetest.StatusRows(t, check)
	if len(ps) != len(segs) {
		t.Fatalf("%d parse_status rows for %d segments", len(ps), len(segs))
	}
	for i, r := range ps {
		if r.Status != "ok" || r.Gap || r.Seq != int64(i) {
			t.Errorf("parse_status %d: seq %d status %q gap %v error %q", i, r.Seq, r.Status, r.Gap, r.Error)
		}
	}
}

// denied checks that op fails with store.ErrAccessDenied.
func denied(t *testing.T, what string, err error) {
	t.Helper()
	if !errors.Is(err, store.ErrAccessDenied) {
		t.Errorf("%s: %v, want store.ErrAccessDenied", what, err)
	}
}

func allowed(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Errorf("%s: %v, want it allowed", what, err)
	}
}

func put(st store.Store, key string, body []byte) error {
	return st.Put(context.Background(), key, bytes.NewReader(body), int64(len(body)))
}

func get(st store.Store, key string) error {
	rc, err := st.Get(context.Background(), key)
	if err == nil {
		rc.Close()
	}
	return err
}

// TestMinIOWebhookDeployment applies the MinIO module (webhook target) and
// runs the system through it: a real agent replays a capture with its own
// credentials, MinIO notifies the functions host (the functions user) by
// webhook, the lake equals one parse of the packets, the status reports
// become capture_status rows. Then each principal's credentials are tried
// outside what it may do: 403, store.ErrAccessDenied.
func TestMinIOWebhookDeployment(t *testing.T) {
	capture := testcap.Path(t, captureFile)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := miniotest.Start(t)
	token := rand.Text()
	a := applyMinIOModule(t, srv, map[string]cty.Value{
		"bucket":              cty.StringVal("flowlake"),
		"agents":              cty.SetVal([]cty.Value{cty.StringVal(pipelinetest.Agent), cty.StringVal(otherAgent)}),
		"notification_target": cty.StringVal(notify.KindWebhook),
		"webhook_endpoint":    cty.StringVal("http://" + ln.Addr().String() + "/minio/events"),
		"webhook_auth_token":  cty.StringVal(token),
		"queue_dir":           cty.StringVal(t.TempDir()),
	})
	got, err := notify.Configured(t.Context(), srv.Client(), a.bucket)
	if want := map[string][]string{notify.ARN("FLOWLAKE", notify.KindWebhook): {"raw/", "secrets/", "status/"}}; err != nil || !equalRules(got, want) {
		t.Fatalf("notification rules %v (%v), want %v", got, err, want)
	}

	fnStore := a.storeAs(t, a.bucket, "flowlake-functions")
	// MinIO has just restarted to load the webhook target: events of the
	// first uploads can be lost while it loads the bucket's rules (seen in
	// CI), which the host's reconcile makes up for, as in production; the
	// late keys below come through the webhook only.
	h, err := host.New(host.Config{Store: fnStore, Workers: 2, WebhookToken: token, Log: testLog(t),
		ReconcileEvery: 5 * time.Second, DiscoverAllEvery: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx, ln) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}()

	// The agent, with its own credentials.
	agentStore := a.storeAs(t, a.bucket, "flowlake-agent-"+pipelinetest.Agent)
	src, err := source.NewReplay(source.ReplayConfig{Files: []string{capture}, Streams: 1})
	if err != nil {
		t.Fatal(err)
	}
	ag, err := agent.New(t.Context(), agent.Config{
		ID: pipelinetest.Agent, Store: agentStore, Source: src, SpoolDir: t.TempDir(),
		SegmentBytes: 128 << 10, SegmentSpan: time.Hour, StatusEvery: 100 * time.Millisecond,
		DrainTimeout: time.Minute, Log: testLog(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := ag.Run(t.Context()); err != nil {
		t.Fatal(err)
	}
	for _, s := range ag.Status().Streams {
		if s.Errors != 0 {
			t.Errorf("agent stream %+v: upload errors with the agent's credentials", s)
		}
	}
	segs := rawSegments(t, fnStore, pipelinetest.Stream)
	if len(segs) < 3 {
		t.Fatalf("%d segments uploaded, want several", len(segs))
	}
	waitFor(t, 2*time.Minute, "every segment parsed", committed(fnStore, pipelinetest.Stream, len(segs)))
	root := openStore(t, srv, a.bucket, srv.AccessKey, srv.SecretKey)
	flushAndCheck(t, fnStore, root, segs)
	waitFor(t, time.Minute, "capture_status rows", func() bool {
		return len(pipelinetest.ReadTable[schema.CaptureStatus](t, root, schema.TableCaptureStatus)) > 0
	})
	t.Logf("agent uploaded %d segments; host stats %+v", len(segs), h.Stats())

	// Keys that come after their segment was parsed: the host reparses the
	// stream with the functions user's rights (reads secrets/, the lake's
	// manifests and old outputs; rewrites lake files and checkpoints). The
	// key log matches no session of the capture, so the lake stays the same.
	before := h.Stats()
	first, err := keys.Parse(segs[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	late := keys.Secrets(pipelinetest.Stream, 0, first.Hour)
	keylog := []byte("CLIENT_RANDOM " + strings.Repeat("ab", 32) + " " + strings.Repeat("cd", 48) + "\n")
	allowed(t, "agent puts late keys", agentStore.PutIfAbsent(t.Context(), late, bytes.NewReader(keylog), int64(len(keylog))))
	waitFor(t, 2*time.Minute, "the late keys' event", func() bool {
		s := h.Stats()
		return s.Ingested > before.Ingested || s.IngestErrors > before.IngestErrors
	})
	if s := h.Stats(); s.IngestErrors != before.IngestErrors || s.Ingested != before.Ingested+1 {
		t.Fatalf("late keys: host stats %+v, before %+v: the reparse failed", s, before)
	}
	pipelinetest.CheckLake(t, root, pipelinetest.Reference(t, segs))

	t.Run("agent", func(t *testing.T) {
		other := keys.Stream{Agent: otherAgent, Stream: 0}
		own := pipelinetest.Stream
		body := []byte("x")
		// Its own prefixes.
		allowed(t, "put own secrets", put(agentStore, keys.Secrets(own, 1<<40, sampleTime), []byte("# no keys\n")))
		allowed(t, "put own host names", put(agentStore, hosts.Key(pipelinetest.Agent), []byte(`{"hosts":{}}`)))
		allowed(t, "read back own segment", get(agentStore, segs[0].Key))
		// Another agent's.
		denied(t, "put another agent's segment", agentStore.PutIfAbsent(t.Context(), keys.Segment(other, 0, sampleTime), bytes.NewReader(body), 1))
		denied(t, "put another agent's secrets", put(agentStore, keys.Secrets(other, 0, sampleTime), body))
		denied(t, "put another agent's status", put(agentStore, keys.Status(otherAgent, sampleTime), body))
		denied(t, "put another agent's host names", put(agentStore, hosts.Key(otherAgent), body))
		// Anything the functions write.
		denied(t, "put a lake file", put(agentStore, lakeHTTP, body))
		denied(t, "put a checkpoint", put(agentStore, keys.State(own, 999), body))
		denied(t, "read a checkpoint", get(agentStore, keys.State(own, 0)))
		denied(t, "delete own segment", agentStore.Delete(t.Context(), segs[0].Key))
		denied(t, "list the lake", agentStore.List(t.Context(), keys.PrefixLake, func(store.Info) error { return nil }))
		// Another agent reads nothing of this one.
		otherStore := a.storeAs(t, a.bucket, "flowlake-agent-"+otherAgent)
		denied(t, "another agent reads the segment", get(otherStore, segs[0].Key))
		denied(t, "another agent lists the stream", otherStore.List(t.Context(), keys.PrefixRaw+own.String()+"/", func(store.Info) error { return nil }))
	})

	t.Run("query", func(t *testing.T) {
		q := a.storeAs(t, a.bucket, "flowlake-query")
		rows := pipelinetest.ReadTable[schema.HTTP](t, q, schema.TableHTTP)
		if len(rows) == 0 {
			t.Error("the query user reads no http rows")
		}
		allowed(t, "put a view", put(q, viewKey, []byte(`{}`)))
		allowed(t, "delete a view", q.Delete(t.Context(), viewKey))
		allowed(t, "read a segment (pcap export)", get(q, segs[0].Key))
		denied(t, "read secrets", get(q, keys.Secrets(pipelinetest.Stream, 1<<40, sampleTime)))
		denied(t, "read a checkpoint", get(q, keys.State(pipelinetest.Stream, 0)))
		denied(t, "put a lake file", put(q, lakeHTTP, []byte("x")))
		denied(t, "put an agent's host names", put(q, hosts.Key(pipelinetest.Agent), []byte("{}")))
	})

	t.Run("functions", func(t *testing.T) {
		denied(t, "functions host writes a segment", put(fnStore, keys.Segment(pipelinetest.Stream, 1<<40, sampleTime), []byte("x")))
		denied(t, "functions host writes config", put(fnStore, viewKey, []byte("{}")))
		allowed(t, "functions host reads secrets", get(fnStore, keys.Secrets(pipelinetest.Stream, 1<<40, sampleTime)))
	})
}

func equalRules(got, want map[string][]string) bool {
	if len(got) != len(want) {
		return false
	}
	for k, v := range want {
		if !slices.Equal(got[k], v) {
			return false
		}
	}
	return true
}

// TestMinIOSplitFunctions runs ingest and parse as separate principals with
// the AWS roles' S3 documents (ingest.json, parse.json), the way Lambda
// runs them: ingest with ingest-only credentials invokes parse with
// parse-only credentials. The lake equals one parse of the packets, so the
// documents grant what the code needs; ingest cannot read secrets/, parse
// can.
func TestMinIOSplitFunctions(t *testing.T) {
	srv := miniotest.Start(t)
	adm := newAdmin(t, srv)
	const bucket = "flowlake-split"
	srv.CreateBucket(t, bucket)
	secrets := map[string]string{}
	for _, kind := range []string{"ingest", "parse", "agent"} {
		vars := map[string]string{"bucket_arn": "arn:aws:s3:::" + bucket, "agent": pipelinetest.Agent}
		doc := renderTemplate(t, filepath.Join(policyDir, kind+".json"), filterVars(t, kind, vars))
		if err := adm.AddCannedPolicy(t.Context(), "split-"+kind, []byte(doc)); err != nil {
			t.Fatal(err)
		}
		secrets[kind] = rand.Text()
		if err := adm.AddUser(t.Context(), "split-"+kind, secrets[kind]); err != nil {
			t.Fatal(err)
		}
		if _, err := adm.AttachPolicy(t.Context(), madmin.PolicyAssociationReq{Policies: []string{"split-" + kind}, User: "split-" + kind}); err != nil {
			t.Fatal(err)
		}
	}
	as := func(kind string) *store.S3 { return openStore(t, srv, bucket, "split-"+kind, secrets[kind]) }
	agentStore, ingestStore, parseStore := as("agent"), as("ingest"), as("parse")

	segs := pipelinetest.Cut(t, captureFile, 128<<10)
	secretsKey := keys.Secrets(pipelinetest.Stream, 0, time.Unix(0, segs[0].Meta.FirstTS))
	// A key log line for a client random the capture does not have.
	keylog := []byte("CLIENT_RANDOM " + strings.Repeat("ab", 32) + " " + strings.Repeat("cd", 48) + "\n")
	allowed(t, "agent puts secrets", agentStore.PutIfAbsent(t.Context(), secretsKey, bytes.NewReader(keylog), int64(len(keylog))))
	for _, s := range segs {
		allowed(t, "agent puts "+s.Key, agentStore.PutIfAbsent(t.Context(), s.Key, bytes.NewReader(s.Data), int64(len(s.Data))))
	}

	parse := pipeline.New(pipeline.Config{Store: parseStore, Log: testLog(t)})
	ingest := pipeline.New(pipeline.Config{Store: ingestStore, Log: testLog(t),
		Invoke: func(ctx context.Context, s keys.Stream, seq uint64) error {
			err := parse.Parse(ctx, s, seq)
			if errors.Is(err, pipeline.ErrDone) {
				return nil
			}
			return err
		}})
	allowed(t, "ingest secrets", ingest.Ingest(t.Context(), secretsKey))
	for _, s := range segs {
		allowed(t, "ingest "+s.Key, ingest.Ingest(t.Context(), s.Key))
	}
	if !committed(parseStore, pipelinetest.Stream, len(segs))() {
		t.Fatal("not every segment committed")
	}
	flushAndCheck(t, parseStore, openStore(t, srv, bucket, srv.AccessKey, srv.SecretKey), segs)

	denied(t, "ingest reads secrets", get(ingestStore, secretsKey))
	allowed(t, "parse reads secrets", get(parseStore, secretsKey))
	denied(t, "ingest writes an http lake file", put(ingestStore, lakeHTTP, []byte("x")))
	denied(t, "parse writes a segment", put(parseStore, keys.Segment(pipelinetest.Stream, 1<<40, sampleTime), []byte("x")))
	denied(t, "parse writes config", put(parseStore, viewKey, []byte("{}")))
}

// filterVars keeps the variables template kind uses.
func filterVars(t *testing.T, kind string, vars map[string]string) map[string]string {
	out := map[string]string{}
	for _, v := range templateVars(t, filepath.Join(policyDir, kind+".json")) {
		out[v] = vars[v]
	}
	return out
}

// startNATSServer runs Debian's nats-server with JetStream (natstest).
func startNATSServer(t *testing.T) string { return natstest.Start(t) }

// TestMinIONATSDeployment applies the MinIO module with the NATS target
// and runs two functions hosts sharing the JetStream work queue: segments
// an agent uploads with its credentials all reach the lake.
func TestMinIONATSDeployment(t *testing.T) {
	segs := pipelinetest.Cut(t, captureFile, 128<<10)
	natsURL := startNATSServer(t)
	u, err := url.Parse(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	srv := miniotest.Start(t)
	a := applyMinIOModule(t, srv, map[string]cty.Value{
		"agents":              cty.SetVal([]cty.Value{cty.StringVal(pipelinetest.Agent)}),
		"notification_target": cty.StringVal(notify.KindNATS),
		"nats_address":        cty.StringVal(u.Host),
		"nats_subject":        cty.StringVal("flowlake.events"),
		"queue_dir":           cty.StringVal(t.TempDir()),
	})
	ctx, cancel := context.WithCancel(t.Context())
	var dones []chan error
	var hs []*host.Host
	for i := range 2 {
		h, err := host.New(host.Config{
			Store: a.storeAs(t, a.bucket, "flowlake-functions"), Workers: 1, Log: testLog(t).With("host", i),
			NATS: &host.NATSConfig{URL: natsURL, Stream: "flowlake", Subject: "flowlake.events"},
		})
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- h.Run(ctx, nil) }()
		dones, hs = append(dones, done), append(hs, h)
	}
	agentStore := a.storeAs(t, a.bucket, "flowlake-agent-"+pipelinetest.Agent)
	for _, s := range segs {
		allowed(t, "agent puts "+s.Key, agentStore.PutIfAbsent(t.Context(), s.Key, bytes.NewReader(s.Data), int64(len(s.Data))))
	}
	fnStore := a.storeAs(t, a.bucket, "flowlake-functions")
	waitFor(t, 2*time.Minute, "every segment parsed", committed(fnStore, pipelinetest.Stream, len(segs)))
	cancel()
	var ingested int64
	for i, d := range dones {
		if err := <-d; err != nil {
			t.Fatalf("host %d: %v", i, err)
		}
		ingested += hs[i].Stats().Ingested
	}
	if ingested != int64(len(segs)) {
		t.Errorf("%d ingests over both hosts for %d segments", ingested, len(segs))
	}
	flushAndCheck(t, fnStore, openStore(t, srv, a.bucket, srv.AccessKey, srv.SecretKey), segs)
}
