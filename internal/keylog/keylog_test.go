package keylog

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	cr := strings.Repeat("ab", 32)
	in := "# comment\n\nCLIENT_RANDOM " + cr + " " + strings.Repeat("01", 48) + "\n" +
		"CLIENT_TRAFFIC_SECRET_0 " + cr + " " + strings.Repeat("02", 32) + "\n" +
		"CLIENT_RANDOM short 00\n" +
		"CLIENT_RANDOM " + strings.Repeat("zz", 32) + " 00\n" +
		"garbage\n"
	l := New()
	if err := l.Read(strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	if l.Len() != 1 || l.Skipped != 3 {
		t.Fatalf("len %d skipped %d", l.Len(), l.Skipped)
	}
	raw, _ := hex.DecodeString(cr)
	s, ok := l.Lookup(raw)
	if !ok || len(s[ClientRandom]) != 48 || len(s[ClientTrafficSecret0]) != 32 {
		t.Fatalf("lookup: %v %v", ok, s)
	}
	if _, ok := l.Lookup(raw[:5]); ok {
		t.Fatal("short random matched")
	}
}

func TestReadSharedKeylogs(t *testing.T) {
	for _, name := range []string{"zeek-tls12-decryption.keylog", "snet-TLS1_3_TLS_AES_128_GCM_SHA256.keylog", "bench-mixed-web.keylog"} {
		l := New()
		if err := l.ReadFile("../../../shared/testdata/pcaps/" + name); err != nil {
			t.Fatal(err)
		}
		if l.Len() == 0 || l.Skipped != 0 {
			t.Errorf("%s: %d sessions, %d skipped", name, l.Len(), l.Skipped)
		}
	}
}

func TestWriteMergeRoundTrip(t *testing.T) {
	a, b := New(), New()
	cr1 := strings.Repeat("01", 32)
	cr2 := strings.Repeat("02", 32)
	if err := a.Read(strings.NewReader("CLIENT_RANDOM " + cr1 + " " + strings.Repeat("aa", 48) + "\n")); err != nil {
		t.Fatal(err)
	}
	if err := b.Read(strings.NewReader("CLIENT_TRAFFIC_SECRET_0 " + cr2 + " " + strings.Repeat("bb", 32) + "\nSERVER_TRAFFIC_SECRET_0 " + cr2 + " " + strings.Repeat("cc", 32) + "\n")); err != nil {
		t.Fatal(err)
	}
	a.Merge(b)
	if a.Len() != 2 {
		t.Fatalf("merged Len = %d, want 2", a.Len())
	}
	var all, some strings.Builder
	if err := a.Write(&all, nil); err != nil {
		t.Fatal(err)
	}
	want := "CLIENT_RANDOM " + cr1 + " " + strings.Repeat("aa", 48) + "\n" +
		"CLIENT_TRAFFIC_SECRET_0 " + cr2 + " " + strings.Repeat("bb", 32) + "\n" +
		"SERVER_TRAFFIC_SECRET_0 " + cr2 + " " + strings.Repeat("cc", 32) + "\n"
	if all.String() != want {
		t.Fatalf("Write =\n%s\nwant\n%s", all.String(), want)
	}
	if err := a.Write(&some, func(cr [32]byte) bool { return cr[0] == 2 }); err != nil {
		t.Fatal(err)
	}
	back := New()
	if err := back.Read(strings.NewReader(some.String())); err != nil {
		t.Fatal(err)
	}
	if back.Len() != 1 {
		t.Fatalf("filtered round trip Len = %d, want 1", back.Len())
	}
	if s, ok := back.Lookup(bytes.Repeat([]byte{2}, 32)); !ok || len(s) != 2 {
		t.Fatalf("filtered round trip lost secrets: %v", ok)
	}
}
