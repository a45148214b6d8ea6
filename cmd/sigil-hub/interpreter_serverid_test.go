package main

import "testing"

// TestInterpreterServerIDsThroughTheBinary: a wrapped server run by an
// interpreter gets the serverId of what it runs (the script, module or
// tool), never the interpreter's name, as the binary derives it from its
// own command line (README "serverId": the derivation table). `check
// --print` shows it without starting the server.
func TestInterpreterServerIDsThroughTheBinary(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		command []string
		want    string
	}{
		{[]string{"node", "path/index.js"}, "path"},
		{[]string{"node", "/srv/weather.js"}, "weather"},
		{[]string{"python3", "-m", "mcp_server_fetch"}, "mcp_server_fetch"},
		{[]string{"python", "/opt/tools/calendar.py"}, "calendar"},
		{[]string{"deno", "run", "-A", "npm:@scope/mcp@1.2"}, "@scope/mcp"},
		{[]string{"bun", "run", "./inbox/src/index.ts"}, "inbox"},
		{[]string{"uvx", "--from", "git+https://github.com/o/r", "mcp-x"}, "mcp-x"},
	} {
		p := checkPrint(t, t.TempDir(), nil, append([]string{"--"}, tc.command...)...)
		if got := p.Servers[0].ServerID; got != tc.want {
			t.Errorf("sigil-hub -- %v: serverId %q, want %q", tc.command, got, tc.want)
		}
	}
}
