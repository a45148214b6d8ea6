package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sigilcore/sigil-hub/internal/signtest"
	"github.com/sigilcore/sigil-hub/internal/testupstream"
)

// A @sigilcore/mcp-proxy user's sigil.config.json (README "Coming from
// @sigilcore/mcp-proxy"): read from the working folder in wrap mode and
// with --config FILE.json, strictly, with the proxy's precedence
// flag > environment > file > defaults.

// seedDir writes sigil.config.json into a new folder and returns it.
func seedDir(t *testing.T, body string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "sigil.config.json"), []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir
}

// hubIn is a script that runs the hub binary in dir, so that startHubCmd's
// client starts the hub where the seed file is (as a client config's cwd).
func hubIn(t *testing.T, dir string) string {
	t.Helper()
	script := filepath.Join(t.TempDir(), "hub-in-dir")
	body := "#!/bin/sh\ncd '" + dir + "' || exit 1\nexec '" + hubBin + "' \"$@\"\n"
	if err := os.WriteFile(script, []byte(body), 0o700); err != nil {
		t.Fatal(err)
	}
	return script
}

// runHubIn runs the binary to completion in dir.
func runHubIn(t *testing.T, dir string, env []string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	cmd := exec.Command(hubBin, args...)
	cmd.Dir = dir
	cmd.Env = baseEnv(env...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err = cmd.Run()
	return o.String(), e.String(), err
}

// headerRecorder is a loopback front of a remote MCP server that records
// the headers of every request it passes on.
type headerRecorder struct {
	mu   sync.Mutex
	seen []http.Header
	URL  string
}

func newHeaderRecorder(t *testing.T) *headerRecorder {
	t.Helper()
	up, err := testupstream.StartHTTP(testupstream.Config{Name: "remote"}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { up.Close() })
	target, _ := url.Parse(up.URL)
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: target.Scheme, Host: target.Host})
	hr := &headerRecorder{}
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hr.mu.Lock()
		hr.seen = append(hr.seen, r.Header.Clone())
		hr.mu.Unlock()
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	hr.URL = front.URL + "/mcp"
	return hr
}

// values returns every value header h had on the recorded requests.
func (hr *headerRecorder) values(h string) []string {
	hr.mu.Lock()
	defer hr.mu.Unlock()
	var out []string
	for _, hd := range hr.seen {
		out = append(out, hd.Values(h)...)
	}
	return out
}

// TestSeedConfigWrapRemoteDecidesSignAndUpstream: a wrapped remote server
// started in a folder holding the proxy's sigil.config.json takes its
// serverId, serverName, signUrl, extractors and upstream.headers from it:
// the Sign double named only by the file sees the call with the file's
// serverId and the extractor's typed intent, and the upstream receives
// the headers expanded from the environment. The log says which file was
// used and that a sigil-hub.toml beside it is not read.
func TestSeedConfigWrapRemoteDecidesSignAndUpstream(t *testing.T) {
	t.Parallel()
	sign := signtest.New(t, signtest.Options{APIKey: testKey})
	rec := newHeaderRecorder(t)
	dir := seedDir(t, `{
  "signUrl": "`+sign.URL+`",
  "serverId": "seed-remote",
  "serverName": "Seed Remote",
  "upstream": {"headers": {"Authorization": "Bearer ${SEED_TOKEN}", "X-Team": "${SEED_TEAM}"}},
  "extractors": {"echo": {"url": "target.url"}}
}`)
	// A hub file in the same folder does not apply to a wrapped server.
	if err := os.WriteFile(filepath.Join(dir, "sigil-hub.toml"), []byte("sign_url = \"https://sign.invalid\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"SIGIL_API_KEY=" + testKey, "SEED_TOKEN=tok-from-env-123", "SEED_TEAM=platform"}
	h := startHubCmd(t, hubIn(t, dir), nil, env, "--remote", rec.URL)

	resp := h.call("echo", `{"target":{"url":"https://example.com/docs"}}`)
	if resp.Error != nil {
		t.Fatalf("echo: %+v", resp.Error)
	}
	reqs := sign.Requests()
	if len(reqs) != 1 {
		t.Fatalf("the Sign named by signUrl saw %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.ServerID != "seed-remote" || r.Tool != "echo" {
		t.Fatalf("Sign saw serverId %q tool %q, want the file's serverId seed-remote", r.ServerID, r.Tool)
	}
	if r.Action != "web_fetch" || r.Intent["url"] != "https://example.com/docs" {
		t.Fatalf("Sign saw action %q url %v, want the extractor's web_fetch of target.url", r.Action, r.Intent["url"])
	}
	if got := rec.values("Authorization"); len(got) == 0 || got[len(got)-1] != "Bearer tok-from-env-123" {
		t.Fatalf("upstream Authorization = %q, want the file's template expanded", got)
	}
	if got := rec.values("X-Team"); len(got) == 0 || got[0] != "platform" {
		t.Fatalf("upstream X-Team = %q, want platform", got)
	}
	logs := h.stderr.String()
	if !strings.Contains(logs, "using sigil.config.json (@sigilcore/mcp-proxy format)") || !strings.Contains(logs, "sigil-hub.toml is not read") {
		t.Fatalf("the log does not say which config was used:\n%s", logs)
	}
	if strings.Contains(logs, "tok-from-env-123") {
		t.Fatal("the header's value reached the log")
	}
}

// TestSeedConfigEnvBeatsFileHeader: SIGIL_UPSTREAM_AUTH (environment)
// replaces the file's Authorization header; the file's other headers stay.
func TestSeedConfigEnvBeatsFileHeader(t *testing.T) {
	t.Parallel()
	sign := signtest.New(t, signtest.Options{APIKey: testKey})
	rec := newHeaderRecorder(t)
	dir := seedDir(t, `{"upstream": {"headers": {"authorization": "Bearer ${SEED_TOKEN}", "X-Team": "${SEED_TEAM}"}}}`)
	env := append(signEnv(sign), "SEED_TOKEN=file-token", "SEED_TEAM=platform", "SIGIL_UPSTREAM_AUTH=Bearer env-token")
	h := startHubCmd(t, hubIn(t, dir), nil, env, "--remote", rec.URL)
	if resp := h.call("echo", `{}`); resp.Error != nil {
		t.Fatalf("echo: %+v", resp.Error)
	}
	for _, v := range rec.values("Authorization") {
		if v != "Bearer env-token" {
			t.Fatalf("upstream Authorization %q, want only SIGIL_UPSTREAM_AUTH's (environment beats file)", v)
		}
	}
	if got := rec.values("X-Team"); len(got) == 0 {
		t.Fatal("the file's X-Team header was lost")
	}
}

// TestSeedConfigPendingTimeoutPrecedence: pendingTimeout from the file
// decides how long a held call waits, SIGIL_PENDING_TIMEOUT beats it and
// --pending-timeout beats both.
func TestSeedConfigPendingTimeoutPrecedence(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{name: "file", want: "waited 3 s"},
		{name: "env beats file", env: []string{"SIGIL_PENDING_TIMEOUT=2000"}, want: "waited 2 s"},
		{name: "flag beats env", env: []string{"SIGIL_PENDING_TIMEOUT=2000"}, args: []string{"--pending-timeout", "1000"}, want: "waited 1 s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			sign := signtest.New(t, signtest.Options{APIKey: testKey, Decide: func(signtest.Request) signtest.Reply { return signtest.Pending("hold-seed") }})
			dir := seedDir(t, `{"pendingTimeout": 3000, "serverId": "held"}`)
			env := append(append(signEnv(sign), "SIGIL_HUB_TEST_UPSTREAM=1"), tc.env...)
			args := append(tc.args, "--", selfExe(t))
			h := startHubCmd(t, hubIn(t, dir), nil, env, args...)
			start := time.Now()
			d := wantError(t, h.call("echo", `{}`), -32001, "SIGIL_PENDING_TIMEOUT")
			if !strings.Contains(d.Message, tc.want) {
				t.Fatalf("held call: %q after %v, want %q", d.Message, time.Since(start).Round(time.Millisecond), tc.want)
			}
		})
	}
}

// printed is the part of `check --print --json` the seed tests read.
type printed struct {
	File           string `json:"file"`
	SignURL        string `json:"sign_url"`
	LogLevel       string `json:"log_level"`
	PendingTimeout int64  `json:"pending_timeout"`
	Servers        []struct {
		ServerID   string                       `json:"server_id"`
		ServerName string                       `json:"server_name"`
		Headers    map[string]string            `json:"headers"`
		Extractors map[string]map[string]string `json:"extractors"`
	} `json:"servers"`
}

func checkPrint(t *testing.T, dir string, env []string, args ...string) printed {
	t.Helper()
	out, errOut, err := runHubIn(t, dir, env, append([]string{"check", "--print", "--json"}, args...)...)
	if err != nil {
		t.Fatalf("check --print %v: %v\n%s", args, err, errOut)
	}
	var p printed
	if err := json.Unmarshal([]byte(out), &p); err != nil || len(p.Servers) != 1 {
		t.Fatalf("check --print output %s: %v", out, err)
	}
	return p
}

// TestSeedConfigPrecedenceLayers: for signUrl, logLevel, serverId and
// serverName, each layer beats the next: flag > environment > file >
// default, as the proxy does.
func TestSeedConfigPrecedenceLayers(t *testing.T) {
	t.Parallel()
	dir := seedDir(t, `{"signUrl": "http://127.0.0.1:7001", "logLevel": "warn", "serverId": "from-file", "serverName": "File Name", "pendingTimeout": 4500,
	  "extractors": {"fetch": {"url": "request.url", "method": "request.method", "action": "http"}}}`)
	wrap := []string{"--", "node", "server.js"}

	p := checkPrint(t, dir, nil, wrap...)
	s := p.Servers[0]
	if p.SignURL != "http://127.0.0.1:7001" || p.LogLevel != "warn" || p.PendingTimeout != 4500 || s.ServerID != "from-file" || s.ServerName != "File Name" {
		t.Fatalf("file layer: %+v", p)
	}
	if x := s.Extractors["fetch"]; x["url"] != "request.url" || x["method"] != "request.method" || x["action"] != "http" {
		t.Fatalf("extractors from the file: %v", s.Extractors)
	}

	env := []string{"SIGIL_SIGN_URL=http://127.0.0.1:7002", "SIGIL_LOG_LEVEL=error", "SIGIL_PENDING_TIMEOUT=2500"}
	p = checkPrint(t, dir, env, wrap...)
	if p.SignURL != "http://127.0.0.1:7002" || p.LogLevel != "error" || p.PendingTimeout != 2500 || p.Servers[0].ServerID != "from-file" {
		t.Fatalf("environment layer: %+v", p)
	}

	p = checkPrint(t, dir, env, append([]string{"--sign-url", "http://127.0.0.1:7003", "--log-level", "debug", "--server-id", "from-flag", "--server-name", "Flag Name"}, wrap...)...)
	if p.SignURL != "http://127.0.0.1:7003" || p.LogLevel != "debug" || p.Servers[0].ServerID != "from-flag" || p.Servers[0].ServerName != "Flag Name" {
		t.Fatalf("flag layer: %+v", p)
	}

	// Defaults without the file: the serverId derived from the command.
	p = checkPrint(t, t.TempDir(), nil, wrap...)
	if p.SignURL != "https://sign.sigilcore.com" || p.PendingTimeout != 30000 || p.Servers[0].ServerID == "from-file" {
		t.Fatalf("default layer: %+v", p)
	}
}

// TestSeedConfigFlagJSON: --config FILE.json reads the seed format from
// anywhere, for the hub, check and tools alike; without a wrapped server it
// says what to add; a .toml file with a wrapped server is still refused.
func TestSeedConfigFlagJSON(t *testing.T) {
	t.Parallel()
	file := filepath.Join(t.TempDir(), "team-proxy.json")
	if err := os.WriteFile(file, []byte(`{"serverId": "from-flag-file"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	p := checkPrint(t, t.TempDir(), nil, "--config", file, "--", "node", "server.js")
	if p.Servers[0].ServerID != "from-flag-file" {
		t.Fatalf("--config FILE.json: serverId %q", p.Servers[0].ServerID)
	}

	// tools runs the wrapped server and lists its serverId.
	out, errOut, err := runHubIn(t, t.TempDir(), []string{"SIGIL_HUB_TEST_UPSTREAM=1"}, "tools", "--json", "--config", file, "--", selfExe(t))
	if err != nil || !strings.Contains(out, `"from-flag-file"`) {
		t.Fatalf("tools --config FILE.json: %v\n%s\n%s", err, out, errOut)
	}

	_, errOut, err = runHubIn(t, t.TempDir(), nil, "--config", file)
	if err == nil || !strings.Contains(errOut, "@sigilcore/mcp-proxy config") || !strings.Contains(errOut, "--config "+file+" -- COMMAND") {
		t.Fatalf("hub mode --config FILE.json without a server: %v\n%s", err, errOut)
	}
	_, errOut, err = runHubIn(t, t.TempDir(), nil, "--config", writeConfig(t, ""), "--", "node", "x.js")
	if err == nil || !strings.Contains(errOut, "exclude each other") {
		t.Fatalf("--config FILE.toml with a wrapped server: %v\n%s", err, errOut)
	}
}

// TestSeedConfigUnknownKeyRefused: a key the format does not have stops
// the hub with an error that names it (and the camelCase key meant), and
// no server starts; so do the keys that never belong in a file.
func TestSeedConfigUnknownKeyRefused(t *testing.T) {
	t.Parallel()
	dir := seedDir(t, `{"serverID": "x", "colour": "blue", "upstream": {"url": "https://x.example/mcp"}, "unsafeBypass": true,
	  "extractors": {"fetch": {"URL": "a"}}}`)
	_, errOut, err := runHubIn(t, dir, nil, "--", "node", "server.js")
	if err == nil {
		t.Fatal("the hub started with unknown keys in sigil.config.json")
	}
	for _, want := range []string{"sigil.config.json", "serverID: unknown key", "did you mean serverId?", "colour: unknown key",
		"upstream.url: unknown key", "unsafeBypass: unsafe bypass cannot be set in a config file", "extractors.fetch.URL: unknown key"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("error lacks %q:\n%s", want, errOut)
		}
	}
	// Strict JSON: a duplicate key is refused, not silently last-wins.
	dir = seedDir(t, `{"serverId": "a", "serverId": "b"}`)
	if _, errOut, err = runHubIn(t, dir, nil, "--", "node", "server.js"); err == nil || !strings.Contains(errOut, "duplicate key") {
		t.Fatalf("duplicate key: %v\n%s", err, errOut)
	}
}

// TestSeedConfigRawSecretRefused: a header value written in the file
// rather than referenced from the environment is refused at load, naming
// the key and never printing the value.
func TestSeedConfigRawSecretRefused(t *testing.T) {
	t.Parallel()
	const secret = "ghp_R4wS3cr3tWr1tt3nInTh3F1l3xxxxxxxxxx"
	for _, v := range []string{"Bearer " + secret, secret, "Bearer ${OK_VAR}" + secret} {
		dir := seedDir(t, `{"upstream": {"headers": {"Authorization": "`+v+`"}}}`)
		_, errOut, err := runHubIn(t, dir, []string{"OK_VAR=x"}, "--remote", "https://mcp.example.com/mcp")
		if err == nil || !strings.Contains(errOut, "upstream.headers.Authorization") {
			t.Fatalf("raw header %q: %v\n%s", strings.ReplaceAll(v, secret, "SECRET"), err, errOut)
		}
		if strings.Contains(errOut, secret) {
			t.Fatalf("the error printed the secret:\n%s", errOut)
		}
	}
}

// TestSeedConfigHubModeKeepsTOML: without a wrapped server, the hub reads
// its TOML file and logs that the sigil.config.json beside it is not read.
func TestSeedConfigHubModeKeepsTOML(t *testing.T) {
	t.Parallel()
	sign := signtest.New(t, signtest.Options{APIKey: testKey})
	dir := seedDir(t, `{"serverId": "ignored"}`)
	log := newUpstreamLog(t)
	if err := os.WriteFile(filepath.Join(dir, "sigil-hub.toml"), []byte(fakeServer(t, "files", log, "")), 0o600); err != nil {
		t.Fatal(err)
	}
	h := startHubCmd(t, hubIn(t, dir), nil, signEnv(sign))
	if resp := h.call("files__echo", `{}`); resp.Error != nil {
		t.Fatalf("files__echo: %+v", resp.Error)
	}
	if r := sign.Requests(); len(r) != 1 || r[0].ServerID != "files" {
		t.Fatalf("Sign saw %+v, want serverId files from the TOML", r)
	}
	if logs := h.stderr.String(); !strings.Contains(logs, "using sigil-hub.toml; ./sigil.config.json is not read") {
		t.Fatalf("the log does not say which config was used:\n%s", logs)
	}
}
