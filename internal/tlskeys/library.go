package tlskeys

import (
	"bufio"
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// Library is a libssl (or a program with OpenSSL linked in) to attach to.
type Library struct {
	// Path is the file as this process opens it: for a library found in
	// another mount namespace it goes through /proc/<pid>/root.
	Path    string
	Version Version
	Layout  Layout
	// VersionFrom is the file whose "OpenSSL x.y.z" text gave the version
	// (libssl 3.x carries none; its libcrypto does).
	VersionFrom string
	dev, ino    uint64
}

// ErrNotOpenSSL reports a file that is not an OpenSSL libssl.
var ErrNotOpenSSL = errors.New("not an OpenSSL library")

// OpenLibrary identifies an OpenSSL library file: its version (from the
// "OpenSSL x.y.z" text in it or in the libcrypto beside it) and the row
// of the offsets table for that version.
func OpenLibrary(path string) (Library, error) {
	lib := Library{Path: path}
	st, err := os.Stat(path)
	if err != nil {
		return lib, fmt.Errorf("libssl %s: %w", path, err)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		lib.dev, lib.ino = uint64(sys.Dev), sys.Ino
	}
	text, needed, err := versionText(path)
	if err != nil {
		return lib, fmt.Errorf("libssl %s: %w", path, err)
	}
	lib.VersionFrom = path
	if text == "" {
		// OpenSSL 3 keeps the version text in libcrypto: the one libssl
		// was linked with, in the same directory.
		for _, n := range needed {
			if !strings.HasPrefix(n, "libcrypto.so") {
				continue
			}
			dir := filepath.Dir(path)
			if real, err := filepath.EvalSymlinks(path); err == nil && !strings.HasPrefix(path, "/proc/") {
				dir = filepath.Dir(real)
			}
			cpath := filepath.Join(dir, n)
			if text, _, err = versionText(cpath); err != nil {
				return lib, fmt.Errorf("libssl %s: its %s: %w", path, n, err)
			}
			lib.VersionFrom = cpath
			break
		}
	}
	if text == "" {
		return lib, fmt.Errorf("libssl %s: %w: no \"OpenSSL x.y.z\" version text in it or in its libcrypto", path, ErrNotOpenSSL)
	}
	if strings.Contains(text, "BoringSSL") {
		return lib, fmt.Errorf("libssl %s: %w: BoringSSL (%q) keeps its secrets elsewhere", path, ErrNotOpenSSL, text)
	}
	if lib.Version, err = ParseVersion(text); err != nil {
		return lib, fmt.Errorf("libssl %s: %w", path, err)
	}
	if lib.Layout, err = Lookup(lib.Version); err != nil {
		return lib, fmt.Errorf("libssl %s: %w", path, err)
	}
	return lib, nil
}

var versionTextRE = regexp.MustCompile(`OpenSSL \d{1,2}\.\d{1,2}\.\d{1,3}[a-z]?[^\x00]{0,40}`)

// versionText returns the first "OpenSSL x.y.z …" text in the read-only
// data of an ELF file, and the libraries it needs.
func versionText(path string) (string, []string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return "", nil, err
	}
	defer f.Close()
	needed, _ := f.DynString(elf.DT_NEEDED)
	for _, name := range []string{".rodata", ".data.rel.ro", ".data"} {
		s := f.Section(name)
		if s == nil || s.Type == elf.SHT_NOBITS {
			continue
		}
		data, err := s.Data()
		if err != nil {
			return "", needed, fmt.Errorf("read %s: %w", name, err)
		}
		if m := versionTextRE.Find(data); m != nil {
			return string(m), needed, nil
		}
	}
	return "", needed, nil
}

// systemGlobs are where distributions install libssl.
var systemGlobs = []string{
	"/usr/lib/*-linux-gnu/libssl.so*", "/lib/*-linux-gnu/libssl.so*",
	"/usr/lib64/libssl.so*", "/lib64/libssl.so*", "/usr/lib/libssl.so*", "/lib/libssl.so*",
	"/usr/local/lib/libssl.so*", "/usr/local/lib64/libssl.so*",
}

var libsslName = regexp.MustCompile(`^libssl\.so(\.[0-9]+)*$`)

// Candidates returns the libssl files worth attaching to: those of the
// system's library directories (for processes that start later) and those
// that running processes have mapped (found in /proc/<pid>/maps, opened
// through /proc/<pid>/root so that containers' libraries count). With
// pid > 0 only that process's libraries are returned. The same file
// (device and inode) is returned once.
func Candidates(procRoot string, pid int) []string {
	var out []string
	seen := map[[2]uint64]bool{}
	add := func(path string) {
		if !strings.HasPrefix(path, procRoot+"/") {
			if real, err := filepath.EvalSymlinks(path); err == nil {
				path = real // libssl.so.3, not the libssl.so link of the -dev package
			}
		}
		st, err := os.Stat(path)
		if err != nil || !st.Mode().IsRegular() {
			return
		}
		sys, ok := st.Sys().(*syscall.Stat_t)
		if !ok {
			return
		}
		k := [2]uint64{uint64(sys.Dev), sys.Ino}
		if seen[k] {
			return
		}
		seen[k] = true
		out = append(out, path)
	}
	if pid <= 0 {
		for _, g := range systemGlobs {
			matches, _ := filepath.Glob(g)
			sort.Strings(matches)
			for _, m := range matches {
				if libsslName.MatchString(filepath.Base(m)) {
					add(m)
				}
			}
		}
	}
	var pids []int
	if pid > 0 {
		pids = []int{pid}
	} else {
		ents, _ := os.ReadDir(procRoot)
		for _, e := range ents {
			if n, err := strconv.Atoi(e.Name()); err == nil && n > 0 {
				pids = append(pids, n)
			}
		}
	}
	for _, p := range pids {
		for _, path := range mappedLibssl(procRoot, p) {
			add(filepath.Join(procRoot, strconv.Itoa(p), "root", path))
		}
	}
	return out
}

// mappedLibssl returns the libssl paths in a process's memory map.
func mappedLibssl(procRoot string, pid int) []string {
	data, err := os.ReadFile(filepath.Join(procRoot, strconv.Itoa(pid), "maps"))
	if err != nil {
		return nil
	}
	var out []string
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) != 6 || !strings.HasPrefix(f[5], "/") {
			continue // anonymous, or " (deleted)"
		}
		if libsslName.MatchString(filepath.Base(f[5])) && !slices.Contains(out, f[5]) {
			out = append(out, f[5])
		}
	}
	return out
}
