package source

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/flowlake/flowlake/internal/capture"
	"github.com/flowlake/flowlake/internal/decode"
)

// ReplayConfig configures a replay of capture files.
type ReplayConfig struct {
	// Files are pcap/pcapng files (also .gz/.zst), read in order as one
	// capture.
	Files []string
	// Streams is K (>= 1).
	Streams int
	// Pace replays in real time: packets are emitted as far apart as their
	// timestamps. Otherwise as fast as they are read.
	Pace bool
	// Filter is a tcpdump filter expression, run in user space.
	Filter string
	// Log receives notices; nil discards them.
	Log *slog.Logger
}

// Replay replays capture files as if they were being captured, reusing
// the capture package's reader (pcap, pcapng, compressed, many files as
// one capture). Packets keep their timestamps. Like the kernel's fanout,
// it assigns a packet to a stream by a symmetric hash of its flow
// (addresses, and ports except for IP fragments), so both directions of a
// connection share a stream; the hash is FNV-1a, fixed, so a replay always
// splits a capture the same way.
type Replay struct {
	cfg      ReplayConfig
	log      *slog.Logger
	received []atomic.Int64
	filtered atomic.Int64

	mu      sync.Mutex
	filters map[layers.LinkType]*Filter
	results []capture.Result
}

// NewReplay checks the files and the filter.
func NewReplay(cfg ReplayConfig) (*Replay, error) {
	if len(cfg.Files) == 0 {
		return nil, errors.New("replay: no capture files")
	}
	if cfg.Streams < 1 || cfg.Streams > MaxStreams {
		return nil, fmt.Errorf("replay: %d streams: want 1 to %d", cfg.Streams, MaxStreams)
	}
	for _, f := range cfg.Files {
		fi, err := os.Stat(f)
		if err != nil {
			return nil, fmt.Errorf("replay: %w", err)
		}
		if fi.IsDir() {
			return nil, fmt.Errorf("replay: %s is a directory; give the capture files", f)
		}
	}
	r := &Replay{cfg: cfg, log: cfg.Log, received: make([]atomic.Int64, cfg.Streams), filters: map[layers.LinkType]*Filter{}}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if cfg.Filter != "" {
		// Compiled for Ethernet now to report a bad expression at start;
		// other link types are compiled when they appear.
		if _, err := r.filterFor(layers.LinkTypeEthernet); err != nil {
			return nil, fmt.Errorf("replay: %w", err)
		}
	}
	return r, nil
}

func (r *Replay) filterFor(link layers.LinkType) (*Filter, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if f, ok := r.filters[link]; ok {
		return f, nil
	}
	f, err := CompileFilter(r.cfg.Filter, link)
	if err != nil {
		return nil, err
	}
	if !f.CanMatch() {
		return nil, fmt.Errorf("filter %q uses Linux BPF extensions that a replay cannot run", r.cfg.Filter)
	}
	r.filters[link] = f
	return f, nil
}

// Interface implements Source.
func (r *Replay) Interface() string { return "pcap" }

// Streams implements Source.
func (r *Replay) Streams() int { return r.cfg.Streams }

// Run implements Source. It returns nil at the end of the last file, or an
// error listing the files that could not be read to their end (their
// packets up to the damage were replayed).
func (r *Replay) Run(ctx context.Context, emit Emit) error {
	src := capture.Open(r.cfg.Files)
	defer src.Close()
	dec := decode.New()
	var cp capture.Packet
	var p Packet
	var first int64
	var start time.Time
	file, origin := -1, ""
	for n := 0; ; n++ {
		if n&1023 == 0 && ctx.Err() != nil {
			return nil
		}
		err := src.Next(&cp)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("replay: %w", err)
		}
		if cp.File != file {
			file, origin = cp.File, "file:"+filepath.Base(cp.FileName)
			r.log.Info("replaying", "file", cp.FileName)
		}
		if r.cfg.Filter != "" {
			f, err := r.filterFor(cp.Link)
			if err != nil {
				return fmt.Errorf("replay %s: %w", cp.FileName, err)
			}
			if !f.Match(cp.Data) {
				r.filtered.Add(1)
				continue
			}
		}
		if r.cfg.Pace {
			if start.IsZero() {
				start, first = time.Now(), cp.TS
			} else if wait := time.Until(start.Add(time.Duration(cp.TS - first))); wait > 0 {
				select {
				case <-ctx.Done():
					return nil
				case <-time.After(wait):
				}
			}
		}
		k := flowStream(dec, cp.Link, cp.TS, cp.Data, r.cfg.Streams)
		r.received[k].Add(1)
		p = Packet{TS: cp.TS, Link: cp.Link, Data: cp.Data, WireLen: cp.WireLen, Origin: origin}
		if err := emit(k, &p); err != nil {
			return err
		}
	}
	r.mu.Lock()
	r.results = src.Results()
	r.mu.Unlock()
	var bad []error
	for _, res := range src.Results() {
		if res.Err != nil {
			bad = append(bad, res.Err)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("replay: %d of %d files could not be read to the end: %w", len(bad), len(r.cfg.Files), errors.Join(bad...))
	}
	return nil
}

// Results returns what the capture reader reported for each file, once Run
// has returned.
func (r *Replay) Results() []capture.Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.results
}

// Stats implements Source.
func (r *Replay) Stats() Stats {
	st := Stats{Streams: make([]StreamStats, len(r.received)), Filtered: r.filtered.Load(), FilteredKnown: true}
	for k := range r.received {
		st.Streams[k].Received = r.received[k].Load()
	}
	return st
}

// Close implements Source.
func (r *Replay) Close() error { return nil }

// flowStream returns the stream of a frame: a symmetric hash of its
// addresses, protocol and ports (not for IP fragments, whose later pieces
// carry no ports), modulo k. Frames without IP go to stream 0.
func flowStream(dec *decode.Decoder, link layers.LinkType, ts int64, data []byte, k int) int {
	if k == 1 {
		return 0
	}
	var p decode.Packet
	err := dec.Decode(link, ts, data, &p)
	if !p.Src.IsValid() || !p.Dst.IsValid() {
		return 0
	}
	sp, dp, proto := p.SrcPort, p.DstPort, p.Proto
	if err != nil || p.Fragmented {
		sp, dp, proto = 0, 0, 0
	}
	a, b := p.Src.As16(), p.Dst.As16()
	if c := compareEndpoint(a, sp, b, dp); c > 0 {
		a, b, sp, dp = b, a, dp, sp
	}
	h := fnv.New64a()
	h.Write(a[:])
	h.Write(b[:])
	h.Write([]byte{byte(sp >> 8), byte(sp), byte(dp >> 8), byte(dp), proto})
	return int(h.Sum64() % uint64(k))
}

func compareEndpoint(a [16]byte, ap uint16, b [16]byte, bp uint16) int {
	for i := range a {
		if a[i] != b[i] {
			return int(a[i]) - int(b[i])
		}
	}
	return int(ap) - int(bp)
}
