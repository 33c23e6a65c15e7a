package tlsparse

import (
	"bytes"
	"encoding/gob"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/flowlake/flowlake/internal/tcp"
)

// maxFinishedState bounds the state of a Stream that has emitted its Hello.
const maxFinishedState = 16

// checkpoint marshals s, checks the state's size and returns the Stream
// restored from it.
func checkpoint(t testing.TB, s *Stream, emit func(*Hello)) *Stream {
	t.Helper()
	st, err := s.MarshalState()
	if err != nil {
		t.Fatalf("marshal: %v", err)
	}
	if s.finished && len(st) > maxFinishedState {
		t.Fatalf("state after the Hello is %d bytes, want at most %d", len(st), maxFinishedState)
	}
	r, err := RestoreStream(st, emit)
	if err != nil {
		t.Fatalf("restore: %v", err)
	}
	return r
}

// playSplit makes the calls of c on a Stream, replacing the Stream by one
// restored from its state at each offset of offs (ascending offsets into
// the data bytes of both directions, in call order; a call is split where
// an offset falls inside it), and closes it at closeTS. It returns the
// Hellos emitted and the offset of the end of the call that emitted the
// first (the total when that was Close).
func playSplit(t testing.TB, c *conn, closeTS int64, offs []int) (hs []*Hello, emittedAt int) {
	t.Helper()
	emittedAt = -1
	pos := 0
	emit := func(h *Hello) { hs = append(hs, h) }
	s := NewStream(emit)
	for _, e := range c.events {
		for len(offs) > 0 && offs[0] <= pos {
			s, offs = checkpoint(t, s, emit), offs[1:]
		}
		if e.gap > 0 {
			s.Gap(e.dir, e.ts, e.gap)
		} else {
			b := e.data
			for len(offs) > 0 && offs[0] < pos+len(b) {
				k := offs[0] - pos
				s.Data(e.dir, e.ts, b[:k])
				s, offs = checkpoint(t, s, emit), offs[1:]
				b, pos = b[k:], pos+k
			}
			s.Data(e.dir, e.ts, b)
			pos += len(b)
		}
		if emittedAt < 0 && len(hs) > 0 {
			emittedAt = pos
		}
	}
	for range offs {
		s = checkpoint(t, s, emit)
	}
	s.Close(closeTS)
	if emittedAt < 0 {
		emittedAt = pos
	}
	return hs, emittedAt
}

// dataLen returns the number of data bytes of c.
func dataLen(c *conn) int {
	n := 0
	for _, e := range c.events {
		n += len(e.data)
	}
	return n
}

// closeTS is when the capture tests close c: at its last event.
func closeTS(c *conn) int64 {
	if n := len(c.events); n > 0 {
		return c.events[n-1].ts
	}
	return 0
}

// splitOffsets returns the offsets at which to split c, whose Hello a
// single pass emitted at offset emittedAt: every offset when c holds at
// most dense bytes. Otherwise, up to emittedAt, every stride-th offset
// and the offsets around each call boundary and around each record
// boundary of either direction (inside the record header, and inside the
// handshake header that starts the fragment); after it, a few offsets.
func splitOffsets(c *conn, emittedAt, dense, stride int) []int {
	total := dataLen(c)
	if total <= dense {
		out := make([]int, total+1)
		for i := range out {
			out[i] = i
		}
		return out
	}
	set := map[int]bool{}
	for i := 0; i <= emittedAt; i += stride {
		set[i] = true
	}
	// Map the record boundaries of each direction's bytes, up to its
	// first gap, to offsets into the calls.
	var dirLen [2]int
	var gapped [2]bool
	pos := 0
	type span struct{ dirStart, start, n int }
	var spans [2][]span
	for _, e := range c.events {
		if e.gap > 0 {
			gapped[e.dir] = true
			continue
		}
		for _, d := range []int{-1, 0, 1, 2} {
			set[pos+d] = true
		}
		if !gapped[e.dir] {
			spans[e.dir] = append(spans[e.dir], span{dirLen[e.dir], pos, len(e.data)})
			dirLen[e.dir] += len(e.data)
		}
		pos += len(e.data)
	}
	for dir := range spans {
		b := make([]byte, 0, dirLen[dir])
		for _, e := range c.events {
			if e.dir == tcp.Dir(dir) && e.gap == 0 && len(b) < dirLen[dir] {
				b = append(b, e.data...)
			}
		}
		for r := 0; r+5 <= len(b); r += 5 + (int(b[r+3])<<8 | int(b[r+4])) {
			for _, d := range []int{-1, 0, 1, 3, 5, 6, 8, 9, 10} {
				x := r + d
				for _, sp := range spans[dir] {
					if x >= sp.dirStart && x < sp.dirStart+sp.n {
						set[sp.start+x-sp.dirStart] = true
					}
				}
			}
		}
	}
	var out []int
	for o := range set {
		if o >= 0 && o <= emittedAt {
			out = append(out, o)
		}
	}
	for i := range 8 {
		out = append(out, emittedAt+1+(total-emittedAt-1)*i/8)
	}
	out = append(out, total)
	slices.Sort(out)
	return slices.Compact(out)
}

// TestMarshalRestoreCaptures checkpoints every connection of the capture
// tests' captures at many offsets (see splitOffsets): each run must emit
// the same Hello as a single pass.
func TestMarshalRestoreCaptures(t *testing.T) {
	for _, cc := range captureCases() {
		t.Run(strings.TrimSuffix(cc.file, ".pcap"), func(t *testing.T) {
			// The large capture repeats the others' connections.
			dense, stride := 4096, 5
			if testing.Short() || strings.HasPrefix(cc.file, "bench-") {
				dense, stride = 0, 97
			}
			splits, conns := 0, 0
			for _, c := range readConns(t, cc.file) {
				if dataLen(c) == 0 {
					continue
				}
				conns++
				want, emittedAt := playSplit(t, c, closeTS(c), nil)
				if len(want) != 1 {
					t.Fatalf("%v: %d Hellos in one pass", c.client, len(want))
				}
				for _, off := range splitOffsets(c, emittedAt, dense, stride) {
					got, _ := playSplit(t, c, closeTS(c), []int{off})
					if !reflect.DeepEqual(got, want) {
						t.Fatalf("%v split at %d of %d:\n got %+v\nwant %+v", c.client, off, dataLen(c), got, want)
					}
					splits++
				}
			}
			t.Logf("%d connections, %d splits", conns, splits)
		})
	}
}

// TestMarshalRestoreEveryCall checkpoints every connection of the captures
// before every call, and checks that a restored Stream marshals to the
// state it was restored from.
func TestMarshalRestoreEveryCall(t *testing.T) {
	for _, cc := range captureCases() {
		for _, c := range readConns(t, cc.file) {
			want, _ := playSplit(t, c, closeTS(c), nil)
			var got []*Hello
			emit := func(h *Hello) { got = append(got, h) }
			s := NewStream(emit)
			for _, e := range c.events {
				st, err := s.MarshalState()
				if err != nil {
					t.Fatal(err)
				}
				s, err = RestoreStream(st, emit)
				if err != nil {
					t.Fatalf("%s %v: %v", cc.file, c.client, err)
				}
				if again, err := s.MarshalState(); err != nil || !bytes.Equal(again, st) {
					t.Fatalf("%s %v: restored stream marshals differently (%v)", cc.file, c.client, err)
				}
				if e.gap > 0 {
					s.Gap(e.dir, e.ts, e.gap)
				} else {
					s.Data(e.dir, e.ts, e.data)
				}
			}
			s.Close(closeTS(c))
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("%s %v:\n got %+v\nwant %+v", cc.file, c.client, got, want)
			}
		}
	}
}

// synthConn builds a connection from c2s and s2c, sent alternately in
// chunks of n bytes, with optional extra events appended.
func synthConn(c2s, s2c []byte, n int, extra ...event) *conn {
	c := &conn{}
	ts := int64(100)
	for len(c2s) > 0 || len(s2c) > 0 {
		for dir, b := range []*[]byte{&c2s, &s2c} {
			if len(*b) == 0 {
				continue
			}
			k := min(n, len(*b))
			c.events = append(c.events, event{dir: tcp.Dir(dir), ts: ts, data: (*b)[:k]})
			*b = (*b)[k:]
			ts += 10
		}
	}
	c.events = append(c.events, extra...)
	return c
}

// part is bytes of one direction.
type part struct {
	dir tcp.Dir
	b   []byte
}

// synthSeq builds a connection from parts sent one after the other, each
// in chunks of n bytes.
func synthSeq(n int, parts ...part) *conn {
	c := &conn{}
	ts := int64(100)
	for _, p := range parts {
		for b := p.b; len(b) > 0; b = b[min(n, len(b)):] {
			c.events = append(c.events, event{dir: p.dir, ts: ts, data: b[:min(n, len(b))]})
			ts += 10
		}
	}
	return c
}

// TestMarshalRestoreSynthetic splits handshakes that exercise the parts of
// the state the captures may not: records that split handshake messages,
// a ClientHello offering only GREASE suites (an empty, non-nil list),
// session-ID and PSK resumption, a HelloRetryRequest, and the errors.
func TestMarshalRestoreSynthetic(t *testing.T) {
	ch := buildClientHello(t, chOpts{version: 0x0303, random: 7, sessionID: bytes.Repeat([]byte{4}, 32),
		suites: []uint16{0x0a0a, 0x1a1a}, sni: "split.example", alpn: []string{"h2", "http/1.1"}})
	sh := buildServerHello(t, shOpts{version: 0x0303, sessionID: bytes.Repeat([]byte{4}, 32), suite: 0xc02f, alpn: "h2"})
	ch13 := buildClientHello(t, chOpts{version: 0x0303, random: 9, suites: []uint16{0x1301, 0x1302}, versions: []uint16{0x0304, 0x0303}})
	hrr := buildServerHello(t, shOpts{version: 0x0303, random: helloRetryRandom, suite: 0x1301, selected: 0x0304})
	sh13 := buildServerHello(t, shOpts{version: 0x0303, suite: 0x1301, selected: 0x0304, psk: true})
	ccs := record(RecordChangeCipherSpec, []byte{1}, 1)
	cert := []byte{11, 0, 0, 3, 0, 0, 0}
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	resumed12 := func(h *Hello) bool {
		return h.Error == "" && h.SessionResumed && h.CipherSuitesOffered != nil && len(h.CipherSuitesOffered) == 0 &&
			h.SNI == "split.example" && h.ALPN == "h2"
	}
	cases := []struct {
		name string
		c    *conn
		// check verifies the one-pass Hello, so that the splits are
		// compared against the intended outcome.
		check func(h *Hello) bool
	}{
		// Interleaved in 7-byte chunks, the ServerHello completes first.
		{"resumed TLS 1.2 in small records, interleaved",
			synthConn(cat(record(RecordHandshake, ch, 40), record(RecordApplicationData, []byte("x"), 10)),
				cat(record(RecordHandshake, append(slices.Clip(sh), cert...), 30), record(RecordApplicationData, []byte("y"), 10)), 7),
			resumed12},
		{"resumed TLS 1.2 in small records, ClientHello first",
			synthSeq(7, part{tcp.ClientToServer, record(RecordHandshake, ch, 40)},
				part{tcp.ServerToClient, record(RecordHandshake, append(slices.Clip(sh), cert...), 30)},
				part{tcp.ClientToServer, record(RecordApplicationData, []byte("x"), 10)}),
			resumed12},
		{"PSK, ServerHello first",
			synthSeq(6, part{tcp.ServerToClient, record(RecordHandshake, sh13, 20)},
				part{tcp.ClientToServer, record(RecordHandshake, ch13, 50)}),
			func(h *Hello) bool { return h.Error == "" && h.SessionResumed && h.ServerVersion == 0x0304 }},
		{"HelloRetryRequest and PSK",
			synthConn(cat(record(RecordHandshake, ch13, 1<<14), ccs, record(RecordHandshake, ch13, 1<<14)),
				cat(record(RecordHandshake, hrr, 1<<14), ccs, record(RecordHandshake, sh13, 50)), 13),
			func(h *Hello) bool { return h.Error == "" && h.SessionResumed && h.ServerVersion == 0x0304 }},
		{"several messages in one record",
			synthConn(record(RecordHandshake, ch13, 1<<14), record(RecordHandshake, cat(cert[:0:0], []byte{0, 0, 0, 0}, sh13, cert), 1<<14), 3),
			func(h *Hello) bool { return h.Error == "" && h.SawServerHello }},
		{"gap before ServerHello",
			synthConn(record(RecordHandshake, ch13, 1<<14), record(RecordHandshake, sh13, 1<<14)[:20], 11,
				event{dir: tcp.ServerToClient, ts: 900, gap: 5}),
			func(h *Hello) bool { return strings.Contains(h.Error, "gap of 5 bytes") && h.SawClientHello }},
		{"alert",
			synthConn(record(RecordHandshake, ch13, 1<<14), record(RecordAlert, []byte{2, 40}, 10), 9),
			func(h *Hello) bool { return strings.Contains(h.Error, "fatal handshake_failure") }},
		{"closed inside a record",
			synthConn(record(RecordHandshake, ch13, 1<<14)[:60], nil, 4),
			func(h *Hello) bool { return h.Error == "connection closed before ClientHello and ServerHello" }},
		{"not TLS",
			synthConn([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), []byte("HTTP/1.1 200 OK\r\n\r\n"), 5),
			func(h *Hello) bool { return h.Error == "c2s: not a TLS record" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			want, emittedAt := playSplit(t, tc.c, 1000, nil)
			if len(want) != 1 || !tc.check(want[0]) {
				t.Fatalf("one pass: %d Hellos %+v", len(want), want)
			}
			total := dataLen(tc.c)
			for off := 0; off <= total; off++ {
				if got, _ := playSplit(t, tc.c, 1000, []int{off}); !reflect.DeepEqual(got, want) {
					t.Fatalf("split at %d of %d (Hello at %d):\n got %+v\nwant %+v", off, total, emittedAt, got[0], want[0])
				}
			}
			// A checkpoint at every offset at once.
			all := make([]int, total+1)
			for i := range all {
				all[i] = i
			}
			if got, _ := playSplit(t, tc.c, 1000, all); !reflect.DeepEqual(got, want) {
				t.Fatalf("split everywhere:\n got %+v\nwant %+v", got, want)
			}
		})
	}
}

// TestMarshalRestoreUnseen covers a Stream that saw nothing: it emits
// nothing at Close after a restore, as without one.
func TestMarshalRestoreUnseen(t *testing.T) {
	n := 0
	s := checkpoint(t, NewStream(nil), func(*Hello) { n++ })
	s.Close(1)
	if n != 0 {
		t.Fatalf("%d Hellos from an empty connection", n)
	}
}

// realStates returns states of capture connections (two ndpi-chrome ones,
// the TLS 1.2 one of zeek-tls12-decryption and ndpi-reddit's
// HelloRetryRequest), taken at offsets inside and after their handshakes,
// with up to 2 KiB of what follows in each direction.
func realStates(t testing.TB) (states, c2s, s2c [][]byte) {
	var conns []*conn
	conns = append(conns, readConns(t, "ndpi-chrome.pcap")[:2]...)
	conns = append(conns, readConns(t, "zeek-tls12-decryption.pcap")...)
	for _, c := range readConns(t, "ndpi-reddit.pcap") {
		if hs, _ := playSplit(t, c, 0, nil); len(hs) == 1 && hs[0].SNI == "cdn.syndication.twimg.com" {
			conns = append(conns, c)
		}
	}
	if len(conns) != 4 {
		t.Fatalf("%d connections, want 4", len(conns))
	}
	for _, c := range conns {
		for _, off := range []int{3, 5, 200, 517, 600, 1000, 1600, 2000, 4000} {
			s := NewStream(nil)
			pos := 0
			var rest [2][]byte
			for _, e := range c.events {
				if e.gap > 0 {
					continue
				}
				switch {
				case pos+len(e.data) <= off:
					s.Data(e.dir, e.ts, e.data)
				case pos >= off:
					rest[e.dir] = append(rest[e.dir], e.data...)
				default:
					s.Data(e.dir, e.ts, e.data[:off-pos])
					rest[e.dir] = append(rest[e.dir], e.data[off-pos:]...)
				}
				pos += len(e.data)
			}
			st, err := s.MarshalState()
			if err != nil {
				t.Fatal(err)
			}
			states = append(states, st)
			c2s = append(c2s, rest[0][:min(len(rest[0]), 2048)])
			s2c = append(s2c, rest[1][:min(len(rest[1]), 2048)])
		}
	}
	return states, c2s, s2c
}

// TestRestoreStreamRejects checks that truncated, extended, foreign and
// inconsistent states are refused with ErrBadState, and that every
// single-byte corruption of real states is refused or yields a Stream
// that works within its bounds.
func TestRestoreStreamRejects(t *testing.T) {
	states, c2s, s2c := realStates(t)
	for i, st := range states {
		for n := range len(st) {
			if _, err := RestoreStream(st[:n], nil); !errors.Is(err, ErrBadState) {
				t.Fatalf("state %d cut to %d of %d bytes: err = %v", i, n, len(st), err)
			}
		}
		if _, err := RestoreStream(append(slices.Clip(st), 0), nil); !errors.Is(err, ErrBadState) {
			t.Fatalf("state %d with a trailing byte: err = %v", i, err)
		}
		for j := range st {
			bad := slices.Clone(st)
			bad[j] ^= []byte{0x01, 0x80, 0xff}[(i+j)%3]
			checkRestored(t, bad, c2s[i], s2c[i])
		}
	}
	if _, err := RestoreStream(make([]byte, maxStateLen+1), nil); !errors.Is(err, ErrBadState) {
		t.Errorf("oversized state: err = %v", err)
	}

	// Well-formed gob that breaks the Stream's invariants.
	encode := func(v int, finished bool, snap *snapshot) []byte {
		var buf bytes.Buffer
		enc := gob.NewEncoder(&buf)
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
		if err := enc.Encode(finished); err != nil {
			t.Fatal(err)
		}
		if snap != nil {
			if err := enc.Encode(snap); err != nil {
				t.Fatal(err)
			}
		}
		return buf.Bytes()
	}
	ok := func() *snapshot {
		return &snapshot{Seen: true, Dirs: [2]dirSnapshot{{Started: true, Header: []byte{22, 3, 1, 0, 200}, Record: make([]byte, 100)}}}
	}
	if _, err := RestoreStream(encode(stateVersion, false, ok()), nil); err != nil {
		t.Fatalf("valid state refused: %v", err)
	}
	for _, tc := range []struct {
		name  string
		state []byte
	}{
		{"future version", encode(stateVersion+1, true, nil)},
		{"finished with more", encode(stateVersion, true, ok())},
		{"missing snapshot", encode(stateVersion, false, nil)},
		{"record as long as its header says", func() []byte {
			s := ok()
			s.Dirs[0].Record = make([]byte, 200)
			return encode(stateVersion, false, s)
		}()},
		{"record header too large", func() []byte {
			s := ok()
			s.Dirs[0].Header = []byte{22, 3, 1, 0xff, 0xff}
			return encode(stateVersion, false, s)
		}()},
		{"not a record header", func() []byte {
			s := ok()
			s.Dirs[0].Header = []byte{99, 3, 1, 0, 1}
			return encode(stateVersion, false, s)
		}()},
		{"six header bytes", func() []byte {
			s := ok()
			s.Dirs[0].Header = []byte{22, 3, 1, 0, 1, 0}
			return encode(stateVersion, false, s)
		}()},
		{"record bytes without header", func() []byte {
			s := ok()
			s.Dirs[0].Header = s.Dirs[0].Header[:4]
			return encode(stateVersion, false, s)
		}()},
		{"handshake message over the bound", func() []byte {
			s := ok()
			s.Dirs[1] = dirSnapshot{Started: true, Handshake: []byte{1, 0x10, 0, 0, 0}}
			return encode(stateVersion, false, s)
		}()},
		{"complete handshake message", func() []byte {
			s := ok()
			s.Dirs[1] = dirSnapshot{Started: true, Handshake: []byte{1, 0, 0, 1, 0}}
			return encode(stateVersion, false, s)
		}()},
		{"ClientHello flag without done", func() []byte {
			s := ok()
			s.Hello.SawClientHello = true
			return encode(stateVersion, false, s)
		}()},
		{"both done", func() []byte {
			s := &snapshot{Seen: true, Hello: Hello{SawClientHello: true, SawServerHello: true}}
			s.Dirs[0].Done, s.Dirs[1].Done = true, true
			return encode(stateVersion, false, s)
		}()},
		{"ServerHello fields early", func() []byte {
			s := ok()
			s.Hello.CipherSuite = 0x1301
			return encode(stateVersion, false, s)
		}()},
		{"short random", func() []byte {
			s := ok()
			s.Hello.SawClientHello, s.Dirs[0] = true, dirSnapshot{Done: true}
			s.Hello.ClientRandom = []byte{1}
			return encode(stateVersion, false, s)
		}()},
		{"long session ID", func() []byte {
			s := ok()
			s.Hello.SawClientHello, s.Dirs[0] = true, dirSnapshot{Done: true}
			s.ClientSession = make([]byte, 33)
			return encode(stateVersion, false, s)
		}()},
		{"too many suites", func() []byte {
			s := ok()
			s.Hello.SawClientHello, s.Dirs[0] = true, dirSnapshot{Done: true}
			s.Hello.CipherSuitesOffered = make([]uint16, maxListLen+1)
			return encode(stateVersion, false, s)
		}()},
		{"invalid SNI", func() []byte {
			s := ok()
			s.Hello.SawClientHello, s.Dirs[0] = true, dirSnapshot{Done: true}
			s.Hello.SNI = "\xff"
			return encode(stateVersion, false, s)
		}()},
		{"error set", func() []byte {
			s := ok()
			s.Hello.Error = "x"
			return encode(stateVersion, false, s)
		}()},
		{"bytes before seen", func() []byte {
			s := ok()
			s.Seen = false
			return encode(stateVersion, false, s)
		}()},
	} {
		if _, err := RestoreStream(tc.state, nil); !errors.Is(err, ErrBadState) {
			t.Errorf("%s: err = %v, want ErrBadState", tc.name, err)
		}
	}
}

// checkRestored restores state; when that succeeds, the Stream must take
// more bytes within its bounds, emit at most one Hello, and marshal again.
func checkRestored(t testing.TB, state, c2s, s2c []byte) {
	n := 0
	s, err := RestoreStream(state, func(h *Hello) {
		n++
		if len(h.ClientRandom) != 0 && len(h.ClientRandom) != 32 || len(h.CipherSuitesOffered) > maxListLen ||
			len(h.OfferedVersions) > maxListLen || len(h.ALPNOffered) > maxListLen {
			t.Fatalf("Hello out of bounds: %+v", h)
		}
	})
	if err != nil {
		if !errors.Is(err, ErrBadState) {
			t.Fatalf("error %v does not wrap ErrBadState", err)
		}
		return
	}
	if _, err := s.MarshalState(); err != nil {
		t.Fatalf("restored stream does not marshal: %v", err)
	}
	s.Data(tcp.ClientToServer, 1, c2s)
	s.Data(tcp.ServerToClient, 2, s2c)
	for d := range s.dirs {
		if s.dirs[d].records.Buffered() > 5+MaxRecordLen || s.dirs[d].handshake.Buffered() > DefaultMaxHandshake {
			t.Fatal("buffers over their bounds")
		}
	}
	st, err := s.MarshalState()
	if err != nil {
		t.Fatalf("marshal after data: %v", err)
	}
	if _, err := RestoreStream(st, nil); err != nil {
		t.Fatalf("state of a restored stream refused: %v", err)
	}
	s.Close(3)
	if n > 1 {
		t.Fatalf("%d Hellos", n)
	}
}
