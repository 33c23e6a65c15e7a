package http1

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/flowlake/flowlake/internal/tcp"
)

const (
	c2s = tcp.ClientToServer
	s2c = tcp.ServerToClient
)

// ev is one call on a StreamHandler: Data (data set), Gap (gap > 0) or
// Close (close set).
type ev struct {
	dir   tcp.Dir
	data  string
	gap   int
	close bool
	ts    int64 // 0: derived from the event's index
}

func data(dir tcp.Dir, s string) ev { return ev{dir: dir, data: s} }
func gap(dir tcp.Dir, n int) ev     { return ev{dir: dir, gap: n} }
func closeEv() ev                   { return ev{close: true} }

// stamp gives every event a timestamp.
func stamp(evs []ev) []ev {
	out := make([]ev, len(evs))
	for i, e := range evs {
		if e.ts == 0 {
			e.ts = int64(i+1) * 1000
		}
		out[i] = e
	}
	return out
}

// apply delivers one event, splitting Data into pieces of at most chunk
// bytes (all with the event's timestamp) when chunk > 0. Every piece is
// overwritten after the call, as the StreamHandler contract allows, so
// that a parser keeping a reference to its input is caught.
func apply(p *Parser, e ev, chunk int) {
	switch {
	case e.close:
		p.Close(e.ts)
	case e.gap > 0:
		p.Gap(e.dir, e.ts, e.gap)
	default:
		b := e.data
		if chunk <= 0 {
			chunk = len(b)
		}
		for len(b) > 0 {
			n := min(chunk, len(b))
			piece := []byte(b[:n])
			p.Data(e.dir, e.ts, piece)
			for i := range piece {
				piece[i] = 0xAA
			}
			b = b[n:]
		}
	}
}

// collector records emitted exchanges and checks the emit contract.
type collector struct {
	t   testing.TB
	out []*Exchange
}

func (c *collector) emit(e *Exchange) {
	if e.Seq != len(c.out) {
		c.t.Errorf("emitted seq %d, want %d", e.Seq, len(c.out))
	}
	c.out = append(c.out, e)
}

// run parses evs in one pass (chunk 0) or with Data split in pieces.
func run(t testing.TB, cfg Config, evs []ev, chunk int) ([]*Exchange, *Parser) {
	t.Helper()
	c := &collector{t: t}
	p := NewParser(cfg, c.emit)
	for _, e := range stamp(evs) {
		apply(p, e, chunk)
	}
	if p.stalls != 0 {
		t.Errorf("parser stalled %d times", p.stalls)
	}
	return c.out, p
}

// runRestored parses evs, marshalling and restoring the parser after the
// first off bytes of Data.
func runRestored(t testing.TB, cfg Config, evs []ev, off int) []*Exchange {
	t.Helper()
	c := &collector{t: t}
	p := NewParser(cfg, c.emit)
	pos := 0
	restored := false
	restore := func() {
		st, err := p.MarshalState()
		if err != nil {
			t.Fatalf("marshal at %d: %v", off, err)
		}
		p, err = Restore(cfg, st, c.emit)
		if err != nil {
			t.Fatalf("restore at %d: %v", off, err)
		}
		restored = true
	}
	for _, e := range stamp(evs) {
		if !restored && pos == off {
			restore()
		}
		if !restored && !e.close && e.gap == 0 && pos+len(e.data) > off {
			k := off - pos
			apply(p, ev{dir: e.dir, data: e.data[:k], ts: e.ts}, 0)
			restore()
			apply(p, ev{dir: e.dir, data: e.data[k:], ts: e.ts}, 0)
			pos += len(e.data)
			continue
		}
		apply(p, e, 0)
		pos += len(e.data)
	}
	return c.out
}

// totalData is the number of Data bytes in evs.
func totalData(evs []ev) int {
	n := 0
	for _, e := range evs {
		n += len(e.data)
	}
	return n
}

// summary renders the fields of an exchange that most tests check.
func summary(e *Exchange) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d", e.Seq)
	if e.Method != "" || e.URI != "" {
		fmt.Fprintf(&b, " %s %s", e.Method, e.URI)
	}
	if e.Host != "" {
		fmt.Fprintf(&b, " host=%s", e.Host)
	}
	fmt.Fprintf(&b, " %d", e.Status)
	if len(e.Interim) > 0 {
		fmt.Fprintf(&b, " interim=%v", e.Interim)
	}
	if e.ReqBodyBytes > 0 || len(e.ReqBody) > 0 {
		fmt.Fprintf(&b, " req=%d:%q", e.ReqBodyBytes, e.ReqBody)
	}
	if e.RespBodyBytes > 0 || len(e.RespBody) > 0 {
		fmt.Fprintf(&b, " resp=%d:%q", e.RespBodyBytes, e.RespBody)
	}
	if e.Tunnel {
		b.WriteString(" tunnel")
	}
	if !e.Complete {
		b.WriteString(" incomplete")
	}
	if e.Error != "" {
		fmt.Fprintf(&b, " err=%q", e.Error)
	}
	return b.String()
}

func summaries(xs []*Exchange) []string {
	out := make([]string, len(xs))
	for i, e := range xs {
		out[i] = summary(e)
	}
	return out
}

// checkSplits verifies that byte-at-a-time delivery, a few other piece
// sizes and (when every is set) marshal/restore at every byte offset give
// exactly the exchanges of one pass.
func checkSplits(t *testing.T, cfg Config, evs []ev, want []*Exchange, every bool) {
	t.Helper()
	for _, chunk := range []int{1, 2, 3, 7, 64} {
		got, _ := run(t, cfg, evs, chunk)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("pieces of %d bytes differ from one pass:\n got %q\nwant %q", chunk, summaries(got), summaries(want))
			diffExchanges(t, got, want)
			return
		}
	}
	if !every {
		return
	}
	for off := 0; off <= totalData(evs); off++ {
		got := runRestored(t, cfg, evs, off)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("restore after %d bytes differs from one pass:\n got %q\nwant %q", off, summaries(got), summaries(want))
			diffExchanges(t, got, want)
			return
		}
	}
}

// diffExchanges reports the first differing exchange field by field.
func diffExchanges(t *testing.T, got, want []*Exchange) {
	t.Helper()
	for i := 0; i < len(got) && i < len(want); i++ {
		g, w := reflect.ValueOf(*got[i]), reflect.ValueOf(*want[i])
		for f := 0; f < g.NumField(); f++ {
			if !reflect.DeepEqual(g.Field(f).Interface(), w.Field(f).Interface()) {
				t.Errorf("exchange %d field %s: got %#v want %#v", i, g.Type().Field(f).Name, g.Field(f).Interface(), w.Field(f).Interface())
			}
		}
	}
}
