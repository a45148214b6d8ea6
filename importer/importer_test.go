package importer

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLocate(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	for _, tc := range []struct {
		name string
		opts LocateOptions
		want []string
	}{
		{"linux", LocateOptions{GOOS: "linux", Getenv: env("HOME", "/home/al"), Cwd: "/src/p"}, []string{
			"/home/al/.config/Claude/claude_desktop_config.json",
			"/src/p/.cursor/mcp.json",
			"/home/al/.cursor/mcp.json",
			"/home/al/.kimi/mcp.json",
			"/src/p/.vscode/mcp.json",
			"/home/al/.config/Code/User/mcp.json",
			"/home/al/.config/Code/User/settings.json",
			"/home/al/.codex/config.toml",
		}},
		{"linux XDG and CODEX_HOME", LocateOptions{Getenv: env("HOME", "/home/al", "XDG_CONFIG_HOME", "/x", "CODEX_HOME", "/cx")}, []string{
			"/x/Claude/claude_desktop_config.json",
			"/home/al/.cursor/mcp.json",
			"/home/al/.kimi/mcp.json",
			"/x/Code/User/mcp.json",
			"/x/Code/User/settings.json",
			"/cx/config.toml",
		}},
		{"darwin", LocateOptions{GOOS: "darwin", Getenv: env("HOME", "/Users/al")}, []string{
			"/Users/al/Library/Application Support/Claude/claude_desktop_config.json",
			"/Users/al/.cursor/mcp.json",
			"/Users/al/.kimi/mcp.json",
			"/Users/al/Library/Application Support/Code/User/mcp.json",
			"/Users/al/Library/Application Support/Code/User/settings.json",
			"/Users/al/.codex/config.toml",
		}},
		{"windows", LocateOptions{GOOS: "windows", Getenv: env("USERPROFILE", `C:\Users\al`, "APPDATA", `C:\Users\al\AppData\Roaming`), Cwd: `D:\p`}, []string{
			`C:\Users\al\AppData\Roaming\Claude\claude_desktop_config.json`,
			`D:\p\.cursor\mcp.json`,
			`C:\Users\al\.cursor\mcp.json`,
			`C:\Users\al\.kimi\mcp.json`,
			`D:\p\.vscode\mcp.json`,
			`C:\Users\al\AppData\Roaming\Code\User\mcp.json`,
			`C:\Users\al\AppData\Roaming\Code\User\settings.json`,
			`C:\Users\al\.codex\config.toml`,
		}},
		{"windows without APPDATA", LocateOptions{GOOS: "windows", Getenv: env("USERPROFILE", `C:\Users\al`), Client: ClaudeDesktop}, []string{
			`C:\Users\al\AppData\Roaming\Claude\claude_desktop_config.json`,
		}},
		{"no home", LocateOptions{GOOS: "linux", Getenv: env()}, nil},
		{"one client", LocateOptions{Getenv: env("HOME", "/h"), Cwd: "/p", Client: Cursor}, []string{"/p/.cursor/mcp.json", "/h/.cursor/mcp.json"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, s := range Locate(tc.opts) {
				got = append(got, s.Path)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Locate:\n got  %q\n want %q", got, tc.want)
			}
		})
	}
}

func TestDetect(t *testing.T) {
	for _, tc := range []struct {
		path, data string
		forced     Client
		client     Client
		layout     Layout
	}{
		{"/a/claude_desktop_config.json", `{"mcpServers":{}}`, "", ClaudeDesktop, LayoutMCPServers},
		{"/p/.cursor/mcp.json", `{"mcpServers":{}}`, "", Cursor, LayoutMCPServers},
		{"/h/.kimi/mcp.json", `{"mcpServers":{}}`, "", Kimi, LayoutMCPServers},
		{"/p/.vscode/mcp.json", `{"servers":{}}`, "", VSCode, LayoutVSCode},
		{"/x/mcp.json", `// c` + "\n" + `{"servers":{},}`, "", VSCode, LayoutVSCode},
		{"/x/settings.json", `{}`, "", VSCode, LayoutVSCodeSettings},
		{"/x/config.toml", ``, "", Codex, LayoutCodex},
		{"/x/mcp.json", `{"mcpServers":{}}`, Kimi, Kimi, LayoutMCPServers},
		{"/x/mcp.json", `{"mcpServers":{}}`, "", "", LayoutMCPServers},
	} {
		got := Detect(tc.path, []byte(tc.data), tc.forced)
		if got.Client != tc.client || got.Layout != tc.layout {
			t.Errorf("Detect(%s) = %s/%d, want %s/%d", tc.path, got.Client, got.Layout, tc.client, tc.layout)
		}
	}
}

func TestSanitizeName(t *testing.T) {
	for in, want := range map[string]string{
		"github":                "github",
		"Brave Search!":         "Brave_Search",
		"a.b/c":                 "a_b_c",
		"  ":                    "server",
		"日本語":                   "server",
		"x-日本-y":                "x-_-y",
		strings.Repeat("a", 40): strings.Repeat("a", 32),
		"__x__":                 "x",
	} {
		if got := sanitizeName(in); got != want {
			t.Errorf("sanitizeName(%q) = %q, want %q", in, got, want)
		}
	}
	if got := suffixName(strings.Repeat("a", 32), 2); got != strings.Repeat("a", 30)+"-2" {
		t.Errorf("suffixName = %q", got)
	}
}

func TestSecrets(t *testing.T) {
	for _, tc := range []struct {
		name, value string
		safe        bool
	}{
		{"LOG_LEVEL", "debug", true},
		{"DEBUG", "true", true},
		{"PORT", "8080", true},
		{"MAX", "12345678", false}, // long numbers may be ids or PINs
		{"API_TOKEN", "true", false},
		{"GITHUB_PERSONAL_ACCESS_TOKEN", "1", false},
		{"ROOT", "/home/al", false},
		{"MODE", "fast", false},
	} {
		if got := safeLiteral(tc.name, tc.value); got != tc.safe {
			t.Errorf("safeLiteral(%s, %s) = %v", tc.name, tc.value, got)
		}
	}
	re := refPattern()
	for _, tc := range []struct {
		in   string
		want []piece
	}{
		{"${env:A}", []piece{{Var: "A"}}},
		{"Bearer ${input:tok}", []piece{{Lit: "Bearer "}, {Input: "tok"}}},
		{"$A-${B}-${C:-x}", []piece{{Var: "A"}, {Lit: "-"}, {Var: "B"}, {Lit: "-"}, {Var: "C"}}},
		{"$$5 $", []piece{{Lit: "$5 $"}}},
		{"${workspaceFolder}/x", []piece{{Var: "workspaceFolder"}, {Lit: "/x"}}},
	} {
		got, _ := splitRefs(re, tc.in)
		if !slices.Equal(got, tc.want) {
			t.Errorf("splitRefs(%q) = %+v, want %+v", tc.in, got, tc.want)
		}
	}
	for _, tc := range []struct {
		args []string
		i    int
		want bool
	}{
		{[]string{"--api-key", "abc"}, 1, true},
		{[]string{"--token=abc"}, 0, true},
		{[]string{"-e", "GITHUB_TOKEN=abc"}, 1, true},
		{[]string{"-e", "GITHUB_TOKEN"}, 1, false},
		{[]string{"postgresql://u:p@h/db"}, 0, true},
		{[]string{"https://example.com/a@b"}, 0, false},
		{[]string{"--key-file", "/k.pem"}, 1, false},
		{[]string{"--root", "/x"}, 1, false},
	} {
		if got := secretArg(tc.args, tc.i); got != tc.want {
			t.Errorf("secretArg(%q, %d) = %v", tc.args, tc.i, got)
		}
	}
	if !secretURL("https://h/mcp?api_key=x") || secretURL("https://h/mcp?region=eu") || !secretURL("https://u:p@h/") {
		t.Error("secretURL")
	}
	if got := redactURL("https://u:p@h/mcp?api_key=x&b=2#f"); got != "https://h/mcp?api_key=REDACTED&b=REDACTED" {
		t.Errorf("redactURL = %q", got)
	}
}

func TestUnwrap(t *testing.T) {
	for _, tc := range []struct {
		name    string
		e       Entry
		command string
		args    []string
		url     string
		id      string
		skip    bool
		headers map[string]string
	}{
		{name: "seed proxy with --",
			e:       Entry{Command: "npx", Args: []string{"-y", "@sigilcore/mcp-proxy", "--server-id", "github", "--", "npx", "-y", "@modelcontextprotocol/server-github"}},
			command: "npx", args: []string{"-y", "@modelcontextprotocol/server-github"}, id: "github"},
		{name: "seed proxy without --, versioned",
			e:       Entry{Command: "npx", Args: []string{"@sigilcore/mcp-proxy@1.0.0", "--server-id=x", "uvx", "mcp-server-time"}},
			command: "uvx", args: []string{"mcp-server-time"}, id: "x"},
		{name: "sigil-hub remote with auth",
			e:   Entry{Command: `C:\bin\sigil-hub.exe`, Args: []string{"--remote", "https://h/mcp"}, Env: map[string]string{"SIGIL_UPSTREAM_AUTH": "Bearer t"}},
			url: "https://h/mcp", headers: map[string]string{"Authorization": "Bearer t"}},
		{name: "hub entry", e: Entry{Command: "sigil-hub", Args: []string{"--config", "a.toml"}}, command: "sigil-hub", args: []string{"--config", "a.toml"}, skip: true},
		{name: "wrapper alone", e: Entry{Command: "npx", Args: []string{"@sigilcore/mcp-proxy", "--server-id", "x"}}, command: "npx",
			args: []string{"@sigilcore/mcp-proxy", "--server-id", "x"}, id: "x", skip: true},
		{name: "plain", e: Entry{Command: "npx", Args: []string{"-y", "pkg"}}, command: "npx", args: []string{"-y", "pkg"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := tc.e
			unwrap(&e)
			if e.Command != tc.command || !slices.Equal(e.Args, tc.args) || e.URL != tc.url || e.ServerID != tc.id || (e.Skip != "") != tc.skip {
				t.Errorf("got %q %q url=%q id=%q skip=%q", e.Command, e.Args, e.URL, e.ServerID, e.Skip)
			}
			for k, v := range tc.headers {
				if e.Headers[k] != v {
					t.Errorf("header %s not carried", k)
				}
			}
			if _, left := e.Env["SIGIL_UPSTREAM_AUTH"]; left {
				t.Error("SIGIL_UPSTREAM_AUTH left in env")
			}
		})
	}
}

func TestBuildSecretsAndNames(t *testing.T) {
	src := Source{Client: ClaudeDesktop, Path: "/c.json", Scope: "user"}
	src2 := Source{Client: Cursor, Path: "/d.json", Scope: "user"}
	entries := []Entry{
		{Source: src, Key: "gh", Command: "npx", Args: []string{"a"}, Env: map[string]string{"TOKEN": "s1", "LEVEL": "info", "SIGIL_API_KEY": "k1"}},
		{Source: src2, Key: "gh", Command: "npx", Args: []string{"a"}, Env: map[string]string{"TOKEN": "s1", "LEVEL": "info"}},
		{Source: src2, Key: "gh ", Command: "npx", Args: []string{"a"}, Env: map[string]string{"TOKEN": "s2"}},
		{Source: src2, Key: "api", URL: "https://h/mcp", Headers: map[string]string{"Authorization": "Bearer s3", "X-Key": "${env:XK}", "X-Mixed": "prefix-${env:XM}-s4"}},
		{Source: src, Key: "skipme", Skip: "test"},
	}
	r := Build(entries, BuildOptions{DeriveID: func(c string, a []string) string { return c + " " + strings.Join(a, " ") }})
	var names []string
	for _, s := range r.Servers {
		names = append(names, s.Name)
	}
	if want := []string{"gh", "gh-2", "api"}; !slices.Equal(names, want) {
		t.Fatalf("names = %v, want %v", names, want)
	}
	if len(r.Servers[0].From) != 2 {
		t.Errorf("identical gh entries not merged: %+v", r.Servers[0].From)
	}
	if !r.Servers[1].Disabled {
		t.Error("gh-2 repeats gh's serverId: want it disabled")
	}
	if got := r.Servers[1].Env; !slices.Equal(got, []KV{{"TOKEN", "$TOKEN_2"}}) && !slices.Equal(got, []KV{{"TOKEN", "$GH_TOKEN"}}) {
		t.Errorf("a different secret under the same name must get another variable: %v", got)
	}
	if got := r.Servers[0].Env; !slices.Equal(got, []KV{{"LEVEL", "info"}, {"TOKEN", "$TOKEN"}}) {
		t.Errorf("env = %v", got)
	}
	// Text around a reference beyond a scheme word may be a secret, and the
	// hub refuses it: the whole value becomes one variable.
	if got := r.Servers[2].Headers; !slices.Equal(got, []KV{{"Authorization", "Bearer $API_TOKEN"}, {"X-Key", "$XK"}, {"X-Mixed", "$API_X_MIXED"}}) {
		t.Errorf("headers = %v", got)
	}
	for _, s := range []string{"s1", "s2", "s3", "s4", "k1"} {
		if strings.Contains(string(r.TOML), `"`+s) || strings.Contains(strings.Join(r.Notes, "\n"), s+`"`) {
			t.Errorf("secret %s leaked", s)
		}
	}
	if k, ok := r.APIKeyIn("/c.json"); !ok || k != "k1" {
		t.Error("APIKeyIn")
	}
	if _, ok := r.APIKeyIn("/d.json"); ok {
		t.Error("APIKeyIn must be per file")
	}
	for _, v := range r.Vars {
		if v.Name == "API_TOKEN" {
			if val, ok := v.ValueIn("/d.json"); !ok || val != "s3" {
				t.Error("ValueIn for the header token")
			}
			if _, ok := v.ValueIn("/c.json"); ok {
				t.Error("ValueIn must be per file")
			}
		}
		if v.Name == "XK" {
			if val, _ := v.ValueIn("/d.json"); val != "${env:XK}" {
				t.Errorf("Cursor reference form = %q", val)
			}
		}
	}
	if !strings.Contains(strings.Join(r.Notes, "\n"), "not imported: test") {
		t.Errorf("skipped entry not reported: %q", r.Notes)
	}
}

func TestRewriteJSON(t *testing.T) {
	h := HubEntry{ConfigPath: "/h.toml", Env: []KV{{"A", "1"}}}
	in := "{\n\t\"x\": 1, // keep me\n\t\"mcpServers\": {\n\t\t\"a\": {\"command\": \"a\"},\n\t\t\"b\": {\"command\": \"b\"},\n\t\t\"sigil-hub\": {\"command\": \"old\"}\n\t}\n}\n"
	out, err := RewriteJSON([]byte(in), LayoutMCPServers, []string{"a"}, h)
	if err != nil {
		t.Fatal(err)
	}
	want := "{\n\t\"x\": 1, // keep me\n\t\"mcpServers\": {\n\t\t\"b\": {\"command\": \"b\"},\n\t\t\"sigil-hub\": {\n\t\t\t\"command\": \"sigil-hub\",\n\t\t\t\"args\": [\"--config\", \"/h.toml\"],\n\t\t\t\"env\": {\n\t\t\t\t\"A\": \"1\"\n\t\t\t}\n\t\t}\n\t}\n}\n"
	if string(out) != want {
		t.Errorf("RewriteJSON:\n%s\nwant:\n%s", out, want)
	}
	if _, err := RewriteJSON([]byte(`{"other": {}}`), LayoutMCPServers, []string{"a"}, h); err == nil {
		t.Error("no mcpServers: want an error")
	}
	if _, err := RewriteJSON([]byte(`{"mcpServers": {"a": {}`), LayoutMCPServers, []string{"a"}, h); err == nil {
		t.Error("malformed: want an error")
	}
}

func TestRewriteCodex(t *testing.T) {
	h := HubEntry{ConfigPath: "/h.toml"}
	in := "model = \"m\"\n\n[mcp_servers.a]\ncommand = \"a\"\n\n[mcp_servers.a.env]\nX = \"1\"\n\n[mcp_servers.\"b c\"]\ncommand = \"b\"\n\n[other]\nk = 1\n"
	out, err := RewriteCodex([]byte(in), []string{"a"}, h)
	if err != nil {
		t.Fatal(err)
	}
	want := "model = \"m\"\n\n[mcp_servers.\"b c\"]\ncommand = \"b\"\n\n[other]\nk = 1\n\n[mcp_servers.sigil-hub]\ncommand = \"sigil-hub\"\nargs = [\"--config\", \"/h.toml\"]\n"
	if string(out) != want {
		t.Errorf("RewriteCodex:\n%s\nwant:\n%s", out, want)
	}
	inline := "mcp_servers = { a = { command = \"a\" } }\n"
	if _, err := RewriteCodex([]byte(inline), []string{"a"}, h); err == nil || !strings.Contains(err.Error(), "by hand") {
		t.Errorf("inline server: err = %v", err)
	}
}

func TestApply(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "mcp.json")
	if err := os.WriteFile(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	if _, err := Apply(p, []byte("stale"), []byte("new"), now); err == nil {
		t.Error("a file that changed since it was read must not be replaced")
	}
	backup, err := Apply(p, []byte("old"), []byte("new"), now)
	if err != nil {
		t.Fatal(err)
	}
	if backup != p+".sigil-hub-backup-20260102T030405Z" {
		t.Errorf("backup = %s", backup)
	}
	for path, want := range map[string]string{p: "new", backup: "old"} {
		b, _ := os.ReadFile(path)
		st, _ := os.Stat(path)
		if string(b) != want || st.Mode().Perm() != 0o600 {
			t.Errorf("%s = %q mode %v, want %q 0600", path, b, st.Mode().Perm(), want)
		}
	}
	if _, err := Apply(p, []byte("new"), []byte("newer"), now); err == nil {
		t.Error("an existing backup must not be overwritten")
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 2 {
		t.Errorf("temporary files left behind: %v", entries)
	}
}

func TestReadErrors(t *testing.T) {
	for _, tc := range []struct {
		name, data string
		layout     Layout
		want       string
	}{
		{"syntax", "{\n  \"mcpServers\": {\"a\" 1}\n}", LayoutMCPServers, "line 2"},
		{"not an object", `[1]`, LayoutMCPServers, "JSON object"},
		{"servers not an object", `{"mcpServers": []}`, LayoutMCPServers, `"mcpServers" must be a JSON object`},
		{"entry not an object", `{"mcpServers": {"a": 1}}`, LayoutMCPServers, `mcpServers."a" must be a JSON object`},
		{"args type", `{"mcpServers": {"a": {"command": "x", "args": [{}]}}}`, LayoutMCPServers, "args[0] must be a string"},
		{"env type hides the value", `{"mcpServers": {"a": {"command": "x", "env": {"K": ["sekrit"]}}}}`, LayoutMCPServers, "env.K must be a string"},
		{"toml", "[mcp_servers.a]\nenv = { K = sekrit }\n", LayoutCodex, "line 2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Read(Source{Layout: tc.layout, Path: "/f"}, []byte(tc.data))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
			if strings.Contains(err.Error(), "sekrit") {
				t.Errorf("error shows a value: %v", err)
			}
		})
	}
	es, err := Read(Source{Layout: LayoutMCPServers}, []byte(""))
	if err != nil || len(es) != 0 {
		t.Errorf("empty file: %v %v", es, err)
	}
}
