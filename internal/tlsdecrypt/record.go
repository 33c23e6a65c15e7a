package tlsdecrypt

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/des"
	"crypto/hmac"
	"crypto/rc4"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"

	"golang.org/x/crypto/chacha20poly1305"
)

// errAuth reports a record that did not authenticate: wrong keys, a wrong
// sequence number, or damaged data (the bad_record_mac of RFC 8446 §6.2).
var errAuth = errors.New("record authentication failed")

// errShort reports a record too short for the protection of its suite.
var errShort = errors.New("record too short for its cipher")

// cbcMode is the CBC decrypter of crypto/cipher, whose IV can be reset so
// that one decrypter serves every record.
type cbcMode interface {
	cipher.BlockMode
	SetIV([]byte)
}

// recordCipher decrypts the records of one direction under one key: the
// read state of RFC 5246 §6.1 and RFC 8446 §5. It holds keys, so it is
// never serialized; the sequence number (and the public stream position
// of RC4 and TLS 1.0 CBC) is, and the keys are derived again from the key
// log.
type recordCipher struct {
	s       *suite
	tls13   bool
	version uint16 // negotiated version, for the TLS 1.0 CBC IV rule
	etm     bool   // encrypt_then_mac negotiated (CBC only)
	aead    cipher.AEAD
	cbc     cbcMode
	rc4     *rc4.Cipher
	mac     hash.Hash
	macLen  int
	// iv is the implicit nonce part (AEAD) or, for TLS 1.0 CBC, the IV of
	// the next record: the last ciphertext block of the previous one.
	iv  []byte
	seq uint64
	// streamPos counts the RC4 key stream bytes used.
	streamPos int64
	// Scratch for one record, kept here so that decrypting allocates
	// nothing.
	nonce [12]byte
	hdr   [13]byte
	sum   [64]byte
}

// newRecordCipher returns the read state of one direction.
func newRecordCipher(s *suite, version uint16, etm bool, km keyMaterial) (*recordCipher, error) {
	rc := &recordCipher{s: s, tls13: version == 0x0304, version: version, etm: etm && s.kind == kindCBC}
	if len(km.key) != s.keyLen {
		return nil, fmt.Errorf("key of %d bytes, suite needs %d", len(km.key), s.keyLen)
	}
	rc.iv = append([]byte(nil), km.iv...)
	var err error
	switch s.kind {
	case kindGCM:
		var b cipher.Block
		if b, err = aes.NewCipher(km.key); err == nil {
			rc.aead, err = cipher.NewGCM(b)
		}
	case kindChaCha:
		rc.aead, err = chacha20poly1305.New(km.key)
	case kindCBC:
		var b cipher.Block
		if s.block == block3DES {
			b, err = des.NewTripleDESCipher(km.key)
		} else {
			b, err = aes.NewCipher(km.key)
		}
		if err == nil {
			m, ok := cipher.NewCBCDecrypter(b, make([]byte, b.BlockSize())).(cbcMode)
			if !ok {
				return nil, errors.New("CBC decrypter cannot reset its IV")
			}
			rc.cbc = m
		}
	case kindRC4:
		rc.rc4, err = rc4.NewCipher(km.key)
	}
	if err != nil {
		return nil, err
	}
	if s.kind == kindCBC || s.kind == kindRC4 {
		rc.mac = hmac.New(s.mac.hash(), km.mac)
		rc.macLen = s.mac.size()
	}
	return rc, nil
}

// skipStream advances the RC4 key stream by n bytes (a record lost to a
// gap, or the position a restored connection had reached).
func (rc *recordCipher) skipStream(n int64) {
	if rc.rc4 == nil {
		return
	}
	var buf [4096]byte
	for n > 0 {
		k := min(n, int64(len(buf)))
		rc.rc4.XORKeyStream(buf[:k], buf[:k])
		n -= k
	}
}

// open decrypts and authenticates one record (header type typ and
// version ver, fragment frag) into dst, which must not overlap frag and
// have room for len(frag) bytes. It returns the plaintext and its content
// type (the inner type in TLS 1.3) and advances the sequence number.
func (rc *recordCipher) open(dst []byte, typ uint8, ver uint16, frag []byte) ([]byte, uint8, error) {
	dst = dst[:0]
	var pt []byte
	var err error
	switch {
	case rc.tls13:
		pt, typ, err = rc.open13(dst, typ, ver, frag)
	case rc.aead != nil:
		pt, err = rc.openAEAD12(dst, typ, ver, frag)
	case rc.cbc != nil:
		pt, err = rc.openCBC(dst, typ, ver, frag)
	default:
		pt, err = rc.openRC4(dst, typ, ver, frag)
	}
	if err != nil {
		return nil, 0, err
	}
	rc.seq++
	return pt, typ, nil
}

// xorNonce sets rc.nonce to the IV XOR the sequence number (RFC 8446 §5.3,
// RFC 7905 §2).
func (rc *recordCipher) xorNonce() []byte {
	copy(rc.nonce[:], rc.iv)
	var s [8]byte
	binary.BigEndian.PutUint64(s[:], rc.seq)
	for i := range s {
		rc.nonce[4+i] ^= s[i]
	}
	return rc.nonce[:12]
}

func (rc *recordCipher) open13(dst []byte, typ uint8, ver uint16, frag []byte) ([]byte, uint8, error) {
	if len(frag) < rc.aead.Overhead()+1 {
		return nil, 0, errShort
	}
	h := rc.hdr[:5]
	h[0], h[1], h[2] = typ, byte(ver>>8), byte(ver)
	binary.BigEndian.PutUint16(h[3:], uint16(len(frag)))
	pt, err := rc.aead.Open(dst, rc.xorNonce(), frag, h)
	if err != nil {
		return nil, 0, errAuth
	}
	// TLSInnerPlaintext: content, the real type, zero padding.
	i := len(pt) - 1
	for i >= 0 && pt[i] == 0 {
		i--
	}
	if i < 0 {
		return nil, 0, errors.New("TLS 1.3 record without a content type")
	}
	return pt[:i], pt[i], nil
}

// addHeader sets rc.hdr to the TLS 1.2 MAC or AAD header: sequence number,
// type, version, length.
func (rc *recordCipher) addHeader(typ uint8, ver uint16, n int) []byte {
	binary.BigEndian.PutUint64(rc.hdr[:8], rc.seq)
	rc.hdr[8] = typ
	binary.BigEndian.PutUint16(rc.hdr[9:], ver)
	binary.BigEndian.PutUint16(rc.hdr[11:], uint16(n))
	return rc.hdr[:13]
}

func (rc *recordCipher) openAEAD12(dst []byte, typ uint8, ver uint16, frag []byte) ([]byte, error) {
	var nonce []byte
	if rc.s.kind == kindGCM {
		// The explicit nonce leads the fragment (RFC 5288 §3).
		if len(frag) < 8+rc.aead.Overhead() {
			return nil, errShort
		}
		copy(rc.nonce[:4], rc.iv)
		copy(rc.nonce[4:], frag[:8])
		nonce, frag = rc.nonce[:12], frag[8:]
	} else {
		if len(frag) < rc.aead.Overhead() {
			return nil, errShort
		}
		nonce = rc.xorNonce()
	}
	aad := rc.addHeader(typ, ver, len(frag)-rc.aead.Overhead())
	pt, err := rc.aead.Open(dst, nonce, frag, aad)
	if err != nil {
		return nil, errAuth
	}
	return pt, nil
}

// checkMAC verifies the HMAC of data (RFC 5246 §6.2.3.1).
func (rc *recordCipher) checkMAC(typ uint8, ver uint16, data, want []byte) bool {
	rc.mac.Reset()
	rc.mac.Write(rc.addHeader(typ, ver, len(data)))
	rc.mac.Write(data)
	return hmac.Equal(rc.mac.Sum(rc.sum[:0]), want)
}

func (rc *recordCipher) openCBC(dst []byte, typ uint8, ver uint16, frag []byte) ([]byte, error) {
	bs := rc.cbc.BlockSize()
	enc := frag
	if rc.etm {
		// RFC 7366: the MAC covers the IV and ciphertext.
		if len(frag) < rc.macLen {
			return nil, errShort
		}
		enc = frag[:len(frag)-rc.macLen]
		if !rc.checkMAC(typ, ver, enc, frag[len(enc):]) {
			return nil, errAuth
		}
	}
	iv := rc.iv
	if rc.version >= 0x0302 {
		// TLS 1.1+: an explicit IV leads the fragment.
		if len(enc) < bs {
			return nil, errShort
		}
		iv, enc = enc[:bs], enc[bs:]
	}
	if len(enc) == 0 || len(enc)%bs != 0 {
		return nil, errShort
	}
	pt := dst[:len(enc)]
	rc.cbc.SetIV(iv)
	rc.cbc.CryptBlocks(pt, enc)
	if rc.version < 0x0302 {
		copy(rc.iv, enc[len(enc)-bs:])
	}
	// Padding: n bytes of value n, then n itself.
	pad := int(pt[len(pt)-1])
	if pad+1 > len(pt) {
		return nil, errAuth
	}
	for _, b := range pt[len(pt)-1-pad:] {
		if int(b) != pad {
			return nil, errAuth
		}
	}
	pt = pt[:len(pt)-1-pad]
	if rc.etm {
		return pt, nil
	}
	if len(pt) < rc.macLen {
		return nil, errAuth
	}
	data := pt[:len(pt)-rc.macLen]
	if !rc.checkMAC(typ, ver, data, pt[len(data):]) {
		return nil, errAuth
	}
	return data, nil
}

func (rc *recordCipher) openRC4(dst []byte, typ uint8, ver uint16, frag []byte) ([]byte, error) {
	if len(frag) < rc.macLen {
		return nil, errShort
	}
	pt := dst[:len(frag)]
	rc.rc4.XORKeyStream(pt, frag)
	rc.streamPos += int64(len(frag))
	data := pt[:len(pt)-rc.macLen]
	if !rc.checkMAC(typ, ver, data, pt[len(data):]) {
		return nil, errAuth
	}
	return data, nil
}
