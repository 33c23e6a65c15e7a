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

// RSA lines key a 48-byte premaster secret by the first 8 bytes of the
// encrypted premaster secret; other shapes of RSA line (the old
// "RSA Session-ID:… Master-Key:…" form, bad lengths, bad hex) are skipped.
func TestReadRSA(t *testing.T) {
	prefix, pms := "aaa906e04a4cfd04", strings.Repeat("03", PremasterLen)
	in := "RSA " + prefix + " " + pms + "\n" +
		"RSA " + strings.ToUpper("bbb906e04a4cfd04") + " " + strings.Repeat("Ab", PremasterLen) + "\n" +
		"RSA Session-ID:" + strings.Repeat("11", 32) + " Master-Key:" + strings.Repeat("22", 48) + "\n" +
		"RSA " + prefix[:14] + " " + pms + "\n" +
		"RSA " + prefix + " " + pms[:94] + "\n" +
		"RSA " + prefix + " " + pms + "00\n" +
		"RSA zza906e04a4cfd04 " + pms + "\n" +
		"RSA " + prefix + " zz" + pms[2:] + "\n" +
		"RSA " + prefix + "\n"
	l := New()
	if err := l.Read(strings.NewReader(in)); err != nil {
		t.Fatal(err)
	}
	if l.Len() != 2 || l.Skipped != 7 {
		t.Fatalf("len %d skipped %d, want 2 and 7", l.Len(), l.Skipped)
	}
	enc, _ := hex.DecodeString(prefix + "81fe27ff3c8779e0")
	got, ok := l.LookupRSA(enc)
	if want, _ := hex.DecodeString(pms); !ok || !bytes.Equal(got, want) {
		t.Fatalf("LookupRSA by the whole encrypted premaster: %v", ok)
	}
	if _, ok := l.LookupRSA(enc[:RSAPrefixLen]); !ok {
		t.Fatal("LookupRSA by the prefix alone failed")
	}
	if _, ok := l.LookupRSA(enc[:RSAPrefixLen-1]); ok {
		t.Fatal("LookupRSA matched a short prefix")
	}
	if _, ok := l.LookupRSA(bytes.Repeat([]byte{0xaa}, 8)); ok {
		t.Fatal("LookupRSA matched another prefix")
	}
	upper, _ := hex.DecodeString("bbb906e04a4cfd04")
	if got, ok := l.LookupRSA(upper); !ok || !bytes.Equal(got, bytes.Repeat([]byte{0xab}, PremasterLen)) {
		t.Fatal("upper-case hex not read")
	}
	if _, ok := l.Lookup(append(bytes.Clone(enc), make([]byte, 16)...)); ok {
		t.Fatal("an RSA line answered a client random lookup")
	}
}

// The shared capture's key log has one RSA line and one CLIENT_RANDOM.
func TestReadSharedRSAKeylog(t *testing.T) {
	l := New()
	if err := l.ReadFile("../../../shared/testdata/pcaps/pcapfs-feature_test.keylog"); err != nil {
		t.Fatal(err)
	}
	enc, _ := hex.DecodeString("aaa906e04a4cfd04")
	if _, ok := l.LookupRSA(enc); !ok || l.Len() != 2 || l.Skipped != 0 {
		t.Fatalf("RSA line found %v, %d sessions, %d skipped", ok, l.Len(), l.Skipped)
	}
}

// Merge and an unfiltered Write carry RSA lines (sorted, after the client
// random lines); a filtered Write leaves them out and carries instead the
// CLIENT_RANDOM secrets that Add recorded.
func TestRSAMergeWriteAdd(t *testing.T) {
	a, b := New(), New()
	line1 := "RSA 0102030405060708 " + strings.Repeat("11", PremasterLen) + "\n"
	line2 := "RSA 0002030405060708 " + strings.Repeat("22", PremasterLen) + "\n"
	if err := a.Read(strings.NewReader(line1)); err != nil {
		t.Fatal(err)
	}
	if err := b.Read(strings.NewReader(line2)); err != nil {
		t.Fatal(err)
	}
	a.Merge(b)
	cr := [32]byte{9}
	master := bytes.Repeat([]byte{0x44}, 48)
	a.Add(ClientRandom, cr, master)
	a.Add(RSA, cr, master)               // not a client random label: ignored
	a.Add(ClientTrafficSecret0, cr, nil) // empty: ignored
	if a.Len() != 3 {
		t.Fatalf("Len = %d, want 3", a.Len())
	}
	if s, ok := a.Lookup(cr[:]); !ok || len(s) != 1 || !bytes.Equal(s[ClientRandom], master) {
		t.Fatalf("Add: %v %d", ok, len(s))
	}
	var all, some strings.Builder
	if err := a.Write(&all, nil); err != nil {
		t.Fatal(err)
	}
	crLine := "CLIENT_RANDOM " + hex.EncodeToString(cr[:]) + " " + strings.Repeat("44", 48) + "\n"
	if want := crLine + line2 + line1; all.String() != want {
		t.Fatalf("Write =\n%s\nwant\n%s", all.String(), want)
	}
	back := New()
	if err := back.Read(strings.NewReader(all.String())); err != nil {
		t.Fatal(err)
	}
	var again strings.Builder
	if err := back.Write(&again, nil); err != nil || again.String() != all.String() || back.Skipped != 0 {
		t.Fatalf("round trip: %v, skipped %d\n%s", err, back.Skipped, again.String())
	}
	if err := a.Write(&some, func(c [32]byte) bool { return c == cr }); err != nil {
		t.Fatal(err)
	}
	if some.String() != crLine {
		t.Fatalf("filtered Write =\n%s\nwant\n%s", some.String(), crLine)
	}
}
