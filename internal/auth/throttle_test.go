package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/store"
)

// countingStore counts lookups of user documents: a refused login must
// not look its user up, let alone check a password.
type countingStore struct {
	store.Store
	userLookups atomic.Int64
}

func (c *countingStore) Stat(ctx context.Context, key string) (store.Info, error) {
	if strings.HasPrefix(key, keys.PrefixConfig+keys.ConfigUsers+"/") {
		c.userLookups.Add(1)
	}
	return c.Store.Stat(ctx, key)
}

func (c *countingStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if strings.HasPrefix(key, keys.PrefixConfig+keys.ConfigUsers+"/") {
		c.userLookups.Add(1)
	}
	return c.Store.Get(ctx, key)
}

func throttled(t *testing.T, what string, err error) *ThrottledError {
	t.Helper()
	var te *ThrottledError
	if !errors.As(err, &te) || !errors.Is(err, ErrThrottled) {
		t.Fatalf("%s: %v, want a ThrottledError", what, err)
	}
	return te
}

func TestLoginThrottle(t *testing.T) {
	f := setup(t)
	ctx := t.Context()
	const addr = "198.51.100.7:51234"
	// Five failures for alice are allowed; they are plain wrong passwords.
	for i := range DefaultMaxFailuresPerUser {
		_, err := f.s.Login(ctx, "alice", fmt.Sprintf("guess-%d", i), addr)
		wantErr(t, "guess", err, ErrUnauthorized)
	}
	// Now even the right password is refused, without being checked.
	_, err := f.s.Login(ctx, "alice", "alice-password", addr)
	te := throttled(t, "sixth attempt", err)
	if te.RetryAfter != DefaultFailureWindow || !te.Until.Equal(f.clock.now().Add(DefaultFailureWindow)) {
		t.Errorf("retry after %v (until %s)", te.RetryAfter, te.Until)
	}
	if msg := err.Error(); !strings.Contains(msg, "for this username") || !strings.Contains(msg, "try again in 15m0s") ||
		!strings.Contains(msg, f.clock.now().Add(DefaultFailureWindow).Format(time.RFC3339)) {
		t.Errorf("message %q", msg)
	}
	// Other users are not affected, also from another address.
	f.login(t, "bob", "bob-password")
	// The refusal counts down.
	f.clock.add(10 * time.Minute)
	_, err = f.s.Login(ctx, "alice", "alice-password", "203.0.113.9:1")
	if te := throttled(t, "later", err); te.RetryAfter != 5*time.Minute {
		t.Errorf("retry after %v, want 5m", te.RetryAfter)
	}
	// After the window, allowed again.
	f.clock.add(5 * time.Minute)
	if _, err := f.s.Login(ctx, "alice", "alice-password", addr); err != nil {
		t.Fatalf("after the window: %v", err)
	}
}

func TestLoginThrottleRefusesWithoutChecking(t *testing.T) {
	f := setup(t)
	ctx := t.Context()
	cs := &countingStore{Store: f.st}
	s := newService(t, cs, f.clock)
	for _, u := range []string{"alice", "nobody"} {
		for range DefaultMaxFailuresPerUser {
			s.Login(ctx, u, "wrong", "")
		}
	}
	if n := cs.userLookups.Load(); n == 0 {
		t.Fatal("failed logins looked no user up")
	}
	// Refused attempts, right password or not, known user or not, read no
	// user document (so check no password).
	cs.userLookups.Store(0)
	for _, u := range []string{"alice", "nobody"} {
		for _, pw := range []string{"alice-password", "wrong"} {
			_, err := s.Login(ctx, u, pw, "")
			throttled(t, u+" refused", err)
		}
	}
	if n := cs.userLookups.Load(); n != 0 {
		t.Errorf("refused logins looked users up %d times", n)
	}
}

func TestLoginThrottleSuccessResets(t *testing.T) {
	f := setup(t)
	ctx := t.Context()
	for range DefaultMaxFailuresPerUser - 1 {
		f.s.Login(ctx, "alice", "wrong", "192.0.2.1:5")
	}
	f.login(t, "alice", "alice-password") // resets alice's count
	for range DefaultMaxFailuresPerUser {
		_, err := f.s.Login(ctx, "alice", "wrong", "192.0.2.1:5")
		wantErr(t, "after a success", err, ErrUnauthorized)
	}
	_, err := f.s.Login(ctx, "alice", "alice-password", "192.0.2.1:5")
	throttled(t, "after 5 more", err)
}

func TestLoginThrottleUnknownUsers(t *testing.T) {
	f := setup(t)
	ctx := t.Context()
	// Unknown users count as known ones do, with the same errors.
	var known, unknown []string
	var err error
	for _, u := range []string{"alice", "nobody"} {
		for range DefaultMaxFailuresPerUser + 1 {
			_, err = f.s.Login(ctx, u, "wrong", "")
			if u == "alice" {
				known = append(known, err.Error())
			} else {
				unknown = append(unknown, err.Error())
			}
		}
	}
	for i := range known {
		a := strings.ReplaceAll(known[i], "alice", "X")
		b := strings.ReplaceAll(unknown[i], "nobody", "X")
		if a != b {
			t.Errorf("attempt %d: %q for a known user, %q for an unknown one", i+1, known[i], unknown[i])
		}
	}
	throttled(t, "unknown user", err)
}

func TestLoginThrottleAddress(t *testing.T) {
	f := setup(t)
	ctx := t.Context()
	// 20 failures from one address, spread over usernames so that no
	// username limit is reached.
	for i := range DefaultMaxFailuresPerClient {
		_, err := f.s.Login(ctx, fmt.Sprintf("user%d", i%10), "wrong", "198.51.100.7:1000")
		wantErr(t, "spray", err, ErrUnauthorized)
	}
	// Any username from that address (another port) is refused now, even
	// with the right password; from elsewhere alice logs in.
	_, err := f.s.Login(ctx, "alice", "alice-password", "198.51.100.7:2000")
	if te := throttled(t, "address", err); !strings.Contains(te.Error(), "from this address") {
		t.Errorf("message %q", te)
	}
	f.login(t, "alice", "alice-password")
	if _, err := f.s.Login(ctx, "alice", "alice-password", "198.51.100.8:2000"); err != nil {
		t.Errorf("from another address: %v", err)
	}
	// IPv6: one /64 is one client.
	for i := range DefaultMaxFailuresPerClient {
		f.s.Login(ctx, fmt.Sprintf("v6user%d", i%10), "wrong", fmt.Sprintf("[2001:db8:1:2::%x]:443", i+1))
	}
	_, err = f.s.Login(ctx, "bob", "bob-password", "[2001:db8:1:2:ffff::1]:443")
	throttled(t, "same /64", err)
	if _, err := f.s.Login(ctx, "bob", "bob-password", "[2001:db8:1:3::1]:443"); err != nil {
		t.Errorf("another /64: %v", err)
	}
	// Successful logins from an address do not count against it.
	for range 3 * DefaultMaxFailuresPerClient {
		if _, err := f.s.Login(ctx, "bob", "bob-password", "192.0.2.200"); err != nil {
			t.Fatalf("busy address: %v", err)
		}
	}
}

func TestClientKey(t *testing.T) {
	for in, want := range map[string]string{
		"198.51.100.7:1234":          "198.51.100.7",
		"198.51.100.7":               "198.51.100.7", // a Lambda sourceIp
		"[::ffff:198.51.100.7]:80":   "198.51.100.7",
		"[2001:db8::1%eth0]:80":      "2001:db8::/64",
		"2001:db8:0:0:1:2:3:4":       "2001:db8::/64",
		"":                           "",
		"not an address":             "",
		"example.com:80":             "",
		"[2001:db8:a:b:c:d:e:f]:443": "2001:db8:a:b::/64",
	} {
		if got := ClientKey(in); got != want {
			t.Errorf("ClientKey(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestLoginThrottleBounded(t *testing.T) {
	c := newClock()
	th := newThrottle(LoginLimits{MaxKeys: 100}, c.now)
	fail := func(user, addr string) error {
		a, err := th.begin(user, addr)
		if err == nil {
			a.done(failed)
		}
		return err
	}
	// 5 failures each for 250 usernames from 250 addresses: at most 100
	// of each are tracked, the least recently failed are forgotten.
	for i := range 250 {
		for range DefaultMaxFailuresPerUser {
			if err := fail(fmt.Sprintf("u%03d", i), fmt.Sprintf("10.0.%d.%d", i/256, i%256)); err != nil {
				t.Fatal(err)
			}
		}
		c.add(time.Second)
		if users, addrs := th.tracked(); users > 100 || addrs > 100 {
			t.Fatalf("after %d usernames: %d usernames and %d addresses tracked", i+1, users, addrs)
		}
	}
	if users, addrs := th.tracked(); users != 100 || addrs != 100 {
		t.Errorf("%d usernames and %d addresses tracked, want 100 each", users, addrs)
	}
	// The newest are still refused, the oldest forgotten.
	throttled(t, "newest", fail("u249", ""))
	if err := fail("u000", ""); err != nil {
		t.Errorf("oldest: %v", err)
	}
	// Very long usernames are kept short.
	for i := range 10 {
		fail(fmt.Sprint(i)+strings.Repeat("x", 100_000), "")
	}
	th.mu.Lock()
	for k := range th.user.m {
		if len(k) > maxUserKey {
			t.Errorf("a key of %d bytes", len(k))
		}
	}
	th.mu.Unlock()
	// Expired counters make room and are dropped when met.
	c.add(DefaultFailureWindow)
	if err := fail("u249", ""); err != nil {
		t.Errorf("after the window: %v", err)
	}
	// Through the service: the configured bound applies.
	s, err := New(t.Context(), Config{Store: store.NewMem(), Now: c.now, LoginLimits: LoginLimits{MaxKeys: 3, MaxFailuresPerUser: 1}})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 6 {
		s.Login(t.Context(), fmt.Sprintf("x%d", i), "wrong", fmt.Sprintf("192.0.2.%d", i))
	}
	if users, addrs := s.throttle.tracked(); users != 3 || addrs != 3 {
		t.Errorf("service tracks %d usernames and %d addresses, want 3 each", users, addrs)
	}
	_, err = s.Login(t.Context(), "x5", "wrong", "")
	throttled(t, "limit 1", err)
}

func TestLoginThrottleConcurrent(t *testing.T) {
	f := setup(t)
	ctx := t.Context()
	// 20 wrong guesses at once: at most 5 get a password check (the others
	// are refused up front).
	errs := make(chan error, 20)
	for range 20 {
		go func() {
			_, err := f.s.Login(ctx, "alice", "wrong", "")
			errs <- err
		}()
	}
	checked := 0
	for range 20 {
		if err := <-errs; errors.Is(err, ErrUnauthorized) {
			checked++
		} else if !errors.Is(err, ErrThrottled) {
			t.Errorf("concurrent guess: %v", err)
		}
	}
	if checked != DefaultMaxFailuresPerUser {
		t.Errorf("%d guesses checked, want %d", checked, DefaultMaxFailuresPerUser)
	}
}
