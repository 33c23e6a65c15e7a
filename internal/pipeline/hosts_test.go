package pipeline_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/flowlake/flowlake/internal/agent/hosts"
	"github.com/flowlake/flowlake/internal/capture"
	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/pipeline"
	"github.com/flowlake/flowlake/internal/segment"
	"github.com/flowlake/flowlake/internal/store"
	"github.com/flowlake/flowlake/internal/testcap"
	"github.com/flowlake/flowlake/schema"
)

// ingestCapture cuts a shared capture into segments of agent, stores them
// and runs them through the pipeline, ending the stream.
func ingestCapture(t *testing.T, st store.Store, agent, name string) {
	t.Helper()
	ctx := context.Background()
	var keysIn []string
	c := segment.NewCutter(agent, 0, 0, 2<<10, time.Hour, "file:"+name, func(data []byte, m segment.Meta) error {
		k := segment.Key(m)
		keysIn = append(keysIn, k)
		return st.Put(ctx, k, bytes.NewReader(data), int64(len(data)))
	})
	src := capture.Open([]string{testcap.Path(t, name)})
	defer src.Close()
	var p capture.Packet
	for {
		err := src.Next(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Add(p.TS, p.Link, p.Data, p.WireLen); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if len(keysIn) < 2 {
		t.Fatalf("%d segments: the test wants a chain", len(keysIn))
	}
	pl := pipeline.New(pipeline.Config{Store: st, WaitPredecessor: time.Second})
	for _, k := range keysIn {
		if err := pl.Ingest(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	if err := pl.FlushStream(ctx, keys.Stream{Agent: agent, Stream: 0}, uint64(len(keysIn)-1)); err != nil {
		t.Fatal(err)
	}
}

func httpRows(t *testing.T, st store.Store) []schema.HTTP {
	t.Helper()
	var rows []schema.HTTP
	err := st.List(context.Background(), keys.LakeTable(schema.TableHTTP), func(info store.Info) error {
		if !strings.HasSuffix(info.Key, keys.ExtParquet) {
			return nil
		}
		b, err := st.GetRange(context.Background(), info.Key, 0, -1)
		if err != nil {
			return err
		}
		rs, err := parquet.Read[schema.HTTP](bytes.NewReader(b), int64(len(b)))
		rows = append(rows, rs...)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return rows
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
