// Package query is flowlake's query engine: it answers the query API
// (map, timeline, communications, detail, sequence, status, fields, pcap
// and HAR export) from the Parquet lake, read with Apache Arrow Go from a
// local directory or an object store.
//
// Reading: partitions are pruned by time (only the dt/hour partitions the
// window touches are listed, following the lake's manifest protocol), row
// groups by their column statistics (ts min/max always; the filter's
// integer comparisons and equality on dictionary columns when the
// statistics allow), and only the columns a query needs are read: bodies
// and headers only for the detail of one exchange. Parquet footers are
// cached per object (key, size and ETag). Filters (package filter) are
// evaluated vectorised over Arrow record batches; string comparisons on
// dictionary-encoded columns are evaluated once per dictionary entry.
//
// Rollups: map and timeline over a window whose q is empty or uses only
// fields the edges_1m rollup table keeps (agent, client, server, their ips
// and names, protocol) read the per-minute rollups for the whole minutes
// of the window and the raw tables only for the partial minutes at its
// ends. Latency percentiles come from the rollup's fixed log-scale
// histogram (schema.LatencyBucket), also when computed from raw rows, so
// both paths give the same answer.
//
// Scope (team isolation) is enforced inside every scan: rows of agents
// outside Request.Scope are dropped before anything is evaluated, counted
// or returned.
package query

import (
	"errors"
	"log/slog"
	"runtime"
	"time"

	"github.com/flowlake/flowlake/internal/filter"
	"github.com/flowlake/flowlake/internal/store"
)

// Options configures an Engine; zero values pick the defaults.
type Options struct {
	// Parallel is how many files or row groups are scanned at once
	// (default GOMAXPROCS).
	Parallel int
	// FooterCache is how many Parquet footers are kept (default 8192).
	FooterCache int
	// Log receives diagnostics; nil discards.
	Log *slog.Logger
	// Now is the clock for the default window; nil means time.Now.
	Now func() time.Time
	// NoRollups makes map and timeline read raw rows only (for checks and
	// for lakes whose rollups are suspect).
	NoRollups bool
}

// Engine answers queries from the lake in a store. It is safe for
// concurrent use.
type Engine struct {
	st      store.Store
	opts    Options
	log     *slog.Logger
	footers *footerCache
}

// New returns an Engine reading the lake below lake/ in st.
func New(st store.Store, opts Options) (*Engine, error) {
	if st == nil {
		return nil, errors.New("query: nil store")
	}
	if opts.Parallel <= 0 {
		opts.Parallel = runtime.GOMAXPROCS(0)
	}
	if opts.FooterCache <= 0 {
		opts.FooterCache = 8192
	}
	log := opts.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Engine{st: st, opts: opts, log: log, footers: newFooterCache(opts.FooterCache)}, nil
}

// Fields returns the filter fields (GET /api/v1/fields).
func (e *Engine) Fields() []filter.Field { return filter.Fields() }
