// Package agent is flowlake's capture agent (the "Whisperer" of the
// seeds): it captures packets on a host, cuts them into capture segments
// and gets them into the object store without losing any, and reports
// its own health.
//
//	source (AF_PACKET fanout, K sockets | capture-file replay)
//	  └─ K streams ─► segment.Cutter (size / time span, ticker for quiet links)
//	                    └─► spool (local disk, atomic, bounded) ─► uploader (retry, backoff) ─► store
//	status every 20 s ─► spool ─► status/agent=<id>/…/<unix>.json (capture_status rows)
//	/etc/hosts ────────► spool ─► config/agents/<id>/hosts.json (static names for parse)
//	/metrics (Prometheus), slog JSON logs
//
// Guarantees: a segment is on local disk (fsync'ed) before it is queued
// for upload and leaves the disk only when the store has it; segments of
// a stream are numbered 0, 1, 2, … across restarts (the next number is
// kept in the spool); an upload that finds its key taken by the same bytes
// counts as done, so a restarted agent never sends a segment twice, and
// never under another name. What is lost is counted: kernel drops (ring
// full), overflow (spool full), and the packets of the open segments when
// the process is killed without SIGTERM.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/flowlake/flowlake/internal/agent/source"
	"github.com/flowlake/flowlake/internal/agent/spool"
	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/segment"
	"github.com/flowlake/flowlake/internal/store"
)

// Defaults.
const (
	DefaultStatusEvery  = 20 * time.Second
	DefaultDrainTimeout = 20 * time.Second
	DefaultStartTimeout = 60 * time.Second
)

// Config configures an Agent.
type Config struct {
	// ID is the agent id in object keys.
	ID string
	// Store receives the segments, status reports and host names.
	Store store.Store
	// Source captures the packets; the agent closes it.
	Source source.Source
	// SpoolDir is the spool directory; SpoolBytes bounds it (0: default).
	SpoolDir   string
	SpoolBytes int64
	// SegmentBytes and SegmentSpan cut segments (0: segment defaults, 8 MiB
	// and 10 s): by size, and by the time span of the packets' timestamps.
	SegmentBytes int64
	SegmentSpan  time.Duration
	// WallClock also closes a segment that has been open for SegmentSpan
	// of wall time, however quiet the link: for live capture (and paced
	// replay). Without it a replay cuts by the packets alone, so that it
	// splits a capture the same way every time (as `flowlake segment`).
	WallClock bool
	// StatusEvery is the interval of status reports (0: 20 s).
	StatusEvery time.Duration
	// HostsFile is read for static host names ("" publishes none).
	HostsFile string
	// DrainTimeout bounds the uploads after the capture stopped (0: 20 s).
	DrainTimeout time.Duration
	// StartTimeout bounds the wait for the store when the spool does not
	// know a stream's numbering yet (0: 60 s).
	StartTimeout time.Duration
	// MinBackoff, MaxBackoff: the upload retry waits (0: spool defaults).
	MinBackoff, MaxBackoff time.Duration
	// MetricsAddr, if set, is where /metrics is served (host:port).
	MetricsAddr string
	// KeySources deliver TLS session secrets (eBPF, key log files). The
	// lines that arrive until a segment is cut (and KeyGrace after) go into
	// its secrets object (secrets/…/<seq>.keylog, every stream), uploaded
	// before the segment.
	KeySources []KeySource
	// KeyGrace is how long a cut segment waits for late keys (0:
	// DefaultKeyGrace).
	KeyGrace time.Duration
	// Log receives the logs; nil discards them.
	Log *slog.Logger
	// Now is the clock of the status reports; nil means time.Now.
	Now func() time.Time
}

// Agent runs one capture.
type Agent struct {
	cfg     Config
	log     *slog.Logger
	spool   *spool.Spool
	up      *spool.Uploader
	streams []*stream
	c       []*counters
	other   counters  // errors of objects that belong to no stream
	keys    *keyLines // TLS key lines waiting for the streams' next segments

	metrics  *http.Server
	listener net.Listener
	started  time.Time

	hostsMu   sync.Mutex
	hostsSeen []byte // the last hosts document spooled
}

// New opens the spool, learns where each stream's numbering goes on from,
// and listens on the metrics address. It does not capture yet: Run does.
func New(ctx context.Context, cfg Config) (*Agent, error) {
	if err := keys.ValidAgent(cfg.ID); err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	if cfg.Store == nil || cfg.Source == nil {
		return nil, errors.New("agent: a store and a source are needed")
	}
	if cfg.SpoolDir == "" {
		return nil, errors.New("agent: no spool directory")
	}
	if cfg.SegmentBytes <= 0 {
		cfg.SegmentBytes = segment.DefaultMaxBytes
	}
	if cfg.SegmentSpan <= 0 {
		cfg.SegmentSpan = segment.DefaultMaxSpan
	}
	if cfg.StatusEvery <= 0 {
		cfg.StatusEvery = DefaultStatusEvery
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = DefaultDrainTimeout
	}
	if cfg.StartTimeout <= 0 {
		cfg.StartTimeout = DefaultStartTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.KeyGrace <= 0 {
		cfg.KeyGrace = DefaultKeyGrace
	}
	a := &Agent{cfg: cfg, log: cfg.Log}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	sp, err := spool.Open(cfg.SpoolDir, cfg.SpoolBytes)
	if err != nil {
		return nil, fmt.Errorf("agent: %w", err)
	}
	a.spool = sp
	a.keys = newKeyLines(cfg.Source.Streams())
	a.up = spool.NewUploader(spool.UploaderConfig{
		Store: cfg.Store, Spool: sp, MinBackoff: cfg.MinBackoff, MaxBackoff: cfg.MaxBackoff,
		OnDone: a.uploaded, OnError: a.uploadFailed, Log: a.log,
	})
	k := cfg.Source.Streams()
	for i := range k {
		id := keys.Stream{Agent: cfg.ID, Stream: i}
		first, err := a.firstSeq(ctx, id)
		if err != nil {
			sp.Close()
			return nil, fmt.Errorf("agent: %w", err)
		}
		c := &counters{}
		a.c = append(a.c, c)
		s := newStream(id, first, cfg.SegmentBytes, cfg.SegmentSpan, c)
		s.wallClock = cfg.WallClock
		a.streams = append(a.streams, s)
		if held := sp.Bytes(spool.StreamPrefix(id)); held > 0 {
			a.log.Info("stream resumes", "stream", i, "next_seq", first, "spooled_bytes", held)
		} else {
			a.log.Info("stream resumes", "stream", i, "next_seq", first)
		}
	}
	if cfg.MetricsAddr != "" {
		if err := a.listenMetrics(cfg.MetricsAddr); err != nil {
			sp.Close()
			return nil, fmt.Errorf("agent: %w", err)
		}
	}
	return a, nil
}

// firstSeq returns the number of the next segment of a stream: from the
// spool, or, for a spool that never numbered the stream (a new host, a
// lost disk), one past the highest segment of the stream in the store, so
// that the agent never reuses a number.
func (a *Agent) firstSeq(ctx context.Context, id keys.Stream) (uint64, error) {
	next, known, err := a.spool.NextSeq(id)
	if err != nil || known {
		return next, err
	}
	deadline := time.Now().Add(a.cfg.StartTimeout)
	for attempt := 0; ; attempt++ {
		next, err = a.highestStored(ctx, id)
		if err == nil {
			break
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return 0, fmt.Errorf("stream %d: the spool does not know its numbering and the store cannot tell it: %w", id.Stream, err)
		}
		a.log.Warn("store unreachable; waiting for it to learn the numbering of a new stream", "stream", id.Stream, "err", err)
		select {
		case <-ctx.Done():
		case <-time.After(min(time.Second<<min(attempt, 4), 10*time.Second)):
		}
	}
	if err := a.spool.SaveNextSeq(id, next); err != nil {
		return 0, err
	}
	if next > 0 {
		a.log.Info("stream numbering taken from the store", "stream", id.Stream, "next_seq", next)
	}
	return next, nil
}

// highestStored returns one past the highest segment number of a stream
// in the store (0 for none).
func (a *Agent) highestStored(ctx context.Context, id keys.Stream) (uint64, error) {
	var next uint64
	err := a.cfg.Store.List(ctx, spool.StreamPrefix(id), func(info store.Info) error {
		if p, err := keys.Parse(info.Key); err == nil && p.Kind == keys.KindSegment && p.Seq+1 > next {
			next = p.Seq + 1
		}
		return nil
	})
	return next, err
}

// Run captures until ctx is done (or, for a replay, the input ends), then
// closes the open segments into the spool and uploads for up to
// DrainTimeout, with a last status report, before it returns. What is not
// uploaded by then stays in the spool for the next start. Run closes the
// source and the spool; an Agent runs once.
func (a *Agent) Run(ctx context.Context) (err error) {
	defer a.spool.Close()
	defer a.cfg.Source.Close()
	a.started = time.Now()
	upCtx, stopUploads := context.WithCancel(context.Background())
	defer stopUploads()
	a.up.Start(upCtx)
	if a.metrics != nil {
		go func() {
			if err := a.metrics.Serve(a.listener); err != nil && !errors.Is(err, http.ErrServerClosed) {
				a.log.Error("metrics server", "err", err)
			}
		}()
		defer a.metrics.Close()
	}
	a.publishHosts()

	var writers sync.WaitGroup
	for _, s := range a.streams {
		writers.Go(s.cutLoop)
		writers.Go(func() { a.write(s) })
	}
	loops, stopLoops := context.WithCancel(ctx)
	var bg sync.WaitGroup
	bg.Go(func() { a.tickLoop(loops) })
	bg.Go(func() { a.statusLoop(loops) })
	// The key sources stop after the capture and before the last segments
	// are cut, so that their last lines go into those segments' secrets.
	keysCtx, stopKeys := context.WithCancel(context.Background())
	defer stopKeys()
	var keySources sync.WaitGroup
	for _, ks := range a.cfg.KeySources {
		keySources.Go(func() {
			if err := ks.Run(keysCtx, a.keys.add); err != nil {
				a.other.errors.Add(1)
				a.log.Error("tls key source stopped", "err", err)
			}
		})
	}

	a.log.Info("agent started", "agent", a.cfg.ID, "interface", a.cfg.Source.Interface(), "streams", len(a.streams),
		"store", a.cfg.Store.URL(), "spool", a.cfg.SpoolDir, "tls_key_sources", len(a.cfg.KeySources))
	capErr := a.cfg.Source.Run(ctx, func(k int, p *source.Packet) error { return a.streams[k].add(p) })
	if capErr != nil {
		a.log.Error("capture stopped", "err", capErr)
	}
	stopLoops()
	bg.Wait()
	stopKeys()
	keySources.Wait()
	a.keys.stopped.Store(true)

	// Close the open segments and wait until the spool has them all.
	for _, s := range a.streams {
		s.close()
	}
	writers.Wait()
	for _, s := range a.streams {
		if err := s.failed(); err != nil && !errors.Is(capErr, err) {
			capErr = errors.Join(capErr, err)
		}
	}
	if len(a.cfg.KeySources) > 0 {
		left := a.keys.left()
		a.log.Info("tls keys summary", "lines", a.keys.received.Load(), "repeats", a.keys.repeated.Load(),
			"secrets_objects", a.keys.objects.Load(), "secrets_errors", a.keys.objectErrs.Load(),
			"lines_dropped", a.keys.dropped.Load(), "lines_without_segment", left)
	}

	// Upload what is left, then the last report, which tells how that went
	// (it waits in the spool with the rest if the store is down).
	drain, cancel := context.WithTimeout(context.Background(), a.cfg.DrainTimeout)
	derr := a.up.WaitIdle(drain)
	a.writeStatus()
	if derr == nil {
		derr = a.up.WaitIdle(drain)
	}
	cancel()
	stopUploads()
	a.up.Wait()
	st := a.Status()
	for _, s := range st.Streams {
		a.log.Info("stream summary", "stream", s.Stream, "captured", s.Captured, "captured_bytes", a.c[s.Stream].capturedBytes.Load(),
			"dropped", s.Dropped, "filtered", s.Filtered,
			"overflow", s.Overflow, "segments_uploaded", s.SegmentsUploaded, "bytes_uploaded", s.BytesUploaded,
			"spool_bytes", s.SpoolBytes, "errors", s.Errors, "next_seq", a.c[s.Stream].nextSeq.Load())
	}
	if derr != nil {
		a.log.Warn("stopping with objects still in the spool; they are uploaded at the next start", "err", derr,
			"spool", a.cfg.SpoolDir, "spool_bytes", a.spool.Bytes(""))
	}
	a.log.Info("agent stopped", "agent", a.cfg.ID, "uptime", time.Since(a.started).Round(time.Millisecond).String())
	return capErr
}

// tickLoop closes segments that have been open for the span.
func (a *Agent) tickLoop(ctx context.Context) {
	every := min(max(a.cfg.SegmentSpan/10, 10*time.Millisecond), time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			for _, s := range a.streams {
				s.tick(now)
			}
		}
	}
}

// uploaded is the uploader's OnDone.
func (a *Agent) uploaded(key string, size int64, existed bool) {
	p, err := keys.Parse(key)
	if err != nil || p.Kind != keys.KindSegment || p.Stream.Stream >= len(a.c) {
		return
	}
	c := a.c[p.Stream.Stream]
	c.segmentsUploaded.Add(1)
	c.bytesUploaded.Add(size)
	if existed {
		c.segmentsExisting.Add(1)
		a.log.Info("segment was in the store already (an earlier attempt reached it)", "key", key)
	}
}

// uploadFailed is the uploader's OnError.
func (a *Agent) uploadFailed(key string, _ error) {
	if p, err := keys.Parse(key); err == nil && p.Stream.Stream < len(a.c) {
		a.c[p.Stream.Stream].errors.Add(1)
		return
	}
	a.other.errors.Add(1)
}
