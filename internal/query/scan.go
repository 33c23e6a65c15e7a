package query

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/metadata"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"

	"github.com/flowlake/flowlake/internal/filter"
	"github.com/flowlake/flowlake/internal/lake"
	"github.com/flowlake/flowlake/internal/store"
)

// batchRows is the Arrow record batch size of scans.
const batchRows = 64 << 10

// unit is one row group of one lake file: the unit of parallel scanning.
type unit struct {
	info  store.Info
	md    *metadata.FileMetaData
	rg    int
	rows  int64
	minTS int64
	maxTS int64
	// where is the scan's condition simplified for this row group: parts
	// its statistics decide are gone, so their columns are not read.
	where *filter.Expr
}

// objectReader reads one object through the store's range reads; it is
// the io.ReaderAt + io.Seeker Arrow's Parquet reader wants.
type objectReader struct {
	ctx  context.Context
	st   store.Store
	key  string
	size int64
	pos  int64
}

func (r *objectReader) ReadAt(p []byte, off int64) (int, error) {
	if off >= r.size {
		return 0, io.EOF
	}
	n := min(int64(len(p)), r.size-off)
	b, err := r.st.GetRange(r.ctx, r.key, off, n)
	if err != nil {
		return 0, err
	}
	c := copy(p, b)
	if c < len(p) {
		return c, io.EOF
	}
	return c, nil
}

func (r *objectReader) Read(p []byte) (int, error) {
	n, err := r.ReadAt(p, r.pos)
	r.pos += int64(n)
	return n, err
}

func (r *objectReader) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		off += r.pos
	case io.SeekEnd:
		off += r.size
	default:
		return 0, errors.New("seek: bad whence")
	}
	if off < 0 {
		return 0, errors.New("seek: negative position")
	}
	r.pos = off
	return off, nil
}

var readerProps = func() *parquet.ReaderProperties {
	p := parquet.NewReaderProperties(memory.DefaultAllocator)
	p.BufferedStreamEnabled = false // one range read per column chunk
	return p
}()

// footer returns the parsed footer of a lake file, from the cache or by
// reading the object's tail.
func (e *Engine) footer(ctx context.Context, info store.Info) (*metadata.FileMetaData, error) {
	if md := e.footers.get(info.Key, info.Size, info.ETag); md != nil {
		return md, nil
	}
	r := &objectReader{ctx: ctx, st: e.st, key: info.Key, size: info.Size}
	f, err := file.NewParquetReader(r, file.WithReadProps(readerProps))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", info.Key, err)
	}
	md := f.MetaData()
	e.footers.put(info.Key, info.Size, info.ETag, md)
	return md, nil
}

// listFiles returns the live files of table with rows in [from, to)
// (partitions pruned by time, manifests followed).
func (e *Engine) listFiles(ctx context.Context, table string, from, to int64) ([]store.Info, error) {
	parts, err := lake.ListPartitions(ctx, e.st, table, from, to)
	if err != nil {
		return nil, err
	}
	var out []store.Info
	for _, p := range parts {
		out = append(out, p.Live...)
	}
	return out, nil
}

// scan is one scan of one table.
type scan struct {
	table *tableDef
	from  int64 // ts range [from, to)
	to    int64
	// where is the row condition (time range and scope included).
	where *filter.Expr
	// cols are the columns the consumer reads, besides those of where.
	cols []string
	// newestFirst orders the units by descending max ts (else ascending
	// min ts); consumers run in parallel either way.
	newestFirst bool
	// skip, if set, is asked before a unit is read; true skips it.
	skip func(u *unit) bool
	// fn consumes the selected rows sel of each batch, on worker w.
	fn func(w int, u *unit, b *batch, sel []int32) error
}

// plan lists the units of a scan: files of the partitions in range, row
// groups whose statistics may hold matching rows.
func (e *Engine) plan(ctx context.Context, s *scan) ([]*unit, error) {
	files, err := e.listFiles(ctx, s.table.name, s.from, s.to)
	if err != nil {
		return nil, err
	}
	mds := make([]*metadata.FileMetaData, len(files))
	err = parallel(ctx, len(files), e.opts.Parallel*4, func(i int) error {
		md, err := e.footer(ctx, files[i])
		mds[i] = md
		return err
	})
	if err != nil {
		return nil, err
	}
	var units []*unit
	for i, md := range mds {
		idx := columnIndex(md)
		for rg := range md.NumRowGroups() {
			rgm := md.RowGroup(rg)
			if rgm.NumRows() == 0 {
				continue
			}
			u := &unit{info: files[i], md: md, rg: rg, rows: rgm.NumRows(), minTS: minInt64, maxTS: maxInt64}
			if lo, hi, ok := intStats(rgm, idx, "ts"); ok {
				u.minTS, u.maxTS = lo, hi
			}
			w := simplify(s.where, s.table, rgm, idx)
			if w == exprFalse {
				continue
			}
			if w == exprTrue {
				w = nil
			}
			u.where = w
			units = append(units, u)
		}
	}
	if s.newestFirst {
		slices.SortStableFunc(units, func(a, b *unit) int { return cmpInt64(b.maxTS, a.maxTS) })
	} else {
		slices.SortStableFunc(units, func(a, b *unit) int { return cmpInt64(a.minTS, b.minTS) })
	}
	return units, nil
}

const (
	minInt64 = -1 << 63
	maxInt64 = 1<<63 - 1
)

func cmpInt64(a, b int64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// run plans and executes a scan on e.opts.Parallel workers.
func (e *Engine) run(ctx context.Context, s *scan) error {
	units, err := e.plan(ctx, s)
	if err != nil {
		return err
	}
	return e.runUnits(ctx, s, units)
}

// runUnits reads the units of a scan on e.opts.Parallel workers, in order
// of the slice (each worker takes the next unit).
func (e *Engine) runUnits(ctx context.Context, s *scan, units []*unit) error {
	var next atomic.Int64
	workers := min(e.opts.Parallel, len(units))
	errs := make([]error, workers)
	var wg sync.WaitGroup
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for w := range workers {
		wg.Go(func() {
			ev := newEvaluator(s.table)
			for {
				i := int(next.Add(1) - 1)
				if i >= len(units) || ctx.Err() != nil {
					return
				}
				u := units[i]
				if s.skip != nil && s.skip(u) {
					continue
				}
				cols := slices.Concat(s.cols, s.table.exprColumns(u.where))
				slices.Sort(cols)
				cols = slices.Compact(cols)
				if err := e.readUnit(ctx, s, u, cols, ev, w); err != nil {
					errs[w] = err
					cancel()
					return
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return err
	}
	return ctx.Err()
}

// readUnit reads the columns cols of one unit batch by batch, evaluates
// the scan's condition and hands the selected rows to the consumer.
func (e *Engine) readUnit(ctx context.Context, s *scan, u *unit, cols []string, ev *evaluator, w int) error {
	ur, err := e.openUnit(ctx, u, cols)
	if err != nil {
		return err
	}
	defer ur.release()
	b := &batch{}
	var off int64
	for off < u.rows {
		if err := ctx.Err(); err != nil {
			return err
		}
		n := min(int64(batchRows), u.rows-off)
		var rec arrow.Record
		if ur.rr != nil {
			if !ur.rr.Next() {
				err := ur.rr.Err()
				if err == nil || errors.Is(err, io.EOF) {
					err = fmt.Errorf("%d rows, the row group holds %d", off, u.rows)
				}
				return fmt.Errorf("read %s row group %d: %w", u.info.Key, u.rg, err)
			}
			rec = ur.rr.Record()
			n = rec.NumRows()
		}
		if err := b.reset(rec, int(off), int(n)); err != nil {
			return fmt.Errorf("%s row group %d: %w", u.info.Key, u.rg, err)
		}
		for i := range ur.raw {
			rc := &ur.raw[i]
			vals, err := rc.read(int(n))
			if err != nil {
				return fmt.Errorf("read %s row group %d column %s: %w", u.info.Key, u.rg, rc.name, err)
			}
			b.addRaw(rc.name, vals)
		}
		sel := ev.all(b.n)
		sel = ev.filter(u.where, b, sel)
		if len(sel) > 0 {
			if err := s.fn(w, u, b, sel); err != nil {
				return err
			}
		}
		off += n
		ev.release()
	}
	return nil
}

// unitReader reads the columns of one unit: most through Arrow records,
// plain (not dictionary-encoded) required string columns straight from
// their pages, without copying the values.
type unitReader struct {
	rr  pqarrow.RecordReader // nil when every column is raw
	raw []rawColumn
}

func (ur *unitReader) release() {
	if ur.rr != nil {
		ur.rr.Release()
	}
}

// rawColumn is a plain string column read with the Parquet column reader.
// The values point into the decoded pages, which stay valid while
// referenced (Arrow's Go allocator does not reuse memory).
type rawColumn struct {
	name string
	r    *file.ByteArrayColumnChunkReader
	buf  []parquet.ByteArray
}

// read returns the next n values.
func (rc *rawColumn) read(n int) ([]parquet.ByteArray, error) {
	if cap(rc.buf) < n {
		rc.buf = make([]parquet.ByteArray, n)
	}
	vals := rc.buf[:n]
	got := 0
	for got < n {
		_, k, err := rc.r.ReadBatch(int64(n-got), vals[got:], nil, nil)
		if err != nil {
			return nil, err
		}
		if k == 0 {
			return nil, fmt.Errorf("%d values, want %d", got, n)
		}
		got += k
	}
	return vals, nil
}

// openUnit prepares reading the columns cols of u. String columns that
// are dictionary-encoded in the file are read as Arrow dictionaries.
func (e *Engine) openUnit(ctx context.Context, u *unit, cols []string) (*unitReader, error) {
	r := &objectReader{ctx: ctx, st: e.st, key: u.info.Key, size: u.info.Size}
	f, err := file.NewParquetReader(r, file.WithReadProps(readerProps), file.WithMetadata(u.md))
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", u.info.Key, err)
	}
	idx := columnIndex(u.md)
	props := pqarrow.ArrowReadProperties{BatchSize: batchRows}
	leaves := make([]int, 0, len(cols))
	rgm := u.md.RowGroup(u.rg)
	ur := &unitReader{}
	for _, c := range cols {
		li, ok := idx[c]
		if !ok {
			return nil, fmt.Errorf("%s: no column %q", u.info.Key, c)
		}
		cc, err := rgm.ColumnChunk(li)
		if err != nil {
			return nil, fmt.Errorf("%s: column %q: %w", u.info.Key, c, err)
		}
		descr := u.md.Schema.Column(li)
		if cc.Type() == parquet.Types.ByteArray && descr.MaxDefinitionLevel() == 0 && descr.MaxRepetitionLevel() == 0 && !cc.HasDictionaryPage() {
			ccr, err := f.RowGroup(u.rg).Column(li)
			if err != nil {
				return nil, fmt.Errorf("%s: column %q: %w", u.info.Key, c, err)
			}
			if br, ok := ccr.(*file.ByteArrayColumnChunkReader); ok {
				ur.raw = append(ur.raw, rawColumn{name: c, r: br})
				continue
			}
		}
		leaves = append(leaves, li)
		if cc.HasDictionaryPage() && cc.Type() == parquet.Types.ByteArray {
			props.SetReadDict(li, true)
		}
	}
	if len(leaves) == 0 {
		return ur, nil
	}
	fr, err := pqarrow.NewFileReader(f, props, memory.DefaultAllocator)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", u.info.Key, err)
	}
	ur.rr, err = fr.GetRecordReader(ctx, leaves, []int{u.rg})
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", u.info.Key, err)
	}
	return ur, nil
}

// columnIndex maps top-level column names to the index of their (first)
// leaf column.
func columnIndex(md *metadata.FileMetaData) map[string]int {
	out := make(map[string]int, md.Schema.NumColumns())
	for i := range md.Schema.NumColumns() {
		p := md.Schema.Column(i).ColumnPath()
		if len(p) > 0 {
			if _, dup := out[p[0]]; !dup {
				out[p[0]] = i
			}
		}
	}
	return out
}

// intStats returns the min/max statistics of an integer or timestamp
// column of a row group.
func intStats(rg *metadata.RowGroupMetaData, idx map[string]int, name string) (lo, hi int64, ok bool) {
	li, has := idx[name]
	if !has {
		return 0, 0, false
	}
	cc, err := rg.ColumnChunk(li)
	if err != nil {
		return 0, 0, false
	}
	st, err := cc.Statistics()
	if err != nil || st == nil || !st.HasMinMax() {
		return 0, 0, false
	}
	switch s := st.(type) {
	case *metadata.Int64Statistics:
		return s.Min(), s.Max(), true
	case *metadata.Int32Statistics:
		return int64(s.Min()), int64(s.Max()), true
	}
	return 0, 0, false
}

// strStats returns the min/max statistics of a string column.
func strStats(rg *metadata.RowGroupMetaData, idx map[string]int, name string) (lo, hi []byte, ok bool) {
	li, has := idx[name]
	if !has {
		return nil, nil, false
	}
	cc, err := rg.ColumnChunk(li)
	if err != nil {
		return nil, nil, false
	}
	st, err := cc.Statistics()
	if err != nil || st == nil || !st.HasMinMax() {
		return nil, nil, false
	}
	if s, ok := st.(*metadata.ByteArrayStatistics); ok {
		return s.Min(), s.Max(), true
	}
	return nil, nil, false
}

// Sentinels of simplify.
var (
	exprTrue  = &filter.Expr{Kind: filter.KindAnd}
	exprFalse = &filter.Expr{Kind: filter.KindOr}
)

// simplify returns e with the comparisons that a row group's statistics
// decide replaced by their value: exprTrue when every row matches, exprFalse
// when none can, else the expression that is left to evaluate.
func simplify(e *filter.Expr, t *tableDef, rg *metadata.RowGroupMetaData, idx map[string]int) *filter.Expr {
	if e == nil {
		return exprTrue
	}
	switch e.Kind {
	case filter.KindAnd, filter.KindOr:
		isAnd := e.Kind == filter.KindAnd
		var keep []*filter.Expr
		for _, a := range e.Args {
			switch x := simplify(a, t, rg, idx); {
			case x == exprTrue && isAnd, x == exprFalse && !isAnd:
				continue
			case x == exprTrue:
				return exprTrue
			case x == exprFalse:
				return exprFalse
			default:
				keep = append(keep, x)
			}
		}
		switch {
		case len(keep) == 0 && isAnd:
			return exprTrue
		case len(keep) == 0:
			return exprFalse
		case len(keep) == 1:
			return keep[0]
		}
		// Cheap tests first: later ones only see the rows left (and), or
		// the rows not matched yet (or).
		slices.SortStableFunc(keep, func(a, b *filter.Expr) int {
			return cmpInt64(int64(evalCost(a, t, rg, idx)), int64(evalCost(b, t, rg, idx)))
		})
		return &filter.Expr{Kind: e.Kind, Args: keep}
	case filter.KindNot:
		switch x := simplify(e.Args[0], t, rg, idx); x {
		case exprTrue:
			return exprFalse
		case exprFalse:
			return exprTrue
		default:
			return &filter.Expr{Kind: filter.KindNot, Args: []*filter.Expr{x}}
		}
	}
	c := e.Cmp
	fd, ok := t.fields[c.Field]
	if !ok {
		return e
	}
	decided := func(v bool) *filter.Expr {
		if v {
			return exprTrue
		}
		return exprFalse
	}
	switch fd.derive {
	case dConstStr:
		return decided(c.MatchString(fd.constS))
	case dConstBool:
		return decided(c.MatchBool(fd.constB))
	case dColumn:
	default:
		return e
	}
	switch c.Type {
	case filter.Int, filter.Duration, filter.Time:
		lo, hi, ok := c.IntRange()
		if !ok {
			return e
		}
		smin, smax, has := intStats(rg, idx, fd.col)
		if !has {
			return e
		}
		if lo > hi || lo > smax || hi < smin {
			return exprFalse
		}
		if c.Op != filter.In && lo <= smin && hi >= smax {
			return exprTrue
		}
	case filter.String:
		smin, smax, has := strStats(rg, idx, fd.col)
		if !has {
			return e
		}
		if string(smin) == string(smax) {
			return decided(c.MatchString(string(smin)))
		}
		if c.Op != filter.Eq && c.Op != filter.In {
			return e
		}
		vals := c.Strs
		if c.Op == filter.Eq {
			vals = []string{c.Str}
		}
		for _, v := range vals {
			if v >= string(smin) && v <= string(smax) {
				return e
			}
		}
		return exprFalse
	}
	return e
}

// evalCost estimates the per-row cost of evaluating e on a row group:
// comparisons on integers and on dictionary-encoded strings (evaluated
// once per dictionary entry) are cheap, derived values cost more, and
// plain strings most, regular expressions above all.
func evalCost(e *filter.Expr, t *tableDef, rg *metadata.RowGroupMetaData, idx map[string]int) int {
	if e.Kind != filter.KindCmp {
		n := 0
		for _, a := range e.Args {
			n += evalCost(a, t, rg, idx)
		}
		return n
	}
	c := e.Cmp
	fd := t.fields[c.Field]
	switch fd.derive {
	case dConstStr, dConstBool:
		return 0
	case dColumn:
	default:
		return 3
	}
	if c.Type != filter.String {
		return 1
	}
	if li, ok := idx[fd.col]; ok {
		if cc, err := rg.ColumnChunk(li); err == nil && cc.HasDictionaryPage() {
			return 1
		}
	}
	if c.Op == filter.Match {
		return 8
	}
	return 4
}

// parallel calls fn(0..n-1) on at most limit goroutines and returns the
// first error.
func parallel(ctx context.Context, n, limit int, fn func(i int) error) error {
	var next atomic.Int64
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for range min(n, max(limit, 1)) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		})
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

func sortedUnique(s []string) []string {
	out := slices.Clone(s)
	slices.Sort(out)
	return slices.Compact(out)
}

// arrowTypeName is for error messages.
func arrowTypeName(a arrow.Array) string { return a.DataType().String() }
