package main

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/sigilcore/sigil-hub/authz"
	"github.com/sigilcore/sigil-hub/internal/testbuf"
)

const signTestPolicy = `version: 2.0.0

## mcp
allowed_servers: github, slack
allowed_tools: github.*, slack.send_message
require_approval: slack.send_message
`

// signerProc is `sigil-hub sign` running in-process through runMain.
type signerProc struct {
	base, cfgDir   string
	environ        []string
	stdout, stderr *testbuf.Buffer
	cancel         context.CancelFunc
	done           chan error
}

// startSigner runs `sigil-hub sign` on 127.0.0.1:0 with a private config
// folder and waits (deadline-bounded polling) until it answers /healthz.
func startSigner(t *testing.T, extra ...string) *signerProc {
	t.Helper()
	dir := t.TempDir()
	pol := filepath.Join(dir, "warranty.md")
	if err := os.WriteFile(pol, []byte(signTestPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	addrFile := filepath.Join(dir, "addr")
	p := &signerProc{cfgDir: filepath.Join(dir, "config", "sigil-hub"), stdout: &testbuf.Buffer{}, stderr: &testbuf.Buffer{}, done: make(chan error, 1),
		environ: []string{"XDG_CONFIG_HOME=" + filepath.Join(dir, "config"), "HOME=" + dir, "SIGIL_API_KEY=sk_local_test"}}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel = cancel
	args := append([]string{"sign", "--policy", pol, "--listen", "127.0.0.1:0", "--addr-file", addrFile,
		"--decision-log", filepath.Join(dir, "decisions.jsonl")}, extra...)
	go func() { p.done <- runMain(ctx, args, p.environ, strings.NewReader(""), p.stdout, p.stderr) }()
	t.Cleanup(func() { p.stop(t) })
	deadline := time.Now().Add(30 * time.Second)
	for {
		if b, err := os.ReadFile(addrFile); err == nil && len(b) > 0 {
			p.base = "http://" + string(b)
			if r, err := http.Get(p.base + "/healthz"); err == nil {
				r.Body.Close()
				if r.StatusCode == 200 {
					return p
				}
			}
		}
		select {
		case err := <-p.done:
			t.Fatalf("sign exited early: %v\n%s", err, p.stderr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("signer not ready\n%s", p.stderr)
		}
	}
}

// stop cancels the signer and waits for runMain to return nil.
func (p *signerProc) stop(t *testing.T) {
	t.Helper()
	if p.cancel == nil {
		return
	}
	p.cancel()
	p.cancel = nil
	select {
	case err := <-p.done:
		if err != nil {
			t.Errorf("sign returned %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("sign did not shut down")
	}
}

// holds runs `sigil-hub holds ARGS` against p and returns stdout.
func (p *signerProc) holds(args ...string) (string, error) {
	var out, errb testbuf.Buffer
	args = append(append([]string{"holds"}, args...), "--sign-url", p.base)
	err := runMain(context.Background(), args, p.environ, strings.NewReader(""), &out, &errb)
	return out.String(), err
}

func TestSignAndHoldsCommands(t *testing.T) {
	p := startSigner(t)

	// First run: key and admin token created privately in the config folder.
	for _, name := range []string{"signer-ed25519.key", "signer-admin-token"} {
		st, err := os.Stat(filepath.Join(p.cfgDir, name))
		if err != nil {
			t.Fatal(err)
		}
		if runtime.GOOS != "windows" && st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v", name, st.Mode().Perm())
		}
	}
	logs := p.stderr.String()
	for _, want := range []string{"sigil signer listening", p.base, "policy_hash=", "approval page", "/?token="} {
		if !strings.Contains(logs, want) {
			t.Errorf("stderr lacks %q:\n%s", want, logs)
		}
	}

	if out, err := p.holds("list"); err != nil || strings.TrimSpace(out) != "no holds" {
		t.Fatalf("empty list: %q %v", out, err)
	}

	// A held call, approved from the CLI, is approved once with a verified attestation.
	c := authz.NewSign(authz.SignOptions{URL: p.base, APIKey: "sk_local_test", Verify: authz.VerifyEnforce, PendingTimeout: 2 * time.Minute})
	defer c.Close()
	held := make(chan string, 1)
	done := make(chan authz.Decision, 1)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	go func() {
		d, err := c.Authorize(ctx, authz.Request{ServerID: "slack", Tool: "send_message", Arguments: json.RawMessage(`{"text":"ship it"}`),
			TaskID: "t1", OnHold: func(id string, _ time.Duration) {
				select {
				case held <- id:
				default:
				}
			}})
		if err != nil {
			d = authz.Decision{Message: err.Error()}
		}
		done <- d
	}()
	var id string
	select {
	case id = <-held:
	case <-ctx.Done():
		t.Fatal("the call was never held")
	}
	out, err := p.holds("list")
	if err != nil || !strings.Contains(out, id) || !strings.Contains(out, "PENDING") || !strings.Contains(out, "send_message") ||
		!strings.Contains(out, `{"text":"ship it"}`) {
		t.Fatalf("list: %q %v", out, err)
	}
	if out, err := p.holds("approve", id); err != nil || !strings.Contains(out, "approved "+id) {
		t.Fatalf("approve: %q %v", out, err)
	}
	select {
	case d := <-done:
		if d.Verdict != authz.Approved || d.Attestation == "" || d.HoldID != id {
			t.Fatalf("decision %+v", d)
		}
	case <-ctx.Done():
		t.Fatal("the call never completed")
	}
	if _, err := p.holds("deny", id); err == nil || !strings.Contains(err.Error(), "no longer pending") {
		t.Fatalf("deny after approve: %v", err)
	}
	if _, err := p.holds("approve", "hold-nope"); err == nil || !strings.Contains(err.Error(), "no such hold") {
		t.Fatalf("unknown hold: %v", err)
	}

	tokenFile := filepath.Join(p.cfgDir, "signer-admin-token")
	p.stop(t)
	if p.stdout.String() != "" {
		t.Errorf("sign wrote to stdout: %q", p.stdout.String())
	}
	if _, err := os.Stat(tokenFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("admin token file left behind: %v", err)
	}
	if _, err := p.holds("list"); err == nil || !strings.Contains(err.Error(), "admin token") {
		t.Errorf("holds without a running signer: %v", err)
	}
}

func TestHoldsErrors(t *testing.T) {
	p := startSigner(t)
	tokenFile := filepath.Join(p.cfgDir, "signer-admin-token")
	wrong := filepath.Join(t.TempDir(), "wrong-token")
	if err := os.WriteFile(wrong, []byte("nope\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		args []string
		want string // in the error; "usage" means errUsage
	}{
		{"no verb", nil, "usage"},
		{"unknown verb", []string{"explode"}, "usage"},
		{"approve without id", []string{"approve"}, "usage"},
		{"list with an extra argument", []string{"list", "x"}, "usage"},
		{"wrong token", []string{"list", "--token-file", wrong}, "refused the admin token"},
		{"missing token file", []string{"list", "--token-file", wrong + ".absent"}, "cannot read the admin token"},
		{"flags before the verb", []string{"--token-file", tokenFile, "list"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := p.holds(tc.args...)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("error %v", err)
			case tc.want == "usage" && !errors.Is(err, errUsage):
				t.Fatalf("error %v, want a usage error", err)
			case tc.want != "" && tc.want != "usage" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	t.Run("nothing listening", func(t *testing.T) {
		var out testbuf.Buffer
		err := runMain(context.Background(), []string{"holds", "list", "--sign-url", "http://127.0.0.1:1", "--token-file", tokenFile},
			p.environ, strings.NewReader(""), &out, &out)
		if err == nil || !strings.Contains(err.Error(), "no signer answered") {
			t.Fatalf("%v", err)
		}
	})
}

func TestSignRefuses(t *testing.T) {
	dir := t.TempDir()
	pol := filepath.Join(dir, "warranty.md")
	if err := os.WriteFile(pol, []byte(signTestPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.md")
	if err := os.WriteFile(bad, []byte("## nonsense\nfoo: bar\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := []string{"XDG_CONFIG_HOME=" + filepath.Join(dir, "config"), "HOME=" + dir}
	tests := []struct {
		name string
		args []string
		env  []string
		want string
	}{
		{"no policy", []string{}, env, "--policy is required"},
		{"public address", []string{"--policy", pol, "--listen", "0.0.0.0:0"}, env, "--listen-public"},
		{"all interfaces", []string{"--policy", pol, "--listen", ":0"}, env, "--listen-public"},
		{"public without a key", []string{"--policy", pol, "--listen", "0.0.0.0:0", "--listen-public"}, env, "SIGIL_API_KEY"},
		{"unreadable policy", []string{"--policy", pol + ".absent"}, env, "policy"},
		{"invalid policy", []string{"--policy", bad}, env, "bad.md"},
		{"stray argument", []string{"--policy", pol, "extra"}, env, "usage"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb testbuf.Buffer
			err := runMain(context.Background(), append([]string{"sign"}, tc.args...), tc.env, strings.NewReader(""), &out, &errb)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(dir, "config", "sigil-hub", "signer-ed25519.key")); err == nil {
		t.Error("a refused start still created a key")
	}
}
