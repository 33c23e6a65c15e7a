package auth

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/coreos/go-oidc/v3/oidc/oidctest"

	"github.com/flowlake/flowlake/internal/store"
)

// The OIDC login cannot be tested against a real provider here. These
// tests run go-oidc's own test server (discovery and keys only, no token
// endpoint): the start of a login, the checks of the callback up to the
// code exchange, and the mapping of verified ID tokens to users.
func TestOIDC(t *testing.T) {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	idp := &oidctest.Server{PublicKeys: []oidctest.PublicKey{{PublicKey: priv.Public(), KeyID: "k1", Algorithm: oidc.ES256}},
		Algorithms: []string{oidc.ES256}}
	hs := httptest.NewServer(idp)
	defer hs.Close()
	idp.SetIssuer(hs.URL)

	c := newClock()
	c.ns.Store(time.Now().UnixNano())
	st := store.NewMem()
	s, err := New(t.Context(), Config{Store: st, Now: c.now, OIDC: &OIDCConfig{Issuer: hs.URL, ClientID: "flowlake", ClientSecret: "s3cret"}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	authURL, cookie, err := s.OIDCStart(ctx, "https://flowlake.example.com/api/v1/auth/oidc/callback")
	if err != nil {
		t.Fatal(err)
	}
	u, err := url.Parse(authURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	if u.Path != "/auth" || q.Get("client_id") != "flowlake" || q.Get("response_type") != "code" ||
		q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" ||
		!strings.Contains(q.Get("scope"), "openid") || q.Get("redirect_uri") != "https://flowlake.example.com/api/v1/auth/oidc/callback" {
		t.Errorf("authorization URL %s", authURL)
	}
	state := q.Get("state")
	sc, err := s.verify(cookie, audOIDCState)
	if err != nil || sc.State != state || sc.Nonce != q.Get("nonce") {
		t.Fatalf("state cookie %+v, %v", sc, err)
	}
	// The state cookie is no access token.
	if _, err := s.Authenticate(ctx, cookie); !errors.Is(err, ErrUnauthorized) {
		t.Errorf("state cookie as access token: %v", err)
	}
	for _, tc := range []struct{ name, code, state, cookie, want string }{
		{"wrong state", "c", "other", cookie, "does not match"},
		{"no cookie", "c", state, "", "no token"},
		{"no code", "", state, cookie, "without a code"},
		{"code refused", "c", state, cookie, "code exchange failed"}, // the test server has no token endpoint
	} {
		_, err := s.OIDCFinish(ctx, "https://x/cb", tc.code, tc.state, tc.cookie)
		if !errors.Is(err, ErrUnauthorized) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", tc.name, err, tc.want)
		}
	}

	// ID tokens, as the provider would return them from the exchange.
	p, err := oidc.NewProvider(ctx, hs.URL)
	if err != nil {
		t.Fatal(err)
	}
	v := p.Verifier(&oidc.Config{ClientID: "flowlake", Now: c.now})
	idToken := func(claims map[string]any) string {
		base := map[string]any{"iss": hs.URL, "aud": "flowlake", "exp": c.now().Add(time.Hour).Unix(), "iat": c.now().Unix(), "nonce": "n1"}
		for k, v := range claims {
			base[k] = v
		}
		b, _ := json.Marshal(base)
		return oidctest.SignIDToken(priv, "k1", oidc.ES256, string(b))
	}
	sess, err := s.oidcSession(ctx, v, idToken(map[string]any{"sub": "s-1", "email": "Dana@Example.com", "email_verified": true}), "n1")
	if err != nil {
		t.Fatal(err)
	}
	if sess.User.Username != "dana@example.com" || sess.User.Role != RoleViewer || len(sess.User.Teams) != 0 {
		t.Errorf("first OIDC login: %+v", sess.User)
	}
	pr, err := s.Authenticate(ctx, sess.Token)
	if err != nil || pr.Scope == nil || len(pr.Scope) != 0 {
		t.Errorf("new OIDC user: %+v, %v; want a viewer who sees nothing", pr, err)
	}
	if _, err := s.oidcSession(ctx, v, idToken(map[string]any{"sub": "s-1", "email": "dana@example.com", "email_verified": true}), "n1"); err != nil {
		t.Errorf("second login: %v", err)
	}
	// Another identity with the same email is refused.
	_, err = s.oidcSession(ctx, v, idToken(map[string]any{"sub": "s-2", "email": "dana@example.com", "email_verified": true}), "n1")
	if !errors.Is(err, ErrForbidden) {
		t.Errorf("another identity with dana's email: %v", err)
	}
	// An unverified email does not name the user.
	sess, err = s.oidcSession(ctx, v, idToken(map[string]any{"sub": "s-3", "email": "admin@example.com", "email_verified": false, "preferred_username": "eve"}), "n1")
	if err != nil || sess.User.Username != "eve" {
		t.Errorf("unverified email: %+v, %v", sess, err)
	}
	// A user an admin made is bound on first OIDC login, and keeps role and teams.
	if _, err := s.CreateTeam(ctx, "red", []string{"a"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateUser(ctx, NewUser{Username: "frank", Password: "frank-password", Role: RoleAnalyst, Teams: []string{"red"}}); err != nil {
		t.Fatal(err)
	}
	sess, err = s.oidcSession(ctx, v, idToken(map[string]any{"sub": "s-4", "preferred_username": "frank"}), "n1")
	if err != nil || sess.User.Role != RoleAnalyst || len(sess.User.Teams) != 1 {
		t.Errorf("admin-made user: %+v, %v", sess, err)
	}
	for name, raw := range map[string]string{
		"wrong nonce":    idToken(map[string]any{"sub": "s-1", "nonce": "other"}),
		"wrong audience": idToken(map[string]any{"sub": "s-1", "aud": "someone-else"}),
		"expired":        idToken(map[string]any{"sub": "s-1", "exp": c.now().Add(-time.Hour).Unix()}),
		"other issuer":   idToken(map[string]any{"sub": "s-1", "iss": "https://evil.example.com"}),
	} {
		if _, err := s.oidcSession(ctx, v, raw, "n1"); !errors.Is(err, ErrUnauthorized) {
			t.Errorf("%s: %v", name, err)
		}
	}
	_, err = s.oidcSession(ctx, v, idToken(map[string]any{"sub": "x/../y"}), "n1")
	if !errors.Is(err, ErrForbidden) {
		t.Errorf("subject that is no user name: %v", err)
	}
}
