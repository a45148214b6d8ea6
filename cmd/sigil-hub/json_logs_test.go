package main

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigilcore/sigil-hub/internal/signtest"
	"github.com/sigilcore/sigil-hub/internal/testbuf"
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

// TestJSONLogsServerLinesNameTheServer: the hub's own lines about one
// server, not only those of its connection, carry its server_name: a
// server→client request relayed to the client and a finished tool call
// (both at debug).
func TestJSONLogsServerLinesNameTheServer(t *testing.T) {
	t.Parallel()
	policy := filepath.Join(t.TempDir(), "warranty.md")
	if err := os.WriteFile(policy, []byte("version: 2.0.0\n\n## mcp\nallowed_tools: files.*\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := writeConfig(t, fakeServer(t, "files", newUpstreamLog(t), "server_name = \"Files for Alice\"\ntools = { allow = [\"echo\", \"roots\"] }"))
	cmd := exec.Command(hubBin, "--config", cfg, "--policy", policy, "--log-format", "json", "--log-level", "debug")
	cmd.Env = baseEnv()
	cmd.Dir = t.TempDir()
	rc := &rawClient{t: t, cmd: cmd, lines: make(chan []byte, 1024), stderr: &testbuf.Buffer{}}
	cmd.Stderr = rc.stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	rc.stdin = in
	go scanLines(out, rc.lines)
	t.Cleanup(func() {
		in.Close()
		if err := waitExit(t, cmd); err != nil {
			t.Errorf("hub exit: %v", err)
		}
		if t.Failed() {
			t.Logf("hub stderr:\n%s", rc.stderr.String())
		}
	})
	// This client declares roots, so the upstream's roots/list is relayed.
	rc.send(`{"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"roots":{}},"clientInfo":{"name":"c","version":"1"}}}`)
	rc.await(`"init"`)
	rc.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	rc.send(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"files__roots","arguments":{}}}`)
	deadline := time.After(60 * time.Second)
	for done := false; !done; {
		select {
		case line, ok := <-rc.lines:
			if !ok {
				t.Fatal("hub closed stdout")
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal(line, &m); err != nil {
				t.Fatalf("not JSON: %q", line)
			}
			switch {
			case string(m["method"]) == `"roots/list"`:
				rc.send(`{"jsonrpc":"2.0","id":` + string(m["id"]) + `,"result":{"roots":[{"uri":"file:///alice","name":"alice"}]}}`)
			case string(m["id"]) == "1":
				if !strings.Contains(string(m["result"]), "file:///alice") {
					t.Fatalf("files__roots: %s", line)
				}
				done = true
			}
		case <-deadline:
			t.Fatal("no answer to files__roots")
		}
	}
	// "tool filtered by config" names the server too (only echo and roots
	// are allowed: every other tool of the upstream is filtered).
	want := map[string]bool{"relaying server request to the client": false, "tool call finished": false, "tool filtered by config": false}
	eventually(t, "the relay and call lines", func() bool {
		for _, l := range strings.Split(strings.TrimSpace(rc.stderr.String()), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) != nil {
				continue
			}
			if _, ok := want[fmt.Sprint(m["msg"])]; ok && (m["upstream"] == "files" || m["msg"] == "tool filtered by config") {
				if m["server_name"] != "Files for Alice" {
					t.Fatalf("a line about the server lacks its server_name: %s", l)
				}
				want[fmt.Sprint(m["msg"])] = true
			}
		}
		return want["relaying server request to the client"] && want["tool call finished"] && want["tool filtered by config"]
	})
}
