//go:build linux

package tlskeys

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// systemLibssl returns the libssl of this system, or skips.
func systemLibssl(t *testing.T) string {
	t.Helper()
	for _, p := range Candidates(t.TempDir(), 0) { // an empty /proc: the system directories only
		return p
	}
	t.Skip("no libssl in the system's library directories")
	return ""
}

func TestOpenLibrary(t *testing.T) {
	path := systemLibssl(t)
	lib, err := OpenLibrary(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%s: OpenSSL %s (version text in %s)", path, lib.Version, lib.VersionFrom)
	if lib.Version.Major == 0 || lib.Layout.Source == "" {
		t.Errorf("%+v", lib)
	}

	dir := t.TempDir()
	notELF := filepath.Join(dir, "libssl.so.3")
	if err := os.WriteFile(notELF, []byte("not an ELF file"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenLibrary(notELF); err == nil || !strings.Contains(err.Error(), notELF) {
		t.Errorf("not an ELF file: %v", err)
	}
	if _, err := OpenLibrary(filepath.Join(dir, "missing.so")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
	// An ELF file without OpenSSL in it.
	if _, err := OpenLibrary("/bin/sh"); !errors.Is(err, ErrNotOpenSSL) {
		t.Errorf("/bin/sh: %v, want ErrNotOpenSSL", err)
	}
}

// TestCandidatesFromMaps finds a library through a process's memory map,
// opened through the process's root (as for a container).
func TestCandidatesFromMaps(t *testing.T) {
	lib := systemLibssl(t)
	real, err := filepath.EvalSymlinks(lib)
	if err != nil {
		t.Fatal(err)
	}
	proc := t.TempDir()
	pdir := filepath.Join(proc, "4242")
	if err := os.MkdirAll(pdir, 0o755); err != nil {
		t.Fatal(err)
	}
	maps := "55d0c0a00000-55d0c0a02000 r--p 00000000 08:01 1234 /usr/bin/curl\n" +
		"7f0000000000-7f0000010000 r-xp 00000000 08:01 5678 " + real + "\n" +
		"7f0000010000-7f0000020000 r--p 00010000 08:01 5678 " + real + "\n" +
		"7f0000020000-7f0000030000 r-xp 00000000 08:01 9999 /usr/lib/x86_64-linux-gnu/libssl3.so\n" +
		"7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]\n"
	if err := os.WriteFile(filepath.Join(pdir, "maps"), []byte(maps), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/", filepath.Join(pdir, "root")); err != nil {
		t.Fatal(err)
	}
	got := Candidates(proc, 4242)
	want := filepath.Join(pdir, "root", real)
	if len(got) != 1 || got[0] != want {
		t.Errorf("Candidates = %q, want [%q]", got, want)
	}
	if _, err := OpenLibrary(got[0]); err != nil {
		t.Errorf("OpenLibrary(%s): %v", got[0], err)
	}
	// All processes: the system library and the mapped one are the same
	// file, returned once.
	if all := Candidates(proc, 0); len(all) != len(Candidates(t.TempDir(), 0)) {
		t.Errorf("Candidates(all) = %q: the same file twice?", all)
	}
}
