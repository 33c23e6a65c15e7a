package lake

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/store"
)

// ErrInconsistent reports a partition whose listing and manifest did not
// agree in several attempts: a reader slower than the compaction grace
// period, or a damaged lake (a manifest lists a file that is gone).
var ErrInconsistent = errors.New("lake partition changed while it was read")

// errRetry marks a view of a partition that a newer listing may fix.
var errRetry = errors.New("partition listing and manifest disagree")

// readAttempts bounds how often a partition is listed again after its
// listing and manifest disagreed.
const readAttempts = 4

// listParallel bounds the partitions resolved (manifest reads) at once.
const listParallel = 8

// Partition is one partition of a table as the reader protocol sees it.
type Partition struct {
	Table     string
	Partition string    // "dt=YYYY-MM-DD/hour=HH"
	Hour      time.Time // start of the partition's hour, UTC
	// Manifest is the current manifest, nil when the partition was never
	// compacted; ManifestInfo is its object.
	Manifest     *Manifest
	ManifestInfo store.Info
	// Manifests lists every manifest version found, oldest first.
	Manifests []store.Info
	// Live is the .parquet files to read, in key order.
	Live []store.Info
	// Dead is the .parquet files listed but not to be read: replaced files
	// not deleted yet, and compact files no current manifest lists.
	Dead []store.Info
}

// LiveKeys returns the keys of the files to read.
func (p *Partition) LiveKeys() []string {
	out := make([]string, len(p.Live))
	for i, f := range p.Live {
		out[i] = f.Key
	}
	return out
}

// SelectFiles applies the protocol rule to the .parquet objects of one
// partition listing and its current manifest m (nil if none): live files
// to read and dead ones to skip, both in the order given, and the names m
// lists as live that the listing lacks.
func SelectFiles(m *Manifest, listed []store.Info) (live, dead []store.Info, missing []string) {
	files, replaced := map[string]bool{}, map[string]bool{}
	if m != nil {
		for _, f := range m.Files {
			files[f] = true
		}
		for _, r := range m.Replaces {
			replaced[r.Name] = true
		}
	}
	seen := make(map[string]bool, len(listed))
	for _, o := range listed {
		name := path.Base(o.Key)
		if !strings.HasSuffix(name, keys.ExtParquet) {
			continue
		}
		seen[name] = true
		var ok bool
		if keys.IsCompact(name) {
			ok = files[name]
		} else {
			ok = !replaced[name]
		}
		if ok {
			live = append(live, o)
		} else {
			dead = append(dead, o)
		}
	}
	if m != nil {
		for _, f := range m.Files {
			if !seen[f] {
				missing = append(missing, f)
			}
		}
	}
	return live, dead, missing
}

// ReadPartition lists one partition ("dt=YYYY-MM-DD/hour=HH") of a table,
// reads its current manifest and applies the reader protocol to them. A
// partition without objects yields an empty Partition.
//
// The reader protocol is how a reader decides which files of a partition
// to read while compaction (package compact) may be replacing them. Object
// stores cannot replace several objects at once, so a compaction writes
// its merged files under new names (compact-*), then switches with one
// conditional create of the next manifest version, and deletes the
// replaced files only a grace period later. ReadPartition lists the
// partition once, takes the highest manifest version in the listing as
// current (M) and reads it; then (SelectFiles):
//
//   - a compact-* file is read only if M lists it in Files;
//   - any other .parquet file is read unless M lists it in Replaces.
//
// Every row is then read exactly once by a reader that finishes (listing,
// manifest and data reads) within the grace period. With the listing
// taken over [a, b], each key seen as it was at some instant in it:
//
//   - M.Files holds exactly the rows of the files M replaces (that ever
//     held live rows), and only M's compacted files are read.
//   - No row is missed: a file whose rows M.Files lacks is deleted only
//     after a version v' > M replaced it and was current for the grace
//     period; v' is not in the listing, so it came after a, and the
//     deletion before the listing reached the file, before b: the reader
//     was slow.
//   - No row is read twice: an input still listed (it existed at some
//     instant before b) but no longer in M.Replaces, while M.Files holds
//     its rows, was dropped from Replaces, which happens a grace period
//     after its deletion, so M was written more than a grace period after
//     a: the reader was slow. (The same holds for a reader that lists
//     first and reads the manifest that is current afterwards, and one
//     that reads the manifest first and lists afterwards cannot list a
//     file deleted before the manifest it read was written.)
//   - M.Files were written before M and are deleted only a grace period
//     after a later version replaced them, so a fast reader finds them
//     in its listing. If one is missing, or M itself is gone by the time
//     it is read (old versions are deleted a grace period after their
//     successor appeared), the reader was slow or the lake is damaged:
//     ReadPartition lists again, a few times, then fails with
//     ErrInconsistent. It never skips a live file.
//
// The protocol assumes that an input file, once deleted, is never written
// again under the same name (pipeline outputs are rewritten only by
// retries, which end long before compaction touches an hour).
func ReadPartition(ctx context.Context, st store.Store, table, partition string) (*Partition, error) {
	if err := validName(table); err != nil {
		return nil, fmt.Errorf("read partition: table: %w", err)
	}
	hour, err := keys.ParseLakePartition(partition)
	if err != nil {
		return nil, fmt.Errorf("read partition %s: %w", table, err)
	}
	var last error
	for range readAttempts {
		objs, err := listPartition(ctx, st, table, partition)
		if err != nil {
			return nil, err
		}
		p, err := resolve(ctx, st, table, partition, hour, objs)
		if errors.Is(err, errRetry) {
			last = err
			continue
		}
		return p, err
	}
	return nil, fmt.Errorf("read partition %s/%s: %w (%d attempts; last: %v)", table, partition, ErrInconsistent, readAttempts, last)
}

// listPartition lists the objects directly in one partition.
func listPartition(ctx context.Context, st store.Store, table, partition string) ([]store.Info, error) {
	prefix := keys.LakePartitionPrefix(table, partition)
	var objs []store.Info
	err := st.List(ctx, prefix, func(o store.Info) error {
		if !strings.Contains(o.Key[len(prefix):], "/") {
			objs = append(objs, o)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list partition %s: %w", prefix, err)
	}
	return objs, nil
}

// resolve applies the protocol to the objects listed in one partition.
func resolve(ctx context.Context, st store.Store, table, partition string, hour time.Time, objs []store.Info) (*Partition, error) {
	p := &Partition{Table: table, Partition: partition, Hour: hour}
	var data []store.Info
	versions := map[string]uint64{}
	for _, o := range objs {
		name := path.Base(o.Key)
		if v, ok := keys.ParseManifestName(name); ok {
			p.Manifests = append(p.Manifests, o)
			versions[o.Key] = v
		} else if strings.HasSuffix(name, keys.ExtParquet) {
			data = append(data, o)
		}
	}
	slices.SortFunc(p.Manifests, func(a, b store.Info) int { return cmpUint(versions[a.Key], versions[b.Key]) })
	slices.SortFunc(data, func(a, b store.Info) int { return strings.Compare(a.Key, b.Key) })
	if n := len(p.Manifests); n > 0 {
		cur := p.Manifests[n-1]
		m, err := GetManifest(ctx, st, cur.Key)
		if errors.Is(err, store.ErrNotExist) {
			return nil, fmt.Errorf("%w: manifest %s was deleted after the listing", errRetry, cur.Key)
		}
		if err != nil {
			return nil, fmt.Errorf("read partition %s/%s: %w", table, partition, err)
		}
		p.Manifest, p.ManifestInfo = m, cur
	}
	live, dead, missing := SelectFiles(p.Manifest, data)
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: manifest %s lists %s, not in the listing", errRetry, p.ManifestInfo.Key, strings.Join(missing, ", "))
	}
	p.Live, p.Dead = live, dead
	return p, nil
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// GetManifest reads and checks the manifest stored under key. A missing
// object yields an error wrapping store.ErrNotExist.
func GetManifest(ctx context.Context, st store.Store, key string) (*Manifest, error) {
	rc, err := st.Get(ctx, key)
	if err != nil {
		return nil, fmt.Errorf("read manifest: %w", err)
	}
	defer rc.Close()
	body, err := io.ReadAll(io.LimitReader(rc, maxManifestBytes+1))
	if err != nil {
		return nil, fmt.Errorf("read manifest %s: %w", key, err)
	}
	if len(body) > maxManifestBytes {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrBadManifest, key, maxManifestBytes)
	}
	return DecodeManifest(key, body)
}

// Listing granularity of ListFiles: ranges of at most hourListMax hours are
// listed partition by partition, ranges of at most dayListMax days day by
// day, longer ones with one listing of the whole table.
const (
	hourListMax = 48
	dayListMax  = 400
)

// ListFiles returns the keys of the files a reader of table must read for
// rows with ts in [fromTS, toTS) (microseconds since the epoch, UTC),
// following the protocol partition by partition: only the partitions of
// the hours the range touches are listed, compacted partitions yield their
// live compacted files, and replaced files are left out. Keys are sorted.
//
// The reader must finish reading the files within the compaction grace
// period (see package compact); a file that is gone by then is a reason to
// call ListFiles again, not to skip it.
func ListFiles(ctx context.Context, st store.Store, table string, fromTS, toTS int64) ([]string, error) {
	parts, err := ListPartitions(ctx, st, table, fromTS, toTS)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, p := range parts {
		out = append(out, p.LiveKeys()...)
	}
	slices.Sort(out)
	return out, nil
}

// ListPartitions is ListFiles returning the partitions, in time order,
// each with its live and dead files and manifest. Partitions without
// objects are not returned.
func ListPartitions(ctx context.Context, st store.Store, table string, fromTS, toTS int64) ([]*Partition, error) {
	if err := validName(table); err != nil {
		return nil, fmt.Errorf("list %s: %w", table, err)
	}
	if toTS <= fromTS {
		return nil, nil
	}
	h0, h1 := floorDiv(fromTS, usPerHour), floorDiv(toTS-1, usPerHour) // inclusive hours
	inRange := func(t time.Time) bool {
		h := floorDiv(t.UnixMicro(), usPerHour)
		return h >= h0 && h <= h1
	}
	hourStart := func(h int64) time.Time { return time.Unix(h*3600, 0).UTC() }
	var prefixes []string
	switch d0, d1 := floorDiv(h0, 24), floorDiv(h1, 24); {
	case h1-h0 < hourListMax:
		for h := h0; h <= h1; h++ {
			prefixes = append(prefixes, keys.LakePartitionPrefix(table, keys.LakePartition(hourStart(h))))
		}
	case d1-d0 < dayListMax:
		for d := d0; d <= d1; d++ {
			prefixes = append(prefixes, keys.LakeDayPrefix(table, hourStart(d*24)))
		}
	default:
		prefixes = []string{keys.LakeTable(table)}
	}

	// List every prefix, grouping objects by partition.
	var (
		mu     sync.Mutex
		groups = map[string][]store.Info{}
		hours  = map[string]time.Time{}
	)
	err := forEach(ctx, len(prefixes), listParallel, func(i int) error {
		return st.List(ctx, prefixes[i], func(o store.Info) error {
			lo, err := keys.ParseLake(o.Key)
			if err != nil || lo.Table != table || !inRange(lo.Hour) {
				return nil // not a partition file of this range
			}
			mu.Lock()
			groups[lo.Partition] = append(groups[lo.Partition], o)
			hours[lo.Partition] = lo.Hour
			mu.Unlock()
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", table, err)
	}
	names := make([]string, 0, len(groups))
	for p := range groups {
		names = append(names, p)
	}
	slices.SortFunc(names, func(a, b string) int { return hours[a].Compare(hours[b]) })

	out := make([]*Partition, len(names))
	err = forEach(ctx, len(names), listParallel, func(i int) error {
		name := names[i]
		p, err := resolve(ctx, st, table, name, hours[name], groups[name])
		if errors.Is(err, errRetry) {
			p, err = ReadPartition(ctx, st, table, name)
		}
		if err != nil {
			return err
		}
		out[i] = p
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("list %s: %w", table, err)
	}
	return out, nil
}

// forEach calls fn(0..n-1) on at most limit goroutines and returns the
// first error; after an error no new calls start.
func forEach(ctx context.Context, n, limit int, fn func(i int) error) error {
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		next  int
	)
	take := func() (int, bool) {
		mu.Lock()
		defer mu.Unlock()
		if first != nil || next >= n || ctx.Err() != nil {
			return 0, false
		}
		next++
		return next - 1, true
	}
	for range min(n, limit) {
		wg.Go(func() {
			for {
				i, ok := take()
				if !ok {
					return
				}
				if err := fn(i); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return first
}
