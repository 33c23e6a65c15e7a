package miniotest_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/flowlake/flowlake/internal/store/miniotest"
)

// alive reports whether process pid exists.
func alive(pid int) bool {
	return syscall.Kill(pid, 0) == nil
}

// waitDead waits up to 15 s for process pid to end.
func waitDead(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for alive(pid) {
		if time.Now().After(deadline) {
			syscall.Kill(pid, syscall.SIGKILL)
			t.Fatalf("minio (pid %d) still running", pid)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestStartStop(t *testing.T) {
	var pid int
	var dir string
	t.Run("server", func(t *testing.T) {
		srv := miniotest.Start(t)
		pid, dir = srv.Pid(), srv.Dir
		if !alive(pid) {
			t.Fatal("server not running")
		}
		ctx := t.Context()
		_, err := srv.Client().PutObject(ctx, &s3.PutObjectInput{
			Bucket: aws.String(srv.Bucket), Key: aws.String("k"), Body: strings.NewReader("v"),
		})
		if err != nil {
			t.Fatalf("put into the bucket: %v", err)
		}
		out, err := srv.Client().GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(srv.Bucket), Key: aws.String("k")})
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(out.Body)
		out.Body.Close()
		if string(b) != "v" {
			t.Errorf("read back %q", b)
		}
		env := srv.Env()
		if env["AWS_ENDPOINT_URL_S3"] != srv.Endpoint || env["AWS_ACCESS_KEY_ID"] != srv.AccessKey ||
			env["AWS_SECRET_ACCESS_KEY"] != srv.SecretKey || env["AWS_REGION"] != miniotest.Region {
			t.Errorf("Env() = %v does not describe the server", env)
		}
		// A second server is independent.
		other := miniotest.Start(t)
		if other.Endpoint == srv.Endpoint || other.AccessKey == srv.AccessKey {
			t.Errorf("two servers share endpoint or credentials")
		}
		if _, err := other.Client().HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(other.Bucket), Key: aws.String("k")}); err == nil {
			t.Errorf("second server sees the first one's object")
		}
	})
	if pid == 0 {
		t.Fatal("no server started")
	}
	if alive(pid) {
		t.Errorf("minio (pid %d) still running after the test ended", pid)
		syscall.Kill(pid, syscall.SIGKILL)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("data directory %s not removed: %v", dir, err)
	}
}

// TestHelperProcess is run by the tests below in a child test process.
func TestHelperProcess(t *testing.T) {
	mode := os.Getenv("MINIOTEST_HELPER")
	if mode == "" {
		t.Skip("runs only as a child of TestKilledWith")
	}
	srv := miniotest.Start(t)
	fmt.Printf("MINIO_PID=%d\n", srv.Pid())
	os.Stdout.Sync()
	switch mode {
	case "panic":
		panic("the test panics")
	case "sigkill":
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		time.Sleep(time.Minute)
	}
}

// TestKilledWith checks that the server does not outlive a test that panics,
// or a test process that is killed.
func TestKilledWith(t *testing.T) {
	if _, err := miniotest.Binary(); err != nil {
		t.Skip(err.Error())
	}
	for _, mode := range []string{"panic", "sigkill"} {
		t.Run(mode, func(t *testing.T) {
			if mode == "sigkill" && runtime.GOOS != "linux" {
				t.Skip("the parent-death signal exists on Linux only")
			}
			cmd := exec.Command(os.Args[0], "-test.run=^TestHelperProcess$", "-test.v", "-test.count=1")
			cmd.Env = append(os.Environ(), "MINIOTEST_HELPER="+mode, "TMPDIR="+t.TempDir())
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			cmd.WaitDelay = 30 * time.Second
			if err := cmd.Run(); err == nil {
				t.Fatalf("helper succeeded; output:\n%s", out.String())
			}
			m := regexp.MustCompile(`MINIO_PID=(\d+)`).FindStringSubmatch(out.String())
			if m == nil {
				t.Fatalf("helper did not start minio; output:\n%s", out.String())
			}
			pid, _ := strconv.Atoi(m[1])
			waitDead(t, pid)
		})
	}
}

// TestSkipWithoutBinary checks the message of a test that cannot find minio.
func TestSkipWithoutBinary(t *testing.T) {
	if os.Getenv("MINIOTEST_HELPER") == "missing" {
		miniotest.Start(t)
		t.Fatal("Start returned without minio")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestSkipWithoutBinary$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), "MINIOTEST_HELPER=missing", "PATH=", "GOBIN=", "GOPATH=", "HOME="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper failed: %v\n%s", err, out)
	}
	for _, want := range []string{"--- SKIP", "minio not installed: run `make minio` or `go install github.com/minio/minio@" + miniotest.Version + "`"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("helper output lacks %q:\n%s", want, out)
		}
	}
}

// TestVersionMatchesMakefile keeps the install hint and `make minio` in step.
func TestVersionMatchesMakefile(t *testing.T) {
	mk, err := os.ReadFile("../minio.mk")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^MINIO_VERSION := (\S+)$`).FindSubmatch(mk)
	if m == nil || string(m[1]) != miniotest.Version {
		t.Errorf("minio.mk MINIO_VERSION = %q, miniotest.Version = %q", m, miniotest.Version)
	}
}
