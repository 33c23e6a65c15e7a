package lake

import (
	"cmp"
	"context"
	"fmt"

	"github.com/flowlake/flowlake/schema"
)

// Writer holds one Table per lake table, all writing to the same Sink with
// the same Options. Rows of equal ts are ordered by:
//
//	http            id, tcp_id, seq
//	tcp             id
//	dns             id, agent, client_ip, client_port, txid
//	tls             agent, tcp_id, client_ip, client_port, server_ip, server_port, sni
//	parse_status    agent, stream, seq, input
//	capture_status  agent, stream, interface
//	edges_1m        agent, protocol, client_ip, server_ip, server_port, client_name, server_name, tls
//
// and, where all of those are equal, by the order they were added in.
// Rows added with AddHTTP, AddTCP and AddDNS are also counted in the
// edges_1m rollup (schema.Edges1m), whose rows Close writes.
// Each table buffers up to Options.MaxBufferBytes on its own, so a Writer
// may hold six times that. A Writer is not safe for concurrent use; its
// tables may be fed from different goroutines, one goroutine per table.
type Writer struct {
	HTTP          *Table[schema.HTTP]          // lake/http
	TCP           *Table[schema.TCP]           // lake/tcp
	DNS           *Table[schema.DNS]           // lake/dns
	TLS           *Table[schema.TLS]           // lake/tls
	ParseStatus   *Table[schema.ParseStatus]   // lake/parse_status
	CaptureStatus *Table[schema.CaptureStatus] // lake/capture_status
	Edges1m       *Table[schema.Edges1m]       // lake/edges_1m

	edges edgeRollup
}

// NewWriter returns a Writer whose tables write to sink with opts.
func NewWriter(sink Sink, opts Options) *Writer {
	return &Writer{
		HTTP:          NewTable(schema.TableHTTP, sink, opts, func(r *schema.HTTP) int64 { return r.TS }, lessHTTP),
		TCP:           NewTable(schema.TableTCP, sink, opts, func(r *schema.TCP) int64 { return r.TS }, lessTCP),
		DNS:           NewTable(schema.TableDNS, sink, opts, func(r *schema.DNS) int64 { return r.TS }, lessDNS),
		TLS:           NewTable(schema.TableTLS, sink, opts, func(r *schema.TLS) int64 { return r.TS }, lessTLS),
		ParseStatus:   NewTable(schema.TableParseStatus, sink, opts, func(r *schema.ParseStatus) int64 { return r.TS }, lessParseStatus),
		CaptureStatus: NewTable(schema.TableCaptureStatus, sink, opts, func(r *schema.CaptureStatus) int64 { return r.TS }, lessCaptureStatus),
		Edges1m:       NewTable(schema.TableEdges1m, sink, opts, func(r *schema.Edges1m) int64 { return r.TS }, lessEdges),
	}
}

// Close closes every table in schema.Tables order and returns their stats
// keyed by table name. It stops at the first table that fails; the map then
// holds the tables closed so far, the failed one included.
func (w *Writer) Close(ctx context.Context) (map[string]Stats, error) {
	out := make(map[string]Stats, len(schema.Tables))
	w.flushEdges()
	closers := []struct {
		name  string
		close func(context.Context) (Stats, error)
	}{
		{schema.TableHTTP, w.HTTP.Close},
		{schema.TableTCP, w.TCP.Close},
		{schema.TableDNS, w.DNS.Close},
		{schema.TableTLS, w.TLS.Close},
		{schema.TableParseStatus, w.ParseStatus.Close},
		{schema.TableCaptureStatus, w.CaptureStatus.Close},
		{schema.TableEdges1m, w.Edges1m.Close},
	}
	for _, c := range closers {
		st, err := c.close(ctx)
		out[c.name] = st
		if err != nil {
			return out, fmt.Errorf("close lake writer: %w", err)
		}
	}
	return out, nil
}

func lessHTTP(a, b *schema.HTTP) bool {
	return cmp.Or(
		cmp.Compare(a.ID, b.ID),
		cmp.Compare(a.TCPID, b.TCPID),
		cmp.Compare(a.Seq, b.Seq),
	) < 0
}

func lessTCP(a, b *schema.TCP) bool {
	return a.ID < b.ID
}

func lessDNS(a, b *schema.DNS) bool {
	return cmp.Or(
		cmp.Compare(a.ID, b.ID),
		cmp.Compare(a.Agent, b.Agent),
		cmp.Compare(a.ClientIP, b.ClientIP),
		cmp.Compare(a.ClientPort, b.ClientPort),
		cmp.Compare(a.TxID, b.TxID),
	) < 0
}

func lessTLS(a, b *schema.TLS) bool {
	return cmp.Or(
		cmp.Compare(a.Agent, b.Agent),
		cmp.Compare(a.TCPID, b.TCPID),
		cmp.Compare(a.ClientIP, b.ClientIP),
		cmp.Compare(a.ClientPort, b.ClientPort),
		cmp.Compare(a.ServerIP, b.ServerIP),
		cmp.Compare(a.ServerPort, b.ServerPort),
		cmp.Compare(a.SNI, b.SNI),
	) < 0
}

func lessParseStatus(a, b *schema.ParseStatus) bool {
	return cmp.Or(
		cmp.Compare(a.Agent, b.Agent),
		cmp.Compare(a.Stream, b.Stream),
		cmp.Compare(a.Seq, b.Seq),
		cmp.Compare(a.Input, b.Input),
	) < 0
}

func lessCaptureStatus(a, b *schema.CaptureStatus) bool {
	return cmp.Or(
		cmp.Compare(a.Agent, b.Agent),
		cmp.Compare(a.Stream, b.Stream),
		cmp.Compare(a.Interface, b.Interface),
	) < 0
}
