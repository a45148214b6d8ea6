//go:build windows

package upstreams

import (
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// setProcessGroup starts the child in a new process group (no console
// signals from the hub's group reach it).
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{CreationFlags: syscall.CREATE_NEW_PROCESS_GROUP}
}

// terminateGroup asks the process tree to close (taskkill without /F); Windows
// has no SIGTERM, and console programs often ignore this.
func terminateGroup(p *process) { taskkill(p.pid, false) }

// killGroup force-kills the process tree. Once the leader is gone Windows no
// longer links its children to it, so this is best effort after its exit.
func killGroup(p *process) { taskkill(p.pid, true) }

func taskkill(pid int, force bool) {
	args := []string{"/T", "/PID", strconv.Itoa(pid)}
	if force {
		args = append([]string{"/F"}, args...)
	}
	cmd := exec.Command("taskkill", args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{HideWindow: true}
	_ = cmd.Run()
}

// waitGroupGone has no cheap group query on Windows; taskkill /F is synchronous.
func waitGroupGone(p *process, d time.Duration) {}

// envAllowed reports whether the hub's variable k may reach a child
// (case-insensitive, as Windows environment names are).
func envAllowed(k string) bool {
	switch strings.ToUpper(k) {
	case "PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "LANG", "TZ", "TMPDIR",
		"SYSTEMROOT", "SYSTEMDRIVE", "WINDIR", "COMSPEC", "PATHEXT", "TEMP", "TMP",
		"USERPROFILE", "APPDATA", "LOCALAPPDATA", "PROGRAMFILES", "PROGRAMFILES(X86)",
		"PROGRAMW6432", "PROGRAMDATA", "COMMONPROGRAMFILES", "COMMONPROGRAMFILES(X86)",
		"COMMONPROGRAMW6432", "HOMEDRIVE", "HOMEPATH", "USERNAME", "COMPUTERNAME", "OS",
		"NUMBER_OF_PROCESSORS", "PROCESSOR_ARCHITECTURE":
		return true
	}
	return strings.HasPrefix(strings.ToUpper(k), "LC_")
}
