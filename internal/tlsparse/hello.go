package tlsparse

import (
	"bytes"
	"errors"
	"strings"
	"unicode/utf8"

	"golang.org/x/crypto/cryptobyte"
)

// Extension types read from the hellos.
const (
	extServerName        = 0
	extALPN              = 16
	extEncryptThenMAC    = 22
	extExtendedMaster    = 23
	extPreSharedKey      = 41
	extSupportedVersions = 43
)

// Bounds on what a hello may contribute to a row.
const (
	maxNameLen = 255 // SNI host name and ALPN protocol id
	maxListLen = 256 // entries kept per offered list
)

// helloRetryRandom is the ServerHello.random that marks a
// HelloRetryRequest: SHA-256("HelloRetryRequest") (RFC 8446 §4.1.3).
var helloRetryRandom = []byte{
	0xCF, 0x21, 0xAD, 0x74, 0xE5, 0x9A, 0x61, 0x11, 0xBE, 0x1D, 0x8C, 0x02, 0x1E, 0x65, 0xB8, 0x91,
	0xC2, 0xA2, 0x11, 0x16, 0x7A, 0xBB, 0x8C, 0x5E, 0x07, 0x9E, 0x09, 0xE2, 0xC8, 0xA8, 0x33, 0x9C,
}

var (
	errMalformedClientHello = errors.New("malformed ClientHello")
	errMalformedServerHello = errors.New("malformed ServerHello")
)

// isGREASE reports whether v is a GREASE value (RFC 8701): 0x?a?a with
// both bytes equal.
func isGREASE(v uint16) bool {
	return v&0x0f0f == 0x0a0a && v>>8 == v&0xff
}

// clientHello holds what the stream keeps from a ClientHello beyond Hello.
type clientHello struct {
	sessionID    [32]byte
	sessionIDLen int
}

// parseClientHello fills h (and ch) from a ClientHello body (RFC 8446
// §4.1.2, RFC 5246 §7.4.1.2). Fields decoded before an error are kept.
func parseClientHello(body []byte, h *Hello, ch *clientHello) error {
	s := cryptobyte.String(body)
	var version uint16
	var random []byte
	var sid, suites, comp cryptobyte.String
	if !s.ReadUint16(&version) || !s.ReadBytes(&random, 32) {
		return errMalformedClientHello
	}
	h.ClientRandom = bytes.Clone(random)
	if !s.ReadUint8LengthPrefixed(&sid) || len(sid) > 32 {
		return errMalformedClientHello
	}
	ch.sessionIDLen = copy(ch.sessionID[:], sid)
	if !s.ReadUint16LengthPrefixed(&suites) || len(suites)%2 != 0 {
		return errMalformedClientHello
	}
	h.CipherSuitesOffered = make([]uint16, 0, min(len(suites)/2, maxListLen))
	for !suites.Empty() {
		var cs uint16
		suites.ReadUint16(&cs)
		if !isGREASE(cs) && len(h.CipherSuitesOffered) < maxListLen {
			h.CipherSuitesOffered = append(h.CipherSuitesOffered, cs)
		}
	}
	if !s.ReadUint8LengthPrefixed(&comp) {
		return errMalformedClientHello
	}
	sawVersions := false
	if !s.Empty() {
		var exts cryptobyte.String
		if !s.ReadUint16LengthPrefixed(&exts) {
			return errMalformedClientHello
		}
		for !exts.Empty() {
			var typ uint16
			var data cryptobyte.String
			if !exts.ReadUint16(&typ) || !exts.ReadUint16LengthPrefixed(&data) {
				return errMalformedClientHello
			}
			switch typ {
			case extServerName:
				if h.SNI == "" {
					h.SNI = parseSNI(data)
				}
			case extALPN:
				var list cryptobyte.String
				if !data.ReadUint16LengthPrefixed(&list) {
					return errMalformedClientHello
				}
				for !list.Empty() {
					var proto cryptobyte.String
					if !list.ReadUint8LengthPrefixed(&proto) {
						return errMalformedClientHello
					}
					if len(h.ALPNOffered) < maxListLen {
						h.ALPNOffered = append(h.ALPNOffered, text(proto))
					}
				}
			case extSupportedVersions:
				var list cryptobyte.String
				if !data.ReadUint8LengthPrefixed(&list) || len(list)%2 != 0 {
					return errMalformedClientHello
				}
				sawVersions = true
				for !list.Empty() {
					var v uint16
					list.ReadUint16(&v)
					if !isGREASE(v) && len(h.OfferedVersions) < maxListLen {
						h.OfferedVersions = append(h.OfferedVersions, v)
					}
				}
			}
		}
	}
	if !sawVersions {
		h.OfferedVersions = append(h.OfferedVersions[:0], version)
	}
	return nil
}

// parseSNI returns the first host_name of a server_name extension, or "".
func parseSNI(data cryptobyte.String) string {
	var list cryptobyte.String
	if !data.ReadUint16LengthPrefixed(&list) {
		return ""
	}
	for !list.Empty() {
		var typ uint8
		var name cryptobyte.String
		if !list.ReadUint8(&typ) || !list.ReadUint16LengthPrefixed(&name) {
			return ""
		}
		if typ == 0 {
			return text(name)
		}
	}
	return ""
}

// text turns a name from the wire into a bounded, valid UTF-8 string.
func text(b []byte) string {
	if len(b) > maxNameLen {
		b = b[:maxNameLen]
	}
	if utf8.Valid(b) {
		return string(b)
	}
	t := strings.ToValidUTF8(string(b), "\uFFFD")
	// Replacement characters are 3 bytes: keep the bound after repair,
	// cutting at a rune boundary.
	for len(t) > maxNameLen {
		_, n := utf8.DecodeLastRuneInString(t)
		t = t[:len(t)-n]
	}
	return t
}

// serverHello holds what the stream keeps from a ServerHello beyond Hello.
type serverHello struct {
	sessionID    [32]byte
	sessionIDLen int
	// tls13 is set when the ServerHello carried supported_versions, which
	// only TLS 1.3 (and its drafts) send.
	tls13 bool
	// psk is set when the server accepted a pre-shared key (TLS 1.3
	// resumption).
	psk bool
}

// parseServerHello fills h (and sh) from a ServerHello body. It reports
// retry when the message is a HelloRetryRequest, in which case h is left
// untouched.
func parseServerHello(body []byte, h *Hello, sh *serverHello) (retry bool, err error) {
	s := cryptobyte.String(body)
	var version, suite uint16
	var random []byte
	var sid cryptobyte.String
	var comp uint8
	if !s.ReadUint16(&version) || !s.ReadBytes(&random, 32) ||
		!s.ReadUint8LengthPrefixed(&sid) || len(sid) > 32 ||
		!s.ReadUint16(&suite) || !s.ReadUint8(&comp) {
		return false, errMalformedServerHello
	}
	if bytes.Equal(random, helloRetryRandom) {
		return true, nil
	}
	h.ServerVersion = version
	h.CipherSuite = suite
	h.ServerRandom = bytes.Clone(random)
	sh.sessionIDLen = copy(sh.sessionID[:], sid)
	if s.Empty() {
		return false, nil
	}
	var exts cryptobyte.String
	if !s.ReadUint16LengthPrefixed(&exts) {
		return false, errMalformedServerHello
	}
	for !exts.Empty() {
		var typ uint16
		var data cryptobyte.String
		if !exts.ReadUint16(&typ) || !exts.ReadUint16LengthPrefixed(&data) {
			return false, errMalformedServerHello
		}
		switch typ {
		case extSupportedVersions:
			var v uint16
			if !data.ReadUint16(&v) {
				return false, errMalformedServerHello
			}
			h.ServerVersion = v
			sh.tls13 = true
		case extALPN:
			var list, proto cryptobyte.String
			if !data.ReadUint16LengthPrefixed(&list) || !list.ReadUint8LengthPrefixed(&proto) {
				return false, errMalformedServerHello
			}
			h.ALPN = text(proto)
		case extPreSharedKey:
			sh.psk = true
		case extEncryptThenMAC:
			h.EncryptThenMAC = true
		case extExtendedMaster:
			h.ExtendedMasterSecret = true
		}
	}
	return false, nil
}
