package tcp

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
)

// stateVersion is the version of the assembler's checkpoint format.
const stateVersion = 1

// ErrBadState reports a checkpoint that cannot be restored.
var ErrBadState = errors.New("tcp: bad assembler state")

type segState struct {
	Seq     uint32
	Data    []byte
	Missing int
}

type halfState struct {
	Init, ISNSeen, FinSeen, Done, Acked bool
	Next, ISN, FinSeq, AckedTo          uint32
	Pend                                []segState
}

type connState struct {
	Key            Key
	Client, Server Endpoint
	FirstTS        int64
	LastTS         int64
	SawSYN         bool
	Packets        [2]int64
	Bytes          [2]int64
	Missing        int64
	Retrans        int64
	OutOfOrder     int64
	LimitHits      int32
	RTT            int64
	Reason         string
	Inputs         []string
	Closed         bool
	SynTS          int64
	SynAckTS       int64
	Half           [2]halfState
	Handler        []byte
}

type assemblerState struct {
	Version int
	Open    []connState // least recently active first
	Closed  []connState
}

// MarshalState returns the assembler's carry-over state: every tracked
// connection with its sequence state, held out-of-order bytes and the
// state of its handler, as handler returns it. Restore it with
// RestoreAssembler to continue as if the packet stream had not been cut.
func (a *Assembler) MarshalState(handler func(*Conn) ([]byte, error)) ([]byte, error) {
	st := assemblerState{Version: stateVersion}
	for _, l := range []struct {
		list *lruList
		out  *[]connState
	}{{&a.open, &st.Open}, {&a.closedList, &st.Closed}} {
		for c := l.list.tail; c != nil; c = c.prev {
			h, err := handler(c)
			if err != nil {
				return nil, fmt.Errorf("tcp state of %s: %w", c, err)
			}
			cs := connState{
				Key: c.Key, Client: c.Client, Server: c.Server, FirstTS: c.FirstTS, LastTS: c.LastTS, SawSYN: c.SawSYN,
				Packets: c.Packets, Bytes: c.Bytes, Missing: c.Missing, Retrans: c.Retrans, OutOfOrder: c.OutOfOrder,
				LimitHits: c.LimitHits, RTT: c.RTT, Reason: c.Reason, Inputs: c.Inputs, Closed: c.closed, SynTS: c.synTS, SynAckTS: c.synAckTS,
				Handler: h,
			}
			for d := range c.half {
				hh := &c.half[d]
				hs := halfState{Init: hh.init, ISNSeen: hh.isnSeen, FinSeen: hh.finSeen, Done: hh.done, Acked: hh.acked,
					Next: hh.next, ISN: hh.isn, FinSeq: hh.finSeq, AckedTo: hh.ackedTo}
				for _, s := range hh.pend {
					hs.Pend = append(hs.Pend, segState{Seq: s.seq, Data: s.data, Missing: s.missing})
				}
				cs.Half[d] = hs
			}
			*l.out = append(*l.out, cs)
		}
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&st); err != nil {
		return nil, fmt.Errorf("tcp state: %w", err)
	}
	return buf.Bytes(), nil
}

// RestoreAssembler rebuilds an assembler from MarshalState's output.
// restoreHandler recreates each connection's handler from its saved state;
// newHandler and done serve connections seen from now on, as in
// NewAssembler.
func RestoreAssembler(cfg Config, state []byte, newHandler func(*Conn) StreamHandler, done func(*Conn),
	restoreHandler func(c *Conn, state []byte) (StreamHandler, error)) (*Assembler, error) {
	var st assemblerState
	if err := gob.NewDecoder(bytes.NewReader(state)).Decode(&st); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadState, err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrBadState, st.Version, stateVersion)
	}
	a := NewAssembler(cfg, newHandler, done)
	for _, l := range []struct {
		list  *lruList
		conns []connState
	}{{&a.open, st.Open}, {&a.closedList, st.Closed}} {
		for _, cs := range l.conns {
			if _, dup := a.conns[cs.Key]; dup {
				return nil, fmt.Errorf("%w: connection %v twice", ErrBadState, cs.Key)
			}
			c := &Conn{Key: cs.Key, Client: cs.Client, Server: cs.Server, FirstTS: cs.FirstTS, LastTS: cs.LastTS, SawSYN: cs.SawSYN,
				Packets: cs.Packets, Bytes: cs.Bytes, Missing: cs.Missing, Retrans: cs.Retrans, OutOfOrder: cs.OutOfOrder,
				LimitHits: cs.LimitHits, RTT: cs.RTT, Reason: cs.Reason, Inputs: cs.Inputs, closed: cs.Closed, synTS: cs.SynTS, synAckTS: cs.SynAckTS}
			for d := range cs.Half {
				hs := &cs.Half[d]
				hh := &c.half[d]
				*hh = half{init: hs.Init, isnSeen: hs.ISNSeen, finSeen: hs.FinSeen, done: hs.Done, acked: hs.Acked,
					next: hs.Next, isn: hs.ISN, finSeq: hs.FinSeq, ackedTo: hs.AckedTo}
				for _, s := range hs.Pend {
					hh.pend = append(hh.pend, seg{seq: s.Seq, data: s.Data, missing: s.Missing})
					hh.pendSize += len(s.Data)
					a.buffered += int64(len(s.Data))
				}
			}
			h, err := restoreHandler(c, cs.Handler)
			if err != nil {
				return nil, fmt.Errorf("restore handler of %s: %w", c, err)
			}
			c.Handler = h
			a.conns[c.Key] = c
			l.list.pushFront(c) // saved tail first: pushing to the front keeps the order
		}
	}
	return a, nil
}
