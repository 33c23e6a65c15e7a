package http2

import (
	"bytes"
	"io"
	"strings"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/flate"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

// preview returns a body's preview, content-decoded, and releases it.
func (p *Parser) preview(b *body) []byte {
	raw := b.Buf
	b.Buf = nil
	if len(raw) == 0 || p.cfg.BodyPreview == 0 {
		return nil
	}
	if b.Coding == "" {
		return raw
	}
	return decodeBody(raw, b.Coding, p.cfg.BodyPreview)
}

// maxCodings bounds the codings undone for one preview.
const maxCodings = 4

// decodeBody undoes the codings of a content-encoding list (in the order
// they were applied) and returns at most limit decoded bytes; truncated
// input yields what could be decoded. A body whose coding is unknown or
// not valid is returned as it came.
func decodeBody(raw []byte, codings string, limit int) []byte {
	asIs := func() []byte { return bytes.Clone(raw[:min(len(raw), limit)]) }
	var names []string
	for t := range strings.SplitSeq(codings, ",") {
		t = strings.ToLower(strings.TrimSpace(t))
		if t == "" || t == "identity" {
			continue
		}
		names = append(names, t)
	}
	if len(names) == 0 {
		return asIs()
	}
	if len(names) > maxCodings {
		return asIs()
	}
	var r io.Reader = bytes.NewReader(raw)
	var closers []func()
	defer func() {
		for _, c := range closers {
			c()
		}
	}()
	for i := len(names) - 1; i >= 0; i-- {
		var err error
		switch names[i] {
		case "gzip", "x-gzip":
			r, err = gzip.NewReader(r)
		case "deflate":
			// RFC 9110 means zlib, but some servers send raw deflate.
			var hdr [2]byte
			k, _ := io.ReadFull(r, hdr[:])
			rest := io.MultiReader(bytes.NewReader(hdr[:k]), r)
			if k == 2 && hdr[0]&0x0f == 8 && (uint16(hdr[0])<<8|uint16(hdr[1]))%31 == 0 {
				r, err = zlib.NewReader(rest)
			} else {
				r = flate.NewReader(rest)
			}
		case "br":
			r = brotli.NewReader(r)
		case "zstd":
			var z *zstd.Decoder
			z, err = zstd.NewReader(r, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true),
				zstd.WithDecoderMaxWindow(8<<20), zstd.WithDecoderMaxMemory(64<<20))
			if err == nil {
				closers = append(closers, z.Close)
				r = z
			}
		default:
			return asIs()
		}
		if err != nil {
			return asIs()
		}
	}
	out := make([]byte, limit)
	n, err := io.ReadFull(r, out)
	if n == 0 && err != nil && err != io.EOF && err != io.ErrUnexpectedEOF {
		return asIs()
	}
	if n == 0 {
		return nil
	}
	return bytes.Clone(out[:n])
}
