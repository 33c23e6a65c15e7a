package source

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/flowlake/flowlake/internal/capture"
	"github.com/flowlake/flowlake/internal/decode"
	"github.com/flowlake/flowlake/internal/testcap"
)

// rec is a packet a test received.
type rec struct {
	stream int
	ts     int64
	link   layers.LinkType
	data   []byte
}

// collector is an Emit that keeps copies of the packets.
type collector struct {
	mu   sync.Mutex
	recs []rec
}

func (c *collector) emit(k int, p *Packet) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.recs = append(c.recs, rec{k, p.TS, p.Link, bytes.Clone(p.Data)})
	return nil
}

// flowKey is a connection without direction: the two endpoints in order.
func flowKey(t testing.TB, link layers.LinkType, data []byte) (string, bool) {
	t.Helper()
	var p decode.Packet
	if err := decode.New().Decode(link, 0, data, &p); err != nil {
		return "", false
	}
	a := netip.AddrPortFrom(p.Src, p.SrcPort).String()
	b := netip.AddrPortFrom(p.Dst, p.DstPort).String()
	if a > b {
		a, b = b, a
	}
	return fmt.Sprintf("%d %s %s", p.Proto, a, b), true
}

// checkFlowsInOneStream fails t when a connection's packets are in more
// than one stream, and returns the number of streams used.
func checkFlowsInOneStream(t testing.TB, recs []rec) int {
	t.Helper()
	streamOf := map[string]int{}
	used := map[int]bool{}
	for _, r := range recs {
		used[r.stream] = true
		key, ok := flowKey(t, r.link, r.data)
		if !ok {
			continue
		}
		if k, seen := streamOf[key]; seen && k != r.stream {
			t.Errorf("flow %s in streams %d and %d", key, k, r.stream)
			continue
		}
		streamOf[key] = r.stream
	}
	return len(used)
}

func readAll(t *testing.T, path string) []rec {
	t.Helper()
	src := capture.Open([]string{path})
	defer src.Close()
	var out []rec
	var p capture.Packet
	for {
		err := src.Next(&p)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, rec{0, p.TS, p.Link, bytes.Clone(p.Data)})
	}
}

// A replay over K streams gives every packet once, in order within each
// stream, each connection (both directions) in one stream.
func TestReplaySplitsByFlow(t *testing.T) {
	path := testcap.Path(t, "zeek-wikipedia.pcap")
	want := readAll(t, path)
	r, err := NewReplay(ReplayConfig{Files: []string{path}, Streams: 3})
	if err != nil {
		t.Fatal(err)
	}
	var c collector
	if err := r.Run(context.Background(), c.emit); err != nil {
		t.Fatal(err)
	}
	if len(c.recs) != len(want) {
		t.Fatalf("%d packets replayed, the file has %d", len(c.recs), len(want))
	}
	for i := range want {
		if c.recs[i].ts != want[i].ts || !bytes.Equal(c.recs[i].data, want[i].data) {
			t.Fatalf("packet %d differs", i)
		}
	}
	if n := checkFlowsInOneStream(t, c.recs); n < 2 {
		t.Errorf("all packets in %d stream(s) of 3", n)
	}
	st := r.Stats()
	var sum int64
	for _, s := range st.Streams {
		sum += s.Received
	}
	if sum != int64(len(want)) || !st.FilteredKnown || st.Filtered != 0 {
		t.Errorf("stats %+v", st)
	}
	// The split is fixed: a second replay puts every packet where the first did.
	r2, _ := NewReplay(ReplayConfig{Files: []string{path}, Streams: 3})
	var c2 collector
	if err := r2.Run(context.Background(), c2.emit); err != nil {
		t.Fatal(err)
	}
	for i := range c.recs {
		if c.recs[i].stream != c2.recs[i].stream {
			t.Fatalf("packet %d: stream %d, then %d", i, c.recs[i].stream, c2.recs[i].stream)
		}
	}
}

// The replay's filter keeps what tcpdump's expression keeps and counts the
// rest.
func TestReplayFilter(t *testing.T) {
	needTcpdump(t)
	path := testcap.Path(t, "zeek-wikipedia.pcap")
	all := readAll(t, path)
	var tcp int
	for _, p := range all {
		if k, ok := flowKey(t, p.link, p.data); ok && k[0] == '6' {
			tcp++
		}
	}
	r, err := NewReplay(ReplayConfig{Files: []string{path}, Streams: 2, Filter: "tcp"})
	if err != nil {
		t.Fatal(err)
	}
	var c collector
	if err := r.Run(context.Background(), c.emit); err != nil {
		t.Fatal(err)
	}
	if len(c.recs) != tcp || tcp == 0 || tcp == len(all) {
		t.Fatalf("%d packets kept, the capture has %d TCP packets of %d", len(c.recs), tcp, len(all))
	}
	if st := r.Stats(); st.Filtered != int64(len(all)-tcp) {
		t.Errorf("filtered %d, want %d", st.Filtered, len(all)-tcp)
	}
	if _, err := NewReplay(ReplayConfig{Files: []string{path}, Streams: 1, Filter: "tcp port"}); !errors.Is(err, ErrBadFilter) {
		t.Errorf("bad filter: %v", err)
	}
}

// With Pace, a capture spanning 1.5 s takes 1.5 s to replay; without, it
// does not.
func TestReplayPace(t *testing.T) {
	path := testcap.Path(t, "ndpi-chrome.pcap")
	all := readAll(t, path)
	span := time.Duration(all[len(all)-1].ts - all[0].ts)
	for _, pace := range []bool{false, true} {
		r, err := NewReplay(ReplayConfig{Files: []string{path}, Streams: 1, Pace: pace})
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		var c collector
		if err := r.Run(context.Background(), c.emit); err != nil {
			t.Fatal(err)
		}
		took := time.Since(start)
		if pace && took < span-50*time.Millisecond {
			t.Errorf("paced replay of a %v capture took %v", span, took)
		}
		if !pace && took > span/2 {
			t.Errorf("unpaced replay of a %v capture took %v", span, took)
		}
	}
	// A paced replay stops when its context ends.
	r, _ := NewReplay(ReplayConfig{Files: []string{path}, Streams: 1, Pace: true})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	var c collector
	start := time.Now()
	if err := r.Run(ctx, c.emit); err != nil || time.Since(start) > span/2 {
		t.Errorf("cancelled paced replay: %v after %v", err, time.Since(start))
	}
}

func TestReplayErrors(t *testing.T) {
	dir := t.TempDir()
	if _, err := NewReplay(ReplayConfig{Streams: 1}); err == nil {
		t.Error("no files accepted")
	}
	if _, err := NewReplay(ReplayConfig{Files: []string{filepath.Join(dir, "none.pcap")}, Streams: 1}); err == nil {
		t.Error("missing file accepted")
	}
	if _, err := NewReplay(ReplayConfig{Files: []string{dir}, Streams: 1}); err == nil {
		t.Error("directory accepted")
	}
	if _, err := NewReplay(ReplayConfig{Files: []string{testcap.Path(t, "ndpi-chrome.pcap")}, Streams: 0}); err == nil {
		t.Error("0 streams accepted")
	}
	// A damaged file is replayed up to the damage, and reported.
	b, err := os.ReadFile(testcap.Path(t, "ndpi-chrome.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(dir, "cut.pcap")
	if err := os.WriteFile(cut, b[:len(b)-100], 0o644); err != nil {
		t.Fatal(err)
	}
	r, err := NewReplay(ReplayConfig{Files: []string{cut}, Streams: 1})
	if err != nil {
		t.Fatal(err)
	}
	var c collector
	err = r.Run(context.Background(), c.emit)
	if err == nil || len(c.recs) == 0 || len(r.Results()) != 1 {
		t.Errorf("damaged file: %v after %d packets", err, len(c.recs))
	}
	// An emit error stops the replay with that error.
	boom := errors.New("boom")
	r, _ = NewReplay(ReplayConfig{Files: []string{testcap.Path(t, "ndpi-chrome.pcap")}, Streams: 1})
	if err := r.Run(context.Background(), func(int, *Packet) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("emit error: %v", err)
	}
}
