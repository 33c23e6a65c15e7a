package tlsparse

import (
	"encoding/hex"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/flowlake/flowlake/internal/testcap"
)

// captureHellos runs every connection whose client bytes Look like TLS
// through a Stream and returns the Hellos, in connection order.
func captureHellos(t testing.TB, conns []*conn) []*Hello {
	t.Helper()
	var out []*Hello
	for _, c := range conns {
		var first []byte
		for _, e := range c.events {
			if e.gap == 0 && e.dir == 0 {
				first = e.data
				break
			}
		}
		if !Looks(first) {
			continue
		}
		var got []*Hello
		s := NewStream(func(h *Hello) { got = append(got, h) })
		closeTS := int64(0)
		if n := len(c.events); n > 0 {
			closeTS = c.events[n-1].ts
		}
		play(c, s, closeTS)
		if len(got) != 1 {
			t.Fatalf("%v: %d Hellos emitted", c.client, len(got))
		}
		out = append(out, got[0])
	}
	return out
}

// captureCase is one capture of TestCapturesAgainstTruth; the
// checkpoint tests run the same captures.
type captureCase struct {
	file string
	// keylog is how many Hellos have their ClientRandom in the
	// capture's key log (pcapfs-feature_test's other two connections
	// use RSA key exchange and are keyed by an RSA line instead).
	keylog int
	// hrr is how many HelloRetryRequest exchanges tshark counts as an
	// extra ClientHello, ServerHello and TLS1.3 version: one Hello here.
	hrr   int
	check func(t *testing.T, hs []*Hello)
}

func captureCases() []captureCase {
	return []captureCase{
		{file: "ndpi-chrome.pcap", check: func(t *testing.T, hs []*Hello) {
			resumed := 0
			for _, h := range hs {
				if !slices.Equal(h.ALPNOffered, []string{"h2", "http/1.1"}) || h.ALPN != "" ||
					!slices.Equal(h.OfferedVersions, []uint16{0x0304, 0x0303, 0x0302, 0x0301}) ||
					len(h.CipherSuitesOffered) != 15 || h.CipherSuite != 0x1302 {
					t.Errorf("chrome hello = %+v", h)
				}
				if h.SessionResumed {
					resumed++
				}
			}
			// Streams 1-3 resume with a PSK (extension 41 in ServerHello).
			if resumed != 3 {
				t.Errorf("%d resumed, want 3", resumed)
			}
		}},
		{file: "ndpi-reddit.pcap", hrr: 1, check: func(t *testing.T, hs []*Hello) {
			// tcp.stream 36 answers its first ClientHello with a
			// HelloRetryRequest; the Hello must carry the real ServerHello.
			i := slices.IndexFunc(hs, func(h *Hello) bool { return h.SNI == "cdn.syndication.twimg.com" })
			if i < 0 {
				t.Fatal("no Hello for cdn.syndication.twimg.com")
			}
			// Frame 998 is the HelloRetryRequest, frame 1004 the ServerHello.
			if h := hs[i]; !h.SawServerHello || h.ServerVersion != 0x0304 || h.CipherSuite != 0x1302 || h.Error != "" ||
				h.ServerTS != 1605291688747623000 ||
				hex.EncodeToString(h.ClientRandom) != "8e912cf0976f2dafd5f86111a208a2dea0f1788699258b80b81e8eb320cb0eba" {
				t.Errorf("HRR connection hello = %+v", h)
			}
		}},
		{file: "zeek-tls13_wolfssl.pcap"},
		{file: "snet-TLS1_2_ECDHE-RSA-AES128-GCM-SHA256.pcap", keylog: 1, check: func(t *testing.T, hs []*Hello) {
			if n := CipherName(hs[0].CipherSuite); n != "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256" {
				t.Errorf("cipher %s", n)
			}
		}},
		{file: "snet-TLS1_2_ECDHE-RSA-AES128-SHA256.pcap", keylog: 1, check: func(t *testing.T, hs []*Hello) {
			if n := CipherName(hs[0].CipherSuite); n != "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256" {
				t.Errorf("cipher %s", n)
			}
		}},
		{file: "snet-TLS1_3_TLS_AES_128_GCM_SHA256.pcap", keylog: 1, check: func(t *testing.T, hs []*Hello) {
			if n := CipherName(hs[0].CipherSuite); n != "TLS_AES_128_GCM_SHA256" {
				t.Errorf("cipher %s", n)
			}
		}},
		{file: "zeek-tls12-decryption.pcap", keylog: 1, check: func(t *testing.T, hs []*Hello) {
			h := hs[0]
			if n := CipherName(h.CipherSuite); n != "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384" {
				t.Errorf("cipher %s", n)
			}
			if h.SessionResumed || h.ServerTS <= h.ClientTS {
				t.Errorf("hello %+v", h)
			}
		}},
		{file: "itls12-capture.pcap", keylog: 1},
		{file: "itls13-capture.pcap", keylog: 1},
		{file: "pcapfs-feature_test.pcap", keylog: 1},
		{file: "pcapfs-system-tests.pcapng", keylog: 1},
		{file: "zeek-tls-1.2-stream-keylog.pcap", keylog: 1},
		// Captures with retransmissions and lost segments (the helper's
		// reassembly drops the duplicates; no loss falls in a handshake).
		{file: "ndpi-netflix.pcap"},
		{file: "ndpi-1kxun.pcap"},
		// reddit's, plus two more HelloRetryRequests in the copies.
		{file: "bench-mixed-web-24mb.pcap", hrr: 3},
	}
}

func TestCapturesAgainstTruth(t *testing.T) {
	for _, c := range captureCases() {
		stem := strings.TrimSuffix(c.file, filepath.Ext(c.file))
		t.Run(stem, func(t *testing.T) {
			tr := loadTruth(t, stem)
			hs := captureHellos(t, readConns(t, c.file))
			var ch, sh int
			versions := map[string]int{}
			sni := map[string]bool{}
			for _, h := range hs {
				if h.Error != "" {
					t.Errorf("hello error %q", h.Error)
				}
				if h.SawClientHello {
					ch++
					if len(h.ClientRandom) != 32 {
						t.Errorf("client random %x", h.ClientRandom)
					}
				}
				if h.SawServerHello {
					sh++
					versions[strings.ReplaceAll(VersionName(h.ServerVersion), " ", "")]++
				}
				if h.SNI != "" {
					sni[h.SNI] = true
				}
			}
			if c.hrr > 0 {
				tr.TLSClientHellos -= c.hrr
				tr.TLSServerHellos -= c.hrr
				tr.TLSVersions["TLS1.3"] -= c.hrr
			}
			if ch != tr.TLSClientHellos || sh != tr.TLSServerHellos {
				t.Errorf("hellos %d/%d, truth %d/%d", ch, sh, tr.TLSClientHellos, tr.TLSServerHellos)
			}
			if !maps.Equal(versions, tr.TLSVersions) {
				t.Errorf("versions %v, truth %v", versions, tr.TLSVersions)
			}
			if got := slices.Sorted(maps.Keys(sni)); !slices.Equal(got, tr.TLSSNI) && !(len(got) == 0 && len(tr.TLSSNI) == 0) {
				t.Errorf("SNI %q, truth %q", got, tr.TLSSNI)
			}
			if c.keylog > 0 {
				// The ClientRandom is the key of the capture's key log
				// lines: the link decryption will rely on.
				b, err := os.ReadFile(testcap.Path(t, stem+".keylog"))
				if err != nil {
					t.Fatal(err)
				}
				found := 0
				for _, h := range hs {
					if strings.Contains(strings.ToLower(string(b)), " "+hex.EncodeToString(h.ClientRandom)+" ") {
						found++
					}
				}
				if found != c.keylog {
					t.Errorf("%d client randoms in the key log, want %d", found, c.keylog)
				}
			}
			if c.check != nil {
				c.check(t, hs)
			}
			t.Logf("%s: %d hellos, versions %v, %d SNI", stem, len(hs), versions, len(sni))
		})
	}
}
