//go:build linux

package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/sigilcore/sigil-hub/internal/signtest"
)

// TestStdinPolledAndRestored: a pipe stdin is read through Go's poller, so
// O_NONBLOCK is set on it while the hub serves (issue 7: a blocking read
// kept the runtime's monitor thread waking every 20 µs), and the flag is put
// back when the hub exits, since every holder of the pipe's read end shares
// it.
func TestStdinPolledAndRestored(t *testing.T) {
	t.Parallel()
	sign := signtest.New(t, signtest.Options{APIKey: testKey})
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	cmd := exec.Command(hubBin, "--config", writeConfig(t, fakeServer(t, "files", newUpstreamLog(t), "")))
	cmd.Env = baseEnv(signEnv(sign)...)
	cmd.Dir = t.TempDir()
	cmd.Stdin = r // passed as is: the hub's fd 0 shares this file description
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	ls := newLineSession(t, w, stdout)
	ls.handshake()
	if resp := ls.rpc(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"files__echo","arguments":{"text":"polled"}}}`); !strings.Contains(resp, "polled") {
		t.Fatalf("call through a polled stdin: %s\nstderr:\n%s", resp, stderr.String())
	}
	fdinfo, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(cmd.Process.Pid), "fdinfo", "0"))
	if err != nil {
		t.Fatal(err)
	}
	if flags := fdinfoFlags(t, string(fdinfo)); flags&syscall.O_NONBLOCK == 0 {
		t.Fatalf("hub's stdin flags %#o while serving: O_NONBLOCK not set, reads block a thread", flags)
	}

	w.Close() // EOF: the hub shuts down
	if err := waitExit(t, cmd); err != nil {
		t.Fatalf("hub exit: %v\nstderr:\n%s", err, stderr.String())
	}
	rc, err := r.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var flags int
	var ferr error
	if err := rc.Control(func(fd uintptr) {
		v, _, errno := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_GETFL, 0)
		flags = int(v)
		if errno != 0 {
			ferr = errno
		}
	}); err != nil || ferr != nil {
		t.Fatal(err, ferr)
	}
	if flags&syscall.O_NONBLOCK != 0 {
		t.Fatalf("stdin pipe flags %#o after the hub exited: O_NONBLOCK left set for the pipe's other holders", flags)
	}
}

// fdinfoFlags parses the "flags:" line (octal) of /proc/PID/fdinfo/FD.
func fdinfoFlags(t *testing.T, fdinfo string) int {
	t.Helper()
	for _, line := range strings.Split(fdinfo, "\n") {
		if v, ok := strings.CutPrefix(line, "flags:"); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(v), 8, 64)
			if err != nil {
				t.Fatalf("fdinfo flags %q: %v", v, err)
			}
			return int(n)
		}
	}
	t.Fatalf("no flags line in fdinfo:\n%s", fdinfo)
	return 0
}
