// Command sigil-hub is an MCP gateway: one MCP server in front of many, with
// every tool call authorized by Sigil Sign before the upstream sees it.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/oklog/run"
)

func main() {
	ignoreSIGPIPE()
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
