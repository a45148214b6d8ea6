package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigilcore/sigil-hub/internal/testbuf"
)

// The official TypeScript SDK clients, v2 (@modelcontextprotocol/client,
// both eras) and v1 (@modelcontextprotocol/sdk, 2025 only), held to the same
// promise as the Go clients of clients_modern_test.go: through single-wrap
// and hub mode, over stdio and Streamable HTTP, each sees what it sees of
// the fixture directly, names aside, in the era it was set up for. The
// probes run in testdata/npm/sdk-client/v2-view.mjs and v1-view.mjs
// (view-probes.mjs); the comparison is collectView's, here in Go.

// tsProbeSpec is the JSON the scripts take (view-probes.mjs).
type tsProbeSpec struct {
	Era       string           `json:"era"`
	Endpoints []tsProbeTarget  `json:"endpoints"`
	Probes    tsProbeTemplates `json:"probes"`
}

type tsProbeTarget struct {
	Label   string            `json:"label"`
	Prefix  string            `json:"prefix"`
	Command string            `json:"command,omitempty"`
	Args    []string          `json:"args,omitempty"`
	Env     map[string]string `json:"env,omitempty"`
	Cwd     string            `json:"cwd,omitempty"`
	URL     string            `json:"url,omitempty"`
}

type tsProbePrompt struct {
	Name string            `json:"name"`
	Args map[string]string `json:"args,omitempty"`
}

type tsProbeTemplates struct {
	ToolCalls   []string        `json:"toolCalls"`
	Prompts     []tsProbePrompt `json:"prompts"`
	Reads       []string        `json:"reads"`
	Trigger     string          `json:"trigger"`
	DynamicTool string          `json:"dynamicTool"`
}

// tsProbeLine is one line of a script's output: one endpoint's view, or why
// there is none.
type tsProbeLine struct {
	Label   string         `json:"label"`
	Version string         `json:"version"`
	Era     string         `json:"era"`
	Probes  map[string]any `json:"probes"`
	Error   string         `json:"error"`
}

// tsNode returns node and the absolute path of script in
// testdata/npm/sdk-client, skipping (or, with SIGIL_HUB_REQUIRE_NPM=1,
// failing) when node or the package pkg is not installed.
func tsNode(t *testing.T, pkg, script string) (node, path string) {
	t.Helper()
	npmServer(t, pkg, "package.json")
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("SIGIL_HUB_REQUIRE_NPM") == "1" {
			t.Fatalf("node is not on PATH: %v", err)
		}
		t.Skipf("node is not on PATH (%v); install Node 20+ to include this test", err)
	}
	path, err = filepath.Abs(filepath.Join("..", "..", "testdata", "npm", "sdk-client", script))
	if err != nil {
		t.Fatal(err)
	}
	return node, path
}

// tsSeeThroughHub runs script against the fixture directly, through
// single-wrap and through hub mode over transport tr, checks that every
// endpoint negotiated era (and, for a client that reports one, the matching
// era verdict), and compares the hub's endpoints with the direct one.
func tsSeeThroughHub(t *testing.T, node, script, tr, era, wantEra string) {
	t.Helper()
	eps := endpoints(t, tr)
	spec := tsProbeSpec{Era: era, Probes: tsProbeTemplates{
		ToolCalls: probeToolCalls, Reads: probeReads, Trigger: triggerToolChange, DynamicTool: dynamicToolName,
	}}
	for _, p := range probePrompts {
		spec.Probes.Prompts = append(spec.Probes.Prompts, tsProbePrompt{Name: p.name, Args: p.args})
	}
	for _, e := range eps {
		target := tsProbeTarget{Label: e.label, Prefix: e.prefix, URL: e.url}
		if e.url == "" {
			target.Command, target.Args, target.Cwd = e.argv[0], e.argv[1:], t.TempDir()
			target.Env = make(map[string]string, len(e.env))
			for _, kv := range e.env {
				if k, v, ok := strings.Cut(kv, "="); ok {
					target.Env[k] = v
				}
			}
		}
		spec.Endpoints = append(spec.Endpoints, target)
	}
	specJSON, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}

	// A guard against a hung client, not a pass/fail criterion: the script
	// has its own watchdog and fails sooner.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script, string(specJSON))
	cmd.Env = baseEnv()
	cmd.Dir = t.TempDir()
	var stdout bytes.Buffer
	stderr := &testbuf.Buffer{}
	cmd.Stdout = &stdout
	cmd.Stderr = stderr
	runErr := cmd.Run()
	defer func() {
		if t.Failed() {
			t.Logf("%s stderr (with the hubs' and the fixture's):\n%s", filepath.Base(script), stderr.String())
		}
	}()

	views := make(map[string]mcpView)
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var l tsProbeLine
		if err := json.Unmarshal(sc.Bytes(), &l); err != nil || l.Label == "" {
			t.Errorf("%s wrote a line that is not a view: %.200q", filepath.Base(script), sc.Bytes())
			continue
		}
		if l.Error != "" {
			t.Errorf("%s: %s", l.Label, l.Error)
			continue
		}
		if l.Version != era {
			t.Errorf("%s: the client negotiated protocol %q, want %q", l.Label, l.Version, era)
		}
		if wantEra != "" && l.Era != wantEra {
			t.Errorf("%s: the client's era is %q, want %q", l.Label, l.Era, wantEra)
		}
		views[l.Label] = mcpView{Version: l.Version, Probes: l.Probes}
	}
	if runErr != nil {
		t.Errorf("node %s: %v", filepath.Base(script), runErr)
	}
	if t.Failed() {
		return
	}
	direct, ok := views[eps[0].label]
	if !ok {
		t.Fatalf("no view of %s", eps[0])
	}
	for _, e := range eps[1:] {
		v, ok := views[e.label]
		if !ok {
			t.Errorf("no view of %s", e)
			continue
		}
		compareViews(t, direct, v, e)
	}
}

// TestTSSDKv2ClientSeesThroughHub: the TypeScript SDK v2 client
// (@modelcontextprotocol/client 2.4.0) with versionNegotiation {mode:
// 'auto'}, which settles on 2026-07-28 (server/discover, per-request _meta,
// subscriptions/listen), and in its default 2025 mode (initialize), over
// stdio and Streamable HTTP, sees through single-wrap and hub mode what it
// sees of the fixture directly, names aside.
func TestTSSDKv2ClientSeesThroughHub(t *testing.T) {
	t.Parallel()
	node, script := tsNode(t, "client", "v2-view.mjs")
	for _, c := range []struct{ era, verdict string }{{eraModern, "modern"}, {eraLegacy, "legacy"}} {
		for _, tr := range []string{"stdio", "http"} {
			t.Run(c.era+"/"+tr, func(t *testing.T) {
				t.Parallel()
				tsSeeThroughHub(t, node, script, tr, c.era, c.verdict)
			})
		}
	}
}

// TestTSSDKv1ClientSeesThroughHub: the TypeScript SDK v1 client
// (@modelcontextprotocol/sdk 1.32.2, 2025 era only), over stdio and
// Streamable HTTP, sees through single-wrap and hub mode what it sees of the
// fixture directly, names aside.
func TestTSSDKv1ClientSeesThroughHub(t *testing.T) {
	t.Parallel()
	node, script := tsNode(t, "sdk", "v1-view.mjs")
	for _, tr := range []string{"stdio", "http"} {
		t.Run(eraLegacy+"/"+tr, func(t *testing.T) {
			t.Parallel()
			tsSeeThroughHub(t, node, script, tr, eraLegacy, "")
		})
	}
}
