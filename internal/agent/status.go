package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/flowlake/flowlake/internal/agent/hosts"
	"github.com/flowlake/flowlake/internal/agent/spool"
	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/report"
)

// Status returns the agent's report: cumulative counters per stream since
// the agent started.
//
//   - Captured: packets the agent read from the kernel (or the replay) and
//     segmented.
//   - Filtered: packets the capture filter rejected, over all streams,
//     reported on stream 0 (the kernel picks a packet's stream only after
//     the filter accepted it).
//   - Dropped: packets the kernel dropped because the stream's ring was
//     full (TPACKET_V3 statistics).
//   - Overflow: packets of segments dropped because the spool was full or
//     could not be written.
//   - SegmentsUploaded, BytesUploaded: segments (and their compressed
//     bytes) the store has, including ones an earlier attempt had put there.
//   - SpoolBytes: bytes of the stream's segments waiting in the spool.
//   - Errors: failed upload attempts, spool write failures, segments set
//     aside as conflicts, packets no segment can hold; errors of objects of
//     no stream (status reports, host names) are counted on stream 0.
func (a *Agent) Status() report.Status {
	src := a.cfg.Source.Stats()
	st := report.Status{
		Version:   report.Version,
		Agent:     a.cfg.ID,
		Time:      a.cfg.Now().UTC(),
		Interface: a.cfg.Source.Interface(),
	}
	for k, c := range a.c {
		s := report.Stream{
			Stream:           k,
			Captured:         c.captured.Load(),
			Overflow:         c.overflow.Load(),
			SegmentsUploaded: c.segmentsUploaded.Load(),
			BytesUploaded:    c.bytesUploaded.Load(),
			SpoolBytes:       a.spool.Bytes(spool.StreamPrefix(keys.Stream{Agent: a.cfg.ID, Stream: k})),
			Errors:           c.errors.Load() + c.invalid.Load(),
		}
		if k < len(src.Streams) {
			s.Dropped = src.Streams[k].Dropped
		}
		if k == 0 {
			s.Filtered = src.Filtered
			s.Errors += a.other.errors.Load()
		}
		st.Streams = append(st.Streams, s)
	}
	return st
}

// statusLoop writes a status report every StatusEvery, and republishes the
// host names when the hosts file changed.
func (a *Agent) statusLoop(ctx context.Context) {
	t := time.NewTicker(a.cfg.StatusEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.writeStatus()
			a.publishHosts()
		}
	}
}

// writeStatus puts a status report into the spool for upload.
func (a *Agent) writeStatus() {
	st := a.Status()
	body, err := json.Marshal(st)
	if err != nil {
		a.other.errors.Add(1)
		a.log.Error("status report not encoded", "err", err)
		return
	}
	key := keys.Status(a.cfg.ID, st.Time)
	if err := a.spool.Put(key, body); err != nil {
		a.other.errors.Add(1)
		if errors.Is(err, spool.ErrFull) {
			a.log.Warn("spool full: status report dropped", "key", key)
		} else {
			a.log.Error("status report not spooled", "key", key, "err", err)
		}
		return
	}
	a.up.Add(key)
	a.log.Debug("status", "key", key, "status", st)
}

// publishHosts spools the host names document when the hosts file changed
// since the last one.
func (a *Agent) publishHosts() {
	if a.cfg.HostsFile == "" {
		return
	}
	names, err := hosts.ReadFile(a.cfg.HostsFile)
	if err != nil {
		a.log.Warn("host names not published", "err", err)
		return
	}
	doc, err := hosts.Encode(a.cfg.ID, a.cfg.HostsFile, names)
	if err != nil {
		a.log.Warn("host names not published", "err", err)
		return
	}
	a.hostsMu.Lock()
	defer a.hostsMu.Unlock()
	if bytes.Equal(doc, a.hostsSeen) {
		return
	}
	key := hosts.Key(a.cfg.ID)
	if err := a.spool.Put(key, doc); err != nil {
		a.other.errors.Add(1)
		a.log.Warn("host names not spooled", "key", key, "err", err)
		return
	}
	a.hostsSeen = doc
	a.up.Add(key)
	a.log.Info("host names published", "key", key, "names", len(names), "from", a.cfg.HostsFile)
}
