package query

import (
	"fmt"

	"github.com/flowlake/flowlake/internal/filter"
	"github.com/flowlake/flowlake/schema"
)

// hist is a latency histogram (schema.LatencyBucket buckets).
type hist = [schema.LatencyBuckets]int64

// stats accumulates what map edges and timeline buckets report.
type stats struct {
	count, errors, bytes, durMax int64
	hist                         hist
}

func (s *stats) merge(o *stats) {
	s.count += o.count
	s.errors += o.errors
	s.bytes += o.bytes
	s.durMax = max(s.durMax, o.durMax)
	for k := range s.hist {
		s.hist[k] += o.hist[k]
	}
}

func (s *stats) p(q float64) int64 { return schema.LatencyQuantile(&s.hist, s.durMax, q) }

// measurer extracts per-row measures from a batch of one table: raw rows
// count once; rollup rows carry their counts.
type measurer struct {
	table  *tableDef
	status *vec
	perr   *vec
	b1, b2 *vec
	dur    *vec
	close  *vec
	app    *vec
	hx     *vec
	resp   *vec
	rcode  *vec
	// rollup
	count, errs, bytes, dmax, lat *vec
}

// measureColumns are the columns a measurer reads, per table.
var measureColumns = map[string][]string{
	schema.TableHTTP:    {"status", "error", "req_body_bytes", "resp_body_bytes", "duration_us"},
	schema.TableTCP:     {"close", "app_protocol", "http_exchanges", "bytes_c2s", "bytes_s2c", "duration_us"},
	schema.TableDNS:     {"responded", "rcode", "latency_us"},
	schema.TableEdges1m: {"protocol", "count", "errors", "bytes", "duration_max_us", "lat_hist"},
}

func (m *measurer) reset(t *tableDef, b *batch) {
	*m = measurer{table: t}
	switch t.name {
	case schema.TableHTTP:
		m.status, m.perr, m.b1, m.b2, m.dur = b.col("status"), b.col("error"), b.col("req_body_bytes"), b.col("resp_body_bytes"), b.col("duration_us")
	case schema.TableTCP:
		m.close, m.app, m.hx, m.b1, m.b2, m.dur = b.col("close"), b.col("app_protocol"), b.col("http_exchanges"), b.col("bytes_c2s"), b.col("bytes_s2c"), b.col("duration_us")
	case schema.TableDNS:
		m.resp, m.rcode, m.dur = b.col("responded"), b.col("rcode"), b.col("latency_us")
	case schema.TableEdges1m:
		m.app, m.count, m.errs, m.bytes, m.dmax, m.lat = b.col("protocol"), b.col("count"), b.col("errors"), b.col("bytes"), b.col("duration_max_us"), b.col("lat_hist")
	}
}

// add adds row i to s.
func (m *measurer) add(s *stats, i int) error {
	switch m.table.name {
	case schema.TableHTTP:
		s.count++
		if schema.HTTPIsError(int32(m.status.int(i)), m.perr.str(i)) {
			s.errors++
		}
		s.bytes += m.b1.int(i) + m.b2.int(i)
		d := max(m.dur.int(i), 0)
		s.durMax = max(s.durMax, d)
		s.hist[schema.LatencyBucket(d)]++
	case schema.TableTCP:
		s.count++
		if schema.TCPIsError(m.close.str(i)) {
			s.errors++
		}
		s.bytes += m.b1.int(i) + m.b2.int(i)
		d := max(m.dur.int(i), 0)
		s.durMax = max(s.durMax, d)
		s.hist[schema.LatencyBucket(d)]++
	case schema.TableDNS:
		s.count++
		resp := m.resp.bool(i)
		if schema.DNSIsError(resp, m.rcode.str(i)) {
			s.errors++
		}
		if resp {
			d := max(m.dur.int(i), 0)
			s.durMax = max(s.durMax, d)
			s.hist[schema.LatencyBucket(d)]++
		}
	case schema.TableEdges1m:
		s.count += m.count.int(i)
		s.errors += m.errs.int(i)
		s.bytes += m.bytes.int(i)
		s.durMax = max(s.durMax, m.dmax.int(i))
		if err := schema.AddLatHist(&s.hist, m.lat.str(i)); err != nil {
			return fmt.Errorf("edges_1m: %w", err)
		}
	}
	return nil
}

// protocol returns the edge protocol of row i.
func (m *measurer) protocol(i int) string {
	switch m.table.name {
	case schema.TableHTTP:
		return schema.ProtoHTTP
	case schema.TableDNS:
		return schema.ProtoDNS
	case schema.TableTCP:
		return schema.TCPEdgeProtocol(m.app.str(i), int32(m.hx.int(i)))
	}
	return m.app.str(i)
}

// rawTables are the tables whose rows map and timeline count, with the
// extra condition each needs.
var rawTables = []struct {
	t     *tableDef
	extra *filter.Expr
}{
	{httpTable, nil},
	{tcpTable, strIn("protocol", []string{schema.ProtoTCP, schema.ProtoTLS})},
	{dnsTable, nil},
}

// rollupFields are the filter fields the edges_1m rollup can answer.
func rollupCompatible(e *filter.Expr) bool { return edgesTable.supports(e) }
