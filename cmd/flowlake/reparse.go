package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"

	"github.com/flowlake/flowlake/internal/engine"
	"github.com/flowlake/flowlake/internal/keylog"
	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/pipeline"
	"github.com/flowlake/flowlake/internal/store"
)

func runReparse(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("reparse", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: flowlake reparse [--store URL] --agent ID [--stream K] [--from SEQ] [--to SEQ] [--keylog FILE]...\n\n"+
			"Parses committed capture segments again and replaces their lake rows (same file names;\n"+
			"files the earlier parse wrote and this one does not are deleted), checkpoints and carried\n"+
			"TLS keys: after TLS keys came late (the pipeline does this by itself when a secrets/ object\n"+
			"arrives for a parsed segment), or after an upgrade of the parsers. Without --stream every\n"+
			"stream of the agent is reparsed. Segments whose partitions were compacted are refused.\n"+
			"--keylog adds key log files to the secrets the agent uploaded.\n\nflags:")
		fs.PrintDefaults()
	}
	storeURL := fs.String("store", envOr(getenv, "STORE", "./flowlake-data"), "object store: a directory, file:///DIR or s3://BUCKET[/PREFIX] (env FLOWLAKE_STORE)")
	agent := fs.String("agent", "", "agent whose segments to parse again")
	streamNo := fs.Int("stream", -1, "stream number (default: every stream of the agent)")
	from := fs.Uint64("from", 0, "first segment sequence number")
	to := fs.Uint64("to", 0, "last segment sequence number (0: the last committed one)")
	var keylogs multiFlag
	fs.Var(&keylogs, "keylog", "TLS key log file (NSS format, SSLKEYLOGFILE); repeatable")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err.Error()}
	}
	switch {
	case fs.NArg() > 0:
		return usageError{fmt.Sprintf("reparse: unexpected arguments %q", fs.Args())}
	case *agent == "":
		return usageError{"reparse: --agent is required"}
	case keys.ValidAgent(*agent) != nil:
		return usageError{fmt.Sprintf("reparse: --agent: %v", keys.ValidAgent(*agent))}
	case *to != 0 && *to < *from:
		return usageError{fmt.Sprintf("reparse: --to %d is before --from %d", *to, *from)}
	}
	var eng engine.Config
	if len(keylogs) > 0 {
		eng.Keys = keylog.New()
		for _, k := range keylogs {
			if err := eng.Keys.ReadFile(k); err != nil {
				return fmt.Errorf("reparse: %w", err)
			}
		}
	}
	st, err := store.Open(ctx, *storeURL)
	if err != nil {
		return fmt.Errorf("reparse: %w", err)
	}
	streams := []keys.Stream{{Agent: *agent, Stream: *streamNo}}
	if *streamNo < 0 {
		if streams, err = agentStreams(ctx, st, *agent); err != nil {
			return fmt.Errorf("reparse: %w", err)
		}
		if len(streams) == 0 {
			return fmt.Errorf("reparse: agent %s has no parsed segments in %s", *agent, st.URL())
		}
	}
	p := pipeline.New(pipeline.Config{Store: st, Engine: eng, Log: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	total := 0
	for _, s := range streams {
		n, err := p.Reparse(ctx, s, *from, *to)
		total += n
		fmt.Fprintf(stdout, "%s: %d segments parsed again\n", s, n)
		if err != nil {
			return fmt.Errorf("reparse: %w", err)
		}
	}
	fmt.Fprintf(stdout, "%d segments parsed again\n", total)
	return nil
}

// agentStreams lists the streams of agent that have parse state.
func agentStreams(ctx context.Context, st store.Store, agent string) ([]keys.Stream, error) {
	var out []keys.Stream
	err := st.List(ctx, keys.PrefixState+"agent="+agent+"/", func(info store.Info) error {
		if !strings.HasSuffix(info.Key, keys.ExtState) {
			return nil
		}
		s, _, err := keys.ParseState(info.Key)
		if err == nil && !slices.Contains(out, s) {
			out = append(out, s)
		}
		return nil
	})
	return out, err
}
