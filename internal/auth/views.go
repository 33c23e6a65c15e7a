package auth

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/flowlake/flowlake/internal/filter"
	"github.com/flowlake/flowlake/internal/keys"
)

func viewKey(id string) string { return keys.Config(keys.ConfigViews, id) }

// SavedView is a named filter and time window, owned by a user and
// optionally shared with one of their teams. Its document is
// config/views/<id>.json.
type SavedView struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	Q    string `json:"q"`
	// From and To are an absolute window (RFC 3339), or empty.
	From string `json:"from"`
	To   string `json:"to"`
	// Relative is a window ending now ("15m", "1h", "24h", "7d"), or
	// empty; it wins over From and To.
	Relative  string    `json:"relative"`
	Owner     string    `json:"owner"`
	Team      string    `json:"team"`
	CreatedAt time.Time `json:"created_at"`
}

// ViewInput is what CreateView and UpdateView take.
type ViewInput struct {
	Name     string `json:"name"`
	Q        string `json:"q"`
	From     string `json:"from"`
	To       string `json:"to"`
	Relative string `json:"relative"`
	Team     string `json:"team"`
}

// DefaultWindow is the window of a view that sets none.
const DefaultWindow = time.Hour

// ParseRelative parses a relative window: a Go duration (90s, 15m, 1h30m)
// or a number of days or weeks (7d, 2w).
func ParseRelative(s string) (time.Duration, error) {
	var d time.Duration
	var err error
	switch {
	case strings.HasSuffix(s, "d") || strings.HasSuffix(s, "w"):
		n, perr := strconv.Atoi(s[:len(s)-1])
		unit := 24 * time.Hour
		if strings.HasSuffix(s, "w") {
			unit *= 7
		}
		if perr != nil || n <= 0 || n > 3660 {
			err = errors.New("bad count")
		}
		d = time.Duration(n) * unit
	default:
		d, err = time.ParseDuration(s)
	}
	if err != nil || d <= 0 || d > 10*366*24*time.Hour {
		return 0, fmt.Errorf("%w: relative window %q: want a positive duration such as 15m, 1h, 24h or 7d", ErrInvalid, s)
	}
	return d, nil
}

// Window returns the time window of the view at now.
func (v *SavedView) Window(now time.Time) (from, to time.Time) {
	if v.Relative != "" {
		if d, err := ParseRelative(v.Relative); err == nil {
			return now.Add(-d), now
		}
	}
	from, _ = time.Parse(time.RFC3339Nano, v.From)
	to, _ = time.Parse(time.RFC3339Nano, v.To)
	switch {
	case from.IsZero() && to.IsZero():
		return now.Add(-DefaultWindow), now
	case to.IsZero():
		return from, now
	case from.IsZero():
		return to.Add(-DefaultWindow), to
	}
	return from, to
}

// checkView validates a view's fields for p. A malformed q is an error
// wrapping both ErrInvalid and the *filter.Error.
func checkView(in *ViewInput, p *Principal) error {
	in.Name = strings.TrimSpace(in.Name)
	switch {
	case in.Name == "":
		return fmt.Errorf("%w: a view needs a name", ErrInvalid)
	case utf8.RuneCountInString(in.Name) > 200 || !utf8.ValidString(in.Name):
		return fmt.Errorf("%w: view name longer than 200 characters or not UTF-8", ErrInvalid)
	}
	if _, err := filter.Parse(in.Q); err != nil {
		return fmt.Errorf("%w: q: %w", ErrInvalid, err)
	}
	var from, to time.Time
	for _, f := range []struct {
		name string
		v    string
		t    *time.Time
	}{{"from", in.From, &from}, {"to", in.To, &to}} {
		if f.v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, f.v)
		if err != nil {
			return fmt.Errorf("%w: %s %q is not an RFC 3339 time such as 2024-01-02T15:04:05Z", ErrInvalid, f.name, f.v)
		}
		*f.t = t
	}
	if !from.IsZero() && !to.IsZero() && !from.Before(to) {
		return fmt.Errorf("%w: from %s is not before to %s", ErrInvalid, in.From, in.To)
	}
	if in.Relative != "" {
		if _, err := ParseRelative(in.Relative); err != nil {
			return err
		}
	}
	if in.Team != "" {
		if err := validName("team", in.Team); err != nil {
			return err
		}
		if p.Role != RoleAdmin && !slices.Contains(p.Teams, in.Team) {
			return fmt.Errorf("%w: you are not a member of team %q", ErrForbidden, in.Team)
		}
	}
	return nil
}

// canSee reports whether p may read view v: its owner, the members of its
// team, and admins.
func canSee(p *Principal, v *SavedView) bool {
	switch {
	case p.Role == RoleAdmin:
		return true
	case p.Kind == KindLink:
		return p.View != nil && p.View.ID == v.ID
	case v.Owner == p.Name:
		return true
	}
	return v.Team != "" && slices.Contains(p.Teams, v.Team)
}

// canChange reports whether p may change or delete v: its owner and admins.
func canChange(p *Principal, v *SavedView) bool {
	return p.Kind != KindLink && (p.Role == RoleAdmin || v.Owner == p.Name)
}

// CreateView saves a view owned by p.
func (s *Service) CreateView(ctx context.Context, p *Principal, in ViewInput) (SavedView, error) {
	if err := checkView(&in, p); err != nil {
		return SavedView{}, err
	}
	v := SavedView{ID: randomID(), Name: in.Name, Q: in.Q, From: in.From, To: in.To, Relative: in.Relative,
		Owner: p.Name, Team: in.Team, CreatedAt: s.now().UTC()}
	if err := create(ctx, s, viewKey(v.ID), v); err != nil {
		return SavedView{}, err
	}
	return v, nil
}

// randomID returns a new random id of 22 URL-safe characters.
func randomID() string { return randomToken(16) }

// validID checks an id given in a URL.
func validID(what, id string) error {
	if id == "" || len(id) > 64 {
		return fmt.Errorf("%w: no such %s", ErrNotFound, what)
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return fmt.Errorf("%w: no such %s", ErrNotFound, what)
		}
	}
	return nil
}

// GetView returns a view p may see; one p may not see is not found.
func (s *Service) GetView(ctx context.Context, p *Principal, id string) (SavedView, error) {
	if err := validID("view", id); err != nil {
		return SavedView{}, err
	}
	v, err := load[SavedView](ctx, s, viewKey(id))
	if errors.Is(err, ErrNotFound) || err == nil && !canSee(p, &v) {
		return SavedView{}, fmt.Errorf("%w: no view %q", ErrNotFound, id)
	}
	return v, err
}

// Views returns the views p may see, newest first.
func (s *Service) Views(ctx context.Context, p *Principal) ([]SavedView, error) {
	all, err := listDocs[SavedView](ctx, s, keys.ConfigPrefix(keys.ConfigViews))
	if err != nil {
		return nil, err
	}
	out := slices.DeleteFunc(all, func(v SavedView) bool { return !canSee(p, &v) })
	slices.SortStableFunc(out, func(a, b SavedView) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return out, nil
}

// UpdateView replaces the fields of a view; only its owner and admins may.
func (s *Service) UpdateView(ctx context.Context, p *Principal, id string, in ViewInput) (SavedView, error) {
	if _, err := s.GetView(ctx, p, id); err != nil {
		return SavedView{}, err
	}
	if err := checkView(&in, p); err != nil {
		return SavedView{}, err
	}
	v, err := update(ctx, s, viewKey(id), false, func(v *SavedView) error {
		if !canChange(p, v) {
			return fmt.Errorf("%w: view %q belongs to %q", ErrForbidden, id, v.Owner)
		}
		v.Name, v.Q, v.From, v.To, v.Relative, v.Team = in.Name, in.Q, in.From, in.To, in.Relative, in.Team
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return SavedView{}, fmt.Errorf("%w: no view %q", ErrNotFound, id)
	}
	return v, err
}

// DeleteView removes a view; only its owner and admins may. Links to it
// stop working.
func (s *Service) DeleteView(ctx context.Context, p *Principal, id string) error {
	v, err := s.GetView(ctx, p, id)
	if err != nil {
		return err
	}
	if !canChange(p, &v) {
		return fmt.Errorf("%w: view %q belongs to %q", ErrForbidden, id, v.Owner)
	}
	if err := remove(ctx, s, viewKey(id)); err != nil {
		if errors.Is(err, ErrNotFound) {
			return fmt.Errorf("%w: no view %q", ErrNotFound, id)
		}
		return err
	}
	return nil
}

// Point is a node's position on the map.
type Point struct {
	X float64 `json:"x"`
	Y float64 `json:"y"`
}

// Positions are map positions by node id.
type Positions map[string]Point

// positionsDoc is the stored form.
type positionsDoc struct {
	Positions Positions `json:"positions"`
	UpdatedBy string    `json:"updated_by"`
	UpdatedAt time.Time `json:"updated_at"`
}

// MaxPositions bounds the nodes of one positions map.
const MaxPositions = 20000

// positionsKey resolves the positions document of p for scope "user" or
// "team" (team: the given team, or p's first).
func positionsKey(p *Principal, scope, team string) (string, error) {
	switch scope {
	case "", "user":
		if p.Kind == KindLink {
			return "", fmt.Errorf("%w: a public link has no positions of its own", ErrForbidden)
		}
		return keys.Config(keys.ConfigUserPositions, p.Kind+"-"+p.Name), nil
	case "team":
		if team == "" {
			if len(p.Teams) == 0 {
				return "", fmt.Errorf("%w: scope=team: you are in no team", ErrInvalid)
			}
			team = p.Teams[0]
		}
		if err := validName("team", team); err != nil {
			return "", err
		}
		if p.Role != RoleAdmin && !slices.Contains(p.Teams, team) {
			return "", fmt.Errorf("%w: you are not a member of team %q", ErrForbidden, team)
		}
		return keys.Config(keys.ConfigTeamPositions, team), nil
	}
	return "", fmt.Errorf("%w: scope %q: want user or team", ErrInvalid, scope)
}

// GetPositions returns the map positions of p (scope "user") or of a team
// (scope "team"); none saved yet is an empty map.
func (s *Service) GetPositions(ctx context.Context, p *Principal, scope, team string) (Positions, error) {
	key, err := positionsKey(p, scope, team)
	if err != nil {
		return nil, err
	}
	doc, err := load[positionsDoc](ctx, s, key)
	if errors.Is(err, ErrNotFound) || doc.Positions == nil {
		return Positions{}, nil
	}
	return doc.Positions, err
}

// SetPositions replaces the map positions of p or a team.
func (s *Service) SetPositions(ctx context.Context, p *Principal, scope, team string, pos Positions) (Positions, error) {
	key, err := positionsKey(p, scope, team)
	if err != nil {
		return nil, err
	}
	if len(pos) > MaxPositions {
		return nil, fmt.Errorf("%w: %d positions, at most %d", ErrInvalid, len(pos), MaxPositions)
	}
	for id, pt := range pos {
		if id == "" || len(id) > 256 {
			return nil, fmt.Errorf("%w: node id %q: want 1-256 bytes", ErrInvalid, id)
		}
		if math.IsNaN(pt.X) || math.IsInf(pt.X, 0) || math.IsNaN(pt.Y) || math.IsInf(pt.Y, 0) {
			return nil, fmt.Errorf("%w: node %q: x and y must be finite numbers", ErrInvalid, id)
		}
	}
	if pos == nil {
		pos = Positions{}
	}
	doc, err := update(ctx, s, key, true, func(d *positionsDoc) error {
		d.Positions = pos
		d.UpdatedBy = p.Name
		d.UpdatedAt = s.now().UTC()
		return nil
	})
	return doc.Positions, err
}
