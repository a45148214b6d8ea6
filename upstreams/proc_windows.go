//go:build windows

package upstreams

import (
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"
)

// sysProcAttr starts the child in a new process group (no console signals
// from the hub's group reach it).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{CreationFlags: syscall.CREATE_NEW_PROCESS_GROUP}
}

// contain puts the started child in a kill-on-close job object: the child
// and everything it starts afterwards are killed when the job's last handle
// closes — at stop, or when the hub itself dies, however it dies (the
// Windows counterpart of a process group plus Pdeathsig). On failure the hub
// falls back to taskkill /T (logged).
func contain(p *process, log *slog.Logger) {
	job, err := windows.CreateJobObject(nil, nil)
	if err != nil {
		log.Warn("no job object for the upstream; falling back to taskkill", "pid", p.pid, "err", err)
		return
	}
	info := windows.JOBOBJECT_EXTENDED_LIMIT_INFORMATION{}
	info.BasicLimitInformation.LimitFlags = windows.JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
	if _, err := windows.SetInformationJobObject(job, windows.JobObjectExtendedLimitInformation, uintptr(unsafe.Pointer(&info)), uint32(unsafe.Sizeof(info))); err != nil {
		log.Warn("job object limits not set; falling back to taskkill", "pid", p.pid, "err", err)
		_ = windows.CloseHandle(job)
		return
	}
	h, err := windows.OpenProcess(windows.PROCESS_SET_QUOTA|windows.PROCESS_TERMINATE, false, uint32(p.pid))
	if err != nil {
		_ = windows.CloseHandle(job)
		log.Warn("cannot open the upstream process for its job object; falling back to taskkill", "pid", p.pid, "err", err)
		return
	}
	defer windows.CloseHandle(h)
	if err := windows.AssignProcessToJobObject(job, h); err != nil {
		_ = windows.CloseHandle(job)
		log.Warn("upstream not assigned to its job object; falling back to taskkill", "pid", p.pid, "err", err)
		return
	}
	p.job = uintptr(job)
}

// terminateGroup asks the process tree to close (taskkill without /F); Windows
// has no SIGTERM, and console programs often ignore this.
func terminateGroup(p *process) { taskkill(p.pid, false) }

// killGroup force-kills the process tree: closing the job object kills every
// process in it, even after the leader exited; taskkill /T covers a child
// that could not be put in a job.
func killGroup(p *process) {
	if p.job != 0 {
		_ = syscall.CloseHandle(syscall.Handle(p.job))
		p.job = 0
		return
	}
	taskkill(p.pid, true)
}

func taskkill(pid int, force bool) {
	args := []string{"/T", "/PID", strconv.Itoa(pid)}
	if force {
		args = append([]string{"/F"}, args...)
	}
	cmd := exec.Command("taskkill", args...)
	cmd.Env = WithoutHubSecrets(os.Environ())
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
