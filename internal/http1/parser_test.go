package http1

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

func get(path string) string {
	return "GET " + path + " HTTP/1.1\r\nHost: example.com\r\n\r\n"
}

func ok(body string) string {
	return fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(body), body)
}

// parserCase is a scripted connection and the exchanges it must yield.
type parserCase struct {
	name string
	cfg  Config
	evs  []ev
	want []string
}

// parserCases also seed FuzzParser.
func parserCases() []parserCase {
	return []parserCase{
		{
			name: "keep-alive",
			evs: []ev{
				data(c2s, get("/a")),
				data(s2c, ok("hello")),
				data(c2s, get("/b")),
				data(s2c, "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n"),
				closeEv(),
			},
			want: []string{
				`0 GET /a host=example.com 200 resp=5:"hello"`,
				`1 GET /b host=example.com 404`,
			},
		},
		{
			name: "pipelined FIFO",
			evs: []ev{
				data(c2s, get("/1")+get("/2")+get("/3")),
				data(s2c, ok("one")+ok("two")[:20]),
				data(s2c, ok("two")[20:]+ok("three")),
				closeEv(),
			},
			want: []string{
				`0 GET /1 host=example.com 200 resp=3:"one"`,
				`1 GET /2 host=example.com 200 resp=3:"two"`,
				`2 GET /3 host=example.com 200 resp=5:"three"`,
			},
		},
		{
			name: "message split across calls",
			evs: []ev{
				data(c2s, "POST /form HTTP/1.1\r\nHo"),
				data(c2s, "st: h\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Le"),
				data(c2s, "ngth: 7\r\n\r\na=1"),
				data(c2s, "&b=2"),
				data(s2c, "HTTP/1.1 201 Created\r\n"),
				data(s2c, "Content-Length: 2\r\n\r"),
				data(s2c, "\nok"),
			},
			want: []string{`0 POST /form host=h 201 req=7:"a=1&b=2" resp=2:"ok"`},
		},
		{
			name: "chunked response with extensions and trailers",
			evs: []ev{
				data(c2s, get("/c")+get("/d")),
				data(s2c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;name=value\r\nhello\r\n6 ; x=\"y\"\r\n world\r\nA\r\n0123456789\r\n0\r\nX-Checksum: abc\r\nX-More: 1\r\n\r\n"),
				data(s2c, ok("next")),
			},
			want: []string{
				`0 GET /c host=example.com 200 resp=21:"hello world0123456789"`,
				`1 GET /d host=example.com 200 resp=4:"next"`,
			},
		},
		{
			name: "chunked request",
			evs: []ev{
				data(c2s, "PUT /up HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n"),
				data(s2c, "HTTP/1.1 204 No Content\r\n\r\n"),
			},
			want: []string{`0 PUT /up host=h 204 req=3:"abc"`},
		},
		{
			name: "body until close HTTP/1.0",
			evs: []ev{
				data(c2s, "GET /old HTTP/1.0\r\n\r\n"),
				data(s2c, "HTTP/1.0 200 OK\r\nContent-Type: text/plain\r\n\r\nfirst "),
				data(s2c, "second"),
				closeEv(),
			},
			want: []string{`0 GET /old 200 resp=12:"first second"`},
		},
		{
			name: "HTTP/1.1 response without length reads until close",
			evs: []ev{
				data(c2s, get("/x")),
				data(s2c, "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nHTTP/1.1 200 OK is just body text"),
				closeEv(),
			},
			want: []string{`0 GET /x host=example.com 200 resp=33:"HTTP/1.1 200 OK is just body text"`},
		},
		{
			name: "HEAD 204 304 have no body",
			evs: []ev{
				data(c2s, "HEAD /h HTTP/1.1\r\nHost: a\r\n\r\n"+get("/n")+get("/m")+get("/last")),
				data(s2c, "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\nTransfer-Encoding: chunked\r\n\r\n"),
				data(s2c, "HTTP/1.1 204 No Content\r\nContent-Length: 7\r\n\r\n"),
				data(s2c, "HTTP/1.1 304 Not Modified\r\nContent-Length: 50\r\n\r\n"),
				data(s2c, ok("done")),
			},
			want: []string{
				`0 HEAD /h host=a 200`,
				`1 GET /n host=example.com 204`,
				`2 GET /m host=example.com 304`,
				`3 GET /last host=example.com 200 resp=4:"done"`,
			},
		},
		{
			name: "expect 100-continue",
			evs: []ev{
				data(c2s, "POST /p HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"),
				data(s2c, "HTTP/1.1 100 Continue\r\n\r\n"),
				data(c2s, "data"),
				data(s2c, "HTTP/1.1 103 Early Hints\r\nLink: </s.css>\r\n\r\n"+ok("fine")),
			},
			want: []string{`0 POST /p host=h 200 interim=[100 103] req=4:"data" resp=4:"fine"`},
		},
		{
			name: "expect 100-continue refused",
			evs: []ev{
				data(c2s, "PUT /big HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n"),
				data(s2c, "HTTP/1.1 417 Expectation Failed\r\nContent-Length: 0\r\n\r\n"),
				data(c2s, "abcd"+get("/after")),
				data(s2c, ok("x")),
			},
			want: []string{
				`0 PUT /big host=h 417 req=4:"abcd"`,
				`1 GET /after host=example.com 200 resp=1:"x"`,
			},
		},
		{
			name: "upgrade 101 stops parsing",
			evs: []ev{
				data(c2s, "GET /chat HTTP/1.1\r\nHost: ws\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"),
				data(s2c, "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n\x81\x05hello"),
				data(c2s, "\x81\x85abcdefghi"),
				data(c2s, get("/not-http")),
				data(s2c, ok("not http either")),
				closeEv(),
			},
			want: []string{`0 GET /chat host=ws 101 tunnel`},
		},
		{
			name: "CONNECT 200 tunnel, TLS sent before the response is seen",
			evs: []ev{
				data(c2s, "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n\x16\x03\x01\x02\x00\x01"),
				data(s2c, "HTTP/1.1 200 Connection Established\r\n\r\n"),
				data(s2c, "\x16\x03\x03\x00\x5a\x02"),
				closeEv(),
			},
			want: []string{`0 CONNECT example.com:443 host=example.com:443 200 tunnel`},
		},
		{
			name: "CONNECT refused then retried",
			evs: []ev{
				data(c2s, "CONNECT a.test:443 HTTP/1.1\r\n\r\n"),
				data(s2c, "HTTP/1.1 407 Proxy Authentication Required\r\nContent-Length: 6\r\n\r\ndenied"),
				data(c2s, "CONNECT a.test:443 HTTP/1.1\r\nProxy-Authorization: Basic eDp5\r\n\r\n"),
				data(s2c, "HTTP/1.1 200 OK\r\n\r\n"),
				data(c2s, "\x16\x03\x01"),
			},
			want: []string{
				`0 CONNECT a.test:443 host=a.test:443 407 resp=6:"denied"`,
				`1 CONNECT a.test:443 host=a.test:443 200 tunnel`,
			},
		},
		{
			name: "upgrade declined keeps parsing",
			evs: []ev{
				data(c2s, "GET / HTTP/1.1\r\nHost: h\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n"),
				data(s2c, ok("plain")),
				data(c2s, get("/next")),
				data(s2c, ok("again")),
			},
			want: []string{
				`0 GET / host=h 200 resp=5:"plain"`,
				`1 GET /next host=example.com 200 resp=5:"again"`,
			},
		},
		{
			name: "any method token",
			evs: []ev{
				data(c2s, "PROPFIND /dav/ HTTP/1.1\r\nHost: d\r\nDepth: 1\r\nContent-Length: 0\r\n\r\n"+
					"PURGE /cache/x HTTP/1.1\r\nHost: c\r\n\r\n"+
					"X-MY_METHOD.v2 /custom HTTP/1.1\r\nHost: c\r\n\r\n"+
					"M-SEARCH * HTTP/1.1\r\nHost: 239.255.255.250:1900\r\n\r\n"),
				data(s2c, "HTTP/1.1 207 Multi-Status\r\nContent-Length: 2\r\n\r\n<>"+ok("")+ok("")+ok("")),
			},
			want: []string{
				`0 PROPFIND /dav/ host=d 207 resp=2:"<>"`,
				`1 PURGE /cache/x host=c 200`,
				`2 X-MY_METHOD.v2 /custom host=c 200`,
				`3 M-SEARCH * host=239.255.255.250:1900 200`,
			},
		},
		{
			name: "garbage rejected then resync",
			evs: []ev{
				data(c2s, "\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03\nG{T /x HTTP/1.1\r\nxx\r\n"+get("/good")),
				data(s2c, ok("g")),
			},
			want: []string{
				`0 0 incomplete err="malformed request line"`,
				`1 GET /good host=example.com 200 resp=1:"g"`,
			},
		},
		{
			name: "request line without target is garbage",
			evs: []ev{
				data(c2s, "GET\r\n"+get("/v")),
				data(s2c, ok("v")),
			},
			want: []string{
				`0 0 incomplete err="malformed request line"`,
				`1 GET /v host=example.com 200 resp=1:"v"`,
			},
		},
		{
			name: "lenient request lines",
			evs: []ev{
				data(c2s, "OPTIONS HTTP/1.1\nHost: a\n\nGET / HTTP/1.\nHost: b\n\nGET /HTTP/1.1\nHost: c\n\nGET  /sp ace  HTTP/1.1 \r\nHost: d\r\n\r\n"),
				data(s2c, ok("1")+ok("2")+ok("3")+ok("4")),
			},
			want: []string{
				`0 OPTIONS  host=a 200 resp=1:"1"`,
				`1 GET / host=b 200 resp=1:"2"`,
				`2 GET /HTTP/1.1 host=c 200 resp=1:"3"`,
				`3 GET /sp ace host=d 200 resp=1:"4"`,
			},
		},
		{
			name: "version-less request line is not a resync point",
			evs: []ev{
				data(c2s, "\x00\x01\nGET /in-body\nGET /x HTTP/1.1\r\n\r\n"),
				data(s2c, ok("x")),
			},
			want: []string{
				`0 0 incomplete err="malformed request line"`,
				`1 GET /x 200 resp=1:"x"`,
			},
		},
		{
			name: "malformed status line then resync",
			evs: []ev{
				data(c2s, get("/s")),
				data(s2c, "HTTP/1.1 2OO OK\r\nContent-Length: 1\r\n\r\n"+ok("real")),
			},
			want: []string{
				`0 GET /s host=example.com 200 resp=4:"real"`,
				`1 0 incomplete err="malformed status line"`,
			},
		},
		{
			name: "absolute-form URI through a proxy",
			evs: []ev{
				data(c2s, "GET http://user:pw@origin.test:8080/p?q=1 HTTP/1.1\r\nHost: ignored\r\n\r\n"),
				data(s2c, ok("p")),
			},
			want: []string{`0 GET http://user:pw@origin.test:8080/p?q=1 host=origin.test:8080 200 resp=1:"p"`},
		},
		{
			name: "leading empty lines and bare LF",
			evs: []ev{
				data(c2s, "\r\n\r\nGET /lf HTTP/1.0\nHost: l\n\n"),
				data(s2c, "HTTP/1.0 200 OK\nContent-Length: 2\n\nok"),
			},
			want: []string{`0 GET /lf host=l 200 resp=2:"ok"`},
		},
		{
			name: "transfer-encoding wins over content-length",
			evs: []ev{
				data(c2s, "POST /te HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhi\r\n0\r\n\r\n"),
				data(s2c, ok("")),
			},
			want: []string{`0 POST /te host=t 200 req=2:"hi"`},
		},
		{
			name: "gap inside body of known length",
			evs: []ev{
				data(c2s, get("/g")),
				data(s2c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhel"),
				gap(s2c, 4),
				data(s2c, "xyz"),
				data(c2s, get("/h")),
				data(s2c, ok("h")),
			},
			want: []string{
				`0 GET /g host=example.com 200 resp=10:"hel" incomplete`,
				`1 GET /h host=example.com 200 resp=1:"h"`,
			},
		},
		{
			name: "gap past the end of a body resyncs",
			evs: []ev{
				data(c2s, "POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nab"),
				gap(c2s, 20),
				data(c2s, "ost: x\r\n\r\n"+get("/b")),
				data(s2c, ok("1")+ok("lost")+ok("2")),
			},
			want: []string{
				`0 POST /a 200 req=3:"ab" resp=1:"1" incomplete`,
				`1 200 resp=4:"lost" incomplete err="gap in request headers"`,
				`2 GET /b host=example.com 200 resp=1:"2"`,
			},
		},
		{
			name: "gap that swallowed a whole request start",
			evs: []ev{
				data(c2s, get("/1")),
				gap(c2s, 30),
				data(c2s, "Accept: */*\r\n\r\n"+get("/3")),
				data(s2c, ok("1")+ok("2")+ok("3")),
			},
			want: []string{
				`0 GET /1 host=example.com 200 resp=1:"1"`,
				`1 200 resp=1:"2" incomplete err="gap in request headers"`,
				`2 GET /3 host=example.com 200 resp=1:"3"`,
			},
		},
		{
			name: "gap that swallowed a response start",
			evs: []ev{
				data(c2s, get("/1")+get("/2")),
				gap(s2c, 30),
				data(s2c, "end of the first body\r\n"+ok("2")),
			},
			want: []string{
				`0 GET /1 host=example.com 0 incomplete err="gap in response headers"`,
				`1 GET /2 host=example.com 200 resp=1:"2"`,
			},
		},
		{
			name: "gap between messages that lost nothing visible",
			evs: []ev{
				data(c2s, get("/1")+get("/2")),
				data(s2c, ok("1")),
				gap(s2c, 2),
				data(s2c, ok("2")),
			},
			want: []string{
				`0 GET /1 host=example.com 200 resp=1:"1"`,
				`1 GET /2 host=example.com 200 resp=1:"2"`,
			},
		},
		{
			name: "gap in request headers keeps pairing",
			evs: []ev{
				data(c2s, "GET /a HTTP/1.1\r\nHo"),
				gap(c2s, 20),
				data(c2s, "Accept: */*\r\n\r\n"+get("/b")),
				data(s2c, ok("for a")+ok("for b")),
			},
			want: []string{
				`0 GET /a 200 resp=5:"for a" incomplete err="gap in request headers"`,
				`1 GET /b host=example.com 200 resp=5:"for b"`,
			},
		},
		{
			name: "response whose request was lost",
			evs: []ev{
				gap(c2s, 40),
				data(s2c, ok("orphan")),
				data(c2s, get("/b")),
				data(s2c, ok("b")),
			},
			want: []string{
				`0 200 resp=6:"orphan" incomplete err="response without request"`,
				`1 GET /b host=example.com 200 resp=1:"b"`,
			},
		},
		{
			name: "gap in chunked framing resyncs",
			evs: []ev{
				data(c2s, get("/1")+get("/2")),
				data(s2c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nab"),
				gap(s2c, 30),
				data(s2c, "cd\r\n0\r\n\r\n"+ok("two")),
			},
			want: []string{
				`0 GET /1 host=example.com 200 resp=4:"ab" incomplete err="gap in response body"`,
				`1 GET /2 host=example.com 200 resp=3:"two"`,
			},
		},
		{
			name: "gap in chunk data of known size",
			evs: []ev{
				data(c2s, get("/1")),
				data(s2c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n8\r\nab"),
				gap(s2c, 3),
				data(s2c, "fgh\r\n0\r\n\r\n"),
			},
			want: []string{`0 GET /1 host=example.com 200 resp=8:"ab" incomplete`},
		},
		{
			name: "gap in response headers",
			evs: []ev{
				data(c2s, get("/1")+get("/2")),
				data(s2c, "HTTP/1.1 500 Oops\r\nConte"),
				gap(s2c, 100),
				data(s2c, "body bytes\r\n"+ok("2")),
			},
			want: []string{
				`0 GET /1 host=example.com 500 incomplete err="gap in response headers"`,
				`1 GET /2 host=example.com 200 resp=1:"2"`,
			},
		},
		{
			name: "gap in a body until close",
			evs: []ev{
				data(c2s, "GET / HTTP/1.0\r\n\r\n"),
				data(s2c, "HTTP/1.0 200 OK\r\n\r\nabc"),
				gap(s2c, 5),
				data(s2c, "def"),
				closeEv(),
			},
			want: []string{`0 GET / 200 resp=11:"abc" incomplete`},
		},
		{
			name: "request without response at close",
			evs: []ev{
				data(c2s, get("/1")),
				data(s2c, ok("1")),
				data(c2s, get("/2")),
				closeEv(),
			},
			want: []string{
				`0 GET /1 host=example.com 200 resp=1:"1"`,
				`1 GET /2 host=example.com 0 incomplete`,
			},
		},
		{
			name: "messages cut by close",
			evs: []ev{
				data(c2s, get("/1")+"POST /2 HTTP/1.1\r\nContent-Length: 9\r\n\r\nabc"),
				data(s2c, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\n12345"),
				closeEv(),
			},
			want: []string{
				`0 GET /1 host=example.com 200 resp=5:"12345" incomplete err="truncated response"`,
				`1 POST /2 0 req=3:"abc" incomplete err="truncated request"`,
			},
		},
		{
			name: "head cut by close",
			evs: []ev{
				data(c2s, "GET /cut HTTP/1.1\r\nHost: x"),
				closeEv(),
			},
			want: []string{`0 GET /cut 0 incomplete err="truncated request"`},
		},
		{
			name: "header too large",
			cfg:  Config{MaxHeaderBytes: 100},
			evs: []ev{
				data(c2s, "GET /big HTTP/1.1\r\nCookie: "+strings.Repeat("c", 200)+"\r\nX: y\r\n\r\n"+get("/small")),
				data(s2c, "HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Length: 0\r\n\r\n"+ok("s")),
			},
			want: []string{
				`0 GET /big 431 incomplete err="header too large"`,
				`1 GET /small host=example.com 200 resp=1:"s"`,
			},
		},
		{
			name: "start line too large",
			cfg:  Config{MaxHeaderBytes: 64},
			evs: []ev{
				data(c2s, "GET /"+strings.Repeat("a", 100)+" HTTP/1.1\r\n\r\n"+get("/s")),
				data(s2c, "HTTP/1.1 414 URI Too Long\r\nContent-Length: 0\r\n\r\n"+ok("s")),
			},
			want: []string{
				`0 414 incomplete err="header too large"`,
				`1 GET /s host=example.com 200 resp=1:"s"`,
			},
		},
		{
			name: "bad chunk size",
			evs: []ev{
				data(c2s, get("/1")+get("/2")),
				data(s2c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n"+ok("2")),
			},
			want: []string{
				`0 GET /1 host=example.com 200 incomplete err="bad chunk size"`,
				`1 GET /2 host=example.com 200 resp=1:"2"`,
			},
		},
		{
			name: "chunk longer than announced",
			evs: []ev{
				data(c2s, get("/1")+get("/2")),
				data(s2c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n"+ok("2")),
			},
			want: []string{
				`0 GET /1 host=example.com 200 resp=2:"ab" incomplete err="bad chunk terminator"`,
				`1 GET /2 host=example.com 200 resp=1:"2"`,
			},
		},
		{
			name: "bad content-length",
			evs: []ev{
				data(c2s, "POST /x HTTP/1.1\r\nContent-Length: 12abc\r\n\r\nbody\r\n"+get("/y")),
				data(s2c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"+ok("y")),
			},
			want: []string{
				`0 POST /x 400 incomplete err="bad content-length"`,
				`1 GET /y host=example.com 200 resp=1:"y"`,
			},
		},
		{
			name: "conflicting content-length values",
			evs: []ev{
				data(c2s, get("/x")),
				data(s2c, "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd"),
			},
			want: []string{`0 GET /x host=example.com 200 incomplete err="bad content-length"`},
		},
		{
			name: "repeated identical content-length",
			evs: []ev{
				data(c2s, get("/x")),
				data(s2c, "HTTP/1.1 200 OK\r\nContent-Length: 3, 3\r\nContent-Length: 3\r\n\r\nabc"),
			},
			want: []string{`0 GET /x host=example.com 200 resp=3:"abc"`},
		},
		{
			name: "transfer-encoding identity is no coding",
			evs: []ev{
				data(c2s, "POST /i HTTP/1.1\r\nTransfer-Encoding: identity\r\nContent-Length: 2\r\n\r\nok"+get("/j")),
				data(s2c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: identity\r\nContent-Length: 1\r\n\r\nx"+ok("y")),
			},
			want: []string{
				`0 POST /i 200 req=2:"ok" resp=1:"x"`,
				`1 GET /j host=example.com 200 resp=1:"y"`,
			},
		},
		{
			name: "request transfer-encoding not chunked",
			evs: []ev{
				data(c2s, "POST /x HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n"),
				data(s2c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"),
			},
			want: []string{`0 POST /x 400 incomplete err="bad transfer-encoding"`},
		},
		{
			name: "malformed header line is kept lenient",
			evs: []ev{
				data(c2s, "GET /m HTTP/1.1\r\nHost: m\r\nthis is not a header\r\n\r\n"),
				data(s2c, ok("m")),
			},
			want: []string{`0 GET /m host=m 200 resp=1:"m" err="malformed header line"`},
		},
		{
			name: "preview bounded",
			cfg:  Config{BodyPreview: 4},
			evs: []ev{
				data(c2s, "POST /p HTTP/1.1\r\nContent-Length: 10\r\n\r\n0123456789"),
				data(s2c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n"),
			},
			want: []string{`0 POST /p 200 req=10:"0123" resp=6:"abcd"`},
		},
		{
			name: "preview disabled",
			cfg:  Config{BodyPreview: -1},
			evs: []ev{
				data(c2s, get("/")),
				data(s2c, ok("body")),
			},
			want: []string{`0 GET / host=example.com 200 resp=4:""`},
		},
		{
			name: "too many pending requests",
			cfg:  Config{MaxPending: 2},
			evs: []ev{
				data(c2s, get("/1")+get("/2")+get("/3")+get("/4")),
				closeEv(),
			},
			want: []string{
				`0 GET /1 host=example.com 0 incomplete`,
				`1 GET /2 host=example.com 0 incomplete`,
				`2 GET /3 host=example.com 0 incomplete`,
				`3 GET /4 host=example.com 0 incomplete`,
			},
		},
		{
			name: "roles swapped",
			evs: []ev{
				data(s2c, get("/rev")),
				data(c2s, ok("rev")),
			},
			want: []string{`0 GET /rev host=example.com 200 resp=3:"rev"`},
		},
		{
			name: "connection picked up mid-body",
			evs: []ev{
				data(c2s, "lo world\r\n"+get("/next")),
				data(s2c, "more body of an earlier response\r\n"+ok("n")),
			},
			want: []string{
				`0 0 incomplete err="malformed request line"`,
				`1 GET /next host=example.com 200 resp=1:"n"`,
				`2 0 incomplete err="malformed status line"`,
			},
		},
	}
}

func TestParser(t *testing.T) {
	for _, tc := range parserCases() {
		t.Run(tc.name, func(t *testing.T) {
			got, _ := run(t, tc.cfg, tc.evs, 0)
			if g := summaries(got); !reflect.DeepEqual(g, tc.want) {
				t.Fatalf("exchanges:\n got %q\nwant %q", g, tc.want)
			}
			checkSplits(t, tc.cfg, tc.evs, got, totalData(tc.evs) <= 1500)
		})
	}
}

func TestExchangeFields(t *testing.T) {
	evs := []ev{
		{dir: c2s, ts: 100, data: "POST /api/v1?x=1 HTTP/1.1\r\nHost: api.test\r\nContent-Type: application/json\r\nX-Folded: one\r\n  two\r\n\tthree\r\nContent-Length: 2\r\n\r\n{"},
		{dir: c2s, ts: 150, data: "}"},
		{dir: s2c, ts: 200, data: "HTTP/1.1 100 Continue\r\n\r\n"},
		{dir: s2c, ts: 300, data: "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n"},
		{dir: s2c, ts: 400, data: "0\r\nX-Trailer: t\r\n\r\n"},
		{close: true, ts: 500},
	}
	got, _ := run(t, Config{}, evs, 0)
	want := []*Exchange{{
		Seq: 0, Method: "POST", URI: "/api/v1?x=1", Version: "HTTP/1.1", Host: "api.test",
		Status: 200, Reason: "OK", RespVersion: "HTTP/1.1",
		ReqHeaders: []Header{
			{"Host", "api.test"}, {"Content-Type", "application/json"},
			{"X-Folded", "one two three"}, {"Content-Length", "2"},
		},
		RespHeaders: []Header{
			{"Content-Type", "text/plain"}, {"Transfer-Encoding", "chunked"}, {"X-Trailer", "t"},
		},
		ReqStart: 100, ReqEnd: 150, RespStart: 200, RespEnd: 400,
		ReqBodyBytes: 2, RespBodyBytes: 2,
		ReqBody: []byte("{}"), RespBody: []byte("ok"),
		ReqContentType: "application/json", RespContentType: "text/plain",
		Complete: true, Interim: []int{100},
	}}
	if !reflect.DeepEqual(got, want) {
		diffExchanges(t, got, want)
		t.Fatalf("got %q", summaries(got))
	}
	checkSplits(t, Config{}, evs, got, true)
}

func TestTimestampsUntilClose(t *testing.T) {
	evs := []ev{
		{dir: c2s, ts: 10, data: "GET / HTTP/1.0\r\n\r\n"},
		{dir: s2c, ts: 20, data: "HTTP/1.0 200 OK\r\n\r\na"},
		{dir: s2c, ts: 30, data: "b"},
		{close: true, ts: 99},
	}
	got, _ := run(t, Config{}, evs, 0)
	if len(got) != 1 {
		t.Fatalf("got %d exchanges", len(got))
	}
	e := got[0]
	if e.ReqStart != 10 || e.ReqEnd != 10 || e.RespStart != 20 || e.RespEnd != 30 || !e.Complete {
		t.Errorf("timestamps %d %d %d %d complete=%v", e.ReqStart, e.ReqEnd, e.RespStart, e.RespEnd, e.Complete)
	}
}

func TestSwapped(t *testing.T) {
	for _, tc := range []struct {
		name string
		evs  []ev
		want bool
	}{
		{"normal", []ev{data(c2s, get("/")), data(s2c, ok(""))}, false},
		{"requests in s2c", []ev{data(s2c, get("/"))}, true},
		{"responses in c2s", []ev{data(c2s, ok("x"))}, true},
		{"response first in s2c", []ev{data(s2c, ok("x")), data(c2s, get("/"))}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, p := run(t, Config{}, tc.evs, 0)
			if p.Swapped() != tc.want {
				t.Errorf("Swapped() = %v, want %v", p.Swapped(), tc.want)
			}
		})
	}
}

func TestPendingEmittedEarly(t *testing.T) {
	c := &collector{t: t}
	p := NewParser(Config{MaxPending: 3}, c.emit)
	for i := range 10 {
		p.Data(c2s, int64(i), []byte(get(fmt.Sprintf("/%d", i))))
	}
	if len(c.out) != 7 {
		t.Fatalf("before close: %d exchanges emitted, want 7", len(c.out))
	}
	p.Close(100)
	if len(c.out) != 10 {
		t.Fatalf("after close: %d exchanges, want 10", len(c.out))
	}
}

func TestCallsAfterCloseIgnored(t *testing.T) {
	c := &collector{t: t}
	p := NewParser(Config{}, c.emit)
	p.Data(c2s, 1, []byte(get("/")))
	p.Close(2)
	p.Data(s2c, 3, []byte(ok("late")))
	p.Gap(c2s, 4, 10)
	p.Close(5)
	if len(c.out) != 1 || c.out[0].Status != 0 {
		t.Fatalf("got %q", summaries(c.out))
	}
}

func TestNilEmit(t *testing.T) {
	p := NewParser(Config{}, nil)
	p.Data(c2s, 1, []byte(get("/")))
	p.Data(s2c, 2, []byte(ok("x")))
	p.Close(3)
}

// encoded compresses s with one coding.
func encoded(t testing.TB, coding, s string) string {
	t.Helper()
	var b bytes.Buffer
	var w interface {
		Write([]byte) (int, error)
		Close() error
	}
	switch coding {
	case "gzip":
		w = gzip.NewWriter(&b)
	case "zlib":
		w = zlib.NewWriter(&b)
	case "flate":
		fw, err := flate.NewWriter(&b, flate.BestSpeed)
		if err != nil {
			t.Fatal(err)
		}
		w = fw
	case "br":
		w = brotli.NewWriter(&b)
	case "zstd":
		zw, err := zstd.NewWriter(&b)
		if err != nil {
			t.Fatal(err)
		}
		w = zw
	default:
		t.Fatalf("unknown coding %s", coding)
	}
	if _, err := w.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.String()
}

func TestContentDecoding(t *testing.T) {
	text := strings.Repeat("The quick brown fox jumps over the lazy dog. ", 200) // 9000 bytes
	preview := text[:DefaultBodyPreview]
	for _, tc := range []struct {
		name, header string
		body         string
		cfg          Config
		want         string
	}{
		{"gzip", "gzip", encoded(t, "gzip", text), Config{}, preview},
		{"x-gzip", "x-gzip", encoded(t, "gzip", text), Config{}, preview},
		{"deflate zlib", "deflate", encoded(t, "zlib", text), Config{}, preview},
		{"deflate raw", "deflate", encoded(t, "flate", text), Config{}, preview},
		{"br", "br", encoded(t, "br", text), Config{}, preview},
		{"zstd", "zstd", encoded(t, "zstd", text), Config{}, preview},
		{"upper case name", "GZIP", encoded(t, "gzip", text), Config{}, preview},
		{"two codings", "gzip, br", encoded(t, "br", encoded(t, "gzip", text)), Config{}, preview},
		{"identity listed", "identity", text, Config{}, preview},
		{"short body", "gzip", encoded(t, "gzip", "tiny"), Config{}, "tiny"},
		{"preview smaller", "br", encoded(t, "br", text), Config{BodyPreview: 10}, text[:10]},
		{"raw bound cuts input", "gzip", encoded(t, "gzip", randomText(20000)), Config{MaxRawBody: 200}, ""},
		{"claimed gzip but plain", "gzip", "plain text, not gzip", Config{}, "plain text, not gzip"},
		{"claimed br but plain", "br", "plain text, not brotli", Config{}, "plain text, not brotli"},
		{"unknown coding kept raw", "compress", "\x1f\x9d\x90raw", Config{}, "\x1f\x9d\x90raw"},
		{"no raw body kept", "gzip", encoded(t, "gzip", text), Config{MaxRawBody: -1}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			evs := []ev{
				data(c2s, get("/z")),
				data(s2c, fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Encoding: %s\r\nContent-Length: %d\r\n\r\n%s", tc.header, len(tc.body), tc.body)),
			}
			got, _ := run(t, tc.cfg, evs, 0)
			if len(got) != 1 {
				t.Fatalf("got %q", summaries(got))
			}
			e := got[0]
			if e.RespBodyBytes != int64(len(tc.body)) {
				t.Errorf("RespBodyBytes = %d, want %d", e.RespBodyBytes, len(tc.body))
			}
			switch {
			case tc.name == "raw bound cuts input":
				// Only a prefix of the text can be decoded from 200 raw bytes.
				if len(e.RespBody) == 0 || !strings.HasPrefix(randomText(20000), string(e.RespBody)) {
					t.Errorf("partial preview %q is not a prefix of the text", e.RespBody)
				}
			case string(e.RespBody) != tc.want:
				t.Errorf("preview = %q (%d bytes), want %d bytes", trunc(e.RespBody), len(e.RespBody), len(tc.want))
			}
			checkSplits(t, tc.cfg, evs, got, false)
		})
	}
}

func TestTransferCodingDecoded(t *testing.T) {
	z := encoded(t, "gzip", "chunked and gzipped")
	body := fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(z), z)
	got, _ := run(t, Config{}, []ev{
		data(c2s, get("/")),
		data(s2c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n"+body),
	}, 0)
	if len(got) != 1 || string(got[0].RespBody) != "chunked and gzipped" || got[0].RespBodyBytes != int64(len(z)) {
		t.Fatalf("got %q", summaries(got))
	}
}

// randomText is incompressible-ish printable text, deterministic.
func randomText(n int) string {
	b := make([]byte, n)
	x := uint32(2463534242)
	for i := range b {
		x ^= x << 13
		x ^= x >> 17
		x ^= x << 5
		b[i] = 'a' + byte(x%26)
	}
	return string(b)
}

func trunc(b []byte) string {
	if len(b) > 40 {
		return string(b[:40]) + "…"
	}
	return string(b)
}

func TestLooks(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want bool
	}{
		{"GET / HTTP/1.1\r\n", true},
		{"POST /x", true},
		{"PROPFIND ", true},
		{"PURGE /a", true},
		{"M-SEARCH * HTTP/1.1", true},
		{"HTTP/1.1 200 OK", true},
		{"HTTP/1.0", true},
		{"HTTP/2.0 200", false},
		{"PRI * HTTP/2.0\r\n\r\nSM", false},
		{"GET", false},
		{"get / HTTP/1.1", false},
		{"FOO / HTTP/1.1", false},
		{"\x16\x03\x01\x02\x00", false},
		{"", false},
		{"SSH-2.0-OpenSSH", false},
	} {
		if got := Looks([]byte(tc.in)); got != tc.want {
			t.Errorf("Looks(%q) = %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestLooksNoAlloc(t *testing.T) {
	b := []byte("OPTIONS * HTTP/1.1\r\n")
	if n := testing.AllocsPerRun(100, func() { Looks(b) }); n != 0 {
		t.Errorf("Looks allocates %v times", n)
	}
}

func TestMarshalRestoreEveryOffset(t *testing.T) {
	gz := encoded(t, "gzip", strings.Repeat("compressed body ", 20))
	evs := []ev{
		data(c2s, "POST /upload HTTP/1.1\r\nHost: up\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n"),
		data(s2c, "HTTP/1.1 100 Continue\r\n\r\n"),
		data(c2s, "hello"+get("/a")+"GET /b HTTP/1.1\r\nX-Fold: a\r\n b\r\n\r\n"),
		data(s2c, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n0\r\nT: 1\r\n\r\n"),
		data(s2c, fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\nContent-Length: %d\r\n\r\n%s", len(gz), gz)),
		data(s2c, "HTTP/1.1 200 OK\r\nContent-Length: 8\r\n\r\nab"),
		gap(s2c, 3),
		data(s2c, "cde"),
		data(c2s, "GET /c HTTP/1.0\r\n\r\n"),
		data(s2c, "HTTP/1.0 200 OK\r\n\r\nuntil close"),
		closeEv(),
	}
	want, _ := run(t, Config{}, evs, 0)
	if got := summaries(want); len(got) != 4 || !strings.Contains(got[1], "compressed body compressed body") {
		t.Fatalf("unexpected one-pass result %q", got)
	}
	checkSplits(t, Config{}, evs, want, true)
}

func TestRestoreRejects(t *testing.T) {
	p := NewParser(Config{}, nil)
	p.Data(c2s, 1, []byte("GET /partial HTTP/1.1\r\nUser-Agent: "+strings.Repeat("u", 80)))
	st, err := p.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(Config{}, st, nil); err != nil {
		t.Fatalf("own state refused: %v", err)
	}
	if _, err := Restore(Config{MaxHeaderBytes: 64}, st, nil); !errors.Is(err, ErrBadState) {
		t.Errorf("state with a 115-byte head under a 64-byte bound: err = %v, want ErrBadState", err)
	}
	for _, bad := range [][]byte{nil, []byte("not gob"), st[:len(st)/2]} {
		if _, err := Restore(Config{}, bad, nil); !errors.Is(err, ErrBadState) {
			t.Errorf("Restore(%q) err = %v, want ErrBadState", bad, err)
		}
	}
}
