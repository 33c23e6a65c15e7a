package capture

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
)

// ngOrder is a byte order that also appends.
type ngOrder interface {
	binary.ByteOrder
	binary.AppendByteOrder
}

// ngBlock builds one pcapng block of type typ with body, padded.
func ngBlock(order ngOrder, typ uint32, body []byte) []byte {
	for len(body)%4 != 0 {
		body = append(body, 0)
	}
	n := uint32(12 + len(body))
	b := order.AppendUint32(nil, typ)
	b = order.AppendUint32(b, n)
	b = append(b, body...)
	return order.AppendUint32(b, n)
}

// ngCapture builds a pcapng file: a section header, an Ethernet interface
// and, in order, packets (their data) and secrets blocks (key log text,
// marked by a leading "KEYS:" in items).
func ngCapture(order ngOrder, items []string) []byte {
	shb := order.AppendUint32(nil, 0x1A2B3C4D)
	shb = order.AppendUint16(shb, 1)
	shb = order.AppendUint16(shb, 0)
	shb = order.AppendUint64(shb, ^uint64(0))
	out := ngBlock(order, blockSectionHeader, shb)
	idb := order.AppendUint16(nil, 1) // Ethernet
	idb = order.AppendUint16(idb, 0)
	idb = order.AppendUint32(idb, 65535)
	out = append(out, ngBlock(order, 1, idb)...)
	for i, it := range items {
		if keys, ok := strings.CutPrefix(it, "KEYS:"); ok {
			body := order.AppendUint32(nil, secretsTLSKeyLog)
			body = order.AppendUint32(body, uint32(len(keys)))
			out = append(out, ngBlock(order, blockSecrets, append(body, keys...))...)
			continue
		}
		epb := order.AppendUint32(nil, 0)
		epb = order.AppendUint32(epb, 0)
		epb = order.AppendUint32(epb, uint32(i))
		epb = order.AppendUint32(epb, uint32(len(it)))
		epb = order.AppendUint32(epb, uint32(len(it)))
		out = append(out, ngBlock(order, blockEnhancedPacket, append(epb, it...))...)
	}
	return out
}

// Decryption Secrets Blocks are handed on in file order: the key log of a
// block is taken with the first packet after it, whatever the byte order,
// the compression, or the file boundary.
func TestDecryptionSecretsBlocks(t *testing.T) {
	k1 := "CLIENT_RANDOM " + strings.Repeat("01", 32) + " " + strings.Repeat("aa", 48)
	k2 := "CLIENT_RANDOM " + strings.Repeat("02", 32) + " " + strings.Repeat("bb", 48) + "\n" +
		"SERVER_TRAFFIC_SECRET_0 " + strings.Repeat("02", 32) + " " + strings.Repeat("cc", 32)
	items := []string{"KEYS:" + k1, "packet-0", "packet-1", "KEYS:" + k2, "packet-2", "KEYS:# trailing, after every packet"}
	for _, order := range []ngOrder{binary.LittleEndian, binary.BigEndian} {
		for _, compressed := range []bool{false, true} {
			raw := ngCapture(order, items)
			if compressed {
				var b bytes.Buffer
				zw, _ := zstd.NewWriter(&b)
				zw.Write(raw)
				zw.Close()
				raw = b.Bytes()
			}
			name := filepath.Join(t.TempDir(), "c.pcapng")
			if err := os.WriteFile(name, raw, 0o644); err != nil {
				t.Fatal(err)
			}
			// The same file twice: the trailing block of the first
			// comes with the first packet of the second.
			s := Open([]string{name, name})
			var got []string
			var p Packet
			for {
				err := s.Next(&p)
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, string(s.TakeSecrets())+"|"+string(p.Data))
			}
			if rest := s.TakeSecrets(); string(rest) != "# trailing, after every packet\n" {
				t.Errorf("%v: left at the end %q", order, rest)
			}
			s.Close()
			want := []string{k1 + "\n|packet-0", "|packet-1", k2 + "\n|packet-2",
				"# trailing, after every packet\n" + k1 + "\n|packet-0", "|packet-1", k2 + "\n|packet-2"}
			if strings.Join(got, "\n--\n") != strings.Join(want, "\n--\n") {
				t.Errorf("%v compressed %v:\n got %q\nwant %q", order, compressed, got, want)
			}
		}
	}
}

// A secrets block of another type (say, WireGuard keys) is not taken for a
// TLS key log, and a damaged block structure stops the search without
// stopping the packets.
func TestDecryptionSecretsOther(t *testing.T) {
	var order ngOrder = binary.LittleEndian
	raw := ngCapture(order, []string{"packet-0"})
	body := order.AppendUint32(nil, 0x57474b4c) // "WGKL"
	body = order.AppendUint32(body, 4)
	raw = append(raw, ngBlock(order, blockSecrets, append(body, "abcd"...))...)
	r, err := NewReader(bytes.NewReader(raw))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, _, _, err := r.Next(); err != nil {
		t.Fatal(err)
	}
	if _, _, _, _, err := r.Next(); !errors.Is(err, io.EOF) {
		t.Fatalf("end: %v", err)
	}
	if s := r.TakeSecrets(); len(s) != 0 {
		t.Fatalf("took %q", s)
	}
	sr := newSecretsReader(bytes.NewReader(nil))
	sr.scan([]byte{0x0A, 0x0D, 0x0D, 0x0A, 1, 0, 0, 0, 0x4D, 0x3C, 0x2B, 0x1A})
	if !sr.broken {
		t.Fatal("a section header of length 1 was accepted")
	}
}
