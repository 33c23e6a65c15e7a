package query

import (
	"bytes"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/flowlake/flowlake/internal/auth"
	"github.com/flowlake/flowlake/internal/filter"
	lakequery "github.com/flowlake/flowlake/internal/query"
)

// routes is the API: every route the server registers, and so every path
// of openapi.json (a test checks both ways).
func (s *Server) routes() []route {
	return []route{
		{"GET", "/api/v1/openapi.json", public, s.openAPI},
		{"GET", "/api/v1/health", public, s.health},
		{"GET", "/api/v1/auth/config", public, s.authConfig},
		{"POST", "/api/v1/auth/login", public, s.login},
		{"POST", "/api/v1/auth/token", public, s.token},
		{"GET", "/api/v1/auth/oidc/login", public, s.oidcLogin},
		{"GET", "/api/v1/auth/oidc/callback", public, s.oidcCallback},
		{"GET", "/api/v1/auth/me", anyone, s.me},
		{"GET", "/api/v1/public/{token}", public, s.openLink},
		{"POST", "/api/v1/public/{token}", public, s.openLink},

		{"GET", "/api/v1/map", anyone, s.mapRoute},
		{"GET", "/api/v1/timeline", anyone, s.timeline},
		{"GET", "/api/v1/communications", anyone, s.communications},
		{"GET", "/api/v1/communications/{id}", anyone, s.communication},
		{"GET", "/api/v1/communications/{id}/pcap", viewer, s.pcap},
		{"GET", "/api/v1/export/har", viewer, s.har},
		{"GET", "/api/v1/sequence", anyone, s.sequence},
		{"GET", "/api/v1/status", viewer, s.status},
		{"GET", "/api/v1/fields", anyone, s.fields},

		{"GET", "/api/v1/views", analyst, s.listViews},
		{"POST", "/api/v1/views", analyst, s.createView},
		{"GET", "/api/v1/views/{id}", analyst, s.getView},
		{"PUT", "/api/v1/views/{id}", analyst, s.updateView},
		{"DELETE", "/api/v1/views/{id}", analyst, s.deleteView},
		{"GET", "/api/v1/positions", viewer, s.getPositions},
		{"PUT", "/api/v1/positions", analyst, s.putPositions},
		{"GET", "/api/v1/links", analyst, s.listLinks},
		{"POST", "/api/v1/links", analyst, s.createLink},
		{"DELETE", "/api/v1/links/{id}", analyst, s.deleteLink},

		{"GET", "/api/v1/admin/users", admin, s.listUsers},
		{"POST", "/api/v1/admin/users", admin, s.createUser},
		{"PUT", "/api/v1/admin/users/{username}", admin, s.updateUser},
		{"DELETE", "/api/v1/admin/users/{username}", admin, s.deleteUser},
		{"GET", "/api/v1/admin/teams", admin, s.listTeams},
		{"POST", "/api/v1/admin/teams", admin, s.createTeam},
		{"PUT", "/api/v1/admin/teams/{name}", admin, s.updateTeam},
		{"DELETE", "/api/v1/admin/teams/{name}", admin, s.deleteTeam},
		{"GET", "/api/v1/admin/agents", admin, s.listAgents},
		{"GET", "/api/v1/admin/service-accounts", admin, s.listServiceAccounts},
		{"POST", "/api/v1/admin/service-accounts", admin, s.createServiceAccount},
		{"DELETE", "/api/v1/admin/service-accounts/{name}", admin, s.deleteServiceAccount},
	}
}

// DefaultWindow is the data routes' window when from and to are not given.
const DefaultWindow = time.Hour

// Limits of the limit parameter.
var (
	commLimit     = limits{def: 100, max: 1000}
	sequenceLimit = limits{def: 200, max: 1000}
	harLimit      = limits{def: 1000, max: 10000}
)

type limits struct{ def, max int }

// sorts are the orders of /communications.
var sorts = []string{"ts", "-ts", "duration_us", "-duration_us", "status", "-status"}

// parseTime reads an RFC 3339 parameter.
func parseTime(name, v string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		hint := ""
		if strings.Contains(v, " ") {
			hint = "; a + in a URL query reads as a space: send it as %2B"
		}
		return time.Time{}, badRequest("%s=%q is not an RFC 3339 time (like 2024-01-02T15:04:05Z or 2024-01-02T15:04:05.123+01:00)%s", name, v, hint)
	}
	return t.UTC(), nil
}

// lookupHint reads the optional ts parameter of the routes of one exchange:
// the exchange's timestamp (as the list returned it), which makes the
// lookup read the lake partition around it first. A malformed ts is a 400;
// a wrong one only makes the lookup slower.
func lookupHint(r *http.Request) (time.Time, error) {
	v := r.URL.Query().Get("ts")
	if v == "" {
		return time.Time{}, nil
	}
	return parseTime("ts", v)
}

// dataRequest reads the parameters of a data route: from, to, q, and the
// limit (when lim is not nil). The caller's scope is the principal's; a
// public link visitor's filter is the view's, ANDed with q, and the window
// is clipped to the view's.
func (s *Server) dataRequest(r *http.Request, p *auth.Principal, lim *limits) (lakequery.Request, error) {
	qs := r.URL.Query()
	var req lakequery.Request
	now := s.now().UTC()
	var err error
	if v := qs.Get("from"); v != "" {
		if req.From, err = parseTime("from", v); err != nil {
			return req, err
		}
	}
	if v := qs.Get("to"); v != "" {
		if req.To, err = parseTime("to", v); err != nil {
			return req, err
		}
	}
	switch {
	case req.From.IsZero() && req.To.IsZero() && p.Kind == auth.KindLink:
		req.From, req.To = p.View.Window(now)
	case req.From.IsZero() && req.To.IsZero():
		req.To = now
		req.From = now.Add(-DefaultWindow)
	case req.To.IsZero():
		req.To = now
	case req.From.IsZero():
		req.From = req.To.Add(-DefaultWindow)
	}
	if !req.From.Before(req.To) {
		return req, badRequest("from (%s) must be before to (%s)", req.From.Format(time.RFC3339Nano), req.To.Format(time.RFC3339Nano))
	}
	req.Q = qs.Get("q")
	if len(req.Q) > filter.MaxLen {
		return req, badRequest("q is longer than %d bytes", filter.MaxLen)
	}
	if _, err := filter.Parse(req.Q); err != nil {
		return req, err
	}
	if lim != nil {
		req.Limit = lim.def
		if v := qs.Get("limit"); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > lim.max {
				return req, badRequest("limit=%q: want an integer from 1 to %d", v, lim.max)
			}
			req.Limit = n
		}
	}
	req.Scope = p.Scope
	if p.Kind == auth.KindLink {
		from, to := p.View.Window(now)
		if req.From.Before(from) {
			req.From = from
		}
		if req.To.After(to) {
			req.To = to
		}
		if !req.From.Before(req.To) {
			return req, badRequest("the window is outside the shared view's (%s to %s)", from.Format(time.RFC3339), to.Format(time.RFC3339))
		}
		req.Q = andQ(p.View.Q, req.Q)
	}
	return req, nil
}

// andQ combines two filters.
func andQ(a, b string) string {
	switch {
	case strings.TrimSpace(a) == "":
		return b
	case strings.TrimSpace(b) == "":
		return a
	}
	return "(" + a + ") and (" + b + ")"
}

// quote makes a filter string value.
func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func (s *Server) mapRoute(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	req, err := s.dataRequest(r, p, nil)
	if err != nil {
		return err
	}
	res, err := s.eng.Map(r.Context(), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (s *Server) timeline(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	req, err := s.dataRequest(r, p, nil)
	if err != nil {
		return err
	}
	if v := r.URL.Query().Get("step"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Millisecond {
			return badRequest("step=%q: want a duration of at least 1ms, like 500ms, 10s or 1m", v)
		}
		req.Step = d
	}
	res, err := s.eng.Timeline(r.Context(), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (s *Server) communications(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	req, err := s.dataRequest(r, p, &commLimit)
	if err != nil {
		return err
	}
	qs := r.URL.Query()
	req.Cursor = qs.Get("cursor")
	req.Sort = qs.Get("sort")
	if req.Sort != "" && !slices.Contains(sorts, req.Sort) {
		return badRequest("sort=%q: want one of %s", req.Sort, strings.Join(sorts, ", "))
	}
	res, err := s.eng.Communications(r.Context(), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// checkLinkID makes sure a public link visitor asks for an exchange of the
// view: one that its filter and window select. With a hint (not zero),
// the part of the window within lakequery.HintSlack of it is searched
// first, then, if the id is not there, the whole window.
func (s *Server) checkLinkID(r *http.Request, p *auth.Principal, req lakequery.Request, id string, hint time.Time) error {
	if p.Kind != auth.KindLink {
		return nil
	}
	req.Q = andQ(req.Q, "id = "+quote(id))
	req.Limit = 1
	reqs := []lakequery.Request{req}
	if !hint.IsZero() {
		near := req
		near.From = later(req.From, hint.Add(-lakequery.HintSlack))
		near.To = earlier(req.To, hint.Add(lakequery.HintSlack+time.Microsecond))
		if near.From.Before(near.To) {
			reqs = []lakequery.Request{near, req}
		}
	}
	for _, q := range reqs {
		page, err := s.eng.Communications(r.Context(), q)
		if err != nil {
			return err
		}
		if len(page.Items) > 0 {
			return nil
		}
	}
	return fmt.Errorf("%w: no exchange %q in the shared view", lakequery.ErrNotFound, id)
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

func earlier(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func (s *Server) communication(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	id := r.PathValue("id")
	hint, err := lookupHint(r)
	if err != nil {
		return err
	}
	if p.Kind == auth.KindLink {
		req, err := s.dataRequest(r, p, nil)
		if err != nil {
			return err
		}
		if err := s.checkLinkID(r, p, req, id, hint); err != nil {
			return err
		}
	}
	res, err := s.eng.Communication(r.Context(), id, p.Scope, hint)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (s *Server) pcap(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	id := r.PathValue("id")
	hint, err := lookupHint(r)
	if err != nil {
		return err
	}
	// Buffered, so that an error is still a JSON answer.
	var buf bytes.Buffer
	if err := s.eng.PCAP(r.Context(), id, p.Scope, hint, &buf); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/vnd.tcpdump.pcap")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="flowlake-%s.pcap"`, safeName(id)))
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	_, err = buf.WriteTo(w)
	return err
}

// safeName keeps the characters of an id that are safe in a file name.
func safeName(id string) string {
	return strings.Map(func(c rune) rune {
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			return c
		}
		return -1
	}, id)
}

func (s *Server) har(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	req, err := s.dataRequest(r, p, &harLimit)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := s.eng.HAR(r.Context(), req, &buf); err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Disposition", `attachment; filename="flowlake.har"`)
	w.Header().Set("Content-Length", strconv.Itoa(buf.Len()))
	w.WriteHeader(http.StatusOK)
	_, err = buf.WriteTo(w)
	return err
}

func (s *Server) sequence(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	req, err := s.dataRequest(r, p, &sequenceLimit)
	if err != nil {
		return err
	}
	res, err := s.eng.Sequence(r.Context(), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (s *Server) status(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	req, err := s.dataRequest(r, p, nil)
	if err != nil {
		return err
	}
	res, err := s.eng.Status(r.Context(), req)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

func (s *Server) fields(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	writeJSON(w, http.StatusOK, s.eng.Fields())
	return nil
}

func (s *Server) health(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	return nil
}

// --- auth

func (s *Server) authConfig(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	writeJSON(w, http.StatusOK, map[string]bool{"oidc": s.auth.OIDCEnabled()})
	return nil
}

func (s *Server) login(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	var in struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.Username == "" || in.Password == "" {
		return badRequest("username and password are required")
	}
	// The client address of the throttle: the connection's peer, or the
	// Lambda event's sourceIp (see lambdaRequest); never X-Forwarded-For.
	sess, err := s.auth.Login(r.Context(), in.Username, in.Password, r.RemoteAddr)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sess)
	return nil
}

func (s *Server) token(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	var in struct {
		APIKey string `json:"api_key"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.APIKey == "" {
		return badRequest("api_key is required")
	}
	sess, err := s.auth.ExchangeAPIKey(r.Context(), in.APIKey)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, sess)
	return nil
}

func (s *Server) me(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	writeJSON(w, http.StatusOK, p.Info())
	return nil
}

// publicAnswer is what opening a public link returns.
type publicAnswer struct {
	View      auth.SavedView `json:"view"`
	Token     string         `json:"token"`
	ExpiresAt time.Time      `json:"expires_at"`
}

func (s *Server) openLink(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	var password string
	if r.Method == http.MethodPost {
		var in struct {
			Password string `json:"password"`
		}
		if err := decode(r, &in); err != nil {
			return err
		}
		if in.Password == "" {
			return badRequest("password is required")
		}
		password = in.Password
	}
	view, sess, err := s.auth.OpenLink(r.Context(), r.PathValue("token"), password)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, publicAnswer{View: view, Token: sess.Token, ExpiresAt: sess.ExpiresAt})
	return nil
}

// origin is the scheme and host the client used to reach the server.
func origin(r *http.Request) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	if p := r.Header.Get("X-Forwarded-Proto"); p == "https" || p == "http" {
		scheme = p
	}
	host := r.Host
	if h := r.Header.Get("X-Forwarded-Host"); h != "" {
		host = h
	}
	return scheme + "://" + host
}

// oidcCookie holds the OIDC login state between login and callback.
const oidcCookie = "flowlake_oidc"

func (s *Server) oidcLogin(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	authURL, state, err := s.auth.OIDCStart(r.Context(), origin(r)+"/api/v1/auth/oidc/callback")
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Value: state, Path: "/api/v1/auth/oidc", MaxAge: 600,
		HttpOnly: true, Secure: strings.HasPrefix(origin(r), "https:"), SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, authURL, http.StatusFound)
	return nil
}

func (s *Server) oidcCallback(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	qs := r.URL.Query()
	if e := qs.Get("error"); e != "" {
		return fmt.Errorf("%w: the OIDC provider refused the login: %s %s", auth.ErrUnauthorized, e, qs.Get("error_description"))
	}
	c, err := r.Cookie(oidcCookie)
	if err != nil {
		return fmt.Errorf("%w: no OIDC login in progress in this browser (start at /api/v1/auth/oidc/login)", auth.ErrUnauthorized)
	}
	sess, err := s.auth.OIDCFinish(r.Context(), origin(r)+"/api/v1/auth/oidc/callback", qs.Get("code"), qs.Get("state"), c.Value)
	if err != nil {
		return err
	}
	http.SetCookie(w, &http.Cookie{Name: oidcCookie, Path: "/api/v1/auth/oidc", MaxAge: -1, HttpOnly: true})
	// The UI takes the session from the fragment, which never reaches a server.
	frag := url.Values{"token": {sess.Token}, "expires_at": {sess.ExpiresAt.Format(time.RFC3339)}}
	http.Redirect(w, r, "/#/oidc?"+frag.Encode(), http.StatusFound)
	return nil
}

// --- views, positions, links

func (s *Server) listViews(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	vs, err := s.auth.Views(r.Context(), p)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, listOf(vs))
	return nil
}

func (s *Server) createView(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var in auth.ViewInput
	if err := decode(r, &in); err != nil {
		return err
	}
	v, err := s.auth.CreateView(r.Context(), p, in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, v)
	return nil
}

func (s *Server) getView(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	v, err := s.auth.GetView(r.Context(), p, r.PathValue("id"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) updateView(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var in auth.ViewInput
	if err := decode(r, &in); err != nil {
		return err
	}
	v, err := s.auth.UpdateView(r.Context(), p, r.PathValue("id"), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, v)
	return nil
}

func (s *Server) deleteView(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if err := s.auth.DeleteView(r.Context(), p, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// positionsBody is the body and answer of /positions.
type positionsBody struct {
	Positions auth.Positions `json:"positions"`
}

func (s *Server) getPositions(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	qs := r.URL.Query()
	pos, err := s.auth.GetPositions(r.Context(), p, qs.Get("scope"), qs.Get("team"))
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, positionsBody{pos})
	return nil
}

func (s *Server) putPositions(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var in positionsBody
	if err := decode(r, &in); err != nil {
		return err
	}
	qs := r.URL.Query()
	pos, err := s.auth.SetPositions(r.Context(), p, qs.Get("scope"), qs.Get("team"), in.Positions)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, positionsBody{pos})
	return nil
}

// linkAnswer is the answer of POST /links.
type linkAnswer struct {
	ID        string    `json:"id"`
	URL       string    `json:"url"`
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	ViewID    string    `json:"view_id"`
}

func (s *Server) createLink(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	var in struct {
		ViewID    string `json:"view_id"`
		ExpiresIn string `json:"expires_in"`
		Password  string `json:"password"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	if in.ViewID == "" {
		return badRequest("view_id is required")
	}
	life := 24 * time.Hour
	if in.ExpiresIn != "" {
		d, err := auth.ParseRelative(in.ExpiresIn)
		if err != nil {
			return badRequest("expires_in=%q: want a duration such as 1h, 24h or 7d", in.ExpiresIn)
		}
		life = d
	}
	l, tok, err := s.auth.CreateLink(r.Context(), p, in.ViewID, life, in.Password)
	if err != nil {
		return err
	}
	base := s.publicURL
	if base == "" {
		base = origin(r)
	}
	writeJSON(w, http.StatusCreated, linkAnswer{ID: l.ID, URL: base + "/#/public/" + tok, Token: tok, ExpiresAt: l.ExpiresAt, ViewID: l.ViewID})
	return nil
}

func (s *Server) listLinks(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	ls, err := s.auth.Links(r.Context(), p)
	if err != nil {
		return err
	}
	out := make([]auth.LinkRecord, len(ls))
	for i, l := range ls {
		out[i] = l.Record()
	}
	writeJSON(w, http.StatusOK, listOf(out))
	return nil
}

func (s *Server) deleteLink(w http.ResponseWriter, r *http.Request, p *auth.Principal) error {
	if err := s.auth.DeleteLink(r.Context(), p, r.PathValue("id")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// --- admin

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	us, err := s.auth.Users(r.Context())
	if err != nil {
		return err
	}
	out := make([]auth.UserRecord, len(us))
	for i, u := range us {
		out[i] = u.Record()
	}
	writeJSON(w, http.StatusOK, listOf(out))
	return nil
}

func (s *Server) createUser(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	var in auth.NewUser
	if err := decode(r, &in); err != nil {
		return err
	}
	u, err := s.auth.CreateUser(r.Context(), in)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, u.Record())
	return nil
}

func (s *Server) updateUser(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	var in struct {
		auth.UserPatch
		Username *string `json:"username"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	name := r.PathValue("username")
	if in.Username != nil && *in.Username != name {
		return badRequest("username %q differs from the path's %q: users cannot be renamed", *in.Username, name)
	}
	if in.Password != nil && *in.Password == "" {
		in.Password = nil // an empty password field means: unchanged
	}
	u, err := s.auth.UpdateUser(r.Context(), name, in.UserPatch)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, u.Record())
	return nil
}

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	if err := s.auth.DeleteUser(r.Context(), r.PathValue("username")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// teamBody is the body of the team routes.
type teamBody struct {
	Name   string   `json:"name"`
	Agents []string `json:"agents"`
}

func (s *Server) listTeams(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	ts, err := s.auth.Teams(r.Context())
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, listOf(ts))
	return nil
}

func (s *Server) createTeam(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	var in teamBody
	if err := decode(r, &in); err != nil {
		return err
	}
	t, err := s.auth.CreateTeam(r.Context(), in.Name, in.Agents)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, t)
	return nil
}

func (s *Server) updateTeam(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	var in struct {
		Name   *string   `json:"name"`
		Agents *[]string `json:"agents"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	name := r.PathValue("name")
	if in.Name != nil && *in.Name != name {
		return badRequest("name %q differs from the path's %q: teams cannot be renamed", *in.Name, name)
	}
	if in.Agents == nil {
		return badRequest("agents is required: the team's agents, replacing the current ones")
	}
	t, err := s.auth.SetTeamAgents(r.Context(), name, *in.Agents)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, t)
	return nil
}

func (s *Server) deleteTeam(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	if err := s.auth.DeleteTeam(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// agentsWindow is how far back GET /admin/agents looks for agents first.
const agentsWindow = 30 * 24 * time.Hour

// agentInfo is one agent of GET /admin/agents.
type agentInfo struct {
	Agent    string          `json:"agent"`
	Team     string          `json:"team"`  // the first of Teams, or ""
	Teams    []string        `json:"teams"` // the teams that own it
	LastSeen *lakequery.Time `json:"last_seen"`
}

func (s *Server) listAgents(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	now := s.now().UTC()
	st, err := s.eng.Status(r.Context(), lakequery.Request{From: now.Add(-agentsWindow), To: now})
	if err == nil && len(st.Agents) == 0 {
		// Nothing recent (an old capture imported, agents long stopped):
		// look at all time once; the status tables are small.
		st, err = s.eng.Status(r.Context(), lakequery.Request{From: time.Unix(0, 0).UTC(), To: now})
	}
	if err != nil {
		return err
	}
	teams, err := s.auth.Teams(r.Context())
	if err != nil {
		return err
	}
	byAgent := map[string]*agentInfo{}
	get := func(a string) *agentInfo {
		if byAgent[a] == nil {
			byAgent[a] = &agentInfo{Agent: a, Teams: []string{}}
		}
		return byAgent[a]
	}
	for _, a := range st.Agents {
		t := a.LastSeen
		get(a.Agent).LastSeen = &t
	}
	for _, t := range teams {
		for _, a := range t.Agents {
			ai := get(a)
			ai.Teams = append(ai.Teams, t.Name)
		}
	}
	out := make([]agentInfo, 0, len(byAgent))
	for _, ai := range byAgent {
		slices.Sort(ai.Teams)
		if len(ai.Teams) > 0 {
			ai.Team = ai.Teams[0]
		}
		out = append(out, *ai)
	}
	slices.SortFunc(out, func(a, b agentInfo) int { return strings.Compare(a.Agent, b.Agent) })
	writeJSON(w, http.StatusOK, listOf(out))
	return nil
}

// serviceAccountAnswer is a service account, with its API key once.
type serviceAccountAnswer struct {
	auth.ServiceAccount
	APIKey string `json:"api_key,omitempty"`
}

func (s *Server) listServiceAccounts(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	as, err := s.auth.ServiceAccounts(r.Context())
	if err != nil {
		return err
	}
	out := make([]serviceAccountAnswer, len(as))
	for i, a := range as {
		out[i] = serviceAccountAnswer{ServiceAccount: a.Record()}
	}
	writeJSON(w, http.StatusOK, listOf(out))
	return nil
}

func (s *Server) createServiceAccount(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	var in struct {
		Name  string    `json:"name"`
		Role  auth.Role `json:"role"`
		Teams []string  `json:"teams"`
	}
	if err := decode(r, &in); err != nil {
		return err
	}
	a, key, err := s.auth.CreateServiceAccount(r.Context(), in.Name, in.Role, in.Teams)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, serviceAccountAnswer{ServiceAccount: a, APIKey: key})
	return nil
}

func (s *Server) deleteServiceAccount(w http.ResponseWriter, r *http.Request, _ *auth.Principal) error {
	if err := s.auth.DeleteServiceAccount(r.Context(), r.PathValue("name")); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
