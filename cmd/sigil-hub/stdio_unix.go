//go:build !windows

package main

import (
	"os"
	"syscall"
	"time"
)

// pollableStdin returns stdin as a file read through Go's network poller
// when it is a pipe or a socket (the way MCP clients start a server).
//
// os.Stdin is blocking: each read that waits for the client's next message
// holds an OS thread in the read(2) system call, and the runtime's monitor
// thread, seeing a thread stuck in a system call, wakes every 20 µs to hand
// its processor to another thread: a tenth of the binary's CPU under load
// (measured with make bench). A non-blocking descriptor waits in epoll
// instead, with the hub's other pipes.
//
// O_NONBLOCK belongs to the open file description, which other processes
// holding the same pipe end share: a terminal (which a shell would be left
// with) and regular files are never changed, a stdin that is non-blocking
// already is used as it is, and restore puts back the flag this function
// set.
func pollableStdin() (stdin *os.File, restore func()) {
	if os.Stdin.SetReadDeadline(time.Time{}) == nil {
		return os.Stdin, func() {} // non-blocking at start: Go already polls it
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(0, &st); err != nil {
		return os.Stdin, func() {}
	}
	if m := st.Mode & syscall.S_IFMT; m != syscall.S_IFIFO && m != syscall.S_IFSOCK {
		return os.Stdin, func() {}
	}
	if err := syscall.SetNonblock(0, true); err != nil {
		return os.Stdin, func() {}
	}
	// NewFile registers a descriptor that is already non-blocking with the
	// poller.
	return os.NewFile(0, "/dev/stdin"), func() { _ = syscall.SetNonblock(0, false) }
}
