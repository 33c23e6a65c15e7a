package query

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/flowlake/flowlake/internal/capture"
	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/pipeline"
	"github.com/flowlake/flowlake/internal/pipeline/pipelinetest"
	"github.com/flowlake/flowlake/internal/store"
	"github.com/flowlake/flowlake/internal/testcap"
)

// TestPCAPFromSegments runs the pipeline over segments of a real capture,
// exports the packets of an exchange's connection and checks with tshark
// that the file opens and holds exactly the packets of that connection
// in the original capture.
func TestPCAPFromSegments(t *testing.T) {
	tshark, err := exec.LookPath("tshark")
	if err != nil {
		t.Skip("tshark not installed (apt-get install tshark)")
	}
	ctx := context.Background()
	const agent, name = "pcap-probe", "bench-mixed-web-24mb.pcap"
	segs := pipelinetest.CutAs(t, agent, name, 2<<20)
	if len(segs) < 3 {
		t.Fatalf("only %d segments", len(segs))
	}
	st, err := store.NewLocal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	pipelinetest.Upload(t, st, segs)
	p := pipeline.New(pipeline.Config{Store: st})
	for _, s := range segs {
		if err := p.Ingest(ctx, s.Key); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.FlushStream(ctx, keys.Stream{Agent: agent, Stream: 0}, segs[len(segs)-1].Meta.Seq); err != nil {
		t.Fatal(err)
	}
	e, err := New(st, Options{})
	if err != nil {
		t.Fatal(err)
	}
	from := time.Unix(0, segs[0].Meta.FirstTS)
	to := time.Unix(0, segs[len(segs)-1].Meta.LastTS).Add(time.Second)
	// The exchanges with the longest connections first: they span segments.
	page, err := e.Communications(ctx, Request{From: from, To: to, Sort: "-duration_us", Limit: 3, Q: `tls = false`})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) == 0 {
		t.Fatal("no exchanges")
	}
	orig := testcap.Path(t, name)
	for _, it := range page.Items {
		var buf bytes.Buffer
		if err := e.PCAP(ctx, it.ID, nil, time.Time{}, &buf); err != nil {
			t.Fatalf("pcap of %s: %v", it.ID, err)
		}
		// With the exchange's ts as a hint, and with a wrong one: the same file.
		for _, hint := range []time.Time{it.TS.Time, it.TS.Add(-3 * time.Hour)} {
			var hinted bytes.Buffer
			if err := e.PCAP(ctx, it.ID, nil, hint, &hinted); err != nil || !bytes.Equal(hinted.Bytes(), buf.Bytes()) {
				t.Errorf("pcap of %s with hint %s: %v, %d bytes, want %d", it.ID, hint, err, hinted.Len(), buf.Len())
			}
		}
		file := filepath.Join(t.TempDir(), "x.pcap")
		if err := os.WriteFile(file, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		// Every packet of the file belongs to the connection, and the
		// original capture has exactly as many of it in the connection's
		// time.
		d, err := e.Communication(ctx, it.ID, nil, time.Time{})
		if err != nil || d.TCP == nil {
			t.Fatalf("detail %s: %v %+v", it.ID, err, d)
		}
		flt := fmt.Sprintf("ip.addr == %s && ip.addr == %s && tcp.port == %d && tcp.port == %d && frame.time_epoch >= %f && frame.time_epoch <= %f",
			it.ClientIP, it.ServerIP, it.ClientPort, it.ServerPort,
			float64(d.TCP.TS.UnixMicro())/1e6-pcapSlack.Seconds(), float64(d.TCP.TSEnd.UnixMicro())/1e6+pcapSlack.Seconds())
		all := countPackets(t, tshark, file, "")
		own := countPackets(t, tshark, file, flt)
		want := countPackets(t, tshark, orig, flt)
		if all == 0 || own != all || all != want {
			t.Errorf("%s (%s:%d -> %s:%d): pcap has %d packets, %d of the connection; the capture has %d",
				it.ID, it.ClientIP, it.ClientPort, it.ServerIP, it.ServerPort, all, own, want)
		}
		r, err := capture.NewReader(bytes.NewReader(buf.Bytes()))
		if err != nil || r.Format != capture.FormatPcap {
			t.Errorf("not a classic pcap: %v", err)
		}
	}
	// Unknown ids and ids outside the scope are not found.
	if err := e.PCAP(ctx, "nope", nil, time.Time{}, &bytes.Buffer{}); err == nil {
		t.Error("pcap of an unknown id")
	}
	if err := e.PCAP(ctx, page.Items[0].ID, []string{"someone-else"}, time.Time{}, &bytes.Buffer{}); err == nil {
		t.Error("pcap outside scope")
	}
}

func countPackets(t *testing.T, tshark, file, filter string) int {
	t.Helper()
	args := []string{"-n", "-r", file, "-T", "fields", "-e", "frame.number"}
	if filter != "" {
		args = append(args, "-Y", filter)
	}
	out, err := exec.Command(tshark, args...).Output()
	if err != nil {
		t.Fatalf("tshark %v: %v", args, err)
	}
	return strings.Count(string(out), "\n")
}

func TestHARAndSequence(t *testing.T) {
	l := buildTestLake(t)
	ctx := context.Background()
	e := newTestEngine(t, l, Options{})
	req := Request{From: time.UnixMicro(l.capFrom), To: time.UnixMicro(l.capTo), Q: `method = GET and agent = cap-web`, Limit: 50}
	var buf bytes.Buffer
	if err := e.HAR(ctx, req, &buf); err != nil {
		t.Fatal(err)
	}
	var har struct {
		Log struct {
			Version string
			Entries []struct {
				StartedDateTime string
				Request         struct {
					Method, URL string
					Headers     []struct{ Name, Value string }
				}
				Response struct {
					Status  int
					Content struct {
						Size int64
					}
				}
			}
		}
	}
	if err := json.Unmarshal(buf.Bytes(), &har); err != nil {
		t.Fatal(err)
	}
	if har.Log.Version != "1.2" || len(har.Log.Entries) != 50 {
		t.Fatalf("HAR version %q with %d entries", har.Log.Version, len(har.Log.Entries))
	}
	want := sqlIDs(t, l.db, "method = 'GET' AND agent = 'cap-web'", l.capFrom, l.capTo, "ts, id", 50)
	seq, err := e.Sequence(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if len(seq.Calls) != 50 {
		t.Fatalf("%d calls", len(seq.Calls))
	}
	parts := map[string]bool{}
	for _, p := range seq.Participants {
		parts[p.ID] = true
	}
	for i, c := range seq.Calls {
		if c.ID != want[i] {
			t.Fatalf("call %d is %s, DuckDB says %s", i, c.ID, want[i])
		}
		if !parts[c.From] || !parts[c.To] || !strings.HasPrefix(c.Label, "GET ") {
			t.Errorf("call %+v", c)
		}
		ent := har.Log.Entries[i]
		if ent.Request.Method != "GET" || !strings.HasPrefix(ent.Request.URL, "http") || len(ent.Request.Headers) == 0 {
			t.Errorf("entry %d: %+v", i, ent.Request)
		}
		if st, _ := time.Parse(time.RFC3339Nano, ent.StartedDateTime); !st.Equal(c.TS.Time) {
			t.Errorf("entry %d starts %s, call at %s", i, ent.StartedDateTime, c.TS)
		}
	}
}
