package lake

import (
	"context"
	"reflect"
	"sync/atomic"
	"testing"

	"github.com/flowlake/flowlake/schema"
)

// countSink discards objects and counts their bytes.
type countSink struct{ bytes atomic.Int64 }

func (s *countSink) Put(_ context.Context, _ string, body []byte) error {
	s.bytes.Add(int64(len(body)))
	return nil
}

// BenchmarkTableHTTP writes 100k realistic http rows spread over two hours
// (buffer, sort, encode, compress). SetBytes is the estimated uncompressed
// row size, so MB/s is row data per second.
func BenchmarkTableHTTP(b *testing.B) {
	const n = 100_000
	rows := make([]schema.HTTP, n)
	var rowBytes int64
	sizer, err := newRowSizer(reflect.TypeFor[schema.HTTP]())
	if err != nil {
		b.Fatal(err)
	}
	for i := range rows {
		// Two partitions; arrival roughly but not exactly in time order.
		rows[i] = httpRow(i, hour0+int64(i)*50_000+int64(i%7)*30_000)
		pb, _, _ := sizer.prepare(reflect.ValueOf(&rows[i]).Elem())
		rowBytes += pb
	}
	b.SetBytes(rowBytes)
	b.ReportAllocs()
	var out int64
	for b.Loop() {
		sink := &countSink{}
		tbl := NewTable(schema.TableHTTP, sink, Options{Name: "bench"}, func(r *schema.HTTP) int64 { return r.TS }, lessHTTP)
		for _, r := range rows {
			tbl.Add(r)
		}
		st, err := tbl.Close(context.Background())
		if err != nil {
			b.Fatal(err)
		}
		if st.Rows != n {
			b.Fatalf("wrote %d rows", st.Rows)
		}
		out = sink.bytes.Load()
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "rows/s")
	b.ReportMetric(float64(out)/n, "file-B/row")
	b.ReportMetric(float64(rowBytes)/n, "est-B/row")
}
