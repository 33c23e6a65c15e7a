package http1

import (
	"encoding/binary"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/flowlake/flowlake/internal/tcp"
)

// A fuzz input is (c2s bytes, s2c bytes, plan). The plan is a sequence of
// little-endian uint16 entries: bit 15 selects ServerToClient, bit 14 makes
// the entry a Gap of the low 14 bits' length (gaps consume no input bytes),
// otherwise the low 14 bits are the length of the next Data call from that
// direction's bytes. Bytes left when the plan ends are delivered c2s first,
// then s2c, and the connection is closed.
const (
	planS2C  = 1 << 15
	planGap  = 1 << 14
	planMask = planGap - 1
)

// encodePlan turns scripted events into a fuzz input.
func encodePlan(evs []ev) (c2sData, s2cData, plan []byte) {
	var streams [2][]byte
	for _, e := range evs {
		var dirBit uint16
		if e.dir == s2c {
			dirBit = planS2C
		}
		switch {
		case e.close:
		case e.gap > 0:
			for n := e.gap; n > 0; n -= planMask {
				plan = binary.LittleEndian.AppendUint16(plan, dirBit|planGap|uint16(min(n, planMask)))
			}
		default:
			streams[e.dir] = append(streams[e.dir], e.data...)
			for n := len(e.data); n > 0; n -= planMask {
				plan = binary.LittleEndian.AppendUint16(plan, dirBit|uint16(min(n, planMask)))
			}
		}
	}
	return streams[0], streams[1], plan
}

// schedule turns a fuzz input into events.
func schedule(c2sData, s2cData, plan []byte) []ev {
	streams := [2][]byte{c2sData, s2cData}
	var evs []ev
	for ; len(plan) >= 2; plan = plan[2:] {
		v := binary.LittleEndian.Uint16(plan)
		dir := tcp.Dir(v >> 15)
		n := int(v & planMask)
		if v&planGap != 0 {
			evs = append(evs, gap(dir, n))
			continue
		}
		n = min(n, len(streams[dir]))
		if n == 0 {
			continue
		}
		evs = append(evs, data(dir, string(streams[dir][:n])))
		streams[dir] = streams[dir][n:]
	}
	for d, rest := range streams {
		if len(rest) > 0 {
			evs = append(evs, data(tcp.Dir(d), string(rest)))
		}
	}
	return append(evs, closeEv())
}

// fuzzConfigs are the default bounds and tight ones that make the bounds
// bite on small inputs.
var fuzzConfigs = []Config{
	{},
	{BodyPreview: 16, MaxHeaderBytes: 80, MaxRawBody: 64, MaxPending: 2},
}

// knownErrors are the values Exchange.Error may take.
var knownErrors = map[string]bool{
	"": true, ErrMalformedRequestLine: true, ErrMalformedStatusLine: true, ErrMalformedHeader: true,
	ErrHeaderTooLarge: true, ErrTrailerTooLarge: true, ErrBadContentLength: true,
	ErrBadTransferEncoding: true, ErrBadChunkSize: true, ErrBadChunkTerminator: true,
	ErrGapRequestHeaders: true, ErrGapResponseHeaders: true, ErrGapRequestBody: true,
	ErrGapResponseBody: true, ErrTruncatedRequest: true, ErrTruncatedResponse: true,
	ErrResponseNoRequest: true, ErrTooManyPending: true,
}

// runChecked is run with the parser's memory bounds checked after every
// call and the exchanges checked at the end.
func runChecked(t *testing.T, cfg Config, evs []ev) []*Exchange {
	t.Helper()
	c := &collector{t: t}
	p := NewParser(cfg, c.emit)
	r := p.cfg
	for i, e := range stamp(evs) {
		closed := p.st.Closed
		n := len(c.out)
		apply(p, e, 0)
		if closed && len(c.out) != n {
			t.Fatalf("event %d: emitted after Close", i)
		}
		for d := range p.st.H {
			h := &p.st.H[d]
			if len(h.Buf) >= r.MaxHeaderBytes {
				t.Fatalf("event %d: dir %d buffers %d bytes, bound %d", i, d, len(h.Buf), r.MaxHeaderBytes)
			}
			if len(h.Body) > max(r.BodyPreview, r.MaxRawBody) {
				t.Fatalf("event %d: dir %d keeps %d body bytes", i, d, len(h.Body))
			}
		}
		if len(p.st.Q) > 4*r.MaxPending {
			t.Fatalf("event %d: %d pending exchanges", i, len(p.st.Q))
		}
	}
	if p.stalls != 0 {
		t.Fatalf("parser stalled %d times", p.stalls)
	}
	if len(p.st.Q) != 0 {
		t.Fatalf("%d exchanges not emitted at Close", len(p.st.Q))
	}
	for _, e := range c.out {
		if len(e.ReqBody) > r.BodyPreview || len(e.RespBody) > r.BodyPreview {
			t.Fatalf("exchange %d: previews of %d and %d bytes exceed %d", e.Seq, len(e.ReqBody), len(e.RespBody), r.BodyPreview)
		}
		if e.Complete && (e.Method == "" || e.Status < 101) {
			t.Fatalf("exchange %d complete without request or final response: %s", e.Seq, summary(e))
		}
		if e.Tunnel && e.Status != 101 && e.Status/100 != 2 {
			t.Fatalf("exchange %d: tunnel with status %d", e.Seq, e.Status)
		}
		if !knownErrors[e.Error] {
			t.Fatalf("exchange %d: unknown error %q", e.Seq, e.Error)
		}
		if e.ReqBodyBytes < 0 || e.RespBodyBytes < 0 {
			t.Fatalf("exchange %d: negative body length", e.Seq)
		}
		for _, hs := range [][]Header{e.ReqHeaders, e.RespHeaders} {
			for _, h := range hs {
				if !isToken(h.Name) {
					t.Fatalf("exchange %d: header name %q", e.Seq, h.Name)
				}
			}
		}
	}
	return c.out
}

func FuzzParser(f *testing.F) {
	for _, tc := range parserCases() {
		a, b, plan := encodePlan(tc.evs)
		f.Add(a, b, plan)
	}
	f.Fuzz(func(t *testing.T, c2sData, s2cData, plan []byte) {
		if len(c2sData)+len(s2cData) > 1<<18 || len(plan) > 1<<14 {
			return
		}
		evs := schedule(c2sData, s2cData, plan)
		hs := fnv.New64a()
		hs.Write(plan)
		hs.Write(c2sData[:min(len(c2sData), 64)])
		h := hs.Sum64()
		total := totalData(evs)
		for _, cfg := range fuzzConfigs {
			want := runChecked(t, cfg, evs)
			chunk := 1 + int(h%5)
			if got, _ := run(t, cfg, evs, chunk); !reflect.DeepEqual(got, want) {
				t.Errorf("pieces of %d bytes differ from one pass:\n got %q\nwant %q", chunk, summaries(got), summaries(want))
				diffExchanges(t, got, want)
				return
			}
			off := int(h % uint64(total+1))
			if got := runRestored(t, cfg, evs, off); !reflect.DeepEqual(got, want) {
				t.Errorf("restore after %d bytes differs from one pass:\n got %q\nwant %q", off, summaries(got), summaries(want))
				diffExchanges(t, got, want)
				return
			}
		}
	})
}

// readSeed reads a corpus file in the "go test fuzz v1" format.
func readSeed(t *testing.T, path string) (c2sData, s2cData, plan []byte) {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(lines) != 4 || lines[0] != "go test fuzz v1" {
		t.Fatalf("%s: not a FuzzParser seed", path)
	}
	var vals [3][]byte
	for i, l := range lines[1:] {
		q, found := strings.CutPrefix(l, "[]byte(")
		q, found2 := strings.CutSuffix(q, ")")
		s, err := strconv.Unquote(q)
		if !found || !found2 || err != nil {
			t.Fatalf("%s line %d: %v", path, i+2, err)
		}
		vals[i] = []byte(s)
	}
	return vals[0], vals[1], vals[2]
}

// captureRow renders what TestCaptureSeeds checks of an exchange.
func captureRow(e *Exchange) string {
	return fmt.Sprintf("%s %s host=%s %d interim=%v req=%d resp=%d complete=%v err=%q",
		e.Method, e.URI, e.Host, e.Status, e.Interim, e.ReqBodyBytes, e.RespBodyBytes, e.Complete, e.Error)
}

// TestCaptureSeeds replays the connections extracted from real captures
// (see testdata/README.md) in capture order. The expectations come from
// the captures' reference outputs (Zeek http.log, tshark truth files in
// /work/shared/testdata/pcaps); Zeek reports decoded body sizes where
// these rows count the bytes on the wire, which the comments point out.
func TestCaptureSeeds(t *testing.T) {
	tests := []struct {
		file    string
		want    []string
		preview []string // prefixes of the response previews
	}{
		{
			// Zeek: 5 GETs, decoded bodies 2675 and 21421 bytes for the two
			// gzip-encoded ones, 94, 2349 and 27579 for the images.
			"pcap-zeek-http-pipelined-requests-00",
			[]string{
				`GET /style/enhanced.css host=www.mozilla.org 200 interim=[] req=0 resp=946 complete=true err=""`,
				`GET /script/urchin.js host=www.mozilla.org 200 interim=[] req=0 resp=6716 complete=true err=""`,
				`GET /images/template/screen/bullet_utility.png host=www.mozilla.org 200 interim=[] req=0 resp=94 complete=true err=""`,
				`GET /images/template/screen/key-point-top.png host=www.mozilla.org 200 interim=[] req=0 resp=2349 complete=true err=""`,
				`GET /projects/calendar/images/header-sunbird.png host=www.mozilla.org 200 interim=[] req=0 resp=27579 complete=true err=""`,
			},
			[]string{"/*\n***", "//-- Google Analytics Urchin Module", "GIF89a", "\x89PNG", "\x89PNG"},
		},
		{
			// Zeek: request body 2001 bytes, 100 then 200, response body 60731.
			"pcap-zeek-http-100-continue-00",
			[]string{`POST / host=www.osu.edu 200 interim=[100] req=2001 resp=60731 complete=true err=""`},
			[]string{"<!DOCTYPE html"},
		},
		{
			// tshark: one chunked 200 response.
			"pcap-scapy-http_chunk-00",
			[]string{`GET /httpgallery/chunked/chunkedimage.aspx?0.2911017199439567 host=www.httpwatch.com 200 interim=[] req=0 resp=33653 complete=true err=""`},
			[]string{"\xff\xd8\xff\xe1"},
		},
		{
			// tshark: gzip Content-Encoding.
			"pcap-ark-http-content-gzip-00",
			[]string{`GET /crossdomain.xml host=xxxxxxxxxxx.xxxxxxx.xxx 200 interim=[] req=0 resp=190 complete=true err=""`},
			[]string{"<?xml version=\"1.0\"?>"},
		},
		{
			// Zeek: decoded body of 19 bytes.
			"pcap-zeek-http-x-gzip-00",
			[]string{`GET / host=localhost 200 interim=[] req=0 resp=39 complete=true err=""`},
			[]string{"Encoded gzip header"},
		},
		{
			// tshark: two GETs in one segment, two responses.
			"pcap-sv-http-tx-pipeline-00",
			[]string{
				`GET /bar/ host=testmyids.org 200 interim=[] req=0 resp=39 complete=true err=""`,
				`GET /foo/ host=testmyids.org 200 interim=[] req=0 resp=39 complete=true err=""`,
			},
			[]string{"uid=0(root)", "uid=0(root)"},
		},
		{
			// tshark: absolute-form request to a proxy.
			"pcap-zeek-http-proxy-00",
			[]string{`GET HTTP://bro.org/ host=bro.org 200 interim=[] req=0 resp=15961 complete=true err=""`},
			[]string{"\n<!DOCTYPE html"},
		},
		{
			"pcap-ark-http-post-upload-00",
			[]string{
				`GET /fileupload/ host=192.168.57.14:8080 200 interim=[] req=0 resp=468 complete=true err=""`,
				`GET /fileupload/ host=192.168.57.14:8080 200 interim=[] req=0 resp=468 complete=true err=""`,
				`POST /fileupload/servlet/UploadHandleServlet host=192.168.57.14:8080 200 interim=[] req=449 resp=144 complete=true err=""`,
			},
			[]string{"\r\n<!DOCTYPE HTML>", "\r\n<!DOCTYPE HTML>", "\r\n<!DOCTYPE HTML>"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			got := runChecked(t, Config{}, schedule(readSeed(t, filepath.Join("testdata", "fuzz", "FuzzParser", tc.file))))
			rows := make([]string, len(got))
			for i, e := range got {
				rows[i] = captureRow(e)
			}
			if !reflect.DeepEqual(rows, tc.want) {
				t.Fatalf("exchanges:\n got %q\nwant %q", rows, tc.want)
			}
			for i, w := range tc.preview {
				if !strings.HasPrefix(string(got[i].RespBody), w) {
					t.Errorf("exchange %d: preview starts %q, want %q", i, trunc(got[i].RespBody), w)
				}
			}
		})
	}
}

// TestCaptureMethods checks the 49 connections of zeek-http-methods.pcap,
// valid and invalid request lines, against Zeek's http.log for it. Zeek
// logs a row without method for a request line it cannot parse; here that
// is a "malformed request line" row plus a "response without request"
// row. Two deliberate differences: Zeek treats a version-less request
// line ("GET /HTTP/1.1") as HTTP/0.9 and counts the whole response,
// status line and header included, as body, where this parser reads the
// HTTP/1.0 response the server actually sent; and Zeek's row for an
// unparsable line carries the response, where here it is a separate row.
func TestCaptureMethods(t *testing.T) {
	want := map[string]int{
		// Zeek "- - 925" x22 and "- - 961" x1.
		"- - 925": 22, "- - 961": 1,
		"CCM_POST / 963": 2, "CONNECT / 925": 2, "DELETE / 961": 2,
		"GET / 43911": 1, "GET / 43913": 1, "GET / 43983": 1,
		"HEAD / 0": 2, "OPTIONS  925": 1, "OPTIONS * 962": 1,
		"POST / 934": 1, "PUT / 934": 2, "TRACE / 960": 2,
		// Version-less lines: Zeek has 1068, 1068, 1349, 1068, 143, 1081,
		// 1081, 1068 (head included); these are the Content-Length values.
		"CCM_POST /HTTP/1.1 925": 1, "CONNECT /HTTP/1.1 925": 1, "DELETE /HTTP/1.1 925": 1,
		"GET /HTTP/1.1 1207": 1, "HEAD /HTTP/1.1 0": 1, "POST /HTTP/1.1 934": 1,
		"PUT /HTTP/1.1 934": 1, "TRACE /HTTP/1.1 925": 1,
	}
	files, err := filepath.Glob(filepath.Join("testdata", "fuzz", "FuzzParser", "pcap-zeek-http-methods-*"))
	if err != nil || len(files) != 49 {
		t.Fatalf("%d connection seeds, want 49 (%v)", len(files), err)
	}
	got := map[string]int{}
	malformed := 0
	for _, f := range files {
		for _, e := range runChecked(t, Config{}, schedule(readSeed(t, f))) {
			switch {
			case e.Method != "":
				got[fmt.Sprintf("%s %s %d", e.Method, e.URI, e.RespBodyBytes)]++
				if !e.Complete {
					t.Errorf("%s: %s", f, captureRow(e))
				}
			case e.Error == ErrResponseNoRequest:
				got[fmt.Sprintf("- - %d", e.RespBodyBytes)]++
			case e.Error == ErrMalformedRequestLine:
				malformed++
			default:
				t.Errorf("%s: unexpected row %s", f, captureRow(e))
			}
		}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("rows:\n got %v\nwant %v", got, want)
	}
	if malformed != 23 {
		t.Errorf("%d malformed request lines, want 23", malformed)
	}
}

// TestCaptureDroppedResponse replays the first 300 packets of
// zeek-http-1000-requests-one-dropped-response.pcap, whose first response
// head is missing from the capture (tshark: one lost segment, 999
// responses for 1000 requests). The lost response must not shift the
// pairing of the following ones.
func TestCaptureDroppedResponse(t *testing.T) {
	got := runChecked(t, Config{}, schedule(readSeed(t, filepath.Join("testdata", "fuzz", "FuzzParser", "pcap-zeek-http-1000-requests-one-dropped-response-00"))))
	if len(got) != 71 {
		t.Fatalf("%d exchanges, want 71", len(got))
	}
	if r := captureRow(got[0]); r != `GET / host=localhost 0 interim=[] req=0 resp=0 complete=false err="gap in response headers"` {
		t.Errorf("exchange 0: %s", r)
	}
	for _, e := range got[1:70] {
		if r := captureRow(e); r != `GET / host=localhost 200 interim=[] req=0 resp=615 complete=true err=""` {
			t.Errorf("exchange %d: %s", e.Seq, r)
		}
		if e.RespStart < e.ReqStart {
			t.Errorf("exchange %d: response at %d before request at %d", e.Seq, e.RespStart, e.ReqStart)
		}
	}
	// The seed ends inside the 71st response.
	if r := captureRow(got[70]); r != `GET / host=localhost 200 interim=[] req=0 resp=0 complete=false err="truncated response"` {
		t.Errorf("exchange 70: %s", r)
	}
}
