package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/sigilcore/sigil-hub/internal/testbuf"
	"github.com/sigilcore/sigil-hub/internal/testupstream"
	"github.com/sigilcore/sigil-hub/internal/webdriver"
)

// Issue 3, "Done means": the same policy and calls decided by the embedded
// engine (--policy) and by `sigil-hub sign` over real HTTP give identical
// outcomes, and held calls complete or fail as a person decides, from the
// terminal (`sigil-hub holds`) or by a click on the approval page in
// headless Chromium.

// offlinePolicy exercises every decision path the hub can see: allowed,
// a custom deny_if, blocked, not allowed, held, and an execution limit.
const offlinePolicy = `version: 2.0.0

## mcp
allowed_tools: files.*
blocked_tools: files.env
require_approval: files.hold_me

## custom
deny_if.metadata.arguments.name contains .env

## execution_limits
max_tool_calls_per_task: 4
`

// offlineSetup is one policy file and hub config (servers "files" and
// "other", both the fake upstream) with a private config folder.
type offlineSetup struct {
	policy, config, cfgHome string
	log                     upstreamLog
}

func newOfflineSetup(t *testing.T) offlineSetup {
	t.Helper()
	dir := t.TempDir()
	s := offlineSetup{policy: filepath.Join(dir, "warranty.md"), cfgHome: filepath.Join(dir, "home"), log: newUpstreamLog(t)}
	if err := os.WriteFile(s.policy, []byte(offlinePolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, name := range []string{"files", "other"} {
		fmt.Fprintf(&b, `
[servers.%s]
command = %q
server_id = %q
env = { %s = "1", %s = %q, %s = %q, %s = "hold_me" }
`, name, selfExe(t), name, testupstream.EnvMarker, testupstream.EnvLog, string(s.log), testupstream.EnvName, name, testupstream.EnvTools)
	}
	s.config = writeConfig(t, b.String())
	return s
}

// env is the hub's (and the CLI's) environment: the private config folder,
// where admin token files go.
func (s offlineSetup) env() []string {
	return []string{"XDG_CONFIG_HOME=" + s.cfgHome, "HOME=" + s.cfgHome}
}

// signProc is `sigil-hub sign` run as the real binary.
type signProc struct {
	base, tokenFile string
	stderr          *testbuf.Buffer
}

// startSignBin runs `sigil-hub sign` on 127.0.0.1:0 (its address from
// --addr-file) and waits, deadline-bounded, until /healthz answers. It is
// stopped with SIGINT when the test ends.
func startSignBin(t *testing.T, s offlineSetup) *signProc {
	t.Helper()
	dir := t.TempDir()
	addrFile := filepath.Join(dir, "addr")
	p := &signProc{tokenFile: filepath.Join(dir, "admin-token"), stderr: &testbuf.Buffer{}}
	cmd := exec.Command(hubBin, "sign", "--policy", s.policy, "--listen", "127.0.0.1:0", "--addr-file", addrFile,
		"--key-file", filepath.Join(dir, "signer.key"), "--token-file", p.tokenFile)
	cmd.Env = baseEnv(s.env()...)
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		cmd.Process.Signal(os.Interrupt)
		select {
		case <-exited:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
		if t.Failed() {
			t.Logf("sign stderr:\n%s", p.stderr.String())
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(addrFile); err == nil && len(b) > 0 {
			p.base = "http://" + string(b)
			if r, err := http.Get(p.base + "/healthz"); err == nil {
				r.Body.Close()
				if r.StatusCode == http.StatusOK {
					return p
				}
			}
		}
		select {
		case <-exited:
			t.Fatalf("sign exited early:\n%s", p.stderr.String())
		case <-time.After(20 * time.Millisecond): // polling readiness with a deadline
		}
		if time.Now().After(deadline) {
			t.Fatalf("sign not ready:\n%s", p.stderr.String())
		}
	}
}

// pageURL returns the signer's approval page URL with its login token.
func (p *signProc) pageURL(t *testing.T) string {
	t.Helper()
	tok, err := os.ReadFile(p.tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	return p.base + "/?token=" + strings.TrimSpace(string(tok))
}

// startOfflineHub starts the hub for s, deciding with the embedded engine
// (sign == nil) or with the signer.
func startOfflineHub(t *testing.T, s offlineSetup, sign *signProc, pendingMS int) *hubProc {
	t.Helper()
	args := []string{"--config", s.config, "--pending-timeout", fmt.Sprint(pendingMS)}
	if sign == nil {
		args = append(args, "--policy", s.policy)
	} else {
		args = append(args, "--sign-url", sign.base, "--key", "anything")
	}
	return startHub(t, s.env(), args...)
}

// hubPage returns the --policy hub's approval page URL (with the token) and
// its base, from the hub's log.
func hubPage(t *testing.T, h *hubProc) (page, base string) {
	t.Helper()
	pageURLPattern := regexp.MustCompile(`(http://127\.0\.0\.1:[0-9]+)/\?token=([0-9a-f]+)`)
	eventually(t, "the approval page URL in the hub's log", func() bool { return pageURLPattern.MatchString(h.stderr.String()) })
	m := pageURLPattern.FindStringSubmatch(h.stderr.String())
	return m[0], m[1]
}

// asyncResult is the outcome of a call made in the background.
type asyncResult struct {
	resp *transport.JSONRPCResponse
	err  error
}

// callAsync starts a tools/call and returns where its response arrives.
func (h *hubProc) callAsync(name, args string) <-chan asyncResult {
	h.mu.Lock()
	h.seq++
	id := fmt.Sprintf("e2e-async-%d", h.seq)
	h.mu.Unlock()
	out := make(chan asyncResult, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		resp, err := h.c.GetTransport().SendRequest(ctx, transport.JSONRPCRequest{JSONRPC: "2.0", ID: mcp.NewRequestId(id),
			Method: "tools/call", Params: map[string]any{"name": name, "arguments": json.RawMessage(args)}})
		out <- asyncResult{resp, err}
	}()
	return out
}

// await returns the background call's response (deadline-bounded).
func await(t *testing.T, h *hubProc, ch <-chan asyncResult) *transport.JSONRPCResponse {
	t.Helper()
	select {
	case r := <-ch:
		if r.err != nil {
			t.Fatalf("call: %v\nstderr:\n%s", r.err, h.stderr.String())
		}
		return r.resp
	case <-time.After(2 * time.Minute):
		t.Fatalf("the held call never completed\nstderr:\n%s", h.stderr.String())
	}
	return nil
}

// outcome is what a client can tell apart about one call.
type outcome struct {
	Result    string // first text block of a result
	Code      int    // JSON-RPC error code
	ErrorCode string
	Reason    string
	Decision  string
}

func outcomeOf(t *testing.T, resp *transport.JSONRPCResponse) outcome {
	t.Helper()
	if resp.Error == nil {
		return outcome{Result: resultText(t, resp)}
	}
	var d errData
	b, _ := json.Marshal(resp.Error.Data)
	_ = json.Unmarshal(b, &d)
	return outcome{Code: resp.Error.Code, ErrorCode: d.ErrorCode, Reason: d.Reason, Decision: d.Decision}
}

func TestOfflineParityPolicyAndSigner(t *testing.T) {
	t.Parallel()
	calls := []struct {
		name, tool, args string
		want             outcome // as both engines must decide
	}{
		{"allowed", "files__echo", `{"text":"hi"}`, outcome{Result: `{"text":"hi"}`}},
		{"custom deny_if", "files__echo", `{"name":"prod.env"}`,
			outcome{Code: -32001, ErrorCode: "SIGIL_POLICY_VIOLATION_CUSTOM_RULE", Reason: "denied", Decision: "DENIED"}},
		{"blocked tool", "files__env", `{}`, outcome{Code: -32001, ErrorCode: "SIGIL_POLICY_VIOLATION", Reason: "denied", Decision: "DENIED"}},
		{"not allowed", "other__echo", `{"text":"hi"}`, outcome{Code: -32001, ErrorCode: "SIGIL_POLICY_VIOLATION", Reason: "denied", Decision: "DENIED"}},
		{"held, nobody decides", "files__hold_me", `{"n":1}`,
			outcome{Code: -32001, ErrorCode: "SIGIL_PENDING_TIMEOUT", Reason: "pending_timeout", Decision: "DENIED"}},
		{"allowed, no arguments", "files__echo", `{}`, outcome{Result: `{}`}},
		{"allowed up to the limit", "files__echo", `{"text":"again"}`, outcome{Result: `{"text":"again"}`}},
		{"at the limit", "files__echo", `{"text":"last"}`, outcome{Result: `{"text":"last"}`}},
		{"over the execution limit", "files__echo", `{"text":"more"}`,
			outcome{Code: -32001, ErrorCode: "SIGIL_LOOP_LIMIT_EXCEEDED", Reason: "denied", Decision: "DENIED"}},
	}
	s := newOfflineSetup(t)
	engines := map[string]func(t *testing.T) *hubProc{
		"embedded engine (--policy)": func(t *testing.T) *hubProc { return startOfflineHub(t, s, nil, 300) },
		"sigil-hub sign over HTTP":   func(t *testing.T) *hubProc { return startOfflineHub(t, s, startSignBin(t, s), 300) },
	}
	got := map[string][]outcome{}
	for _, name := range []string{"embedded engine (--policy)", "sigil-hub sign over HTTP"} {
		t.Run(name, func(t *testing.T) {
			h := engines[name](t)
			for _, c := range calls {
				o := outcomeOf(t, h.call(c.tool, c.args))
				got[name] = append(got[name], o)
				if o != c.want {
					t.Errorf("%s: %s %s = %+v, want %+v", c.name, c.tool, c.args, o, c.want)
				}
			}
		})
	}
	a, b := got["embedded engine (--policy)"], got["sigil-hub sign over HTTP"]
	if len(a) != len(calls) || len(b) != len(calls) {
		t.Fatalf("incomplete runs: %d and %d outcomes", len(a), len(b))
	}
	for i, c := range calls {
		if a[i] != b[i] {
			t.Errorf("%s: embedded %+v, signer %+v", c.name, a[i], b[i])
		}
	}
}

// holdsCLI runs the real `sigil-hub holds ARGS --sign-url base`.
func holdsCLI(t *testing.T, s offlineSetup, base string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.Command(hubBin, append(append([]string{"holds"}, args...), "--sign-url", base)...)
	cmd.Env = baseEnv(s.env()...)
	var stderr testbuf.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), fmt.Errorf("%v: %s", err, stderr.String())
	}
	return string(out), nil
}

func TestOfflineHoldsCLIInPolicyMode(t *testing.T) {
	holdIDPattern := regexp.MustCompile(`(?m)^(hold-[0-9a-f]+)\s+PENDING\s`)
	s := newOfflineSetup(t)
	h := startOfflineHub(t, s, nil, 120000)
	_, base := hubPage(t, h)
	if out, err := holdsCLI(t, s, base, "list"); err != nil || strings.TrimSpace(out) != "no holds" {
		t.Fatalf("list: %q %v", out, err)
	}
	tests := []struct {
		verb, args string
		want       outcome
	}{
		{"approve", `{"n":"approved by the CLI"}`, outcome{Result: "ok:hold_me"}},
		{"deny", `{"n":"denied by the CLI"}`, outcome{Code: -32001, ErrorCode: "SIGIL_HOLD_DENIED", Reason: "pending_rejected", Decision: "DENIED"}},
	}
	for _, tc := range tests {
		t.Run(tc.verb, func(t *testing.T) {
			done := h.callAsync("files__hold_me", tc.args)
			var id, list string
			eventually(t, "the hold in `sigil-hub holds list`", func() bool {
				out, err := holdsCLI(t, s, base, "list")
				if err != nil {
					t.Fatalf("list: %v", err)
				}
				m := holdIDPattern.FindStringSubmatch(out)
				if m != nil {
					id, list = m[1], out
				}
				return m != nil
			})
			if !strings.Contains(list, "files") || !strings.Contains(list, "hold_me") || !strings.Contains(list, tc.args) {
				t.Errorf("list lacks server, tool or arguments:\n%s", list)
			}
			out, err := holdsCLI(t, s, base, tc.verb, id)
			if err != nil || !strings.Contains(out, id) {
				t.Fatalf("%s: %q %v", tc.verb, out, err)
			}
			if got := outcomeOf(t, await(t, h, done)); got != tc.want {
				t.Fatalf("held call = %+v, want %+v", got, tc.want)
			}
			if _, err := holdsCLI(t, s, base, tc.verb, id); err == nil || !strings.Contains(err.Error(), "no such hold") {
				t.Fatalf("deciding twice: %v", err)
			}
		})
	}
	// The upstream saw the approved call and never the denied one.
	calls := strings.Join(s.log.toolCalls(t), "\n")
	if !strings.Contains(calls, "approved by the CLI") || strings.Contains(calls, "denied by the CLI") {
		t.Fatalf("upstream tools/call log:\n%s", calls)
	}
	// The page's recent decisions saw both, without argument values.
	req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
	tok, err := os.ReadFile(holdsTokenFile(filepath.Join(s.cfgHome, "sigil-hub"), base))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !strings.Contains(string(page), "SIGIL_HOLD_DENIED") || strings.Contains(string(page), "by the CLI") {
		t.Errorf("page: HTTP %d\n%s", resp.StatusCode, page)
	}
}

func TestOfflineApprovalsFlag(t *testing.T) {
	s := newOfflineSetup(t)
	tests := []struct {
		name string
		args []string
		want string // in stderr; the hub must exit 1
	}{
		{"without a policy", []string{"--config", s.config, "--key", "k", "--approvals", "127.0.0.1:0"}, "--approvals serves the approval page of a local policy"},
		{"public address", []string{"--config", s.config, "--policy", s.policy, "--approvals", "0.0.0.0:0"}, "loopback only"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cmd := exec.Command(hubBin, tc.args...)
			cmd.Env = baseEnv(s.env()...)
			cmd.Dir = t.TempDir()
			out, err := cmd.CombinedOutput()
			if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), tc.want) {
				t.Fatalf("exit %v, want 1 with %q:\n%s", err, tc.want, out)
			}
		})
	}
	t.Run("off", func(t *testing.T) {
		h := startHub(t, s.env(), "--config", s.config, "--policy", s.policy, "--approvals", "off")
		if names := h.toolNames(); len(names) == 0 {
			t.Fatal("no tools")
		}
		if strings.Contains(h.stderr.String(), "approval page") {
			t.Fatalf("--approvals off still serves a page:\n%s", h.stderr.String())
		}
	})
	t.Run("token file removed at exit", func(t *testing.T) {
		h := startHub(t, s.env(), "--config", s.config, "--policy", s.policy)
		_, base := hubPage(t, h)
		tf := holdsTokenFile(filepath.Join(s.cfgHome, "sigil-hub"), base)
		if filepath.Base(filepath.Dir(tf)) != "admin-tokens" {
			t.Fatalf("no per-port token file for %s (got %s)", base, tf)
		}
		h.c.Close()
		eventually(t, "the token file to go", func() bool {
			_, err := os.Stat(tf)
			return os.IsNotExist(err)
		})
	})
}

func TestOfflineApprovalPageInBrowser(t *testing.T) {
	t.Parallel()
	wd := webdriver.Start(t, webdriver.Options{Require: os.Getenv(webdriver.RequireEnv) == "1"})
	modes := []struct {
		name  string
		start func(t *testing.T, s offlineSetup) (h *hubProc, page string)
	}{
		{"hub --policy, its own page", func(t *testing.T, s offlineSetup) (*hubProc, string) {
			h := startOfflineHub(t, s, nil, 120000)
			page, _ := hubPage(t, h)
			return h, page
		}},
		{"hub --sign-url, the signer's page", func(t *testing.T, s offlineSetup) (*hubProc, string) {
			p := startSignBin(t, s)
			return startOfflineHub(t, s, p, 120000), p.pageURL(t)
		}},
	}
	for _, m := range modes {
		t.Run(m.name, func(t *testing.T) {
			s := newOfflineSetup(t)
			h, page := m.start(t, s)
			wd.Open(t, page)
			if src := wd.Source(t); !strings.Contains(src, "No calls are waiting") {
				t.Fatalf("page after login:\n%s", src)
			}
			// Approve: the client's call completes with the upstream's result.
			done := h.callAsync("files__hold_me", `{"n":"clicked approve"}`)
			wd.Click(t, "button.approve")
			if got, want := outcomeOf(t, await(t, h, done)), (outcome{Result: "ok:hold_me"}); got != want {
				t.Fatalf("approved call = %+v, want %+v", got, want)
			}
			// Deny: -32001 SIGIL_HOLD_DENIED, and the upstream never sees it.
			done = h.callAsync("files__hold_me", `{"n":"clicked deny"}`)
			wd.Click(t, "button.deny")
			resp := await(t, h, done)
			wantError(t, resp, -32001, "SIGIL_HOLD_DENIED")
			calls := strings.Join(s.log.toolCalls(t), "\n")
			if !strings.Contains(calls, "clicked approve") || strings.Contains(calls, "clicked deny") {
				t.Fatalf("upstream tools/call log:\n%s", calls)
			}
		})
	}
}
