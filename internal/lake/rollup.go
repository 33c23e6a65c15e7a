package lake

import (
	"cmp"
	"slices"
	"sync"

	"github.com/flowlake/flowlake/schema"
)

// edgeKey is the key of one edges_1m row.
type edgeKey struct {
	minute     int64
	agent      string
	protocol   string
	clientIP   string
	serverIP   string
	serverPort int32
	clientName string
	serverName string
	tls        bool
}

// edgeRollup aggregates the rows a Writer writes into edges_1m rows. It
// is safe for concurrent use (a Writer's tables may be fed from different
// goroutines).
type edgeRollup struct {
	mu   sync.Mutex
	rows map[edgeKey]*edgeAcc
}

// edgeAcc is one edges_1m row being aggregated.
type edgeAcc struct {
	row  schema.Edges1m
	hist [schema.LatencyBuckets]int64
}

// add counts one row under k.
func (a *edgeRollup) add(k edgeKey, isErr bool, bytes, durUS int64, hasDur bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.rows == nil {
		a.rows = make(map[edgeKey]*edgeAcc)
	}
	acc := a.rows[k]
	if acc == nil {
		acc = &edgeAcc{row: schema.Edges1m{
			TS: k.minute, Agent: k.agent, Protocol: k.protocol, ClientIP: k.clientIP, ServerIP: k.serverIP,
			ServerPort: k.serverPort, ClientName: k.clientName, ServerName: k.serverName, TLS: k.tls,
		}}
		a.rows[k] = acc
	}
	r := &acc.row
	r.Count++
	if isErr {
		r.Errors++
	}
	r.Bytes += bytes
	if hasDur {
		durUS = max(durUS, 0)
		r.DurationSumUS += durUS
		r.DurationMaxUS = max(r.DurationMaxUS, durUS)
		acc.hist[schema.LatencyBucket(durUS)]++
	}
}

// take returns the aggregated rows and resets the rollup.
func (a *edgeRollup) take() []*schema.Edges1m {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := make([]*schema.Edges1m, 0, len(a.rows))
	for _, acc := range a.rows {
		acc.row.LatHist = schema.EncodeLatHist(&acc.hist)
		out = append(out, &acc.row)
	}
	a.rows = nil
	slices.SortFunc(out, func(x, y *schema.Edges1m) int {
		return cmp.Or(cmp.Compare(x.TS, y.TS), compareEdges(x, y))
	})
	return out
}

// AddHTTP adds r to the http table and counts it in the edges_1m rollup.
func (w *Writer) AddHTTP(r *schema.HTTP) {
	w.HTTP.Add(*r)
	w.edges.add(edgeKey{
		minute: schema.MinuteOf(r.TS), agent: r.Agent, protocol: schema.ProtoHTTP,
		clientIP: r.ClientIP, serverIP: r.ServerIP, serverPort: r.ServerPort,
		clientName: r.ClientName, serverName: r.ServerName, tls: r.TLS,
	}, schema.HTTPIsError(r.Status, r.Error), r.ReqBodyBytes+r.RespBodyBytes, r.DurationUS, true)
}

// AddTCP adds r to the tcp table and, for a connection that counts as one
// (schema.TCPEdgeProtocol), to the edges_1m rollup.
func (w *Writer) AddTCP(r *schema.TCP) {
	w.TCP.Add(*r)
	proto := schema.TCPEdgeProtocol(r.AppProtocol, r.HTTPExchanges)
	if proto == "" {
		return
	}
	w.edges.add(edgeKey{
		minute: schema.MinuteOf(r.TS), agent: r.Agent, protocol: proto,
		clientIP: r.ClientIP, serverIP: r.ServerIP, serverPort: r.ServerPort,
		clientName: r.ClientName, serverName: r.ServerName, tls: proto == schema.ProtoTLS,
	}, schema.TCPIsError(r.Close), r.BytesC2S+r.BytesS2C, r.DurationUS, true)
}

// AddDNS adds r to the dns table and counts it in the edges_1m rollup.
func (w *Writer) AddDNS(r *schema.DNS) {
	w.DNS.Add(*r)
	w.edges.add(edgeKey{
		minute: schema.MinuteOf(r.TS), agent: r.Agent, protocol: schema.ProtoDNS,
		clientIP: r.ClientIP, serverIP: r.ServerIP, serverPort: r.ServerPort,
	}, schema.DNSIsError(r.Responded, r.RCode), 0, r.LatencyUS, r.Responded)
}

// flushEdges adds the rollup rows aggregated so far to the edges_1m table.
func (w *Writer) flushEdges() {
	for _, r := range w.edges.take() {
		w.Edges1m.Add(*r)
	}
}

func compareEdges(a, b *schema.Edges1m) int {
	return cmp.Or(
		cmp.Compare(a.Agent, b.Agent),
		cmp.Compare(a.Protocol, b.Protocol),
		cmp.Compare(a.ClientIP, b.ClientIP),
		cmp.Compare(a.ServerIP, b.ServerIP),
		cmp.Compare(a.ServerPort, b.ServerPort),
		cmp.Compare(a.ClientName, b.ClientName),
		cmp.Compare(a.ServerName, b.ServerName),
		boolCmp(a.TLS, b.TLS),
	)
}

func lessEdges(a, b *schema.Edges1m) bool { return compareEdges(a, b) < 0 }

func boolCmp(a, b bool) int {
	switch {
	case a == b:
		return 0
	case !a:
		return -1
	}
	return 1
}
