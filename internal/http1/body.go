package http1

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"sync"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

// bodyData accounts body bytes and keeps the first of them for the preview.
func (p *Parser) bodyData(h *half, b []byte) {
	h.BodyN += int64(len(b))
	if h.Lost {
		// A preview stops at the first missing byte.
		return
	}
	limit := p.cfg.BodyPreview
	if h.Codings != "" {
		limit = p.cfg.MaxRawBody
	}
	room := limit - len(h.Body)
	if room <= 0 {
		return
	}
	if len(b) > room {
		b = b[:room]
	}
	if h.Body == nil {
		c := limit
		switch {
		case h.Hint > 0 && h.Hint < int64(c):
			c = int(h.Hint)
		case h.Hint == 0:
			c = min(limit, max(len(b), 4096))
		}
		if len(b) == c {
			// The whole preview at once: copy without zeroing first.
			h.Body = append([]byte(nil), b...)
			return
		}
		h.Body = make([]byte, 0, c)
	}
	h.Body = append(h.Body, b...)
}

// preview returns the preview of the current body and releases it from h.
func (p *Parser) preview(h *half) []byte {
	b := h.Body
	h.Body = nil
	if len(b) == 0 {
		return nil
	}
	if h.Codings != "" {
		return decodeBody(b, h.Codings, p.cfg.BodyPreview)
	}
	return shrink(b)
}

// shrink copies b when much of its capacity would be retained for nothing.
func shrink(b []byte) []byte {
	if cap(b)-len(b) > 1024 {
		return append([]byte(nil), b...)
	}
	return b
}

// maxCodings bounds the codings undone for one preview.
const maxCodings = 4

// rawPreview is the preview of a body that cannot be decoded: its bytes as
// they came.
func rawPreview(raw []byte, limit int) []byte {
	return append([]byte(nil), raw[:min(len(raw), limit)]...)
}

// decodeBody undoes codings (a comma-separated list in the order they were
// applied) on raw and returns at most limit decoded bytes. Truncated input
// yields what could be decoded. A body whose coding is unknown, or that
// is not valid for its claimed coding at all, is returned raw.
func decodeBody(raw []byte, codings string, limit int) []byte {
	if limit <= 0 || len(raw) == 0 {
		return nil
	}
	var names [maxCodings]string
	n := 0
	for t := range strings.SplitSeq(codings, ",") {
		t = codingName(t)
		if t == "" || strings.EqualFold(t, "identity") {
			continue
		}
		if n == maxCodings {
			return rawPreview(raw, limit)
		}
		names[n] = t
		n++
	}
	var decs [maxCodings]decoder
	nd := 0
	defer func() {
		for i := range nd {
			decs[i].release()
		}
	}()
	var r io.Reader = &plainReader{raw: raw}
	for i := n - 1; i >= 0; i-- {
		d, err := newDecoder(names[i], r)
		if err != nil {
			return rawPreview(raw, limit)
		}
		decs[nd] = d
		nd++
		r = d.r
	}
	out := make([]byte, limit)
	m, err := io.ReadFull(r, out)
	if m == 0 {
		if err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) {
			return rawPreview(raw, limit)
		}
		return nil
	}
	return shrink(out[:m])
}

// plainReader reads a byte slice. Unlike bytes.Reader it exposes nothing
// but Read, so that no decoder takes a whole-buffer shortcut that would
// decode more than the preview needs.
type plainReader struct{ raw []byte }

func (r *plainReader) Read(p []byte) (int, error) {
	if len(r.raw) == 0 {
		return 0, io.EOF
	}
	n := copy(p, r.raw)
	r.raw = r.raw[n:]
	return n, nil
}

// Decoder kinds.
const (
	decGzip = iota + 1
	decZlib
	decFlate
	decBrotli
	decZstd
)

// decoder is a pooled decompressor.
type decoder struct {
	kind int
	r    io.Reader
}

var (
	gzipPool   sync.Pool // *gzip.Reader
	zlibPool   sync.Pool // io.ReadCloser implementing zlib.Resetter
	flatePool  sync.Pool // io.ReadCloser implementing flate.Resetter
	brotliPool sync.Pool // *brotli.Reader
	zstdPool   sync.Pool // *zstd.Decoder
)

// errUnknownCoding reports a coding the parser cannot undo.
var errUnknownCoding = errors.New("unknown content coding")

// newDecoder returns a decoder for one coding reading from r.
func newDecoder(name string, r io.Reader) (decoder, error) {
	switch strings.ToLower(name) {
	case "gzip", "x-gzip":
		if z, ok := gzipPool.Get().(*gzip.Reader); ok {
			if err := z.Reset(r); err != nil {
				gzipPool.Put(z)
				return decoder{}, err
			}
			return decoder{decGzip, z}, nil
		}
		z, err := gzip.NewReader(r)
		if err != nil {
			return decoder{}, err
		}
		return decoder{decGzip, z}, nil
	case "deflate":
		// RFC 9110 means zlib, but many servers send raw deflate.
		var hdr [2]byte
		k, _ := io.ReadFull(r, hdr[:])
		r = io.MultiReader(bytes.NewReader(hdr[:k]), r)
		if k == 2 && hdr[0]&0x0f == 8 && hdr[0]>>4 <= 7 && (uint16(hdr[0])<<8|uint16(hdr[1]))%31 == 0 {
			if z, ok := zlibPool.Get().(io.ReadCloser); ok {
				if err := z.(zlib.Resetter).Reset(r, nil); err != nil {
					zlibPool.Put(z)
					return decoder{}, err
				}
				return decoder{decZlib, z}, nil
			}
			z, err := zlib.NewReader(r)
			if err != nil {
				return decoder{}, err
			}
			return decoder{decZlib, z}, nil
		}
		if z, ok := flatePool.Get().(io.ReadCloser); ok {
			if err := z.(flate.Resetter).Reset(r, nil); err != nil {
				flatePool.Put(z)
				return decoder{}, err
			}
			return decoder{decFlate, z}, nil
		}
		return decoder{decFlate, flate.NewReader(r)}, nil
	case "br":
		if z, ok := brotliPool.Get().(*brotli.Reader); ok {
			_ = z.Reset(r) // always nil
			return decoder{decBrotli, z}, nil
		}
		return decoder{decBrotli, brotli.NewReader(r)}, nil
	case "zstd":
		z, ok := zstdPool.Get().(*zstd.Decoder)
		if !ok {
			var err error
			z, err = zstd.NewReader(nil,
				zstd.WithDecoderConcurrency(1),
				zstd.WithDecoderLowmem(true),
				zstd.WithDecoderMaxWindow(8<<20),
				zstd.WithDecoderMaxMemory(64<<20))
			if err != nil {
				return decoder{}, err
			}
		}
		if err := z.Reset(r); err != nil {
			zstdPool.Put(z)
			return decoder{}, err
		}
		return decoder{decZstd, z}, nil
	}
	return decoder{}, errUnknownCoding
}

// release returns the decoder to its pool.
func (d decoder) release() {
	switch d.kind {
	case decGzip:
		gzipPool.Put(d.r)
	case decZlib:
		zlibPool.Put(d.r)
	case decFlate:
		flatePool.Put(d.r)
	case decBrotli:
		brotliPool.Put(d.r)
	case decZstd:
		z := d.r.(*zstd.Decoder)
		_ = z.Reset(nil) // drop the reference to the input
		zstdPool.Put(z)
	}
}
