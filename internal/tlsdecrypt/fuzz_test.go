package tlsdecrypt

import (
	"bytes"
	"encoding/binary"
	"errors"
	"net/netip"
	"testing"

	"github.com/flowlake/flowlake/internal/keylog"
	"github.com/flowlake/flowlake/internal/tcp"
	"github.com/flowlake/flowlake/internal/testcap"
	"github.com/flowlake/flowlake/internal/tlsparse"
)

// The seed corpora are real sessions of the shared captures that come
// with key logs (TLS 1.0–1.3; AES-CBC with and without encrypt-then-MAC,
// AES-GCM, RC4; an RSA key exchange with the extended master secret whose
// key log gives only an "RSA" premaster line), encoded as chunk streams:
// each chunk is a direction byte (0 client, 1 server, 2 and 3 a gap in
// that direction), a big-endian 16-bit length and, for data, the bytes.
// conn picks the capture's connection (0: the first whose SYN was
// captured).
var seedCaptures = []struct {
	capture, keylog string
	conn            int
}{
	{"itls12-capture.pcap", "itls12-capture.keylog", 0},
	{"itls13-capture.pcap", "itls13-capture.keylog", 0},
	{"snet-TLS1_2_ECDHE-RSA-AES128-GCM-SHA256.pcap", "snet-TLS1_2_ECDHE-RSA-AES128-GCM-SHA256.keylog", 0},
	{"snet-TLS1_2_ECDHE-RSA-AES128-SHA256.pcap", "snet-TLS1_2_ECDHE-RSA-AES128-SHA256.keylog", 0},
	{"pcapfs-system-tests.pcapng", "pcapfs-system-tests.keylog", 0},
	{"zeek-tls12-decryption.pcap", "zeek-tls12-decryption.keylog", 0},
	{"pcapfs-feature_test.pcap", "pcapfs-feature_test.keylog", 2},
}

// seedSessions returns the encoded chosen TLS connection of every seed
// capture and one key log holding all their secrets.
func seedSessions(f testing.TB) ([][]byte, *keylog.Log) {
	keys := keylog.New()
	var out [][]byte
	for _, sc := range seedCaptures {
		if err := keys.ReadFile(testcap.Path(f, sc.keylog)); err != nil {
			f.Fatal(err)
		}
		var client, server netip.AddrPort
		var next [2]uint32
		var started [2]bool
		var enc []byte
		syns := 0
		for _, p := range testcap.Packets(f, sc.capture) {
			if !p.TCP {
				continue
			}
			if !client.IsValid() {
				// The conn-th connection whose opening SYN was captured.
				if !p.SYN || p.ACK {
					continue
				}
				if syns++; syns <= sc.conn {
					continue
				}
				client, server = p.Src, p.Dst
			}
			dir := -1
			switch {
			case p.Src == client && p.Dst == server:
				dir = 0
			case p.Src == server && p.Dst == client:
				dir = 1
			}
			if dir < 0 || len(p.Payload) == 0 {
				continue
			}
			if started[dir] && int32(p.Seq-next[dir]) < 0 {
				continue // a retransmission
			}
			started[dir], next[dir] = true, p.Seq+uint32(len(p.Payload))
			for b := p.Payload; len(b) > 0; {
				n := min(len(b), 0xffff)
				enc = append(enc, byte(dir), byte(n>>8), byte(n))
				enc = append(enc, b[:n]...)
				b = b[n:]
			}
		}
		out = append(out, enc)
	}
	return out, keys
}

// play decodes a chunk stream into calls on a Conn; with checkpoint set
// the Conn is marshalled and restored after every chunk. It returns what
// was emitted and the plaintext. The Conn gets a copy of keys, as an
// engine does (it adds the master secrets it derives from RSA lines).
func play(t *testing.T, keys *keylog.Log, stream []byte, checkpoint bool) (emits []Outcome, plain *plainRecorder) {
	own := keylog.New()
	own.Merge(keys)
	keys = own
	plain = &plainRecorder{}
	asked := false
	cfg := Config{
		Keys:  keys,
		Emit:  func(_ *tlsparse.Hello, o *Outcome) { emits = append(emits, *o) },
		Plain: func(string) tcp.StreamHandler { asked = true; return plain },
	}
	c := NewConn(cfg)
	for ts := int64(1); len(stream) >= 3; ts++ {
		kind, n := stream[0]%4, int(binary.BigEndian.Uint16(stream[1:3]))
		stream = stream[3:]
		dir := tcp.Dir(kind % 2)
		if kind >= 2 {
			c.Gap(dir, ts, n+1)
		} else {
			n = min(n, len(stream))
			c.Data(dir, ts, stream[:n])
			stream = stream[n:]
		}
		for i := range c.dirs {
			d := &c.dirs[i]
			if d.rr.Buffered() > 5+tlsparse.MaxRecordLen || d.hs.Buffered() > tlsparse.DefaultMaxHandshake || d.heldN > maxHeld {
				t.Fatal("buffers over their bounds")
			}
		}
		if checkpoint {
			st, err := c.MarshalState()
			if err != nil {
				t.Fatal(err)
			}
			var p tcp.StreamHandler
			if asked && !c.plainDone {
				p = plain
			}
			if c, err = Restore(cfg, st, p); err != nil {
				t.Fatalf("restore: %v", err)
			}
		}
	}
	c.Close(1 << 40)
	return emits, plain
}

// The seeds are sessions that decrypt, so that fuzzing starts deep in
// the record layer.
func TestSeedSessionsDecrypt(t *testing.T) {
	seeds, keys := seedSessions(t)
	for i, s := range seeds {
		emits, plain := play(t, keys, s, i%2 == 0)
		if len(emits) != 1 || emits[0].KeyStatus != StatusDecrypted || len(plain.data[0])+len(plain.data[1]) == 0 {
			t.Errorf("%s: %+v, plaintext %d/%d bytes", seedCaptures[i].capture, emits, len(plain.data[0]), len(plain.data[1]))
		}
	}
}

// FuzzConn feeds chunk streams (seeded with real sessions and their keys)
// to a Conn, once straight and once through a checkpoint after every
// chunk: nothing may panic or exceed its bounds, at most one outcome is
// emitted, and the checkpoints change nothing.
func FuzzConn(f *testing.F) {
	seeds, keys := seedSessions(f)
	for _, s := range seeds {
		f.Add(s)
		if len(s) > 600 {
			// The same session with a gap in the server's bytes.
			g := append(append(bytes.Clone(s[:600]), 3, 0, 100), s[600:]...)
			f.Add(g)
		}
	}
	f.Fuzz(func(t *testing.T, stream []byte) {
		emits, plain := play(t, keys, stream, false)
		if len(emits) > 1 {
			t.Fatalf("%d outcomes emitted", len(emits))
		}
		emits2, plain2 := play(t, keys, stream, true)
		if len(emits) != len(emits2) || len(emits) == 1 && emits[0] != emits2[0] ||
			!bytes.Equal(plain.data[0], plain2.data[0]) || !bytes.Equal(plain.data[1], plain2.data[1]) || plain.gaps != plain2.gaps {
			t.Fatalf("checkpoints changed the result: %+v vs %+v", emits, emits2)
		}
	})
}

// FuzzRestore restores arbitrary state, seeded with states of the seed
// sessions taken along the way: it is refused with ErrBadState, or gives a
// Conn that takes more bytes and closes without panicking.
func FuzzRestore(f *testing.F) {
	seeds, keys := seedSessions(f)
	for _, s := range seeds {
		c := NewConn(Config{Keys: keys, Plain: func(string) tcp.StreamHandler { return &plainRecorder{} }})
		for len(s) >= 3 {
			n := min(int(binary.BigEndian.Uint16(s[1:3])), len(s)-3)
			c.Data(tcp.Dir(s[0]%2), 1, s[3:3+n])
			s = s[3+n:]
			st, err := c.MarshalState()
			if err != nil {
				f.Fatal(err)
			}
			f.Add(st, s[:min(len(s), 200)])
		}
	}
	f.Fuzz(func(t *testing.T, state, more []byte) {
		c, err := Restore(Config{Keys: keys}, state, &plainRecorder{})
		if err != nil {
			if !errors.Is(err, ErrBadState) {
				t.Fatalf("error %v does not wrap ErrBadState", err)
			}
			return
		}
		c.Data(tcp.ClientToServer, 1, more)
		c.Data(tcp.ServerToClient, 2, more)
		c.Gap(tcp.ServerToClient, 3, 10)
		if _, err := c.MarshalState(); err != nil {
			t.Fatal(err)
		}
		c.Close(4)
	})
}

// FuzzRecord opens arbitrary records with every suite, version and MAC
// order: never a panic, and the sequence number moves only on success.
func FuzzRecord(f *testing.F) {
	var ids []uint16
	for id := range suites {
		ids = append(ids, id)
	}
	f.Add(uint16(0), byte(3), false, byte(23), []byte{})
	f.Add(uint16(1), byte(1), true, byte(22), bytes.Repeat([]byte{15}, 64))
	f.Add(uint16(2), byte(4), false, byte(23), bytes.Repeat([]byte{0}, 40))
	f.Fuzz(func(t *testing.T, pick uint16, minor byte, etm bool, typ byte, frag []byte) {
		s := suites[ids[int(pick)%len(ids)]]
		version := uint16(0x0301 + uint16(minor%3))
		if s.tls13 {
			version = 0x0304
		}
		var km keyMaterial
		if s.tls13 {
			var err error
			if km, err = trafficKeys13(&s, bytes.Repeat([]byte{7}, s.prfHash()().Size())); err != nil {
				t.Fatal(err)
			}
		} else {
			client, _ := keyBlock12(&s, version, bytes.Repeat([]byte{7}, 48), make([]byte, 32), make([]byte, 32))
			km = client
		}
		rc, err := newRecordCipher(&s, version, etm, km)
		if err != nil {
			t.Fatal(err)
		}
		dst := make([]byte, len(frag)+64)
		_, _, err = rc.open(dst, typ, 0x0303, frag)
		if (err == nil) != (rc.seq == 1) {
			t.Fatalf("sequence number %d after %v", rc.seq, err)
		}
	})
}
