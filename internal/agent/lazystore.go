package agent

import (
	"context"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/flowlake/flowlake/internal/store"
)

// OpenFunc opens a store from its URL (store.Open).
type OpenFunc func(ctx context.Context, url string) (store.Store, error)

// lazyReopenEvery bounds how often a LazyStore tries to open its store.
const lazyReopenEvery = time.Second

// LazyStore is a store.Store that opens the real one on first use and
// again after a failed open, so that an agent can start, and capture into
// its spool, while the object store is unreachable (store.Open checks the
// bucket, which fails then). Until the store opens, every call fails with
// the error of the last attempt.
type LazyStore struct {
	url  string
	open OpenFunc

	mu       sync.Mutex
	st       store.Store
	lastErr  error
	lastTry  time.Time
	attempts int
}

// NewLazyStore returns a LazyStore for url. It tries to open the store at
// once, for at most timeout, and returns the error of that attempt beside
// the LazyStore (which keeps trying) so that the caller can report it.
func NewLazyStore(ctx context.Context, url string, open OpenFunc, timeout time.Duration) (*LazyStore, error) {
	l := &LazyStore{url: url, open: open}
	tctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	_, err := l.get(tctx)
	return l, err
}

func (l *LazyStore) get(ctx context.Context) (store.Store, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.st != nil {
		return l.st, nil
	}
	if l.attempts > 0 && time.Since(l.lastTry) < lazyReopenEvery {
		return nil, l.lastErr
	}
	l.attempts++
	l.lastTry = time.Now()
	st, err := l.open(ctx, l.url)
	if err != nil {
		l.lastErr = fmt.Errorf("store %s not reachable: %w", l.url, err)
		return nil, l.lastErr
	}
	l.st = st
	return st, nil
}

// Put implements store.Store.
func (l *LazyStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	st, err := l.get(ctx)
	if err != nil {
		return err
	}
	return st.Put(ctx, key, r, size)
}

// PutIfAbsent implements store.Store.
func (l *LazyStore) PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) error {
	st, err := l.get(ctx)
	if err != nil {
		return err
	}
	return st.PutIfAbsent(ctx, key, r, size)
}

// PutIfMatch implements store.Store.
func (l *LazyStore) PutIfMatch(ctx context.Context, key string, r io.Reader, size int64, etag string) error {
	st, err := l.get(ctx)
	if err != nil {
		return err
	}
	return st.PutIfMatch(ctx, key, r, size, etag)
}

// Get implements store.Store.
func (l *LazyStore) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	st, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return st.Get(ctx, key)
}

// GetRange implements store.Store.
func (l *LazyStore) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	st, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return st.GetRange(ctx, key, off, n)
}

// Stat implements store.Store.
func (l *LazyStore) Stat(ctx context.Context, key string) (store.Info, error) {
	st, err := l.get(ctx)
	if err != nil {
		return store.Info{}, err
	}
	return st.Stat(ctx, key)
}

// List implements store.Store.
func (l *LazyStore) List(ctx context.Context, prefix string, fn func(store.Info) error) error {
	st, err := l.get(ctx)
	if err != nil {
		return err
	}
	return st.List(ctx, prefix, fn)
}

// Delete implements store.Store.
func (l *LazyStore) Delete(ctx context.Context, key string) error {
	st, err := l.get(ctx)
	if err != nil {
		return err
	}
	return st.Delete(ctx, key)
}

// URL implements store.Store.
func (l *LazyStore) URL() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.st != nil {
		return l.st.URL()
	}
	return l.url
}
