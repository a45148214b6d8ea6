//go:build unix

package upstreams

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/sigilcore/sigil-hub/internal/testupstream"
)

// alive reports whether pid is a live process; a zombie waiting for a reaper
// that never comes (PID 1 in some containers) counts as dead.
func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return true // no procfs (darwin): trust kill
	}
	if i := bytes.LastIndexByte(b, ')'); i >= 0 && i+2 < len(b) && b[i+2] == 'Z' {
		return false
	}
	return true
}

func TestShutdownKillsProcessTree(t *testing.T) {
	spec := fakeSpec(t, testupstream.EnvIgnoreTerm+"=1", testupstream.EnvGrandchild+"=1")
	u := New(spec)
	u.tun.stopGrace = 200 * time.Millisecond
	u.tun.stopTerm = 200 * time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	runDone := false
	defer func() {
		cancel()
		if !runDone {
			<-done
		}
	}()
	waitState(t, u, Ready)
	res, err := callTool(t.Context(), u, "pid", `{}`)
	if err != nil {
		t.Fatal(err)
	}
	var pids struct{ Pid, Grandchild int }
	if err := json.Unmarshal([]byte(resultText(t, res)), &pids); err != nil {
		t.Fatal(err)
	}
	if pids.Pid == 0 || pids.Grandchild == 0 || !alive(pids.Pid) || !alive(pids.Grandchild) {
		t.Fatalf("pids %+v not alive before shutdown", pids)
	}
	cancel()
	select {
	case err := <-done:
		runDone = true
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(testDeadline):
		t.Fatal("Run did not return: a process that ignores SIGTERM and holds stdout hung shutdown")
	}
	if s := u.Snapshot(); s.State != Stopped {
		t.Errorf("state after Run = %v", s.State)
	}
	// Run returned after the group was killed; the grandchild is reaped by
	// init asynchronously, so allow it to finish dying.
	waitFor(t, "no surviving process", func() bool {
		if alive(pids.Pid) || alive(pids.Grandchild) {
			for _, p := range []int{pids.Pid, pids.Grandchild} {
				b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
				t.Logf("pid %d alive=%v stat=%s", p, alive(p), b)
			}
			return false
		}
		return true
	})
}
