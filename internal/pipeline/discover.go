package pipeline

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/store"
)

// Segments whose creation event never came (a notification lost while the
// store restarted, a webhook target down longer than the store's queue
// keeps events) are found three ways, cheapest first:
//
//   - parse(N) whose predecessor has no index looks for segment N-1 in the
//     hour of N and the hour before (two Stats) and ingests it
//     (findPredecessor), so a lost event in a stream's middle costs no gap;
//   - Reconcile lists, for every stream it knows, the segments after its
//     newest indexed one (one LIST request per stream on S3, which starts
//     the listing there) and ingests them: the stream's tail;
//   - Reconcile lists the whole raw/ prefix when it first runs and then
//     every Config.DiscoverAllEvery: streams none of whose events came.

// DefaultDiscoverAllEvery is the default of Config.DiscoverAllEvery.
const DefaultDiscoverAllEvery = 10 * time.Minute

// findPredecessor looks for raw segment seq-1 of s, which has no index,
// in the hour of segment seq (rawHour) and the hour before, and indexes
// it. It returns the key, or "" when there is no such object.
func (p *Pipeline) findPredecessor(ctx context.Context, s keys.Stream, seq uint64, rawHour time.Time) (string, error) {
	for _, h := range []time.Time{rawHour, rawHour.Add(-time.Hour)} {
		key := keys.Segment(s, seq-1, h)
		switch ok, err := p.exists(ctx, key); {
		case err != nil:
			return "", err
		case ok:
			if err := p.index(ctx, key, s, seq-1); err != nil {
				return "", err
			}
			p.cfg.Log.Warn("parse: found a segment whose event never came", "key", key)
			return key, nil
		}
	}
	return "", nil
}

// discover ingests the raw segments after each stream's newest indexed
// one (newest: stream → its index's raw key), listing every raw segment
// when all is set. It returns how many it ingested.
func (p *Pipeline) discover(ctx context.Context, newest map[keys.Stream]string, all bool) (int, error) {
	found := map[keys.Stream][]keys.Parsed{}
	keysOf := map[keys.Stream]map[uint64]string{}
	collect := func(info store.Info) error {
		k, err := keys.Parse(info.Key)
		if err != nil || k.Kind != keys.KindSegment {
			return nil // not a segment key: ingest quarantines it when its event comes
		}
		if last, ok := newest[k.Stream]; ok {
			if lk, err := keys.Parse(last); err == nil && k.Seq <= lk.Seq {
				return nil
			}
		}
		if keysOf[k.Stream] == nil {
			keysOf[k.Stream] = map[uint64]string{}
		}
		if _, dup := keysOf[k.Stream][k.Seq]; !dup {
			keysOf[k.Stream][k.Seq] = info.Key
			found[k.Stream] = append(found[k.Stream], k)
		}
		return nil
	}
	if all {
		if err := p.cfg.Store.List(ctx, keys.PrefixRaw, collect); err != nil {
			return 0, fmt.Errorf("discover: %w", err)
		}
	} else {
		for s, last := range newest {
			if err := store.ListAfter(ctx, p.cfg.Store, keys.PrefixRaw+s.String()+"/", last, collect); err != nil {
				return 0, fmt.Errorf("discover: %w", err)
			}
		}
	}
	n := 0
	for s, ks := range found {
		slices.SortFunc(ks, func(a, b keys.Parsed) int { return cmp.Compare(a.Seq, b.Seq) })
		for _, k := range ks {
			key := keysOf[s][k.Seq]
			if ok, err := p.exists(ctx, keys.SegmentIndex(s, k.Seq)); err != nil {
				return n, fmt.Errorf("discover: %w", err)
			} else if ok {
				continue // its event came meanwhile, or it is being parsed
			}
			p.cfg.Log.Warn("reconcile: found a segment whose event never came", "key", key)
			if err := p.ingestSegment(ctx, key); err != nil && !errors.Is(err, ErrDone) {
				return n, fmt.Errorf("discover: %w", err)
			}
			n++
		}
	}
	return n, nil
}

// index records raw segment key as segment seq of s (the first record
// wins: a repeated event changes nothing).
func (p *Pipeline) index(ctx context.Context, key string, s keys.Stream, seq uint64) error {
	idx := keys.SegmentIndex(s, seq)
	if err := p.cfg.Store.PutIfAbsent(ctx, idx, strings.NewReader(key), int64(len(key))); err != nil && !errors.Is(err, store.ErrExists) {
		return fmt.Errorf("index %s: %w", key, err)
	}
	return nil
}

// discoverAllDue tells whether Reconcile lists all of raw/ this time, and
// records that it does.
func (p *Pipeline) discoverAllDue() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := p.cfg.Now()
	if !p.lastDiscoverAll.IsZero() && now.Sub(p.lastDiscoverAll) < p.cfg.DiscoverAllEvery {
		return false
	}
	p.lastDiscoverAll = now
	return true
}
