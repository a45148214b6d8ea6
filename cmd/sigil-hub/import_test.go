package main

import (
	"bytes"
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/sigilcore/sigil-hub/config"
)

// Every secret in importer/testdata contains this marker.
const fixtureSecret = "FIXTURESECRET"

func fixture(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "importer", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// copyFixture copies a fixture to dir/rel and returns its path.
func copyFixture(t *testing.T, name, dir, rel string, mode os.FileMode) string {
	t.Helper()
	data, err := os.ReadFile(fixture(t, name))
	if err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, rel)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, mode); err != nil {
		t.Fatal(err)
	}
	return p
}

var testNow = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

type importRun struct {
	stdout, stderr string
	err            error
	toml           []byte
}

func runImportTest(t *testing.T, cwd, goos string, environ []string, args ...string) importRun {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := importMain(args, environ, importSys{goos: goos, now: testNow, cwd: cwd}, &stdout, &stderr)
	r := importRun{stdout: stdout.String(), stderr: stderr.String(), err: err}
	if b, rerr := os.ReadFile(filepath.Join(cwd, "sigil-hub.toml")); rerr == nil {
		r.toml = b
	}
	return r
}

// setVars returns a getenv that supplies every variable the import said to
// set (parsed from its stderr), and the list.
func setVars(stderr string) (func(string) string, []string) {
	var names []string
	in := false
	for _, ln := range strings.Split(stderr, "\n") {
		switch {
		case strings.HasPrefix(ln, "set these variables"):
			in = true
		case in && strings.HasPrefix(ln, "  ") && !strings.HasPrefix(ln, "      "):
			names = append(names, strings.TrimSpace(ln))
		case in && !strings.HasPrefix(ln, " "):
			in = false
		}
	}
	return func(k string) string {
		if slices.Contains(names, k) {
			return "value-of-" + k
		}
		return ""
	}, names
}

type wantServer struct {
	name, command, url, serverID string
	args                         []string
	disabled                     bool
	env, headers                 map[string]string // expanded with value-of-NAME
}

func TestImportFixturesRoundTrip(t *testing.T) {
	for _, tc := range []struct {
		name    string
		fixture string
		rel     string // where the file is put under the temp folder
		client  string
		want    []wantServer
		vars    []string
	}{
		{
			name: "claude desktop", fixture: "claude_desktop_config.json", rel: "claude_desktop_config.json",
			want: []wantServer{
				{name: "github", command: "npx", args: []string{"-y", "@modelcontextprotocol/server-github"}, serverID: "@modelcontextprotocol/server-github",
					env: map[string]string{"GITHUB_PERSONAL_ACCESS_TOKEN": "value-of-GITHUB_PERSONAL_ACCESS_TOKEN"}},
				{name: "filesystem", command: "npx", args: []string{"-y", "@modelcontextprotocol/server-filesystem", "/Users/alice/Documents", "/Users/alice/Desktop"}, serverID: "@modelcontextprotocol/server-filesystem"},
				{name: "Brave_Search", command: "npx", args: []string{"-y", "@modelcontextprotocol/server-brave-search"}, serverID: "@modelcontextprotocol/server-brave-search",
					env: map[string]string{"BRAVE_API_KEY": "value-of-BRAVE_API_KEY", "LOG_LEVEL": "debug", "MAX_RESULTS": "10"}},
				{name: "linear", url: "https://mcp.linear.app/mcp", serverID: "https://mcp.linear.app/mcp",
					headers: map[string]string{"Authorization": "Bearer value-of-LINEAR_TOKEN"}},
				{name: "github-governed", command: "npx", args: []string{"-y", "@modelcontextprotocol/server-github"}, serverID: "github-gov",
					env: map[string]string{"GITHUB_PERSONAL_ACCESS_TOKEN": "value-of-GITHUB_PERSONAL_ACCESS_TOKEN"}},
				{name: "puppeteer", command: "npx", args: []string{"-y", "@modelcontextprotocol/server-puppeteer"}, serverID: "@modelcontextprotocol/server-puppeteer", disabled: true},
			},
			vars: []string{"BRAVE_API_KEY", "GITHUB_PERSONAL_ACCESS_TOKEN", "LINEAR_TOKEN"},
		},
		{
			name: "cursor project", fixture: "project/.cursor/mcp.json", rel: "proj/.cursor/mcp.json",
			want: []wantServer{
				{name: "github", command: "npx", args: []string{"-y", "@modelcontextprotocol/server-github"}, serverID: "@modelcontextprotocol/server-github",
					env: map[string]string{"GITHUB_PERSONAL_ACCESS_TOKEN": "value-of-GITHUB_TOKEN"}},
				{name: "notion", url: "https://mcp.notion.com/mcp", serverID: "https://mcp.notion.com/mcp",
					headers: map[string]string{"Authorization": "Bearer value-of-NOTION_TOKEN"}},
				{name: "postgres", command: "npx", args: []string{"-y", "@modelcontextprotocol/server-postgres", "REDACTED"}, serverID: "@modelcontextprotocol/server-postgres", disabled: true},
				{name: "local-tool", command: "{ws}/bin/mcp-tool", args: []string{"--root", "{ws}"}, serverID: "mcp-tool",
					env: map[string]string{"DEBUG": "true"}},
			},
			vars: []string{"GITHUB_TOKEN", "NOTION_TOKEN"},
		},
		{
			name: "kimi", fixture: "kimi_mcp.json", rel: ".kimi/mcp.json",
			want: []wantServer{
				{name: "context7", url: "https://mcp.context7.com/mcp", serverID: "https://mcp.context7.com/mcp",
					headers: map[string]string{"CONTEXT7_API_KEY": "value-of-CONTEXT7_API_KEY"}},
				{name: "chrome-devtools", command: "npx", args: []string{"chrome-devtools-mcp@latest"}, serverID: "chrome-devtools-mcp"},
			},
			vars: []string{"CONTEXT7_API_KEY"},
		},
		{
			name: "vscode workspace (JSONC, inputs)", fixture: "project/.vscode/mcp.json", rel: "proj/.vscode/mcp.json",
			want: []wantServer{
				{name: "github", command: "docker", args: []string{"run", "-i", "--rm", "-e", "GITHUB_PERSONAL_ACCESS_TOKEN", "ghcr.io/github/github-mcp-server"},
					serverID: "ghcr.io/github/github-mcp-server", env: map[string]string{"GITHUB_PERSONAL_ACCESS_TOKEN": "value-of-GITHUB_PERSONAL_ACCESS_TOKEN"}},
				{name: "fetch", command: "uvx", args: []string{"mcp-server-fetch"}, serverID: "mcp-server-fetch"},
				{name: "sentry", url: "https://mcp.sentry.dev/sse", serverID: "https://mcp.sentry.dev/sse",
					headers: map[string]string{"X-Api-Key": "value-of-SENTRY_X_API_KEY"}},
			},
			vars: []string{"GITHUB_PERSONAL_ACCESS_TOKEN", "SENTRY_X_API_KEY"},
		},
		{
			name: "vscode settings.json", fixture: "vscode_settings.json", rel: "Code/User/settings.json",
			want: []wantServer{
				{name: "memory", command: "npx", args: []string{"-y", "@modelcontextprotocol/server-memory"}, serverID: "@modelcontextprotocol/server-memory",
					env: map[string]string{"MEMORY_FILE_PATH": "value-of-MEMORY_FILE_PATH"}},
				{name: "deepwiki", url: "https://mcp.deepwiki.com/mcp", serverID: "https://mcp.deepwiki.com/mcp"},
			},
			vars: []string{"MEMORY_FILE_PATH"},
		},
		{
			name: "codex", fixture: "codex_config.toml", rel: ".codex/config.toml",
			want: []wantServer{
				{name: "docs", command: "npx", args: []string{"-y", "mcp-docs-server"}, serverID: "mcp-docs-server",
					env: map[string]string{"DOCS_API_TOKEN": "value-of-DOCS_API_TOKEN", "DOCS_HOME": "value-of-DOCS_HOME", "DOCS_LOG": "info"}},
				{name: "figma", url: "https://mcp.figma.com/mcp", serverID: "https://mcp.figma.com/mcp",
					headers: map[string]string{"Authorization": "Bearer value-of-FIGMA_OAUTH_TOKEN", "X-Figma-Region": "value-of-FIGMA_X_FIGMA_REGION", "X-Team": "value-of-FIGMA_TEAM_ID"}},
				{name: "old", command: "uvx", args: []string{"mcp-server-time"}, serverID: "mcp-server-time", disabled: true},
			},
			vars: []string{"DOCS_API_TOKEN", "DOCS_HOME", "FIGMA_OAUTH_TOKEN", "FIGMA_TEAM_ID", "FIGMA_X_FIGMA_REGION"},
		},
		{
			name: "wrapped by sigil-hub and the seed proxy", fixture: "sigil_wrapped.json", rel: "wrapped/mcp.json",
			want: []wantServer{
				{name: "stripe", url: "https://mcp.stripe.com", serverID: "stripe",
					headers: map[string]string{"Authorization": "Bearer value-of-STRIPE_TOKEN"}},
				{name: "files", command: "npx", args: []string{"-y", "@modelcontextprotocol/server-filesystem", "/srv/data"}, serverID: "@modelcontextprotocol/server-filesystem"},
				{name: "seed-remote", url: "https://mcp.atlassian.com/v1/sse", serverID: "atlassian",
					headers: map[string]string{"Authorization": "value-of-ATLASSIAN_AUTH"}},
			},
			vars: []string{"ATLASSIAN_AUTH", "STRIPE_TOKEN"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			p := copyFixture(t, tc.fixture, dir, tc.rel, 0o600)
			r := runImportTest(t, dir, "linux", nil, p)
			if r.err != nil {
				t.Fatalf("import: %v\nstderr:\n%s", r.err, r.stderr)
			}
			for what, s := range map[string]string{"toml": string(r.toml), "stdout": r.stdout, "stderr": r.stderr} {
				if strings.Contains(s, fixtureSecret) {
					t.Errorf("a secret from the fixture appears in %s:\n%s", what, s)
				}
			}
			getenv, vars := setVars(r.stderr)
			if !slices.Equal(vars, tc.vars) {
				t.Errorf("variables to set = %v, want %v", vars, tc.vars)
			}
			cfg, err := config.Parse(bytes.NewReader(r.toml), dir, getenv)
			if err != nil {
				t.Fatalf("config.Parse: %v\n%s", err, r.toml)
			}
			if len(cfg.Servers) != len(tc.want) {
				t.Fatalf("got %d servers, want %d:\n%s", len(cfg.Servers), len(tc.want), r.toml)
			}
			ws := filepath.Join(dir, "proj")
			for i, w := range tc.want {
				g := cfg.Servers[i]
				w.command = strings.ReplaceAll(w.command, "{ws}", ws)
				for j := range w.args {
					w.args[j] = strings.ReplaceAll(w.args[j], "{ws}", ws)
				}
				if g.Name != w.name || g.Command != w.command || g.URL != w.url || g.ServerID != w.serverID || g.Disabled != w.disabled ||
					!slices.Equal(g.Args, w.args) {
					t.Errorf("server %d:\n got  %q %q %q %q id=%q disabled=%v\n want %q %q %q %q id=%q disabled=%v",
						i, g.Name, g.Command, g.Args, g.URL, g.ServerID, g.Disabled, w.name, w.command, w.args, w.url, w.serverID, w.disabled)
				}
				if !g.Disabled && !mapsEqual(g.Env, w.env) {
					t.Errorf("servers.%s env = %v, want %v", g.Name, g.Env, w.env)
				}
				if !g.Disabled && !mapsEqual(g.Headers, w.headers) {
					t.Errorf("servers.%s headers = %v, want %v", g.Name, g.Headers, w.headers)
				}
			}
			if !strings.Contains(r.stdout, `"--config"`) && !strings.Contains(r.stdout, `args = ["--config"`) {
				t.Errorf("the replacement entry was not printed:\n%s", r.stdout)
			}
		})
	}
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if bv, ok := b[k]; !ok || bv != v {
			return false
		}
	}
	return true
}

// A server found in two clients: identical definitions merge, different
// ones get a suffix (and a different serverId is needed: the later one is
// disabled). The API key is reported as env-only.
func TestImportMergeAndCollide(t *testing.T) {
	dir := t.TempDir()
	a := copyFixture(t, "claude_desktop_config.json", dir, "a/claude_desktop_config.json", 0o600)
	b := copyFixture(t, "claude_desktop_config.json", dir, "b/claude_desktop_config.json", 0o600)
	c := copyFixture(t, "project/.cursor/mcp.json", dir, "proj/.cursor/mcp.json", 0o600)
	r := runImportTest(t, dir, "linux", nil, a, b, c)
	if r.err != nil {
		t.Fatalf("import: %v\n%s", r.err, r.stderr)
	}
	getenv, _ := setVars(r.stderr)
	cfg, err := config.Parse(bytes.NewReader(r.toml), dir, getenv)
	if err != nil {
		t.Fatalf("config.Parse: %v\n%s", err, r.toml)
	}
	var names []string
	for _, s := range cfg.Servers {
		names = append(names, s.Name)
	}
	want := []string{"github", "filesystem", "Brave_Search", "linear", "github-governed", "puppeteer", "github-2", "notion", "postgres", "local-tool"}
	if !slices.Equal(names, want) {
		t.Errorf("servers = %v, want %v", names, want)
	}
	for _, frag := range []string{"merged", "imported as servers.github-2", "same serverId", "SIGIL_API_KEY", "environment only"} {
		if !strings.Contains(r.stderr, frag) {
			t.Errorf("stderr does not mention %q:\n%s", frag, r.stderr)
		}
	}
	if regexp.MustCompile(`(?m)^[^#]*SIGIL_`).Match(r.toml) {
		t.Errorf("a SIGIL_ setting reached the hub file:\n%s", r.toml)
	}
}

func TestImportWrite(t *testing.T) {
	dir := t.TempDir()
	home := filepath.Join(dir, "home")
	claude := copyFixture(t, "claude_desktop_config.json", home, ".config/Claude/claude_desktop_config.json", 0o600)
	codex := copyFixture(t, "codex_config.toml", home, ".codex/config.toml", 0o640)
	vscode := copyFixture(t, "vscode_settings.json", home, ".config/Code/User/settings.json", 0o644)
	origs := map[string][]byte{}
	for _, p := range []string{claude, codex, vscode} {
		origs[p], _ = os.ReadFile(p)
	}
	cwd := filepath.Join(dir, "work")
	if err := os.MkdirAll(cwd, 0o755); err != nil {
		t.Fatal(err)
	}
	r := runImportTest(t, cwd, "linux", []string{"HOME=" + home}, "--write")
	if r.err != nil {
		t.Fatalf("import --write: %v\n%s", r.err, r.stderr)
	}
	for what, s := range map[string]string{"toml": string(r.toml), "stdout": r.stdout, "stderr": r.stderr} {
		if strings.Contains(s, fixtureSecret) {
			t.Errorf("a secret appears in %s:\n%s", what, s)
		}
	}
	stamp := ".sigil-hub-backup-20260304T050607Z"
	cfgPath := filepath.Join(cwd, "sigil-hub.toml")
	for _, p := range []string{claude, codex, vscode} {
		backup, err := os.ReadFile(p + stamp)
		if err != nil {
			t.Fatalf("backup of %s: %v", p, err)
		}
		if !bytes.Equal(backup, origs[p]) {
			t.Errorf("backup of %s differs from the original", p)
		}
		st, _ := os.Stat(p)
		bst, _ := os.Stat(p + stamp)
		if st.Mode().Perm() != bst.Mode().Perm() {
			t.Errorf("%s: mode %v, backup mode %v", p, st.Mode().Perm(), bst.Mode().Perm())
		}
	}
	if st, _ := os.Stat(claude); st.Mode().Perm() != 0o600 {
		t.Errorf("claude file mode = %v, want 0600", st.Mode().Perm())
	}
	if st, _ := os.Stat(codex); st.Mode().Perm() != 0o640 {
		t.Errorf("codex file mode = %v, want 0640", st.Mode().Perm())
	}

	// Claude: other keys kept, only the hub entry left, the same file's
	// secrets carried into it.
	var cl struct {
		GlobalShortcut string `json:"globalShortcut"`
		MCPServers     map[string]struct {
			Command string            `json:"command"`
			Args    []string          `json:"args"`
			Env     map[string]string `json:"env"`
		} `json:"mcpServers"`
	}
	data, _ := os.ReadFile(claude)
	if err := json.Unmarshal(data, &cl); err != nil {
		t.Fatalf("rewritten claude file: %v\n%s", err, data)
	}
	if cl.GlobalShortcut != "Ctrl+Space" {
		t.Errorf("globalShortcut lost: %s", data)
	}
	hubEntry, ok := cl.MCPServers["sigil-hub"]
	if len(cl.MCPServers) != 1 || !ok {
		t.Fatalf("mcpServers = %v, want only sigil-hub", cl.MCPServers)
	}
	if hubEntry.Command != "sigil-hub" || !slices.Equal(hubEntry.Args, []string{"--config", cfgPath}) {
		t.Errorf("hub entry = %+v", hubEntry)
	}
	for k, v := range map[string]string{
		"SIGIL_API_KEY":                "sk_sigil_FIXTURESECRET_apikey",
		"GITHUB_PERSONAL_ACCESS_TOKEN": "ghp_FIXTURESECRET_claude_github",
		"LINEAR_TOKEN":                 "lin_api_FIXTURESECRET_linear",
		"BRAVE_API_KEY":                "BSA_FIXTURESECRET_brave",
	} {
		if hubEntry.Env[k] != v {
			t.Errorf("hub entry env %s: not carried over from the same file", k)
		}
	}
	if _, leaked := hubEntry.Env["DOCS_API_TOKEN"]; leaked {
		t.Errorf("a secret from the Codex file was written into the Claude file")
	}

	// VS Code settings: the comment and other settings survive.
	data, _ = os.ReadFile(vscode)
	for _, frag := range []string{"// Editor settings the import must keep.", `"editor.fontSize": 14`, `"workbench.colorTheme"`, `"sigil-hub"`} {
		if !bytes.Contains(data, []byte(frag)) {
			t.Errorf("settings.json lost %q:\n%s", frag, data)
		}
	}
	if bytes.Contains(data, []byte("server-memory")) {
		t.Errorf("settings.json still has the imported server:\n%s", data)
	}

	// Codex: other keys and tables kept, imported tables gone.
	var cx map[string]any
	data, _ = os.ReadFile(codex)
	if _, err := toml.Decode(string(data), &cx); err != nil {
		t.Fatalf("rewritten codex file: %v\n%s", err, data)
	}
	if cx["model"] != "gpt-5-codex" || cx["profiles"] == nil {
		t.Errorf("codex file lost its other settings:\n%s", data)
	}
	servers, _ := cx["mcp_servers"].(map[string]any)
	if len(servers) != 1 || servers["sigil-hub"] == nil {
		t.Errorf("codex mcp_servers = %v, want only sigil-hub", servers)
	}
	if !bytes.Contains(data, []byte("# Codex CLI configuration.")) {
		t.Errorf("codex file lost its comment:\n%s", data)
	}

	// The hub file loads with the variables set.
	getenv, _ := setVars(r.stderr)
	if _, err := config.Parse(bytes.NewReader(r.toml), cwd, getenv); err != nil {
		t.Fatalf("config.Parse: %v", err)
	}

	// Running again refuses to overwrite the hub file.
	r2 := runImportTest(t, cwd, "linux", []string{"HOME=" + home})
	if r2.err == nil || !strings.Contains(r2.err.Error(), "already exists") {
		t.Errorf("second import: err = %v, want 'already exists'", r2.err)
	}
}

func TestImportDiscoveryPerOS(t *testing.T) {
	for _, tc := range []struct {
		goos    string
		env     func(home string) []string
		claude  string // relative to home
		cursor  string
		codex   string
		wantErr bool
	}{
		{goos: "linux", env: func(h string) []string { return []string{"HOME=" + h} },
			claude: ".config/Claude/claude_desktop_config.json", cursor: ".cursor/mcp.json", codex: ".codex/config.toml"},
		{goos: "linux", env: func(h string) []string { return []string{"HOME=" + h, "XDG_CONFIG_HOME=" + filepath.Join(h, "xdg")} },
			claude: "xdg/Claude/claude_desktop_config.json", cursor: ".cursor/mcp.json", codex: ".codex/config.toml"},
		{goos: "darwin", env: func(h string) []string { return []string{"HOME=" + h} },
			claude: "Library/Application Support/Claude/claude_desktop_config.json", cursor: ".cursor/mcp.json", codex: ".codex/config.toml"},
		{goos: "linux", env: func(h string) []string { return []string{"HOME=" + h, "CODEX_HOME=" + filepath.Join(h, "cx")} },
			claude: ".config/Claude/claude_desktop_config.json", cursor: ".cursor/mcp.json", codex: "cx/config.toml"},
	} {
		t.Run(tc.goos+"/"+tc.claude, func(t *testing.T) {
			home := t.TempDir()
			copyFixture(t, "claude_desktop_config.json", home, tc.claude, 0o600)
			copyFixture(t, "kimi_mcp.json", home, tc.cursor, 0o600)
			copyFixture(t, "codex_config.toml", home, tc.codex, 0o600)
			cwd := t.TempDir()
			r := runImportTest(t, cwd, tc.goos, tc.env(home))
			if r.err != nil {
				t.Fatalf("import: %v\n%s", r.err, r.stderr)
			}
			for _, want := range []string{filepath.Join(home, tc.claude), filepath.Join(home, tc.cursor), filepath.Join(home, tc.codex)} {
				if !strings.Contains(string(r.toml), want) {
					t.Errorf("the hub file does not name %s as a source:\n%s", want, r.toml)
				}
			}
			// --client limits the search.
			r = runImportTest(t, t.TempDir(), tc.goos, tc.env(home), "--client", "codex", "--out", "-")
			if r.err != nil || strings.Contains(r.stdout, "[servers.github]") || !strings.Contains(r.stdout, "[servers.docs]") {
				t.Errorf("--client codex: err=%v\n%s", r.err, r.stdout)
			}
		})
	}
}

func TestImportErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name string
		args []string
		want *regexp.Regexp
	}{
		{"malformed json", []string{fixture(t, "malformed.json")}, regexp.MustCompile(`malformed\.json.*invalid JSON at line 5`)},
		{"malformed toml", []string{fixture(t, "malformed.toml")}, regexp.MustCompile(`malformed\.toml.*invalid TOML at line 2`)},
		{"missing file", []string{filepath.Join(dir, "nope.json")}, regexp.MustCompile(`nope\.json`)},
		{"nothing found", []string{"--client", "kimi"}, regexp.MustCompile(`no client configuration found`)},
		{"bad client", []string{"--client", "emacs"}, regexp.MustCompile(`unknown client "emacs"`)},
		{"write to stdout", []string{"--write", "--out", "-"}, regexp.MustCompile(`--write needs the hub file on disk`)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := runImportTest(t, dir, "linux", []string{"HOME=" + dir}, tc.args...)
			if r.err == nil || !tc.want.MatchString(r.err.Error()) {
				t.Errorf("err = %v, want %v", r.err, tc.want)
			}
			if r.err != nil && strings.Contains(r.err.Error(), fixtureSecret) {
				t.Errorf("the error shows a secret: %v", r.err)
			}
		})
	}
}

func TestInitSubcommand(t *testing.T) {
	dir := t.TempDir()
	t.Chdir(dir)
	if err := runMain(t.Context(), []string{"init"}, nil, nil, io.Discard, io.Discard); err != nil {
		t.Fatalf("sigil-hub init: %v", err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "sigil-hub.toml"))
	if err != nil || string(data) != config.Starter() {
		t.Errorf("sigil-hub init did not write the starter file (err %v)", err)
	}
}
