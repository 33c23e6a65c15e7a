package engine

import (
	"bytes"

	"github.com/flowlake/flowlake/internal/http1"
	"github.com/flowlake/flowlake/internal/http2"
	"github.com/flowlake/flowlake/internal/keylog"
	"github.com/flowlake/flowlake/internal/tcp"
	"github.com/flowlake/flowlake/internal/tlsdecrypt"
	"github.com/flowlake/flowlake/internal/tlsparse"
)

// Application protocols found inside decrypted TLS (tcp.app_protocol).
const (
	appHTTPS = "https" // HTTP/1.x in TLS: http rows with tls = true
	appH2    = "h2"    // HTTP/2 in TLS (ALPN h2, or the client preface): http rows with tls = true
)

// AddKeys adds TLS secrets to the engine's key log, for the connections
// whose handshakes come later (pcapng Decryption Secrets Blocks met while
// reading a capture, secrets of the pipeline). The log given in Config is
// not modified.
func (e *Engine) AddKeys(l *keylog.Log) {
	e.keys.Merge(l)
}

// tlsConfig wires a decrypting TLS handler into the engine.
func (e *Engine) tlsConfig(c *tcp.Conn, cs *connState) tlsdecrypt.Config {
	return tlsdecrypt.Config{
		Keys:   e.keys,
		Emit:   func(h *tlsparse.Hello, o *tlsdecrypt.Outcome) { e.emitTLS(c, cs, h, o) },
		Plain:  func(alpn string) tcp.StreamHandler { return e.plainFor(c, cs, alpn) },
		Buffer: &e.tlsBuf,
	}
}

func (e *Engine) newTLS(c *tcp.Conn, cs *connState) *tlsdecrypt.Conn {
	t := tlsdecrypt.NewConn(e.tlsConfig(c, cs))
	cs.tls = t
	e.tlsConns[t] = struct{}{}
	return t
}

// plainFor returns the handler of a decrypted connection's application
// data: HTTP/1.x and HTTP/2 are parsed like plain HTTP; other ALPN
// protocols are not parsed (nil stops decryption).
func (e *Engine) plainFor(c *tcp.Conn, cs *connState, alpn string) tcp.StreamHandler {
	switch alpn {
	case "", "http/1.1", "http/1.0", appH2:
	default:
		return nil
	}
	cs.plain = &tlsPlain{e: e, c: c, cs: cs}
	if alpn == appH2 {
		// The server's SETTINGS may come before the client's preface:
		// no sniffing.
		cs.plain.startH2()
	}
	return cs.plain
}

// tlsPlain recognises the protocol of decrypted application data from the
// client's first bytes and runs the HTTP/1.x or HTTP/2 parser on it.
type tlsPlain struct {
	e      *Engine
	c      *tcp.Conn
	cs     *connState
	http   *http1.Parser
	h2     *http2.Parser
	prefix []byte  // the client's first bytes, while undecided
	held   []chunk // the data while undecided
	done   bool    // not HTTP/1.x: nothing more is wanted
}

// plainPrefix is how many client bytes decide the protocol.
const plainPrefix = 24

// Done tells the decryptor that no more plaintext is wanted.
func (p *tlsPlain) Done() bool { return p.done }

func (p *tlsPlain) Data(dir tcp.Dir, ts int64, b []byte) {
	if p.http != nil {
		p.http.Data(dir, ts, b)
		return
	}
	if p.h2 != nil {
		p.h2.Data(dir, ts, b)
		return
	}
	if p.done {
		return
	}
	if dir != tcp.ClientToServer {
		// The server spoke first: not HTTP.
		p.done, p.held, p.prefix = true, nil, nil
		return
	}
	p.held = append(p.held, chunk{dir: dir, ts: ts, data: bytes.Clone(b)})
	p.prefix = append(p.prefix, b[:min(len(b), plainPrefix-len(p.prefix))]...)
	switch {
	case bytes.HasPrefix(p.prefix, []byte("PRI * HTTP/2")):
		p.startH2()
		held := p.held
		p.held, p.prefix = nil, nil
		for _, h := range held {
			p.h2.Data(h.dir, h.ts, h.data)
		}
		return
	case http1.Looks(p.prefix):
		p.startHTTP()
		held := p.held
		p.held, p.prefix = nil, nil
		for _, h := range held {
			p.http.Data(h.dir, h.ts, h.data)
		}
		return
	case len(p.prefix) < plainPrefix && bytes.IndexByte(p.prefix, ' ') < 0:
		return // undecided
	}
	p.done, p.held, p.prefix = true, nil, nil
}

func (p *tlsPlain) startHTTP() {
	cs := p.cs
	cs.inner = appHTTPS
	c, e := p.c, p.e
	p.http = http1.NewParser(e.cfg.HTTP, func(x *http1.Exchange) { e.emitHTTP(c, cs, x) })
}

func (p *tlsPlain) startH2() {
	cs := p.cs
	cs.inner = appH2
	c, e := p.c, p.e
	p.h2 = http2.NewParser(e.h2Config(), func(x *http2.Exchange) { e.emitHTTP(c, cs, x.HTTP1()) })
}

func (p *tlsPlain) Gap(dir tcp.Dir, ts int64, n int) {
	if p.http != nil {
		p.http.Gap(dir, ts, n)
		return
	}
	if p.h2 != nil {
		p.h2.Gap(dir, ts, n)
		return
	}
	p.done, p.held, p.prefix = true, nil, nil
}

func (p *tlsPlain) Close(ts int64) {
	if p.http != nil {
		p.http.Close(ts)
	}
	if p.h2 != nil {
		p.h2.Close(ts)
	}
}

// tlsPlainCheckpoint is a tlsPlain's state in a checkpoint.
type tlsPlainCheckpoint struct {
	HTTP   []byte // the HTTP parser's state, once started
	H2     []byte // the HTTP/2 parser's state, once started
	Prefix []byte
	Held   []heldChunk
	Done   bool
}

func (p *tlsPlain) checkpoint() (*tlsPlainCheckpoint, error) {
	cp := &tlsPlainCheckpoint{Prefix: p.prefix, Done: p.done}
	for _, h := range p.held {
		cp.Held = append(cp.Held, heldChunk{h.dir, h.ts, h.data, h.gap})
	}
	if p.http != nil {
		st, err := p.http.MarshalState()
		if err != nil {
			return nil, err
		}
		cp.HTTP = st
	}
	if p.h2 != nil {
		st, err := p.h2.MarshalState()
		if err != nil {
			return nil, err
		}
		cp.H2 = st
	}
	return cp, nil
}

func (e *Engine) restorePlain(c *tcp.Conn, cs *connState, cp *tlsPlainCheckpoint) (*tlsPlain, error) {
	p := &tlsPlain{e: e, c: c, cs: cs, prefix: cp.Prefix, done: cp.Done}
	for _, h := range cp.Held {
		p.held = append(p.held, chunk{h.Dir, h.TS, h.Data, h.Gap})
	}
	if cp.HTTP != nil {
		hp, err := http1.Restore(e.cfg.HTTP, cp.HTTP, func(x *http1.Exchange) { e.emitHTTP(c, cs, x) })
		if err != nil {
			return nil, err
		}
		p.http = hp
	}
	if cp.H2 != nil {
		hp, err := http2.Restore(e.h2Config(), cp.H2, func(x *http2.Exchange) { e.emitHTTP(c, cs, x.HTTP1()) })
		if err != nil {
			return nil, err
		}
		p.h2 = hp
	}
	return p, nil
}

// openTLS returns a filter of the client randoms of the TLS connections
// still open whose keys may still be needed.
func (e *Engine) openTLS() func(clientRandom [32]byte) bool {
	open := make(map[[32]byte]bool, len(e.tlsConns))
	for t := range e.tlsConns {
		if cr, ok := t.ClientRandom(); ok {
			open[cr] = true
		}
	}
	return func(cr [32]byte) bool { return open[cr] }
}
