package engine

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"

	"github.com/flowlake/flowlake/internal/keylog"
	"github.com/flowlake/flowlake/internal/testcap"
)

// keyedCaptures are the shared captures that come with a key log.
var keyedCaptures = []struct{ capture, keylog string }{
	{"itls12-capture.pcap", "itls12-capture.keylog"},
	{"itls13-capture.pcap", "itls13-capture.keylog"},
	{"pcapfs-feature_test.pcap", "pcapfs-feature_test.keylog"},
	{"pcapfs-system-tests.pcapng", "pcapfs-system-tests.keylog"},
	{"snet-TLS1_2_ECDHE-RSA-AES128-GCM-SHA256.pcap", "snet-TLS1_2_ECDHE-RSA-AES128-GCM-SHA256.keylog"},
	{"snet-TLS1_2_ECDHE-RSA-AES128-SHA256.pcap", "snet-TLS1_2_ECDHE-RSA-AES128-SHA256.keylog"},
	{"snet-TLS1_3_TLS_AES_128_GCM_SHA256.pcap", "snet-TLS1_3_TLS_AES_128_GCM_SHA256.keylog"},
	{"zeek-tls-1.2-stream-keylog.pcap", "zeek-tls-1.2-stream-keylog.keylog"},
	{"zeek-tls12-decryption.pcap", "zeek-tls12-decryption.keylog"},
	{"bench-mixed-web-24mb.pcap", "bench-mixed-web.keylog"},
}

func readKeylog(t testing.TB, path string) *keylog.Log {
	t.Helper()
	l := keylog.New()
	if err := l.ReadFile(path); err != nil {
		t.Fatal(err)
	}
	return l
}

// parseKeyed parses files as one capture with the key log at keyPath.
func parseKeyed(t testing.TB, keyPath string, files ...string) *Collector {
	t.Helper()
	col := &Collector{}
	cfg := Config{Agent: "test", Keys: readKeylog(t, keyPath)}
	if _, err := ParseFiles(context.Background(), files, cfg, col, col, FilesOptions{}); err != nil {
		t.Fatal(err)
	}
	return col
}

// tlsExceptions are the understood differences from tshark's decryption,
// by capture and exact line, with the reason.
var tlsExceptions = map[string]string{}

func init() {
	const closeDelimited = "an HTTP/1.0 response whose body ends with the connection (openssl s_server -www): " +
		"the server's FIN does not reach tshark's HTTP dissector through TLS, so tshark never completes the response; " +
		"flowlake ends the body at the close and reads its status"
	for _, c := range []struct{ capture, line, why string }{
		{"pcapfs-feature_test.pcap", "only flowlake: 127.0.0.1:43090 -> 127.0.0.1:443 GET 127.0.0.1/ 200", closeDelimited},
		{"pcapfs-feature_test.pcap", "only tshark:   127.0.0.1:43090 -> 127.0.0.1:443 GET 127.0.0.1/ 0", closeDelimited},
	} {
		tlsExceptions[c.capture+"\x00"+c.line] = c.why
	}
}

// TestReferenceTLS decrypts every shared capture that has a key log and
// compares its HTTP exchanges (client, server, method, host, uri, status)
// with tshark's, decrypting with the same key log, and the connections
// decrypted: flowlake's tls rows with decrypted set against the
// connections in which tshark decrypted a Finished message (so also
// those that carry no HTTP, such as pcapfs-feature_test's session keyed
// by an "RSA" premaster line).
func TestReferenceTLS(t *testing.T) {
	if _, err := exec.LookPath("tshark"); err != nil {
		t.Skip("tshark not installed (make test installs it as root): the decrypted exchanges are checked against the manifest in TestDecryptedCaptures")
	}
	for _, kc := range keyedCaptures {
		if strings.HasPrefix(kc.capture, "bench-") && testing.Short() {
			continue
		}
		t.Run(kc.capture, func(t *testing.T) {
			keyPath := testcap.Path(t, kc.keylog)
			col := parseKeyed(t, keyPath, testcap.Path(t, kc.capture))
			// The exchanges inside TLS: flowlake's http rows with tls set,
			// tshark's requests and responses dissected inside TLS.
			tlsOnly := &Collector{}
			for _, r := range col.HTTPRows {
				if r.TLS {
					tlsOnly.HTTPRows = append(tlsOnly.HTTPRows, r)
				}
			}
			ours := flowlakeExchanges(tlsOnly)
			theirs := tsharkHTTP(t, testcap.Path(t, kc.capture), "tls", []string{"-o", "tls.keylog_file:" + keyPath})
			onlyUs, onlyThem := diff(ours, theirs)
			var lines []string
			for _, x := range onlyUs {
				lines = append(lines, "only flowlake: "+x.String())
			}
			for _, x := range onlyThem {
				lines = append(lines, "only tshark:   "+x.String())
			}
			ourConns := map[string]bool{}
			for _, r := range col.TLSRows {
				if r.Decrypted {
					ourConns[connPair(hostPort(r.ClientIP, fmt.Sprint(r.ClientPort)), hostPort(r.ServerIP, fmt.Sprint(r.ServerPort)))] = true
				}
			}
			theirConns := tsharkDecryptedConns(t, testcap.Path(t, kc.capture), []string{"-o", "tls.keylog_file:" + keyPath})
			for c := range ourConns {
				if !theirConns[c] {
					lines = append(lines, "only flowlake decrypted: "+c)
				}
			}
			for c := range theirConns {
				if !ourConns[c] {
					lines = append(lines, "only tshark decrypted:   "+c)
				}
			}
			if len(theirConns) == 0 {
				lines = append(lines, "tshark decrypted no connection: the reference found nothing to compare")
			}
			sort.Strings(lines)
			statuses := map[string]int{}
			for _, r := range col.TLSRows {
				statuses[r.KeyStatus]++
			}
			t.Logf("decrypted exchanges: flowlake %d, tshark %d; decrypted connections: flowlake %d, tshark %d; key statuses %v",
				len(ours), len(theirs), len(ourConns), len(theirConns), statuses)
			for _, l := range lines {
				if why, ok := tlsExceptions[kc.capture+"\x00"+l]; ok {
					t.Logf("known difference: %s (%s)", l, why)
					continue
				}
				t.Error(l)
			}
		})
	}
}

// tsharkDecryptedConns returns the connections (connPair) in which tshark,
// with opts, decrypted a Finished handshake message: the connections it
// decrypts.
func tsharkDecryptedConns(t *testing.T, path string, opts []string) map[string]bool {
	t.Helper()
	args := append(append([]string{"-n", "-r", path}, opts...), "-Y", "tls.handshake.type == 20", "-T", "fields", "-E", "separator=\t",
		"-e", "ip.src", "-e", "ipv6.src", "-e", "tcp.srcport", "-e", "ip.dst", "-e", "ipv6.dst", "-e", "tcp.dstport")
	out, err := exec.Command("tshark", args...).Output()
	if err != nil {
		t.Fatalf("tshark: %v", err)
	}
	conns := map[string]bool{}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Split(line, "\t")
		if len(f) < 6 {
			continue
		}
		conns[connPair(hostPort(first(f[0], f[1]), f[2]), hostPort(first(f[3], f[4]), f[5]))] = true
	}
	return conns
}

// connPair names a connection by its two endpoints, in either order.
func connPair(a, b string) string {
	if b < a {
		a, b = b, a
	}
	return a + " <-> " + b
}

// decryptedTruth is the "decrypted" part of a capture's truth.json: what
// tshark 4.0 found with the key log.
type decryptedTruth struct {
	HTTPRequests     int            `json:"http_requests"`
	HTTPStatusCounts map[string]int `json:"http_status_counts"`
	HTTPRequestList  [][4]any       `json:"http_request_list"` // frame, method, host, uri
}

// wantStatuses are the key statuses of each keyed capture's TLS
// handshakes. pcapfs-feature_test has two sessions whose secrets are not
// logged by client random: one keyed by an "RSA" premaster line (RSA key
// exchange with the extended master secret, decrypted like tshark does),
// one not at all.
var wantStatuses = map[string]map[string]int{
	"pcapfs-feature_test.pcap":  {"decrypted": 2, "no-keys": 1},
	"bench-mixed-web-24mb.pcap": {"decrypted": 9, "no-keys": 358},
}

// TestDecryptedTruth checks the keyed captures against the ground truth
// stored beside them (no tshark needed): every request tshark found with
// the key log (plain and decrypted), the response statuses, and the key
// status of every handshake.
func TestDecryptedTruth(t *testing.T) {
	for _, kc := range keyedCaptures {
		if strings.HasPrefix(kc.capture, "bench-") && testing.Short() {
			continue
		}
		t.Run(kc.capture, func(t *testing.T) {
			truth := testcap.LoadTruth(t, kc.capture)
			if truth.Decrypted == nil {
				t.Fatal("truth.json has no decrypted part")
			}
			var dt decryptedTruth
			if err := json.Unmarshal(*truth.Decrypted, &dt); err != nil {
				t.Fatal(err)
			}
			col := parseKeyed(t, testcap.Path(t, kc.keylog), testcap.Path(t, kc.capture))
			statuses := map[string]int{}
			for _, r := range col.TLSRows {
				statuses[r.KeyStatus]++
			}
			want := wantStatuses[kc.capture]
			if want == nil {
				want = map[string]int{"decrypted": len(col.TLSRows)}
			}
			if !reflect.DeepEqual(statuses, want) {
				t.Errorf("key statuses %v, want %v: %s", statuses, want, keyStatuses(col))
			}
			if strings.HasPrefix(kc.capture, "bench-") {
				return // its plain HTTP differs as TestReferenceTruth explains; TestReferenceTLS compares its TLS part
			}
			type req struct{ m, h, u string }
			count := map[req]int{}
			for _, r := range dt.HTTPRequestList {
				m, _ := r[1].(string)
				h, _ := r[2].(string)
				u, _ := r[3].(string)
				count[req{m, h, u}]--
			}
			got := map[string]int{}
			for _, r := range col.HTTPRows {
				if r.Method != "" {
					count[req{r.Method, r.Host, r.URI}]++
				}
				if r.Status != 0 {
					got[fmt.Sprint(r.Status)]++
				}
			}
			for k, n := range count {
				if n != 0 {
					t.Errorf("request %s %s%s: flowlake %+d against tshark", k.m, k.h, k.u, n)
				}
			}
			wantCodes := dt.HTTPStatusCounts
			if kc.capture == "pcapfs-feature_test.pcap" {
				// See tlsExceptions: tshark does not complete the
				// close-delimited response inside TLS.
				wantCodes = map[string]int{"200": 1}
			}
			if !reflect.DeepEqual(got, wantCodes) && !(len(got) == 0 && len(wantCodes) == 0) {
				t.Errorf("statuses %v, tshark %v", got, wantCodes)
			}
		})
	}
}

// keyStatuses renders the tls rows' key statuses, sorted, for messages.
func keyStatuses(c *Collector) string {
	var s []string
	for _, r := range c.TLSRows {
		s = append(s, fmt.Sprintf("%s:%d %s", r.ServerIP, r.ServerPort, r.KeyStatus))
	}
	sort.Strings(s)
	return strings.Join(s, ", ")
}

// secretsOf returns every secret of a key log file, to look for in
// checkpoints.
func secretsOf(t testing.TB, path string) [][]byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out [][]byte
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 || strings.HasPrefix(f[0], "#") {
			continue
		}
		s, err := hex.DecodeString(f[2])
		if err == nil && len(s) >= 16 {
			out = append(out, s)
		}
	}
	return out
}

// Checkpointing anywhere in a keyed capture and resuming (with the keys)
// gives exactly the rows of one pass, decrypted exchanges included; no
// checkpoint holds a secret.
func TestCheckpointResumeDecrypts(t *testing.T) {
	for _, kc := range keyedCaptures {
		if strings.HasPrefix(kc.capture, "bench-") {
			continue // TestSplitKeyedCaptureGivesSameRows cuts it
		}
		t.Run(kc.capture, func(t *testing.T) {
			keyPath := testcap.Path(t, kc.keylog)
			cfg := Config{Agent: "test", Keys: readKeylog(t, keyPath)}
			secrets := secretsOf(t, keyPath)
			check := func(state []byte) {
				for _, s := range secrets {
					if bytes.Contains(state, s) {
						t.Fatal("a checkpoint holds a secret of the key log")
					}
				}
			}
			frames, _ := loadFrames(t, kc.capture)
			whole := parseInPiecesCfg(t, cfg, frames, nil, nil)
			decrypted := 0
			for _, r := range whole.TLSRows {
				if r.Decrypted {
					decrypted++
				}
			}
			if decrypted == 0 {
				t.Fatal("nothing decrypted")
			}
			var cutSets [][]int
			for k := 1; k < len(frames); k++ {
				cutSets = append(cutSets, []int{k})
			}
			var all []int
			for k := 1; k < len(frames); k++ {
				all = append(all, k)
			}
			cutSets = append(cutSets, all)
			for _, cuts := range cutSets {
				got := parseInPiecesCfg(t, cfg, frames, cuts, check)
				label := fmt.Sprintf("cut at %v", cuts)
				if len(cuts) > 3 {
					label = "cut at every packet"
				}
				before := t.Failed()
				compareRows(t, label+" http", whole.HTTPRows, got.HTTPRows)
				compareRows(t, label+" tcp", whole.TCPRows, got.TCPRows)
				compareRows(t, label+" tls", whole.TLSRows, got.TLSRows)
				if !before && t.Failed() {
					return
				}
			}
		})
	}
}

// Resuming a checkpoint without the keys of an open connection leaves it
// encrypted, and its tls row (not emitted before the cut) says so.
func TestResumeWithoutKeys(t *testing.T) {
	const name = "zeek-tls12-decryption.pcap"
	frames, _ := loadFrames(t, name)
	keyed := Config{Agent: "test", Keys: readKeylog(t, testcap.Path(t, "zeek-tls12-decryption.keylog"))}
	col := &Collector{}
	e := New(keyed, col)
	// Up to the ServerHello: the keys are not used yet.
	cut := 0
	for i, f := range frames {
		e.Frame(f.link, f.ts, f.data)
		if len(col.TLSRows) == 0 && bytes.Contains(f.data, []byte{0x16, 0x03, 0x03}) && i > 4 {
			cut = i + 1
			break
		}
	}
	state, err := e.Checkpoint()
	if err != nil {
		t.Fatal(err)
	}
	e, err = Resume(Config{Agent: "test"}, col, state)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range frames[cut:] {
		e.Frame(f.link, f.ts, f.data)
	}
	e.Finish()
	if len(col.TLSRows) != 1 || col.TLSRows[0].KeyStatus != "no-keys" || col.TLSRows[0].Decrypted {
		t.Fatalf("tls rows %+v", col.TLSRows)
	}
	if len(col.HTTPRows) != 0 {
		t.Fatalf("%d http rows without keys", len(col.HTTPRows))
	}
}

// Splitting a keyed capture into many files gives exactly the rows of the
// whole capture, decrypted exchanges included.
func TestSplitKeyedCaptureGivesSameRows(t *testing.T) {
	splitters := map[string]func(*testing.T, string, string, int) []string{"go": splitGo}
	if _, err := exec.LookPath("editcap"); err == nil {
		splitters["editcap"] = splitEditcap
	}
	for _, kc := range keyedCaptures {
		if strings.HasPrefix(kc.capture, "bench-") && testing.Short() {
			continue
		}
		keyPath := testcap.Path(t, kc.keylog)
		whole := parseKeyed(t, keyPath, testcap.Path(t, kc.capture))
		sortRows(whole)
		for sname, split := range splitters {
			for _, n := range []int{3, 500} {
				t.Run(fmt.Sprintf("%s/%s/%d", kc.capture, sname, n), func(t *testing.T) {
					files := split(t, testcap.Path(t, kc.capture), t.TempDir(), n)
					col := parseKeyed(t, keyPath, files...)
					sortRows(col)
					compareRows(t, "http", whole.HTTPRows, col.HTTPRows)
					compareRows(t, "tcp", whole.TCPRows, col.TCPRows)
					compareRows(t, "tls", whole.TLSRows, col.TLSRows)
				})
			}
		}
	}
}

// A pcapng with the key log injected as Decryption Secrets Blocks
// (editcap --inject-secrets) decrypts without a key log, exactly as the
// capture with its key log does.
func TestSecretsBlocksDecrypt(t *testing.T) {
	if _, err := exec.LookPath("editcap"); err != nil {
		t.Skip("editcap not installed (Debian: apt-get install tshark): pcapng Decryption Secrets Blocks not tested here")
	}
	for _, kc := range keyedCaptures {
		if strings.HasPrefix(kc.capture, "bench-") {
			continue
		}
		t.Run(kc.capture, func(t *testing.T) {
			keyPath := testcap.Path(t, kc.keylog)
			want := parseKeyed(t, keyPath, testcap.Path(t, kc.capture))
			out := filepath.Join(t.TempDir(), "with-secrets.pcapng")
			if b, err := exec.Command("editcap", "--inject-secrets", "tls,"+keyPath, testcap.Path(t, kc.capture), out).CombinedOutput(); err != nil {
				t.Fatalf("editcap: %v\n%s", err, b)
			}
			got := &Collector{}
			if _, err := ParseFiles(context.Background(), []string{out}, Config{Agent: "test"}, got, got, FilesOptions{}); err != nil {
				t.Fatal(err)
			}
			sortRows(want)
			sortRows(got)
			compareRows(t, "http", want.HTTPRows, got.HTTPRows)
			compareRows(t, "tcp", want.TCPRows, got.TCPRows)
			compareRows(t, "tls", want.TLSRows, got.TLSRows)
		})
	}
}
