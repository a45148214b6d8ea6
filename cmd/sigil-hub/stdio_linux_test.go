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
	"github.com/sigilcore/sigil-hub/internal/testbuf"
)

// TestStdinPolledAndRestored: a pipe stdin is read through Go's poller, so
// O_NONBLOCK is set on it while the hub serves (measured: a blocking read
// kept the runtime's monitor thread waking every 20 µs), and at exit the flag
// is as the hub found it, since every holder of the pipe's read end shares
// it.
func TestStdinPolledAndRestored(t *testing.T) {
	t.Parallel()
	t.Run("blocking pipe: set while serving, put back at exit", func(t *testing.T) {
		t.Parallel()
		if flags := runOnPipeStdin(t, false); flags&syscall.O_NONBLOCK != 0 {
			t.Fatalf("stdin pipe flags %#o after the hub exited: O_NONBLOCK left set for the pipe's other holders", flags)
		}
	})
	t.Run("non-blocking pipe: used as it is, left so", func(t *testing.T) {
		t.Parallel()
		if flags := runOnPipeStdin(t, true); flags&syscall.O_NONBLOCK == 0 {
			t.Fatalf("stdin pipe flags %#o after the hub exited: O_NONBLOCK, set before the hub started, was cleared", flags)
		}
	})
}

// runOnPipeStdin runs the hub on a pipe stdin whose read end the test keeps
// (so it sees the flags the hub leaves), non-blocking from the start if
// nonblock; it makes one call, checks the hub reads stdin non-blocking,
// closes stdin and returns the pipe's flags after the hub exited.
func runOnPipeStdin(t *testing.T, nonblock bool) int {
	sign := signtest.New(t, signtest.Options{APIKey: testKey})
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	// The hub starts behind a gate (sh waits for a line on fd 3): exec hands
	// the child a blocking descriptor, so a flag the hub must find at start
	// is set between Start and the gate.
	gateR, gateW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer gateW.Close()
	args := []string{"-c", `read x <&3; exec 3<&-; exec "$0" "$@"`, hubBin, "--config", writeConfig(t, fakeServer(t, "files", newUpstreamLog(t), ""))}
	cmd := exec.Command("sh", args...)
	cmd.Env = baseEnv(signEnv(sign)...)
	cmd.Dir = t.TempDir()
	cmd.Stdin = r // passed as is: the hub's fd 0 shares this file description
	cmd.ExtraFiles = []*os.File{gateR}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &testbuf.Buffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	gateR.Close()
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	if nonblock {
		setNonblock(t, r)
	}
	if _, err := gateW.WriteString("go\n"); err != nil {
		t.Fatal(err)
	}

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
	return fileFlags(t, r)
}

// fileFlags is fcntl(F_GETFL) of f, read without changing f's mode.
func fileFlags(t *testing.T, f *os.File) int {
	t.Helper()
	rc, err := f.SyscallConn()
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
	return flags
}

func setNonblock(t *testing.T, f *os.File) {
	t.Helper()
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var serr error
	if err := rc.Control(func(fd uintptr) { serr = syscall.SetNonblock(int(fd), true) }); err != nil || serr != nil {
		t.Fatal(err, serr)
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
