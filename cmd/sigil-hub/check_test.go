package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sigilcore/sigil-hub/authz/policy"
	"github.com/sigilcore/sigil-hub/internal/signtest"
)

// signCheckDouble is a loopback Sign double for `check`: /healthz answers
// health (200 {"status":"ok"} when 0) and POST /v1/authorize/test-run
// answers testRun (its status, after checking the bearer key).
type signCheckDouble struct {
	URL    string
	mu     sync.Mutex
	bodies []string // test-run bodies received
}

func newSignCheckDouble(t *testing.T, health int, key string, testRun int) *signCheckDouble {
	t.Helper()
	d := &signCheckDouble{}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		if health != 0 {
			w.WriteHeader(health)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{"status":"ok"}`))
	})
	mux.HandleFunc("POST /v1/authorize/test-run", func(w http.ResponseWriter, r *http.Request) {
		var b bytes.Buffer
		b.ReadFrom(r.Body)
		d.mu.Lock()
		d.bodies = append(d.bodies, b.String())
		d.mu.Unlock()
		if r.Header.Get("Authorization") != "Bearer "+key {
			w.WriteHeader(http.StatusUnauthorized)
			w.Write([]byte(`{"status":"ERROR","error_code":"SIGIL_AUTH_INVALID_KEY"}`))
			return
		}
		w.WriteHeader(testRun)
		switch testRun {
		case http.StatusOK:
			w.Write([]byte(`{"status":"DENIED","error_code":"LEX_TOOL_CALL_NOT_ALLOWED","test_run":true}`))
		case http.StatusConflict:
			w.Write([]byte(`{"status":"ERROR","error_code":"SIGIL_NO_POLICY"}`))
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	d.URL = srv.URL
	return d
}

// runCLI runs the command in process and returns stdout, stderr and the error.
func runCLI(t *testing.T, env []string, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	err := runMain(t.Context(), args, baseEnv(env...), nil, &out, &errb)
	return out.String(), errb.String(), err
}

// failingServer is a [servers.NAME] table whose upstream prints msg to
// stderr and exits at once.
func failingServer(t *testing.T, name, msg string) string {
	return fmt.Sprintf(`
[servers.%s]
command = %q
server_id = %q
env = { SIGIL_HUB_TEST_UPSTREAM = "1", TESTUPSTREAM_FAIL_START = %q }
`, name, selfExe(t), name, msg)
}

func TestCheck(t *testing.T) {
	t.Parallel()
	const key = "sk_check_key_canary_93f1"
	dir := t.TempDir()
	pol := filepath.Join(dir, "warranty.md")
	polSrc := "version: 2.0.0\n\n## mcp\n\nallowed_tools: alpha.*\n"
	if err := os.WriteFile(pol, []byte(polSrc), 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse([]byte(polSrc), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	good := newSignCheckDouble(t, 0, key, http.StatusOK)
	down := newSignCheckDouble(t, http.StatusServiceUnavailable, key, http.StatusOK)
	noPolicy := newSignCheckDouble(t, 0, key, http.StatusConflict)
	signer := signtest.New(t, signtest.Options{APIKey: key}) // no test-run endpoint: hold-lookup fallback

	alpha := fakeServer(t, "alpha", newUpstreamLog(t), "")
	for _, tc := range []struct {
		name    string
		cfg     string
		env     []string
		args    []string
		wantErr bool
		want    []string // substrings of stdout
		notWant []string
	}{
		{
			name: "all well", cfg: alpha, env: []string{"SIGIL_API_KEY=" + key}, args: []string{"--sign-url", good.URL},
			want: []string{"sign ok", `/healthz answered {"status":"ok"}`, "api key ok", "accepted: a dry-run authorization (test-run) answered HTTP 200 DENIED",
				"alpha alpha ready", "Not checked:"},
			notWant: []string{"failed:", "Warnings:"},
		},
		{
			name: "sign down", cfg: alpha, env: []string{"SIGIL_API_KEY=" + key}, args: []string{"--sign-url", down.URL}, wantErr: true,
			want: []string{"sign fail", "answered HTTP 503", "api key ok"},
		},
		{
			name: "sign unreachable", cfg: alpha, env: []string{"SIGIL_API_KEY=" + key}, args: []string{"--sign-url", signtest.ClosedURL(t)}, wantErr: true,
			want: []string{"sign fail", "unreachable"},
		},
		{
			name: "key rejected", cfg: alpha, env: []string{"SIGIL_API_KEY=wrong-key"}, args: []string{"--sign-url", good.URL}, wantErr: true,
			want: []string{"api key fail", "key from SIGIL_API_KEY rejected", "HTTP 401"},
		},
		{
			name: "key from flag rejected", cfg: alpha, args: []string{"--sign-url", good.URL, "--key", "wrong-key"}, wantErr: true,
			want: []string{"key from --key rejected"},
		},
		{
			name: "no policy deployed", cfg: alpha, env: []string{"SIGIL_API_KEY=" + key}, args: []string{"--sign-url", noPolicy.URL}, wantErr: true,
			want: []string{"no policy is deployed", "HTTP 409"},
		},
		{
			name: "no key", cfg: alpha, args: []string{"--sign-url", good.URL}, wantErr: true,
			want: []string{"no Sigil API key", "alpha alpha ready"},
		},
		{
			name: "local signer accepts key", cfg: alpha, env: []string{"SIGIL_API_KEY=" + key}, args: []string{"--sign-url", signer.URL},
			want: []string{"api key ok", "made-up hold answered HTTP 404"},
		},
		{
			name: "local signer rejects key", cfg: alpha, env: []string{"SIGIL_API_KEY=nope"}, args: []string{"--sign-url", signer.URL}, wantErr: true,
			want: []string{"api key fail", "hold lookup answered HTTP 401"},
		},
		{
			name: "local policy", cfg: alpha, args: []string{"--policy", pol},
			want:    []string{"policy ok", "policy hash " + p.Hash(), "version 2.0.0", "sign skip"},
			notWant: []string{"api key"},
		},
		{
			name: "upstream fails to start", cfg: alpha + failingServer(t, "broken", "check-stderr-canary: cannot open database"),
			args: []string{"--policy", pol}, wantErr: true,
			want: []string{"alpha alpha ready", "broken broken backoff", "broken failed:", "check-stderr-canary: cannot open database"},
		},
		{
			name: "warnings only", cfg: dottedServer(t),
			args: []string{"--policy", pol},
			want: []string{"Warnings:", "[server_id] dotted: acme.tools: contains '.'"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := writeConfig(t, tc.cfg)
			out, stderr, err := runCLI(t, tc.env, append([]string{"check", "--config", path}, tc.args...)...)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %v\nstdout:\n%s\nstderr:\n%s", err, tc.wantErr, out, stderr)
			}
			flat := squeeze(out)
			for _, w := range tc.want {
				if !strings.Contains(flat, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(flat, w) {
					t.Errorf("stdout has %q:\n%s", w, out)
				}
			}
			if strings.Contains(out+stderr+fmt.Sprint(err), key) {
				t.Errorf("the API key was printed")
			}
		})
	}
	// The probe is a well-formed authorize body with a harmless intent.
	good.mu.Lock()
	defer good.mu.Unlock()
	if len(good.bodies) == 0 || !strings.Contains(good.bodies[0], `"action":"mcp.sigil-hub-check.check"`) {
		t.Errorf("test-run bodies: %q", good.bodies)
	}
}

// squeeze collapses every run of blanks in each line of s to one space, so
// that table rows can be matched whatever the column widths.
func squeeze(s string) string {
	var b strings.Builder
	for line := range strings.SplitSeq(s, "\n") {
		b.WriteString(strings.Join(strings.Fields(line), " "))
		b.WriteByte('\n')
	}
	return b.String()
}

// dottedServer is a fake upstream whose serverId has a '.'.
func dottedServer(t *testing.T) string {
	return fmt.Sprintf(`
[servers.dotted]
command = %q
server_id = "acme.tools"
env = { SIGIL_HUB_TEST_UPSTREAM = "1" }
`, selfExe(t))
}

func TestCheckJSON(t *testing.T) {
	path := writeConfig(t, fakeServer(t, "alpha", newUpstreamLog(t), "")+failingServer(t, "broken", "json-stderr-canary"))
	dir := t.TempDir()
	pol := filepath.Join(dir, "warranty.md")
	if err := os.WriteFile(pol, []byte("version: 2.0.0\n\n## mcp\n\nallowed_tools: alpha.*\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	out, _, err := runCLI(t, nil, "check", "--config", path, "--policy", pol, "--json")
	if err == nil {
		t.Fatal("check succeeded with a failing upstream")
	}
	var rep struct {
		OK     bool `json:"ok"`
		Checks []struct {
			Name, Status, Detail string
		} `json:"checks"`
		Upstreams []struct {
			Name     string `json:"name"`
			ServerID string `json:"server_id"`
			State    string `json:"state"`
			Settled  bool   `json:"settled"`
			StartMS  *int64 `json:"start_ms"`
			Error    string `json:"error"`
			Tools    int    `json:"tools"`
			Prompts  int    `json:"prompts"`
		} `json:"upstreams"`
		Warnings   []json.RawMessage `json:"warnings"`
		NotChecked []string          `json:"not_checked"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("stdout is not the JSON report: %v\n%s", err, out)
	}
	if rep.OK || len(rep.Upstreams) != 2 || rep.Warnings == nil || len(rep.NotChecked) == 0 {
		t.Fatalf("report: %s", out)
	}
	a, b := rep.Upstreams[0], rep.Upstreams[1]
	if a.Name != "alpha" || a.State != "ready" || !a.Settled || a.StartMS == nil || a.Tools == 0 || a.Prompts != 1 || a.Error != "" {
		t.Errorf("alpha: %+v", a)
	}
	if b.Name != "broken" || b.State == "ready" || !strings.Contains(b.Error, "json-stderr-canary") {
		t.Errorf("broken: %+v", b)
	}
	if len(rep.Checks) < 2 || rep.Checks[0].Name != "config" || rep.Checks[1].Name != "policy" || rep.Checks[1].Status != "ok" {
		t.Errorf("checks: %+v", rep.Checks)
	}
}

// TestCheckPrintMasks: --print shows the effective config, and no secret
// (a variable's value, a literal env value, the API key, a URL's userinfo
// or query) is ever printed, in text or JSON.
func TestCheckPrintMasks(t *testing.T) {
	const (
		canaryVar    = "canary-var-value-5e1d"
		canaryLit    = "canary-literal-value-77aa"
		canaryKey    = "canary-api-key-0c4b"
		canaryHeader = "canary-header-value-a9e2"
		canaryURL    = "canary-url-secret-31f0"
		canaryWrap   = "canary-wrapped-env-6d2c"
		canaryAuth   = "canary-upstream-auth-8b8b"
	)
	cfg := fmt.Sprintf(`
sign_url = "http://127.0.0.1:9"
[servers.local]
command = "some-server"
args = ["--flag"]
server_id = "local"
env = { TOKEN = "$SECRET_VAR", PREFIXED = "x-${SECRET_VAR}", LITERAL = %q }
[servers.local.extractors.fetch]
url = "target"

[servers.remote]
url = "https://mcp.example.com/mcp?token=%s"
headers = { Authorization = "Bearer ${HEADER_TOKEN}" }
`, canaryLit, canaryURL)
	path := writeConfig(t, cfg)
	env := []string{"SECRET_VAR=" + canaryVar, "HEADER_TOKEN=" + canaryHeader, "SIGIL_API_KEY=" + canaryKey,
		"WRAPPED_SECRET=" + canaryWrap, "SIGIL_UPSTREAM_AUTH=" + canaryAuth}
	canaries := []string{canaryVar, canaryLit, canaryKey, canaryHeader, canaryURL, canaryWrap, canaryAuth}

	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"file", []string{"check", "--print", "--config", path}, []string{
			`env = { LITERAL = "***", PREFIXED = "x-${SECRET_VAR}", TOKEN = "${SECRET_VAR}" }`,
			`headers = { Authorization = "Bearer ${HEADER_TOKEN}" }`,
			`url = "https://mcp.example.com/mcp?***"`,
			"[servers.local.extractors.fetch]", `url = "target"`,
			"# Sigil API key: set (from SIGIL_API_KEY; never shown)",
			`sign_url = "http://127.0.0.1:9"`, "pending_timeout = 30000", `server_id = "local"`,
		}},
		{"file json", []string{"check", "--print", "--json", "--config", path}, []string{
			`"TOKEN": "${SECRET_VAR}"`, `"LITERAL": "***"`, `"Authorization": "Bearer ${HEADER_TOKEN}"`, `"api_key": "set (from SIGIL_API_KEY; never shown)"`,
		}},
		{"wrapped", []string{"check", "--print", "--", "some-server", "--stdio"}, []string{
			`WRAPPED_SECRET = "${WRAPPED_SECRET}"`, `args = ["--stdio"]`,
		}},
		{"remote", []string{"check", "--print", "--remote", "https://mcp.example.com/mcp?key=" + canaryURL}, []string{
			`headers = { Authorization = "${SIGIL_UPSTREAM_AUTH}" }`, `url = "https://mcp.example.com/mcp?***"`,
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, stderr, err := runCLI(t, env, tc.args...)
			if err != nil {
				t.Fatalf("%v\n%s", err, stderr)
			}
			for _, c := range canaries {
				if strings.Contains(out+stderr, c) {
					t.Errorf("printed secret %q:\n%s", c, out)
				}
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}
