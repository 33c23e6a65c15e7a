package lake

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/flowlake/flowlake/schema"
)

// memSink is an in-memory Sink for tests.
type memSink struct {
	mu      sync.Mutex
	objects map[string][]byte
	puts    []string
	failAt  int // fail the failAt-th Put (1-based); 0 never
}

func newMemSink() *memSink { return &memSink{objects: map[string][]byte{}} }

func (s *memSink) Put(ctx context.Context, key string, body []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	s.puts = append(s.puts, key)
	if s.failAt > 0 && len(s.puts) == s.failAt {
		return errSinkFull
	}
	s.objects[key] = slices.Clone(body)
	return nil
}

func (s *memSink) keys() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Sorted(maps.Keys(s.objects))
}

var errSinkFull = fmt.Errorf("sink full")

// hour0 is 2024-03-10T23:00:00Z, so hour0 and hour0+1h are in different
// days: the two partitions differ in both dt and hour.
var hour0 = time.Date(2024, 3, 10, 23, 0, 0, 0, time.UTC).UnixMicro()

const hourUS = int64(time.Hour / time.Microsecond)

// httpRow returns a realistic HTTP exchange number i at ts.
func httpRow(i int, ts int64) schema.HTTP {
	paths := []string{"/api/v1/orders", "/api/v1/users/42", "/healthz", "/static/app.js", "/api/v1/search"}
	methods := []string{"GET", "POST", "GET", "GET", "PUT"}
	p := paths[i%len(paths)]
	q := ""
	if i%3 == 0 {
		q = fmt.Sprintf("page=%d&size=50", i%17)
	}
	uri := p
	if q != "" {
		uri += "?" + q
	}
	status := []int32{200, 201, 404, 500, 200, 0}[i%6]
	body := ""
	if methods[i%len(methods)] != "GET" {
		body = fmt.Sprintf(`{"order":%d,"items":[{"sku":"A-%04d","qty":%d}],"note":"deliver to the back door"}`, i, i%1000, i%5+1)
	}
	respBody := fmt.Sprintf(`{"id":%d,"status":"ok","items":[%d,%d,%d],"message":"processed in %dms"}`, i, i%7, i%11, i%13, i%250)
	return schema.HTTP{
		ID:            fmt.Sprintf("h-%08d", i),
		TS:            ts,
		TSEnd:         ts + int64(i%250)*1000 + 150,
		DurationUS:    int64(i%250)*1000 + 150,
		Agent:         fmt.Sprintf("agent-%d", i%3),
		ClientIP:      fmt.Sprintf("10.0.%d.%d", i%4, i%250+1),
		ClientPort:    int32(32768 + i%28000),
		ServerIP:      fmt.Sprintf("10.1.0.%d", i%8+1),
		ServerPort:    []int32{80, 8080, 443}[i%3],
		ClientName:    fmt.Sprintf("frontend-%d", i%4),
		ServerName:    fmt.Sprintf("orders-%d", i%8),
		TCPID:         fmt.Sprintf("t-%08d", i/4),
		Seq:           int32(i % 4),
		Method:        methods[i%len(methods)],
		URI:           uri,
		Host:          fmt.Sprintf("orders-%d.svc.cluster.local", i%8),
		Path:          p,
		Query:         q,
		Version:       "HTTP/1.1",
		Status:        status,
		Reason:        map[int32]string{200: "OK", 201: "Created", 404: "Not Found", 500: "Internal Server Error", 0: ""}[status],
		ReqHeaders:    fmt.Sprintf("Host: orders-%d.svc.cluster.local\r\nUser-Agent: curl/8.5.0\r\nAccept: */*\r\nX-Request-Id: %032x\r\n", i%8, i),
		RespHeaders:   fmt.Sprintf("Content-Type: application/json\r\nContent-Length: %d\r\nDate: Sun, 10 Mar 2024 23:00:00 GMT\r\n", len(respBody)),
		ReqBodyBytes:  int64(len(body)),
		RespBodyBytes: int64(len(respBody)),
		ReqBody:       body,
		RespBody:      respBody,
		ContentType:   "application/json",
		UserAgent:     "curl/8.5.0",
		TLS:           i%3 == 2,
		Complete:      i%10 != 9,
		Error:         []string{"", "", "", "", "", "", "", "", "", "truncated"}[i%10],
		CommunityID:   fmt.Sprintf("1:%028x", i*7919),
	}
}

// testRows is one set of rows of every table spread over two partitions,
// with the edge cases the lake must carry: empty strings and lists, both
// bools, unicode, a body larger than a page, equal timestamps.
type testRows struct {
	http   []schema.HTTP
	tcp    []schema.TCP
	dns    []schema.DNS
	tls    []schema.TLS
	parse  []schema.ParseStatus
	status []schema.CaptureStatus
}

func makeTestRows() testRows {
	var r testRows
	big := strings.Repeat("0123456789abcdef", 300<<10/16) + "-END"
	for i := range 40 {
		ts := hour0 + int64(i%2)*hourUS + int64(i)*1_000_003
		h := httpRow(i, ts)
		switch i {
		case 0:
			h.RespBody = big
			h.RespBodyBytes = int64(len(big))
		case 1:
			h.Path, h.Host, h.Query, h.URI = "/grüße/日本語/🚀", "bücher.example", "q=naïve café", "/grüße/日本語/🚀?q=naïve café"
			h.ReqBody = "emoji 🙂 and NUL-free text"
		case 2:
			h = schema.HTTP{ID: "h-empty", TS: ts} // every string empty, every bool false
		case 3:
			h.TS = hour0 + 5 // same ts as row 4, tie broken by id
			h.ID = "h-tie-b"
		case 4:
			h.TS = hour0 + 5
			h.ID = "h-tie-a"
		case 5:
			// A binary body and header bytes that are not UTF-8; the writer
			// must repair them or DuckDB refuses the whole file.
			h.ReqBody = "\x1f\x8b\x08\x00gzip\xff\xfe"
			h.RespHeaders = "X-Bin: \xc3\x28\r\nX-Nul: a\x00b\r\n"
		}
		r.http = append(r.http, h)
	}
	for i := range 12 {
		ts := hour0 + int64(i%2)*hourUS + int64(i)*2_000_000
		segs := []string{fmt.Sprintf("raw/agent=a1/stream=0/2024/03/10/23/%020d.pcapng.zst", i)}
		if i%3 == 0 {
			segs = append(segs, fmt.Sprintf("raw/agent=a1/stream=0/2024/03/10/23/%020d.pcapng.zst", i+1))
		}
		if i%4 == 1 {
			segs = nil
		}
		r.tcp = append(r.tcp, schema.TCP{
			ID: fmt.Sprintf("t-%04d", i), TS: ts, TSEnd: ts + 5_000_000, DurationUS: 5_000_000,
			Agent: "a1", ClientIP: "10.0.0.1", ClientPort: int32(40000 + i), ServerIP: "fd00::1", ServerPort: 443,
			ClientName: "", ServerName: "api", PacketsC2S: int64(10 + i), PacketsS2C: int64(12 + i),
			BytesC2S: 1 << 40, BytesS2C: int64(i) * 1000, MissingBytes: int64(i % 2), Retrans: 3, OutOfOrder: 1,
			RTTUS: 250, Close: []string{schema.CloseFIN, schema.CloseRST, schema.CloseTimeout, schema.CloseOpen}[i%4],
			SawSYN: i%2 == 0, AppProtocol: "http", HTTPExchanges: int32(i), LimitHits: 0,
			CommunityID: "1:abc=", Segments: segs,
		})
	}
	for i := range 10 {
		ts := hour0 + int64(i%2)*hourUS + int64(i)*3_000_000
		d := schema.DNS{
			ID: fmt.Sprintf("d-%04d", i), TS: ts, Agent: "a1", Transport: "udp", ClientIP: "10.0.0.2", ClientPort: 5353,
			ServerIP: "10.0.0.53", ServerPort: 53, TxID: int32(i * 1000), Query: fmt.Sprintf("svc-%d.例え.jp", i), QType: "A",
			RCode: "NOERROR", Answers: []string{"10.0.0.7", "10.0.0.8"}, LatencyUS: 800, Responded: true,
		}
		if i%3 == 1 {
			d.RCode, d.Answers, d.Responded, d.LatencyUS, d.Error = "", nil, false, 0, "timeout"
		}
		if i%3 == 2 {
			d.QType, d.Answers = "AAAA", []string{"", "fd00::7"}
		}
		if i == 9 {
			d.Answers = []string{"ok.example", "bad\xffname"}
		}
		r.dns = append(r.dns, d)
	}
	for i := range 6 {
		ts := hour0 + int64(i%2)*hourUS + int64(i)*4_000_000
		r.tls = append(r.tls, schema.TLS{
			TS: ts, Agent: "a1", TCPID: fmt.Sprintf("t-%04d", i), ClientIP: "10.0.0.1", ClientPort: int32(40000 + i),
			ServerIP: "10.0.0.9", ServerPort: 443, Version: "TLS 1.3", SNI: []string{"api.example.com", ""}[i%2],
			ALPN: "h2,http/1.1", Cipher: "TLS_AES_128_GCM_SHA256", Decrypted: i%2 == 0,
			KeyStatus: []string{"decrypted", "no-keys"}[i%2],
		})
	}
	for i := range 4 {
		ts := hour0 + int64(i%2)*hourUS + int64(i)
		r.parse = append(r.parse, schema.ParseStatus{
			TS: ts, TSEnd: ts + 20_000_000, ParsedAt: ts + 60_000_000, Agent: "a1", Stream: int32(i % 2), Seq: int64(i),
			Input: fmt.Sprintf("raw/agent=a1/stream=%d/%020d.pcapng.zst", i%2, i), Packets: 1000, Bytes: 1 << 20,
			Decoded: 999, DecodeErrors: 1, Truncated: 0, TCPConns: 12, HTTPExchanges: 40, HTTPErrors: 2,
			DNSQueries: 10, TLSHandshakes: 6, MissingBytes: 7, LimitHits: 0, Gap: i == 3,
			Status: []string{"ok", "ok", "error", "gap"}[i], Error: []string{"", "", "decode: bad header", ""}[i],
			DurationUS: 1234,
		})
	}
	for i := range 4 {
		ts := hour0 + int64(i%2)*hourUS + int64(i)*20_000_000
		r.status = append(r.status, schema.CaptureStatus{
			TS: ts, Agent: "a1", Stream: int32(i % 2), Interface: "eth0", Captured: int64(i) * 100, Filtered: 3,
			Dropped: int64(i % 2), Overflow: 0, SegmentsUploaded: int64(i), BytesUploaded: int64(i) << 20,
			SpoolBytes: 0, Errors: 0,
		})
	}
	return r
}

// addTo adds all rows to w, in the given order of indices per table when
// perm is non-nil (perm(n) returns a permutation of 0..n-1).
func (r testRows) addTo(w *Writer, perm func(n int) []int) {
	ord := func(n int) []int {
		if perm != nil {
			return perm(n)
		}
		o := make([]int, n)
		for i := range o {
			o[i] = i
		}
		return o
	}
	for _, i := range ord(len(r.http)) {
		w.AddHTTP(&r.http[i])
	}
	for _, i := range ord(len(r.tcp)) {
		w.AddTCP(&r.tcp[i])
	}
	for _, i := range ord(len(r.dns)) {
		w.AddDNS(&r.dns[i])
	}
	for _, i := range ord(len(r.tls)) {
		w.TLS.Add(r.tls[i])
	}
	for _, i := range ord(len(r.parse)) {
		w.ParseStatus.Add(r.parse[i])
	}
	for _, i := range ord(len(r.status)) {
		w.CaptureStatus.Add(r.status[i])
	}
}

// mustClose closes w and fails the test on error.
func mustClose(t testing.TB, w *Writer) map[string]Stats {
	t.Helper()
	st, err := w.Close(context.Background())
	if err != nil {
		t.Fatalf("close writer: %v", err)
	}
	return st
}
