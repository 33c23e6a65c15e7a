// Package spool keeps the capture agent's objects on local disk until the
// object store has them, so that nothing is lost while the store is down
// or the agent restarts.
//
// Layout of a spool directory:
//
//	objects/<object key>   an object waiting for upload, named by its key
//	tmp/                   files being written (removed at open)
//	seq/agent=<id>/stream=<k>.next   the next segment number of a stream
//	conflict/<object key>  objects the store refused because another object
//	                       already has their key (kept for an operator)
//	lock                   flock'ed by the agent using the spool
//
// Every file is written atomically: to tmp/, fsync, rename, fsync of the
// directory. An object in objects/ is therefore whole or absent, whatever
// kills the agent. [Uploader] sends them, in key order per stream.
package spool

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/store"
)

// Subdirectories of a spool.
const (
	objectsDir  = "objects"
	tmpDir      = "tmp"
	seqDir      = "seq"
	conflictDir = "conflict"
	lockFile    = "lock"
)

// DefaultMaxBytes is the default bound of a spool.
const DefaultMaxBytes = 1 << 30

// ErrFull is returned by Put when the object would take the spool over its
// bound.
var ErrFull = errors.New("spool full")

// Spool is a bounded directory of objects waiting for upload. It is safe
// for concurrent use.
type Spool struct {
	dir      string
	maxBytes int64
	lock     *os.File

	mu    sync.Mutex
	size  int64
	sizes map[string]int64 // key → size, for every object held

	dirMu sync.Mutex // orders creating directories for a rename and removing empty ones
}

// Open opens (creating it if needed) the spool in dir, bounded to maxBytes
// of objects (<= 0: DefaultMaxBytes). It takes an exclusive lock on the
// directory, so that two agents never share a spool, removes half-written
// files, and indexes the objects already there.
func Open(dir string, maxBytes int64) (*Spool, error) {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxBytes
	}
	for _, d := range []string{objectsDir, tmpDir, seqDir, conflictDir} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o750); err != nil {
			return nil, fmt.Errorf("open spool: %w", err)
		}
	}
	lock, err := os.OpenFile(filepath.Join(dir, lockFile), os.O_CREATE|os.O_RDWR, 0o640)
	if err != nil {
		return nil, fmt.Errorf("open spool: %w", err)
	}
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		lock.Close()
		return nil, fmt.Errorf("open spool %s: in use by another process (flock: %w)", dir, err)
	}
	s := &Spool{dir: dir, maxBytes: maxBytes, lock: lock, sizes: map[string]int64{}}
	if err := s.clean(); err != nil {
		s.Close()
		return nil, err
	}
	if err := s.index(); err != nil {
		s.Close()
		return nil, err
	}
	return s, nil
}

// Close releases the lock.
func (s *Spool) Close() error {
	if s.lock == nil {
		return nil
	}
	err := s.lock.Close()
	s.lock = nil
	return err
}

// Dir returns the spool directory.
func (s *Spool) Dir() string { return s.dir }

// MaxBytes returns the bound.
func (s *Spool) MaxBytes() int64 { return s.maxBytes }

// clean removes the temporary files of an earlier run.
func (s *Spool) clean() error {
	ents, err := os.ReadDir(filepath.Join(s.dir, tmpDir))
	if err != nil {
		return fmt.Errorf("open spool: %w", err)
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(s.dir, tmpDir, e.Name())); err != nil {
			return fmt.Errorf("open spool: %w", err)
		}
	}
	return nil
}

// index records the objects already in the spool.
func (s *Spool) index() error {
	root := filepath.Join(s.dir, objectsDir)
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, err := filepath.Rel(root, path)
		if err != nil {
			return err
		}
		key := filepath.ToSlash(rel)
		if store.CheckKey(key) != nil || !d.Type().IsRegular() {
			return nil // not ours
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		s.sizes[key] = info.Size()
		s.size += info.Size()
		return nil
	})
	if err != nil {
		return fmt.Errorf("open spool: index %s: %w", root, err)
	}
	return nil
}

func (s *Spool) path(key string) string {
	return filepath.Join(s.dir, objectsDir, filepath.FromSlash(key))
}

// Put stores an object under key, replacing one with the same key. It
// fails with ErrFull, storing nothing, when the spool would hold more than
// its bound. When Put returns nil the object is on disk (fsync'ed).
func (s *Spool) Put(key string, data []byte) error {
	if err := store.CheckKey(key); err != nil {
		return fmt.Errorf("spool put: %w", err)
	}
	s.mu.Lock()
	old := s.sizes[key]
	if s.size-old+int64(len(data)) > s.maxBytes {
		s.mu.Unlock()
		return fmt.Errorf("spool put %s (%d bytes): %w (%d of %d bytes used)", key, len(data), ErrFull, s.size, s.maxBytes)
	}
	// Reserve the space so that concurrent writers cannot overshoot.
	s.sizes[key] = int64(len(data))
	s.size += int64(len(data)) - old
	s.mu.Unlock()
	if err := s.writeFile(s.path(key), data); err != nil {
		s.mu.Lock()
		if _, statErr := os.Stat(s.path(key)); statErr == nil && old > 0 {
			s.sizes[key] = old // the old object is still there
			s.size += old - int64(len(data))
		} else {
			delete(s.sizes, key)
			s.size -= int64(len(data))
		}
		s.mu.Unlock()
		return fmt.Errorf("spool put %s: %w", key, err)
	}
	return nil
}

// writeFile writes path atomically: a temporary file, fsync, rename, fsync
// of the directory.
func (s *Spool) writeFile(path string, data []byte) error {
	f, err := os.CreateTemp(filepath.Join(s.dir, tmpDir), "w-*")
	if err != nil {
		return err
	}
	tmp := f.Name()
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		s.dirMu.Lock()
		err = os.MkdirAll(filepath.Dir(path), 0o750)
		if err == nil {
			err = os.Rename(tmp, path)
		}
		s.dirMu.Unlock()
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return syncDir(filepath.Dir(path))
}

// prune removes the empty directories from dir up to, not including, the
// objects directory (date directories of segments uploaded long ago).
func (s *Spool) prune(dir string) {
	root := filepath.Join(s.dir, objectsDir)
	s.dirMu.Lock()
	defer s.dirMu.Unlock()
	for dir != root && strings.HasPrefix(dir, root+string(filepath.Separator)) {
		if os.Remove(dir) != nil {
			return // not empty
		}
		dir = filepath.Dir(dir)
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	return err
}

// Get reads an object; an absent key gives an error wrapping
// fs.ErrNotExist.
func (s *Spool) Get(key string) ([]byte, error) {
	if err := store.CheckKey(key); err != nil {
		return nil, fmt.Errorf("spool get: %w", err)
	}
	b, err := os.ReadFile(s.path(key))
	if err != nil {
		return nil, fmt.Errorf("spool get: %w", err)
	}
	return b, nil
}

// Remove deletes an object (an uploaded one). Removing an absent key is not
// an error.
func (s *Spool) Remove(key string) error {
	if err := store.CheckKey(key); err != nil {
		return fmt.Errorf("spool remove: %w", err)
	}
	if err := os.Remove(s.path(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("spool remove: %w", err)
	}
	s.forget(key)
	s.prune(filepath.Dir(s.path(key)))
	return nil
}

func (s *Spool) forget(key string) {
	s.mu.Lock()
	s.size -= s.sizes[key]
	delete(s.sizes, key)
	s.mu.Unlock()
}

// SetAside moves an object out of the upload queue into conflict/, where
// it stays for an operator: the store holds a different object under its
// key.
func (s *Spool) SetAside(key string) error {
	if err := store.CheckKey(key); err != nil {
		return fmt.Errorf("spool set aside: %w", err)
	}
	dst := filepath.Join(s.dir, conflictDir, filepath.FromSlash(key))
	if err := os.MkdirAll(filepath.Dir(dst), 0o750); err != nil {
		return fmt.Errorf("spool set aside %s: %w", key, err)
	}
	if err := os.Rename(s.path(key), dst); err != nil {
		return fmt.Errorf("spool set aside %s: %w", key, err)
	}
	s.forget(key)
	s.prune(filepath.Dir(s.path(key)))
	return nil
}

// Keys returns the keys of the objects held, in lexical order.
func (s *Spool) Keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.sizes))
	for k := range s.sizes {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// Bytes returns the size of the objects held whose keys start with prefix
// ("" for all).
func (s *Spool) Bytes(prefix string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if prefix == "" {
		return s.size
	}
	var n int64
	for k, sz := range s.sizes {
		if strings.HasPrefix(k, prefix) {
			n += sz
		}
	}
	return n
}

// StreamPrefix is the key prefix of the segments of a stream.
func StreamPrefix(st keys.Stream) string { return keys.PrefixRaw + st.String() + "/" }

func (s *Spool) seqPath(st keys.Stream) string {
	return filepath.Join(s.dir, seqDir, "agent="+st.Agent, fmt.Sprintf("stream=%d.next", st.Stream))
}

// NextSeq returns the number of the next segment of a stream: the larger
// of the number saved by SaveNextSeq and one past the highest segment held.
// known is false when the spool has never numbered segments of the stream.
func (s *Spool) NextSeq(st keys.Stream) (next uint64, known bool, err error) {
	b, err := os.ReadFile(s.seqPath(st))
	switch {
	case err == nil:
		v, perr := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
		if perr != nil {
			return 0, false, fmt.Errorf("spool: %s: %q is not a sequence number", s.seqPath(st), b)
		}
		next, known = v, true
	case errors.Is(err, fs.ErrNotExist):
	default:
		return 0, false, fmt.Errorf("spool: %w", err)
	}
	prefix := StreamPrefix(st)
	for _, k := range s.Keys() {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		p, err := keys.Parse(k)
		if err != nil || p.Kind != keys.KindSegment {
			continue
		}
		known = true
		if p.Seq+1 > next {
			next = p.Seq + 1
		}
	}
	return next, known, nil
}

// SaveNextSeq records the number of the next segment of a stream.
func (s *Spool) SaveNextSeq(st keys.Stream, next uint64) error {
	if err := s.writeFile(s.seqPath(st), []byte(strconv.FormatUint(next, 10)+"\n")); err != nil {
		return fmt.Errorf("spool: save next sequence number of %s: %w", st, err)
	}
	return nil
}
