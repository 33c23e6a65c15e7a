// Package natstest starts Debian's nats-server with JetStream for tests:
// on a free loopback port, in a temporary directory, stopped when the test
// ends (and killed by the kernel if the test process dies first).
package natstest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// Start runs nats-server -js and returns its URL. It skips t when
// nats-server is not installed. A port that another process took between
// the probe and the server's bind (tests run in parallel packages) is
// detected from the server's log, and another port is tried: connecting is
// not proof, since the other process may be a NATS server too.
func Start(t testing.TB) string {
	t.Helper()
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		t.Skip("nats-server not installed (Debian: apt-get install nats-server): skipping the NATS JetStream test")
	}
	var last string
	for range 5 {
		url, log, ok := start(t, bin)
		if ok {
			return url
		}
		last = log
	}
	t.Fatalf("nats-server did not start in 5 attempts; last log:\n%s", last)
	return ""
}

// start makes one attempt; ok is false when the server exited before it
// was ready (its log is returned).
func start(t testing.TB, bin string) (url, log string, ok bool) {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	dir := t.TempDir()
	logFile := filepath.Join(dir, "nats.log")
	cmd := exec.Command(bin, "-js", "-a", "127.0.0.1", "-p", fmt.Sprint(port), "-sd", filepath.Join(dir, "js"), "-l", logFile)
	cmd.SysProcAttr = procAttr()
	started := make(chan error, 1)
	exited := make(chan struct{})
	go func() {
		// The parent-death signal follows the thread that started the
		// child: keep it.
		runtime.LockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			return
		}
		started <- nil
		_ = cmd.Wait()
		close(exited)
	}()
	if err := <-started; err != nil {
		t.Fatalf("start nats-server: %v", err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, _ := os.ReadFile(logFile)
		select {
		case <-exited:
			return "", string(b), false
		default:
		}
		if strings.Contains(string(b), "Server is ready") {
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				<-exited
			})
			return fmt.Sprintf("nats://127.0.0.1:%d", port), "", true
		}
		if time.Now().After(deadline) {
			_ = cmd.Process.Kill()
			<-exited
			t.Fatalf("nats-server not ready after 20 s:\n%s", b)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
