// Command flowlake is the single flowlake binary. main only wires: each
// subcommand is a run function taking its arguments, the environment and
// the output streams.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"
)

// version is set at build time with -ldflags "-X main.version=…".
var version = "dev"

func main() {
	if os.Getenv("GOGC") == "" {
		// Parsing allocates short-lived rows and buffers at a high rate;
		// a larger heap target halves the time spent in GC (measured on the
		// benchmark captures) for a few tens of MB more memory.
		debug.SetGCPercent(400)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		var ue usageError
		if errors.As(err, &ue) {
			fmt.Fprintln(os.Stderr, "flowlake:", err)
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "flowlake:", err)
		os.Exit(1)
	}
}

// usageError is a mistake in the command line (exit status 2).
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

type command struct {
	name    string
	summary string
	run     func(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error
}

func commands() []command {
	return []command{
		{"functions", "run the functions host on MinIO bucket notifications; set up the notifications", runFunctions},
		{"agent", "capture packets on an interface (or replay capture files) into segments in the object store", runAgent},
		{"parse", "parse capture files into the Parquet lake", runParse},
		{"segment", "cut capture files into capture segments and upload them to the object store", runSegment},
		{"show", "print row counts and the first rows of the lake tables", runShow},
		{"reparse", "parse committed segments again and replace their rows (late TLS keys, parser upgrades)", runReparse},
		{"compact", "merge the small files of old lake partitions into large ones (manifest switch)", runCompact},
		{"serve", "serve the query API and the web UI over the lake", runServe},
		{"version", "print the version", func(_ context.Context, _ []string, _ func(string) string, stdout, _ io.Writer) error {
			fmt.Fprintln(stdout, "flowlake", version)
			return nil
		}},
	}
}

func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(stdout)
		if len(args) == 0 {
			return usageError{"no command given"}
		}
		return nil
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(ctx, args[1:], getenv, stdout, stderr)
		}
	}
	usage(stderr)
	return usageError{fmt.Sprintf("unknown command %q", args[0])}
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: flowlake <command> [flags]\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\nRun 'flowlake <command> -h' for the flags of a command.")
}
