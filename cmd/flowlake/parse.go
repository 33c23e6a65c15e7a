package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime/pprof"
	"sort"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/flowlake/flowlake/internal/engine"
	"github.com/flowlake/flowlake/internal/keylog"
	"github.com/flowlake/flowlake/internal/lake"
	"github.com/flowlake/flowlake/internal/redact"
	"github.com/flowlake/flowlake/internal/store"
	"github.com/flowlake/flowlake/schema"
)

// multiFlag collects a repeatable string flag.
type multiFlag []string

func (m *multiFlag) String() string     { return strings.Join(*m, ",") }
func (m *multiFlag) Set(v string) error { *m = append(*m, v); return nil }

// envOr returns the FLOWLAKE_-prefixed environment value or def.
func envOr(getenv func(string) string, name, def string) string {
	if v := getenv("FLOWLAKE_" + name); v != "" {
		return v
	}
	return def
}

func runParse(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("parse", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: flowlake parse [--lake DIR] [--agent NAME] [--keylog FILE]... FILE...\n\n"+
			"Reads pcap/pcapng files (also .gz/.zst) in the order given, as one continuous capture,\n"+
			"and writes the http, tcp, dns, tls and parse_status tables under DIR/lake/.\n\nflags:")
		fs.PrintDefaults()
	}
	lakeDir := fs.String("lake", envOr(getenv, "LAKE", "./flowlake-data"), "store: a directory or s3://bucket/prefix; tables go to <store>/lake/<table>/dt=…/hour=…/ (env FLOWLAKE_LAKE)")
	agent := fs.String("agent", envOr(getenv, "AGENT", "local"), "agent name recorded in every row (env FLOWLAKE_AGENT)")
	var keylogs multiFlag
	fs.Var(&keylogs, "keylog", "TLS key log file (NSS format, SSLKEYLOGFILE) to decrypt with; repeatable (pcapng Decryption Secrets Blocks are read too)")
	preview := fs.Int("body-preview", 4096, "bytes of each HTTP body kept (decoded, redacted)")
	redactHeaders := fs.String("redact-headers", strings.Join(redact.Default().Headers, ","), "comma-separated header names whose values are redacted")
	progress := fs.String("progress", "auto", "progress bar: auto (on a terminal), always or never")
	quiet := fs.Bool("q", false, "print nothing but errors")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile (pprof) to this file")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	files := fs.Args()
	if len(files) == 0 {
		fs.Usage()
		return usageError{"parse: no capture files given"}
	}
	for _, f := range files {
		if fi, err := os.Stat(f); err != nil {
			return fmt.Errorf("parse: %w", err)
		} else if fi.IsDir() {
			return fmt.Errorf("parse: %s is a directory; give the capture files (e.g. %s/*.pcap)", f, f)
		}
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err != nil {
			return fmt.Errorf("parse: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("parse: cpu profile: %w", err)
		}
		defer func() { pprof.StopCPUProfile(); f.Close() }()
	}
	keys := keylog.New()
	for _, k := range keylogs {
		if err := keys.ReadFile(k); err != nil {
			return fmt.Errorf("parse: %w", err)
		}
	}
	rc := redact.Default()
	hdrs, err := redact.ParseList(*redactHeaders)
	if err != nil {
		return usageError{fmt.Sprintf("parse: --redact-headers: %v", err)}
	}
	rc.Headers = hdrs

	cfg := engine.Config{Agent: *agent, Redact: &rc, Keys: keys}
	cfg.HTTP.BodyPreview = *preview

	st, err := store.Open(ctx, *lakeDir)
	if err != nil {
		return fmt.Errorf("parse: %w", err)
	}
	w := lake.NewWriter(lake.StoreSink{Store: st}, lake.Options{Name: runName(*agent, files), Agent: *agent})
	sink := engine.LakeSink{W: w}

	var bar *progressBar
	showBar := *progress == "always" || (*progress == "auto" && !*quiet && isTerminal(stderr))
	opt := engine.FilesOptions{}
	if showBar {
		bar = &progressBar{w: stderr, start: time.Now()}
		opt.Progress = bar.update
	}
	sum, err := engine.ParseFiles(ctx, files, cfg, sink, sink, opt)
	if bar != nil {
		bar.finish()
	}
	if err != nil {
		return fmt.Errorf("parse: %w", err)
	}
	written, err := w.Close(ctx)
	if err != nil {
		return fmt.Errorf("parse: write lake: %w", err)
	}
	if !*quiet {
		printSummary(stdout, sum, written, st.URL(), keys)
	}
	var bad []string
	for _, f := range sum.Files {
		if f.Err != nil {
			bad = append(bad, f.Err.Error())
		}
	}
	if sum.Canceled {
		return errors.New("parse: interrupted; rows of the packets read so far were written")
	}
	if len(bad) > 0 {
		return fmt.Errorf("parse: %d of %d files could not be read to the end (their packets up to the damage were parsed):\n  %s",
			len(bad), len(files), strings.Join(bad, "\n  "))
	}
	return nil
}

// runName is the deterministic base name of the output files: the same
// agent and input files always give the same names, so a re-run replaces
// its earlier output instead of adding to it.
func runName(agent string, files []string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\x00", agent)
	for _, f := range files {
		size := int64(-1)
		if fi, err := os.Stat(f); err == nil {
			size = fi.Size()
		}
		fmt.Fprintf(h, "%s\x00%d\x00", filepath.Base(f), size)
	}
	return "parse-" + hex.EncodeToString(h.Sum(nil))[:16]
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

func printSummary(w io.Writer, sum engine.Summary, written map[string]lake.Stats, root string, keys *keylog.Log) {
	st := sum.Stats
	secs := sum.Elapsed.Seconds()
	mbps := 0.0
	if secs > 0 {
		mbps = float64(sum.InBytes) / 1e6 / secs
	}
	fmt.Fprintf(w, "parsed %d file(s): %d packets, %.1f MB in %.2fs (%.1f MB/s)\n",
		len(sum.Files), st.Frames, float64(sum.InBytes)/1e6, secs, mbps)
	fmt.Fprintf(w, "  TCP sessions    %d  (missing bytes %d, reassembly limit hits %d)\n", st.TCPConns, st.TCP.MissingBytes, st.TCP.LimitHits)
	fmt.Fprintf(w, "  HTTP exchanges  %d  (%d with errors)\n", st.HTTPExchanges, st.HTTPErrors)
	fmt.Fprintf(w, "  DNS queries     %d\n", st.DNSQueries)
	fmt.Fprintf(w, "  TLS handshakes  %d  (%d decrypted)\n", st.TLSHandshakes, st.TLSDecrypted)
	if keys != nil && keys.Len() > 0 {
		fmt.Fprintf(w, "  TLS key log     %d sessions (tls.key_status tells, per handshake, why it was or was not decrypted)\n", keys.Len())
	}
	if n := st.Decode.Errors + st.Decode.UnknownLink; n > 0 {
		fmt.Fprintf(w, "  undecodable     %d frames (see parse_status.error)\n", n)
	}
	if st.Decode.Truncated > 0 {
		fmt.Fprintf(w, "  truncated       %d frames cut short by the capture (snap length)\n", st.Decode.Truncated)
	}
	names := make([]string, 0, len(written))
	for t := range written {
		names = append(names, t)
	}
	sort.Strings(names)
	root = strings.TrimPrefix(root, "file://")
	fmt.Fprintf(w, "lake %s/lake:\n", root)
	for _, t := range names {
		s := written[t]
		if s.Rows == 0 {
			continue
		}
		fmt.Fprintf(w, "  %-14s %8d rows  %3d file(s)  %8.1f KB\n", t, s.Rows, s.Files, float64(s.Bytes)/1e3)
	}
	fmt.Fprintf(w, "query it: duckdb -c \"SELECT method, host, path, status FROM read_parquet('%s', hive_partitioning=true) LIMIT 10\"\n",
		schema.Glob(root+"/lake", schema.TableHTTP))
}

// progressBar draws a one-line progress bar on a terminal.
type progressBar struct {
	mu    sync.Mutex
	w     io.Writer
	start time.Time
	last  time.Time
}

func (p *progressBar) update(done, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if now.Sub(p.last) < 150*time.Millisecond && done < total {
		return
	}
	p.last = now
	frac := 0.0
	if total > 0 {
		frac = float64(done) / float64(total)
	}
	if frac > 1 {
		frac = 1
	}
	const width = 30
	n := int(frac * width)
	rate := float64(done) / 1e6 / now.Sub(p.start).Seconds()
	fmt.Fprintf(p.w, "\r[%s%s] %5.1f%%  %7.1f MB/s", strings.Repeat("=", n), strings.Repeat(" ", width-n), frac*100, rate)
}

func (p *progressBar) finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprint(p.w, "\r"+strings.Repeat(" ", 60)+"\r")
}
