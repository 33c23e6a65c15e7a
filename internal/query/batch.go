package query

import (
	"fmt"
	"unsafe"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/parquet"

	"github.com/flowlake/flowlake/internal/filter"
	"github.com/flowlake/flowlake/schema"
)

// vec is one column of a batch, with direct access to Arrow's buffers.
type vec struct {
	// Strings: dictionary indices into dict, or plain values.
	idx   []int32
	dict  *array.String
	plain *array.String
	// Integers (timestamps included).
	i64 []int64
	i32 []int32
	// Booleans.
	bools *array.Boolean
	// Lists of strings.
	list *array.List
	// Plain strings straight from the Parquet pages.
	raw []parquet.ByteArray
}

// str returns the string at row i.
func (v *vec) str(i int) string {
	if v.idx != nil {
		return v.dict.Value(int(v.idx[i]))
	}
	if v.plain != nil {
		return v.plain.Value(i)
	}
	if v.raw != nil {
		if b := v.raw[i]; len(b) > 0 {
			return unsafe.String(&b[0], len(b))
		}
	}
	return ""
}

// int returns the integer at row i.
func (v *vec) int(i int) int64 {
	if v.i64 != nil {
		return v.i64[i]
	}
	if v.i32 != nil {
		return int64(v.i32[i])
	}
	return 0
}

// bool returns the boolean at row i.
func (v *vec) bool(i int) bool {
	if v.bools != nil {
		return v.bools.Value(i)
	}
	return false
}

// strs returns the list of strings at row i.
func (v *vec) strs(i int) []string {
	if v.list == nil {
		return nil
	}
	vals, ok := v.list.ListValues().(*array.String)
	if !ok {
		return nil
	}
	s, e := v.list.ValueOffsets(i)
	out := make([]string, 0, e-s)
	for j := s; j < e; j++ {
		out = append(out, vals.Value(int(j)))
	}
	return out
}

// dictLen returns the number of dictionary entries (0 for a plain column).
func (v *vec) dictLen() int {
	if v.idx != nil {
		return v.dict.Len()
	}
	return 0
}

// batch is one Arrow record of a scan with its columns by name.
type batch struct {
	rec  arrow.Record
	n    int
	off  int // row offset of the batch in its unit
	cols map[string]*vec
	pool []*vec
	used int
}

// reset points b at rec (nil when every column is raw), an n-row batch
// whose first row is row off of its unit.
func (b *batch) reset(rec arrow.Record, off, n int) error {
	b.rec, b.n, b.off = rec, n, off
	if b.cols == nil {
		b.cols = make(map[string]*vec)
	}
	clear(b.cols)
	b.used = 0
	if rec == nil {
		return nil
	}
	for i, a := range rec.Columns() {
		v := b.next()
		if err := v.set(a); err != nil {
			return fmt.Errorf("column %s: %w", rec.ColumnName(i), err)
		}
		b.cols[rec.ColumnName(i)] = v
	}
	return nil
}

// next returns a cleared vec of the batch's pool.
func (b *batch) next() *vec {
	if b.used == len(b.pool) {
		b.pool = append(b.pool, new(vec))
	}
	v := b.pool[b.used]
	b.used++
	*v = vec{}
	return v
}

// addRaw adds a raw string column.
func (b *batch) addRaw(name string, vals []parquet.ByteArray) {
	v := b.next()
	v.raw = vals
	b.cols[name] = v
}

// set points v at the Arrow array a.
func (v *vec) set(a arrow.Array) error {
	switch a := a.(type) {
	case *array.Dictionary:
		ix, ok := a.Indices().(*array.Int32)
		if !ok {
			return fmt.Errorf("dictionary indices of type %s", arrowTypeName(a.Indices()))
		}
		d, ok := a.Dictionary().(*array.String)
		if !ok {
			return fmt.Errorf("dictionary of type %s", arrowTypeName(a.Dictionary()))
		}
		v.idx, v.dict = ix.Int32Values(), d
	case *array.String:
		v.plain = a
	case *array.Int64:
		v.i64 = a.Int64Values()
	case *array.Int32:
		v.i32 = a.Int32Values()
	case *array.Timestamp:
		ts := a.TimestampValues()
		if len(ts) > 0 {
			v.i64 = unsafe.Slice((*int64)(unsafe.Pointer(&ts[0])), len(ts))
		} else {
			v.i64 = []int64{}
		}
	case *array.Boolean:
		v.bools = a
	case *array.List:
		v.list = a
	default:
		return fmt.Errorf("unsupported type %s", arrowTypeName(a))
	}
	return nil
}

// col returns the column named name, or an empty vec.
func (b *batch) col(name string) *vec {
	if v := b.cols[name]; v != nil {
		return v
	}
	return &vec{}
}

// evaluator evaluates filter expressions over batches with selection
// vectors (sorted row indices), reusing its buffers.
type evaluator struct {
	t    *tableDef
	free [][]int32
	used [][]int32
	look []int8 // per dictionary entry: 0 unknown, 1 match, 2 no match
}

func newEvaluator(t *tableDef) *evaluator { return &evaluator{t: t} }

// buf returns an empty selection buffer of capacity n.
func (ev *evaluator) buf(n int) []int32 {
	var b []int32
	if k := len(ev.free); k > 0 {
		b = ev.free[k-1][:0]
		ev.free = ev.free[:k-1]
	}
	if cap(b) < n {
		b = make([]int32, 0, max(n, batchRows))
	}
	ev.used = append(ev.used, b)
	return b
}

// release makes every buffer handed out since the last release reusable.
func (ev *evaluator) release() {
	ev.free = append(ev.free, ev.used...)
	ev.used = ev.used[:0]
}

// all returns the selection of every row of an n-row batch.
func (ev *evaluator) all(n int) []int32 {
	s := ev.buf(n)[:n]
	for i := range s {
		s[i] = int32(i)
	}
	return s
}

// filter returns the rows of sel for which e holds.
func (ev *evaluator) filter(e *filter.Expr, b *batch, sel []int32) []int32 {
	if e == nil || len(sel) == 0 {
		return sel
	}
	switch e.Kind {
	case filter.KindAnd:
		for _, a := range e.Args {
			sel = ev.filter(a, b, sel)
			if len(sel) == 0 {
				break
			}
		}
		return sel
	case filter.KindOr:
		// Rows matching an earlier argument are not tested again.
		rest := sel
		var matched []int32
		for _, a := range e.Args {
			if len(rest) == 0 {
				break
			}
			m := ev.filter(a, b, rest)
			matched = union(ev.buf(len(matched)+len(m)), matched, m)
			rest = minus(ev.buf(len(rest)), rest, m)
		}
		return matched
	case filter.KindNot:
		m := ev.filter(e.Args[0], b, sel)
		return minus(ev.buf(len(sel)), sel, m)
	case filter.KindCmp:
		return ev.cmp(e.Cmp, b, sel)
	}
	return sel[:0]
}

// union merges two sorted selections into out.
func union(out, a, b []int32) []int32 {
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch {
		case a[i] < b[j]:
			out = append(out, a[i])
			i++
		case a[i] > b[j]:
			out = append(out, b[j])
			j++
		default:
			out = append(out, a[i])
			i++
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...)
}

// minus returns the rows of a (sorted) not in its subset m (sorted).
func minus(out, a, m []int32) []int32 {
	j := 0
	for _, r := range a {
		if j < len(m) && m[j] == r {
			j++
			continue
		}
		out = append(out, r)
	}
	return out
}

// cmp returns the rows of sel for which the comparison holds.
func (ev *evaluator) cmp(c *filter.Cmp, b *batch, sel []int32) []int32 {
	fd, ok := ev.t.fields[c.Field]
	if !ok {
		return sel[:0]
	}
	out := ev.buf(len(sel))
	switch fd.derive {
	case dConstStr:
		if c.MatchString(fd.constS) {
			return append(out, sel...)
		}
		return out
	case dConstBool:
		if c.MatchBool(fd.constB) {
			return append(out, sel...)
		}
		return out
	case dHTTPError:
		st, pe := b.col("status"), b.col("error")
		for _, r := range sel {
			if c.MatchBool(schema.HTTPIsError(int32(st.int(int(r))), pe.str(int(r)))) {
				out = append(out, r)
			}
		}
		return out
	case dTCPError:
		cl := b.col("close")
		for _, r := range sel {
			if c.MatchBool(schema.TCPIsError(cl.str(int(r)))) {
				out = append(out, r)
			}
		}
		return out
	case dDNSError:
		rs, rc := b.col("responded"), b.col("rcode")
		for _, r := range sel {
			if c.MatchBool(schema.DNSIsError(rs.bool(int(r)), rc.str(int(r)))) {
				out = append(out, r)
			}
		}
		return out
	case dTCPProto:
		ap, hx := b.col("app_protocol"), b.col("http_exchanges")
		for _, r := range sel {
			if c.MatchString(schema.TCPEdgeProtocol(ap.str(int(r)), int32(hx.int(int(r))))) {
				out = append(out, r)
			}
		}
		return out
	case dTCPTLS:
		ap := b.col("app_protocol")
		for _, r := range sel {
			if c.MatchBool(schema.TCPIsTLS(ap.str(int(r)))) {
				out = append(out, r)
			}
		}
		return out
	case dTCPComplete:
		mb := b.col("missing_bytes")
		for _, r := range sel {
			if c.MatchBool(mb.int(int(r)) == 0) {
				out = append(out, r)
			}
		}
		return out
	}

	v := b.col(fd.col)
	switch c.Type {
	case filter.String:
		if v.idx != nil {
			look := ev.dictLookup(v)
			for _, r := range sel {
				k := v.idx[r]
				l := look[k]
				if l == 0 {
					l = 2
					if c.MatchString(v.dict.Value(int(k))) {
						l = 1
					}
					look[k] = l
				}
				if l == 1 {
					out = append(out, r)
				}
			}
			return out
		}
		for _, r := range sel {
			if c.MatchString(v.str(int(r))) {
				out = append(out, r)
			}
		}
		return out
	case filter.Bool:
		for _, r := range sel {
			if c.MatchBool(v.bool(int(r))) {
				out = append(out, r)
			}
		}
		return out
	}
	// Integers: the common operators get their own loops.
	if v.i64 != nil {
		x := v.i64
		switch c.Op {
		case filter.Ge:
			for _, r := range sel {
				if x[r] >= c.Int {
					out = append(out, r)
				}
			}
			return out
		case filter.Lt:
			for _, r := range sel {
				if x[r] < c.Int {
					out = append(out, r)
				}
			}
			return out
		}
		for _, r := range sel {
			if c.MatchInt(x[r]) {
				out = append(out, r)
			}
		}
		return out
	}
	if v.i32 != nil {
		x := v.i32
		for _, r := range sel {
			if c.MatchInt(int64(x[r])) {
				out = append(out, r)
			}
		}
		return out
	}
	return out
}

// dictLookup returns a cleared memo of a string comparison per
// dictionary entry of v: 0 not evaluated yet, 1 match, 2 no match.
func (ev *evaluator) dictLookup(v *vec) []int8 {
	n := v.dict.Len()
	if cap(ev.look) < n {
		ev.look = make([]int8, n)
	}
	look := ev.look[:n]
	clear(look)
	return look
}
