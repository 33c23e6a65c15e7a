package segment

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/flowlake/flowlake/internal/keys"
)

var update = flag.Bool("update", false, "rewrite the FuzzReadMeta seed corpus from the shared captures")

// seedSegments are the committed FuzzReadMeta seeds: real captures (listed
// in order, read as one stream) written as one segment each.
var seedSegments = []struct {
	name     string
	captures []string
	stream   int
	seq      uint64
}{
	{"gop-test_dns", []string{"gop-test_dns.pcap"}, 0, 0},
	{"ark-http-simple-get", []string{"ark-http-simple-get.pcap"}, 3, 17},
	{"dns-and-itls13-two-links", []string{"gop-test_dns.pcap", "itls13-capture.pcap"}, 65535, 1 << 40},
}

const corpusDir = "testdata/fuzz/FuzzReadMeta"

// The committed seeds are segments of the shared captures that ReadMeta
// accepts and that hold exactly the captures' packets. With -update they
// are rewritten.
func TestFuzzSeeds(t *testing.T) {
	for _, s := range seedSegments {
		ps := readCaptures(t, s.captures...)
		path := filepath.Join(corpusDir, s.name)
		if *update {
			data, _ := build(t, "seed", s.stream, s.seq, "file:"+s.captures[0], ps)
			if err := os.MkdirAll(corpusDir, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(path, fmt.Appendf(nil, "go test fuzz v1\n[]byte(%q)\n", data), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		data := readSeed(t, path)
		m, err := ReadMeta(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if m.Agent != "seed" || m.Stream != s.stream || m.Seq != s.seq || m.Packets != int64(len(ps)) {
			t.Errorf("%s: meta %+v", path, m)
		}
		equalPkts(t, path, decode(t, data), ps)
	}
}

// readSeed reads a one-value []byte corpus file.
func readSeed(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (make the corpus with: go test -run TestFuzzSeeds -update, in internal/segment)", err)
	}
	s, ok := strings.CutPrefix(string(b), "go test fuzz v1\n[]byte(")
	if !ok {
		t.Fatalf("%s: not a []byte corpus file", path)
	}
	s, ok = strings.CutSuffix(strings.TrimSpace(s), ")")
	if !ok {
		t.Fatalf("%s: not a []byte corpus file", path)
	}
	v, err := strconv.Unquote(s)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return []byte(v)
}

// FuzzReadMeta: ReadMeta never panics, fails only with errors wrapping
// ErrNotSegment or ErrVersion, and what it accepts is a valid record whose
// key the object layout parses back. Seeds: the committed real segments
// (testdata/fuzz/FuzzReadMeta) and synthetic ones with their damaged
// variants.
func FuzzReadMeta(f *testing.F) {
	seg, _ := build(f, "fuzz", 1, 2, "afpacket:eth0", synth(6, 1))
	f.Add(seg)
	f.Add(seg[:len(seg)/2])
	f.Add(seg[:64])
	small, _ := build(f, "f", 0, 0, "", synth(1, 2))
	f.Add(small)
	f.Add([]byte{})
	f.Add(magicZstd)
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := ReadMeta(bytes.NewReader(data))
		if err != nil {
			if !errors.Is(err, ErrNotSegment) && !errors.Is(err, ErrVersion) {
				t.Fatalf("error %v wraps neither ErrNotSegment nor ErrVersion", err)
			}
			if !reflect.DeepEqual(m, Meta{}) {
				t.Fatalf("error %v with meta %+v", err, m)
			}
			return
		}
		if err := m.Validate(); err != nil {
			t.Fatalf("accepted invalid meta %+v: %v", m, err)
		}
		p, err := keys.Parse(Key(m))
		if err != nil || p.Kind != keys.KindSegment || p.Stream.Agent != m.Agent || p.Stream.Stream != m.Stream || p.Seq != m.Seq {
			t.Fatalf("key %s of meta %+v parses as %+v, %v", Key(m), m, p, err)
		}
	})
}
