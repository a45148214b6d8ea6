package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sigilcore/sigil-hub/authz"
	"github.com/sigilcore/sigil-hub/authz/policy"
	"github.com/sigilcore/sigil-hub/config"
)

func testRoot(t *testing.T) string {
	t.Helper()
	root, err := findRoot(".")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// TestDemo runs the demo end to end, exactly as `go run ./examples/demo`
// does (real go build, real hub and upstream processes), with a short
// pending timeout, and checks every step's verdict in the transcript.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the hub and runs it with real child processes; skipped with -short")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out, logs bytes.Buffer
	err := run(ctx, &out, options{
		Root:           testRoot(t),
		Stderr:         &logs,
		PendingTimeout: 300 * time.Millisecond,
		Environ:        os.Environ(),
	})
	transcript := out.String()
	if err != nil {
		t.Fatalf("run: %v\ntranscript:\n%s\nstderr:\n%s", err, transcript, logs.String())
	}

	blocks := stepBlocks(transcript)
	script := steps()
	if len(blocks) != len(script) {
		t.Fatalf("transcript has %d steps, want %d:\n%s", len(blocks), len(script), transcript)
	}
	tests := []struct {
		tool, got string
		held      bool
	}{
		{"clock__now", "got     APPROVED", false},
		{"notes__read_note", "got     APPROVED", false},
		{"notes__read_note", "got     DENIED    SIGIL_POLICY_VIOLATION_CUSTOM_RULE (JSON-RPC -32001)", false},
		{"notes__delete_note", "got     DENIED    SIGIL_POLICY_VIOLATION (JSON-RPC -32001)", false},
		{"notes__write_note", "got     DENIED    SIGIL_PENDING_TIMEOUT (JSON-RPC -32001)", true},
		{"notes__rename_note", "got     ERROR     JSON-RPC -32602", false},
		{"notes__list_notes", "got     APPROVED", false},
	}
	for i, tt := range tests {
		b := blocks[i]
		if !strings.Contains(b, "] "+tt.tool+" ") {
			t.Errorf("step %d is not %s:\n%s", i+1, tt.tool, b)
		}
		if !strings.Contains(b, tt.got) {
			t.Errorf("step %d (%s): no %q in:\n%s", i+1, tt.tool, tt.got, b)
		}
		if got := strings.Contains(b, "HELD      waiting for approval of "+tt.tool); got != tt.held {
			t.Errorf("step %d (%s): held progress shown = %v, want %v:\n%s", i+1, tt.tool, got, tt.held, b)
		}
		if !strings.Contains(b, "\n    ok\n") {
			t.Errorf("step %d (%s) is not marked ok:\n%s", i+1, tt.tool, b)
		}
	}
	for _, want := range []string{
		"The hub exposes 6 tools",
		"All 7 steps behaved as expected.",
		`"mcpServers"`,
	} {
		if !strings.Contains(transcript, want) {
			t.Errorf("transcript lacks %q:\n%s", want, transcript)
		}
	}
	// The hub's logs stay off the transcript (stdout) without -v.
	if strings.Contains(transcript, "tool call decision") {
		t.Errorf("hub logs leaked into the transcript:\n%s", transcript)
	}
}

// stepBlocks splits a transcript into its "[N] tool args" blocks.
func stepBlocks(s string) []string {
	re := regexp.MustCompile(`(?m)^\[\d+\] `)
	idx := re.FindAllStringIndex(s, -1)
	var out []string
	for i, m := range idx {
		end := len(s)
		if i+1 < len(idx) {
			end = idx[i+1][0]
		}
		out = append(out, s[m[0]:end])
	}
	return out
}

// TestPolicy checks warranty.md rule by rule, with intents built exactly as
// the hub builds them (authz.NewIntent).
func TestPolicy(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(testRoot(t), "examples", "demo", "warranty.md"))
	if err != nil {
		t.Fatal(err)
	}
	p, err := policy.Parse(src, policy.Options{})
	if err != nil {
		t.Fatalf("warranty.md does not parse: %v", err)
	}
	if p.Version() != "2.0.0" {
		t.Errorf("version = %s, want 2.0.0", p.Version())
	}
	tests := []struct {
		name, server, tool, args string
		status, code             string // code: the public SIGIL_* code
	}{
		{"clock now", "clock", "now", `{}`, policy.StatusAllowed, ""},
		{"clock sleep", "clock", "sleep", `{"ms":10}`, policy.StatusAllowed, ""},
		{"list notes", "notes", "list_notes", `{}`, policy.StatusAllowed, ""},
		{"read todo", "notes", "read_note", `{"name":"todo"}`, policy.StatusAllowed, ""},
		{"read .env", "notes", "read_note", `{"name":".env"}`, policy.StatusDenied, "SIGIL_POLICY_VIOLATION_CUSTOM_RULE"},
		{"read a name containing .env", "notes", "read_note", `{"name":"backup.env.old"}`, policy.StatusDenied, "SIGIL_POLICY_VIOLATION_CUSTOM_RULE"},
		{"write is held", "notes", "write_note", `{"name":"draft","text":"x"}`, policy.StatusPending, "SIGIL_POLICY_HOLD_APPROVAL_REQUIRED"},
		{"write .env is denied, not held", "notes", "write_note", `{"name":".env","text":"x"}`, policy.StatusDenied, "SIGIL_POLICY_VIOLATION_CUSTOM_RULE"},
		{"delete is blocked", "notes", "delete_note", `{"name":"todo"}`, policy.StatusDenied, "SIGIL_POLICY_VIOLATION"},
		{"other server", "files", "read_file", `{"path":"x"}`, policy.StatusDenied, "SIGIL_POLICY_VIOLATION"},
		{"unknown tool on notes is allowed by notes.*", "notes", "rename_note", `{"name":"todo"}`, policy.StatusAllowed, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in, err := authz.NewIntent(authz.Request{ServerID: tt.server, Tool: tt.tool, Arguments: []byte(tt.args), TaskID: "demo-test"})
			if err != nil {
				t.Fatal(err)
			}
			d := p.Evaluate(in.JSON, &policy.MemoryCounter{}, time.Now())
			if d.Status != tt.status || d.PublicCode() != tt.code {
				t.Errorf("got %s %s (rule %q: %s), want %s %s", d.Status, d.PublicCode(), d.Rule, d.Message, tt.status, tt.code)
			}
		})
	}

	t.Run("per-task cap", func(t *testing.T) {
		in, err := authz.NewIntent(authz.Request{ServerID: "clock", Tool: "now", TaskID: "busy"})
		if err != nil {
			t.Fatal(err)
		}
		c := &policy.MemoryCounter{}
		now := time.Unix(1_800_000_000, 0)
		allowed := 0
		for range 1000 {
			d := p.Evaluate(in.JSON, c, now)
			if d.Status != policy.StatusAllowed {
				if d.Code != policy.CodeLoopLimit {
					t.Fatalf("call %d: got %s %s, want %s", allowed+1, d.Status, d.Code, policy.CodeLoopLimit)
				}
				break
			}
			allowed++
		}
		if allowed != 500 {
			t.Errorf("%d calls allowed in one task, want 500 (max_tool_calls_per_task)", allowed)
		}
	})
}

// TestConfig checks that examples/demo/sigil-hub.toml is valid as shipped
// (for use by hand) and that the demo's copy of it differs only in how the
// upstreams are started.
func TestConfig(t *testing.T) {
	root := testRoot(t)
	cfgPath := filepath.Join(root, filepath.FromSlash(demoConfig))
	parse := func(t *testing.T, r *bytes.Reader, dir string) config.Config {
		t.Helper()
		cfg, err := config.Parse(r, dir, func(string) string { return "" })
		if err != nil {
			t.Fatalf("parse: %v", err)
		}
		return cfg
	}
	src, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	orig := parse(t, bytes.NewReader(src), filepath.Dir(cfgPath))

	wantPolicy := filepath.Join(root, "examples", "demo", "warranty.md")
	if orig.Policy != wantPolicy {
		t.Errorf("policy = %s, want %s", orig.Policy, wantPolicy)
	}
	if orig.PendingTimeout != 5*time.Second {
		t.Errorf("pending_timeout = %v, want 5s", orig.PendingTimeout)
	}
	type srv struct{ name, id, cwd, pkg string }
	var got []srv
	for _, s := range orig.Servers {
		if s.Disabled {
			continue
		}
		pkg := ""
		if s.Command == "go" && len(s.Args) == 2 && s.Args[0] == "run" {
			pkg = s.Args[1]
		}
		got = append(got, srv{s.Name, s.ServerID, s.Cwd, pkg})
	}
	want := []srv{
		{"notes", "notes", root, "./examples/upstreams/notes"},
		{"clock", "clock", root, "./examples/upstreams/clock"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("servers = %+v, want %+v", got, want)
	}

	dir := t.TempDir()
	pl, err := newPlan(root, dir, 250*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{hubPackage, "./examples/upstreams/clock", "./examples/upstreams/notes"}; !slices.Equal(pl.pkgs, want) {
		t.Errorf("packages to build = %v, want %v", pl.pkgs, want)
	}
	if pl.pending != 250*time.Millisecond || pl.policy != wantPolicy {
		t.Errorf("plan pending %v policy %s, want 250ms %s", pl.pending, pl.policy, wantPolicy)
	}
	cp := parse(t, bytes.NewReader(pl.config), dir)
	if cp.Policy != orig.Policy || cp.PendingTimeout != 250*time.Millisecond {
		t.Errorf("copy: policy %s pending %v, want %s 250ms", cp.Policy, cp.PendingTimeout, orig.Policy)
	}
	ids := map[string]config.Server{}
	for _, s := range cp.Servers {
		ids[s.Name] = s
	}
	for _, s := range orig.Servers {
		c, ok := ids[s.Name]
		switch {
		case !ok:
			t.Errorf("copy lacks server %s", s.Name)
		case c.ServerID != s.ServerID || c.Cwd != s.Cwd:
			t.Errorf("copy of %s: server_id %q cwd %q, want %q %q", s.Name, c.ServerID, c.Cwd, s.ServerID, s.Cwd)
		case c.Command != filepath.Join(dir, filepath.Base(s.Args[1])) || len(c.Args) != 0:
			t.Errorf("copy of %s starts %q %q, want the built binary in %s", s.Name, c.Command, c.Args, dir)
		}
	}
}

func TestFindRoot(t *testing.T) {
	root := testRoot(t)
	other := t.TempDir()
	if err := os.WriteFile(filepath.Join(other, "go.mod"), []byte("module example.com/other\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	fake := t.TempDir()
	if err := os.WriteFile(filepath.Join(fake, "go.mod"), []byte("// a copy\nmodule "+modulePath+"\n\ngo 1.26\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	deep := filepath.Join(fake, "a", "b")
	if err := os.MkdirAll(deep, 0o700); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, dir, want string // want "" = an error
	}{
		{"root", root, root},
		{"below the root", filepath.Join(root, "examples", "demo"), root},
		{"nested folder of a checkout", deep, fake},
		{"another module", other, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := findRoot(tt.dir)
			switch {
			case tt.want == "" && err == nil:
				t.Errorf("findRoot(%s) = %s, want an error", tt.dir, got)
			case tt.want != "" && (err != nil || got != tt.want):
				t.Errorf("findRoot(%s) = %q, %v; want %q", tt.dir, got, err, tt.want)
			}
		})
	}
}
