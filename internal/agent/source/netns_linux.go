package source

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// NetnsPath returns the path of a network namespace given as a path
// (/proc/PID/ns/net, /var/run/netns/NAME) or as a name that `ip netns`
// knows.
func NetnsPath(ns string) string {
	if strings.ContainsRune(ns, '/') {
		return ns
	}
	return filepath.Join("/var/run/netns", ns)
}

// inNetns runs fn on an OS thread that has entered the network namespace
// ns (see NetnsPath); "" runs fn in place. Sockets fn opens stay in that
// namespace wherever they are used later. The thread goes back to its
// namespace afterwards, or is retired if it cannot.
func inNetns(ns string, fn func() error) error {
	if ns == "" {
		return fn()
	}
	path := NetnsPath(ns)
	target, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("network namespace %s: %w", ns, err)
	}
	defer target.Close()
	done := make(chan error, 1)
	go func() {
		// Not unlocked unless the thread is back in its own namespace: a
		// locked goroutine that exits takes its thread with it.
		runtime.LockOSThread()
		self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
		if err != nil {
			done <- fmt.Errorf("network namespace of this thread: %w", err)
			return
		}
		defer self.Close()
		if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
			done <- fmt.Errorf("enter network namespace %s: %w", ns, err)
			return
		}
		ferr := fn()
		if err := unix.Setns(int(self.Fd()), unix.CLONE_NEWNET); err == nil {
			runtime.UnlockOSThread()
		}
		done <- ferr
	}()
	return <-done
}
