package auth

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/flowlake/flowlake/internal/keys"
)

// Token issuer and audiences. Each kind of token has its own audience, so
// that a public link's URL token or an OIDC state cannot serve as an access
// token.
const (
	issuer       = "flowlake"
	audAPI       = "flowlake-api"        // access tokens (Authorization: Bearer)
	audLink      = "flowlake-link"       // the token in a public link's URL
	audOIDCState = "flowlake-oidc-state" // the OIDC login state cookie
)

// leeway is the clock skew tolerated when checking exp, nbf and iat.
const leeway = 5 * time.Second

// signingKeyKey is where the generated signing key is kept.
var signingKeyKey = keys.Config(keys.ConfigSigningKey, "jwt-ed25519")

// keyDoc is the stored signing key.
type keyDoc struct {
	Alg       string    `json:"alg"`  // EdDSA
	Seed      string    `json:"seed"` // base64 of the 32-byte Ed25519 seed
	CreatedAt time.Time `json:"created_at"`
}

// loadSigningKey reads the stored signing key, or generates and stores
// one. Of several processes starting at once one creates it, and the
// others read it.
func (s *Service) loadSigningKey(ctx context.Context) (ed25519.PrivateKey, error) {
	for range 3 {
		doc, _, err := read[keyDoc](ctx, s.st, signingKeyKey)
		if err == nil {
			seed, derr := base64.StdEncoding.DecodeString(doc.Seed)
			if derr != nil || len(seed) != ed25519.SeedSize || doc.Alg != "EdDSA" {
				return nil, fmt.Errorf("auth: signing key %s is damaged: want alg EdDSA and a base64 seed of %d bytes", signingKeyKey, ed25519.SeedSize)
			}
			return ed25519.NewKeyFromSeed(seed), nil
		}
		if !errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("auth: read signing key: %w", err)
		}
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		doc = keyDoc{Alg: "EdDSA", Seed: base64.StdEncoding.EncodeToString(priv.Seed()), CreatedAt: s.now().UTC()}
		err = create(ctx, s, signingKeyKey, doc)
		if err == nil {
			s.log.Info("auth: generated the token signing key", "key", signingKeyKey)
			return priv, nil
		}
		if !errors.Is(err, ErrConflict) {
			return nil, fmt.Errorf("auth: store signing key: %w", err)
		}
		// Another process created it first: read theirs.
	}
	return nil, fmt.Errorf("auth: signing key %s keeps changing", signingKeyKey)
}

// ParseSigningKey reads an Ed25519 private key given as PEM (PKCS #8,
// "BEGIN PRIVATE KEY", as `openssl genpkey -algorithm ed25519` writes) or
// as base64 (standard or URL alphabet, padded or not) of the 32-byte seed
// or the 64-byte private key. It is the format of FLOWLAKE_JWT_KEY.
func ParseSigningKey(s string) (ed25519.PrivateKey, error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "-----BEGIN") {
		block, _ := pem.Decode([]byte(s))
		if block == nil {
			return nil, errors.New("signing key: malformed PEM")
		}
		k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("signing key: %w", err)
		}
		priv, ok := k.(ed25519.PrivateKey)
		if !ok {
			return nil, fmt.Errorf("signing key: a %T, want an Ed25519 key", k)
		}
		return priv, nil
	}
	var raw []byte
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			raw = b
			break
		}
	}
	switch len(raw) {
	case ed25519.SeedSize:
		return ed25519.NewKeyFromSeed(raw), nil
	case ed25519.PrivateKeySize:
		priv := ed25519.NewKeyFromSeed(raw[:ed25519.SeedSize])
		if !priv.Equal(ed25519.PrivateKey(raw)) {
			return nil, errors.New("signing key: the 64 bytes are not a consistent Ed25519 private key")
		}
		return priv, nil
	case 0:
		return nil, errors.New("signing key: neither PEM nor base64")
	}
	return nil, fmt.Errorf("signing key: %d bytes, want a %d-byte Ed25519 seed or a %d-byte private key", len(raw), ed25519.SeedSize, ed25519.PrivateKeySize)
}

func (s *Service) setKey(k ed25519.PrivateKey) {
	s.key = k
	s.pub = k.Public().(ed25519.PublicKey)
	sum := sha256.Sum256(s.pub)
	s.kid = hex.EncodeToString(sum[:8])
}

// claims are the claims of every token the service issues.
type claims struct {
	jwt.RegisteredClaims
	// Kind is KindUser, KindService or KindLink (the subject's kind).
	Kind string `json:"knd,omitempty"`
	// Role is informational: authorization uses the stored role.
	Role Role `json:"role,omitempty"`
	// View is the saved view a link token is scoped to.
	View string `json:"view,omitempty"`
	// State and Nonce are the OIDC login's.
	State string `json:"state,omitempty"`
	Nonce string `json:"nonce,omitempty"`
}

// sign issues a token for aud with the given claims, valid until exp.
func (s *Service) sign(aud string, c claims, exp time.Time) (string, error) {
	now := s.now()
	c.Issuer = issuer
	c.Audience = jwt.ClaimStrings{aud}
	c.IssuedAt = jwt.NewNumericDate(now)
	c.NotBefore = jwt.NewNumericDate(now)
	c.ExpiresAt = jwt.NewNumericDate(exp)
	c.ID = randomToken(12)
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, c)
	t.Header["kid"] = s.kid
	return t.SignedString(s.key)
}

// verify checks a token for aud: signed with EdDSA by this service's key,
// from this issuer, for this audience, and within its validity. The error
// wraps ErrUnauthorized and says what is wrong.
func (s *Service) verify(token, aud string) (*claims, error) {
	if token == "" {
		return nil, fmt.Errorf("%w: no token", ErrUnauthorized)
	}
	if len(token) > 8<<10 {
		return nil, fmt.Errorf("%w: token longer than 8 KiB", ErrUnauthorized)
	}
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(aud),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
		jwt.WithTimeFunc(s.now),
	)
	var c claims
	_, err := p.ParseWithClaims(token, &c, func(t *jwt.Token) (any, error) {
		return s.pub, nil
	})
	if err == nil {
		if c.Subject == "" {
			return nil, fmt.Errorf("%w: token has no subject", ErrUnauthorized)
		}
		return &c, nil
	}
	var why string
	switch {
	case errors.Is(err, jwt.ErrTokenSignatureInvalid) && !signedWithEdDSA(token):
		why = "token is not signed with EdDSA by this server"
	case errors.Is(err, jwt.ErrTokenMalformed):
		why = "malformed token"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		why = "token signature is invalid (wrong key or altered token)"
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		why = "token is not signed with EdDSA by this server"
	case errors.Is(err, jwt.ErrTokenExpired):
		why = "token expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		why = "token not valid yet"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		why = "token is not valid for this use"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		why = "token from another issuer"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		why = "token lacks a required claim"
	default:
		why = "invalid token"
	}
	return nil, fmt.Errorf("%w: %s", ErrUnauthorized, why)
}

// signedWithEdDSA reports whether the token's header names EdDSA.
func signedWithEdDSA(token string) bool {
	t, _, err := jwt.NewParser().ParseUnverified(token, &claims{})
	return err == nil && t.Header["alg"] == jwt.SigningMethodEdDSA.Alg()
}

// Session is what a login returns: an access token and who it is for.
type Session struct {
	Token     string    `json:"token"`
	ExpiresAt time.Time `json:"expires_at"`
	User      UserInfo  `json:"user"`
}

// UserInfo describes the caller (GET /api/v1/auth/me, and sessions).
type UserInfo struct {
	Username string   `json:"username"`
	Role     Role     `json:"role"`
	Teams    []string `json:"teams"`
}

// Info describes the principal.
func (p *Principal) Info() UserInfo {
	teams := p.Teams
	if teams == nil {
		teams = []string{}
	}
	name := p.Name
	if p.Kind == KindLink {
		name = "link:" + p.Name
	}
	return UserInfo{Username: name, Role: p.Role, Teams: teams}
}

// session issues an access token for a user or service account.
func (s *Service) session(kind, name string, role Role, teams []string) (*Session, error) {
	exp := s.now().Add(s.tokenTTL)
	tok, err := s.sign(audAPI, claims{RegisteredClaims: jwt.RegisteredClaims{Subject: name}, Kind: kind, Role: role}, exp)
	if err != nil {
		return nil, err
	}
	return &Session{Token: tok, ExpiresAt: exp.UTC().Truncate(time.Second), User: UserInfo{Username: name, Role: role, Teams: sortedSet(teams)}}, nil
}

// Authenticate verifies an access token and returns its principal, loaded
// from the store: a token of a deleted user, service account or link, or
// issued before the user's password changed, is refused. Errors wrap
// ErrUnauthorized, or are the store's.
func (s *Service) Authenticate(ctx context.Context, token string) (*Principal, error) {
	c, err := s.verify(token, audAPI)
	if err != nil {
		return nil, err
	}
	switch c.Kind {
	case KindUser:
		u, err := load[User](ctx, s, userKey(c.Subject))
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("%w: user %q no longer exists", ErrUnauthorized, c.Subject)
		}
		if err != nil {
			return nil, err
		}
		if c.IssuedAt.Before(u.CreatedAt.Truncate(time.Second)) {
			return nil, fmt.Errorf("%w: token issued before user %q was created", ErrUnauthorized, u.Username)
		}
		if !u.TokensAfter.IsZero() && c.IssuedAt.Before(u.TokensAfter.Truncate(time.Second)) {
			return nil, fmt.Errorf("%w: token issued before the password of %q changed", ErrUnauthorized, u.Username)
		}
		return s.principal(ctx, KindUser, u.Username, u.Role, u.Teams)
	case KindService:
		a, err := load[ServiceAccount](ctx, s, serviceKey(c.Subject))
		if errors.Is(err, ErrNotFound) {
			return nil, fmt.Errorf("%w: service account %q no longer exists", ErrUnauthorized, c.Subject)
		}
		if err != nil {
			return nil, err
		}
		if c.IssuedAt.Before(a.CreatedAt.Truncate(time.Second)) {
			return nil, fmt.Errorf("%w: token issued before service account %q was created", ErrUnauthorized, a.Name)
		}
		return s.principal(ctx, KindService, a.Name, a.Role, a.Teams)
	case KindLink:
		return s.linkPrincipal(ctx, c)
	}
	return nil, fmt.Errorf("%w: token of unknown kind %q", ErrUnauthorized, c.Kind)
}

// principal builds the principal of a user or service account.
func (s *Service) principal(ctx context.Context, kind, name string, role Role, teams []string) (*Principal, error) {
	scope, err := s.scope(ctx, role, teams)
	if err != nil {
		return nil, err
	}
	return &Principal{Kind: kind, Name: name, Role: role, Teams: sortedSet(teams), Scope: scope}, nil
}

// scope is the set of agents a role with these teams may see: nil (all)
// for admins, otherwise the agents of the teams (missing teams own none).
func (s *Service) scope(ctx context.Context, role Role, teams []string) ([]string, error) {
	if role == RoleAdmin {
		return nil, nil
	}
	var agents []string
	for _, name := range teams {
		t, err := load[Team](ctx, s, teamKey(name))
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		agents = append(agents, t.Agents...)
	}
	return sortedSet(agents), nil
}
