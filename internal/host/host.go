// Package host is the local functions host: it runs the ingest and parse
// functions of [pipeline.Pipeline] on one machine, fed by MinIO bucket
// notifications, the way S3 events and Lambda run them on AWS.
//
// Events come two ways, both carrying MinIO's S3 event notification JSON
// (`{"EventName": …, "Key": "bucket/key", "Records": [S3 event record]}`):
//
//   - as webhooks: POST /minio/events (MinIO's webhook target, optionally
//     with `Authorization: Bearer <token>`, its auth_token);
//   - from a NATS JetStream stream (MinIO's NATS target with jetstream on),
//     through a durable pull consumer that every host of a site shares, so
//     that the hosts split the events between them like a work queue.
//
// For each record the host calls [pipeline.Pipeline.Ingest] before it
// answers (HTTP 200, or the JetStream ack): the segment is then indexed in
// the store, so an event acknowledged is never lost, even if the host dies
// the next moment. A failed ingest answers 503 (MinIO keeps the event in
// its queue directory and retries) or naks the message with a delay (at most
// MaxDeliver deliveries).
//
// Parses do not run in the request: the pipeline's Invoke puts them on a
// bounded pool of workers. A parse whose predecessor checkpoint is not there
// yet does not hold a worker while it waits: it is parked, and runs when the
// predecessor commits (the pipeline's chain invokes it again), when a check
// of the store finds the predecessor committed by another host, or when the
// predecessor segment has not even arrived for WaitPredecessor (a gap).
// Ordering and exactly-once commits per stream are the pipeline's: the host
// only schedules.
//
// At start and then every ReconcileEvery the host runs
// [pipeline.Pipeline.Reconcile], which restarts segments that were indexed
// but never committed (a host killed mid-parse, an event lost), and
// ingests segments whose events never came (the tail of every stream it
// knows; all of raw/ at start and every DiscoverAllEvery). On shutdown
// (Run's context done) it stops taking events, lets the parses that run
// finish for up to DrainTimeout, then cancels them; parses it did not start
// are left to the next Reconcile.
package host

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowlake/flowlake/internal/engine"
	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/pipeline"
	"github.com/flowlake/flowlake/internal/store"
)

// Defaults of Config.
const (
	DefaultWaitPredecessor = 30 * time.Second
	DefaultRecheck         = time.Second
	DefaultReconcileEvery  = time.Minute
	DefaultDrainTimeout    = 30 * time.Second
)

// lastWait is how long a parse that ran after its predecessor wait expired
// still polls for the predecessor inside the pipeline before declaring the
// gap: the predecessor may have been committed since the last check.
const lastWait = 2 * time.Second

// Config configures a Host.
type Config struct {
	// Store is where segments, checkpoints and the lake are. For an s3://
	// store, notifications of other buckets and keys outside the store's
	// prefix are ignored, and the prefix is removed from the keys.
	Store store.Store
	// Engine is the parse engine configuration.
	Engine engine.Config
	// Workers is how many parses run at once; default GOMAXPROCS.
	Workers int
	// WaitPredecessor is how long a segment waits for its predecessor to
	// arrive before it is parsed from empty state and a gap is recorded.
	// A predecessor that has arrived but is not parsed yet is waited for
	// without limit (it is parsed by the chain or the next Reconcile).
	// Default DefaultWaitPredecessor.
	WaitPredecessor time.Duration
	// Recheck is how often parked parses look in the store for their
	// predecessor (committed by another host, or arrived). Default
	// DefaultRecheck.
	Recheck time.Duration
	// ReconcileEvery is the period of Reconcile; default
	// DefaultReconcileEvery.
	ReconcileEvery time.Duration
	// DiscoverAllEvery is how often Reconcile lists all of raw/ for streams
	// none of whose events came; default
	// pipeline.DefaultDiscoverAllEvery.
	DiscoverAllEvery time.Duration
	// DrainTimeout bounds how long shutdown waits for running parses;
	// default DefaultDrainTimeout.
	DrainTimeout time.Duration
	// WebhookToken, if set, is required as `Authorization: Bearer <token>`
	// on POST /minio/events.
	WebhookToken string
	// NATS, if set, consumes the notifications from NATS JetStream too.
	NATS *NATSConfig
	// Log receives the host's and the pipeline's log; nil discards.
	Log *slog.Logger
}

// Stats counts a host's work since New.
type Stats struct {
	Events        int64 `json:"events"`         // notifications received (webhook requests, NATS messages)
	BadEvents     int64 `json:"bad_events"`     // notifications rejected as malformed
	Ingested      int64 `json:"ingested"`       // objects ingested
	Ignored       int64 `json:"ignored"`        // records ignored (other bucket, outside the prefix, not a creation, object gone)
	IngestErrors  int64 `json:"ingest_errors"`  // ingests that failed (to be retried by the sender)
	Committed     int64 `json:"committed"`      // parses this host committed
	AlreadyDone   int64 `json:"already_done"`   // parses found committed by another worker or host
	ParseErrors   int64 `json:"parse_errors"`   // parses that failed (retried by Reconcile)
	WaitsExpired  int64 `json:"waits_expired"`  // parses run after their predecessor never arrived
	Reconciled    int64 `json:"reconciled"`     // parses started by Reconcile
	ReconcileRuns int64 `json:"reconcile_runs"` // Reconcile runs that succeeded
	Queued        int   `json:"queued"`         // parses waiting for a worker now
	Running       int   `json:"running"`        // parses running now
	Parked        int   `json:"parked"`         // parses waiting for their predecessor now
}

type counters struct {
	events, badEvents, ingested, ignored, ingestErrors            atomic.Int64
	committed, alreadyDone, parseErrors, waitsExpired, reconciled atomic.Int64
	reconcileRuns                                                 atomic.Int64
}

// job is the parse of one segment.
type job struct {
	s   keys.Stream
	seq uint64
}

// Job states.
const (
	queued = iota
	running
	parked
)

type jobState struct {
	state    int
	deadline time.Time // parked: when a missing predecessor becomes a gap
	expired  bool      // run without waiting for the predecessor again
	again    bool      // invoked again while running
}

// errStopping is the answer to events that come while the host shuts down.
var errStopping = errors.New("functions host is shutting down")

// Host is the functions host.
type Host struct {
	cfg    Config
	pipe   *pipeline.Pipeline
	log    *slog.Logger
	bucket string // the store's bucket, "" if it is not an S3 store
	prefix string // the store's key prefix with a trailing slash, or ""

	mu       sync.Mutex
	cond     *sync.Cond
	jobs     map[job]*jobState
	ready    []job
	stopping bool

	draining atomic.Bool
	started  atomic.Bool
	n        counters
}

// New returns a host for cfg.
func New(cfg Config) (*Host, error) {
	if cfg.Store == nil {
		return nil, errors.New("functions host: no store")
	}
	if cfg.Workers < 0 {
		return nil, fmt.Errorf("functions host: %d workers", cfg.Workers)
	}
	if cfg.Workers == 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	if cfg.WaitPredecessor <= 0 {
		cfg.WaitPredecessor = DefaultWaitPredecessor
	}
	if cfg.Recheck <= 0 {
		cfg.Recheck = DefaultRecheck
	}
	if cfg.ReconcileEvery <= 0 {
		cfg.ReconcileEvery = DefaultReconcileEvery
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = DefaultDrainTimeout
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if strings.ContainsAny(cfg.WebhookToken, " \t\r\n") {
		// MinIO sends a token with a space as the whole header value, not
		// as a bearer token.
		return nil, errors.New("functions host: the webhook token must not contain white space")
	}
	if cfg.NATS != nil {
		if err := cfg.NATS.setDefaults(); err != nil {
			return nil, fmt.Errorf("functions host: %w", err)
		}
	}
	h := &Host{cfg: cfg, log: cfg.Log, jobs: map[job]*jobState{}}
	h.cond = sync.NewCond(&h.mu)
	h.bucket, h.prefix = scope(cfg.Store.URL())
	h.pipe = pipeline.New(pipeline.Config{
		Store:            cfg.Store,
		Engine:           cfg.Engine,
		WaitPredecessor:  min(cfg.WaitPredecessor, lastWait),
		Invoke:           h.invoke,
		DiscoverAllEvery: cfg.DiscoverAllEvery,
		Log:              cfg.Log,
	})
	return h, nil
}

// scope returns the bucket and key prefix (with a trailing slash) of an
// s3:// store URL, and nothing for other stores.
func scope(storeURL string) (bucket, prefix string) {
	u, err := url.Parse(storeURL)
	if err != nil || u.Scheme != "s3" {
		return "", ""
	}
	if p := strings.Trim(u.Path, "/"); p != "" {
		prefix = p + "/"
	}
	return u.Host, prefix
}

// Stats returns the host's counters.
func (h *Host) Stats() Stats {
	st := Stats{
		Events: h.n.events.Load(), BadEvents: h.n.badEvents.Load(), Ingested: h.n.ingested.Load(),
		Ignored: h.n.ignored.Load(), IngestErrors: h.n.ingestErrors.Load(),
		Committed: h.n.committed.Load(), AlreadyDone: h.n.alreadyDone.Load(), ParseErrors: h.n.parseErrors.Load(),
		WaitsExpired: h.n.waitsExpired.Load(), Reconciled: h.n.reconciled.Load(), ReconcileRuns: h.n.reconcileRuns.Load(),
	}
	h.mu.Lock()
	for _, js := range h.jobs {
		switch js.state {
		case queued:
			st.Queued++
		case running:
			st.Running++
		case parked:
			st.Parked++
		}
	}
	h.mu.Unlock()
	return st
}

// Run runs the host until ctx is done: the webhook and health endpoints on
// ln (none if ln is nil), the NATS consumer if configured, the workers and
// Reconcile. Then it drains (see the package doc) and returns nil, or the
// error that stopped it early. Run may be called once.
func (h *Host) Run(ctx context.Context, ln net.Listener) error {
	if !h.started.CompareAndSwap(false, true) {
		return errors.New("functions host: Run called twice")
	}
	// Parses outlive ctx by up to DrainTimeout.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()

	var workers sync.WaitGroup
	for range h.cfg.Workers {
		workers.Go(func() { h.worker(workCtx) })
	}
	var loops sync.WaitGroup
	loops.Go(func() { h.sweepLoop(runCtx) })

	failed := make(chan error, 2)
	var srv *http.Server
	if ln != nil {
		srv = &http.Server{
			Handler:           h.Handler(),
			ReadHeaderTimeout: 10 * time.Second,
			ReadTimeout:       time.Minute,
			WriteTimeout:      2 * time.Minute,
			IdleTimeout:       2 * time.Minute,
			ErrorLog:          slog.NewLogLogger(h.log.Handler(), slog.LevelWarn),
			BaseContext:       func(net.Listener) context.Context { return workCtx },
		}
		loops.Go(func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				failed <- fmt.Errorf("functions host: serve %s: %w", ln.Addr(), err)
			}
		})
		h.log.Info("functions host: listening", "addr", ln.Addr().String(), "events", "POST /minio/events", "health", "GET /healthz")
	}
	var stopNATS func()
	if h.cfg.NATS != nil {
		var err error
		if stopNATS, err = h.startNATS(runCtx, workCtx); err != nil {
			failed <- err
		}
	}
	loops.Go(func() { h.reconcileLoop(runCtx) })
	h.log.Info("functions host: running", "store", h.cfg.Store.URL(), "workers", h.cfg.Workers,
		"wait_predecessor", h.cfg.WaitPredecessor.String(), "nats", h.cfg.NATS != nil)

	var err error
	select {
	case <-ctx.Done():
		h.log.Info("functions host: shutting down", "drain_timeout", h.cfg.DrainTimeout.String())
	case err = <-failed:
		h.log.Error("functions host: stopping", "err", err)
	}
	deadline := time.Now().Add(h.cfg.DrainTimeout)
	drainCtx, cancelDrain := context.WithDeadline(context.WithoutCancel(ctx), deadline)
	defer cancelDrain()

	// Take no more events: finish the requests and messages in hand, whose
	// ingests may still queue parses.
	h.draining.Store(true)
	if srv != nil {
		if e := srv.Shutdown(drainCtx); e != nil {
			h.log.Warn("functions host: webhook requests still running at the drain deadline", "err", e)
			_ = srv.Close()
		}
	}
	if stopNATS != nil {
		stopNATS()
	}
	stopRun()
	loops.Wait()

	// Start no more parses; let the running ones finish.
	st := h.stop()
	h.log.Info("functions host: draining", "running", st.Running, "abandoned_queued", st.Queued, "abandoned_parked", st.Parked)
	done := make(chan struct{})
	go func() { workers.Wait(); close(done) }()
	select {
	case <-done:
	case <-drainCtx.Done():
		h.log.Warn("functions host: drain deadline reached; cancelling the running parses (Reconcile will redo them)")
		cancelWork()
		<-done
	}
	h.log.Info("functions host: stopped", "stats", h.Stats())
	return err
}

// stop makes the workers exit once their current parse ends and forgets the
// parses not started (the store keeps their index: Reconcile restarts them).
func (h *Host) stop() Stats {
	st := h.Stats()
	h.mu.Lock()
	h.stopping = true
	for j, js := range h.jobs {
		if js.state != running {
			delete(h.jobs, j)
		}
	}
	h.ready = nil
	h.cond.Broadcast()
	h.mu.Unlock()
	return st
}

// invoke is the pipeline's Invoke: it schedules parse(s, seq) and returns at
// once. Once the host is stopping it starts nothing and still succeeds: the
// caller has indexed the segment, so the next Reconcile starts it.
func (h *Host) invoke(_ context.Context, s keys.Stream, seq uint64) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.stopping {
		// The segment is indexed: the next Reconcile starts it.
		h.log.Debug("functions host: shutting down; parse not started", "stream", s.String(), "seq", seq)
		return nil
	}
	j := job{s, seq}
	js := h.jobs[j]
	switch {
	case js == nil:
		h.jobs[j] = &jobState{state: queued}
		h.push(j)
	case js.state == parked:
		js.state = queued
		h.push(j)
	case js.state == running:
		js.again = true
	}
	return nil
}

// push appends j to the ready queue; h.mu is held.
func (h *Host) push(j job) {
	h.ready = append(h.ready, j)
	h.cond.Signal()
}

// worker runs parses until the host stops.
func (h *Host) worker(ctx context.Context) {
	for {
		h.mu.Lock()
		for len(h.ready) == 0 && !h.stopping {
			h.cond.Wait()
		}
		if h.stopping {
			h.mu.Unlock()
			return
		}
		j := h.ready[0]
		h.ready[0] = job{}
		h.ready = h.ready[1:]
		js := h.jobs[j]
		js.state, js.again = running, false
		expired := js.expired
		h.mu.Unlock()
		h.run(ctx, j, expired)
	}
}

// run runs one parse, or parks it when its predecessor is not committed.
func (h *Host) run(ctx context.Context, j job, expired bool) {
	log := h.log.With("stream", j.s.String(), "seq", j.seq)
	if j.seq > 0 && !expired {
		switch ok, err := h.exists(ctx, keys.State(j.s, j.seq-1)); {
		case err != nil:
			// Parsing now could declare a gap for a predecessor that is
			// only late: wait for the next check instead.
			log.Warn("functions host: cannot check the predecessor checkpoint; parse parked", "err", err)
			h.park(j)
			return
		case !ok:
			// Parked, unless it is committed already (a repeated event):
			// then Parse returns at once, after chaining to its successor.
			if done, err := h.exists(ctx, keys.State(j.s, j.seq)); err != nil || !done {
				h.park(j)
				log.Debug("functions host: parse parked until its predecessor commits")
				return
			}
		}
	}
	if expired {
		h.n.waitsExpired.Add(1)
	}
	log.Debug("functions host: parse start", "after_wait", expired)
	err := h.pipe.Parse(ctx, j.s, j.seq)
	h.finish(j)
	switch {
	case err == nil:
		h.n.committed.Add(1)
	case errors.Is(err, pipeline.ErrDone):
		h.n.alreadyDone.Add(1)
		log.Debug("functions host: already parsed")
	case ctx.Err() != nil:
		h.n.parseErrors.Add(1)
		log.Warn("functions host: parse cancelled by shutdown; Reconcile will redo it", "err", err)
	default:
		h.n.parseErrors.Add(1)
		log.Error("functions host: parse failed; Reconcile will retry it", "err", err)
	}
}

// park parks running job j, or queues it again when it was invoked again
// meanwhile (its predecessor may just have committed).
func (h *Host) park(j job) {
	h.mu.Lock()
	defer h.mu.Unlock()
	js := h.jobs[j]
	switch {
	case h.stopping:
		delete(h.jobs, j)
	case js.again:
		js.state, js.again = queued, false
		h.push(j)
	default:
		js.state = parked
		if js.deadline.IsZero() {
			js.deadline = time.Now().Add(h.cfg.WaitPredecessor)
		}
	}
}

// finish forgets job j after it ran.
func (h *Host) finish(j job) {
	h.mu.Lock()
	delete(h.jobs, j)
	h.mu.Unlock()
}

func (h *Host) exists(ctx context.Context, key string) (bool, error) {
	_, err := h.cfg.Store.Stat(ctx, key)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, store.ErrNotExist):
		return false, nil
	}
	return false, err
}

// sweepLoop wakes parked parses every Recheck.
func (h *Host) sweepLoop(ctx context.Context) {
	t := time.NewTicker(h.cfg.Recheck)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			h.sweep(ctx)
		}
	}
}

// sweep queues the parked parses whose predecessor has committed, or whose
// predecessor has not arrived for WaitPredecessor. A parked parse whose
// predecessor is itself scheduled here, or indexed in the store, waits on:
// that predecessor is on its way, not missing.
func (h *Host) sweep(ctx context.Context) {
	now := time.Now()
	var check []job
	h.mu.Lock()
	for j, js := range h.jobs {
		if js.state != parked {
			continue
		}
		if _, pending := h.jobs[job{j.s, j.seq - 1}]; pending {
			js.deadline = now.Add(h.cfg.WaitPredecessor)
			continue
		}
		check = append(check, j)
	}
	h.mu.Unlock()
	for _, j := range check {
		committed, err := h.exists(ctx, keys.State(j.s, j.seq-1))
		if err != nil {
			h.log.Warn("functions host: cannot check a predecessor checkpoint", "stream", j.s.String(), "seq", j.seq, "err", err)
			continue
		}
		arrived := false
		if !committed {
			if arrived, err = h.exists(ctx, keys.SegmentIndex(j.s, j.seq-1)); err != nil {
				continue
			}
		}
		h.mu.Lock()
		js := h.jobs[j]
		if js != nil && js.state == parked && !h.stopping {
			switch {
			case committed:
				js.state = queued
				h.push(j)
			case arrived:
				js.deadline = now.Add(h.cfg.WaitPredecessor)
			case !now.Before(js.deadline):
				h.log.Warn("functions host: predecessor segment has not arrived; parsing from empty state (a gap)",
					"stream", j.s.String(), "seq", j.seq, "waited", h.cfg.WaitPredecessor.String())
				js.state, js.expired = queued, true
				h.push(j)
			}
		}
		h.mu.Unlock()
	}
}

// reconcileLoop runs Reconcile now and every ReconcileEvery.
func (h *Host) reconcileLoop(ctx context.Context) {
	t := time.NewTicker(h.cfg.ReconcileEvery)
	defer t.Stop()
	for {
		n, err := h.pipe.Reconcile(ctx)
		h.n.reconciled.Add(int64(n))
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			h.log.Error("functions host: reconcile failed", "err", err, "started", n)
		default:
			h.n.reconcileRuns.Add(1)
			lvl := slog.LevelDebug
			if n > 0 {
				lvl = slog.LevelInfo
			}
			h.log.Log(ctx, lvl, "functions host: reconcile", "started", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
