//go:build unix

package main

import (
	"os"
	"syscall"
)

func interruptSignal() os.Signal { return syscall.SIGTERM }
