package dns

import (
	"bytes"
	"cmp"
	"encoding/gob"
	"errors"
	"fmt"
	"slices"
)

// stateVersion is bumped whenever the meaning of the serialized state
// changes; RestoreTracker and RestoreStream refuse other versions.
const stateVersion = 1

// ErrBadState is returned by RestoreTracker and RestoreStream for state
// they cannot use.
var ErrBadState = errors.New("dns: bad state")

// Bounds on what restored state may hold: what the Tracker and Stream can
// produce themselves.
const (
	// maxNameText is the longest rendered question name: 255 wire bytes,
	// each escaped as \DDD at worst.
	maxNameText = 4 * 255
	// maxShortText bounds a query's QType and Transport.
	maxShortText = 16
	// maxLive bounds the bytes a Stream direction holds between calls: a
	// message with its length prefix, less one byte.
	maxLive = 2 + 65535 - 1
	// maxPendingState and maxStreamState bound the serialized states:
	// every field at its bound, with room for gob's framing and type
	// descriptions.
	maxPendingState = maxNameText + 2*maxShortText + 2*(17+64) + 64
	maxTrackerState = maxPending*maxPendingState + 4096
	maxStreamState  = 2*(maxLive+8) + 2*(17+64) + 4096
)

// A state is a gob stream of two values: the int stateVersion, read before
// anything whose layout it governs, then a trackerSnapshot or a
// streamSnapshot.

// trackerSnapshot is the serialized form of a Tracker.
type trackerSnapshot struct {
	Stats Stats
	// Pending lists the unanswered queries in arrival order, which
	// decides pairing among equal keys and ties in emission order.
	Pending []pendingSnapshot
}

// pendingSnapshot is one query waiting for its response.
type pendingSnapshot struct {
	TS             int64
	Transport      string
	Client, Server Endpoint
	ID             uint16
	Name, QType    string
}

// MarshalState serializes the Tracker's state (the queries waiting for a
// response, in arrival order, and the counters) with encoding/gob, so that
// tracking can continue in another process with RestoreTracker. The
// timeout, the emit function and the OnAnswer hook are not part of it.
func (t *Tracker) MarshalState() ([]byte, error) {
	ps := slices.Clone(t.heap)
	slices.SortFunc(ps, func(a, b *pending) int { return cmp.Compare(a.seq, b.seq) })
	snap := trackerSnapshot{Stats: t.stats, Pending: make([]pendingSnapshot, len(ps))}
	for i, p := range ps {
		snap.Pending[i] = pendingSnapshot{
			TS:        p.q.TS,
			Transport: p.q.Transport,
			Client:    p.q.Client,
			Server:    p.q.Server,
			ID:        p.q.ID,
			Name:      p.q.Name,
			QType:     p.q.QType,
		}
	}
	return marshal(&snap)
}

// RestoreTracker returns a Tracker that continues from state produced by
// MarshalState, with the given timeout and emit function (see NewTracker).
// An OnAnswer hook must be registered again. Corrupt or foreign state is
// refused with an error wrapping ErrBadState.
func RestoreTracker(timeoutNS int64, state []byte, emit func(*Query)) (*Tracker, error) {
	var snap trackerSnapshot
	if err := unmarshal(state, maxTrackerState, &snap); err != nil {
		return nil, err
	}
	if err := snap.validate(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrBadState, err)
	}
	t := NewTracker(timeoutNS, emit)
	t.stats = snap.Stats
	n := len(snap.Pending)
	ps := make([]pending, n)
	t.heap = make([]*pending, 0, n)
	// The queries arrive in order: each joins the tail of its chain.
	tails := make(map[pendKey]*pending, n)
	for i := range snap.Pending {
		s := &snap.Pending[i]
		p := &ps[i]
		p.q = Query{
			TS:        s.TS,
			Transport: intern(s.Transport),
			Client:    s.Client,
			Server:    s.Server,
			ID:        s.ID,
			Name:      s.Name,
			QType:     s.QType,
		}
		p.seq = uint64(i)
		key := pendKey{client: s.Client, id: s.ID}
		if tail := tails[key]; tail == nil {
			t.pending[key] = p
		} else {
			tail.next = p
		}
		tails[key] = p
		p.idx = len(t.heap)
		t.heap = append(t.heap, p)
		t.up(p.idx)
	}
	t.seq = uint64(n)
	return t, nil
}

// intern returns the Packet transports as constants, so that restored
// queries do not each hold a copy.
func intern(s string) string {
	switch s {
	case "udp":
		return "udp"
	case "tcp":
		return "tcp"
	}
	return s
}

// validate checks the bounds the Tracker keeps.
func (s *trackerSnapshot) validate() error {
	st := &s.Stats
	if st.Queries < 0 || st.Responses < 0 || st.Paired < 0 || st.Unmatched < 0 || st.Unanswered < 0 || st.Malformed < 0 {
		return errors.New("negative counter")
	}
	if len(s.Pending) > maxPending {
		return fmt.Errorf("%d pending queries, more than the bound %d", len(s.Pending), maxPending)
	}
	for i := range s.Pending {
		p := &s.Pending[i]
		if len(p.Name) > maxNameText || len(p.QType) > maxShortText || len(p.Transport) > maxShortText {
			return fmt.Errorf("pending query %d: field over its bound", i)
		}
	}
	return nil
}

// streamSnapshot is the serialized form of a Stream.
type streamSnapshot struct {
	Client, Server Endpoint
	Dirs           [2]halfSnapshot
}

// halfSnapshot is the framing state of one direction.
type halfSnapshot struct {
	// Live holds the bytes of a message (with its length prefix) that
	// spans calls, or, with Resync, the bytes being scanned for a
	// message boundary.
	Live   []byte
	Resync bool
}

// MarshalState serializes the Stream's framing state (the endpoints and,
// per direction, the bytes of an incomplete message and whether it is
// resynchronising) with encoding/gob, so that the connection can continue
// in another process with RestoreStream. The Tracker's state is marshalled
// separately.
func (s *Stream) MarshalState() ([]byte, error) {
	snap := streamSnapshot{Client: s.client, Server: s.server}
	for i := range s.dirs {
		snap.Dirs[i] = halfSnapshot{Live: s.dirs[i].live(), Resync: s.dirs[i].resync}
	}
	return marshal(&snap)
}

// RestoreStream returns a Stream that continues from state produced by
// MarshalState, feeding t (normally the Tracker restored with the state
// taken with this one). Corrupt or foreign state is refused with an error
// wrapping ErrBadState.
func RestoreStream(t *Tracker, state []byte) (*Stream, error) {
	if t == nil {
		return nil, errors.New("dns: RestoreStream without a Tracker")
	}
	var snap streamSnapshot
	if err := unmarshal(state, maxStreamState, &snap); err != nil {
		return nil, err
	}
	for i := range snap.Dirs {
		if err := snap.Dirs[i].validate(); err != nil {
			return nil, fmt.Errorf("%w: direction %d: %w", ErrBadState, i, err)
		}
	}
	s := NewStream(t, snap.Client, snap.Server)
	for i := range s.dirs {
		h := &s.dirs[i]
		h.set(snap.Dirs[i].Live)
		h.resync = snap.Dirs[i].Resync
	}
	return s, nil
}

// validate checks what Data leaves between calls: less than one message,
// which without Resync is an incomplete one.
func (h *halfSnapshot) validate() error {
	b := h.Live
	if len(b) > maxLive {
		return fmt.Errorf("%d bytes held, more than the bound %d", len(b), maxLive)
	}
	if !h.Resync && len(b) >= 2 {
		if total := 2 + (int(b[0])<<8 | int(b[1])); len(b) >= total {
			return fmt.Errorf("%d bytes held of a %d-byte message", len(b), total)
		}
	}
	return nil
}

// marshal writes the version and v.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := gob.NewEncoder(&buf)
	if err := enc.Encode(stateVersion); err != nil {
		return nil, fmt.Errorf("dns: marshal state: %w", err)
	}
	if err := enc.Encode(v); err != nil {
		return nil, fmt.Errorf("dns: marshal state: %w", err)
	}
	return buf.Bytes(), nil
}

// unmarshal reads what marshal wrote into v, refusing state longer than
// limit, of another version, or followed by more bytes.
func unmarshal(state []byte, limit int, v any) error {
	if len(state) > limit {
		return fmt.Errorf("%w: %d bytes, more than the bound %d", ErrBadState, len(state), limit)
	}
	r := bytes.NewReader(state)
	dec := gob.NewDecoder(r)
	var version int
	if err := dec.Decode(&version); err != nil {
		return fmt.Errorf("%w: %w", ErrBadState, err)
	}
	if version != stateVersion {
		return fmt.Errorf("%w: version %d, want %d", ErrBadState, version, stateVersion)
	}
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %w", ErrBadState, err)
	}
	// The decoder reads exactly the messages of the values from a
	// bytes.Reader, so anything left is not part of the state.
	if r.Len() != 0 {
		return fmt.Errorf("%w: %d bytes after the state", ErrBadState, r.Len())
	}
	return nil
}
