package tlskeys

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSecretNeverPrinted checks that no formatting of a Secret, alone or
// inside a struct, and no slog handler shows the secret.
func TestSecretNeverPrinted(t *testing.T) {
	secret := bytes.Repeat([]byte{0xde, 0xad, 0xbe, 0xef}, 12)
	s := Secret{Label: ClientRandom, Value: secret, PID: 42, Comm: "curl"}
	copy(s.ClientRandom[:], bytes.Repeat([]byte{0x11}, 32))
	secretHex := hex.EncodeToString(secret)
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X"} {
		outs = append(outs, fmt.Sprintf(verb, s), fmt.Sprintf(verb, struct{ S Secret }{s}), fmt.Sprintf(verb, []Secret{s}))
	}
	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("x", "secret", s, "secrets", []Secret{s})
	slog.New(slog.NewTextHandler(&logs, nil)).Info("x", "secret", s)
	outs = append(outs, logs.String(), s.String())
	for _, o := range outs {
		if strings.Contains(strings.ToLower(o), secretHex[:16]) {
			t.Errorf("the secret shows in %q", o)
		}
	}
	line := string(s.AppendLine(nil))
	want := "CLIENT_RANDOM " + strings.Repeat("11", 32) + " " + secretHex + "\n"
	if line != want {
		t.Errorf("AppendLine = %q, want %q", line, want)
	}
}

func TestParseLine(t *testing.T) {
	cr := strings.Repeat("ab", 32)
	sec := strings.Repeat("cd", 48)
	for _, tc := range []struct {
		line string
		ok   bool
		err  bool
	}{
		{"CLIENT_RANDOM " + cr + " " + sec, true, false},
		{"  SERVER_TRAFFIC_SECRET_0 " + cr + " " + sec[:64] + "  ", true, false},
		{"# comment " + sec, false, false},
		{"", false, false},
		{"CLIENT_RANDOM " + cr, false, true},
		{"CLIENT_RANDOM " + cr[:62] + " " + sec, false, true},
		{"NOT_A_LABEL " + cr + " " + sec, false, true},
		{"CLIENT_RANDOM " + cr + " " + sec[:95] + "z", false, true},
		{"CLIENT_RANDOM " + strings.Repeat("zz", 32) + " " + sec, false, true},
		{"CLIENT_RANDOM " + cr + " " + strings.Repeat("00", 65), false, true},
	} {
		s, ok, err := ParseLine(tc.line)
		if ok != tc.ok || (err != nil) != tc.err {
			t.Errorf("ParseLine(%.40q…): ok %v err %v, want ok %v error %v", tc.line, ok, err, tc.ok, tc.err)
		}
		if err != nil && strings.Contains(err.Error(), sec[:16]) {
			t.Errorf("the error %q shows the secret", err)
		}
		if ok && strings.TrimSpace(string(s.AppendLine(nil))) != strings.TrimSpace(tc.line) {
			t.Errorf("round trip of %.40q… changed it", tc.line)
		}
	}
}

// TestExpandLabel derives the handshake traffic secrets of RFC 8448's
// simple 1-RTT handshake (section 3).
func TestExpandLabel(t *testing.T) {
	hs := mustHex(t, "1d c8 26 e9 36 06 aa 6f dc 0a ad c1 2f 74 1b 01 04 6a a6 b9 9f 69 1e d2 21 a9 f0 ca 04 3f be ac")
	hash := mustHex(t, "86 0c 06 ed c0 78 58 ee 8e 78 f0 e7 42 8c 58 ed d6 b4 3f 2c a3 e6 e9 5f 02 ed 06 3c f0 e1 ca d8")
	c := conn{version: 0x0304, cipherID: 0x03001301, handshakeSecret: hs, handshakeHash: hash,
		clientApp: bytes.Repeat([]byte{1}, 32), serverApp: bytes.Repeat([]byte{2}, 32), exporter: bytes.Repeat([]byte{3}, 32)}
	secrets, err := c.secrets()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		ClientHandshakeTrafficSecret: "b3eddb126e067f35a780b3abf45e2d8f3b1a950738f52e9600746a0e27a55a21",
		ServerHandshakeTrafficSecret: "b67b7d690cc16c4e75e54213cb2d37b4e9c912bcded9105d42befd59d391ad38",
		ClientTrafficSecret0:         strings.Repeat("01", 32),
		ServerTrafficSecret0:         strings.Repeat("02", 32),
		ExporterSecret:               strings.Repeat("03", 32),
	}
	if len(secrets) != len(want) {
		t.Fatalf("%d secrets, want %d", len(secrets), len(want))
	}
	for _, s := range secrets {
		if got := hex.EncodeToString(s.Value); got != want[s.Label] {
			t.Errorf("%s = %s, want %s", s.Label, got, want[s.Label])
		}
	}
	c.cipherID = 0x0300c02f // a TLS 1.2 suite in a TLS 1.3 connection
	if _, err := c.secrets(); err == nil {
		t.Error("unknown TLS 1.3 cipher: no error")
	}
	tls12 := conn{version: 0x0303, masterKey: bytes.Repeat([]byte{9}, 48)}
	if s, err := tls12.secrets(); err != nil || len(s) != 1 || s[0].Label != ClientRandom {
		t.Errorf("TLS 1.2: %v %v", s, err)
	}
	if _, err := (&conn{version: 0x0303}).secrets(); err == nil {
		t.Error("TLS 1.2 without a master key: no error")
	}
}

func TestDedup(t *testing.T) {
	r := NewDedup(3)
	for _, s := range []string{"a", "b", "c"} {
		if !r.add(s) {
			t.Fatalf("%s: seen", s)
		}
	}
	if r.add("a") {
		t.Error("a: not seen")
	}
	r.add("d") // a goes
	if !r.add("a") {
		t.Error("a: still seen after the bound")
	}
}

// FuzzParseLine: no input panics, an error never quotes the line, and a
// parsed line formats back to itself (fields joined by one space).
func FuzzParseLine(f *testing.F) {
	f.Add("CLIENT_RANDOM " + strings.Repeat("ab", 32) + " " + strings.Repeat("cd", 48))
	f.Add("SERVER_TRAFFIC_SECRET_0 " + strings.Repeat("00", 32) + " " + strings.Repeat("ff", 32))
	f.Add("# comment")
	f.Add("CLIENT_RANDOM x y")
	f.Fuzz(func(t *testing.T, line string) {
		s, ok, err := ParseLine(line)
		if err != nil {
			if len(line) > 20 && strings.Contains(err.Error(), line) {
				t.Errorf("error %q quotes the line", err)
			}
			return
		}
		if ok {
			want := strings.Join(strings.Fields(line), " ")
			if got := strings.TrimSuffix(string(s.AppendLine(nil)), "\n"); !strings.EqualFold(got, want) {
				t.Errorf("round trip: %q, want %q", got, want)
			}
		}
	})
}
