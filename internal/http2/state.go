package http2

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"

	"golang.org/x/net/http2/hpack"
)

// stateVersion is bumped whenever the meaning of the serialized state
// changes; Restore refuses other versions.
const stateVersion = 1

type snapshot struct {
	V int
	S state
}

// ErrBadState is returned by Restore for state it cannot use.
var ErrBadState = errors.New("http2: bad parser state")

// MarshalState serializes the parser state (partial frames and header
// blocks, open streams with their previews, both HPACK dynamic tables)
// with encoding/gob, so that parsing can continue in another process with
// Restore.
func (p *Parser) MarshalState() ([]byte, error) {
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(snapshot{V: stateVersion, S: p.st}); err != nil {
		return nil, fmt.Errorf("http2: marshal state: %w", err)
	}
	return buf.Bytes(), nil
}

// Restore returns a parser that continues from state produced by
// MarshalState: the next bytes, cut at any point, are parsed as if the
// parser had never stopped. cfg should equal the configuration of the
// marshalled parser; state that does not fit cfg is refused with
// ErrBadState.
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
	for _, s := range p.st.Streams {
		p.idx[s.Ex.StreamID] = s
	}
	if p.st.Failed != "" || p.st.Closed {
		p.dec = [2]*hpack.Decoder{}
		return p, nil
	}
	for d := range p.st.D {
		p.dec[d] = p.st.D[d].Tab.decoder()
	}
	return p, nil
}

// validate checks the invariants the parser relies on, so that a
// corrupted or foreign state cannot make it misbehave.
func (p *Parser) validate(s *state) error {
	if s.NextSeq < 0 || len(s.Streams) > p.cfg.MaxStreams {
		return errors.New("bad stream counts")
	}
	seen := map[uint32]bool{}
	for i, st := range s.Streams {
		if st == nil {
			return errors.New("nil stream")
		}
		if seen[st.Ex.StreamID] {
			return fmt.Errorf("stream %d twice", st.Ex.StreamID)
		}
		seen[st.Ex.StreamID] = true
		if st.Ex.Seq >= s.NextSeq || i > 0 && st.Ex.Seq <= s.Streams[i-1].Ex.Seq {
			return errors.New("stream sequence out of order")
		}
		for d := range st.Body {
			limit := p.cfg.BodyPreview
			if st.Body[d].Coding != "" {
				limit = p.cfg.MaxRawBody
			}
			if len(st.Body[d].Buf) > limit {
				return errors.New("body preview exceeds the bound")
			}
		}
	}
	for d := range s.D {
		ds := &s.D[d]
		if ds.PreN < 0 || ds.PreN > len(Preface) || len(ds.Hdr) >= 9 || ds.PadN < -1 {
			return fmt.Errorf("direction %d: bad framing state", d)
		}
		if ds.DataLeft > ds.Left || len(ds.Block) > p.cfg.MaxHeaderBlock || len(ds.Payload) > max(p.cfg.MaxHeaderBlock, maxControl) {
			return fmt.Errorf("direction %d: buffers exceed the bounds", d)
		}
		t := &ds.Tab
		var size uint32
		for _, f := range t.Ents {
			size += f.size()
		}
		if size != t.Size || t.Size > t.Max || t.Max > maxTableSize || t.Allowed > maxTableSize {
			return fmt.Errorf("direction %d: bad HPACK table record", d)
		}
	}
	return nil
}
