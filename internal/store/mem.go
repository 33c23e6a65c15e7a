package store

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Mem is a Store in process memory, for tests of other packages and for
// embedded use where nothing must outlive the process. It has the semantics
// of the other stores (checked by the same conformance suite); like S3 and
// unlike Local it lets one key be both an object and a prefix of others
// ("a" and "a/b"). Every object is held in memory, and an object's bytes
// are read completely before it is stored.
type Mem struct {
	name string

	mu   sync.RWMutex
	objs map[string]memObject
}

type memObject struct {
	data    []byte // never modified once stored
	modTime time.Time
	etag    string
}

// memCount numbers Mem stores for their URLs.
var memCount atomic.Int64

// NewMem returns an empty in-memory store.
func NewMem() *Mem {
	n := memCount.Add(1)
	return &Mem{name: fmt.Sprintf("mem://%d", n), objs: make(map[string]memObject)}
}

// URL returns mem://N, a name unique in the process. Open does not accept it:
// the objects exist only in this value.
func (m *Mem) URL() string { return m.name }

// Put implements Store.
func (m *Mem) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	return m.put(ctx, "mem put", key, r, size, false, "")
}

// PutIfAbsent implements Store.
func (m *Mem) PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) error {
	return m.put(ctx, "mem put-if-absent", key, r, size, true, "")
}

// PutIfMatch implements Store.
func (m *Mem) PutIfMatch(ctx context.Context, key string, r io.Reader, size int64, etag string) error {
	if etag == "" {
		return fmt.Errorf("mem put-if-match %s: empty ETag: %w", key, ErrPreconditionFailed)
	}
	return m.put(ctx, "mem put-if-match", key, r, size, false, etag)
}

// put stores an object: unconditionally, or if absent, or, when match is
// not empty, if the stored object's ETag is match.
func (m *Mem) put(ctx context.Context, op, key string, r io.Reader, size int64, ifAbsent bool, match string) error {
	if err := CheckKey(key); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := checkSize(op, key, size); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s %s: %w", op, key, err)
	}
	data, err := io.ReadAll(newBodyReader(ctx, r, size))
	if err != nil {
		return fmt.Errorf("%s %s: %w", op, key, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s %s: %w", op, key, err)
	}
	sum := md5.Sum(data)
	obj := memObject{data: data, modTime: time.Now(), etag: hex.EncodeToString(sum[:])}
	m.mu.Lock()
	defer m.mu.Unlock()
	old, ok := m.objs[key]
	if ok && ifAbsent {
		return fmt.Errorf("%s %s: %w", op, key, ErrExists)
	}
	if match != "" && (!ok || old.etag != match) {
		return fmt.Errorf("%s %s: %w", op, key, ErrPreconditionFailed)
	}
	m.objs[key] = obj
	return nil
}

func (m *Mem) get(ctx context.Context, op, key string) (memObject, error) {
	if err := CheckKey(key); err != nil {
		return memObject{}, fmt.Errorf("%s: %w", op, err)
	}
	if err := ctx.Err(); err != nil {
		return memObject{}, fmt.Errorf("%s %s: %w", op, key, err)
	}
	m.mu.RLock()
	obj, ok := m.objs[key]
	m.mu.RUnlock()
	if !ok {
		return memObject{}, fmt.Errorf("%s %s: %w", op, key, ErrNotExist)
	}
	return obj, nil
}

// Get implements Store.
func (m *Mem) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	obj, err := m.get(ctx, "mem get", key)
	if err != nil {
		return nil, err
	}
	return io.NopCloser(bytes.NewReader(obj.data)), nil
}

// GetRange implements Store.
func (m *Mem) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	if err := checkRange("mem get-range", key, off); err != nil {
		return nil, err
	}
	obj, err := m.get(ctx, "mem get-range", key)
	if err != nil {
		return nil, err
	}
	start, end := clipRange(int64(len(obj.data)), off, n)
	return bytes.Clone(obj.data[start:end:end]), nil
}

// Stat implements Store.
func (m *Mem) Stat(ctx context.Context, key string) (Info, error) {
	obj, err := m.get(ctx, "mem stat", key)
	if err != nil {
		return Info{}, err
	}
	return obj.info(key), nil
}

func (o memObject) info(key string) Info {
	return Info{Key: key, Size: int64(len(o.data)), ModTime: o.modTime, ETag: o.etag}
}

// List implements Store. It lists a snapshot taken when it starts, so fn may
// call the store.
func (m *Mem) List(ctx context.Context, prefix string, fn func(Info) error) error {
	if err := checkPrefix(prefix); err != nil {
		return fmt.Errorf("mem list: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mem list %q: %w", prefix, err)
	}
	m.mu.RLock()
	var infos []Info
	for k, o := range m.objs {
		if strings.HasPrefix(k, prefix) {
			infos = append(infos, o.info(k))
		}
	}
	m.mu.RUnlock()
	slices.SortFunc(infos, func(a, b Info) int { return strings.Compare(a.Key, b.Key) })
	for _, info := range infos {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("mem list %q: %w", prefix, err)
		}
		if err := fn(info); err != nil {
			return fmt.Errorf("mem list %q: %w", prefix, err)
		}
	}
	return nil
}

// Delete implements Store.
func (m *Mem) Delete(ctx context.Context, key string) error {
	if err := CheckKey(key); err != nil {
		return fmt.Errorf("mem delete: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("mem delete %s: %w", key, err)
	}
	m.mu.Lock()
	delete(m.objs, key)
	m.mu.Unlock()
	return nil
}
