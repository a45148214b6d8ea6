package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/sigilcore/sigil-hub/internal/testbuf"
)

// tssdkLine is one line of the script's output.
type tssdkLine struct {
	Check  string `json:"check"`
	OK     bool   `json:"ok"`
	Detail string `json:"detail"`
}

// TestTypeScriptSDKClient drives the hub with the official TypeScript SDK
// client (@modelcontextprotocol/sdk, pinned in testdata/npm) in hub mode in
// front of server-everything as upstream "ev", under an embedded policy that
// allows every ev tool: progress, sampling, elicitation, roots (and
// roots/list_changed), resources and subscriptions, prompts, completions and
// ping work end to end with names namespaced ev__*.
func TestTypeScriptSDKClient(t *testing.T) {
	everything := npmServer(t, "server-everything", "dist/index.js")
	npmServer(t, "sdk", "package.json")
	script, err := filepath.Abs(filepath.Join("..", "..", "testdata", "npm", "sdk-client", "hub-e2e.mjs"))
	if err != nil {
		t.Fatal(err)
	}
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("SIGIL_HUB_REQUIRE_NPM") == "1" {
			t.Fatalf("node is not on PATH: %v", err)
		}
		t.Skipf("node is not on PATH (%v); install Node 20+ to include this test", err)
	}

	// checks are the checks testdata/npm/sdk-client/hub-e2e.mjs reports,
	// one JSON line each; a check missing from its output fails like a failed
	// one (the script crashed or stopped early).
	checks := []string{
		"initialize",
		"tools/list namespaced",
		"tools/call echo",
		"progress",
		"sampling",
		"elicitation",
		"roots",
		"roots list_changed",
		"resources/list",
		"resources/read",
		"resources/subscribe updated",
		"resources/unsubscribe",
		"prompts/list namespaced",
		"prompts/get",
		"completion/complete prompt",
		"completion/complete resource template",
		"ping",
	}

	dir := t.TempDir()
	policy := filepath.Join(dir, "warranty.md")
	if err := os.WriteFile(policy, []byte("version: 2.0.0\n\n## mcp\n\nallowed_tools: ev.*\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, `policy = `+quoteTOML(policy)+`

[servers.ev]
command = "node"
args = [`+quoteTOML(everything)+`]
server_id = "ev"
`)

	// A guard against a hung hub, not a pass/fail criterion: the script
	// has its own watchdog and fails sooner.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script, hubBin, "--config", cfg)
	cmd.Env = baseEnv()
	cmd.Dir = dir
	var stdout bytes.Buffer
	stderr := &testbuf.Buffer{}
	cmd.Stdout = &stdout
	cmd.Stderr = stderr
	runErr := cmd.Run()

	got := make(map[string]tssdkLine)
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var l tssdkLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil || l.Check == "" {
			t.Errorf("script wrote a line that is not a check: %q", sc.Bytes())
			continue
		}
		if _, dup := got[l.Check]; dup {
			t.Errorf("check %q reported twice", l.Check)
		}
		got[l.Check] = l
	}
	known := make(map[string]bool, len(checks))
	for _, name := range checks {
		known[name] = true
		t.Run(name, func(t *testing.T) {
			l, ok := got[name]
			switch {
			case !ok:
				t.Errorf("check %q was not reported", name)
			case !l.OK:
				t.Errorf("check %q failed: %s", name, l.Detail)
			default:
				t.Logf("%s", l.Detail)
			}
		})
	}
	for name, l := range got {
		if !known[name] && !l.OK {
			t.Errorf("check %q failed: %s", name, l.Detail)
		}
	}
	if runErr != nil {
		t.Errorf("node %s: %v", filepath.Base(script), runErr)
	}
	if t.Failed() {
		t.Logf("script stderr (with the hub's stderr):\n%s", stderr.String())
	}
}
