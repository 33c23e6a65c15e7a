package query

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/flowlake/flowlake/internal/tcp"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"

	"github.com/flowlake/flowlake/internal/capture"
	"github.com/flowlake/flowlake/internal/decode"
	"github.com/flowlake/flowlake/internal/keys"
)

// pcapSlack widens a connection's time range when packets are selected
// and segments looked up (a FIN or retransmission after the recorded end).
const pcapSlack = 5 * time.Second

// conn is the TCP connection an export reads packets of.
type conn struct {
	id             string
	agent          string
	client, server netip.Addr
	cport, sport   uint16
	from, to       int64 // µs
	segments       []string
}

// PCAP writes the packets of the TCP connection of exchange id (or of the
// TCP connection id itself) as a classic pcap file with nanosecond
// timestamps to w, read from the raw capture segments: those listed in the
// connection's segments column (unless that list was cut at
// tcp.MaxInputs), else the segments of its agent that
// parse_status says cover its time. ErrNotFound when the id is unknown or
// outside scope, or when no segment holding its packets is in the store.
// hint, when not zero, is the exchange's (or connection's) ts, as for
// Communication: the lookup of id searches around it first.
func (e *Engine) PCAP(ctx context.Context, id string, scope []string, hint time.Time, w io.Writer) error {
	c, err := e.connOf(ctx, id, scope, hint)
	if err != nil {
		return err
	}
	segs := c.segments
	// The column is bounded (tcp.MaxInputs): a connection open across
	// more segments lists only the first and the latest ones.
	if len(segs) == 0 || len(segs) >= tcp.MaxInputs {
		segs, err = e.segmentsOf(ctx, c)
		if err != nil {
			return err
		}
	}
	if len(segs) == 0 {
		return fmt.Errorf("%w: no capture segment of connection %s is in the store", ErrNotFound, c.id)
	}
	return e.writePCAP(ctx, c, segs, w)
}

// connOf finds the connection of an exchange id or of a TCP connection id,
// searching around hint first (see Communication).
func (e *Engine) connOf(ctx context.Context, id string, scope []string, hint time.Time) (*conn, error) {
	if id == "" || len(id) > 256 || (scope != nil && len(scope) == 0) {
		return nil, fmt.Errorf("%w: communication %q", ErrNotFound, id)
	}
	wins := e.idWindows(hint)
	var tcpID string
	var ts int64
	ok, err := e.findIn(ctx, httpTable, wins, and(idEq("id", id), scopeExpr(scope)), []string{"tcp_id", "ts"}, func(b *batch, r int) {
		tcpID, ts = strings.Clone(b.col("tcp_id").str(r)), b.col("ts").int(r)
	})
	if err != nil {
		return nil, err
	}
	if ok {
		wins = connWindows(ts)
	} else {
		tcpID = id // a TCP connection id: its own ts is the hint
	}
	var c *conn
	var perr error
	cols := []string{"id", "agent", "ts", "ts_end", "client_ip", "client_port", "server_ip", "server_port", "segments"}
	found, err := e.findIn(ctx, tcpTable, wins, and(idEq("id", tcpID), scopeExpr(scope)), cols, func(b *batch, r int) {
		cl, err1 := netip.ParseAddr(b.col("client_ip").str(r))
		sv, err2 := netip.ParseAddr(b.col("server_ip").str(r))
		if perr = errors.Join(err1, err2); perr != nil {
			return
		}
		c = &conn{id: strings.Clone(b.col("id").str(r)), agent: strings.Clone(b.col("agent").str(r)),
			client: cl, server: sv, cport: uint16(b.col("client_port").int(r)), sport: uint16(b.col("server_port").int(r)),
			from: b.col("ts").int(r), to: b.col("ts_end").int(r)}
		for _, s := range b.col("segments").strs(r) {
			c.segments = append(c.segments, strings.Clone(s))
		}
	})
	switch {
	case err != nil:
		return nil, err
	case perr != nil:
		return nil, fmt.Errorf("connection %s: %w", tcpID, perr)
	case !found:
		return nil, fmt.Errorf("%w: connection of %s", ErrNotFound, id)
	}
	return c, nil
}

// segmentsOf returns the raw segment keys of the connection's agent whose
// packets (per parse_status) overlap its time, in stream and seq order.
func (e *Engine) segmentsOf(ctx context.Context, c *conn) ([]string, error) {
	slack := pcapSlack.Microseconds()
	from, to := c.from-slack, c.to+slack
	var mu sync.Mutex
	seen := map[string]bool{}
	// A segment's row sits in the hour of its first packet, which may be
	// before the connection began.
	err := e.run(ctx, &scan{table: parseStatusTable, from: from - time.Hour.Microseconds(), to: to,
		where: and(tsRange(from-time.Hour.Microseconds(), to), strIn("agent", []string{c.agent})),
		cols:  []string{"ts_end", "input"},
		fn: func(_ int, _ *unit, b *batch, sel []int32) error {
			te, in := b.col("ts_end"), b.col("input")
			mu.Lock()
			defer mu.Unlock()
			for _, r := range sel {
				if te.int(int(r)) < from {
					continue
				}
				if k := in.str(int(r)); strings.HasPrefix(k, keys.PrefixRaw) {
					seen[strings.Clone(k)] = true
				}
			}
			return nil
		}})
	if err != nil {
		return nil, err
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	slices.SortFunc(out, func(a, b string) int {
		pa, ea := keys.Parse(a)
		pb, eb := keys.Parse(b)
		if ea != nil || eb != nil {
			return strings.Compare(a, b)
		}
		return cmp.Or(cmp.Compare(pa.Stream.Stream, pb.Stream.Stream), cmp.Compare(pa.Seq, pb.Seq))
	})
	return out, nil
}

// writePCAP copies the packets of c found in the segments to w.
func (e *Engine) writePCAP(ctx context.Context, c *conn, segs []string, w io.Writer) error {
	pw := pcapgo.NewWriterNanos(w)
	var link layers.LinkType
	started := false
	dec := decode.New()
	var p decode.Packet
	slack := pcapSlack.Nanoseconds()
	from, to := c.from*1000-slack, c.to*1000+slack
	written := 0
	for _, key := range segs {
		if err := ctx.Err(); err != nil {
			return err
		}
		rc, err := e.st.Get(ctx, key)
		if err != nil {
			return fmt.Errorf("pcap: segment %s: %w", key, err)
		}
		err = func() error {
			defer rc.Close()
			r, err := capture.NewReader(rc)
			if err != nil {
				return fmt.Errorf("pcap: segment %s: %w", key, err)
			}
			defer r.Close()
			for {
				data, ts, lt, wireLen, err := r.Next()
				if errors.Is(err, io.EOF) {
					return nil
				}
				if err != nil {
					return fmt.Errorf("pcap: segment %s: %w", key, err)
				}
				if ts < from || ts > to {
					continue
				}
				if dec.Decode(lt, ts, data, &p) != nil || p.Proto != decode.ProtoTCP {
					continue
				}
				fwd := p.Src == c.client && p.SrcPort == c.cport && p.Dst == c.server && p.DstPort == c.sport
				rev := p.Src == c.server && p.SrcPort == c.sport && p.Dst == c.client && p.DstPort == c.cport
				if !fwd && !rev {
					continue
				}
				if !started {
					link = lt
					if err := pw.WriteFileHeader(65535, link); err != nil {
						return fmt.Errorf("pcap: %w", err)
					}
					started = true
				}
				if lt != link {
					continue // a classic pcap holds one link type
				}
				ci := gopacket.CaptureInfo{Timestamp: time.Unix(0, ts), CaptureLength: len(data), Length: max(wireLen, len(data))}
				if err := pw.WritePacket(ci, data); err != nil {
					return fmt.Errorf("pcap: %w", err)
				}
				written++
			}
		}()
		if err != nil {
			return err
		}
	}
	if !started {
		return fmt.Errorf("%w: no packet of connection %s in its %d segments", ErrNotFound, c.id, len(segs))
	}
	return nil
}
