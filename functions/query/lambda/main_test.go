package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/flowlake/flowlake/functions/internal/fntest"
)

// The binary, built as the Makefile builds it, serves HTTP events through
// the Lambda Runtime API: the first admin comes from
// FLOWLAKE_ADMIN_PASSWORD, login works, a data route without a token is
// 401. Without a valid configuration it logs why and exits.
func TestBootstrap(t *testing.T) {
	bin := fntest.Bootstrap(t, ".")
	login, err := os.ReadFile("../testdata/function-url-login.json")
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(login, &ev); err != nil {
		t.Fatal(err)
	}
	ev.RawPath, ev.RequestContext.HTTP.Method, ev.Body, ev.IsBase64Encoded = "/api/v1/map", "GET", "", false
	mapEv, _ := json.Marshal(ev)
	env := []string{"FLOWLAKE_STORE=" + t.TempDir(), "FLOWLAKE_ADMIN_PASSWORD=admin-password",
		"AWS_REGION=eu-west-1", "AWS_CONFIG_FILE=" + os.DevNull, "AWS_SHARED_CREDENTIALS_FILE=" + os.DevNull, "AWS_EC2_METADATA_DISABLED=true"}
	out, stdout, err := fntest.RunBootstrap(t, bin, env, login, mapEv)
	if err != nil {
		t.Fatalf("%v\nstdout:\n%s", err, stdout)
	}
	if len(out) != 2 || out[0].Error || out[1].Error {
		t.Fatalf("answers %+v", out)
	}
	var r1, r2 events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal([]byte(out[0].Body), &r1); err != nil || r1.StatusCode != 200 || !strings.Contains(r1.Body, `"token":"`) {
		t.Errorf("login answer %s", out[0].Body)
	}
	if err := json.Unmarshal([]byte(out[1].Body), &r2); err != nil || r2.StatusCode != 401 {
		t.Errorf("map without token: %s", out[1].Body)
	}
	if strings.Contains(stdout, "admin-password") {
		t.Errorf("the password is in the log: %s", stdout)
	}

	out, stdout, err = fntest.RunBootstrap(t, bin, []string{"FLOWLAKE_STORE=" + t.TempDir(), "FLOWLAKE_JWT_KEY=not-a-key"}, login)
	if err == nil || len(out) != 0 || !strings.Contains(stdout, "FLOWLAKE_JWT_KEY") {
		t.Fatalf("bad configuration: %+v, %v, stdout %s", out, err, stdout)
	}
	if strings.Contains(stdout, "not-a-key") {
		t.Errorf("the key is in the log: %s", stdout)
	}
}
