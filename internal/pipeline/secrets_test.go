package pipeline

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/flowlake/flowlake/internal/engine"
	"github.com/flowlake/flowlake/internal/keylog"
	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/pipeline/pipelinetest"
	"github.com/flowlake/flowlake/internal/store"
	"github.com/flowlake/flowlake/internal/testcap"
	"github.com/flowlake/flowlake/schema"
)

// tlsCase is a capture whose TLS sessions carry HTTP/1.1 and its key log.
const (
	tlsCapture = "pcapfs-feature_test.pcap"
	tlsKeylog  = "pcapfs-feature_test.keylog"
)

// tlsSegments cuts the TLS capture into small segments and returns them,
// the key log's bytes and the reference rows of one engine run with keys.
func tlsSegments(t *testing.T) ([]pipelinetest.Segment, []byte, *engine.Collector) {
	t.Helper()
	segs := pipelinetest.Cut(t, tlsCapture, 2<<10)
	if len(segs) < 4 {
		t.Fatalf("only %d segments", len(segs))
	}
	lines, err := os.ReadFile(testcap.Path(t, tlsKeylog))
	if err != nil {
		t.Fatal(err)
	}
	kl := keylog.New()
	if err := kl.Read(bytes.NewReader(lines)); err != nil {
		t.Fatal(err)
	}
	ref := pipelinetest.ReferenceKeys(t, segs, kl)
	decrypted := 0
	for _, r := range ref.HTTPRows {
		if r.TLS {
			decrypted++
		}
	}
	if decrypted == 0 {
		t.Fatalf("reference run with keys has no decrypted HTTP rows (%d http, %d tls rows)", len(ref.HTTPRows), len(ref.TLSRows))
	}
	return segs, lines, ref
}

// putSecrets uploads the key log as the secrets object of segment seq.
func putSecrets(t *testing.T, st store.Store, seg pipelinetest.Segment, lines []byte) string {
	t.Helper()
	k, err := keys.Parse(seg.Key)
	if err != nil {
		t.Fatal(err)
	}
	key := keys.Secrets(k.Stream, k.Seq, k.Hour)
	if err := st.Put(t.Context(), key, bytes.NewReader(lines), int64(len(lines))); err != nil {
		t.Fatal(err)
	}
	return key
}

// Keys uploaded before the first segment decrypt every segment of the
// stream: later segments get them through the key log carried in state/.
func TestSecretsBeforeSegments(t *testing.T) {
	segs, lines, ref := tlsSegments(t)
	st := store.NewMem()
	p := New(Config{Store: st, WaitPredecessor: time.Second})
	if err := p.Ingest(t.Context(), putSecrets(t, st, segs[0], lines)); err != nil {
		t.Fatal(err)
	}
	pipelinetest.Upload(t, st, segs)
	for _, s := range segs {
		if err := p.Ingest(t.Context(), s.Key); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.FlushStream(t.Context(), stream, uint64(len(segs)-1)); err != nil {
		t.Fatal(err)
	}
	pipelinetest.CheckLake(t, st, ref)
	checkNoSecrets(t, st, lines)
}

// Keys that arrive after their segments were parsed make the pipeline
// parse the stream again: the lake then holds the decrypted rows instead
// of (not beside) the encrypted ones.
func TestSecretsLateReparse(t *testing.T) {
	segs, lines, ref := tlsSegments(t)
	st := store.NewMem()
	p := New(Config{Store: st, WaitPredecessor: time.Second})
	pipelinetest.Upload(t, st, segs)
	for _, s := range segs {
		if err := p.Ingest(t.Context(), s.Key); err != nil {
			t.Fatal(err)
		}
	}
	before := pipelinetest.ReadTable[schema.TLS](t, st, schema.TableTLS)
	if len(before) == 0 {
		t.Fatal("no tls rows before the keys came")
	}
	for _, r := range before {
		if r.Decrypted {
			t.Fatalf("tls row decrypted without keys: %+v", r)
		}
	}
	if err := p.Ingest(t.Context(), putSecrets(t, st, segs[0], lines)); err != nil {
		t.Fatal(err)
	}
	if err := p.FlushStream(t.Context(), stream, uint64(len(segs)-1)); err != nil {
		t.Fatal(err)
	}
	pipelinetest.CheckLake(t, st, ref)
	if ps := pipelinetest.StatusRows(t, st); len(ps) != len(segs) {
		t.Fatalf("%d parse_status rows for %d segments after reparse", len(ps), len(segs))
	}
	checkNoSecrets(t, st, lines)
}

// Reparse refuses segments whose lake files the compactor merged.
func TestReparseCompacted(t *testing.T) {
	segs := pipelinetest.Cut(t, "zeek-http-bro.org.pcap", 16<<10)
	st := store.NewMem()
	p := New(Config{Store: st, WaitPredecessor: time.Second})
	pipelinetest.Upload(t, st, segs)
	for _, s := range segs {
		if err := p.Ingest(t.Context(), s.Key); err != nil {
			t.Fatal(err)
		}
	}
	// Reparsing everything gives the same lake.
	n, err := p.Reparse(t.Context(), stream, 0, 0)
	if err != nil || n != len(segs) {
		t.Fatalf("Reparse = %d, %v; want %d segments", n, err, len(segs))
	}
	if err := p.FlushStream(t.Context(), stream, uint64(len(segs)-1)); err != nil {
		t.Fatal(err)
	}
	pipelinetest.CheckLake(t, st, pipelinetest.Reference(t, segs))
	// A lake file that is gone (compacted and deleted) stops the reparse.
	out, err := p.outputs(t.Context(), stream, 1)
	if err != nil || len(out) == 0 {
		t.Fatalf("outputs of segment 1: %v, %v", out, err)
	}
	if err := st.Delete(t.Context(), out[0]); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Reparse(t.Context(), stream, 1, 1); !errors.Is(err, ErrCompacted) {
		t.Fatalf("Reparse of a compacted segment: %v, want ErrCompacted", err)
	}
}

// checkNoSecrets fails if a secret of the key log, in hex or raw, appears
// in any value of the lake's rows other than HTTP bodies.
func checkNoSecrets(t *testing.T, st store.Store, lines []byte) {
	t.Helper()
	var secrets []string
	for _, l := range strings.Split(string(lines), "\n") {
		if f := strings.Fields(l); len(f) == 3 {
			raw, err := hex.DecodeString(f[2])
			if err != nil {
				t.Fatal(err)
			}
			secrets = append(secrets, strings.ToLower(f[2]), string(raw))
		}
	}
	// Bodies are left out: the decrypted response of this capture's
	// `openssl s_server -www` is a page that prints the session's master
	// key itself — captured content, not a leak of the key log.
	httpRows := pipelinetest.ReadTable[schema.HTTP](t, st, schema.TableHTTP)
	for i := range httpRows {
		httpRows[i].ReqBody, httpRows[i].RespBody = "", ""
	}
	dump := strings.ToLower(fmt.Sprintf("%+v %+v %+v %+v",
		httpRows,
		pipelinetest.ReadTable[schema.TCP](t, st, schema.TableTCP),
		pipelinetest.ReadTable[schema.TLS](t, st, schema.TableTLS),
		pipelinetest.ReadTable[schema.ParseStatus](t, st, schema.TableParseStatus)))
	for _, s := range secrets {
		if strings.Contains(dump, strings.ToLower(s)) {
			t.Errorf("the lake holds a secret of the key log (%d bytes)", len(s))
		}
	}
}
