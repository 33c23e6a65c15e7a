package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/flowlake/flowlake/internal/capture"
	"github.com/flowlake/flowlake/internal/segment"
	"github.com/flowlake/flowlake/internal/store"
	"github.com/flowlake/flowlake/internal/store/miniotest"
	"github.com/flowlake/flowlake/internal/testcap"

	"github.com/flowlake/flowlake/schema"
	"github.com/parquet-go/parquet-go"
)

// capPacket is a packet as the tests compare them.
type capPacket struct {
	ts      int64
	link    int
	data    []byte
	wireLen int
}

// readPackets reads capture data (any format internal/capture reads).
func readPackets(t *testing.T, r io.Reader) []capPacket {
	t.Helper()
	cr, err := capture.NewReader(r)
	if err != nil {
		t.Fatal(err)
	}
	defer cr.Close()
	var out []capPacket
	for {
		data, ts, link, wire, err := cr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("packet %d: %v", len(out), err)
		}
		out = append(out, capPacket{ts, int(link), bytes.Clone(data), wire})
	}
}

func readCaptureFile(t *testing.T, path string) []capPacket {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return readPackets(t, f)
}

// storedSegment is a segment found in the store.
type storedSegment struct {
	key  string
	data []byte
	meta segment.Meta
}

// segmentsIn returns every object under raw/ in seq order, checking that
// each is a segment stored at the key its metadata names.
func segmentsIn(t *testing.T, dir string) []storedSegment {
	t.Helper()
	st, err := store.NewLocal(dir)
	if err != nil {
		t.Fatal(err)
	}
	return segmentsInStore(t, st)
}

func segmentsInStore(t *testing.T, st store.Store) []storedSegment {
	t.Helper()
	ctx := context.Background()
	bySeq := map[uint64]storedSegment{}
	var lo, hi uint64
	err := st.List(ctx, "", func(info store.Info) error {
		if !strings.HasPrefix(info.Key, "raw/") {
			return fmt.Errorf("object outside raw/: %s", info.Key)
		}
		rc, err := st.Get(ctx, info.Key)
		if err != nil {
			return err
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return err
		}
		m, err := segment.ReadMeta(bytes.NewReader(data))
		if err != nil {
			return fmt.Errorf("%s: %w", info.Key, err)
		}
		if k := segment.Key(m); k != info.Key {
			return fmt.Errorf("segment stored at %s, its metadata names %s", info.Key, k)
		}
		if _, dup := bySeq[m.Seq]; dup {
			return fmt.Errorf("seq %d stored twice", m.Seq)
		}
		if len(bySeq) == 0 || m.Seq < lo {
			lo = m.Seq
		}
		hi = max(hi, m.Seq)
		bySeq[m.Seq] = storedSegment{info.Key, data, m}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(bySeq) == 0 {
		return nil
	}
	if hi-lo+1 != uint64(len(bySeq)) {
		t.Fatalf("seqs %d-%d with gaps: %d segments", lo, hi, len(bySeq))
	}
	out := make([]storedSegment, 0, len(bySeq))
	for s := lo; s <= hi; s++ {
		out = append(out, bySeq[s])
	}
	return out
}

// reassemble concatenates the packets of segments, checking each segment's
// packet count.
func reassemble(t *testing.T, segs []storedSegment) []capPacket {
	t.Helper()
	var all []capPacket
	for _, s := range segs {
		ps := readPackets(t, bytes.NewReader(s.data))
		if int64(len(ps)) != s.meta.Packets {
			t.Errorf("%s: %d packets, metadata says %d", s.key, len(ps), s.meta.Packets)
		}
		all = append(all, ps...)
	}
	return all
}

func samePackets(t *testing.T, got, want []capPacket) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%d packets, want %d", len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.ts != w.ts || g.link != w.link || g.wireLen != w.wireLen || !bytes.Equal(g.data, w.data) {
			t.Fatalf("packet %d: ts %d link %d len %d wire %d; want ts %d link %d len %d wire %d",
				i, g.ts, g.link, len(g.data), g.wireLen, w.ts, w.link, len(w.data), w.wireLen)
		}
	}
}

// Segments of a shared capture reassemble to exactly its packets; a re-run
// stores nothing new and recognises every segment; a different object at a
// segment's key is an error and is left alone.
func TestSegmentEndToEnd(t *testing.T) {
	capPath := testcap.Path(t, "ndpi-1kxun.pcap")
	dir := t.TempDir()
	args := []string{"segment", "--store", dir, "--functions", "none", "--agent", "probe-1", "--stream", "3", "--first-seq", "5",
		"--max-bytes", "256KiB", "--max-span", "30s", capPath}
	out, err := runCLI(t, args...)
	if err != nil {
		t.Fatalf("segment: %v\n%s", err, out)
	}
	segs := segmentsIn(t, dir)
	if len(segs) < 10 {
		t.Fatalf("%d segments, want at least 10 (2.5 MB in 256 KiB)", len(segs))
	}
	for i, s := range segs {
		m := s.meta
		if m.Seq != 5+uint64(i) || m.Agent != "probe-1" || m.Stream != 3 || m.Source != "file:ndpi-1kxun.pcap" {
			t.Errorf("segment %d metadata %+v", i, m)
		}
		if m.Bytes > 256<<10 || time.Duration(m.LastTS-m.FirstTS) > 30*time.Second {
			t.Errorf("%s over a limit: %d bytes, span %v", s.key, m.Bytes, time.Duration(m.LastTS-m.FirstTS))
		}
	}
	want := readCaptureFile(t, capPath)
	samePackets(t, reassemble(t, segs), want)
	summary := fmt.Sprintf("into %d segment(s) in file://%s: %d uploaded, 0 already uploaded", len(segs), dir, len(segs))
	for _, s := range []string{summary, fmt.Sprintf("seq 5-%d, %d packets", 4+len(segs), len(want)), "MB/s", segs[0].key} {
		if !strings.Contains(out, s) {
			t.Errorf("output lacks %q:\n%s", s, out)
		}
	}

	// Again: same keys, same bytes, all recognised.
	out, err = runCLI(t, args...)
	if err != nil {
		t.Fatalf("second run: %v\n%s", err, out)
	}
	if s := fmt.Sprintf("0 uploaded, %d already uploaded", len(segs)); !strings.Contains(out, s) {
		t.Errorf("second run output lacks %q:\n%s", s, out)
	}
	again := segmentsIn(t, dir)
	if len(again) != len(segs) {
		t.Fatalf("second run: %d segments, first %d", len(again), len(segs))
	}
	for i := range segs {
		if again[i].key != segs[i].key || !bytes.Equal(again[i].data, segs[i].data) {
			t.Errorf("segment %d changed by the second run", i)
		}
	}

	// A different object at a segment's key stops the run and is kept.
	victim := filepath.Join(dir, filepath.FromSlash(segs[2].key))
	other := bytes.Clone(segs[3].data)
	if err := os.Chmod(victim, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(victim, other, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err = runCLI(t, args...)
	if err == nil || !strings.Contains(err.Error(), segs[2].key) || !strings.Contains(err.Error(), "different object") {
		t.Fatalf("run over a different object: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(victim); !bytes.Equal(b, other) {
		t.Error("the different object was overwritten")
	}
	// The same length but other bytes is caught too.
	flipped := bytes.Clone(segs[2].data)
	flipped[len(flipped)-1] ^= 1
	if err := os.WriteFile(victim, flipped, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := runCLI(t, args...); err == nil || !strings.Contains(err.Error(), "different object") {
		t.Fatalf("run over an object of the same size: %v", err)
	}
}

// Segments go to S3 (MinIO) below a prefix just as to a directory.
func TestSegmentS3(t *testing.T) {
	capPath := testcap.Path(t, "ndpi-1kxun.pcap")
	srv := miniotest.Start(t)
	srv.SetEnv(t)
	url := "s3://" + srv.Bucket + "/site-a"
	args := []string{"segment", "--store", url, "--agent", "s3-probe", "--max-bytes", "512KiB", capPath}
	out, err := runCLI(t, args...)
	if err != nil {
		t.Fatalf("segment: %v\n%s", err, out)
	}
	st, err := store.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	segs := segmentsInStore(t, st)
	samePackets(t, reassemble(t, segs), readCaptureFile(t, capPath))
	if s := fmt.Sprintf("in %s: %d uploaded, 0 already uploaded", url, len(segs)); !strings.Contains(out, s) {
		t.Errorf("output lacks %q:\n%s", s, out)
	}
	out, err = runCLI(t, args...)
	if err != nil || !strings.Contains(out, fmt.Sprintf("0 uploaded, %d already uploaded", len(segs))) {
		t.Errorf("second run: %v\n%s", err, out)
	}
}

// writePcap writes packets as a nanosecond pcap file.
func writePcap(t *testing.T, path string, ps []capPacket) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := pcapgo.NewWriterNanos(f)
	if err := w.WriteFileHeader(65536, 1); err != nil {
		t.Fatal(err)
	}
	for _, p := range ps {
		ci := gopacket.CaptureInfo{Timestamp: time.Unix(0, p.ts), CaptureLength: len(p.data), Length: p.wireLen}
		if err := w.WritePacket(ci, p.data); err != nil {
			t.Fatal(err)
		}
	}
}

// Several files are one stream: segments run across the file boundary, and
// each records the file its first packet came from. The store and agent
// come from the environment.
func TestSegmentSeveralFilesFromEnv(t *testing.T) {
	want := readCaptureFile(t, testcap.Path(t, "ndpi-1kxun.pcap"))
	tmp := t.TempDir()
	a, b := filepath.Join(tmp, "part-a.pcap"), filepath.Join(tmp, "part-b.pcap")
	writePcap(t, a, want[:1000])
	writePcap(t, b, want[1000:])
	dir := filepath.Join(tmp, "store")
	env := map[string]string{"FLOWLAKE_STORE": dir, "FLOWLAKE_AGENT": "from-env"}
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"segment", "--functions", "none", "--max-bytes", "1MiB", "--max-span", "1h", a, b},
		func(k string) string { return env[k] }, &out, &errb)
	if err != nil {
		t.Fatalf("segment: %v\n%s%s", err, out.String(), errb.String())
	}
	segs := segmentsIn(t, dir)
	samePackets(t, reassemble(t, segs), want)
	sources := map[string]int{}
	for _, s := range segs {
		if s.meta.Agent != "from-env" {
			t.Errorf("%s: agent %q", s.key, s.meta.Agent)
		}
		sources[s.meta.Source]++
	}
	if sources["file:part-a.pcap"] == 0 || sources["file:part-b.pcap"] == 0 || len(sources) != 2 {
		t.Errorf("sources %v", sources)
	}
	// The boundary does not cut: the segment that reaches into part-b
	// starts in part-a.
	n := 0
	for _, s := range segs {
		if n < 1000 && n+int(s.meta.Packets) > 1000 && s.meta.Source != "file:part-a.pcap" {
			t.Errorf("segment across the file boundary has source %q", s.meta.Source)
		}
		n += int(s.meta.Packets)
	}
}

// A damaged file is segmented up to the damage, the next file still is,
// and the run reports the damage.
func TestSegmentDamagedFile(t *testing.T) {
	src := testcap.Path(t, "gop-test_dns.pcap")
	raw, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	cut := filepath.Join(tmp, "cut.pcap")
	if err := os.WriteFile(cut, raw[:len(raw)-10], 0o644); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(tmp, "store")
	out, err := runCLI(t, "segment", "--store", dir, "--functions", "none", cut, src)
	if err == nil || !strings.Contains(err.Error(), "1 of 2 files could not be read to the end") || !strings.Contains(err.Error(), "cut.pcap") {
		t.Fatalf("damaged file: %v\n%s", err, out)
	}
	full := readCaptureFile(t, src)
	got := reassemble(t, segmentsIn(t, dir))
	if len(got) != 2*len(full)-1 {
		t.Fatalf("%d packets stored, want %d", len(got), 2*len(full)-1)
	}
	samePackets(t, got[len(full)-1:], full)
}

func TestSegmentUsage(t *testing.T) {
	capPath := testcap.Path(t, "gop-test_dns.pcap")
	dir := t.TempDir()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"segment", "--store", dir}, "no capture files"},
		{[]string{"segment", "--store", dir, "--agent", "bad/agent", capPath}, "--agent"},
		{[]string{"segment", "--store", dir, "--stream", "65536", capPath}, "--stream 65536"},
		{[]string{"segment", "--store", dir, "--stream", "-1", capPath}, "--stream -1"},
		{[]string{"segment", "--store", dir, "--max-bytes", "8XB", capPath}, "unknown unit"},
		{[]string{"segment", "--store", dir, "--max-bytes", "0", capPath}, "want from 1 byte"},
		{[]string{"segment", "--store", dir, "--max-bytes", "2GiB", capPath}, "at most 1GiB"},
		{[]string{"segment", "--store", dir, "--max-span", "0s", capPath}, "--max-span"},
		{[]string{"segment", "--store", dir, "--first-seq", "-3", capPath}, "first-seq"},
	} {
		out, err := runCLI(t, tc.args...)
		var ue usageError
		if !errors.As(err, &ue) || !strings.Contains(out+err.Error(), tc.want) {
			t.Errorf("%v: %v (want a usage error with %q)\n%s", tc.args[3:], err, tc.want, out)
		}
	}
	// Not usage errors: a missing file, a directory, a bad store.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"segment", "--store", dir, filepath.Join(dir, "missing.pcap")}, "no such file"},
		{[]string{"segment", "--store", dir, dir}, "is a directory"},
		{[]string{"segment", "--store", "ftp://x/y", capPath}, "unsupported scheme"},
	} {
		_, err := runCLI(t, tc.args...)
		var ue usageError
		if err == nil || errors.As(err, &ue) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error with %q", tc.args[3:], err, tc.want)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 0 {
		t.Errorf("failed runs stored %d entries", len(ents))
	}
	out, err := runCLI(t, "help")
	if err != nil || !regexp.MustCompile(`(?m)^  segment +cut capture files`).MatchString(out) {
		t.Errorf("help does not list segment: %v\n%s", err, out)
	}
}

// An interrupted run stores no partial segment and says how to resume.
func TestSegmentInterrupted(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out bytes.Buffer
	err := run(ctx, []string{"segment", "--store", dir, "--first-seq", "4", testcap.Path(t, "gop-test_dns.pcap")},
		func(string) string { return "" }, &out, &out)
	if err == nil || !strings.Contains(err.Error(), "interrupted: 0 segment(s) stored; the packets from seq 4 on were not uploaded") {
		t.Fatalf("canceled run: %v\n%s", err, out.String())
	}
	if segs := segmentsIn(t, dir); len(segs) != 0 {
		t.Errorf("canceled run stored %d segments", len(segs))
	}
}

func TestParseSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"8MiB", 8 << 20}, {"8mib", 8 << 20}, {"8M", 8 << 20}, {"512k", 512 << 10}, {"512KiB", 512 << 10},
		{"1GiB", 1 << 30}, {"10MB", 10_000_000}, {"1.5KB", 1500}, {"4096", 4096}, {"100 B", 100}, {"2gb", 2e9},
	} {
		got, err := parseSize(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
	}
	for _, in := range []string{"", "MiB", "-1", "0", "0.1", "1.2.3MB", "8 XB", "8 MiB extra", "1e3"} {
		if n, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, n)
		}
	}
	for n, want := range map[int64]string{8 << 20: "8MiB", 1 << 30: "1GiB", 1536: "1536", 3 << 10: "3KiB", 1000: "1000"} {
		if got := formatSize(n); got != want {
			t.Errorf("formatSize(%d) = %s, want %s", n, got, want)
		}
	}
}

// With a directory store the functions run in process by default: the lake
// the segments produce equals the lake of flowlake parse over the same file.
func TestSegmentInProcessFunctions(t *testing.T) {
	capPath := testcap.Path(t, "zeek-http-bro.org.pcap")
	dir := t.TempDir()
	if out, err := runCLI(t, "segment", "-q", "--store", dir, "--agent", "probe", "--max-bytes", "64KiB", capPath); err != nil {
		t.Fatalf("segment: %v\n%s", err, out)
	}
	ref := t.TempDir()
	if out, err := runCLI(t, "parse", "-q", "--lake", ref, "--agent", "probe", capPath); err != nil {
		t.Fatalf("parse: %v\n%s", err, out)
	}
	count := func(root string) (rows int) {
		files, _ := filepath.Glob(filepath.Join(root, "lake", "http", "*", "*", "*.parquet"))
		for _, f := range files {
			rs, err := parquet.ReadFile[schema.HTTP](f)
			if err != nil {
				t.Fatal(err)
			}
			rows += len(rs)
		}
		return rows
	}
	if got, want := count(dir), count(ref); got != want || want != 31 {
		t.Errorf("http rows: segments+functions %d, parse %d (want 31)", got, want)
	}
	if _, err := runCLI(t, "segment", "--store", dir, "--functions", "bogus", capPath); err == nil || !strings.Contains(err.Error(), "--functions") {
		t.Errorf("bad --functions: %v", err)
	}
}
