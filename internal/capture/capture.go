// Package capture reads packet capture files — classic pcap (micro- and
// nanosecond) and pcapng, optionally gzip- or zstd-compressed — and presents
// a list of files as one continuous stream of packets, the way a capture
// rotated by tcpdump -C/-G or a Wireshark ring buffer was written.
//
// Damaged input never stops the stream silently: a truncated file or garbage
// in the middle of a file ends that file with a *FileError recorded in the
// per-file Result, and reading goes on with the next file.
package capture

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/gopacket/gopacket"
	"github.com/gopacket/gopacket/layers"
	"github.com/gopacket/gopacket/pcapgo"
	"github.com/klauspost/compress/zstd"
)

// Format names a capture container.
type Format string

// Known container formats.
const (
	FormatPcap   Format = "pcap"
	FormatPcapNG Format = "pcapng"
)

// Packet is one captured frame. Data is owned by the Source and only valid
// until the next call to Next.
type Packet struct {
	TS       int64 // Unix nanoseconds
	Link     layers.LinkType
	Data     []byte
	WireLen  int // original length on the wire
	File     int // index of the file in the list given to Open
	FileName string
}

// Result describes one file after it has been read.
type Result struct {
	Name        string
	Format      Format
	Compression string // "", "gzip" or "zstd"
	Size        int64  // bytes on disk
	Packets     int64
	Bytes       int64 // captured bytes of all packets
	FirstTS     int64
	LastTS      int64
	Err         error // nil, or why the file ended early
}

// FileError explains why a file could not be read to its end.
type FileError struct {
	Name   string
	Packet int64 // packets read before the error
	Err    error
}

func (e *FileError) Error() string {
	return fmt.Sprintf("capture %s: after %d packets: %v", e.Name, e.Packet, e.Err)
}

func (e *FileError) Unwrap() error { return e.Err }

// ErrTruncated reports a file that ends in the middle of a packet record.
var ErrTruncated = errors.New("file truncated in the middle of a packet")

// ErrNotCapture reports a file that is neither pcap nor pcapng.
var ErrNotCapture = errors.New("not a pcap or pcapng file")

type packetReader interface {
	ZeroCopyReadPacketData() ([]byte, gopacket.CaptureInfo, error)
}

// Source reads a list of capture files in order as one stream.
type Source struct {
	names   []string
	idx     int
	cur     *openFile
	results []Result
	// OnFileDone, if set, is called when a file has been read (or failed).
	OnFileDone func(Result)
	// Progress, if set, is called with the number of compressed bytes
	// consumed so far across all files, at most every 256 packets.
	Progress       func(consumed int64)
	consumedBefore int64
	n              int64
	// secrets are key logs of files already read, not yet taken.
	secrets []byte
}

type openFile struct {
	count  *countingReader
	closer func()
	r      *Reader
	res    Result
}

// Open prepares to read names in order. Files are opened lazily; an error
// opening one file is recorded in its Result and the next file is tried.
func Open(names []string) *Source {
	return &Source{names: names, idx: -1}
}

// Results returns the per-file results of the files read so far.
func (s *Source) Results() []Result { return s.results }

// TotalSize returns the sum of the sizes on disk of all files (for progress).
func (s *Source) TotalSize() int64 {
	var n int64
	for _, name := range s.names {
		if fi, err := os.Stat(name); err == nil {
			n += fi.Size()
		}
	}
	return n
}

// Next fills p with the next packet. It returns io.EOF after the last packet
// of the last file.
func (s *Source) Next(p *Packet) error {
	for {
		if s.cur == nil {
			if s.idx+1 >= len(s.names) {
				return io.EOF
			}
			s.idx++
			of, err := openCapture(s.names[s.idx])
			if err != nil {
				s.finish(Result{Name: s.names[s.idx], Err: &FileError{Name: s.names[s.idx], Err: err}})
				continue
			}
			s.cur = of
		}
		data, ts, link, wireLen, err := s.cur.r.Next()
		if err != nil {
			res := s.cur.res
			if !errors.Is(err, io.EOF) {
				res.Err = &FileError{Name: res.Name, Packet: res.Packets, Err: err}
			}
			s.consumedBefore += s.cur.count.n
			s.secrets = append(s.secrets, s.cur.r.TakeSecrets()...)
			s.cur.closer()
			s.cur = nil
			s.finish(res)
			continue
		}
		r := &s.cur.res
		if r.Packets == 0 {
			r.FirstTS = ts
		}
		r.LastTS = ts
		r.Packets++
		r.Bytes += int64(len(data))
		*p = Packet{TS: ts, Link: link, Data: data, WireLen: wireLen, File: s.idx, FileName: r.Name}
		s.n++
		if s.Progress != nil && s.n&255 == 0 {
			s.Progress(s.consumedBefore + s.cur.count.n)
		}
		return nil
	}
}

// TakeSecrets returns the TLS key log of the pcapng Decryption Secrets
// Blocks met before the packet last returned by Next (see
// Reader.TakeSecrets), and not returned before. It must never be logged.
func (s *Source) TakeSecrets() []byte {
	out := s.secrets
	s.secrets = nil
	if s.cur != nil {
		out = append(out, s.cur.r.TakeSecrets()...)
	}
	return out
}

// Close releases the file being read, if any.
func (s *Source) Close() {
	if s.cur != nil {
		s.cur.closer()
		s.cur = nil
	}
}

func (s *Source) finish(r Result) {
	s.results = append(s.results, r)
	if s.OnFileDone != nil {
		s.OnFileDone(r)
	}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n += int64(n)
	return n, err
}

var (
	magicGzip   = []byte{0x1f, 0x8b}
	magicZstd   = []byte{0x28, 0xb5, 0x2f, 0xfd}
	magicPcapNG = []byte{0x0a, 0x0d, 0x0d, 0x0a}
)

func openCapture(name string) (*openFile, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	of := &openFile{res: Result{Name: name}}
	if fi, err := f.Stat(); err == nil {
		of.res.Size = fi.Size()
	}
	of.count = &countingReader{r: f}
	r, err := NewReader(of.count)
	if err != nil {
		f.Close()
		return nil, err
	}
	of.closer = func() { r.Close(); f.Close() }
	of.r = r
	of.res.Format, of.res.Compression = r.Format, r.Compression
	return of, nil
}

// Reader reads packets from one capture stream (a file or an object body).
type Reader struct {
	Format      Format
	Compression string
	pr          packetReader
	ng          *pcapgo.NgReader
	link        layers.LinkType
	closers     []func()
	// secrets watches a pcapng stream for Decryption Secrets Blocks; n
	// counts the packets returned, eof is set at the end.
	secrets *secretsReader
	n       int64
	eof     bool
}

// NewReader detects the compression and container format of r and
// prepares to read its packets.
func NewReader(r io.Reader) (*Reader, error) {
	rd := &Reader{}
	br := bufio.NewReaderSize(r, 1<<20)
	head, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(head, magicGzip):
		gz, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("gzip: %w", err)
		}
		rd.closers = append(rd.closers, func() { gz.Close() })
		br = bufio.NewReaderSize(gz, 1<<20)
		rd.Compression = "gzip"
	case bytes.HasPrefix(head, magicZstd):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxWindow(64<<20))
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		rd.closers = append(rd.closers, zr.Close)
		br = bufio.NewReaderSize(zr, 1<<20)
		rd.Compression = "zstd"
	}
	magic, err := br.Peek(4)
	if err != nil {
		rd.Close()
		if errors.Is(err, io.EOF) && len(magic) == 0 {
			return nil, fmt.Errorf("empty file: %w", ErrNotCapture)
		}
		return nil, fmt.Errorf("read header: %w", ErrNotCapture)
	}
	if bytes.Equal(magic, magicPcapNG) {
		rd.secrets = newSecretsReader(br)
		ng, err := pcapgo.NewNgReader(bufio.NewReaderSize(rd.secrets, 1<<20), pcapgo.NgReaderOptions{WantMixedLinkType: true, SkipUnknownVersion: true})
		if err != nil {
			rd.Close()
			return nil, fmt.Errorf("pcapng header: %w", err)
		}
		rd.pr, rd.ng, rd.link, rd.Format = ng, ng, ng.LinkType(), FormatPcapNG
		return rd, nil
	}
	pr, err := pcapgo.NewReader(br)
	if err != nil {
		rd.Close()
		return nil, fmt.Errorf("%w (%v)", ErrNotCapture, err)
	}
	rd.pr, rd.link, rd.Format = pr, pr.LinkType(), FormatPcap
	return rd, nil
}

// Next returns the next packet's data (valid until the following call), its
// timestamp in Unix ns, link type and original length. It returns io.EOF at
// the end and ErrTruncated when the stream ends inside a packet.
func (r *Reader) Next() (data []byte, ts int64, link layers.LinkType, wireLen int, err error) {
	data, ci, err := r.pr.ZeroCopyReadPacketData()
	if err != nil {
		r.eof = true
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = ErrTruncated
		}
		return nil, 0, 0, 0, err
	}
	link = r.link
	if r.ng != nil && len(ci.AncillaryData) > 0 {
		if lt, ok := ci.AncillaryData[0].(layers.LinkType); ok {
			link = lt
		}
	}
	r.n++
	return data, ci.Timestamp.UnixNano(), link, ci.Length, nil
}

// TakeSecrets returns the TLS key log (NSS format) of the pcapng
// Decryption Secrets Blocks that came before the packet last returned by
// Next, and after the previous call; after the end, all that are left.
// Secrets are placed in file order, so that the same capture always
// decrypts the same, however it is read. The result holds secrets: it
// must never be logged.
func (r *Reader) TakeSecrets() []byte {
	if r.secrets == nil {
		return nil
	}
	if r.eof {
		return r.secrets.take(-1)
	}
	return r.secrets.take(r.n)
}

// Close releases the decompressor, if any. It does not close the
// underlying reader.
func (r *Reader) Close() {
	for i := len(r.closers) - 1; i >= 0; i-- {
		r.closers[i]()
	}
	r.closers = nil
}

// Time converts Unix nanoseconds to a UTC time.
func Time(ns int64) time.Time { return time.Unix(0, ns).UTC() }
