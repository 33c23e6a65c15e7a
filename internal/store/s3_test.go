package store_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/flowlake/flowlake/internal/store"
	"github.com/flowlake/flowlake/internal/store/miniotest"
	"github.com/flowlake/flowlake/internal/store/storetest"
)

// startMinio starts a MinIO server and points the AWS variables at it.
func startMinio(t *testing.T) *miniotest.Server {
	t.Helper()
	srv := miniotest.Start(t)
	srv.SetEnv(t)
	return srv
}

// noUploads fails t if multipart uploads below prefix were left open. (MinIO
// lists uploads by prefix only for a whole key, so all are listed here.)
func noUploads(t *testing.T, srv *miniotest.Server, bucket, prefix string) {
	t.Helper()
	out, err := srv.Client().ListMultipartUploads(context.Background(), &s3.ListMultipartUploadsInput{
		Bucket: aws.String(bucket),
	})
	if err != nil {
		t.Errorf("list multipart uploads: %v", err)
		return
	}
	for _, u := range out.Uploads {
		if strings.HasPrefix(aws.ToString(u.Key), prefix) {
			t.Errorf("multipart upload left open: %s %s", aws.ToString(u.Key), aws.ToString(u.UploadId))
		}
	}
}

// TestS3Conformance runs the suite against MinIO, through Open and the AWS
// variables (AWS_ENDPOINT_URL_S3, …), below a prefix.
func TestS3Conformance(t *testing.T) {
	srv := startMinio(t)
	n := 0
	storetest.Run(t, func(t *testing.T) store.Store {
		n++
		prefix := fmt.Sprintf("some/prefix/%d", n)
		s, err := store.Open(t.Context(), "s3://"+srv.Bucket+"/"+prefix)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { noUploads(t, srv, srv.Bucket, prefix+"/") })
		return s
	})
}

// TestS3ConformanceBucketRoot runs the suite on whole buckets (no prefix).
func TestS3ConformanceBucketRoot(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: the prefixed run covers the same code")
	}
	srv := startMinio(t)
	n := 0
	storetest.Run(t, func(t *testing.T) store.Store {
		n++
		bucket := fmt.Sprintf("root-%d", n)
		srv.CreateBucket(t, bucket)
		s, err := store.Open(t.Context(), "s3://"+bucket)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { noUploads(t, srv, bucket, "") })
		return s
	})
}

func TestS3Prefix(t *testing.T) {
	srv := startMinio(t)
	ctx := t.Context()
	open := func(url string) store.Store {
		s, err := store.Open(ctx, url)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	root := open("s3://" + srv.Bucket)
	a := open("s3://" + srv.Bucket + "/a")
	ab := open("s3://" + srv.Bucket + "/ab/")
	for _, tc := range []struct {
		s    store.Store
		want string
	}{{root, "s3://" + srv.Bucket}, {a, "s3://" + srv.Bucket + "/a"}, {ab, "s3://" + srv.Bucket + "/ab"}} {
		if tc.s.URL() != tc.want {
			t.Errorf("URL() = %q, want %q", tc.s.URL(), tc.want)
		}
	}
	for _, s := range []store.Store{a, ab} {
		if err := s.Put(ctx, "k", strings.NewReader(s.URL()), -1); err != nil {
			t.Fatal(err)
		}
	}
	keys := func(s store.Store) []string {
		var ks []string
		if err := s.List(ctx, "", func(i store.Info) error { ks = append(ks, i.Key); return nil }); err != nil {
			t.Fatal(err)
		}
		return ks
	}
	if got := keys(root); !slices.Equal(got, []string{"a/k", "ab/k"}) {
		t.Errorf("bucket root lists %q, want [a/k ab/k]", got)
	}
	if got := keys(a); !slices.Equal(got, []string{"k"}) {
		t.Errorf("prefix a lists %q, want [k]: the prefix is a directory, not a string prefix", got)
	}
	out, err := srv.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String("ab/k")})
	if err != nil {
		t.Fatalf("the object of key k in s3://bucket/ab is not ab/k: %v", err)
	}
	body, _ := io.ReadAll(out.Body)
	out.Body.Close()
	if string(body) != ab.URL() {
		t.Errorf("ab/k holds %q, want %q", body, ab.URL())
	}
	// Reopening by URL reaches the same objects.
	if _, err := open(a.URL()).Stat(ctx, "k"); err != nil {
		t.Errorf("Open(URL()) does not see k: %v", err)
	}
	// Folder markers made by other tools are not keys.
	if _, err := srv.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String("a/folder/"), Body: bytes.NewReader(nil)}); err != nil {
		t.Fatal(err)
	}
	if got := keys(a); !slices.Equal(got, []string{"k"}) {
		t.Errorf("with a folder marker, prefix a lists %q, want [k]", got)
	}
}

// TestS3Multipart checks from the ETags (multipart ETags end in -PARTS) that
// large objects go through multipart upload and small ones do not.
func TestS3Multipart(t *testing.T) {
	srv := startMinio(t)
	ctx := t.Context()
	const mib = 1 << 20
	small, err := store.NewS3(ctx, store.S3Options{Bucket: srv.Bucket, Prefix: "mp", MultipartThreshold: 6 * mib, PartSize: 5 * mib, Concurrency: 2})
	if err != nil {
		t.Fatal(err)
	}
	def, err := store.Open(ctx, "s3://"+srv.Bucket+"/mp-default")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		s     store.Store
		name  string
		size  int
		known bool
		parts string // "" for a single PutObject
	}{
		{small, "5MiB", 5 * mib, true, ""},
		{small, "6MiB-1", 6*mib - 1, false, ""},
		{small, "6MiB-known", 6 * mib, true, "-2"},
		{small, "6MiB-unknown", 6 * mib, false, "-2"},
		{small, "11MiB", 11 * mib, true, "-3"},
		{small, "11MiB-unknown", 11 * mib, false, "-3"},
		{def, "16MiB-1", 16*mib - 1, false, ""},
		{def, "20MiB", storetest.LargeSize, true, "-3"},
	} {
		data := bytes.Repeat([]byte(tc.name), tc.size/len(tc.name)+1)[:tc.size]
		size := int64(-1)
		if tc.known {
			size = int64(tc.size)
		}
		if err := tc.s.Put(ctx, tc.name, io.MultiReader(bytes.NewReader(data)), size); err != nil {
			t.Fatalf("Put %s: %v", tc.name, err)
		}
		info, err := tc.s.Stat(ctx, tc.name)
		if err != nil {
			t.Fatal(err)
		}
		multipart := strings.Contains(info.ETag, "-")
		if tc.parts == "" && multipart || tc.parts != "" && !strings.HasSuffix(info.ETag, tc.parts) {
			t.Errorf("%s: ETag %q, want parts %q", tc.name, info.ETag, tc.parts)
		}
		got, err := tc.s.GetRange(ctx, tc.name, 0, -1)
		if err != nil || !bytes.Equal(got, data) {
			t.Errorf("%s: read back %d bytes (%v), want %d", tc.name, len(got), err, len(data))
		}
		// Conditional create of a large object: refused, nothing left over.
		err = tc.s.PutIfAbsent(ctx, tc.name, io.MultiReader(bytes.NewReader(data)), size)
		if !errors.Is(err, store.ErrExists) {
			t.Errorf("%s: PutIfAbsent over it: %v, want ErrExists", tc.name, err)
		}
	}
	noUploads(t, srv, srv.Bucket, "")

	if _, err := store.NewS3(ctx, store.S3Options{Bucket: srv.Bucket, PartSize: mib}); err == nil || !strings.Contains(err.Error(), "5 MiB") {
		t.Errorf("part size 1 MiB: %v, want an error about the 5 MiB minimum", err)
	}
}

// TestS3ConditionalMultipartRace races conditional creates decided by
// CompleteMultipartUpload against ones decided by PutObject.
func TestS3ConditionalMultipartRace(t *testing.T) {
	srv := startMinio(t)
	ctx := t.Context()
	const mib = 1 << 20
	s, err := store.NewS3(ctx, store.S3Options{Bucket: srv.Bucket, MultipartThreshold: 5 * mib, PartSize: 5 * mib})
	if err != nil {
		t.Fatal(err)
	}
	for round := range 4 {
		key := fmt.Sprintf("race/%d", round)
		sizes := []int{6 * mib, 100, 6 * mib, 100, 11 * mib, 1}
		errs := make([]error, len(sizes))
		datas := make([][]byte, len(sizes))
		start := make(chan struct{})
		var wg sync.WaitGroup
		for i, n := range sizes {
			datas[i] = bytes.Repeat([]byte{byte('a' + i)}, n)
			wg.Go(func() {
				<-start
				errs[i] = s.PutIfAbsent(ctx, key, bytes.NewReader(datas[i]), int64(n))
			})
		}
		close(start)
		wg.Wait()
		winners := 0
		var winner []byte
		for i, err := range errs {
			switch {
			case err == nil:
				winners++
				winner = datas[i]
			case !errors.Is(err, store.ErrExists):
				t.Errorf("%s writer %d: %v", key, i, err)
			}
		}
		if winners != 1 {
			t.Fatalf("%s: %d writers succeeded, want 1", key, winners)
		}
		got, err := s.GetRange(ctx, key, 0, -1)
		if err != nil || !bytes.Equal(got, winner) {
			t.Errorf("%s holds %d bytes (%v), want the winner's %d", key, len(got), err, len(winner))
		}
	}
	noUploads(t, srv, srv.Bucket, "")
}

func TestS3WrongCredentials(t *testing.T) {
	srv := startMinio(t)
	ctx := t.Context()
	for _, tc := range []struct{ name, id, secret string }{
		{"wrong-secret", srv.AccessKey, "not-the-secret-key"},
		{"unknown-key", "NOSUCHKEY", srv.SecretKey},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("AWS_ACCESS_KEY_ID", tc.id)
			t.Setenv("AWS_SECRET_ACCESS_KEY", tc.secret)
			_, err := store.Open(ctx, "s3://"+srv.Bucket+"/p")
			checkDenied(t, "Open", err)

			s, err := store.NewS3Unchecked(ctx, store.S3Options{Bucket: srv.Bucket, Prefix: "p"})
			if err != nil {
				t.Fatal(err)
			}
			checkDenied(t, "Put", s.Put(ctx, "k", strings.NewReader("v"), 1))
			checkDenied(t, "PutIfAbsent", s.PutIfAbsent(ctx, "k", strings.NewReader("v"), 1))
			checkDenied(t, "PutIfAbsent large", s.PutIfAbsent(ctx, "k", bytes.NewReader(make([]byte, storetest.LargeSize)), -1))
			checkDenied(t, "Put large", s.Put(ctx, "k", bytes.NewReader(make([]byte, storetest.LargeSize)), storetest.LargeSize))
			_, err = s.Get(ctx, "k")
			checkDenied(t, "Get", err)
			_, err = s.GetRange(ctx, "k", 0, 1)
			checkDenied(t, "GetRange", err)
			_, err = s.Stat(ctx, "k")
			checkDenied(t, "Stat", err)
			checkDenied(t, "List", s.List(ctx, "", func(store.Info) error { return nil }))
			checkDenied(t, "Delete", s.Delete(ctx, "k"))
		})
	}
	noUploads(t, srv, srv.Bucket, "")
}

func checkDenied(t *testing.T, op string, err error) {
	t.Helper()
	if !errors.Is(err, store.ErrAccessDenied) || !strings.Contains(err.Error(), "access denied: check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY") {
		t.Errorf("%s with wrong credentials: %v, want ErrAccessDenied and a hint", op, err)
	}
	if errors.Is(err, store.ErrNotExist) || errors.Is(err, store.ErrExists) {
		t.Errorf("%s with wrong credentials: %v must not look like a missing or existing object", op, err)
	}
}

func TestS3MissingBucket(t *testing.T) {
	srv := startMinio(t)
	ctx := t.Context()
	_, err := store.Open(ctx, "s3://no-such-bucket/p")
	checkNoBucket(t, "Open", err)

	s, err := store.NewS3Unchecked(ctx, store.S3Options{Bucket: "no-such-bucket"})
	if err != nil {
		t.Fatal(err)
	}
	checkNoBucket(t, "Put", s.Put(ctx, "k", strings.NewReader("v"), 1))
	checkNoBucket(t, "PutIfAbsent", s.PutIfAbsent(ctx, "k", strings.NewReader("v"), 1))
	checkNoBucket(t, "Put large", s.Put(ctx, "k", bytes.NewReader(make([]byte, storetest.LargeSize)), -1))
	_, err = s.Get(ctx, "k")
	checkNoBucket(t, "Get", err)
	_, err = s.GetRange(ctx, "k", 0, 1)
	checkNoBucket(t, "GetRange", err)
	checkNoBucket(t, "List", s.List(ctx, "", func(store.Info) error { return nil }))
	checkNoBucket(t, "Delete", s.Delete(ctx, "k"))
	_ = srv
}

func checkNoBucket(t *testing.T, op string, err error) {
	t.Helper()
	if err == nil || !strings.Contains(err.Error(), `bucket "no-such-bucket" does not exist`) {
		t.Errorf("%s on a missing bucket: %v, want an error saying so", op, err)
	}
	if errors.Is(err, store.ErrNotExist) {
		t.Errorf("%s on a missing bucket: %v must not look like a missing object", op, err)
	}
}

func TestS3WrongRegion(t *testing.T) {
	srv := startMinio(t)
	t.Setenv("AWS_REGION", "eu-west-3")
	_, err := store.Open(t.Context(), "s3://"+srv.Bucket)
	if err == nil || !strings.Contains(err.Error(), "set AWS_REGION") {
		t.Errorf("Open with the wrong region: %v, want an error about AWS_REGION", err)
	}
}

// TestS3EndpointURL checks that the generic AWS_ENDPOINT_URL is honoured too.
func TestS3EndpointURL(t *testing.T) {
	srv := startMinio(t)
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
	t.Setenv("AWS_ENDPOINT_URL", srv.Endpoint)
	s, err := store.Open(t.Context(), "s3://"+srv.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(t.Context(), "k", strings.NewReader("v"), 1); err != nil {
		t.Fatal(err)
	}
}

func TestS3NoCredentials(t *testing.T) {
	for k, v := range map[string]string{
		"AWS_ACCESS_KEY_ID":                      "",
		"AWS_SECRET_ACCESS_KEY":                  "",
		"AWS_SESSION_TOKEN":                      "",
		"AWS_PROFILE":                            "",
		"AWS_WEB_IDENTITY_TOKEN_FILE":            "",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI": "",
		"AWS_CONTAINER_CREDENTIALS_FULL_URI":     "",
		"AWS_CONFIG_FILE":                        os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE":            os.DevNull,
		"AWS_EC2_METADATA_DISABLED":              "true",
		"AWS_ENDPOINT_URL_S3":                    "http://127.0.0.1:1",
	} {
		t.Setenv(k, v)
	}
	_, err := store.Open(t.Context(), "s3://bucket")
	if err == nil || !strings.Contains(err.Error(), "no usable AWS credentials: set AWS_ACCESS_KEY_ID") {
		t.Errorf("Open without credentials: %v, want an error explaining how to set them", err)
	}
}

// fakeS3 answers S3 requests from a script, without a network.
type fakeS3 struct {
	mu       sync.Mutex
	requests []*http.Request
	bodies   [][]byte
	respond  func(n int, r *http.Request) (int, string) // n counts requests from 0
	retries  bool                                       // let the SDK retry as it does by default
}

func (f *fakeS3) Do(r *http.Request) (*http.Response, error) {
	var body []byte
	if r.Body != nil {
		body, _ = io.ReadAll(r.Body)
		r.Body.Close()
	}
	f.mu.Lock()
	n := len(f.requests)
	f.requests = append(f.requests, r)
	f.bodies = append(f.bodies, body)
	f.mu.Unlock()
	status, xml := f.respond(n, r)
	if status < 0 {
		return nil, &net.OpError{Op: "write", Net: "tcp", Err: syscall.ECONNRESET}
	}
	return &http.Response{
		StatusCode: status,
		Header:     http.Header{"Content-Type": {"application/xml"}},
		Body:       io.NopCloser(strings.NewReader(xml)),
		Request:    r,
	}, nil
}

func (f *fakeS3) config(endpoint string) *aws.Config {
	cfg := aws.Config{
		Region:      "us-east-1",
		Credentials: credentials.NewStaticCredentialsProvider("id", "secret", ""),
		HTTPClient:  f,
		// The scripts count requests: no retries by the SDK.
		RetryMaxAttempts: 1,
	}
	if f.retries {
		cfg.RetryMaxAttempts = 0 // the SDK's default
	}
	if endpoint != "" {
		cfg.BaseEndpoint = aws.String(endpoint)
	}
	return &cfg
}

const emptyListing = `<?xml version="1.0" encoding="UTF-8"?><ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>b</Name><KeyCount>0</KeyCount><MaxKeys>1</MaxKeys><IsTruncated>false</IsTruncated></ListBucketResult>`

func s3Error(code string) string {
	return `<?xml version="1.0" encoding="UTF-8"?><Error><Code>` + code + `</Code><Message>scripted</Message></Error>`
}

// TestS3Addressing checks path-style addressing with a custom endpoint and
// its override.
func TestS3Addressing(t *testing.T) {
	yes, no := true, false
	for _, tc := range []struct {
		name      string
		endpoint  string
		pathStyle *bool
		host      string
		path      string
	}{
		{"custom-endpoint", "http://minio.example:9000", nil, "minio.example:9000", "/flowlake"},
		{"custom-endpoint-virtual", "http://minio.example:9000", &no, "flowlake.minio.example:9000", "/"},
		{"aws", "", nil, "flowlake.s3.us-east-1.amazonaws.com", "/"},
		{"aws-path-style", "", &yes, "s3.us-east-1.amazonaws.com", "/flowlake"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeS3{respond: func(int, *http.Request) (int, string) { return 200, emptyListing }}
			if _, err := store.NewS3(t.Context(), store.S3Options{Bucket: "flowlake", Config: f.config(tc.endpoint), PathStyle: tc.pathStyle}); err != nil {
				t.Fatal(err)
			}
			r := f.requests[0]
			if r.URL.Host != tc.host || r.URL.Path != tc.path {
				t.Errorf("request to host %q path %q, want %q %q", r.URL.Host, r.URL.Path, tc.host, tc.path)
			}
		})
	}
}

// TestS3ConditionalConflictRetry checks that a conditional write answered
// with 409 ConditionalRequestConflict is sent again, with the same body.
func TestS3ConditionalConflictRetry(t *testing.T) {
	for _, tc := range []struct {
		name    string
		answers []int // status of each PutObject
		want    error
	}{
		{"then-created", []int{409, 200}, nil},
		{"then-exists", []int{409, 409, 412}, store.ErrExists},
		{"always-conflict", []int{409, 409, 409, 409, 409, 409}, store.ErrExists},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeS3{}
			f.respond = func(n int, r *http.Request) (int, string) {
				if n == 0 {
					return 200, emptyListing
				}
				if n > len(tc.answers) {
					t.Errorf("request %d: %s %s beyond the script", n, r.Method, r.URL)
					return 500, s3Error("InternalError")
				}
				switch st := tc.answers[n-1]; st {
				case 409:
					return st, s3Error("ConditionalRequestConflict")
				case 412:
					return st, s3Error("PreconditionFailed")
				default:
					return st, ""
				}
			}
			s, err := store.NewS3(t.Context(), store.S3Options{Bucket: "b", Config: f.config("http://s3.example")})
			if err != nil {
				t.Fatal(err)
			}
			err = s.PutIfAbsent(t.Context(), "ckpt", strings.NewReader("state"), 5)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("PutIfAbsent: %v, want %v", err, tc.want)
			}
			if len(f.requests) != 1+len(tc.answers) {
				t.Errorf("%d requests, want %d", len(f.requests), 1+len(tc.answers))
			}
			for i, r := range f.requests[1:] {
				if r.Method != http.MethodPut || r.Header.Get("If-None-Match") != "*" || !bytes.Contains(f.bodies[i+1], []byte("state")) {
					t.Errorf("request %d: %s If-None-Match %q body %q, want a conditional PUT of the body", i+1, r.Method, r.Header.Get("If-None-Match"), f.bodies[i+1])
				}
			}
		})
	}
}

// TestS3ConditionalConnectionReset checks the answer to a conditional write
// whose connection broke (servers may answer 412 early and close it): the
// object's existence decides.
func TestS3ConditionalConnectionReset(t *testing.T) {
	for _, tc := range []struct {
		name       string
		headStatus int
		exists     bool
	}{
		{"object-there", 200, true},
		{"object-missing", 404, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeS3{}
			f.respond = func(n int, r *http.Request) (int, string) {
				switch {
				case n == 0:
					return 200, emptyListing
				case r.Method == http.MethodPut:
					return -1, ""
				case r.Method == http.MethodHead:
					return tc.headStatus, ""
				}
				t.Errorf("unexpected request %s %s", r.Method, r.URL)
				return 500, s3Error("InternalError")
			}
			s, err := store.NewS3(t.Context(), store.S3Options{Bucket: "b", Config: f.config("http://s3.example")})
			if err != nil {
				t.Fatal(err)
			}
			err = s.PutIfAbsent(t.Context(), "ckpt", strings.NewReader("state"), 5)
			if errors.Is(err, store.ErrExists) != tc.exists || !tc.exists && !errors.Is(err, syscall.ECONNRESET) {
				t.Errorf("PutIfAbsent: %v; want ErrExists %v, else the connection error", err, tc.exists)
			}
			// A Put (unconditional) never reports ErrExists.
			err = s.Put(t.Context(), "k", strings.NewReader("v"), 1)
			if err == nil || errors.Is(err, store.ErrExists) {
				t.Errorf("Put over a broken connection: %v", err)
			}
		})
	}
}

// TestS3WriteRetriesAccessDenied checks that writes retry AccessDenied (see
// retryDenied), and that reads do not.
func TestS3WriteRetriesAccessDenied(t *testing.T) {
	f := &fakeS3{retries: true}
	denied := map[string]int{} // method -> denials so far
	f.respond = func(n int, r *http.Request) (int, string) {
		if n == 0 {
			return 200, emptyListing
		}
		if denied[r.Method] == 0 {
			denied[r.Method]++
			return 403, s3Error("AccessDenied")
		}
		return 200, ""
	}
	s, err := store.NewS3(t.Context(), store.S3Options{Bucket: "b", Config: f.config("http://s3.example")})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Put(t.Context(), "k", strings.NewReader("v"), 1); err != nil {
		t.Errorf("Put after one AccessDenied: %v", err)
	}
	_, err = s.Stat(t.Context(), "k")
	if !errors.Is(err, store.ErrAccessDenied) {
		t.Errorf("Stat after one AccessDenied: %v, want ErrAccessDenied at once", err)
	}
	if len(f.requests) != 4 {
		t.Errorf("%d requests, want 4 (list, put denied, put, head denied)", len(f.requests))
	}
}
