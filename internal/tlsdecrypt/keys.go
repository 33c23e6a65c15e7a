package tlsdecrypt

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha1"
	"hash"
)

// pHash is P_hash of RFC 5246 §5: it fills out with
// HMAC_hash(secret, A(i) + seed), A(0) = seed, A(i) = HMAC_hash(secret, A(i-1)).
func pHash(out, secret, seed []byte, h func() hash.Hash) {
	mac := hmac.New(h, secret)
	mac.Write(seed)
	a := mac.Sum(nil)
	for len(out) > 0 {
		mac.Reset()
		mac.Write(a)
		mac.Write(seed)
		b := mac.Sum(nil)
		out = out[copy(out, b):]
		mac.Reset()
		mac.Write(a)
		a = mac.Sum(a[:0])
	}
}

// prf12 is the TLS 1.2 PRF (RFC 5246 §5) with hash h.
func prf12(out, secret []byte, label string, seed []byte, h func() hash.Hash) {
	ls := make([]byte, 0, len(label)+len(seed))
	ls = append(append(ls, label...), seed...)
	pHash(out, secret, ls, h)
}

// prf10 is the PRF of TLS 1.0 and 1.1 (RFC 2246 §5): P_MD5 over the first
// half of the secret XOR P_SHA1 over the second half.
func prf10(out, secret []byte, label string, seed []byte) {
	ls := make([]byte, 0, len(label)+len(seed))
	ls = append(append(ls, label...), seed...)
	half := (len(secret) + 1) / 2
	pHash(out, secret[:half], ls, md5.New)
	tmp := make([]byte, len(out))
	pHash(tmp, secret[len(secret)-half:], ls, sha1.New)
	for i := range out {
		out[i] ^= tmp[i]
	}
}

// keyBlock12 expands a TLS 1.0–1.2 master secret into the key block
// (RFC 5246 §6.3) and returns its parts for the client and the server.
func keyBlock12(s *suite, version uint16, master, clientRandom, serverRandom []byte) (client, server keyMaterial) {
	macLen, keyLen, ivLen := s.mac.size(), s.keyLen, s.fixedIVLen()
	if s.kind == kindGCM || s.kind == kindChaCha {
		macLen = 0
	}
	out := make([]byte, 2*(macLen+keyLen+ivLen))
	seed := make([]byte, 0, 64)
	seed = append(append(seed, serverRandom...), clientRandom...)
	if version >= 0x0303 {
		prf12(out, master, "key expansion", seed, s.prfHash())
	} else {
		prf10(out, master, "key expansion", seed)
	}
	take := func(n int) []byte {
		b := out[:n:n]
		out = out[n:]
		return b
	}
	client.mac, server.mac = take(macLen), take(macLen)
	client.key, server.key = take(keyLen), take(keyLen)
	client.iv, server.iv = take(ivLen), take(ivLen)
	return client, server
}

// keyMaterial is the keys of one direction.
type keyMaterial struct {
	mac, key, iv []byte
}

// expandLabel is HKDF-Expand-Label of RFC 8446 §7.1 with an empty context.
func expandLabel(h func() hash.Hash, secret []byte, label string, length int) ([]byte, error) {
	info := make([]byte, 0, 4+6+len(label))
	info = append(info, byte(length>>8), byte(length), byte(6+len(label)))
	info = append(info, "tls13 "...)
	info = append(info, label...)
	info = append(info, 0) // context length
	return hkdf.Expand(h, secret, string(info), length)
}

// trafficKeys13 derives the write key and IV from a TLS 1.3 traffic secret
// (RFC 8446 §7.3).
func trafficKeys13(s *suite, secret []byte) (keyMaterial, error) {
	h := s.prfHash()
	key, err := expandLabel(h, secret, "key", s.keyLen)
	if err != nil {
		return keyMaterial{}, err
	}
	iv, err := expandLabel(h, secret, "iv", 12)
	return keyMaterial{key: key, iv: iv}, err
}

// nextSecret13 is the traffic secret after a KeyUpdate (RFC 8446 §7.2).
func nextSecret13(s *suite, secret []byte) ([]byte, error) {
	h := s.prfHash()
	return expandLabel(h, secret, "traffic upd", h().Size())
}
