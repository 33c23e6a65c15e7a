package http1

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
)

// stateVersion is bumped whenever the meaning of the serialized state
// changes; Restore refuses other versions.
const stateVersion = 1

// snapshot is the serialized form of a Parser.
type snapshot struct {
	V int
	S state
}

// ErrBadState is returned by Restore for state it cannot use.
var ErrBadState = errors.New("http1: bad parser state")

// MarshalState serializes the parser state (open messages, buffered
// partial heads, body previews and exchanges not yet emitted) with
// encoding/gob, so that parsing can continue in another process with
// Restore.
func (p *Parser) MarshalState() ([]byte, error) {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(snapshot{V: stateVersion, S: p.st}); err != nil {
		return nil, fmt.Errorf("http1: marshal state: %w", err)
	}
	return buf.Bytes(), nil
}

// Restore returns a parser that continues from state produced by
// MarshalState. cfg should equal the configuration of the marshalled
// parser; state that does not fit cfg is refused with ErrBadState.
func Restore(cfg Config, state []byte, emit func(*Exchange)) (*Parser, error) {
	var snap snapshot
	if err := gob.NewDecoder(bytes.NewReader(state)).Decode(&snap); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadState, err)
	}
	if snap.V != stateVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrBadState, snap.V, stateVersion)
	}
	p := NewParser(cfg, emit)
	if err := p.validate(&snap.S); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadState, err)
	}
	p.st = snap.S
	return p, nil
}

// validate checks the invariants the state machine relies on, so that a
// corrupted or foreign state cannot make it misbehave.
func (p *Parser) validate(s *state) error {
	if s.NextSeq < 0 {
		return errors.New("negative sequence")
	}
	for i := range s.Q {
		pe := &s.Q[i]
		if pe.Ex == nil {
			return errors.New("pending exchange without data")
		}
		if want := s.NextSeq - len(s.Q) + i; pe.Ex.Seq != want {
			return fmt.Errorf("pending exchange has seq %d, want %d", pe.Ex.Seq, want)
		}
	}
	for d := range s.H {
		h := &s.H[d]
		if h.State >= numStates {
			return fmt.Errorf("direction %d: unknown state %d", d, h.State)
		}
		limit := p.cfg.MaxHeaderBytes
		if h.State == stChunkSize {
			limit = maxChunkLine
		}
		if len(h.Buf) >= limit {
			return fmt.Errorf("direction %d: buffer of %d bytes exceeds the bound %d", d, len(h.Buf), limit)
		}
		if h.LineStart < 0 || h.LineStart > len(h.Buf) || h.FirstLen < 0 || h.FirstLen > len(h.Buf) {
			return fmt.Errorf("direction %d: buffer offsets out of range", d)
		}
		if h.FirstLen > 0 && h.State != stHead {
			return fmt.Errorf("direction %d: start line outside a head", d)
		}
		if h.Remain < 0 || h.BodyN < 0 || h.Held < 0 || h.Hint < 0 {
			return fmt.Errorf("direction %d: negative counter", d)
		}
		if (h.State == stBody || h.State == stChunkData) && h.Remain == 0 {
			return fmt.Errorf("direction %d: body state without remaining bytes", d)
		}
		limit = p.cfg.BodyPreview
		if h.Codings != "" {
			limit = p.cfg.MaxRawBody
		}
		if len(h.Body) > limit {
			h.Body = h.Body[:limit]
		}
	}
	return nil
}
