//go:build !windows

package main

import (
	"os"
	"os/signal"
	"syscall"
)

// notifyReload delivers SIGHUP, the conventional "reload your config".
func notifyReload(c chan<- os.Signal) { signal.Notify(c, syscall.SIGHUP) }

// ignoreSIGPIPE makes a write to a closed stdout or stderr fail with EPIPE
// instead of killing the hub: a client that closes its end of the hub's
// stderr before stdin (mcp-go's does) must not cost the hub its orderly
// shutdown (children stopped, admin token file removed) because a last log
// line found the pipe closed.
func ignoreSIGPIPE() { signal.Ignore(syscall.SIGPIPE) }
