// Package http1 reconstructs HTTP/1.0 and HTTP/1.1 request/response
// exchanges from the two reassembled byte streams of one TCP connection.
//
// A Parser consumes the bytes of both directions through the
// tcp.StreamHandler interface, frames messages as RFC 9112 prescribes
// (Content-Length, chunked transfer coding, read-until-close, HEAD, 1xx,
// 204 and 304 without bodies, CONNECT and Upgrade tunnels), pairs responses
// with requests in FIFO order (keep-alive and pipelining) and reports one
// Exchange per request. It keeps a bounded, content-decoded preview of each
// body and never buffers a whole body.
//
// Captured traffic is imperfect, so the parser never gives up on a
// connection: a gap inside a body of known length only marks the exchange
// incomplete; any other gap, and any malformed input, produces a row with
// Error set and puts the affected direction into resynchronisation, where
// bytes are skipped until a line that starts a message of the expected kind.
//
// The parser state is plain data: MarshalState and Restore carry an open
// connection from one capture segment to the next.
package http1

import (
	"github.com/flowlake/flowlake/internal/tcp"
)

// Config bounds the memory and work of a Parser. Zero fields take the
// defaults documented on each field.
type Config struct {
	// BodyPreview is the number of decoded body bytes kept per message
	// (default 4096; negative keeps no preview).
	BodyPreview int
	// MaxHeaderBytes bounds a header block: the start line, the fields and
	// the empty line that ends them (default 64 KiB; values below 64 are
	// raised to 64). A larger block yields a row with Error "header too
	// large" and resynchronisation. The same bound applies to a trailer
	// block.
	MaxHeaderBytes int
	// MaxRawBody is the number of raw, still content-coded body bytes kept
	// to decode the preview of a compressed body (default 64 KiB; negative
	// keeps none, so compressed bodies get no preview).
	MaxRawBody int
	// MaxPending bounds the requests that wait for a response (default
	// 128). When more are outstanding the oldest is reported without a
	// response, which keeps memory bounded on one-sided captures.
	MaxPending int
}

// Default values of Config fields.
const (
	DefaultBodyPreview    = 4096
	DefaultMaxHeaderBytes = 64 << 10
	DefaultMaxRawBody     = 64 << 10
	DefaultMaxPending     = 128
)

// withDefaults resolves zero and negative fields.
func (c Config) withDefaults() Config {
	switch {
	case c.BodyPreview == 0:
		c.BodyPreview = DefaultBodyPreview
	case c.BodyPreview < 0:
		c.BodyPreview = 0
	}
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if c.MaxHeaderBytes < minHeaderBytes {
		c.MaxHeaderBytes = minHeaderBytes
	}
	switch {
	case c.MaxRawBody == 0:
		c.MaxRawBody = DefaultMaxRawBody
	case c.MaxRawBody < 0:
		c.MaxRawBody = 0
	}
	if c.MaxPending <= 0 {
		c.MaxPending = DefaultMaxPending
	}
	return c
}

// minHeaderBytes is the smallest usable header bound: it must hold the
// longest start-line prefix that is checked before a line is complete.
const minHeaderBytes = 64

// Header is one header (or trailer) field as it appeared on the wire, with
// obs-fold continuation lines joined by a single space.
type Header struct{ Name, Value string }

// Exchange is one request and its response. Fields of a part that was not
// seen keep their zero value.
type Exchange struct {
	// Seq numbers the exchanges of a connection 0, 1, 2, … in request order.
	Seq int
	// Method, URI and Version come from the request line; URI is the raw
	// request-target.
	Method, URI, Version string
	// Host is the authority of an absolute-form request-target, else the
	// Host header, else the authority-form target of CONNECT.
	Host string
	// Status is the final status code (0 when no response was seen),
	// Reason its reason phrase and RespVersion the response's version.
	Status      int
	Reason      string
	RespVersion string
	// ReqHeaders and RespHeaders are the fields in wire order, followed by
	// any trailer fields.
	ReqHeaders, RespHeaders []Header
	// ReqStart, ReqEnd, RespStart and RespEnd are the Unix-nanosecond
	// timestamps of the data that carried the first and the last byte of
	// each message. RespStart includes interim (1xx) responses.
	ReqStart, ReqEnd, RespStart, RespEnd int64
	// ReqBodyBytes and RespBodyBytes are the body lengths after removing
	// the chunked framing and before content decoding. Missing bytes of a
	// body of known length are included.
	ReqBodyBytes, RespBodyBytes int64
	// ReqBody and RespBody are previews: de-chunked, content-decoded
	// (gzip, x-gzip, deflate in zlib or raw form, br, zstd), at most
	// Config.BodyPreview bytes. A preview stops at the first missing byte.
	// A body whose coding is unknown or whose claimed coding is not valid
	// is kept as it came.
	ReqBody, RespBody []byte
	// ReqContentType and RespContentType are the Content-Type values.
	ReqContentType, RespContentType string
	// Complete is false when bytes of either message were missing, when
	// the request or the final response was not seen, or when a message
	// was cut by the end of the connection.
	Complete bool
	// Error is empty or a short reason; see the Err constants.
	Error string
	// Tunnel is set on a CONNECT exchange with a 2xx response and on a 101
	// (Switching Protocols) response: the parser ignores the connection's
	// further bytes.
	Tunnel bool
	// Interim lists the 1xx statuses received before the final response.
	Interim []int
}

// Values of Exchange.Error.
const (
	ErrMalformedRequestLine = "malformed request line"
	ErrMalformedStatusLine  = "malformed status line"
	ErrMalformedHeader      = "malformed header line"
	ErrHeaderTooLarge       = "header too large"
	ErrTrailerTooLarge      = "trailer too large"
	ErrBadContentLength     = "bad content-length"
	ErrBadTransferEncoding  = "bad transfer-encoding"
	ErrBadChunkSize         = "bad chunk size"
	ErrBadChunkTerminator   = "bad chunk terminator"
	ErrGapRequestHeaders    = "gap in request headers"
	ErrGapResponseHeaders   = "gap in response headers"
	ErrGapRequestBody       = "gap in request body"
	ErrGapResponseBody      = "gap in response body"
	ErrTruncatedRequest     = "truncated request"
	ErrTruncatedResponse    = "truncated response"
	ErrResponseNoRequest    = "response without request"
	ErrTooManyPending       = "too many pending requests"
)

// Parser parses one TCP connection. It implements tcp.StreamHandler. A
// Parser is not safe for concurrent use.
type Parser struct {
	cfg    Config
	emit   func(*Exchange)
	st     state
	stalls int // steps that made no progress; always 0 unless there is a bug
}

var _ tcp.StreamHandler = (*Parser)(nil)

// NewParser returns a parser for one connection. emit is called once per
// exchange, in Seq order, when both of its messages have ended, at Close,
// or when an error ends it; the callee may retain the Exchange but must not
// call back into the Parser. emit may be nil.
func NewParser(cfg Config, emit func(*Exchange)) *Parser {
	return &Parser{cfg: cfg.withDefaults(), emit: emit}
}

// Swapped reports whether the parser found requests flowing
// ServerToClient (a connection picked up mid-stream with guessed roles)
// and swapped the roles of the two directions.
func (p *Parser) Swapped() bool { return p.st.Swapped }

// knownMethods are the request methods Looks accepts: RFC 9110, PATCH,
// WebDAV and its extensions, caching proxies and SSDP.
var knownMethods = map[string]struct{}{}

func init() {
	for _, m := range []string{
		"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY",
		"PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK",
		"VERSION-CONTROL", "REPORT", "CHECKOUT", "CHECKIN", "UNCHECKOUT", "MKWORKSPACE",
		"UPDATE", "LABEL", "MERGE", "BASELINE-CONTROL", "MKACTIVITY", "ORDERPATCH", "ACL",
		"SEARCH", "MKCALENDAR", "BIND", "UNBIND", "REBIND", "MKREDIRECTREF", "UPDATEREDIRECTREF",
		"LINK", "UNLINK", "PURGE", "BAN", "NOTIFY", "SUBSCRIBE", "UNSUBSCRIBE", "M-SEARCH",
	} {
		knownMethods[m] = struct{}{}
	}
}

// Looks is a cheap test of whether b, the first bytes of a direction,
// starts an HTTP/1 message: a known method followed by a space, or
// "HTTP/1.".
func Looks(b []byte) bool {
	if len(b) >= 7 && string(b[:7]) == "HTTP/1." {
		return true
	}
	for i := 0; i < len(b) && i <= maxKnownMethod; i++ {
		if b[i] == ' ' {
			_, ok := knownMethods[string(b[:i])]
			return ok
		}
	}
	return false
}

// maxKnownMethod is the length of the longest method in knownMethods.
const maxKnownMethod = len("UPDATEREDIRECTREF")
