package lake

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Sink receives finished objects. key is the full object key below the store
// root, e.g. "lake/http/dt=2024-01-01/hour=00/run-abc-0000.parquet". Put
// replaces an existing object with the same key, and readers never see a
// partial object.
type Sink interface {
	Put(ctx context.Context, key string, body []byte) error
}

// DirSink is a Sink that stores objects as files below a local directory.
// Each object is written to a temporary file in its final directory, synced,
// made world-readable and renamed over the final name, so readers see either
// the old file or the whole new one. Temporary names start with a dot and do
// not end in .parquet, so lake globs never match them.
type DirSink struct {
	// Root is the directory that keys are relative to.
	Root string
}

// Put writes body to Root/key atomically.
func (s DirSink) Put(ctx context.Context, key string, body []byte) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if s.Root == "" {
		return fmt.Errorf("put %s: DirSink has no root", key)
	}
	if !fs.ValidPath(key) || key == "." {
		return fmt.Errorf("put %s: invalid object key", key)
	}
	dst := filepath.Join(s.Root, filepath.FromSlash(key))
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(dst)+".tmp-*")
	if err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	committed := false
	defer func() {
		if !committed {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	if _, err := tmp.Write(body); err != nil {
		return fmt.Errorf("put %s: write %s: %w", key, tmp.Name(), err)
	}
	if err := tmp.Chmod(0o644); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("put %s: sync %s: %w", key, tmp.Name(), err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("put %s: close %s: %w", key, tmp.Name(), err)
	}
	if err := os.Rename(tmp.Name(), dst); err != nil {
		return fmt.Errorf("put %s: %w", key, err)
	}
	committed = true
	if err := syncDir(dir); err != nil {
		return fmt.Errorf("put %s: sync directory: %w", key, err)
	}
	return nil
}

// syncDir makes a rename in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}
