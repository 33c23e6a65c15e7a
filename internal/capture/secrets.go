package capture

import (
	"encoding/binary"
	"io"
)

// pcapng block types and the secrets type read here (pcapng draft,
// section 4.7: Decryption Secrets Block).
const (
	blockSectionHeader  = 0x0A0D0D0A
	blockPacket         = 0x00000002
	blockSimplePacket   = 0x00000003
	blockEnhancedPacket = 0x00000006
	blockSecrets        = 0x0000000A
	secretsTLSKeyLog    = 0x544c534b // "TLSK": NSS key log lines
)

// maxSecretsBlock bounds the Decryption Secrets Block kept: larger ones
// are skipped.
const maxSecretsBlock = 64 << 20

// secretsChunk is the key log of one Decryption Secrets Block and the
// number of packet blocks that came before it in the file.
type secretsChunk struct {
	before int64
	data   []byte
}

// secretsReader passes a pcapng byte stream through unchanged while it
// walks the block structure, keeping the TLS key logs of Decryption
// Secrets Blocks (which gopacket's pcapng reader skips) with their place
// among the packets. Secrets are only handed on as bytes: they never
// reach an error or a log.
type secretsReader struct {
	r     io.Reader
	order binary.ByteOrder // nil until the section header's byte order is read
	hdr   [12]byte
	nhdr  int
	need  int   // header bytes of the block being started: 8, or 12 for a section header
	skip  int64 // body bytes of the current block still to pass
	keep  bool  // the current block is a secrets block being kept
	body  []byte
	// packets counts the packet blocks passed.
	packets int64
	chunks  []secretsChunk
	broken  bool // the block structure did not parse: stop looking
}

func newSecretsReader(r io.Reader) *secretsReader { return &secretsReader{r: r, need: 8} }

func (s *secretsReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if n > 0 && !s.broken {
		s.scan(p[:n])
	}
	return n, err
}

func (s *secretsReader) scan(b []byte) {
	for len(b) > 0 && !s.broken {
		if s.skip > 0 {
			k := int(min(s.skip, int64(len(b))))
			if s.keep {
				s.body = append(s.body, b[:k]...)
			}
			s.skip -= int64(k)
			b = b[k:]
			if s.skip == 0 && s.keep {
				s.keepSecrets()
			}
			continue
		}
		k := copy(s.hdr[s.nhdr:s.need], b)
		s.nhdr += k
		b = b[k:]
		if s.nhdr < 8 {
			continue
		}
		// The section header's type reads the same in both byte orders.
		shb := s.hdr[0] == 0x0A && s.hdr[1] == 0x0D && s.hdr[2] == 0x0D && s.hdr[3] == 0x0A
		if shb && s.need == 8 {
			s.need = 12
			continue
		}
		if s.nhdr < s.need {
			continue
		}
		s.nhdr, s.need = 0, 8
		if shb {
			switch {
			case s.hdr[8] == 0x4D && s.hdr[9] == 0x3C && s.hdr[10] == 0x2B && s.hdr[11] == 0x1A:
				s.order = binary.LittleEndian
			case s.hdr[8] == 0x1A && s.hdr[9] == 0x2B && s.hdr[10] == 0x3C && s.hdr[11] == 0x4D:
				s.order = binary.BigEndian
			default:
				s.broken = true
				return
			}
			if !s.startBody(s.order.Uint32(s.hdr[4:8]), 12) {
				return
			}
			continue
		}
		if s.order == nil {
			s.broken = true
			return
		}
		typ := s.order.Uint32(s.hdr[0:4])
		switch typ {
		case blockPacket, blockSimplePacket, blockEnhancedPacket:
			s.packets++
		}
		length := s.order.Uint32(s.hdr[4:8])
		if !s.startBody(length, 8) {
			return
		}
		if typ == blockSecrets && length <= maxSecretsBlock {
			s.keep, s.body = true, s.body[:0]
		}
	}
}

// startBody sets up the passing of a block body of total length length,
// of which read bytes were read.
func (s *secretsReader) startBody(length uint32, read int) bool {
	if length < 12 || length%4 != 0 {
		s.broken = true
		return false
	}
	s.skip = int64(length) - int64(read)
	return true
}

// keepSecrets keeps the key log of a complete secrets block body: secrets
// type, length, data, padding, options, total length.
func (s *secretsReader) keepSecrets() {
	s.keep = false
	b := s.body
	if len(b) < 8 {
		return
	}
	typ, n := s.order.Uint32(b[0:4]), s.order.Uint32(b[4:8])
	if typ != secretsTLSKeyLog || uint64(n) > uint64(len(b)-8) {
		return
	}
	data := append([]byte(nil), b[8:8+n]...)
	if len(data) > 0 && data[len(data)-1] != '\n' {
		data = append(data, '\n')
	}
	s.chunks = append(s.chunks, secretsChunk{before: s.packets, data: data})
	s.body = nil
}

// take removes and returns the key logs of the blocks that came before
// packet number n (1-based), or all of them when n < 0.
func (s *secretsReader) take(n int64) []byte {
	var out []byte
	i := 0
	for ; i < len(s.chunks) && (n < 0 || s.chunks[i].before < n); i++ {
		out = append(out, s.chunks[i].data...)
	}
	s.chunks = s.chunks[i:]
	return out
}
