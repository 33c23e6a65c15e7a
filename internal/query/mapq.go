package query

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/flowlake/flowlake/schema"
)

const usPerMinute = int64(time.Minute / time.Microsecond)

// edgeKey identifies an edge of the map.
type edgeKey struct{ client, server, proto string }

// edgeAcc is an edge being aggregated.
type edgeAcc struct {
	stats
	cname, sname string
}

// mapWorker is one scan worker's partial map.
type mapWorker struct {
	edges map[edgeKey]*edgeAcc
	m     measurer
	// Per batch, edges by dictionary indices of client_ip and server_ip
	// (and the protocol's slot), when both are dictionary-encoded.
	dense   []*batchEdge
	touched []int
}

// batchEdge is an edge within one batch.
type batchEdge struct {
	stats
	ci, si   int32
	proto    string
	cn, sn   int32  // dictionary index of a non-empty name, -1 if none yet
	cnS, snS string // names from plain (not dictionary) columns
}

// takeName keeps the preferred (smallest non-empty) name of row r of v
// and those seen before: a dictionary index idx or a plain string s.
func takeName(v *vec, r int, idx int32, s string) (int32, string) {
	if v.idx != nil {
		x := v.idx[r]
		if x == idx || v.dict.ValueLen(int(x)) == 0 {
			return idx, s
		}
		if idx < 0 || v.dict.Value(int(x)) < v.dict.Value(int(idx)) {
			return x, s
		}
		return idx, s
	}
	return idx, pickName(s, v.str(r))
}

func newMapWorker() *mapWorker { return &mapWorker{edges: map[edgeKey]*edgeAcc{}} }

// names returns the non-empty name of two, preferring the smaller one so
// that the result does not depend on the order rows are read in.
func pickName(a, b string) string {
	switch {
	case a == "":
		return b
	case b == "" || a <= b:
		return a
	}
	return b
}

// add aggregates the selected rows of a batch of table t.
func (w *mapWorker) add(t *tableDef, b *batch, sel []int32) error {
	w.m.reset(t, b)
	cip, sip := b.col("client_ip"), b.col("server_ip")
	var cnm, snm *vec
	if t.name != schema.TableDNS {
		cnm, snm = b.col("client_name"), b.col("server_name")
	}
	nc, ns := cip.dictLen(), sip.dictLen()
	protoSlots := 1
	if t.name == schema.TableTCP || t.name == schema.TableEdges1m {
		protoSlots = 4
	}
	if nc == 0 || ns == 0 || nc*ns*protoSlots > 1<<20 {
		return w.addSlow(t, b, sel, cip, sip, cnm, snm)
	}
	size := nc * ns * protoSlots
	if cap(w.dense) < size {
		w.dense = make([]*batchEdge, size)
	}
	dense := w.dense[:size]
	for _, r32 := range sel {
		r := int(r32)
		ci, si := cip.idx[r], sip.idx[r]
		slot := (int(ci)*ns + int(si)) * protoSlots
		proto := ""
		if protoSlots > 1 {
			proto = w.m.protocol(r)
			slot += protoSlot(proto)
		}
		e := dense[slot]
		if e == nil {
			e = &batchEdge{ci: ci, si: si, proto: proto, cn: -1, sn: -1}
			if protoSlots == 1 {
				e.proto = w.m.protocol(r)
			}
			dense[slot] = e
			w.touched = append(w.touched, slot)
		}
		if cnm != nil {
			e.cn, e.cnS = takeName(cnm, r, e.cn, e.cnS)
			e.sn, e.snS = takeName(snm, r, e.sn, e.snS)
		}
		if err := w.m.add(&e.stats, r); err != nil {
			return err
		}
	}
	for _, slot := range w.touched {
		e := dense[slot]
		dense[slot] = nil
		k := edgeKey{client: strings.Clone(cip.dict.Value(int(e.ci))), server: strings.Clone(sip.dict.Value(int(e.si))), proto: e.proto}
		cn, sn := e.cnS, e.snS
		if e.cn >= 0 {
			cn = cnm.dict.Value(int(e.cn))
		}
		if e.sn >= 0 {
			sn = snm.dict.Value(int(e.sn))
		}
		w.fold(k, &e.stats, cn, sn)
	}
	w.touched = w.touched[:0]
	return nil
}

func protoSlot(p string) int {
	switch p {
	case schema.ProtoTCP:
		return 1
	case schema.ProtoTLS:
		return 2
	case schema.ProtoDNS:
		return 3
	}
	return 0
}

// addSlow aggregates rows by their string values.
func (w *mapWorker) addSlow(t *tableDef, b *batch, sel []int32, cip, sip, cnm, snm *vec) error {
	var s stats
	for _, r32 := range sel {
		r := int(r32)
		s = stats{}
		if err := w.m.add(&s, r); err != nil {
			return err
		}
		k := edgeKey{client: cip.str(r), server: sip.str(r), proto: w.m.protocol(r)}
		cn, sn := "", ""
		if cnm != nil {
			cn, sn = cnm.str(r), snm.str(r)
		}
		if _, ok := w.edges[k]; !ok {
			k.client, k.server = strings.Clone(k.client), strings.Clone(k.server)
		}
		w.fold(k, &s, cn, sn)
	}
	return nil
}

// fold adds a partial edge to the worker's edges.
func (w *mapWorker) fold(k edgeKey, s *stats, cn, sn string) {
	a := w.edges[k]
	if a == nil {
		a = &edgeAcc{}
		w.edges[k] = a
	}
	a.merge(s)
	if n := pickName(a.cname, cn); n != a.cname {
		a.cname = strings.Clone(n)
	}
	if n := pickName(a.sname, sn); n != a.sname {
		a.sname = strings.Clone(n)
	}
}

// Map returns the network map of the exchanges (HTTP), connections (TLS,
// other TCP) and DNS queries selected by req. With an empty q or one the
// edges_1m rollup answers, the whole minutes of the window are read from
// the rollup and only the partial minutes at its ends from the raw
// tables (hours without rollup files are read raw too).
func (e *Engine) Map(ctx context.Context, req Request) (*MapResult, error) {
	p, err := e.prepare(req)
	if err != nil {
		return nil, err
	}
	res := &MapResult{Nodes: []Node{}, Edges: []Edge{}}
	if p.none {
		return res, nil
	}
	workers := make([]*mapWorker, e.opts.Parallel)
	for i := range workers {
		workers[i] = newMapWorker()
	}
	add := func(t *tableDef) func(w int, u *unit, b *batch, sel []int32) error {
		return func(w int, u *unit, b *batch, sel []int32) error { return workers[w].add(t, b, sel) }
	}
	err = e.rollupOrRaw(ctx, p, true, func(t *tableDef, from, to int64, where whereFn) error {
		cols := append([]string{"client_ip", "server_ip"}, measureColumns[t.name]...)
		if t.name != schema.TableDNS {
			cols = append(cols, "client_name", "server_name")
		}
		return e.run(ctx, &scan{table: t, from: from, to: to, where: where(t), cols: cols, fn: add(t)})
	})
	if err != nil {
		return nil, err
	}
	all := workers[0]
	for _, w := range workers[1:] {
		for k, a := range w.edges {
			all.fold(k, &a.stats, a.cname, a.sname)
		}
	}
	if err := e.fillNames(ctx, p, all); err != nil {
		return nil, err
	}
	return buildMap(all), nil
}

// buildMap turns aggregated edges into the map result, sorted by id.
func buildMap(w *mapWorker) *MapResult {
	res := &MapResult{Nodes: []Node{}, Edges: []Edge{}}
	nodes := map[string]*Node{}
	node := func(ip, name, kind string) *Node {
		n := nodes[ip]
		if n == nil {
			n = &Node{ID: ip, IP: ip, Name: ip, Kind: kind}
			nodes[ip] = n
		}
		if name != "" && (n.Name == ip || name < n.Name) {
			n.Name = name
		}
		if n.Kind != kind {
			n.Kind = "both"
		}
		return n
	}
	for k, a := range w.edges {
		c := node(k.client, a.cname, "client")
		s := node(k.server, a.sname, "server")
		for _, n := range []*Node{c, s} {
			n.Requests += a.count
			n.Errors += a.errors
			n.Bytes += a.bytes
		}
		if c == s { // traffic to itself counts once
			c.Requests -= a.count
			c.Errors -= a.errors
			c.Bytes -= a.bytes
		}
		res.Edges = append(res.Edges, Edge{
			ID: k.client + "->" + k.server + "/" + k.proto, Source: k.client, Target: k.server, Protocol: k.proto,
			Count: a.count, Errors: a.errors, P50US: a.p(0.5), P95US: a.p(0.95), Bytes: a.bytes,
		})
	}
	for _, n := range nodes {
		res.Nodes = append(res.Nodes, *n)
	}
	slices.SortFunc(res.Nodes, func(a, b Node) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(res.Edges, func(a, b Edge) int { return cmp.Compare(a.ID, b.ID) })
	return res
}

// whereFn returns the condition of a scan of one table.
type whereFn func(t *tableDef) *filterExpr

// rollupOrRaw calls scanFn for the scans that cover the request's window:
// the edges_1m rollup for whole minutes when the filter allows, the raw
// tables (http, tcp, dns, each if the filter applies to it) elsewhere or
// when allowRollup is false.
func (e *Engine) rollupOrRaw(ctx context.Context, p *prepared, allowRollup bool, scanFn func(t *tableDef, from, to int64, where whereFn) error) error {
	raw := func(from, to int64) error {
		for _, rt := range rawTables {
			if !rt.t.supports(p.expr) {
				continue
			}
			if err := scanFn(rt.t, from, to, func(*tableDef) *filterExpr { return p.where(from, to, rt.extra) }); err != nil {
				return err
			}
		}
		return nil
	}
	mFrom := ceilDiv(p.from, usPerMinute) * usPerMinute
	mTo := floorDiv(p.to, usPerMinute) * usPerMinute
	if e.opts.NoRollups || !allowRollup || !rollupCompatible(p.expr) || mFrom >= mTo {
		return raw(p.from, p.to)
	}
	// Hours (of the whole-minute range) whose raw partitions have no
	// rollup partition are read raw.
	spans, err := e.rollupSpans(ctx, mFrom, mTo)
	if err != nil {
		return err
	}
	if p.from < mFrom {
		if err := raw(p.from, mFrom); err != nil {
			return err
		}
	}
	for _, sp := range spans {
		if sp.rollup {
			err = scanFn(edgesTable, sp.from, sp.to, func(*tableDef) *filterExpr { return p.where(sp.from, sp.to) })
		} else {
			err = raw(sp.from, sp.to)
		}
		if err != nil {
			return err
		}
	}
	if mTo < p.to {
		return raw(mTo, p.to)
	}
	return nil
}

// span is a time range read from the rollup or from the raw tables.
type span struct {
	from, to int64
	rollup   bool
}

// rollupSpans splits [from, to) into ranges with and without rollups: an
// hour partition of http, tcp or dns without an edges_1m partition (a lake
// written before rollups existed) is read raw.
func (e *Engine) rollupSpans(ctx context.Context, from, to int64) ([]span, error) {
	hours := func(table string) (map[int64]bool, error) {
		parts, err := listPartitionNames(ctx, e, table, from, to)
		if err != nil {
			return nil, err
		}
		return parts, nil
	}
	have, err := hours(schema.TableEdges1m)
	if err != nil {
		return nil, err
	}
	missing := map[int64]bool{}
	for _, t := range []string{schema.TableHTTP, schema.TableTCP, schema.TableDNS} {
		hs, err := hours(t)
		if err != nil {
			return nil, err
		}
		for h := range hs {
			if !have[h] {
				missing[h] = true
			}
		}
	}
	var out []span
	add := func(a, b int64, rollup bool) {
		if a >= b {
			return
		}
		if n := len(out); n > 0 && out[n-1].rollup == rollup && out[n-1].to == a {
			out[n-1].to = b
			return
		}
		out = append(out, span{a, b, rollup})
	}
	const usPerHour = 3600 * 1_000_000
	for h := floorDiv(from, usPerHour); h*usPerHour < to; h++ {
		a, b := max(from, h*usPerHour), min(to, (h+1)*usPerHour)
		add(a, b, !missing[h])
	}
	return out, nil
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func ceilDiv(a, b int64) int64 { return -floorDiv(-a, b) }
