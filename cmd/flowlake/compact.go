package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/flowlake/flowlake/internal/compact"
	"github.com/flowlake/flowlake/internal/store"
	"github.com/flowlake/flowlake/schema"
)

func runCompact(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("compact", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: flowlake compact [--store URL] [--table T[,T…]] [--older-than 1h] [--grace 10m] [-q]\n\n"+
			"Merges the small files of each lake partition (hour) whose hour ended more than --older-than\n"+
			"ago into a few large compact-*.parquet files and switches readers to them with a versioned\n"+
			"manifest (_manifest-<version>.json). The replaced files are deleted by a later run, once the\n"+
			"switch is more than --grace old. Run it periodically (e.g. every 15 minutes); runs may overlap.\n"+
			"Readers that follow the manifests (lake.ListFiles, lake.DuckDBQuery) never see a row twice or\n"+
			"miss one; plain *.parquet globs (DuckDB, Athena) see replaced rows twice during --grace.\n\nflags:")
		fs.PrintDefaults()
	}
	storeURL := fs.String("store", envOr(getenv, "STORE", "./flowlake-data"), "object store: a directory, file:///DIR or s3://BUCKET[/PREFIX] (env FLOWLAKE_STORE)")
	tables := fs.String("table", "", "comma-separated tables to compact (default all: "+strings.Join(schema.Tables, ",")+")")
	olderThan := fs.Duration("older-than", compact.DefaultOlderThan, "merge a partition once its hour ended this long ago")
	grace := fs.Duration("grace", compact.DefaultGrace, "keep replaced files this long after the switch: longer than any reader takes")
	quiet := fs.Bool("q", false, "print nothing but errors")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Sprintf("compact: unexpected arguments %q", fs.Args())}
	}
	if *olderThan <= 0 || *grace <= 0 {
		return usageError{"compact: --older-than and --grace must be positive durations"}
	}
	var list []string
	if *tables != "" {
		list = strings.Split(*tables, ",")
	}
	st, err := store.Open(ctx, *storeURL)
	if err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	c, err := compact.New(compact.Config{Store: st, Tables: list, OlderThan: *olderThan, Grace: *grace})
	if err != nil {
		return usageError{err.Error()}
	}
	start := time.Now()
	rep, runErr := c.Run(ctx)
	if !*quiet {
		printCompactReport(stdout, rep, st.URL(), time.Since(start))
	}
	if runErr != nil {
		return fmt.Errorf("compact: %w", runErr)
	}
	return nil
}

// printCompactReport prints one line per partition that changed and a
// summary.
func printCompactReport(w io.Writer, rep compact.Report, url string, took time.Duration) {
	var merged, in, out, deleted int
	var inBytes, outBytes int64
	for _, r := range rep.Partitions {
		if !r.Changed() && !r.Conflict {
			continue
		}
		var what []string
		switch {
		case r.Conflict:
			what = append(what, fmt.Sprintf("another compactor switched to version %d first", r.Version))
		case r.Stale:
			what = append(what, fmt.Sprintf("version %d came too late (a newer one exists)", r.Version))
		case r.InputFiles > 0:
			what = append(what, fmt.Sprintf("merged %d files (%s) into %d (%s), %d rows, version %d",
				r.InputFiles, humanSize(r.InputBytes), r.OutputFiles, humanSize(r.OutputBytes), r.Rows, r.Version))
			merged++
			in += r.InputFiles
			out += r.OutputFiles
			inBytes += r.InputBytes
			outBytes += r.OutputBytes
		case r.Version != 0:
			what = append(what, fmt.Sprintf("version %d", r.Version))
		}
		for _, c := range []struct {
			n    int
			what string
		}{{r.Deleted, "replaced files deleted"}, {r.Forgotten, "deletions forgotten"}, {r.Orphans, "orphaned compact files replaced"}, {r.OldManifests, "old manifests deleted"}} {
			if c.n > 0 {
				what = append(what, fmt.Sprintf("%d %s", c.n, c.what))
			}
		}
		deleted += r.Deleted
		fmt.Fprintf(w, "  %-14s %s  %s\n", r.Table, r.Partition, strings.Join(what, "; "))
	}
	detail := ""
	if merged > 0 {
		detail = fmt.Sprintf(" (%d files, %s -> %d files, %s)", in, humanSize(inBytes), out, humanSize(outBytes))
	}
	fmt.Fprintf(w, "compacted %s in %v: %d partitions checked, %d merged%s, %d replaced files deleted\n",
		url, took.Round(time.Millisecond), rep.Checked, merged, detail, deleted)
}

// humanSize renders a byte count with a binary unit, e.g. "6.1 MiB".
func humanSize(n int64) string {
	for _, u := range []struct {
		name string
		size int64
	}{{"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}} {
		if n >= u.size {
			return fmt.Sprintf("%.1f %s", float64(n)/float64(u.size), u.name)
		}
	}
	return fmt.Sprintf("%d B", n)
}
