// Package pipeline is the plain-Go core of the ingest and parse functions:
// it turns capture segments in object storage into lake rows, strictly in
// order per stream, carrying open flows from one segment to the next through
// checkpoints, and it stays exact when events come twice, out of order, or
// when a worker dies half-way.
//
// The protocol, per stream (agent, k):
//
//  1. ingest(raw key of segment N): validate the object (its pcapng header
//     and metadata), write the index state/…/N.seg (the raw key), and start
//     parse(N).
//  2. parse(N): if the checkpoint state/…/N.ckpt exists, N is done. Else
//     wait (bounded) for checkpoint N-1; if it never comes, start from
//     empty state and record a gap. Read segment N, run the engine from
//     checkpoint N-1, write the lake files (names derived from the segment
//     key, so a retry overwrites them), then create checkpoint N with
//     If-None-Match: * — that conditional create is the commit point and
//     the lock: of two concurrent workers one wins, and both wrote the same
//     bytes to the lake.
//  3. After committing N, parse(N+1) starts if its index exists (a segment
//     that arrived early waits for its predecessor this way).
//
// A segment that cannot be read is copied to quarantine/ with an error
// document; its checkpoint carries the previous state over, so the stream
// goes on.
package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/flowlake/flowlake/internal/agent/hosts"
	"github.com/flowlake/flowlake/internal/capture"
	"github.com/flowlake/flowlake/internal/engine"
	"github.com/flowlake/flowlake/internal/keylog"
	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/lake"
	"github.com/flowlake/flowlake/internal/segment"
	"github.com/flowlake/flowlake/internal/store"
	"github.com/flowlake/flowlake/schema"
)

// Config configures a Pipeline.
type Config struct {
	Store store.Store
	// Engine is the parse engine configuration; its Agent is set per stream.
	Engine engine.Config
	// WaitPredecessor bounds how long parse(N) waits for checkpoint N-1
	// before going on from empty state (a gap). Default 30 s.
	WaitPredecessor time.Duration
	// Poll is the interval of that wait. Default 100 ms.
	Poll time.Duration
	// Invoke starts parse of a segment asynchronously (an async Lambda
	// invocation, a goroutine of the functions host). Nil: parse runs in the
	// caller.
	Invoke func(ctx context.Context, s keys.Stream, seq uint64) error
	// InvokeReparse starts Reparse(s, seq, 0) asynchronously: what ingest
	// does when TLS keys arrive for a segment that was parsed already (on
	// AWS the parse function does it, as only parse may read secrets/ and
	// write the lake). Nil: the reparse runs in the caller.
	InvokeReparse func(ctx context.Context, s keys.Stream, seq uint64) error
	// DiscoverAllEvery is how often Reconcile lists every raw segment to
	// find streams none of whose creation events came (see discover.go);
	// it also does on its first run. Default DefaultDiscoverAllEvery.
	DiscoverAllEvery time.Duration
	// Now is the wall clock (parse_status.parsed_at, error documents).
	Now func() time.Time
	Log *slog.Logger
}

// Pipeline runs ingest and parse.
type Pipeline struct {
	cfg Config

	mu              sync.Mutex
	lastDiscoverAll time.Time // when Reconcile last listed all of raw/
}

// New returns a pipeline.
func New(cfg Config) *Pipeline {
	if cfg.WaitPredecessor <= 0 {
		cfg.WaitPredecessor = 30 * time.Second
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 100 * time.Millisecond
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.DiscoverAllEvery <= 0 {
		cfg.DiscoverAllEvery = DefaultDiscoverAllEvery
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	return &Pipeline{cfg: cfg}
}

// ErrDone reports that parse found the segment already committed.
var ErrDone = errors.New("segment already parsed")

// Ingest handles one new object. Keys outside raw/ are ignored (other
// prefixes have their own handlers); a bad raw object is quarantined.
func (p *Pipeline) Ingest(ctx context.Context, key string) error {
	switch keys.KindOf(key) {
	case keys.KindSegment:
		return p.ingestSegment(ctx, key)
	case keys.KindStatus:
		return p.ingestStatus(ctx, key)
	case keys.KindSecrets:
		return p.ingestSecrets(ctx, key)
	}
	p.cfg.Log.Debug("ingest: ignoring key", "key", key)
	return nil
}

func (p *Pipeline) ingestSegment(ctx context.Context, key string) error {
	k, err := keys.Parse(key)
	if err != nil {
		return p.quarantine(ctx, key, "ingest", err)
	}
	rc, err := p.cfg.Store.Get(ctx, key)
	if err != nil {
		return fmt.Errorf("ingest %s: %w", key, err)
	}
	meta, err := segment.ReadMeta(rc)
	rc.Close()
	if err != nil {
		// The segment is still indexed so that parse quarantines it and
		// carries the stream on.
		p.cfg.Log.Warn("ingest: unreadable segment", "key", key, "err", err)
	} else if meta.Agent != k.Stream.Agent || meta.Stream != k.Stream.Stream || meta.Seq != k.Seq {
		p.cfg.Log.Warn("ingest: segment metadata does not match its key", "key", key, "meta_agent", meta.Agent, "meta_stream", meta.Stream, "meta_seq", meta.Seq)
	}
	if err := p.index(ctx, key, k.Stream, k.Seq); err != nil {
		return fmt.Errorf("ingest: %w", err)
	}
	return p.start(ctx, k.Stream, k.Seq)
}

func (p *Pipeline) start(ctx context.Context, s keys.Stream, seq uint64) error {
	if p.cfg.Invoke != nil {
		return p.cfg.Invoke(ctx, s, seq)
	}
	err := p.Parse(ctx, s, seq)
	if errors.Is(err, ErrDone) {
		return nil
	}
	return err
}

func (p *Pipeline) exists(ctx context.Context, key string) (bool, error) {
	_, err := p.cfg.Store.Stat(ctx, key)
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, store.ErrNotExist):
		return false, nil
	}
	return false, err
}

func (p *Pipeline) getAll(ctx context.Context, key string) ([]byte, error) {
	rc, err := p.cfg.Store.Get(ctx, key)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// waitCheckpoint waits for checkpoint seq of s and returns it, or nil when
// it did not come in time.
func (p *Pipeline) waitCheckpoint(ctx context.Context, s keys.Stream, seq uint64) ([]byte, error) {
	deadline := p.cfg.Now().Add(p.cfg.WaitPredecessor)
	key := keys.State(s, seq)
	for {
		b, err := p.getAll(ctx, key)
		if err == nil {
			return b, nil
		}
		if !errors.Is(err, store.ErrNotExist) {
			return nil, fmt.Errorf("read checkpoint %s: %w", key, err)
		}
		if !p.cfg.Now().Before(deadline) {
			return nil, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(p.cfg.Poll):
		}
	}
}

// Parse parses segment seq of stream s (see the package doc). It returns
// ErrDone when the segment had already been committed.
func (p *Pipeline) Parse(ctx context.Context, s keys.Stream, seq uint64) error {
	ckptKey := keys.State(s, seq)
	if ok, err := p.exists(ctx, ckptKey); err != nil {
		return fmt.Errorf("parse %s seq %d: %w", s, seq, err)
	} else if ok {
		// A retry of a committed segment still chains: the worker that
		// committed may have died before starting the next one.
		if err := p.chain(ctx, s, seq); err != nil {
			return err
		}
		return ErrDone
	}
	rawKey, err := p.getAll(ctx, keys.SegmentIndex(s, seq))
	if err != nil {
		return fmt.Errorf("parse %s seq %d: segment index: %w", s, seq, err)
	}
	start := time.Now()
	var prev []byte
	gap := false
	if seq > 0 {
		prev, err = p.getAll(ctx, keys.State(s, seq-1))
		if err != nil && !errors.Is(err, store.ErrNotExist) {
			return fmt.Errorf("parse %s: read checkpoint: %w", rawKey, err)
		}
		if prev == nil {
			if done, err := p.parsePredecessor(ctx, s, seq, string(rawKey)); err != nil || done {
				return err
			}
			prev, err = p.waitCheckpoint(ctx, s, seq-1)
		}
		if err != nil {
			return fmt.Errorf("parse %s: %w", rawKey, err)
		}
		gap = prev == nil
		if gap {
			p.cfg.Log.Warn("parse: predecessor missing, going on from empty state", "key", string(rawKey), "waited", p.cfg.WaitPredecessor)
		}
	}
	res, err := p.parseSegment(ctx, s, seq, string(rawKey), prev)
	if err != nil {
		return err
	}
	res.status.Gap = gap
	if gap && res.status.Status == "ok" {
		res.status.Status = "gap"
	}
	res.status.DurationUS = time.Since(start).Microseconds()
	if err := p.writeOutputs(ctx, s, seq, res, nil); err != nil {
		return fmt.Errorf("parse %s: %w", rawKey, err)
	}
	// Commit: the conditional create of checkpoint N.
	err = p.cfg.Store.PutIfAbsent(ctx, ckptKey, bytes.NewReader(res.checkpoint), int64(len(res.checkpoint)))
	switch {
	case errors.Is(err, store.ErrExists):
		p.cfg.Log.Info("parse: another worker committed first", "key", string(rawKey))
		return ErrDone
	case err != nil:
		return fmt.Errorf("parse %s: commit checkpoint: %w", rawKey, err)
	}
	p.cfg.Log.Info("parsed segment", "key", string(rawKey), "packets", res.status.Packets, "http", res.status.HTTPExchanges,
		"status", res.status.Status, "ms", res.status.DurationUS/1000)
	return p.chain(ctx, s, seq)
}

// parsePredecessor handles segment seq-1 of s, which has no checkpoint,
// when it has no index either: its event may have been lost, so it looks for
// the object (findPredecessor) and starts it. Run inline (no
// Config.Invoke), that parse chains to seq, and done reports that seq was
// committed meanwhile; with Invoke, parse of seq waits for it as usual.
func (p *Pipeline) parsePredecessor(ctx context.Context, s keys.Stream, seq uint64, rawKey string) (done bool, err error) {
	if ok, err := p.exists(ctx, keys.SegmentIndex(s, seq-1)); err != nil || ok {
		return false, err
	}
	rk, err := keys.Parse(rawKey)
	if err != nil {
		return false, nil // parse quarantines it
	}
	found, err := p.findPredecessor(ctx, s, seq, rk.Hour)
	if err != nil || found == "" {
		return false, err
	}
	if err := p.start(ctx, s, seq-1); err != nil && !errors.Is(err, ErrDone) {
		return false, err
	}
	if p.cfg.Invoke != nil {
		return false, nil
	}
	if ok, err := p.exists(ctx, keys.State(s, seq)); err != nil || !ok {
		return false, err
	}
	return true, ErrDone
}

// chain starts parse of segment seq+1 if it arrived before seq was
// committed and is not committed itself.
func (p *Pipeline) chain(ctx context.Context, s keys.Stream, seq uint64) error {
	if ok, err := p.exists(ctx, keys.SegmentIndex(s, seq+1)); err != nil || !ok {
		return err
	}
	if ok, err := p.exists(ctx, keys.State(s, seq+1)); err != nil || ok {
		return err
	}
	if err := p.start(ctx, s, seq+1); err != nil && !errors.Is(err, ErrDone) {
		return err
	}
	return nil
}

// lakeName is the base name of the lake files of one segment.
func lakeName(s keys.Stream, seq uint64) string {
	return fmt.Sprintf("seg-%s-%d-%020d", s.Agent, s.Stream, seq)
}

type result struct {
	rows       engine.Collector
	status     schema.ParseStatus
	checkpoint []byte
	keys       *keylog.Log         // the engine's key log after the segment (derived keys included)
	keep       func([32]byte) bool // which of keys to carry to the next segment
	own        *keylog.Log         // the segment's secrets object (carried once, see carry)
}

// parseSegment runs the engine over one segment from state prev.
func (p *Pipeline) parseSegment(ctx context.Context, s keys.Stream, seq uint64, rawKey string, prev []byte) (*result, error) {
	res := &result{}
	res.status = schema.ParseStatus{ParsedAt: p.cfg.Now().UnixMicro(), Agent: s.Agent, Stream: int32(s.Stream), Seq: int64(seq), Input: rawKey, Status: "ok"}
	cfg := p.cfg.Engine
	cfg.Agent = s.Agent
	var e *engine.Engine
	var err error
	if cfg.Hosts, err = p.hosts(ctx, s.Agent); err != nil {
		return nil, fmt.Errorf("parse %s: %w", rawKey, err)
	}
	rk, err := keys.Parse(rawKey)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", rawKey, err)
	}
	if res.keys, res.own, err = p.loadKeys(ctx, s, seq, rk.Hour); err != nil {
		return nil, fmt.Errorf("parse %s: %w", rawKey, err)
	}
	cfg.Keys = res.keys
	if prev != nil {
		if e, err = engine.Resume(cfg, &res.rows, prev); err != nil {
			// A checkpoint we wrote ourselves does not fail to load unless
			// the configuration changed incompatibly: record and restart.
			p.cfg.Log.Error("parse: cannot resume from checkpoint; starting empty", "key", rawKey, "err", err)
			res.status.Gap, res.status.Error = true, "checkpoint: "+err.Error()
			prev = nil
		}
	}
	if prev == nil {
		e = engine.New(cfg, &res.rows)
	}
	e.SetInput(rawKey)
	rc, err := p.cfg.Store.Get(ctx, rawKey)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", rawKey, err)
	}
	defer rc.Close()
	var bad error
	r, err := capture.NewReader(rc)
	if err != nil {
		bad = err
	} else {
		defer r.Close()
		for {
			data, ts, link, _, err := r.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				bad = err
				break
			}
			if res.status.Packets == 0 {
				res.status.TS = ts / 1000
			}
			res.status.TSEnd = ts / 1000
			res.status.Packets++
			res.status.Bytes += int64(len(data))
			if err := e.Frame(link, ts, data); err != nil {
				res.status.DecodeErrors++
			}
		}
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if bad != nil {
		res.status.Status = "error"
		res.status.Error = fmt.Sprintf("segment unreadable after %d packets: %v", res.status.Packets, bad)
		if err := p.quarantine(ctx, rawKey, "parse", errors.New(res.status.Error)); err != nil {
			return nil, err
		}
	}
	st := e.Stats()
	res.status.Decoded = st.Decode.TCP + st.Decode.UDP
	res.status.Truncated = st.Decode.Truncated
	res.status.TCPConns, res.status.HTTPExchanges, res.status.HTTPErrors = st.TCPConns, st.HTTPExchanges, st.HTTPErrors
	res.status.DNSQueries, res.status.TLSHandshakes = st.DNSQueries, st.TLSHandshakes
	res.status.MissingBytes, res.status.LimitHits = st.TCP.MissingBytes, st.TCP.LimitHits
	if res.status.Packets == 0 {
		res.status.TS = res.status.ParsedAt
		res.status.TSEnd = res.status.ParsedAt
	}
	if res.checkpoint, err = e.Checkpoint(); err != nil {
		return nil, fmt.Errorf("parse %s: %w", rawKey, err)
	}
	res.keep = carry(e.OpenTLS(), res.own)
	res.keys = e.Keys()
	return res, nil
}

// writeLake writes a segment's rows (and its parse_status row, if any) as
// the lake files named name.
func (p *Pipeline) writeLake(ctx context.Context, name string, rows *engine.Collector, status *schema.ParseStatus) error {
	_, err := p.writeLakeKeys(ctx, name, rows, status)
	return err
}

// writeLakeKeys is writeLake that returns the keys of the objects written.
func (p *Pipeline) writeLakeKeys(ctx context.Context, name string, rows *engine.Collector, status *schema.ParseStatus) ([]string, error) {
	rec := &recordingSink{Sink: lake.StoreSink{Store: p.cfg.Store}}
	w := lake.NewWriter(rec, lake.Options{Name: name})
	sink := engine.LakeSink{W: w}
	for i := range rows.HTTPRows {
		sink.HTTP(&rows.HTTPRows[i])
	}
	for i := range rows.TCPRows {
		sink.TCP(&rows.TCPRows[i])
	}
	for i := range rows.DNSRows {
		sink.DNS(&rows.DNSRows[i])
	}
	for i := range rows.TLSRows {
		sink.TLS(&rows.TLSRows[i])
	}
	if status != nil {
		sink.ParseStatus(status)
	}
	if _, err := w.Close(ctx); err != nil {
		return nil, fmt.Errorf("write lake: %w", err)
	}
	return rec.keys, nil
}

// recordingSink is a lake.Sink that remembers the keys it wrote.
type recordingSink struct {
	lake.Sink
	mu   sync.Mutex
	keys []string
}

func (r *recordingSink) Put(ctx context.Context, key string, body []byte) error {
	if err := r.Sink.Put(ctx, key, body); err != nil {
		return err
	}
	r.mu.Lock()
	r.keys = append(r.keys, key)
	r.mu.Unlock()
	return nil
}

// hosts returns the static host names for the segments of agent: the
// names the agent published from its /etc/hosts (package hosts), with the
// names of Config.Engine.Hosts on top. A document that cannot be read is
// logged and ignored; a failing store is an error (the parse is retried).
func (p *Pipeline) hosts(ctx context.Context, agent string) (map[netip.Addr]string, error) {
	published, err := hosts.Load(ctx, p.cfg.Store, agent)
	switch {
	case errors.Is(err, hosts.ErrBadDocument):
		p.cfg.Log.Warn("ignoring the agent's host names", "agent", agent, "err", err)
		published = nil
	case err != nil:
		return nil, err
	}
	if len(published) == 0 {
		return p.cfg.Engine.Hosts, nil
	}
	merged := maps.Clone(published)
	maps.Copy(merged, p.cfg.Engine.Hosts)
	return merged, nil
}

// errorDoc is the document written beside a quarantined object.
type errorDoc struct {
	Key   string    `json:"key"`
	Stage string    `json:"stage"`
	Error string    `json:"error"`
	Time  time.Time `json:"time"`
}

// quarantine copies a bad object to quarantine/ with an error document.
func (p *Pipeline) quarantine(ctx context.Context, key, stage string, cause error) error {
	p.cfg.Log.Warn("quarantine", "key", key, "stage", stage, "err", cause)
	if body, err := p.getAll(ctx, key); err == nil {
		if err := p.cfg.Store.Put(ctx, keys.Quarantine(key), bytes.NewReader(body), int64(len(body))); err != nil {
			return fmt.Errorf("quarantine %s: %w", key, err)
		}
	} else if !errors.Is(err, store.ErrNotExist) {
		return fmt.Errorf("quarantine %s: %w", key, err)
	}
	doc, _ := json.MarshalIndent(errorDoc{Key: key, Stage: stage, Error: cause.Error(), Time: p.cfg.Now().UTC()}, "", "  ")
	if err := p.cfg.Store.Put(ctx, keys.QuarantineError(key), bytes.NewReader(doc), int64(len(doc))); err != nil {
		return fmt.Errorf("quarantine %s: error document: %w", key, err)
	}
	return nil
}

// FlushStream ends a stream that will get no more segments (an agent that
// stopped): it resumes from the checkpoint of segment last, ends every open
// connection and pending query, and writes their rows. The file names
// derive from the stream and last, so repeating it rewrites the same files.
func (p *Pipeline) FlushStream(ctx context.Context, s keys.Stream, last uint64) error {
	state, err := p.getAll(ctx, keys.State(s, last))
	if err != nil {
		return fmt.Errorf("flush %s: %w", s, err)
	}
	res := &result{}
	cfg := p.cfg.Engine
	cfg.Agent = s.Agent
	if cfg.Hosts, err = p.hosts(ctx, s.Agent); err != nil {
		return fmt.Errorf("flush %s: %w", s, err)
	}
	// The keys carried after segment last are those of the connections
	// that Finish ends.
	if cfg.Keys, _, err = p.loadKeys(ctx, s, last+1, time.Time{}); err != nil {
		return fmt.Errorf("flush %s: %w", s, err)
	}
	e, err := engine.Resume(cfg, &res.rows, state)
	if err != nil {
		return fmt.Errorf("flush %s: %w", s, err)
	}
	e.Finish()
	if err := p.writeLake(ctx, lakeName(s, last)+"-flush", &res.rows, nil); err != nil {
		return fmt.Errorf("flush %s: %w", s, err)
	}
	return nil
}

// Reconcile finds segments that were indexed but never committed (a worker
// died, an event was lost) and starts their parse; then segments that were
// never indexed because their creation event never came (see discover.go).
// The functions host runs it at start and then periodically; on AWS a
// scheduled rule can.
func (p *Pipeline) Reconcile(ctx context.Context) (started int, err error) {
	type pending struct {
		s   keys.Stream
		seq uint64
	}
	var todo []pending
	done := map[string]bool{}
	newest := map[keys.Stream]uint64{}
	err = p.cfg.Store.List(ctx, keys.PrefixState, func(info store.Info) error {
		switch {
		case strings.HasSuffix(info.Key, keys.ExtState):
			done[strings.TrimSuffix(info.Key, keys.ExtState)] = true
		case strings.HasSuffix(info.Key, keys.ExtIndex):
			s, seq, err := keys.ParseState(info.Key)
			if err != nil {
				return nil // not ours
			}
			todo = append(todo, pending{s, seq})
			newest[s] = max(newest[s], seq)
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("reconcile: %w", err)
	}
	// Only the first uncommitted segment of each stream needs a start: its
	// commit chains to the next.
	first := map[keys.Stream]bool{}
	for _, t := range todo {
		if done[strings.TrimSuffix(keys.SegmentIndex(t.s, t.seq), keys.ExtIndex)] || first[t.s] {
			continue
		}
		first[t.s] = true
		if err := p.start(ctx, t.s, t.seq); err != nil && !errors.Is(err, ErrDone) {
			return started, fmt.Errorf("reconcile: %w", err)
		}
		started++
	}
	newestKey := make(map[keys.Stream]string, len(newest))
	for s, seq := range newest {
		key, err := p.getAll(ctx, keys.SegmentIndex(s, seq))
		if err != nil {
			return started, fmt.Errorf("reconcile: %w", err)
		}
		newestKey[s] = string(key)
	}
	n, err := p.discover(ctx, newestKey, p.discoverAllDue())
	return started + n, err
}
