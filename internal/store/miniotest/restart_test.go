package miniotest_test

import (
	"context"
	"io"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/flowlake/flowlake/internal/store/miniotest"
)

// Stop kills the server: requests fail; Restart brings it back on the same
// endpoint with the same credentials and objects; the test's cleanup stops
// the restarted process.
func TestStopRestart(t *testing.T) {
	var pid int
	t.Run("server", func(t *testing.T) {
		srv := miniotest.Start(t)
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		put := func(key string) error {
			_, err := srv.Client().PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String(key), Body: strings.NewReader(key)})
			return err
		}
		if err := put("before"); err != nil {
			t.Fatal(err)
		}
		first := srv.Pid()
		srv.Stop(t)
		if alive(first) {
			t.Fatalf("minio (pid %d) alive after Stop", first)
		}
		srv.Stop(t) // stopping a stopped server does nothing
		short, cancelShort := context.WithTimeout(ctx, 5*time.Second)
		_, err := srv.Client().HeadObject(short, &s3.HeadObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String("before")}, func(o *s3.Options) {
			o.RetryMaxAttempts = 1
		})
		cancelShort()
		if err == nil {
			t.Fatal("request answered while the server is stopped")
		}
		srv.Restart(t)
		pid = srv.Pid()
		if pid == first || !alive(pid) {
			t.Fatalf("restarted pid %d (first %d)", pid, first)
		}
		out, err := srv.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String("before")})
		if err != nil {
			t.Fatalf("object written before the stop: %v", err)
		}
		b, _ := io.ReadAll(out.Body)
		out.Body.Close()
		if string(b) != "before" {
			t.Errorf("read back %q", b)
		}
		if err := put("after"); err != nil {
			t.Errorf("put after the restart: %v", err)
		}
	})
	if pid == 0 {
		t.Fatal("no server restarted")
	}
	if alive(pid) {
		t.Errorf("restarted minio (pid %d) still running after the test ended", pid)
		syscall.Kill(pid, syscall.SIGKILL)
	}
}
