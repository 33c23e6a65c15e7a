package store_test

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/flowlake/flowlake/internal/store"
	"github.com/flowlake/flowlake/internal/store/storetest"
)

func TestLocalConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		s, err := store.NewLocal(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { noTempFiles(t, s.Dir()) })
		return s
	})
}

func TestMemConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store { return store.NewMem() })
}

// noTempFiles fails t if a temporary file was left in dir.
func noTempFiles(t *testing.T, dir string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if strings.HasPrefix(d.Name(), ".flowlake-tmp-") {
			t.Errorf("temporary file left behind: %s", p)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

func TestOpen(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()

	// A path, relative or not, and a file URL name the same local store.
	t.Chdir(dir)
	s1, err := store.Open(ctx, "data")
	if err != nil {
		t.Fatal(err)
	}
	if err := s1.Put(ctx, "lake/x", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	want := "file://" + filepath.Join(dir, "data")
	if s1.URL() != want {
		t.Errorf("URL() = %q, want %q", s1.URL(), want)
	}
	if _, err := os.Stat(filepath.Join(dir, "data", "lake", "x")); err != nil {
		t.Errorf("local key is not the file DIR/key: %v", err)
	}
	for _, u := range []string{s1.URL(), filepath.Join(dir, "data"), "file://localhost" + filepath.Join(dir, "data")} {
		s2, err := store.Open(ctx, u)
		if err != nil {
			t.Fatalf("Open(%q): %v", u, err)
		}
		if _, ok := s2.(*store.Local); !ok {
			t.Errorf("Open(%q) = %T, want *store.Local", u, s2)
		}
		if _, err := s2.Stat(ctx, "lake/x"); err != nil {
			t.Errorf("Open(%q) does not see the object: %v", u, err)
		}
	}

	for _, tc := range []struct{ url, want string }{
		{"", "empty URL"},
		{"gs://bucket/x", `unsupported scheme "gs"`},
		{"http://example.com/x", `unsupported scheme "http"`},
		{"s3://", "no bucket"},
		{"s3:///prefix", "no bucket"},
		{"s3:/bucket", "no bucket"},
		{"S3://", "no bucket"},
		{"s3://bucket/p?x=1", "no user, query or fragment"},
		{"file://otherhost/x", "not host"},
		{"file://", "without a path"},
	} {
		_, err := store.Open(ctx, tc.url)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("Open(%q) error = %v, want one containing %q", tc.url, err, tc.want)
		}
	}

	t.Setenv("FLOWLAKE_S3_PATH_STYLE", "maybe")
	if _, err := store.Open(ctx, "s3://bucket"); err == nil || !strings.Contains(err.Error(), "FLOWLAKE_S3_PATH_STYLE") {
		t.Errorf("Open with FLOWLAKE_S3_PATH_STYLE=maybe: %v, want an error naming the variable", err)
	}
}

func TestNewLocalNotADirectory(t *testing.T) {
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := store.NewLocal(f); err == nil {
		t.Error("NewLocal on a regular file succeeded")
	}
	if _, err := store.NewLocal(""); err == nil {
		t.Error("NewLocal(\"\") succeeded")
	}
}

func TestLocalKeyConflicts(t *testing.T) {
	ctx := t.Context()
	s, err := store.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "a/b", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	// a/b is a file, so a/b/c cannot be one.
	for _, put := range []func() error{
		func() error { return s.Put(ctx, "a/b/c", strings.NewReader("y"), 1) },
		func() error { return s.PutIfAbsent(ctx, "a/b/c", strings.NewReader("y"), 1) },
	} {
		err := put()
		if err == nil || !strings.Contains(err.Error(), "a parent of the key is an object") {
			t.Errorf("put below an object: %v, want a clear conflict error", err)
		}
		if errors.Is(err, store.ErrExists) || errors.Is(err, store.ErrNotExist) {
			t.Errorf("conflict error %v must not match ErrExists or ErrNotExist", err)
		}
	}
	// a has keys below it, so it cannot be an object.
	for _, put := range []func() error{
		func() error { return s.Put(ctx, "a", strings.NewReader("y"), 1) },
		func() error { return s.PutIfAbsent(ctx, "a", strings.NewReader("y"), 1) },
	} {
		err := put()
		if err == nil || !strings.Contains(err.Error(), `other keys start with "a/"`) {
			t.Errorf("put of a prefix: %v, want a clear conflict error", err)
		}
		if errors.Is(err, store.ErrExists) {
			t.Errorf("conflict error %v must not match ErrExists", err)
		}
	}
	noTempFiles(t, s.Dir())
	var keys []string
	if err := s.List(ctx, "", func(i store.Info) error { keys = append(keys, i.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys, []string{"a/b"}) {
		t.Errorf("List = %q, want [a/b]", keys)
	}
}

func TestLocalListSkipsForeignFiles(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s, err := store.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(ctx, "k/real", strings.NewReader("x"), 1); err != nil {
		t.Fatal(err)
	}
	// A crashed writer's temporary file and a symbolic link are not objects.
	if err := os.WriteFile(filepath.Join(dir, "k", ".flowlake-tmp-123"), []byte("partial"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "k", "real"), filepath.Join(dir, "k", "link")); err != nil {
		t.Fatal(err)
	}
	var keys []string
	if err := s.List(ctx, "", func(i store.Info) error { keys = append(keys, i.Key); return nil }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(keys, []string{"k/real"}) {
		t.Errorf("List = %q, want [k/real]", keys)
	}
}

func TestLocalDeletePrunesDirectories(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	s, err := store.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"x/y/z/1", "x/keep"} {
		if err := s.Put(ctx, k, strings.NewReader("v"), 1); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Delete(ctx, "x/y/z/1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "x", "y")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("empty directory x/y left behind: %v", err)
	}
	if _, err := os.Stat(filepath.Join(dir, "x", "keep")); err != nil {
		t.Errorf("x/keep: %v", err)
	}
	if err := s.Delete(ctx, "x/keep"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Errorf("the store's own directory was removed: %v", err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) != 0 {
		t.Errorf("store directory holds %v (%v), want nothing", entries, err)
	}
}

func TestLocalFilesReadableByOthers(t *testing.T) {
	dir := t.TempDir()
	s, err := store.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(t.Context(), "p", bytes.NewReader([]byte("x")), 1); err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(filepath.Join(dir, "p"))
	if err != nil {
		t.Fatal(err)
	}
	if st.Mode().Perm() != 0o644 {
		t.Errorf("mode %v, want 0644 so that other tools read the lake", st.Mode().Perm())
	}
}

func TestMemURL(t *testing.T) {
	a, b := store.NewMem(), store.NewMem()
	if a.URL() == b.URL() || !strings.HasPrefix(a.URL(), "mem://") {
		t.Errorf("URLs %q and %q: want distinct mem:// names", a.URL(), b.URL())
	}
	if err := a.Put(t.Context(), "k", strings.NewReader("v"), 1); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Stat(t.Context(), "k"); !errors.Is(err, store.ErrNotExist) {
		t.Errorf("stores share objects: %v", err)
	}
	rc, err := a.Get(t.Context(), "k")
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(rc)
	if string(got) != "v" {
		t.Errorf("Get = %q", got)
	}
}

func TestCheckKey(t *testing.T) {
	for _, k := range []string{"a", "a/b", "dt=2024-01-01/hour=00/x.parquet", ".a/..b/...", "ü/😀", strings.Repeat("k", 1024)} {
		if err := store.CheckKey(k); err != nil {
			t.Errorf("CheckKey(%q): %v", k, err)
		}
	}
	for _, k := range []string{"", "/", "a/", "/a", "a//b", ".", "..", "a/./b", "a/../b", "\xff", "a\x00", ".flowlake-tmp-x", strings.Repeat("k", 1025)} {
		if err := store.CheckKey(k); !errors.Is(err, store.ErrInvalidKey) {
			t.Errorf("CheckKey(%q) = %v, want ErrInvalidKey", k, err)
		}
	}
}
