package dns

import (
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/flowlake/flowlake/internal/tcp"
)

// The seed corpora in testdata/fuzz are made from the captures; see
// testdata/fuzz/README.md.

func FuzzParse(f *testing.F) {
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := Parse(b)
		if len(m.Answers) > MaxAnswers {
			t.Fatalf("%d answers", len(m.Answers))
		}
		for _, a := range m.Answers {
			if len(a) > maxAnswerLen || !utf8.ValidString(a) {
				t.Fatalf("bad answer %q", a)
			}
		}
		if !utf8.ValidString(m.Name) || len(m.Name) > 4*255 {
			t.Fatalf("bad name %q", m.Name)
		}
		if err == nil && len(b) < headerLen {
			t.Fatal("short message accepted")
		}
		if Looks(b) && (len(b) < headerLen || b[4] != 0 || b[5] != 1) {
			t.Fatal("Looks accepted a message without exactly one question")
		}
		// One message, then Flush, always yields exactly one row.
		rows := 0
		tr := NewTracker(1, func(q *Query) {
			rows++
			if (q.Error != "") != (err != nil) {
				t.Fatalf("row error %q for parse error %v", q.Error, err)
			}
		})
		tr.Packet(1, "udp", client, server, b)
		tr.Flush()
		if rows != 1 {
			t.Fatalf("%d rows", rows)
		}
	})
}

// FuzzStream feeds two byte streams as one TCP connection, once whole and
// once in chunks of 1..64 bytes: the rows must be the same. A third run
// puts a gap into the client stream and checks only robustness and bounds.
func FuzzStream(f *testing.F) {
	f.Add([]byte{}, []byte{}, byte(0), uint16(0))
	f.Fuzz(func(t *testing.T, c2s, s2c []byte, chunk byte, gapAt uint16) {
		whole := runStream(c2s, s2c, 0, -1)
		split := runStream(c2s, s2c, int(chunk%64)+1, -1)
		if !reflect.DeepEqual(whole, split) {
			t.Fatalf("chunking changed the rows:\nwhole %+v\nsplit %+v", whole, split)
		}
		runStream(c2s, s2c, int(chunk%64)+1, int(gapAt))
	})
}

// runStream feeds c2s then s2c to a Stream in chunks of n bytes (n 0: in
// one call), with a 3-byte gap before offset gapAt of c2s when gapAt >= 0,
// and returns the rows.
func runStream(c2s, s2c []byte, n, gapAt int) []Query {
	var c collector
	tr := NewTracker(1e9, c.emit)
	s := NewStream(tr, client, server)
	feed := func(dir tcp.Dir, b []byte) {
		if n == 0 {
			s.Data(dir, 1, b)
			return
		}
		for off := 0; off < len(b); off += n {
			if dir == tcp.ClientToServer && gapAt >= off && gapAt < min(off+n, len(b)) {
				s.Data(dir, 1, b[off:gapAt])
				s.Gap(dir, 1, 3)
				s.Data(dir, 1, b[gapAt:min(off+n, len(b))])
				continue
			}
			s.Data(dir, 1, b[off:min(off+n, len(b))])
		}
		for d := range s.dirs {
			// At most one message is live; consumed bytes are dropped
			// once they outweigh it.
			if h := &s.dirs[d]; len(h.live()) > 2+65535 || len(h.buf) > 2*(2+65535)+max(n, len(b)) {
				panic("stream buffer unbounded")
			}
		}
	}
	feed(tcp.ClientToServer, c2s)
	feed(tcp.ServerToClient, s2c)
	s.Close(2)
	tr.Flush()
	return c.rows
}

// FuzzRestoreTracker restores arbitrary Tracker state, seeded with states
// taken along the DNS captures: it must be refused with ErrBadState or give
// a Tracker that takes a packet, marshals again and flushes what it holds.
func FuzzRestoreTracker(f *testing.F) {
	states, next := realTrackerStates(f)
	for i := range states {
		f.Add(states[i], next[i])
	}
	f.Fuzz(func(t *testing.T, state, payload []byte) {
		checkTracker(t, state, payload)
	})
}

// FuzzRestoreStream restores arbitrary Stream state, seeded with states
// taken inside DNS-over-TCP connections: it must be refused with
// ErrBadState or give a Stream that continues with the given bytes within
// its bounds and marshals again.
func FuzzRestoreStream(f *testing.F) {
	states, c2s, s2c := realStreamStates(f)
	for i := range states {
		f.Add(states[i], c2s[i], s2c[i])
	}
	f.Fuzz(func(t *testing.T, state, c2s, s2c []byte) {
		checkStream(t, state, c2s, s2c)
	})
}
