package http2

import (
	"golang.org/x/net/http2/hpack"
)

// initialTableSize is SETTINGS_HEADER_TABLE_SIZE's initial value.
const initialTableSize = 4096

// field is a dynamic table entry.
type field struct{ Name, Value string }

func (f field) size() uint32 { return uint32(len(f.Name) + len(f.Value) + 32) }

// table is the parser's own record of one direction's HPACK dynamic table,
// kept in step with the hpack.Decoder (which does not expose its table) so
// that a restored parser can rebuild the decoder.
type table struct {
	Ents    []field // oldest first
	Size    uint32  // sum of the entries' sizes
	Max     uint32  // current maximum size
	Allowed uint32  // the bound of size updates (the receiver's setting)
}

func (t *table) add(f field) {
	t.Ents = append(t.Ents, f)
	t.Size += f.size()
	t.evict()
}

func (t *table) setMax(v uint32) {
	t.Max = v
	t.evict()
}

func (t *table) evict() {
	n := 0
	for t.Size > t.Max && n < len(t.Ents) {
		t.Size -= t.Ents[n].size()
		n++
	}
	if n > 0 {
		clear(t.Ents[:n])
		t.Ents = t.Ents[n:]
	}
}

// decoder returns an hpack.Decoder whose dynamic table holds t's entries:
// they are fed as literals with incremental indexing, oldest first.
func (t *table) decoder() *hpack.Decoder {
	d := hpack.NewDecoder(initialTableSize, func(hpack.HeaderField) {})
	d.SetAllowedMaxDynamicTableSize(t.Allowed)
	d.SetMaxDynamicTableSize(t.Max)
	if len(t.Ents) == 0 {
		return d
	}
	var blk []byte
	for _, f := range t.Ents {
		blk = append(blk, 0x40)
		blk = appendString(blk, f.Name)
		blk = appendString(blk, f.Value)
	}
	d.SetEmitEnabled(false)
	_, err := d.Write(blk)
	if err == nil {
		err = d.Close()
	}
	if err != nil {
		// Cannot happen for entries that fit the table; an empty
		// table makes later blocks fail to decode instead.
		d = hpack.NewDecoder(initialTableSize, func(hpack.HeaderField) {})
	}
	d.SetEmitEnabled(true)
	return d
}

// appendString appends an HPACK string literal without Huffman coding.
func appendString(b []byte, s string) []byte {
	b = appendVarInt(b, 7, 0, uint64(len(s)))
	return append(b, s...)
}

// appendVarInt appends an HPACK integer with an n-bit prefix and the
// given high bits of the first byte.
func appendVarInt(b []byte, n uint, first byte, v uint64) []byte {
	limit := uint64(1)<<n - 1
	if v < limit {
		return append(b, first|byte(v))
	}
	b = append(b, first|byte(limit))
	v -= limit
	for v >= 128 {
		b = append(b, byte(v&127)|128)
		v >>= 7
	}
	return append(b, byte(v))
}

// op is one representation of a header block: a dynamic table size
// update, or a field that is or is not added to the dynamic table.
type op struct {
	update bool
	size   uint32
	add    bool
}

// walk lists the representations of a complete header block (RFC 7541
// section 6) without decoding them. ok is false for a block it cannot
// read.
func walk(b []byte, ops []op) (_ []op, ok bool) {
	for len(b) > 0 {
		c := b[0]
		var idx uint64
		switch {
		case c&0x80 != 0: // indexed field
			if _, b, ok = varint(7, b); !ok {
				return ops, false
			}
			ops = append(ops, op{})
			continue
		case c&0xe0 == 0x20: // size update
			var v uint64
			if v, b, ok = varint(5, b); !ok || v > 1<<32-1 {
				return ops, false
			}
			ops = append(ops, op{update: true, size: uint32(v)})
			continue
		case c&0xc0 == 0x40: // literal with incremental indexing
			idx, b, ok = varint(6, b)
		default: // literal without indexing, never indexed
			idx, b, ok = varint(4, b)
		}
		if !ok {
			return ops, false
		}
		if idx == 0 {
			if b, ok = skipString(b); !ok {
				return ops, false
			}
		}
		if b, ok = skipString(b); !ok {
			return ops, false
		}
		ops = append(ops, op{add: c&0xc0 == 0x40})
	}
	return ops, true
}

// varint reads an HPACK integer with an n-bit prefix.
func varint(n uint, b []byte) (uint64, []byte, bool) {
	if len(b) == 0 {
		return 0, nil, false
	}
	mask := uint64(1)<<n - 1
	v := uint64(b[0]) & mask
	b = b[1:]
	if v < mask {
		return v, b, true
	}
	for m := uint(0); len(b) > 0 && m < 63; m += 7 {
		c := b[0]
		b = b[1:]
		v += uint64(c&127) << m
		if c&128 == 0 {
			return v, b, true
		}
	}
	return 0, nil, false
}

func skipString(b []byte) ([]byte, bool) {
	l, b, ok := varint(7, b)
	if !ok || l > uint64(len(b)) {
		return nil, false
	}
	return b[l:], true
}
