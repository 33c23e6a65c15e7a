package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/flowlake/flowlake/internal/filter"
	"github.com/flowlake/flowlake/internal/store"
)

// clock is a settable clock for the tests.
type clock struct{ ns atomic.Int64 }

func newClock() *clock {
	c := &clock{}
	c.ns.Store(time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC).UnixNano())
	return c
}
func (c *clock) now() time.Time      { return time.Unix(0, c.ns.Load()).UTC() }
func (c *clock) add(d time.Duration) { c.ns.Add(int64(d)) }

func newService(t *testing.T, st store.Store, c *clock) *Service {
	t.Helper()
	s, err := New(t.Context(), Config{Store: st, Now: c.now})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// fixture is a service with an admin, two teams (red owns agent a, blue
// owns agent b), an analyst in red and a viewer in blue.
type fixture struct {
	s     *Service
	st    store.Store
	clock *clock
}

func setup(t *testing.T) *fixture {
	t.Helper()
	f := &fixture{st: store.NewMem(), clock: newClock()}
	f.s = newService(t, f.st, f.clock)
	ctx := t.Context()
	if _, _, err := f.s.Bootstrap(ctx, "admin-password"); err != nil {
		t.Fatal(err)
	}
	for team, agents := range map[string][]string{"red": {"a"}, "blue": {"b", "b2"}} {
		if _, err := f.s.CreateTeam(ctx, team, agents); err != nil {
			t.Fatal(err)
		}
	}
	for _, u := range []NewUser{
		{Username: "alice", Password: "alice-password", Role: RoleAnalyst, Teams: []string{"red"}},
		{Username: "bob", Password: "bob-password", Role: RoleViewer, Teams: []string{"blue"}},
	} {
		if _, err := f.s.CreateUser(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

func (f *fixture) login(t *testing.T, user, pw string) (*Session, *Principal) {
	t.Helper()
	sess, err := f.s.Login(t.Context(), user, pw, "")
	if err != nil {
		t.Fatalf("Login(%s): %v", user, err)
	}
	p, err := f.s.Authenticate(t.Context(), sess.Token)
	if err != nil {
		t.Fatalf("Authenticate(%s): %v", user, err)
	}
	return sess, p
}

func wantErr(t *testing.T, what string, err, target error) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Errorf("%s: error %v, want one matching %v", what, err, target)
	}
}

func TestLoginAndScope(t *testing.T) {
	f := setup(t)
	ctx := t.Context()

	sess, admin := f.login(t, "admin", "admin-password")
	if admin.Kind != KindUser || admin.Role != RoleAdmin || admin.Scope != nil {
		t.Errorf("admin principal = %+v, want role admin and scope nil (all)", admin)
	}
	if got := sess.ExpiresAt.Sub(f.clock.now()); got != DefaultTokenTTL {
		t.Errorf("token lifetime %v, want %v", got, DefaultTokenTTL)
	}
	_, alice := f.login(t, "alice", "alice-password")
	if !slices.Equal(alice.Scope, []string{"a"}) || alice.Role != RoleAnalyst {
		t.Errorf("alice = %+v, want analyst with scope [a]", alice)
	}
	_, bob := f.login(t, "bob", "bob-password")
	if !slices.Equal(bob.Scope, []string{"b", "b2"}) || bob.Can(RoleAnalyst) || !bob.Can(RoleViewer) {
		t.Errorf("bob = %+v, want viewer with scope [b b2]", bob)
	}

	// A user in no team sees nothing (an empty, non-nil scope).
	if _, err := f.s.CreateUser(ctx, NewUser{Username: "carol", Password: "carol-password"}); err != nil {
		t.Fatal(err)
	}
	_, carol := f.login(t, "carol", "carol-password")
	if carol.Scope == nil || len(carol.Scope) != 0 || carol.Role != RoleViewer {
		t.Errorf("carol = %+v, want a viewer with an empty scope", carol)
	}

	// Team changes apply to the next request.
	if _, err := f.s.SetTeamAgents(ctx, "red", []string{"a", "c"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.s.UpdateUser(ctx, "carol", UserPatch{Teams: &[]string{"red", "blue"}}); err != nil {
		t.Fatal(err)
	}
	_, carol = f.login(t, "carol", "carol-password")
	if !slices.Equal(carol.Scope, []string{"a", "b", "b2", "c"}) {
		t.Errorf("carol's scope %v, want [a b b2 c]", carol.Scope)
	}
	// Deleting a team drops it from its members.
	if err := f.s.DeleteTeam(ctx, "blue"); err != nil {
		t.Fatal(err)
	}
	_, carol = f.login(t, "carol", "carol-password")
	if !slices.Equal(carol.Scope, []string{"a", "c"}) || !slices.Equal(carol.Teams, []string{"red"}) {
		t.Errorf("after deleting blue: carol = %+v", carol)
	}

	for _, tc := range []struct{ user, pw string }{
		{"alice", "wrong-password"}, {"nobody", "alice-password"}, {"alice", ""}, {"", "x"}, {"../admin", "admin-password"},
	} {
		_, err := f.s.Login(ctx, tc.user, tc.pw, "")
		wantErr(t, fmt.Sprintf("Login(%q, %q)", tc.user, tc.pw), err, ErrUnauthorized)
	}
}

func TestTokens(t *testing.T) {
	f := setup(t)
	ctx := t.Context()
	sess, _ := f.login(t, "alice", "alice-password")
	good := sess.Token

	other := newService(t, store.NewMem(), f.clock) // another key
	otherSess, err := other.session(KindUser, "alice", RoleAdmin, nil)
	if err != nil {
		t.Fatal(err)
	}

	parts := strings.Split(good, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var body map[string]any
	if err := json.Unmarshal(payload, &body); err != nil {
		t.Fatal(err)
	}
	body["role"] = "admin"
	body["sub"] = "admin"
	forged, _ := json.Marshal(body)
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString(forged) + "." + parts[2]

	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + parts[1] + "."
	// HS256 keyed with the public key: the classic algorithm confusion.
	hs, err := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims(body)).SignedString([]byte(f.s.pub))
	if err != nil {
		t.Fatal(err)
	}
	// A valid EdDSA signature over claims for another audience.
	_, linkTok := func() (Link, string) {
		_, a := f.login(t, "alice", "alice-password")
		v, err := f.s.CreateView(ctx, a, ViewInput{Name: "v"})
		if err != nil {
			t.Fatal(err)
		}
		l, tok, err := f.s.CreateLink(ctx, a, v.ID, time.Hour, "")
		if err != nil {
			t.Fatal(err)
		}
		return l, tok
	}()

	for _, tc := range []struct {
		name, token, why string
	}{
		{"missing", "", "no token"},
		{"garbage", "not-a-jwt", "malformed"},
		{"tampered", tampered, "signature is invalid"},
		{"wrong key", otherSess.Token, "signature is invalid"},
		{"alg none", none, "not signed with EdDSA"},
		{"alg HS256", hs, "not signed with EdDSA"},
		{"link URL token", linkTok, "not valid for this use"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.s.Authenticate(ctx, tc.token)
			wantErr(t, tc.name, err, ErrUnauthorized)
			if err != nil && !strings.Contains(err.Error(), tc.why) {
				t.Errorf("error %q does not say %q", err, tc.why)
			}
		})
	}

	// Expired: valid until TTL (+ leeway), refused after.
	f.clock.add(DefaultTokenTTL - time.Second)
	if _, err := f.s.Authenticate(ctx, good); err != nil {
		t.Errorf("token refused before expiry: %v", err)
	}
	f.clock.add(leeway + 2*time.Second)
	_, err = f.s.Authenticate(ctx, good)
	wantErr(t, "expired token", err, ErrUnauthorized)
	if err != nil && !strings.Contains(err.Error(), "expired") {
		t.Errorf("error %q does not say expired", err)
	}
	f.clock.add(-DefaultTokenTTL)

	// A password change refuses older tokens; deletion refuses all.
	f.clock.add(2 * time.Second)
	if _, err := f.s.UpdateUser(ctx, "alice", UserPatch{Password: ptr("new-alice-password")}); err != nil {
		t.Fatal(err)
	}
	_, err = f.s.Authenticate(ctx, good)
	wantErr(t, "token from before a password change", err, ErrUnauthorized)
	f.clock.add(time.Second)
	sess2, _ := f.login(t, "alice", "new-alice-password")
	if err := f.s.DeleteUser(ctx, "alice"); err != nil {
		t.Fatal(err)
	}
	_, err = f.s.Authenticate(ctx, sess2.Token)
	wantErr(t, "token of a deleted user", err, ErrUnauthorized)
}

func ptr[T any](v T) *T { return &v }

func TestSigningKeyShared(t *testing.T) {
	st := store.NewMem()
	c := newClock()
	// Processes starting at once agree on one key.
	var wg sync.WaitGroup
	svcs := make([]*Service, 6)
	errs := make([]error, len(svcs))
	for i := range svcs {
		wg.Go(func() { svcs[i], errs[i] = New(t.Context(), Config{Store: st, Now: c.now}) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("New %d: %v", i, err)
		}
		if !svcs[i].pub.Equal(svcs[0].pub) {
			t.Fatalf("service %d has another key", i)
		}
	}
	// A token of one is good for the others.
	if _, _, err := svcs[0].Bootstrap(t.Context(), "admin-password"); err != nil {
		t.Fatal(err)
	}
	sess, err := svcs[1].Login(t.Context(), "admin", "admin-password", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svcs[2].Authenticate(t.Context(), sess.Token); err != nil {
		t.Errorf("token of one process refused by another: %v", err)
	}
}

func TestParseSigningKey(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	pemKey := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	for name, in := range map[string]string{
		"pem":          pemKey,
		"seed std":     base64.StdEncoding.EncodeToString(priv.Seed()),
		"seed raw url": base64.RawURLEncoding.EncodeToString(priv.Seed()),
		"private key":  base64.StdEncoding.EncodeToString(priv),
	} {
		got, err := ParseSigningKey(in)
		if err != nil || !got.Equal(priv) {
			t.Errorf("%s: got %v, %v", name, got, err)
		}
	}
	bad := slices.Clone(priv)
	bad[40] ^= 1
	for name, in := range map[string]string{
		"empty":        "",
		"short":        base64.StdEncoding.EncodeToString([]byte("short")),
		"inconsistent": base64.StdEncoding.EncodeToString(bad),
		"bad pem":      "-----BEGIN PRIVATE KEY-----\nxx\n-----END PRIVATE KEY-----\n",
		"not base64":   "%%%",
	} {
		if _, err := ParseSigningKey(in); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	// A given key is used as is.
	s, err := New(t.Context(), Config{Store: store.NewMem(), SigningKey: priv})
	if err != nil || !s.pub.Equal(priv.Public()) {
		t.Errorf("New with a key: %v", err)
	}
}

func TestBootstrap(t *testing.T) {
	st := store.NewMem()
	c := newClock()
	s := newService(t, st, c)
	ctx := t.Context()
	pw, created, err := s.Bootstrap(ctx, "")
	if err != nil || !created || len(pw) < 16 {
		t.Fatalf("Bootstrap = %q, %v, %v; want a generated password", pw, created, err)
	}
	if _, err := s.Login(ctx, "admin", pw, ""); err != nil {
		t.Errorf("generated password refused: %v", err)
	}
	// Never again: not on a second start, whatever the environment says.
	pw2, created, err := newService(t, st, c).Bootstrap(ctx, "another-password")
	if err != nil || created || pw2 != "" {
		t.Errorf("second Bootstrap = %q, %v, %v; want nothing", pw2, created, err)
	}
	if _, err := s.Login(ctx, "admin", "another-password", ""); err == nil {
		t.Error("second Bootstrap changed the password")
	}
	// Concurrent first starts: one creates.
	st2 := store.NewMem()
	var n atomic.Int32
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			_, created, err := newService(t, st2, c).Bootstrap(ctx, "")
			if err != nil {
				t.Error(err)
			}
			if created {
				n.Add(1)
			}
		})
	}
	wg.Wait()
	if n.Load() != 1 {
		t.Errorf("%d concurrent Bootstraps created the admin, want 1", n.Load())
	}
	if _, _, err := newService(t, store.NewMem(), c).Bootstrap(ctx, "short"); !errors.Is(err, ErrInvalid) {
		t.Errorf("Bootstrap with a short password: %v", err)
	}
}

func TestPasswordHash(t *testing.T) {
	ctx := t.Context()
	h, err := hashSecret(ctx, "correct horse")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Errorf("hash %q is not an argon2id PHC string with the default parameters", h)
	}
	for pw, want := range map[string]bool{"correct horse": true, "correct horsE": false, "": false} {
		if ok, err := checkSecret(ctx, h, pw); ok != want || err != nil {
			t.Errorf("checkSecret(%q) = %v, %v; want %v", pw, ok, err, want)
		}
	}
	if ok, err := checkSecret(ctx, dummyHash, "x"); ok || err != nil {
		t.Errorf("dummy hash: %v, %v", ok, err)
	}
	for _, bad := range []string{"", "plain", "$2a$10$abc", "$argon2id$v=19$m=1,t=1,p=1$c2FsdA$aGFzaA", "$argon2id$v=18$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"} {
		if _, err := checkSecret(ctx, bad, "x"); err == nil {
			t.Errorf("checkSecret accepted the hash %q", bad)
		}
	}
}

func TestUsersAdmin(t *testing.T) {
	f := setup(t)
	ctx := t.Context()
	for _, tc := range []struct {
		in   NewUser
		want error
	}{
		{NewUser{Username: "alice", Password: "long-enough"}, ErrConflict},
		{NewUser{Username: "x/y", Password: "long-enough"}, ErrInvalid},
		{NewUser{Username: ".hidden", Password: "long-enough"}, ErrInvalid},
		{NewUser{Username: "dave", Password: "short"}, ErrInvalid},
		{NewUser{Username: "dave", Password: "long-enough", Role: "root"}, ErrInvalid},
		{NewUser{Username: "dave", Password: "long-enough", Teams: []string{"green"}}, ErrInvalid},
	} {
		_, err := f.s.CreateUser(ctx, tc.in)
		wantErr(t, fmt.Sprintf("CreateUser(%+v)", tc.in.Username), err, tc.want)
	}
	users, err := f.s.Users(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, u := range users {
		names = append(names, u.Username)
		if b, _ := json.Marshal(u.Record()); strings.Contains(string(b), "argon2") {
			t.Errorf("user record shows the hash: %s", b)
		}
	}
	if !slices.Equal(names, []string{"admin", "alice", "bob"}) {
		t.Errorf("Users = %v", names)
	}
	// The last admin stays.
	wantErr(t, "DeleteUser(last admin)", f.s.DeleteUser(ctx, "admin"), ErrInvalid)
	_, err = f.s.UpdateUser(ctx, "admin", UserPatch{Role: ptr(RoleViewer)})
	wantErr(t, "demote the last admin", err, ErrInvalid)
	if _, err := f.s.UpdateUser(ctx, "alice", UserPatch{Role: ptr(RoleAdmin)}); err != nil {
		t.Fatal(err)
	}
	if err := f.s.DeleteUser(ctx, "admin"); err != nil {
		t.Errorf("delete an admin that is not the last: %v", err)
	}
	wantErr(t, "DeleteUser(missing)", f.s.DeleteUser(ctx, "admin"), ErrNotFound)
	_, err = f.s.UpdateUser(ctx, "nobody", UserPatch{Role: ptr(RoleViewer)})
	wantErr(t, "UpdateUser(missing)", err, ErrNotFound)
	_, err = f.s.CreateTeam(ctx, "red", nil)
	wantErr(t, "CreateTeam(existing)", err, ErrConflict)
	_, err = f.s.CreateTeam(ctx, "green", []string{"bad agent"})
	wantErr(t, "CreateTeam(bad agent)", err, ErrInvalid)
}

func TestServiceAccounts(t *testing.T) {
	f := setup(t)
	ctx := t.Context()
	a, key, err := f.s.CreateServiceAccount(ctx, "ci-bot", RoleViewer, []string{"blue"})
	if err != nil {
		t.Fatal(err)
	}
	if a.KeyHash != "" || !strings.HasPrefix(key, "flk_ci-bot.") {
		t.Errorf("account %+v, key prefix %q", a, key[:min(len(key), 11)])
	}
	sess, err := f.s.ExchangeAPIKey(ctx, key)
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.s.Authenticate(ctx, sess.Token)
	if err != nil || p.Kind != KindService || p.Name != "ci-bot" || !slices.Equal(p.Scope, []string{"b", "b2"}) {
		t.Errorf("service principal %+v, %v", p, err)
	}
	for _, bad := range []string{"", key + "x", "flk_ci-bot.", "flk_other." + strings.Split(key, ".")[1], "ci-bot"} {
		_, err := f.s.ExchangeAPIKey(ctx, bad)
		wantErr(t, "ExchangeAPIKey(bad)", err, ErrUnauthorized)
	}
	_, _, err = f.s.CreateServiceAccount(ctx, "ci-bot", RoleViewer, nil)
	wantErr(t, "CreateServiceAccount(existing)", err, ErrConflict)
	if err := f.s.DeleteServiceAccount(ctx, "ci-bot"); err != nil {
		t.Fatal(err)
	}
	_, err = f.s.Authenticate(ctx, sess.Token)
	wantErr(t, "token of a deleted account", err, ErrUnauthorized)
	_, err = f.s.ExchangeAPIKey(ctx, key)
	wantErr(t, "key of a deleted account", err, ErrUnauthorized)
}

func TestViews(t *testing.T) {
	f := setup(t)
	ctx := t.Context()
	_, alice := f.login(t, "alice", "alice-password")
	_, bob := f.login(t, "bob", "bob-password")
	_, admin := f.login(t, "admin", "admin-password")

	_, err := f.s.CreateView(ctx, alice, ViewInput{Name: "bad", Q: `status >= `})
	var ferr *filter.Error
	if !errors.As(err, &ferr) || !errors.Is(err, ErrInvalid) || ferr.Pos != len(`status >= `) {
		t.Errorf("view with a bad q: %v, want a filter error at %d", err, len(`status >= `))
	}
	for _, in := range []ViewInput{
		{Name: ""}, {Name: "x", From: "yesterday"}, {Name: "x", From: "2025-01-02T00:00:00Z", To: "2025-01-01T00:00:00Z"},
		{Name: "x", Relative: "-1h"}, {Name: "x", Relative: "abc"},
	} {
		_, err := f.s.CreateView(ctx, alice, in)
		wantErr(t, fmt.Sprintf("CreateView(%+v)", in), err, ErrInvalid)
	}
	_, err = f.s.CreateView(ctx, alice, ViewInput{Name: "x", Team: "blue"})
	wantErr(t, "view for a team one is not in", err, ErrForbidden)

	private, err := f.s.CreateView(ctx, alice, ViewInput{Name: "errors", Q: "status >= 500", Relative: "24h"})
	if err != nil {
		t.Fatal(err)
	}
	f.clock.add(time.Second)
	shared, err := f.s.CreateView(ctx, alice, ViewInput{Name: "red team", Team: "red", From: "2025-01-01T00:00:00Z", To: "2025-01-02T00:00:00Z"})
	if err != nil {
		t.Fatal(err)
	}
	from, to := private.Window(f.clock.now())
	if to.Sub(from) != 24*time.Hour || !to.Equal(f.clock.now()) {
		t.Errorf("relative window %v..%v", from, to)
	}
	if from, to := shared.Window(f.clock.now()); !from.Equal(time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)) || to.Sub(from) != 24*time.Hour {
		t.Errorf("absolute window %v..%v", from, to)
	}

	ids := func(p *Principal) []string {
		vs, err := f.s.Views(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, v := range vs {
			out = append(out, v.Name)
		}
		return out
	}
	if got := ids(alice); !slices.Equal(got, []string{"red team", "errors"}) {
		t.Errorf("alice's views %v", got)
	}
	if got := ids(bob); len(got) != 0 {
		t.Errorf("bob sees %v", got)
	}
	if got := ids(admin); len(got) != 2 {
		t.Errorf("admin sees %v", got)
	}
	_, err = f.s.GetView(ctx, bob, private.ID)
	wantErr(t, "GetView of another's view", err, ErrNotFound)
	_, err = f.s.GetView(ctx, bob, "../users/admin")
	wantErr(t, "GetView of a path", err, ErrNotFound)

	// A red member who is not the owner sees the shared view but may not change it.
	if _, err := f.s.CreateUser(ctx, NewUser{Username: "erin", Password: "erin-password", Role: RoleAnalyst, Teams: []string{"red"}}); err != nil {
		t.Fatal(err)
	}
	_, erin := f.login(t, "erin", "erin-password")
	if got := ids(erin); !slices.Equal(got, []string{"red team"}) {
		t.Errorf("erin's views %v", got)
	}
	_, err = f.s.UpdateView(ctx, erin, shared.ID, ViewInput{Name: "mine"})
	wantErr(t, "UpdateView by a team member", err, ErrForbidden)
	wantErr(t, "DeleteView by a team member", f.s.DeleteView(ctx, erin, shared.ID), ErrForbidden)
	v, err := f.s.UpdateView(ctx, alice, shared.ID, ViewInput{Name: "renamed", Team: "red"})
	if err != nil || v.Name != "renamed" || v.Owner != "alice" {
		t.Errorf("UpdateView = %+v, %v", v, err)
	}
	if err := f.s.DeleteView(ctx, admin, shared.ID); err != nil {
		t.Errorf("admin DeleteView: %v", err)
	}
	wantErr(t, "DeleteView(missing)", f.s.DeleteView(ctx, alice, shared.ID), ErrNotFound)
}

func TestPositions(t *testing.T) {
	f := setup(t)
	ctx := t.Context()
	_, alice := f.login(t, "alice", "alice-password")
	_, bob := f.login(t, "bob", "bob-password")
	if got, err := f.s.GetPositions(ctx, alice, "user", ""); err != nil || len(got) != 0 {
		t.Errorf("no positions yet: %v, %v", got, err)
	}
	mine := Positions{"10.0.0.1": {X: 1, Y: 2}}
	if _, err := f.s.SetPositions(ctx, alice, "user", "", mine); err != nil {
		t.Fatal(err)
	}
	team := Positions{"10.0.0.2": {X: -3.5, Y: 4}}
	if _, err := f.s.SetPositions(ctx, alice, "team", "", team); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.s.GetPositions(ctx, alice, "user", ""); got["10.0.0.1"] != mine["10.0.0.1"] || len(got) != 1 {
		t.Errorf("user positions %v", got)
	}
	if got, _ := f.s.GetPositions(ctx, alice, "team", "red"); got["10.0.0.2"] != team["10.0.0.2"] || len(got) != 1 {
		t.Errorf("team positions %v", got)
	}
	if got, _ := f.s.GetPositions(ctx, bob, "user", ""); len(got) != 0 {
		t.Errorf("bob sees alice's positions: %v", got)
	}
	_, err := f.s.GetPositions(ctx, bob, "team", "red")
	wantErr(t, "positions of another team", err, ErrForbidden)
	_, err = f.s.GetPositions(ctx, bob, "everyone", "")
	wantErr(t, "bad scope", err, ErrInvalid)
	_, err = f.s.SetPositions(ctx, alice, "user", "", Positions{"": {}})
	wantErr(t, "empty node id", err, ErrInvalid)
}

func TestLinks(t *testing.T) {
	f := setup(t)
	ctx := t.Context()
	_, alice := f.login(t, "alice", "alice-password")
	_, bob := f.login(t, "bob", "bob-password")
	view, err := f.s.CreateView(ctx, alice, ViewInput{Name: "errors", Q: "status >= 500"})
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = f.s.CreateLink(ctx, bob, view.ID, time.Hour, "")
	wantErr(t, "link to a view one cannot see", err, ErrInvalid)
	_, _, err = f.s.CreateLink(ctx, alice, view.ID, time.Second, "")
	wantErr(t, "link living a second", err, ErrInvalid)

	link, tok, err := f.s.CreateLink(ctx, alice, view.ID, time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	gotView, sess, err := f.s.OpenLink(ctx, tok, "")
	if err != nil {
		t.Fatal(err)
	}
	if gotView.ID != view.ID || sess.User.Role != RoleViewer {
		t.Errorf("OpenLink = %+v, %+v", gotView, sess.User)
	}
	p, err := f.s.Authenticate(ctx, sess.Token)
	if err != nil {
		t.Fatal(err)
	}
	if p.Kind != KindLink || p.View.ID != view.ID || !slices.Equal(p.Scope, []string{"a"}) || p.Can(RoleAnalyst) {
		t.Errorf("link principal %+v: want a viewer of the view with alice's scope [a]", p)
	}
	// Open again: an unguarded link works until it expires.
	if _, _, err := f.s.OpenLink(ctx, tok, ""); err != nil {
		t.Errorf("second open: %v", err)
	}
	// Tampered URL tokens and access tokens are no link tokens.
	_, _, err = f.s.OpenLink(ctx, sess.Token, "")
	wantErr(t, "access token as link token", err, ErrUnauthorized)
	_, _, err = f.s.OpenLink(ctx, tok[:len(tok)-2]+"xx", "")
	wantErr(t, "tampered link token", err, ErrUnauthorized)

	if ls, err := f.s.Links(ctx, alice); err != nil || len(ls) != 1 || ls[0].ID != link.ID {
		t.Errorf("alice's links %v, %v", ls, err)
	}
	if ls, err := f.s.Links(ctx, bob); err != nil || len(ls) != 0 {
		t.Errorf("bob's links %v, %v", ls, err)
	}
	wantErr(t, "bob deletes alice's link", f.s.DeleteLink(ctx, bob, link.ID), ErrNotFound)
	// Deleting the link revokes it and the tokens it gave.
	if err := f.s.DeleteLink(ctx, alice, link.ID); err != nil {
		t.Fatal(err)
	}
	_, _, err = f.s.OpenLink(ctx, tok, "")
	wantErr(t, "revoked link", err, ErrUnauthorized)
	_, err = f.s.Authenticate(ctx, sess.Token)
	wantErr(t, "token of a revoked link", err, ErrUnauthorized)

	// Expiry.
	_, tok, err = f.s.CreateLink(ctx, alice, view.ID, time.Hour, "")
	if err != nil {
		t.Fatal(err)
	}
	_, sess, err = f.s.OpenLink(ctx, tok, "")
	if err != nil {
		t.Fatal(err)
	}
	f.clock.add(time.Hour + leeway + time.Second)
	_, _, err = f.s.OpenLink(ctx, tok, "")
	wantErr(t, "expired link", err, ErrUnauthorized)
	_, err = f.s.Authenticate(ctx, sess.Token)
	wantErr(t, "token of an expired link", err, ErrUnauthorized)
}

func TestLinkOneTimePassword(t *testing.T) {
	f := setup(t)
	ctx := t.Context()
	_, alice := f.login(t, "alice", "alice-password")
	view, err := f.s.CreateView(ctx, alice, ViewInput{Name: "v"})
	if err != nil {
		t.Fatal(err)
	}
	_, tok, err := f.s.CreateLink(ctx, alice, view.ID, time.Hour, "one-time-secret")
	if err != nil {
		t.Fatal(err)
	}
	stored, _, err := read[Link](ctx, f.st, linkKey(mustClaims(t, f.s, tok).Subject))
	if err != nil || !strings.HasPrefix(stored.PasswordHash, "$argon2id$") {
		t.Fatalf("stored link %+v, %v: want an argon2id hash", stored, err)
	}
	_, _, err = f.s.OpenLink(ctx, tok, "")
	if !errors.Is(err, ErrPasswordRequired) || !errors.Is(err, ErrUnauthorized) {
		t.Errorf("open without password: %v", err)
	}
	_, _, err = f.s.OpenLink(ctx, tok, "wrong-secret")
	wantErr(t, "wrong password", err, ErrUnauthorized)

	// Several visitors at once with the right password: exactly one gets in.
	const n = 5
	var wg sync.WaitGroup
	var ok atomic.Int32
	for range n {
		wg.Go(func() {
			_, _, err := f.s.OpenLink(ctx, tok, "one-time-secret")
			switch {
			case err == nil:
				ok.Add(1)
			case !errors.Is(err, ErrUnauthorized):
				t.Errorf("concurrent open: %v", err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 {
		t.Errorf("%d visitors got in with the one-time password, want 1", ok.Load())
	}
	_, _, err = f.s.OpenLink(ctx, tok, "one-time-secret")
	if err == nil || !strings.Contains(err.Error(), "used already") {
		t.Errorf("reuse of the one-time password: %v", err)
	}

	// Too many wrong passwords lock a link.
	_, tok2, err := f.s.CreateLink(ctx, alice, view.ID, time.Hour, "another-secret")
	if err != nil {
		t.Fatal(err)
	}
	for range MaxLinkAttempts {
		if _, _, err := f.s.OpenLink(ctx, tok2, "guess-guess"); err == nil {
			t.Fatal("wrong password accepted")
		}
	}
	_, _, err = f.s.OpenLink(ctx, tok2, "another-secret")
	if err == nil || !strings.Contains(err.Error(), "locked") {
		t.Errorf("right password after %d wrong ones: %v, want locked", MaxLinkAttempts, err)
	}
}

func mustClaims(t *testing.T, s *Service, tok string) *claims {
	t.Helper()
	c, err := s.verify(tok, audLink)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestConcurrentUpdates(t *testing.T) {
	// Read-modify-writes from several services on one store lose nothing.
	st := store.NewMem()
	c := newClock()
	s0 := newService(t, st, c)
	if _, err := s0.CreateTeam(t.Context(), "t", nil); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		s := newService(t, st, c)
		wg.Go(func() {
			_, err := update(t.Context(), s, teamKey("t"), false, func(tm *Team) error {
				tm.Agents = append(tm.Agents, fmt.Sprintf("agent-%d", i))
				return nil
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	tm, _, err := read[Team](t.Context(), st, teamKey("t"))
	if err != nil || len(tm.Agents) != 8 {
		t.Errorf("team agents %v, %v: want 8", tm.Agents, err)
	}
}

func TestOIDCConfigFromEnv(t *testing.T) {
	env := func(m map[string]string) func(string) string { return func(k string) string { return m[k] } }
	c, err := OIDCConfigFromEnv(env(nil))
	if c != nil || err != nil {
		t.Errorf("no variables: %v, %v; want OIDC off", c, err)
	}
	full := map[string]string{
		EnvOIDCIssuer: "https://login.example.com/realms/x", EnvOIDCClientID: "flowlake", EnvOIDCClientSecret: "s3cret",
	}
	c, err = OIDCConfigFromEnv(env(full))
	if err != nil || c.Issuer != full[EnvOIDCIssuer] || c.ClientID != "flowlake" || c.ClientSecret != "s3cret" {
		t.Errorf("full configuration: %+v, %v", c, err)
	}
	partial := map[string]string{EnvOIDCIssuer: "https://login.example.com"}
	_, err = OIDCConfigFromEnv(env(partial))
	if err == nil || !strings.Contains(err.Error(), EnvOIDCClientID) || !strings.Contains(err.Error(), EnvOIDCClientSecret) {
		t.Errorf("partial configuration: %v, want the missing variables named", err)
	}
	for _, issuer := range []string{"http://login.example.com", "login.example.com", "https://x/?a=b"} {
		m := map[string]string{EnvOIDCIssuer: issuer, EnvOIDCClientID: "a", EnvOIDCClientSecret: "b"}
		if _, err := OIDCConfigFromEnv(env(m)); err == nil {
			t.Errorf("issuer %q accepted", issuer)
		}
	}
	m := map[string]string{EnvOIDCIssuer: "http://localhost:5556/dex", EnvOIDCClientID: "a", EnvOIDCClientSecret: "b",
		EnvOIDCRedirectURL: "https://flowlake.example.com/api/v1/auth/oidc/callback"}
	if c, err := OIDCConfigFromEnv(env(m)); err != nil || c.RedirectURL == "" {
		t.Errorf("loopback issuer with redirect URL: %v, %v", c, err)
	}
	// Configured, a service offers OIDC; without, the OIDC calls say so.
	s, err := New(t.Context(), Config{Store: store.NewMem(), OIDC: c})
	if err != nil || !s.OIDCEnabled() {
		t.Errorf("service with OIDC: %v", err)
	}
	plain := newService(t, store.NewMem(), newClock())
	if _, _, err := plain.OIDCStart(t.Context(), "https://x/cb"); !errors.Is(err, ErrOIDCDisabled) {
		t.Errorf("OIDCStart without OIDC: %v", err)
	}
	if _, err := New(t.Context(), Config{Store: store.NewMem(), OIDC: &OIDCConfig{Issuer: "https://x"}}); err == nil {
		t.Error("New accepted an incomplete OIDC configuration")
	}
}

func TestMain(m *testing.M) {
	slog.SetDefault(slog.New(slog.DiscardHandler)) // the services log to the default logger
	os.Exit(m.Run())
}
