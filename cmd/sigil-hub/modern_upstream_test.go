package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sigilcore/sigil-hub/internal/testmodern"
)

// An upstream that speaks only MCP 2026-07-28 (no initialize) is this test
// binary re-executed with testmodern.EnvMode set (init runs before
// TestMain).
func init() {
	if os.Getenv(testmodern.EnvMode) != "" {
		testmodern.Main()
	}
}

// modernPolicy allows the modern upstream's tools but echo.
const modernPolicy = `version: 2.0.0

## mcp
allowed_tools: modern.*
blocked_tools: modern.echo
`

// TestModernOnlyUpstreamThroughHub: a stdio upstream that answers
// server/discover and refuses initialize is detected as 2026-07-28 and
// used through the hub: its tools are listed, an allowed call reaches it
// (carrying the 2026-07-28 _meta, not an initialize before it) and a
// blocked one does not, decided by the embedded policy engine; a resource
// subscription works though the upstream has no resources/subscribe.
func TestModernOnlyUpstreamThroughHub(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	policy := writePolicy(t, dir, modernPolicy)
	log := filepath.Join(dir, "upstream.log")
	cfg := writeConfig(t, fmt.Sprintf(`
[servers.modern]
command = %q
server_id = "modern"
env = { %s = "modern", %s = %q }
`, selfExe(t), testmodern.EnvMode, testmodern.EnvLog, log))
	h := startHub(t, nil, "--config", cfg, "--policy", policy)

	tools := h.toolNames()
	for _, want := range []string{"modern__whoami", "modern__echo", "modern__add_tool"} {
		if !slices.Contains(tools, want) {
			t.Fatalf("tools/list = %v, want %s in it\nstderr:\n%s", tools, want, h.stderr.String())
		}
	}

	resp := h.call("modern__whoami", `{}`)
	if resp.Error != nil {
		t.Fatalf("allowed call: %+v\nstderr:\n%s", resp.Error, h.stderr.String())
	}
	var saw struct {
		Era             string `json:"era"`
		ProtocolVersion string `json:"protocolVersion"`
		ClientInfo      struct {
			Name string `json:"name"`
		} `json:"clientInfo"`
	}
	if err := json.Unmarshal([]byte(resultText(t, resp)), &saw); err != nil {
		t.Fatal(err)
	}
	// The upstream is told who calls: the client's own clientInfo (the
	// harness's 2025 client, from its session), not the hub's.
	if saw.Era != "modern" || saw.ProtocolVersion != "2026-07-28" || saw.ClientInfo.Name != "e2e-client" {
		t.Errorf("the upstream saw %+v, want a 2026-07-28 request naming the calling client", saw)
	}

	if o := outcomeOf(t, h.call("modern__echo", `{"x":1}`)); o.Code != -32001 || o.ErrorCode != "SIGIL_POLICY_VIOLATION" {
		t.Errorf("blocked call: %+v, want -32001 SIGIL_POLICY_VIOLATION", o)
	}

	// 2026-07-28 has no resources/subscribe: the 2025 client's subscription
	// becomes the hub's listen filter, and the resource's update reaches it.
	if resp := h.rpc("resources/subscribe", map[string]any{"uri": "test://modern"}); resp.Error != nil || string(resp.Result) != `{}` {
		t.Fatalf("resources/subscribe: %s %+v", resp.Result, resp.Error)
	}
	if resp := h.call("modern__touch", `{}`); resp.Error != nil || resultText(t, resp) != "touched" {
		t.Fatalf("touch: %s %+v", resp.Result, resp.Error)
	}
	eventually(t, "the resource update", func() bool { return h.notifications("notifications/resources/updated") == 1 })

	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	got := string(b)
	if !strings.Contains(got, `"method":"server/discover"`) || strings.Contains(got, `"method":"initialize"`) {
		t.Errorf("want server/discover and no initialize; the upstream read:\n%s", got)
	}
	if !strings.Contains(got, `"name":"whoami"`) || strings.Contains(got, `"name":"echo"`) {
		t.Errorf("want the allowed call and not the blocked one; the upstream read:\n%s", got)
	}
}

// TestModernRequestGetsItsOwnLogMessages: a 2026-07-28 request that asks
// for log messages (_meta logLevel) gets those of its own call (mcp-go may
// send one just after the answer); one that does not ask gets none
// (docs/protocol.md#mcp-revisions).
func TestModernRequestGetsItsOwnLogMessages(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	policy := writePolicy(t, dir, modernPolicy)
	cfg := writeConfig(t, fmt.Sprintf(`
[servers.modern]
command = %q
server_id = "modern"
env = { %s = "modern", %s = %q }
`, selfExe(t), testmodern.EnvMode, testmodern.EnvLog, filepath.Join(dir, "upstream.log")))
	rc := startRawUninitialized(t, nil, "--config", cfg, "--policy", policy)
	for _, tc := range []struct {
		id, level string
		want      bool
	}{{"1", `,"io.modelcontextprotocol/logLevel":"info"`, true}, {"2", "", false}, {"3", `,"io.modelcontextprotocol/logLevel":"error"`, false}} {
		rc.send(`{"jsonrpc":"2.0","id":` + tc.id + `,"method":"tools/call","params":{"name":"modern__log","arguments":{},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}` + tc.level + `}}}`)
		got := false
		deadline := time.After(60 * time.Second)
		var trailing <-chan time.Time // after the answer: a message may trail it
	read:
		for {
			select {
			case <-trailing:
				break read
			case line := <-rc.lines:
				var m map[string]json.RawMessage
				if err := json.Unmarshal(line, &m); err != nil {
					t.Fatalf("not JSON: %q", line)
				}
				switch {
				case string(m["method"]) == `"notifications/message"`:
					if !strings.Contains(string(m["params"]), "hello from log") {
						t.Errorf("request %s: log message %s", tc.id, m["params"])
					}
					got = true
				case string(m["id"]) == tc.id:
					if !strings.Contains(string(m["result"]), "logged") {
						t.Fatalf("request %s: %s %s", tc.id, m["result"], m["error"])
					}
					trailing = time.After(500 * time.Millisecond)
				}
			case <-deadline:
				t.Fatalf("no answer to request %s", tc.id)
			}
		}
		if got != tc.want {
			t.Errorf("request %s (logLevel %q): log message delivered %v, want %v", tc.id, tc.level, got, tc.want)
		}
	}
}
