//go:build !linux

package main

import "os"

// terminalColumns returns 0 (unknown) here: `sigil-hub holds` then wraps
// to $COLUMNS, else 100 columns.
func terminalColumns(*os.File) int { return 0 }
