package query

import (
	"fmt"
	"time"

	"github.com/flowlake/flowlake/internal/filter"
)

// DefaultWindow is the time window of a request without From and To.
const DefaultWindow = time.Hour

// prepared is a validated request.
type prepared struct {
	from, to int64 // µs since the epoch, [from, to)
	expr     *filter.Expr
	scope    *filter.Expr // nil: all agents
	none     bool         // the scope allows no agent: the answer is empty
}

// prepare validates req: the window (defaults: the last hour up to now),
// the filter and the scope.
func (e *Engine) prepare(req Request) (*prepared, error) {
	to, from := req.To, req.From
	switch {
	case to.IsZero() && from.IsZero():
		to = e.now()
		from = to.Add(-DefaultWindow)
	case to.IsZero():
		to = from.Add(DefaultWindow)
	case from.IsZero():
		from = to.Add(-DefaultWindow)
	}
	if !from.Before(to) {
		return nil, fmt.Errorf("%w: from (%s) is not before to (%s)", ErrBadRequest, from.Format(time.RFC3339Nano), to.Format(time.RFC3339Nano))
	}
	expr, err := filter.Parse(req.Q)
	if err != nil {
		return nil, err
	}
	p := &prepared{from: from.UnixMicro(), to: to.UnixMicro(), expr: expr}
	if p.from >= p.to {
		p.to = p.from + 1
	}
	if req.Scope != nil {
		if len(req.Scope) == 0 {
			p.none = true
		}
		p.scope = scopeExpr(req.Scope)
	}
	return p, nil
}

func (e *Engine) now() time.Time {
	if e.opts.Now != nil {
		return e.opts.Now()
	}
	return time.Now()
}

// where returns the condition of a scan of [from, to) of the request.
func (p *prepared) where(from, to int64, extra ...*filter.Expr) *filter.Expr {
	return and(append([]*filter.Expr{tsRange(from, to), p.scope, p.expr}, extra...)...)
}
