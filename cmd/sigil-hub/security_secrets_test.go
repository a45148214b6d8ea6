package main

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/sigilcore/sigil-hub/internal/signtest"
)

// Issue 13 items 4, 5 and part of 8, against the real binary: the hub's own
// secrets stay the hub's, the Sign URL is checked the same way in every
// layer, a team file holds secrets only as references, and the bearer
// tokens of --listen are long and name their holder exactly.

// Client tokens of the --listen front, long enough to be accepted.
const (
	aliceToken = "alice-token-canary-0123456789abcdef-a1"
	bobToken   = "bob-token-canary-0123456789abcdef-b2"
)

// runHubBriefly runs the binary with args and env and its stdin at EOF (a hub
// that starts serves nothing and exits), and returns its combined output and
// error. A hub still running after 20 s (one serving --listen) is killed and
// reported as errStillRunning.
func runHubBriefly(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, hubBin, args...)
	cmd.Env = baseEnv(env...)
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		return string(out), errStillRunning
	}
	return string(out), err
}

var errStillRunning = errors.New("the hub was still running (it accepted the setting)")

// wantRefused checks that the hub refused to start with every one of want
// in its output, none of secrets, and no panic.
func wantRefused(t *testing.T, out string, err error, want []string, secrets ...string) {
	t.Helper()
	if err == nil || errors.Is(err, errStillRunning) {
		t.Fatalf("the hub was not refused (%v); output:\n%s", err, out)
	}
	if strings.Contains(out, "panic") || strings.Contains(out, "goroutine ") {
		t.Fatalf("the hub panicked:\n%s", out)
	}
	for _, w := range want {
		if !strings.Contains(out, w) {
			t.Errorf("the error does not say %q:\n%s", w, out)
		}
	}
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Errorf("the output shows a secret (%q):\n%s", s, out)
		}
	}
}

// TestWrappedServerNeverGetsHubSecrets: a server wrapped with `--` gets the
// environment of its client entry, but never the hub's client tokens
// (SIGIL_HUB_TOKEN_*, in any case), its upstream authorization or its API
// key. Over --listen, bob would otherwise read alice's token through the
// wrapped server's env tool.
func TestWrappedServerNeverGetsHubSecrets(t *testing.T) {
	sign := signtest.New(t, signtest.Options{APIKey: testKey})
	const upstreamAuth = "Bearer upstream-auth-canary-5e1f"
	env := append(signEnv(sign), "SIGIL_HUB_TEST_UPSTREAM=1", "SERVER_OWN_SETTING=kept-1",
		"SIGIL_HUB_TOKEN_ALICE="+aliceToken, "SIGIL_HUB_TOKEN_BOB="+bobToken, "SIGIL_UPSTREAM_AUTH="+upstreamAuth,
		"sigil_hub_token_lower=lower-token-canary-0123456789abcdef")
	secrets := []string{aliceToken, bobToken, "upstream-auth-canary", "lower-token-canary", testKey, "SIGIL_HUB_TOKEN", "SIGIL_UPSTREAM_AUTH"}
	check := func(t *testing.T, got string) {
		t.Helper()
		for _, s := range secrets {
			if strings.Contains(strings.ToUpper(got), strings.ToUpper(s)) {
				t.Errorf("the wrapped server's environment holds %q:\n%s", s, got)
			}
		}
		if !strings.Contains(got, "SERVER_OWN_SETTING=kept-1") {
			t.Errorf("the wrapped server lost the environment of its client entry:\n%s", got)
		}
	}

	t.Run("stdio", func(t *testing.T) {
		h := startHub(t, env, "--server-id", "wrapped", "--", selfExe(t))
		check(t, resultText(t, h.call("env", `{}`)))
	})
	t.Run("listen", func(t *testing.T) {
		url, _ := startHTTPHub(t, env, "--server-id", "wrapped", "--", selfExe(t))
		c, _, _ := httpClient(t, url, map[string]string{"Authorization": "Bearer " + bobToken})
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		res, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "env", Arguments: map[string]any{}}})
		if err != nil || len(res.Content) == 0 {
			t.Fatalf("env over HTTP: %v", err)
		}
		check(t, res.Content[0].(mcp.TextContent).Text)
	})
}

// TestTeamFileCannotReferenceHubSecrets: a config file or an overlay may
// not hand a hub secret to a server, through env or headers; the error
// names the server, the key and the variable, never its value.
func TestTeamFileCannotReferenceHubSecrets(t *testing.T) {
	env := []string{"SIGIL_API_KEY=" + testKey, "SIGIL_HUB_TOKEN_ALICE=" + aliceToken, "SIGIL_UPSTREAM_AUTH=Bearer upstream-auth-canary-5e1f"}
	secrets := []string{testKey, aliceToken, "upstream-auth-canary"}
	for _, tc := range []struct {
		name, team, overlay string
		want                []string
	}{
		{"env references a client token", `
[servers.files]
command = "some-server"
env = { LEAK = "${SIGIL_HUB_TOKEN_ALICE}" }
`, "", []string{"servers.files.env.LEAK", "SIGIL_HUB_TOKEN_ALICE must not be passed to an upstream"}},
		{"header references the upstream auth", `
[servers.remote]
url = "https://mcp.example.com/mcp"
headers = { Authorization = "${SIGIL_UPSTREAM_AUTH}" }
`, "", []string{"servers.remote.headers.Authorization", "SIGIL_UPSTREAM_AUTH must not be passed to an upstream"}},
		{"env references the API key", `
[servers.files]
command = "some-server"
env = { K = "pre-$SIGIL_API_KEY" }
`, "", []string{"servers.files.env.K", "SIGIL_API_KEY must not be passed to an upstream"}},
		{"overlay env references a client token", `
[servers.files]
command = "some-server"
`, `
[servers.files]
env = { MINE = "$SIGIL_HUB_TOKEN_ALICE" }
`, []string{"servers.files.env.MINE", "SIGIL_HUB_TOKEN_ALICE must not be passed to an upstream"}},
		{"env variable named like a client token", `
[servers.files]
command = "some-server"
env = { SIGIL_HUB_TOKEN_X = "$HOME" }
`, "", []string{"servers.files.env.SIGIL_HUB_TOKEN_X", "hub's own secrets"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"--config", writeConfig(t, tc.team), "--overlay", "none"}
			if tc.overlay != "" {
				ov := filepath.Join(t.TempDir(), "local.toml")
				if err := os.WriteFile(ov, []byte(tc.overlay), 0o600); err != nil {
					t.Fatal(err)
				}
				args[3] = ov
			}
			out, err := runHubBriefly(t, env, args...)
			wantRefused(t, out, err, tc.want, secrets...)
			out, err = runHubBriefly(t, env, append([]string{"check", "--print"}, args...)...)
			wantRefused(t, out, err, tc.want, secrets...)
		})
	}
}

// TestSignURLCheckedInEveryLayer: --sign-url, SIGIL_SIGN_URL and sign_url
// are checked the one way (https, or http to loopback; no user
// information): a clear error at start, never a panic, and `check --print`
// never prints the password.
func TestSignURLCheckedInEveryLayer(t *testing.T) {
	const password = "pw-canary-31c9"
	cfg := writeConfig(t, "[servers.files]\ncommand = \"some-server\"\n")
	withUser := writeConfig(t, "sign_url = \"http://user:"+password+"@127.0.0.1:1\"\n[servers.files]\ncommand = \"some-server\"\n")
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want []string
	}{
		{"flag, plain http to a remote host", nil, []string{"--sign-url", "http://example.com", "--config", cfg},
			[]string{"--sign-url must use https"}},
		{"environment, plain http to a remote host", []string{"SIGIL_SIGN_URL=http://example.com"}, []string{"--config", cfg},
			[]string{"SIGIL_SIGN_URL must use https"}},
		{"flag with user information", nil, []string{"--sign-url", "http://user:" + password + "@127.0.0.1:1", "--config", cfg},
			[]string{"--sign-url must not contain user information"}},
		{"environment with user information", []string{"SIGIL_SIGN_URL=http://user:" + password + "@127.0.0.1:1"}, []string{"--config", cfg},
			[]string{"SIGIL_SIGN_URL must not contain user information"}},
		{"wrapped server, flag with user information", nil, []string{"--sign-url", "http://user:" + password + "@127.0.0.1:1", "--", "some-server"},
			[]string{"--sign-url must not contain user information"}},
		{"file with user information", nil, []string{"--config", withUser},
			[]string{"sign_url: must not contain user information"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := append([]string{"SIGIL_API_KEY=" + testKey}, tc.env...)
			out, err := runHubBriefly(t, env, append(tc.args, "--overlay", "none")...)
			wantRefused(t, out, err, tc.want, password)
			out, err = runHubBriefly(t, env, append([]string{"check", "--print", "--overlay", "none"}, tc.args...)...)
			wantRefused(t, out, err, tc.want, password)
		})
	}
}

// TestHeaderKeepsOnlyASchemePrefix: a literal glued to an empty-default
// reference (`Bearer sk_live_RAW${NOPE:-}`) is a literal header value: it
// is refused at load, naming the server and header, and `check --print`
// never prints it.
func TestHeaderKeepsOnlyASchemePrefix(t *testing.T) {
	const raw = "sk_live_RAW_canary_77c1"
	for _, value := range []string{"Bearer " + raw + "${NOPE:-}", raw + " ${TOKEN}", "${TOKEN}" + raw, "Bearer ${TOKEN:-" + raw + "}"} {
		cfg := writeConfig(t, "[servers.remote]\nurl = \"https://mcp.example.com/mcp\"\nheaders = { Authorization = \""+value+"\" }\n")
		env := []string{"SIGIL_API_KEY=" + testKey, "TOKEN=token-from-env-0123"}
		want := []string{"servers.remote.headers.Authorization"}
		out, err := runHubBriefly(t, env, "--config", cfg, "--overlay", "none")
		wantRefused(t, out, err, want, raw, "token-from-env-0123")
		out, err = runHubBriefly(t, env, "check", "--print", "--config", cfg, "--overlay", "none")
		wantRefused(t, out, err, want, raw, "token-from-env-0123")
	}
	// A scheme prefix and references stay accepted.
	cfg := writeConfig(t, "[servers.remote]\nurl = \"https://mcp.example.com/mcp\"\nheaders = { Authorization = \"Bearer ${TOKEN}\", X-Other = \"token ${TOKEN}${NOPE:-}\" }\n")
	out, err := runHubBriefly(t, []string{"TOKEN=token-from-env-0123"}, "check", "--print", "--config", cfg, "--overlay", "none")
	if err != nil || !strings.Contains(out, `Authorization = "Bearer ${TOKEN}"`) {
		t.Fatalf("a scheme prefix before a reference was refused: %v\n%s", err, out)
	}
}

// TestTeamFileRefusesLiteralSecretEnv: README says a team file holds
// secrets only as $ENV references; an env value written in the file that
// looks like a secret is refused, naming the key and the rule, never
// showing the value. Harmless literals stay accepted.
func TestTeamFileRefusesLiteralSecretEnv(t *testing.T) {
	const ghp = "ghp_canaryAbCdEfGhIjKlMnOpQrStUvWxYz012345"
	for _, tc := range []struct {
		name, team, overlay, key, value string
	}{
		{"credential format", "GH = %q", "", "servers.files.env.GH", ghp},
		{"secret-looking name", "API_KEY = %q", "", "servers.files.env.API_KEY", "hunter2-canary-pw"},
		{"literal glued to a reference", "SECRET_KEY = \"%s${NOPE:-}\"", "", "servers.files.env.SECRET_KEY", "abcd1234efgh5678canary"},
		{"in the overlay", "", "[servers.files]\nenv = { GITHUB_TOKEN = %q }\n", "servers.files.env.GITHUB_TOKEN", ghp},
	} {
		t.Run(tc.name, func(t *testing.T) {
			team := "[servers.files]\ncommand = \"some-server\"\n"
			if tc.team != "" {
				team += "[servers.files.env]\n" + strings.ReplaceAll(tc.team, "%q", `"`+tc.value+`"`) + "\n"
				team = strings.ReplaceAll(team, "%s", tc.value)
			}
			ovArg := "none"
			if tc.overlay != "" {
				ovArg = filepath.Join(t.TempDir(), "local.toml")
				if err := os.WriteFile(ovArg, []byte(strings.ReplaceAll(tc.overlay, "%q", `"`+tc.value+`"`)), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			args := []string{"--config", writeConfig(t, team), "--overlay", ovArg}
			want := []string{tc.key, "looks like a secret written in the file", "secrets only as references"}
			out, err := runHubBriefly(t, []string{"SIGIL_API_KEY=" + testKey}, args...)
			wantRefused(t, out, err, want, tc.value)
			out, err = runHubBriefly(t, nil, append([]string{"check", "--print"}, args...)...)
			wantRefused(t, out, err, want, tc.value)
		})
	}
	cfg := writeConfig(t, `
[servers.files]
command = "some-server"
env = { LOG_LEVEL = "debug", DB_PASSWORD = "", TOKEN_FILE = "/run/secrets/token", AUTH_URL = "https://login.example.com/oauth", GITHUB_TOKEN = "${GITHUB_TOKEN}" }
`)
	if out, err := runHubBriefly(t, []string{"GITHUB_TOKEN=x"}, "check", "--print", "--config", cfg, "--overlay", "none"); err != nil {
		t.Fatalf("harmless literals were refused: %v\n%s", err, out)
	}
}

// TestListenTokensLongAndNamedExactly: every SIGIL_HUB_TOKEN_<NAME> must
// have at least 32 characters, and two variables whose names differ only in
// case (which would share one client's sessions) are refused; the error
// names the variables, never a token.
func TestListenTokensLongAndNamedExactly(t *testing.T) {
	cfg := writeConfig(t, fakeServer(t, "files", newUpstreamLog(t), ""))
	for _, tc := range []struct {
		name   string
		tokens []string
		want   []string
	}{
		{"short token", []string{"SIGIL_HUB_TOKEN_ALICE=short-canary-tok", "SIGIL_HUB_TOKEN_BOB=" + bobToken},
			[]string{"SIGIL_HUB_TOKEN_ALICE is shorter than 32 characters"}},
		{"names differing only in case", []string{"SIGIL_HUB_TOKEN_ALICE=" + aliceToken, "SIGIL_HUB_TOKEN_alice=" + bobToken},
			[]string{"SIGIL_HUB_TOKEN_ALICE", "SIGIL_HUB_TOKEN_alice", "differ in more than case"}},
		{"one token under two names", []string{"SIGIL_HUB_TOKEN_ALICE=" + aliceToken, "SIGIL_HUB_TOKEN_BOB=" + aliceToken},
			[]string{"SIGIL_HUB_TOKEN_ALICE and SIGIL_HUB_TOKEN_BOB hold the same token"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := append([]string{"SIGIL_API_KEY=" + testKey}, tc.tokens...)
			out, err := runHubBriefly(t, env, "--listen", "127.0.0.1:0", "--config", cfg, "--overlay", "none")
			wantRefused(t, out, err, tc.want, "short-canary-tok", aliceToken, bobToken)
		})
	}
}
