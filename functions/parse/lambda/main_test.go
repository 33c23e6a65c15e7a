package main

import (
	"os"
	"strings"
	"testing"

	"github.com/flowlake/flowlake/functions/internal/fntest"
)

// The binary, built as the Makefile builds it, serves events through the
// Lambda Runtime API: a scheduled event reconciles, a request for a
// segment that was never ingested is a function error; without its
// configuration it logs why and exits.
func TestBootstrap(t *testing.T) {
	bin := fntest.Bootstrap(t, ".")
	scheduled, err := os.ReadFile("../testdata/scheduled-event.json")
	if err != nil {
		t.Fatal(err)
	}
	env := []string{"FLOWLAKE_STORE=" + t.TempDir(), "AWS_LAMBDA_FUNCTION_NAME=flowlake-parse", "FLOWLAKE_WAIT_PREDECESSOR=10ms",
		"AWS_REGION=eu-west-1", "AWS_CONFIG_FILE=" + os.DevNull, "AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull, "AWS_EC2_METADATA_DISABLED=true"}
	out, stdout, err := fntest.RunBootstrap(t, bin, env, scheduled, []byte(`{"agent":"web-1","stream":0,"seq":3}`))
	if err != nil {
		t.Fatalf("%v\nstdout:\n%s", err, stdout)
	}
	if len(out) != 2 || out[0].Error || out[0].Body != `{"result":"reconciled"}` {
		t.Fatalf("answers %+v", out)
	}
	if !out[1].Error || !strings.Contains(out[1].Body, "segment index") {
		t.Errorf("answer to a request for a missing segment: %+v", out[1])
	}
	if !strings.Contains(stdout, `"msg":"parse: reconciled","function":"parse","request_id":"req-0"`) {
		t.Errorf("stdout: %s", stdout)
	}

	out, stdout, err = fntest.RunBootstrap(t, bin, []string{"FLOWLAKE_STORE=" + t.TempDir(), "FLOWLAKE_LOG_LEVEL=loud"}, scheduled)
	if err == nil || len(out) != 0 || !strings.Contains(stdout, `FLOWLAKE_LOG_LEVEL=\"loud\"`) {
		t.Fatalf("bad configuration: %+v, %v, stdout %s", out, err, stdout)
	}
}
