package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigilcore/sigil-hub/config"
)

// A @sigilcore/mcp-proxy sigil.config.json is understood by every command
// that takes --config, and by `init` (README "Coming from
// @sigilcore/mcp-proxy"), through the one reader the hub uses.

// TestSeedConfigEveryCommandReadsJSON: check, tools, pins and oauth read a
// --config FILE.json as the proxy's format, never as TOML: a valid file
// gives each its answer, a key the format lacks is refused naming it, and
// each command's help says what a .json file is.
func TestSeedConfigEveryCommandReadsJSON(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	good := filepath.Join(dir, "proxy.json")
	bad := filepath.Join(dir, "typo.json")
	for p, body := range map[string]string{good: `{"serverId": "docs-api"}`, bad: `{"serverID": "docs-api"}`} {
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	home := t.TempDir()
	env := []string{"XDG_CONFIG_HOME=" + home}

	// check and tools: the file configures one wrapped server, so each
	// says how to name it, spelled as that command.
	for _, cmd := range []string{"check", "tools"} {
		_, errOut, err := runHubIn(t, dir, env, cmd, "--config", good)
		if err == nil || !strings.Contains(errOut, "`sigil-hub "+cmd+" --config "+good+" -- COMMAND [ARGS...]`") {
			t.Errorf("%s --config FILE.json without a server: %v\n%s", cmd, err, errOut)
		}
	}

	// pins: the file sets no pin file, so the hub wrapping a server with it
	// uses the default store, which pins lists.
	out, errOut, err := runHubIn(t, dir, env, "pins", "list", "--config", good)
	if err != nil || !strings.Contains(out, "pin file: "+filepath.Join(home, "sigil-hub", "pins.json")) {
		t.Errorf("pins list --config FILE.json: %v\n%s%s", err, out, errOut)
	}
	out, errOut, err = runHubIn(t, dir, append(env, "SIGIL_HUB_CONFIG="+good), "pins", "list")
	if err != nil || !strings.Contains(out, "pin file: ") {
		t.Errorf("pins list with SIGIL_HUB_CONFIG=FILE.json: %v\n%s%s", err, out, errOut)
	}

	// oauth: the wrapped server sends its upstream.headers, never OAuth.
	out, errOut, err = runHubIn(t, dir, env, "oauth", "list", "--config", good)
	if err != nil || !strings.Contains(out, "no server in "+good+" uses oauth") {
		t.Errorf("oauth list --config FILE.json: %v\n%s%s", err, out, errOut)
	}

	for _, args := range [][]string{
		{"pins", "list", "--config", bad}, {"oauth", "list", "--config", bad},
		{"check", "--config", bad, "--", "node", "x.js"}, {"tools", "--config", bad, "--", "node", "x.js"},
	} {
		_, errOut, err := runHubIn(t, dir, env, args...)
		if err == nil || !strings.Contains(errOut, "(@sigilcore/mcp-proxy format): serverID: unknown key") {
			t.Errorf("%v --config with an unknown key: %v\n%s", args, err, errOut)
		}
	}

	for _, args := range [][]string{{"check", "-h"}, {"tools", "-h"}, {"pins", "-h"}, {"oauth", "-h"}} {
		out, _, err := runHubIn(t, dir, env, args...)
		if err != nil || !strings.Contains(out, "a .json file is a @sigilcore/mcp-proxy sigil.config.json") {
			t.Errorf("%v: the help of --config does not say what a .json file is (%v):\n%s", args, err, out)
		}
	}
}

// TestSeedConfigCheckPrintNamesFileAndHeaders: `check --print` names the
// sigil.config.json it read and shows each upstream.headers value as the
// file writes it (its $IDENTIFIER references), never the value; only the
// Authorization that SIGIL_UPSTREAM_AUTH replaced is shown as that
// variable.
func TestSeedConfigCheckPrintNamesFileAndHeaders(t *testing.T) {
	t.Parallel()
	const token, team = "tok-Zq81-never-printed", "team-never-printed"
	dir := seedDir(t, `{"serverId": "docs-api", "upstream": {"headers": {"Authorization": "Bearer ${DOCS_TOKEN}", "X-Team": "$DOCS_TEAM"}}}`)
	env := []string{"DOCS_TOKEN=" + token, "DOCS_TEAM=" + team}
	remote := []string{"--remote", "https://docs.example.com/mcp"}

	type print struct {
		File       string `json:"file"`
		FileFormat string `json:"file_format"`
		Servers    []struct {
			Headers map[string]string `json:"headers"`
		} `json:"servers"`
	}
	read := func(env []string) (print, string) {
		t.Helper()
		out, errOut, err := runHubIn(t, dir, env, append([]string{"check", "--print", "--json"}, remote...)...)
		if err != nil {
			t.Fatalf("check --print --json: %v\n%s", err, errOut)
		}
		var p print
		if err := json.Unmarshal([]byte(out), &p); err != nil || len(p.Servers) != 1 {
			t.Fatalf("check --print --json: %v\n%s", err, out)
		}
		return p, out
	}

	p, out := read(env)
	if p.File != config.SeedFileName || p.FileFormat != "@sigilcore/mcp-proxy sigil.config.json" {
		t.Errorf("file %q format %q: want the sigil.config.json read", p.File, p.FileFormat)
	}
	if h := p.Servers[0].Headers; h["Authorization"] != "Bearer ${DOCS_TOKEN}" || h["X-Team"] != "$DOCS_TEAM" {
		t.Errorf("headers %v: want the file's references", h)
	}
	if strings.Contains(out, token) || strings.Contains(out, team) {
		t.Fatalf("check --print shows a header's value:\n%s", out)
	}

	p, _ = read(append(env, "SIGIL_UPSTREAM_AUTH=Bearer env-secret"))
	if h := p.Servers[0].Headers; h["Authorization"] != "${SIGIL_UPSTREAM_AUTH}" || h["X-Team"] != "$DOCS_TEAM" || len(h) != 2 {
		t.Errorf("headers with SIGIL_UPSTREAM_AUTH %v: want it for Authorization only", h)
	}

	out, errOut, err := runHubIn(t, dir, env, append([]string{"check", "--print"}, remote...)...)
	if err != nil {
		t.Fatalf("check --print: %v\n%s", err, errOut)
	}
	if !strings.Contains(out, "\n# file: ") || !strings.Contains(out, string(filepath.Separator)+config.SeedFileName+" (@sigilcore/mcp-proxy sigil.config.json)\n") ||
		!strings.Contains(out, `headers = { Authorization = "Bearer ${DOCS_TOKEN}", X-Team = "$DOCS_TEAM" }`) {
		t.Errorf("check --print (text):\n%s", out)
	}
	if strings.Contains(out, token) || strings.Contains(out, team) {
		t.Fatalf("check --print shows a header's value:\n%s", out)
	}
}

// TestInitStartsFromSeedConfig: `sigil-hub init` in a folder holding a
// sigil.config.json writes a hub file that carries its settings; the file
// names the one thing the seed format lacks (the server's command or url),
// the hub refuses it until that is set, and then reads every setting back.
// A sigil.config.json that does not load writes nothing.
func TestInitStartsFromSeedConfig(t *testing.T) {
	t.Parallel()
	dir := seedDir(t, `{"serverId": "docs-api", "serverName": "Docs", "signUrl": "http://127.0.0.1:7005", "logLevel": "warn",
	  "pendingTimeout": 60000, "upstream": {"headers": {"Authorization": "Bearer ${DOCS_TOKEN}"}},
	  "extractors": {"fetch_page": {"url": "page.url", "action": "web_fetch"}}}`)
	_, errOut, err := runHubIn(t, dir, nil, "init")
	if err != nil || !strings.Contains(errOut, "from ./sigil.config.json") || !strings.Contains(errOut, "set command or url in [servers.docs-api]") {
		t.Fatalf("init: %v\n%s", err, errOut)
	}
	file := filepath.Join(dir, "sigil-hub.toml")
	_, errOut, err = runHubIn(t, dir, []string{"DOCS_TOKEN=x"}, "check", "--print", "--config", file)
	if err == nil || !strings.Contains(errOut, "servers.docs-api: set command (a stdio upstream) or url (a remote upstream)") {
		t.Fatalf("the written file before its url is set: %v\n%s", err, errOut)
	}
	body, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	edited := strings.Replace(string(body), `# url = "https://mcp.example.com/mcp"`, `url = "https://docs.example.com/mcp"`, 1)
	if edited == string(body) {
		t.Fatalf("no url line to set:\n%s", body)
	}
	if err := os.WriteFile(file, []byte(edited), 0o600); err != nil {
		t.Fatal(err)
	}
	p := checkPrint(t, dir, []string{"DOCS_TOKEN=x"}, "--config", file)
	s := p.Servers[0]
	if p.SignURL != "http://127.0.0.1:7005" || p.LogLevel != "warn" || p.PendingTimeout != 60000 || s.ServerID != "docs-api" || s.ServerName != "Docs" ||
		s.Headers["Authorization"] != "Bearer ${DOCS_TOKEN}" || s.Extractors["fetch_page"]["url"] != "page.url" || s.Extractors["fetch_page"]["action"] != "web_fetch" {
		t.Fatalf("the hub file from init lost a setting: %+v\n%s", p, edited)
	}

	bad := seedDir(t, `{"serverId": "x", "colour": "blue"}`)
	_, errOut, err = runHubIn(t, bad, nil, "init")
	if err == nil || !strings.Contains(errOut, "colour: unknown key") || !strings.Contains(errOut, "nothing written") {
		t.Fatalf("init with a bad sigil.config.json: %v\n%s", err, errOut)
	}
	if _, err := os.Stat(filepath.Join(bad, "sigil-hub.toml")); err == nil {
		t.Fatal("init wrote a hub file from a sigil.config.json that does not load")
	}
}
