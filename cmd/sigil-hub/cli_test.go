package main

import (
	"bytes"
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// TestHelpAndVersionOnStdout: help and the version are output the user
// asked for: stdout and exit 0 for the hub and every subcommand (so
// `sigil-hub --help | less` works); a mistake stays on stderr with exit 2.
func TestHelpAndVersionOnStdout(t *testing.T) {
	t.Parallel()
	run := func(args ...string) (stdout, stderr string, code int) {
		cmd := exec.Command(hubBin, args...)
		cmd.Env = baseEnv()
		var o, e bytes.Buffer
		cmd.Stdout, cmd.Stderr = &o, &e
		err := cmd.Run()
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return o.String(), e.String(), code
	}
	for _, args := range [][]string{
		{"--help"}, {"-h"}, {"--config", "x.toml", "--help"},
		{"sign", "--help"}, {"holds", "-h"}, {"import", "--help"}, {"check", "-help"},
		{"tools", "--help"}, {"pins", "--help"}, {"oauth", "--help"},
	} {
		out, errOut, code := run(args...)
		if code != 0 || !strings.Contains(out, "sigil-hub") || errOut != "" {
			t.Errorf("%q: exit %d, stdout %d bytes, stderr %q; want the help on stdout, exit 0", args, code, len(out), errOut)
		}
	}
	out, errOut, code := run("--version")
	if code != 0 || !strings.HasPrefix(out, "sigil-hub "+version+" (commit ") || errOut != "" {
		t.Errorf("--version: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
	out, errOut, code = run("--no-such-flag")
	if code != 2 || out != "" || !strings.Contains(errOut, "no-such-flag") {
		t.Errorf("a wrong flag: exit %d, stdout %q, stderr %d bytes; want the error on stderr, exit 2", code, out, len(errOut))
	}
	// After "--" a --help is the wrapped command's, not the hub's.
	if !wantsHelp([]string{"--help"}) || wantsHelp([]string{"--", "server", "--help"}) {
		t.Error("wantsHelp must stop at --")
	}
}
