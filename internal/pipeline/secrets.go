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

// secretsWindow is how many segments back parse(N) looks for secrets
// objects (N-secretsWindow+1 … N). Older secrets reach segment N through
// the key log carried in state/ (keys.StateKeys), which keeps the secrets
// of the connections still open.
const secretsWindow = 8

// loadKeys returns the TLS key log for parsing segment seq of s: the
// static keys of the engine configuration, the keys carried from segment
// seq-1, and the secrets objects the agent uploaded for segments
// seq-secretsWindow+1 … seq (found by listing the date paths of the
// segment's hour and the hour before). rawHour is the hour of the raw
// segment's date path; zero loads only the static and carried keys.
func (p *Pipeline) loadKeys(ctx context.Context, s keys.Stream, seq uint64, rawHour time.Time) (*keylog.Log, error) {
	log := keylog.New()
	log.Merge(p.cfg.Engine.Keys)
	if seq > 0 {
		body, err := p.getAll(ctx, keys.StateKeys(s, seq-1))
		switch {
		case errors.Is(err, store.ErrNotExist):
		case err != nil:
			return nil, fmt.Errorf("carried keys: %w", err)
		default:
			if err := log.Read(bytes.NewReader(body)); err != nil {
				return nil, fmt.Errorf("carried keys: %w", err)
			}
		}
	}
	low := uint64(0)
	if seq >= secretsWindow {
		low = seq - secretsWindow + 1
	}
	var found []string
	hours := []time.Time{rawHour.Add(-time.Hour), rawHour}
	if rawHour.IsZero() {
		hours = nil // only the carried keys
	}
	for _, h := range hours {
		err := p.cfg.Store.List(ctx, keys.SecretsPrefix(s, h), func(info store.Info) error {
			k, err := keys.Parse(info.Key)
			if err != nil || k.Kind != keys.KindSecrets || k.Seq < low || k.Seq > seq {
				return nil
			}
			found = append(found, info.Key)
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("list secrets: %w", err)
		}
	}
	for _, key := range found {
		body, err := p.getAll(ctx, key)
		if errors.Is(err, store.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("secrets %s: %w", key, err)
		}
		if err := log.Read(bytes.NewReader(body)); err != nil {
			return nil, fmt.Errorf("secrets %s: %w", key, err)
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
