//go:build !windows

package main

import (
	"os"
	"os/signal"
	"syscall"
)

// notifyReload delivers SIGHUP, the conventional "reload your config".
func notifyReload(c chan<- os.Signal) { signal.Notify(c, syscall.SIGHUP) }
