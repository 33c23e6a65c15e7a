package auth

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/oauth2"
)

// OIDC environment variables.
const (
	EnvOIDCIssuer       = "FLOWLAKE_OIDC_ISSUER"
	EnvOIDCClientID     = "FLOWLAKE_OIDC_CLIENT_ID"
	EnvOIDCClientSecret = "FLOWLAKE_OIDC_CLIENT_SECRET"
	// EnvOIDCRedirectURL is optional: the callback URL registered with the
	// provider; by default it is derived from the request
	// (<scheme>://<host>/api/v1/auth/oidc/callback).
	EnvOIDCRedirectURL = "FLOWLAKE_OIDC_REDIRECT_URL"
)

// OIDCConfig configures login through an OpenID Connect provider (the
// authorization code flow with PKCE, as a confidential client).
type OIDCConfig struct {
	Issuer       string
	ClientID     string
	ClientSecret string
	RedirectURL  string // optional
}

// OIDCConfigFromEnv reads the OIDC configuration: nil when none of the
// variables is set, an error naming what is missing when only some are.
func OIDCConfigFromEnv(getenv func(string) string) (*OIDCConfig, error) {
	c := OIDCConfig{
		Issuer:       strings.TrimSpace(getenv(EnvOIDCIssuer)),
		ClientID:     strings.TrimSpace(getenv(EnvOIDCClientID)),
		ClientSecret: strings.TrimSpace(getenv(EnvOIDCClientSecret)),
		RedirectURL:  strings.TrimSpace(getenv(EnvOIDCRedirectURL)),
	}
	if c == (OIDCConfig{}) {
		return nil, nil
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return &c, nil
}

// Validate reports what is missing or malformed.
func (c OIDCConfig) Validate() error {
	var missing []string
	for _, v := range []struct{ name, val string }{
		{EnvOIDCIssuer, c.Issuer}, {EnvOIDCClientID, c.ClientID}, {EnvOIDCClientSecret, c.ClientSecret},
	} {
		if v.val == "" {
			missing = append(missing, v.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("OIDC login: %s not set (set %s, %s and %s, or none)", strings.Join(missing, ", "),
			EnvOIDCIssuer, EnvOIDCClientID, EnvOIDCClientSecret)
	}
	if err := checkOIDCURL(EnvOIDCIssuer, c.Issuer); err != nil {
		return err
	}
	if c.RedirectURL != "" {
		if err := checkOIDCURL(EnvOIDCRedirectURL, c.RedirectURL); err != nil {
			return err
		}
	}
	return nil
}

// checkOIDCURL accepts https URLs, and http ones for loopback hosts.
func checkOIDCURL(name, v string) error {
	u, err := url.Parse(v)
	if err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("OIDC login: %s=%q: want an absolute https URL without query", name, v)
	}
	host := u.Hostname()
	loopback := host == "localhost" || host == "127.0.0.1" || host == "::1"
	if u.Scheme != "https" && !(u.Scheme == "http" && loopback) {
		return fmt.Errorf("OIDC login: %s=%q: want https (http only for localhost)", name, v)
	}
	return nil
}

// oidcClient holds the provider, discovered on first use.
type oidcClient struct {
	cfg OIDCConfig

	mu       sync.Mutex
	provider *oidc.Provider
}

func newOIDCClient(cfg OIDCConfig) *oidcClient { return &oidcClient{cfg: cfg} }

// discover returns the provider, fetching its discovery document once
// (again after a failure).
func (c *oidcClient) discover(ctx context.Context) (*oidc.Provider, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.provider != nil {
		return c.provider, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	p, err := oidc.NewProvider(ctx, c.cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("OIDC provider %s: discovery: %w", c.cfg.Issuer, err)
	}
	c.provider = p
	return p, nil
}

func (c *oidcClient) oauth2(p *oidc.Provider, redirectURL string) *oauth2.Config {
	if c.cfg.RedirectURL != "" {
		redirectURL = c.cfg.RedirectURL
	}
	return &oauth2.Config{
		ClientID:     c.cfg.ClientID,
		ClientSecret: c.cfg.ClientSecret,
		RedirectURL:  redirectURL,
		Endpoint:     p.Endpoint(),
		Scopes:       []string{oidc.ScopeOpenID, "profile", "email"},
	}
}

// oidcStateTTL bounds the time between the start of a login and the
// provider's callback.
const oidcStateTTL = 10 * time.Minute

// ErrOIDCDisabled is returned by the OIDC methods when OIDC is not
// configured.
var ErrOIDCDisabled = errors.New("OIDC login is not configured")

// OIDCStart begins a login: it returns the provider's authorization URL to
// redirect the browser to, and the value of a state cookie to set on the
// browser (HttpOnly, for the callback path), which binds the callback to
// this browser: a signed token holding the state, the nonce and the PKCE
// verifier. redirectURL is the callback URL (unless configured).
func (s *Service) OIDCStart(ctx context.Context, redirectURL string) (authURL, stateCookie string, err error) {
	if s.oidc == nil {
		return "", "", fmt.Errorf("%w: %w", ErrNotFound, ErrOIDCDisabled)
	}
	p, err := s.oidc.discover(ctx)
	if err != nil {
		return "", "", err
	}
	state, nonce, verifier := randomToken(16), randomToken(16), oauth2.GenerateVerifier()
	cookie, err := s.sign(audOIDCState, claims{RegisteredClaims: jwt.RegisteredClaims{Subject: verifier}, State: state, Nonce: nonce},
		s.now().Add(oidcStateTTL))
	if err != nil {
		return "", "", err
	}
	authURL = s.oidc.oauth2(p, redirectURL).AuthCodeURL(state, oidc.Nonce(nonce), oauth2.S256ChallengeOption(verifier))
	return authURL, cookie, nil
}

// OIDCFinish completes a login at the callback: it checks state against
// the cookie, exchanges the code, verifies the ID token (signature,
// issuer, audience, expiry, nonce) and returns a session for the flowlake
// user of that identity, creating it (a viewer in no team, who sees no
// data until an admin adds them to a team) on first login.
func (s *Service) OIDCFinish(ctx context.Context, redirectURL, code, state, stateCookie string) (*Session, error) {
	if s.oidc == nil {
		return nil, fmt.Errorf("%w: %w", ErrNotFound, ErrOIDCDisabled)
	}
	c, err := s.verify(stateCookie, audOIDCState)
	if err != nil {
		return nil, fmt.Errorf("OIDC login state (start the login again): %w", err)
	}
	if state == "" || state != c.State {
		return nil, fmt.Errorf("%w: OIDC state does not match this browser's login (start the login again)", ErrUnauthorized)
	}
	if code == "" {
		return nil, fmt.Errorf("%w: OIDC callback without a code", ErrUnauthorized)
	}
	p, err := s.oidc.discover(ctx)
	if err != nil {
		return nil, err
	}
	tok, err := s.oidc.oauth2(p, redirectURL).Exchange(ctx, code, oauth2.VerifierOption(c.Subject))
	if err != nil {
		return nil, fmt.Errorf("%w: OIDC code exchange failed: %v", ErrUnauthorized, err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return nil, fmt.Errorf("%w: OIDC provider returned no ID token", ErrUnauthorized)
	}
	return s.oidcSession(ctx, p.Verifier(&oidc.Config{ClientID: s.oidc.cfg.ClientID, Now: s.now}), raw, c.Nonce)
}

// oidcIdentity is what flowlake reads from an ID token.
type oidcIdentity struct {
	Email             string `json:"email"`
	EmailVerified     *bool  `json:"email_verified"`
	PreferredUsername string `json:"preferred_username"`
}

// oidcSession verifies an ID token and returns the session of its user.
// The flowlake username is the verified email, else preferred_username,
// else the subject; a user bound to another identity is refused.
func (s *Service) oidcSession(ctx context.Context, v *oidc.IDTokenVerifier, raw, nonce string) (*Session, error) {
	idt, err := v.Verify(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("%w: OIDC ID token: %v", ErrUnauthorized, err)
	}
	if idt.Nonce != nonce {
		return nil, fmt.Errorf("%w: OIDC ID token nonce does not match the login", ErrUnauthorized)
	}
	var id oidcIdentity
	if err := idt.Claims(&id); err != nil {
		return nil, fmt.Errorf("%w: OIDC ID token claims: %v", ErrUnauthorized, err)
	}
	name := idt.Subject
	switch {
	case id.Email != "" && id.EmailVerified != nil && *id.EmailVerified:
		name = id.Email
	case id.PreferredUsername != "":
		name = id.PreferredUsername
	}
	name = strings.ToLower(name)
	if err := validName("user", name); err != nil {
		return nil, fmt.Errorf("%w: OIDC identity %q cannot be a flowlake user name", ErrForbidden, name)
	}
	subject := idt.Issuer + "|" + idt.Subject
	u, err := update(ctx, s, userKey(name), true, func(u *User) error {
		switch {
		case u.Username == "":
			*u = User{Username: name, Role: RoleViewer, Teams: []string{}, OIDCSubject: subject, CreatedAt: s.now().UTC()}
		case u.OIDCSubject == "":
			u.OIDCSubject = subject // first OIDC login of a user an admin created
		case u.OIDCSubject != subject:
			return fmt.Errorf("%w: user %q is bound to another OIDC identity", ErrForbidden, name)
		default:
			return errNoChange
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return s.session(KindUser, u.Username, u.Role, u.Teams)
}
