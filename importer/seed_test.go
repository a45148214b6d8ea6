package importer

import (
	"strings"
	"testing"

	"github.com/BurntSushi/toml"
)

// TestUnwrapCarriesHubWideSettings: the wrapper's --sign-url,
// --pending-timeout and --log-level beat the same settings in its env;
// --unsafe-bypass is recorded; --config FILE.json is resolved against the
// entry's cwd; other flags are named with why.
func TestUnwrapCarriesHubWideSettings(t *testing.T) {
	e := Entry{Command: "npx", Cwd: "/work/proj", Args: []string{"-y", "@sigilcore/mcp-proxy", "--config", "conf/sigil.config.json",
		"--sign-url", "https://flag.example.com", "--unsafe-bypass", "--call-timeout", "5", "--weird", "--", "node", "x.js"},
		Env: map[string]string{"SIGIL_SIGN_URL": "https://env.example.com", "SIGIL_PENDING_TIMEOUT": "7000", "SIGIL_LOG_LEVEL": "warn"}}
	unwrap(&e)
	resolveSeed(&e)
	if e.SignURL != "https://flag.example.com" || e.PendingTimeout != "7000" || e.LogLevel != "warn" || !e.Bypass {
		t.Fatalf("carried %q %q %q bypass=%v", e.SignURL, e.PendingTimeout, e.LogLevel, e.Bypass)
	}
	if e.SeedConfig != "/work/proj/conf/sigil.config.json" || e.SeedImplicit {
		t.Fatalf("seed %q implicit=%v", e.SeedConfig, e.SeedImplicit)
	}
	if _, left := e.Env["SIGIL_SIGN_URL"]; left {
		t.Fatal("a carried variable is still in env")
	}
	notes := strings.Join(e.Notes, "\n")
	if !strings.Contains(notes, "--call-timeout: a hub-wide budget") || !strings.Contains(notes, "--weird is not a flag") {
		t.Fatalf("notes:\n%s", notes)
	}
	if e.Command != "node" || len(e.Args) != 1 {
		t.Fatalf("inner command %q %q (a value flag must not swallow it)", e.Command, e.Args)
	}

	// Without --config: the proxy's ./sigil.config.json in the cwd.
	e = Entry{Command: "npx", Cwd: `C:\proj`, Args: []string{"@sigilcore/mcp-proxy", "--", "node", "x.js"}}
	unwrap(&e)
	resolveSeed(&e)
	if e.SeedConfig != `C:\proj\sigil.config.json` || !e.SeedImplicit {
		t.Fatalf("implicit seed %q", e.SeedConfig)
	}
	// A hub TOML with a wrapped server is not a wrapper sigil-hub runs.
	e = Entry{Command: "sigil-hub", Args: []string{"--config", "hub.toml", "--", "node", "x.js"}}
	unwrap(&e)
	if e.Skip == "" {
		t.Fatal("--config FILE.toml with a wrapped server was imported")
	}
}

// TestApplySeedPrecedence: the file fills only what the wrapper's flags
// and env left unset; SIGIL_UPSTREAM_AUTH beats the file's Authorization.
func TestApplySeedPrecedence(t *testing.T) {
	e := Entry{URL: "https://h/mcp", ServerID: "flag-id", SignURL: "https://flag.example.com", Headers: map[string]string{"Authorization": "Bearer env"}}
	ApplySeed(&e, "s.json", Seed{ServerID: "file-id", ServerName: "File", SignURL: "https://file.example.com", LogLevel: "error", PendingTimeout: 1200,
		Headers:    map[string]string{"authorization": "Bearer ${T}", "X-A": "${A}"},
		Extractors: map[string]map[string]string{"t": {"path": "p"}}})
	if e.ServerID != "flag-id" || e.ServerName != "File" || e.SignURL != "https://flag.example.com" || e.LogLevel != "error" || e.PendingTimeout != "1200" {
		t.Fatalf("%+v", e)
	}
	if _, ok := e.HeaderTemplates["authorization"]; ok || e.HeaderTemplates["X-A"] != "${A}" {
		t.Fatalf("header templates %v", e.HeaderTemplates)
	}
	s := Entry{Command: "node"}
	ApplySeed(&s, "s.json", Seed{Headers: map[string]string{"X-A": "${A}"}})
	if len(s.HeaderTemplates) != 0 || !strings.Contains(strings.Join(s.Notes, ""), "apply only to a remote server") {
		t.Fatalf("stdio headers: %v %v", s.HeaderTemplates, s.Notes)
	}
}

// TestBuildHubWide: the first wrapper's settings reach the file's top
// level, a different Sign URL disables its server, extractors render as
// valid TOML, and the hub entry keeps --unsafe-bypass.
func TestBuildHubWide(t *testing.T) {
	src := Source{Client: ClaudeDesktop, Path: "/c.json", Scope: "user"}
	r := Build([]Entry{
		{Source: src, Key: "a", Command: "node", Args: []string{"a.js"}, Wrapper: "@sigilcore/mcp-proxy", SignURL: "https://one.example.com/", PendingTimeout: "4000",
			LogLevel: "WARNING", Bypass: true, Extractors: map[string]map[string]string{"fetch url": {"url": "u", "action": "http"}}},
		{Source: src, Key: "b", Command: "node", Args: []string{"b.js"}, Wrapper: "@sigilcore/mcp-proxy", SignURL: "https://two.example.com", PendingTimeout: "x"},
		{Source: src, Key: "c", Command: "node", Args: []string{"c.js"}},
	}, BuildOptions{})
	if r.SignURL != "https://one.example.com" || r.PendingTimeout != "4000" || r.LogLevel != "warn" || len(r.Bypass) != 1 || r.Bypass[0] != "a" {
		t.Fatalf("hub-wide %q %q %q %v", r.SignURL, r.PendingTimeout, r.LogLevel, r.Bypass)
	}
	if !r.Servers[1].Disabled || r.Servers[0].Disabled {
		t.Fatalf("servers %+v", r.Servers)
	}
	notes := strings.Join(r.Notes, "\n")
	for _, want := range []string{"used Sign at https://two.example.com", `pending timeout "x"`, "also servers.b, servers.c"} {
		if !strings.Contains(notes, want) {
			t.Errorf("notes lack %q:\n%s", want, notes)
		}
	}
	var doc struct {
		SignURL string `toml:"sign_url"`
		Servers map[string]struct {
			Extractors map[string]map[string]string `toml:"extractors"`
		} `toml:"servers"`
	}
	if _, err := toml.Decode(string(r.TOML), &doc); err != nil || doc.SignURL != r.SignURL || doc.Servers["a"].Extractors["fetch url"]["action"] != "http" {
		t.Fatalf("TOML %v %+v:\n%s", err, doc, r.TOML)
	}
	if snip := (HubEntry{ConfigPath: "/h.toml", Bypass: true}).Snippet(LayoutCodex); !strings.Contains(snip, `args = ["--unsafe-bypass", "--config", "/h.toml"]`) {
		t.Fatalf("codex snippet:\n%s", snip)
	}
}
