package query

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flowlake/flowlake/internal/filter"
)

// connLookback is how long before an exchange its TCP connection (and TLS
// handshake) may have started.
const connLookback = 24 * time.Hour

// parseHeaders splits the stored header block ("Name: value\n" lines).
func parseHeaders(s string) [][2]string {
	out := [][2]string{}
	for line := range strings.SplitSeq(s, "\n") {
		if line == "" {
			continue
		}
		name, value, _ := strings.Cut(line, ":")
		out = append(out, [2]string{name, strings.TrimPrefix(value, " ")})
	}
	return out
}

// readDetail returns the Detail of row r of b whose Summary is sum.
func readDetail(b *batch, r int, sum Summary) *Detail {
	s := func(c string) string { return strings.Clone(b.col(c).str(r)) }
	return &Detail{
		Summary: sum, URI: s("uri"), Query: s("query"), Version: s("version"), Reason: s("reason"),
		ReqHeaders: parseHeaders(b.col("req_headers").str(r)), RespHeaders: parseHeaders(b.col("resp_headers").str(r)),
		ReqBody: s("req_body"), RespBody: s("resp_body"), UserAgent: s("user_agent"), CommunityID: s("community_id"),
		Seq: int32(b.col("seq").int(r)),
	}
}

func idEq(field, id string) *filter.Expr {
	return cmpExpr(filter.Cmp{Field: field, Type: filter.String, Op: filter.Eq, Str: id})
}

// findFirst scans table newest first for the first row matching where in
// [from, to) and calls fn with it; it reports whether a row was found.
func (e *Engine) findFirst(ctx context.Context, t *tableDef, from, to int64, where *filter.Expr, cols []string, fn func(b *batch, r int)) (bool, error) {
	var found atomic.Bool
	var mu sync.Mutex
	err := e.run(ctx, &scan{table: t, from: from, to: to, where: where, cols: cols, newestFirst: true,
		skip: func(*unit) bool { return found.Load() },
		fn: func(_ int, _ *unit, b *batch, sel []int32) error {
			mu.Lock()
			defer mu.Unlock()
			if !found.Load() {
				found.Store(true)
				fn(b, int(sel[0]))
			}
			return nil
		}})
	return found.Load(), err
}

// allTime is the time range searched for a row known by id only.
func (e *Engine) allTime() (int64, int64) {
	return 0, e.now().Add(24 * time.Hour).UnixMicro()
}

// HintSlack is how far from an exchange's ts a lookup hint may be and
// still find it in the hinted pass. The lake is partitioned by the UTC
// hour of each row's ts (an HTTP row's ts is its request start), and
// rows are sorted by ts within each file, so a hinted pass lists the one
// partition (two near an hour boundary) holding [hint-HintSlack,
// hint+HintSlack] and reads only the row groups whose ts statistics
// overlap that range. The hint the API hands out is the exchange's ts to
// the microsecond; the slack absorbs clients that round it (to the
// millisecond, like a JavaScript Date, or to the second).
const HintSlack = time.Minute

// connNear is how long before an exchange its TCP connection is looked
// for first; a connection opened earlier (up to connLookback) is found by
// a second, wider pass.
const connNear = time.Hour

// connSkew is how far after an exchange's ts its connection's or TLS
// handshake's ts is still looked for: packet times of one connection may
// be slightly out of order in a capture.
const connSkew = time.Second

// tsWindow is a ts range [from, to) in µs.
type tsWindow struct{ from, to int64 }

// findIn searches table for the first row matching where in each window
// in turn (newest first within a window) and stops at the first window
// holding one: each pass lists only the partitions of its window and,
// with the window's ts range added to where, reads only row groups whose
// ts statistics overlap it. It reports whether a row was found.
func (e *Engine) findIn(ctx context.Context, t *tableDef, wins []tsWindow, where *filter.Expr, cols []string, fn func(b *batch, r int)) (bool, error) {
	for _, w := range wins {
		if w.to <= w.from {
			continue
		}
		ok, err := e.findFirst(ctx, t, w.from, w.to, and(tsRange(w.from, w.to), where), cols, fn)
		if err != nil || ok {
			return ok, err
		}
	}
	return false, nil
}

// idWindows are the windows searched for a row known by id: around hint
// first, when it is not zero, then all of the lake.
func (e *Engine) idWindows(hint time.Time) []tsWindow {
	from, to := e.allTime()
	all := tsWindow{from, to}
	if hint.IsZero() {
		return []tsWindow{all}
	}
	h, slack := hint.UnixMicro(), HintSlack.Microseconds()
	return []tsWindow{{h - slack, h + slack + 1}, all}
}

// Communication returns the detail of the exchange id, with its TCP
// connection and TLS handshake. An id that does not exist or whose agent
// is outside scope yields ErrNotFound.
//
// hint, when not zero, is the exchange's ts as a list or sequence
// returned it (within HintSlack): the lookup then reads only the
// partition and row groups around it. Without a hint, or when the hinted
// pass does not find id (a wrong hint is never an error, only slower),
// the whole lake is searched, newest first.
func (e *Engine) Communication(ctx context.Context, id string, scope []string, hint time.Time) (*Detail, error) {
	if id == "" || len(id) > 256 {
		return nil, fmt.Errorf("%w: communication %q", ErrNotFound, id)
	}
	if scope != nil && len(scope) == 0 {
		return nil, fmt.Errorf("%w: communication %s", ErrNotFound, id)
	}
	var d *Detail
	cols := append(append([]string{}, summaryColumns...), detailColumns...)
	ok, err := e.findIn(ctx, httpTable, e.idWindows(hint), and(idEq("id", id), scopeExpr(scope)), cols, func(b *batch, r int) {
		d = readDetail(b, r, readSummary(b, r))
	})
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: communication %s", ErrNotFound, id)
	}
	ts := d.TS.UnixMicro()
	d.TCP, err = e.tcpInfo(ctx, d.TCPID, ts, scope)
	if err != nil {
		return nil, err
	}
	connTS := int64(minInt64)
	if d.TCP != nil {
		connTS = d.TCP.TS.UnixMicro()
	}
	d.TLSInfo, err = e.tlsInfo(ctx, d.TCPID, connTS, ts, scope)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// connWindows are the windows searched for the TCP connection of an
// exchange at ts: it began at most connLookback before (a connection's ts
// is its first packet, not after the exchange's first but for connSkew),
// most often within connNear.
func connWindows(ts int64) []tsWindow {
	to := ts + connSkew.Microseconds() + 1
	return []tsWindow{{ts - connNear.Microseconds(), to}, {ts - connLookback.Microseconds(), to}}
}

// tcpInfo returns the TCP connection tcpID that carried an exchange at ts,
// nil if the lake does not hold it.
func (e *Engine) tcpInfo(ctx context.Context, tcpID string, ts int64, scope []string) (*TCPInfo, error) {
	if tcpID == "" {
		return nil, nil
	}
	var info *TCPInfo
	cols := []string{"id", "ts", "ts_end", "duration_us", "packets_c2s", "packets_s2c", "bytes_c2s", "bytes_s2c", "missing_bytes",
		"retransmissions", "out_of_order", "rtt_us", "close", "saw_syn", "app_protocol", "http_exchanges", "limit_hits", "segments"}
	_, err := e.findIn(ctx, tcpTable, connWindows(ts), and(idEq("id", tcpID), scopeExpr(scope)), cols, func(b *batch, r int) {
		i := func(c string) int64 { return b.col(c).int(r) }
		segs := b.col("segments").strs(r)
		for k := range segs {
			segs[k] = strings.Clone(segs[k])
		}
		if segs == nil {
			segs = []string{}
		}
		info = &TCPInfo{
			ID: strings.Clone(b.col("id").str(r)), TS: micros(i("ts")), TSEnd: micros(i("ts_end")), DurationUS: i("duration_us"),
			PacketsC2S: i("packets_c2s"), PacketsS2C: i("packets_s2c"), BytesC2S: i("bytes_c2s"), BytesS2C: i("bytes_s2c"),
			MissingBytes: i("missing_bytes"), Retransmissions: i("retransmissions"), OutOfOrder: i("out_of_order"),
			RTTUS: i("rtt_us"), Close: strings.Clone(b.col("close").str(r)), SawSYN: b.col("saw_syn").bool(r),
			AppProtocol: strings.Clone(b.col("app_protocol").str(r)), HTTPExchanges: int32(i("http_exchanges")),
			LimitHits: int32(i("limit_hits")), Segments: segs,
		}
	})
	return info, err
}

// tlsInfo returns the TLS handshake of connection tcpID, which carried an
// exchange at ts, nil if none. connTS is the connection's ts when known
// (else minInt64): a handshake's ts (its ClientHello) lies between the
// connection's first packet and the exchange (up to connSkew).
func (e *Engine) tlsInfo(ctx context.Context, tcpID string, connTS, ts int64, scope []string) (*TLSInfo, error) {
	if tcpID == "" {
		return nil, nil
	}
	var info *TLSInfo
	w := tsWindow{max(min(connTS, ts), ts-connLookback.Microseconds()), ts + connSkew.Microseconds() + 1}
	_, err := e.findIn(ctx, tlsTable, []tsWindow{w}, and(idEq("tcp_id", tcpID), scopeExpr(scope)),
		[]string{"version", "sni", "alpn", "cipher", "decrypted", "key_status"}, func(b *batch, r int) {
			s := func(c string) string { return strings.Clone(b.col(c).str(r)) }
			info = &TLSInfo{Version: s("version"), SNI: s("sni"), ALPN: s("alpn"), Cipher: s("cipher"),
				Decrypted: b.col("decrypted").bool(r), KeyStatus: s("key_status")}
		})
	return info, err
}
