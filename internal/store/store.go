// Package store is flowlake's object-store seam: one small interface over the
// places capture segments, checkpoints and the Parquet lake are kept.
//
// Three implementations share the same semantics, pinned by the conformance
// suite in [github.com/flowlake/flowlake/internal/store/storetest]:
//
//   - [Local]: a directory on a local file system (the embedded default);
//   - [S3]: an S3 bucket, optionally below a key prefix (AWS S3 or MinIO);
//   - [Mem]: process memory, for tests of other packages and embedded use.
//
// [Open] picks one from a URL. Keys are slash-separated, relative, and
// validated the same way by every implementation (see [ErrInvalidKey]).
// Objects appear atomically: a reader sees the previous object or the new
// one, never a partial write. [Store.PutIfAbsent] is the conditional create
// (S3 `If-None-Match: *`) that flowlake uses as a lock for checkpoints;
// [Store.PutIfMatch] the conditional update (S3 `If-Match`) behind the
// read-modify-write of configuration documents.
//
// The shape follows grafana/tempo's tempodb/backend: ctx first, and
// sentinel errors tested with [errors.Is].
package store

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Sentinel errors. Every error a Store returns wraps at most one of them and
// carries the operation and key in its message.
var (
	// ErrNotExist is returned by Get, GetRange and Stat when the key does not
	// name an object.
	ErrNotExist = errors.New("object does not exist")
	// ErrExists is returned by PutIfAbsent when an object with the key already
	// exists (S3: 412 PreconditionFailed).
	ErrExists = errors.New("object already exists")
	// ErrInvalidKey is returned for a key that is empty, absolute, has empty,
	// "." or ".." elements, a trailing slash, a NUL byte, invalid UTF-8, more
	// than 1024 bytes, or an element starting with ".flowlake-tmp-" (reserved
	// for the temporary files of the local store).
	ErrInvalidKey = errors.New("invalid object key")
	// ErrPreconditionFailed is returned by PutIfMatch when the key names no
	// object or an object with another ETag (S3: 412 PreconditionFailed).
	ErrPreconditionFailed = errors.New("precondition failed: the object changed or does not exist")
	// ErrAccessDenied is returned when the object store rejects the
	// credentials or the permissions they grant (S3: 403).
	ErrAccessDenied = errors.New("access denied")
)

// Info describes one object.
type Info struct {
	Key     string    // the key, relative to the store
	Size    int64     // bytes
	ModTime time.Time // when the object was last written
	ETag    string    // changes when the object is rewritten; opaque, without quotes
}

// Store is an object store: a flat namespace of immutable-once-written
// objects named by slash-separated keys.
//
// All methods are safe for concurrent use and return promptly with an error
// wrapping ctx.Err() once ctx is done.
type Store interface {
	// Put writes the object key, replacing any previous one. size is the
	// exact number of bytes r yields, or -1 when unknown; a body shorter or
	// longer than a declared size is an error and writes nothing. If Put
	// fails the previous object, if any, is unchanged.
	Put(ctx context.Context, key string, r io.Reader, size int64) error
	// PutIfAbsent is Put that fails with ErrExists, and writes nothing, when
	// the key already names an object. Of concurrent calls for one key at
	// most one succeeds.
	PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) error
	// PutIfMatch is Put that succeeds only when the key names an object
	// whose ETag (as Stat and List report it) is etag; otherwise it fails
	// with ErrPreconditionFailed and writes nothing. Of concurrent calls
	// with the same etag at most one succeeds: Stat, Get, change, PutIfMatch
	// and retry on ErrPreconditionFailed is a read-modify-write that loses
	// no update (S3 `If-Match`).
	PutIfMatch(ctx context.Context, key string, r io.Reader, size int64, etag string) error
	// Get opens the object for reading; the caller closes it.
	Get(ctx context.Context, key string) (io.ReadCloser, error)
	// GetRange returns up to n bytes of the object starting at offset off
	// (n < 0: to the end). A range reaching past the end is cut short; one
	// starting at or past the end yields no bytes and no error.
	GetRange(ctx context.Context, key string, off, n int64) ([]byte, error)
	// Stat describes the object.
	Stat(ctx context.Context, key string) (Info, error)
	// List calls fn for every object whose key starts with prefix (a plain
	// string prefix: "a/b" matches "a/b", "a/bc" and "a/b/c"), recursively,
	// in lexical byte order of the keys. An error from fn stops the listing
	// and is returned wrapped.
	List(ctx context.Context, prefix string, fn func(Info) error) error
	// Delete removes the object; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// URL returns the URL that Open accepts to reach the same objects.
	URL() string
}

// Open returns the store a URL names:
//
//   - a path, or file:///path: a [Local] store in that directory, created
//     if missing (write ./name for a relative path that contains a colon);
//   - s3://bucket or s3://bucket/prefix: an [S3] store, with the prefix put
//     in front of every key. Credentials, region and endpoint come from the
//     standard AWS sources (AWS_ACCESS_KEY_ID, AWS_REGION, AWS_ENDPOINT_URL_S3,
//     shared config files, …); the region defaults to us-east-1. Requests
//     use path-style addressing when a custom endpoint is set, unless
//     FLOWLAKE_S3_PATH_STYLE (a boolean) says otherwise. Open checks that the
//     bucket can be listed, so wrong credentials or a missing bucket fail
//     here with a clear message.
func Open(ctx context.Context, rawURL string) (Store, error) {
	if rawURL == "" {
		return nil, errors.New("open store: empty URL: want a directory, file://DIR or s3://BUCKET[/PREFIX]")
	}
	u, err := url.Parse(rawURL)
	if err != nil || len(u.Scheme) < 2 {
		// Not a URL (or a Windows drive letter): a path.
		return NewLocal(rawURL)
	}
	switch u.Scheme {
	case "file":
		if u.Host != "" && u.Host != "localhost" {
			return nil, fmt.Errorf("open store %q: file URLs name a local directory (file:///path), not host %q", rawURL, u.Host)
		}
		if u.Path == "" {
			return nil, fmt.Errorf("open store %q: file URL without a path", rawURL)
		}
		return NewLocal(u.Path)
	case "s3":
		if u.Host == "" {
			return nil, fmt.Errorf("open store %q: no bucket: want s3://BUCKET[/PREFIX]", rawURL)
		}
		if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, fmt.Errorf("open store %q: s3 URLs take no user, query or fragment: want s3://BUCKET[/PREFIX]", rawURL)
		}
		opts := S3Options{Bucket: u.Host, Prefix: strings.TrimPrefix(u.Path, "/")}
		if v, ok := os.LookupEnv("FLOWLAKE_S3_PATH_STYLE"); ok && v != "" {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return nil, fmt.Errorf("open store %q: FLOWLAKE_S3_PATH_STYLE=%q is not a boolean", rawURL, v)
			}
			opts.PathStyle = &b
		}
		return NewS3(ctx, opts)
	default:
		return nil, fmt.Errorf("open store %q: unsupported scheme %q: want a directory, file://DIR or s3://BUCKET[/PREFIX]", rawURL, u.Scheme)
	}
}

// tmpPrefix starts the names of the local store's temporary files; key
// elements may not start with it.
const tmpPrefix = ".flowlake-tmp-"

// maxKeyLen is the longest key S3 accepts, applied to every store.
const maxKeyLen = 1024

// CheckKey reports whether key is a valid object key, with an error wrapping
// ErrInvalidKey if not. Every Store applies it.
func CheckKey(key string) error {
	if reason := keyProblem(key); reason != "" {
		return fmt.Errorf("%w %q: %s", ErrInvalidKey, key, reason)
	}
	return nil
}

func keyProblem(key string) string {
	switch {
	case key == "":
		return "empty"
	case len(key) > maxKeyLen:
		return fmt.Sprintf("longer than %d bytes", maxKeyLen)
	case !utf8.ValidString(key):
		return "not valid UTF-8"
	case strings.ContainsRune(key, 0):
		return "contains a NUL byte"
	case strings.HasPrefix(key, "/"):
		return "absolute (starts with /)"
	}
	for elem := range strings.SplitSeq(key, "/") {
		switch {
		case elem == "":
			return "empty path element (// or a trailing /)"
		case elem == "." || elem == "..":
			return "contains a . or .. element"
		case strings.HasPrefix(elem, tmpPrefix):
			return "element starts with the reserved " + tmpPrefix
		}
	}
	return ""
}

// checkPrefix validates a List prefix: like a key, except that it may be
// empty and may end with a slash or a partial element.
func checkPrefix(prefix string) error {
	if prefix == "" {
		return nil
	}
	dir, last := splitPrefix(prefix)
	var reason string
	switch {
	case len(prefix) > maxKeyLen:
		reason = fmt.Sprintf("longer than %d bytes", maxKeyLen)
	case !utf8.ValidString(prefix) || strings.ContainsRune(prefix, 0):
		reason = "not valid UTF-8 or contains a NUL byte"
	case strings.HasPrefix(prefix, "/"):
		reason = "absolute (starts with /)"
	case dir != "":
		reason = keyProblem(dir)
	}
	if reason == "" && strings.HasPrefix(last, tmpPrefix) {
		reason = "element starts with the reserved " + tmpPrefix
	}
	if reason != "" {
		return fmt.Errorf("%w: list prefix %q: %s", ErrInvalidKey, prefix, reason)
	}
	return nil
}

// splitPrefix splits a list prefix into its directory part (the complete
// elements, without the final slash) and the partial last element.
func splitPrefix(prefix string) (dir, last string) {
	i := strings.LastIndexByte(prefix, '/')
	if i < 0 {
		return "", prefix
	}
	return prefix[:i], prefix[i+1:]
}

// checkSize rejects sizes other than -1 (unknown) and non-negative values.
func checkSize(op, key string, size int64) error {
	if size < -1 {
		return fmt.Errorf("%s %s: invalid size %d (want -1 for unknown, or the byte count)", op, key, size)
	}
	return nil
}

// checkRange rejects negative offsets.
func checkRange(op, key string, off int64) error {
	if off < 0 {
		return fmt.Errorf("%s %s: invalid range offset %d", op, key, off)
	}
	return nil
}

// bodyReader wraps a Put body: it fails once ctx is done and enforces a
// declared size, so that every store rejects a short or long body the same
// way instead of storing it.
type bodyReader struct {
	ctx  context.Context
	r    io.Reader
	size int64 // declared size, -1 if unknown
	n    int64 // bytes read so far
}

func newBodyReader(ctx context.Context, r io.Reader, size int64) *bodyReader {
	return &bodyReader{ctx: ctx, r: r, size: size}
}

func (b *bodyReader) Read(p []byte) (int, error) {
	if err := b.ctx.Err(); err != nil {
		return 0, err
	}
	if b.size >= 0 && int64(len(p)) > b.size-b.n+1 {
		// Read at most one byte more than declared: enough to notice a long body.
		p = p[:b.size-b.n+1]
	}
	n, err := b.r.Read(p)
	b.n += int64(n)
	if b.size >= 0 && b.n > b.size {
		return n, fmt.Errorf("body longer than the declared size %d", b.size)
	}
	if err == io.EOF && b.size >= 0 && b.n < b.size {
		return n, fmt.Errorf("body ended after %d bytes, short of the declared size %d: %w", b.n, b.size, io.ErrUnexpectedEOF)
	}
	return n, err
}

// clipRange returns the part [start, end) of an object of the given size that
// GetRange(off, n) reads.
func clipRange(size, off, n int64) (start, end int64) {
	if off >= size {
		return size, size
	}
	end = size
	if n >= 0 && n < size-off {
		end = off + n
	}
	return off, end
}
