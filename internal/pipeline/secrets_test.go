package pipeline

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/flowlake/flowlake/internal/capture"
	"github.com/flowlake/flowlake/internal/engine"
	"github.com/flowlake/flowlake/internal/keylog"
	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/pipeline/pipelinetest"
	"github.com/flowlake/flowlake/internal/store"
	"github.com/flowlake/flowlake/internal/testcap"
	"github.com/flowlake/flowlake/internal/tlsdecrypt/tlstest"
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

// The agent puts the keys that reach it during the grace after a cut into
// the cut segment's secrets, while their handshakes are in the next
// segment. Here real sessions (crypto/tls, TLS 1.3 and 1.2, one connection
// per request) have each session's lines in the secrets of the segment
// before the one with its ClientHello, and the lake is the same as one run
// with all keys: parse carries a secrets object's keys one segment on.
func TestSecretsOneSegmentEarly(t *testing.T) {
	sessions, lines, segs := genTLSSegments(t)
	ref := pipelinetest.ReferenceKeys(t, segs, logOf(t, lines))
	if len(ref.HTTPRows) != 6 {
		t.Fatalf("reference run: %d http rows, want 6", len(ref.HTTPRows))
	}

	st := store.NewMem()
	p := New(Config{Store: st, WaitPredecessor: time.Second})
	perSeg := make([][]byte, len(segs))
	moved := 0
	for _, l := range bytes.SplitAfter(lines, []byte("\n")) {
		f := strings.Fields(string(l))
		if len(f) != 3 {
			continue
		}
		cr, err := hex.DecodeString(f[1])
		if err != nil {
			t.Fatal(err)
		}
		i := helloEnd(t, sessions, segs, cr)
		if i > 0 {
			i--
			moved++
		}
		perSeg[i] = append(perSeg[i], l...)
	}
	if moved == 0 {
		t.Fatal("no handshake after the first segment: the test shows nothing")
	}
	for i, b := range perSeg {
		if len(b) > 0 {
			putSecrets(t, st, segs[i], b)
		}
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
	for _, r := range pipelinetest.ReadTable[schema.TLS](t, st, schema.TableTLS) {
		if !r.Decrypted {
			t.Errorf("tls row of client port %d not decrypted: %s", r.ClientPort, r.KeyStatus)
		}
	}
	// The carried keys stay small: after the last segment, only the open
	// sessions' and the last secrets object's, not every session's.
	body, err := p.getAll(t.Context(), keys.StateKeys(stream, uint64(len(segs)-1)))
	if err != nil && !errors.Is(err, store.ErrNotExist) {
		t.Fatal(err)
	}
	if n, all := bytes.Count(body, []byte("\n")), bytes.Count(lines, []byte("\n")); n >= all/2 {
		t.Errorf("the last segment carries %d key lines of the sessions' %d", n, all)
	}
	checkNoSecrets(t, st, lines)
}

// genTLSSegments makes real TLS sessions (crypto/tls, TLS 1.3 and 1.2, one
// connection per request: 3 each) and returns them, their key log and
// their capture cut into segments of about 1 KiB.
func genTLSSegments(t *testing.T) ([]*tlstest.Session, []byte, []pipelinetest.Segment) {
	t.Helper()
	certs := tlstest.NewCerts(t)
	xs := []tlstest.HTTPExchange{{Method: "GET", Path: "/a"}, {Method: "POST", Path: "/b", Body: "x=1"}, {Method: "GET", Path: "/missing"}}
	s13, k13 := tlstest.HTTPSessions(t, &tls.Config{InsecureSkipVerify: true}, &tls.Config{Certificates: []tls.Certificate{certs.ECDSA}}, xs, true)
	s12, k12 := tlstest.HTTPSessions(t, &tls.Config{InsecureSkipVerify: true, MaxVersion: tls.VersionTLS12},
		&tls.Config{Certificates: []tls.Certificate{certs.RSA}}, xs, true)
	pcap := filepath.Join(t.TempDir(), "tls.pcap")
	sessions := append(s13, s12...)
	tlstest.WritePcap(t, pcap, sessions)
	return sessions, append(k13, k12...), pipelinetest.CutFile(t, pipelinetest.Agent, pcap, 1<<10)
}

// helloEnd returns the segment where the ClientHello with client random cr
// (its client's first write) ends.
func helloEnd(t *testing.T, sessions []*tlstest.Session, segs []pipelinetest.Segment, cr []byte) int {
	t.Helper()
	j := slices.IndexFunc(sessions, func(s *tlstest.Session) bool { return bytes.Contains(s.Chunks[0].Data, cr) })
	if j < 0 {
		t.Fatalf("no session with client random %x", cr)
	}
	hello := sessions[j].Chunks[0].Data
	i := slices.IndexFunc(segs, func(s pipelinetest.Segment) bool { return bytes.Contains(segmentPackets(t, s), cr) })
	for i >= 0 && i < len(segs) && !bytes.Contains(segmentPackets(t, segs[i]), hello[len(hello)-16:]) {
		i++ // sessions' ClientHellos may end alike: look from the random on
	}
	if i < 0 || i == len(segs) {
		t.Fatalf("no segment holds the end of session %d's ClientHello", j)
	}
	return i
}

// logOf reads a key log.
func logOf(t *testing.T, lines []byte) *keylog.Log {
	t.Helper()
	kl := keylog.New()
	if err := kl.Read(bytes.NewReader(lines)); err != nil {
		t.Fatal(err)
	}
	return kl
}

// segmentPackets returns the packet bytes of a segment, concatenated.
func segmentPackets(t *testing.T, s pipelinetest.Segment) []byte {
	t.Helper()
	r, err := capture.NewReader(bytes.NewReader(s.Data))
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []byte
	for {
		data, _, _, _, err := r.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, data...)
	}
}

// A reparse for late keys races the normal parse of the stream's next
// segment, which read the checkpoint before the reparse replaced it: the
// reparse waits for that segment's commit and parses it again, so the
// lake is the same as one keyed parse.
func TestReparseChasesTheStream(t *testing.T) {
	sessions, allLines, all := genTLSSegments(t)
	// The first session's keys, in the secrets of the segment where its
	// ClientHello ends.
	var lines []byte
	hello := -1
	for _, l := range bytes.SplitAfter(allLines, []byte("\n")) {
		f := strings.Fields(string(l))
		if len(f) != 3 {
			continue
		}
		cr, err := hex.DecodeString(f[1])
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(sessions[0].Chunks[0].Data, cr) {
			lines = append(lines, l...)
			hello = helloEnd(t, sessions, all, cr)
		}
	}
	// The stream so far ends with a segment that the decrypted session
	// continues into: its checkpoint before differs with keys.
	var segs []pipelinetest.Segment
	without, with := store.NewMem(), store.NewMem()
	pipelinetest.Upload(t, without, all)
	pipelinetest.Upload(t, with, all)
	putSecrets(t, with, all[hello], lines)
	pa, pb := New(Config{Store: without}), New(Config{Store: with})
	for i, sg := range all {
		if err := pa.Ingest(t.Context(), sg.Key); err != nil {
			t.Fatal(err)
		}
		if err := pb.Ingest(t.Context(), sg.Key); err != nil {
			t.Fatal(err)
		}
		a, _ := pa.getAll(t.Context(), keys.State(stream, uint64(i)))
		b, _ := pb.getAll(t.Context(), keys.State(stream, uint64(i)))
		if i > hello && !bytes.Equal(a, b) {
			segs = all[:i+2]
			break
		}
	}
	if segs == nil || len(segs) > len(all) {
		t.Fatal("no checkpoint depends on the keys: the test shows nothing")
	}
	ref := pipelinetest.ReferenceKeys(t, segs, logOf(t, lines))

	st := &signalStore{Store: store.NewMem(), written: make(chan string, 1024)}
	p := New(Config{Store: st, WaitPredecessor: 20 * time.Second, Poll: 5 * time.Millisecond})
	pipelinetest.Upload(t, st, segs)
	last := len(segs) - 1
	for _, s := range segs[:last] {
		if err := p.Ingest(t.Context(), s.Key); err != nil {
			t.Fatal(err)
		}
	}
	// The last segment's event came: indexed, its parse about to read
	// the checkpoint before it.
	if err := p.index(t.Context(), segs[last].Key, stream, uint64(last)); err != nil {
		t.Fatal(err)
	}
	stale, err := p.getAll(t.Context(), keys.State(stream, uint64(last-1)))
	if err != nil {
		t.Fatal(err)
	}
	secrets := putSecrets(t, st, segs[hello], lines)
	done := make(chan error, 1)
	go func() { done <- p.Ingest(t.Context(), secrets) }() // the late keys: a reparse from there
	// The normal parse of the last segment, from the checkpoint it read
	// before the reparse replaced it, commits while the reparse runs.
	for key := range st.written {
		if key == keys.State(stream, uint64(last-1)) {
			break
		}
	}
	res, err := p.parseSegment(t.Context(), stream, uint64(last), segs[last].Key, stale)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.writeOutputs(t.Context(), stream, uint64(last), res, nil); err != nil {
		t.Fatal(err)
	}
	if err := st.PutIfAbsent(t.Context(), keys.State(stream, uint64(last)), bytes.NewReader(res.checkpoint), int64(len(res.checkpoint))); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := p.FlushStream(t.Context(), stream, uint64(last)); err != nil {
		t.Fatal(err)
	}
	pipelinetest.CheckLake(t, st, ref)
}

// signalStore tells the keys of the objects Put writes.
type signalStore struct {
	store.Store
	written chan string
}

func (s *signalStore) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	err := s.Store.Put(ctx, key, r, size)
	if err == nil {
		select {
		case s.written <- key:
		default:
		}
	}
	return err
}
