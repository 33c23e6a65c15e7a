package main

import (
	"encoding/json"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/flowlake/flowlake/functions/internal/fntest"
)

// awsEnv keeps the AWS SDK away from the host's configuration.
var awsEnv = []string{"AWS_REGION=eu-west-1", "AWS_CONFIG_FILE=" + os.DevNull, "AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull, "AWS_EC2_METADATA_DISABLED=true"}

// The binary, built as the Makefile builds it, serves events through the
// Lambda Runtime API, answers SQS batches with their failed messages, and
// logs JSON on stdout; without its configuration it logs why and exits.
func TestBootstrap(t *testing.T) {
	bin := fntest.Bootstrap(t, ".")
	testEvent, err := os.ReadFile("../testdata/sqs-s3-test-event.json")
	if err != nil {
		t.Fatal(err)
	}
	put, err := os.ReadFile("../testdata/sqs-s3-put.json")
	if err != nil {
		t.Fatal(err)
	}
	env := append([]string{"FLOWLAKE_STORE=" + t.TempDir(), "FLOWLAKE_PARSE_FUNCTION=flowlake-parse", "AWS_LAMBDA_FUNCTION_NAME=flowlake-ingest"}, awsEnv...)
	// The store is empty: both objects of the put notifications are missing.
	out, stdout, err := fntest.RunBootstrap(t, bin, env, testEvent, put, []byte(`{"hello":"world"}`))
	if err != nil {
		t.Fatalf("%v\nstdout:\n%s", err, stdout)
	}
	if len(out) != 3 || out[0].Error || out[0].Body != `{"batchItemFailures":null}` {
		t.Fatalf("answers %+v", out)
	}
	var resp events.SQSEventResponse
	if err := json.Unmarshal([]byte(out[1].Body), &resp); err != nil || out[1].Error || len(resp.BatchItemFailures) != 2 {
		t.Errorf("answer to the put batch: %+v (%v)", out[1], err)
	}
	if !out[2].Error || !strings.Contains(out[2].Body, "has no Records") {
		t.Errorf("answer to a foreign event: %+v", out[2])
	}
	var lines []map[string]any
	for line := range strings.Lines(stdout) {
		var m map[string]any
		if err := json.Unmarshal([]byte(line), &m); err != nil {
			t.Fatalf("stdout line %q is not JSON: %v", line, err)
		}
		lines = append(lines, m)
	}
	if !slices.ContainsFunc(lines, func(m map[string]any) bool {
		return m["msg"] == "ingest: failed" && m["function"] == "ingest" && m["request_id"] == "req-1" && m["message_id"] == "059f36b4-87a3-44ab-83d2-661975830a7d"
	}) {
		t.Errorf("no failure log with function, request and message ids:\n%s", stdout)
	}

	out, stdout, err = fntest.RunBootstrap(t, bin, append([]string{"FLOWLAKE_STORE=" + t.TempDir()}, awsEnv...), testEvent)
	if err == nil || !strings.Contains(err.Error(), "exit status 1") || len(out) != 0 {
		t.Fatalf("without FLOWLAKE_PARSE_FUNCTION: %+v, %v", out, err)
	}
	if !strings.Contains(stdout, `"level":"ERROR","msg":"ingest: cannot start"`) || !strings.Contains(stdout, "FLOWLAKE_PARSE_FUNCTION is not set") {
		t.Errorf("stdout: %s", stdout)
	}
}
