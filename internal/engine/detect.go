package engine

import (
	"github.com/flowlake/flowlake/internal/dns"
	"github.com/flowlake/flowlake/internal/http1"
	"github.com/flowlake/flowlake/internal/http2"
	"github.com/flowlake/flowlake/internal/tcp"
	"github.com/flowlake/flowlake/internal/tlsparse"
)

// Application protocols recorded in the tcp table.
const (
	appHTTP = "http"
	appH2C  = "h2c" // HTTP/2 with prior knowledge, no TLS
	appTLS  = "tls"
	appDNS  = "dns"
)

const (
	// detectPrefix is how many leading bytes of a direction are gathered
	// to recognise the protocol.
	detectPrefix = 16
	// detectChunks is how many chunks are tried before the connection is
	// given up as an unknown protocol (a connection seen mid-stream is
	// recognised at the next message that starts a packet).
	detectChunks = 64
	// detectHold bounds the bytes held for replay while undecided.
	detectHold = 64 << 10
)

// chunk is held data (or a gap, when data is nil) of an undecided
// connection.
type chunk struct {
	dir  tcp.Dir
	ts   int64
	data []byte
	gap  int
}

// detector is every connection's StreamHandler. It picks the protocol
// parser from the first bytes of either direction (or the port), replays
// what it held to the parser, and then forwards, flipping directions when
// the roles guessed by the assembler turn out to be reversed.
type detector struct {
	e      *Engine
	c      *tcp.Conn
	cs     *connState
	next   tcp.StreamHandler // nil while undecided
	failed bool              // gave up: unknown protocol
	prefix [2][]byte         // first bytes of each direction
	held   []chunk           // everything seen while undecided, in order
	heldN  int
	tried  int
}

func (d *detector) Data(dir tcp.Dir, ts int64, b []byte) {
	if d.next != nil {
		d.forward(dir, ts, b)
		return
	}
	if d.failed {
		return
	}
	if d.tried == 0 && d.isDNS() {
		d.decide(appDNS, false)
		d.forward(dir, ts, b)
		return
	}
	d.tried++
	if d.heldN+len(b) <= detectHold {
		d.held = append(d.held, chunk{dir: dir, ts: ts, data: append([]byte(nil), b...)})
		d.heldN += len(b)
	} else {
		d.held = append(d.held[:0], chunk{dir: dir, ts: ts, gap: d.heldN})
		d.heldN = 0
	}
	if n := detectPrefix - len(d.prefix[dir]); n > 0 {
		d.prefix[dir] = append(d.prefix[dir], b[:min(n, len(b))]...)
	}
	held := d.held
	app, flip := classify(dir, d.prefix[dir])
	if app == "" {
		// A connection seen mid-stream (or after a keep-alive probe's
		// byte): a message may start this chunk. What came before it is
		// the tail of earlier messages, not replayed.
		if app, flip = classify(dir, b); app != "" {
			held = held[len(held)-1:]
		}
	}
	if app == "" {
		if d.tried > detectChunks {
			d.failed = true
			d.held, d.prefix = nil, [2][]byte{}
		}
		return
	}
	d.decide(app, flip)
	d.held, d.prefix = nil, [2][]byte{}
	for _, c := range held {
		if c.data != nil {
			d.forward(c.dir, c.ts, c.data)
		} else if c.gap > 0 {
			d.Gap(c.dir, c.ts, c.gap)
		}
	}
}

func (d *detector) isDNS() bool {
	return d.c.Server.Port == 53 || d.c.Client.Port == 53
}

// classify recognises the protocol of a chunk sent in direction dir and
// tells whether the roles must be flipped (the chunk came from the server
// side but starts a client message, or the reverse).
func classify(dir tcp.Dir, b []byte) (app string, flip bool) {
	switch {
	case http2.Looks(b):
		// The client connection preface: a server never sends it.
		return appH2C, dir == tcp.ServerToClient
	case http1.Looks(b):
		isResponse := len(b) >= 5 && string(b[:5]) == "HTTP/"
		return appHTTP, (dir == tcp.ClientToServer) == isResponse
	case tlsparse.Looks(b):
		clientHello := len(b) > 5 && b[5] == 1
		serverHello := len(b) > 5 && b[5] == 2
		return appTLS, (dir == tcp.ServerToClient && clientHello) || (dir == tcp.ClientToServer && serverHello)
	}
	return "", false
}

func (d *detector) decide(app string, flip bool) {
	cs := d.cs
	cs.app = app
	if flip {
		cs.swapped = !cs.swapped
	}
	client, server := d.c.Client, d.c.Server
	if cs.swapped {
		client, server = server, client
	}
	switch app {
	case appHTTP:
		cs.http = http1.NewParser(d.e.cfg.HTTP, func(x *http1.Exchange) { d.e.emitHTTP(d.c, cs, x) })
		d.next = cs.http
	case appH2C:
		cs.h2 = http2.NewParser(d.e.h2Config(), func(x *http2.Exchange) { d.e.emitHTTP(d.c, cs, x.HTTP1()) })
		d.next = cs.h2
	case appTLS:
		d.next = d.e.newTLS(d.c, cs)
	case appDNS:
		d.next = dns.NewStream(d.e.dns, dns.Endpoint{IP: client.IP, Port: client.Port}, dns.Endpoint{IP: server.IP, Port: server.Port})
	}
}

func (d *detector) forward(dir tcp.Dir, ts int64, b []byte) {
	if d.cs.swapped {
		dir = dir.Reverse()
	}
	d.next.Data(dir, ts, b)
}

func (d *detector) Gap(dir tcp.Dir, ts int64, n int) {
	if d.next == nil {
		if !d.failed {
			d.held = append(d.held, chunk{dir: dir, ts: ts, gap: n})
		}
		return
	}
	if d.cs.swapped {
		dir = dir.Reverse()
	}
	d.next.Gap(dir, ts, n)
}

func (d *detector) Close(ts int64) {
	if d.next != nil {
		d.next.Close(ts)
	}
}
