// Package auth is the access control of flowlake's query API: who may call
// it, and which agents' traffic each caller may see.
//
//   - Users log in with a password (POST /api/v1/auth/login) or, when
//     configured, through an OpenID Connect provider; service accounts
//     exchange an API key (POST /api/v1/auth/token). Both get a short-lived
//     JWT signed with Ed25519 (EdDSA), which every other request carries as
//     `Authorization: Bearer`. [Service.Authenticate] verifies it (only
//     EdDSA with the service's key; expiry, issuer and audience enforced) and
//     returns the [Principal] behind it, loaded afresh from the store (so
//     that a deleted user or a changed role takes effect within
//     [Config.CacheTTL]).
//   - Roles: admin (everything), analyst (data, saved views, public links),
//     viewer (reading data). Teams own agents; a caller sees only the rows
//     of the agents of their teams ([Principal.Scope], which the query
//     engine enforces in its scans); admins see all.
//   - Saved views and map positions (per user or per team), and public
//     links: signed, expiring URLs scoped to one saved view, optionally
//     guarded by a one-time password.
//
// Password logins are throttled ([LoginLimits]): after 5 failures for one
// username (known or not, so that the answer tells nothing about which
// users exist) or 20 from one client address within 15 minutes, further
// attempts for that username or from that address are refused with
// [ErrThrottled] (HTTP 429, with when to retry) without their password
// being checked, until 15 minutes after the first failure; a successful
// login resets the username's count. The throttle is in memory and per
// process: each `flowlake serve` process and each Lambda instance has its
// own, so it bounds the guessing rate per instance (N instances allow N
// times as many guesses), not globally; it tracks a bounded number of
// usernames and addresses, forgetting the least recently failed beyond
// it. The client address is the one the HTTP layer passes (the peer of the
// connection, or a Lambda event's requestContext sourceIp, never a
// client-supplied X-Forwarded-For).
//
// Passwords, API keys and one-time link passwords are stored as argon2id
// hashes (PHC strings). All state lives in the object store under config/
// (keys from package keys), one JSON document per user, team, service
// account, view, link and positions map: creations are conditional creates
// (PutIfAbsent), changes read-modify-writes with PutIfMatch retried on
// conflict, so that concurrent servers and Lambda instances lose no update
// and a one-time password is accepted once. The signing key is generated
// once and kept at config/keys/jwt-ed25519.json unless given
// (FLOWLAKE_JWT_KEY); note that whoever can read that object can mint
// tokens.
package auth

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/flowlake/flowlake/internal/store"
)

// Errors. Every error of the package that a caller should map to an HTTP
// status wraps one of them; the message says precisely what is wrong and
// never contains a password, token or key.
var (
	// ErrUnauthorized: no, or bad, credentials (HTTP 401).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrForbidden: the caller may not do this (HTTP 403).
	ErrForbidden = errors.New("forbidden")
	// ErrNotFound: no such user, team, view, link… (HTTP 404).
	ErrNotFound = errors.New("not found")
	// ErrInvalid: a malformed request (HTTP 400).
	ErrInvalid = errors.New("invalid request")
	// ErrConflict: the thing to create exists already (HTTP 400 in the
	// API's error codes).
	ErrConflict = errors.New("already exists")
)

// Role is what a user or service account may do.
type Role string

// Roles, from least to most powerful.
const (
	RoleViewer  Role = "viewer"  // read data routes
	RoleAnalyst Role = "analyst" // and saved views, positions, public links
	RoleAdmin   Role = "admin"   // and users, teams, agents, service accounts; sees all agents
)

// Roles lists the roles, least powerful first.
var Roles = []Role{RoleViewer, RoleAnalyst, RoleAdmin}

func (r Role) rank() int { return slices.Index(Roles, r) }

// Valid reports whether r is a known role.
func (r Role) Valid() bool { return r.rank() >= 0 }

// AtLeast reports whether r may do what min may.
func (r Role) AtLeast(min Role) bool { return r.Valid() && r.rank() >= min.rank() }

func checkRole(r Role) error {
	if !r.Valid() {
		return fmt.Errorf("%w: role %q: want admin, analyst or viewer", ErrInvalid, r)
	}
	return nil
}

// Kinds of principals.
const (
	KindUser    = "user"    // a person, logged in with a password or OIDC
	KindService = "service" // a service account, with an API key
	KindLink    = "link"    // a visitor of a public link
)

// Principal is the authenticated caller of a request.
type Principal struct {
	// Kind is KindUser, KindService or KindLink.
	Kind string
	// Name is the username, the service account's name, or the link id.
	Name string
	// Role is the caller's role (a link visitor is a viewer).
	Role Role
	// Teams are the caller's teams (for a link, none).
	Teams []string
	// Scope is the set of agents whose rows the caller may see: nil for
	// all (admins, and links created by admins), otherwise a sorted list,
	// empty when the caller's teams own no agent.
	Scope []string
	// Link and View are set for KindLink: the public link, and the saved
	// view it is scoped to.
	Link *Link
	View *SavedView
}

// Can reports whether the principal's role is at least min.
func (p *Principal) Can(min Role) bool { return p != nil && p.Role.AtLeast(min) }

// Defaults of Config.
const (
	DefaultTokenTTL = 15 * time.Minute
	DefaultCacheTTL = 5 * time.Second
)

// Config configures a Service.
type Config struct {
	// Store holds the config/ documents (required).
	Store store.Store
	// SigningKey signs and verifies tokens. When nil the key stored at
	// config/keys/jwt-ed25519.json is used, created on first use.
	SigningKey ed25519.PrivateKey
	// TokenTTL is the lifetime of access tokens; 0 means DefaultTokenTTL.
	TokenTTL time.Duration
	// CacheTTL is how long documents read from the store are reused
	// before being read again: the delay after which a change made by
	// another process (a deleted user, a team's new agents) takes effect.
	// Changes made through this Service take effect at once. 0 means
	// DefaultCacheTTL; negative disables the cache.
	CacheTTL time.Duration
	// OIDC enables login through an OpenID Connect provider.
	OIDC *OIDCConfig
	// LoginLimits throttles failed password logins (per process; see
	// [Service.Login]); the zero value picks the defaults.
	LoginLimits LoginLimits
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Log receives warnings; nil means slog.Default(). Passwords, tokens
	// and API keys are never logged.
	Log *slog.Logger
}

// Service is the access control of one store. It is safe for concurrent
// use.
type Service struct {
	st       store.Store
	key      ed25519.PrivateKey
	pub      ed25519.PublicKey
	kid      string
	tokenTTL time.Duration
	now      func() time.Time
	log      *slog.Logger
	cache    *docCache
	oidc     *oidcClient
	throttle *throttle
}

// New returns the service over cfg.Store, loading (or creating, once for
// all processes sharing the store) the signing key.
func New(ctx context.Context, cfg Config) (*Service, error) {
	if cfg.Store == nil {
		return nil, errors.New("auth: no store")
	}
	s := &Service{st: cfg.Store, tokenTTL: cfg.TokenTTL, now: cfg.Now, log: cfg.Log}
	if s.tokenTTL == 0 {
		s.tokenTTL = DefaultTokenTTL
	}
	if s.tokenTTL < 0 {
		return nil, fmt.Errorf("auth: negative token lifetime %v", s.tokenTTL)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	ttl := cfg.CacheTTL
	if ttl == 0 {
		ttl = DefaultCacheTTL
	}
	s.cache = newDocCache(ttl, s.now)
	s.throttle = newThrottle(cfg.LoginLimits, s.now)
	key := cfg.SigningKey
	if key == nil {
		var err error
		if key, err = s.loadSigningKey(ctx); err != nil {
			return nil, err
		}
	}
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("auth: signing key has %d bytes, want an Ed25519 private key of %d", len(key), ed25519.PrivateKeySize)
	}
	s.setKey(key)
	if cfg.OIDC != nil {
		if err := cfg.OIDC.Validate(); err != nil {
			return nil, fmt.Errorf("auth: %w", err)
		}
		s.oidc = newOIDCClient(*cfg.OIDC)
	}
	return s, nil
}

// OIDCEnabled reports whether login through OpenID Connect is configured.
func (s *Service) OIDCEnabled() bool { return s.oidc != nil }

// TokenTTL is the lifetime of the access tokens the service issues.
func (s *Service) TokenTTL() time.Duration { return s.tokenTTL }

// validName checks the name of a user, team, service account: 1-64
// characters of letters, digits, '.', '_', '-' and '@', not starting with
// '.' (names are object key elements).
func validName(what, name string) error {
	if name == "" || len(name) > 64 || name[0] == '.' {
		return fmt.Errorf("%w: %s name %q: want 1-64 characters of [A-Za-z0-9._@-], not starting with '.'", ErrInvalid, what, name)
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.ContainsRune("._-@", c)) {
			return fmt.Errorf("%w: %s name %q: character %q not allowed (want [A-Za-z0-9._@-])", ErrInvalid, what, name, c)
		}
	}
	return nil
}

// sortedSet returns the distinct values of l, sorted (never nil).
func sortedSet(l []string) []string {
	out := slices.Clone(l)
	slices.Sort(out)
	out = slices.Compact(out)
	if out == nil {
		out = []string{}
	}
	return out
}
