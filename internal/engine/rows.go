package engine

import (
	"net/netip"
	"strings"
	"unicode/utf8"

	"github.com/flowlake/flowlake/internal/flowid"
	"github.com/flowlake/flowlake/internal/http1"
	"github.com/flowlake/flowlake/internal/tcp"
	"github.com/flowlake/flowlake/internal/tlsdecrypt"
	"github.com/flowlake/flowlake/internal/tlsparse"
	"github.com/flowlake/flowlake/schema"
)

func (e *Engine) emitHTTP(c *tcp.Conn, cs *connState, x *http1.Exchange) {
	e.stats.HTTPExchanges++
	if x.Error != "" {
		e.stats.HTTPErrors++
	}
	cs.exchanges++
	client, server := roles(c, cs)
	if h := hostOnly(x.Host); h != "" {
		e.names.learn(server.IP, h, rankHost)
	}
	start, end := x.ReqStart, x.RespEnd
	if start == 0 {
		start = x.RespStart
	}
	if end == 0 {
		end = x.ReqEnd
	}
	if end < start {
		end = start
	}
	path, query := splitURI(x.URI)
	ctype := x.RespContentType
	if ctype == "" {
		ctype = x.ReqContentType
	}
	e.out.HTTP(&schema.HTTP{
		ID:            (&flowid.Hasher{}).Str(cs.id).Int(int64(x.Seq)).ID(),
		TS:            start / 1000,
		TSEnd:         end / 1000,
		DurationUS:    (end - start) / 1000,
		Agent:         e.cfg.Agent,
		ClientIP:      client.IP.String(),
		ClientPort:    int32(client.Port),
		ServerIP:      server.IP.String(),
		ServerPort:    int32(server.Port),
		ClientName:    e.names.lookup(client.IP),
		ServerName:    e.names.lookup(server.IP),
		TCPID:         cs.id,
		Seq:           int32(x.Seq),
		Method:        clean(x.Method),
		URI:           clean(x.URI),
		Host:          clean(x.Host),
		Path:          clean(path),
		Query:         clean(query),
		Version:       clean(x.Version),
		Status:        int32(x.Status),
		Reason:        clean(x.Reason),
		ReqHeaders:    e.headers(x.ReqHeaders),
		RespHeaders:   e.headers(x.RespHeaders),
		ReqBodyBytes:  x.ReqBodyBytes,
		RespBodyBytes: x.RespBodyBytes,
		ReqBody:       e.body(x.ReqBody, x.ReqContentType),
		RespBody:      e.body(x.RespBody, x.RespContentType),
		ContentType:   clean(ctype),
		UserAgent:     clean(header(x.ReqHeaders, "User-Agent")),
		TLS:           cs.plain != nil,
		Complete:      x.Complete,
		Error:         x.Error,
		CommunityID:   cs.communityID,
	})
}

func (e *Engine) emitTLS(c *tcp.Conn, cs *connState, h *tlsparse.Hello, o *tlsdecrypt.Outcome) {
	e.stats.TLSHandshakes++
	if o.Decrypted {
		e.stats.TLSDecrypted++
	}
	client, server := roles(c, cs)
	if h.SNI != "" {
		e.names.learn(server.IP, h.SNI, rankSNI)
	}
	version := h.ServerVersion
	if !h.SawServerHello && len(h.OfferedVersions) > 0 {
		version = h.OfferedVersions[0]
	}
	alpn := h.ALPN
	if o.ALPN != "" {
		alpn = o.ALPN // TLS 1.3: from the decrypted EncryptedExtensions
	}
	if alpn == "" {
		alpn = strings.Join(h.ALPNOffered, ",")
	}
	cipher := ""
	if h.SawServerHello {
		cipher = tlsparse.CipherName(h.CipherSuite)
	}
	ts := h.ClientTS
	if ts == 0 {
		ts = h.ServerTS
	}
	vname := ""
	if version != 0 {
		vname = tlsparse.VersionName(version)
	}
	e.out.TLS(&schema.TLS{
		TS:         ts / 1000,
		Agent:      e.cfg.Agent,
		TCPID:      cs.id,
		ClientIP:   client.IP.String(),
		ClientPort: int32(client.Port),
		ServerIP:   server.IP.String(),
		ServerPort: int32(server.Port),
		Version:    vname,
		SNI:        clean(h.SNI),
		ALPN:       clean(alpn),
		Cipher:     cipher,
		Decrypted:  o.Decrypted,
		KeyStatus:  o.KeyStatus,
		Error:      h.Error,
	})
}

// headers renders redacted headers as "Name: value" lines.
func (e *Engine) headers(hs []http1.Header) string {
	if len(hs) == 0 {
		return ""
	}
	var b strings.Builder
	for _, h := range hs {
		b.WriteString(h.Name)
		b.WriteString(": ")
		b.WriteString(e.red.Header(h.Name, h.Value))
		b.WriteByte('\n')
	}
	return clean(b.String())
}

// body returns a redacted preview that is safe to store as text: binary
// content is summarised rather than stored as invalid UTF-8.
func (e *Engine) body(b []byte, ctype string) string {
	if len(b) == 0 {
		return ""
	}
	if !isText(b) {
		return "[binary " + ctypeShort(ctype) + "]"
	}
	return clean(string(e.red.Body(b)))
}

func ctypeShort(ct string) string {
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	ct = strings.TrimSpace(ct)
	if ct == "" {
		return "data"
	}
	return ct
}

// isText reports whether b is mostly printable UTF-8 text. A multi-byte
// rune cut by the preview bound at the end is allowed.
func isText(b []byte) bool {
	// Binary content shows itself early: judge by a sample, keeping a
	// rune cut by the sample's end out of it.
	if len(b) > 1024 {
		b = b[:1024]
		for i := 0; i < utf8.UTFMax && len(b) > 0 && !utf8.RuneStart(b[len(b)-1]); i++ {
			b = b[:len(b)-1]
		}
		if len(b) > 0 && b[len(b)-1] >= utf8.RuneSelf {
			b = b[:len(b)-1]
		}
	}
	if utf8.Valid(b) {
		bad := 0
		for _, c := range b {
			if c < 0x20 && c != '\n' && c != '\r' && c != '\t' {
				bad++
			}
		}
		return bad*20 <= len(b) && bad < 64
	}
	bad := 0
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n <= 1 {
			if len(b)-i < utf8.UTFMax && !utf8.FullRune(b[i:]) {
				break
			}
			bad++
		} else if r < 0x20 && r != '\n' && r != '\r' && r != '\t' {
			bad++
		}
		i += n
	}
	return bad*20 <= len(b) && bad < 64
}

// clean makes s valid UTF-8 (Parquet strings must be).
func clean(s string) string {
	if utf8.ValidString(s) {
		return s
	}
	return strings.ToValidUTF8(s, "\uFFFD")
}

func cleanList(l []string) []string {
	for i, s := range l {
		l[i] = clean(s)
	}
	return l
}

func header(hs []http1.Header, name string) string {
	for _, h := range hs {
		if strings.EqualFold(h.Name, name) {
			return h.Value
		}
	}
	return ""
}

// splitURI splits a request-target into path and query. Absolute-form
// targets ("http://host/p?q") lose their scheme and authority.
func splitURI(uri string) (path, query string) {
	if i := strings.Index(uri, "://"); i > 0 && !strings.HasPrefix(uri, "/") {
		rest := uri[i+3:]
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			uri = rest[j:]
		} else if j := strings.IndexByte(rest, '?'); j >= 0 {
			uri = "/" + rest[j:]
		} else {
			uri = "/"
		}
	}
	if i := strings.IndexByte(uri, '#'); i >= 0 {
		uri = uri[:i]
	}
	if i := strings.IndexByte(uri, '?'); i >= 0 {
		return uri[:i], uri[i+1:]
	}
	return uri, ""
}

// hostOnly strips the port from a Host header and drops IP literals (they
// name nothing).
func hostOnly(h string) string {
	h = strings.TrimSpace(h)
	if h == "" {
		return ""
	}
	if ap, err := netip.ParseAddrPort(h); err == nil {
		_ = ap
		return ""
	}
	if i := strings.LastIndexByte(h, ':'); i > 0 && !strings.Contains(h[i:], "]") {
		h = h[:i]
	}
	h = strings.Trim(h, "[]")
	if _, err := netip.ParseAddr(h); err == nil {
		return ""
	}
	return strings.ToLower(h)
}
