// Package flowid derives the identifiers the lake uses to join rows: the
// Community ID v1 flow hash (as Zeek, Suricata and Arkime compute it) and
// stable row ids that depend only on what was captured, so that re-parsing
// the same packets — in one file or split across many — yields the same ids.
package flowid

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"net/netip"
)

// CommunityID returns the Community ID v1 string ("1:…") of a flow with the
// given seed (0 by default).
func CommunityID(seed uint16, src netip.Addr, sport uint16, dst netip.Addr, dport uint16, proto uint8) string {
	src, dst = src.Unmap(), dst.Unmap()
	if c := src.Compare(dst); c > 0 || (c == 0 && sport > dport) {
		src, dst = dst, src
		sport, dport = dport, sport
	}
	var buf [2 + 16 + 16 + 2 + 4]byte
	b := buf[:0]
	b = binary.BigEndian.AppendUint16(b, seed)
	b = append(b, src.AsSlice()...)
	b = append(b, dst.AsSlice()...)
	b = append(b, proto, 0)
	b = binary.BigEndian.AppendUint16(b, sport)
	b = binary.BigEndian.AppendUint16(b, dport)
	sum := sha1.Sum(b)
	return "1:" + base64.StdEncoding.EncodeToString(sum[:])
}

// Hasher builds a stable id from parts; the zero value is ready to use.
type Hasher struct{ buf []byte }

// Str adds a string part.
func (h *Hasher) Str(s string) *Hasher {
	h.buf = binary.AppendUvarint(h.buf, uint64(len(s)))
	h.buf = append(h.buf, s...)
	return h
}

// Int adds an integer part.
func (h *Hasher) Int(v int64) *Hasher {
	h.buf = binary.AppendVarint(h.buf, v)
	return h
}

// Addr adds an address and port.
func (h *Hasher) Addr(a netip.Addr, port uint16) *Hasher {
	b := a.Unmap().As16()
	h.buf = append(h.buf, b[:]...)
	h.buf = binary.BigEndian.AppendUint16(h.buf, port)
	return h
}

// ID returns a 32-hex-character (128-bit) id of the parts added.
func (h *Hasher) ID() string {
	sum := sha256.Sum256(h.buf)
	return hex.EncodeToString(sum[:16])
}
