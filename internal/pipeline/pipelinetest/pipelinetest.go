// Package pipelinetest holds what tests of the pipeline and of its hosts
// share: segments cut from the shared captures, the reference rows of one
// engine run over the same packets, and an exact comparison of a lake with
// that reference.
//
// The comparison is the pipeline's correctness criterion: however segments
// arrive (out of order, twice, across a crash), the lake of a flushed
// stream holds exactly the rows of one parse of its packets.
package pipelinetest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/flowlake/flowlake/internal/capture"
	"github.com/flowlake/flowlake/internal/engine"
	"github.com/flowlake/flowlake/internal/keylog"
	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/segment"
	"github.com/flowlake/flowlake/internal/store"
	"github.com/flowlake/flowlake/internal/testcap"
	"github.com/flowlake/flowlake/schema"
)

// Agent is the agent id of the segments Cut makes.
const Agent = "probe"

// Stream is the stream of the segments Cut makes.
var Stream = keys.Stream{Agent: Agent, Stream: 0}

// Segment is one capture segment: its object key, bytes and metadata.
type Segment struct {
	Key  string
	Data []byte
	Meta segment.Meta
}

// Cut cuts the shared capture name into segments of stream Stream of about
// maxBytes captured bytes each, numbered from 0. It skips t when the shared
// captures are missing.
func Cut(t testing.TB, name string, maxBytes int64) []Segment {
	t.Helper()
	return CutAs(t, Agent, name, maxBytes)
}

// CutAs is Cut for stream 0 of another agent.
func CutAs(t testing.TB, agent, name string, maxBytes int64) []Segment {
	t.Helper()
	return CutFile(t, agent, testcap.Path(t, name), maxBytes)
}

// CutFile is CutAs for a capture file at path (one a test made).
func CutFile(t testing.TB, agent, path string, maxBytes int64) []Segment {
	t.Helper()
	name := filepath.Base(path)
	var out []Segment
	c := segment.NewCutter(agent, 0, 0, maxBytes, time.Hour, "file:"+name, func(data []byte, m segment.Meta) error {
		out = append(out, Segment{segment.Key(m), data, m})
		return nil
	})
	src := capture.Open([]string{path})
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
	return out
}

// Reference parses the packets of segs, in the order given, in one engine
// run of agent Agent, and finishes it: the rows a flushed stream must hold.
func Reference(t testing.TB, segs []Segment) *engine.Collector {
	t.Helper()
	return ReferenceKeys(t, segs, nil)
}

// ReferenceKeys is Reference with a TLS key log.
func ReferenceKeys(t testing.TB, segs []Segment, kl *keylog.Log) *engine.Collector {
	t.Helper()
	col := &engine.Collector{}
	e := engine.New(engine.Config{Agent: Agent, Keys: kl}, col)
	for _, s := range segs {
		e.SetInput(s.Key)
		r, err := capture.NewReader(bytes.NewReader(s.Data))
		if err != nil {
			t.Fatal(err)
		}
		for {
			data, ts, link, _, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			// Undecodable frames are counted by the engine; the pipeline
			// sees the same ones.
			_ = e.Frame(link, ts, data)
		}
		r.Close()
	}
	e.Finish()
	return col
}

// ReadTable reads every Parquet file of a lake table in st.
func ReadTable[T any](t testing.TB, st store.Store, table string) []T {
	t.Helper()
	var rows []T
	err := st.List(context.Background(), keys.LakeTable(table), func(info store.Info) error {
		if !strings.HasSuffix(info.Key, keys.ExtParquet) {
			return nil
		}
		b, err := st.GetRange(context.Background(), info.Key, 0, -1)
		if err != nil {
			return err
		}
		rs, err := parquet.Read[T](bytes.NewReader(b), int64(len(b)))
		if err != nil {
			return fmt.Errorf("%s: %w", info.Key, err)
		}
		rows = append(rows, rs...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func sortByID[T any](rows []T, id func(*T) string) {
	sort.Slice(rows, func(i, j int) bool { return id(&rows[i]) < id(&rows[j]) })
}

// CheckLake compares the http, tcp and dns tables of the lake in st with
// the reference rows exactly (as sets: both sides are sorted by row id).
func CheckLake(t testing.TB, st store.Store, want *engine.Collector) {
	t.Helper()
	http := ReadTable[schema.HTTP](t, st, schema.TableHTTP)
	tcp := ReadTable[schema.TCP](t, st, schema.TableTCP)
	dns := ReadTable[schema.DNS](t, st, schema.TableDNS)
	sortByID(http, func(r *schema.HTTP) string { return r.ID })
	sortByID(want.HTTPRows, func(r *schema.HTTP) string { return r.ID })
	sortByID(tcp, func(r *schema.TCP) string { return r.ID })
	sortByID(want.TCPRows, func(r *schema.TCP) string { return r.ID })
	sortByID(dns, func(r *schema.DNS) string { return r.ID })
	sortByID(want.DNSRows, func(r *schema.DNS) string { return r.ID })
	compare(t, "http", want.HTTPRows, http)
	compare(t, "tcp", want.TCPRows, tcp)
	compare(t, "dns", want.DNSRows, dns)
}

func compare[T any](t testing.TB, table string, want, got []T) {
	t.Helper()
	if len(want) != len(got) {
		t.Errorf("%s: lake has %d rows, reference %d", table, len(got), len(want))
		return
	}
	for i := range want {
		w, g := want[i], got[i]
		// Parquet gives back empty lists as nil.
		if !reflect.DeepEqual(normalize(w), normalize(g)) {
			t.Errorf("%s row %d differs:\n  want %+v\n  got  %+v", table, i, w, g)
			return
		}
	}
}

func normalize(v any) string {
	b, _ := json.Marshal(v)
	return strings.ReplaceAll(string(b), "null", "[]")
}

// Upload puts segs into st, in the order given.
func Upload(t testing.TB, st store.Store, segs []Segment) {
	t.Helper()
	for _, s := range segs {
		if err := st.Put(context.Background(), s.Key, bytes.NewReader(s.Data), int64(len(s.Data))); err != nil {
			t.Fatal(err)
		}
	}
}

// StatusRows returns the parse_status table of st, sorted by sequence
// number.
func StatusRows(t testing.TB, st store.Store) []schema.ParseStatus {
	t.Helper()
	rows := ReadTable[schema.ParseStatus](t, st, schema.TableParseStatus)
	sort.Slice(rows, func(i, j int) bool { return rows[i].Seq < rows[j].Seq })
	return rows
}
