//go:build !linux

package natstest

import "syscall"

// procAttr: no parent-death signal outside Linux; cleanup kills the server.
func procAttr() *syscall.SysProcAttr { return nil }
