package tlskeys

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
)

// Offsets says where one OpenSSL version keeps what the eBPF programs
// read, in bytes from the start of the struct named in each comment. SSL
// is struct ssl_st, which from OpenSSL 3.2 on is the first member of
// struct ssl_connection_st (an SSL * of a TLS connection points to it).
type Offsets struct {
	Version         uint32 // int version, in SSL
	S3              uint32 // struct ssl3_state_st *s3, in SSL (when S3Pointer)
	S3Pointer       bool   // ClientRandom is in *s3 (1.1.1), not in SSL (3.x, s3 embedded)
	ClientRandom    uint32 // unsigned char client_random[32]
	Session         uint32 // SSL_SESSION *session, in SSL
	MasterKeyLength uint32 // size_t master_key_length, in SSL_SESSION
	MasterKey       uint32 // unsigned char master_key[48…], in SSL_SESSION
	Cipher          uint32 // const SSL_CIPHER *cipher, in SSL_SESSION
	CipherID        uint32 // uint32_t id, in SSL_CIPHER
	HandshakeSecret uint32 // unsigned char handshake_secret[EVP_MAX_MD_SIZE], in SSL
	HandshakeHash   uint32 // handshake_traffic_hash: transcript hash ClientHello…ServerHello
	ClientAppSecret uint32 // client_app_traffic_secret
	ServerAppSecret uint32 // server_app_traffic_secret
	ExporterSecret  uint32 // exporter_master_secret
}

// Version is an OpenSSL version: 3.0.19, 1.1.1w.
type Version struct {
	Major, Minor, Patch int
	Letter              byte // 1.1.1's letter releases; 0 for 3.x
}

func (v Version) String() string {
	s := fmt.Sprintf("%d.%d.%d", v.Major, v.Minor, v.Patch)
	if v.Letter != 0 {
		s += string(v.Letter)
	}
	return s
}

// Compare returns -1, 0 or +1.
func (v Version) Compare(o Version) int {
	for _, d := range [...]int{v.Major - o.Major, v.Minor - o.Minor, v.Patch - o.Patch, int(v.Letter) - int(o.Letter)} {
		switch {
		case d < 0:
			return -1
		case d > 0:
			return 1
		}
	}
	return 0
}

var versionRE = regexp.MustCompile(`OpenSSL (\d{1,2})\.(\d{1,2})\.(\d{1,3})([a-z]?)[ \x00-]`)

// ParseVersion reads the version out of an OpenSSL version text such as
// "OpenSSL 3.0.19 27 Jan 2026" or "OpenSSL 1.1.1w  11 Sep 2023".
func ParseVersion(text string) (Version, error) {
	m := versionRE.FindStringSubmatch(text + " ")
	if m == nil {
		return Version{}, fmt.Errorf("%q: not an OpenSSL version text (want \"OpenSSL x.y.z …\")", text)
	}
	var v Version
	v.Major, _ = strconv.Atoi(m[1])
	v.Minor, _ = strconv.Atoi(m[2])
	v.Patch, _ = strconv.Atoi(m[3])
	if m[4] != "" {
		v.Letter = m[4][0]
	}
	return v, nil
}

// Layout is one row of the offsets table: the OpenSSL versions From…To
// (inclusive) that share a struct layout.
type Layout struct {
	From, To Version
	Offsets  Offsets
	// Verified names the builds on which a test compared the key log lines
	// that the eBPF programs produced with the library's own key log, byte
	// for byte; empty when the row is known only from OpenSSL's headers.
	Verified string
	// Source says where the offsets come from.
	Source string
}

// ErrUnsupportedVersion reports an OpenSSL version the table does not know.
var ErrUnsupportedVersion = errors.New("no struct offsets for this OpenSSL version")

// layout30 is OpenSSL 3.0 and 3.1: struct ssl_st with the s3 state embedded.
var layout30 = Offsets{
	Version: 0x0, ClientRandom: 0x160, Session: 0x918,
	MasterKeyLength: 0x8, MasterKey: 0x50, Cipher: 0x2f8, CipherID: 0x18,
	HandshakeSecret: 0x584, HandshakeHash: 0x704,
	ClientAppSecret: 0x744, ServerAppSecret: 0x784, ExporterSecret: 0x7c4,
}

// layout32 is OpenSSL 3.2.0-3.2.2 and 3.3.0-3.3.1: struct ssl_connection_st.
var layout32 = Offsets{
	Version: 0x40, ClientRandom: 0x140, Session: 0x880,
	MasterKeyLength: 0x8, MasterKey: 0x50, Cipher: 0x300, CipherID: 0x18,
	HandshakeSecret: 0x53c, HandshakeHash: 0x6bc,
	ClientAppSecret: 0x6fc, ServerAppSecret: 0x73c, ExporterSecret: 0x77c,
}

// layout323 is layout32 with SSL_SESSION's cipher 8 bytes earlier.
var layout323 = with(layout32, func(o *Offsets) { o.Cipher = 0x2f8 })

// layout324 is OpenSSL 3.2.4+, 3.3.3+, 3.4.1+: 8 more bytes in ssl_st.
var layout324 = Offsets{
	Version: 0x48, ClientRandom: 0x148, Session: 0x888,
	MasterKeyLength: 0x8, MasterKey: 0x50, Cipher: 0x2f8, CipherID: 0x18,
	HandshakeSecret: 0x544, HandshakeHash: 0x6c4,
	ClientAppSecret: 0x704, ServerAppSecret: 0x744, ExporterSecret: 0x784,
}

func with(o Offsets, f func(*Offsets)) Offsets { f(&o); return o }

func v(major, minor, patch int) Version { return Version{Major: major, Minor: minor, Patch: patch} }

func v111(letter byte) Version { return Version{Major: 1, Minor: 1, Patch: 1, Letter: letter} }

const headersSource = "OpenSSL's ssl/ssl_local.h of the release, as compiled into eCapture's generated offset tables (github.com/gojue/ecapture kern/openssl_*_kern.c)"

// Table is the struct layout of each supported OpenSSL version. Rows are
// data: a new OpenSSL release with a new layout is a new row (found with
// TestOffsetsOfInstalledOpenSSL's memory scan, which prints the offsets
// it finds, and verified with the live eBPF test).
var Table = []Layout{
	{
		From: v111('j'), To: v111('w'),
		Offsets: Offsets{
			Version: 0x0, S3: 0xa8, S3Pointer: true, ClientRandom: 0xb8, Session: 0x510,
			MasterKeyLength: 0x8, MasterKey: 0x50, Cipher: 0x1f0, CipherID: 0x18,
			HandshakeSecret: 0x17c, HandshakeHash: 0x2fc,
			ClientAppSecret: 0x33c, ServerAppSecret: 0x37c, ExporterSecret: 0x3bc,
		},
		Source: headersSource,
	},
	{From: v(3, 0, 0), To: v(3, 0, 11), Offsets: layout30, Source: headersSource},
	{
		From: v(3, 0, 12), To: v(3, 0, 12), Offsets: with(layout30, func(o *Offsets) { o.Session = 0x938 }),
		Source: headersSource,
	},
	{
		From: v(3, 0, 13), To: v(3, 0, 99), Offsets: layout30,
		Verified: "3.0.19 (Debian 12 libssl3 3.0.19-1~deb12u2, amd64)",
		Source:   "memory scan of the SSL structs of real handshakes (TestOffsetsOfInstalledOpenSSL), agreeing with " + headersSource,
	},
	{From: v(3, 1, 0), To: v(3, 1, 99), Offsets: layout30, Source: headersSource},
	{From: v(3, 2, 0), To: v(3, 2, 2), Offsets: layout32, Source: headersSource},
	{From: v(3, 2, 3), To: v(3, 2, 3), Offsets: layout323, Source: headersSource},
	{From: v(3, 2, 4), To: v(3, 2, 99), Offsets: layout324, Source: headersSource},
	{From: v(3, 3, 0), To: v(3, 3, 1), Offsets: layout32, Source: headersSource},
	{From: v(3, 3, 2), To: v(3, 3, 2), Offsets: layout323, Source: headersSource},
	{From: v(3, 3, 3), To: v(3, 3, 99), Offsets: layout324, Source: headersSource},
	{From: v(3, 4, 0), To: v(3, 4, 0), Offsets: layout323, Source: headersSource},
	{From: v(3, 4, 1), To: v(3, 4, 99), Offsets: layout324, Source: headersSource},
	{
		From: v(3, 5, 0), To: v(3, 5, 99),
		Offsets: Offsets{
			Version: 0x48, ClientRandom: 0x188, Session: 0x900,
			MasterKeyLength: 0x8, MasterKey: 0x50, Cipher: 0x2f8, CipherID: 0x18,
			HandshakeSecret: 0x5bc, HandshakeHash: 0x73c,
			ClientAppSecret: 0x77c, ServerAppSecret: 0x7bc, ExporterSecret: 0x7fc,
		},
		Source: headersSource,
	},
}

// Lookup returns the table row of an OpenSSL version.
func Lookup(ver Version) (Layout, error) {
	for _, l := range Table {
		if ver.Compare(l.From) >= 0 && ver.Compare(l.To) <= 0 {
			return l, nil
		}
	}
	return Layout{}, fmt.Errorf("OpenSSL %s: %w (known: 1.1.1j-1.1.1w, 3.0-3.5)", ver, ErrUnsupportedVersion)
}
