// Command sigil-hub is an MCP gateway: one MCP server in front of many, with
// every tool call authorized by Sigil Sign before the upstream sees it.
//
// It owns flags, environment, logging and the process's lifecycle, and
// the subcommands; it may import every production package of the module
// (never a test-only one under internal/), and nothing imports it.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"

	"github.com/oklog/run"
)

// gcPercent is the hub's GOGC unless the environment sets one. Its live heap
// is a few MB while a busy session allocates some 70 MB/s, so Go's default
// (100) ran a collection every few milliseconds: 7% of the binary's CPU at 64
// concurrent calls (measured with make bench). 200 halves the collections for
// about 4 MB more RSS under that load (21 → 25 MB).
const gcPercent = 200

// stdioProcs is the hub's GOMAXPROCS while it serves one client over stdio,
// unless the environment sets one. Such a hub does microseconds of work per
// call and spends the rest of it waiting on two pipes, so with more Ps every
// hand-off between its goroutines (client reader, call, upstream reader)
// woke an idle OS thread to run on another core: about 37 context switches
// and 80 µs of added latency per call on a 2-core machine, where one P hands
// off on the same thread (make bench: the added p50 went from ~130 µs to ~90
// µs beside a do-nothing relay's ~50 µs, and throughput at 64 concurrent
// calls did not drop). The Streamable HTTP front, which serves many clients,
// keeps Go's default.
const stdioProcs = 1

func main() {
	ignoreSIGPIPE()
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
	if os.Getenv("GOMAXPROCS") == "" {
		beforeStdio = func() { runtime.GOMAXPROCS(stdioProcs) }
	}
	stdin, restore := pollableStdin()
	err := runMain(context.Background(), os.Args[1:], os.Environ(), stdin, os.Stdout, os.Stderr)
	restore()
	if err != nil {
		var se run.SignalError
		if errors.As(err, &se) {
			return
		}
		if errors.Is(err, errUsage) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "sigil-hub:", err)
		os.Exit(1)
	}
}
