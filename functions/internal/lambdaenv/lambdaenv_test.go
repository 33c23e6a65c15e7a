package lambdaenv_test

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/flowlake/flowlake/functions/ingest"
	"github.com/flowlake/flowlake/functions/internal/lambdaenv"
	"github.com/flowlake/flowlake/functions/parse"
)

func getenv(env map[string]string) func(string) string {
	return func(k string) string { return env[k] }
}

func TestLoad(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		want lambdaenv.Config
		err  string
	}{
		{"s3 with prefix", map[string]string{
			"FLOWLAKE_STORE": "s3://flowlake-data/lakes/prod/", "FLOWLAKE_PARSE_FUNCTION": "flowlake-parse",
			"FLOWLAKE_WAIT_PREDECESSOR": "45s", "FLOWLAKE_LOG_LEVEL": "debug", "AWS_LAMBDA_FUNCTION_NAME": "flowlake-ingest",
		}, lambdaenv.Config{
			Store: "s3://flowlake-data/lakes/prod/", Bucket: "flowlake-data", Prefix: "lakes/prod",
			ParseFunction: "flowlake-parse", FunctionName: "flowlake-ingest", WaitPredecessor: 45 * time.Second, LogLevel: slog.LevelDebug,
		}, ""},
		{"s3 bucket only", map[string]string{"FLOWLAKE_STORE": "s3://flowlake-data"},
			lambdaenv.Config{Store: "s3://flowlake-data", Bucket: "flowlake-data"}, ""},
		{"directory", map[string]string{"FLOWLAKE_STORE": "/tmp/lake", "FLOWLAKE_LOG_LEVEL": "WARN"},
			lambdaenv.Config{Store: "/tmp/lake", LogLevel: slog.LevelWarn}, ""},
		{"no store", map[string]string{}, lambdaenv.Config{}, "FLOWLAKE_STORE is not set"},
		{"bad wait", map[string]string{"FLOWLAKE_STORE": "s3://b", "FLOWLAKE_WAIT_PREDECESSOR": "30"}, lambdaenv.Config{}, `FLOWLAKE_WAIT_PREDECESSOR="30": time: missing unit`},
		{"zero wait", map[string]string{"FLOWLAKE_STORE": "s3://b", "FLOWLAKE_WAIT_PREDECESSOR": "0s"}, lambdaenv.Config{}, "want a positive duration"},
		{"bad level", map[string]string{"FLOWLAKE_STORE": "s3://b", "FLOWLAKE_LOG_LEVEL": "loud"}, lambdaenv.Config{}, `FLOWLAKE_LOG_LEVEL="loud"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := lambdaenv.Load(getenv(tc.env))
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("got %+v, %v; want an error containing %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

// isolate keeps the AWS SDK away from the host's configuration.
func isolate(t *testing.T) {
	for k, v := range map[string]string{
		"AWS_REGION": "eu-west-1", "AWS_CONFIG_FILE": os.DevNull, "AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
		"AWS_PROFILE": "", "AWS_EC2_METADATA_DISABLED": "true",
	} {
		t.Setenv(k, v)
	}
}

// The builders need a parse function to invoke: ingest its own variable,
// parse falls back to itself. A store that cannot be opened stops the cold
// start.
func TestBuild(t *testing.T) {
	isolate(t)
	dir := t.TempDir()
	if _, err := lambdaenv.Ingest(t.Context(), lambdaenv.Config{Store: dir, FunctionName: "flowlake-ingest"}, slog.Default()); err == nil || !strings.Contains(err.Error(), "FLOWLAKE_PARSE_FUNCTION is not set") {
		t.Errorf("ingest without a parse function: %v", err)
	}
	if _, err := lambdaenv.Parse(t.Context(), lambdaenv.Config{Store: dir}, slog.Default()); err == nil || !strings.Contains(err.Error(), "AWS_LAMBDA_FUNCTION_NAME") {
		t.Errorf("parse without a function name: %v", err)
	}
	var ih *ingest.Handler
	var ph *parse.Handler
	var err error
	if ih, err = lambdaenv.Ingest(t.Context(), lambdaenv.Config{Store: dir, ParseFunction: "flowlake-parse"}, slog.Default()); err != nil || ih == nil {
		t.Errorf("ingest: %v", err)
	}
	if ph, err = lambdaenv.Parse(t.Context(), lambdaenv.Config{Store: dir, FunctionName: "flowlake-parse"}, slog.Default()); err != nil || ph == nil {
		t.Errorf("parse: %v", err)
	}
	if _, err := lambdaenv.Parse(t.Context(), lambdaenv.Config{Store: "ftp://x", FunctionName: "p"}, slog.Default()); err == nil || !strings.Contains(err.Error(), "FLOWLAKE_STORE") {
		t.Errorf("bad store: %v", err)
	}
}

// Main logs why a cold start fails, as JSON, and returns the error.
func TestMainLogsFailure(t *testing.T) {
	isolate(t)
	var out bytes.Buffer
	h, err := lambdaenv.Main(t.Context(), "ingest", getenv(map[string]string{"FLOWLAKE_STORE": t.TempDir()}), &out, lambdaenv.Ingest)
	if err == nil || h != nil {
		t.Fatalf("got %v, %v", h, err)
	}
	var line map[string]any
	if err := json.Unmarshal(out.Bytes(), &line); err != nil {
		t.Fatalf("log %q: %v", out.String(), err)
	}
	if line["level"] != "ERROR" || line["msg"] != "ingest: cannot start" || line["function"] != "ingest" ||
		!strings.Contains(line["err"].(string), "FLOWLAKE_PARSE_FUNCTION") {
		t.Errorf("log line %v", line)
	}
	out.Reset()
	ph, err := lambdaenv.Main(t.Context(), "parse", getenv(map[string]string{"FLOWLAKE_STORE": t.TempDir(), "AWS_LAMBDA_FUNCTION_NAME": "p"}), &out, lambdaenv.Parse)
	if err != nil || ph == nil || out.Len() != 0 {
		t.Errorf("got %v, %v, logs %q", ph, err, out.String())
	}
}
