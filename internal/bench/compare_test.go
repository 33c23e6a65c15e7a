package bench

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/flowlake/flowlake/schema"
)

// realCapture is the shared real-world benchmark capture, relative to the
// repository root (shared/ lives beside the main checkout).
const realCapture = "../shared/testdata/pcaps/bench-mixed-web-24mb.pcap"

// config is read from the environment; see README.md.
type config struct {
	runs      int    // BENCH_RUNS: timed runs per tool, best one reported
	captureMB int    // BENCH_CAPTURE_MB: size of the synthetic capture
	capture   string // BENCH_CAPTURE: path of the synthetic capture
	real      string // BENCH_REAL_PCAP: path of the real-world capture
	out       string // BENCH_OUT: where the Markdown results go
	cpu       string // BENCH_CPU: the one CPU every tool is pinned to
	flowlake  string // BENCH_FLOWLAKE: a flowlake binary to time instead of building cmd/flowlake
}

func loadConfig(t *testing.T) config {
	t.Helper()
	c := config{
		runs:      envInt(t, "BENCH_RUNS", 3),
		captureMB: envInt(t, "BENCH_CAPTURE_MB", 160),
		real:      os.Getenv("BENCH_REAL_PCAP"),
		out:       envString("BENCH_OUT", "/tmp/flowlake-bench/results.md"),
		cpu:       envString("BENCH_CPU", "0"),
		flowlake:  os.Getenv("BENCH_FLOWLAKE"),
	}
	c.capture = envString("BENCH_CAPTURE", fmt.Sprintf("/tmp/flowlake-bench/web-%dmb.pcap", c.captureMB))
	if c.real == "" {
		c.real = filepath.Join(repoRoot(t), filepath.FromSlash(realCapture))
	}
	return c
}

func envString(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}

func envInt(t *testing.T, key string, def int) int {
	t.Helper()
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		t.Fatalf("%s=%q: want a positive integer", key, v)
	}
	return n
}

// repoRoot is the main checkout: this package lives in internal/bench.
func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// A tool is one program under comparison.
type tool struct {
	name    string
	note    string
	missing string // why it cannot run (not installed, not built); empty if it can
	bin     string
	origin  string // where the binary came from, for the results header
	// args is the command line after the binary for one run on capture;
	// dir is a fresh empty directory the run may write to.
	args func(capture, dir string) []string
	// summarize reads what one run produced: a short description for the
	// table and the number of HTTP requests or exchanges it found (-1 when
	// the tool does not parse HTTP).
	summarize func(dir string, stdoutLines int64) (output string, http int64, err error)
}

func lookTool(name string) (bin, missing string) {
	bin, err := exec.LookPath(name)
	if err != nil {
		return "", name + " not installed (Debian: apt-get install " + name + ")"
	}
	return bin, ""
}

func flowlakeTool(bin, origin, missing string) tool {
	return tool{
		name:    "flowlake",
		note:    "parse: TCP reassembly + HTTP/DNS/TLS parsing + Parquet lake",
		bin:     bin,
		origin:  origin,
		missing: missing,
		args: func(capture, dir string) []string {
			return []string{"parse", "--lake", dir, capture}
		},
		summarize: func(dir string, _ int64) (string, int64, error) {
			lake := filepath.Join(dir, "lake") // --lake is the store root; tables live under lake/
			httpRows, httpFiles, err := CountParquetRows(filepath.Join(lake, schema.TableHTTP))
			if err != nil {
				return "", 0, err
			}
			tcpRows, _, err := CountParquetRows(filepath.Join(lake, schema.TableTCP))
			if err != nil {
				return "", 0, err
			}
			return fmt.Sprintf("%d HTTP exchanges (%d Parquet files), %d TCP sessions", httpRows, httpFiles, tcpRows), httpRows, nil
		},
	}
}

func tsharkTool() tool {
	bin, missing := lookTool("tshark")
	return tool{
		name:    "tshark",
		note:    "full dissection, HTTP request fields to /dev/null",
		bin:     bin,
		missing: missing,
		args: func(capture, _ string) []string {
			return []string{"-n", "-r", capture, "-Y", "http.request", "-T", "fields",
				"-e", "ip.src", "-e", "ip.dst", "-e", "http.request.method", "-e", "http.host", "-e", "http.request.uri"}
		},
		summarize: func(_ string, lines int64) (string, int64, error) {
			return fmt.Sprintf("%d HTTP request lines", lines), lines, nil
		},
	}
}

func tcpflowTool() tool {
	bin, missing := lookTool("tcpflow")
	return tool{
		name:    "tcpflow",
		note:    "TCP reassembly only (one file per direction), no protocol parsing",
		bin:     bin,
		missing: missing,
		args: func(capture, dir string) []string {
			return []string{"-r", capture, "-o", filepath.Join(dir, "flows")}
		},
		summarize: func(dir string, _ int64) (string, int64, error) {
			n, err := CountFiles(filepath.Join(dir, "flows"), "report.xml", "alerts.txt")
			if err != nil {
				return "", 0, err
			}
			return fmt.Sprintf("%d flow files", n), -1, nil
		},
	}
}

// buildFlowlake builds cmd/flowlake into dir, or takes the binary named by
// BENCH_FLOWLAKE (say, one built with PGO or other flags). When cmd/flowlake
// cannot be built yet it returns the reason instead, and the other tools are
// still timed.
func buildFlowlake(t *testing.T, c config, dir string) (bin, origin, missing string) {
	t.Helper()
	if c.flowlake != "" {
		bin, err := exec.LookPath(c.flowlake)
		if err != nil {
			t.Fatalf("BENCH_FLOWLAKE: %v", err)
		}
		t.Logf("using %s (BENCH_FLOWLAKE)", bin)
		return bin, "BENCH_FLOWLAKE=" + c.flowlake, ""
	}
	pkg := filepath.Join(repoRoot(t), "cmd", "flowlake")
	if _, err := os.Stat(pkg); err != nil {
		t.Logf("flowlake not built: %s does not exist yet", pkg)
		return "", "", "flowlake not built (no cmd/flowlake)"
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Logf("flowlake not built: %v", err)
		return "", "", "flowlake not built (no go on PATH)"
	}
	bin = filepath.Join(dir, "flowlake")
	cmd := exec.Command(gobin, "build", "-o", bin, "../../cmd/flowlake")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Logf("flowlake not built: go build ./cmd/flowlake: %v\n%s", err, out)
		return "", "", "flowlake not built (go build failed)"
	}
	t.Logf("built %s", bin)
	return bin, "built from " + gitRev(), ""
}

// captureInfo returns the size of a capture and its packet count (-1 if
// capinfos is not installed), and fails the test when it is empty.
func captureInfo(t *testing.T, path string) (size, packets int64) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatalf("capture: %v", err)
	}
	if st.Size() == 0 {
		t.Fatalf("capture %s is empty", path)
	}
	packets = -1
	if capinfos, err := exec.LookPath("capinfos"); err == nil {
		out, err := exec.Command(capinfos, "-M", "-c", "-T", "-r", path).Output()
		if err != nil {
			t.Fatalf("capinfos %s: %v", path, err)
		}
		fields := strings.Split(strings.TrimSpace(string(out)), "\t")
		if packets, err = strconv.ParseInt(fields[len(fields)-1], 10, 64); err != nil {
			t.Fatalf("capinfos %s: unexpected output %q", path, out)
		}
		if packets == 0 {
			t.Fatalf("capture %s holds no packets", path)
		}
	}
	return st.Size(), packets
}

// makeCapture makes (or reuses) the synthetic capture with mkcapture.sh.
func makeCapture(t *testing.T, c config) string {
	t.Helper()
	if st, err := os.Stat(c.capture); (err != nil || st.Size() < int64(c.captureMB)*1e6) && os.Geteuid() != 0 {
		t.Skipf("the synthetic capture %s is not there yet and making it needs root: run `sudo make bench-capture` once", c.capture)
	}
	cmd := exec.Command("bash", "mkcapture.sh", c.capture)
	cmd.Env = append(os.Environ(), "BENCH_CAPTURE_MB="+strconv.Itoa(c.captureMB))
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("mkcapture.sh %s: %v", c.capture, err)
	}
	return c.capture
}

// warm reads the capture once so that every tool finds it in the page cache.
func warm(t *testing.T, path string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := io.Copy(io.Discard, f); err != nil {
		t.Fatal(err)
	}
}

// compare times every tool on capture, runs rounds (each tool once per
// round, so slow drift in machine load spreads over all of them), and
// prints the report.
func compare(t *testing.T, c config, title, capture string, tools []tool) *Report {
	size, packets := captureInfo(t, capture)
	warm(t, capture)
	rep := &Report{Title: title, Capture: capture, Bytes: size, Packets: packets, Baseline: "flowlake"}
	rows := make([]*Row, len(tools))
	http := make([]int64, len(tools))
	for i, tl := range tools {
		rows[i] = &Row{Tool: tl.name, Note: tl.note, Missing: tl.missing}
		rep.Rows = append(rep.Rows, rows[i])
		http[i] = -1
		if tl.missing != "" {
			t.Logf("%s: %s", tl.name, tl.missing)
		}
	}
	work := t.TempDir()
	for round := range c.runs {
		for i, tl := range tools {
			row := rows[i]
			if tl.missing != "" || row.Err != nil {
				continue
			}
			dir := filepath.Join(work, fmt.Sprintf("%s-%d", tl.name, round))
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			// Write back what earlier runs left dirty, so that no run pays
			// for another's output.
			syscall.Sync()
			lines := &LineCounter{}
			stderr := &Tail{}
			cmd := exec.Command("taskset", append([]string{"-c", c.cpu, tl.bin}, tl.args(capture, dir)...)...)
			cmd.Stdout, cmd.Stderr = lines, stderr
			m, err := Measure(cmd)
			if err != nil {
				row.Err = fmt.Errorf("%v: %s", err, lastLine(stderr.String()))
				t.Errorf("%s on %s failed: %v\n%s", tl.name, capture, err, stderr)
				continue
			}
			row.Add(m)
			out, n, err := tl.summarize(dir, lines.Lines)
			if err != nil {
				row.Err = fmt.Errorf("reading its output: %w", err)
				t.Errorf("%s on %s: reading its output: %v", tl.name, capture, err)
				continue
			}
			row.Output, http[i] = out, n
			t.Logf("run %d/%d %-8s %7.2fs  cpu %7.2fs  rss %6.0f MiB  %s", round+1, c.runs, tl.name,
				m.Wall.Seconds(), m.CPU.Seconds(), float64(m.MaxRSS)/(1<<20), out)
			if err := os.RemoveAll(dir); err != nil {
				t.Fatal(err)
			}
		}
	}
	rep.Notes = append(rep.Notes, httpNote(tools, http))
	var b bytes.Buffer
	if err := rep.WriteText(&b); err != nil {
		t.Fatal(err)
	}
	fmt.Print(b.String())
	return rep
}

// httpNote puts flowlake's HTTP exchange count next to tshark's request
// count: the two should be close (see README.md for why not equal).
func httpNote(tools []tool, http []int64) string {
	count := func(name string) (int64, bool) {
		for i, tl := range tools {
			if tl.name == name && http[i] >= 0 {
				return http[i], true
			}
		}
		return 0, false
	}
	fl, flOK := count("flowlake")
	ts, tsOK := count("tshark")
	switch {
	case flOK && tsOK:
		diff := "n/a"
		if ts > 0 {
			diff = fmt.Sprintf("%+.2f%%", 100*float64(fl-ts)/float64(ts))
		}
		return fmt.Sprintf("HTTP: flowlake %d exchanges, tshark %d request lines (flowlake %s)", fl, ts, diff)
	case tsOK:
		return fmt.Sprintf("HTTP: flowlake -, tshark %d request lines", ts)
	case flOK:
		return fmt.Sprintf("HTTP: flowlake %d exchanges, tshark -", fl)
	}
	return "HTTP: no count (neither flowlake nor tshark ran)"
}

func TestCompare(t *testing.T) {
	if os.Getenv("FLOWLAKE_BENCH") != "1" {
		t.Skip("comparative benchmark against tshark and tcpflow; takes minutes: set FLOWLAKE_BENCH=1 (make bench-compare) to run it")
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		t.Skip("taskset not installed (Debian: apt-get install util-linux): every tool is pinned to one core with it")
	}
	c := loadConfig(t)
	flBin, flOrigin, flMissing := buildFlowlake(t, c, t.TempDir())
	tools := []tool{flowlakeTool(flBin, flOrigin, flMissing), tsharkTool(), tcpflowTool()}

	var reports []*Report
	t.Run("synthetic", func(t *testing.T) {
		capture := makeCapture(t, c)
		title := fmt.Sprintf("Synthetic web capture (nginx + wrk, %d MB)", c.captureMB)
		reports = append(reports, compare(t, c, title, capture, tools))
	})
	t.Run("real", func(t *testing.T) {
		if _, err := os.Stat(c.real); err != nil {
			t.Skipf("real-world capture not found (%v): it comes with shared/ beside the checkout, or set BENCH_REAL_PCAP", err)
		}
		reports = append(reports, compare(t, c, "Real-world mixed web capture (bench-mixed-web-24mb)", c.real, tools))
	})
	// TLS decryption: flowlake parse --keylog against tshark -o
	// tls.keylog_file with the same keys, on the same capture.
	t.Run("decrypt-real", func(t *testing.T) {
		keys := filepath.Join(filepath.Dir(c.real), realKeylog)
		if _, err := os.Stat(keys); err != nil {
			t.Skipf("key log of the real-world capture not found: %v", err)
		}
		reports = append(reports, compare(t, c, "TLS decryption: real-world mixed web capture with its key log (bench-mixed-web-24mb)", c.real,
			keyedTools(flowlakeTool(flBin, flOrigin, flMissing), keys, false)))
	})
	t.Run("decrypt-https", func(t *testing.T) {
		capture, keys := makeHTTPSCapture(t, c, false)
		reports = append(reports, compare(t, c, "TLS decryption: generated HTTPS capture (Go net/http over TLS 1.2 and 1.3, AES-GCM and ChaCha20)", capture,
			keyedTools(flowlakeTool(flBin, flOrigin, flMissing), keys, false)))
	})
	// HTTP/2 inside TLS: decryption, frames, HPACK, exchanges.
	t.Run("decrypt-h2-generated", func(t *testing.T) {
		capture, keys := makeHTTPSCapture(t, c, true)
		reports = append(reports, compare(t, c, "TLS decryption + HTTP/2: generated capture (Go net/http HTTP/2 over TLS 1.2 and 1.3)", capture,
			keyedTools(flowlakeTool(flBin, flOrigin, flMissing), keys, true)))
	})
	if len(reports) == 0 {
		return
	}
	if err := writeResults(c, tools, reports); err != nil {
		t.Fatalf("write %s: %v", c.out, err)
	}
	t.Logf("results written to %s", c.out)
}

// writeResults writes every report, with the machine and tool versions they
// were measured with, as one Markdown file.
func writeResults(c config, tools []tool, reports []*Report) error {
	var b bytes.Buffer
	b.WriteString("# flowlake comparative benchmark\n\n")
	fmt.Fprintf(&b, "- date: %s\n", time.Now().UTC().Format(time.RFC3339))
	fmt.Fprintf(&b, "- machine: %s, %d CPUs, Linux %s; every tool pinned to CPU %s with taskset\n",
		cpuModel(), runtime.NumCPU(), readTrim("/proc/sys/kernel/osrelease"), c.cpu)
	fmt.Fprintf(&b, "- runs: best of %d per tool; seconds = wall time; MB/s = capture bytes (10^6) / seconds; "+
		"peak RSS = largest ru_maxrss of any run; vs flowlake = seconds / flowlake's seconds (above 1 = slower than flowlake)\n", c.runs)
	for _, tl := range tools {
		v := tl.missing
		if v == "" {
			v = version(tl)
		}
		fmt.Fprintf(&b, "- %s: %s\n", tl.name, v)
	}
	b.WriteString("\n")
	for _, rep := range reports {
		if err := rep.WriteMarkdown(&b); err != nil {
			return err
		}
	}
	b.WriteString("See internal/bench/README.md for how the captures are made and how to read these tables.\n")
	if err := os.MkdirAll(filepath.Dir(c.out), 0o755); err != nil {
		return err
	}
	return os.WriteFile(c.out, b.Bytes(), 0o644)
}

func version(tl tool) string {
	arg := "--version"
	if tl.name == "flowlake" {
		arg = "version"
	}
	v := "unknown version"
	if out, _ := exec.Command(tl.bin, arg).Output(); len(bytes.TrimSpace(out)) > 0 {
		v = firstLine(string(out))
	}
	if tl.origin != "" {
		v += " (" + tl.origin + ")"
	}
	return v
}

func gitRev() string {
	out, err := exec.Command("git", "-C", "../..", "describe", "--always", "--dirty").Output()
	if err != nil {
		return "the work tree (no git revision yet)"
	}
	return "git " + strings.TrimSpace(string(out))
}

func cpuModel() string {
	data, err := os.ReadFile("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	for line := range strings.Lines(string(data)) {
		if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown CPU"
}

func readTrim(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return "?"
	}
	return strings.TrimSpace(string(data))
}

// lastLine is the last non-empty line of a tool's stderr: where the reason
// for a failure usually is (tshark, for one, starts with a warning about
// running as root).
func lastLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.LastIndexByte(s, '\n'); i >= 0 {
		s = s[i+1:]
	}
	return strings.TrimSpace(s)
}
