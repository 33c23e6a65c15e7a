package spool

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"math/rand/v2"
	"path"
	"sync"
	"time"

	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/store"
)

// Uploader defaults.
const (
	DefaultMinBackoff     = 500 * time.Millisecond
	DefaultMaxBackoff     = 30 * time.Second
	DefaultAttemptTimeout = 2 * time.Minute
)

// ErrConflict reports an object whose key already names a different object
// in the store.
var ErrConflict = errors.New("the store holds a different object under this key")

// UploaderConfig configures an Uploader.
type UploaderConfig struct {
	Store store.Store
	Spool *Spool
	// MinBackoff and MaxBackoff bound the wait between attempts at one
	// object: it doubles from MinBackoff up to MaxBackoff, with jitter.
	MinBackoff, MaxBackoff time.Duration
	// AttemptTimeout bounds one attempt.
	AttemptTimeout time.Duration
	// OnDone, if set, is called when an object has reached the store and
	// left the spool; existed is true when the store already held it.
	OnDone func(key string, size int64, existed bool)
	// OnError, if set, is called for each failed attempt, and for an
	// object set aside (err wraps ErrConflict).
	OnError func(key string, err error)
	Log     *slog.Logger
}

// Uploader sends the spool's objects to the store and removes them from
// the spool once stored. Each stream's segments (and secrets) go through a
// lane of their own, in sequence order, the secrets object of segment N
// before segment N (parse must find the keys when it reads the segment);
// every other object (status reports, configuration) through one more
// lane. A failed upload is retried, with exponential backoff and jitter,
// until it succeeds or the uploader stops: an object leaves the spool only
// when the store has it.
//
// Segments and secrets are written with PutIfAbsent, never replaced: when
// the key exists already the stored object is compared with the spooled
// one, and an identical object (a retry of an upload whose answer was
// lost, or an agent restarted before it removed the file) counts as done,
// while a different one is an error (ErrConflict) and the spooled object
// is set aside in conflict/. Other objects are written with Put.
type Uploader struct {
	cfg UploaderConfig
	log *slog.Logger

	mu      sync.Mutex
	ctx     context.Context // set by Start
	lanes   map[string]*lane
	wg      sync.WaitGroup
	started bool
}

// lane uploads one ordered queue.
type lane struct {
	name    string
	running bool // guarded by Uploader.mu
	mu      sync.Mutex
	keys    map[string]bool
	wake    chan struct{}
}

// NewUploader returns an Uploader; Start starts it.
func NewUploader(cfg UploaderConfig) *Uploader {
	if cfg.MinBackoff <= 0 {
		cfg.MinBackoff = DefaultMinBackoff
	}
	if cfg.MaxBackoff < cfg.MinBackoff {
		cfg.MaxBackoff = max(DefaultMaxBackoff, cfg.MinBackoff)
	}
	if cfg.AttemptTimeout <= 0 {
		cfg.AttemptTimeout = DefaultAttemptTimeout
	}
	u := &Uploader{cfg: cfg, log: cfg.Log, lanes: map[string]*lane{}}
	if u.log == nil {
		u.log = slog.New(slog.DiscardHandler)
	}
	return u
}

// laneOf names the lane of a key.
func laneOf(key string) string {
	if k := keys.KindOf(key); k == keys.KindSegment || k == keys.KindSecrets {
		if p, err := keys.Parse(key); err == nil {
			return p.Stream.String()
		}
	}
	return "other"
}

// conditional reports whether key is written with PutIfAbsent.
func conditional(key string) bool {
	k := keys.KindOf(key)
	return k == keys.KindSegment || k == keys.KindSecrets
}

// Start queues the objects already in the spool (left by an earlier run)
// and starts uploading; uploads stop when ctx is done. Wait waits for them.
func (u *Uploader) Start(ctx context.Context) {
	u.mu.Lock()
	u.ctx, u.started = ctx, true
	u.mu.Unlock()
	for _, k := range u.cfg.Spool.Keys() {
		u.Add(k)
	}
	// Lanes created before Start (Add before Start) start now.
	u.mu.Lock()
	for _, l := range u.lanes {
		u.startLane(l)
	}
	u.mu.Unlock()
}

// Add queues an object the spool holds.
func (u *Uploader) Add(key string) {
	name := laneOf(key)
	u.mu.Lock()
	l, ok := u.lanes[name]
	if !ok {
		l = &lane{name: name, keys: map[string]bool{}, wake: make(chan struct{}, 1)}
		u.lanes[name] = l
		if u.started {
			u.startLane(l)
		}
	}
	u.mu.Unlock()
	l.mu.Lock()
	l.keys[key] = true
	l.mu.Unlock()
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// startLane starts l's goroutine unless it runs; u.mu is held.
func (u *Uploader) startLane(l *lane) {
	if l.running {
		return
	}
	l.running = true
	u.wg.Add(1)
	go func() {
		defer u.wg.Done()
		u.run(u.ctx, l)
	}()
}

// Wait waits until the lanes have stopped (after Start's ctx is done).
func (u *Uploader) Wait() { u.wg.Wait() }

// Pending returns the number of objects queued and not yet stored.
func (u *Uploader) Pending() int {
	u.mu.Lock()
	lanes := make([]*lane, 0, len(u.lanes))
	for _, l := range u.lanes {
		lanes = append(lanes, l)
	}
	u.mu.Unlock()
	n := 0
	for _, l := range lanes {
		l.mu.Lock()
		n += len(l.keys)
		l.mu.Unlock()
	}
	return n
}

// WaitIdle waits until nothing is pending, or ctx is done.
func (u *Uploader) WaitIdle(ctx context.Context) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for u.Pending() > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("%d object(s) still waiting for upload: %w", u.Pending(), ctx.Err())
		case <-t.C:
		}
	}
	return nil
}

// first returns the key the lane uploads next (see before).
func (l *lane) first() (string, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	best, ok := "", false
	for k := range l.keys {
		if !ok || before(k, best) {
			best, ok = k, true
		}
	}
	return best, ok
}

// before orders a lane's keys: a stream's segments and secrets objects by
// sequence number, the secrets object of a number before the segment of
// that number (parse must find the keys when it reads the segment); other
// keys by name.
func before(a, b string) bool {
	ka, kb := keys.KindOf(a), keys.KindOf(b)
	if (ka == keys.KindSegment || ka == keys.KindSecrets) && (kb == keys.KindSegment || kb == keys.KindSecrets) {
		sa, sb := seqOf(a), seqOf(b)
		if sa != sb {
			return sa < sb
		}
		if ka != kb {
			return ka == keys.KindSecrets
		}
	}
	return a < b
}

// seqOf returns the zero-padded sequence number that starts the last
// element of a segment or secrets key ("" if it has none).
func seqOf(key string) string {
	base := path.Base(key)
	if len(base) < 20 {
		return ""
	}
	return base[:20]
}

func (l *lane) done(key string) {
	l.mu.Lock()
	delete(l.keys, key)
	l.mu.Unlock()
}

// run uploads the lane's objects in order until ctx is done.
func (u *Uploader) run(ctx context.Context, l *lane) {
	attempt := 0
	for {
		key, ok := l.first()
		if !ok {
			select {
			case <-ctx.Done():
				return
			case <-l.wake:
				continue
			}
		}
		if ctx.Err() != nil {
			return
		}
		size, existed, err := u.upload(ctx, key)
		switch {
		case err == nil:
			if rerr := u.cfg.Spool.Remove(key); rerr != nil {
				u.log.Error("uploaded object not removed from the spool", "key", key, "err", rerr)
			}
			if u.cfg.OnDone != nil && size >= 0 {
				u.cfg.OnDone(key, size, existed)
			}
			l.done(key) // after OnDone: Pending() == 0 means every event was delivered
			attempt = 0
		case errors.Is(err, ErrConflict):
			if serr := u.cfg.Spool.SetAside(key); serr != nil {
				u.log.Error("cannot set a conflicting object aside", "key", key, "err", serr)
			}
			u.log.Error("object not uploaded: the store holds a different object under its key; kept in the spool's conflict/ directory",
				"key", key, "spool", u.cfg.Spool.Dir())
			if u.cfg.OnError != nil {
				u.cfg.OnError(key, err)
			}
			l.done(key)
			attempt = 0
		case ctx.Err() != nil:
			return
		default:
			wait := backoff(u.cfg.MinBackoff, u.cfg.MaxBackoff, attempt)
			attempt++
			u.log.Warn("upload failed; retrying", "key", key, "attempt", attempt, "retry_in", wait.Round(time.Millisecond).String(), "err", err)
			if u.cfg.OnError != nil {
				u.cfg.OnError(key, err)
			}
			select {
			case <-ctx.Done():
				return
			case <-time.After(wait):
			}
		}
	}
}

// backoff returns the wait before attempt+1: min·2^attempt capped at max,
// of which the upper half is random ("equal jitter").
func backoff(minD, maxD time.Duration, attempt int) time.Duration {
	d := maxD
	if attempt < 30 {
		if e := minD << attempt; e > 0 && e < maxD {
			d = e
		}
	}
	return d/2 + rand.N(d/2+1)
}

// upload sends one object. size is -1 when the spool no longer holds it.
func (u *Uploader) upload(ctx context.Context, key string) (size int64, existed bool, err error) {
	data, err := u.cfg.Spool.Get(key)
	if errors.Is(err, fs.ErrNotExist) {
		return -1, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	actx, cancel := context.WithTimeout(ctx, u.cfg.AttemptTimeout)
	defer cancel()
	st := u.cfg.Store
	n := int64(len(data))
	if !conditional(key) {
		return n, false, st.Put(actx, key, bytes.NewReader(data), n)
	}
	err = st.PutIfAbsent(actx, key, bytes.NewReader(data), n)
	if !errors.Is(err, store.ErrExists) {
		return n, false, err
	}
	same, err := store.Holds(actx, st, key, data)
	if err != nil {
		return n, false, err
	}
	if !same {
		return n, false, fmt.Errorf("upload %s: %w", key, ErrConflict)
	}
	return n, true, nil
}
