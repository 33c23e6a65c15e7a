package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/flowlake/flowlake/internal/store"
)

// maxDoc bounds the size of a config document read from the store.
const maxDoc = 4 << 20

// maxUpdateAttempts bounds the retries of a read-modify-write that keeps
// meeting concurrent changes.
const maxUpdateAttempts = 50

// docCache keeps decoded documents for a while, keyed by object key.
type docCache struct {
	ttl time.Duration
	now func() time.Time

	mu sync.Mutex
	m  map[string]cached
}

type cached struct {
	v  any // a value of the document's type, never modified; nil: missing
	at time.Time
}

func newDocCache(ttl time.Duration, now func() time.Time) *docCache {
	return &docCache{ttl: ttl, now: now, m: make(map[string]cached)}
}

func (c *docCache) get(key string) (any, bool) {
	if c.ttl < 0 {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.m[key]
	if !ok || c.now().Sub(e.at) >= c.ttl {
		return nil, false
	}
	return e.v, true
}

func (c *docCache) put(key string, v any) {
	if c.ttl < 0 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) > 10000 {
		clear(c.m) // bound memory; entries are cheap to read again
	}
	c.m[key] = cached{v: v, at: c.now()}
}

func (c *docCache) drop(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	delete(c.m, key)
}

// read reads and decodes the document at key, with its ETag. A missing
// document is an error wrapping ErrNotFound.
func read[T any](ctx context.Context, st store.Store, key string) (T, string, error) {
	var v T
	info, err := st.Stat(ctx, key)
	if err != nil {
		if errors.Is(err, store.ErrNotExist) {
			return v, "", fmt.Errorf("%s: %w", key, ErrNotFound)
		}
		return v, "", err
	}
	rc, err := st.Get(ctx, key)
	if err != nil {
		if errors.Is(err, store.ErrNotExist) {
			return v, "", fmt.Errorf("%s: %w", key, ErrNotFound)
		}
		return v, "", err
	}
	defer rc.Close()
	b, err := io.ReadAll(io.LimitReader(rc, maxDoc+1))
	if err != nil {
		return v, "", fmt.Errorf("read %s: %w", key, err)
	}
	if len(b) > maxDoc {
		return v, "", fmt.Errorf("read %s: larger than %d bytes", key, maxDoc)
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return v, "", fmt.Errorf("decode %s: %w", key, err)
	}
	// The ETag may be of a version newer than the bytes read; a PutIfMatch
	// with it then fails and the update is retried, so no change is lost.
	return v, info.ETag, nil
}

// load returns the document at key, from the cache when fresh.
func load[T any](ctx context.Context, s *Service, key string) (T, error) {
	if v, ok := s.cache.get(key); ok {
		if v == nil {
			var zero T
			return zero, fmt.Errorf("%s: %w", key, ErrNotFound)
		}
		return v.(T), nil
	}
	v, _, err := read[T](ctx, s.st, key)
	switch {
	case errors.Is(err, ErrNotFound):
		s.cache.put(key, nil)
	case err == nil:
		s.cache.put(key, v)
	}
	return v, err
}

func encode(v any) ([]byte, error) {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// create writes a new document; ErrConflict when key exists.
func create(ctx context.Context, s *Service, key string, v any) error {
	b, err := encode(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	err = s.st.PutIfAbsent(ctx, key, bytes.NewReader(b), int64(len(b)))
	s.cache.drop(key)
	if errors.Is(err, store.ErrExists) {
		return fmt.Errorf("%s: %w", key, ErrConflict)
	}
	return err
}

// errNoChange, returned by an update function, ends the update without a
// write.
var errNoChange = errors.New("no change")

// update is the read-modify-write of the document at key: fn changes a
// fresh copy, which is written back with PutIfMatch; on a concurrent
// change the whole cycle is retried. A missing document is ErrNotFound
// unless orCreate, in which case fn starts from the zero value and the
// write is a conditional create. fn may return errNoChange to stop
// without writing, or another error, which update returns.
func update[T any](ctx context.Context, s *Service, key string, orCreate bool, fn func(*T) error) (T, error) {
	defer s.cache.drop(key)
	for attempt := 0; ; attempt++ {
		v, etag, err := read[T](ctx, s.st, key)
		missing := errors.Is(err, ErrNotFound)
		if err != nil && !(missing && orCreate) {
			return v, err
		}
		if err := fn(&v); err != nil {
			if errors.Is(err, errNoChange) {
				return v, nil
			}
			return v, err
		}
		b, err := encode(v)
		if err != nil {
			return v, fmt.Errorf("encode %s: %w", key, err)
		}
		if missing {
			err = s.st.PutIfAbsent(ctx, key, bytes.NewReader(b), int64(len(b)))
		} else {
			err = s.st.PutIfMatch(ctx, key, bytes.NewReader(b), int64(len(b)), etag)
		}
		if err == nil {
			return v, nil
		}
		if !errors.Is(err, store.ErrPreconditionFailed) && !errors.Is(err, store.ErrExists) {
			return v, err
		}
		if attempt+1 >= maxUpdateAttempts {
			return v, fmt.Errorf("update %s: %d concurrent changes in a row, giving up: %w", key, maxUpdateAttempts, err)
		}
		// Back off a little, randomly, so that racing writers spread out.
		d := time.Duration(1+rand.IntN(5*(attempt+1))) * time.Millisecond
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return v, ctx.Err()
		case <-t.C:
		}
	}
}

// remove deletes the document at key; ErrNotFound when missing.
func remove(ctx context.Context, s *Service, key string) error {
	defer s.cache.drop(key)
	if _, err := s.st.Stat(ctx, key); err != nil {
		if errors.Is(err, store.ErrNotExist) {
			return fmt.Errorf("%s: %w", key, ErrNotFound)
		}
		return err
	}
	return s.st.Delete(ctx, key)
}

// listDocs reads every document below prefix, in key order. Documents that
// vanish while listing are skipped.
func listDocs[T any](ctx context.Context, s *Service, prefix string) ([]T, error) {
	var keys []string
	if err := s.st.List(ctx, prefix, func(info store.Info) error {
		keys = append(keys, info.Key)
		return nil
	}); err != nil {
		return nil, err
	}
	out := make([]T, 0, len(keys))
	for _, k := range keys {
		v, err := load[T](ctx, s, k)
		if errors.Is(err, ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}
