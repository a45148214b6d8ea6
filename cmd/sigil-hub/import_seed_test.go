package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigilcore/sigil-hub/internal/signtest"
)

// `sigil-hub import` of entries wrapped by @sigilcore/mcp-proxy (README
// "Coming from @sigilcore/mcp-proxy"): the wrapper's sigil.config.json
// (serverId, extractors, headers), --sign-url, --pending-timeout and
// --log-level reach the hub file, --unsafe-bypass stays on the printed
// client entry, and every setting that is not carried is named with why.

// writeClientFile writes a Claude Desktop style file with the given
// mcpServers and returns its path.
func writeClientFile(t *testing.T, dir string, servers map[string]any) string {
	t.Helper()
	b, err := json.MarshalIndent(map[string]any{"mcpServers": servers}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, "claude_desktop_config.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestImportSeedWrapperCarriesSettings: a proxy-wrapped remote entry with
// --config sigil.config.json, --sign-url, --pending-timeout, --log-level
// and --unsafe-bypass is imported into a hub file that, served by the
// real binary, sends the call to the same Sign with the file's serverId
// and extractor and the upstream the file's header; the client entry
// keeps --unsafe-bypass; the flags import cannot carry are listed.
func TestImportSeedWrapperCarriesSettings(t *testing.T) {
	t.Parallel()
	sign := signtest.New(t, signtest.Options{APIKey: testKey})
	rec := newHeaderRecorder(t)
	dir := t.TempDir()
	seed := filepath.Join(dir, "proxy", "sigil.config.json")
	if err := os.MkdirAll(filepath.Dir(seed), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(seed, []byte(`{"serverId": "docs-api", "serverName": "Docs API", "pendingTimeout": 9000, "signUrl": "https://sign.invalid",
	  "upstream": {"headers": {"X-Team": "${SEED_TEAM}"}}, "extractors": {"echo": {"url": "target.url"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	client := writeClientFile(t, dir, map[string]any{
		"docs": map[string]any{"command": "npx", "args": []string{"-y", "@sigilcore/mcp-proxy", "--config", seed, "--sign-url", sign.URL,
			"--pending-timeout", "4500", "--log-level", "debug", "--unsafe-bypass", "--audit", "/tmp/a.log", "--frobnicate", "--remote", rec.URL}},
		"plain": map[string]any{"command": "uvx", "args": []string{"mcp-server-time"}},
	})
	out := filepath.Join(dir, "sigil-hub.toml")
	stdout, stderr, err := runHubIn(t, dir, nil, "import", client, "--out", out)
	if err != nil {
		t.Fatalf("import: %v\n%s", err, stderr)
	}
	hubFile, _ := os.ReadFile(out)
	for _, want := range []string{`sign_url = "` + sign.URL + `"`, "pending_timeout = 4500", `log_level = "debug"`, `server_id = "docs-api"`,
		`server_name = "Docs API"`, `X-Team = "${SEED_TEAM}"`, `extractors.echo = { url = "target.url" }`} {
		if !strings.Contains(string(hubFile), want) {
			t.Errorf("hub file lacks %s:\n%s", want, hubFile)
		}
	}
	if !strings.Contains(stdout, `"--unsafe-bypass", "--config"`) {
		t.Errorf("the printed client entry lost --unsafe-bypass:\n%s", stdout)
	}
	for _, want := range []string{"--audit: a hub-wide audit log import does not carry", "--frobnicate is not a flag of sigil-hub or @sigilcore/mcp-proxy",
		"it now applies to every server of the hub, also servers.plain", "SEED_TEAM"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("import output lacks %q:\n%s", want, stderr)
		}
	}

	// The imported file decides what reaches Sign and the upstream.
	h := startHub(t, []string{"SIGIL_API_KEY=" + testKey, "SEED_TEAM=platform"}, "--config", out, "--only", "docs")
	if resp := h.call("echo", `{"target":{"url":"https://example.com/a"}}`); resp.Error != nil {
		t.Fatalf("echo through the imported file: %+v", resp.Error)
	}
	reqs := sign.Requests()
	if len(reqs) != 1 || reqs[0].ServerID != "docs-api" || reqs[0].Action != "web_fetch" {
		t.Fatalf("Sign (from --sign-url) saw %+v, want one web_fetch with serverId docs-api", reqs)
	}
	if got := rec.values("X-Team"); len(got) == 0 || got[0] != "platform" {
		t.Fatalf("upstream X-Team = %q", got)
	}
}

// TestImportSeedUncarriable: a wrapper whose sigil.config.json cannot be
// used is left in its client file with the reason, never imported without
// its serverId; a second, different Sign URL disables its server.
func TestImportSeedUncarriable(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.json")
	if err := os.WriteFile(bad, []byte(`{"serverID": "x"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	client := writeClientFile(t, dir, map[string]any{
		"broken":   map[string]any{"command": "npx", "args": []string{"@sigilcore/mcp-proxy", "--config", bad, "--", "uvx", "a"}},
		"relative": map[string]any{"command": "npx", "args": []string{"@sigilcore/mcp-proxy", "--config", "conf/sigil.config.json", "--", "uvx", "b"}},
		"missing":  map[string]any{"command": "npx", "args": []string{"@sigilcore/mcp-proxy", "--config", filepath.Join(dir, "nope.json"), "--", "uvx", "c"}},
		"one":      map[string]any{"command": "npx", "args": []string{"@sigilcore/mcp-proxy", "--sign-url", "https://sign-a.example.com", "--", "uvx", "d"}},
		"two":      map[string]any{"command": "npx", "args": []string{"@sigilcore/mcp-proxy", "--sign-url", "https://sign-b.example.com", "--", "uvx", "e"}},
	})
	_, stderr, err := runHubIn(t, dir, nil, "import", client, "--out", "-")
	if err != nil {
		t.Fatalf("import: %v\n%s", err, stderr)
	}
	for _, want := range []string{
		`entry "broken": not imported: its ` + bad + ` does not load (serverID: unknown key`,
		`entry "relative": not imported: its --config conf/sigil.config.json is relative`,
		`entry "missing": not imported: its ` + filepath.Join(dir, "nope.json") + ` cannot be read`,
		`entry "two": its wrapper used Sign at https://sign-b.example.com, but the hub has one Sign URL (https://sign-a.example.com`,
	} {
		if !strings.Contains(stderr, want) {
			t.Errorf("import output lacks %q:\n%s", want, stderr)
		}
	}
}
