package tlskeys

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// collected gathers what a Follower emits.
type collected struct {
	mu    sync.Mutex
	lines []string
}

func (c *collected) add(s Secret) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lines = append(c.lines, strings.TrimSuffix(string(s.AppendLine(nil)), "\n"))
}

func (c *collected) waitFor(t *testing.T, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c.mu.Lock()
		got := append([]string(nil), c.lines...)
		c.mu.Unlock()
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d lines, want %d", len(got), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func keyLine(i int) string {
	return fmt.Sprintf("CLIENT_RANDOM %064x %096x", i, i*1000003+7)
}

func appendFile(t *testing.T, path, s string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString(s); err != nil {
		t.Fatal(err)
	}
	f.Close()
}

// TestFollower follows a key log file through growth, partial lines, a bad
// line, truncation, rotation (rename and a new file) and removal, and a
// second file that only appears later.
func TestFollower(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a.keylog"), filepath.Join(dir, "b.keylog")
	appendFile(t, a, "# SSL/TLS secrets log file\n"+keyLine(1)+"\n")
	var logs bytes.Buffer
	var logMu sync.Mutex
	fl := NewFollower([]string{a, b}, 5*time.Millisecond, slog.New(slog.NewJSONHandler(&lockedWriter{&logs, &logMu}, nil)))
	var got collected
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- fl.Run(ctx, got.add) }()

	want := []string{keyLine(1)}
	got.waitFor(t, 1)
	// Growth, with a line written in two parts.
	appendFile(t, a, keyLine(2)+"\n"+keyLine(3)[:40])
	time.Sleep(30 * time.Millisecond)
	appendFile(t, a, keyLine(3)[40:]+"\n")
	want = append(want, keyLine(2), keyLine(3))
	got.waitFor(t, len(want))
	// A line that is not a key log line, with a secret-looking value.
	bad := "CLIENT_RANDOM " + strings.Repeat("ab", 32) + " " + strings.Repeat("f00d", 24) + " extra"
	appendFile(t, a, bad+"\n"+keyLine(4)+"\n")
	want = append(want, keyLine(4))
	got.waitFor(t, len(want))
	// Truncation, then new lines from the start.
	if err := os.Truncate(a, 0); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond)
	appendFile(t, a, keyLine(5)+"\n")
	want = append(want, keyLine(5))
	got.waitFor(t, len(want))
	// Rotation: the old file gets one more line after the rename, then a
	// new file takes the name.
	if err := os.Rename(a, a+".1"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, a+".1", keyLine(6)+"\n")
	appendFile(t, a, keyLine(7)+"\n")
	want = append(want, keyLine(6), keyLine(7))
	got.waitFor(t, len(want))
	// Removal, and a new file later.
	if err := os.Remove(a); err != nil {
		t.Fatal(err)
	}
	time.Sleep(30 * time.Millisecond)
	appendFile(t, a, keyLine(8)+"\n")
	// The second file appears.
	appendFile(t, b, keyLine(9)+"\n")
	want = append(want, keyLine(8), keyLine(9))
	lines := got.waitFor(t, len(want))
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	// Rotation races with the reads: line 6 may come before or after 7.
	if !sameSet(lines, want) {
		t.Errorf("lines:\n%s\nwant:\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
	if fl.Bad() != 1 {
		t.Errorf("Bad() = %d, want 1", fl.Bad())
	}
	logMu.Lock()
	defer logMu.Unlock()
	if strings.Contains(logs.String(), "f00df00d") || strings.Contains(logs.String(), keyLine(3)[80:110]) {
		t.Errorf("a secret shows in the logs:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), "truncated") || !strings.Contains(logs.String(), "rotated") {
		t.Errorf("truncation and rotation not logged:\n%s", logs.String())
	}
}

func sameSet(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	m := map[string]int{}
	for _, s := range a {
		m[s]++
	}
	for _, s := range b {
		m[s]--
	}
	for _, n := range m {
		if n != 0 {
			return false
		}
	}
	return true
}

type lockedWriter struct {
	b  *bytes.Buffer
	mu *sync.Mutex
}

func (w *lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
