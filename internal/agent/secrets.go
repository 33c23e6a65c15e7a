package agent

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/tlskeys"
)

// KeySource delivers TLS session secrets until ctx is done: the eBPF
// collector (tlskeys.Collector) and key log files (tlskeys.Follower).
type KeySource interface {
	Run(ctx context.Context, emit func(tlskeys.Secret)) error
}

// Bounds of the TLS key lines waiting for a segment.
const (
	// maxPendingKeys bounds the lines waiting for a stream's next segment:
	// a stream that sees no packets for long cuts no segment; beyond the
	// bound its oldest lines go (and are counted).
	maxPendingKeys = 8 << 20
	// dedupKeys is how many lines are remembered to drop repeats (the same
	// connection's secrets from two sources, a key log read again).
	dedupKeys = 1 << 17
	// DefaultKeyGrace is how long a cut segment waits for the TLS keys of
	// the handshakes it holds: a key arrives a little after the handshake's
	// last packet (eBPF: microseconds to milliseconds; a key log file: up
	// to its poll interval, 200 ms).
	DefaultKeyGrace = 500 * time.Millisecond
)

// keyLines collects the NSS key log lines for the streams' next secrets
// objects. Which stream a connection's packets land in is the kernel's
// fanout hash of the flow (seeded at random at boot), which a uprobe on
// libssl does not know, so every line goes to every stream: each stream's
// secrets objects then hold every key its segments may need, and parse
// reads the secrets of one stream only. The lines are small next to the
// packets (a TLS 1.3 connection's 5 lines are about 800 bytes).
//
// A segment's secrets hold the lines that came from its predecessor's cut
// to the end of its own key grace (see take): the lines of the grace go
// into two segments, since a key that comes just after a cut may belong to
// a handshake on either side of it.
//
// Lines never reach a log: only counts do.
type keyLines struct {
	mu      sync.Mutex
	dedup   *tlskeys.Dedup
	lines   []timedLine // every stream's lines from the oldest cursor on
	base    int         // index (since the start) of lines[0]
	cursor  []int       // per stream: index of its next segment's first line
	taken   []int       // per stream: index after the last line it took
	size    int         // bytes of lines
	nowFunc func() time.Time

	stopped atomic.Bool // the key sources have stopped: no line comes any more

	received   atomic.Int64 // distinct lines
	repeated   atomic.Int64 // lines dropped as repeats
	dropped    atomic.Int64 // lines dropped: bound of the pending lines, spool full or failed
	objects    atomic.Int64 // secrets objects spooled
	objectErrs atomic.Int64 // secrets objects not spooled
}

// timedLine is a key log line and when it came.
type timedLine struct {
	at   time.Time
	line []byte
}

func newKeyLines(streams int) *keyLines {
	return &keyLines{dedup: tlskeys.NewDedup(dedupKeys), cursor: make([]int, streams), taken: make([]int, streams), nowFunc: time.Now}
}

// add takes a line from a key source.
func (k *keyLines) add(s tlskeys.Secret) {
	k.mu.Lock()
	defer k.mu.Unlock()
	if !k.dedup.First(s) {
		k.repeated.Add(1)
		return
	}
	k.received.Add(1)
	line := s.AppendLine(nil)
	k.lines = append(k.lines, timedLine{k.nowFunc(), line})
	k.size += len(line)
	// Beyond the bound (a stream that sees no packets for long cuts no
	// segment), the oldest lines go, and are counted.
	for k.size > maxPendingKeys && len(k.lines) > 1 {
		k.size -= len(k.lines[0].line)
		k.lines[0] = timedLine{}
		k.lines = k.lines[1:]
		k.base++
		k.dropped.Add(1)
	}
}

// take returns the lines for a stream's segment that was cut at cutAt: the
// lines since the stream's previous cut. The lines that came after cutAt
// stay for the stream's next segment as well.
func (k *keyLines) take(stream int, cutAt time.Time) []byte {
	k.mu.Lock()
	defer k.mu.Unlock()
	if stream >= len(k.cursor) {
		return nil
	}
	from := max(k.cursor[stream]-k.base, 0)
	var body []byte
	next := len(k.lines)
	for i := from; i < len(k.lines); i++ {
		body = append(body, k.lines[i].line...)
		if next == len(k.lines) && k.lines[i].at.After(cutAt) {
			next = i
		}
	}
	k.cursor[stream] = k.base + next
	k.taken[stream] = k.base + len(k.lines)
	k.trim()
	return body
}

// trim forgets the lines that every stream has taken.
func (k *keyLines) trim() {
	low := slices.Min(k.cursor) - k.base
	if low <= 0 {
		return
	}
	low = min(low, len(k.lines))
	for _, l := range k.lines[:low] {
		k.size -= len(l.line)
	}
	k.lines = slices.Delete(k.lines, 0, low)
	k.base += low
}

// left returns the most lines that wait for a segment in one stream when
// the capture stopped: lines that came after the stream's last secrets
// object. They are not written: the stream had no packets since (its
// connections' keys came in time), or they came too late for their segment.
func (k *keyLines) left() int64 {
	k.mu.Lock()
	defer k.mu.Unlock()
	var n int64
	for _, t := range k.taken {
		n = max(n, int64(min(len(k.lines), k.base+len(k.lines)-t)))
	}
	return n
}

// waitForKeys waits until the key grace after a segment's cut is over
// (while key sources run), so that the keys of the segment's last
// handshakes go into its secrets object. Lines of the next segment's
// connections that come meanwhile go into it too, and stay for the next
// segment's secrets (see keyLines.take).
func (a *Agent) waitForKeys(cutAt time.Time) {
	if len(a.cfg.KeySources) == 0 || a.keys.stopped.Load() {
		return
	}
	if d := time.Until(cutAt.Add(a.cfg.KeyGrace)); d > 0 {
		time.Sleep(d)
	}
}

// spoolSecrets puts the lines that wait for a stream's segment seq into
// the segment's secrets object, before the segment goes into the spool: the
// uploader sends a stream's secrets object before the segment of the same
// number (see spool.Uploader), so parse finds the keys when it reads the
// segment. rawKey is the segment's key, whose hour the secrets key shares.
func (a *Agent) spoolSecrets(id keys.Stream, seq uint64, rawKey string, cutAt time.Time) {
	body := a.keys.take(id.Stream, cutAt)
	if len(body) == 0 {
		return
	}
	p, err := keys.Parse(rawKey)
	if err != nil {
		a.keys.objectErrs.Add(1)
		a.log.Error("secrets object not written: bad segment key", "key", rawKey, "err", err)
		return
	}
	key := keys.Secrets(id, seq, p.Hour)
	lines := bytes.Count(body, []byte{'\n'})
	if err := a.spool.Put(key, body); err != nil {
		a.keys.objectErrs.Add(1)
		a.keys.dropped.Add(int64(lines))
		a.c[id.Stream].errors.Add(1)
		a.log.Error("secrets object not spooled: its TLS keys are lost", "key", key, "lines", lines, "err", err)
		return
	}
	a.keys.objects.Add(1)
	a.up.Add(key)
	a.log.Debug("secrets spooled", "key", key, "lines", lines)
}
