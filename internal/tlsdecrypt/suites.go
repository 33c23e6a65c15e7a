package tlsdecrypt

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"hash"
)

// cipherKind is how a suite protects records.
type cipherKind uint8

const (
	kindGCM    cipherKind = iota + 1 // AES-GCM (RFC 5288, RFC 8446)
	kindChaCha                       // ChaCha20-Poly1305 (RFC 7905, RFC 8446)
	kindCBC                          // block cipher in CBC mode with HMAC (RFC 5246 §6.2.3.2)
	kindRC4                          // RC4 stream cipher with HMAC (RFC 5246 §6.2.3.1)
)

// blockCipher names the block cipher of a CBC suite.
type blockCipher uint8

const (
	blockAES blockCipher = iota + 1
	block3DES
)

// macKind names the HMAC hash of a CBC or RC4 suite.
type macKind uint8

const (
	macNone macKind = iota
	macMD5
	macSHA1
	macSHA256
	macSHA384
)

// suite is one cipher suite as decryption needs it. The key exchange does
// not matter when the key log gives the master secret (TLS 1.2) or the
// traffic secrets (TLS 1.3); for the RSA key exchange it may instead give
// the premaster secret (an NSS "RSA" line).
type suite struct {
	id     uint16
	kind   cipherKind
	block  blockCipher // kindCBC only
	keyLen int
	mac    macKind // kindCBC and kindRC4
	// sha384 selects SHA-384 for the TLS 1.2 PRF or the TLS 1.3 HKDF;
	// otherwise SHA-256 (and the MD5/SHA-1 PRF before TLS 1.2).
	sha384 bool
	// tls13 marks the TLS 1.3 suites, which no other version uses.
	tls13 bool
	// rsaKex marks the suites whose premaster secret the client sends
	// encrypted with the server's RSA key (TLS_RSA_WITH_*).
	rsaKex bool
}

// suites lists the suites this package decrypts, by IANA number (TLS
// Cipher Suites registry). Others (CCM, Camellia, ARIA, NULL, export) are
// reported as unsupported.
var suites = map[uint16]suite{}

func init() {
	add := func(kind cipherKind, block blockCipher, keyLen int, mac macKind, sha384 bool, ids ...uint16) {
		for _, id := range ids {
			suites[id] = suite{id: id, kind: kind, block: block, keyLen: keyLen, mac: mac, sha384: sha384}
		}
	}
	// TLS 1.3 (RFC 8446 §B.4).
	suites[0x1301] = suite{id: 0x1301, kind: kindGCM, keyLen: 16, tls13: true}
	suites[0x1302] = suite{id: 0x1302, kind: kindGCM, keyLen: 32, sha384: true, tls13: true}
	suites[0x1303] = suite{id: 0x1303, kind: kindChaCha, keyLen: 32, tls13: true}

	// AES-GCM, TLS 1.2: RSA, DHE_RSA, DH_RSA, DHE_DSS, DH_DSS, PSK,
	// ECDHE_ECDSA, ECDH_ECDSA, ECDHE_RSA, ECDH_RSA, ECDHE_PSK.
	add(kindGCM, 0, 16, macNone, false, 0x009c, 0x009e, 0x00a0, 0x00a2, 0x00a4, 0x00a8, 0x00aa, 0x00ac,
		0xc02b, 0xc02d, 0xc02f, 0xc031, 0xd001)
	add(kindGCM, 0, 32, macNone, true, 0x009d, 0x009f, 0x00a1, 0x00a3, 0x00a5, 0x00a9, 0x00ab, 0x00ad,
		0xc02c, 0xc02e, 0xc030, 0xc032, 0xd002)
	// ChaCha20-Poly1305, TLS 1.2 (RFC 7905).
	add(kindChaCha, 0, 32, macNone, false, 0xcca8, 0xcca9, 0xccaa, 0xccab, 0xccac, 0xccad, 0xccae)

	// AES-CBC with HMAC-SHA1 (TLS 1.0–1.2).
	add(kindCBC, blockAES, 16, macSHA1, false, 0x002f, 0x0030, 0x0031, 0x0032, 0x0033, 0x0034, 0x008c, 0x0090, 0x0094,
		0xc004, 0xc009, 0xc00e, 0xc013, 0xc018, 0xc035)
	add(kindCBC, blockAES, 32, macSHA1, false, 0x0035, 0x0036, 0x0037, 0x0038, 0x0039, 0x003a, 0x008d, 0x0091, 0x0095,
		0xc005, 0xc00a, 0xc00f, 0xc014, 0xc019, 0xc036)
	// AES-CBC with HMAC-SHA256 / SHA384 (TLS 1.2).
	add(kindCBC, blockAES, 16, macSHA256, false, 0x003c, 0x003e, 0x003f, 0x0040, 0x0067, 0x006c, 0x00ae, 0x00b2, 0x00b6,
		0xc023, 0xc025, 0xc027, 0xc029, 0xc037)
	add(kindCBC, blockAES, 32, macSHA256, false, 0x003d, 0x0068, 0x0069, 0x006a, 0x006b, 0x006d)
	add(kindCBC, blockAES, 32, macSHA384, true, 0x00af, 0x00b3, 0x00b7, 0xc024, 0xc026, 0xc028, 0xc02a, 0xc038)
	// 3DES-EDE-CBC with HMAC-SHA1.
	add(kindCBC, block3DES, 24, macSHA1, false, 0x000a, 0x000d, 0x0010, 0x0013, 0x0016, 0x001b, 0x008b, 0x008f, 0x0093,
		0xc003, 0xc008, 0xc00d, 0xc012, 0xc017, 0xc034)
	// RC4 with HMAC-MD5 / HMAC-SHA1.
	add(kindRC4, 0, 16, macMD5, false, 0x0004, 0x0018)
	add(kindRC4, 0, 16, macSHA1, false, 0x0005, 0x008a, 0x008e, 0x0092, 0xc002, 0xc007, 0xc00c, 0xc011, 0xc016, 0xc033)

	// The RSA key exchange: RC4-MD5, RC4-SHA, 3DES-SHA, AES128-SHA,
	// AES256-SHA, AES128-SHA256, AES256-SHA256, AES128-GCM, AES256-GCM.
	for _, id := range []uint16{0x0004, 0x0005, 0x000a, 0x002f, 0x0035, 0x003c, 0x003d, 0x009c, 0x009d} {
		s := suites[id]
		s.rsaKex = true
		suites[id] = s
	}
}

// Supported reports whether records of cipher suite id can be decrypted.
func Supported(id uint16) bool {
	_, ok := suites[id]
	return ok
}

// macHash returns the constructor of a MAC's hash.
func (m macKind) hash() func() hash.Hash {
	switch m {
	case macMD5:
		return md5.New
	case macSHA1:
		return sha1.New
	case macSHA256:
		return sha256.New
	case macSHA384:
		return sha512.New384
	}
	return nil
}

// size returns the MAC length in bytes.
func (m macKind) size() int {
	switch m {
	case macMD5:
		return md5.Size
	case macSHA1:
		return sha1.Size
	case macSHA256:
		return sha256.Size
	case macSHA384:
		return sha512.Size384
	}
	return 0
}

// prfHash returns the hash of the TLS 1.2 PRF or the TLS 1.3 key schedule.
func (s *suite) prfHash() func() hash.Hash {
	if s.sha384 {
		return sha512.New384
	}
	return sha256.New
}

// blockSize is the cipher block size of a CBC suite.
func (s *suite) blockSize() int {
	if s.block == block3DES {
		return 8
	}
	return 16
}

// fixedIVLen is the length of the write IV of TLS 1.2 key expansion: the
// implicit nonce part of AEAD suites, the CBC IV of TLS 1.0.
func (s *suite) fixedIVLen() int {
	switch s.kind {
	case kindGCM:
		return 4
	case kindChaCha:
		return 12
	case kindCBC:
		return s.blockSize()
	}
	return 0
}
