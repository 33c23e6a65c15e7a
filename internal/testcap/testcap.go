// Package testcap locates the shared test captures (../shared/testdata/pcaps
// beside the repository) and reads their tshark ground truth, for tests.
package testcap

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// Dir returns the directory of the shared captures, or skips the test with
// a clear message when it cannot be found. FLOWLAKE_TESTDATA overrides.
func Dir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("FLOWLAKE_TESTDATA"); d != "" {
		return d
	}
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for d := wd; ; d = filepath.Dir(d) {
		cand := filepath.Join(d, "..", "shared", "testdata", "pcaps")
		if fi, err := os.Stat(filepath.Join(cand, "MANIFEST.md")); err == nil && !fi.IsDir() {
			return cand
		}
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			break
		}
		if filepath.Dir(d) == d {
			break
		}
	}
	t.Skip("shared test captures not found: expected ../shared/testdata/pcaps beside the repository (or set FLOWLAKE_TESTDATA)")
	return ""
}

// Path returns the path of one shared capture file.
func Path(t testing.TB, name string) string {
	t.Helper()
	return filepath.Join(Dir(t), name)
}

// Captures returns the names of every capture (.pcap and .pcapng) in the
// shared directory, sorted.
func Captures(t testing.TB) []string {
	t.Helper()
	ents, err := os.ReadDir(Dir(t))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		n := e.Name()
		if strings.HasSuffix(n, ".pcap") || strings.HasSuffix(n, ".pcapng") {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// Truth is the part of a <stem>.truth.json file the tests use.
type Truth struct {
	File             string           `json:"file"`
	Packets          int64            `json:"packets"`
	Encapsulation    string           `json:"encapsulation"`
	TCPConversations int              `json:"tcp_conversations"`
	TCPStreams       int              `json:"tcp_streams"`
	HTTPRequests     int              `json:"http_requests"`
	HTTPResponses    int              `json:"http_responses"`
	HTTPStatusCounts map[string]int   `json:"http_status_counts"`
	HTTPRequestList  [][4]any         `json:"http_request_list"` // frame, method, host, uri
	DNSQueries       int              `json:"dns_queries"`
	DNSResponses     int              `json:"dns_responses"`
	DNSQueryNames    []string         `json:"dns_query_names"`
	TLSClientHellos  int              `json:"tls_client_hellos"`
	TLSServerHellos  int              `json:"tls_server_hellos"`
	TLSVersions      map[string]int   `json:"tls_versions"`
	TLSSNI           []string         `json:"tls_sni"`
	TCPAnalysis      map[string]int   `json:"tcp_analysis"`
	IPFragmentFrames int              `json:"ip_fragment_frames"`
	TsharkExtraOpts  string           `json:"tshark_extra_opts"`
	Notes            string           `json:"notes"`
	Category         string           `json:"category"`
	KeylogFile       *string          `json:"keylog_file"`
	Decrypted        *json.RawMessage `json:"decrypted"`
}

// LoadTruth reads the ground truth of a capture (by capture file name).
func LoadTruth(t testing.TB, capture string) Truth {
	t.Helper()
	stem := strings.TrimSuffix(strings.TrimSuffix(capture, ".pcapng"), ".pcap")
	b, err := os.ReadFile(filepath.Join(Dir(t), stem+".truth.json"))
	if err != nil {
		t.Fatal(err)
	}
	var tr Truth
	if err := json.Unmarshal(b, &tr); err != nil {
		t.Fatalf("%s: %v", stem, err)
	}
	return tr
}
