package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigilcore/sigil-hub/internal/signtest"
)

// TestJSONLogsForOperators: with --log-format json (or log_format in the
// file) every stderr line is one JSON object, the lines operators alert on
// carry a stable "event", and every line about a server names it with its
// server_name.
func TestJSONLogsForOperators(t *testing.T) {
	t.Parallel()
	lines := func(t *testing.T, stderr string) []map[string]any {
		t.Helper()
		var out []map[string]any
		for _, l := range strings.Split(strings.TrimSpace(stderr), "\n") {
			var m map[string]any
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("a log line is not a JSON object: %q", l)
			}
			out = append(out, m)
		}
		return out
	}
	find := func(ls []map[string]any, event string) map[string]any {
		for _, m := range ls {
			if m["event"] == event {
				return m
			}
		}
		return nil
	}

	t.Run("policy decisions, log_format in the file", func(t *testing.T) {
		policy := filepath.Join(t.TempDir(), "warranty.md")
		if err := os.WriteFile(policy, []byte("version: 2.0.0\n\n## mcp\nallowed_tools: files.*\nblocked_tools: files.pid\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := writeConfig(t, "log_format = \"json\"\n"+fakeServer(t, "files", newUpstreamLog(t), `server_name = "Files for Alice"`))
		rc := startRaw(t, nil, "--config", cfg, "--policy", policy)
		rc.send(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"files__echo","arguments":{}}}`)
		rc.await("1")
		rc.send(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"files__pid","arguments":{}}}`)
		rc.await("2")
		var ls []map[string]any
		eventually(t, "the denial's log line", func() bool {
			ls = lines(t, rc.stderr.String())
			return find(ls, "tool_call_denied") != nil
		})
		denied := find(ls, "tool_call_denied")
		if denied["server_name"] != "Files for Alice" || denied["exposed_tool"] != "files__pid" || denied["level"] != "INFO" {
			t.Errorf("denial line %v", denied)
		}
		ready := find(ls, "upstream_ready")
		if ready == nil || ready["server_name"] != "Files for Alice" || ready["upstream"] != "files" {
			t.Errorf("upstream_ready line %v", ready)
		}
	})

	t.Run("ungoverned call, --log-format json", func(t *testing.T) {
		cfg := writeConfig(t, fakeServer(t, "files", newUpstreamLog(t), ""))
		env := []string{"SIGIL_API_KEY=" + testKey, "SIGIL_SIGN_URL=" + signtest.ClosedURL(t)}
		rc := startRaw(t, env, "--config", cfg, "--log-format", "json", "--unsafe-bypass")
		rc.send(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"files__echo","arguments":{"a":1}}}`)
		if m := rc.await("1"); m["result"] == nil {
			t.Fatalf("the bypassed call: %s", m["error"])
		}
		var ls []map[string]any
		eventually(t, "the ungoverned_tool_call line", func() bool {
			ls = lines(t, rc.stderr.String())
			return find(ls, "ungoverned_tool_call") != nil
		})
		if m := find(ls, "ungoverned_tool_call"); m["level"] != "ERROR" || m["server_name"] != "files" {
			t.Errorf("ungoverned_tool_call line %v", m)
		}
		if strings.Contains(rc.stderr.String(), testKey) {
			t.Error("the API key appears in the JSON log")
		}
	})
}
