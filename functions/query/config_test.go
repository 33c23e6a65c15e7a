package query

import (
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowlake/flowlake/internal/auth"
	lakequery "github.com/flowlake/flowlake/internal/query"
)

type listAnswer[T any] struct {
	Items []T    `json:"items"`
	Next  string `json:"next"`
}

func TestViewsAndPositions(t *testing.T) {
	e := newEnv(t)
	alice, bob, admin := e.tok["alice"], e.tok["bob"], e.tok["admin"]
	var v auth.SavedView
	e.call("POST", "/api/v1/views", alice, map[string]string{"name": "errors", "q": "status >= 500", "relative": "24h", "team": "red"}, 201, &v)
	if v.ID == "" || v.Owner != "alice" || v.Team != "red" || v.Q != "status >= 500" {
		t.Errorf("created view %+v", v)
	}
	ae := e.apiErr("POST", "/api/v1/views", alice, map[string]string{"name": "bad", "q": "status >>"}, 400, "bad_request", "q:")
	if ae.Pos == nil || *ae.Pos != len("status >") {
		t.Errorf("view with a bad q: pos %v", ae.Pos)
	}
	e.apiErr("POST", "/api/v1/views", alice, map[string]string{"name": "x", "team": "blue"}, 403, "forbidden", `not a member of team "blue"`)
	e.apiErr("POST", "/api/v1/views", alice, map[string]string{"name": "x", "from": "monday"}, 400, "bad_request", "from \"monday\" is not an RFC 3339 time")
	e.apiErr("POST", "/api/v1/views", alice, map[string]string{}, 400, "bad_request", "a view needs a name")

	var views listAnswer[auth.SavedView]
	e.call("GET", "/api/v1/views", alice, nil, 200, &views)
	if len(views.Items) != 1 || views.Items[0].ID != v.ID || views.Next != "" {
		t.Errorf("alice's views %+v", views)
	}
	e.call("GET", "/api/v1/views", e.tok["carol"], nil, 200, &views)
	if len(views.Items) != 0 {
		t.Errorf("carol sees %+v", views.Items)
	}
	e.apiErr("GET", "/api/v1/views/"+v.ID, e.tok["carol"], nil, 404, "not_found", "no view")
	e.apiErr("PUT", "/api/v1/views/"+v.ID, e.tok["carol"], map[string]string{"name": "mine"}, 404, "not_found", "no view")
	// The UI sends the whole view back on update.
	v.Name = "server errors"
	var v2 auth.SavedView
	e.call("PUT", "/api/v1/views/"+v.ID, alice, v, 200, &v2)
	if v2.Name != "server errors" || v2.Owner != "alice" || !v2.CreatedAt.Equal(v.CreatedAt) {
		t.Errorf("updated view %+v", v2)
	}
	e.call("GET", "/api/v1/views/"+v.ID, admin, nil, 200, &v2)

	// Positions, per user and per team.
	pos := map[string]any{"positions": map[string]auth.Point{"10.0.0.1": {X: 1.5, Y: -2}}}
	var got positionsBody
	e.call("PUT", "/api/v1/positions?scope=user", alice, pos, 200, &got)
	e.call("GET", "/api/v1/positions?scope=user", alice, nil, 200, &got)
	if got.Positions["10.0.0.1"] != (auth.Point{X: 1.5, Y: -2}) {
		t.Errorf("user positions %+v", got)
	}
	got = positionsBody{}
	e.call("GET", "/api/v1/positions?scope=user", bob, nil, 200, &got)
	if len(got.Positions) != 0 {
		t.Errorf("bob sees alice's positions %+v", got)
	}
	e.call("PUT", "/api/v1/positions?scope=team", alice, pos, 200, nil)
	got = positionsBody{}
	e.call("GET", "/api/v1/positions?scope=team&team=red", admin, nil, 200, &got)
	if len(got.Positions) != 1 {
		t.Errorf("team positions %+v", got)
	}
	e.apiErr("GET", "/api/v1/positions?scope=team&team=red", bob, nil, 403, "forbidden", `not a member of team "red"`)
	e.apiErr("PUT", "/api/v1/positions?scope=user", alice, map[string]any{"positions": map[string]any{"x": map[string]any{"x": "left"}}},
		400, "bad_request", "want a JSON number")

	e.call("DELETE", "/api/v1/views/"+v.ID, alice, nil, 204, nil)
	e.apiErr("DELETE", "/api/v1/views/"+v.ID, alice, nil, 404, "not_found", "no view")
}

func TestPublicLinks(t *testing.T) {
	e := newEnv(t)
	alice := e.tok["alice"]
	// A view of agent a's GET exchanges.
	var v auth.SavedView
	e.call("POST", "/api/v1/views", alice, map[string]string{"name": "gets", "q": "method = GET",
		"from": e.from.Format(time.RFC3339), "to": e.to.Format(time.RFC3339)}, 201, &v)
	e.apiErr("POST", "/api/v1/links", alice, map[string]string{"view_id": v.ID, "expires_in": "soon"}, 400, "bad_request", `expires_in="soon"`)
	e.apiErr("POST", "/api/v1/links", alice, map[string]string{"view_id": v.ID, "expires_in": "1000d"}, 400, "bad_request", "expires_in")
	e.apiErr("POST", "/api/v1/links", alice, map[string]string{"view_id": "nope"}, 400, "bad_request", "no such view")
	e.apiErr("POST", "/api/v1/links", e.tok["carol"], map[string]string{"view_id": v.ID}, 400, "bad_request", "no such view")

	var link linkAnswer
	e.call("POST", "/api/v1/links", alice, map[string]string{"view_id": v.ID, "expires_in": "2h"}, 201, &link)
	if !strings.HasSuffix(link.URL, "/#/public/"+link.Token) || !strings.HasPrefix(link.URL, e.url) {
		t.Errorf("link URL %q", link.URL)
	}
	if d := time.Until(link.ExpiresAt); d < 119*time.Minute || d > 2*time.Hour {
		t.Errorf("link expires in %v", d)
	}
	// The URL token is not an access token.
	e.apiErr("GET", "/api/v1/map", link.Token, nil, 401, "unauthorized", "not valid for this use")

	var pub publicAnswer
	e.call("GET", "/api/v1/public/"+link.Token, "", nil, 200, &pub)
	if pub.View.ID != v.ID || pub.Token == "" {
		t.Fatalf("public answer %+v", pub)
	}
	var me auth.UserInfo
	e.call("GET", "/api/v1/auth/me", pub.Token, nil, 200, &me)
	if me.Role != auth.RoleViewer || !strings.HasPrefix(me.Username, "link:") {
		t.Errorf("link visitor me = %+v", me)
	}
	// The visitor sees the view's rows: alice's scope (agent a), the view's
	// filter and window, whatever they ask for.
	want := strings1(t, e.db, "SELECT id FROM http WHERE agent = 'a' AND method = 'GET' ORDER BY id")
	got := ids(e.allComms(pub.Token, "?q="))
	if !slices.Equal(got, want) {
		t.Errorf("link visitor sees %d exchanges, DuckDB says %d", len(got), len(want))
	}
	got = ids(e.allComms(pub.Token, e.window("q", "method != GET")))
	if len(got) != 0 {
		t.Errorf("link visitor escaped the view's filter: %d exchanges", len(got))
	}
	bPost := strings1(t, e.db, "SELECT id FROM http WHERE agent = 'b' ORDER BY id")
	aPost := strings1(t, e.db, "SELECT id FROM http WHERE agent = 'a' AND method <> 'GET' ORDER BY id")
	e.apiErr("GET", "/api/v1/communications/"+bPost[0], pub.Token, nil, 404, "not_found", "")
	if len(aPost) > 0 {
		e.apiErr("GET", "/api/v1/communications/"+aPost[0], pub.Token, nil, 404, "not_found", "not in the shared view")
	}
	e.call("GET", "/api/v1/communications/"+want[0], pub.Token, nil, 200, nil)
	// With a ts hint, right or wrong, the check against the view holds:
	// rows of the view are found, rows outside it are not.
	tsOf := func(id string) string {
		var ts time.Time
		if err := e.db.QueryRow("SELECT ts FROM http WHERE id = ?", id).Scan(&ts); err != nil {
			t.Fatal(err)
		}
		return ts.UTC().Format(time.RFC3339Nano)
	}
	for _, ts := range []string{tsOf(want[0]), "2001-01-01T00:00:00Z", e.to.Add(-time.Minute).Format(time.RFC3339)} {
		e.call("GET", "/api/v1/communications/"+want[0]+"?ts="+url.QueryEscape(ts), pub.Token, nil, 200, nil)
	}
	e.apiErr("GET", "/api/v1/communications/"+bPost[0]+"?ts="+url.QueryEscape(tsOf(bPost[0])), pub.Token, nil, 404, "not_found", "")
	if len(aPost) > 0 {
		e.apiErr("GET", "/api/v1/communications/"+aPost[0]+"?ts="+url.QueryEscape(tsOf(aPost[0])), pub.Token, nil, 404, "not_found", "not in the shared view")
	}
	e.apiErr("GET", "/api/v1/communications/"+want[0]+"/pcap", pub.Token, nil, 403, "forbidden", "public link")
	var m lakequery.MapResult
	e.call("GET", "/api/v1/map", pub.Token, nil, 200, &m)
	var n int64
	for _, ed := range m.Edges {
		if ed.Protocol == "http" {
			n += ed.Count
		}
	}
	if n != int64(len(want)) {
		t.Errorf("link visitor's map counts %d exchanges, want %d", n, len(want))
	}

	// Listing and revoking.
	var links listAnswer[auth.LinkRecord]
	e.call("GET", "/api/v1/links", alice, nil, 200, &links)
	if len(links.Items) != 1 || links.Items[0].ID != link.ID || links.Items[0].HasPassword {
		t.Errorf("links %+v", links)
	}
	e.apiErr("DELETE", "/api/v1/links/"+link.ID, e.tok["carol"], nil, 404, "not_found", "no link")
	e.call("DELETE", "/api/v1/links/"+link.ID, alice, nil, 204, nil)
	e.apiErr("GET", "/api/v1/public/"+link.Token, "", nil, 401, "unauthorized", "revoked")
	e.apiErr("GET", "/api/v1/map", pub.Token, nil, 401, "unauthorized", "revoked")

	// A one-time password: needed, wrong, right once (of concurrent
	// visitors exactly one), then never again.
	e.call("POST", "/api/v1/links", alice, map[string]string{"view_id": v.ID, "password": "open-sesame"}, 201, &link)
	e.apiErr("GET", "/api/v1/public/"+link.Token, "", nil, 401, "unauthorized", "needs its one-time password")
	e.apiErr("POST", "/api/v1/public/"+link.Token, "", map[string]string{"password": "close-sesame"}, 401, "unauthorized", "wrong password")
	e.apiErr("POST", "/api/v1/public/"+link.Token, "", map[string]string{}, 400, "bad_request", "password is required")
	var wg sync.WaitGroup
	codes := make([]int, 4)
	for i := range codes {
		wg.Go(func() {
			resp, _ := e.do("POST", "/api/v1/public/"+url.PathEscape(link.Token), "", map[string]string{"password": "open-sesame"})
			codes[i] = resp.StatusCode
		})
	}
	wg.Wait()
	slices.Sort(codes)
	if !slices.Equal(codes, []int{200, 401, 401, 401}) {
		t.Errorf("concurrent uses of a one-time password: statuses %v, want one 200", codes)
	}
	e.apiErr("POST", "/api/v1/public/"+link.Token, "", map[string]string{"password": "open-sesame"}, 401, "unauthorized", "used already")
	e.call("GET", "/api/v1/links", alice, nil, 200, &links)
	if !links.Items[0].HasPassword || !links.Items[0].Used {
		t.Errorf("used link %+v", links.Items[0])
	}
	e.apiErr("GET", "/api/v1/public/garbage", "", nil, 401, "unauthorized", "malformed")
}

func TestAdmin(t *testing.T) {
	e := newEnv(t)
	admin := e.tok["admin"]
	var u auth.UserRecord
	e.call("POST", "/api/v1/admin/users", admin, map[string]any{"username": "dave", "password": "dave-password", "role": "viewer", "teams": []string{"blue"}}, 201, &u)
	if u.Username != "dave" || u.Role != auth.RoleViewer || !slices.Equal(u.Teams, []string{"blue"}) || !u.Password {
		t.Errorf("created user %+v", u)
	}
	e.apiErr("POST", "/api/v1/admin/users", admin, map[string]any{"username": "dave", "password": "dave-password"}, 400, "bad_request", `user "dave" already exists`)
	e.apiErr("POST", "/api/v1/admin/users", admin, map[string]any{"username": "eve", "password": "short"}, 400, "bad_request", "shorter than 8")
	e.apiErr("POST", "/api/v1/admin/users", admin, map[string]any{"username": "eve/x", "password": "long-enough"}, 400, "bad_request", "not allowed")
	e.apiErr("POST", "/api/v1/admin/users", admin, map[string]any{"username": "eve", "password": "long-enough", "role": "god"}, 400, "bad_request", `role "god"`)
	e.apiErr("POST", "/api/v1/admin/users", admin, map[string]any{"username": "eve", "password": "long-enough", "teams": []string{"green"}}, 400, "bad_request", `team "green" does not exist`)

	var users listAnswer[auth.UserRecord]
	body := e.call("GET", "/api/v1/admin/users", admin, nil, 200, &users)
	if len(users.Items) != 5 || strings.Contains(string(body), "argon2") || strings.Contains(string(body), "password_hash") {
		t.Errorf("users: %s", body)
	}
	// dave logs in, is moved to red and made analyst; a new password
	// refuses his older token.
	var sess auth.Session
	e.call("POST", "/api/v1/auth/login", "", map[string]string{"username": "dave", "password": "dave-password"}, 200, &sess)
	e.call("PUT", "/api/v1/admin/users/dave", admin, map[string]any{"role": "analyst", "teams": []string{"red"}}, 200, &u)
	var me auth.UserInfo
	e.call("GET", "/api/v1/auth/me", sess.Token, nil, 200, &me)
	if me.Role != auth.RoleAnalyst || !slices.Equal(me.Teams, []string{"red"}) {
		t.Errorf("after the update dave is %+v", me)
	}
	e.apiErr("PUT", "/api/v1/admin/users/dave", admin, map[string]any{"username": "david"}, 400, "bad_request", "cannot be renamed")
	e.offset.Store(int64(2 * time.Second)) // tokens are dated in seconds
	e.call("PUT", "/api/v1/admin/users/dave", admin, map[string]any{"password": "new-dave-password"}, 200, nil)
	e.apiErr("GET", "/api/v1/auth/me", sess.Token, nil, 401, "unauthorized", "password")
	e.call("POST", "/api/v1/auth/login", "", map[string]string{"username": "dave", "password": "new-dave-password"}, 200, nil)
	e.apiErr("PUT", "/api/v1/admin/users/nobody", admin, map[string]any{"role": "viewer"}, 404, "not_found", `user "nobody"`)
	e.apiErr("PUT", "/api/v1/admin/users/admin", admin, map[string]any{"role": "viewer"}, 400, "bad_request", "last admin")
	e.apiErr("DELETE", "/api/v1/admin/users/admin", admin, nil, 400, "bad_request", "last admin")
	e.call("DELETE", "/api/v1/admin/users/dave", admin, nil, 204, nil)
	e.apiErr("DELETE", "/api/v1/admin/users/dave", admin, nil, 404, "not_found", `user "dave"`)

	// Teams: agents change the scope at once.
	var tm auth.Team
	e.call("POST", "/api/v1/admin/teams", admin, map[string]any{"name": "green", "agents": []string{"b", "a"}}, 201, &tm)
	if !slices.Equal(tm.Agents, []string{"a", "b"}) {
		t.Errorf("team %+v", tm)
	}
	e.apiErr("POST", "/api/v1/admin/teams", admin, map[string]any{"name": "green"}, 400, "bad_request", `team "green" already exists`)
	e.apiErr("POST", "/api/v1/admin/teams", admin, map[string]any{"name": "x", "agents": []string{"bad agent"}}, 400, "bad_request", "not allowed")
	e.apiErr("PUT", "/api/v1/admin/teams/green", admin, map[string]any{"name": "blue", "agents": []string{}}, 400, "bad_request", "cannot be renamed")
	e.apiErr("PUT", "/api/v1/admin/teams/green", admin, map[string]any{}, 400, "bad_request", "agents is required")
	e.apiErr("PUT", "/api/v1/admin/teams/nope", admin, map[string]any{"agents": []string{}}, 404, "not_found", `team "nope"`)
	before := len(e.allComms(e.tok["bob"], e.window()))
	e.call("PUT", "/api/v1/admin/teams/blue", admin, map[string]any{"name": "blue", "agents": []string{"a", "b"}}, 200, &tm)
	after := len(e.allComms(e.tok["bob"], e.window()))
	total := len(strings1(t, e.db, "SELECT id FROM http"))
	if after != total || before >= after {
		t.Errorf("bob sees %d exchanges, then %d after blue got agent a; the lake has %d", before, after, total)
	}
	var teams listAnswer[auth.Team]
	e.call("GET", "/api/v1/admin/teams", admin, nil, 200, &teams)
	if len(teams.Items) != 3 {
		t.Errorf("teams %+v", teams)
	}
	e.call("DELETE", "/api/v1/admin/teams/blue", admin, nil, 204, nil)
	if n := len(e.allComms(e.tok["bob"], e.window())); n != 0 {
		t.Errorf("bob sees %d exchanges after his team was deleted", n)
	}

	var agents listAnswer[agentInfo]
	e.offset.Store(0)
	e.call("GET", "/api/v1/admin/agents", admin, nil, 200, &agents)
	var names []string
	for _, a := range agents.Items {
		names = append(names, a.Agent+":"+strings.Join(a.Teams, "+"))
	}
	// The test lake's captures are years old: the agents are known from
	// their teams only.
	if !slices.Equal(names, []string{"a:green+red", "b:green"}) {
		t.Errorf("agents %v", names)
	}
}
