package ingest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"log/slog"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	awslambda "github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/flowlake/flowlake/functions/internal/lambdaenv"
	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/pipeline"
	"github.com/flowlake/flowlake/internal/pipeline/pipelinetest"
	"github.com/flowlake/flowlake/internal/store"
	"github.com/flowlake/flowlake/internal/store/miniotest"
)

// s3EscapeKey encodes a key the way S3 event notifications do: form
// encoding ("+" for a space, %3D for "="), slashes kept.
func s3EscapeKey(key string) string {
	return strings.ReplaceAll(url.QueryEscape(key), "%2F", "/")
}

// notification returns the S3 notification of the fixture sqs-s3-put.json
// with the bucket, key and size of another object.
func notification(t *testing.T, bucket, key string, size int) string {
	t.Helper()
	var ev events.SQSEvent
	if err := json.Unmarshal(fixture(t, "sqs-s3-put.json"), &ev); err != nil {
		t.Fatal(err)
	}
	var n map[string]any
	if err := json.Unmarshal([]byte(ev.Records[0].Body), &n); err != nil {
		t.Fatal(err)
	}
	s3 := n["Records"].([]any)[0].(map[string]any)["s3"].(map[string]any)
	s3["bucket"].(map[string]any)["name"] = bucket
	s3["bucket"].(map[string]any)["arn"] = "arn:aws:s3:::" + bucket
	obj := s3["object"].(map[string]any)
	obj["key"], obj["size"] = s3EscapeKey(key), size
	b, err := json.Marshal(n)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// sqsEvent wraps bodies in the SQS event of the fixture sqs-s3-put.json.
func sqsEvent(t *testing.T, bodies []string) []byte {
	t.Helper()
	var ev events.SQSEvent
	if err := json.Unmarshal(fixture(t, "sqs-s3-put.json"), &ev); err != nil {
		t.Fatal(err)
	}
	tmpl := ev.Records[0]
	ev.Records = nil
	for i, body := range bodies {
		m := tmpl
		h := fnv.New64a()
		h.Write([]byte(body))
		m.MessageId = fmt.Sprintf("%08x-0000-4000-8000-%012d", h.Sum64()>>32, i)
		m.Body = body
		ev.Records = append(ev.Records, m)
	}
	b, err := json.Marshal(ev)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// The whole AWS path against a real MinIO, with the functions built by the
// same code as the Lambda mains (lambdaenv, from FLOWLAKE_* variables, the
// store s3://bucket/prefix): segments are uploaded out of order, S3
// notifications reach ingest in SQS batches (with a duplicate and the test
// event), ingest invokes parse asynchronously through the real Lambda SDK
// client against a fake Lambda API that runs the parse handler in process
// (JSON round trip through aws-lambda-go), and parse chains to the next
// segment the same way. The lake equals the one-pass parse.
func TestMinIOEndToEnd(t *testing.T) {
	srv := miniotest.Start(t)
	srv.SetEnv(t)
	f := newFakeLambda(t)
	var logs safeBuffer
	log := slog.New(slog.NewJSONHandler(&logs, nil))
	env := map[string]string{
		lambdaenv.EnvStore:           "s3://" + srv.Bucket + "/lakes/prod",
		lambdaenv.EnvParseFunction:   "flowlake-parse",
		lambdaenv.EnvWaitPredecessor: "30s",
		lambdaenv.EnvFunctionName:    "flowlake-ingest",
	}
	// The SDK's own variable for a service endpoint, read by the default
	// configuration like those of miniotest.
	t.Setenv("AWS_ENDPOINT_URL_LAMBDA", f.URL)
	cfg, err := lambdaenv.Load(func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		return os.Getenv(k)
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	ih, err := lambdaenv.Ingest(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	ph, err := lambdaenv.Parse(ctx, cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	parseLambda := awslambda.NewHandler(ph.Handle)
	f.run = func(ctx context.Context, fn string, payload []byte) error {
		if fn != "flowlake-parse" {
			return fmt.Errorf("invoked %q", fn)
		}
		_, err := parseLambda.Invoke(ctx, payload)
		return err
	}
	defer func() {
		if t.Failed() {
			t.Logf("function logs:\n%s", logs.String())
		}
	}()

	st, err := store.Open(ctx, cfg.Store)
	if err != nil {
		t.Fatal(err)
	}
	segs := pipelinetest.Cut(t, capture, 48<<10)
	if len(segs) < 6 {
		t.Fatalf("only %d segments", len(segs))
	}
	// Out of order: last first, with a pair swapped; segment 2 notified twice.
	order := []int{}
	for i := len(segs) - 1; i >= 0; i-- {
		order = append(order, i)
	}
	order[1], order[2] = order[2], order[1]
	order = append(order, 2)
	testEvent := string(fixtureBody(t, "sqs-s3-test-event.json"))
	first := true
	for len(order) > 0 {
		n := min(3, len(order))
		var bodies []string
		if first {
			bodies, first = append(bodies, testEvent), false
		}
		for _, i := range order[:n] {
			pipelinetest.Upload(t, st, segs[i:i+1])
			bodies = append(bodies, notification(t, srv.Bucket, "lakes/prod/"+segs[i].Key, len(segs[i].Data)))
		}
		order = order[n:]
		resp, err := invoke(ctx, t, ih, sqsEvent(t, bodies))
		if err != nil || len(resp.BatchItemFailures) != 0 {
			t.Fatalf("ingest: %+v, %v", resp, err)
		}
	}
	f.wg.Wait()
	if len(f.errs) > 0 {
		t.Fatalf("parse invocations failed: %v", f.errs)
	}
	for _, c := range f.invocations() {
		if c.Type != "Event" || c.Function != "flowlake-parse" {
			t.Errorf("invocation %+v", c)
		}
	}
	if n := len(f.invocations()); n < len(segs) {
		t.Errorf("%d parse invocations for %d segments", n, len(segs))
	}
	t.Logf("%d segments, %d parse invocations", len(segs), len(f.invocations()))

	if err := pipeline.New(pipeline.Config{Store: st}).FlushStream(ctx, stream, uint64(len(segs)-1)); err != nil {
		t.Fatal(err)
	}
	checkLake(t, st, segs)
	ps := pipelinetest.StatusRows(t, st)
	if len(ps) != len(segs) {
		t.Fatalf("%d parse_status rows for %d segments", len(ps), len(segs))
	}
	for i, r := range ps {
		if r.Seq != int64(i) || r.Status != "ok" || r.Gap {
			t.Errorf("parse_status %d: %+v", i, r)
		}
	}
	// Everything the functions wrote is below the store prefix.
	out, err := srv.Client().ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(srv.Bucket)})
	if err != nil {
		t.Fatal(err)
	}
	lake := 0
	for _, o := range out.Contents {
		k := aws.ToString(o.Key)
		if !strings.HasPrefix(k, "lakes/prod/") {
			t.Errorf("object %q outside the prefix", k)
		}
		if strings.HasPrefix(k, "lakes/prod/"+keys.PrefixLake) {
			lake++
		}
	}
	if lake == 0 {
		t.Error("no lake objects in the bucket")
	}
}

// fixtureBody returns the body of the first message of an SQS fixture.
func fixtureBody(t *testing.T, name string) []byte {
	t.Helper()
	var ev events.SQSEvent
	if err := json.Unmarshal(fixture(t, name), &ev); err != nil {
		t.Fatal(err)
	}
	return []byte(ev.Records[0].Body)
}

// safeBuffer is a bytes.Buffer for concurrent writers.
type safeBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *safeBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *safeBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
