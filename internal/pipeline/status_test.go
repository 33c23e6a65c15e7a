package pipeline

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/pipeline/pipelinetest"
	"github.com/flowlake/flowlake/internal/report"
	"github.com/flowlake/flowlake/internal/store"
	"github.com/flowlake/flowlake/schema"
)

// An agent's status report becomes capture_status rows; a repeated event
// rewrites the same file; a bad report is quarantined with its reason.
func TestIngestStatus(t *testing.T) {
	st := store.NewMem()
	p := New(Config{Store: st})
	at := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	doc, _ := json.Marshal(report.Status{Version: report.Version, Agent: "web-1", Time: at, Interface: "eth0",
		Streams: []report.Stream{{Stream: 0, Captured: 100, Dropped: 3, Overflow: 1}, {Stream: 1, Captured: 50, Filtered: 7}}})
	key := keys.Status("web-1", at)
	if err := st.Put(t.Context(), key, bytes.NewReader(doc), int64(len(doc))); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := p.Ingest(t.Context(), key); err != nil {
			t.Fatal(err)
		}
	}
	rows := pipelinetest.ReadTable[schema.CaptureStatus](t, st, schema.TableCaptureStatus)
	if len(rows) != 2 || rows[0].Agent != "web-1" || rows[0].TS != at.UnixMicro() || rows[0].Captured+rows[1].Captured != 150 ||
		rows[0].Dropped+rows[1].Dropped != 3 || rows[0].Filtered+rows[1].Filtered != 7 {
		t.Fatalf("capture_status rows %+v", rows)
	}

	// A report under another agent's prefix, and garbage, are quarantined.
	bad := map[string][]byte{
		keys.Status("other", at):                  doc,
		keys.Status("web-1", at.Add(time.Second)): []byte("{not json"),
	}
	for k, body := range bad {
		st.Put(t.Context(), k, bytes.NewReader(body), int64(len(body)))
		if err := p.Ingest(t.Context(), k); err != nil {
			t.Fatal(err)
		}
		e, err := st.GetRange(t.Context(), keys.QuarantineError(k), 0, -1)
		if err != nil || !strings.Contains(string(e), "status") {
			t.Errorf("%s: error document %s %v", k, e, err)
		}
	}
}
