// Package tlsparse reads TLS handshake metadata from a reassembled TCP
// connection without decrypting it: the ClientHello (random, SNI, offered
// ALPN, versions and cipher suites) and the ServerHello (negotiated version,
// cipher suite, ALPN, resumption), one Hello per connection for the tls
// table.
//
// The record layer (RecordReader) and handshake reassembly
// (HandshakeReader) are exported so that decryption can reuse them. Nothing
// here panics on input; memory per connection is bounded by MaxRecordLen
// plus the handshake bound (DefaultMaxHandshake).
package tlsparse

import (
	"crypto/tls"
	"fmt"
	"strings"
)

// Hello is the handshake metadata of one connection.
type Hello struct {
	// ClientRandom is ClientHello.random (32 bytes), the key of NSS key log
	// lines; nil when no ClientHello was decoded.
	ClientRandom []byte
	// SNI is the first host_name of the server_name extension, as sent.
	SNI string
	// ALPNOffered lists the protocols of the client's ALPN extension.
	ALPNOffered []string
	// OfferedVersions lists the supported_versions extension, or the
	// legacy ClientHello.version when the extension is absent. GREASE
	// values are left out.
	OfferedVersions []uint16
	// CipherSuitesOffered lists the client's cipher suites, GREASE left out.
	CipherSuitesOffered []uint16

	// ServerRandom is ServerHello.random (32 bytes), which TLS 1.2 key
	// expansion needs; nil when no ServerHello was decoded.
	ServerRandom []byte
	// EncryptThenMAC reports that the ServerHello accepted the
	// encrypt_then_mac extension (RFC 7366): CBC records of TLS 1.2 and
	// earlier are then MACed after encryption.
	EncryptThenMAC bool
	// ExtendedMasterSecret reports that the ServerHello accepted the
	// extended_master_secret extension (RFC 7627): the TLS 1.0–1.2 master
	// secret is then derived from the hash of the handshake messages
	// instead of the randoms.
	ExtendedMasterSecret bool

	// ServerVersion is the negotiated version: the ServerHello's
	// supported_versions extension, else its legacy version.
	ServerVersion uint16
	// CipherSuite is the suite the server selected.
	CipherSuite uint16
	// ALPN is the protocol the server selected in the ServerHello (TLS 1.2
	// and earlier; TLS 1.3 sends it encrypted, so it is empty there).
	ALPN string
	// SessionResumed reports an abbreviated handshake: in TLS 1.3 the
	// server accepted a pre-shared key; before, the server echoed the
	// client's non-empty session ID.
	SessionResumed bool

	// SawClientHello and SawServerHello report which hellos were decoded
	// (a HelloRetryRequest does not count as a ServerHello).
	SawClientHello, SawServerHello bool
	// ClientTS and ServerTS are the Unix ns times of the packets that
	// completed the hellos.
	ClientTS, ServerTS int64

	// Error tells why the handshake could not be read completely.
	Error string
}

// VersionName returns "SSL 3.0", "TLS 1.0" … "TLS 1.3" for the protocol
// versions, and "0x%04x" for anything else (drafts, GREASE, garbage).
func VersionName(v uint16) string {
	switch v {
	case 0x0300:
		return "SSL 3.0"
	case 0x0301:
		return "TLS 1.0"
	case 0x0302:
		return "TLS 1.1"
	case 0x0303:
		return "TLS 1.2"
	case 0x0304:
		return "TLS 1.3"
	}
	return fmt.Sprintf("0x%04x", v)
}

// CipherName returns the IANA name of a cipher suite, such as
// "TLS_AES_128_GCM_SHA256" or "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", and
// "0x%04x" for suites it does not know.
func CipherName(id uint16) string {
	if s, ok := cipherNames[id]; ok {
		return s
	}
	if s := tls.CipherSuiteName(id); !strings.HasPrefix(s, "0x") {
		return s
	}
	return fmt.Sprintf("0x%04x", id)
}

// Looks reports whether b, the first bytes of a TCP direction, look like
// the start of a TLS handshake: a handshake record header (0x16, version
// 3.0–3.4) with a sane length, and, when present, a ClientHello or
// ServerHello message type.
func Looks(b []byte) bool {
	if len(b) < 3 || b[0] != RecordHandshake || b[1] != 3 || b[2] > 4 {
		return false
	}
	if len(b) >= 5 {
		if n := int(b[3])<<8 | int(b[4]); n < 4 || n > MaxRecordLen {
			return false
		}
	}
	if len(b) >= 6 && b[5] != HandshakeClientHello && b[5] != HandshakeServerHello {
		return false
	}
	return true
}
