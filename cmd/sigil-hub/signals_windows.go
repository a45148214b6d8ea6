package main

import "os"

// notifyReload does nothing on Windows, which has no SIGHUP: the config
// is reloaded when its file changes.
func notifyReload(chan<- os.Signal) {}

// ignoreSIGPIPE: Windows has no SIGPIPE; a write to a closed pipe fails.
func ignoreSIGPIPE() {}
