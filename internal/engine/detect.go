package engine

import (
	"github.com/flowlake/flowlake/internal/dns"
	"github.com/flowlake/flowlake/internal/http1"
	"github.com/flowlake/flowlake/internal/tcp"
	"github.com/flowlake/flowlake/internal/tlsparse"
)

// Application protocols recorded in the tcp table.
const (
	appHTTP = "http"
	appTLS  = "tls"
	appDNS  = "dns"
)

const (
	// detectPrefix is how many leading bytes of a direction are gathered
	// before giving up on recognising the protocol from them.
	detectPrefix = 16
	// detectChunks is how many later chunks are still tried (a connection
	// seen mid-stream is recognised at the next message that starts a
	// packet).
	detectChunks = 64
)

// detector is every connection's StreamHandler. It picks the protocol
// parser from the first bytes (or the port) and then forwards to it,
// flipping directions when the roles guessed by the assembler turn out to
// be reversed.
type detector struct {
	e      *Engine
	c      *tcp.Conn
	cs     *connState
	next   tcp.StreamHandler // nil while undecided
	failed bool              // gave up: unknown protocol
	buf    [2][]byte
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
	data := b
	if len(d.buf[dir]) > 0 || (len(b) < detectPrefix && d.tried <= 2) {
		d.buf[dir] = append(d.buf[dir], b...)
		data = d.buf[dir]
	}
	app, flip := classify(dir, data)
	if app == "" && len(data) > len(b) {
		// The gathered prefix may start with junk (a keep-alive probe's
		// byte on a connection seen mid-stream): try this chunk alone.
		if app, flip = classify(dir, b); app != "" {
			data = b
		}
	}
	if app == "" {
		if len(data) < detectPrefix && d.tried <= 4 {
			return // wait for more of this prefix
		}
		d.buf[dir] = nil
		if d.tried > detectChunks {
			d.failed = true
			d.buf = [2][]byte{}
		}
		return
	}
	d.decide(app, flip)
	d.forward(dir, ts, data)
	d.buf = [2][]byte{}
}

func (d *detector) isDNS() bool {
	return d.c.Server.Port == 53 || d.c.Client.Port == 53
}

// classify recognises the protocol of a chunk sent in direction dir and
// tells whether the roles must be flipped (the chunk came from the server
// side but starts a client message, or the reverse).
func classify(dir tcp.Dir, b []byte) (app string, flip bool) {
	switch {
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
	case appTLS:
		d.next = tlsparse.NewStream(func(h *tlsparse.Hello) { d.e.emitTLS(d.c, cs, h) })
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
		d.buf[dir] = nil
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
