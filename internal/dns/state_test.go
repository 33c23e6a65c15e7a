package dns

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/flowlake/flowlake/internal/tcp"
	"golang.org/x/net/dns/dnsmessage"
)

// truthStems are the captures of TestCapturesAgainstTruth.
var truthStems = []string{"gop-test_dns", "ark-dns-udp", "ark-dns-tcp", "sv-dns-udp-google-a-aaaa-mx", "ppp-DnsPackets"}

// otherDNSStems are the other captures with DNS in them: many more packets
// of other protocols, unanswered and repeated queries, and a DNS server
// that answers over IPv6.
var otherDNSStems = []string{"ndpi-1kxun", "ndpi-netflix", "zeek-wikipedia", "ppp-sll", "ark-v6-http"}

// dnsIndexes returns the indexes of the segments on DNS ports.
func dnsIndexes(segs []segment) []int {
	var out []int
	for i, s := range segs {
		if dnsPort(s.src.Port) || dnsPort(s.dst.Port) {
			out = append(out, i)
		}
	}
	return out
}

// TestMarshalRestoreCaptures checkpoints the Tracker (and the open TCP
// Streams) before every packet of the DNS captures, one split per run:
// rows, their order, the OnAnswer calls and the counters must equal a
// single pass. The 1 ms timeout makes Advance expire queries all along.
func TestMarshalRestoreCaptures(t *testing.T) {
	for _, stem := range append(slices.Clone(truthStems), otherDNSStems...) {
		t.Run(stem, func(t *testing.T) {
			segs := readSegments(t, stem+".pcap")
			// In the captures full of other traffic, the splits between
			// two DNS packets hold the same state but for expiries:
			// split before and after each DNS packet.
			var splits []int
			if slices.Contains(truthStems, stem) {
				for i := range len(segs) + 1 {
					splits = append(splits, i)
				}
			} else {
				for _, i := range dnsIndexes(segs) {
					splits = append(splits, i, i+1)
				}
				splits = slices.Compact(splits)
			}
			for _, timeout := range []int64{5e9, 1e6} {
				want := runCapture(t, segs, timeout)
				if len(want.rows) == 0 {
					t.Fatal("no rows")
				}
				for _, k := range splits {
					if got := runCaptureSplit(t, segs, timeout, []int{k}); !reflect.DeepEqual(got, want) {
						t.Fatalf("timeout %d, split before packet %d of %d:\n%s", timeout, k, len(segs), diffResults(got, want))
					}
				}
				// Every split at once, as over many capture segments.
				if got := runCaptureSplit(t, segs, timeout, splits); !reflect.DeepEqual(got, want) {
					t.Fatalf("timeout %d, split everywhere:\n%s", timeout, diffResults(got, want))
				}
				t.Logf("timeout %d: %d rows, %d splits, stats %+v", timeout, len(want.rows), len(splits), want.stats)
			}
		})
	}
}

// TestMarshalRestoreLargeCapture checkpoints before every DNS packet of
// the 24 MB capture in one run, and before a spread of them one at a time.
func TestMarshalRestoreLargeCapture(t *testing.T) {
	if testing.Short() {
		t.Skip("large capture")
	}
	segs := readSegments(t, "bench-mixed-web-24mb.pcap")
	idx := dnsIndexes(segs)
	want := runCapture(t, segs, 5e9)
	if got := runCaptureSplit(t, segs, 5e9, idx); !reflect.DeepEqual(got, want) {
		t.Fatalf("split before every DNS packet:\n%s", diffResults(got, want))
	}
	for i := 0; i < len(idx); i += 7 {
		if got := runCaptureSplit(t, segs, 5e9, []int{idx[i]}); !reflect.DeepEqual(got, want) {
			t.Fatalf("split before packet %d:\n%s", idx[i], diffResults(got, want))
		}
	}
	t.Logf("%d rows, %d DNS packets, stats %+v", len(want.rows), len(idx), want.stats)
}

// diffResults describes the first difference between two results.
func diffResults(got, want captureResult) string {
	for i := range min(len(got.rows), len(want.rows)) {
		if !reflect.DeepEqual(got.rows[i], want.rows[i]) {
			return fmt.Sprintf("row %d:\n got %+v\nwant %+v", i, got.rows[i], want.rows[i])
		}
	}
	if len(got.rows) != len(want.rows) {
		return fmt.Sprintf("%d rows, want %d", len(got.rows), len(want.rows))
	}
	return fmt.Sprintf("stats %+v / %+v, pending %d / %d, answers equal %v",
		got.stats, want.stats, got.pendingAt, want.pendingAt, reflect.DeepEqual(got.answers, want.answers))
}

// tcpEvent is one call on a Stream.
type tcpEvent struct {
	dir  tcp.Dir
	ts   int64
	data []byte
	gap  int
}

// streamRun is what a run of runEvents produced.
type streamRun struct {
	rows    []Query
	answers []string
	stats   Stats
}

// runEvents makes the calls of evs on a Stream between client and server,
// feeding a Tracker, and closes and flushes them at the end. At each
// offset of offs (ascending, into the data bytes of both directions in
// call order) the Tracker and the Stream are replaced by ones restored
// from their state.
func runEvents(t testing.TB, evs []tcpEvent, offs []int) streamRun {
	t.Helper()
	var r streamRun
	emit := func(q *Query) { r.rows = append(r.rows, copyQuery(q)) }
	onAnswer := func(name string, ip netip.Addr) { r.answers = append(r.answers, name+"="+ip.String()) }
	tr := NewTracker(1e9, emit)
	tr.OnAnswer(onAnswer)
	s := NewStream(tr, client, server)
	checkpoint := func() {
		ts, err := tr.MarshalState()
		if err != nil {
			t.Fatal(err)
		}
		ss, err := s.MarshalState()
		if err != nil {
			t.Fatal(err)
		}
		if tr, err = RestoreTracker(1e9, ts, emit); err != nil {
			t.Fatalf("restore tracker: %v", err)
		}
		tr.OnAnswer(onAnswer)
		if s, err = RestoreStream(tr, ss); err != nil {
			t.Fatalf("restore stream: %v", err)
		}
	}
	pos := 0
	for _, e := range evs {
		for len(offs) > 0 && offs[0] <= pos {
			checkpoint()
			offs = offs[1:]
		}
		if e.gap > 0 {
			s.Gap(e.dir, e.ts, e.gap)
			continue
		}
		b := e.data
		for len(offs) > 0 && offs[0] < pos+len(b) {
			k := offs[0] - pos
			s.Data(e.dir, e.ts, b[:k])
			checkpoint()
			offs = offs[1:]
			b, pos = b[k:], pos+k
		}
		s.Data(e.dir, e.ts, b)
		pos += len(b)
	}
	for range offs {
		checkpoint()
	}
	s.Close(1 << 40)
	tr.Flush()
	r.stats = tr.Stats()
	return r
}

// captureStreams returns the TCP connections of a capture on port 53 as
// Stream calls, in capture order.
func captureStreams(t testing.TB, stem string) [][]tcpEvent {
	type key struct{ a, b Endpoint }
	conns := map[key]int{}
	var out [][]tcpEvent
	for _, s := range readSegments(t, stem+".pcap") {
		if !s.tcp || len(s.payload) == 0 || (s.src.Port != 53 && s.dst.Port != 53) {
			continue
		}
		dir, k := tcp.ClientToServer, key{s.src, s.dst}
		if s.src.Port == 53 {
			dir, k = tcp.ServerToClient, key{s.dst, s.src}
		}
		i, ok := conns[k]
		if !ok {
			i = len(out)
			conns[k] = i
			out = append(out, nil)
		}
		out[i] = append(out[i], tcpEvent{dir: dir, ts: s.ts, data: s.payload})
	}
	return out
}

// pipelined returns the first n DNS messages of ppp-DnsPackets framed for
// TCP, queries client to server and responses back, in calls of chunk
// bytes alternating between the directions.
func pipelined(t testing.TB, n, chunk int) []tcpEvent {
	var dirs [2][]byte
	for _, s := range readSegments(t, "ppp-DnsPackets.pcap") {
		if n == 0 {
			break
		}
		if s.tcp || !dnsPort(s.src.Port) && !dnsPort(s.dst.Port) || len(s.payload) < headerLen {
			continue
		}
		d := 0
		if s.payload[2]&0x80 != 0 {
			d = 1
		}
		dirs[d] = append(dirs[d], tcpFrame(s.payload)...)
		n--
	}
	return alternate(dirs[0], dirs[1], chunk)
}

// alternate cuts c2s and s2c into calls of chunk bytes, alternating.
func alternate(c2s, s2c []byte, chunk int) []tcpEvent {
	var evs []tcpEvent
	ts := int64(1000)
	for len(c2s) > 0 || len(s2c) > 0 {
		for d, b := range []*[]byte{&c2s, &s2c} {
			if k := min(chunk, len(*b)); k > 0 {
				evs = append(evs, tcpEvent{dir: tcp.Dir(d), ts: ts, data: (*b)[:k]})
				*b = (*b)[k:]
				ts += 1000
			}
		}
	}
	return evs
}

// resyncEvents is a connection with every framing event: pipelined
// messages, a message that does not decode, garbage, a gap in each
// direction, and a message cut short by the close.
func resyncEvents(t testing.TB) []tcpEvent {
	q1 := query(t, 1, "one.example.", dnsmessage.TypeA)
	q2 := query(t, 2, "two.example.", dnsmessage.TypeAAAA)
	q3 := query(t, 3, "three.example.", dnsmessage.TypeA)
	q4 := query(t, 4, "four.example.", dnsmessage.TypeMX)
	a1 := answerA(t, 1, "one.example.", "192.0.2.10", "192.0.2.11")
	a2 := answerA(t, 3, "three.example.", "192.0.2.30")
	bad := []byte{0, 13, 0, 9, 0x01, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0xc0} // five questions promised, none there
	garbage := []byte("\x00\x01\xffnot dns at all\x00")
	cat := func(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
	c2s1 := cat(tcpFrame(q1), tcpFrame(q2), bad, garbage, tcpFrame(q3)[:9])
	c2s2 := cat(garbage[:5], tcpFrame(q3), tcpFrame(q4)[:7])
	s2c1 := cat(tcpFrame(a1), tcpFrame(a2)[:20])
	s2c2 := cat(tcpFrame(a2)[3:], tcpFrame(a1)[:11])
	evs := alternate(c2s1, s2c1, 6)
	evs = append(evs, tcpEvent{dir: tcp.ClientToServer, ts: 900000, gap: 4}, tcpEvent{dir: tcp.ServerToClient, ts: 900001, gap: 9})
	return append(evs, alternate(c2s2, s2c2, 5)...)
}

// TestMarshalRestoreStreamOffsets splits DNS-over-TCP connections at every
// byte offset, checkpointing the Stream with its Tracker: the rows and the
// OnAnswer calls must equal a single pass.
func TestMarshalRestoreStreamOffsets(t *testing.T) {
	conns := map[string][]tcpEvent{
		"pipelined":       pipelined(t, 60, 97),
		"pipelined small": pipelined(t, 12, 3),
		"resync":          resyncEvents(t),
	}
	for i, evs := range captureStreams(t, "ark-dns-tcp") {
		conns[fmt.Sprintf("ark-dns-tcp conn %d", i)] = evs
	}
	for name, evs := range conns {
		t.Run(name, func(t *testing.T) {
			want := runEvents(t, evs, nil)
			if len(want.rows) == 0 {
				t.Fatal("no rows")
			}
			// The bad message, the server's gap (the client's falls
			// while resynchronising) and the client's cut message.
			if name == "resync" && want.stats.Malformed != 3 {
				t.Fatalf("resync: %d framing errors, stats %+v", want.stats.Malformed, want.stats)
			}
			total := 0
			for _, e := range evs {
				total += len(e.data)
			}
			all := make([]int, 0, total+1)
			for off := 0; off <= total; off++ {
				all = append(all, off)
				if got := runEvents(t, evs, []int{off}); !reflect.DeepEqual(got, want) {
					t.Fatalf("split at %d of %d:\n got %+v\nwant %+v", off, total, got, want)
				}
			}
			if got := runEvents(t, evs, all); !reflect.DeepEqual(got, want) {
				t.Fatalf("split everywhere:\n got %+v\nwant %+v", got, want)
			}
			t.Logf("%d bytes, %d rows, stats %+v", total, len(want.rows), want.stats)
		})
	}
}

// TestRestoredTrackerPairsAndOrders checks a restored Tracker directly:
// responses pair with queries from before the checkpoint, chains of the
// same client and ID keep their order, and Flush orders by time, ID and
// arrival.
func TestRestoredTrackerPairsAndOrders(t *testing.T) {
	group := Endpoint{netip.MustParseAddr("224.0.0.251"), 5353}
	responder := Endpoint{netip.MustParseAddr("192.0.2.7"), 5353}
	feed := func(tr *Tracker, part int) {
		switch part {
		case 0:
			tr.Packet(300, "udp", client, server, query(t, 7, "b.example.", dnsmessage.TypeA))
			tr.Packet(100, "udp", client, server, query(t, 7, "a.example.", dnsmessage.TypeA))
			tr.Packet(100, "udp", client, server, query(t, 5, "c.example.", dnsmessage.TypeA))
			tr.Packet(100, "tcp", client6, server, query(t, 5, "d.example.", dnsmessage.TypeA))
			tr.Packet(200, "udp", client, server, query(t, 9, "e.example.", dnsmessage.TypeA))
			// Same time and ID from many clients: arrival decides.
			for _, port := range []uint16{9, 3, 7, 1, 8, 2, 6, 4, 5} {
				tr.Packet(250, "udp", Endpoint{client.IP, port}, server, query(t, 1, fmt.Sprintf("p%d.example.", port), dnsmessage.TypeA))
			}
			// Two queries to a multicast group that a unicast answer can
			// pair with: the older one wins.
			tr.Packet(260, "udp", client, group, query(t, 0, "printer.local.", dnsmessage.TypeAAAA))
			tr.Packet(260, "udp", client, group, query(t, 0, "printer.local.", dnsmessage.TypeA))
		case 1:
			// Pairs with a.example (same client and ID, name decides).
			tr.Packet(400, "udp", server, client, answerA(t, 7, "A.EXAMPLE.", "192.0.2.1"))
			// A retransmission of e.example: the first copy expires.
			tr.Packet(450, "udp", client, server, query(t, 9, "e.example.", dnsmessage.TypeA))
			tr.Packet(460, "udp", responder, client, answerA(t, 0, "printer.local.", "192.0.2.7"))
			tr.Packet(500, "udp", client, server, query(t, 5, "f.example.", dnsmessage.TypeA))
		}
	}
	var want collector
	tr := NewTracker(1e9, want.emit)
	feed(tr, 0)
	feed(tr, 1)
	tr.Flush()

	var got collector
	tr = NewTracker(1e9, got.emit)
	feed(tr, 0)
	st, err := tr.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	if tr, err = RestoreTracker(1e9, st, got.emit); err != nil {
		t.Fatal(err)
	}
	if tr.Pending() != 16 || tr.Stats().Queries != 16 {
		t.Fatalf("restored: %d pending, stats %+v", tr.Pending(), tr.Stats())
	}
	feed(tr, 1)
	tr.Flush()
	if !reflect.DeepEqual(got.rows, want.rows) {
		t.Fatalf("rows:\n got %+v\nwant %+v", got.rows, want.rows)
	}
	names := rowNames(got.rows)
	if !slices.Equal(names, []string{"a.example", "e.example", "printer.local", "c.example", "d.example",
		"p9.example", "p3.example", "p7.example", "p1.example", "p8.example", "p2.example", "p6.example", "p4.example", "p5.example",
		"printer.local", "b.example", "e.example", "f.example"}) {
		t.Errorf("row order %q", names)
	}
	if got.rows[0].LatencyNS != 300 || got.rows[0].Answers[0] != "A 192.0.2.1" {
		t.Errorf("paired row %+v", got.rows[0])
	}
	if r := got.rows[2]; r.QType != "AAAA" || !r.Responded || r.Server != responder {
		t.Errorf("multicast row %+v", r)
	}
}

// TestMarshalStateEmpty checks the states of a new Tracker and Stream.
func TestMarshalStateEmpty(t *testing.T) {
	tr := NewTracker(1, nil)
	st, err := tr.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	r, err := RestoreTracker(1, st, nil)
	if err != nil || r.Pending() != 0 || r.Stats() != (Stats{}) {
		t.Fatalf("empty tracker: %v, %d pending, %+v", err, r.Pending(), r.Stats())
	}
	ss, err := NewStream(tr, client6, server).MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	s, err := RestoreStream(r, ss)
	if err != nil || s.client != client6 || s.server != server || len(s.dirs[0].live()) != 0 {
		t.Fatalf("empty stream: %v %+v", err, s)
	}
	if _, err := RestoreStream(nil, ss); err == nil {
		t.Error("RestoreStream without a Tracker accepted")
	}
}

// realTrackerStates returns Tracker states of the DNS captures taken
// along them, each with the payload of the packet that follows.
func realTrackerStates(t testing.TB) (states, next [][]byte) {
	for _, stem := range []string{"ppp-DnsPackets", "gop-test_dns", "ark-dns-udp"} {
		segs := readSegments(t, stem+".pcap")
		tr := NewTracker(5e9, nil)
		for i, s := range segs {
			if i%40 == 3 || len(segs) < 40 && i%3 == 1 {
				st, err := tr.MarshalState()
				if err != nil {
					t.Fatal(err)
				}
				states, next = append(states, st), append(next, s.payload)
			}
			tr.Advance(s.ts)
			tr.Packet(s.ts, "udp", s.src, s.dst, s.payload)
		}
	}
	return states, next
}

// realStreamStates returns Stream states taken inside the resync and
// ark-dns-tcp connections, with the bytes that follow in each direction.
func realStreamStates(t testing.TB) (states, c2s, s2c [][]byte) {
	conns := append(captureStreams(t, "ark-dns-tcp"), resyncEvents(t))
	for _, evs := range conns {
		total := 0
		for _, e := range evs {
			total += len(e.data)
		}
		for off := 1; off < total; off += total/7 + 1 {
			s := NewStream(NewTracker(1e9, nil), client, server)
			pos := 0
			var rest [2][]byte
			for _, e := range evs {
				switch {
				case e.gap > 0:
					if pos < off {
						s.Gap(e.dir, e.ts, e.gap)
					}
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
			states, c2s, s2c = append(states, st), append(c2s, rest[0]), append(s2c, rest[1])
		}
	}
	return states, c2s, s2c
}

// encodeState writes a state as marshal does, with any version.
func encodeState(t testing.TB, version int, v any) []byte {
	var buf bytes.Buffer
	enc := gob.NewEncoder(&buf)
	if err := enc.Encode(version); err != nil {
		t.Fatal(err)
	}
	if v != nil {
		if err := enc.Encode(v); err != nil {
			t.Fatal(err)
		}
	}
	return buf.Bytes()
}

// TestRestoreRejects checks that truncated, extended, foreign and
// out-of-bounds states are refused with ErrBadState, and that every
// single-byte corruption of real states is refused or yields a Tracker or
// Stream that works.
func TestRestoreRejects(t *testing.T) {
	states, next := realTrackerStates(t)
	for i, st := range states {
		for n := range len(st) {
			if _, err := RestoreTracker(1, st[:n], nil); !errors.Is(err, ErrBadState) {
				t.Fatalf("tracker state %d cut to %d of %d bytes: err = %v", i, n, len(st), err)
			}
		}
		if _, err := RestoreTracker(1, append(slices.Clip(st), 0), nil); !errors.Is(err, ErrBadState) {
			t.Fatalf("tracker state %d with a trailing byte: err = %v", i, err)
		}
		for j := range st {
			bad := slices.Clone(st)
			bad[j] ^= []byte{0x01, 0x80, 0xff}[(i+j)%3]
			checkTracker(t, bad, next[i])
		}
	}
	sstates, c2s, s2c := realStreamStates(t)
	for i, st := range sstates {
		for n := range len(st) {
			if _, err := RestoreStream(NewTracker(1, nil), st[:n]); !errors.Is(err, ErrBadState) {
				t.Fatalf("stream state %d cut to %d of %d bytes: err = %v", i, n, len(st), err)
			}
		}
		for j := range st {
			bad := slices.Clone(st)
			bad[j] ^= []byte{0x01, 0x80, 0xff}[(i+j)%3]
			checkStream(t, bad, c2s[i], s2c[i])
		}
	}
	if _, err := RestoreTracker(1, make([]byte, maxTrackerState+1), nil); !errors.Is(err, ErrBadState) {
		t.Errorf("oversized tracker state: err = %v", err)
	}
	if _, err := RestoreStream(NewTracker(1, nil), make([]byte, maxStreamState+1)); !errors.Is(err, ErrBadState) {
		t.Errorf("oversized stream state: err = %v", err)
	}

	pend := pendingSnapshot{TS: 1, Transport: "udp", Client: client, Server: server, ID: 1, Name: "x.example", QType: "A"}
	if _, err := RestoreTracker(1, encodeState(t, stateVersion, &trackerSnapshot{Pending: []pendingSnapshot{pend}}), nil); err != nil {
		t.Fatalf("valid tracker state refused: %v", err)
	}
	tooMany := make([]pendingSnapshot, maxPending+1)
	for i := range tooMany {
		tooMany[i] = pend
	}
	longName := pend
	longName.Name = strings.Repeat("a", maxNameText+1)
	longType := pend
	longType.QType = strings.Repeat("T", maxShortText+1)
	for _, tc := range []struct {
		name  string
		state []byte
	}{
		{"future version", encodeState(t, stateVersion+1, &trackerSnapshot{})},
		{"version only", encodeState(t, stateVersion, nil)},
		{"stream state", encodeState(t, stateVersion, &streamSnapshot{Client: client})},
		{"negative counter", encodeState(t, stateVersion, &trackerSnapshot{Stats: Stats{Paired: -1}})},
		{"too many pending", encodeState(t, stateVersion, &trackerSnapshot{Pending: tooMany})},
		{"long name", encodeState(t, stateVersion, &trackerSnapshot{Pending: []pendingSnapshot{longName}})},
		{"long type", encodeState(t, stateVersion, &trackerSnapshot{Pending: []pendingSnapshot{longType}})},
	} {
		if _, err := RestoreTracker(1, tc.state, nil); !errors.Is(err, ErrBadState) {
			t.Errorf("tracker %s: err = %v, want ErrBadState", tc.name, err)
		}
	}

	half := func(live []byte, resync bool) []byte {
		return encodeState(t, stateVersion, &streamSnapshot{Client: client, Server: server, Dirs: [2]halfSnapshot{{Live: live, Resync: resync}}})
	}
	for _, ok := range [][]byte{half([]byte{0}, false), half([]byte{0, 20, 1, 2}, false), half(make([]byte, maxLive), true)} {
		if _, err := RestoreStream(NewTracker(1, nil), ok); err != nil {
			t.Fatalf("valid stream state refused: %v", err)
		}
	}
	for _, tc := range []struct {
		name  string
		state []byte
	}{
		{"future version", encodeState(t, stateVersion+1, &streamSnapshot{})},
		{"tracker state", encodeState(t, stateVersion, &trackerSnapshot{Pending: []pendingSnapshot{pend}})},
		{"complete message", half([]byte{0, 2, 1, 2}, false)},
		{"more than a message", half([]byte{0, 1, 1, 2}, false)},
		{"too many bytes to resync", half(make([]byte, maxLive+1), true)},
	} {
		if _, err := RestoreStream(NewTracker(1, nil), tc.state); !errors.Is(err, ErrBadState) {
			t.Errorf("stream %s: err = %v, want ErrBadState", tc.name, err)
		}
	}
}

// checkTracker restores a Tracker from state; when that succeeds, it must
// take payload as a query and as a response, marshal again, and flush
// everything it holds.
func checkTracker(t testing.TB, state, payload []byte) {
	rows := 0
	tr, err := RestoreTracker(1e9, state, func(*Query) { rows++ })
	if err != nil {
		if !errors.Is(err, ErrBadState) {
			t.Fatalf("error %v does not wrap ErrBadState", err)
		}
		return
	}
	n := tr.Pending()
	if n > maxPending {
		t.Fatalf("%d pending", n)
	}
	tr.OnAnswer(func(string, netip.Addr) {})
	tr.Packet(1, "udp", client, server, payload)
	tr.Packet(2, "udp", server, client, payload)
	tr.Advance(1 << 40)
	st, err := tr.MarshalState()
	if err != nil {
		t.Fatalf("restored tracker does not marshal: %v", err)
	}
	if _, err := RestoreTracker(1, st, nil); err != nil {
		t.Fatalf("state of a restored tracker refused: %v", err)
	}
	tr.Flush()
	if tr.Pending() != 0 || rows < n {
		t.Fatalf("%d rows for %d pending, %d left", rows, n, tr.Pending())
	}
}

// checkStream restores a Stream from state; when that succeeds, it must
// take more bytes within its bounds, marshal again, and close.
func checkStream(t testing.TB, state, c2s, s2c []byte) {
	tr := NewTracker(1e9, nil)
	s, err := RestoreStream(tr, state)
	if err != nil {
		if !errors.Is(err, ErrBadState) {
			t.Fatalf("error %v does not wrap ErrBadState", err)
		}
		return
	}
	s.Data(tcp.ClientToServer, 1, c2s)
	s.Data(tcp.ServerToClient, 2, s2c)
	for d := range s.dirs {
		if len(s.dirs[d].live()) > maxLive {
			t.Fatalf("direction %d holds %d bytes", d, len(s.dirs[d].live()))
		}
	}
	st, err := s.MarshalState()
	if err != nil {
		t.Fatalf("restored stream does not marshal: %v", err)
	}
	if _, err := RestoreStream(tr, st); err != nil {
		t.Fatalf("state of a restored stream refused: %v", err)
	}
	s.Close(3)
	tr.Flush()
}
