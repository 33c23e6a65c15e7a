// Package compact merges the many small Parquet files the pipeline writes
// into an hour partition (one per segment, every few seconds) into a few
// large ones, without a moment at which a reader that follows the lake's
// reader protocol (lake.ReadPartition, lake.ListFiles) sees a row twice or
// misses one.
//
// A compaction step on a partition, as a Compactor runs it:
//
//  1. Read the partition as readers do: its current manifest (the highest
//     version of lake/<table>/dt=…/hour=…/_manifest-<v:020d>.json, if any)
//     and its live files.
//  2. Delete the files the manifest replaces whose replacement became
//     current more than the grace period ago (readers that listed before
//     the switch may read them until then), marking them deleted; drop
//     entries deleted more than the grace period ago (a reader that listed
//     before the deletion and reads the manifest after it must still skip
//     them). Compact files that no manifest lists (a crashed or beaten
//     compaction) are marked replaced, to be deleted the same way.
//  3. If the partition's hour ended more than OlderThan ago and it has a
//     live file that is not compacted besides at least one other, read
//     every live file (compacted ones included) and write their rows,
//     sorted as the lake writer sorts them (lake.Table), as
//     compact-<hash>-<part>.parquet, where hash covers the table,
//     partition, base manifest version and input names.
//  4. If anything changed, create manifest version v+1 with PutIfAbsent:
//     the atomic switch. Of concurrent compactors that read version v, one
//     creates v+1; the others get store.ErrExists and leave everything as
//     it was (their compact files are never listed, and a later step marks
//     them replaced). Because the base version is part of the hash, a
//     compaction from another base never reuses a name that may already be
//     marked replaced.
//  5. Once the current manifest replaces nothing, delete the older
//     versions whose successor has been there for the grace period.
//
// Readers must finish within the grace period (the default 10 minutes is
// far beyond a query); see the README for what plain glob readers
// (DuckDB, Athena) see.
package compact

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/lake"
	"github.com/flowlake/flowlake/internal/store"
	"github.com/flowlake/flowlake/schema"
)

// Defaults of Config.
const (
	DefaultOlderThan = time.Hour
	DefaultGrace     = 10 * time.Minute
)

// hashLen is the number of hex digits of the input hash in compact names.
const hashLen = 24

// Config configures a Compactor.
type Config struct {
	// Store holds the lake.
	Store store.Store
	// Tables to compact; nil means schema.Tables.
	Tables []string
	// OlderThan is how long after the end of its hour a partition is
	// merged (late segments may still arrive before). Zero means
	// DefaultOlderThan.
	OlderThan time.Duration
	// Grace is how long replaced files stay after the switch, and deleted
	// ones stay in the manifest after their deletion: the longest a reader
	// may take from listing a partition to reading its last file. Zero
	// means DefaultGrace.
	Grace time.Duration
	// Lake sets the output files' row group size, rows per file and the
	// memory bound of a merge; its Name and Agent are ignored.
	Lake lake.Options
	// Now is the clock. Nil means time.Now.
	Now func() time.Time
	// Log receives a line per changed partition. Nil discards.
	Log *slog.Logger
}

// Compactor runs compaction steps. Several compactors (processes) may run
// on the same lake at once.
type Compactor struct {
	cfg Config
}

// New checks cfg and returns a Compactor.
func New(cfg Config) (*Compactor, error) {
	if cfg.Store == nil {
		return nil, errors.New("compact: no store")
	}
	if cfg.Tables == nil {
		cfg.Tables = schema.Tables
	}
	for _, t := range cfg.Tables {
		if !slices.Contains(schema.Tables, t) {
			return nil, fmt.Errorf("compact: unknown table %q (tables: %s)", t, strings.Join(schema.Tables, ", "))
		}
	}
	switch {
	case cfg.OlderThan < 0:
		return nil, fmt.Errorf("compact: negative older-than %v", cfg.OlderThan)
	case cfg.Grace < 0:
		return nil, fmt.Errorf("compact: negative grace %v", cfg.Grace)
	case cfg.OlderThan == 0:
		cfg.OlderThan = DefaultOlderThan
	}
	if cfg.Grace == 0 {
		cfg.Grace = DefaultGrace
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	cfg.Lake.Name, cfg.Lake.Agent = "", ""
	return &Compactor{cfg: cfg}, nil
}

// Result is what one step did to one partition.
type Result struct {
	Table     string
	Partition string
	// Version is the manifest version this step created (or tried to,
	// when Conflict is set), 0 if none.
	Version uint64
	// Conflict is set when another compactor created that version first;
	// this step then changed nothing but deletions of long-replaced files
	// (its merged files, if any, are orphans that a later step removes).
	Conflict bool
	// Stale is set when, right after this step created its version, a
	// higher one existed already (it re-created a version deleted as old):
	// the created version is ignored by readers and removed later.
	Stale bool

	// Merge: input and output files, rows and bytes (0 when not merged).
	InputFiles, OutputFiles int
	InputBytes, OutputBytes int64
	Rows                    int64

	// Deleted counts replaced files deleted, Forgotten the entries dropped
	// from the manifest a grace period after their deletion, Orphans the
	// compact files no manifest listed (now replaced), and OldManifests
	// the manifest versions deleted.
	Deleted, Forgotten, Orphans, OldManifests int
}

// Changed reports whether the step created a manifest version or deleted
// objects.
func (r Result) Changed() bool {
	return (r.Version != 0 && !r.Conflict && !r.Stale) || r.Deleted > 0 || r.OldManifests > 0
}

// Report is what Run did.
type Report struct {
	// Partitions is the result of every partition stepped.
	Partitions []Result
	// Checked counts the partitions listed; Skipped those that needed no
	// step (too young, a single file, or settled).
	Checked, Skipped int
}

// Run steps every partition of the configured tables that may need it:
// partitions old enough with more than one file, or with a manifest that
// is not settled (one version, no file but compacted ones). A failure in
// one partition does not stop the others; the failures are returned joined.
func (c *Compactor) Run(ctx context.Context) (Report, error) {
	var rep Report
	var errs []error
	for _, table := range c.cfg.Tables {
		parts, err := c.scan(ctx, table)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		for _, p := range parts {
			rep.Checked++
			if !c.needsStep(p) {
				rep.Skipped++
				continue
			}
			res, err := c.Step(ctx, table, p.partition)
			if err != nil {
				errs = append(errs, err)
				continue
			}
			rep.Partitions = append(rep.Partitions, res)
		}
		if ctx.Err() != nil {
			break
		}
	}
	return rep, errors.Join(errs...)
}

// summary is what one listing of a table says about a partition.
type summary struct {
	partition string
	hour      time.Time
	manifests int
	compact   int // compact-* files
	other     int // other .parquet files
}

// scan lists a table and summarizes its partitions, in time order.
func (c *Compactor) scan(ctx context.Context, table string) ([]summary, error) {
	byPart := map[string]*summary{}
	var order []string
	err := c.cfg.Store.List(ctx, keys.LakeTable(table), func(o store.Info) error {
		lo, err := keys.ParseLake(o.Key)
		if err != nil {
			return nil // not a partition file
		}
		s := byPart[lo.Partition]
		if s == nil {
			s = &summary{partition: lo.Partition, hour: lo.Hour}
			byPart[lo.Partition] = s
			order = append(order, lo.Partition)
		}
		switch _, isManifest := keys.ParseManifestName(lo.Name); {
		case isManifest:
			s.manifests++
		case keys.IsCompact(lo.Name):
			s.compact++
		case strings.HasSuffix(lo.Name, keys.ExtParquet):
			s.other++
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("compact %s: %w", table, err)
	}
	out := make([]summary, 0, len(order))
	for _, p := range order {
		out = append(out, *byPart[p])
	}
	slices.SortFunc(out, func(a, b summary) int { return a.hour.Compare(b.hour) })
	return out, nil
}

// needsStep reports whether a partition may need a step. A partition with
// one manifest version is settled unless it has a file that is not
// compacted besides another one (late segments): old versions are deleted
// only once the current one replaces nothing, so nothing is left to delete
// or forget, and its compacted files are live.
func (c *Compactor) needsStep(s summary) bool {
	if s.manifests > 1 {
		return true
	}
	if s.manifests == 0 && !c.oldEnough(s.hour) {
		return false
	}
	return s.other > 0 && s.other+s.compact > 1
}

// oldEnough reports whether the hour starting at h ended OlderThan ago.
func (c *Compactor) oldEnough(h time.Time) bool {
	return !c.cfg.Now().Before(h.Add(time.Hour + c.cfg.OlderThan))
}

// Step runs one compaction step on one partition ("dt=YYYY-MM-DD/hour=HH")
// of a table (see the package doc). It is idempotent: a step on a settled
// partition changes nothing.
func (c *Compactor) Step(ctx context.Context, table, partition string) (Result, error) {
	res := Result{Table: table, Partition: partition}
	fail := func(err error) (Result, error) {
		return res, fmt.Errorf("compact %s/%s: %w", table, partition, err)
	}
	if !slices.Contains(c.cfg.Tables, table) {
		return fail(fmt.Errorf("table %q is not configured", table))
	}
	p, err := lake.ReadPartition(ctx, c.cfg.Store, table, partition)
	if err != nil {
		return fail(err)
	}
	st := c.cfg.Store
	prefix := keys.LakePartitionPrefix(table, partition)
	now := c.cfg.Now()

	var base uint64
	next := &lake.Manifest{Format: lake.ManifestFormat, Table: table, Partition: partition}
	if m := p.Manifest; m != nil {
		base = m.Version
		next.Switched, next.Rows = m.Switched, m.Rows
		next.Files = slices.Clone(m.Files)
	}
	changed := false

	// Replaced files: delete after the grace period, forget a grace period
	// after the deletion (deleting again a file that came back meanwhile).
	listed := map[string]bool{}
	for _, o := range slices.Concat(p.Live, p.Dead) {
		listed[path.Base(o.Key)] = true
	}
	if m := p.Manifest; m != nil {
		for _, r := range m.Replaces {
			switch {
			case r.Deleted.IsZero() && now.Sub(r.Since) > c.cfg.Grace,
				!r.Deleted.IsZero() && listed[r.Name]:
				if err := st.Delete(ctx, prefix+r.Name); err != nil {
					return fail(fmt.Errorf("delete replaced file: %w", err))
				}
				r.Deleted = c.cfg.Now() // after the deletion: forgetting waits from here
				res.Deleted++
				changed = true
			case !r.Deleted.IsZero() && now.Sub(r.Deleted) > c.cfg.Grace:
				res.Forgotten++
				changed = true
				continue
			}
			next.Replaces = append(next.Replaces, r)
		}
	}

	// Merge.
	var live []store.Info
	others := 0
	for _, f := range p.Live {
		live = append(live, f)
		if !keys.IsCompact(path.Base(f.Key)) {
			others++
		}
	}
	var inputs []string
	if others > 0 && len(live) > 1 && c.oldEnough(p.Hour) {
		for _, f := range live {
			inputs = append(inputs, path.Base(f.Key))
			res.InputBytes += f.Size
		}
		name := keys.CompactName(inputHash(table, partition, base, inputs))
		stats, err := c.merge(ctx, table, p.Hour, live, name)
		if err != nil {
			return fail(err)
		}
		next.Files = next.Files[:0]
		for _, k := range stats.Keys {
			if !strings.HasPrefix(k, prefix) || strings.Contains(k[len(prefix):], "/") {
				return fail(fmt.Errorf("merge wrote %s outside the partition", k))
			}
			next.Files = append(next.Files, k[len(prefix):])
		}
		next.Rows = stats.Rows
		res.InputFiles, res.OutputFiles = len(inputs), stats.Files
		res.OutputBytes, res.Rows = stats.Bytes, stats.Rows
		changed = true
	}

	// Compact files no manifest lists: left by a compaction that crashed
	// or lost the race for its version. Names this merge just wrote are
	// live, not orphans (a concurrent compactor of the same inputs from
	// the same base writes the same names and bytes).
	replaced := map[string]bool{}
	for _, r := range next.Replaces {
		replaced[r.Name] = true
	}
	var orphans []string
	for _, o := range p.Dead {
		name := path.Base(o.Key)
		if keys.IsCompact(name) && !replaced[name] && !slices.Contains(next.Files, name) {
			orphans = append(orphans, name)
		}
	}
	res.Orphans = len(orphans)
	changed = changed || len(orphans) > 0

	if changed {
		switched := c.cfg.Now()
		if inputs != nil {
			next.Switched = switched
			for _, n := range inputs {
				if !slices.Contains(next.Files, n) {
					next.Replaces = append(next.Replaces, lake.Replaced{Name: n, Since: switched})
				}
			}
		}
		for _, n := range orphans {
			next.Replaces = append(next.Replaces, lake.Replaced{Name: n, Since: switched})
		}
		next.Version, next.Created = base+1, switched
		if err := c.publish(ctx, next, &res); err != nil {
			return fail(err)
		}
	}
	if res.Conflict || res.Stale {
		c.cfg.Log.Info("compact: manifest version taken by another compactor", "table", table, "partition", partition,
			"version", res.Version, "stale", res.Stale)
		return res, nil
	}

	// Old manifest versions: removed a grace period after their successor
	// appeared (a reader that listed before may still read them), never
	// the current one, and only once the current one replaces nothing. So
	// a partition with a single manifest version has no replaced file
	// left, which is what lets Run skip it.
	cur := p.Manifest
	if changed {
		cur = next
	}
	for i := 0; i+1 < len(p.Manifests) && cur != nil && len(cur.Replaces) == 0; i++ {
		if now.Sub(p.Manifests[i+1].ModTime) > c.cfg.Grace {
			if err := st.Delete(ctx, p.Manifests[i].Key); err != nil {
				return fail(fmt.Errorf("delete old manifest: %w", err))
			}
			res.OldManifests++
		}
	}
	if res.Changed() {
		c.cfg.Log.Info("compact: partition stepped", "table", table, "partition", partition, "version", res.Version,
			"inputs", res.InputFiles, "outputs", res.OutputFiles, "rows", res.Rows, "deleted", res.Deleted,
			"forgotten", res.Forgotten, "orphans", res.Orphans, "old_manifests", res.OldManifests, "stale", res.Stale)
	}
	return res, nil
}

// publish creates manifest version m.Version (the switch), reporting a
// lost race in res.Conflict, and checks afterwards that no higher version
// existed (res.Stale).
func (c *Compactor) publish(ctx context.Context, m *lake.Manifest, res *Result) error {
	if err := m.Validate(m.Table, m.Partition, m.Version); err != nil {
		return fmt.Errorf("new manifest: %w", err)
	}
	body, err := m.Encode()
	if err != nil {
		return err
	}
	key := keys.LakeManifest(m.Table, m.Partition, m.Version)
	res.Version = m.Version
	err = c.cfg.Store.PutIfAbsent(ctx, key, bytes.NewReader(body), int64(len(body)))
	if errors.Is(err, store.ErrExists) {
		res.Conflict = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("switch: %w", err)
	}
	prefix := keys.LakePartitionPrefix(m.Table, m.Partition) + keys.ManifestPrefix
	return c.cfg.Store.List(ctx, prefix, func(o store.Info) error {
		if v, ok := keys.ParseManifestName(path.Base(o.Key)); ok && v > m.Version {
			res.Stale = true
		}
		return nil
	})
}

// inputHash names a merge: the table, partition, base manifest version
// and the sorted input names.
func inputHash(table, partition string, base uint64, inputs []string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%s\n%s\n%d\n", table, partition, base)
	for _, n := range slices.Sorted(slices.Values(inputs)) {
		fmt.Fprintf(h, "%s\n", n)
	}
	return hex.EncodeToString(h.Sum(nil))[:hashLen]
}

// merge reads every row of the inputs and writes them, sorted by the lake
// writer, as the files name-<part>.parquet of the partition.
func (c *Compactor) merge(ctx context.Context, table string, hour time.Time, inputs []store.Info, name string) (lake.Stats, error) {
	opts := c.cfg.Lake
	opts.Name = name
	w := lake.NewWriter(lake.StoreSink{Store: c.cfg.Store}, opts)
	st := c.cfg.Store
	switch table {
	case schema.TableHTTP:
		return mergeTable(ctx, st, w.HTTP, table, hour, inputs, func(r *schema.HTTP) int64 { return r.TS })
	case schema.TableTCP:
		return mergeTable(ctx, st, w.TCP, table, hour, inputs, func(r *schema.TCP) int64 { return r.TS })
	case schema.TableDNS:
		return mergeTable(ctx, st, w.DNS, table, hour, inputs, func(r *schema.DNS) int64 { return r.TS })
	case schema.TableTLS:
		return mergeTable(ctx, st, w.TLS, table, hour, inputs, func(r *schema.TLS) int64 { return r.TS })
	case schema.TableParseStatus:
		return mergeTable(ctx, st, w.ParseStatus, table, hour, inputs, func(r *schema.ParseStatus) int64 { return r.TS })
	case schema.TableCaptureStatus:
		return mergeTable(ctx, st, w.CaptureStatus, table, hour, inputs, func(r *schema.CaptureStatus) int64 { return r.TS })
	case schema.TableEdges1m:
		return mergeTable(ctx, st, w.Edges1m, table, hour, inputs, func(r *schema.Edges1m) int64 { return r.TS })
	}
	return lake.Stats{}, fmt.Errorf("no row type for table %q", table)
}

// readBatch is how many rows are read from an input at once.
const readBatch = 256

// mergeTable adds every row of the inputs to t and closes it. Rows whose
// ts lies outside the partition's hour, and files of another table, are
// errors: the output must land in the partition it replaces.
func mergeTable[T any](ctx context.Context, st store.Store, t *lake.Table[T], table string, hour time.Time, inputs []store.Info, ts func(*T) int64) (lake.Stats, error) {
	from, to := hour.UnixMicro(), hour.Add(time.Hour).UnixMicro()
	var read int64
	buf := make([]T, readBatch)
	for _, in := range inputs {
		n, err := readRows(ctx, st, in.Key, table, buf, func(r *T) error {
			if v := ts(r); v < from || v >= to {
				return fmt.Errorf("row with ts %d outside the partition's hour", v)
			}
			t.Add(*r)
			return nil
		})
		if err != nil {
			// t is dropped unclosed: Close would write the rows buffered so far.
			return lake.Stats{}, fmt.Errorf("merge %s: %w", in.Key, err)
		}
		read += n
		if err := t.Err(); err != nil {
			return lake.Stats{}, fmt.Errorf("merge: %w", err)
		}
	}
	stats, err := t.Close(ctx)
	if err != nil {
		return stats, fmt.Errorf("merge: %w", err)
	}
	if stats.Rows != read {
		return stats, fmt.Errorf("merge: read %d rows, wrote %d", read, stats.Rows)
	}
	return stats, nil
}

// readRows reads the Parquet object key and calls fn for every row, in
// batches of len(buf), returning the number of rows.
func readRows[T any](ctx context.Context, st store.Store, key, table string, buf []T, fn func(*T) error) (n int64, err error) {
	rc, err := st.Get(ctx, key)
	if err != nil {
		return 0, err
	}
	body, err := io.ReadAll(rc)
	rc.Close()
	if err != nil {
		return 0, fmt.Errorf("read: %w", err)
	}
	f, err := parquet.OpenFile(bytes.NewReader(body), int64(len(body)))
	if err != nil {
		return 0, fmt.Errorf("open parquet: %w", err)
	}
	if v, ok := f.Lookup(lake.MetaTable); ok && v != table {
		return 0, fmt.Errorf("file of table %q, not %q", v, table)
	}
	r, err := genericReader[T](f)
	if err != nil {
		return 0, err
	}
	defer r.Close()
	for {
		if err := ctx.Err(); err != nil {
			return n, err
		}
		k, rerr := r.Read(buf)
		for i := range buf[:k] {
			if err := fn(&buf[i]); err != nil {
				return n, err
			}
		}
		n += int64(k)
		if errors.Is(rerr, io.EOF) {
			return n, nil
		}
		if rerr != nil {
			return n, fmt.Errorf("read rows: %w", rerr)
		}
	}
}

// genericReader returns a row reader of f, turning parquet-go's panic on
// a row type that does not fit the file into an error.
func genericReader[T any](f *parquet.File) (r *parquet.GenericReader[T], err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("read rows: %v", p)
		}
	}()
	return parquet.NewGenericReader[T](f), nil
}
