package bench

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/sigilcore/sigil-hub/internal/testupstream"
)

// relayEnv marks a re-exec of the test binary as the do-nothing relay
// (TestMain): the floor of any process between a stdio client and its
// upstream, measured beside the hub.
const relayEnv = "SIGIL_BENCH_RELAY"

// relayMain is the do-nothing relay: it starts the command in its arguments
// (with this environment minus relayEnv) and copies bytes both ways between
// its own stdio and the child's, with no parsing and no buffering beyond
// io.Copy's, until the client closes stdin and the child closes stdout.
// The child's stderr is this process's. It exits 1 only when the child
// cannot start.
func relayMain() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "relay: no upstream command given")
		os.Exit(1)
	}
	cmd := exec.Command(os.Args[1], os.Args[2:]...)
	cmd.Env = withoutEnv(os.Environ(), relayEnv)
	cmd.Stderr = os.Stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, "relay:", err)
		os.Exit(1)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintln(os.Stderr, "relay:", err)
		os.Exit(1)
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "relay: start %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
	go func() { // ends at the client's EOF; the process exit joins it
		_, _ = io.Copy(in, os.Stdin)
		_ = in.Close() // the upstream sees EOF and exits
	}()
	_, _ = io.Copy(os.Stdout, out)
	_ = cmd.Wait()
	os.Exit(0)
}

// withoutEnv is env minus the variable key.
func withoutEnv(env []string, key string) []string {
	out := make([]string, 0, len(env))
	for _, kv := range env {
		if !strings.HasPrefix(kv, key+"=") {
			out = append(out, kv)
		}
	}
	return out
}

// startRelay starts the do-nothing relay in front of the upstream argv
// (with extra environment for it), initializes the MCP session through it
// and returns the relay's process and connection. The client calls the
// upstream's own tool names.
func startRelay(tb testing.TB, argv []string, env ...string) *child {
	tb.Helper()
	cmd := exec.Command(selfExe(tb), argv...)
	cmd.Env = cleanEnv(append([]string{relayEnv + "=1"}, env...)...)
	return startChild(tb, cmd)
}

// startFakeRelay is startRelay in front of the fake upstream.
func startFakeRelay(tb testing.TB) *child {
	tb.Helper()
	return startRelay(tb, []string{selfExe(tb)}, testupstream.EnvMarker+"=1")
}
