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
)

// sysProcAttr starts the child in a new process group (no console signals
// from the hub's group reach it).
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{CreationFlags: syscall.CREATE_NEW_PROCESS_GROUP}
}

// Job objects: a child and everything it starts afterwards live in a job
// that kills them all when its last handle closes — at stop, or when the hub
// itself dies, however it dies (the Windows counterpart of a process group
// plus Pdeathsig). Constants and layouts from the Windows SDK (winnt.h).
const (
	jobObjectExtendedLimitInformation = 9
	jobObjectLimitKillOnJobClose      = 0x2000
	processSetQuota                   = 0x0100
	processTerminate                  = 0x0001
)

type jobBasicLimitInformation struct {
	PerProcessUserTimeLimit int64
	PerJobUserTimeLimit     int64
	LimitFlags              uint32
	MinimumWorkingSetSize   uintptr
	MaximumWorkingSetSize   uintptr
	ActiveProcessLimit      uint32
	Affinity                uintptr
	PriorityClass           uint32
	SchedulingClass         uint32
}

type jobExtendedLimitInformation struct {
	BasicLimitInformation jobBasicLimitInformation
	IoInfo                [6]uint64 // IO_COUNTERS: six ULONGLONG counters
	ProcessMemoryLimit    uintptr
	JobMemoryLimit        uintptr
	PeakProcessMemoryUsed uintptr
	PeakJobMemoryUsed     uintptr
}

// contain puts the started child in a kill-on-close job object. On failure
// the hub falls back to taskkill /T (logged).
func contain(p *process, log *slog.Logger) {
	kernel32 := syscall.NewLazyDLL("kernel32.dll")
	create := kernel32.NewProc("CreateJobObjectW")
	setInfo := kernel32.NewProc("SetInformationJobObject")
	assign := kernel32.NewProc("AssignProcessToJobObject")
	job, _, err := create.Call(0, 0)
	if job == 0 {
		log.Warn("no job object for the upstream; falling back to taskkill", "pid", p.pid, "err", err)
		return
	}
	info := jobExtendedLimitInformation{}
	info.BasicLimitInformation.LimitFlags = jobObjectLimitKillOnJobClose
	if r, _, err := setInfo.Call(job, jobObjectExtendedLimitInformation, uintptr(unsafe.Pointer(&info)), unsafe.Sizeof(info)); r == 0 {
		log.Warn("job object limits not set; falling back to taskkill", "pid", p.pid, "err", err)
		_ = syscall.CloseHandle(syscall.Handle(job))
		return
	}
	h, err := syscall.OpenProcess(processSetQuota|processTerminate, false, uint32(p.pid))
	if err != nil {
		_ = syscall.CloseHandle(syscall.Handle(job))
		log.Warn("cannot open the upstream process for its job object; falling back to taskkill", "pid", p.pid, "err", err)
		return
	}
	defer syscall.CloseHandle(h)
	if r, _, err := assign.Call(job, uintptr(h)); r == 0 {
		_ = syscall.CloseHandle(syscall.Handle(job))
		log.Warn("upstream not assigned to its job object; falling back to taskkill", "pid", p.pid, "err", err)
		return
	}
	p.job = job
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
