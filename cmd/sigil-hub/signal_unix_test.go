//go:build unix

package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

func interruptSignal() os.Signal { return syscall.SIGTERM }

func alive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	// A zombie (exited, not reaped by its parent) is not a running process.
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err == nil {
		f := strings.Fields(string(b))
		if len(f) > 2 && f[2] == "Z" {
			return false
		}
	}
	return true
}
