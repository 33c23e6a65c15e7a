// Package segment is flowlake's capture segment format, shared by the agent,
// the pipeline, the CLI and tests.
//
// A segment holds consecutive packets of one stream of one agent as a
// zstd-compressed pcapng file: a Section Header Block whose comment option
// is the segment's [Meta] as JSON, one Interface Description Block per link
// type (nanosecond timestamps, if_tsresol=9), then one Enhanced Packet Block
// per packet in the order they were added. Any pcapng reader opens a
// decompressed segment (tshark, capinfos, [capture.NewReader]); the metadata
// makes the object self-describing on any store, and [ReadMeta] reads it
// without decoding the packets.
//
// Segments are deterministic: the same packets with the same metadata give
// byte-identical objects (fixed zstd settings, no wall clock, no host
// details), so re-uploading after a retry never creates a different object.
//
// [Writer] builds one segment; [Cutter] turns a packet stream into
// consecutive segments by size and time span.
//
// [capture.NewReader]: https://pkg.go.dev/github.com/flowlake/flowlake/internal/capture#NewReader
package segment

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/klauspost/compress/zstd"

	"github.com/flowlake/flowlake/internal/keys"
)

// Version is the version of the metadata record this package writes and
// reads.
const Version = 1

// MaxPacketSize is the largest captured packet a segment accepts.
const MaxPacketSize = 16 << 20

// MaxStream is the largest stream number (the object layout allows 0-65535).
const MaxStream = 65535

// maxMetaSize is the longest metadata record: a pcapng option value has a
// 16-bit length.
const maxMetaSize = 65535

// maxSHBSize bounds the Section Header Block ReadMeta accepts.
const maxSHBSize = 1 << 20

// application is written as the pcapng shb_userappl option. It carries no
// version so that segments do not change from one build to the next.
const application = "flowlake"

// Errors. Every error ReadMeta returns for bad input wraps ErrNotSegment or
// ErrVersion; errors of the underlying reader wrap neither.
var (
	// ErrNotSegment reports input that is not a flowlake segment: not
	// zstd, not pcapng, truncated, or without a valid metadata record.
	ErrNotSegment = errors.New("not a flowlake segment")
	// ErrVersion reports a segment whose metadata record has a version this
	// build does not read.
	ErrVersion = errors.New("unsupported segment metadata version")
	// ErrEmpty is returned by Finish for a Writer without packets: a segment
	// holds at least one packet.
	ErrEmpty = errors.New("segment has no packets")
)

// Meta is the metadata record of a segment, stored as JSON in the comment
// of the pcapng Section Header Block.
type Meta struct {
	// Version is the record version, [Version].
	Version int `json:"version"`
	// Agent is the id of the agent that captured the packets.
	Agent string `json:"agent"`
	// Stream is the agent's stream number (0-65535).
	Stream int `json:"stream"`
	// Seq is the segment's position in its stream: 0, 1, 2, …
	Seq uint64 `json:"seq"`
	// FirstTS and LastTS are the earliest and latest packet timestamps, in
	// Unix nanoseconds. FirstTS picks the date path of the segment's key.
	FirstTS int64 `json:"first_ts"`
	LastTS  int64 `json:"last_ts"`
	// Packets is the number of packets.
	Packets int64 `json:"packets"`
	// Bytes is the sum of the captured lengths of the packets.
	Bytes int64 `json:"bytes"`
	// LinkTypes are the link types of the packets in the order of their
	// first appearance; interface i of the pcapng file has LinkTypes[i].
	LinkTypes []int `json:"link_types"`
	// Source says where the segment's first packet came from, for example
	// "file:<name>" or "afpacket:<iface>".
	Source string `json:"source,omitempty"`
}

// Validate reports whether m is a consistent metadata record of this
// version.
func (m Meta) Validate() error {
	switch {
	case m.Version != Version:
		return fmt.Errorf("%w %d (this build reads version %d)", ErrVersion, m.Version, Version)
	case m.Stream < 0 || m.Stream > MaxStream:
		return fmt.Errorf("stream %d out of range 0-%d", m.Stream, MaxStream)
	case m.Packets <= 0:
		return fmt.Errorf("packet count %d: a segment holds at least one packet", m.Packets)
	case m.Bytes < 0:
		return fmt.Errorf("negative byte count %d", m.Bytes)
	case m.FirstTS < 0 || m.LastTS < m.FirstTS:
		return fmt.Errorf("bad time range first_ts=%d last_ts=%d", m.FirstTS, m.LastTS)
	case len(m.LinkTypes) == 0:
		return errors.New("no link types")
	}
	if err := keys.ValidAgent(m.Agent); err != nil {
		return err
	}
	for i, lt := range m.LinkTypes {
		if lt < 0 || lt > 0xffff {
			return fmt.Errorf("link type %d out of range", lt)
		}
		if slices.Contains(m.LinkTypes[:i], lt) {
			return fmt.Errorf("link type %d listed twice", lt)
		}
	}
	return nil
}

// Key returns the object key of the segment m describes.
func Key(m Meta) string {
	return keys.Segment(keys.Stream{Agent: m.Agent, Stream: m.Stream}, m.Seq, time.Unix(0, m.FirstTS))
}

// record is one buffered packet; its bytes are buf[off:off+n].
type record struct {
	ts      int64
	off, n  int
	wireLen int
	iface   int
}

// Writer buffers the packets of one segment. The zero value is not usable;
// call NewWriter. A Writer is not safe for concurrent use.
type Writer struct {
	agent  string
	stream int
	seq    uint64
	source string
	err    error // invalid agent or stream

	buf   []byte
	recs  []record
	links []layers.LinkType // interface i has links[i]
	minTS int64
	maxTS int64
}

// NewWriter returns a Writer for segment seq of stream stream of agent. An
// invalid agent id or stream number is reported by Add and Finish.
func NewWriter(agent string, stream int, seq uint64, source string) *Writer {
	w := &Writer{}
	w.reset(agent, stream, seq, source)
	return w
}

// reset empties w for another segment, keeping its buffers.
func (w *Writer) reset(agent string, stream int, seq uint64, source string) {
	w.agent, w.stream, w.seq, w.source = agent, stream, seq, source
	w.err = nil
	if err := keys.ValidAgent(agent); err != nil {
		w.err = fmt.Errorf("segment: %w", err)
	} else if stream < 0 || stream > MaxStream {
		w.err = fmt.Errorf("segment: stream %d out of range 0-%d", stream, MaxStream)
	}
	w.buf = w.buf[:0]
	w.recs = w.recs[:0]
	w.links = w.links[:0]
	w.minTS, w.maxTS = 0, 0
}

// checkPacket reports why a packet cannot go into a segment.
func (w *Writer) checkPacket(ts int64, data []byte) error {
	if w.err != nil {
		return w.err
	}
	if ts < 0 {
		return fmt.Errorf("segment: packet timestamp %d is before 1970", ts)
	}
	if len(data) > MaxPacketSize {
		return fmt.Errorf("segment: packet of %d bytes exceeds the %d byte limit", len(data), MaxPacketSize)
	}
	return nil
}

// Add appends a copy of a packet captured at ts (Unix nanoseconds) on a link
// of type link, with wireLen bytes on the wire. A wireLen smaller than
// len(data), which only a damaged capture record has, is recorded as
// len(data).
func (w *Writer) Add(ts int64, link layers.LinkType, data []byte, wireLen int) error {
	if err := w.checkPacket(ts, data); err != nil {
		return err
	}
	iface := slices.Index(w.links, link)
	if iface < 0 {
		iface = len(w.links)
		w.links = append(w.links, link)
	}
	if wireLen < len(data) {
		wireLen = len(data)
	}
	if len(w.recs) == 0 || ts < w.minTS {
		w.minTS = ts
	}
	if len(w.recs) == 0 || ts > w.maxTS {
		w.maxTS = ts
	}
	w.recs = append(w.recs, record{ts: ts, off: len(w.buf), n: len(data), wireLen: wireLen, iface: iface})
	w.buf = append(w.buf, data...)
	return nil
}

// Len returns the number of packets added.
func (w *Writer) Len() int { return len(w.recs) }

// Size returns the captured bytes of the packets added.
func (w *Writer) Size() int64 { return int64(len(w.buf)) }

// span returns the time range the segment would cover with a packet at ts.
func (w *Writer) span(ts int64) time.Duration {
	if len(w.recs) == 0 {
		return 0
	}
	return time.Duration(max(w.maxTS, ts) - min(w.minTS, ts))
}

// Meta returns the metadata record of the packets added so far.
func (w *Writer) Meta() Meta {
	m := Meta{
		Version: Version,
		Agent:   w.agent,
		Stream:  w.stream,
		Seq:     w.seq,
		FirstTS: w.minTS,
		LastTS:  w.maxTS,
		Packets: int64(len(w.recs)),
		Bytes:   int64(len(w.buf)),
		Source:  w.source,
	}
	m.LinkTypes = make([]int, len(w.links))
	for i, lt := range w.links {
		m.LinkTypes[i] = int(lt)
	}
	return m
}

// encoders holds idle zstd encoders with the segment settings; Reset makes
// a reused encoder produce exactly what a new one would.
var encoders sync.Pool

// newEncoder returns a zstd encoder with the fixed segment settings:
// SpeedDefault, 8 MiB window, checksums, one goroutine (which makes the
// output a function of the input alone).
func newEncoder() (*zstd.Encoder, error) {
	return zstd.NewWriter(nil,
		zstd.WithEncoderLevel(zstd.SpeedDefault),
		zstd.WithWindowSize(8<<20),
		zstd.WithEncoderCRC(true),
		zstd.WithEncoderConcurrency(1))
}

// Finish encodes the packets added so far as a segment and returns its
// bytes and metadata. It does not change w.
func (w *Writer) Finish() ([]byte, Meta, error) {
	if w.err != nil {
		return nil, Meta{}, w.err
	}
	if len(w.recs) == 0 {
		return nil, Meta{}, fmt.Errorf("segment %d: %w", w.seq, ErrEmpty)
	}
	m := w.Meta()
	comment, err := json.Marshal(m)
	if err != nil {
		return nil, Meta{}, fmt.Errorf("segment %d: encode metadata: %w", w.seq, err)
	}
	if len(comment) > maxMetaSize {
		return nil, Meta{}, fmt.Errorf("segment %d: metadata record of %d bytes exceeds the %d a pcapng option holds (source %d bytes)",
			w.seq, len(comment), maxMetaSize, len(m.Source))
	}
	enc, _ := encoders.Get().(*zstd.Encoder)
	if enc == nil {
		if enc, err = newEncoder(); err != nil {
			return nil, Meta{}, fmt.Errorf("segment %d: zstd encoder: %w", w.seq, err)
		}
	}
	out, err := w.encode(enc, comment)
	if err != nil {
		return nil, Meta{}, fmt.Errorf("segment %d: %w", w.seq, err)
	}
	encoders.Put(enc)
	return out, m, nil
}

// encode writes the pcapng file through enc and returns the compressed bytes.
func (w *Writer) encode(enc *zstd.Encoder, comment []byte) ([]byte, error) {
	var out bytes.Buffer
	out.Grow(len(w.buf)/2 + 64<<10)
	enc.Reset(&out)
	ng, err := pcapgo.NewNgWriterInterface(enc,
		pcapgo.NgInterface{LinkType: w.links[0], TimestampResolution: 9},
		pcapgo.NgWriterOptions{SectionInfo: pcapgo.NgSectionInfo{Application: application, Comment: string(comment)}})
	if err != nil {
		return nil, fmt.Errorf("write pcapng header: %w", err)
	}
	for _, lt := range w.links[1:] {
		if _, err := ng.AddInterface(pcapgo.NgInterface{LinkType: lt, TimestampResolution: 9}); err != nil {
			return nil, fmt.Errorf("write pcapng interface: %w", err)
		}
	}
	for i, r := range w.recs {
		ci := gopacket.CaptureInfo{
			Timestamp:      time.Unix(0, r.ts),
			CaptureLength:  r.n,
			Length:         r.wireLen,
			InterfaceIndex: r.iface,
		}
		if err := ng.WritePacket(ci, w.buf[r.off:r.off+r.n]); err != nil {
			return nil, fmt.Errorf("write packet %d: %w", i, err)
		}
	}
	if err := ng.Flush(); err != nil {
		return nil, fmt.Errorf("write pcapng: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("zstd: %w", err)
	}
	return out.Bytes(), nil
}

// pcapng constants used by ReadMeta.
const (
	blockTypeSHB   = 0x0A0D0D0A
	byteOrderMagic = 0x1A2B3C4D
	optEndOfOpt    = 0
	optComment     = 1
)

var (
	magicZstd   = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicPcapNG = []byte{0x0a, 0x0d, 0x0d, 0x0a}
	magicGzip   = []byte{0x1f, 0x8b}
)

// errReader remembers the first error of the underlying reader other than
// io.EOF, so that ReadMeta can tell a failing store from a bad object.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF && e.err == nil {
		e.err = err
	}
	return n, err
}

func notSegment(format string, args ...any) error {
	return fmt.Errorf("%w: "+format, append([]any{ErrNotSegment}, args...)...)
}

// ReadMeta reads the metadata record of a segment from r, which yields the
// segment's bytes from the start. It decompresses and reads only the
// Section Header Block — a cheap validation that does not decode packets —
// and validates the record. Errors for bad input wrap ErrNotSegment (or
// ErrVersion); an error of r itself wraps neither.
func ReadMeta(r io.Reader) (Meta, error) {
	er := &errReader{r: r}
	m, err := readMeta(er)
	if err != nil && er.err != nil {
		return Meta{}, fmt.Errorf("read segment metadata: %w", er.err)
	}
	if err != nil {
		return Meta{}, fmt.Errorf("read segment metadata: %w", err)
	}
	return m, nil
}

func readMeta(r io.Reader) (Meta, error) {
	br := bufio.NewReaderSize(r, 64<<10)
	head, _ := br.Peek(4)
	switch {
	case len(head) == 0:
		return Meta{}, notSegment("empty input")
	case bytes.HasPrefix(head, magicZstd):
	case bytes.Equal(head, magicPcapNG):
		return Meta{}, notSegment("uncompressed pcapng: a segment is zstd-compressed")
	case bytes.HasPrefix(head, magicGzip):
		return Meta{}, notSegment("gzip-compressed: a segment is zstd-compressed")
	default:
		return Meta{}, notSegment("no zstd magic (starts with % x)", head)
	}
	zr, err := zstd.NewReader(br,
		zstd.WithDecoderConcurrency(1),
		zstd.WithDecoderLowmem(true),
		zstd.WithDecoderMaxWindow(64<<20))
	if err != nil {
		return Meta{}, fmt.Errorf("zstd decoder: %w", err)
	}
	defer zr.Close()
	shb, err := readSHB(zr)
	if err != nil {
		return Meta{}, err
	}
	return parseSHB(shb)
}

// readSHB reads the first pcapng block, which must be a Section Header Block.
func readSHB(r io.Reader) ([]byte, error) {
	var hdr [12]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, readErr("section header", err)
	}
	if binary.LittleEndian.Uint32(hdr[0:4]) != blockTypeSHB {
		return nil, notSegment("decompressed data is not pcapng (starts with % x)", hdr[:4])
	}
	var bo binary.ByteOrder
	switch {
	case binary.LittleEndian.Uint32(hdr[8:12]) == byteOrderMagic:
		bo = binary.LittleEndian
	case binary.BigEndian.Uint32(hdr[8:12]) == byteOrderMagic:
		bo = binary.BigEndian
	default:
		return nil, notSegment("pcapng section header has a bad byte-order magic % x", hdr[8:12])
	}
	n := bo.Uint32(hdr[4:8])
	if n < 28 || n%4 != 0 || n > maxSHBSize {
		return nil, notSegment("pcapng section header length %d (want a multiple of 4 from 28 to %d)", n, maxSHBSize)
	}
	shb := make([]byte, n)
	copy(shb, hdr[:])
	if _, err := io.ReadFull(r, shb[12:]); err != nil {
		return nil, readErr("section header", err)
	}
	if t := bo.Uint32(shb[n-4:]); t != n {
		return nil, notSegment("pcapng section header length %d does not match its trailer %d", n, t)
	}
	return shb, nil
}

// readErr classifies an error met while reading decompressed data.
func readErr(what string, err error) error {
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return notSegment("truncated in the pcapng %s", what)
	}
	return notSegment("zstd: %v", err)
}

// parseSHB finds the metadata record among the options of a Section Header
// Block and decodes it.
func parseSHB(shb []byte) (Meta, error) {
	bo := binary.ByteOrder(binary.LittleEndian)
	if binary.LittleEndian.Uint32(shb[8:12]) != byteOrderMagic {
		bo = binary.BigEndian
	}
	if major := bo.Uint16(shb[12:14]); major != 1 {
		return Meta{}, notSegment("pcapng major version %d (want 1)", major)
	}
	opts := shb[24 : len(shb)-4]
	var comments [][]byte
	for len(opts) >= 4 {
		code, n := bo.Uint16(opts[0:2]), int(bo.Uint16(opts[2:4]))
		if code == optEndOfOpt {
			break
		}
		padded := (n + 3) &^ 3
		if 4+padded > len(opts) {
			return Meta{}, notSegment("pcapng section header option %d of %d bytes overruns the block", code, n)
		}
		if code == optComment {
			comments = append(comments, opts[4:4+n])
		}
		opts = opts[4+padded:]
	}
	var rec []byte
	for _, c := range comments {
		if c = bytes.TrimSpace(c); len(c) > 0 && c[0] == '{' {
			rec = c
			break
		}
	}
	if rec == nil {
		if len(comments) > 0 {
			return Meta{}, notSegment("pcapng section header has no metadata comment (only %d other comments)", len(comments))
		}
		return Meta{}, notSegment("pcapng section header has no metadata comment")
	}
	var probe struct {
		Version *int `json:"version"`
	}
	if err := json.Unmarshal(rec, &probe); err != nil {
		return Meta{}, notSegment("metadata comment is not valid JSON: %v", err)
	}
	if probe.Version == nil {
		return Meta{}, notSegment("metadata record has no version")
	}
	if *probe.Version != Version {
		return Meta{}, fmt.Errorf("%w %d (this build reads version %d)", ErrVersion, *probe.Version, Version)
	}
	var m Meta
	if err := json.Unmarshal(rec, &m); err != nil {
		return Meta{}, notSegment("metadata record: %v", err)
	}
	if err := m.Validate(); err != nil {
		return Meta{}, notSegment("metadata record: %v", err)
	}
	return m, nil
}
