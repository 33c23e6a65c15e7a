package http2

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"

	"github.com/flowlake/flowlake/internal/tcp"
)

const (
	c2s = tcp.ClientToServer
	s2c = tcp.ServerToClient
)

// ev is one StreamHandler call of a test: data, a gap, or the close.
type ev struct {
	dir   tcp.Dir
	data  []byte
	gap   int
	close bool
}

// builder writes real frames with golang.org/x/net/http2's Framer and
// hpack Encoder, one event per write.
type builder struct {
	t   testing.TB
	buf [2]bytes.Buffer
	fr  [2]*http2.Framer
	hb  [2]bytes.Buffer
	enc [2]*hpack.Encoder
	evs []ev
}

func newBuilder(t testing.TB) *builder {
	b := &builder{t: t}
	for d := range 2 {
		b.fr[d] = http2.NewFramer(&b.buf[d], nil)
		b.fr[d].AllowIllegalWrites = true
		b.enc[d] = hpack.NewEncoder(&b.hb[d])
	}
	return b
}

func (b *builder) flush(d tcp.Dir) {
	if b.buf[d].Len() > 0 {
		b.evs = append(b.evs, ev{dir: d, data: bytes.Clone(b.buf[d].Bytes())})
		b.buf[d].Reset()
	}
}

func (b *builder) check(err error) {
	if err != nil {
		b.t.Fatal(err)
	}
}

// raw adds bytes as they are.
func (b *builder) raw(d tcp.Dir, s string) *builder {
	b.evs = append(b.evs, ev{dir: d, data: []byte(s)})
	return b
}

func (b *builder) gap(d tcp.Dir, n int) *builder {
	b.evs = append(b.evs, ev{dir: d, gap: n})
	return b
}

// start writes the client preface and both SETTINGS frames.
func (b *builder) start(settings ...http2.Setting) *builder {
	b.buf[c2s].WriteString(Preface)
	b.check(b.fr[c2s].WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1 << 20}))
	b.flush(c2s)
	b.check(b.fr[s2c].WriteSettings(append([]http2.Setting{{ID: http2.SettingMaxConcurrentStreams, Val: 100}}, settings...)...))
	b.flush(s2c)
	b.check(b.fr[c2s].WriteSettingsAck())
	b.flush(c2s)
	return b
}

// block encodes "name: value" pairs.
func (b *builder) block(d tcp.Dir, kv ...string) []byte {
	b.hb[d].Reset()
	for i := 0; i+1 < len(kv); i += 2 {
		b.check(b.enc[d].WriteField(hpack.HeaderField{Name: kv[i], Value: kv[i+1]}))
	}
	return bytes.Clone(b.hb[d].Bytes())
}

func (b *builder) headers(d tcp.Dir, sid uint32, end bool, kv ...string) *builder {
	b.check(b.fr[d].WriteHeaders(http2.HeadersFrameParam{StreamID: sid, BlockFragment: b.block(d, kv...), EndStream: end, EndHeaders: true}))
	b.flush(d)
	return b
}

func (b *builder) get(sid uint32, path string) *builder {
	return b.headers(c2s, sid, true, ":method", "GET", ":scheme", "https", ":authority", "example.com", ":path", path, "user-agent", "test/1")
}

func (b *builder) status(sid uint32, code int, end bool, kv ...string) *builder {
	return b.headers(s2c, sid, end, append([]string{":status", fmt.Sprint(code)}, kv...)...)
}

func (b *builder) data(d tcp.Dir, sid uint32, end bool, s string) *builder {
	b.check(b.fr[d].WriteData(sid, end, []byte(s)))
	b.flush(d)
	return b
}

func (b *builder) frame(d tcp.Dir, f func(*http2.Framer) error) *builder {
	b.check(f(b.fr[d]))
	b.flush(d)
	return b
}

func (b *builder) events() []ev { return append(b.evs, ev{close: true}) }

// apply makes one call; ts is derived from the event's index.
func apply(p *Parser, e ev, ts int64) {
	switch {
	case e.close:
		p.Close(ts)
	case e.gap > 0:
		p.Gap(e.dir, ts, e.gap)
	default:
		p.Data(e.dir, ts, e.data)
	}
}

func stamp(i int) int64 { return int64(i+1) * 1000 }

// run parses the events in one pass.
func run(t testing.TB, cfg Config, evs []ev) []*Exchange {
	t.Helper()
	var out []*Exchange
	p := NewParser(cfg, func(x *Exchange) { out = append(out, x) })
	for i, e := range evs {
		apply(p, e, stamp(i))
	}
	return out
}

// runRestored parses the events, marshalling and restoring the parser
// after off bytes (of data and gaps).
func runRestored(t testing.TB, cfg Config, evs []ev, off int) []*Exchange {
	t.Helper()
	var out []*Exchange
	emit := func(x *Exchange) { out = append(out, x) }
	p := NewParser(cfg, emit)
	cut := func() {
		st, err := p.MarshalState()
		if err != nil {
			t.Fatal(err)
		}
		if p, err = Restore(cfg, st, emit); err != nil {
			t.Fatal(err)
		}
	}
	n := 0
	done := false
	for i, e := range evs {
		ts := stamp(i)
		size := len(e.data) + e.gap
		if !done && n+size >= off {
			k := off - n
			switch {
			case e.close || e.gap > 0 || k == 0:
				cut()
				apply(p, e, ts)
			default:
				p.Data(e.dir, ts, e.data[:k])
				cut()
				if k < len(e.data) {
					p.Data(e.dir, ts, e.data[k:])
				}
			}
			done = true
			n += size
			continue
		}
		n += size
		apply(p, e, ts)
	}
	return out
}

func total(evs []ev) int {
	n := 0
	for _, e := range evs {
		n += len(e.data) + e.gap
	}
	return n
}

// bySeq indexes exchanges by Seq, checking each is reported once.
func bySeq(t *testing.T, xs []*Exchange) map[int]*Exchange {
	t.Helper()
	m := map[int]*Exchange{}
	for _, x := range xs {
		if m[x.Seq] != nil {
			t.Fatalf("seq %d reported twice", x.Seq)
		}
		m[x.Seq] = x
	}
	return m
}

func line(x *Exchange) string {
	s := fmt.Sprintf("%d %s %s%s %d", x.StreamID, x.Method, x.Authority, x.Path, x.Status)
	if x.Complete {
		s += " complete"
	}
	if x.Error != "" {
		s += " error=" + x.Error
	}
	return s
}

func lines(xs []*Exchange) string {
	var l []string
	for _, x := range xs {
		l = append(l, line(x))
	}
	return strings.Join(l, "\n")
}

func gz(s string) string {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	w.Write([]byte(s))
	w.Close()
	return b.String()
}

// scenarios are sessions that exercise the protocol; each is also split
// at every byte across MarshalState/Restore.
func scenarios(t testing.TB) map[string][]ev {
	m := map[string][]ev{}

	// Concurrent streams, interleaved: a GET, a POST with a body, a 404,
	// a gzip response in several DATA frames, a gRPC call with trailers.
	b := newBuilder(t).start()
	b.get(1, "/index.html?x=1")
	b.headers(c2s, 3, false, ":method", "POST", ":scheme", "https", ":authority", "example.com", ":path", "/api/items",
		"content-type", "application/json", "content-length", "17")
	b.get(5, "/missing")
	b.data(c2s, 3, false, `{"name":`)
	b.status(1, 200, false, "content-type", "text/html", "server", "test")
	b.data(c2s, 3, true, `"widget"}`)
	b.status(5, 404, true)
	b.frame(c2s, func(f *http2.Framer) error { return f.WriteWindowUpdate(0, 1<<16) })
	b.data(s2c, 1, false, "<html>")
	b.frame(s2c, func(f *http2.Framer) error { return f.WritePing(false, [8]byte{1, 2, 3}) })
	b.frame(c2s, func(f *http2.Framer) error { return f.WritePing(true, [8]byte{1, 2, 3}) })
	b.status(3, 201, false, "content-type", "application/json", "content-encoding", "gzip")
	zipped := gz(`{"id":7,"name":"widget"}`)
	b.data(s2c, 3, false, zipped[:10])
	b.data(s2c, 1, true, "</html>")
	b.data(s2c, 3, true, zipped[10:])
	b.headers(c2s, 7, false, ":method", "POST", ":scheme", "http", ":authority", "grpc.example:50051", ":path", "/helloworld.Greeter/SayHello",
		"content-type", "application/grpc", "te", "trailers", "grpc-timeout", "1S")
	b.data(c2s, 7, true, "\x00\x00\x00\x00\x07\n\x05world")
	b.status(7, 200, false, "content-type", "application/grpc")
	b.data(s2c, 7, false, "\x00\x00\x00\x00\r\n\x0bHello world")
	b.headers(s2c, 7, true, "grpc-status", "0", "grpc-message", "")
	b.frame(s2c, func(f *http2.Framer) error { return f.WriteGoAway(7, http2.ErrCodeNo, nil) })
	m["concurrent"] = b.events()

	// Padding, priority, CONTINUATION, server push, RST_STREAM, 100
	// continue, a refused stream after GOAWAY, HPACK table size changes.
	b = newBuilder(t).start(http2.Setting{ID: http2.SettingHeaderTableSize, Val: 8192})
	b.enc[c2s].SetMaxDynamicTableSizeLimit(8192)
	b.enc[c2s].SetMaxDynamicTableSize(8192)
	blk := b.block(c2s, ":method", "GET", ":scheme", "https", ":authority", "example.com", ":path", "/padded",
		"x-long", strings.Repeat("a", 300), "cookie", "k=v")
	b.frame(c2s, func(f *http2.Framer) error {
		return f.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk[:20], EndStream: true, PadLength: 7,
			Priority: http2.PriorityParam{StreamDep: 0, Weight: 200}})
	})
	b.frame(c2s, func(f *http2.Framer) error { return f.WriteContinuation(1, false, blk[20:100]) })
	b.frame(c2s, func(f *http2.Framer) error { return f.WriteContinuation(1, true, blk[100:]) })
	b.frame(c2s, func(f *http2.Framer) error { return f.WritePriority(3, http2.PriorityParam{StreamDep: 1, Weight: 3}) })
	b.frame(s2c, func(f *http2.Framer) error {
		return f.WritePushPromise(http2.PushPromiseParam{StreamID: 1, PromiseID: 2, EndHeaders: true,
			BlockFragment: b.block(s2c, ":method", "GET", ":scheme", "https", ":authority", "example.com", ":path", "/style.css")})
	})
	b.status(1, 200, false, "content-type", "text/plain")
	b.frame(s2c, func(f *http2.Framer) error {
		return f.WriteDataPadded(1, false, []byte("padded body"), make([]byte, 9))
	})
	b.status(2, 200, false, "content-type", "text/css")
	b.data(s2c, 2, true, "body{}")
	b.data(s2c, 1, true, "")
	b.headers(c2s, 3, false, ":method", "PUT", ":scheme", "https", ":authority", "example.com", ":path", "/upload", "expect", "100-continue")
	b.status(3, 100, false)
	b.data(c2s, 3, false, strings.Repeat("u", 1000))
	b.frame(c2s, func(f *http2.Framer) error { return f.WriteRSTStream(3, http2.ErrCodeCancel) })
	// the encoder shrinks its table: entries are evicted
	b.enc[c2s].SetMaxDynamicTableSize(100)
	b.get(5, "/after-shrink")
	b.enc[c2s].SetMaxDynamicTableSize(4096)
	b.get(7, "/refused")
	b.status(5, 200, true, "x-done", "1")
	b.frame(s2c, func(f *http2.Framer) error { return f.WriteGoAway(5, http2.ErrCodeNo, []byte("bye")) })
	b.frame(c2s, func(f *http2.Framer) error { return f.WriteRSTStream(7, http2.ErrCodeCancel) })
	m["features"] = b.events()

	// An open stream at the end of the capture.
	b = newBuilder(t).start()
	b.get(1, "/slow")
	b.status(1, 200, false)
	b.data(s2c, 1, false, "partial")
	m["truncated"] = b.events()
	return m
}

func TestScenarios(t *testing.T) {
	sc := scenarios(t)
	want := map[string]string{
		"concurrent": "1 GET example.com/index.html?x=1 200 complete\n" +
			"3 POST example.com/api/items 201 complete\n" +
			"5 GET example.com/missing 404 complete\n" +
			"7 POST grpc.example:50051/helloworld.Greeter/SayHello 200 complete",
		"features": "1 GET example.com/padded 200 complete\n" +
			"2 GET example.com/style.css 200 complete\n" +
			"3 PUT example.com/upload 0 error=stream reset by client: CANCEL\n" +
			"5 GET example.com/after-shrink 200 complete\n" +
			"7 GET example.com/refused 0 error=stream refused by GOAWAY",
		"truncated": "1 GET example.com/slow 200 error=stream not ended",
	}
	for name, evs := range sc {
		t.Run(name, func(t *testing.T) {
			xs := run(t, Config{}, evs)
			m := bySeq(t, xs)
			var ordered []*Exchange
			for i := range len(m) {
				if m[i] == nil {
					t.Fatalf("seq %d missing", i)
				}
				ordered = append(ordered, m[i])
			}
			if got := lines(ordered); got != want[name] {
				t.Fatalf("got\n%s\nwant\n%s", got, want[name])
			}
			switch name {
			case "concurrent":
				post := m[1]
				if post.ReqBodyBytes != 17 || string(post.ReqBody) != `{"name":"widget"}` || post.ReqContentType != "application/json" {
					t.Errorf("POST body %d %q %q", post.ReqBodyBytes, post.ReqBody, post.ReqContentType)
				}
				if string(post.RespBody) != `{"id":7,"name":"widget"}` || post.RespBodyBytes != int64(len(gz(`{"id":7,"name":"widget"}`))) {
					t.Errorf("gzip response %d %q", post.RespBodyBytes, post.RespBody)
				}
				if g := m[0]; string(g.RespBody) != "<html></html>" || g.RespContentType != "text/html" ||
					!reflect.DeepEqual(g.ReqHeaders, []Header{{Name: "user-agent", Value: "test/1"}}) ||
					g.ReqStart == 0 || g.RespStart <= g.ReqStart || g.RespEnd <= g.RespStart {
					t.Errorf("GET %+v", g)
				}
				rpc := m[3]
				if rpc.GRPCStatus != "0" || rpc.RespContentType != "application/grpc" || rpc.HTTP1().Reason != "grpc-status 0" ||
					rpc.RespHeaders[len(rpc.RespHeaders)-2].Name != "grpc-status" {
					t.Errorf("gRPC %+v", rpc)
				}
				if h := rpc.HTTP1(); h.Version != "HTTP/2" || h.URI != "/helloworld.Greeter/SayHello" || h.Host != "grpc.example:50051" {
					t.Errorf("HTTP1 form %+v", h)
				}
			case "features":
				if x := m[0]; string(x.RespBody) != "padded body" || len(x.ReqHeaders) != 2 || len(x.ReqHeaders[0].Value) != 300 {
					t.Errorf("padded %+v", x)
				}
				if x := m[1]; !x.Pushed || string(x.RespBody) != "body{}" {
					t.Errorf("pushed %+v", x)
				}
				if x := m[2]; !reflect.DeepEqual(x.Interim, []int{100}) || x.ReqBodyBytes != 1000 {
					t.Errorf("reset %+v", x)
				}
			case "truncated":
				if x := m[0]; x.RespBodyBytes != 7 || x.Complete {
					t.Errorf("truncated %+v", x)
				}
			}
		})
	}
}

// Cutting the byte streams anywhere and carrying the parser over with
// MarshalState/Restore gives the same exchanges as one pass.
func TestSplitEverywhere(t *testing.T) {
	for name, evs := range scenarios(t) {
		t.Run(name, func(t *testing.T) {
			want := run(t, Config{}, evs)
			for off := 0; off <= total(evs); off++ {
				if got := runRestored(t, Config{}, evs, off); !reflect.DeepEqual(got, want) {
					t.Fatalf("restored after %d bytes:\n%s\nwant\n%s", off, lines(got), lines(want))
				}
			}
		})
	}
}

// Delivering the bytes in small pieces gives the same exchanges.
func TestPieces(t *testing.T) {
	for name, evs := range scenarios(t) {
		want := run(t, Config{}, evs)
		for _, k := range []int{1, 2, 7, 100} {
			var cut []ev
			for _, e := range evs {
				if len(e.data) == 0 {
					cut = append(cut, e)
					continue
				}
				for b := e.data; len(b) > 0; b = b[min(k, len(b)):] {
					cut = append(cut, ev{dir: e.dir, data: b[:min(k, len(b))]})
				}
			}
			got := run(t, Config{}, cut)
			// timestamps differ with the number of calls
			if lines(got) != lines(want) {
				t.Errorf("%s in pieces of %d:\n%s\nwant\n%s", name, k, lines(got), lines(want))
			}
		}
	}
}

func TestBadInput(t *testing.T) {
	oneGet := func() *builder {
		b := newBuilder(t).start()
		return b.get(1, "/a")
	}
	huge := newBuilder(t).start()
	huge.headers(c2s, 1, true, ":method", "GET", ":scheme", "https", ":authority", "x", ":path", "/", "x-big", strings.Repeat("z", 3000))
	cases := []struct {
		name string
		cfg  Config
		evs  []ev
		want string // lines of the exchanges
	}{
		{"garbage after preface", Config{}, newBuilder(t).raw(c2s, Preface+"\xff\xff\xff\xffgarbage garbage").events(),
			"0   0 error=bad connection preface: no frame at the start of c2s"},
		{"not a preface", Config{}, newBuilder(t).raw(c2s, "PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n").events(),
			"0   0 error=bad connection preface"},
		{"truncated frame", Config{}, oneGet().raw(s2c, "\x00\x00\x10\x01\x04\x00\x00\x00\x01\x88").events(),
			"1 GET example.com/a 0 error=stream not ended"},
		{"settings of bad length", Config{}, oneGet().raw(s2c, "\x00\x00\x05\x04\x00\x00\x00\x00\x00abcde").events(),
			"1 GET example.com/a 0 error=malformed frame: SETTINGS of length 5 on stream 0"},
		{"data on stream 0", Config{}, oneGet().raw(s2c, "\x00\x00\x01\x00\x00\x00\x00\x00\x00x").events(),
			"1 GET example.com/a 0 error=malformed frame: DATA on stream 0"},
		{"frame inside a header block", Config{}, newBuilder(t).start().frame(c2s, func(f *http2.Framer) error {
			return f.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: []byte{0x82}})
		}).frame(c2s, func(f *http2.Framer) error { return f.WritePing(false, [8]byte{}) }).events(),
			"0   0 error=malformed frame: PING inside a header block"},
		{"hpack error", Config{}, newBuilder(t).start().frame(c2s, func(f *http2.Framer) error {
			// index 70 is not in the (empty) dynamic table
			return f.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: []byte{0x82, 0xc6}, EndHeaders: true})
		}).events(), "0   0 error=hpack decoding error: decoding error: invalid indexed representation index 70"},
		{"oversize header block", Config{MaxHeaderBlock: 1024}, huge.events(), "0   0 error=header block too large"},
		{"oversize header list", Config{MaxHeaderList: 1024}, huge.status(1, 200, true).events(),
			"1 GET x/ 200 error=header list too large"},
		{"gap outside DATA", Config{}, oneGet().gap(s2c, 20).status(1, 200, true).events(),
			"1 GET example.com/a 0 error=gap in http2 connection: 20 bytes missing s2c"},
		{"gap inside DATA", Config{}, oneGet().status(1, 200, false).raw(s2c, "\x00\x00\x0a\x00\x01\x00\x00\x00\x01abc").gap(s2c, 4).raw(s2c, "xyz").events(),
			"1 GET example.com/a 200 error=gap in body"},
		{"too many streams", Config{MaxStreams: 2}, oneGet().get(3, "/b").get(5, "/c").status(5, 200, true).events(),
			"1 GET example.com/a 0 error=too many open streams\n5 GET example.com/c 200 complete\n3 GET example.com/b 0 error=stream not ended"},
		{"server reset", Config{}, oneGet().frame(s2c, func(f *http2.Framer) error { return f.WriteRSTStream(1, http2.ErrCodeRefusedStream) }).events(),
			"1 GET example.com/a 0 error=stream reset by server: REFUSED_STREAM"},
		{"goaway with error", Config{}, oneGet().frame(s2c, func(f *http2.Framer) error { return f.WriteGoAway(1, http2.ErrCodeEnhanceYourCalm, nil) }).events(),
			"1 GET example.com/a 0 error=stream not ended after GOAWAY: ENHANCE_YOUR_CALM"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			xs := run(t, c.cfg, c.evs)
			if got := lines(xs); got != c.want {
				t.Fatalf("got\n%s\nwant\n%s", got, c.want)
			}
			for off := 0; off <= total(c.evs); off++ {
				if got := runRestored(t, c.cfg, c.evs, off); !reflect.DeepEqual(got, xs) {
					t.Fatalf("restored after %d bytes:\n%s\nwant\n%s", off, lines(got), lines(xs))
				}
			}
		})
	}
}

// A capture that starts mid-connection is parsed from a frame boundary;
// a header block that needs table entries sent earlier fails cleanly.
func TestMidConnection(t *testing.T) {
	b := newBuilder(t).start()
	b.get(1, "/first")
	b.status(1, 200, true)
	b.get(3, "/second") // indexes entries of the first request
	b.status(3, 200, true)
	evs := b.events()
	skip := len(Preface) + 9 + 6 // preface and the client's SETTINGS
	var mid []ev
	for _, e := range evs {
		if e.dir == c2s && len(e.data) > 0 && skip > 0 {
			k := min(skip, len(e.data))
			skip -= k
			if k == len(e.data) {
				continue
			}
			e.data = e.data[k:]
		}
		mid = append(mid, e)
	}
	got := lines(run(t, Config{}, mid))
	if got != "1 GET example.com/first 200 complete\n3 GET example.com/second 200 complete" {
		t.Fatalf("from a frame boundary:\n%s", got)
	}
	// Starting after the first exchange: the second request refers to
	// dynamic table entries the parser never saw.
	got = lines(run(t, Config{}, evs[5:]))
	if !strings.Contains(got, "error=hpack decoding error") && !strings.Contains(got, "error=bad connection preface") {
		t.Fatalf("late start:\n%s", got)
	}
}

func TestRestoreRefusesBadState(t *testing.T) {
	if _, err := Restore(Config{}, []byte("junk"), nil); err == nil {
		t.Fatal("junk accepted")
	}
	p := NewParser(Config{}, nil)
	for _, e := range scenarios(t)["truncated"][:4] {
		apply(p, e, 1)
	}
	st, err := p.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Restore(Config{}, st, nil); err != nil {
		t.Fatal(err)
	}
	p.st.D[0].Tab.Size++
	st, _ = p.MarshalState()
	if _, err := Restore(Config{}, st, nil); err == nil {
		t.Fatal("inconsistent HPACK table accepted")
	}
}
