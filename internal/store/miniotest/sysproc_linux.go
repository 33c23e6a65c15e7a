package miniotest

import "syscall"

// sysProcAttr puts the server in its own process group, so that stop can
// kill everything it started, and asks the kernel to kill it when the thread
// that started it ends (the test process dying without cleanup).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
