package tlskeys

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestParseVersion(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want string
		err  bool
	}{
		{"OpenSSL 3.0.19 27 Jan 2026", "3.0.19", false},
		{"OpenSSL 1.1.1w  11 Sep 2023", "1.1.1w", false},
		{"OpenSSL 3.5.0 8 Apr 2025", "3.5.0", false},
		{"OpenSSL 3.2.1", "3.2.1", false},
		{"OpenSSL 1.1.1 (compatible; BoringSSL)", "1.1.1", false},
		{"LibreSSL 3.8.2", "", true},
		{"OpenSSL 3.0", "", true},
		{"", "", true},
	} {
		v, err := ParseVersion(tc.in)
		if (err != nil) != tc.err {
			t.Errorf("ParseVersion(%q): err %v, want error %v", tc.in, err, tc.err)
			continue
		}
		if err == nil && v.String() != tc.want {
			t.Errorf("ParseVersion(%q) = %s, want %s", tc.in, v, tc.want)
		}
	}
}

func TestLookup(t *testing.T) {
	for i, l := range Table {
		if l.From.Compare(l.To) > 0 {
			t.Errorf("row %d: From %s after To %s", i, l.From, l.To)
		}
		if l.Source == "" {
			t.Errorf("row %d (%s-%s): no source", i, l.From, l.To)
		}
		for j, o := range Table[:i] {
			if l.From.Compare(o.To) <= 0 && o.From.Compare(l.To) <= 0 {
				t.Errorf("rows %d (%s-%s) and %d (%s-%s) overlap", j, o.From, o.To, i, l.From, l.To)
			}
		}
	}
	for _, tc := range []struct {
		ver     string
		session uint32
		err     bool
	}{
		{"OpenSSL 3.0.19 27 Jan 2026", 0x918, false},
		{"OpenSSL 3.0.2 15 Mar 2022", 0x918, false},
		{"OpenSSL 3.0.12 24 Oct 2023", 0x938, false},
		{"OpenSSL 3.1.4 24 Oct 2023", 0x918, false},
		{"OpenSSL 3.2.1 30 Jan 2024", 0x880, false},
		{"OpenSSL 3.3.3 11 Feb 2025", 0x888, false},
		{"OpenSSL 3.5.1 1 Jul 2025", 0x900, false},
		{"OpenSSL 1.1.1w  11 Sep 2023", 0x510, false},
		{"OpenSSL 1.1.1 (compatible; BoringSSL)", 0, true},
		{"OpenSSL 1.1.0l  10 Sep 2019", 0, true},
		{"OpenSSL 3.6.0 1 Oct 2025", 0, true},
	} {
		v, err := ParseVersion(tc.ver)
		if err != nil {
			t.Fatal(err)
		}
		l, err := Lookup(v)
		if (err != nil) != tc.err {
			t.Errorf("Lookup(%s): err %v, want error %v", v, err, tc.err)
			continue
		}
		if err == nil && l.Offsets.Session != tc.session {
			t.Errorf("Lookup(%s).Session = %#x, want %#x", v, l.Offsets.Session, tc.session)
		}
	}
}

// sslMem is what testdata/sslmem.c prints for one handshake.
type sslMem struct {
	version                 string // OpenSSL version text
	tlsVersion              int32
	ssl, session, cipher    []byte
	sessionPtr, cipherPtr   uint64
	cipherID                uint32
	clientRandom, masterKey []byte
	keylog                  map[string][]byte // label → secret
	keylogLines             []string
}

func parseSSLMem(t *testing.T, out []byte) sslMem {
	t.Helper()
	m := sslMem{keylog: map[string][]byte{}}
	sc := bufio.NewScanner(bytes.NewReader(out))
	sc.Buffer(nil, 1<<20)
	unhex := func(s string) []byte {
		b, err := hex.DecodeString(s)
		if err != nil {
			t.Fatalf("sslmem output: %v", err)
		}
		return b
	}
	for sc.Scan() {
		k, v, _ := strings.Cut(sc.Text(), " ")
		switch k {
		case "keylog":
			f := strings.Fields(v)
			m.keylog[f[0]] = unhex(f[2])
			m.keylogLines = append(m.keylogLines, v)
		case "openssl":
			m.version = v
		case "version":
			n, _ := strconv.Atoi(v)
			m.tlsVersion = int32(n)
		case "ssl":
			m.ssl = unhex(v)
		case "session":
			m.session = unhex(v)
		case "cipher":
			m.cipher = unhex(v)
		case "session_ptr":
			m.sessionPtr, _ = strconv.ParseUint(v, 16, 64)
		case "cipher_ptr":
			m.cipherPtr, _ = strconv.ParseUint(v, 16, 64)
		case "cipher_id":
			n, _ := strconv.ParseUint(v, 10, 32)
			m.cipherID = uint32(n)
		case "client_random":
			m.clientRandom = unhex(v)
		case "master_key":
			m.masterKey = unhex(v)
		}
	}
	return m
}

// at returns b[off:off+n], or nil when out of range.
func at(b []byte, off uint32, n int) []byte {
	if int(off)+n > len(b) {
		return nil
	}
	return b[off : int(off)+n]
}

// find returns every offset of needle in b.
func find(b, needle []byte) []string {
	var out []string
	for i := 0; i+len(needle) <= len(b); i++ {
		if bytes.Equal(b[i:i+len(needle)], needle) {
			out = append(out, fmt.Sprintf("%#x", i))
		}
	}
	return out
}

// TestOffsetsOfInstalledOpenSSL checks the offsets table against the
// OpenSSL installed here, without eBPF: testdata/sslmem.c does handshakes
// in memory and dumps the client's structs, and every offset of the
// table row for the installed version must point at the value that the
// public API or the library's own key log gives. The key log lines that
// the Go side derives from the dumped structs (the TLS 1.3 handshake
// secrets are derived, not read) must equal the library's, byte for byte.
// When a check fails the test prints where the value actually is: that is
// how a table row for a new OpenSSL release is found.
func TestOffsetsOfInstalledOpenSSL(t *testing.T) {
	cc := ""
	for _, c := range []string{"cc", "gcc", "clang"} {
		if _, err := exec.LookPath(c); err == nil {
			cc = c
			break
		}
	}
	if cc == "" {
		t.Skip("no C compiler (cc, gcc or clang) to build testdata/sslmem.c")
	}
	if _, err := os.Stat("/usr/include/openssl/ssl.h"); err != nil {
		t.Skip("OpenSSL headers missing (Debian: libssl-dev)")
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "sslmem")
	if out, err := exec.Command(cc, "-O1", "-o", bin, "testdata/sslmem.c", "-lssl", "-lcrypto").CombinedOutput(); err != nil {
		t.Fatalf("build sslmem: %v\n%s", err, out)
	}
	cert, key := writeCert(t, dir)
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"TLS1.2", []string{"12"}},
		{"TLS1.3 AES_256_GCM_SHA384", []string{"13", "TLS_AES_256_GCM_SHA384"}},
		{"TLS1.3 AES_128_GCM_SHA256", []string{"13", "TLS_AES_128_GCM_SHA256"}},
		{"TLS1.3 CHACHA20_POLY1305_SHA256", []string{"13", "TLS_CHACHA20_POLY1305_SHA256"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := exec.Command(bin, append([]string{cert, key}, tc.args...)...).Output()
			if err != nil {
				t.Fatalf("sslmem: %v", err)
			}
			m := parseSSLMem(t, out)
			ver, err := ParseVersion(m.version)
			if err != nil {
				t.Fatal(err)
			}
			row, err := Lookup(ver)
			if err != nil {
				t.Fatalf("the installed OpenSSL is not in the table: %v", err)
			}
			t.Logf("%s: table row %s-%s, verified on %q", m.version, row.From, row.To, row.Verified)
			checkOffsets(t, m, row.Offsets)
		})
	}
}

func checkOffsets(t *testing.T, m sslMem, o Offsets) {
	t.Helper()
	u32 := func(b []byte, off uint32) (uint32, bool) {
		if v := at(b, off, 4); v != nil {
			return binary.NativeEndian.Uint32(v), true
		}
		return 0, false
	}
	u64 := func(b []byte, off uint32) (uint64, bool) {
		if v := at(b, off, 8); v != nil {
			return binary.NativeEndian.Uint64(v), true
		}
		return 0, false
	}
	le64 := func(v uint64) []byte { return binary.NativeEndian.AppendUint64(nil, v) }
	check := func(field string, ok bool, where func() []string) {
		if !ok {
			t.Errorf("%s: the table's offset is wrong; the value is at %v", field, where())
		}
	}
	v, ok := u32(m.ssl, o.Version)
	check("SSL.version", ok && int32(v) == m.tlsVersion, func() []string {
		return find(m.ssl[:min(len(m.ssl), 0x200)], binary.NativeEndian.AppendUint32(nil, uint32(m.tlsVersion)))
	})
	if o.S3Pointer {
		t.Errorf("the installed OpenSSL's row reads the client random through the s3 pointer; this test only checks embedded s3 state")
		return
	}
	check("SSL.s3.client_random", bytes.Equal(at(m.ssl, o.ClientRandom, 32), m.clientRandom), func() []string { return find(m.ssl, m.clientRandom) })
	p, ok := u64(m.ssl, o.Session)
	check("SSL.session", ok && p == m.sessionPtr, func() []string { return find(m.ssl, le64(m.sessionPtr)) })
	n, ok := u64(m.session, o.MasterKeyLength)
	check("SSL_SESSION.master_key_length", ok && n == uint64(len(m.masterKey)), func() []string { return find(m.session[:0x40], le64(uint64(len(m.masterKey)))) })
	check("SSL_SESSION.master_key", bytes.Equal(at(m.session, o.MasterKey, len(m.masterKey)), m.masterKey), func() []string { return find(m.session, m.masterKey) })
	p, ok = u64(m.session, o.Cipher)
	check("SSL_SESSION.cipher", ok && p == m.cipherPtr, func() []string { return find(m.session, le64(m.cipherPtr)) })
	id, ok := u32(m.cipher, o.CipherID)
	check("SSL_CIPHER.id", ok && id == m.cipherID, func() []string { return find(m.cipher, binary.NativeEndian.AppendUint32(nil, m.cipherID)) })

	// The lines the collector would make of these structs.
	c := conn{version: m.tlsVersion, cipherID: m.cipherID, clientRandom: [32]byte(m.clientRandom)}
	if m.tlsVersion == 0x0304 {
		for _, f := range []struct {
			name  string
			off   uint32
			dst   *[]byte
			label string
		}{
			{"client_app_traffic_secret", o.ClientAppSecret, &c.clientApp, ClientTrafficSecret0},
			{"server_app_traffic_secret", o.ServerAppSecret, &c.serverApp, ServerTrafficSecret0},
			{"exporter_master_secret", o.ExporterSecret, &c.exporter, ExporterSecret},
			{"handshake_secret", o.HandshakeSecret, &c.handshakeSecret, ""},
			{"handshake_traffic_hash", o.HandshakeHash, &c.handshakeHash, ""},
		} {
			*f.dst = at(m.ssl, f.off, 64)
			if f.label != "" {
				want := m.keylog[f.label]
				check("SSL."+f.name, len(want) > 0 && bytes.HasPrefix(*f.dst, want), func() []string { return find(m.ssl, want) })
			}
		}
	} else {
		c.masterKey = at(m.session, o.MasterKey, int(n))
	}
	secrets, err := c.secrets()
	if err != nil {
		t.Fatalf("lines from the structs: %v", err)
	}
	var got []string
	for _, s := range secrets {
		got = append(got, strings.TrimSuffix(string(s.AppendLine(nil)), "\n"))
	}
	want := slices.Clone(m.keylogLines)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("lines made from the structs differ from the library's key log: got labels %v, want %v (identical lines: %d)",
			labels(got), labels(want), common(got, want))
	}
}
