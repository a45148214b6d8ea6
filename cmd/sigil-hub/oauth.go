package main

import (
	"os/exec"
	"path/filepath"
	"runtime"
)

// oauthDir is <user config dir>/sigil-hub/oauth, or "" (tokens in memory
// only) when there is no config folder.
func oauthDir(getenv func(string) string) string {
	dir, err := signerConfigDir(getenv)
	if err != nil {
		return ""
	}
	return filepath.Join(dir, "oauth")
}

// browserOpener returns the --open-browser hook: nil when off, else a
// function that starts the platform's URL opener and reaps it.
func browserOpener(on bool) func(string) error {
	if !on {
		return nil
	}
	return func(url string) error {
		var cmd *exec.Cmd
		switch runtime.GOOS {
		case "windows":
			cmd = exec.Command("rundll32", "url.dll,FileProtocolHandler", url)
		case "darwin":
			cmd = exec.Command("open", url)
		default:
			cmd = exec.Command("xdg-open", url)
		}
		// The opener returns at once (the browser keeps running on its
		// own); Run waits for it, so no child is left unreaped.
		return cmd.Run()
	}
}
