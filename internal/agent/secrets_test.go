package agent

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/store"
	"github.com/flowlake/flowlake/internal/tlskeys"
)

// orderStore records the order in which objects reach the store.
type orderStore struct {
	store.Store
	mu      sync.Mutex
	written []string
}

func (o *orderStore) PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) error {
	err := o.Store.PutIfAbsent(ctx, key, r, size)
	if err == nil {
		o.mu.Lock()
		o.written = append(o.written, key)
		o.mu.Unlock()
	}
	return err
}

func (o *orderStore) order() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.written)
}

func secretLine(i int) string {
	return fmt.Sprintf("CLIENT_RANDOM %064x %096x", i, 0xc0ffee00+i)
}

func appendLines(t *testing.T, path string, lines ...string) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, l := range lines {
		if _, err := f.WriteString(l + "\n"); err != nil {
			t.Fatal(err)
		}
	}
}

// The key log lines of a key source reach every stream's secrets objects:
// the lines read until a segment is cut in the secrets object of that
// segment (same number, same hour), uploaded before it; repeats once; no
// secret in the logs.
func TestAgentSecrets(t *testing.T) {
	dir := t.TempDir()
	keylog := filepath.Join(dir, "sslkeylog.txt")
	var first, later []string
	for i := range 3 {
		first = append(first, secretLine(i))
	}
	for i := 3; i < 8; i++ {
		later = append(later, secretLine(i))
	}
	appendLines(t, keylog, first...)

	st := &orderStore{Store: store.NewMem()}
	var logs bytes.Buffer
	var logMu sync.Mutex
	log := slog.New(slog.NewJSONHandler(&lockedBuf{b: &logs, mu: &logMu}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// 64 frames of 1000 bytes over 2 streams in segments of 8 frames: 4
	// segments per stream, the last one cut when the capture stops.
	src := &fakeSource{k: 2, pkts: frames(64, 1000), ts: time.Now().UnixNano(), hold: true}
	a := newAgent(t, Config{Store: st, Source: src, SpoolDir: t.TempDir(), SegmentBytes: 8000, Log: log,
		KeySources: []KeySource{tlskeys.NewFollower([]string{keylog}, 5*time.Millisecond, log)}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for !cond() {
			if time.Now().After(deadline) {
				cancel()
				t.Fatalf("after 10 s: no %s", what)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	waitFor("3 segments per stream", func() bool {
		segs := segmentsOf(t, st.Store, "test-agent")
		return len(segs[0]) == 3 && len(segs[1]) == 3
	})
	appendLines(t, keylog, later...)
	appendLines(t, keylog, first[0], later[0]) // repeats
	waitFor("lines read", func() bool { return a.keys.received.Load() == 8 && a.keys.repeated.Load() == 2 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	order := st.order()
	segs := segmentsOf(t, st.Store, "test-agent")
	for k := range 2 {
		id := keys.Stream{Agent: "test-agent", Stream: k}
		if len(segs[k]) != 4 {
			t.Fatalf("stream %d: %d segments, want 4", k, len(segs[k]))
		}
		var all []string
		inSeg := map[string][]uint64{}
		for _, m := range segs[k] {
			raw := keys.Segment(id, m.Seq, time.Unix(0, m.FirstTS))
			sec := keys.Secrets(id, m.Seq, time.Unix(0, m.FirstTS))
			rawAt, secAt := slices.Index(order, raw), slices.Index(order, sec)
			if rawAt < 0 {
				t.Fatalf("segment %s not uploaded (%v)", raw, order)
			}
			if secAt < 0 {
				continue // a segment cut before any line came
			}
			if secAt > rawAt {
				t.Errorf("%s uploaded after its segment", sec)
			}
			if m.Seq > 0 && secAt < slices.Index(order, keys.Segment(id, m.Seq-1, time.Unix(0, segs[k][m.Seq-1].FirstTS))) {
				t.Errorf("%s uploaded before the segment before it", sec)
			}
			b, err := st.GetRange(context.Background(), sec, 0, -1)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
			for _, l := range lines {
				if len(inSeg[l]) == 0 {
					all = append(all, l)
				}
				inSeg[l] = append(inSeg[l], m.Seq)
			}
			if m.Seq == 3 {
				for _, l := range later {
					if !slices.Contains(lines, l) {
						t.Errorf("stream %d: a line read after the third cut is not in the last segment's secrets", k)
					}
				}
			}
		}
		slices.Sort(all)
		want := append(slices.Clone(first), later...)
		slices.Sort(want)
		if !slices.Equal(all, want) {
			t.Errorf("stream %d: secrets objects hold %d distinct lines, want the %d lines", k, len(all), len(want))
		}
		// A line that came during a cut's key grace is in that segment's
		// secrets and the next one's: never in more, never in others.
		for _, seqs := range inSeg {
			if len(seqs) > 2 || len(seqs) == 2 && seqs[1] != seqs[0]+1 {
				t.Errorf("stream %d: a line in the secrets of segments %v", k, seqs)
			}
		}
	}
	// Every secrets object in the store serves a segment.
	err := st.List(context.Background(), keys.PrefixSecrets, func(info store.Info) error {
		p, err := keys.Parse(info.Key)
		if err != nil {
			return err
		}
		ms := segs[p.Stream.Stream]
		if int(p.Seq) >= len(ms) || keys.Secrets(p.Stream, p.Seq, time.Unix(0, ms[p.Seq].FirstTS)) != info.Key {
			t.Errorf("%s serves no segment", info.Key)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	logMu.Lock()
	defer logMu.Unlock()
	for _, l := range append(first, later...) {
		if strings.Contains(logs.String(), strings.Fields(l)[2][:24]) {
			t.Fatalf("a secret shows in the logs:\n%s", logs.String())
		}
	}
	if !strings.Contains(logs.String(), `"msg":"tls keys summary","lines":8,"repeats":2`) {
		t.Errorf("no tls keys summary in the logs:\n%s", logs.String())
	}
}

// keyLines gives a segment the lines since its stream's previous cut: the
// lines of a cut's key grace go into the cut segment and the next one,
// each stream takes every line, the bound drops the oldest lines.
func TestKeyLinesTake(t *testing.T) {
	now := time.Unix(1000, 0)
	k := newKeyLines(2)
	k.nowFunc = func() time.Time { return now }
	add := func(i int) {
		now = now.Add(time.Millisecond)
		cr := [32]byte{byte(i), byte(i >> 8)}
		k.add(tlskeys.Secret{Label: "CLIENT_RANDOM", ClientRandom: cr, Value: bytes.Repeat([]byte{byte(i)}, 48)})
	}
	count := func(b []byte) int { return bytes.Count(b, []byte{'\n'}) }
	add(1)
	add(2)
	cut := now
	add(3) // during the grace of the cut
	if got := count(k.take(0, cut)); got != 3 {
		t.Fatalf("segment 0 of stream 0: %d lines, want 3", got)
	}
	add(4)
	if got := k.left(); got != 4 {
		t.Errorf("left = %d, want 4 (stream 1 took nothing yet)", got)
	}
	if got := count(k.take(1, cut)); got != 4 {
		t.Fatalf("segment 0 of stream 1: %d lines, want 4", got)
	}
	cut = now
	add(5)
	if got := count(k.take(0, cut)); got != 3 {
		t.Fatalf("segment 1 of stream 0: %d lines (3 from the grace, 4, 5), want 3", got)
	}
	if got := count(k.take(0, now)); got != 1 {
		t.Fatalf("segment 2 of stream 0: %d lines (5, from the grace), want 1", got)
	}
	if got := count(k.take(0, now)); got != 0 {
		t.Fatalf("segment 3 of stream 0: %d lines, want 0", got)
	}
	if got := k.left(); got != 1 {
		t.Errorf("left = %d, want 1 (line 5 for stream 1)", got)
	}
	if len(k.lines) != 3 {
		t.Errorf("%d lines held, want the 3 stream 1 may take again (3 and 4 of its grace, 5)", len(k.lines))
	}
	// The bound: the oldest lines go, counted.
	const lineLen = 176 // CLIENT_RANDOM, 32-byte random, 48-byte secret, in hex
	for i := range maxPendingKeys/lineLen + 10 {
		add(100 + i)
	}
	if k.dropped.Load() == 0 || k.size > maxPendingKeys {
		t.Errorf("%d bytes held, %d lines dropped: the bound does not hold", k.size, k.dropped.Load())
	}
	if got := count(k.take(1, now)); got == 0 || got*lineLen > maxPendingKeys {
		t.Errorf("stream 1 after the bound: %d lines", got)
	}
}

type lockedBuf struct {
	b  *bytes.Buffer
	mu *sync.Mutex
}

func (w *lockedBuf) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}
