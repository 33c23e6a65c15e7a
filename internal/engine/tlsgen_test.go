//go:debug tlsrsakex=1
//go:debug tls3des=1
//go:debug tls10server=1

package engine

import (
	"crypto/tls"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/flowlake/flowlake/internal/tlsdecrypt/tlstest"
	"github.com/flowlake/flowlake/schema"
)

// genExchanges are the requests of the generated HTTPS sessions.
var genExchanges = []tlstest.HTTPExchange{
	{Method: "GET", Path: "/index.html"},
	{Method: "POST", Path: "/api/items?x=1", Body: strings.Repeat("payload ", 4000)},
	{Method: "GET", Path: "/missing/thing"},
	{Method: "GET", Path: "/big?" + strings.Repeat("q", 100)},
}

// wantGen is what the http table should hold for genExchanges.
func wantGen() []string {
	var out []string
	for _, x := range genExchanges {
		st := 200
		if strings.HasPrefix(x.Path, "/missing") {
			st = 404
		}
		out = append(out, fmt.Sprintf("%s %s %d tls=true", x.Method, x.Path, st))
	}
	sort.Strings(out)
	return out
}

func httpLines(rows []schema.HTTP) []string {
	var out []string
	for _, r := range rows {
		out = append(out, fmt.Sprintf("%s %s %d tls=%v", r.Method, r.URI, r.Status, r.TLS))
	}
	sort.Strings(out)
	return out
}

// TestGeneratedHTTPS runs net/http over TLS (Go client and server through
// a recording relay) with every TLS 1.2 suite of crypto/tls and with TLS
// 1.3, writes the sessions as a pcap and parses it with their key log:
// the http rows are the requests made, marked tls, every handshake is
// decrypted, and tshark, where installed, decrypts the same exchanges.
func TestGeneratedHTTPS(t *testing.T) {
	certs := tlstest.NewCerts(t)
	type tc struct {
		name           string
		client, server *tls.Config
	}
	var cases []tc
	for _, cs := range append(tls.CipherSuites(), tls.InsecureCipherSuites()...) {
		if cs.SupportedVersions[0] == tls.VersionTLS13 {
			continue
		}
		cert := certs.RSA
		if strings.Contains(cs.Name, "ECDSA") {
			cert = certs.ECDSA
		}
		cases = append(cases, tc{cs.Name,
			&tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{cs.ID}},
			&tls.Config{Certificates: []tls.Certificate{cert}, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{cs.ID}}})
	}
	cases = append(cases,
		tc{"TLS 1.3", &tls.Config{InsecureSkipVerify: true}, &tls.Config{Certificates: []tls.Certificate{certs.ECDSA}}},
		tc{"TLS 1.0 CBC", &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10},
			&tls.Config{Certificates: []tls.Certificate{certs.RSA}, MinVersion: tls.VersionTLS10}})
	_, haveTshark := exec.LookPath("tshark")
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, fresh := range []bool{false, true} {
				sessions, keys := tlstest.HTTPSessions(t, c.client, c.server, genExchanges, fresh)
				dir := t.TempDir()
				pcap, keyPath := filepath.Join(dir, "s.pcap"), filepath.Join(dir, "keys")
				tlstest.WritePcap(t, pcap, sessions)
				if err := os.WriteFile(keyPath, keys, 0o600); err != nil {
					t.Fatal(err)
				}
				col := parseKeyed(t, keyPath, pcap)
				if got, want := httpLines(col.HTTPRows), wantGen(); strings.Join(got, "\n") != strings.Join(want, "\n") {
					t.Fatalf("fresh %v: http rows\n%s\nwant\n%s", fresh, strings.Join(got, "\n"), strings.Join(want, "\n"))
				}
				for _, r := range col.TLSRows {
					if !r.Decrypted || r.KeyStatus != "decrypted" {
						t.Fatalf("tls row %+v", r)
					}
				}
				for _, r := range col.TCPRows {
					if r.AppProtocol != "https" {
						t.Fatalf("tcp app_protocol %q", r.AppProtocol)
					}
				}
				if len(col.TLSRows) != len(sessions) || len(col.TCPRows) != len(sessions) {
					t.Fatalf("%d sessions: %d tls rows, %d tcp rows", len(sessions), len(col.TLSRows), len(col.TCPRows))
				}
				if haveTshark == nil && !fresh {
					ours := flowlakeExchanges(col)
					theirs := tsharkHTTP(t, pcap, "tls", []string{"-o", "tls.keylog_file:" + keyPath})
					onlyUs, onlyThem := diff(ours, theirs)
					for _, x := range onlyUs {
						t.Errorf("only flowlake: %s", x)
					}
					for _, x := range onlyThem {
						t.Errorf("only tshark: %s", x)
					}
				}
			}
		})
	}
}
