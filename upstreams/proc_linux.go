//go:build linux

package upstreams

import "syscall"

// sysProcAttr starts the child in its own process group and, on Linux, has
// the kernel SIGKILL it if the hub dies without stopping it (a SIGKILLed hub
// must not leave a child that ignores stdin EOF and SIGTERM running).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
