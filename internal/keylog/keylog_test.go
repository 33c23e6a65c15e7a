package keylog

import (
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
