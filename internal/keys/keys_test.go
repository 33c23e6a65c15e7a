package keys

import (
	"errors"
	"testing"
	"time"

	"github.com/flowlake/flowlake/schema"
)

func TestRoundTrip(t *testing.T) {
	s := Stream{Agent: "web-1", Stream: 3}
	ts := time.Date(2024, 1, 2, 7, 59, 0, 0, time.FixedZone("x", 3600)) // 06:59 UTC
	k := Segment(s, 42, ts)
	if k != "raw/agent=web-1/stream=3/2024/01/02/06/00000000000000000042.pcapng.zst" {
		t.Fatalf("segment key %s", k)
	}
	p, err := Parse(k)
	if err != nil || p.Kind != KindSegment || p.Stream != s || p.Seq != 42 || !p.Hour.Equal(time.Date(2024, 1, 2, 6, 0, 0, 0, time.UTC)) {
		t.Fatalf("parse %+v %v", p, err)
	}
	sk := Secrets(s, 42, ts)
	if p, err := Parse(sk); err != nil || p.Kind != KindSecrets || p.Seq != 42 {
		t.Fatalf("secrets %s %+v %v", sk, p, err)
	}
	if State(s, 42) != "state/agent=web-1/stream=3/00000000000000000042.ckpt" {
		t.Fatal(State(s, 42))
	}
	if Lake("http", "dt=2024-01-02/hour=06", "seg-1") != "lake/http/dt=2024-01-02/hour=06/seg-1.parquet" {
		t.Fatal("lake key")
	}
	if KindOf(Status("a", ts)) != KindStatus || KindOf(QuarantineError(k)) != KindQuarantine || KindOf("x/y") != KindUnknown {
		t.Fatal("kinds")
	}
}

func TestParseRejects(t *testing.T) {
	for _, k := range []string{
		"raw/agent=a/stream=0/2024/01/02/06/42.pcapng.zst",
		"raw/agent=a/stream=x/2024/01/02/06/00000000000000000042.pcapng.zst",
		"raw/agent=../stream=0/2024/01/02/06/00000000000000000042.pcapng.zst",
		"raw/agent=a/stream=0/2024/13/02/06/00000000000000000042.pcapng.zst",
		"raw/agent=a/stream=0/2024/01/02/06/00000000000000000042.pcap",
		"lake/http/x.parquet",
		"raw/agent=a/stream=0/00000000000000000042.pcapng.zst",
	} {
		if _, err := Parse(k); !errors.Is(err, ErrBadKey) {
			t.Errorf("%s: %v", k, err)
		}
	}
	if ValidAgent("ok_1.x-2") != nil || ValidAgent("") == nil || ValidAgent("a/b") == nil || ValidAgent(".hidden") == nil {
		t.Error("ValidAgent")
	}
}

func TestParseState(t *testing.T) {
	s := Stream{Agent: "a", Stream: 2}
	for _, k := range []string{State(s, 7), SegmentIndex(s, 7)} {
		got, seq, err := ParseState(k)
		if err != nil || got != s || seq != 7 {
			t.Errorf("%s: %v %d %v", k, got, seq, err)
		}
	}
	if _, _, err := ParseState("state/agent=a/stream=x/00000000000000000001.ckpt"); !errors.Is(err, ErrBadKey) {
		t.Error(err)
	}
}

func TestLakePartitionLayout(t *testing.T) {
	for _, ts := range []time.Time{
		time.Date(2024, 1, 2, 6, 59, 59, 999_999_000, time.UTC),
		time.Date(1969, 12, 31, 23, 30, 0, 0, time.UTC),
		time.Date(2024, 2, 29, 0, 0, 0, 0, time.FixedZone("x", -3*3600)),
	} {
		p := LakePartition(ts)
		if want := schema.PartitionPath(ts.UnixMicro()); p != want {
			t.Errorf("LakePartition(%v) = %s, schema.PartitionPath says %s", ts, p, want)
		}
		h, err := ParseLakePartition(p)
		if err != nil || !h.Equal(ts.UTC().Truncate(time.Hour)) {
			t.Errorf("ParseLakePartition(%s) = %v, %v; want %v", p, h, err, ts.UTC().Truncate(time.Hour))
		}
	}
	for _, bad := range []string{"dt=2024-01-02", "dt=2024-01-02/hour=7", "dt=2024-13-02/hour=07", "hour=07/dt=2024-01-02", "dt=2024-01-02/hour=24"} {
		if _, err := ParseLakePartition(bad); !errors.Is(err, ErrBadKey) {
			t.Errorf("ParseLakePartition(%q) = %v, want ErrBadKey", bad, err)
		}
	}
}

func TestLakeManifestAndCompactNames(t *testing.T) {
	const part = "dt=2024-01-02/hour=06"
	k := LakeManifest("http", part, 7)
	if k != "lake/http/dt=2024-01-02/hour=06/_manifest-00000000000000000007.json" {
		t.Fatalf("manifest key %s", k)
	}
	o, err := ParseLake(k)
	if err != nil || o.Table != "http" || o.Partition != part || o.Name != ManifestName(7) || !o.Hour.Equal(time.Date(2024, 1, 2, 6, 0, 0, 0, time.UTC)) {
		t.Fatalf("ParseLake(%s) = %+v, %v", k, o, err)
	}
	if v, ok := ParseManifestName(o.Name); !ok || v != 7 {
		t.Fatalf("ParseManifestName(%s) = %d, %v", o.Name, v, ok)
	}
	for _, bad := range []string{"_manifest.json", "_manifest-7.json", "_manifest-0000000000000000000x.json", "compact-00000000000000000007.json", "_manifest-00000000000000000007.parquet"} {
		if _, ok := ParseManifestName(bad); ok {
			t.Errorf("ParseManifestName(%q) accepted", bad)
		}
	}
	if ManifestName(2) >= ManifestName(10) {
		t.Error("manifest names do not sort in version order")
	}
	if !IsCompact(CompactName("ab12")+"-0000"+ExtParquet) || IsCompact("seg-a-0-1-0000.parquet") || IsCompact(ManifestName(1)) {
		t.Error("IsCompact")
	}
	if LakePartitionPrefix("dns", part) != "lake/dns/"+part+"/" || LakeDayPrefix("dns", time.Date(2024, 1, 2, 23, 0, 0, 0, time.UTC)) != "lake/dns/dt=2024-01-02/" {
		t.Error("lake prefixes")
	}
	for _, bad := range []string{"lake/http/x.parquet", "lake/http/dt=2024-01-02/hour=06/sub/x.parquet", "lake//dt=2024-01-02/hour=06/x", "raw/http/dt=2024-01-02/hour=06/x"} {
		if _, err := ParseLake(bad); !errors.Is(err, ErrBadKey) {
			t.Errorf("ParseLake(%q) = %v, want ErrBadKey", bad, err)
		}
	}
}
