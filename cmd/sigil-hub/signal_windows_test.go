//go:build windows

package main

import "os"

func interruptSignal() os.Signal { return os.Kill }

func alive(pid int) bool {
	p, err := os.FindProcess(pid) // opens a handle: fails for a process that is gone
	if err != nil {
		return false
	}
	p.Release()
	return true
}
