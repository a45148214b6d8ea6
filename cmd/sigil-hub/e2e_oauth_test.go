package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/sigilcore/sigil-hub/config"
	"github.com/sigilcore/sigil-hub/internal/oauthtest"
	"github.com/sigilcore/sigil-hub/internal/signtest"
	"github.com/sigilcore/sigil-hub/internal/testupstream"
)

// oauthUpstream starts an in-process fake MCP server behind the OAuth
// double (or behind a recording proxy when open).
func oauthUpstream(t *testing.T, name string, open bool) *oauthtest.Server {
	t.Helper()
	hs, err := testupstream.StartHTTP(testupstream.Config{Name: name}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hs.Close() })
	as, err := oauthtest.Start(oauthtest.Options{Upstream: hs.URL, Open: open})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = as.Close() })
	return as
}

var authURLRe = regexp.MustCompile(`url="?(http://127\.0\.0\.1:\d+/authorize\?[^"\s]+)`)

// TestOAuthRemoteUpstream: the first start needs a browser authorization
// (the test plays the browser); then tools are listed and callable, the
// token file is 0600, a restart uses the stored token without a new flow, a
// revoked token is refreshed, and no token ever reaches stderr, the audit
// log or another upstream.
func TestOAuthRemoteUpstream(t *testing.T) {
	sign := signtest.New(t, signtest.Options{APIKey: testKey})
	secure := oauthUpstream(t, "secure", false)
	other := oauthUpstream(t, "other", true)
	home := t.TempDir()
	auditPath := filepath.Join(t.TempDir(), "audit.jsonl")
	cfg := writeConfig(t, fmt.Sprintf(`
audit = %q
[servers.secure]
url = %q
server_id = "secure"
oauth = true

[servers.other]
url = %q
server_id = "other"
`, auditPath, secure.URL, other.URL))
	env := append(signEnv(sign), "XDG_CONFIG_HOME="+home, "HOME="+home)

	h := startHub(t, env, "--config", cfg, "--port", "0")
	var authURL string
	eventually(t, "the authorization URL in the log", func() bool {
		if m := authURLRe.FindStringSubmatch(h.stderr.String()); m != nil {
			authURL = m[1]
			return true
		}
		return false
	})
	resp, err := http.Get(authURL) // the browser: authorize, then the hub's callback
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "authorization complete") {
		t.Fatalf("callback answered %d %q", resp.StatusCode, body)
	}
	eventually(t, "secure's tools", func() bool { return slices.Contains(h.toolNames(), "secure__echo") })
	if got := resultText(t, h.call("secure__echo", `{"a":1}`)); got != `{"a":1}` {
		t.Fatalf("secure__echo = %q", got)
	}
	if got := resultText(t, h.call("other__echo", `{"b":2}`)); got != `{"b":2}` {
		t.Fatalf("other__echo = %q", got)
	}

	tokenFile := filepath.Join(home, "sigil-hub", "oauth", "secure.json")
	fi, err := os.Stat(tokenFile)
	if err != nil {
		t.Fatalf("token file: %v", err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm() != 0o600 {
		t.Errorf("token file mode %v, want 0600", fi.Mode().Perm())
	}

	// A restart uses the stored token: no new authorization.
	h.c.Close()
	h2 := startHub(t, env, "--config", cfg, "--port", "0")
	eventually(t, "secure's tools after restart", func() bool { return slices.Contains(h2.toolNames(), "secure__echo") })
	if got := resultText(t, h2.call("secure__echo", `{"c":3}`)); got != `{"c":3}` {
		t.Fatalf("secure__echo after restart = %q", got)
	}
	if s := secure.Stats(); s.Authorizations != 1 || s.CodeGrants != 1 {
		t.Errorf("after restart: %+v, want exactly one authorization", s)
	}

	// The server revokes the access token: the hub refreshes it.
	secure.Expire()
	if got := resultText(t, h2.call("secure__echo", `{"d":4}`)); got != `{"d":4}` {
		t.Fatalf("secure__echo after revocation = %q", got)
	}
	if s := secure.Stats(); s.RefreshGrants < 1 || s.CodeGrants != 1 {
		t.Errorf("after revocation: %+v, want a refresh and no new authorization", s)
	}

	// Canary: no token in either hub's stderr, in the audit log, or in any
	// request the other upstream got.
	auditLog, _ := os.ReadFile(auditPath)
	for _, tok := range secure.Issued() {
		for what, s := range map[string]string{"stderr": h.stderr.String(), "restarted stderr": h2.stderr.String(), "audit log": string(auditLog)} {
			if strings.Contains(s, tok) {
				t.Errorf("token %s… appears in the %s", tok[:6], what)
			}
		}
	}
	for _, a := range other.SeenAuthorization() {
		if a != "" {
			t.Errorf("the other upstream got Authorization %q", a)
		}
	}
	if len(auditLog) == 0 {
		t.Error("the audit log is empty; the canary checked nothing")
	}
	h2.c.Close()

	// check and tools use the stored token; oauth list says what is stored
	// and logout forgets it, after which check reports the server needs an
	// authorization (without starting one).
	tokens := secure.Issued()
	noToken := func(what, s string) {
		t.Helper()
		for _, tok := range tokens {
			if strings.Contains(s, tok) {
				t.Errorf("token %s… in the output of %s", tok[:6], what)
			}
		}
	}
	out, errOut, err := runCLI(t, env, "check", "--config", cfg, "--json")
	noToken("check", out+errOut)
	var rep checkReport
	if jerr := json.Unmarshal([]byte(out), &rep); jerr != nil || len(rep.Upstreams) != 2 || rep.Upstreams[0].State != "ready" {
		t.Fatalf("check with a stored token: %v %v\n%s\n%s", err, jerr, out, errOut)
	}
	out, errOut, err = runCLI(t, env, "oauth", "list", "--config", cfg)
	noToken("oauth list", out+errOut)
	if err != nil || !strings.Contains(out, "authorized (refreshable)") || !strings.Contains(out, tokenFile) || strings.Contains(out, "other") {
		t.Fatalf("oauth list: %v\n%s%s", err, out, errOut)
	}
	out, errOut, err = runCLI(t, env, "oauth", "logout", "--config", cfg, "secure")
	if err != nil || !strings.Contains(out, "tokens removed") {
		t.Fatalf("oauth logout: %v\n%s%s", err, out, errOut)
	}
	if _, err := os.Stat(tokenFile); !os.IsNotExist(err) {
		t.Fatalf("token file after logout: %v", err)
	}
	if out, _, _ = runCLI(t, env, "oauth", "list", "--config", cfg); !strings.Contains(out, "not authorized") {
		t.Fatalf("oauth list after logout:\n%s", out)
	}
	if _, _, err := runCLI(t, env, "oauth", "logout", "--config", cfg, "other"); err == nil || !strings.Contains(err.Error(), `no server "other" with oauth`) {
		t.Fatalf("logout of a server without oauth: %v", err)
	}
	out, errOut, _ = runCLI(t, env, "check", "--config", cfg, "--json")
	if jerr := json.Unmarshal([]byte(out), &rep); jerr != nil || rep.OK || rep.Upstreams[0].State == "ready" ||
		!strings.Contains(rep.Upstreams[0].Error, "no usable token is stored") {
		t.Fatalf("check without a token: %v\n%s\n%s", jerr, out, errOut)
	}
	if s := secure.Stats(); s.CodeGrants != 1 {
		t.Errorf("check started an authorization: %+v", s)
	}
}

// TestOAuthClientSecretRedacted: a pre-registered client's secret is one of
// the values the log writer redacts.
func TestOAuthClientSecretRedacted(t *testing.T) {
	cfg := config.Config{Servers: []config.Server{{Name: "a", URL: "https://a.example/mcp",
		OAuth: &config.ServerOAuth{ClientID: "c", ClientSecret: "cs_CANARY_client_secret"}}}}
	if !slices.Contains(secretsOf("", nil, cfg), "cs_CANARY_client_secret") {
		t.Error("the OAuth client secret is not redacted")
	}
}
