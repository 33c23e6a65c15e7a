package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/flowlake/flowlake/internal/capture"
	"github.com/flowlake/flowlake/internal/keylog"
	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/pipeline"
	"github.com/flowlake/flowlake/internal/segment"
	"github.com/flowlake/flowlake/internal/store"
)

// maxSegmentBytes bounds --max-bytes: a segment is built in memory.
const maxSegmentBytes = 1 << 30

func runSegment(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("segment", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: flowlake segment [--store URL] [--agent ID] [--stream K] [--first-seq N] [--max-bytes 8MiB] [--max-span 10s] [--keylog FILE]... FILE...\n\n"+
			"Reads pcap/pcapng files (also .gz/.zst) in the order given, as one stream of one agent,\n"+
			"cuts it into capture segments (zstd-compressed pcapng) numbered from --first-seq, and\n"+
			"uploads each to raw/agent=ID/stream=K/<yyyy>/<mm>/<dd>/<hh>/<seq>.pcapng.zst. The same\n"+
			"input always gives the same segments, so a re-run skips the ones already uploaded.\n"+
			"TLS keys (--keylog files, pcapng Decryption Secrets Blocks) decrypt the in-process parse;\n"+
			"with remote functions each segment's secrets/ object holds every key line met so far.\n\nflags:")
		fs.PrintDefaults()
	}
	storeURL := fs.String("store", envOr(getenv, "STORE", "./flowlake-data"), "object store: a directory, file:///DIR or s3://BUCKET[/PREFIX] (env FLOWLAKE_STORE)")
	agent := fs.String("agent", envOr(getenv, "AGENT", "local"), "agent id the segments belong to (env FLOWLAKE_AGENT)")
	stream := fs.Int("stream", 0, fmt.Sprintf("stream number, 0-%d", segment.MaxStream))
	firstSeq := fs.Uint64("first-seq", 0, "sequence number of the first segment")
	maxBytes := byteSize(segment.DefaultMaxBytes)
	fs.Var(&maxBytes, "max-bytes", "captured bytes per segment at most (B, KiB, MiB, GiB, or KB, MB, GB)")
	maxSpan := fs.Duration("max-span", segment.DefaultMaxSpan, "capture time per segment at most")
	quiet := fs.Bool("q", false, "print nothing but errors")
	functions := fs.String("functions", "auto", "run ingest and parse: inprocess (events in this process, the embedded default), none (the store's notifications trigger the functions), auto (inprocess for a directory store, none for s3)")
	flush := fs.Bool("flush", true, "with in-process functions: end the stream after the last segment, writing the rows of connections still open")
	var keylogs multiFlag
	fs.Var(&keylogs, "keylog", "TLS key log file (NSS format, SSLKEYLOGFILE) to decrypt with; repeatable (pcapng Decryption Secrets Blocks are read too)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	files := fs.Args()
	switch {
	case len(files) == 0:
		fs.Usage()
		return usageError{"segment: no capture files given"}
	case *stream < 0 || *stream > segment.MaxStream:
		return usageError{fmt.Sprintf("segment: --stream %d out of range 0-%d", *stream, segment.MaxStream)}
	case maxBytes > maxSegmentBytes:
		return usageError{fmt.Sprintf("segment: --max-bytes %s: segments are built in memory; want at most %s", maxBytes.String(), formatSize(maxSegmentBytes))}
	case *maxSpan <= 0:
		return usageError{fmt.Sprintf("segment: --max-span %v: want a positive duration", *maxSpan)}
	}
	if err := keys.ValidAgent(*agent); err != nil {
		return usageError{fmt.Sprintf("segment: --agent: %v", err)}
	}
	for _, f := range files {
		if fi, err := os.Stat(f); err != nil {
			return fmt.Errorf("segment: %w", err)
		} else if fi.IsDir() {
			return fmt.Errorf("segment: %s is a directory; give the capture files (e.g. %s/*.pcap)", f, f)
		}
	}
	// The key lines: what the --keylog files hold, then the Decryption
	// Secrets Blocks as the capture meets them.
	tlsKeys, keyLines := keylog.New(), []byte(nil)
	for _, k := range keylogs {
		b, err := os.ReadFile(k)
		if err != nil {
			return fmt.Errorf("segment: --keylog: %w", err)
		}
		if err := tlsKeys.Read(bytes.NewReader(b)); err != nil {
			return fmt.Errorf("segment: --keylog %s: %w", k, err)
		}
		keyLines = appendLines(keyLines, b)
	}
	st, err := store.Open(ctx, *storeURL)
	if err != nil {
		return fmt.Errorf("segment: %w", err)
	}

	inproc := *functions == "inprocess" || (*functions == "auto" && !strings.HasPrefix(st.URL(), "s3://"))
	if *functions != "auto" && *functions != "inprocess" && *functions != "none" {
		return usageError{fmt.Sprintf("segment: --functions %q: want inprocess, none or auto", *functions)}
	}
	start := time.Now()
	up := &uploader{ctx: ctx, st: st, out: stdout, quiet: *quiet}
	var pipe *pipeline.Pipeline
	if inproc {
		// The keys decrypt as static keys (Engine.Keys, read by every
		// segment's parse), which the secrets blocks add to as they come.
		cfg := pipeline.Config{Store: st, WaitPredecessor: time.Second}
		cfg.Engine.Keys = tlsKeys
		pipe = pipeline.New(cfg)
		up.after = func(key string) error { return pipe.Ingest(ctx, key) }
	} else {
		// Remote functions read keys from secrets/ only: each segment's
		// object holds every line so far, as parse carries a secrets
		// object's keys only to the next segment.
		up.secrets = func() []byte { return keyLines }
	}
	cut := segment.NewCutter(*agent, *stream, *firstSeq, int64(maxBytes), *maxSpan, "", up.emit)
	src := capture.Open(files)
	defer src.Close()
	file, inFile := -1, 0
	var p capture.Packet
	for n := 0; ; n++ {
		if n%1024 == 0 && ctx.Err() != nil {
			return fmt.Errorf("segment: interrupted: %d segment(s) stored; the packets from seq %d on were not uploaded (a re-run skips what is stored)",
				up.segments, cut.NextSeq())
		}
		err := src.Next(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("segment: %w", err)
		}
		if b := src.TakeSecrets(); len(b) > 0 {
			if err := tlsKeys.Read(bytes.NewReader(b)); err != nil {
				return fmt.Errorf("segment: %s: decryption secrets block: %w", p.FileName, err)
			}
			keyLines = appendLines(keyLines, b)
		}
		if p.File != file {
			file, inFile = p.File, 0
			cut.SetSource("file:" + filepath.Base(p.FileName))
		}
		inFile++
		if err := cut.Add(p.TS, p.Link, p.Data, p.WireLen); err != nil {
			return fmt.Errorf("segment: %s packet %d: %w", p.FileName, inFile, err)
		}
	}
	if err := cut.Flush(); err != nil {
		return fmt.Errorf("segment: %w", err)
	}
	if pipe != nil && *flush && up.segments > 0 {
		if err := pipe.FlushStream(ctx, keys.Stream{Agent: *agent, Stream: *stream}, up.lastSeq); err != nil {
			return fmt.Errorf("segment: %w", err)
		}
	}
	var inBytes int64
	var bad []string
	for _, r := range src.Results() {
		inBytes += r.Size
		if r.Err != nil {
			bad = append(bad, r.Err.Error())
		}
	}
	if !*quiet {
		up.summary(len(files), inBytes, time.Since(start), st.URL())
	}
	if len(bad) > 0 {
		return fmt.Errorf("segment: %d of %d files could not be read to the end (their packets up to the damage were segmented):\n  %s",
			len(bad), len(files), strings.Join(bad, "\n  "))
	}
	return nil
}

// uploader stores the segments a Cutter emits and counts them.
type uploader struct {
	ctx   context.Context
	st    store.Store
	out   io.Writer
	quiet bool
	// after, if set, runs for each stored segment (in-process ingest).
	after func(key string) error
	// secrets, if set, returns the key log lines that go into each
	// segment's secrets object, stored before the segment.
	secrets func() []byte

	segments, uploaded, existing int
	packets, captured, stored    int64
	firstSeq, lastSeq            uint64
}

// emit stores one segment with a conditional create. An identical object
// already at the key is a segment uploaded by an earlier run; a different
// one is an error, never overwritten.
func (u *uploader) emit(data []byte, m segment.Meta) error {
	key := segment.Key(m)
	if u.secrets != nil {
		if lines := u.secrets(); len(lines) > 0 {
			sk := keys.Secrets(keys.Stream{Agent: m.Agent, Stream: m.Stream}, m.Seq, time.Unix(0, m.FirstTS))
			// A re-run finds it there: not written again, which would make
			// the functions reparse the segment for "late" keys.
			if err := u.st.PutIfAbsent(u.ctx, sk, bytes.NewReader(lines), int64(len(lines))); err != nil && !errors.Is(err, store.ErrExists) {
				return fmt.Errorf("upload secrets: %w", err)
			}
		}
	}
	status := "uploaded"
	err := u.st.PutIfAbsent(u.ctx, key, bytes.NewReader(data), int64(len(data)))
	switch {
	case err == nil:
		u.uploaded++
	case errors.Is(err, store.ErrExists):
		same, err := store.Holds(u.ctx, u.st, key, data)
		if err != nil {
			return err
		}
		if !same {
			return fmt.Errorf("%s already holds a different object: other packets were segmented as agent %q stream %d seq %d; not overwriting it (use another --agent, --stream or --first-seq)",
				key, m.Agent, m.Stream, m.Seq)
		}
		status = "already uploaded"
		u.existing++
	default:
		return fmt.Errorf("upload: %w", err)
	}
	if u.after != nil {
		if err := u.after(key); err != nil {
			return fmt.Errorf("ingest %s: %w", key, err)
		}
		status += ", parsed"
	}
	if u.segments == 0 {
		u.firstSeq = m.Seq
	}
	u.segments++
	u.lastSeq = m.Seq
	u.packets += m.Packets
	u.captured += m.Bytes
	u.stored += int64(len(data))
	if !u.quiet {
		fmt.Fprintf(u.out, "  %-16s %s  %6d packets  %9.1f KB -> %8.1f KB\n", status, key, m.Packets, float64(m.Bytes)/1e3, float64(len(data))/1e3)
	}
	return nil
}

// appendLines appends b to lines, ending it with a newline.
func appendLines(lines, b []byte) []byte {
	lines = append(lines, b...)
	if len(b) > 0 && b[len(b)-1] != '\n' {
		lines = append(lines, '\n')
	}
	return lines
}

func (u *uploader) summary(files int, inBytes int64, elapsed time.Duration, url string) {
	secs := elapsed.Seconds()
	mbps := 0.0
	if secs > 0 {
		mbps = float64(inBytes) / 1e6 / secs
	}
	fmt.Fprintf(u.out, "segmented %d file(s) into %d segment(s) in %s: %d uploaded, %d already uploaded\n",
		files, u.segments, url, u.uploaded, u.existing)
	if u.segments > 0 {
		fmt.Fprintf(u.out, "  seq %d-%d, %d packets, %.1f MB captured, %.1f MB stored\n",
			u.firstSeq, u.lastSeq, u.packets, float64(u.captured)/1e6, float64(u.stored)/1e6)
	}
	fmt.Fprintf(u.out, "  read %.1f MB in %.2fs (%.1f MB/s)\n", float64(inBytes)/1e6, secs, mbps)
}

// byteSize is a flag value of bytes with an optional unit: B, K/KiB, M/MiB,
// G/GiB (powers of 1024) or KB, MB, GB (powers of 1000).
type byteSize int64

func (b *byteSize) String() string { return formatSize(int64(*b)) }

func (b *byteSize) Set(s string) error {
	n, err := parseSize(s)
	if err != nil {
		return err
	}
	*b = byteSize(n)
	return nil
}

var sizeUnits = map[string]int64{
	"": 1, "b": 1,
	"k": 1 << 10, "kib": 1 << 10, "kb": 1e3,
	"m": 1 << 20, "mib": 1 << 20, "mb": 1e6,
	"g": 1 << 30, "gib": 1 << 30, "gb": 1e9,
}

// parseSize parses a positive byte count such as "8MiB", "512k" or "1.5GB".
func parseSize(s string) (int64, error) {
	t := strings.TrimSpace(s)
	i := strings.IndexFunc(t, func(r rune) bool { return !(r >= '0' && r <= '9' || r == '.') })
	if i < 0 {
		i = len(t)
	}
	unit, ok := sizeUnits[strings.ToLower(strings.TrimSpace(t[i:]))]
	if !ok {
		return 0, fmt.Errorf("size %q: unknown unit %q (want B, KiB, MiB, GiB, KB, MB or GB)", s, t[i:])
	}
	v, err := strconv.ParseFloat(t[:i], 64)
	if err != nil {
		return 0, fmt.Errorf("size %q: not a number", s)
	}
	n := v * float64(unit)
	if n < 1 || n > 1<<50 {
		return 0, fmt.Errorf("size %q: want from 1 byte to 1 PiB", s)
	}
	return int64(n), nil
}

// formatSize prints n with the largest binary unit that divides it.
func formatSize(n int64) string {
	for _, u := range []struct {
		name string
		size int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size && n%u.size == 0 {
			return fmt.Sprintf("%d%s", n/u.size, u.name)
		}
	}
	return strconv.FormatInt(n, 10)
}
