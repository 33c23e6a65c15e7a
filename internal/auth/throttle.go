package auth

import (
	"container/list"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"sync"
	"time"
)

// ErrThrottled: too many failed logins for a username or from a client
// address (HTTP 429). Errors wrapping it are *ThrottledError, which says
// when to retry.
var ErrThrottled = errors.New("too many failed logins")

// ThrottledError refuses a login attempt without checking its password.
type ThrottledError struct {
	// Reason is "for this username" or "from this address".
	Reason string
	// Until is when an attempt is allowed again.
	Until time.Time
	// RetryAfter is Until less the time of the attempt.
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("%v %s: try again in %s (after %s)", ErrThrottled, e.Reason,
		e.RetryAfter.Round(time.Second), e.Until.UTC().Format(time.RFC3339))
}

func (e *ThrottledError) Unwrap() error { return ErrThrottled }

// Defaults of LoginLimits.
const (
	DefaultMaxFailuresPerUser   = 5
	DefaultMaxFailuresPerClient = 20
	DefaultFailureWindow        = 15 * time.Minute
	DefaultMaxTrackedKeys       = 10_000
)

// LoginLimits configures the throttle of password logins (see
// [Service.Login]). Zero values pick the defaults; a negative limit
// disables that limit.
type LoginLimits struct {
	// MaxFailuresPerUser is how many failed logins for one username
	// (known or not) are allowed within Window (default 5).
	MaxFailuresPerUser int
	// MaxFailuresPerClient is how many failed logins from one client
	// address (an IPv4 address, or the /64 of an IPv6 one) are allowed
	// within Window, whatever the usernames (default 20).
	MaxFailuresPerClient int
	// Window is how long failures are counted from the first one; when it
	// has passed, the count starts again (default 15 min).
	Window time.Duration
	// MaxKeys caps the usernames and the addresses tracked, each (default
	// 10 000); beyond it, the least recently failed one is forgotten.
	MaxKeys int
}

func (l LoginLimits) withDefaults() LoginLimits {
	if l.MaxFailuresPerUser == 0 {
		l.MaxFailuresPerUser = DefaultMaxFailuresPerUser
	}
	if l.MaxFailuresPerClient == 0 {
		l.MaxFailuresPerClient = DefaultMaxFailuresPerClient
	}
	if l.Window <= 0 {
		l.Window = DefaultFailureWindow
	}
	if l.MaxKeys <= 0 {
		l.MaxKeys = DefaultMaxTrackedKeys
	}
	return l
}

// maxUserKey bounds the bytes of a username kept as a key: longer names
// are never valid (validName), so sharing a counter among them is harmless.
const maxUserKey = 64

// ClientKey returns the key of the address limit for a request's remote
// address (host:port, or a bare IP as a Lambda event's sourceIp): the IPv4
// address, or the /64 of an IPv6 address (one host usually holds a whole
// /64). It returns "" for an address it cannot parse, which the address
// limit then does not apply to.
func ClientKey(remoteAddr string) string {
	host := remoteAddr
	if h, _, err := net.SplitHostPort(remoteAddr); err == nil {
		host = h
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return ""
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.String()
	}
	return a.String()
}

// counter is the failures of one key.
type counter struct {
	key   string
	n     int       // failures (and attempts in flight) since first
	first time.Time // start of the window
	elem  *list.Element
}

// counters is a bounded set of counters, least recently failed first.
type counters struct {
	max   int
	limit int
	m     map[string]*counter
	order *list.List // of *counter, least recently failed at the front
}

func newCounters(limit, max int) *counters {
	return &counters{max: max, limit: limit, m: map[string]*counter{}, order: list.New()}
}

// get returns the live counter of key, nil if none (an expired one is
// dropped).
func (c *counters) get(key string, now time.Time, window time.Duration) *counter {
	k := c.m[key]
	if k != nil && !now.Before(k.first.Add(window)) {
		c.drop(k)
		return nil
	}
	return k
}

func (c *counters) drop(k *counter) {
	c.order.Remove(k.elem)
	delete(c.m, k.key)
}

// add counts one failure (or attempt in flight) of key.
func (c *counters) add(key string, now time.Time, window time.Duration) {
	k := c.get(key, now, window)
	if k == nil {
		for len(c.m) >= c.max {
			c.drop(c.order.Front().Value.(*counter))
		}
		k = &counter{key: key, first: now}
		k.elem = c.order.PushBack(k)
		c.m[key] = k
	}
	k.n++
	c.order.MoveToBack(k.elem)
}

// undo takes back one attempt counted by add.
func (c *counters) undo(key string, now time.Time, window time.Duration) {
	if k := c.get(key, now, window); k != nil {
		if k.n--; k.n <= 0 {
			c.drop(k)
		}
	}
}

// throttle limits failed logins per username and per client address
// within a window, in this process only.
type throttle struct {
	lim  LoginLimits
	now  func() time.Time
	mu   sync.Mutex
	user *counters
	addr *counters
}

func newThrottle(lim LoginLimits, now func() time.Time) *throttle {
	lim = lim.withDefaults()
	return &throttle{lim: lim, now: now,
		user: newCounters(lim.MaxFailuresPerUser, lim.MaxKeys), addr: newCounters(lim.MaxFailuresPerClient, lim.MaxKeys)}
}

// attempt is one login attempt let through the throttle.
type attempt struct {
	t          *throttle
	user, addr string // keys; "" when that limit does not apply
}

// begin lets an attempt for username from client (a ClientKey) through,
// counting it as a failure until done says otherwise, or refuses it with
// a *ThrottledError. Counting up front means that concurrent attempts
// cannot overrun a limit.
func (t *throttle) begin(username, client string) (*attempt, error) {
	if len(username) > maxUserKey {
		username = username[:maxUserKey]
	}
	a := &attempt{t: t}
	if t.lim.MaxFailuresPerUser > 0 {
		a.user = username
	}
	if t.lim.MaxFailuresPerClient > 0 {
		a.addr = client
	}
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	w := t.lim.Window
	var refuse *ThrottledError
	check := func(c *counters, key, reason string) {
		if key == "" {
			return
		}
		if k := c.get(key, now, w); k != nil && k.n >= c.limit {
			until := k.first.Add(w)
			if refuse == nil || until.After(refuse.Until) {
				refuse = &ThrottledError{Reason: reason, Until: until, RetryAfter: until.Sub(now)}
			}
		}
	}
	check(t.user, a.user, "for this username")
	check(t.addr, a.addr, "from this address")
	if refuse != nil {
		return nil, refuse
	}
	if a.user != "" {
		t.user.add(a.user, now, w)
	}
	if a.addr != "" {
		t.addr.add(a.addr, now, w)
	}
	return a, nil
}

// Outcomes of an attempt.
const (
	failed    = iota // a wrong password or unknown user: stays counted
	succeeded        // resets the username's count, takes back the address's
	aborted          // no verdict (a store error): taken back
)

// done settles the attempt.
func (a *attempt) done(outcome int) {
	if outcome == failed {
		return
	}
	t := a.t
	now := t.now()
	t.mu.Lock()
	defer t.mu.Unlock()
	if a.user != "" {
		if k := t.user.get(a.user, now, t.lim.Window); k != nil {
			if outcome == succeeded {
				t.user.drop(k)
			} else {
				t.user.undo(a.user, now, t.lim.Window)
			}
		}
	}
	if a.addr != "" {
		t.addr.undo(a.addr, now, t.lim.Window)
	}
}

// tracked returns how many usernames and addresses are tracked (for
// tests).
func (t *throttle) tracked() (users, addrs int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.user.m), len(t.addr.m)
}
