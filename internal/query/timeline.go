package query

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// Timeline bounds.
const (
	// TimelineBuckets is the number of buckets an automatic step aims at.
	TimelineBuckets = 200
	// MaxTimelineBuckets bounds the buckets of an explicit step.
	MaxTimelineBuckets = 10000
	// statusLookback is how far before the window capture status reports
	// are read, as the baseline of the first deltas.
	statusLookback = 5 * time.Minute
)

var niceSteps = []time.Duration{
	time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond,
	50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
}

// chooseStep returns the step of a window of span µs: the smallest nice
// step giving at most TimelineBuckets buckets.
func chooseStep(span int64) int64 {
	for _, s := range niceSteps {
		if span/s.Microseconds() <= TimelineBuckets {
			return s.Microseconds()
		}
	}
	d := niceSteps[len(niceSteps)-1].Microseconds()
	return ceilDiv(span/TimelineBuckets, d) * d
}

// Timeline returns the selected traffic per time step (counted like the
// map: HTTP exchanges, TLS/TCP connections without HTTP, DNS queries) and
// the capture-quality line of the agents in scope. Buckets are aligned to
// multiples of the step since the epoch.
func (e *Engine) Timeline(ctx context.Context, req Request) (*TimelineResult, error) {
	p, err := e.prepare(req)
	if err != nil {
		return nil, err
	}
	step := req.Step.Microseconds()
	switch {
	case req.Step < 0 || (req.Step > 0 && step == 0):
		return nil, fmt.Errorf("%w: step %s: want at least 1µs", ErrBadRequest, req.Step)
	case step == 0:
		step = chooseStep(p.to - p.from)
	}
	first := floorDiv(p.from, step)
	n := floorDiv(p.to-1, step) - first + 1
	if n > MaxTimelineBuckets {
		return nil, fmt.Errorf("%w: step %s gives %d buckets, more than %d", ErrBadRequest, req.Step, n, MaxTimelineBuckets)
	}
	t0 := first * step
	res := &TimelineResult{StepUS: step, Buckets: make([]Bucket, n), Quality: make([]Quality, n)}
	for i := range res.Buckets {
		ts := micros(t0 + int64(i)*step)
		res.Buckets[i].TS, res.Quality[i].TS = ts, ts
	}
	if p.none {
		return res, nil
	}
	workers := make([][]stats, e.opts.Parallel)
	for i := range workers {
		workers[i] = make([]stats, n)
	}
	ms := make([]measurer, e.opts.Parallel)
	allowRollup := step%usPerMinute == 0
	err = e.rollupOrRaw(ctx, p, allowRollup, func(t *tableDef, from, to int64, where whereFn) error {
		cols := append([]string{"ts"}, measureColumns[t.name]...)
		return e.run(ctx, &scan{table: t, from: from, to: to, where: where(t), cols: cols,
			fn: func(w int, _ *unit, b *batch, sel []int32) error {
				m, buckets := &ms[w], workers[w]
				m.reset(t, b)
				ts := b.col("ts").i64
				for _, r := range sel {
					k := floorDiv(ts[r], step) - first
					if k < 0 || k >= n {
						continue
					}
					if err := m.add(&buckets[k], int(r)); err != nil {
						return err
					}
				}
				return nil
			}})
	})
	if err != nil {
		return nil, err
	}
	for i := range res.Buckets {
		s := &workers[0][i]
		for _, w := range workers[1:] {
			s.merge(&w[i])
		}
		b := &res.Buckets[i]
		b.Count, b.Errors, b.P50US, b.P95US = s.count, s.errors, s.p(0.5), s.p(0.95)
	}
	if err := e.quality(ctx, p, t0, step, res.Quality); err != nil {
		return nil, err
	}
	return res, nil
}

// statusRow is one capture_status report of one stream.
type statusRow struct {
	ts                                                       int64
	agent                                                    string
	stream                                                   int32
	captured, filtered, dropped, overflow, segs, bytes, errs int64
}

// readStatus returns the capture_status reports of [from, to) in scope,
// ordered by agent, stream and time.
func (e *Engine) readStatus(ctx context.Context, p *prepared, from, to int64) ([]statusRow, error) {
	var mu sync.Mutex
	var rows []statusRow
	err := e.run(ctx, &scan{
		table: captureStatusTable, from: from, to: to, where: and(tsRange(from, to), p.scope),
		cols: []string{"ts", "agent", "stream", "captured", "filtered", "dropped", "overflow", "segments_uploaded", "bytes_uploaded", "errors"},
		fn: func(_ int, _ *unit, b *batch, sel []int32) error {
			ts, ag, st := b.col("ts"), b.col("agent"), b.col("stream")
			c, f, d, o := b.col("captured"), b.col("filtered"), b.col("dropped"), b.col("overflow")
			sg, by, er := b.col("segments_uploaded"), b.col("bytes_uploaded"), b.col("errors")
			mu.Lock()
			defer mu.Unlock()
			for _, r32 := range sel {
				r := int(r32)
				rows = append(rows, statusRow{ts: ts.int(r), agent: strings.Clone(ag.str(r)), stream: int32(st.int(r)),
					captured: c.int(r), filtered: f.int(r), dropped: d.int(r), overflow: o.int(r), segs: sg.int(r), bytes: by.int(r), errs: er.int(r)})
			}
			return nil
		},
	})
	slices.SortFunc(rows, func(a, b statusRow) int {
		return cmp.Or(cmp.Compare(a.agent, b.agent), cmp.Compare(a.stream, b.stream), cmp.Compare(a.ts, b.ts))
	})
	return rows, err
}

// delta is a counter's increase between two reports; a counter that went
// down (the agent restarted) counts from zero.
func delta(prev, cur int64) int64 {
	if cur < prev {
		return cur
	}
	return cur - prev
}

// quality fills the capture-quality line: per step, the packets captured,
// dropped and lost to spool overflow (deltas of the agents' cumulative
// counters), parse gaps and missing bytes.
func (e *Engine) quality(ctx context.Context, p *prepared, t0, step int64, q []Quality) error {
	rows, err := e.readStatus(ctx, p, p.from-statusLookback.Microseconds(), p.to)
	if err != nil {
		return err
	}
	n := int64(len(q))
	bucket := func(ts int64) int64 {
		if ts < p.from || ts >= p.to {
			return -1
		}
		k := floorDiv(ts-t0, step)
		if k < 0 || k >= n {
			return -1
		}
		return k
	}
	for i, r := range rows {
		if i == 0 || rows[i-1].agent != r.agent || rows[i-1].stream != r.stream {
			continue // the first report of a stream is the baseline
		}
		k := bucket(r.ts)
		if k < 0 {
			continue
		}
		pr := rows[i-1]
		q[k].Captured += delta(pr.captured, r.captured)
		q[k].Dropped += delta(pr.dropped, r.dropped)
		q[k].Overflow += delta(pr.overflow, r.overflow)
	}
	var mu sync.Mutex
	return e.run(ctx, &scan{
		table: parseStatusTable, from: p.from, to: p.to, where: and(tsRange(p.from, p.to), p.scope),
		cols: []string{"ts", "gap", "missing_bytes"},
		fn: func(_ int, _ *unit, b *batch, sel []int32) error {
			ts, gap, mb := b.col("ts"), b.col("gap"), b.col("missing_bytes")
			mu.Lock()
			defer mu.Unlock()
			for _, r32 := range sel {
				r := int(r32)
				k := bucket(ts.int(r))
				if k < 0 {
					continue
				}
				if gap.bool(r) {
					q[k].Gaps++
				}
				q[k].MissingBytes += mb.int(r)
			}
			return nil
		},
	})
}
