package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestToolsCommand: `tools` lists every exposed tool with its route and
// intent action; an extractor changes the action exactly as the hub's
// intents do; --json has a stable shape.
func TestToolsCommand(t *testing.T) {
	t.Parallel()
	type tool struct {
		Name       string            `json:"name"`
		Upstream   string            `json:"upstream"`
		ServerID   string            `json:"server_id"`
		Tool       string            `json:"tool"`
		Action     string            `json:"action"`
		ActionNote string            `json:"action_note"`
		Extract    map[string]string `json:"extract"`
	}
	for _, tc := range []struct {
		name      string
		extra     string // appended to [servers.alpha]
		args      []string
		exposed   string
		action    string
		note      string
		tableLine string // a substring of the echo line in the text table
	}{
		{"no extractor", "", nil, "alpha__echo", "mcp.alpha.echo", "", "mcp.alpha.echo"},
		{"url extractor", "[servers.alpha.extractors.echo]\nurl = \"target.href\"\n", nil, "alpha__echo", "web_fetch", "", "web_fetch (url=target.href)"},
		{"url and method", "[servers.alpha.extractors.echo]\nurl = \"u\"\nmethod = \"m\"\n", nil, "alpha__echo", "http", `web_fetch when argument "m"`, "http * (method=m, url=u)"},
		{"path extractor", "[servers.alpha.extractors.echo]\npath = \"file\"\n", nil, "alpha__echo", "file_write", "", "file_write (path=file)"},
		{"action override", "[servers.alpha.extractors.echo]\naction = \"email.send\"\nto = \"rcpt\"\n", nil, "alpha__echo", "email.send", "", "email.send (to=rcpt)"},
		{"only: names unchanged", "", []string{"--only", "alpha"}, "echo", "mcp.alpha.echo", "", "mcp.alpha.echo"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, fakeServer(t, "alpha", newUpstreamLog(t), tc.extra))
			args := append([]string{"tools", "--config", path, "--json"}, tc.args...)
			out, stderr, err := runCLI(t, nil, args...)
			if err != nil {
				t.Fatalf("%v\n%s", err, stderr)
			}
			var rep struct {
				Tools     []tool            `json:"tools"`
				Upstreams []json.RawMessage `json:"upstreams"`
				Warnings  []json.RawMessage `json:"warnings"`
			}
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("not JSON: %v\n%s", err, out)
			}
			if len(rep.Upstreams) != 1 || rep.Warnings == nil {
				t.Errorf("upstreams %d, warnings %v", len(rep.Upstreams), rep.Warnings)
			}
			var echo, slow *tool
			for i := range rep.Tools {
				switch rep.Tools[i].Tool {
				case "echo":
					echo = &rep.Tools[i]
				case "slow":
					slow = &rep.Tools[i]
				}
			}
			if echo == nil || slow == nil {
				t.Fatalf("echo or slow missing: %s", out)
			}
			if echo.Name != tc.exposed || echo.Upstream != "alpha" || echo.ServerID != "alpha" || echo.Action != tc.action || !strings.Contains(echo.ActionNote, tc.note) || (tc.note == "") != (echo.ActionNote == "") {
				t.Errorf("echo = %+v, want name %q action %q note %q", *echo, tc.exposed, tc.action, tc.note)
			}
			if (tc.extra == "") != (echo.Extract == nil) {
				t.Errorf("echo extract = %v", echo.Extract)
			}
			if slow.Action != "mcp.alpha.slow" || slow.Extract != nil {
				t.Errorf("slow = %+v", *slow)
			}

			text, stderr, err := runCLI(t, nil, append([]string{"tools", "--config", path}, tc.args...)...)
			if err != nil {
				t.Fatalf("%v\n%s", err, stderr)
			}
			if !strings.HasPrefix(text, "EXPOSED") || !strings.Contains(text, "tool(s) from 1 upstream(s)") {
				t.Errorf("table:\n%s", text)
			}
			found := false
			for line := range strings.SplitSeq(text, "\n") {
				if strings.HasPrefix(line, tc.exposed+" ") {
					found = true
					if !strings.Contains(line, tc.tableLine) {
						t.Errorf("echo line %q lacks %q", line, tc.tableLine)
					}
				}
			}
			if !found {
				t.Errorf("no line for %s:\n%s", tc.exposed, text)
			}
		})
	}
}

// TestToolsFailedUpstream: the tools of an upstream that did not start are
// missing, so the command says so and exits 1.
func TestToolsFailedUpstream(t *testing.T) {
	path := writeConfig(t, fakeServer(t, "alpha", newUpstreamLog(t), "")+failingServer(t, "broken", "tools-stderr"))
	out, _, err := runCLI(t, nil, "tools", "--config", path)
	if err == nil || !strings.Contains(err.Error(), "broken did not start") {
		t.Fatalf("err = %v", err)
	}
	if !strings.Contains(out, "alpha__echo") || !strings.Contains(out, "broken is backoff: its tools are missing") {
		t.Errorf("output:\n%s", out)
	}
}
