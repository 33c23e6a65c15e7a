package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/flowlake/flowlake/schema"
)

func runShow(_ context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("show", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: flowlake show [--lake DIR] [-n ROWS] [TABLE...]\n\nPrints the row count of each lake table and its first rows.\n\nflags:")
		fs.PrintDefaults()
	}
	lakeDir := fs.String("lake", envOr(getenv, "LAKE", "./flowlake-data"), "store root (env FLOWLAKE_LAKE)")
	n := fs.Int("n", 5, "rows to print per table")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	tables := fs.Args()
	if len(tables) == 0 {
		tables = []string{schema.TableHTTP, schema.TableTCP, schema.TableDNS, schema.TableTLS, schema.TableParseStatus}
	}
	root := filepath.Join(*lakeDir, "lake")
	for _, t := range tables {
		files, err := filepath.Glob(schema.Glob(root, t))
		if err != nil {
			return err
		}
		sort.Strings(files)
		var err2 error
		switch t {
		case schema.TableHTTP:
			err2 = showTable(stdout, t, files, *n, "ts client server method host uri status dur_ms", func(r schema.HTTP) []string {
				return []string{ts(r.TS), named(r.ClientIP, r.ClientName), named(r.ServerIP, r.ServerName) + fmt.Sprintf(":%d", r.ServerPort),
					r.Method, r.Host, trunc(r.URI, 48), fmt.Sprint(r.Status), fmt.Sprintf("%.1f", float64(r.DurationUS)/1000)}
			})
		case schema.TableTCP:
			err2 = showTable(stdout, t, files, *n, "ts client server app pkts c2s/s2c bytes c2s/s2c missing close", func(r schema.TCP) []string {
				return []string{ts(r.TS), fmt.Sprintf("%s:%d", named(r.ClientIP, r.ClientName), r.ClientPort), fmt.Sprintf("%s:%d", named(r.ServerIP, r.ServerName), r.ServerPort),
					r.AppProtocol, fmt.Sprintf("%d/%d", r.PacketsC2S, r.PacketsS2C), fmt.Sprintf("%d/%d", r.BytesC2S, r.BytesS2C), fmt.Sprint(r.MissingBytes), r.Close}
			})
		case schema.TableDNS:
			err2 = showTable(stdout, t, files, *n, "ts client server query qtype rcode answers latency_ms", func(r schema.DNS) []string {
				return []string{ts(r.TS), r.ClientIP, r.ServerIP, r.Query, r.QType, r.RCode, trunc(strings.Join(r.Answers, ", "), 48), fmt.Sprintf("%.1f", float64(r.LatencyUS)/1000)}
			})
		case schema.TableTLS:
			err2 = showTable(stdout, t, files, *n, "ts client server version sni alpn cipher key_status", func(r schema.TLS) []string {
				return []string{ts(r.TS), r.ClientIP, fmt.Sprintf("%s:%d", r.ServerIP, r.ServerPort), r.Version, r.SNI, r.ALPN, r.Cipher, r.KeyStatus}
			})
		case schema.TableParseStatus:
			err2 = showTable(stdout, t, files, *n, "agent stream seq input packets tcp http dns tls missing status error", func(r schema.ParseStatus) []string {
				return []string{r.Agent, fmt.Sprint(r.Stream), fmt.Sprint(r.Seq), filepath.Base(r.Input), fmt.Sprint(r.Packets), fmt.Sprint(r.TCPConns), fmt.Sprint(r.HTTPExchanges), fmt.Sprint(r.DNSQueries),
					fmt.Sprint(r.TLSHandshakes), fmt.Sprint(r.MissingBytes), r.Status, trunc(r.Error, 60)}
			})
		case schema.TableCaptureStatus:
			err2 = showTable(stdout, t, files, *n, "ts agent stream captured dropped overflow", func(r schema.CaptureStatus) []string {
				return []string{ts(r.TS), r.Agent, fmt.Sprint(r.Stream), fmt.Sprint(r.Captured), fmt.Sprint(r.Dropped), fmt.Sprint(r.Overflow)}
			})
		default:
			return usageError{fmt.Sprintf("show: unknown table %q (tables: %s)", t, strings.Join(schema.Tables, ", "))}
		}
		if err2 != nil {
			return fmt.Errorf("show %s: %w", t, err2)
		}
	}
	fmt.Fprintf(stdout, "\nDuckDB: SELECT * FROM read_parquet('%s', hive_partitioning=true);\n", schema.Glob(root, schema.TableHTTP))
	return nil
}

func showTable[T any](w io.Writer, table string, files []string, n int, header string, cols func(T) []string) error {
	var rows []T
	total := 0
	for _, f := range files {
		rs, err := parquet.ReadFile[T](f)
		if err != nil {
			return fmt.Errorf("%s: %w", f, err)
		}
		total += len(rs)
		if len(rows) < n {
			rows = append(rows, rs[:min(len(rs), n-len(rows))]...)
		}
	}
	fmt.Fprintf(w, "\n%s: %d rows in %d file(s)\n", table, total, len(files))
	if total == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "  "+strings.ReplaceAll(header, " ", "\t"))
	for _, r := range rows {
		fmt.Fprintln(tw, "  "+strings.Join(cols(r), "\t"))
	}
	return tw.Flush()
}

func ts(us int64) string { return time.UnixMicro(us).UTC().Format("2006-01-02 15:04:05.000") }

func named(ip, name string) string {
	if name != "" {
		return name
	}
	return ip
}

func trunc(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n-1] + "…"
}
