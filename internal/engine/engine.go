// Package engine is flowlake's parse core: it takes captured frames in
// capture order, decodes them, reassembles TCP, recognises the application
// protocol of each connection (HTTP/1.x, HTTP/2, TLS, DNS), runs the protocol
// parsers, redacts, and emits schema rows to a Sink. It is plain Go with no
// I/O of its own, so the CLI, the functions and the tests drive it the same
// way.
package engine

import (
	"net/netip"
	"slices"
	"time"

	"github.com/gopacket/gopacket/layers"

	"github.com/flowlake/flowlake/internal/decode"
	"github.com/flowlake/flowlake/internal/dns"
	"github.com/flowlake/flowlake/internal/flowid"
	"github.com/flowlake/flowlake/internal/http1"
	"github.com/flowlake/flowlake/internal/http2"
	"github.com/flowlake/flowlake/internal/keylog"
	"github.com/flowlake/flowlake/internal/redact"
	"github.com/flowlake/flowlake/internal/tcp"
	"github.com/flowlake/flowlake/internal/tlsdecrypt"
	"github.com/flowlake/flowlake/schema"
)

// Config tunes the engine. The zero value works.
type Config struct {
	Agent      string
	HTTP       http1.Config
	HTTP2      http2.Config   // zero BodyPreview and MaxRawBody take HTTP's
	Redact     *redact.Config // nil: redact.Default()
	TCP        tcp.Config
	DNSTimeout time.Duration // unanswered DNS queries are reported after this long; default 30 s
	MaxNames   int           // bound of the address→name table; default 1M
	// Keys are TLS session secrets from key logs: connections whose
	// secrets are here are decrypted (see internal/tlsdecrypt). The engine
	// copies the log (AddKeys adds to the copy); a resumed engine needs
	// the secrets of the connections its checkpoint left open.
	Keys *keylog.Log
	// Hosts are static names (e.g. from /etc/hosts); they win over names
	// learned from traffic.
	Hosts map[netip.Addr]string
}

// Sink receives the rows. Rows are passed by pointer but not retained by
// the engine after the call.
type Sink interface {
	HTTP(*schema.HTTP)
	TCP(*schema.TCP)
	DNS(*schema.DNS)
	TLS(*schema.TLS)
}

// Stats counts the engine's work.
type Stats struct {
	Frames        int64
	Bytes         int64 // captured bytes
	Decode        decode.Stats
	TCP           tcp.Stats
	TCPConns      int64 // tcp rows emitted
	HTTPExchanges int64
	HTTPErrors    int64
	DNSQueries    int64
	TLSHandshakes int64
	TLSDecrypted  int64 // handshakes whose records were decrypted
	NameResets    int64
	FirstTS       int64
	LastTS        int64
}

// Engine turns frames into rows. Not safe for concurrent use.
type Engine struct {
	cfg     Config
	out     Sink
	dec     *decode.Decoder
	asm     *tcp.Assembler
	dns     *dns.Tracker
	red     *redact.Redactor
	names   *names
	pkt     decode.Packet
	stats   Stats
	lastAdv int64
	// keys is the engine's copy of Config.Keys, which AddKeys extends.
	keys *keylog.Log
	// tlsConns are the open TLS connections (for OpenTLS); tlsBuf their
	// shared plaintext buffer.
	tlsConns map[*tlsdecrypt.Conn]struct{}
	tlsBuf   tlsdecrypt.Buffer
}

// New returns an engine that writes rows to out.
func New(cfg Config, out Sink) *Engine {
	if cfg.DNSTimeout <= 0 {
		cfg.DNSTimeout = 30 * time.Second
	}
	rc := redact.Default()
	if cfg.Redact != nil {
		rc = *cfg.Redact
	}
	e := &Engine{cfg: cfg, out: out, dec: decode.New(), red: redact.New(rc), names: newNames(cfg.MaxNames),
		keys: keylog.New(), tlsConns: map[*tlsdecrypt.Conn]struct{}{}}
	e.keys.Merge(cfg.Keys)
	for ip, n := range cfg.Hosts {
		e.names.learn(ip, n, rankStatic)
	}
	e.asm = tcp.NewAssembler(cfg.TCP, e.newConn, e.connDone)
	e.dns = dns.NewTracker(int64(cfg.DNSTimeout), e.emitDNS)
	e.dns.OnAnswer(func(name string, ip netip.Addr) { e.names.learn(ip, name, rankDNS) })
	return e
}

// Stats returns the counters so far.
func (e *Engine) Stats() Stats {
	s := e.stats
	s.Decode = e.dec.Stats
	s.TCP = e.asm.Stats()
	s.NameResets = e.names.resets
	return s
}

// Frame processes one captured frame. The returned error describes a frame
// that could not be decoded (it is counted, and processing can go on);
// frames that are valid but not TCP/UDP return nil.
func (e *Engine) Frame(link layers.LinkType, ts int64, data []byte) error {
	e.stats.Frames++
	e.stats.Bytes += int64(len(data))
	if e.stats.FirstTS == 0 || ts < e.stats.FirstTS {
		e.stats.FirstTS = ts
	}
	if ts > e.stats.LastTS {
		e.stats.LastTS = ts
	}
	p := &e.pkt
	err := e.dec.Decode(link, ts, data, p)
	if ts-e.lastAdv > int64(time.Second) {
		e.lastAdv = ts
		e.dns.Advance(ts)
		e.asm.Advance(ts)
	}
	switch err {
	case nil:
	case decode.ErrNotTransport, decode.ErrFragment:
		return nil
	default:
		return err
	}
	switch p.Proto {
	case decode.ProtoTCP:
		e.asm.Packet(p)
	case decode.ProtoUDP:
		if isDNSPort(p.SrcPort) || isDNSPort(p.DstPort) {
			e.dns.Packet(ts, "udp", dns.Endpoint{IP: p.Src, Port: p.SrcPort}, dns.Endpoint{IP: p.Dst, Port: p.DstPort}, p.Payload)
		}
	}
	return nil
}

// isDNSPort: DNS, and the DNS-format multicast resolvers mDNS and LLMNR.
func isDNSPort(p uint16) bool { return p == 53 || p == 5353 || p == 5355 }

// Finish ends every open connection and pending query and emits their rows.
// The engine must not be used afterwards.
func (e *Engine) Finish() {
	e.asm.Flush()
	e.dns.Flush()
}

func (e *Engine) emitDNS(q *dns.Query) {
	e.stats.DNSQueries++
	id := (&flowid.Hasher{}).Str(e.cfg.Agent).Str(q.Transport).Addr(q.Client.IP, q.Client.Port).Addr(q.Server.IP, q.Server.Port).
		Int(int64(q.ID)).Str(q.Name).Int(q.TS).ID()
	var answers []string // the tracker reuses q.Answers after the call
	if len(q.Answers) > 0 {
		answers = append(answers, q.Answers...)
	}
	e.out.DNS(&schema.DNS{
		ID:         id,
		TS:         q.TS / 1000,
		Agent:      e.cfg.Agent,
		Transport:  q.Transport,
		ClientIP:   q.Client.IP.String(),
		ClientPort: int32(q.Client.Port),
		ServerIP:   q.Server.IP.String(),
		ServerPort: int32(q.Server.Port),
		TxID:       int32(q.ID),
		Query:      clean(q.Name),
		QType:      q.QType,
		RCode:      q.RCode,
		Answers:    cleanList(answers),
		LatencyUS:  q.LatencyNS / 1000,
		Responded:  q.Responded,
		Error:      q.Error,
	})
}

// connState is the engine's per-connection state (tcp.Conn.Data).
type connState struct {
	id          string
	communityID string
	app         string
	swapped     bool // client and server roles are reversed from the assembler's guess
	http        *http1.Parser
	h2          *http2.Parser // cleartext HTTP/2 (appH2C)
	exchanges   int32
	det         detector
	// TLS: the decrypting handler, the handler of its plaintext, and the
	// protocol found inside (appHTTPS, appH2), which the tcp row shows.
	tls   *tlsdecrypt.Conn
	plain *tlsPlain
	inner string
}

func (e *Engine) newConn(c *tcp.Conn) tcp.StreamHandler {
	cs := &connState{
		id:          (&flowid.Hasher{}).Str(e.cfg.Agent).Addr(c.Key.A.IP, c.Key.A.Port).Addr(c.Key.B.IP, c.Key.B.Port).Int(c.FirstTS).ID(),
		communityID: flowid.CommunityID(0, c.Client.IP, c.Client.Port, c.Server.IP, c.Server.Port, decode.ProtoTCP),
	}
	c.Data = cs
	cs.det = detector{e: e, c: c, cs: cs}
	return &cs.det
}

// roles returns client and server as the rows should show them.
func roles(c *tcp.Conn, cs *connState) (client, server tcp.Endpoint) {
	client, server = c.Client, c.Server
	swapped := cs.swapped
	if cs.http != nil && cs.http.Swapped() {
		swapped = !swapped
	}
	if swapped {
		client, server = server, client
	}
	return client, server
}

func (e *Engine) connDone(c *tcp.Conn) {
	cs := c.Data.(*connState)
	e.stats.TCPConns++
	if cs.tls != nil {
		delete(e.tlsConns, cs.tls)
	}
	app := cs.app
	if cs.inner != "" {
		app = cs.inner
	}
	client, server := roles(c, cs)
	c2s, s2c := 0, 1
	if client != c.Client {
		c2s, s2c = 1, 0
	}
	e.out.TCP(&schema.TCP{
		ID:            cs.id,
		TS:            c.FirstTS / 1000,
		TSEnd:         c.LastTS / 1000,
		DurationUS:    (c.LastTS - c.FirstTS) / 1000,
		Agent:         e.cfg.Agent,
		ClientIP:      client.IP.String(),
		ClientPort:    int32(client.Port),
		ServerIP:      server.IP.String(),
		ServerPort:    int32(server.Port),
		ClientName:    e.names.lookup(client.IP),
		ServerName:    e.names.lookup(server.IP),
		PacketsC2S:    c.Packets[c2s],
		PacketsS2C:    c.Packets[s2c],
		BytesC2S:      c.Bytes[c2s],
		BytesS2C:      c.Bytes[s2c],
		MissingBytes:  c.Missing,
		Retrans:       c.Retrans,
		OutOfOrder:    c.OutOfOrder,
		RTTUS:         c.RTT / 1000,
		Close:         c.Reason,
		SawSYN:        c.SawSYN,
		AppProtocol:   app,
		HTTPExchanges: cs.exchanges,
		LimitHits:     c.LimitHits,
		CommunityID:   cs.communityID,
		Segments:      slices.Clone(c.Inputs),
	})
}

// h2Config is the HTTP/2 parser's configuration.
func (e *Engine) h2Config() http2.Config {
	c := e.cfg.HTTP2
	if c.BodyPreview == 0 {
		c.BodyPreview = e.cfg.HTTP.BodyPreview
	}
	if c.MaxRawBody == 0 {
		c.MaxRawBody = e.cfg.HTTP.MaxRawBody
	}
	return c
}

// SetInput names the capture segment whose frames follow (its object
// key): the tcp rows list, in segments, the segments that held packets of
// their connection.
func (e *Engine) SetInput(key string) { e.asm.SetInput(key) }
