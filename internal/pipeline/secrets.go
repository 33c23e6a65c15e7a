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
//
// It also returns the secrets object's own log (empty when there is none):
// its keys are carried one segment further (see carry), because lines
// that reach the agent during a cut's key grace go into the cut segment's
// secrets while their connection's packets are in the next segment.
func (p *Pipeline) loadKeys(ctx context.Context, s keys.Stream, seq uint64, rawHour time.Time) (all, own *keylog.Log, err error) {
	all, own = keylog.New(), keylog.New()
	all.Merge(p.cfg.Engine.Keys)
	read := func(log *keylog.Log, what, key string) error {
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
		if err := read(all, "carried keys", keys.StateKeys(s, seq-1)); err != nil {
			return nil, nil, err
		}
	}
	if !rawHour.IsZero() {
		key := keys.Secrets(s, seq, rawHour)
		if err := read(own, "secrets "+key, key); err != nil {
			return nil, nil, err
		}
		all.Merge(own)
	}
	return all, own, nil
}

// carry tells which sessions' keys go on to the next segment after a
// parse: those of the TLS connections still open (open, from the engine)
// and those the segment's own secrets object brought (own), once (its RSA
// lines too, which saveKeys writes). The
// latter are the keys of handshakes that the agent saw during the key
// grace after the segment's cut, whose packets are in the next segment;
// the keys of the segment's own connections go one segment further as
// well, which costs a few hundred bytes. Keys that no connection used by
// then are dropped, so the carried log stays the size of one secrets
// object plus the open sessions, although every stream's secrets hold
// every stream's lines.
func carry(open func([32]byte) bool, own *keylog.Log) func([32]byte) bool {
	return func(cr [32]byte) bool {
		if open(cr) {
			return true
		}
		_, ok := own.Lookup(cr[:])
		return ok
	}
}

// saveKeys writes the key log carried to segment seq+1: the secrets of the
// sessions for which keep is true, and the RSA lines of own (the segment's
// secrets object; see carry).
func (p *Pipeline) saveKeys(ctx context.Context, s keys.Stream, seq uint64, log *keylog.Log, keep func([32]byte) bool, own *keylog.Log) error {
	var buf bytes.Buffer
	if err := log.Write(&buf, keep); err != nil {
		return err
	}
	if own != nil {
		if err := own.WriteRSA(&buf); err != nil {
			return err
		}
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
