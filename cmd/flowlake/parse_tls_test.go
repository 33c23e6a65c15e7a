package main

import (
	"bytes"
	"database/sql"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/flowlake/flowlake/internal/store"
	"github.com/flowlake/flowlake/internal/testcap"
)

// tlsLake reads the decrypted exchanges and the tls rows of a lake.
func tlsLake(t *testing.T, lake string) (exchanges []string, statuses []string) {
	t.Helper()
	db, err := sql.Open("duckdb", "")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	glob := func(table string) string {
		return fmt.Sprintf("read_parquet('%s/lake/%s/*/*/*.parquet', hive_partitioning=true)", lake, table)
	}
	if matches, _ := filepath.Glob(filepath.Join(lake, "lake", "http", "*", "*", "*.parquet")); len(matches) > 0 {
		rows, err := db.Query("SELECT method, host, uri, status, tls FROM " + glob("http") + " ORDER BY ts")
		if err != nil {
			t.Fatal(err)
		}
		for rows.Next() {
			var m, h, u string
			var st int
			var tls bool
			if err := rows.Scan(&m, &h, &u, &st, &tls); err != nil {
				t.Fatal(err)
			}
			exchanges = append(exchanges, fmt.Sprintf("%s %s%s %d tls=%v", m, h, u, st, tls))
		}
		rows.Close()
	}
	rows, err := db.Query("SELECT key_status, decrypted FROM " + glob("tls"))
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var ks string
		var dec bool
		if err := rows.Scan(&ks, &dec); err != nil {
			t.Fatal(err)
		}
		statuses = append(statuses, fmt.Sprintf("%s decrypted=%v", ks, dec))
	}
	return exchanges, statuses
}

// noSecrets fails when a file under dir, or text, holds a secret of the
// key log (raw or in hex).
func noSecrets(t *testing.T, keylogPath, dir, text string) {
	t.Helper()
	b, err := os.ReadFile(keylogPath)
	if err != nil {
		t.Fatal(err)
	}
	var secrets [][]byte
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 {
			raw, _ := hex.DecodeString(f[2])
			secrets = append(secrets, raw, []byte(strings.ToLower(f[2])), []byte(strings.ToUpper(f[2])))
		}
	}
	check := func(where string, data []byte) {
		for _, s := range secrets {
			if len(s) >= 16 && bytes.Contains(data, s) {
				t.Errorf("%s holds a secret of the key log", where)
			}
		}
	}
	check("the output", []byte(text))
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		check(path, data)
		return nil
	})
}

// flowlake parse --keylog decrypts; without keys the handshake says so; a
// pcapng with the secrets injected (editcap --inject-secrets) decrypts
// without --keylog; no secret reaches the lake or the output.
func TestParseKeylogDecrypts(t *testing.T) {
	capture := testcap.Path(t, "zeek-tls12-decryption.pcap")
	keys := testcap.Path(t, "zeek-tls12-decryption.keylog")
	want := []string{"GET heise.de/ 301 tls=true"}

	lake := t.TempDir()
	out, err := runCLI(t, "parse", "--lake", lake, "--keylog", keys, capture)
	if err != nil {
		t.Fatalf("parse: %v\n%s", err, out)
	}
	if !strings.Contains(out, "TLS handshakes  1  (1 decrypted)") {
		t.Errorf("summary:\n%s", out)
	}
	xs, sts := tlsLake(t, lake)
	if fmt.Sprint(xs) != fmt.Sprint(want) || fmt.Sprint(sts) != "[decrypted decrypted=true]" {
		t.Errorf("with --keylog: http %v, tls %v", xs, sts)
	}
	noSecrets(t, keys, lake, out)

	lake = t.TempDir()
	if out, err = runCLI(t, "parse", "--lake", lake, capture); err != nil {
		t.Fatalf("parse: %v\n%s", err, out)
	}
	xs, sts = tlsLake(t, lake)
	if len(xs) != 0 || fmt.Sprint(sts) != "[no-keys decrypted=false]" {
		t.Errorf("without keys: http %v, tls %v", xs, sts)
	}

	if _, err := exec.LookPath("editcap"); err != nil {
		t.Skip("editcap not installed (Debian: apt-get install tshark): pcapng Decryption Secrets Blocks not tested")
	}
	dsb := filepath.Join(t.TempDir(), "with-secrets.pcapng")
	if b, err := exec.Command("editcap", "--inject-secrets", "tls,"+keys, capture, dsb).CombinedOutput(); err != nil {
		t.Fatalf("editcap: %v\n%s", err, b)
	}
	lake = t.TempDir()
	if out, err = runCLI(t, "parse", "--lake", lake, dsb); err != nil {
		t.Fatalf("parse: %v\n%s", err, out)
	}
	xs, sts = tlsLake(t, lake)
	if fmt.Sprint(xs) != fmt.Sprint(want) || fmt.Sprint(sts) != "[decrypted decrypted=true]" {
		t.Errorf("with the secrets in the pcapng: http %v, tls %v", xs, sts)
	}
	noSecrets(t, keys, lake, out)
}

// flowlake segment decrypts like flowlake parse: with --keylog, and with
// the secrets inside a pcapng (Decryption Secrets Blocks), through the
// in-process functions, the capture cut into many segments. With remote
// functions every segment's secrets object holds the key lines, and the
// pipeline run over the store decrypts the same; a re-run leaves them.
func TestSegmentKeylogDecrypts(t *testing.T) {
	capture := testcap.Path(t, "pcapfs-system-tests.pcapng")
	keys := testcap.Path(t, "pcapfs-system-tests.keylog")
	ref := t.TempDir()
	if out, err := runCLI(t, "parse", "-q", "--lake", ref, "--keylog", keys, capture); err != nil {
		t.Fatalf("parse: %v\n%s", err, out)
	}
	want, wantTLS := tlsLake(t, ref)
	decrypted := 0
	for _, x := range want {
		if strings.HasSuffix(x, "tls=true") {
			decrypted++
		}
	}
	if decrypted == 0 {
		t.Fatalf("parse --keylog decrypts nothing: %v", want)
	}
	segment := func(extra ...string) string {
		t.Helper()
		dir := t.TempDir()
		args := append([]string{"segment", "-q", "--store", dir, "--agent", "probe", "--max-bytes", "4KiB"}, extra...)
		if out, err := runCLI(t, args...); err != nil {
			t.Fatalf("segment %v: %v\n%s", extra, err, out)
		}
		return dir
	}
	check := func(what, dir string) {
		t.Helper()
		got, gotTLS := tlsLake(t, dir)
		if fmt.Sprint(got) != fmt.Sprint(want) || fmt.Sprint(gotTLS) != fmt.Sprint(wantTLS) {
			t.Errorf("%s:\n  http %v\n  tls %v\nwant (parse --keylog)\n  http %v\n  tls %v", what, got, gotTLS, want, wantTLS)
		}
		noSecrets(t, keys, filepath.Join(dir, "lake"), "")
	}
	dir := segment("--keylog", keys, capture)
	if raw, _ := filepath.Glob(filepath.Join(dir, "raw", "*", "*", "*", "*", "*", "*", "*.pcapng.zst")); len(raw) < 4 {
		t.Fatalf("only %d segments", len(raw))
	}
	check("segment --keylog", dir)

	// Remote functions: secrets objects, then the pipeline over the store.
	remote := segment("--functions", "none", "--keylog", keys, capture)
	st, err := store.NewLocal(remote)
	if err != nil {
		t.Fatal(err)
	}
	segs := agentSegments(t, st, "probe")
	secrets := secretsObjects(t, st, "probe")
	if len(secrets[0]) != len(segs[0]) {
		t.Fatalf("%d secrets objects for %d segments", len(secrets[0]), len(segs[0]))
	}
	parseAll(t, st, "probe", segs)
	check("segment --functions none --keylog, then the functions", remote)
	if out, err := runCLI(t, "segment", "-q", "--store", remote, "--agent", "probe", "--max-bytes", "4KiB", "--functions", "none", "--keylog", keys, capture); err != nil {
		t.Fatalf("re-run: %v\n%s", err, out)
	}

	if _, err := exec.LookPath("editcap"); err != nil {
		t.Skip("editcap not installed (Debian: apt-get install tshark): pcapng Decryption Secrets Blocks not tested")
	}
	dsb := filepath.Join(t.TempDir(), "with-secrets.pcapng")
	if b, err := exec.Command("editcap", "--inject-secrets", "tls,"+keys, capture, dsb).CombinedOutput(); err != nil {
		t.Fatalf("editcap: %v\n%s", err, b)
	}
	check("segment of a pcapng with secrets blocks", segment(dsb))
}
