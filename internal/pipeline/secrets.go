package pipeline

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/flowlake/flowlake/internal/keylog"
	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/store"
)

// loadKeys returns the TLS key log for parsing segment seq of s: the
// static keys of the engine configuration, the keys carried from segment
// seq-1 (the secrets of the connections still open then, keys.StateKeys)
// and the secrets object the agent uploaded for segment seq, before the
// segment, in the same date path (rawHour is the hour of the raw segment's
// key; zero loads only the static and carried keys). Secrets that come
// after their segment was parsed make ingest reparse (ingestSecrets).
func (p *Pipeline) loadKeys(ctx context.Context, s keys.Stream, seq uint64, rawHour time.Time) (*keylog.Log, error) {
	log := keylog.New()
	log.Merge(p.cfg.Engine.Keys)
	read := func(what, key string) error {
		body, err := p.getAll(ctx, key)
		switch {
		case errors.Is(err, store.ErrNotExist):
			return nil
		case err != nil:
			return fmt.Errorf("%s: %w", what, err)
		}
		if err := log.Read(bytes.NewReader(body)); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}
	if seq > 0 {
		if err := read("carried keys", keys.StateKeys(s, seq-1)); err != nil {
			return nil, err
		}
	}
	if !rawHour.IsZero() {
		key := keys.Secrets(s, seq, rawHour)
		if err := read("secrets "+key, key); err != nil {
			return nil, err
		}
	}
	return log, nil
}

// saveKeys writes the key log carried to segment seq+1: the secrets of the
// sessions for which keep is true.
func (p *Pipeline) saveKeys(ctx context.Context, s keys.Stream, seq uint64, log *keylog.Log, keep func([32]byte) bool) error {
	var buf bytes.Buffer
	if err := log.Write(&buf, keep); err != nil {
		return err
	}
	key := keys.StateKeys(s, seq)
	if buf.Len() == 0 {
		if err := p.cfg.Store.Delete(ctx, key); err != nil && !errors.Is(err, store.ErrNotExist) {
			return fmt.Errorf("carried keys: %w", err)
		}
		return nil
	}
	if err := p.cfg.Store.Put(ctx, key, bytes.NewReader(buf.Bytes()), int64(buf.Len())); err != nil {
		return fmt.Errorf("carried keys: %w", err)
	}
	return nil
}

// ingestSecrets handles a secrets object. Normally it arrives before the
// segment it serves and parse finds it. When the segment was parsed
// already (keys that came late), the stream is parsed again from that
// segment on, replacing the rows (see Reparse).
func (p *Pipeline) ingestSecrets(ctx context.Context, key string) error {
	k, err := keys.Parse(key)
	if err != nil {
		return p.quarantine(ctx, key, "ingest", err)
	}
	done, err := p.exists(ctx, keys.State(k.Stream, k.Seq))
	if err != nil || !done {
		return err
	}
	p.cfg.Log.Info("ingest: keys arrived after their segment was parsed; parsing again", "key", key)
	if p.cfg.InvokeReparse != nil {
		return p.cfg.InvokeReparse(ctx, k.Stream, k.Seq)
	}
	_, err = p.Reparse(ctx, k.Stream, k.Seq, 0)
	return err
}
