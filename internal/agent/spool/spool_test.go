package spool

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/flowlake/flowlake/internal/keys"
)

var st0 = keys.Stream{Agent: "a1", Stream: 0}

func segKey(st keys.Stream, seq uint64) string {
	return keys.Segment(st, seq, time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
}

func TestPutGetRemoveBound(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, 100)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	k0, k1, k2 := segKey(st0, 0), segKey(st0, 1), segKey(st0, 2)
	if err := s.Put(k0, bytes.Repeat([]byte{1}, 40)); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(k1, bytes.Repeat([]byte{2}, 40)); err != nil {
		t.Fatal(err)
	}
	err = s.Put(k2, bytes.Repeat([]byte{3}, 40))
	if !errors.Is(err, ErrFull) {
		t.Fatalf("third object over the bound: %v", err)
	}
	if _, err := s.Get(k2); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("refused object readable: %v", err)
	}
	// Replacing an object counts its new size only.
	if err := s.Put(k1, bytes.Repeat([]byte{4}, 60)); err != nil {
		t.Fatalf("replace within the bound: %v", err)
	}
	if s.Bytes("") != 100 || s.Bytes(StreamPrefix(st0)) != 100 || s.Bytes("status/") != 0 {
		t.Errorf("bytes %d / %d", s.Bytes(""), s.Bytes(StreamPrefix(st0)))
	}
	if b, err := s.Get(k1); err != nil || !bytes.Equal(b, bytes.Repeat([]byte{4}, 60)) {
		t.Errorf("get: %v", err)
	}
	if got := s.Keys(); !reflect.DeepEqual(got, []string{k0, k1}) {
		t.Errorf("keys %v", got)
	}
	if err := s.Remove(k0); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove(k0); err != nil {
		t.Errorf("second remove: %v", err)
	}
	if s.Bytes("") != 60 {
		t.Errorf("bytes after remove %d", s.Bytes(""))
	}
	if err := s.Remove(k1); err != nil {
		t.Fatal(err)
	}
	// The emptied date directories go too.
	if ents, _ := os.ReadDir(filepath.Join(dir, objectsDir)); len(ents) != 0 {
		t.Errorf("objects/ still holds %v", ents)
	}
	if err := s.Put(k1, []byte("again")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("../escape", []byte{1}); err == nil {
		t.Error("key with .. accepted")
	}
	// Nothing is left in tmp/.
	if ents, _ := os.ReadDir(filepath.Join(dir, tmpDir)); len(ents) != 0 {
		t.Errorf("tmp/ holds %d files", len(ents))
	}
}

// A reopened spool finds its objects and numbering; half-written files of
// a dead process are removed; a second process cannot open it.
func TestReopen(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	if s.MaxBytes() != DefaultMaxBytes {
		t.Errorf("default bound %d", s.MaxBytes())
	}
	if _, err := Open(dir, 0); err == nil {
		t.Fatal("second Open of a locked spool succeeded")
	}
	next, known, err := s.NextSeq(st0)
	if err != nil || known || next != 0 {
		t.Fatalf("fresh stream: %d %v %v", next, known, err)
	}
	if err := s.SaveNextSeq(st0, 7); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(segKey(st0, 9), []byte("nine")); err != nil {
		t.Fatal(err)
	}
	st1 := keys.Stream{Agent: "a1", Stream: 1}
	if err := s.Put(segKey(st1, 3), []byte("three")); err != nil {
		t.Fatal(err)
	}
	if err := s.Put(keys.Status("a1", time.Unix(1e9, 0)), []byte("{}")); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if err := os.WriteFile(filepath.Join(dir, tmpDir, "w-123"), []byte("half"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if ents, _ := os.ReadDir(filepath.Join(dir, tmpDir)); len(ents) != 0 {
		t.Error("half-written file not removed")
	}
	if len(s.Keys()) != 3 || s.Bytes("") != int64(len("nine")+len("three")+2) {
		t.Errorf("reopened: keys %v, %d bytes", s.Keys(), s.Bytes(""))
	}
	// The highest spooled segment wins over a lower saved number…
	if next, known, err := s.NextSeq(st0); err != nil || !known || next != 10 {
		t.Errorf("stream 0 next %d %v %v, want 10", next, known, err)
	}
	// …and a spooled segment makes a stream known.
	if next, known, err := s.NextSeq(st1); err != nil || !known || next != 4 {
		t.Errorf("stream 1 next %d %v %v, want 4", next, known, err)
	}
	// A higher saved number wins.
	if err := s.SaveNextSeq(st0, 20); err != nil {
		t.Fatal(err)
	}
	if next, _, _ := s.NextSeq(st0); next != 20 {
		t.Errorf("next %d, want 20", next)
	}
	if err := os.WriteFile(s.seqPath(st0), []byte("garbage"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.NextSeq(st0); err == nil {
		t.Error("garbage sequence file accepted")
	}
}

func TestSetAside(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	k := segKey(st0, 5)
	if err := s.Put(k, []byte("five")); err != nil {
		t.Fatal(err)
	}
	if err := s.SetAside(k); err != nil {
		t.Fatal(err)
	}
	if len(s.Keys()) != 0 || s.Bytes("") != 0 {
		t.Errorf("set-aside object still queued: %v", s.Keys())
	}
	if b, err := os.ReadFile(filepath.Join(dir, conflictDir, filepath.FromSlash(k))); err != nil || string(b) != "five" {
		t.Errorf("conflict copy: %q %v", b, err)
	}
}
