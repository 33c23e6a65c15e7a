package query

import (
	"bytes"
	"crypto/ed25519"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowlake/flowlake/internal/auth"
	lakequery "github.com/flowlake/flowlake/internal/query"
	"github.com/flowlake/flowlake/internal/store"
)

// env is a running API over a copy of the test lake, with users:
// admin; alice, an analyst of team red (agent a); bob, a viewer of team
// blue (agent b); carol, an analyst in no team; robot, a viewer service
// account of team red.
type env struct {
	t      *testing.T
	st     *store.Local
	db     *sql.DB
	svc    *auth.Service
	srv    *Server
	url    string
	offset atomic.Int64 // added to the clock
	from   time.Time    // a window holding the whole lake
	to     time.Time
	tok    map[string]string
}

func (e *env) now() time.Time { return time.Now().Add(time.Duration(e.offset.Load())) }

func newEnv(t *testing.T) *env {
	t.Helper()
	e := &env{t: t, st: testLake(t), tok: map[string]string{}}
	e.db = duck(t, e.st)
	e.from, e.to = lakeWindow(t, e.db)
	ctx := t.Context()
	var err error
	e.svc, err = auth.New(ctx, auth.Config{Store: e.st, Now: e.now, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	eng, err := lakequery.New(e.st, lakequery.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.srv, err = New(Config{Engine: eng, Auth: e.svc, Now: e.now})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(e.srv)
	t.Cleanup(hs.Close)
	e.url = hs.URL
	if _, _, err := e.svc.Bootstrap(ctx, "admin-password"); err != nil {
		t.Fatal(err)
	}
	for team, agents := range map[string][]string{"red": {"a"}, "blue": {"b"}} {
		if _, err := e.svc.CreateTeam(ctx, team, agents); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []auth.NewUser{
		{Username: "alice", Password: "alice-password", Role: auth.RoleAnalyst, Teams: []string{"red"}},
		{Username: "bob", Password: "bob-password", Role: auth.RoleViewer, Teams: []string{"blue"}},
		{Username: "carol", Password: "carol-password", Role: auth.RoleAnalyst},
	} {
		if _, err := e.svc.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []string{"admin", "alice", "bob", "carol"} {
		var sess auth.Session
		e.call("POST", "/api/v1/auth/login", "", map[string]string{"username": u, "password": u + "-password"}, 200, &sess)
		e.tok[u] = sess.Token
	}
	return e
}

// do sends a request; body is JSON-encoded unless it is a string.
func (e *env) do(method, path, tok string, body any) (*http.Response, []byte) {
	e.t.Helper()
	var r io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		r = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			e.t.Fatal(err)
		}
		r = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(e.t.Context(), method, e.url+path, r)
	if err != nil {
		e.t.Fatal(err)
	}
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		e.t.Fatal(err)
	}
	checkResponse(e.t, req, resp.StatusCode, resp.Header, b)
	return resp, b
}

// call sends a request, checks the status and decodes the JSON answer
// into out (if not nil).
func (e *env) call(method, path, tok string, body any, want int, out any) []byte {
	e.t.Helper()
	resp, b := e.do(method, path, tok, body)
	if resp.StatusCode != want {
		e.t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			e.t.Fatalf("%s %s: %v: %s", method, path, err, b)
		}
	}
	return b
}

// apiErr checks an error answer: status, code, and a message containing
// want.
func (e *env) apiErr(method, path, tok string, body any, status int, code, want string) apiError {
	e.t.Helper()
	resp, b := e.do(method, path, tok, body)
	var ae apiError
	if err := json.Unmarshal(b, &ae); err != nil {
		e.t.Fatalf("%s %s: error body is not JSON: %s", method, path, b)
	}
	if resp.StatusCode != status || ae.Code != code || !strings.Contains(ae.Error, want) {
		e.t.Errorf("%s %s: %d %+v, want %d %s containing %q", method, path, resp.StatusCode, ae, status, code, want)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		e.t.Errorf("%s %s: error Content-Type %q", method, path, ct)
	}
	return ae
}

// window is the query string of the whole lake, plus extra parameters.
func (e *env) window(extra ...string) string {
	v := url.Values{"from": {e.from.Format(time.RFC3339)}, "to": {e.to.Format(time.RFC3339)}}
	for i := 0; i+1 < len(extra); i += 2 {
		v.Set(extra[i], extra[i+1])
	}
	return "?" + v.Encode()
}

// concrete fills the path parameters of a route pattern.
func concrete(path string) string {
	return strings.NewReplacer("{id}", "x1", "{token}", "t1", "{username}", "nobody", "{name}", "nobody").Replace(path)
}

func TestUnauthenticated(t *testing.T) {
	e := newEnv(t)
	for _, rt := range e.srv.routes() {
		if rt.access == public {
			continue
		}
		p := concrete(rt.path)
		ae := e.apiErr(rt.method, p, "", nil, 401, "unauthorized", "missing Authorization")
		_ = ae
		resp, _ := e.do(rt.method, p, "", nil)
		if resp.Header.Get("WWW-Authenticate") == "" {
			t.Errorf("%s %s: 401 without WWW-Authenticate", rt.method, p)
		}
	}

	good := e.tok["alice"]
	parts := strings.Split(good, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	forged := strings.Replace(string(payload), `"sub":"alice"`, `"sub":"admin"`, 1)
	if forged == string(payload) {
		t.Fatalf("token payload without sub alice: %s", payload)
	}
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(forged)) + "." + parts[2]
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."

	// A token signed by another key (another deployment).
	_, otherKey, _ := ed25519.GenerateKey(nil)
	other, err := auth.New(t.Context(), auth.Config{Store: store.NewMem(), SigningKey: otherKey, Log: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := other.Bootstrap(t.Context(), "admin-password"); err != nil {
		t.Fatal(err)
	}
	otherSess, err := other.Login(t.Context(), "admin", "admin-password", "")
	if err != nil {
		t.Fatal(err)
	}

	for _, tc := range []struct{ name, header, want string }{
		{"garbage", "Bearer nonsense", "malformed"},
		{"not bearer", "Basic YWRtaW46YWRtaW4=", "not 'Bearer <token>'"},
		{"empty bearer", "Bearer ", "not 'Bearer <token>'"},
		{"tampered", "Bearer " + tampered, "signature is invalid"},
		{"wrong key", "Bearer " + otherSess.Token, "signature is invalid"},
		{"alg none", "Bearer " + none, "not signed with EdDSA"},
	} {
		req, _ := http.NewRequest("GET", e.url+"/api/v1/map", nil)
		req.Header.Set("Authorization", tc.header)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var ae apiError
		_ = json.Unmarshal(b, &ae)
		if resp.StatusCode != 401 || ae.Code != "unauthorized" || !strings.Contains(ae.Error, tc.want) {
			t.Errorf("%s: %d %s, want 401 saying %q", tc.name, resp.StatusCode, b, tc.want)
		}
	}

	// Expired: the clock moves past the token's lifetime.
	e.call("GET", "/api/v1/auth/me", good, nil, 200, nil)
	e.offset.Store(int64(auth.DefaultTokenTTL + time.Minute))
	e.apiErr("GET", "/api/v1/map", good, nil, 401, "unauthorized", "expired")
	e.apiErr("GET", "/api/v1/auth/me", good, nil, 401, "unauthorized", "expired")
	e.offset.Store(0)

	// A deleted user's token stops working.
	e.call("DELETE", "/api/v1/admin/users/carol", e.tok["admin"], nil, 204, nil)
	e.apiErr("GET", "/api/v1/map", e.tok["carol"], nil, 401, "unauthorized", "no longer exists")
}

func TestLogin(t *testing.T) {
	e := newEnv(t)
	var sess struct {
		Token     string        `json:"token"`
		ExpiresAt time.Time     `json:"expires_at"`
		User      auth.UserInfo `json:"user"`
	}
	e.call("POST", "/api/v1/auth/login", "", map[string]string{"username": "alice", "password": "alice-password"}, 200, &sess)
	if sess.Token == "" || sess.User.Username != "alice" || sess.User.Role != auth.RoleAnalyst || !slices.Equal(sess.User.Teams, []string{"red"}) {
		t.Errorf("login answer %+v", sess)
	}
	if d := time.Until(sess.ExpiresAt); d < 14*time.Minute || d > 15*time.Minute {
		t.Errorf("token expires in %v, want 15 min", d)
	}
	var me auth.UserInfo
	e.call("GET", "/api/v1/auth/me", sess.Token, nil, 200, &me)
	if me.Username != "alice" || me.Role != auth.RoleAnalyst {
		t.Errorf("me = %+v", me)
	}
	e.apiErr("POST", "/api/v1/auth/login", "", map[string]string{"username": "alice", "password": "nope"}, 401, "unauthorized", "wrong username or password")
	e.apiErr("POST", "/api/v1/auth/login", "", map[string]string{"username": "mallory", "password": "whatever1"}, 401, "unauthorized", "wrong username or password")
	e.apiErr("POST", "/api/v1/auth/login", "", map[string]string{"username": "alice"}, 400, "bad_request", "username and password are required")
	e.apiErr("POST", "/api/v1/auth/login", "", `{"username": "alice",`, 400, "bad_request", "not valid JSON")
	e.apiErr("POST", "/api/v1/auth/login", "", `{"username": 5}`, 400, "bad_request", "username: want a JSON string")
	e.apiErr("POST", "/api/v1/auth/login", "", "", 400, "bad_request", "empty request body")
	e.apiErr("POST", "/api/v1/auth/login", "", strings.Repeat(" ", maxBody+1)+"{}", 400, "bad_request", "larger than")

	// Service accounts: an API key, exchanged for a token.
	var sa serviceAccountAnswer
	e.call("POST", "/api/v1/admin/service-accounts", e.tok["admin"], map[string]any{"name": "robot", "role": "viewer", "teams": []string{"red"}}, 201, &sa)
	if !strings.HasPrefix(sa.APIKey, "flk_robot.") || sa.KeyHash != "" {
		t.Fatalf("service account answer %+v", sa)
	}
	e.call("POST", "/api/v1/auth/token", "", map[string]string{"api_key": sa.APIKey}, 200, &sess)
	e.call("GET", "/api/v1/auth/me", sess.Token, nil, 200, &me)
	if me.Username != "robot" || me.Role != auth.RoleViewer {
		t.Errorf("service account me = %+v", me)
	}
	var list struct {
		Items []map[string]any `json:"items"`
		Next  string           `json:"next"`
	}
	body := e.call("GET", "/api/v1/admin/service-accounts", e.tok["admin"], nil, 200, &list)
	if len(list.Items) != 1 || strings.Contains(string(body), "flk_") || strings.Contains(string(body), "argon2") {
		t.Errorf("service account list shows a key or hash: %s", body)
	}
	e.apiErr("POST", "/api/v1/auth/token", "", map[string]string{"api_key": sa.APIKey + "x"}, 401, "unauthorized", "invalid API key")
	e.apiErr("POST", "/api/v1/auth/token", "", map[string]string{}, 400, "bad_request", "api_key is required")
	e.call("DELETE", "/api/v1/admin/service-accounts/robot", e.tok["admin"], nil, 204, nil)
	e.apiErr("GET", "/api/v1/map", sess.Token, nil, 401, "unauthorized", "no longer exists")
	e.apiErr("POST", "/api/v1/auth/token", "", map[string]string{"api_key": sa.APIKey}, 401, "unauthorized", "invalid API key")

	var cfg map[string]bool
	e.call("GET", "/api/v1/auth/config", "", nil, 200, &cfg)
	if cfg["oidc"] {
		t.Error("OIDC reported on without configuration")
	}
	e.apiErr("GET", "/api/v1/auth/oidc/login", "", nil, 404, "not_found", "OIDC login is not configured")
}

// forbidden lists the routes each role may not call.
func TestRoles(t *testing.T) {
	e := newEnv(t)
	// A public link visitor.
	var view auth.SavedView
	e.call("POST", "/api/v1/views", e.tok["alice"], map[string]string{"name": "all"}, 201, &view)
	var link linkAnswer
	e.call("POST", "/api/v1/links", e.tok["alice"], map[string]string{"view_id": view.ID}, 201, &link)
	var pub publicAnswer
	e.call("GET", "/api/v1/public/"+link.Token, "", nil, 200, &pub)

	adminOnly := func(p string) bool { return strings.HasPrefix(p, "/api/v1/admin/") }
	analystPlus := func(m, p string) bool {
		return strings.HasPrefix(p, "/api/v1/views") || strings.HasPrefix(p, "/api/v1/links") || (m == "PUT" && p == "/api/v1/positions")
	}
	linkOK := map[string]bool{"/api/v1/map": true, "/api/v1/timeline": true, "/api/v1/communications": true,
		"/api/v1/communications/{id}": true, "/api/v1/sequence": true, "/api/v1/fields": true, "/api/v1/auth/me": true}
	for _, who := range []string{"bob", "alice", "admin", "link"} {
		tok := e.tok[who]
		if who == "link" {
			tok = pub.Token
		}
		for _, rt := range e.srv.routes() {
			if rt.access == public {
				continue
			}
			var want bool // forbidden
			switch who {
			case "bob":
				want = adminOnly(rt.path) || analystPlus(rt.method, rt.path)
			case "alice":
				want = adminOnly(rt.path)
			case "link":
				want = !linkOK[rt.path]
			}
			p := concrete(rt.path)
			if strings.HasPrefix(rt.path, "/api/v1/map") || strings.HasPrefix(rt.path, "/api/v1/timeline") {
				p += e.window()
			}
			resp, b := e.do(rt.method, p, tok, "{}")
			switch {
			case want && resp.StatusCode != 403:
				t.Errorf("%s: %s %s = %d, want 403: %s", who, rt.method, p, resp.StatusCode, b)
			case !want && (resp.StatusCode == 403 || resp.StatusCode == 401):
				t.Errorf("%s: %s %s = %d, want it allowed: %s", who, rt.method, p, resp.StatusCode, b)
			case want && !strings.Contains(string(b), `"code":"forbidden"`):
				t.Errorf("%s: %s %s: 403 body %s", who, rt.method, p, b)
			}
		}
	}
}

func TestBadParams(t *testing.T) {
	e := newEnv(t)
	tok := e.tok["admin"]
	for _, tc := range []struct{ path, want string }{
		{"/api/v1/map?from=yesterday", `from="yesterday" is not an RFC 3339 time`},
		{"/api/v1/map?to=2024-13-01T00:00:00Z", `to="2024-13-01T00:00:00Z" is not an RFC 3339 time`},
		{"/api/v1/timeline?from=2024-01-02T00:00:00Z&to=2024-01-01T00:00:00Z", "must be before to"},
		{"/api/v1/communications?limit=0", `limit="0": want an integer from 1 to 1000`},
		{"/api/v1/communications?limit=1001", `want an integer from 1 to 1000`},
		{"/api/v1/communications?limit=ten", `limit="ten"`},
		{"/api/v1/communications?sort=host", `sort="host": want one of ts, -ts`},
		{"/api/v1/sequence?limit=5000", `want an integer from 1 to 1000`},
		{"/api/v1/export/har?limit=20000", `want an integer from 1 to 10000`},
		{"/api/v1/timeline?step=fast", `step="fast"`},
		{"/api/v1/timeline?step=-1s", `step="-1s"`},
		{"/api/v1/positions?scope=world", `scope "world": want user or team`},
	} {
		e.apiErr("GET", tc.path, tok, nil, 400, "bad_request", tc.want)
	}
	// Filter errors carry the byte offset.
	for _, tc := range []struct {
		q   string
		pos int
	}{
		{"status >= ", len("status >= ")},
		{"nosuchfield = 1", 0},
		{`host ~ "api\." and (status >= 500`, len(`host ~ "api\." and `)}, // the unclosed (
		{"status = abc", len("status = ")},
	} {
		for _, p := range []string{"/api/v1/map", "/api/v1/communications", "/api/v1/timeline"} {
			ae := e.apiErr("GET", p+"?q="+url.QueryEscape(tc.q), tok, nil, 400, "bad_request", "q:")
			if ae.Pos == nil || *ae.Pos != tc.pos {
				t.Errorf("%s q=%q: pos %v, want %d", p, tc.q, deref(ae.Pos), tc.pos)
			}
		}
	}
	e.apiErr("GET", "/api/v1/nope", tok, nil, 404, "not_found", "no API route GET /api/v1/nope")
	ae := e.apiErr("POST", "/api/v1/map", tok, nil, 405, "bad_request", "method POST not allowed on /api/v1/map (allowed: GET)")
	_ = ae
	e.apiErr("DELETE", "/api/v1/views", tok, nil, 405, "bad_request", "allowed: GET, POST")
	e.apiErr("GET", "/api/v1/communications/no-such-id", tok, nil, 404, "not_found", "")
}

func deref(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}
