package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/flowlake/flowlake/internal/keys"
)

func linkKey(id string) string { return keys.Config(keys.ConfigLinks, id) }

// Limits of public links.
const (
	MinLinkLifetime = time.Minute
	MaxLinkLifetime = 90 * 24 * time.Hour
	// MaxLinkAttempts is how many wrong one-time passwords lock a link.
	MaxLinkAttempts = 10
)

// Link is a public link: a signed, expiring URL that shows one saved view
// with the data its creator may see, to anyone who has it, optionally
// only after a one-time password. Its document is config/links/<id>.json;
// deleting it revokes the link and the tokens it gave.
type Link struct {
	ID        string    `json:"id"`
	ViewID    string    `json:"view_id"`
	Owner     string    `json:"owner"`      // who created it
	OwnerKind string    `json:"owner_kind"` // KindUser or KindService
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	// PasswordHash is the argon2id hash of the one-time password, if any.
	PasswordHash string `json:"password_hash,omitempty"`
	// Used is set when the one-time password was accepted: it is not
	// accepted again.
	Used           bool       `json:"used"`
	UsedAt         *time.Time `json:"used_at,omitempty"`
	FailedAttempts int        `json:"failed_attempts"`
}

// LinkRecord is a link as the API lists it.
type LinkRecord struct {
	ID          string    `json:"id"`
	ViewID      string    `json:"view_id"`
	Owner       string    `json:"owner"`
	CreatedAt   time.Time `json:"created_at"`
	ExpiresAt   time.Time `json:"expires_at"`
	HasPassword bool      `json:"has_password"`
	Used        bool      `json:"used"`
}

// Record returns the link as the API lists it.
func (l Link) Record() LinkRecord {
	return LinkRecord{ID: l.ID, ViewID: l.ViewID, Owner: l.Owner, CreatedAt: l.CreatedAt, ExpiresAt: l.ExpiresAt,
		HasPassword: l.PasswordHash != "", Used: l.Used}
}

// CreateLink makes a public link to view viewID, which p must be able to
// see, valid for lifetime, guarded by a one-time password unless password
// is empty. It returns the link and the token of its URL.
func (s *Service) CreateLink(ctx context.Context, p *Principal, viewID string, lifetime time.Duration, password string) (Link, string, error) {
	if p.Kind == KindLink {
		return Link{}, "", fmt.Errorf("%w: a public link cannot make links", ErrForbidden)
	}
	if lifetime < MinLinkLifetime || lifetime > MaxLinkLifetime {
		return Link{}, "", fmt.Errorf("%w: expires_in %v: want between %v and %v", ErrInvalid, lifetime, MinLinkLifetime, MaxLinkLifetime)
	}
	if _, err := s.GetView(ctx, p, viewID); err != nil {
		if errors.Is(err, ErrNotFound) {
			return Link{}, "", fmt.Errorf("%w: view_id %q: no such view", ErrInvalid, viewID)
		}
		return Link{}, "", err
	}
	now := s.now().UTC()
	l := Link{ID: randomID(), ViewID: viewID, Owner: p.Name, OwnerKind: p.Kind, CreatedAt: now,
		ExpiresAt: now.Add(lifetime).Truncate(time.Second)}
	if password != "" {
		if err := checkPassword(password); err != nil {
			return Link{}, "", err
		}
		var err error
		if l.PasswordHash, err = hashSecret(ctx, password); err != nil {
			return Link{}, "", err
		}
	}
	if err := create(ctx, s, linkKey(l.ID), l); err != nil {
		return Link{}, "", err
	}
	tok, err := s.sign(audLink, claims{RegisteredClaims: jwt.RegisteredClaims{Subject: l.ID}, Kind: KindLink, View: viewID}, l.ExpiresAt)
	if err != nil {
		return Link{}, "", err
	}
	return l, tok, nil
}

// Links returns the links p made (admins: all), newest first.
func (s *Service) Links(ctx context.Context, p *Principal) ([]Link, error) {
	all, err := listDocs[Link](ctx, s, keys.ConfigPrefix(keys.ConfigLinks))
	if err != nil {
		return nil, err
	}
	out := slices.DeleteFunc(all, func(l Link) bool {
		return p.Role != RoleAdmin && (l.Owner != p.Name || l.OwnerKind != p.Kind)
	})
	slices.SortStableFunc(out, func(a, b Link) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return out, nil
}

// DeleteLink revokes a link p made (admins: any).
func (s *Service) DeleteLink(ctx context.Context, p *Principal, id string) error {
	if err := validID("link", id); err != nil {
		return err
	}
	l, err := load[Link](ctx, s, linkKey(id))
	if errors.Is(err, ErrNotFound) || err == nil && p.Role != RoleAdmin && (l.Owner != p.Name || l.OwnerKind != p.Kind) {
		return fmt.Errorf("%w: no link %q", ErrNotFound, id)
	}
	if err != nil {
		return err
	}
	return remove(ctx, s, linkKey(id))
}

// ErrPasswordRequired is returned (wrapped, with ErrUnauthorized) by
// OpenLink for a link with a one-time password when none is given.
var ErrPasswordRequired = errors.New("this link needs its one-time password")

// OpenLink opens a public link from the token of its URL: it returns the
// view and an access token scoped to it (valid for the token lifetime, at
// most until the link expires). A link with a one-time password needs
// password, which is accepted once: of concurrent attempts with the right
// password one succeeds. After MaxLinkAttempts wrong passwords the link is
// locked.
func (s *Service) OpenLink(ctx context.Context, urlToken, password string) (SavedView, *Session, error) {
	c, err := s.verify(urlToken, audLink)
	if err != nil {
		return SavedView{}, nil, err
	}
	if c.Kind != KindLink || validID("link", c.Subject) != nil {
		return SavedView{}, nil, fmt.Errorf("%w: not a link token", ErrUnauthorized)
	}
	l, _, err := read[Link](ctx, s.st, linkKey(c.Subject))
	if errors.Is(err, ErrNotFound) {
		return SavedView{}, nil, fmt.Errorf("%w: this link was revoked", ErrUnauthorized)
	}
	if err != nil {
		return SavedView{}, nil, err
	}
	if !s.now().Before(l.ExpiresAt) {
		return SavedView{}, nil, fmt.Errorf("%w: this link expired", ErrUnauthorized)
	}
	if l.PasswordHash != "" {
		if err := s.useLinkPassword(ctx, &l, password); err != nil {
			return SavedView{}, nil, err
		}
	}
	p, err := s.linkPrincipalOf(ctx, &l)
	if err != nil {
		return SavedView{}, nil, err
	}
	exp := s.now().Add(s.tokenTTL)
	if l.ExpiresAt.Before(exp) {
		exp = l.ExpiresAt
	}
	tok, err := s.sign(audAPI, claims{RegisteredClaims: jwt.RegisteredClaims{Subject: l.ID}, Kind: KindLink, Role: RoleViewer, View: l.ViewID}, exp)
	if err != nil {
		return SavedView{}, nil, err
	}
	return *p.View, &Session{Token: tok, ExpiresAt: exp.UTC().Truncate(time.Second), User: p.Info()}, nil
}

// useLinkPassword checks and consumes the one-time password of l.
func (s *Service) useLinkPassword(ctx context.Context, l *Link, password string) error {
	if password == "" {
		return fmt.Errorf("%w: %w", ErrUnauthorized, ErrPasswordRequired)
	}
	if l.Used {
		return fmt.Errorf("%w: the one-time password of this link was used already", ErrUnauthorized)
	}
	if l.FailedAttempts >= MaxLinkAttempts {
		return fmt.Errorf("%w: this link is locked after %d wrong passwords", ErrUnauthorized, MaxLinkAttempts)
	}
	ok, err := checkSecret(ctx, l.PasswordHash, password)
	if err != nil {
		return fmt.Errorf("link %s: %w", l.ID, err)
	}
	errUsed := fmt.Errorf("%w: the one-time password of this link was used already", ErrUnauthorized)
	if !ok {
		_, err := update(ctx, s, linkKey(l.ID), false, func(d *Link) error {
			d.FailedAttempts++
			return nil
		})
		if err != nil && !errors.Is(err, ErrNotFound) {
			return err
		}
		return fmt.Errorf("%w: wrong password", ErrUnauthorized)
	}
	// Consume it: the conditional update lets one of concurrent users win.
	_, err = update(ctx, s, linkKey(l.ID), false, func(d *Link) error {
		if d.Used {
			return errUsed
		}
		if d.PasswordHash != l.PasswordHash {
			return fmt.Errorf("%w: the link changed", ErrUnauthorized)
		}
		now := s.now().UTC()
		d.Used, d.UsedAt = true, &now
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return fmt.Errorf("%w: this link was revoked", ErrUnauthorized)
	}
	return err
}

// linkPrincipal is the principal of an access token given by OpenLink.
func (s *Service) linkPrincipal(ctx context.Context, c *claims) (*Principal, error) {
	if validID("link", c.Subject) != nil {
		return nil, fmt.Errorf("%w: malformed link token", ErrUnauthorized)
	}
	l, err := load[Link](ctx, s, linkKey(c.Subject))
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: this link was revoked", ErrUnauthorized)
	}
	if err != nil {
		return nil, err
	}
	if !s.now().Before(l.ExpiresAt) {
		return nil, fmt.Errorf("%w: this link expired", ErrUnauthorized)
	}
	if c.View != l.ViewID {
		return nil, fmt.Errorf("%w: token for another view", ErrUnauthorized)
	}
	return s.linkPrincipalOf(ctx, &l)
}

// linkPrincipalOf is the principal of a link visitor: a viewer of the
// link's view, who sees what the link's creator sees now (a creator who
// left a team, or was deleted, takes the link's sight along).
func (s *Service) linkPrincipalOf(ctx context.Context, l *Link) (*Principal, error) {
	v, err := load[SavedView](ctx, s, viewKey(l.ViewID))
	if errors.Is(err, ErrNotFound) {
		return nil, fmt.Errorf("%w: the view of this link was deleted", ErrUnauthorized)
	}
	if err != nil {
		return nil, err
	}
	var role Role
	var teams []string
	switch l.OwnerKind {
	case KindService:
		a, err := load[ServiceAccount](ctx, s, serviceKey(l.Owner))
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				return nil, fmt.Errorf("%w: the creator of this link no longer exists", ErrUnauthorized)
			}
			return nil, err
		}
		role, teams = a.Role, a.Teams
	default:
		u, err := load[User](ctx, s, userKey(l.Owner))
		if err != nil {
			if errors.Is(err, ErrNotFound) {
				return nil, fmt.Errorf("%w: the creator of this link no longer exists", ErrUnauthorized)
			}
			return nil, err
		}
		role, teams = u.Role, u.Teams
	}
	if !role.AtLeast(RoleAnalyst) {
		return nil, fmt.Errorf("%w: the creator of this link may no longer share views", ErrUnauthorized)
	}
	scope, err := s.scope(ctx, role, teams)
	if err != nil {
		return nil, err
	}
	lc := *l
	return &Principal{Kind: KindLink, Name: l.ID, Role: RoleViewer, Teams: []string{}, Scope: scope, Link: &lc, View: &v}, nil
}
