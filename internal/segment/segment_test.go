package segment

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/klauspost/compress/zstd"

	"github.com/flowlake/flowlake/internal/capture"
	"github.com/flowlake/flowlake/internal/keys"
	"github.com/flowlake/flowlake/internal/testcap"
)

// pkt is one packet as a test sees it.
type pkt struct {
	ts   int64
	link layers.LinkType
	data []byte
	wire int
}

func (p pkt) String() string {
	return fmt.Sprintf("{ts %d link %d len %d wire %d}", p.ts, p.link, len(p.data), p.wire)
}

func equalPkts(t *testing.T, what string, got, want []pkt) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d packets, want %d", what, len(got), len(want))
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.ts != w.ts || g.link != w.link || g.wire != w.wire || !bytes.Equal(g.data, w.data) {
			t.Fatalf("%s: packet %d is %v, want %v", what, i, g, w)
		}
	}
}

// synth returns n deterministic packets: nanosecond timestamps that mostly
// advance but sometimes step back, three link types, sizes from 0 to 1600
// bytes, and some snapped packets (wire length above captured length).
func synth(n int, seed uint64) []pkt {
	r := rand.New(rand.NewPCG(seed, 42))
	links := []layers.LinkType{layers.LinkTypeEthernet, layers.LinkTypeRaw, layers.LinkTypeLinuxSLL}
	ts := int64(1_700_000_000_123_456_789)
	out := make([]pkt, n)
	for i := range out {
		ts += r.Int64N(3_000_000) - 200_000 // occasionally backwards
		data := make([]byte, r.IntN(1601))
		for j := range data {
			data[j] = byte(r.Uint32())
		}
		wire := len(data)
		if r.IntN(5) == 0 {
			wire += r.IntN(9000)
		}
		out[i] = pkt{ts: ts, link: links[r.IntN(len(links))], data: data, wire: wire}
	}
	return out
}

func addAll(t testing.TB, w *Writer, ps []pkt) {
	t.Helper()
	for i, p := range ps {
		if err := w.Add(p.ts, p.link, p.data, p.wire); err != nil {
			t.Fatalf("add packet %d: %v", i, err)
		}
	}
}

func build(t testing.TB, agent string, stream int, seq uint64, source string, ps []pkt) ([]byte, Meta) {
	t.Helper()
	w := NewWriter(agent, stream, seq, source)
	addAll(t, w, ps)
	data, m, err := w.Finish()
	if err != nil {
		t.Fatalf("finish: %v", err)
	}
	return data, m
}

// decode reads every packet of a segment with internal/capture.
func decode(t testing.TB, seg []byte) []pkt {
	t.Helper()
	r, err := capture.NewReader(bytes.NewReader(seg))
	if err != nil {
		t.Fatalf("capture reader: %v", err)
	}
	defer r.Close()
	if r.Format != capture.FormatPcapNG || r.Compression != "zstd" {
		t.Fatalf("segment read as %s/%s, want pcapng/zstd", r.Format, r.Compression)
	}
	var out []pkt
	for {
		data, ts, link, wire, err := r.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatalf("packet %d: %v", len(out), err)
		}
		out = append(out, pkt{ts: ts, link: link, data: bytes.Clone(data), wire: wire})
	}
}

// readCaptures returns the packets of shared captures read as one stream.
func readCaptures(t testing.TB, names ...string) []pkt {
	t.Helper()
	paths := make([]string, len(names))
	for i, n := range names {
		paths[i] = testcap.Path(t, n)
	}
	src := capture.Open(paths)
	defer src.Close()
	var out []pkt
	var p capture.Packet
	for {
		err := src.Next(&p)
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, pkt{ts: p.TS, link: p.Link, data: bytes.Clone(p.Data), wire: p.WireLen})
	}
	for _, r := range src.Results() {
		if r.Err != nil {
			t.Fatalf("read %s: %v", r.Name, r.Err)
		}
	}
	return out
}

func metaOf(ps []pkt) (first, last, size int64, links []int) {
	first, last = ps[0].ts, ps[0].ts
	for _, p := range ps {
		first, last = min(first, p.ts), max(last, p.ts)
		size += int64(len(p.data))
		found := false
		for _, l := range links {
			found = found || l == int(p.link)
		}
		if !found {
			links = append(links, int(p.link))
		}
	}
	return first, last, size, links
}

func TestRoundTripSynthetic(t *testing.T) {
	ps := synth(3000, 1)
	ps[0].data = nil // an empty packet survives too
	ps[0].wire = 0
	ps[1].ts = ps[0].ts - 1000 // the earliest packet is not the first
	data, m := build(t, "probe-1", 7, 42, "afpacket:eth0", ps)

	first, last, size, links := metaOf(ps)
	want := Meta{Version: 1, Agent: "probe-1", Stream: 7, Seq: 42, FirstTS: first, LastTS: last,
		Packets: int64(len(ps)), Bytes: size, LinkTypes: links, Source: "afpacket:eth0"}
	if !reflect.DeepEqual(m, want) {
		t.Errorf("Finish meta\n got %+v\nwant %+v", m, want)
	}
	if first == ps[0].ts || len(links) != 3 {
		t.Fatalf("test data should step back in time and use 3 link types (first %d, links %v)", first, links)
	}
	got, err := ReadMeta(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ReadMeta\n got %+v\nwant %+v", got, want)
	}
	equalPkts(t, "decoded", decode(t, data), ps)
	if Key(m) != keys.Segment(keys.Stream{Agent: "probe-1", Stream: 7}, 42, time.Unix(0, first)) {
		t.Errorf("Key = %s", Key(m))
	}
}

// Real captures of four link types through one Writer come back exactly.
func TestRoundTripRealCaptures(t *testing.T) {
	ps := readCaptures(t, "ppp-sll.pcap", "gop-test_loopback.pcap", "ndpi-http_ua_splitted_in_two_pkts.pcapng", "ppp-one_ipv6_http_stream.pcap")
	data, m := build(t, "a", 0, 0, "file:mixed", ps)
	equalPkts(t, "decoded", decode(t, data), ps)
	_, _, _, links := metaOf(ps)
	if len(m.LinkTypes) != 4 || !reflect.DeepEqual(m.LinkTypes, links) {
		t.Errorf("link types %v, want 4: %v", m.LinkTypes, links)
	}
}

func TestSnappedAndDamagedLengths(t *testing.T) {
	w := NewWriter("a", 0, 0, "")
	if err := w.Add(5, layers.LinkTypeEthernet, []byte("abcdef"), 1500); err != nil {
		t.Fatal(err)
	}
	if err := w.Add(6, layers.LinkTypeEthernet, []byte("abcdef"), 3); err != nil { // damaged record
		t.Fatal(err)
	}
	data, _, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	got := decode(t, data)
	if got[0].wire != 1500 || got[1].wire != 6 {
		t.Errorf("wire lengths %d, %d; want 1500, 6", got[0].wire, got[1].wire)
	}
}

func TestWriterRejects(t *testing.T) {
	eth := layers.LinkTypeEthernet
	for _, tc := range []struct {
		name   string
		agent  string
		stream int
		ts     int64
		size   int
		want   string
	}{
		{"bad agent", "a/b", 0, 1, 10, `agent id "a/b"`},
		{"empty agent", "", 0, 1, 10, "agent id"},
		{"negative stream", "a", -1, 1, 10, "stream -1 out of range"},
		{"stream too big", "a", MaxStream + 1, 1, 10, "stream 65536 out of range"},
		{"before 1970", "a", 0, -1, 10, "before 1970"},
		{"huge packet", "a", 0, 1, MaxPacketSize + 1, "exceeds"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := NewWriter(tc.agent, tc.stream, 0, "")
			err := w.Add(tc.ts, eth, make([]byte, tc.size), tc.size)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Add: %v, want an error containing %q", err, tc.want)
			}
			if w.Len() != 0 || w.Size() != 0 {
				t.Errorf("rejected packet was kept: Len %d Size %d", w.Len(), w.Size())
			}
			if _, _, err := w.Finish(); err == nil {
				t.Error("Finish succeeded")
			}
		})
	}
	t.Run("empty", func(t *testing.T) {
		_, _, err := NewWriter("a", 0, 3, "").Finish()
		if !errors.Is(err, ErrEmpty) {
			t.Fatalf("Finish: %v, want ErrEmpty", err)
		}
	})
	t.Run("source too long", func(t *testing.T) {
		w := NewWriter("a", 0, 0, strings.Repeat("x", 70000))
		if err := w.Add(1, eth, []byte{1}, 1); err != nil {
			t.Fatal(err)
		}
		_, _, err := w.Finish()
		if err == nil || !strings.Contains(err.Error(), "metadata record") {
			t.Fatalf("Finish: %v, want a metadata size error", err)
		}
	})
}

func TestLenSizeMeta(t *testing.T) {
	w := NewWriter("a", 1, 2, "s")
	if w.Len() != 0 || w.Size() != 0 {
		t.Fatal("new writer not empty")
	}
	addAll(t, w, []pkt{{ts: 10, link: 1, data: make([]byte, 100), wire: 100}, {ts: 5, link: 101, data: make([]byte, 50), wire: 60}})
	if w.Len() != 2 || w.Size() != 150 {
		t.Errorf("Len %d Size %d, want 2 and 150", w.Len(), w.Size())
	}
	want := Meta{Version: 1, Agent: "a", Stream: 1, Seq: 2, FirstTS: 5, LastTS: 10, Packets: 2, Bytes: 150, LinkTypes: []int{1, 101}, Source: "s"}
	if m := w.Meta(); !reflect.DeepEqual(m, want) {
		t.Errorf("Meta %+v, want %+v", m, want)
	}
	// Finish does not change the writer: a second call gives the same bytes.
	a, _, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	b, _, err := w.Finish()
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) {
		t.Error("second Finish gave different bytes")
	}
}

func TestKey(t *testing.T) {
	m := Meta{Agent: "host-7", Stream: 3, Seq: 12, FirstTS: time.Date(2024, 5, 6, 23, 59, 59, 999_999_999, time.UTC).UnixNano()}
	want := "raw/agent=host-7/stream=3/2024/05/06/23/00000000000000000012.pcapng.zst"
	if got := Key(m); got != want {
		t.Errorf("Key = %s, want %s", got, want)
	}
	p, err := keys.Parse(Key(m))
	if err != nil || p.Stream.Agent != m.Agent || p.Stream.Stream != m.Stream || p.Seq != m.Seq {
		t.Errorf("keys.Parse(Key) = %+v, %v", p, err)
	}
}

// The same packets always give byte-identical segments: from new writers,
// from encoders reused after other segments, from concurrent writers, and
// from an encoder that never went through the pool.
func TestDeterministic(t *testing.T) {
	ps := synth(2000, 7)
	ref, _ := build(t, "a", 1, 9, "file:x", ps)
	// Reuse the pooled encoder on other data first.
	for i := range 3 {
		build(t, "a", 1, 9, "file:x", synth(500, uint64(100+i)))
		again, _ := build(t, "a", 1, 9, "file:x", ps)
		if !bytes.Equal(again, ref) {
			t.Fatalf("rebuild %d differs (%d vs %d bytes)", i, len(again), len(ref))
		}
	}
	var wg sync.WaitGroup
	outs := make([][]byte, 4)
	for i := range outs {
		wg.Go(func() {
			w := NewWriter("a", 1, 9, "file:x")
			for _, p := range ps {
				if err := w.Add(p.ts, p.link, p.data, p.wire); err != nil {
					t.Error(err)
					return
				}
			}
			data, _, err := w.Finish()
			if err != nil {
				t.Error(err)
			}
			outs[i] = data
		})
	}
	wg.Wait()
	for i, o := range outs {
		if !bytes.Equal(o, ref) {
			t.Errorf("concurrent writer %d differs", i)
		}
	}
	enc, err := newEncoder()
	if err != nil {
		t.Fatal(err)
	}
	w := NewWriter("a", 1, 9, "file:x")
	addAll(t, w, ps)
	comment, err := json.Marshal(w.Meta())
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := w.encode(enc, comment)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(fresh, ref) {
		t.Error("fresh encoder differs from pooled one")
	}
	// Anything that changes the content changes the bytes (the test above
	// would pass trivially if the output ignored its input).
	other, _ := build(t, "a", 1, 10, "file:x", ps)
	if bytes.Equal(other, ref) {
		t.Error("different seq gave identical bytes")
	}
}

// The segments open in tshark and capinfos (zstd-compressed, as stored), with
// every packet's timestamp, lengths, interface and bytes intact, and the
// metadata visible as the capture comment.
func TestTshark(t *testing.T) {
	for _, tool := range []string{"tshark", "capinfos"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s not installed (Debian package tshark): %v", tool, err)
		}
	}
	ps := synth(400, 3)
	ps = append(ps, readCaptures(t, "gop-test_loopback.pcap", "ppp-sll.pcap")...)
	data, m := build(t, "probe", 2, 5, "file:tshark", ps)
	path := filepath.Join(t.TempDir(), "00000000000000000005.pcapng.zst")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("tshark", "-n", "-r", path, "-o", "frame.generate_md5_hash:TRUE", "-T", "fields", "-E", "separator=/t",
		"-e", "frame.time_epoch", "-e", "frame.cap_len", "-e", "frame.len", "-e", "frame.interface_id", "-e", "frame.md5_hash").Output()
	if err != nil {
		t.Fatalf("tshark: %v\n%s", err, exitStderr(err))
	}
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	if len(lines) != len(ps) {
		t.Fatalf("tshark read %d packets, want %d", len(lines), len(ps))
	}
	ifaces := map[layers.LinkType]int{}
	for i, lt := range m.LinkTypes {
		ifaces[layers.LinkType(lt)] = i
	}
	for i, p := range ps {
		sum := md5.Sum(p.data)
		want := fmt.Sprintf("%d.%09d\t%d\t%d\t%d\t%s", p.ts/1e9, p.ts%1e9, len(p.data), p.wire, ifaces[p.link], hex.EncodeToString(sum[:]))
		if lines[i] != want {
			t.Fatalf("tshark packet %d:\n got %q\nwant %q", i, lines[i], want)
		}
	}
	info, err := exec.Command("capinfos", "-t", "-k", "-c", "-E", path).Output()
	if err != nil {
		t.Fatalf("capinfos: %v\n%s", err, exitStderr(err))
	}
	comment, _ := json.Marshal(m)
	for _, want := range []string{"pcapng (zstd compressed)", fmt.Sprintf("Number of packets:   %d", len(ps)), "File encapsulation:  Per packet", string(comment)} {
		if !strings.Contains(string(info), want) {
			t.Errorf("capinfos output lacks %q:\n%s", want, info)
		}
	}
}

func exitStderr(err error) []byte {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.Stderr
	}
	return nil
}

// zstdBytes compresses b.
func zstdBytes(t testing.TB, b []byte) []byte {
	t.Helper()
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		t.Fatal(err)
	}
	return enc.EncodeAll(b, nil)
}

// plainPcapng returns an uncompressed pcapng file with one packet and the
// given section comment.
func plainPcapng(t testing.TB, comment string) []byte {
	t.Helper()
	var b bytes.Buffer
	w, err := pcapgo.NewNgWriterInterface(&b, pcapgo.NgInterface{LinkType: layers.LinkTypeEthernet},
		pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Comment: comment, Application: "test"}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

type failingReader struct{ err error }

func (f failingReader) Read([]byte) (int, error) { return 0, f.err }

func TestReadMetaErrors(t *testing.T) {
	seg, m := build(t, "a", 0, 0, "", synth(40, 5))
	rec, _ := json.Marshal(m)
	plain, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := plain.DecodeAll(seg, nil)
	if err != nil {
		t.Fatal(err)
	}
	withRecord := func(edit func(string) string) []byte {
		return zstdBytes(t, plainPcapng(t, edit(string(rec))))
	}
	var shbLen [4]byte
	copy(shbLen[:], raw[4:8])
	badTrailer := bytes.Clone(raw)
	badTrailer[4]++ // length no longer matches the trailer (and is not a multiple of 4)
	badTrailer2 := bytes.Clone(raw)
	n := int(raw[4]) | int(raw[5])<<8
	badTrailer2[n-4] ^= 0x40 // trailer changed, header intact

	for _, tc := range []struct {
		name    string
		in      []byte
		version bool
		want    string
	}{
		{"empty", nil, false, "empty input"},
		{"garbage", []byte("hello, this is not a segment"), false, "no zstd magic"},
		{"uncompressed pcapng", raw, false, "uncompressed pcapng"},
		{"gzip", []byte{0x1f, 0x8b, 8, 0, 0, 0}, false, "gzip"},
		{"zstd magic only", magicZstd, false, "truncated"},
		{"truncated zstd", seg[:20], false, ""},
		{"zstd of text", zstdBytes(t, []byte("just some text, long enough to fill a header")), false, "not pcapng"},
		{"zstd of short text", zstdBytes(t, []byte("abc")), false, "truncated"},
		{"zstd of classic pcap", zstdBytes(t, []byte{0xd4, 0xc3, 0xb2, 0xa1, 2, 0, 4, 0, 0, 0, 0, 0, 0, 0, 0, 0}), false, "not pcapng"},
		{"truncated section header", zstdBytes(t, raw[:40]), false, "truncated"},
		{"header length not matching trailer", zstdBytes(t, badTrailer), false, "length"},
		{"trailer changed", zstdBytes(t, badTrailer2), false, "does not match its trailer"},
		{"no comment", zstdBytes(t, plainPcapng(t, "")), false, "no metadata comment"},
		{"other comment", zstdBytes(t, plainPcapng(t, "captured by tcpdump")), false, "no metadata comment (only 1 other comments)"},
		{"bad JSON", withRecord(func(s string) string { return s[:len(s)-1] }), false, "not valid JSON"},
		{"no version", withRecord(func(s string) string { return strings.Replace(s, `"version":1,`, "", 1) }), false, "no version"},
		{"version 2", withRecord(func(s string) string { return strings.Replace(s, `"version":1`, `"version":2`, 1) }), true, "version 2"},
		{"version 0", withRecord(func(s string) string { return strings.Replace(s, `"version":1`, `"version":0`, 1) }), true, "version 0"},
		{"bad agent", withRecord(func(s string) string { return strings.Replace(s, `"agent":"a"`, `"agent":"../x"`, 1) }), false, "agent id"},
		{"wrong type", withRecord(func(s string) string { return strings.Replace(s, `"seq":0`, `"seq":"zero"`, 1) }), false, "metadata record"},
		{"zero packets", withRecord(func(s string) string { return strings.Replace(s, `"packets":40`, `"packets":0`, 1) }), false, "packet count 0"},
		{"time reversed", withRecord(func(s string) string {
			return strings.Replace(s, fmt.Sprintf(`"last_ts":%d`, m.LastTS), fmt.Sprintf(`"last_ts":%d`, m.FirstTS-1), 1)
		}), false, "bad time range"},
		{"no link types", withRecord(func(s string) string { return strings.Replace(s, `"link_types":[`, `"link_types":[],"x":[`, 1) }), false, "no link types"},
		{"big stream", withRecord(func(s string) string { return strings.Replace(s, `"stream":0`, `"stream":70000`, 1) }), false, "stream 70000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ReadMeta(bytes.NewReader(tc.in))
			if err == nil {
				t.Fatal("no error")
			}
			t.Log(err)
			if tc.version {
				if !errors.Is(err, ErrVersion) || errors.Is(err, ErrNotSegment) {
					t.Errorf("error %v: want ErrVersion only", err)
				}
			} else if !errors.Is(err, ErrNotSegment) {
				t.Errorf("error %v does not wrap ErrNotSegment", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q lacks %q", err, tc.want)
			}
		})
	}

	// Every truncation of a real segment is an error, never a panic; the
	// section header block comes first, so cuts past it still validate.
	for cut := range len(seg) {
		m2, err := ReadMeta(bytes.NewReader(seg[:cut]))
		if err != nil && !errors.Is(err, ErrNotSegment) {
			t.Fatalf("cut at %d: %v does not wrap ErrNotSegment", cut, err)
		}
		if err == nil && !reflect.DeepEqual(m2, m) {
			t.Fatalf("cut at %d: meta %+v", cut, m2)
		}
	}

	// A failing reader is reported as such, not as a bad segment.
	boom := errors.New("connection reset")
	_, err = ReadMeta(io.MultiReader(bytes.NewReader(seg[:8]), failingReader{boom}))
	if !errors.Is(err, boom) || errors.Is(err, ErrNotSegment) {
		t.Errorf("reader failure: %v", err)
	}
	_, err = ReadMeta(failingReader{boom})
	if !errors.Is(err, boom) || errors.Is(err, ErrNotSegment) {
		t.Errorf("reader failure at the start: %v", err)
	}
}

// ReadMeta reads only the start of a large segment.
func TestReadMetaReadsLittle(t *testing.T) {
	seg, _ := build(t, "a", 0, 0, "", synth(6000, 9))
	cr := &countReader{r: bytes.NewReader(seg)}
	if _, err := ReadMeta(cr); err != nil {
		t.Fatal(err)
	}
	if cr.n > 256<<10 || cr.n >= int64(len(seg)) {
		t.Errorf("ReadMeta read %d of %d bytes", cr.n, len(seg))
	}
}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// A big-endian section header (written by other tools) is read too.
func TestReadMetaBigEndian(t *testing.T) {
	_, m := build(t, "a", 0, 0, "", synth(3, 1))
	rec, _ := json.Marshal(m)
	var b bytes.Buffer
	opt := func(code uint16, v []byte) {
		b.Write([]byte{byte(code >> 8), byte(code), byte(len(v) >> 8), byte(len(v))})
		b.Write(v)
		b.Write(make([]byte, (4-len(v)%4)%4))
	}
	be32 := func(v uint32) []byte { return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)} }
	opt(optComment, rec)
	opt(optEndOfOpt, nil)
	body := b.Bytes()
	n := uint32(24 + len(body) + 4)
	var shb bytes.Buffer
	shb.Write(be32(blockTypeSHB))
	shb.Write(be32(n))
	shb.Write(be32(byteOrderMagic))
	shb.Write([]byte{0, 1, 0, 0})
	shb.Write(bytes.Repeat([]byte{0xff}, 8))
	shb.Write(body)
	shb.Write(be32(n))
	got, err := ReadMeta(bytes.NewReader(zstdBytes(t, shb.Bytes())))
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, m) {
		t.Errorf("got %+v, want %+v", got, m)
	}
}

func BenchmarkFinish(b *testing.B) {
	ps := synth(6000, 11)
	var size int64
	for _, p := range ps {
		size += int64(len(p.data))
	}
	b.SetBytes(size)
	b.ReportAllocs()
	w := NewWriter("a", 0, 0, "")
	for b.Loop() {
		w.reset("a", 0, 0, "")
		addAll(b, w, ps)
		if _, _, err := w.Finish(); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(ps))*float64(b.N)/b.Elapsed().Seconds(), "pkt/s")
}
