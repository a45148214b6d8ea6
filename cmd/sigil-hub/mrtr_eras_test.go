package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigilcore/sigil-hub/internal/testmodern"
	"github.com/sigilcore/sigil-hub/internal/testupstream"
)

// erasPolicy holds both upstreams' asking tools for a person.
const erasPolicy = `version: 2.0.0

## mcp
allowed_tools: modern.*, files.*
require_approval: modern.ask, files.sample
`

// TestMultiRoundTripInEveryEraCombination: a tool that needs an answer
// from the client in the middle of the call works through the hub for a
// 2025 and a 2026-07-28 client, in front of a 2025 upstream (which asks
// with an elicitation/create request) and a 2026-07-28 one (which answers
// input_required). Each call is held and a person approves it once: every
// later round is authorized again without asking anew, and the answer the
// client gave is what the upstream acted on.
func TestMultiRoundTripInEveryEraCombination(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	policy := writePolicy(t, dir, erasPolicy)
	home := filepath.Join(dir, "home")
	cfg := writeConfig(t, fmt.Sprintf(`
[servers.modern]
command = %q
server_id = "modern"
env = { %s = "modern", %s = %q }

[servers.files]
command = %q
server_id = "files"
env = { %s = "1", %s = "1", %s = %q, %s = "files" }
`, selfExe(t), testmodern.EnvMode, testmodern.EnvLog, filepath.Join(dir, "modern.log"),
		selfExe(t), testupstream.EnvMarker, testupstream.EnvMisbehave, testupstream.EnvLog, filepath.Join(dir, "files.log"), testupstream.EnvName))
	rc := startRawUninitialized(t, []string{"XDG_CONFIG_HOME=" + home, "HOME=" + home},
		"--config", cfg, "--policy", policy, "--pending-timeout", "120000")
	rc.send(`{"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"elicitation":{}},"clientInfo":{"name":"old-client","version":"1"}}}`)
	rc.await(`"init"`)
	rc.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)

	hs := holdsOf(t, rc, home)
	// answer reads lines until the response to id, answering each
	// elicitation/create with content and failing on any other request.
	answer := func(id string, content string) map[string]json.RawMessage {
		t.Helper()
		deadline := time.After(60 * time.Second)
		for {
			select {
			case line := <-rc.lines:
				var m map[string]json.RawMessage
				if err := json.Unmarshal(line, &m); err != nil {
					t.Fatalf("not JSON: %q", line)
				}
				switch {
				case string(m["method"]) == `"elicitation/create"` && m["id"] != nil:
					rc.send(`{"jsonrpc":"2.0","id":` + string(m["id"]) + `,"result":{"action":"accept","content":` + content + `}}`)
				case m["method"] != nil && m["id"] != nil:
					t.Fatalf("unexpected request to the client: %s", line)
				case string(m["id"]) == id:
					return m
				}
			case <-deadline:
				t.Fatalf("no answer for %s\nstderr:\n%s", id, rc.stderr.String())
			}
		}
	}
	meta := `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"elicitation":{}},"io.modelcontextprotocol/clientInfo":{"name":"new-client","version":"2"}}`

	for _, tc := range []struct {
		name, tool, args, key, content, want string
	}{
		{"2026-07-28 upstream", "modern__ask", `{}`, "q", `{"x":"y"}`, "answered accept"},
		{"2025 upstream", "files__sample", `{"kind":"elicitation"}`, "input", `{"secret":"s"}`, "answered"},
	} {
		t.Run("2025 client, "+tc.name, func(t *testing.T) {
			before := hs.approved
			id := fmt.Sprintf(`"old-%s"`, tc.tool)
			rc.send(`{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":{"name":"` + tc.tool + `","arguments":` + tc.args + `}}`)
			hs.approveOne(t)
			m := answer(id, tc.content)
			if !strings.Contains(string(m["result"]), tc.want) {
				t.Fatalf("result %s %s, want %q\nstderr:\n%s", m["result"], m["error"], tc.want, rc.stderr.String())
			}
			if hs.approved-before != 1 {
				t.Errorf("%d approvals, want 1", hs.approved-before)
			}
		})
		t.Run("2026-07-28 client, "+tc.name, func(t *testing.T) {
			before := hs.approved
			params := `{"name":"` + tc.tool + `","arguments":` + tc.args + `,` + meta
			id := fmt.Sprintf(`"new-%s-1"`, tc.tool)
			rc.send(`{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":` + params + `}}`)
			hs.approveOne(t)
			m := answer(id, tc.content)
			var first struct {
				ResultType    string `json:"resultType"`
				InputRequests map[string]struct {
					Method string `json:"method"`
				} `json:"inputRequests"`
				RequestState string `json:"requestState"`
			}
			if json.Unmarshal(m["result"], &first) != nil || first.ResultType != "input_required" ||
				first.InputRequests[tc.key].Method != "elicitation/create" || !strings.HasPrefix(first.RequestState, "sigil-hub.1.") {
				t.Fatalf("first round: %s %s", m["result"], m["error"])
			}
			id = fmt.Sprintf(`"new-%s-2"`, tc.tool)
			rc.send(`{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":` + params +
				`,"inputResponses":{"` + tc.key + `":{"action":"accept","content":` + tc.content + `}},"requestState":"` + first.RequestState + `"}}`)
			m = answer(id, tc.content)
			if !strings.Contains(string(m["result"]), tc.want) {
				t.Fatalf("the retry: %s %s, want %q\nstderr:\n%s", m["result"], m["error"], tc.want, rc.stderr.String())
			}
			if hs.approved-before != 1 {
				t.Errorf("%d approvals, want 1", hs.approved-before)
			}
		})
	}
	if hs.pending(t) {
		t.Errorf("a call is still held")
	}
}
