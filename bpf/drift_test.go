package bpf

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGeneratedUpToDate rebuilds the eBPF objects and their Go bindings
// with the //go:generate line of gen.go into a temporary directory and
// checks that the committed files are identical: the committed objects
// are what the C sources compile to. It needs clang and llvm-strip (CI
// installs them) and skips without them.
func TestGeneratedUpToDate(t *testing.T) {
	for _, tool := range []string{"clang", "llvm-strip"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s is not installed (Debian: clang llvm); the committed objects are not checked", tool)
		}
	}
	if _, err := os.Stat("/usr/include/bpf/bpf_helpers.h"); err != nil {
		t.Skip("libbpf headers missing (Debian: libbpf-dev); the committed objects are not checked")
	}
	args := generateArgs(t)
	out := t.TempDir()
	cmd := exec.Command("go", append([]string{"run"}, append(args[:1:1], append([]string{"-output-dir", out}, args[1:]...)...)...)...)
	cmd.Env = append(os.Environ(), "GOPACKAGE=bpf", "GOFILE=gen.go")
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, b)
	}
	files, err := filepath.Glob(filepath.Join(out, "*"))
	if err != nil || len(files) == 0 {
		t.Fatalf("bpf2go wrote nothing to %s (%v)", out, err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		fresh, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		committed, err := os.ReadFile(name)
		if err != nil {
			t.Errorf("%s: generated but not committed: %v (run make bpf)", name, err)
			continue
		}
		if !bytes.Equal(fresh, committed) {
			t.Errorf("%s differs from what %s gives now (%d vs %d bytes): run make bpf and commit the result", name, clangVersion(), len(committed), len(fresh))
		}
	}
}

// generateArgs returns the bpf2go command of gen.go's //go:generate line:
// the package path and its arguments.
func generateArgs(t *testing.T) []string {
	t.Helper()
	f, err := os.Open("gen.go")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "//go:generate go run "); ok {
			return strings.Fields(rest)
		}
	}
	t.Fatal("gen.go has no //go:generate go run line")
	return nil
}

func clangVersion() string {
	out, err := exec.Command("clang", "--version").Output()
	if err != nil {
		return "clang"
	}
	line, _, _ := strings.Cut(string(out), "\n")
	return line
}
