package tlsparse

import (
	"reflect"
	"testing"
	"unicode/utf8"

	"github.com/flowlake/flowlake/internal/tcp"
)

// The seed corpus in testdata/fuzz is made from the captures; see
// testdata/fuzz/README.md.

// FuzzStream feeds a client and a server byte stream to a Stream, whole
// and in chunks of 1..64 bytes: both must emit the same single Hello (none
// for no bytes), within bounds. A third run with a gap checks robustness.
func FuzzStream(f *testing.F) {
	f.Add([]byte{}, []byte{}, byte(0))
	f.Fuzz(func(t *testing.T, c2s, s2c []byte, chunk byte) {
		whole := run(c2s, s2c, 0)
		split := run(c2s, s2c, int(chunk%64)+1)
		if !reflect.DeepEqual(whole, split) {
			t.Fatalf("chunking changed the result:\nwhole %+v\nsplit %+v", whole, split)
		}
		want := 1
		if len(c2s)+len(s2c) == 0 {
			want = 0
		}
		if len(whole) != want {
			t.Fatalf("%d Hellos", len(whole))
		}
		for _, h := range whole {
			if h.ClientRandom != nil && len(h.ClientRandom) != 32 {
				t.Fatalf("random of %d bytes", len(h.ClientRandom))
			}
			if !h.SawClientHello && (h.ClientRandom != nil || h.SNI != "" || h.ClientTS != 0) {
				t.Fatalf("ClientHello fields without a ClientHello: %+v", h)
			}
			if len(h.SNI) > maxNameLen || !utf8.ValidString(h.SNI) || len(h.ALPN) > maxNameLen || !utf8.ValidString(h.ALPN) {
				t.Fatalf("bad names %q %q", h.SNI, h.ALPN)
			}
			if len(h.CipherSuitesOffered) > maxListLen || len(h.OfferedVersions) > maxListLen || len(h.ALPNOffered) > maxListLen {
				t.Fatal("unbounded lists")
			}
			if h.Error == "" && !(h.SawClientHello && h.SawServerHello) {
				t.Fatalf("incomplete handshake without error: %+v", h)
			}
		}

		n := 0
		s := NewStream(func(*Hello) { n++ })
		half := len(c2s) / 2
		s.Data(tcp.ClientToServer, 1, c2s[:half])
		s.Gap(tcp.ServerToClient, 2, 1)
		s.Data(tcp.ServerToClient, 3, s2c)
		s.Data(tcp.ClientToServer, 4, c2s[half:])
		for d := range s.dirs {
			if s.dirs[d].records.Buffered() > 5+MaxRecordLen || s.dirs[d].handshake.Buffered() > DefaultMaxHandshake {
				t.Fatal("buffers over their bounds")
			}
		}
		s.Close(5)
		if n != 1 {
			t.Fatalf("%d Hellos with a gap", n)
		}
	})
}

// FuzzRestoreStream restores arbitrary state, seeded with states of real
// connections taken inside and after their handshakes: it must be refused
// with ErrBadState or give a Stream that continues with the given bytes
// within its bounds, emits at most one Hello and marshals again.
func FuzzRestoreStream(f *testing.F) {
	states, c2s, s2c := realStates(f)
	for i := range states {
		f.Add(states[i], c2s[i], s2c[i])
	}
	f.Fuzz(func(t *testing.T, state, c2s, s2c []byte) {
		checkRestored(t, state, c2s, s2c)
	})
}
