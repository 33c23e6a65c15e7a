// Package miniotest starts a real MinIO server for tests: a fresh data
// directory, a free loopback port, random root credentials and an empty
// bucket, all gone when the test ends.
//
// The server is the `minio` binary, found on PATH or in $(go env GOPATH)/bin
// (`make minio` installs the pinned version). Without it, Start skips the
// test with a message saying how to install it.
//
// The server runs in its own process group and is killed with the group when
// the test ends, even if it panics; on Linux it is also killed by the kernel
// if the test process dies without cleaning up (timeouts, SIGKILL).
package miniotest

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
)

// Version is the MinIO module version `make minio` installs.
const Version = "v0.0.0-20260212201848-7aac2a2c5b7c"

// installHint tells how to get the binary.
const installHint = "run `make minio` or `go install github.com/minio/minio@" + Version + "`"

// Region is the region the server is addressed with.
const Region = "us-east-1"

// startTimeout bounds how long Start waits for the server to be ready.
const startTimeout = 60 * time.Second

// Server is a running MinIO server.
type Server struct {
	Endpoint  string // base URL, http://127.0.0.1:PORT
	AccessKey string // root user
	SecretKey string // root password
	Region    string // always Region
	Bucket    string // an empty bucket created by Start
	Dir       string // the data directory

	cmd    *exec.Cmd
	args   []string      // the command line of the server, for Restart
	env    []string      // its environment
	exited chan struct{} // closed when the process has been waited for
	log    *bytes.Buffer // combined output of the process (guarded by the process's exit)
	client *s3.Client
}

// Binary returns the path of the minio executable: on PATH, else in $GOBIN,
// else in $(go env GOPATH)/bin, else in ~/go/bin.
func Binary() (string, error) {
	if p, err := exec.LookPath("minio"); err == nil {
		return p, nil
	}
	var dirs []string
	if d := os.Getenv("GOBIN"); d != "" {
		dirs = append(dirs, d)
	}
	gopath := os.Getenv("GOPATH")
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		gopath = strings.TrimSpace(string(out))
	}
	for _, p := range filepath.SplitList(gopath) {
		dirs = append(dirs, filepath.Join(p, "bin"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, "minio")
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("minio not installed: %s", installHint)
}

// Start starts a server for t and creates its bucket; t's cleanup stops the
// server and removes its data. It skips t when minio is not installed and
// fails t when the server does not start.
func Start(t testing.TB) *Server {
	t.Helper()
	return StartWithEnv(t, nil)
}

// StartWithEnv is Start with extra environment variables for the server,
// for settings MinIO only takes from its environment, such as notification
// targets (MINIO_NOTIFY_WEBHOOK_ENABLE_<ID>=on, …). They are added after
// the ones Start sets; variables other than MINIO_* are passed on too.
func StartWithEnv(t testing.TB, env map[string]string) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Skip(err.Error())
	}
	var s *Server
	// A port found free may be taken before MinIO binds it: try again.
	for attempt := 1; ; attempt++ {
		s, err = start(t, bin, env)
		if err == nil {
			break
		}
		if attempt == 3 || !strings.Contains(err.Error(), "already in use") {
			t.Fatalf("miniotest: %v", err)
		}
	}
	s.client = s.newClient()
	s.Bucket = "flowlake-test"
	s.CreateBucket(t, s.Bucket)
	return s
}

// start launches one server process and waits until it is ready.
func start(t testing.TB, bin string, extra map[string]string) (*Server, error) {
	base := t.TempDir()
	ports, err := freePorts(2)
	if err != nil {
		return nil, err
	}
	s := &Server{
		Endpoint:  fmt.Sprintf("http://127.0.0.1:%d", ports[0]),
		AccessKey: "flowlake" + rand.Text()[:12],
		SecretKey: rand.Text(),
		Region:    Region,
		Dir:       filepath.Join(base, "data"),
		exited:    make(chan struct{}),
		log:       new(bytes.Buffer),
	}
	s.cmd = exec.Command(bin, "server", s.Dir,
		"--address", fmt.Sprintf("127.0.0.1:%d", ports[0]),
		"--console-address", fmt.Sprintf("127.0.0.1:%d", ports[1]),
		"--certs-dir", filepath.Join(base, "certs"),
	)
	s.cmd.Env = append(environWithout("MINIO_"),
		"MINIO_ROOT_USER="+s.AccessKey,
		"MINIO_ROOT_PASSWORD="+s.SecretKey,
		"MINIO_REGION="+Region,
		"MINIO_CI_CD=on",   // allow a data directory on the root disk
		"MINIO_UPDATE=off", // no update checks
	)
	for _, k := range slices.Sorted(maps.Keys(extra)) {
		s.cmd.Env = append(s.cmd.Env, k+"="+extra[k])
	}
	s.args, s.env = s.cmd.Args, s.cmd.Env
	if err := s.launch(); err != nil {
		return nil, err
	}
	t.Cleanup(s.stop)

	if err := s.waitReady(); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

// launch starts the process s.cmd (set up by start, or rebuilt from s.args
// by Restart).
func (s *Server) launch() error {
	s.cmd.Stdout = s.log
	s.cmd.Stderr = s.log
	s.cmd.SysProcAttr = sysProcAttr()
	exited := s.exited
	cmd := s.cmd

	// Start and wait on a goroutine locked to its OS thread, kept until the
	// process ends: the parent-death signal (Linux) follows the thread that
	// started the child, which must not be one that Go may retire.
	startErr := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with this goroutine
		if err := cmd.Start(); err != nil {
			startErr <- err
			return
		}
		startErr <- nil
		_ = cmd.Wait() // the exit status is reported through the log
		close(exited)
	}()
	if err := <-startErr; err != nil {
		return fmt.Errorf("start %s: %w", cmd.Path, err)
	}
	return nil
}

// Stop kills the server the way a crash would (SIGKILL to its process
// group) and waits until it is gone; requests fail from then on. The data
// directory, the address and the credentials stay: Restart brings the
// same server back with its objects.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	select {
	case <-s.exited:
		return
	default:
	}
	_ = syscall.Kill(-s.cmd.Process.Pid, syscall.SIGKILL)
	select {
	case <-s.exited:
	case <-time.After(30 * time.Second):
		t.Fatalf("miniotest: minio (pid %d) still running 30 s after SIGKILL", s.cmd.Process.Pid)
	}
}

// Restart starts a stopped server again on the same address, with the same
// credentials and data directory, and waits until it is ready. The test's
// cleanup stops the new process as it would have stopped the first.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	select {
	case <-s.exited:
	default:
		t.Fatal("miniotest: Restart of a server that is running (Stop it first)")
	}
	var err error
	for attempt := 1; attempt <= 20; attempt++ {
		s.log = new(bytes.Buffer)
		s.exited = make(chan struct{})
		s.cmd = exec.Command(s.args[0], s.args[1:]...)
		s.cmd.Env = s.env
		if err = s.launch(); err == nil {
			if err = s.waitReady(); err == nil {
				return
			}
			s.stop()
		}
		// The address may still be held for a moment by the killed process.
		if !strings.Contains(err.Error(), "already in use") {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	t.Fatalf("miniotest: restart: %v", err)
}

// waitReady polls the readiness endpoint until it answers 200.
func (s *Server) waitReady() error {
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(startTimeout)
	for time.Now().Before(deadline) {
		select {
		case <-s.exited:
			return fmt.Errorf("minio exited before it was ready: %s", s.output())
		default:
		}
		resp, err := client.Get(s.Endpoint + "/minio/health/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("minio not ready at %s after %v: %s", s.Endpoint, startTimeout, s.output())
}

// output returns the process's output, once it has exited.
func (s *Server) output() string {
	select {
	case <-s.exited:
		out := strings.TrimSpace(s.log.String())
		if len(out) > 4000 {
			out = "…" + out[len(out)-4000:]
		}
		return fmt.Sprintf("exit %v; output:\n%s", s.cmd.ProcessState, out)
	default:
		return "(still running)"
	}
}

// stop ends the process group: SIGTERM, then SIGKILL after 10 s.
func (s *Server) stop() {
	pgid := s.cmd.Process.Pid // the leader of its own group (Setpgid)
	select {
	case <-s.exited:
		return
	default:
	}
	_ = syscall.Kill(-pgid, syscall.SIGTERM)
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		<-s.exited
	}
}

// Pid returns the server's process id.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Env returns the AWS variables that point the SDK's default configuration at
// the server: credentials, region and endpoint, with the shared config files
// and instance metadata turned off so nothing else interferes.
func (s *Server) Env() map[string]string {
	return map[string]string{
		"AWS_ACCESS_KEY_ID":           s.AccessKey,
		"AWS_SECRET_ACCESS_KEY":       s.SecretKey,
		"AWS_SESSION_TOKEN":           "",
		"AWS_REGION":                  s.Region,
		"AWS_ENDPOINT_URL_S3":         s.Endpoint,
		"AWS_PROFILE":                 "",
		"AWS_CONFIG_FILE":             os.DevNull,
		"AWS_SHARED_CREDENTIALS_FILE": os.DevNull,
		"AWS_EC2_METADATA_DISABLED":   "true",
	}
}

// SetEnv sets Env's variables for the duration of t (t.Setenv: not in
// parallel tests).
func (s *Server) SetEnv(t testing.TB) {
	t.Helper()
	for k, v := range s.Env() {
		t.Setenv(k, v)
	}
}

// Client returns an S3 client for the server with root credentials, built
// without reading the environment.
func (s *Server) Client() *s3.Client { return s.client }

func (s *Server) newClient() *s3.Client {
	return s3.New(s3.Options{
		Region:       s.Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(s.AccessKey, s.SecretKey, ""),
	})
}

// CreateBucket creates a bucket, failing t if it cannot.
func (s *Server) CreateBucket(t testing.TB, name string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name)}); err != nil {
		t.Fatalf("miniotest: create bucket %s: %v", name, err)
	}
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find a free port: %w", err)
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// environWithout returns the environment without the variables whose names
// start with prefix.
func environWithout(prefix string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, prefix) {
			env = append(env, kv)
		}
	}
	return env
}
