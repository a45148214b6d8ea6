package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	var o options
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.BoolVar(&o.Verbose, "v", false, "also show the hub's own logs (on stderr)")
	fs.DurationVar(&o.PendingTimeout, "pending-timeout", 0, "how long the held call waits for approval, e.g. 1s (default: pending_timeout in "+demoConfig+")")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: go run ./examples/demo [-v] [-pending-timeout D]\n\n"+
			"Runs sigil-hub offline in front of two example MCP servers and prints what a client sees.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return
		}
		os.Exit(2)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "demo: unexpected arguments %q\n", fs.Args())
		os.Exit(2)
	}
	if o.PendingTimeout < 0 {
		fmt.Fprintln(os.Stderr, "demo: -pending-timeout must not be negative")
		os.Exit(2)
	}
	o.Stderr = os.Stderr
	o.Environ = os.Environ()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Stdout, o)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}
