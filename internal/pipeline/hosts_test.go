package pipeline_test

import (
	"bytes"
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/flowlake/flowlake/internal/agent/hosts"
	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/pipeline"
	"github.com/flowlake/flowlake/internal/pipeline/pipelinetest"
	"github.com/flowlake/flowlake/internal/store"
	"github.com/flowlake/flowlake/schema"
)

// ingestCapture cuts a shared capture into segments of agent, stores them
// and runs them through the pipeline, ending the stream.
func ingestCapture(t *testing.T, st store.Store, agent, name string) {
	t.Helper()
	ctx := context.Background()
	segs := pipelinetest.CutAs(t, agent, name, 2<<10)
	if len(segs) < 2 {
		t.Fatalf("%d segments: the test wants a chain", len(segs))
	}
	pipelinetest.Upload(t, st, segs)
	pl := pipeline.New(pipeline.Config{Store: st, WaitPredecessor: time.Second})
	for _, s := range segs {
		if err := pl.Ingest(ctx, s.Key); err != nil {
			t.Fatal(err)
		}
	}
	if err := pl.FlushStream(ctx, keys.Stream{Agent: agent, Stream: 0}, uint64(len(segs)-1)); err != nil {
		t.Fatal(err)
	}
}

func httpRows(t *testing.T, st store.Store) []schema.HTTP {
	t.Helper()
	return pipelinetest.ReadTable[schema.HTTP](t, st, schema.TableHTTP)
}

// The names an agent published from its /etc/hosts name the endpoints of
// its rows, over the names learned from traffic (here the Host header).
func TestAgentHostNames(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name             string
		doc              string // "" for none
		server, client   string
		serverFromTraffc bool
	}{
		{name: "published", server: "web.static", client: "client.static"},
		{name: "none", doc: "-", serverFromTraffc: true},
		{name: "unreadable", doc: "{not json", serverFromTraffc: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			st := store.NewMem()
			var doc []byte
			switch c.doc {
			case "":
				var err error
				doc, err = hosts.Encode("probe", "/etc/hosts", map[netip.Addr]string{
					netip.MustParseAddr("10.180.156.249"): "web.static",
					netip.MustParseAddr("10.180.156.141"): "client.static",
				})
				if err != nil {
					t.Fatal(err)
				}
			case "-":
			default:
				doc = []byte(c.doc)
			}
			if doc != nil {
				if err := st.Put(ctx, hosts.Key("probe"), bytes.NewReader(doc), int64(len(doc))); err != nil {
					t.Fatal(err)
				}
			}
			ingestCapture(t, st, "probe", "ark-http-simple-get.pcap")
			rows := httpRows(t, st)
			if len(rows) != 1 {
				t.Fatalf("%d http rows", len(rows))
			}
			r := rows[0]
			if c.serverFromTraffc {
				if r.ServerName != "xxxxxxxxxxxxx.xxx.com" {
					t.Errorf("server_name %q, want the Host header's", r.ServerName)
				}
				return
			}
			if r.ServerName != c.server || r.ClientName != c.client {
				t.Errorf("names %q -> %q, want %q -> %q", r.ClientName, r.ServerName, c.client, c.server)
			}
		})
	}
}
