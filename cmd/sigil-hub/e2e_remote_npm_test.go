package main

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sigilcore/sigil-hub/internal/signtest"
	"github.com/sigilcore/sigil-hub/internal/testupstream"
)

// TestRemoteSingleWrap: `sigil-hub --remote URL` wraps a Streamable HTTP
// server (and a legacy SSE one), names unchanged, the serverId derived from
// the full URL (docs/protocol.md#deriving-the-serverid), SIGIL_UPSTREAM_AUTH
// sent as its Authorization header.
func TestRemoteSingleWrap(t *testing.T) {
	log := newUpstreamLog(t)
	srv, err := testupstream.StartHTTP(testupstream.Config{Name: "remote", LogPath: string(log)}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	for _, tc := range []struct{ name, url string }{{"streamable", srv.URL}, {"sse", srv.SSEURL}} {
		t.Run(tc.name, func(t *testing.T) {
			sign := signtest.New(t, signtest.Options{APIKey: testKey})
			h := startHub(t, append(signEnv(sign), "SIGIL_UPSTREAM_AUTH=Bearer upstream-token-1"), "--remote", tc.url)
			if names := h.toolNames(); !slices.Contains(names, "echo") {
				t.Fatalf("tools = %v", names)
			}
			if got := resultText(t, h.call("echo", `{"via":"`+tc.name+`"}`)); got != `{"via":"`+tc.name+`"}` {
				t.Fatalf("echo = %s", got)
			}
			r := sign.Requests()[0]
			if r.ServerID != tc.url || r.Action != "mcp."+tc.url+".echo" {
				t.Fatalf("serverId %q action %q, want the full URL", r.ServerID, r.Action)
			}
			assertNoSecret(t, h)
		})
	}
}

// npmServer returns the entry point of an npm reference server installed by
// .ci/run (testdata/npm), or skips when absent outside CI.
func npmServer(t *testing.T, pkg, entry string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("..", "..", "testdata", "npm", "node_modules", "@modelcontextprotocol", pkg, entry))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("SIGIL_HUB_REQUIRE_NPM") == "1" {
			t.Fatalf("%s is not installed (run: cd testdata/npm && npm ci)", pkg)
		}
		t.Skipf("%s is not installed; run `cd testdata/npm && npm ci` to include this test", pkg)
	}
	return p
}

// TestNPMReferenceServers runs the official reference servers as real
// upstreams: server-everything wrapped in place, and server-filesystem plus
// server-everything behind one hub with a path extractor on write_file.
func TestNPMReferenceServers(t *testing.T) {
	t.Parallel()
	everything := npmServer(t, "server-everything", "dist/index.js")
	filesystem := npmServer(t, "server-filesystem", "dist/index.js")

	t.Run("single-wrap everything", func(t *testing.T) {
		sign := signtest.New(t, signtest.Options{APIKey: testKey})
		h := startHub(t, signEnv(sign), "--", "node", everything)
		names := h.toolNames()
		if !slices.Contains(names, "echo") || !slices.Contains(names, "get-sum") {
			t.Fatalf("tools = %v", names)
		}
		if got := resultText(t, h.call("echo", `{"message":"through the hub"}`)); !strings.Contains(got, "through the hub") {
			t.Fatalf("echo = %q", got)
		}
		// An interpreter's serverId is the script's package (here found by
		// its folder in node_modules), never "node": two node servers must
		// not share one policy identity.
		if r := sign.Requests()[0]; r.ServerID != "@modelcontextprotocol/server-everything" || r.Action != "mcp.@modelcontextprotocol/server-everything.echo" {
			t.Fatalf("serverId %q action %q, want the script's package", r.ServerID, r.Action)
		}
	})

	t.Run("hub with filesystem and everything", func(t *testing.T) {
		dir := t.TempDir()
		sign := signtest.New(t, signtest.Options{APIKey: testKey, Decide: func(r signtest.Request) signtest.Reply {
			if r.Action == "file_write" && strings.HasSuffix(r.Intent["path"].(string), ".env") {
				return signtest.Deny("SIGIL_POLICY_VIOLATION_CUSTOM_RULE", "no .env files")
			}
			return signtest.Approve()
		}})
		cfg := `
[servers.fs]
command = "node"
args = [` + quoteTOML(filesystem) + `, ` + quoteTOML(dir) + `]
server_id = "@modelcontextprotocol/server-filesystem"

[servers.fs.extractors.write_file]
path = "path"

[servers.everything]
command = "node"
args = [` + quoteTOML(everything) + `]
`
		h := startHub(t, signEnv(sign), "--config", writeConfig(t, cfg))
		names := h.toolNames()
		for _, want := range []string{"fs__write_file", "fs__read_text_file", "everything__echo"} {
			if !slices.Contains(names, want) {
				t.Fatalf("tools = %v, missing %s", names, want)
			}
		}
		ok := filepath.Join(dir, "notes.txt")
		resultText(t, h.call("fs__write_file", `{"path":`+quoteJSON(ok)+`,"content":"hello"}`))
		if b, err := os.ReadFile(ok); err != nil || string(b) != "hello" {
			t.Fatalf("file not written: %q %v", b, err)
		}
		bad := filepath.Join(dir, ".env")
		wantError(t, h.call("fs__write_file", `{"path":`+quoteJSON(bad)+`,"content":"SECRET=1"}`), -32001, "SIGIL_POLICY_VIOLATION_CUSTOM_RULE")
		if _, err := os.Stat(bad); err == nil {
			t.Fatal("a denied write reached server-filesystem")
		}
		var actions []string
		for _, r := range sign.Requests() {
			actions = append(actions, r.ServerID+" "+r.Action)
		}
		want := "@modelcontextprotocol/server-filesystem file_write"
		if len(actions) != 2 || actions[0] != want || actions[1] != want {
			t.Fatalf("intents %v, want two %q", actions, want)
		}
		if got := resultText(t, h.call("everything__echo", `{"message":"x"}`)); !strings.Contains(got, "x") {
			t.Fatalf("echo = %q", got)
		}
	})
}

func quoteTOML(s string) string { return `"` + strings.ReplaceAll(s, `\`, `\\`) + `"` }
func quoteJSON(s string) string { return `"` + strings.ReplaceAll(s, `\`, `\\`) + `"` }
