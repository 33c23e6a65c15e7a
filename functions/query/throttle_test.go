package query

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/flowlake/flowlake/internal/auth"
)

// Failed logins are throttled: 429 with Retry-After and a message saying
// when to retry, over HTTP and through the Lambda handler.
func TestLoginThrottled(t *testing.T) {
	e := newEnv(t)
	login := func(user, pw string) (*http.Response, []byte) {
		return e.do("POST", "/api/v1/auth/login", "", map[string]string{"username": user, "password": pw})
	}
	for i := range auth.DefaultMaxFailuresPerUser {
		e.apiErr("POST", "/api/v1/auth/login", "", map[string]string{"username": "alice", "password": fmt.Sprint("guess", i)},
			401, "unauthorized", "wrong username or password")
	}
	// Unknown users get the same answers.
	for i := range auth.DefaultMaxFailuresPerUser {
		e.apiErr("POST", "/api/v1/auth/login", "", map[string]string{"username": "mallory", "password": fmt.Sprint("guess", i)},
			401, "unauthorized", "wrong username or password")
	}
	for _, user := range []string{"alice", "mallory"} {
		resp, b := login(user, "alice-password")
		var ae apiError
		json.Unmarshal(b, &ae)
		if resp.StatusCode != http.StatusTooManyRequests || ae.Code != "too_many_requests" ||
			!strings.Contains(ae.Error, "too many failed logins for this username: try again in ") {
			t.Fatalf("%s after %d failures: %d %s", user, auth.DefaultMaxFailuresPerUser, resp.StatusCode, b)
		}
		ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
		if err != nil || ra < 1 || ra > int(auth.DefaultFailureWindow.Seconds()) {
			t.Errorf("%s: Retry-After %q", user, resp.Header.Get("Retry-After"))
		}
	}
	// Others log in (from the same address: 10 failures are below its limit).
	e.call("POST", "/api/v1/auth/login", "", map[string]string{"username": "bob", "password": "bob-password"}, 200, nil)
	// After the window, alice too.
	e.offset.Add(int64(auth.DefaultFailureWindow + time.Second))
	e.call("POST", "/api/v1/auth/login", "", map[string]string{"username": "alice", "password": "alice-password"}, 200, nil)

	// Through Lambda, the address is the event's sourceIp; the
	// X-Forwarded-For a client sends changes nothing.
	ctx := t.Context()
	ev := loadEvent(t, "function-url-login.json") // admin, from 203.0.113.7
	ev.IsBase64Encoded = false
	for i := range auth.DefaultMaxFailuresPerClient {
		ev.Body = fmt.Sprintf(`{"username":"user%d","password":"wrong"}`, i)
		ev.Headers["x-forwarded-for"] = fmt.Sprintf("192.0.2.%d", i)
		resp, err := e.srv.HandleLambda(ctx, ev)
		if err != nil || resp.StatusCode != 401 {
			t.Fatalf("guess %d through Lambda: %d %s %v", i, resp.StatusCode, resp.Body, err)
		}
	}
	ev.Body = `{"username":"admin","password":"admin-password"}`
	ev.Headers["x-forwarded-for"] = "192.0.2.250"
	resp, err := e.srv.HandleLambda(ctx, ev)
	if err != nil || resp.StatusCode != 429 || !strings.Contains(resp.Body, "from this address") || resp.Headers["Retry-After"] == "" {
		t.Fatalf("admin from a throttled sourceIp: %d %v %s %v", resp.StatusCode, resp.Headers, resp.Body, err)
	}
	ev.RequestContext.HTTP.SourceIP = "203.0.113.8"
	if resp, err := e.srv.HandleLambda(ctx, ev); err != nil || resp.StatusCode != 200 {
		t.Errorf("admin from another sourceIp: %d %s %v", resp.StatusCode, resp.Body, err)
	}
}
