package query

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"

	"github.com/flowlake/flowlake/internal/auth"
	lakequery "github.com/flowlake/flowlake/internal/query"
)

func loadEvent(t *testing.T, name string) events.APIGatewayV2HTTPRequest {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var ev events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

// The Lambda handler answers function URL and HTTP API events as the
// HTTP server answers requests.
func TestLambdaEvents(t *testing.T) {
	e := newEnv(t)
	ctx := t.Context()

	resp, err := e.srv.HandleLambda(ctx, loadEvent(t, "function-url-login.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sess auth.Session
	if resp.StatusCode != 200 || resp.IsBase64Encoded || json.Unmarshal([]byte(resp.Body), &sess) != nil || sess.User.Username != "admin" {
		t.Fatalf("login: %d %s", resp.StatusCode, resp.Body)
	}
	if resp.Headers["Content-Type"] != "application/json" || resp.Headers["Cache-Control"] != "no-store" {
		t.Errorf("login headers %v", resp.Headers)
	}

	ev := loadEvent(t, "http-api-map.json") // stage prod: /prod/api/v1/map
	ev.Headers["authorization"] = "Bearer " + sess.Token
	resp, err = e.srv.HandleLambda(ctx, ev)
	if err != nil {
		t.Fatal(err)
	}
	var m lakequery.MapResult
	if resp.StatusCode != 200 || json.Unmarshal([]byte(resp.Body), &m) != nil {
		t.Fatalf("map: %d %s", resp.StatusCode, resp.Body)
	}
	// The same answer as over HTTP.
	want := e.call("GET", "/api/v1/map?"+ev.RawQueryString, sess.Token, nil, 200, nil)
	if strings.TrimSpace(resp.Body) != strings.TrimSpace(string(want)) {
		t.Errorf("Lambda and HTTP answers differ:\n%s\n%s", resp.Body, want)
	}

	// Without a token: 401 with the JSON error.
	delete(ev.Headers, "authorization")
	resp, _ = e.srv.HandleLambda(ctx, ev)
	if resp.StatusCode != 401 || !strings.Contains(resp.Body, `"code":"unauthorized"`) || resp.Headers["Www-Authenticate"] == "" {
		t.Errorf("map without token: %d %v %s", resp.StatusCode, resp.Headers, resp.Body)
	}

	// A pcap download travels base64-encoded.
	id := strings1(t, e.db, "SELECT id FROM http WHERE agent = 'a' ORDER BY id LIMIT 1")[0]
	ev = loadEvent(t, "http-api-map.json")
	ev.RawPath = "/prod/api/v1/communications/" + id + "/pcap"
	ev.RawQueryString = ""
	ev.Headers["authorization"] = "Bearer " + sess.Token
	resp, _ = e.srv.HandleLambda(ctx, ev)
	if resp.StatusCode != 200 || !resp.IsBase64Encoded || resp.Headers["Content-Type"] != "application/vnd.tcpdump.pcap" {
		t.Fatalf("pcap: %d %v base64=%v", resp.StatusCode, resp.Headers, resp.IsBase64Encoded)
	}
	b, err := base64.StdEncoding.DecodeString(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	_, httpPcap := e.do("GET", "/api/v1/communications/"+id+"/pcap", sess.Token, nil)
	if !bytes.Equal(b, httpPcap) {
		t.Errorf("Lambda pcap (%d bytes) differs from the HTTP one (%d bytes)", len(b), len(httpPcap))
	}

	// Malformed events.
	resp, _ = e.srv.HandleLambda(ctx, events.APIGatewayV2HTTPRequest{RawPath: "/api/v1/health"})
	if resp.StatusCode != 400 || !strings.Contains(resp.Body, "not a payload 2.0 HTTP event") {
		t.Errorf("event without method: %d %s", resp.StatusCode, resp.Body)
	}
	ev = loadEvent(t, "function-url-login.json")
	ev.Body = "%%%"
	resp, _ = e.srv.HandleLambda(ctx, ev)
	if resp.StatusCode != 400 || !strings.Contains(resp.Body, "not valid base64") {
		t.Errorf("bad base64 body: %d %s", resp.StatusCode, resp.Body)
	}
}

func TestLambdaResponseLimit(t *testing.T) {
	rec := newRecorder()
	rec.Header().Set("Content-Type", "application/vnd.tcpdump.pcap")
	rec.WriteHeader(200)
	rec.Write(make([]byte, 5<<20)) // base64: 7 MB
	resp := rec.response()
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(resp.Body, "6 MB limit") {
		t.Errorf("oversized answer: %d %.200s", resp.StatusCode, resp.Body)
	}
	rec = newRecorder()
	http.SetCookie(rec, &http.Cookie{Name: "a", Value: "1"})
	http.SetCookie(rec, &http.Cookie{Name: "b", Value: "2"})
	writeJSON(rec, 200, map[string]int{"x": 1})
	resp = rec.response()
	if len(resp.Cookies) != 2 || resp.Body != "{\"x\":1}\n" || resp.IsBase64Encoded {
		t.Errorf("cookies and text body: %+v", resp)
	}
}
