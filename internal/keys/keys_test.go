package keys

import (
	"errors"
	"testing"
	"time"
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
