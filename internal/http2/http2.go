// Package http2 reconstructs HTTP/2 (RFC 9113) request/response exchanges
// from the two reassembled byte streams of one TCP connection, cleartext
// (prior knowledge, "h2c") or decrypted TLS with ALPN "h2".
//
// A Parser consumes the bytes of both directions through the
// tcp.StreamHandler interface. It checks the client connection preface,
// frames both directions (DATA, HEADERS with CONTINUATION, PRIORITY,
// RST_STREAM, SETTINGS, PUSH_PROMISE, PING, GOAWAY, WINDOW_UPDATE, padding;
// unknown frame types are skipped as the RFC asks), decodes header blocks
// with golang.org/x/net/http2/hpack and reports one Exchange per stream:
// pseudo-header fields, header and trailer fields, body lengths and a
// bounded, content-decoded preview of each body. Server-pushed streams are
// exchanges too (Pushed set), their request taken from the PUSH_PROMISE.
//
// HPACK makes every header block depend on the ones before it in the same
// direction, so the parser cannot resynchronise the way the HTTP/1 parser
// does. Bytes lost inside a DATA frame's payload only mark that body
// incomplete; any other gap, a malformed frame or a header block that does
// not decode is a connection error: every open stream is reported with
// Error set (or, when none is open, one exchange with only Error) and the
// rest of the connection is ignored.
//
// A capture that starts mid-connection (no client preface) is parsed when
// each direction's first bytes form a plausible frame header; header blocks
// that refer to dynamic table entries sent before the capture then fail to
// decode, which ends the connection as above.
//
// The parser state is plain data, including a record of both directions'
// HPACK dynamic tables: MarshalState and Restore carry an open connection
// from one capture segment to the next, cut at any byte.
package http2

import (
	"github.com/flowlake/flowlake/internal/http1"
	"github.com/flowlake/flowlake/internal/tcp"
	"golang.org/x/net/http2/hpack"
)

// Config bounds the memory and work of a Parser. Zero fields take the
// defaults documented on each field.
type Config struct {
	// BodyPreview is the number of decoded body bytes kept per message
	// (default 4096; negative keeps no preview).
	BodyPreview int
	// MaxRawBody is the number of raw, still content-coded body bytes kept
	// to decode the preview of a compressed body (default 64 KiB; negative
	// keeps none).
	MaxRawBody int
	// MaxHeaderBlock bounds an encoded header block (a HEADERS or
	// PUSH_PROMISE frame with its CONTINUATION frames), which must be
	// held whole to be decoded (default 256 KiB, at least 1 KiB). A larger
	// block is a connection error (Error "header block too large"): the
	// HPACK state cannot be kept without decoding it.
	MaxHeaderBlock int
	// MaxHeaderList bounds the decoded fields kept per header block,
	// counted as name + value + 32 bytes per field as RFC 9113 does
	// (default 64 KiB). Fields beyond it are dropped and the exchange gets
	// Error "header list too large".
	MaxHeaderList int
	// MaxStreams bounds the open streams of a connection (default 256).
	// When a new stream would exceed it, the oldest open stream is
	// reported with Error "too many open streams" and forgotten.
	MaxStreams int
}

// Default values of Config fields.
const (
	DefaultBodyPreview    = 4096
	DefaultMaxRawBody     = 64 << 10
	DefaultMaxHeaderBlock = 256 << 10
	DefaultMaxHeaderList  = 64 << 10
	DefaultMaxStreams     = 256
)

// maxTableSize caps the HPACK dynamic table size a peer may announce with
// SETTINGS_HEADER_TABLE_SIZE (browsers use 64 KiB); it bounds the memory of
// the two table records and decoders.
const maxTableSize = 1 << 20

// maxControl bounds the payload kept of a frame other than DATA and the
// header-block frames; the rest (say GOAWAY debug data) is skipped.
const maxControl = 1 << 14

func (c Config) withDefaults() Config {
	switch {
	case c.BodyPreview == 0:
		c.BodyPreview = DefaultBodyPreview
	case c.BodyPreview < 0:
		c.BodyPreview = 0
	}
	switch {
	case c.MaxRawBody == 0:
		c.MaxRawBody = DefaultMaxRawBody
	case c.MaxRawBody < 0:
		c.MaxRawBody = 0
	}
	if c.MaxHeaderBlock <= 0 {
		c.MaxHeaderBlock = DefaultMaxHeaderBlock
	}
	c.MaxHeaderBlock = max(c.MaxHeaderBlock, 1<<10)
	if c.MaxHeaderList <= 0 {
		c.MaxHeaderList = DefaultMaxHeaderList
	}
	if c.MaxStreams <= 0 {
		c.MaxStreams = DefaultMaxStreams
	}
	return c
}

// Header is one header or trailer field. Names are as on the wire (HTTP/2
// requires lower case).
type Header = http1.Header

// Exchange is one stream: a request and its response. Fields of a part
// that was not seen keep their zero value.
type Exchange struct {
	// Seq numbers the exchanges of a connection 0, 1, 2, … in the order
	// their streams opened. Exchanges are reported when their stream ends,
	// so not necessarily in Seq order.
	Seq int
	// StreamID is the HTTP/2 stream identifier.
	StreamID uint32
	// Pushed marks a stream the server pushed; its request is the
	// PUSH_PROMISE's.
	Pushed bool
	// Method, Scheme, Authority and Path are the request pseudo-header
	// fields; Authority falls back to a Host field when :authority is
	// absent.
	Method, Scheme, Authority, Path string
	// Status is the final :status (0 when no response was seen); Interim
	// lists 1xx statuses received before it.
	Status  int
	Interim []int
	// ReqHeaders and RespHeaders are the regular fields in wire order
	// (pseudo-header fields left out), followed by any trailer fields.
	ReqHeaders, RespHeaders []Header
	// ReqStart, ReqEnd, RespStart and RespEnd are the Unix-nanosecond
	// timestamps of the data that completed the first header block and the
	// frame that ended each direction of the stream (END_STREAM).
	ReqStart, ReqEnd, RespStart, RespEnd int64
	// ReqBodyBytes and RespBodyBytes are the DATA payload lengths
	// (padding excluded, missing bytes included).
	ReqBodyBytes, RespBodyBytes int64
	// ReqBody and RespBody are previews, content-decoded (gzip, x-gzip,
	// deflate, br, zstd), at most Config.BodyPreview bytes; a preview
	// stops at the first missing byte.
	ReqBody, RespBody []byte
	// ReqContentType and RespContentType are the content-type values.
	ReqContentType, RespContentType string
	// GRPCStatus and GRPCMessage are the grpc-status and grpc-message
	// fields of the response's trailers (or of a trailers-only response).
	GRPCStatus, GRPCMessage string
	// Complete is set when both directions of the stream ended
	// (END_STREAM) with a final response and no byte missing.
	Complete bool
	// Error is empty or a short reason; see the Err constants. Some carry
	// a detail after ": " (an error code name, the malformed frame).
	Error string
}

// Values of Exchange.Error (a prefix, where a detail follows).
const (
	// Connection errors: the connection is not parsed further.
	ErrPreface             = "bad connection preface"
	ErrFrame               = "malformed frame"
	ErrHPACK               = "hpack decoding error"
	ErrHeaderBlockTooLarge = "header block too large"
	ErrGap                 = "gap in http2 connection"
	// Stream errors.
	ErrHeaderListTooLarge = "header list too large"
	ErrTooManyStreams     = "too many open streams"
	ErrResetByClient      = "stream reset by client"
	ErrResetByServer      = "stream reset by server"
	ErrRefused            = "stream refused by GOAWAY"
	ErrTruncated          = "stream not ended"
	ErrGapBody            = "gap in body"
)

// Preface is the client connection preface.
const Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

// Looks reports whether b, the first bytes of a direction, starts the
// client connection preface: it needs the first line, 16 bytes.
func Looks(b []byte) bool {
	return len(b) >= 16 && string(b[:16]) == Preface[:16]
}

// Parser parses one TCP connection. It implements tcp.StreamHandler. A
// Parser is not safe for concurrent use.
type Parser struct {
	cfg  Config
	emit func(*Exchange)
	st   state
	idx  map[uint32]*stream // open streams by id
	dec  [2]*hpack.Decoder  // header blocks sent in each direction
	// scratch of the header block being decoded
	fields  []hpack.HeaderField
	ops     []op
	opi     int
	listN   int
	tooBig  bool
	walkErr bool
	tab     *table
}

var _ tcp.StreamHandler = (*Parser)(nil)

// NewParser returns a parser for one connection, whose ClientToServer
// direction must carry the client preface. emit is called once per
// exchange, when its stream ends, at Close, or when an error ends it; the
// callee may retain the Exchange but must not call back into the Parser.
// emit may be nil.
func NewParser(cfg Config, emit func(*Exchange)) *Parser {
	p := &Parser{cfg: cfg.withDefaults(), emit: emit, idx: map[uint32]*stream{}}
	for d := range p.st.D {
		p.st.D[d].Tab = table{Max: initialTableSize, Allowed: initialTableSize}
		p.dec[d] = p.st.D[d].Tab.decoder()
	}
	return p
}

// Failed returns the connection error that stopped the parser, or "".
func (p *Parser) Failed() string { return p.st.Failed }

// errCodeNames are the RFC 9113 error code names.
var errCodeNames = [...]string{"NO_ERROR", "PROTOCOL_ERROR", "INTERNAL_ERROR", "FLOW_CONTROL_ERROR",
	"SETTINGS_TIMEOUT", "STREAM_CLOSED", "FRAME_SIZE_ERROR", "REFUSED_STREAM", "CANCEL",
	"COMPRESSION_ERROR", "CONNECT_ERROR", "ENHANCE_YOUR_CALM", "INADEQUATE_SECURITY", "HTTP_1_1_REQUIRED"}

// ErrCodeName names an HTTP/2 error code.
func ErrCodeName(c uint32) string {
	if int(c) < len(errCodeNames) {
		return errCodeNames[c]
	}
	return "0x" + hex32(c)
}

func hex32(v uint32) string {
	const digits = "0123456789abcdef"
	var b [8]byte
	for i := 7; i >= 0; i-- {
		b[i] = digits[v&15]
		v >>= 4
	}
	return string(b[:])
}

// HTTP1 returns the exchange in the form of an HTTP/1 exchange, for code
// that handles both: Version and RespVersion are "HTTP/2", URI is :path
// (:authority for CONNECT), Host is Authority, and Reason holds
// "grpc-status N" when the response carried a gRPC status.
func (x *Exchange) HTTP1() *http1.Exchange {
	h := &http1.Exchange{
		Seq: x.Seq, Method: x.Method, URI: x.Path, Version: "HTTP/2", Host: x.Authority,
		Status: x.Status, ReqHeaders: x.ReqHeaders, RespHeaders: x.RespHeaders,
		ReqStart: x.ReqStart, ReqEnd: x.ReqEnd, RespStart: x.RespStart, RespEnd: x.RespEnd,
		ReqBodyBytes: x.ReqBodyBytes, RespBodyBytes: x.RespBodyBytes, ReqBody: x.ReqBody, RespBody: x.RespBody,
		ReqContentType: x.ReqContentType, RespContentType: x.RespContentType,
		Complete: x.Complete, Error: x.Error, Interim: x.Interim,
	}
	if h.URI == "" && x.Method == "CONNECT" {
		h.URI = x.Authority
	}
	if x.Status != 0 || len(x.Interim) > 0 {
		h.RespVersion = "HTTP/2"
	}
	if x.GRPCStatus != "" {
		h.Reason = "grpc-status " + x.GRPCStatus
	}
	return h
}
