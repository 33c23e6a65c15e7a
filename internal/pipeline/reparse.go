package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strings"

	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/lake"
	"github.com/flowlake/flowlake/internal/store"
)

// ErrCompacted reports a reparse of a segment whose lake files were merged
// by the compactor: rewriting them would not replace the rows that now
// live in the compacted files.
var ErrCompacted = errors.New("segment's lake files were compacted")

// writeOutputs writes the lake files of a parsed segment, deletes the lake
// files an earlier parse of the same segment wrote and this one did not
// (old, nil on a first parse), records the keys written (keys.StateOutputs)
// and the key log carried to the next segment (keys.StateKeys). It runs
// before the checkpoint is written, so a worker that dies in between
// leaves nothing a retry does not overwrite.
func (p *Pipeline) writeOutputs(ctx context.Context, s keys.Stream, seq uint64, res *result, old []string) error {
	written, err := p.writeLakeKeys(ctx, lakeName(s, seq), &res.rows, &res.status)
	if err != nil {
		return err
	}
	for _, k := range old {
		if !slices.Contains(written, k) {
			if err := p.cfg.Store.Delete(ctx, k); err != nil && !errors.Is(err, store.ErrNotExist) {
				return fmt.Errorf("delete stale lake file: %w", err)
			}
		}
	}
	slices.Sort(written)
	list := strings.Join(written, "\n")
	if err := p.cfg.Store.Put(ctx, keys.StateOutputs(s, seq), strings.NewReader(list), int64(len(list))); err != nil {
		return fmt.Errorf("record outputs: %w", err)
	}
	return p.saveKeys(ctx, s, seq, res.keys, res.keep, res.own)
}

// Reparse parses segments from … to (to == 0: up to the last committed
// one) of stream s again, from the checkpoint before from, and replaces
// their lake rows, checkpoints and carried keys: what flowlake reparse and
// late TLS keys use. Rows are replaced, not added: the lake files have the
// same names, and files of the earlier parse that this one does not write
// are deleted. It stops at the first segment that was never committed
// (normal parse takes it from there) and returns how many it parsed.
//
// Segments whose lake files the compactor already merged fail with
// ErrCompacted.
//
// Open-ended (to == 0), it chases a live stream: a segment that is indexed
// but not committed when the reparse reaches it may be in a normal parse
// that read the checkpoint before the reparse replaced it, so the reparse
// waits for its commit (up to Config.WaitPredecessor) and parses it again.
// A segment indexed after the reparse looked reads the new checkpoint.
func (p *Pipeline) Reparse(ctx context.Context, s keys.Stream, from, to uint64) (int, error) {
	n := 0
	for seq := from; to == 0 || seq <= to; seq++ {
		done, err := p.exists(ctx, keys.State(s, seq))
		if err != nil {
			return n, fmt.Errorf("reparse %s seq %d: %w", s, seq, err)
		}
		if !done && to == 0 && seq > from {
			if done, err = p.inFlight(ctx, s, seq); err != nil {
				return n, fmt.Errorf("reparse %s seq %d: %w", s, seq, err)
			}
		}
		if !done {
			break
		}
		rawKey, err := p.getAll(ctx, keys.SegmentIndex(s, seq))
		if err != nil {
			return n, fmt.Errorf("reparse %s seq %d: segment index: %w", s, seq, err)
		}
		old, err := p.outputs(ctx, s, seq)
		if err != nil {
			return n, fmt.Errorf("reparse %s: %w", rawKey, err)
		}
		var prev []byte
		if seq > 0 {
			prev, err = p.getAll(ctx, keys.State(s, seq-1))
			if err != nil && !errors.Is(err, store.ErrNotExist) {
				return n, fmt.Errorf("reparse %s: %w", rawKey, err)
			}
		}
		res, err := p.parseSegment(ctx, s, seq, string(rawKey), prev)
		if err != nil {
			return n, err
		}
		if seq > 0 && prev == nil {
			res.status.Gap = true
			if res.status.Status == "ok" {
				res.status.Status = "gap"
			}
		}
		if err := p.writeOutputs(ctx, s, seq, res, old); err != nil {
			return n, fmt.Errorf("reparse %s: %w", rawKey, err)
		}
		if err := p.cfg.Store.Put(ctx, keys.State(s, seq), bytes.NewReader(res.checkpoint), int64(len(res.checkpoint))); err != nil {
			return n, fmt.Errorf("reparse %s: checkpoint: %w", rawKey, err)
		}
		p.cfg.Log.Info("reparsed segment", "key", string(rawKey), "http", res.status.HTTPExchanges)
		n++
	}
	return n, nil
}

// inFlight tells whether segment seq of s, not committed, is being parsed
// and commits within Config.WaitPredecessor: it is indexed (its parse
// started or waits for its predecessor) and its checkpoint comes.
func (p *Pipeline) inFlight(ctx context.Context, s keys.Stream, seq uint64) (bool, error) {
	if ok, err := p.exists(ctx, keys.SegmentIndex(s, seq)); err != nil || !ok {
		return false, err
	}
	ckpt, err := p.waitCheckpoint(ctx, s, seq)
	return ckpt != nil, err
}

// outputs returns the lake keys the last parse of segment seq wrote, and
// fails with ErrCompacted when one of them was merged by the compactor
// (gone, or declared replaced by its partition's manifest).
func (p *Pipeline) outputs(ctx context.Context, s keys.Stream, seq uint64) ([]string, error) {
	body, err := p.getAll(ctx, keys.StateOutputs(s, seq))
	if errors.Is(err, store.ErrNotExist) {
		return nil, nil // parsed before outputs were recorded
	}
	if err != nil {
		return nil, fmt.Errorf("outputs: %w", err)
	}
	var out []string
	manifests := map[string]*lake.Manifest{}
	for _, k := range strings.Split(string(body), "\n") {
		if k == "" {
			continue
		}
		out = append(out, k)
		o, err := keys.ParseLake(k)
		if err != nil {
			return nil, fmt.Errorf("outputs: %w", err)
		}
		part := o.Table + "/" + o.Partition
		m, ok := manifests[part]
		if !ok {
			pt, err := lake.ReadPartition(ctx, p.cfg.Store, o.Table, o.Partition)
			if err != nil {
				return nil, fmt.Errorf("outputs: %w", err)
			}
			m = pt.Manifest
			manifests[part] = m
		}
		if m.IsReplaced(path.Base(k)) {
			return nil, fmt.Errorf("%w: %s", ErrCompacted, k)
		}
		if ok, err := p.exists(ctx, k); err != nil {
			return nil, fmt.Errorf("outputs: %w", err)
		} else if !ok {
			return nil, fmt.Errorf("%w: %s is gone", ErrCompacted, k)
		}
	}
	return out, nil
}
