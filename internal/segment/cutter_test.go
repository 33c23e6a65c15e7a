package segment

import (
	"bytes"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
)

// emitted is one segment a Cutter emitted.
type emitted struct {
	data []byte
	meta Meta
}

// cut runs ps through a new Cutter and returns what it emitted.
func cut(t testing.TB, firstSeq uint64, maxBytes int64, maxSpan time.Duration, ps []pkt) []emitted {
	t.Helper()
	var out []emitted
	c := NewCutter("cutter", 4, firstSeq, maxBytes, maxSpan, "test", func(data []byte, m Meta) error {
		out = append(out, emitted{data, m})
		return nil
	})
	for i, p := range ps {
		if err := c.Add(p.ts, p.link, p.data, p.wire); err != nil {
			t.Fatalf("add packet %d: %v", i, err)
		}
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	return out
}

// checkSegments checks that segs are numbered from firstSeq, carry metadata
// that ReadMeta reads back and that agrees with their packets, and together
// hold exactly ps in order. It returns the packet counts per segment.
func checkSegments(t *testing.T, segs []emitted, firstSeq uint64, ps []pkt) []int {
	t.Helper()
	var all []pkt
	var counts []int
	for i, s := range segs {
		if s.meta.Seq != firstSeq+uint64(i) {
			t.Errorf("segment %d has seq %d, want %d", i, s.meta.Seq, firstSeq+uint64(i))
		}
		m, err := ReadMeta(bytes.NewReader(s.data))
		if err != nil {
			t.Fatalf("segment %d: %v", i, err)
		}
		if !reflect.DeepEqual(m, s.meta) {
			t.Errorf("segment %d: ReadMeta %+v, emitted %+v", i, m, s.meta)
		}
		got := decode(t, s.data)
		first, last, size, links := metaOf(got)
		if m.FirstTS != first || m.LastTS != last || m.Bytes != size || m.Packets != int64(len(got)) || !reflect.DeepEqual(m.LinkTypes, links) {
			t.Errorf("segment %d: meta %+v disagrees with its packets (first %d last %d bytes %d packets %d links %v)",
				i, m, first, last, size, len(got), links)
		}
		counts = append(counts, len(got))
		all = append(all, got...)
	}
	equalPkts(t, "reassembled", all, ps)
	return counts
}

func fixed(n, size int, step time.Duration) []pkt {
	ps := make([]pkt, n)
	for i := range ps {
		d := bytes.Repeat([]byte{byte(i)}, size)
		ps[i] = pkt{ts: 1_600_000_000e9 + int64(i)*int64(step), link: layers.LinkTypeEthernet, data: d, wire: size}
	}
	return ps
}

func TestCutterBySize(t *testing.T) {
	ps := fixed(95, 1000, time.Millisecond)
	segs := cut(t, 7, 10_000, time.Hour, ps)
	counts := checkSegments(t, segs, 7, ps)
	want := []int{10, 10, 10, 10, 10, 10, 10, 10, 10, 5}
	if !reflect.DeepEqual(counts, want) {
		t.Errorf("packets per segment %v, want %v", counts, want)
	}
}

func TestCutterBySpan(t *testing.T) {
	// Packets every 250 ms: a 1 s span holds 5 of them (0 to 1.0 s inclusive).
	ps := fixed(23, 10, 250*time.Millisecond)
	counts := checkSegments(t, cut(t, 0, 1<<20, time.Second, ps), 0, ps)
	if want := []int{5, 5, 5, 5, 3}; !reflect.DeepEqual(counts, want) {
		t.Errorf("packets per segment %v, want %v", counts, want)
	}
	// A packet far back in time also stretches the span and starts a segment.
	ps = fixed(6, 10, 100*time.Millisecond)
	ps[3].ts -= int64(2 * time.Second)
	counts = checkSegments(t, cut(t, 0, 1<<20, time.Second, ps), 0, ps)
	if want := []int{3, 1, 2}; !reflect.DeepEqual(counts, want) {
		t.Errorf("packets per segment %v, want %v", counts, want)
	}
}

func TestCutterBigPacket(t *testing.T) {
	ps := []pkt{
		{ts: 1, link: 1, data: make([]byte, 300), wire: 300},
		{ts: 2, link: 1, data: make([]byte, 2000), wire: 2000},
		{ts: 3, link: 1, data: make([]byte, 300), wire: 300},
		{ts: 4, link: 1, data: make([]byte, 700), wire: 700},
		{ts: 5, link: 1, data: make([]byte, 1), wire: 1},
	}
	counts := checkSegments(t, cut(t, 0, 1000, time.Hour, ps), 0, ps)
	if want := []int{1, 1, 2, 1}; !reflect.DeepEqual(counts, want) {
		t.Errorf("packets per segment %v, want %v", counts, want)
	}
}

func TestCutterDefaults(t *testing.T) {
	c := NewCutter("a", 0, 0, 0, -time.Second, "", nil)
	if c.maxBytes != DefaultMaxBytes || c.maxSpan != DefaultMaxSpan {
		t.Errorf("limits %d, %v; want %d, %v", c.maxBytes, c.maxSpan, DefaultMaxBytes, DefaultMaxSpan)
	}
	if DefaultMaxBytes != 8<<20 || DefaultMaxSpan != 10*time.Second {
		t.Errorf("defaults %d, %v; want 8 MiB and 10 s", DefaultMaxBytes, DefaultMaxSpan)
	}
	// 9 MiB in 64 KiB packets within 10 s: the first segment takes 8 MiB.
	ps := fixed(144, 64<<10, 60*time.Millisecond)
	counts := checkSegments(t, cut(t, 0, 0, 0, ps), 0, ps)
	if want := []int{128, 16}; !reflect.DeepEqual(counts, want) {
		t.Errorf("packets per segment %v, want %v", counts, want)
	}
	// Packets every 3 s: the default span of 10 s holds 4.
	ps = fixed(9, 10, 3*time.Second)
	counts = checkSegments(t, cut(t, 0, 0, 0, ps), 0, ps)
	if want := []int{4, 4, 1}; !reflect.DeepEqual(counts, want) {
		t.Errorf("packets per segment %v, want %v", counts, want)
	}
}

func TestCutterFlushAndSource(t *testing.T) {
	var got []Meta
	c := NewCutter("a", 1, 100, 1<<20, time.Hour, "file:one", func(_ []byte, m Meta) error {
		got = append(got, m)
		return nil
	})
	if err := c.Flush(); err != nil || len(got) != 0 {
		t.Fatalf("Flush of nothing: %v, emitted %d", err, len(got))
	}
	add := func(ts int64) {
		t.Helper()
		if err := c.Add(ts, layers.LinkTypeEthernet, []byte{1, 2, 3}, 3); err != nil {
			t.Fatal(err)
		}
	}
	add(1)
	c.SetSource("file:two") // the open segment keeps file:one
	add(2)
	if c.NextSeq() != 100 {
		t.Errorf("NextSeq %d with segment 100 open", c.NextSeq())
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if c.NextSeq() != 101 {
		t.Errorf("NextSeq %d after flushing segment 100", c.NextSeq())
	}
	add(3)
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if len(got) != 2 || got[0].Seq != 100 || got[0].Packets != 2 || got[0].Source != "file:one" ||
		got[1].Seq != 101 || got[1].Packets != 1 || got[1].Source != "file:two" {
		t.Errorf("emitted %+v", got)
	}
}

func TestCutterBadPacket(t *testing.T) {
	ps := fixed(6, 100, time.Millisecond)
	var segs []emitted
	c := NewCutter("a", 0, 0, 250, time.Hour, "", func(data []byte, m Meta) error {
		segs = append(segs, emitted{data, m})
		return nil
	})
	for i, p := range ps {
		if err := c.Add(p.ts, p.link, p.data, p.wire); err != nil {
			t.Fatal(err)
		}
		if i == 2 {
			// Rejected without flushing the open segment or stopping the Cutter.
			if err := c.Add(-5, 1, []byte{1}, 1); err == nil || !strings.Contains(err.Error(), "before 1970") {
				t.Fatalf("negative timestamp: %v", err)
			}
			if err := c.Add(p.ts, 1, make([]byte, MaxPacketSize+1), 0); err == nil {
				t.Fatal("huge packet accepted")
			}
		}
	}
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	if counts := checkSegments(t, segs, 0, ps); !reflect.DeepEqual(counts, []int{2, 2, 2}) {
		t.Errorf("packets per segment %v", counts)
	}
	bad := NewCutter("no/slash", 0, 0, 0, 0, "", func([]byte, Meta) error { return nil })
	if err := bad.Add(1, 1, []byte{1}, 1); err == nil || !strings.Contains(err.Error(), "agent id") {
		t.Errorf("bad agent: %v", err)
	}
}

func TestCutterEmitError(t *testing.T) {
	boom := errors.New("disk full")
	calls := 0
	c := NewCutter("a", 0, 0, 100, time.Hour, "", func([]byte, Meta) error {
		calls++
		if calls == 2 {
			return boom
		}
		return nil
	})
	var err error
	for i := 0; err == nil && i < 10; i++ {
		err = c.Add(int64(i), 1, make([]byte, 60), 60)
	}
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "emit segment 1") {
		t.Fatalf("Add: %v, want the emit error of segment 1", err)
	}
	if err := c.Add(100, 1, []byte{1}, 1); !errors.Is(err, boom) {
		t.Errorf("Add after failure: %v", err)
	}
	if err := c.Flush(); !errors.Is(err, boom) {
		t.Errorf("Flush after failure: %v", err)
	}
	if calls != 2 {
		t.Errorf("emit called %d times after the failure", calls-2)
	}
}

// A real capture whose timestamps jump by years cut by size and span comes
// back whole, and cutting it again gives the same bytes.
func TestCutterRealCapture(t *testing.T) {
	ps := readCaptures(t, "ndpi-1kxun.pcap")
	a := cut(t, 3, 200<<10, 10*time.Second, ps)
	checkSegments(t, a, 3, ps)
	if len(a) < 10 {
		t.Errorf("only %d segments", len(a))
	}
	hours := map[string]bool{}
	for _, s := range a {
		if s.meta.Bytes > 200<<10 || time.Duration(s.meta.LastTS-s.meta.FirstTS) > 10*time.Second {
			t.Errorf("segment %d over a limit: %+v", s.meta.Seq, s.meta)
		}
		k := Key(s.meta)
		hours[k[:strings.LastIndexByte(k, '/')]] = true
	}
	if len(hours) < 2 {
		t.Errorf("segments of a capture spanning years all in %v", hours)
	}
	b := cut(t, 3, 200<<10, 10*time.Second, ps)
	if len(a) != len(b) {
		t.Fatalf("second run: %d segments, first %d", len(b), len(a))
	}
	for i := range a {
		if !bytes.Equal(a[i].data, b[i].data) || !reflect.DeepEqual(a[i].meta, b[i].meta) {
			t.Errorf("segment %d differs between runs", i)
		}
	}
}
