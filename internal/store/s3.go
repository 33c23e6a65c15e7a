package store

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/s3/manager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
)

// Defaults of S3Options.
const (
	// DefaultMultipartThreshold is the object size from which S3 uploads use
	// multipart upload.
	DefaultMultipartThreshold = 16 << 20
	// DefaultPartSize is the size of the parts of a multipart upload.
	DefaultPartSize = 8 << 20
	// DefaultUploadConcurrency is how many parts of one upload are sent at once.
	DefaultUploadConcurrency = 4
)

// minPartSize is the smallest part S3 accepts (except for the last one).
const minPartSize = 5 << 20

// conflictRetries bounds the retries of a conditional write that S3 answers
// with 409 ConditionalRequestConflict (another conditional write of the key
// was in flight).
const conflictRetries = 5

// S3Options configures an S3 store.
type S3Options struct {
	// Bucket is the bucket's name (required).
	Bucket string
	// Prefix, if not empty, is put in front of every key, followed by a
	// slash: with Prefix "a/b", key "c" is the object "a/b/c".
	Prefix string
	// Config is the AWS configuration to use. When nil it is loaded from
	// the standard sources (environment, shared config files, IAM role),
	// with region us-east-1 when none is configured.
	Config *aws.Config
	// PathStyle selects path-style addressing (http://host/bucket/key).
	// When nil it is used exactly when a custom endpoint is configured
	// (AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL or endpoint_url), as MinIO needs.
	PathStyle *bool
	// MultipartThreshold is the object size from which uploads use
	// multipart upload; 0 means DefaultMultipartThreshold.
	MultipartThreshold int64
	// PartSize is the part size of multipart uploads, at least 5 MiB;
	// 0 means DefaultPartSize.
	PartSize int64
	// Concurrency is how many parts of one upload are sent at once; 0 means
	// DefaultUploadConcurrency.
	Concurrency int
}

// S3 is a Store in an S3 bucket (AWS S3, MinIO or another S3-compatible
// server), below an optional key prefix.
//
// Objects smaller than the multipart threshold are buffered in memory and
// sent with one PutObject; larger ones, and bodies of unknown size that turn
// out larger, go through the SDK's upload manager, which sends bodies longer
// than one part as a multipart upload (a body of unknown size has its first
// threshold bytes buffered, and every upload Concurrency parts). PutIfAbsent
// sends `If-None-Match: *` with PutObject, or with CompleteMultipartUpload
// for a multipart upload, so S3 decides atomically which writer wins;
// PutIfMatch sends `If-Match` the same way.
//
// Errors: a missing object gives ErrNotExist, a refused credential
// ErrAccessDenied, a failed condition ErrExists (ErrPreconditionFailed for
// PutIfMatch). A missing bucket gives a
// message saying so, except from Stat: S3 answers HEAD requests without an
// error code, so Stat reports ErrNotExist (NewS3 checks the bucket first).
type S3 struct {
	client *s3.Client
	//lint:ignore SA1019 see NewS3: the manager is the stable upload API.
	uploader  *manager.Uploader
	bucket    string
	root      string // "" or the prefix with a trailing slash
	endpoint  string // custom endpoint, "" for AWS
	region    string
	threshold int64
}

// NewS3 returns the store for opts. It checks that the credentials can list
// the bucket, so that wrong credentials, a wrong region or a missing bucket
// fail here with a clear message.
func NewS3(ctx context.Context, opts S3Options) (*S3, error) {
	return newS3(ctx, opts, true)
}

func newS3(ctx context.Context, opts S3Options, check bool) (*S3, error) {
	name := "s3://" + opts.Bucket
	if p := strings.Trim(opts.Prefix, "/"); p != "" {
		name += "/" + p
	}
	if opts.Bucket == "" {
		return nil, errors.New("open s3 store: no bucket")
	}
	root := strings.Trim(opts.Prefix, "/")
	if root != "" {
		if err := CheckKey(root); err != nil {
			return nil, fmt.Errorf("open s3 store %s: prefix: %w", name, err)
		}
		root += "/"
	}
	threshold := opts.MultipartThreshold
	if threshold == 0 {
		threshold = DefaultMultipartThreshold
	}
	partSize := opts.PartSize
	if partSize == 0 {
		partSize = DefaultPartSize
	}
	concurrency := opts.Concurrency
	if concurrency == 0 {
		concurrency = DefaultUploadConcurrency
	}
	switch {
	case threshold < 1:
		return nil, fmt.Errorf("open s3 store %s: multipart threshold %d is not positive", name, threshold)
	case partSize < minPartSize:
		return nil, fmt.Errorf("open s3 store %s: part size %d is below the S3 minimum of 5 MiB", name, partSize)
	case concurrency < 1:
		return nil, fmt.Errorf("open s3 store %s: upload concurrency %d is not positive", name, concurrency)
	}

	var cfg aws.Config
	if opts.Config != nil {
		cfg = opts.Config.Copy()
	} else {
		var err error
		if cfg, err = config.LoadDefaultConfig(ctx); err != nil {
			return nil, fmt.Errorf("open s3 store %s: load AWS configuration: %w", name, err)
		}
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.Credentials == nil {
		return nil, fmt.Errorf("open s3 store %s: no AWS credentials configured", name)
	}
	if _, err := cfg.Credentials.Retrieve(ctx); err != nil {
		return nil, fmt.Errorf("open s3 store %s: no usable AWS credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run with an IAM role: %w", name, err)
	}

	s := &S3{bucket: opts.Bucket, root: root, region: cfg.Region, threshold: threshold}
	s.client = s3.NewFromConfig(cfg, func(o *s3.Options) {
		// o.BaseEndpoint is set here when the SDK found AWS_ENDPOINT_URL_S3,
		// AWS_ENDPOINT_URL or endpoint_url in the shared config.
		s.endpoint = aws.ToString(o.BaseEndpoint)
		o.UsePathStyle = s.endpoint != ""
		if opts.PathStyle != nil {
			o.UsePathStyle = *opts.PathStyle
		}
		// Objects without a full-object checksum (multipart uploads, other
		// writers) are normal here, not worth a log line per read.
		o.DisableLogOutputChecksumValidationSkipped = true
	})
	//lint:ignore SA1019 feature/s3/manager is deprecated in favour of the pre-1.0 feature/s3/transfermanager, which logs every failed conditional completion through the standard logger; manager is the stable API.
	s.uploader = manager.NewUploader(s.client, func(u *manager.Uploader) {
		u.PartSize = partSize
		u.Concurrency = concurrency
		u.ClientOptions = append(u.ClientOptions, retryDenied)
	})
	if check {
		_, err := s.client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{
			Bucket:  aws.String(s.bucket),
			Prefix:  aws.String(s.root),
			MaxKeys: aws.Int32(1),
		})
		if err != nil {
			return nil, s.fail("open", s.URL(), err)
		}
	}
	return s, nil
}

// URL returns s3://bucket or s3://bucket/prefix.
func (s *S3) URL() string {
	if s.root == "" {
		return "s3://" + s.bucket
	}
	return "s3://" + s.bucket + "/" + strings.TrimSuffix(s.root, "/")
}

// accessCodes are the S3 error codes of refused credentials or permissions.
var accessCodes = map[string]bool{
	"AccessDenied":          true,
	"AllAccessDisabled":     true,
	"ExpiredToken":          true,
	"Forbidden":             true, // HEAD requests: no body, so no finer code
	"InvalidAccessKeyId":    true,
	"InvalidClientTokenId":  true,
	"InvalidToken":          true,
	"SignatureDoesNotMatch": true,
	"TokenRefreshRequired":  true,
}

// errorCode returns the S3 error code and HTTP status of err, if any.
func errorCode(err error) (code string, status int) {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	var re interface{ HTTPStatusCode() int }
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	return code, status
}

// fail turns an SDK error into the store's: sentinels for a missing object,
// a failed condition and refused credentials, and plain words for a missing
// bucket or a wrong region.
func (s *S3) fail(op, key string, err error) error {
	code, status := errorCode(err)
	switch {
	case code == "NoSuchBucket":
		return fmt.Errorf("s3 %s %s: bucket %q does not exist%s: %w", op, key, s.bucket, s.at(), err)
	case code == "NoSuchKey" || code == "NotFound" || status == 404:
		return fmt.Errorf("s3 %s %s: %w", op, key, ErrNotExist)
	case code == "PreconditionFailed" || code == "ConditionalRequestConflict" || status == 412:
		return fmt.Errorf("s3 %s %s: %w", op, key, ErrExists)
	case accessCodes[code] || status == 403:
		return fmt.Errorf("s3 %s %s: %w: check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (or AWS_PROFILE) and the permissions on s3://%s%s: %w",
			op, key, ErrAccessDenied, s.bucket, s.at(), err)
	case code == "AuthorizationHeaderMalformed" || code == "PermanentRedirect" || status == 301:
		return fmt.Errorf("s3 %s %s: bucket %q is not in region %q%s: set AWS_REGION to the bucket's region: %w", op, key, s.bucket, s.region, s.at(), err)
	}
	return fmt.Errorf("s3 %s %s: %w", op, key, err)
}

// at names the custom endpoint in messages.
func (s *S3) at() string {
	if s.endpoint == "" {
		return ""
	}
	return " at " + s.endpoint
}

// Put implements Store.
func (s *S3) Put(ctx context.Context, key string, r io.Reader, size int64) error {
	return s.put(ctx, "put", key, r, size, false, "")
}

// PutIfAbsent implements Store.
func (s *S3) PutIfAbsent(ctx context.Context, key string, r io.Reader, size int64) error {
	return s.put(ctx, "put-if-absent", key, r, size, true, "")
}

// PutIfMatch implements Store: PutObject (or CompleteMultipartUpload) with
// `If-Match: "etag"`.
func (s *S3) PutIfMatch(ctx context.Context, key string, r io.Reader, size int64, etag string) error {
	if etag == "" {
		return fmt.Errorf("s3 put-if-match %s: empty ETag: %w", key, ErrPreconditionFailed)
	}
	return s.put(ctx, "put-if-match", key, r, size, false, etag)
}

// put writes an object: unconditionally, or if absent, or, when match is
// not empty, if its ETag is match.
func (s *S3) put(ctx context.Context, op, key string, r io.Reader, size int64, ifAbsent bool, match string) error {
	if err := CheckKey(key); err != nil {
		return fmt.Errorf("s3 %s: %w", op, err)
	}
	if err := checkSize("s3 "+op, key, size); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("s3 %s %s: %w", op, key, err)
	}
	body := newBodyReader(ctx, r, size)
	if size >= s.threshold {
		return s.putLarge(ctx, op, key, body, size, ifAbsent, match)
	}
	head, err := io.ReadAll(io.LimitReader(body, s.threshold))
	if err != nil {
		return fmt.Errorf("s3 %s %s: read body: %w", op, key, err)
	}
	if int64(len(head)) < s.threshold {
		return s.putSmall(ctx, op, key, head, ifAbsent, match)
	}
	return s.putLarge(ctx, op, key, io.MultiReader(bytes.NewReader(head), body), -1, ifAbsent, match)
}

// precheckSize is the body size from which a conditional write first asks
// whether the object exists, rather than send the body to learn it.
const precheckSize = 1 << 20

// putSmall writes a buffered object with one PutObject, retrying a
// conditional write that met a concurrent one (409), as S3 asks.
func (s *S3) putSmall(ctx context.Context, op, key string, data []byte, ifAbsent bool, match string) error {
	if ifAbsent && len(data) >= precheckSize {
		if err := s.absent(ctx, op, key); err != nil {
			return err
		}
	}
	if match != "" && len(data) >= precheckSize {
		if err := s.matches(ctx, op, key, match); err != nil {
			return err
		}
	}
	for attempt := 0; ; attempt++ {
		in := &s3.PutObjectInput{
			Bucket:        aws.String(s.bucket),
			Key:           aws.String(s.root + key),
			Body:          bytes.NewReader(data),
			ContentLength: aws.Int64(int64(len(data))),
		}
		if ifAbsent {
			in.IfNoneMatch = aws.String("*")
		}
		if match != "" {
			in.IfMatch = aws.String(`"` + match + `"`)
		}
		_, err := s.client.PutObject(ctx, in, retryDenied)
		if err == nil {
			return nil
		}
		code, status := errorCode(err)
		if (ifAbsent || match != "") && code == "ConditionalRequestConflict" && attempt < conflictRetries {
			if err := sleep(ctx, time.Duration(50<<attempt)*time.Millisecond); err != nil {
				return fmt.Errorf("s3 %s %s: %w", op, key, err)
			}
			continue
		}
		if ifAbsent && status == 0 && ctx.Err() == nil {
			// No answer, only a broken connection: a server may refuse a
			// conditional write (412) before reading the whole body and
			// close the connection, and the client then sees the reset
			// rather than the answer. The write did not happen; if the
			// object is there, another writer made it.
			if aerr := s.absent(ctx, op, key); errors.Is(aerr, ErrExists) {
				return aerr
			}
		}
		if match != "" {
			return s.failMatch(op, key, err)
		}
		return s.fail(op, key, err)
	}
}

// matches returns nil when key names an object whose ETag is etag, and an
// error wrapping ErrPreconditionFailed when it does not.
func (s *S3) matches(ctx context.Context, op, key, etag string) error {
	info, err := s.Stat(ctx, key)
	switch {
	case errors.Is(err, ErrNotExist):
		return fmt.Errorf("s3 %s %s: no such object: %w", op, key, ErrPreconditionFailed)
	case err != nil:
		return err
	case info.ETag != etag:
		return fmt.Errorf("s3 %s %s: ETag is %q, not %q: %w", op, key, info.ETag, etag, ErrPreconditionFailed)
	}
	return nil
}

// failMatch is fail for a write with If-Match: a failed condition, and a
// missing object (S3 answers 404 NoSuchKey), are ErrPreconditionFailed.
func (s *S3) failMatch(op, key string, err error) error {
	code, status := errorCode(err)
	switch {
	case code == "PreconditionFailed" || code == "ConditionalRequestConflict" || status == 412:
		return fmt.Errorf("s3 %s %s: %w", op, key, ErrPreconditionFailed)
	case code == "NoSuchKey" || code == "NotFound" || status == 404:
		return fmt.Errorf("s3 %s %s: no such object: %w", op, key, ErrPreconditionFailed)
	}
	return s.fail(op, key, err)
}

// absent returns nil when key names no object, an error wrapping ErrExists
// when it does, and other errors as they come.
func (s *S3) absent(ctx context.Context, op, key string) error {
	_, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.root + key),
	})
	if err == nil {
		return fmt.Errorf("s3 %s %s: %w", op, key, ErrExists)
	}
	if ferr := s.fail(op, key, err); !errors.Is(ferr, ErrNotExist) {
		return ferr
	}
	return nil
}

// putLarge writes an object through the upload manager (multipart upload).
// A conditional write checks first, to skip a pointless upload, and lets
// CompleteMultipartUpload decide. A 409 there cannot be retried (the body is
// consumed) and is reported as ErrExists.
func (s *S3) putLarge(ctx context.Context, op, key string, body io.Reader, size int64, ifAbsent bool, match string) error {
	in := &s3.PutObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.root + key),
		Body:   body,
	}
	if size >= 0 {
		in.ContentLength = aws.Int64(size)
	}
	if ifAbsent {
		in.IfNoneMatch = aws.String("*")
		if err := s.absent(ctx, op, key); err != nil {
			return err
		}
	}
	if match != "" {
		// The manager copies IfMatch into CompleteMultipartUpload.
		in.IfMatch = aws.String(`"` + match + `"`)
		if err := s.matches(ctx, op, key, match); err != nil {
			return err
		}
	}
	//lint:ignore SA1019 see NewS3: the manager is the stable upload API.
	_, err := s.uploader.Upload(ctx, in)
	if err == nil {
		return nil
	}
	ferr := s.fail(op, key, err)
	if match != "" {
		ferr = s.failMatch(op, key, err)
	}
	var mu manager.MultiUploadFailure
	if errors.As(err, &mu) {
		// The manager aborts with ctx, which fails once ctx is done; abort
		// again with a fresh deadline so no parts are left behind.
		if aerr := s.abort(ctx, key, mu.UploadID()); aerr != nil {
			return errors.Join(ferr, aerr)
		}
	}
	return ferr
}

// abort abandons a multipart upload, even when ctx is done. An upload the
// manager already aborted is not an error.
func (s *S3) abort(ctx context.Context, key, uploadID string) error {
	actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	_, err := s.client.AbortMultipartUpload(actx, &s3.AbortMultipartUploadInput{
		Bucket:   aws.String(s.bucket),
		Key:      aws.String(s.root + key),
		UploadId: aws.String(uploadID),
	})
	if code, status := errorCode(err); err == nil || code == "NoSuchUpload" || status == 404 {
		return nil
	}
	return fmt.Errorf("s3 abort multipart upload %s of %s (parts are left until a lifecycle rule removes them): %w", uploadID, key, err)
}

// retryDenied makes the SDK retry a write answered with AccessDenied.
// Single-drive MinIO answers it, now and then, to a PutObject that races a
// DeleteObject of another key under the same prefix (minio/minio#12914); a
// real denial costs the retries' delay (about a second) before it is
// reported. Credential errors have other codes and are not retried.
func retryDenied(o *s3.Options) {
	o.Retryer = retry.AddWithErrorCodes(o.Retryer, "AccessDenied")
}

// sleep waits for d or until ctx is done.
func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Get implements Store.
func (s *S3) Get(ctx context.Context, key string) (io.ReadCloser, error) {
	if err := CheckKey(key); err != nil {
		return nil, fmt.Errorf("s3 get: %w", err)
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.root + key),
	})
	if err != nil {
		return nil, s.fail("get", key, err)
	}
	return out.Body, nil
}

// GetRange implements Store.
func (s *S3) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	if err := CheckKey(key); err != nil {
		return nil, fmt.Errorf("s3 get-range: %w", err)
	}
	if err := checkRange("s3 get-range", key, off); err != nil {
		return nil, err
	}
	if n == 0 {
		if _, err := s.Stat(ctx, key); err != nil {
			return nil, err
		}
		return []byte{}, nil
	}
	rng := fmt.Sprintf("bytes=%d-", off)
	if n > 0 && n <= math.MaxInt64-off {
		rng = fmt.Sprintf("bytes=%d-%d", off, off+n-1)
	}
	out, err := s.client.GetObject(ctx, &s3.GetObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.root + key),
		Range:  aws.String(rng),
	})
	if err != nil {
		if code, status := errorCode(err); code == "InvalidRange" || status == 416 {
			return []byte{}, nil // the range starts at or past the end
		}
		return nil, s.fail("get-range", key, err)
	}
	defer out.Body.Close()
	buf, err := io.ReadAll(out.Body)
	if err != nil {
		return nil, fmt.Errorf("s3 get-range %s %s: %w", key, rng, err)
	}
	return buf, nil
}

// Stat implements Store.
func (s *S3) Stat(ctx context.Context, key string) (Info, error) {
	if err := CheckKey(key); err != nil {
		return Info{}, fmt.Errorf("s3 stat: %w", err)
	}
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.root + key),
	})
	if err != nil {
		return Info{}, s.fail("stat", key, err)
	}
	return Info{
		Key:     key,
		Size:    aws.ToInt64(out.ContentLength),
		ModTime: aws.ToTime(out.LastModified),
		ETag:    strings.Trim(aws.ToString(out.ETag), `"`),
	}, nil
}

// List implements Store. Objects in the bucket whose keys are not valid store
// keys (such as "dir/" folder markers) are skipped.
func (s *S3) List(ctx context.Context, prefix string, fn func(Info) error) error {
	if err := checkPrefix(prefix); err != nil {
		return fmt.Errorf("s3 list: %w", err)
	}
	return s.list(ctx, prefix, "", fn)
}

// list lists prefix from the first key after after ("": from the start).
func (s *S3) list(ctx context.Context, prefix, after string, fn func(Info) error) error {
	in := &s3.ListObjectsV2Input{
		Bucket: aws.String(s.bucket),
		Prefix: aws.String(s.root + prefix),
	}
	if after != "" {
		in.StartAfter = aws.String(s.root + after)
	}
	p := s3.NewListObjectsV2Paginator(s.client, in)
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return s.fail("list", fmt.Sprintf("%q", prefix), err)
		}
		for _, o := range page.Contents {
			key, ok := strings.CutPrefix(aws.ToString(o.Key), s.root)
			if !ok || keyProblem(key) != "" {
				continue
			}
			info := Info{
				Key:     key,
				Size:    aws.ToInt64(o.Size),
				ModTime: aws.ToTime(o.LastModified),
				ETag:    strings.Trim(aws.ToString(o.ETag), `"`),
			}
			if err := fn(info); err != nil {
				return fmt.Errorf("s3 list %q: %w", prefix, err)
			}
		}
	}
	return nil
}

// Delete implements Store.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := CheckKey(key); err != nil {
		return fmt.Errorf("s3 delete: %w", err)
	}
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.root + key),
	})
	if err != nil {
		if ferr := s.fail("delete", key, err); !errors.Is(ferr, ErrNotExist) {
			return ferr
		}
	}
	return nil
}
