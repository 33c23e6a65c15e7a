package query

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
)

// Sequence limits.
const (
	DefaultSequenceLimit = 200
	MaxSequenceLimit     = 1000
)

// Sequence returns the first req.Limit exchanges of the window (in time
// order) selected by req as a sequence diagram: one participant per
// address (named like map nodes) and one call per exchange.
func (e *Engine) Sequence(ctx context.Context, req Request) (*SequenceResult, error) {
	p, err := e.prepare(req)
	if err != nil {
		return nil, err
	}
	limit := req.Limit
	switch {
	case limit == 0:
		limit = DefaultSequenceLimit
	case limit < 0 || limit > MaxSequenceLimit:
		return nil, fmt.Errorf("%w: limit %d: want 1..%d", ErrBadRequest, limit, MaxSequenceLimit)
	}
	o, _ := parseOrder("ts")
	rows, _, err := e.search(ctx, p, o, nil, limit, false)
	if err != nil {
		return nil, err
	}
	res := &SequenceResult{Participants: []Participant{}, Calls: []Call{}}
	idx := map[string]int{}
	part := func(ip, name string) {
		i, ok := idx[ip]
		if !ok {
			idx[ip] = len(res.Participants)
			res.Participants = append(res.Participants, Participant{ID: ip, Name: ip, IP: ip})
			i = len(res.Participants) - 1
		}
		if pp := &res.Participants[i]; name != "" && (pp.Name == ip || name < pp.Name) {
			pp.Name = name
		}
	}
	for _, r := range rows {
		part(r.ClientIP, r.ClientName)
		part(r.ServerIP, r.ServerName)
		label := strings.TrimSpace(r.Method + " " + r.Path)
		if label == "" {
			label = "(no request)"
		}
		res.Calls = append(res.Calls, Call{ID: r.ID, TS: r.TS, DurationUS: r.DurationUS, From: r.ClientIP, To: r.ServerIP,
			Label: label, Status: r.Status, Error: r.Error})
	}
	return res, nil
}

// Status returns the state of the agents in scope that reported in the
// window (default: the last hour): per agent the counters of the latest
// report of each stream, summed, and the parse lag; and the series of
// their reports with the counters' increase since the previous report
// (streams summed). Agents known only from parse_status (flowlake parse
// runs) are listed with zero counters.
func (e *Engine) Status(ctx context.Context, req Request) (*StatusResult, error) {
	p, err := e.prepare(Request{From: req.From, To: req.To, Scope: req.Scope})
	if err != nil {
		return nil, err
	}
	res := &StatusResult{Agents: []AgentStatus{}, Series: []StatusPoint{}}
	if p.none {
		return res, nil
	}
	rows, err := e.readStatus(ctx, p, p.from-statusLookback.Microseconds(), p.to)
	if err != nil {
		return nil, err
	}
	agents := map[string]*AgentStatus{}
	latest := map[string]map[int32]statusRow{}
	series := map[string]map[int64]*StatusPoint{}
	for i, r := range rows {
		if r.ts < p.from {
			continue // baseline only
		}
		a := agents[r.agent]
		if a == nil {
			a = &AgentStatus{Agent: r.agent, ParseLagS: -1}
			agents[r.agent] = a
			latest[r.agent] = map[int32]statusRow{}
			series[r.agent] = map[int64]*StatusPoint{}
		}
		if r.ts > a.LastSeen.UnixMicro() || a.LastSeen.IsZero() {
			a.LastSeen = micros(r.ts)
		}
		latest[r.agent][r.stream] = r // rows are in time order per stream
		pt := series[r.agent][r.ts]
		if pt == nil {
			pt = &StatusPoint{Agent: r.agent, TS: micros(r.ts)}
			series[r.agent][r.ts] = pt
		}
		if i > 0 && rows[i-1].agent == r.agent && rows[i-1].stream == r.stream {
			pr := rows[i-1]
			pt.Captured += delta(pr.captured, r.captured)
			pt.Filtered += delta(pr.filtered, r.filtered)
			pt.Dropped += delta(pr.dropped, r.dropped)
			pt.Overflow += delta(pr.overflow, r.overflow)
		}
	}
	for agent, streams := range latest {
		a := agents[agent]
		a.Streams = len(streams)
		for _, r := range streams {
			a.Captured += r.captured
			a.Filtered += r.filtered
			a.Dropped += r.dropped
			a.Overflow += r.overflow
			a.SegmentsUploaded += r.segs
			a.BytesUploaded += r.bytes
			a.Errors += r.errs
		}
	}
	// Parse lag: from the newest parsed segment's end to the last report.
	var mu sync.Mutex
	parsed := map[string]int64{}
	err = e.run(ctx, &scan{table: parseStatusTable, from: p.from, to: p.to, where: and(tsRange(p.from, p.to), p.scope),
		cols: []string{"agent", "ts_end"},
		fn: func(_ int, _ *unit, b *batch, sel []int32) error {
			ag, te := b.col("agent"), b.col("ts_end")
			mu.Lock()
			defer mu.Unlock()
			for _, r := range sel {
				a := ag.str(int(r))
				if v, ok := parsed[a]; !ok || te.int(int(r)) > v {
					if !ok {
						a = strings.Clone(a)
					}
					parsed[a] = te.int(int(r))
				}
			}
			return nil
		}})
	if err != nil {
		return nil, err
	}
	for agent, end := range parsed {
		a := agents[agent]
		if a == nil {
			a = &AgentStatus{Agent: agent, LastSeen: micros(end)}
			agents[agent] = a
		}
		a.ParseLagS = max(0, float64(a.LastSeen.UnixMicro()-end)/1e6)
	}
	for _, a := range agents {
		res.Agents = append(res.Agents, *a)
	}
	slices.SortFunc(res.Agents, func(a, b AgentStatus) int { return cmp.Compare(a.Agent, b.Agent) })
	for _, pts := range series {
		for _, pt := range pts {
			res.Series = append(res.Series, *pt)
		}
	}
	slices.SortFunc(res.Series, func(a, b StatusPoint) int {
		return cmp.Or(cmp.Compare(a.Agent, b.Agent), a.TS.Compare(b.TS.Time))
	})
	return res, nil
}
