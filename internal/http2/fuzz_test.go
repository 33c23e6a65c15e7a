package http2

import (
	"encoding/binary"
	"hash/fnv"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/flowlake/flowlake/internal/tcp"
)

// A fuzz input is (c2s bytes, s2c bytes, plan), as in internal/http1: the
// plan is a sequence of little-endian uint16 entries; bit 15 selects
// ServerToClient, bit 14 makes the entry a Gap of the low 14 bits' length,
// otherwise the low 14 bits are the length of the next Data call from that
// direction's bytes. Bytes left when the plan ends are delivered c2s
// first, then s2c, and the connection is closed.
const (
	planS2C  = 1 << 15
	planGap  = 1 << 14
	planMask = planGap - 1
)

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

func schedule(c2sData, s2cData, plan []byte) []ev {
	streams := [2][]byte{c2sData, s2cData}
	var evs []ev
	for ; len(plan) >= 2; plan = plan[2:] {
		v := binary.LittleEndian.Uint16(plan)
		dir := tcp.Dir(v >> 15)
		n := int(v & planMask)
		if v&planGap != 0 {
			if n > 0 {
				evs = append(evs, ev{dir: dir, gap: n})
			}
			continue
		}
		n = min(n, len(streams[dir]))
		if n == 0 {
			continue
		}
		evs = append(evs, ev{dir: dir, data: streams[dir][:n]})
		streams[dir] = streams[dir][n:]
	}
	for d, rest := range streams {
		if len(rest) > 0 {
			evs = append(evs, ev{dir: tcp.Dir(d), data: rest})
		}
	}
	return append(evs, ev{close: true})
}

// fuzzConfigs are the default bounds and tight ones that bite on small
// inputs.
var fuzzConfigs = []Config{
	{},
	{BodyPreview: 16, MaxRawBody: 64, MaxHeaderBlock: 1024, MaxHeaderList: 256, MaxStreams: 2},
}

var knownErrors = []string{ErrPreface, ErrFrame, ErrHPACK, ErrHeaderBlockTooLarge, ErrGap, ErrHeaderListTooLarge,
	ErrTooManyStreams, ErrResetByClient, ErrResetByServer, ErrRefused, ErrTruncated, ErrGapBody}

// runChecked parses with the parser's memory bounds checked after every
// call and the exchanges checked at the end.
func runChecked(t *testing.T, cfg Config, evs []ev) []*Exchange {
	t.Helper()
	var out []*Exchange
	p := NewParser(cfg, func(x *Exchange) { out = append(out, x) })
	r := p.cfg
	for i, e := range evs {
		apply(p, e, stamp(i))
		if len(p.st.Streams) > r.MaxStreams || len(p.idx) != len(p.st.Streams) {
			t.Fatalf("event %d: %d streams (%d indexed), bound %d", i, len(p.st.Streams), len(p.idx), r.MaxStreams)
		}
		for d := range p.st.D {
			ds := &p.st.D[d]
			if len(ds.Block) > r.MaxHeaderBlock || len(ds.Payload) > max(r.MaxHeaderBlock, maxControl) {
				t.Fatalf("event %d: dir %d buffers %d+%d bytes", i, d, len(ds.Block), len(ds.Payload))
			}
			if ds.Tab.Size > maxTableSize {
				t.Fatalf("event %d: HPACK table of %d bytes", i, ds.Tab.Size)
			}
		}
	}
	if len(p.st.Streams) != 0 {
		t.Fatalf("%d streams not reported at Close", len(p.st.Streams))
	}
	seqs := map[int]bool{}
	for _, x := range out {
		if seqs[x.Seq] {
			t.Fatalf("seq %d reported twice", x.Seq)
		}
		seqs[x.Seq] = true
		if len(x.ReqBody) > r.BodyPreview || len(x.RespBody) > r.BodyPreview {
			t.Fatalf("exchange %d: previews of %d and %d bytes", x.Seq, len(x.ReqBody), len(x.RespBody))
		}
		if x.Complete && (x.Method == "" && !x.Pushed || x.Status < 200 || x.Error != "") {
			t.Fatalf("exchange %d complete without request or final response: %s", x.Seq, line(x))
		}
		known := x.Error == ""
		for _, k := range knownErrors {
			known = known || strings.HasPrefix(x.Error, k)
		}
		if !known {
			t.Fatalf("exchange %d: unknown error %q", x.Seq, x.Error)
		}
		if x.ReqBodyBytes < 0 || x.RespBodyBytes < 0 {
			t.Fatalf("exchange %d: negative body length", x.Seq)
		}
	}
	return out
}

// inPieces cuts every data event into pieces of k bytes (same timestamp).
func inPieces(t *testing.T, cfg Config, evs []ev, k int) []*Exchange {
	var out []*Exchange
	p := NewParser(cfg, func(x *Exchange) { out = append(out, x) })
	for i, e := range evs {
		if len(e.data) == 0 {
			apply(p, e, stamp(i))
			continue
		}
		for b := e.data; len(b) > 0; b = b[min(k, len(b)):] {
			p.Data(e.dir, stamp(i), b[:min(k, len(b))])
		}
	}
	return out
}

func FuzzParser(f *testing.F) {
	for _, evs := range scenarios(f) {
		a, b, plan := encodePlan(evs)
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
		for _, cfg := range fuzzConfigs {
			want := runChecked(t, cfg, evs)
			chunk := 1 + int(h%5)
			if got := inPieces(t, cfg, evs, chunk); !reflect.DeepEqual(got, want) {
				t.Fatalf("pieces of %d bytes differ from one pass:\n%s\nwant\n%s", chunk, lines(got), lines(want))
			}
			off := int(h % uint64(total(evs)+1))
			if got := runRestored(t, cfg, evs, off); !reflect.DeepEqual(got, want) {
				t.Fatalf("restore after %d bytes differs from one pass:\n%s\nwant\n%s", off, lines(got), lines(want))
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
	ls := strings.Split(strings.TrimSpace(string(raw)), "\n")
	if len(ls) != 4 || ls[0] != "go test fuzz v1" {
		t.Fatalf("%s: not a FuzzParser seed", path)
	}
	var vals [3][]byte
	for i, l := range ls[1:] {
		s, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(l, "[]byte("), ")"))
		if err != nil {
			t.Fatalf("%s line %d: %v", path, i+2, err)
		}
		vals[i] = []byte(s)
	}
	return vals[0], vals[1], vals[2]
}

// TestCaptureSeeds replays the connection of ark-http2-nghttp2.pcap (see
// testdata/README.md) in capture order: a GET of / whose 18 KB header
// block spans a HEADERS and CONTINUATION frames (tshark 4.0 cannot
// reassemble it, see the capture's truth file), and the stylesheet the
// server pushed, both answered 200.
func TestCaptureSeeds(t *testing.T) {
	c2sData, s2cData, plan := readSeed(t, filepath.Join("testdata", "fuzz", "FuzzParser", "pcap-ark-http2-nghttp2-00"))
	evs := schedule(c2sData, s2cData, plan)
	xs := runChecked(t, Config{}, evs)
	m := bySeq(t, xs)
	if len(m) != 2 {
		t.Fatalf("%d exchanges:\n%s", len(m), lines(xs))
	}
	get, push := m[0], m[1]
	if get.Method != "GET" || get.Authority != "nghttp2.org" || get.Path != "/" || get.Status != 200 || !get.Complete || get.StreamID != 13 {
		t.Errorf("GET: %s", line(get))
	}
	cont := 0
	for _, h := range get.ReqHeaders {
		if strings.HasPrefix(h.Name, "continuation-test-") {
			cont++
		}
	}
	if cont != 6 {
		t.Errorf("GET has %d continuation-test headers, want 6 (arkime's expected output)", cont)
	}
	if !push.Pushed || push.Method != "GET" || push.Path != "/stylesheets/screen.css" || push.Status != 200 || !push.Complete || push.StreamID != 2 {
		t.Errorf("push: %s", line(push))
	}
	if get.RespBodyBytes == 0 || push.RespBodyBytes == 0 {
		t.Errorf("bodies %d and %d bytes", get.RespBodyBytes, push.RespBodyBytes)
	}
	// cut everywhere with a stride (the connection is 65 KB)
	for off := 0; off <= total(evs); off += 97 {
		if got := runRestored(t, Config{}, evs, off); !reflect.DeepEqual(got, xs) {
			t.Fatalf("restored after %d bytes:\n%s\nwant\n%s", off, lines(got), lines(xs))
		}
	}
}
