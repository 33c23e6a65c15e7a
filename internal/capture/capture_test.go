package capture

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/flowlake/flowlake/internal/testcap"
)

func readAll(t *testing.T, names ...string) ([]Packet, []Result) {
	t.Helper()
	s := Open(names)
	defer s.Close()
	var out []Packet
	var p Packet
	for {
		err := s.Next(&p)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		p.Data = append([]byte(nil), p.Data...)
		out = append(out, p)
	}
	return out, s.Results()
}

// Every shared capture reads to the end with tshark's packet count.
func TestSharedCapturesPacketCounts(t *testing.T) {
	for _, name := range testcap.Captures(t) {
		t.Run(name, func(t *testing.T) {
			truth := testcap.LoadTruth(t, name)
			pkts, res := readAll(t, testcap.Path(t, name))
			if res[0].Err != nil {
				t.Fatalf("read error: %v", res[0].Err)
			}
			if int64(len(pkts)) != truth.Packets {
				t.Errorf("%d packets, tshark %d", len(pkts), truth.Packets)
			}
		})
	}
}

func TestCompressedAndMixedFormats(t *testing.T) {
	dir := t.TempDir()
	src := testcap.Path(t, "zeek-wikipedia.pcap")
	raw, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(raw)
	zw.Close()
	gzName := filepath.Join(dir, "a.pcap.gz")
	os.WriteFile(gzName, gz.Bytes(), 0o644)
	enc, _ := zstd.NewWriter(nil)
	zsName := filepath.Join(dir, "b.pcap.zst")
	os.WriteFile(zsName, enc.EncodeAll(raw, nil), 0o644)
	ng := testcap.Path(t, "ndpi-http_ua_splitted_in_two_pkts.pcapng")

	plain, _ := readAll(t, src)
	pkts, res := readAll(t, gzName, zsName, ng)
	ngPkts, _ := readAll(t, ng)
	if len(pkts) != 2*len(plain)+len(ngPkts) {
		t.Fatalf("%d packets, want %d", len(pkts), 2*len(plain)+len(ngPkts))
	}
	for i, p := range plain {
		if !bytes.Equal(p.Data, pkts[i].Data) || p.TS != pkts[i].TS || !bytes.Equal(p.Data, pkts[len(plain)+i].Data) {
			t.Fatalf("packet %d differs after decompression", i)
		}
	}
	if res[0].Compression != "gzip" || res[1].Compression != "zstd" || res[2].Format != FormatPcapNG {
		t.Errorf("results %+v", res)
	}
	if pkts[len(pkts)-1].File != 2 {
		t.Errorf("file index %d", pkts[len(pkts)-1].File)
	}
}

func TestTruncatedFileKeepsPacketsAndGoesOn(t *testing.T) {
	dir := t.TempDir()
	raw, err := os.ReadFile(testcap.Path(t, "zeek-http-get.pcap"))
	if err != nil {
		t.Fatal(err)
	}
	cut := filepath.Join(dir, "cut.pcap")
	os.WriteFile(cut, raw[:len(raw)-10], 0o644)
	garbage := filepath.Join(dir, "garbage.pcap")
	os.WriteFile(garbage, []byte("this is not a capture file at all"), 0o644)
	empty := filepath.Join(dir, "empty.pcap")
	os.WriteFile(empty, nil, 0o644)
	whole, _ := readAll(t, testcap.Path(t, "zeek-http-get.pcap"))

	pkts, res := readAll(t, cut, garbage, empty, filepath.Join(dir, "missing.pcap"), testcap.Path(t, "zeek-http-get.pcap"))
	if len(pkts) != 2*len(whole)-1 {
		t.Fatalf("%d packets, want %d", len(pkts), 2*len(whole)-1)
	}
	if !errors.Is(res[0].Err, ErrTruncated) || res[0].Packets != int64(len(whole)-1) {
		t.Errorf("cut: %+v", res[0])
	}
	if !errors.Is(res[1].Err, ErrNotCapture) || !errors.Is(res[2].Err, ErrNotCapture) {
		t.Errorf("garbage/empty: %v / %v", res[1].Err, res[2].Err)
	}
	if !errors.Is(res[3].Err, os.ErrNotExist) || res[4].Err != nil {
		t.Errorf("missing/good: %v / %v", res[3].Err, res[4].Err)
	}
}

func FuzzReader(f *testing.F) {
	for _, name := range []string{"zeek-http-get.pcap", "ndpi-http_ua_splitted_in_two_pkts.pcapng", "ppp-sll.pcap"} {
		if b, err := os.ReadFile(filepath.Join("..", "..", "..", "shared", "testdata", "pcaps", name)); err == nil {
			f.Add(b[:min(len(b), 4096)])
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// Compressed input is left out: a few bytes of zstd or gzip can
		// expand to gigabytes (a legitimate, huge capture), which makes
		// fuzzing crawl; the decompressors are fuzzed by their projects.
		if bytes.HasPrefix(data, magicGzip) || bytes.HasPrefix(data, magicZstd) {
			return
		}
		r, err := NewReader(bytes.NewReader(data))
		if err != nil {
			return
		}
		defer r.Close()
		for i := 0; i < 100000; i++ {
			b, _, _, wire, err := r.Next()
			if err != nil {
				return
			}
			if len(b) > len(data) || wire < 0 {
				t.Fatalf("packet of %d bytes (wire %d) from %d input bytes", len(b), wire, len(data))
			}
		}
	})
}
