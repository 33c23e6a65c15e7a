package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/parquet-go/parquet-go"

	"github.com/flowlake/flowlake/internal/testcap"
	"github.com/flowlake/flowlake/schema"
)

// Segments of a TLS capture parsed without keys stay encrypted; reparse
// with the key log replaces their rows with decrypted ones.
func TestReparseWithKeylog(t *testing.T) {
	capPath := testcap.Path(t, "pcapfs-feature_test.pcap")
	keyPath := testcap.Path(t, "pcapfs-feature_test.keylog")
	dir := t.TempDir()
	if out, err := runCLI(t, "segment", "-q", "--store", dir, "--agent", "probe", "--max-bytes", "4KiB", capPath); err != nil {
		t.Fatalf("segment: %v\n%s", err, out)
	}
	tlsRows := func() (rows []schema.TLS) {
		files, _ := filepath.Glob(filepath.Join(dir, "lake", "tls", "*", "*", "*.parquet"))
		for _, f := range files {
			rs, err := parquet.ReadFile[schema.TLS](f)
			if err != nil {
				t.Fatal(err)
			}
			rows = append(rows, rs...)
		}
		return rows
	}
	httpRows := func() (n, tls int) {
		files, _ := filepath.Glob(filepath.Join(dir, "lake", "http", "*", "*", "*.parquet"))
		for _, f := range files {
			rs, err := parquet.ReadFile[schema.HTTP](f)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rs {
				n++
				if r.TLS {
					tls++
				}
			}
		}
		return n, tls
	}
	before := tlsRows()
	if len(before) != 3 {
		t.Fatalf("%d tls rows before reparse, want 3", len(before))
	}
	for _, r := range before {
		if r.Decrypted {
			t.Fatalf("decrypted without keys: %+v", r)
		}
	}
	n0, _ := httpRows()
	out, err := runCLI(t, "reparse", "--store", dir, "--agent", "probe", "--keylog", keyPath)
	if err != nil {
		t.Fatalf("reparse: %v\n%s", err, out)
	}
	if !strings.Contains(out, "segments parsed again") {
		t.Errorf("reparse output: %s", out)
	}
	after := tlsRows()
	if len(after) != len(before) {
		t.Fatalf("%d tls rows after reparse, %d before: rows were added, not replaced", len(after), len(before))
	}
	decrypted := 0
	for _, r := range after {
		if r.Decrypted {
			decrypted++
		}
	}
	n1, tls1 := httpRows()
	if decrypted == 0 || tls1 == 0 || n1 != n0+tls1 {
		t.Errorf("after reparse: %d of %d tls rows decrypted, %d http rows (%d over TLS), %d before", decrypted, len(after), n1, tls1, n0)
	}
	if _, err := runCLI(t, "reparse", "--store", dir); err == nil || !strings.Contains(err.Error(), "--agent") {
		t.Errorf("reparse without --agent: %v", err)
	}
	if _, err := runCLI(t, "reparse", "--store", dir, "--agent", "nobody"); err == nil || !strings.Contains(err.Error(), "no parsed segments") {
		t.Errorf("reparse of an unknown agent: %v", err)
	}
}
