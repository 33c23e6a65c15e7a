package engine

import (
	"bytes"
	"encoding/gob"
	"errors"
	"fmt"
	"net/netip"
	"sort"

	"github.com/flowlake/flowlake/internal/dns"
	"github.com/flowlake/flowlake/internal/http1"
	"github.com/flowlake/flowlake/internal/http2"
	"github.com/flowlake/flowlake/internal/tcp"
	"github.com/flowlake/flowlake/internal/tlsdecrypt"
)

// checkpointVersion is the version of the engine checkpoint format.
const checkpointVersion = 1

// ErrBadCheckpoint reports a checkpoint that cannot be resumed from.
var ErrBadCheckpoint = errors.New("engine: bad checkpoint")

type nameState struct {
	IP   netip.Addr
	Name string
	Rank int8
}

type checkpoint struct {
	Version   int
	Agent     string
	Assembler []byte
	DNS       []byte
	Names     []nameState
	LastAdv   int64
	LastTS    int64
}

// connCheckpoint is one connection's engine-side state.
type connCheckpoint struct {
	ID, CommunityID, App string
	Swapped              bool
	Exchanges            int32
	Failed               bool
	Prefix               [2][]byte
	Held                 []heldChunk
	HeldN, Tried         int
	Parser               []byte // state of the protocol parser, by App
	// Inner is the protocol found inside decrypted TLS, Plain the state of
	// the handler of its plaintext (nil when none was asked for).
	Inner string
	Plain *tlsPlainCheckpoint
}

type heldChunk struct {
	Dir  tcp.Dir
	TS   int64
	Data []byte
	Gap  int
}

// Checkpoint returns the engine's carry-over state at the end of a piece of
// a capture: open and lingering TCP connections with their parsers' partial
// messages, pending DNS queries and the learned host names. Resume continues
// from it as if the capture had not been cut. Unlike Finish, Checkpoint
// emits nothing and ends nothing; the engine must not be used afterwards.
// IPv4 fragments waiting for their datagram are not carried over.
func (e *Engine) Checkpoint() ([]byte, error) {
	asm, err := e.asm.MarshalState(e.connState)
	if err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	dnsState, err := e.dns.MarshalState()
	if err != nil {
		return nil, fmt.Errorf("checkpoint: dns: %w", err)
	}
	cp := checkpoint{Version: checkpointVersion, Agent: e.cfg.Agent, Assembler: asm, DNS: dnsState, LastAdv: e.lastAdv, LastTS: e.stats.LastTS}
	for ip, n := range e.names.m {
		cp.Names = append(cp.Names, nameState{ip, n.name, n.rank})
	}
	sort.Slice(cp.Names, func(i, j int) bool { return cp.Names[i].IP.Less(cp.Names[j].IP) })
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&cp); err != nil {
		return nil, fmt.Errorf("checkpoint: %w", err)
	}
	return buf.Bytes(), nil
}

func (e *Engine) connState(c *tcp.Conn) ([]byte, error) {
	cs := c.Data.(*connState)
	d := &cs.det
	cc := connCheckpoint{ID: cs.id, CommunityID: cs.communityID, App: cs.app, Swapped: cs.swapped, Exchanges: cs.exchanges,
		Failed: d.failed, Prefix: d.prefix, HeldN: d.heldN, Tried: d.tried}
	for _, h := range d.held {
		cc.Held = append(cc.Held, heldChunk{h.dir, h.ts, h.data, h.gap})
	}
	var err error
	switch p := d.next.(type) {
	case nil:
	case *http1.Parser:
		cc.Parser, err = p.MarshalState()
	case *http2.Parser:
		cc.Parser, err = p.MarshalState()
	case *tlsdecrypt.Conn:
		cc.Parser, err = p.MarshalState()
		cc.Inner = cs.inner
		if err == nil && cs.plain != nil {
			cc.Plain, err = cs.plain.checkpoint()
		}
	case *dns.Stream:
		cc.Parser, err = p.MarshalState()
	default:
		err = fmt.Errorf("no checkpoint for parser %T", p)
	}
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&cc); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Resume returns an engine that continues from a checkpoint, writing rows
// to out. cfg must match the configuration the checkpoint was made with
// (its agent is checked).
func Resume(cfg Config, out Sink, state []byte) (*Engine, error) {
	var cp checkpoint
	if err := gob.NewDecoder(bytes.NewReader(state)).Decode(&cp); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCheckpoint, err)
	}
	if cp.Version != checkpointVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrBadCheckpoint, cp.Version, checkpointVersion)
	}
	if cp.Agent != cfg.Agent {
		return nil, fmt.Errorf("%w: made for agent %q, resuming agent %q", ErrBadCheckpoint, cp.Agent, cfg.Agent)
	}
	e := New(cfg, out)
	tr, err := dns.RestoreTracker(int64(e.cfg.DNSTimeout), cp.DNS, e.emitDNS)
	if err != nil {
		return nil, fmt.Errorf("%w: dns: %v", ErrBadCheckpoint, err)
	}
	e.dns = tr
	e.dns.OnAnswer(func(name string, ip netip.Addr) { e.names.learn(ip, name, rankDNS) })
	for _, n := range cp.Names {
		e.names.m[n.IP] = nameEntry{n.Name, n.Rank}
	}
	e.lastAdv = cp.LastAdv
	asm, err := tcp.RestoreAssembler(cfg.TCP, cp.Assembler, e.newConn, e.connDone, e.restoreConn)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadCheckpoint, err)
	}
	e.asm = asm
	return e, nil
}

func (e *Engine) restoreConn(c *tcp.Conn, state []byte) (tcp.StreamHandler, error) {
	var cc connCheckpoint
	if err := gob.NewDecoder(bytes.NewReader(state)).Decode(&cc); err != nil {
		return nil, err
	}
	cs := &connState{id: cc.ID, communityID: cc.CommunityID, swapped: cc.Swapped, exchanges: cc.Exchanges}
	c.Data = cs
	d := &cs.det
	*d = detector{e: e, c: c, cs: cs, failed: cc.Failed, prefix: cc.Prefix, heldN: cc.HeldN, tried: cc.Tried}
	for _, h := range cc.Held {
		d.held = append(d.held, chunk{h.Dir, h.TS, h.Data, h.Gap})
	}
	if cc.App == "" {
		return d, nil
	}
	// decide builds the parser for the app; then its state replaces it.
	swapped := cs.swapped
	d.decide(cc.App, false)
	cs.swapped = swapped
	var err error
	switch cc.App {
	case appHTTP:
		cs.http, err = http1.Restore(e.cfg.HTTP, cc.Parser, func(x *http1.Exchange) { e.emitHTTP(c, cs, x) })
		d.next = cs.http
	case appH2C:
		cs.h2, err = http2.Restore(e.h2Config(), cc.Parser, func(x *http2.Exchange) { e.emitHTTP(c, cs, x.HTTP1()) })
		d.next = cs.h2
	case appTLS:
		delete(e.tlsConns, cs.tls) // the one decide made
		cs.inner = cc.Inner
		var plain tcp.StreamHandler
		if cc.Plain != nil {
			if cs.plain, err = e.restorePlain(c, cs, cc.Plain); err != nil {
				return nil, err
			}
			plain = cs.plain
		}
		var t *tlsdecrypt.Conn
		if t, err = tlsdecrypt.Restore(e.tlsConfig(c, cs), cc.Parser, plain); err == nil {
			cs.tls, d.next = t, t
			e.tlsConns[t] = struct{}{}
		}
	case appDNS:
		d.next, err = dns.RestoreStream(e.dns, cc.Parser)
	default:
		err = fmt.Errorf("unknown app %q", cc.App)
	}
	return d, err
}
