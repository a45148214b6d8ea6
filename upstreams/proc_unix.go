//go:build unix

package upstreams

import (
	"errors"
	"log/slog"
	"strings"
	"syscall"
	"time"
)

// contain is a no-op on Unix: the process group (and on Linux Pdeathsig)
// already holds the child's tree.
func contain(p *process, log *slog.Logger) {}

// terminateGroup sends SIGTERM to the child's process group.
func terminateGroup(p *process) { _ = syscall.Kill(-p.pid, syscall.SIGTERM) }

// killGroup sends SIGKILL to the child's process group. After the leader was
// reaped the group id stays reserved while any member lives, so this reaches
// only our descendants (or nobody: ESRCH).
func killGroup(p *process) { _ = syscall.Kill(-p.pid, syscall.SIGKILL) }

// waitGroupGone polls until no member of the group is left (zombies awaiting
// their reaper included) or d has passed.
func waitGroupGone(p *process, d time.Duration) {
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if err := syscall.Kill(-p.pid, 0); errors.Is(err, syscall.ESRCH) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// envAllowed reports whether the hub's variable k may reach a child.
func envAllowed(k string) bool {
	switch k {
	case "PATH", "HOME", "USER", "LOGNAME", "SHELL", "TERM", "LANG", "TZ", "TMPDIR":
		return true
	}
	return strings.HasPrefix(k, "LC_")
}
