package engine

import (
	"errors"
	"io"
	"testing"

	"github.com/gopacket/gopacket/layers"

	"github.com/flowlake/flowlake/internal/capture"
	"github.com/flowlake/flowlake/internal/decode"
	"github.com/flowlake/flowlake/internal/tcp"
	"github.com/flowlake/flowlake/internal/testcap"
	"github.com/flowlake/flowlake/schema"
)

type frame struct {
	link layers.LinkType
	ts   int64
	data []byte
}

// loadFrames reads a shared capture into memory so that benchmarks time
// the stage, not the disk.
func loadFrames(b testing.TB, name string) ([]frame, int64) {
	b.Helper()
	src := capture.Open([]string{testcap.Path(b, name)})
	defer src.Close()
	var out []frame
	var total int64
	var p capture.Packet
	for {
		err := src.Next(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, frame{p.Link, p.TS, append([]byte(nil), p.Data...)})
		total += int64(len(p.Data))
	}
	return out, total
}

const benchCapture = "bench-mixed-web-24mb.pcap"

// BenchmarkDecode: link/IP/TCP/UDP decoding only.
func BenchmarkDecode(b *testing.B) {
	frames, total := loadFrames(b, benchCapture)
	d := decode.New()
	var p decode.Packet
	b.SetBytes(total)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		for _, f := range frames {
			d.Decode(f.link, f.ts, f.data, &p)
		}
	}
	b.ReportMetric(float64(len(frames)*b.N)/b.Elapsed().Seconds(), "pkt/s")
}

type nopHandler struct{}

func (nopHandler) Data(tcp.Dir, int64, []byte) {}
func (nopHandler) Gap(tcp.Dir, int64, int)     {}
func (nopHandler) Close(int64)                 {}

// BenchmarkReassembly: TCP reassembly of pre-decoded packets with a
// handler that does nothing.
func BenchmarkReassembly(b *testing.B) {
	frames, _ := loadFrames(b, benchCapture)
	d := decode.New()
	var pkts []decode.Packet
	var tcpBytes int64
	for _, f := range frames {
		var p decode.Packet
		if d.Decode(f.link, f.ts, f.data, &p) == nil && p.Proto == decode.ProtoTCP {
			p.Payload = append([]byte(nil), p.Payload...)
			pkts = append(pkts, p)
			tcpBytes += int64(len(p.Payload))
		}
	}
	b.SetBytes(tcpBytes)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a := tcp.NewAssembler(tcp.Config{}, func(*tcp.Conn) tcp.StreamHandler { return nopHandler{} }, func(*tcp.Conn) {})
		for j := range pkts {
			a.Packet(&pkts[j])
		}
		a.Flush()
	}
	b.ReportMetric(float64(len(pkts)*b.N)/b.Elapsed().Seconds(), "pkt/s")
}

type countSink struct{ n int }

func (c *countSink) HTTP(*schema.HTTP) { c.n++ }
func (c *countSink) TCP(*schema.TCP)   { c.n++ }
func (c *countSink) DNS(*schema.DNS)   { c.n++ }
func (c *countSink) TLS(*schema.TLS)   { c.n++ }

// BenchmarkEngine: everything from frames to rows (decode, reassembly,
// protocol detection, HTTP/DNS/TLS parsing, redaction, row building), but
// not Parquet writing (see internal/lake's benchmarks).
func BenchmarkEngine(b *testing.B) {
	frames, total := loadFrames(b, benchCapture)
	b.SetBytes(total)
	b.ReportAllocs()
	b.ResetTimer()
	var rows int
	for i := 0; i < b.N; i++ {
		sink := &countSink{}
		e := New(Config{Agent: "bench"}, sink)
		for _, f := range frames {
			e.Frame(f.link, f.ts, f.data)
		}
		e.Finish()
		rows = sink.n
	}
	b.ReportMetric(float64(len(frames)*b.N)/b.Elapsed().Seconds(), "pkt/s")
	b.ReportMetric(float64(rows), "rows")
}
