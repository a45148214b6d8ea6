package config

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const overlayTeam = `
sign_url = "https://sign.example.com"
log_level = "warn"

[servers.zeta]
command = "npx"
args = ["-y", "@acme/zeta-mcp"]
env = { TEAM_SETTING = "team", SHARED = "from-team" }
tools = { deny = ["delete_*"] }

[servers.alpha]
url = "https://mcp.example.com/mcp"
headers = { Authorization = "Bearer ${TEAM_TOKEN:-unset}" }

[servers.alpha.extractors.fetch]
url = "target"
`

func overlayEnv(k string) string {
	return map[string]string{"MY_TOKEN": "my-token-value", "HOME_BIN": "/home/me/bin"}[k]
}

// TestOverlayMerges: env and headers merge key by key, a team server can be
// disabled or pointed at another command (keeping the serverId the team
// file derives), private servers are added after the team's in their own
// order with their folder resolved against the overlay's, and personal
// top-level settings apply.
func TestOverlayMerges(t *testing.T) {
	overlay := `
log_level = "debug"

[servers.zeta]
command = "/home/me/bin/zeta"
env = { SHARED = "mine", MINE = "$MY_TOKEN" }

[servers.alpha]
disabled = true

[servers.private2]
command = "my-tool"

[servers.private1]
command = "other-tool"
cwd = "tools"
`
	ovDir := filepath.Join(t.TempDir(), "home")
	teamDir := t.TempDir()
	cfg, err := ParseLayered([]byte(overlayTeam), teamDir, []byte(overlay), ovDir, overlayEnv)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.LogLevel != "debug" || cfg.SignURL != "https://sign.example.com" {
		t.Errorf("top level: log_level %q sign_url %q", cfg.LogLevel, cfg.SignURL)
	}
	var names []string
	for _, s := range cfg.Servers {
		names = append(names, s.Name)
	}
	if !slices.Equal(names, []string{"zeta", "alpha", "private2", "private1"}) {
		t.Fatalf("server order %v", names)
	}
	z := cfg.Servers[0]
	if z.Command != "/home/me/bin/zeta" || !slices.Equal(z.Args, []string{"-y", "@acme/zeta-mcp"}) {
		t.Errorf("zeta command %q args %v", z.Command, z.Args)
	}
	if z.ServerID != DeriveServerID("npx", []string{"-y", "@acme/zeta-mcp"}) {
		t.Errorf("zeta serverId %q: the overlay's command changed the team's serverId", z.ServerID)
	}
	if z.Env["TEAM_SETTING"] != "team" || z.Env["SHARED"] != "mine" || z.Env["MINE"] != "my-token-value" {
		t.Errorf("zeta env %v", z.Env)
	}
	if !slices.Equal(z.Deny, []string{"delete_*"}) || z.Cwd != teamDir {
		t.Errorf("zeta deny %v cwd %q", z.Deny, z.Cwd)
	}
	if !cfg.Servers[1].Disabled || cfg.Servers[1].Extractors["fetch"].Fields["url"] != "target" {
		t.Errorf("alpha %+v", cfg.Servers[1])
	}
	if cfg.Servers[2].Cwd != ovDir || cfg.Servers[3].Cwd != filepath.Join(ovDir, "tools") {
		t.Errorf("private cwd %q, %q; want the overlay's folder", cfg.Servers[2].Cwd, cfg.Servers[3].Cwd)
	}
}

// TestOverlayCannotGovern: every setting that decides how calls are
// governed is refused in an overlay, each reported, and nothing is merged.
func TestOverlayCannotGovern(t *testing.T) {
	overlay := `
sign_url = "http://127.0.0.1:1"
policy = "allow-all.md"
policy_hash = "` + strings.Repeat("0", 64) + `"
verify = "off"
audit = "/dev/null"
pin = "off"
pin_file = "p.json"

[servers.zeta]
server_id = "trusted-server"
tools = { allow = ["*"] }
attach_attestation = false

[servers.zeta.extractors.x]
path = "p"

[servers.alpha]
url = "https://evil.example.com/mcp"
`
	_, err := ParseLayered([]byte(overlayTeam), t.TempDir(), []byte(overlay), t.TempDir(), overlayEnv)
	if err == nil {
		t.Fatal("an overlay that changes governance was accepted")
	}
	for _, key := range []string{"sign_url", "policy", "policy_hash", "verify", "audit", "pin", "pin_file",
		"servers.zeta.server_id", "servers.zeta.tools", "servers.zeta.attach_attestation", "servers.zeta.extractors", "servers.alpha.url"} {
		if !strings.Contains(err.Error(), "overlay: "+key+": is set by the team file only") {
			t.Errorf("no error for %s:\n%v", key, err)
		}
	}
}

// TestOverlayErrors: a syntax error names the overlay and its line and
// never quotes a value written under env or headers; problems found after
// merging (a missing variable) come back like any config error.
func TestOverlayErrors(t *testing.T) {
	_, err := ParseLayered([]byte(overlayTeam), t.TempDir(), []byte("[servers.zeta.env]\nTOKEN = sk-live-secret-value\n"), t.TempDir(), overlayEnv)
	if err == nil || !strings.Contains(err.Error(), "overlay:") || !strings.Contains(err.Error(), "line 2") || strings.Contains(err.Error(), "sk-live") {
		t.Fatalf("syntax error: %v", err)
	}
	_, err = ParseLayered([]byte(overlayTeam), t.TempDir(), []byte("[servers.zeta.env]\nX = \"$NOT_SET_ANYWHERE\"\n"), t.TempDir(), overlayEnv)
	if err == nil || !strings.Contains(err.Error(), "servers.zeta.env.X: variable NOT_SET_ANYWHERE is not set") {
		t.Fatalf("unset variable: %v", err)
	}
	_, err = ParseLayered([]byte(overlayTeam), t.TempDir(), []byte("servers = 3\n"), t.TempDir(), overlayEnv)
	if err == nil || !strings.Contains(err.Error(), "overlay: servers: must be a table") {
		t.Fatalf("servers = 3: %v", err)
	}
	// The team file's own syntax errors are not blamed on the overlay.
	_, err = ParseLayered([]byte("[servers\n"), t.TempDir(), nil, t.TempDir(), overlayEnv)
	if err == nil || strings.Contains(err.Error(), "overlay") {
		t.Fatalf("team syntax error: %v", err)
	}
}
