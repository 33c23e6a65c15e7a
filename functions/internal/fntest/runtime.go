// Package fntest helps the tests of the Lambda binaries: it builds a
// function's bootstrap as the Makefile does and runs it under a fake of the
// Lambda Runtime API. (The lake comparison helpers the function tests use
// live in internal/pipeline/pipelinetest.)
package fntest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// Bootstrap builds the Lambda binary of the main package in dir as the
// Makefile does (CGO_ENABLED=0, -tags lambda.norpc) for the host, and
// returns its path.
func Bootstrap(t testing.TB, dir string) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "bootstrap")
	cmd := exec.Command("go", "build", "-tags", "lambda.norpc", "-trimpath", "-o", bin, ".")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build %s: %v\n%s", dir, err, out)
	}
	return bin
}

// Outcome is what a function answered to one event.
type Outcome struct {
	Error bool   // posted to the error endpoint
	Body  string // the response, or the error document
}

// runtimeAPI is a fake of the Lambda Runtime API (2018-06-01) that hands
// out a fixed list of events and records the answers.
type runtimeAPI struct {
	ctx    context.Context
	events [][]byte
	mu     sync.Mutex
	next   int
	out    []Outcome
	done   chan struct{} // closed when every event has been answered
}

func (r *runtimeAPI) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	const base = "/2018-06-01/runtime/invocation/"
	rest, ok := strings.CutPrefix(req.URL.Path, base)
	switch {
	case ok && rest == "next" && req.Method == http.MethodGet:
		r.mu.Lock()
		i := r.next
		if i < len(r.events) {
			r.next++
		}
		r.mu.Unlock()
		if i >= len(r.events) {
			<-r.ctx.Done() // no more events: the function waits, as in Lambda
			return
		}
		w.Header().Set("Lambda-Runtime-Aws-Request-Id", "req-"+strconv.Itoa(i))
		w.Header().Set("Lambda-Runtime-Deadline-Ms", strconv.FormatInt(time.Now().Add(time.Minute).UnixMilli(), 10))
		w.Header().Set("Lambda-Runtime-Invoked-Function-Arn", "arn:aws:lambda:eu-west-1:123456789012:function:test")
		w.Header().Set("Lambda-Runtime-Trace-Id", "Root=1-5759e988-bd862e3fe1be46a994272793;Parent=53995c3f42cd8ad8;Sampled=1")
		w.Write(r.events[i])
	case ok && req.Method == http.MethodPost && (strings.HasSuffix(rest, "/response") || strings.HasSuffix(rest, "/error")):
		body, _ := io.ReadAll(req.Body)
		r.mu.Lock()
		r.out = append(r.out, Outcome{Error: strings.HasSuffix(rest, "/error"), Body: string(body)})
		if len(r.out) == len(r.events) {
			close(r.done)
		}
		r.mu.Unlock()
		w.WriteHeader(http.StatusAccepted)
	default:
		http.Error(w, "unexpected "+req.Method+" "+req.URL.Path, http.StatusNotFound)
	}
}

// syncBuffer is a bytes.Buffer for concurrent use.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// RunBootstrap runs the Lambda binary bin with the environment env (and
// PATH, HOME and TMPDIR of the test) under a fake Lambda Runtime API that
// hands it events one after the other. It returns the answers, the
// binary's standard output, and an error if the process ended before it
// answered every event. The process is killed when the test ends.
func RunBootstrap(t testing.TB, bin string, env []string, events ...[]byte) ([]Outcome, string, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	api := &runtimeAPI{ctx: ctx, events: events, done: make(chan struct{})}
	if len(events) == 0 {
		close(api.done)
	}
	srv := httptest.NewServer(api)
	var stdout, stderr syncBuffer
	cmd := exec.Command(bin)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"), "TMPDIR=" + t.TempDir(),
		"AWS_LAMBDA_RUNTIME_API=" + strings.TrimPrefix(srv.URL, "http://")}, env...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		cancel()
		srv.Close()
		t.Fatalf("start %s: %v", bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		cancel()
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
		srv.Close()
	}
	var err error
	select {
	case <-api.done:
	case werr := <-exited:
		exited <- werr // for stop
		err = fmt.Errorf("%s exited before answering every event: %v; stderr: %s", filepath.Base(bin), werr, stderr.String())
	case <-time.After(2 * time.Minute):
		err = errors.New("timed out waiting for the answers")
	}
	stop()
	api.mu.Lock()
	defer api.mu.Unlock()
	return append([]Outcome(nil), api.out...), stdout.String(), err
}
