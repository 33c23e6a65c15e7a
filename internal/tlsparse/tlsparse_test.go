package tlsparse

import (
	"bytes"
	"crypto/tls"
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/flowlake/flowlake/internal/tcp"
	"golang.org/x/crypto/cryptobyte"
)

// chOpts describes a ClientHello to build.
type chOpts struct {
	version   uint16
	random    byte // every byte of the random
	sessionID []byte
	suites    []uint16
	sni       string
	alpn      []string
	versions  []uint16 // supported_versions; nil: no extension
	noExts    bool
}

func buildClientHello(t testing.TB, o chOpts) []byte {
	t.Helper()
	var b cryptobyte.Builder
	b.AddUint8(HandshakeClientHello)
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddUint16(o.version)
		b.AddBytes(bytes.Repeat([]byte{o.random}, 32))
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(o.sessionID) })
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			for _, s := range o.suites {
				b.AddUint16(s)
			}
		})
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddUint8(0) })
		if o.noExts {
			return
		}
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			b.AddUint16(0x0a0a) // a GREASE extension
			b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {})
			if o.sni != "" {
				b.AddUint16(extServerName)
				b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
					b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
						b.AddUint8(0)
						b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(o.sni)) })
					})
				})
			}
			if o.alpn != nil {
				b.AddUint16(extALPN)
				b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
					b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
						for _, p := range o.alpn {
							b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(p)) })
						}
					})
				})
			}
			if o.versions != nil {
				b.AddUint16(extSupportedVersions)
				b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
					b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) {
						for _, v := range o.versions {
							b.AddUint16(v)
						}
					})
				})
			}
		})
	})
	return b.BytesOrPanic()
}

// shOpts describes a ServerHello to build.
type shOpts struct {
	version   uint16
	random    []byte // nil: 32 bytes of 0x55
	sessionID []byte
	suite     uint16
	alpn      string
	selected  uint16 // supported_versions; 0: no extension
	psk       bool
	ems       bool // extended_master_secret
}

func buildServerHello(t testing.TB, o shOpts) []byte {
	t.Helper()
	if o.random == nil {
		o.random = bytes.Repeat([]byte{0x55}, 32)
	}
	var b cryptobyte.Builder
	b.AddUint8(HandshakeServerHello)
	b.AddUint24LengthPrefixed(func(b *cryptobyte.Builder) {
		b.AddUint16(o.version)
		b.AddBytes(o.random)
		b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes(o.sessionID) })
		b.AddUint16(o.suite)
		b.AddUint8(0)
		b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
			if o.alpn != "" {
				b.AddUint16(extALPN)
				b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
					b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) {
						b.AddUint8LengthPrefixed(func(b *cryptobyte.Builder) { b.AddBytes([]byte(o.alpn)) })
					})
				})
			}
			if o.selected != 0 {
				b.AddUint16(extSupportedVersions)
				b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddUint16(o.selected) })
			}
			if o.psk {
				b.AddUint16(extPreSharedKey)
				b.AddUint16LengthPrefixed(func(b *cryptobyte.Builder) { b.AddUint16(0) })
			}
			if o.ems {
				b.AddUint16(extExtendedMaster)
				b.AddUint16(0)
			}
		})
	})
	return b.BytesOrPanic()
}

// record wraps payload in records of type typ, at most max bytes each.
func record(typ uint8, payload []byte, max int) []byte {
	var out []byte
	for first := true; first || len(payload) > 0; first = false {
		n := min(len(payload), max)
		out = append(out, typ, 3, 3, byte(n>>8), byte(n))
		out = append(out, payload[:n]...)
		payload = payload[n:]
	}
	return out
}

// run feeds c2s then s2c to a new Stream in chunks of n bytes (0: whole),
// closes it and returns the emitted Hellos.
func run(c2s, s2c []byte, n int) []*Hello {
	var got []*Hello
	s := NewStream(func(h *Hello) { got = append(got, h) })
	feed := func(dir tcp.Dir, b []byte, ts int64) {
		if n == 0 {
			s.Data(dir, ts, b)
			return
		}
		for off := 0; off < len(b); off += n {
			s.Data(dir, ts, b[off:min(off+n, len(b))])
		}
	}
	feed(tcp.ClientToServer, c2s, 100)
	feed(tcp.ServerToClient, s2c, 200)
	s.Close(300)
	return got
}

func TestStreamTLS12(t *testing.T) {
	ch := buildClientHello(t, chOpts{version: 0x0303, random: 0xab, sessionID: []byte{1, 2, 3},
		suites: []uint16{0x2a2a, 0xc02f, 0x009c, 0x00ff}, sni: "Example.COM", alpn: []string{"h2", "http/1.1"}})
	sh := buildServerHello(t, shOpts{version: 0x0303, sessionID: []byte{9, 9}, suite: 0xc02f, alpn: "h2", ems: true})
	cert := append([]byte{11, 0, 0, 3}, 0, 0, 0)
	// The client's hello split over two records; the server's hello and a
	// certificate in one record, followed by application data.
	c2s := append(record(RecordHandshake, ch, 20), record(RecordApplicationData, []byte("x"), 10)...)
	s2c := append(record(RecordHandshake, append(sh, cert...), 1<<14), record(RecordApplicationData, []byte("y"), 10)...)
	want := &Hello{
		ClientRandom:         bytes.Repeat([]byte{0xab}, 32),
		SNI:                  "Example.COM",
		ALPNOffered:          []string{"h2", "http/1.1"},
		OfferedVersions:      []uint16{0x0303},
		CipherSuitesOffered:  []uint16{0xc02f, 0x009c, 0x00ff},
		ServerRandom:         bytes.Repeat([]byte{0x55}, 32),
		ServerVersion:        0x0303,
		CipherSuite:          0xc02f,
		ALPN:                 "h2",
		ExtendedMasterSecret: true,
		SawClientHello:       true,
		SawServerHello:       true,
		ClientTS:             100,
		ServerTS:             200,
	}
	for _, n := range []int{0, 1, 2, 3, 5, 7, 64} {
		got := run(c2s, s2c, n)
		if len(got) != 1 || !reflect.DeepEqual(got[0], want) {
			t.Errorf("chunk %d:\n got %+v\nwant %+v", n, got, want)
		}
	}
}

func TestStreamOddNames(t *testing.T) {
	long := strings.Repeat("x", 300)
	ch := record(RecordHandshake, buildClientHello(t, chOpts{version: 0x0303, suites: []uint16{0xc02f},
		sni: long, alpn: []string{"bad\xffname"}}), 1<<14)
	sh := record(RecordHandshake, buildServerHello(t, shOpts{version: 0x0303, suite: 0xc02f, alpn: "bad\xffname"}), 1<<14)
	h := run(ch, sh, 0)[0]
	if h.SNI != long[:maxNameLen] || h.ALPNOffered[0] != "bad\uFFFDname" || h.ALPN != "bad\uFFFDname" || h.Error != "" {
		t.Errorf("hello = %+v", h)
	}
}

func TestStreamResumption(t *testing.T) {
	sid := bytes.Repeat([]byte{7}, 32)
	ch := record(RecordHandshake, buildClientHello(t, chOpts{version: 0x0303, sessionID: sid, suites: []uint16{0xc02f}}), 1<<14)
	// TLS 1.2: the server echoes the session ID.
	got := run(ch, record(RecordHandshake, buildServerHello(t, shOpts{version: 0x0303, sessionID: sid, suite: 0xc02f}), 1<<14), 0)
	if !got[0].SessionResumed {
		t.Error("echoed session ID not seen as resumption")
	}
	// TLS 1.3 echoes the session ID always: only a PSK means resumption.
	ch13 := record(RecordHandshake, buildClientHello(t, chOpts{version: 0x0303, sessionID: sid, suites: []uint16{0x1301},
		versions: []uint16{0x3a3a, 0x0304, 0x0303}}), 1<<14)
	got = run(ch13, record(RecordHandshake, buildServerHello(t, shOpts{version: 0x0303, sessionID: sid, suite: 0x1301, selected: 0x0304}), 1<<14), 0)
	if h := got[0]; h.SessionResumed || h.ServerVersion != 0x0304 || !slices.Equal(h.OfferedVersions, []uint16{0x0304, 0x0303}) {
		t.Errorf("TLS 1.3 full handshake: %+v", h)
	}
	got = run(ch13, record(RecordHandshake, buildServerHello(t, shOpts{version: 0x0303, sessionID: sid, suite: 0x1301, selected: 0x0304, psk: true}), 1<<14), 0)
	if !got[0].SessionResumed {
		t.Error("PSK not seen as resumption")
	}
}

func TestStreamHelloRetryRequest(t *testing.T) {
	ch := buildClientHello(t, chOpts{version: 0x0303, random: 1, suites: []uint16{0x1301}, versions: []uint16{0x0304}, sni: "a.example"})
	ch2 := buildClientHello(t, chOpts{version: 0x0303, random: 1, suites: []uint16{0x1301}, versions: []uint16{0x0304}, sni: "a.example"})
	hrr := buildServerHello(t, shOpts{version: 0x0303, random: helloRetryRandom, suite: 0x1301, selected: 0x0304})
	sh := buildServerHello(t, shOpts{version: 0x0303, suite: 0x1302, selected: 0x0304})
	c2s := append(record(RecordHandshake, ch, 1<<14), record(RecordChangeCipherSpec, []byte{1}, 1)...)
	c2s = append(c2s, record(RecordHandshake, ch2, 1<<14)...)
	s2c := append(record(RecordHandshake, hrr, 1<<14), record(RecordChangeCipherSpec, []byte{1}, 1)...)
	s2c = append(s2c, record(RecordHandshake, sh, 1<<14)...)
	s2c = append(s2c, record(RecordApplicationData, []byte("encrypted extensions"), 100)...)

	var got []*Hello
	s := NewStream(func(h *Hello) { got = append(got, h) })
	s.Data(tcp.ClientToServer, 1, c2s)
	s.Data(tcp.ServerToClient, 2, s2c[:len(hrr)+5+6]) // the HRR and the CCS
	if len(got) != 0 {
		t.Fatalf("emitted on the HelloRetryRequest: %+v", got[0])
	}
	s.Data(tcp.ServerToClient, 3, s2c[len(hrr)+5+6:])
	if len(got) != 1 {
		t.Fatalf("%d Hellos", len(got))
	}
	if h := got[0]; !h.SawServerHello || h.CipherSuite != 0x1302 || h.ServerTS != 3 || h.Error != "" {
		t.Errorf("hello = %+v", h)
	}
	s.Close(4)
	if len(got) != 1 {
		t.Error("Close emitted again")
	}
}

func TestStreamErrors(t *testing.T) {
	ch := record(RecordHandshake, buildClientHello(t, chOpts{version: 0x0301, random: 3, suites: []uint16{0x002f}, noExts: true}), 1<<14)
	sh := record(RecordHandshake, buildServerHello(t, shOpts{version: 0x0301, suite: 0x002f}), 1<<14)
	huge := append([]byte{RecordHandshake, 3, 1, 0x40, 0}, HandshakeClientHello, 0x01, 0x11, 0x70) // declares 70000 bytes
	huge = append(huge, make([]byte, 0x4000-4)...)
	cases := []struct {
		name     string
		feed     func(s *Stream)
		err      string
		sawCH    bool
		sawSH    bool
		versions []uint16
	}{
		{name: "no extensions is fine", feed: func(s *Stream) {
			s.Data(0, 1, ch)
			s.Data(1, 2, sh)
		}, err: "", sawCH: true, sawSH: true, versions: []uint16{0x0301}},
		{name: "closed before ServerHello", feed: func(s *Stream) { s.Data(0, 1, ch) },
			err: "connection closed before ServerHello", sawCH: true, versions: []uint16{0x0301}},
		{name: "closed before anything", feed: func(s *Stream) { s.Data(0, 1, ch[:3]) },
			err: "connection closed before ClientHello and ServerHello"},
		{name: "gap before ClientHello", feed: func(s *Stream) { s.Gap(0, 1, 10); s.Data(0, 2, ch) },
			err: "c2s: gap of 10 bytes before ClientHello"},
		{name: "gap after ClientHello is harmless", feed: func(s *Stream) {
			s.Data(0, 1, ch)
			s.Gap(0, 2, 10)
			s.Data(1, 3, sh)
		}, sawCH: true, sawSH: true, versions: []uint16{0x0301}},
		{name: "gap before ServerHello", feed: func(s *Stream) { s.Data(0, 1, ch); s.Gap(1, 2, 5) },
			err: "s2c: gap of 5 bytes before ServerHello", sawCH: true, versions: []uint16{0x0301}},
		{name: "alert", feed: func(s *Stream) { s.Data(0, 1, ch); s.Data(1, 2, record(RecordAlert, []byte{2, 40}, 2)) },
			err: "s2c: alert fatal handshake_failure before ServerHello", sawCH: true, versions: []uint16{0x0301}},
		{name: "HTTP", feed: func(s *Stream) { s.Data(0, 1, []byte("GET / HTTP/1.1\r\n\r\n")) },
			err: "c2s: not a TLS record"},
		{name: "SSLv2 ClientHello", feed: func(s *Stream) {
			s.Data(0, 1, []byte{0x80, 0x2e, 0x01, 0x03, 0x01, 0x00, 0x15, 0x00, 0x00, 0x00, 0x10})
		}, err: "c2s: SSLv2-compatible ClientHello"},
		{name: "record too large", feed: func(s *Stream) { s.Data(0, 1, []byte{RecordHandshake, 3, 3, 0x50, 0x01}) },
			err: "c2s: TLS record too large"},
		{name: "handshake too large", feed: func(s *Stream) { s.Data(0, 1, huge) },
			err: "c2s: handshake too large"},
		{name: "application data first", feed: func(s *Stream) { s.Data(0, 1, record(RecordApplicationData, []byte{1}, 1)) },
			err: "c2s: application data before ClientHello"},
		{name: "wrong message first", feed: func(s *Stream) { s.Data(0, 1, record(RecordHandshake, []byte{11, 0, 0, 0}, 10)) },
			err: "c2s: handshake message 11 before ClientHello"},
		{name: "malformed ClientHello", feed: func(s *Stream) {
			s.Data(0, 1, record(RecordHandshake, []byte{1, 0, 0, 3, 3, 3, 0}, 10))
		}, err: "c2s: malformed ClientHello", sawCH: true},
	}
	for _, c := range cases {
		var got []*Hello
		s := NewStream(func(h *Hello) { got = append(got, h) })
		c.feed(s)
		s.Close(9)
		if len(got) != 1 {
			t.Errorf("%s: %d Hellos", c.name, len(got))
			continue
		}
		h := got[0]
		if h.Error != c.err || h.SawClientHello != c.sawCH || h.SawServerHello != c.sawSH || !slices.Equal(h.OfferedVersions, c.versions) {
			t.Errorf("%s: got Error %q CH %v SH %v versions %v", c.name, h.Error, h.SawClientHello, h.SawServerHello, h.OfferedVersions)
		}
	}
	// No bytes at all: nothing to report.
	n := 0
	s := NewStream(func(*Hello) { n++ })
	s.Close(1)
	if n != 0 {
		t.Error("emitted for an empty connection")
	}
}

func TestStreamIgnoresRestCheaply(t *testing.T) {
	ch := record(RecordHandshake, buildClientHello(t, chOpts{version: 0x0303, suites: []uint16{0xc02f}}), 1<<14)
	sh := record(RecordHandshake, buildServerHello(t, shOpts{version: 0x0303, suite: 0xc02f}), 1<<14)
	n := 0
	s := NewStream(func(*Hello) { n++ })
	s.Data(0, 1, ch)
	s.Data(1, 2, sh)
	data := make([]byte, 1400)
	if a := testing.AllocsPerRun(100, func() {
		s.Data(0, 3, data)
		s.Data(1, 3, data)
		s.Gap(0, 3, 10)
	}); a != 0 || n != 1 {
		t.Errorf("%v allocations per call after the handshake, %d emits", a, n)
	}
}

func TestRecordReader(t *testing.T) {
	stream := append(record(RecordHandshake, []byte("hello"), 2), record(RecordApplicationData, []byte("0123456789"), 100)...)
	for n := 1; n <= len(stream); n++ {
		var r RecordReader
		var got []string
		for off := 0; off < len(stream); off += n {
			if err := r.Feed(stream[off:min(off+n, len(stream))], func(rec Record) error {
				got = append(got, string([]byte{rec.Type + '0' - 20})+":"+string(rec.Fragment))
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		if want := []string{"2:he", "2:ll", "2:o", "3:0123456789"}; !slices.Equal(got, want) || r.Buffered() != 0 {
			t.Errorf("chunk %d: %q (buffered %d)", n, got, r.Buffered())
		}
	}
	// A callback error stops the reader for good.
	var r RecordReader
	stop := errors.New("stop")
	if err := r.Feed(stream, func(Record) error { return stop }); err != stop || r.Feed(stream, nil) != stop || r.Err() != stop {
		t.Error("callback error not sticky")
	}
}

func TestHandshakeReader(t *testing.T) {
	msgs := append([]byte{1, 0, 0, 2, 'a', 'b'}, 2, 0, 0, 0, 11, 0, 0, 3, 'x', 'y', 'z')
	for n := 1; n <= len(msgs); n++ {
		var h HandshakeReader
		var got []string
		for off := 0; off < len(msgs); off += n {
			if err := h.Feed(msgs[off:min(off+n, len(msgs))], func(typ uint8, body []byte) error {
				got = append(got, string(rune('0'+typ))+string(body))
				return nil
			}); err != nil {
				t.Fatal(err)
			}
		}
		if want := []string{"1ab", "2", ";xyz"}; !slices.Equal(got, want) || h.Buffered() != 0 {
			t.Errorf("chunk %d: %q", n, got)
		}
	}
	h := HandshakeReader{Max: 8}
	if err := h.Feed([]byte{1, 0, 0, 5}, func(uint8, []byte) error { return nil }); !errors.Is(err, ErrHandshakeTooLarge) {
		t.Errorf("bound not enforced: %v", err)
	}
}

func TestVersionName(t *testing.T) {
	for v, want := range map[uint16]string{0x0300: "SSL 3.0", 0x0301: "TLS 1.0", 0x0302: "TLS 1.1", 0x0303: "TLS 1.2",
		0x0304: "TLS 1.3", 0x7f1c: "0x7f1c", 0xfb1a: "0xfb1a", 0x0a0a: "0x0a0a"} {
		if got := VersionName(v); got != want {
			t.Errorf("VersionName(%#x) = %q, want %q", v, got, want)
		}
	}
}

func TestCipherName(t *testing.T) {
	for id, want := range map[uint16]string{
		0x1301: "TLS_AES_128_GCM_SHA256",
		0x1303: "TLS_CHACHA20_POLY1305_SHA256",
		0xc02f: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
		0xcca9: "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256",
		0x009f: "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384",
		0xc028: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384",
		0x00ff: "TLS_EMPTY_RENEGOTIATION_INFO_SCSV",
		0x1304: "TLS_AES_128_CCM_SHA256",
		0xbeef: "0xbeef",
	} {
		if got := CipherName(id); got != want {
			t.Errorf("CipherName(%#x) = %q, want %q", id, got, want)
		}
	}
	// The table only adds what crypto/tls does not know.
	for id, name := range cipherNames {
		if s := tls.CipherSuiteName(id); !strings.HasPrefix(s, "0x") {
			t.Errorf("%#x: table says %q, crypto/tls already says %q", id, name, s)
		}
		if !strings.HasPrefix(name, "TLS_") {
			t.Errorf("%#x: odd name %q", id, name)
		}
	}
}

func TestLooks(t *testing.T) {
	ch := record(RecordHandshake, buildClientHello(t, chOpts{version: 0x0303, suites: []uint16{0xc02f}}), 1<<14)
	for _, c := range []struct {
		b    []byte
		want bool
	}{
		{ch, true},
		{ch[:3], true},
		{[]byte{0x16, 3, 1, 0x02, 0x00, 2}, true},
		{[]byte{0x16, 3, 5}, false},
		{[]byte{0x17, 3, 3, 0, 10, 1}, false},
		{[]byte{0x16, 3, 1, 0x60, 0x00, 1}, false},
		{[]byte{0x16, 3, 1, 0x00, 0x10, 11}, false},
		{[]byte("GET /"), false},
		{nil, false},
	} {
		if got := Looks(c.b); got != c.want {
			t.Errorf("Looks(% x) = %v", c.b[:min(len(c.b), 6)], got)
		}
	}
}

func TestTextBoundAfterRepair(t *testing.T) {
	b := make([]byte, 300)
	for i := range b {
		b[i] = 0xff
		if i%2 == 1 {
			b[i] = 'a'
		}
	}
	if s := text(b); len(s) > maxNameLen || !utf8.ValidString(s) {
		t.Fatalf("len %d valid %v", len(s), utf8.ValidString(s))
	}
}
