package bench

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
)

func TestMeasure(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	m, err := Measure(exec.Command(sh, "-c", "sleep 0.2"))
	if err != nil {
		t.Fatal(err)
	}
	if m.Wall < 200*time.Millisecond {
		t.Errorf("Wall = %v, want at least 200ms", m.Wall)
	}
	if m.MaxRSS <= 0 {
		t.Errorf("MaxRSS = %d, want > 0", m.MaxRSS)
	}

	// A failing run is still measured and its error returned.
	m, err = Measure(exec.Command(sh, "-c", "exit 3"))
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 3 {
		t.Fatalf("err = %v, want exit status 3", err)
	}
	if m.Wall <= 0 {
		t.Errorf("Wall = %v for a failed run, want > 0", m.Wall)
	}

	// A command that never started has no measurement.
	if _, err := Measure(exec.Command(filepath.Join(t.TempDir(), "missing"))); err == nil {
		t.Fatal("Measure of a missing binary succeeded")
	}
}

func TestRowBestAndPeak(t *testing.T) {
	r := &Row{Tool: "x"}
	if _, ok := r.Best(); ok {
		t.Fatal("Best of no runs reported ok")
	}
	r.Add(Measurement{Wall: 3 * time.Second, MaxRSS: 10})
	r.Add(Measurement{Wall: 2 * time.Second, MaxRSS: 30})
	r.Add(Measurement{Wall: 4 * time.Second, MaxRSS: 20})
	if best, _ := r.Best(); best.Wall != 2*time.Second {
		t.Errorf("Best().Wall = %v, want 2s", best.Wall)
	}
	if got := r.PeakRSS(); got != 30 {
		t.Errorf("PeakRSS() = %d, want 30", got)
	}
}

func TestReport(t *testing.T) {
	rep := &Report{
		Title: "t", Capture: "c.pcap", Bytes: 100e6, Packets: 1000, Baseline: "flowlake",
		Rows: []*Row{
			{Tool: "flowlake", Runs: []Measurement{{Wall: 2 * time.Second, MaxRSS: 64 << 20}}, Output: "7 HTTP exchanges"},
			{Tool: "tshark", Runs: []Measurement{{Wall: 10 * time.Second, MaxRSS: 512 << 20}}, Note: "a|b"},
			{Tool: "tcpflow", Missing: "tcpflow not installed"},
			{Tool: "broken", Err: errors.New("exit status 1: boom\nmore")},
		},
		Notes: []string{"HTTP: close"},
	}
	want := map[string][]string{
		"flowlake": {"flowlake", "2.00", "50.0", "64", "1.00×"},
		"tshark":   {"tshark", "10.00", "10.0", "512", "5.00×"},
		"tcpflow":  {"tcpflow", "-", "-", "-", "-", "-", "tcpflow not installed"},
		"broken":   {"broken", "-", "-", "-", "-", "-", "failed: exit status 1: boom"},
	}
	for _, r := range rep.Rows {
		got := rep.cells(r)
		for i, w := range want[r.Tool] {
			if got[i] != w {
				t.Errorf("%s column %q = %q, want %q", r.Tool, header[i], got[i], w)
			}
		}
	}

	var md bytes.Buffer
	if err := rep.WriteMarkdown(&md); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"## t\n", "| tool | seconds | MB/s |", "| tshark | 10.00 | 10.0 | 512 | 5.00× |", `a\|b`, "- HTTP: close\n"} {
		if !strings.Contains(md.String(), s) {
			t.Errorf("Markdown lacks %q:\n%s", s, md.String())
		}
	}
	var txt bytes.Buffer
	if err := rep.WriteText(&txt); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(txt.String(), "1000 packets") || !strings.Contains(txt.String(), "HTTP: close") {
		t.Errorf("text report:\n%s", txt.String())
	}

	// Without a baseline run there is no ratio.
	rep.Rows[0].Runs = nil
	rep.Rows[0].Missing = "flowlake not built"
	if got := rep.cells(rep.Rows[1])[4]; got != "n/a" {
		t.Errorf("ratio without baseline = %q, want n/a", got)
	}
}

func TestCountParquetRows(t *testing.T) {
	type row struct {
		ID     string `parquet:"id"`
		Status int32  `parquet:"status"`
	}
	table := filepath.Join(t.TempDir(), "http")
	write := func(rel string, n int) {
		t.Helper()
		path := filepath.Join(table, rel)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		rows := make([]row, n)
		for i := range rows {
			rows[i] = row{ID: "x", Status: 200}
		}
		if err := parquet.WriteFile(path, rows); err != nil {
			t.Fatal(err)
		}
	}
	write("dt=2024-01-01/hour=00/a.parquet", 3)
	write("dt=2024-01-01/hour=01/b.parquet", 5)
	write("dt=2024-01-02/hour=23/c.parquet", 0)
	if err := os.WriteFile(filepath.Join(table, "dt=2024-01-01", "_SUCCESS"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	rows, files, err := CountParquetRows(table)
	if err != nil || rows != 8 || files != 3 {
		t.Fatalf("CountParquetRows = %d rows, %d files, %v; want 8, 3, nil", rows, files, err)
	}

	rows, files, err = CountParquetRows(filepath.Join(t.TempDir(), "none"))
	if err != nil || rows != 0 || files != 0 {
		t.Fatalf("missing table: %d rows, %d files, %v; want 0, 0, nil", rows, files, err)
	}

	if err := os.WriteFile(filepath.Join(table, "bad.parquet"), []byte("not parquet"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := CountParquetRows(table); err == nil {
		t.Fatal("a damaged Parquet file was counted without error")
	}
}

func TestCountersAndTail(t *testing.T) {
	var c LineCounter
	c.Write([]byte("a\nb"))
	c.Write([]byte("\n\n"))
	if c.Lines != 3 {
		t.Errorf("Lines = %d, want 3", c.Lines)
	}

	tail := &Tail{Max: 4}
	tail.Write([]byte("abc"))
	tail.Write([]byte("defg"))
	if got := tail.String(); got != "defg" {
		t.Errorf("Tail = %q, want %q", got, "defg")
	}

	dir := t.TempDir()
	for _, name := range []string{"f1", "f2", "report.xml"} {
		if err := os.WriteFile(filepath.Join(dir, name), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if n, err := CountFiles(dir, "report.xml"); err != nil || n != 2 {
		t.Errorf("CountFiles = %d, %v; want 2, nil", n, err)
	}
}
