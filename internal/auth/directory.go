package auth

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/flowlake/flowlake/internal/keys"
)

func userKey(name string) string    { return keys.Config(keys.ConfigUsers, name) }
func teamKey(name string) string    { return keys.Config(keys.ConfigTeams, name) }
func serviceKey(name string) string { return keys.Config(keys.ConfigServiceAccounts, name) }

// User is a person who logs in. Its document is config/users/<name>.json.
type User struct {
	Username string   `json:"username"`
	Role     Role     `json:"role"`
	Teams    []string `json:"teams"`
	// PasswordHash is the argon2id hash of the password; empty for users
	// who log in only through OIDC.
	PasswordHash string `json:"password_hash,omitempty"`
	// OIDCSubject is the issuer and subject ("iss|sub") of the OIDC
	// identity bound to the user, if any.
	OIDCSubject string    `json:"oidc_subject,omitempty"`
	CreatedAt   time.Time `json:"created_at"`
	// TokensAfter refuses tokens issued before it (set when the password
	// changes).
	TokensAfter time.Time `json:"tokens_after,omitzero"`
}

// UserRecord is a user as the admin API shows it: no hash.
type UserRecord struct {
	Username  string    `json:"username"`
	Role      Role      `json:"role"`
	Teams     []string  `json:"teams"`
	Password  bool      `json:"password"` // has a password (else OIDC only)
	OIDC      bool      `json:"oidc"`     // bound to an OIDC identity
	CreatedAt time.Time `json:"created_at"`
}

// Record returns the user as the admin API shows it.
func (u User) Record() UserRecord {
	return UserRecord{Username: u.Username, Role: u.Role, Teams: sortedSet(u.Teams),
		Password: u.PasswordHash != "", OIDC: u.OIDCSubject != "", CreatedAt: u.CreatedAt}
}

// Team is a group of users that owns agents: its members see the rows of
// those agents. Its document is config/teams/<name>.json.
type Team struct {
	Name      string    `json:"name"`
	Agents    []string  `json:"agents"`
	CreatedAt time.Time `json:"created_at"`
}

// ServiceAccount is a non-person caller with an API key. Its document is
// config/service-accounts/<name>.json.
type ServiceAccount struct {
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	Teams     []string  `json:"teams"`
	KeyHash   string    `json:"key_hash,omitempty"` // argon2id of the key's secret part
	CreatedAt time.Time `json:"created_at"`
}

// Record returns the account without its key hash.
func (a ServiceAccount) Record() ServiceAccount {
	a.KeyHash = ""
	a.Teams = sortedSet(a.Teams)
	return a
}

// AdminUser is the name of the first administrator.
const AdminUser = "admin"

// Bootstrap creates the first administrator, named admin, unless it
// exists: with password, or, when password is empty, with a generated one
// that it returns (to be shown once). Of processes starting at once only
// one creates it. created reports whether this call did.
func (s *Service) Bootstrap(ctx context.Context, password string) (generated string, created bool, err error) {
	if _, _, err := read[User](ctx, s.st, userKey(AdminUser)); err == nil {
		return "", false, nil
	} else if !errors.Is(err, ErrNotFound) {
		return "", false, err
	}
	if password == "" {
		generated = GeneratePassword()
		password = generated
	} else if err := checkPassword(password); err != nil {
		return "", false, fmt.Errorf("admin password: %w", err)
	}
	hash, err := hashSecret(ctx, password)
	if err != nil {
		return "", false, err
	}
	u := User{Username: AdminUser, Role: RoleAdmin, Teams: []string{}, PasswordHash: hash, CreatedAt: s.now().UTC()}
	if err := create(ctx, s, userKey(AdminUser), u); err != nil {
		if errors.Is(err, ErrConflict) {
			return "", false, nil // another process was first
		}
		return "", false, err
	}
	return generated, true, nil
}

// Login checks a user's password and returns a session. Unknown users and
// wrong passwords get the same error and take the same time. client is
// the caller's address as the HTTP layer knows it (host:port or an IP;
// see [ClientKey]; "" exempts the attempt from the address limit). Failed
// attempts are throttled per username and per address ([LoginLimits]):
// beyond the limits an attempt is refused with a *[ThrottledError]
// (wrapping [ErrThrottled]) before its password is checked.
func (s *Service) Login(ctx context.Context, username, password, client string) (*Session, error) {
	fail := fmt.Errorf("%w: wrong username or password", ErrUnauthorized)
	if username == "" || password == "" {
		return nil, fmt.Errorf("%w: username and password are required", ErrUnauthorized)
	}
	at, err := s.throttle.begin(username, ClientKey(client))
	if err != nil {
		return nil, err
	}
	outcome := aborted
	defer func() { at.done(outcome) }()
	var u User
	if validName("user", username) == nil {
		u, _, err = read[User](ctx, s.st, userKey(username))
	} else {
		err = ErrNotFound
	}
	if errors.Is(err, ErrNotFound) || err == nil && u.PasswordHash == "" {
		_, _ = checkSecret(ctx, dummyHash, password)
		outcome = failed
		return nil, fail
	}
	if err != nil {
		return nil, err
	}
	ok, err := checkSecret(ctx, u.PasswordHash, password)
	if err != nil {
		return nil, fmt.Errorf("user %q: %w", username, err)
	}
	if !ok {
		outcome = failed
		return nil, fail
	}
	outcome = succeeded
	return s.session(KindUser, u.Username, u.Role, u.Teams)
}

// NewUser is what CreateUser takes.
type NewUser struct {
	Username string   `json:"username"`
	Password string   `json:"password"`
	Role     Role     `json:"role"`
	Teams    []string `json:"teams"`
}

// checkTeams validates a list of team names: each must exist.
func (s *Service) checkTeams(ctx context.Context, teams []string) ([]string, error) {
	teams = sortedSet(teams)
	for _, t := range teams {
		if err := validName("team", t); err != nil {
			return nil, err
		}
		if _, err := load[Team](ctx, s, teamKey(t)); err != nil {
			if errors.Is(err, ErrNotFound) {
				return nil, fmt.Errorf("%w: team %q does not exist", ErrInvalid, t)
			}
			return nil, err
		}
	}
	return teams, nil
}

// CreateUser adds a user with a password.
func (s *Service) CreateUser(ctx context.Context, in NewUser) (User, error) {
	if err := validName("user", in.Username); err != nil {
		return User{}, err
	}
	if in.Role == "" {
		in.Role = RoleViewer
	}
	if err := checkRole(in.Role); err != nil {
		return User{}, err
	}
	if err := checkPassword(in.Password); err != nil {
		return User{}, err
	}
	teams, err := s.checkTeams(ctx, in.Teams)
	if err != nil {
		return User{}, err
	}
	hash, err := hashSecret(ctx, in.Password)
	if err != nil {
		return User{}, err
	}
	u := User{Username: in.Username, Role: in.Role, Teams: teams, PasswordHash: hash, CreatedAt: s.now().UTC()}
	if err := create(ctx, s, userKey(u.Username), u); err != nil {
		if errors.Is(err, ErrConflict) {
			return User{}, fmt.Errorf("user %q %w", u.Username, ErrConflict)
		}
		return User{}, err
	}
	return u, nil
}

// UserPatch changes a user: the fields that are not nil.
type UserPatch struct {
	Password *string   `json:"password"`
	Role     *Role     `json:"role"`
	Teams    *[]string `json:"teams"`
}

// UpdateUser changes a user. Changing the password refuses the tokens
// issued before. The last administrator cannot lose the role.
func (s *Service) UpdateUser(ctx context.Context, name string, p UserPatch) (User, error) {
	if err := validName("user", name); err != nil {
		return User{}, err
	}
	var hash string
	if p.Password != nil {
		if err := checkPassword(*p.Password); err != nil {
			return User{}, err
		}
		var err error
		if hash, err = hashSecret(ctx, *p.Password); err != nil {
			return User{}, err
		}
	}
	if p.Role != nil {
		if err := checkRole(*p.Role); err != nil {
			return User{}, err
		}
		if *p.Role != RoleAdmin {
			if err := s.keepAnAdmin(ctx, name); err != nil {
				return User{}, err
			}
		}
	}
	var teams []string
	if p.Teams != nil {
		var err error
		if teams, err = s.checkTeams(ctx, *p.Teams); err != nil {
			return User{}, err
		}
	}
	u, err := update(ctx, s, userKey(name), false, func(u *User) error {
		if p.Password != nil {
			u.PasswordHash = hash
			u.TokensAfter = s.now().UTC()
		}
		if p.Role != nil {
			u.Role = *p.Role
		}
		if p.Teams != nil {
			u.Teams = teams
		}
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return User{}, fmt.Errorf("%w: no user %q", ErrNotFound, name)
	}
	return u, err
}

// keepAnAdmin fails when name is the only administrator.
func (s *Service) keepAnAdmin(ctx context.Context, name string) error {
	users, err := s.Users(ctx)
	if err != nil {
		return err
	}
	others := 0
	isAdmin := false
	for _, u := range users {
		switch {
		case u.Role != RoleAdmin:
		case u.Username == name:
			isAdmin = true
		default:
			others++
		}
	}
	if isAdmin && others == 0 {
		return fmt.Errorf("%w: %q is the last admin", ErrInvalid, name)
	}
	return nil
}

// DeleteUser removes a user; their tokens stop working. The last
// administrator cannot be removed.
func (s *Service) DeleteUser(ctx context.Context, name string) error {
	if err := validName("user", name); err != nil {
		return err
	}
	if err := s.keepAnAdmin(ctx, name); err != nil {
		return err
	}
	if err := remove(ctx, s, userKey(name)); err != nil {
		if errors.Is(err, ErrNotFound) {
			return fmt.Errorf("%w: no user %q", ErrNotFound, name)
		}
		return err
	}
	return nil
}

// GetUser returns one user.
func (s *Service) GetUser(ctx context.Context, name string) (User, error) {
	if err := validName("user", name); err != nil {
		return User{}, err
	}
	u, err := load[User](ctx, s, userKey(name))
	if errors.Is(err, ErrNotFound) {
		return User{}, fmt.Errorf("%w: no user %q", ErrNotFound, name)
	}
	return u, err
}

// Users returns every user, by name.
func (s *Service) Users(ctx context.Context) ([]User, error) {
	return listDocs[User](ctx, s, keys.ConfigPrefix(keys.ConfigUsers))
}

// checkAgents validates a list of agent ids.
func checkAgents(agents []string) ([]string, error) {
	agents = sortedSet(agents)
	for _, a := range agents {
		if err := keys.ValidAgent(a); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	}
	return agents, nil
}

// CreateTeam adds a team owning agents.
func (s *Service) CreateTeam(ctx context.Context, name string, agents []string) (Team, error) {
	if err := validName("team", name); err != nil {
		return Team{}, err
	}
	agents, err := checkAgents(agents)
	if err != nil {
		return Team{}, err
	}
	t := Team{Name: name, Agents: agents, CreatedAt: s.now().UTC()}
	if err := create(ctx, s, teamKey(name), t); err != nil {
		if errors.Is(err, ErrConflict) {
			return Team{}, fmt.Errorf("team %q %w", name, ErrConflict)
		}
		return Team{}, err
	}
	return t, nil
}

// SetTeamAgents replaces the agents a team owns.
func (s *Service) SetTeamAgents(ctx context.Context, name string, agents []string) (Team, error) {
	if err := validName("team", name); err != nil {
		return Team{}, err
	}
	agents, err := checkAgents(agents)
	if err != nil {
		return Team{}, err
	}
	t, err := update(ctx, s, teamKey(name), false, func(t *Team) error {
		t.Agents = agents
		return nil
	})
	if errors.Is(err, ErrNotFound) {
		return Team{}, fmt.Errorf("%w: no team %q", ErrNotFound, name)
	}
	return t, err
}

// DeleteTeam removes a team. Its members lose sight of its agents; their
// membership is removed too.
func (s *Service) DeleteTeam(ctx context.Context, name string) error {
	if err := validName("team", name); err != nil {
		return err
	}
	if err := remove(ctx, s, teamKey(name)); err != nil {
		if errors.Is(err, ErrNotFound) {
			return fmt.Errorf("%w: no team %q", ErrNotFound, name)
		}
		return err
	}
	// Drop the membership, so that a team created later with the same
	// name does not inherit the members. (A member whose update fails
	// sees nothing of the team meanwhile: a missing team owns no agent.)
	users, err := s.Users(ctx)
	if err != nil {
		return err
	}
	var errs []error
	for _, u := range users {
		if !slices.Contains(u.Teams, name) {
			continue
		}
		_, err := update(ctx, s, userKey(u.Username), false, func(u *User) error {
			u.Teams = slices.DeleteFunc(slices.Clone(u.Teams), func(t string) bool { return t == name })
			return nil
		})
		if err != nil && !errors.Is(err, ErrNotFound) {
			errs = append(errs, err)
		}
	}
	accounts, err := s.ServiceAccounts(ctx)
	if err != nil {
		return err
	}
	for _, a := range accounts {
		if !slices.Contains(a.Teams, name) {
			continue
		}
		_, err := update(ctx, s, serviceKey(a.Name), false, func(a *ServiceAccount) error {
			a.Teams = slices.DeleteFunc(slices.Clone(a.Teams), func(t string) bool { return t == name })
			return nil
		})
		if err != nil && !errors.Is(err, ErrNotFound) {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("team %q deleted, but not from all its members: %w", name, err)
	}
	return nil
}

// Teams returns every team, by name.
func (s *Service) Teams(ctx context.Context) ([]Team, error) {
	return listDocs[Team](ctx, s, keys.ConfigPrefix(keys.ConfigTeams))
}

// apiKeyPrefix starts every API key: flk_<account>.<secret>.
const apiKeyPrefix = "flk_"

// CreateServiceAccount adds a service account and returns its API key,
// which is shown this once (only its hash is kept).
func (s *Service) CreateServiceAccount(ctx context.Context, name string, role Role, teams []string) (ServiceAccount, string, error) {
	if err := validName("service account", name); err != nil {
		return ServiceAccount{}, "", err
	}
	if role == "" {
		role = RoleViewer
	}
	if err := checkRole(role); err != nil {
		return ServiceAccount{}, "", err
	}
	teams, err := s.checkTeams(ctx, teams)
	if err != nil {
		return ServiceAccount{}, "", err
	}
	secret := randomToken(32)
	hash, err := hashSecret(ctx, secret)
	if err != nil {
		return ServiceAccount{}, "", err
	}
	a := ServiceAccount{Name: name, Role: role, Teams: teams, KeyHash: hash, CreatedAt: s.now().UTC()}
	if err := create(ctx, s, serviceKey(name), a); err != nil {
		if errors.Is(err, ErrConflict) {
			return ServiceAccount{}, "", fmt.Errorf("service account %q %w", name, ErrConflict)
		}
		return ServiceAccount{}, "", err
	}
	return a.Record(), apiKeyPrefix + name + "." + secret, nil
}

// DeleteServiceAccount removes a service account; its key and tokens stop
// working.
func (s *Service) DeleteServiceAccount(ctx context.Context, name string) error {
	if err := validName("service account", name); err != nil {
		return err
	}
	if err := remove(ctx, s, serviceKey(name)); err != nil {
		if errors.Is(err, ErrNotFound) {
			return fmt.Errorf("%w: no service account %q", ErrNotFound, name)
		}
		return err
	}
	return nil
}

// ServiceAccounts returns every service account, by name, with hashes.
func (s *Service) ServiceAccounts(ctx context.Context) ([]ServiceAccount, error) {
	return listDocs[ServiceAccount](ctx, s, keys.ConfigPrefix(keys.ConfigServiceAccounts))
}

// ExchangeAPIKey checks a service account's API key and returns a session.
func (s *Service) ExchangeAPIKey(ctx context.Context, apiKey string) (*Session, error) {
	fail := fmt.Errorf("%w: invalid API key", ErrUnauthorized)
	rest, ok := strings.CutPrefix(apiKey, apiKeyPrefix)
	i := strings.LastIndexByte(rest, '.')
	if !ok || i <= 0 || i == len(rest)-1 {
		return nil, fmt.Errorf("%w: malformed API key (want flk_<account>.<secret>)", ErrUnauthorized)
	}
	name, secret := rest[:i], rest[i+1:]
	if validName("service account", name) != nil {
		return nil, fmt.Errorf("%w: malformed API key (want flk_<account>.<secret>)", ErrUnauthorized)
	}
	a, _, err := read[ServiceAccount](ctx, s.st, serviceKey(name))
	if errors.Is(err, ErrNotFound) {
		_, _ = checkSecret(ctx, dummyHash, secret)
		return nil, fail
	}
	if err != nil {
		return nil, err
	}
	ok, err = checkSecret(ctx, a.KeyHash, secret)
	if err != nil {
		return nil, fmt.Errorf("service account %q: %w", name, err)
	}
	if !ok {
		return nil, fail
	}
	return s.session(KindService, a.Name, a.Role, a.Teams)
}
