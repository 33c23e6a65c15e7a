package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"time"
)

// Local is a Store in a directory of the local file system: key a/b/c is the
// file DIR/a/b/c, so other tools (DuckDB's read_parquet) read the lake in
// place.
//
// Writes go to a temporary file in the object's directory, are synced and
// then renamed (Put) or hard-linked (PutIfAbsent) into place, so readers never
// see a partial object and a conditional create is atomic even across
// processes. The file system must support hard links. Renames (Put,
// PutIfMatch) and removals (Delete) hold an exclusive flock(2) of the
// object's directory, under which PutIfMatch compares the ETag, so that a
// conditional update is atomic across processes too. Every write gives its
// file a modification time unique in the process (nanoseconds), since the
// ETag is made of the size and that time.
//
// Because keys are paths, one key cannot be both an object and a directory:
// with a/b stored, putting a/b/c fails, and so does putting a while a/b
// exists. Deleting the last object of a directory removes the directory.
// List skips symbolic links and other non-regular files.
type Local struct {
	root string // absolute, cleaned
}

// NewLocal returns the store kept in dir, creating the directory if needed.
func NewLocal(dir string) (*Local, error) {
	if dir == "" {
		return nil, errors.New("open local store: empty directory name")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("open local store %s: %w", dir, err)
	}
	if err := os.MkdirAll(abs, 0o755); err != nil {
		return nil, fmt.Errorf("open local store %s: %w", dir, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return nil, fmt.Errorf("open local store %s: %w", dir, err)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("open local store %s: not a directory", dir)
	}
	return &Local{root: abs}, nil
}

// Dir returns the store's directory.
func (l *Local) Dir() string { return l.root }

// URL returns file:// and the absolute directory.
func (l *Local) URL() string {
	return (&url.URL{Scheme: "file", Path: filepath.ToSlash(l.root)}).String()
}

func (l *Local) path(key string) string {
	return filepath.Join(l.root, filepath.FromSlash(key))
}

// Put implements Store.
func (l *Local) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	return l.put(ctx, "local put", key, r, size, false, "")
}

// PutIfAbsent implements Store.
func (l *Local) PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) error {
	return l.put(ctx, "local put-if-absent", key, r, size, true, "")
}

// PutIfMatch implements Store.
func (l *Local) PutIfMatch(ctx context.Context, key string, r io.Reader, size int64, etag string) error {
	if etag == "" {
		return fmt.Errorf("local put-if-match %s: empty ETag: %w", key, ErrPreconditionFailed)
	}
	return l.put(ctx, "local put-if-match", key, r, size, false, etag)
}

// put writes an object: unconditionally, or if absent, or, when match is
// not empty, if the stored object's ETag is match.
func (l *Local) put(ctx context.Context, op, key string, r io.Reader, size int64, ifAbsent bool, match string) error {
	if err := CheckKey(key); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := checkSize(op, key, size); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s %s: %w", op, key, err)
	}
	if ifAbsent {
		// Cheap early answer; the link below is what decides.
		if _, err := l.Stat(ctx, key); err == nil {
			return fmt.Errorf("%s %s: %w", op, key, ErrExists)
		}
	}
	if match != "" {
		// Cheap early answer, which also keeps a missing object's
		// directories from being made; the check under the lock decides.
		if err := l.matches(op, key, match); err != nil {
			return err
		}
	}
	final := l.path(key)
	dir := filepath.Dir(final)
	tmp, err := l.createTemp(dir)
	if err != nil {
		return fmt.Errorf("%s %s: %w", op, key, l.conflict(key, err))
	}
	tmpName := tmp.Name()
	defer os.Remove(tmpName) // after a rename or a failure; harmless otherwise

	if err := writeTemp(tmp, newBodyReader(ctx, r, size)); err != nil {
		return fmt.Errorf("%s %s: %w", op, key, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s %s: %w", op, key, err)
	}
	if err := uniqueModTime(tmpName); err != nil {
		return fmt.Errorf("%s %s: %w", op, key, err)
	}
	if ifAbsent {
		if err := os.Link(tmpName, final); err != nil {
			if errors.Is(err, fs.ErrExist) {
				if st, serr := os.Lstat(final); serr == nil && !st.Mode().IsRegular() {
					return fmt.Errorf("%s %s: %w", op, key, l.conflict(key, err))
				}
				return fmt.Errorf("%s %s: %w", op, key, ErrExists)
			}
			return fmt.Errorf("%s %s: %w", op, key, l.conflict(key, err))
		}
	} else if err := l.replace(op, key, tmpName, final, match); err != nil {
		return err
	}
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("%s %s: %w", op, key, err)
	}
	return nil
}

// replace renames tmp to final (the file of key) under the lock of the
// directory, after checking, when match is not empty, that the object's
// ETag is match.
func (l *Local) replace(op, key, tmp, final, match string) error {
	unlock, err := lockDir(filepath.Dir(final))
	if err != nil {
		return fmt.Errorf("%s %s: lock directory: %w", op, key, err)
	}
	defer unlock()
	if match != "" {
		if err := l.matches(op, key, match); err != nil {
			return err
		}
	}
	if err := os.Rename(tmp, final); err != nil {
		return fmt.Errorf("%s %s: %w", op, key, l.conflict(key, err))
	}
	return nil
}

// matches returns nil when key names an object whose ETag is etag, and an
// error wrapping ErrPreconditionFailed when it does not.
func (l *Local) matches(op, key, etag string) error {
	st, err := os.Stat(l.path(key))
	switch {
	case err != nil && isNotExist(err), err == nil && !st.Mode().IsRegular():
		return fmt.Errorf("%s %s: no such object: %w", op, key, ErrPreconditionFailed)
	case err != nil:
		return fmt.Errorf("%s %s: %w", op, key, err)
	}
	if have := localInfo(key, st).ETag; have != etag {
		return fmt.Errorf("%s %s: ETag is %q, not %q: %w", op, key, have, etag, ErrPreconditionFailed)
	}
	return nil
}

// lastModTime is the last modification time, in Unix nanoseconds, that
// uniqueModTime gave a file.
var lastModTime atomic.Int64

// uniqueModTime sets the modification time of the file at path to now, in
// nanoseconds, later than that of any file written before by this process:
// file systems keep the kernel's coarse clock (milliseconds), too coarse for
// an ETag made of size and modification time.
func uniqueModTime(path string) error {
	for {
		last := lastModTime.Load()
		now := time.Now().UnixNano()
		if now <= last {
			now = last + 1
		}
		if lastModTime.CompareAndSwap(last, now) {
			t := time.Unix(0, now)
			return os.Chtimes(path, t, t)
		}
	}
}

// createTemp creates a temporary file in dir, creating dir first. A
// concurrent Delete that empties a directory removes it, possibly between
// the steps of MkdirAll or between MkdirAll and CreateTemp, so ENOENT is
// retried.
func (l *Local) createTemp(dir string) (*os.File, error) {
	var err error
	for range 100 {
		var f *os.File
		if err = l.mkdirs(dir); err == nil {
			if f, err = os.CreateTemp(dir, tmpPrefix+"*"); err == nil {
				return f, nil
			}
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
	}
	return nil, err
}

// mkdirs creates dir and its missing parents, and syncs the directories
// that received new entries, so that a new object's path survives a crash.
func (l *Local) mkdirs(dir string) error {
	var created []string
	for d := dir; d != l.root && strings.HasPrefix(d, l.root); d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil {
			break
		}
		created = append(created, d)
	}
	if len(created) == 0 {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, d := range created {
		if err := syncDir(filepath.Dir(d)); err != nil {
			return err
		}
	}
	return nil
}

// writeTemp fills, syncs and closes a temporary file.
func writeTemp(f *os.File, r io.Reader) error {
	_, err := io.Copy(f, r)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// conflict explains the errors that come from a key that collides with the
// directory structure of other keys.
func (l *Local) conflict(key string, err error) error {
	if errors.Is(err, syscall.ENOTDIR) {
		return fmt.Errorf("a parent of the key is an object, so the key cannot be a file in the local store: %w", err)
	}
	if errors.Is(err, syscall.EISDIR) || errors.Is(err, syscall.EEXIST) || errors.Is(err, syscall.ENOTEMPTY) {
		if st, serr := os.Lstat(l.path(key)); serr == nil && st.IsDir() {
			return fmt.Errorf("other keys start with %q, so it cannot be an object in the local store: %w", key+"/", err)
		}
	}
	return err
}

// syncDir makes a rename or link in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) {
		return nil // file systems that cannot sync directories
	}
	return err
}

// open opens the regular file holding key.
func (l *Local) open(op, key string) (*os.File, fs.FileInfo, error) {
	if err := CheckKey(key); err != nil {
		return nil, nil, fmt.Errorf("%s: %w", op, err)
	}
	f, err := os.Open(l.path(key))
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: %w", op, key, notExist(err))
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, fmt.Errorf("%s %s: %w", op, key, err)
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, nil, fmt.Errorf("%s %s: %w", op, key, ErrNotExist)
	}
	return f, st, nil
}

// notExist maps the errors of a missing file, or of a path through a file,
// to ErrNotExist.
func notExist(err error) error {
	if isNotExist(err) {
		return ErrNotExist
	}
	return err
}

// isNotExist reports whether err comes from a missing file or a path through
// a file.
func isNotExist(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}

// Get implements Store.
func (l *Local) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("local get %s: %w", key, err)
	}
	f, _, err := l.open("local get", key)
	if err != nil {
		return nil, err
	}
	return f, nil
}

// GetRange implements Store.
func (l *Local) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	if err := checkRange("local get-range", key, off); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("local get-range %s: %w", key, err)
	}
	f, st, err := l.open("local get-range", key)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	start, end := clipRange(st.Size(), off, n)
	buf := make([]byte, end-start)
	if _, err := f.ReadAt(buf, start); err != nil && !(errors.Is(err, io.EOF) && len(buf) == 0) {
		return nil, fmt.Errorf("local get-range %s [%d,%d): %w", key, start, end, err)
	}
	return buf, nil
}

// Stat implements Store.
func (l *Local) Stat(ctx context.Context, key string) (Info, error) {
	if err := CheckKey(key); err != nil {
		return Info{}, fmt.Errorf("local stat: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return Info{}, fmt.Errorf("local stat %s: %w", key, err)
	}
	st, err := os.Stat(l.path(key))
	if err != nil {
		return Info{}, fmt.Errorf("local stat %s: %w", key, notExist(err))
	}
	if !st.Mode().IsRegular() {
		return Info{}, fmt.Errorf("local stat %s: %w", key, ErrNotExist)
	}
	return localInfo(key, st), nil
}

func localInfo(key string, st fs.FileInfo) Info {
	mt := st.ModTime()
	return Info{
		Key:     key,
		Size:    st.Size(),
		ModTime: mt,
		ETag:    fmt.Sprintf("%x-%x", st.Size(), mt.UnixNano()),
	}
}

// List implements Store. It walks only the directories that can hold keys
// with the prefix.
func (l *Local) List(ctx context.Context, prefix string, fn func(Info) error) error {
	if err := checkPrefix(prefix); err != nil {
		return fmt.Errorf("local list: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("local list %q: %w", prefix, err)
	}
	dir, _ := splitPrefix(prefix)
	if err := l.walk(ctx, dir, prefix, fn); err != nil {
		return fmt.Errorf("local list %q: %w", prefix, err)
	}
	return nil
}

// walk lists the objects below the directory holding keys that start with
// dir + "/" (the root when dir is empty).
func (l *Local) walk(ctx context.Context, dir, prefix string, fn func(Info) error) error {
	entries, err := os.ReadDir(l.path(dir))
	if err != nil {
		if isNotExist(err) {
			return nil // nothing there, or removed meanwhile by Delete
		}
		return err
	}
	// Directory entries sort by name, but keys must come in lexical order:
	// a directory "b" holds keys "b/…", which sort after "b-" and "b.txt".
	sortName := func(e fs.DirEntry) string {
		if e.IsDir() {
			return e.Name() + "/"
		}
		return e.Name()
	}
	slices.SortFunc(entries, func(a, b fs.DirEntry) int { return strings.Compare(sortName(a), sortName(b)) })
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		name := e.Name()
		if strings.HasPrefix(name, tmpPrefix) {
			continue
		}
		key := name
		if dir != "" {
			key = dir + "/" + name
		}
		switch {
		case e.IsDir():
			// Descend when keys below can match the prefix.
			if strings.HasPrefix(key+"/", prefix) || strings.HasPrefix(prefix, key+"/") {
				if err := l.walk(ctx, key, prefix, fn); err != nil {
					return err
				}
			}
		case e.Type().IsRegular():
			if !strings.HasPrefix(key, prefix) || keyProblem(key) != "" {
				continue
			}
			st, err := e.Info()
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					continue // deleted since ReadDir
				}
				return err
			}
			if err := fn(localInfo(key, st)); err != nil {
				return err
			}
		}
	}
	return nil
}

// Delete implements Store. It also removes the directories the deletion
// leaves empty, up to the store's root.
func (l *Local) Delete(ctx context.Context, key string) error {
	if err := CheckKey(key); err != nil {
		return fmt.Errorf("local delete: %w", err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("local delete %s: %w", key, err)
	}
	p := l.path(key)
	st, err := os.Lstat(p)
	if err != nil {
		if isNotExist(err) {
			return nil
		}
		return fmt.Errorf("local delete %s: %w", key, err)
	}
	if st.IsDir() {
		return nil // other keys start with key + "/"; there is no object key
	}
	if err := l.remove(p); err != nil && notExist(err) != ErrNotExist {
		return fmt.Errorf("local delete %s: %w", key, err)
	}
	for d := filepath.Dir(p); d != l.root && strings.HasPrefix(d, l.root); d = filepath.Dir(d) {
		if os.Remove(d) != nil {
			break // not empty (or already gone): stop pruning
		}
	}
	return nil
}

// remove removes the file p under the lock of its directory.
func (l *Local) remove(p string) error {
	unlock, err := lockDir(filepath.Dir(p))
	if err != nil {
		return err
	}
	defer unlock()
	return os.Remove(p)
}
