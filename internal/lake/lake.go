// Package lake writes flowlake's tables as a Hive-partitioned Parquet lake:
//
//	lake/<table>/dt=YYYY-MM-DD/hour=HH/<name>-<part:04d>.parquet
//
// A Table[T] buffers typed rows per UTC hour of their ts, and on Close sorts
// each hour's rows (by ts, then by the table's tie-break order) and writes
// them as Parquet objects to a Sink. Output is deterministic: the same rows
// with the same Options yield byte-identical objects under the same keys
// (whatever order they were added in, as long as the tie-break order tells
// distinct rows apart), so a retried input overwrites its earlier output
// instead of duplicating it. Invalid UTF-8 in string columns is replaced
// with U+FFFD, because Parquet strings must be UTF-8 and DuckDB rejects
// files that break this.
//
// Files are zstd-compressed, carry column chunk min/max statistics, a page
// index (column and offset indexes) and page statistics (not on the bulky
// header and body columns listed by schema.LargeColumns), use dictionary
// encoding on the columns tagged dict, declare ts as the sorting column, and
// hold the key/value metadata flowlake.schema_version, flowlake.table and,
// when Options.Agent is set, flowlake.agent. Row groups are cut when the
// estimated uncompressed size of their rows reaches Options.RowGroupBytes;
// files are cut after Options.FileRows rows.
//
// Memory: a Table keeps every added row until Close, unless its buffered
// rows exceed Options.MaxBufferBytes; it then spills, writing the largest
// hours' buffered rows as their next part files, until it is below half the
// limit. Rows are sorted within each file; without a spill, an hour's files
// are also in order relative to each other (part 0 holds the earliest rows),
// after a spill the order holds only per file.
//
// Reading: compaction (package compact) later merges a partition's files
// into compact-<hash>-<part>.parquet files and switches readers to them
// with a versioned manifest. ListFiles and ReadPartition return the files a
// reader must read, following that manifest (see ReadPartition for the
// protocol); DuckDBQuery is the same in DuckDB SQL.
package lake

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/flowlake/flowlake/schema"
)

// Defaults applied to zero Options fields.
const (
	DefaultRowGroupBytes  int64 = 64 << 20
	DefaultFileRows             = 1_000_000
	DefaultMaxBufferBytes int64 = 256 << 20
)

// Object key layout.
const (
	// Prefix is the first element of every lake object key.
	Prefix = "lake"
	// Ext is the file name extension of lake objects.
	Ext = ".parquet"
)

// Key/value metadata keys written into every file.
const (
	MetaSchemaVersion = "flowlake.schema_version"
	MetaTable         = "flowlake.table"
	MetaAgent         = "flowlake.agent"
)

// ErrClosed is returned by Close when a table is closed a second time or
// had rows added after it was closed.
var ErrClosed = errors.New("lake: table closed")

const usPerHour = int64(3600 * 1_000_000)

// Options configures a Table or Writer.
type Options struct {
	// Name is the deterministic base name of the output files, given by the
	// caller and derived from the input (e.g. "run-abc" or an input key's
	// sequence number); files become <Name>-<part:04d>.parquet. It must be a
	// single path element not starting with a dot.
	Name string
	// RowGroupBytes cuts row groups when the estimated uncompressed size of
	// their rows (fixed-width values plus string bytes) reaches it. Zero
	// means DefaultRowGroupBytes.
	RowGroupBytes int64
	// FileRows is the most rows in one file before part+1 starts. Zero
	// means DefaultFileRows.
	FileRows int
	// MaxBufferBytes bounds the estimated memory of the rows a Table
	// buffers; above it the Table spills (see the package doc). Zero means
	// DefaultMaxBufferBytes.
	MaxBufferBytes int64
	// Agent, when set, is recorded in every file's key/value metadata as
	// flowlake.agent. Rows are not changed.
	Agent string
}

// zstdFastest is the lake's codec: the fastest zstd level. On the
// benchmark captures it writes files a few percent larger than the default
// level in much less time (bodies and headers dominate the bytes).
var zstdFastest = zstd.Codec{Level: zstd.SpeedFastest}

// withDefaults returns o with zero fields replaced by their defaults.
func (o Options) withDefaults() Options {
	if o.RowGroupBytes <= 0 {
		o.RowGroupBytes = DefaultRowGroupBytes
	}
	if o.FileRows <= 0 {
		o.FileRows = DefaultFileRows
	}
	if o.MaxBufferBytes <= 0 {
		o.MaxBufferBytes = DefaultMaxBufferBytes
	}
	return o
}

// validName reports whether name can be a path element of a key.
func validName(name string) error {
	if name == "" || strings.HasPrefix(name, ".") || strings.ContainsAny(name, `/\`) || !fs.ValidPath(name) {
		return fmt.Errorf("invalid name %q: want a single path element not starting with a dot", name)
	}
	return nil
}

// Stats reports what a Table wrote.
type Stats struct {
	// Rows is the number of rows written.
	Rows int64
	// Files is the number of objects written.
	Files int
	// RowGroups is the number of row groups in those objects.
	RowGroups int
	// Bytes is the total size of those objects.
	Bytes int64
	// Spills counts how often buffered rows were written before Close
	// because the buffer limit was reached.
	Spills int
	// RepairedUTF8 counts string values whose invalid UTF-8 bytes were
	// replaced with U+FFFD (Parquet strings must be UTF-8; DuckDB rejects a
	// file that holds one invalid value).
	RepairedUTF8 int64
	// Keys lists the object keys in the order they were written.
	Keys []string
}

// Table buffers rows of type T for one lake table and writes them as
// Parquet files. T must be a flat struct whose parquet tags define the
// columns (the row types of package schema). A Table is not safe for
// concurrent use.
type Table[T any] struct {
	table string
	sink  Sink
	opts  Options
	ts    func(*T) int64
	less  func(a, b *T) bool
	sizer *rowSizer
	wopts []parquet.WriterOption

	parts    map[int64]*partition[T] // by hours since the epoch
	buffered int64                   // estimated memory of buffered rows
	batch    []T                     // scratch for writing rows in sorted order
	scratch  T                       // the row being added, for calling ts
	stats    Stats
	err      error // sticky: the first failure, reported by Close
	closed   bool
}

// partition is the buffered rows of one hour. Rows live in chunks that are
// never reallocated, so buffering copies each row once and the memory held
// stays close to the estimate.
type partition[T any] struct {
	hour     int64
	dir      string // "dt=…/hour=…"
	chunks   [][]T
	meta     []rowMeta // one per row, in the order added
	mem      int64
	nextPart int
}

// Chunk sizes: the first chunk of a partition is small (an hour may hold
// few rows), each next one twice as large up to maxChunkRows.
const (
	minChunkRows = 16
	maxChunkRows = 4096
)

// add appends row to p and returns a pointer to the stored copy.
func (p *partition[T]) add(row T) *T {
	n := len(p.chunks)
	if n == 0 || len(p.chunks[n-1]) == cap(p.chunks[n-1]) {
		size := minChunkRows
		if n > 0 {
			size = min(2*cap(p.chunks[n-1]), maxChunkRows)
		}
		p.chunks = append(p.chunks, make([]T, 0, size))
		n++
	}
	p.chunks[n-1] = append(p.chunks[n-1], row)
	return &p.chunks[n-1][len(p.chunks[n-1])-1]
}

// row returns the i-th row added.
func (p *partition[T]) row(i int) *T {
	m := &p.meta[i]
	return &p.chunks[m.chunk][m.off]
}

// rowMeta caches what sorting and row group cutting need of a row, and
// where the row is stored.
type rowMeta struct {
	ts    int64
	bytes int64 // estimated uncompressed Parquet bytes
	chunk int32
	off   int32
}

// rowMetaBytes is the memory of one rowMeta.
const rowMetaBytes = 24

// NewTable returns a Table that writes rows of type T as the lake table
// named table to sink. ts returns a row's ts column (microseconds since the
// epoch, UTC), which picks its partition and is the primary sort key. less
// orders rows with equal ts; make it total over distinct rows (compare the
// row's id or another stable key) so that the output does not depend on the
// order rows were added in. Rows that less does not tell apart keep the
// order they were added in.
//
// Invalid arguments (an unsafe table name or Options.Name, a nil sink, ts
// or less, a row type that is not a flat struct of supported column types)
// are reported by Close.
func NewTable[T any](table string, sink Sink, opts Options, ts func(*T) int64, less func(a, b *T) bool) *Table[T] {
	t := &Table[T]{
		table: table,
		sink:  sink,
		opts:  opts.withDefaults(),
		ts:    ts,
		less:  less,
		parts: make(map[int64]*partition[T]),
	}
	t.err = t.init()
	return t
}

// init validates the arguments and prepares the Parquet writer options.
func (t *Table[T]) init() error {
	switch {
	case t.sink == nil:
		return fmt.Errorf("table %s: nil sink", t.table)
	case t.ts == nil || t.less == nil:
		return fmt.Errorf("table %s: nil ts or less function", t.table)
	}
	if err := validName(t.table); err != nil {
		return fmt.Errorf("table %s: %w", t.table, err)
	}
	if err := validName(t.opts.Name); err != nil {
		return fmt.Errorf("table %s: %w", t.table, err)
	}
	sizer, err := newRowSizer(reflect.TypeFor[T]())
	if err != nil {
		return fmt.Errorf("table %s: %w", t.table, err)
	}
	t.sizer = sizer
	ps, err := schemaOf[T]()
	if err != nil {
		return fmt.Errorf("table %s: %w", t.table, err)
	}

	t.wopts = []parquet.WriterOption{
		parquet.Compression(&zstdFastest),
		parquet.WriteBufferSize(0), // the output is a bytes.Buffer
		parquet.DataPageStatistics(true),
		parquet.KeyValueMetadata(MetaSchemaVersion, strconv.Itoa(schema.Version)),
		parquet.KeyValueMetadata(MetaTable, t.table),
	}
	if t.opts.Agent != "" {
		t.wopts = append(t.wopts, parquet.KeyValueMetadata(MetaAgent, t.opts.Agent))
	}
	if _, ok := ps.Lookup("ts"); ok {
		t.wopts = append(t.wopts, parquet.SortingWriterConfig(parquet.SortingColumns(parquet.Ascending("ts"))))
	}
	for _, c := range schema.LargeColumns(t.table) {
		if _, ok := ps.Lookup(c); ok {
			t.wopts = append(t.wopts, parquet.SkipPageStatistics(c))
		}
	}
	return nil
}

// schemaOf returns the Parquet schema of T, turning parquet-go's panic on
// malformed struct tags into an error.
func schemaOf[T any]() (s *parquet.Schema, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("parquet schema of %s: %v", reflect.TypeFor[T](), r)
		}
	}()
	return parquet.SchemaOf(new(T)), nil
}

// Add buffers row in its hour's partition. Invalid UTF-8 in string columns
// is replaced with U+FFFD (counted in Stats.RepairedUTF8); the caller's row
// is not modified. If the buffer limit is exceeded, Add spills (see the
// package doc); a failed spill makes Add drop further rows and Close report
// the error, which Err also returns.
func (t *Table[T]) Add(row T) {
	if t.closed {
		t.err = cmp.Or(t.err, error(ErrClosed))
	}
	if t.err != nil {
		return
	}
	// ts gets a pointer to a field, not to row, which would make every row
	// escape to the heap.
	t.scratch = row
	ts := t.ts(&t.scratch)
	var zero T
	t.scratch = zero
	h := floorDiv(ts, usPerHour)
	p := t.parts[h]
	if p == nil {
		p = &partition[T]{hour: h, dir: schema.PartitionPath(h * usPerHour)}
		t.parts[h] = p
	}
	r := p.add(row)
	pb, mb, repaired := t.sizer.prepare(reflect.ValueOf(r).Elem())
	t.stats.RepairedUTF8 += int64(repaired)
	c := len(p.chunks) - 1
	p.meta = append(p.meta, rowMeta{ts: ts, bytes: pb, chunk: int32(c), off: int32(len(p.chunks[c]) - 1)})
	mb += rowMetaBytes
	p.mem += mb
	t.buffered += mb
	if t.buffered > t.opts.MaxBufferBytes {
		t.spill()
	}
}

// Err returns the first error that made the Table stop accepting rows, or
// nil.
func (t *Table[T]) Err() error { return t.err }

// spill writes the largest partitions until the buffer is below half its
// limit. Add has no context, so spilled objects are put with
// context.Background; the Sink bounds its own operations.
func (t *Table[T]) spill() {
	for t.buffered > t.opts.MaxBufferBytes/2 {
		var big *partition[T]
		for _, p := range t.parts {
			if big == nil || p.mem > big.mem || (p.mem == big.mem && p.hour < big.hour) {
				big = p
			}
		}
		if big == nil || len(big.meta) == 0 {
			return
		}
		if err := t.flushPartition(context.Background(), big); err != nil {
			t.fail(fmt.Errorf("spill %s: %w", t.table, err))
			return
		}
		t.stats.Spills++
	}
}

// fail records err and releases the buffered rows.
func (t *Table[T]) fail(err error) {
	t.err = err
	t.release()
}

// release drops every buffered row.
func (t *Table[T]) release() {
	t.parts = nil
	t.buffered = 0
	t.batch = nil
}

// Close writes every buffered row and returns what the Table wrote in
// total (spilled files included). Partitions are written in time order. The
// Table cannot be used afterwards.
func (t *Table[T]) Close(ctx context.Context) (Stats, error) {
	if t.closed {
		return t.statsCopy(), cmp.Or(t.err, error(ErrClosed))
	}
	t.closed = true
	if t.err != nil {
		t.release()
		return t.statsCopy(), t.err
	}
	hours := make([]int64, 0, len(t.parts))
	for h, p := range t.parts {
		if len(p.meta) > 0 {
			hours = append(hours, h)
		}
	}
	slices.Sort(hours)
	for _, h := range hours {
		if err := t.flushPartition(ctx, t.parts[h]); err != nil {
			t.fail(fmt.Errorf("close %s: %w", t.table, err))
			return t.statsCopy(), t.err
		}
	}
	t.release()
	return t.statsCopy(), nil
}

// statsCopy returns the stats with a copy of the key list.
func (t *Table[T]) statsCopy() Stats {
	s := t.stats
	s.Keys = slices.Clone(s.Keys)
	return s
}

// flushPartition sorts p's buffered rows, writes them as p's next part
// files and releases them.
func (t *Table[T]) flushPartition(ctx context.Context, p *partition[T]) error {
	order := make([]int, len(p.meta))
	for i := range order {
		order[i] = i
	}
	slices.SortFunc(order, func(a, b int) int {
		if c := cmp.Compare(p.meta[a].ts, p.meta[b].ts); c != 0 {
			return c
		}
		ra, rb := p.row(a), p.row(b)
		switch {
		case t.less(ra, rb):
			return -1
		case t.less(rb, ra):
			return 1
		}
		return cmp.Compare(a, b) // equal rows keep the order they were added in
	})
	for len(order) > 0 {
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("write %s/%s: %w", t.table, p.dir, err)
		}
		n := min(len(order), t.opts.FileRows)
		key := fmt.Sprintf("%s/%s/%s/%s-%04d%s", Prefix, t.table, p.dir, t.opts.Name, p.nextPart, Ext)
		body, groups, err := t.encode(p, order[:n])
		if err != nil {
			return fmt.Errorf("write %s: %w", key, err)
		}
		if err := t.sink.Put(ctx, key, body); err != nil {
			return fmt.Errorf("write %s: %w", key, err)
		}
		p.nextPart++
		t.stats.Rows += int64(n)
		t.stats.Files++
		t.stats.RowGroups += groups
		t.stats.Bytes += int64(len(body))
		t.stats.Keys = append(t.stats.Keys, key)
		order = order[n:]
	}
	t.buffered -= p.mem
	p.chunks, p.meta, p.mem = nil, nil, 0
	return nil
}

// batchRows is how many rows are handed to the Parquet writer at once.
const batchRows = 256

// encode writes the rows of p at the indices in order, in that order, as
// one Parquet file and returns it with its number of row groups.
func (t *Table[T]) encode(p *partition[T], order []int) (body []byte, groups int, err error) {
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[T](&buf, t.wopts...)
	if cap(t.batch) < batchRows {
		t.batch = make([]T, 0, batchRows)
	}
	batch := t.batch[:0]
	defer func() {
		clear(batch[:cap(batch)]) // do not keep strings of written rows alive
	}()
	write := func() error {
		if len(batch) == 0 {
			return nil
		}
		if _, err := w.Write(batch); err != nil {
			return fmt.Errorf("write rows: %w", err)
		}
		batch = batch[:0]
		return nil
	}
	var groupBytes int64
	groupRows := 0
	for _, i := range order {
		batch = append(batch, *p.row(i))
		groupBytes += p.meta[i].bytes
		groupRows++
		if len(batch) == cap(batch) {
			if err := write(); err != nil {
				return nil, 0, err
			}
		}
		if groupBytes >= t.opts.RowGroupBytes {
			if err := write(); err != nil {
				return nil, 0, err
			}
			if err := w.Flush(); err != nil {
				return nil, 0, fmt.Errorf("flush row group: %w", err)
			}
			groups++
			groupBytes, groupRows = 0, 0
		}
	}
	if err := write(); err != nil {
		return nil, 0, err
	}
	if groupRows > 0 {
		groups++
	}
	if err := w.Close(); err != nil {
		return nil, 0, fmt.Errorf("close parquet writer: %w", err)
	}
	return buf.Bytes(), groups, nil
}

// floorDiv divides rounding toward negative infinity, so that times before
// the epoch land in the hour they belong to.
func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}
