package query

import (
	"context"
	"strings"
	"sync"

	"github.com/flowlake/flowlake/internal/filter"
	"github.com/flowlake/flowlake/internal/lake"
)

type filterExpr = filter.Expr

// listPartitionNames returns the hours (since the epoch) that have a
// partition of table in [from, to).
func listPartitionNames(ctx context.Context, e *Engine, table string, from, to int64) (map[int64]bool, error) {
	parts, err := lake.ListPartitions(ctx, e.st, table, from, to)
	if err != nil {
		return nil, err
	}
	out := make(map[int64]bool, len(parts))
	for _, p := range parts {
		if len(p.Live) > 0 {
			out[p.Hour.Unix()/3600] = true
		}
	}
	return out, nil
}

// fillNames names the nodes of the map that have no name from the rows
// (client_name, server_name) with the query of a DNS answer in the window
// that resolved to their address.
func (e *Engine) fillNames(ctx context.Context, p *prepared, w *mapWorker) error {
	nameless := map[string]bool{}
	for k, a := range w.edges {
		if a.cname == "" {
			nameless[k.client] = true
		}
		if a.sname == "" {
			nameless[k.server] = true
		}
	}
	if len(nameless) == 0 {
		return nil
	}
	var mu sync.Mutex
	found := map[string]string{}
	err := e.run(ctx, &scan{
		table: dnsTable, from: p.from, to: p.to, where: and(tsRange(p.from, p.to), p.scope),
		cols: []string{"query", "answers", "responded"},
		fn: func(_ int, _ *unit, b *batch, sel []int32) error {
			q, ans := b.col("query"), b.col("answers")
			for _, r := range sel {
				for _, a := range ans.strs(int(r)) {
					if !nameless[a] {
						continue
					}
					name := strings.TrimSuffix(q.str(int(r)), ".")
					mu.Lock()
					if old, ok := found[a]; name != "" && (!ok || name < old) {
						found[strings.Clone(a)] = strings.Clone(name)
					}
					mu.Unlock()
				}
			}
			return nil
		},
	})
	if err != nil {
		return err
	}
	for k, a := range w.edges {
		if a.cname == "" {
			a.cname = found[k.client]
		}
		if a.sname == "" {
			a.sname = found[k.server]
		}
	}
	return nil
}
