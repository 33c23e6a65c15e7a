package bench

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/parquet-go/parquet-go"
)

// Measurement is what one run of a tool cost.
type Measurement struct {
	Wall   time.Duration // elapsed real time from start to exit
	CPU    time.Duration // user + system time of the process and its waited-for children
	MaxRSS int64         // peak resident set size in bytes (wait4 ru_maxrss)
}

// Measure runs cmd, which must not have been started, and returns its cost.
// The measurement is filled in whenever the process ran, even if it then
// failed; the error is cmd.Run's.
func Measure(cmd *exec.Cmd) (Measurement, error) {
	start := time.Now()
	err := cmd.Run()
	wall := time.Since(start)
	ps := cmd.ProcessState
	if ps == nil {
		return Measurement{}, err
	}
	m := Measurement{Wall: wall, CPU: ps.UserTime() + ps.SystemTime()}
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		m.MaxRSS = int64(ru.Maxrss) * 1024 // Linux reports KiB
	}
	return m, err
}

// Row is one tool's line in a Report: the best (shortest) of its runs and
// the highest peak RSS seen across them.
type Row struct {
	Tool    string
	Note    string // what the tool does, e.g. "reassembly only"
	Output  string // what it produced, e.g. "4220 HTTP requests"
	Runs    []Measurement
	Missing string // why the tool was not run (not installed, not built); empty if it was
	Err     error  // the first failed run, if any
}

// Add records one run.
func (r *Row) Add(m Measurement) { r.Runs = append(r.Runs, m) }

// Best is the run with the shortest wall time; ok is false when there was none.
func (r *Row) Best() (best Measurement, ok bool) {
	for i, m := range r.Runs {
		if i == 0 || m.Wall < best.Wall {
			best = m
		}
	}
	return best, len(r.Runs) > 0
}

// PeakRSS is the largest MaxRSS over all runs.
func (r *Row) PeakRSS() int64 {
	var peak int64
	for _, m := range r.Runs {
		peak = max(peak, m.MaxRSS)
	}
	return peak
}

// Report is the comparison of several tools on one capture.
type Report struct {
	Title    string
	Capture  string // path of the capture file
	Bytes    int64  // its size, the numerator of MB/s
	Packets  int64  // its packet count, or -1 when unknown
	Baseline string // the Row.Tool that ratios are taken against
	Rows     []*Row
	Notes    []string // printed under the table
}

// header names the table columns; cells renders a Row in this order.
var header = []string{"tool", "seconds", "MB/s", "peak RSS MiB", "vs flowlake", "cpu s", "output", "note"}

func (rep *Report) baseline() (Measurement, bool) {
	for _, r := range rep.Rows {
		if r.Tool == rep.Baseline && r.Err == nil {
			return r.Best()
		}
	}
	return Measurement{}, false
}

func (rep *Report) cells(r *Row) []string {
	best, ok := r.Best()
	switch {
	case r.Missing != "":
		return []string{r.Tool, "-", "-", "-", "-", "-", r.Missing, r.Note}
	case r.Err != nil || !ok:
		msg := "failed"
		if r.Err != nil {
			msg = "failed: " + firstLine(r.Err.Error())
		}
		return []string{r.Tool, "-", "-", "-", "-", "-", msg, r.Note}
	}
	secs := best.Wall.Seconds()
	ratio := "n/a"
	if base, ok := rep.baseline(); ok {
		ratio = fmt.Sprintf("%.2f×", secs/base.Wall.Seconds())
	}
	return []string{
		r.Tool,
		fmt.Sprintf("%.2f", secs),
		fmt.Sprintf("%.1f", float64(rep.Bytes)/1e6/secs),
		fmt.Sprintf("%.0f", float64(r.PeakRSS())/(1<<20)),
		ratio,
		fmt.Sprintf("%.2f", best.CPU.Seconds()),
		r.Output,
		r.Note,
	}
}

func (rep *Report) describe() string {
	packets := "? packets"
	if rep.Packets >= 0 {
		packets = fmt.Sprintf("%d packets", rep.Packets)
	}
	runs := 0
	for _, r := range rep.Rows {
		runs = max(runs, len(r.Runs))
	}
	return fmt.Sprintf("%s: %d bytes (%.1f MB), %s; best of %d run(s) per tool, pinned to CPU 0",
		rep.Capture, rep.Bytes, float64(rep.Bytes)/1e6, packets, runs)
}

// WriteText writes the report as an aligned plain-text table.
func (rep *Report) WriteText(w io.Writer) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "== %s\n%s\n\n", rep.Title, rep.describe())
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, strings.Join(header, "\t"))
	for _, r := range rep.Rows {
		fmt.Fprintln(tw, strings.Join(rep.cells(r), "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(&b, "%s\n", n)
	}
	b.WriteString("\n")
	_, err := w.Write(b.Bytes())
	return err
}

// WriteMarkdown writes the report as a Markdown section with a table.
func (rep *Report) WriteMarkdown(w io.Writer) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "## %s\n\n`%s`\n\n", rep.Title, rep.describe())
	fmt.Fprintf(&b, "| %s |\n", strings.Join(header, " | "))
	fmt.Fprintf(&b, "|%s\n", strings.Repeat(" --- |", len(header)))
	for _, r := range rep.Rows {
		c := rep.cells(r)
		for i := range c {
			c[i] = strings.ReplaceAll(c[i], "|", `\|`)
		}
		fmt.Fprintf(&b, "| %s |\n", strings.Join(c, " | "))
	}
	b.WriteString("\n")
	for _, n := range rep.Notes {
		fmt.Fprintf(&b, "- %s\n", n)
	}
	if len(rep.Notes) > 0 {
		b.WriteString("\n")
	}
	_, err := w.Write(b.Bytes())
	return err
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// LineCounter is an io.Writer that counts newline-terminated lines and
// keeps nothing else.
type LineCounter struct{ Lines int64 }

func (c *LineCounter) Write(p []byte) (int, error) {
	c.Lines += int64(bytes.Count(p, []byte{'\n'}))
	return len(p), nil
}

// Tail is an io.Writer that keeps the last Max bytes written to it (4 KiB
// when Max is 0): enough of a tool's stderr to explain a failure.
type Tail struct {
	Max int
	buf []byte
}

func (t *Tail) Write(p []byte) (int, error) {
	limit := t.Max
	if limit <= 0 {
		limit = 4 << 10
	}
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - limit; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

func (t *Tail) String() string { return string(t.buf) }

// CountParquetRows adds up the row counts in the footers of every .parquet
// file under dir, at any depth (a lake table holds dt=…/hour=…/ partitions).
// A missing dir counts as zero rows in zero files.
func CountParquetRows(dir string) (rows int64, files int, err error) {
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) && path == dir {
				return fs.SkipAll
			}
			return err
		}
		if d.IsDir() || !strings.HasSuffix(d.Name(), ".parquet") {
			return nil
		}
		n, err := parquetRows(path)
		if err != nil {
			return err
		}
		rows += n
		files++
		return nil
	})
	return rows, files, err
}

func parquetRows(path string) (int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return 0, err
	}
	pf, err := parquet.OpenFile(f, st.Size(), parquet.SkipPageIndex(true))
	if err != nil {
		return 0, fmt.Errorf("read parquet footer %s: %w", path, err)
	}
	return pf.NumRows(), nil
}

// CountFiles counts the regular files directly in dir whose names are not
// in skip.
func CountFiles(dir string, skip ...string) (int, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	n := 0
next:
	for _, e := range entries {
		if !e.Type().IsRegular() {
			continue
		}
		for _, s := range skip {
			if e.Name() == s {
				continue next
			}
		}
		n++
	}
	return n, nil
}
