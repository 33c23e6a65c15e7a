package flowid

import (
	"net/netip"
	"testing"
)

// Vectors from the Community ID specification's baseline (corelight/community-id-spec).
func TestCommunityID(t *testing.T) {
	cases := []struct {
		src   string
		sport uint16
		dst   string
		dport uint16
		proto uint8
		seed  uint16
		want  string
	}{
		{"128.232.110.120", 34855, "66.35.250.204", 80, 6, 0, "1:LQU9qZlK+B5F3KDmev6m5PMibrg="},
		{"66.35.250.204", 80, "128.232.110.120", 34855, 6, 0, "1:LQU9qZlK+B5F3KDmev6m5PMibrg="},
		{"128.232.110.120", 34855, "66.35.250.204", 80, 6, 1, "1:3V71V58M3Ksw/yuFALMcW0LAHvc="},
	}
	for _, c := range cases {
		got := CommunityID(c.seed, netip.MustParseAddr(c.src), c.sport, netip.MustParseAddr(c.dst), c.dport, c.proto)
		if got != c.want {
			t.Errorf("%s:%d->%s:%d seed %d = %s, want %s", c.src, c.sport, c.dst, c.dport, c.seed, got, c.want)
		}
	}
}

func TestHasherStable(t *testing.T) {
	a := netip.MustParseAddr("10.0.0.1")
	id1 := (&Hasher{}).Str("agent").Addr(a, 80).Int(42).ID()
	id2 := (&Hasher{}).Str("agent").Addr(a, 80).Int(42).ID()
	id3 := (&Hasher{}).Str("agent").Addr(a, 81).Int(42).ID()
	if id1 != id2 || id1 == id3 || len(id1) != 32 {
		t.Fatalf("ids %s %s %s", id1, id2, id3)
	}
	// Parts are length-prefixed: moving a boundary changes the id.
	if (&Hasher{}).Str("ab").Str("c").ID() == (&Hasher{}).Str("a").Str("bc").ID() {
		t.Fatal("ambiguous concatenation")
	}
}
