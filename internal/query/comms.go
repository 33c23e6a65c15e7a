package query

import (
	"cmp"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/flowlake/flowlake/internal/filter"
	"github.com/flowlake/flowlake/schema"
)

// Limits of Communications.
const (
	DefaultLimit = 100
	MaxLimit     = 1000
)

// order is a sort order of exchanges: by an integer column, then by id,
// both ascending or both descending.
type order struct {
	name string // as in the request: "ts", "-ts", ...
	col  string // ts, duration_us or status
	desc bool
}

func parseOrder(s string) (order, error) {
	if s == "" {
		s = "-ts"
	}
	o := order{name: s, col: strings.TrimPrefix(s, "-"), desc: strings.HasPrefix(s, "-")}
	switch o.col {
	case "ts", "duration_us", "status":
		return o, nil
	}
	return order{}, fmt.Errorf("%w: sort %q: want ts, -ts, duration_us, -duration_us, status or -status", ErrBadRequest, s)
}

// before reports whether (ka, ia) comes before (kb, ib).
func (o order) before(ka int64, ia string, kb int64, ib string) bool {
	if ka != kb {
		return (ka < kb) != o.desc
	}
	return ia != ib && (ia < ib) != o.desc
}

// keyBefore reports whether key a comes strictly before key b.
func (o order) keyBefore(a, b int64) bool { return a != b && (a < b) != o.desc }

// cursor is the position after the last item of a page.
type cursor struct {
	Sort string `json:"s"`
	Key  int64  `json:"k"`
	ID   string `json:"i"`
}

func (c cursor) encode() string {
	b, _ := json.Marshal(c)
	return base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string, o order) (*cursor, error) {
	if s == "" {
		return nil, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	var c cursor
	if err == nil {
		err = json.Unmarshal(b, &c)
	}
	if err != nil || c.ID == "" {
		return nil, fmt.Errorf("%w: malformed cursor", ErrBadRequest)
	}
	if c.Sort != o.name {
		return nil, fmt.Errorf("%w: the cursor belongs to sort %q, not %q", ErrBadRequest, c.Sort, o.name)
	}
	return &c, nil
}

// cand is a row that may be on the page.
type cand struct {
	key int64
	id  string // set in phase 1 when the order needs it, else in phase 2
	u   *unit
	pos int // row within the unit
}

// topK keeps the best candidates of a search. Without ids it keeps every
// candidate whose key ties with the k-th best, so that the page can be
// cut exactly once the ids are known.
type topK struct {
	mu     sync.Mutex
	o      order
	k      int
	withID bool
	c      []cand
	// bound is the k-th best key once k candidates are known.
	full  bool
	bound int64
	bid   string
}

// admits reports whether a row with key (and id, if used) may still make
// the page.
func (t *topK) admits(key int64, id string) bool {
	if !t.full {
		return true
	}
	if t.withID {
		return t.o.before(key, id, t.bound, t.bid)
	}
	return !t.o.keyBefore(t.bound, key)
}

// add adds candidates (a worker's batch) and prunes.
func (t *topK) add(cs []cand) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range cs {
		if t.admits(c.key, c.id) {
			t.c = append(t.c, c)
		}
	}
	if len(t.c) >= 2*t.k+64 {
		t.prune()
	}
}

// prune sorts the candidates and drops those that cannot make the page.
func (t *topK) prune() {
	t.sort()
	if len(t.c) < t.k {
		return
	}
	last := t.c[t.k-1]
	t.full, t.bound, t.bid = true, last.key, last.id
	n := t.k
	if !t.withID {
		for n < len(t.c) && t.c[n].key == last.key {
			n++
		}
	}
	clear(t.c[n:])
	t.c = t.c[:n]
}

func (t *topK) sort() {
	slices.SortFunc(t.c, func(a, b cand) int {
		switch {
		case t.o.before(a.key, a.id, b.key, b.id):
			return -1
		case t.o.before(b.key, b.id, a.key, a.id):
			return 1
		}
		return cmp.Or(strings.Compare(a.u.info.Key, b.u.info.Key), cmp.Compare(a.u.rg, b.u.rg), cmp.Compare(a.pos, b.pos))
	})
}

// summaryColumns are the http columns of a Summary.
var summaryColumns = []string{"id", "ts", "ts_end", "duration_us", "agent", "client_ip", "client_port", "server_ip", "server_port",
	"client_name", "server_name", "method", "host", "path", "status", "req_body_bytes", "resp_body_bytes", "content_type",
	"tls", "complete", "error", "tcp_id"}

// detailColumns are the further http columns of a Detail.
var detailColumns = []string{"uri", "query", "version", "reason", "req_headers", "resp_headers", "req_body", "resp_body",
	"user_agent", "community_id", "seq"}

// row is one materialized http row.
type row struct {
	Summary
	detail *Detail
}

// readSummary returns the Summary of row r of b (strings copied).
func readSummary(b *batch, r int) Summary {
	s := func(c string) string { return strings.Clone(b.col(c).str(r)) }
	i := func(c string) int64 { return b.col(c).int(r) }
	status := int32(i("status"))
	perr := s("error")
	return Summary{
		ID: s("id"), TS: micros(i("ts")), TSEnd: micros(i("ts_end")), DurationUS: i("duration_us"), Agent: s("agent"),
		ClientIP: s("client_ip"), ClientPort: int32(i("client_port")), ServerIP: s("server_ip"), ServerPort: int32(i("server_port")),
		ClientName: s("client_name"), ServerName: s("server_name"), Method: s("method"), Host: s("host"), Path: s("path"),
		Status: status, ReqBodyBytes: i("req_body_bytes"), RespBodyBytes: i("resp_body_bytes"), ContentType: s("content_type"),
		TLS: b.col("tls").bool(r), Complete: b.col("complete").bool(r), Error: schema.HTTPIsError(status, perr), ParseError: perr,
		TCPID: s("tcp_id"),
	}
}

// search returns the page of http rows selected by p in order o after
// cursor cur: at most limit rows, and whether more follow. With details,
// the rows carry their Detail (headers and bodies read).
func (e *Engine) search(ctx context.Context, p *prepared, o order, cur *cursor, limit int, details bool) ([]row, bool, error) {
	if p.none {
		return nil, false, nil
	}
	where := p.where(p.from, p.to)
	if cur != nil {
		op := filter.Ge
		if o.desc {
			op = filter.Le
		}
		typ := filter.Int
		if o.col == "ts" {
			typ = filter.Time
		}
		// Rows with the cursor's key are kept here and cut by id below.
		where = and(where, cmpExpr(filter.Cmp{Field: fieldOfColumn(o.col), Type: typ, Op: op, Int: cur.Key}))
	}
	withID := o.col != "ts"
	top := &topK{o: o, k: limit + 1, withID: withID}
	cols := []string{o.col}
	if withID {
		cols = append(cols, "id")
	}
	s := &scan{table: httpTable, from: p.from, to: p.to, where: where, cols: cols, newestFirst: o.desc}
	if o.col == "ts" {
		s.skip = func(u *unit) bool {
			top.mu.Lock()
			defer top.mu.Unlock()
			if !top.full {
				return false
			}
			best := u.minTS
			if o.desc {
				best = u.maxTS
			}
			return o.keyBefore(top.bound, best)
		}
	}
	bufs := make([][]cand, e.opts.Parallel)
	// Without ids, rows with exactly the cursor's key are kept aside (they
	// must not take places on the page before their ids are compared).
	var tieMu sync.Mutex
	var ties []cand
	s.fn = func(w int, u *unit, b *batch, sel []int32) error {
		kc := b.col(o.col)
		var idc *vec
		if withID {
			idc = b.col("id")
		}
		cs := bufs[w][:0]
		top.mu.Lock()
		for _, r := range sel {
			k := kc.int(int(r))
			id := ""
			if withID {
				id = idc.str(int(r))
				if cur != nil && !o.before(cur.Key, cur.ID, k, id) {
					continue
				}
			}
			if cur != nil && !withID && k == cur.Key {
				tieMu.Lock()
				ties = append(ties, cand{key: k, u: u, pos: b.off + int(r)})
				tieMu.Unlock()
				continue
			}
			if top.admits(k, id) {
				if withID {
					id = strings.Clone(id)
				}
				cs = append(cs, cand{key: k, id: id, u: u, pos: b.off + int(r)})
			}
		}
		top.mu.Unlock()
		top.add(cs)
		bufs[w] = cs
		return nil
	}
	if err := e.run(ctx, s); err != nil {
		return nil, false, err
	}
	top.prune()
	top.c = append(top.c, ties...)

	// Phase 2: read the page's rows.
	byUnit := map[*unit][]int{}
	for i, c := range top.c {
		byUnit[c.u] = append(byUnit[c.u], i)
	}
	units := make([]*unit, 0, len(byUnit))
	for u := range byUnit {
		units = append(units, u)
	}
	rows := make([]row, len(top.c))
	cols2 := summaryColumns
	if details {
		cols2 = slices.Concat(summaryColumns, detailColumns)
	}
	var mu sync.Mutex
	s2 := &scan{table: httpTable, cols: cols2, fn: func(_ int, u *unit, b *batch, sel []int32) error {
		for _, i := range byUnit[u] {
			r := top.c[i].pos - b.off
			if r < 0 || r >= b.n {
				continue
			}
			x := row{Summary: readSummary(b, r)}
			if details {
				x.detail = readDetail(b, r, x.Summary)
			}
			mu.Lock()
			rows[i] = x
			mu.Unlock()
		}
		return nil
	}}
	for _, u := range units {
		u.where = nil
	}
	if err := e.runUnits(ctx, s2, units); err != nil {
		return nil, false, err
	}
	// Exact order and cursor by (key, id).
	keyOf := func(x *row) int64 {
		switch o.col {
		case "duration_us":
			return x.DurationUS
		case "status":
			return int64(x.Status)
		}
		return x.TS.UnixMicro()
	}
	out := rows[:0]
	for i := range rows {
		if rows[i].ID == "" && top.c[i].u != nil && rows[i].TS.IsZero() {
			return nil, false, fmt.Errorf("search: row %d of %s not found in phase 2", top.c[i].pos, top.c[i].u.info.Key)
		}
		if cur != nil && !o.before(cur.Key, cur.ID, keyOf(&rows[i]), rows[i].ID) {
			continue
		}
		out = append(out, rows[i])
	}
	slices.SortFunc(out, func(a, b row) int {
		switch {
		case o.before(keyOf(&a), a.ID, keyOf(&b), b.ID):
			return -1
		case o.before(keyOf(&b), b.ID, keyOf(&a), a.ID):
			return 1
		}
		return 0
	})
	more := len(out) > limit
	if more {
		out = out[:limit]
	}
	return out, more, nil
}

// fieldOfColumn maps a sort column to its filter field.
func fieldOfColumn(c string) string {
	switch c {
	case "duration_us":
		return "duration"
	}
	return c
}

// Communications returns a page of the HTTP exchanges selected by req,
// ordered by req.Sort (default newest first, ties broken by id), after
// req.Cursor. Next is the cursor of the following page, empty at the end.
func (e *Engine) Communications(ctx context.Context, req Request) (*Page, error) {
	p, err := e.prepare(req)
	if err != nil {
		return nil, err
	}
	limit := req.Limit
	switch {
	case limit == 0:
		limit = DefaultLimit
	case limit < 0 || limit > MaxLimit:
		return nil, fmt.Errorf("%w: limit %d: want 1..%d", ErrBadRequest, limit, MaxLimit)
	}
	o, err := parseOrder(req.Sort)
	if err != nil {
		return nil, err
	}
	cur, err := decodeCursor(req.Cursor, o)
	if err != nil {
		return nil, err
	}
	rows, more, err := e.search(ctx, p, o, cur, limit, false)
	if err != nil {
		return nil, err
	}
	page := &Page{Items: make([]Summary, len(rows))}
	for i := range rows {
		page.Items[i] = rows[i].Summary
	}
	if more && len(rows) > 0 {
		last := &rows[len(rows)-1]
		k := last.TS.UnixMicro()
		switch o.col {
		case "duration_us":
			k = last.DurationUS
		case "status":
			k = int64(last.Status)
		}
		page.Next = cursor{Sort: o.name, Key: k, ID: last.ID}.encode()
	}
	return page, nil
}
