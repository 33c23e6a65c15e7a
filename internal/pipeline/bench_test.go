package pipeline

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/pipeline/pipelinetest"
	"github.com/flowlake/flowlake/internal/store"
)

// BenchmarkSegmentLatency measures, on a local-directory store, the time
// from a segment's PUT to its rows being in the lake (ingest + parse +
// Parquet + checkpoint commit) for 8 MiB segments of the shared real-world
// capture, one stream.
func BenchmarkSegmentLatency(b *testing.B) {
	segs := cutB(b, "bench-mixed-web-24mb.pcap", 8<<20)
	var captured int64
	for _, s := range segs {
		captured += s.Meta.Bytes
	}
	b.SetBytes(captured)
	b.ResetTimer()
	var worst time.Duration
	var total time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		st, err := store.NewLocal(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		p := New(Config{Store: st, WaitPredecessor: time.Second})
		b.StartTimer()
		for _, s := range segs {
			start := time.Now()
			if err := st.Put(b.Context(), s.Key, bytes.NewReader(s.Data), int64(len(s.Data))); err != nil {
				b.Fatal(err)
			}
			if err := p.Ingest(b.Context(), s.Key); err != nil {
				b.Fatal(err)
			}
			d := time.Since(start)
			total += d
			worst = max(worst, d)
		}
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N*len(segs)), "ms/segment")
	b.ReportMetric(float64(worst.Milliseconds()), "worst-ms")
}

// BenchmarkTwoStreams measures throughput with two streams parsed in
// parallel (each stream is ordered; streams are independent).
func BenchmarkTwoStreams(b *testing.B) {
	segs := cutB(b, "bench-mixed-web-24mb.pcap", 8<<20)
	var captured int64
	for _, s := range segs {
		captured += s.Meta.Bytes
	}
	b.SetBytes(2 * captured)
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		st, err := store.NewLocal(b.TempDir())
		if err != nil {
			b.Fatal(err)
		}
		// The second stream carries the same packets under another agent.
		streams := [][]pipelinetest.Segment{segs, rekey(b, segs, "probe2")}
		p := New(Config{Store: st, WaitPredecessor: time.Second})
		b.StartTimer()
		var wg sync.WaitGroup
		for _, ss := range streams {
			wg.Add(1)
			go func(ss []pipelinetest.Segment) {
				defer wg.Done()
				for _, s := range ss {
					if err := st.Put(b.Context(), s.Key, bytes.NewReader(s.Data), int64(len(s.Data))); err != nil {
						b.Error(err)
						return
					}
					if err := p.Ingest(b.Context(), s.Key); err != nil {
						b.Error(err)
						return
					}
				}
			}(ss)
		}
		wg.Wait()
	}
}

func cutB(b *testing.B, name string, maxBytes int64) []pipelinetest.Segment {
	b.Helper()
	out := pipelinetest.Cut(b, name, maxBytes)
	if len(out) == 0 {
		b.Fatal("no segments")
	}
	return out
}

// rekey stores the same segment bytes under another agent's keys; ingest
// checks the key, parse reads the agent from it.
func rekey(b *testing.B, segs []pipelinetest.Segment, agent string) []pipelinetest.Segment {
	out := make([]pipelinetest.Segment, len(segs))
	for i, s := range segs {
		k, err := keys.Parse(s.Key)
		if err != nil {
			b.Fatal(err)
		}
		k.Stream.Agent = agent
		out[i] = pipelinetest.Segment{Key: keys.Segment(k.Stream, k.Seq, k.Hour), Data: s.Data, Meta: s.Meta}
	}
	if out[0].Key == segs[0].Key {
		b.Fatal(fmt.Sprint("rekey did not change the key ", out[0].Key))
	}
	return out
}
