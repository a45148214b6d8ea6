package main

import "os"

// pollableStdin returns os.Stdin: Windows pipes are not waited on through
// Go's poller.
func pollableStdin() (*os.File, func()) { return os.Stdin, func() {} }
