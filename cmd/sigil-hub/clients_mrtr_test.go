package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	mcpclient "github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	mcpgo "github.com/mark3labs/mcp-go/mcp"
	gosdk "github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/sigilcore/sigil-hub/internal/testbuf"
)

// Multi round-trip requests (docs/protocol.md#mcp-revisions) with real
// clients of both eras, in front of upstreams of both eras, with a hold a
// person approves in between: the same promise as
// TestMultiRoundTripInEveryEraCombination, made with real client libraries
// (go-sdk v1.8, mcp-go v1.2.1, the TypeScript SDK v2 and v1) instead of a
// raw JSON-RPC client. Each client's elicitation handler accepts; at
// 2026-07-28 the library fulfils input_required with it and retries by
// itself, at 2025-11-25 it answers the hub's elicitation/create.
//
// The hub (hub mode) fronts our fixture internal/conformanceserver twice:
// [servers.modern] with -modern-only, so the hub speaks 2026-07-28 to it and
// its test_input_required_result_elicitation answers input_required, and
// [servers.legacy] dual-era, which the hub opens with initialize, so the same
// tool asks with an elicitation/create request in the middle of the call.
// The tool greets the name the client's answer carries ("Hello, NAME!"), so
// its result shows that the client's own answer reached the upstream. The
// policy holds both tools; a watcher approves each hold it sees with
// `sigil-hub holds approve`, and each call must have needed exactly one
// approval: the retry that carries the answer is authorized again without
// asking the person anew.

// mrtrTool is the fixture's tool that asks for a name (elicitation key
// user_name, internal/conformanceserver/mrtr.go).
const mrtrTool = "test_input_required_result_elicitation"

// mrtrServers are the hub's two upstreams: the fixture speaking only
// 2026-07-28, and the fixture dual-era (spoken to in the 2025 era).
var mrtrServers = []string{"modern", "legacy"}

const clientsMRTRPolicy = `version: 2.0.0

## mcp

allowed_tools: modern.*, legacy.*
require_approval: modern.test_input_required_result_elicitation, legacy.test_input_required_result_elicitation

## execution_limits

max_tool_calls_per_task: 100000
`

// upstreamEras are the hub's log lines that say which protocol it settled
// on with each upstream: 2026-07-28 with the -modern-only fixture, a 2025
// one with the dual-era fixture (docs/protocol.md#mcp-revisions, Upstreams).
var upstreamEras = map[string]*regexp.Regexp{
	"modern": regexp.MustCompile(`upstream ready server_name=modern .*protocol_version=2026-07-28`),
	"legacy": regexp.MustCompile(`upstream ready server_name=legacy .*protocol_version=2025-`),
}

// mrtrSetup is the hub's config and policy, and the config folder the hub
// and `sigil-hub holds` share (the admin token file).
type mrtrSetup struct {
	config, home string
}

func newMRTRSetup(t *testing.T) mrtrSetup {
	t.Helper()
	fixture := conformanceFixture(t)
	dir := t.TempDir()
	policy := writePolicy(t, dir, clientsMRTRPolicy)
	cfg := writeConfig(t, `policy = `+quoteTOML(policy)+`

[servers.modern]
command = `+quoteTOML(fixture)+`
args = ["-stdio", "-modern-only"]
server_id = "modern"

[servers.legacy]
command = `+quoteTOML(fixture)+`
args = ["-stdio"]
server_id = "legacy"
`)
	return mrtrSetup{config: cfg, home: filepath.Join(dir, "home")}
}

// env is the hub's environment on top of baseEnv: the shared config folder.
func (s mrtrSetup) env() []string {
	return []string{"XDG_CONFIG_HOME=" + s.home, "HOME=" + s.home}
}

// hubArgs run the hub in hub mode; a held call waits up to a minute.
func (s mrtrSetup) hubArgs() []string {
	return []string{"--config", s.config, "--overlay", "none", "--pending-timeout", "60000"}
}

// mrtrAnswer is the name a client answers for server's tool: distinct per
// client and call, so a result cannot come from another call's answer.
func mrtrAnswer(client, server string) string { return client + "-" + server }

// holdApprover approves every call held by the hubs whose holds URL shows in
// a log, as a person at `sigil-hub holds` would, and records which server's
// tool each approval was for.
type holdApprover struct {
	home     string
	log      *testbuf.Buffer
	stop     chan struct{}
	done     chan struct{}
	mu       sync.Mutex
	approved map[string][]string // "SERVER TOOL" → hold ids
	errs     []string
}

var (
	holdsURLPattern = regexp.MustCompile(`holds list --sign-url (http://127\.0\.0\.1:[0-9]+)`)
	pendingPattern  = regexp.MustCompile(`(?m)^(hold-[0-9a-f]+)\s+PENDING\s`)
	approvedPattern = regexp.MustCompile(`^approved hold-[0-9a-f]+ \((.*)\)`)
)

func startHoldApprover(t *testing.T, home string, log *testbuf.Buffer) *holdApprover {
	a := &holdApprover{home: home, log: log, stop: make(chan struct{}), done: make(chan struct{}), approved: map[string][]string{}}
	go a.run(t)
	t.Cleanup(a.finish)
	return a
}

func (a *holdApprover) run(t *testing.T) {
	defer close(a.done)
	s := offlineSetup{cfgHome: a.home}
	for {
		select {
		case <-a.stop:
			return
		case <-time.After(100 * time.Millisecond):
		}
		seen := map[string]bool{}
		for _, m := range holdsURLPattern.FindAllStringSubmatch(a.log.String(), -1) {
			base := m[1]
			if seen[base] {
				continue
			}
			seen[base] = true
			out, err := holdsCLI(t, s, base, "list")
			if err != nil {
				continue // a hub that has exited (a probe, or an earlier connection)
			}
			for _, p := range pendingPattern.FindAllStringSubmatch(out, -1) {
				// "approved hold-… (SERVER TOOL)"
				out, err := holdsCLI(t, s, base, "approve", p[1])
				m := approvedPattern.FindStringSubmatch(out)
				a.mu.Lock()
				if err != nil || m == nil {
					a.errs = append(a.errs, fmt.Sprintf("approve %s: %s %v", p[1], out, err))
				} else {
					a.approved[m[1]] = append(a.approved[m[1]], p[1])
				}
				a.mu.Unlock()
			}
		}
	}
}

// finish stops the watcher (after the round it is in) and returns what it
// approved, per held call's label.
func (a *holdApprover) finish() {
	select {
	case <-a.stop:
	default:
		close(a.stop)
	}
	<-a.done
}

// approvalsFor returns the holds approved for server's tool.
func (a *holdApprover) approvalsFor(server string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var ids []string
	for label, got := range a.approved {
		if strings.HasPrefix(label, server+" ") && strings.Contains(label, mrtrTool) {
			ids = append(ids, got...)
		}
	}
	return ids
}

// mrtrOutcome is what one client saw: the version it negotiated, each
// exposed tool's result text, and how many elicitations it answered.
type mrtrOutcome struct {
	Version      string                `json:"version"`
	Era          string                `json:"era"`
	Elicitations int                   `json:"elicitations"`
	Results      map[string]mrtrResult `json:"results"`
	Error        string                `json:"error"`
}

// mrtrResult is one call's result: its text content, and isError.
type mrtrResult struct {
	Text    string `json:"text"`
	IsError bool   `json:"isError"`
}

// checkMRTR holds a client's outcome to the promise: it negotiated era, each
// call completed with the client's own answer, each call was approved once,
// and each upstream was spoken to in its era.
func checkMRTR(t *testing.T, client, era string, got mrtrOutcome, a *holdApprover, hubLog string) {
	t.Helper()
	a.finish()
	if got.Error != "" {
		t.Fatalf("%s: %s", client, got.Error)
	}
	if got.Version != era {
		t.Errorf("%s negotiated protocol %q, want %q", client, got.Version, era)
	}
	for _, server := range mrtrServers {
		tool := server + "__" + mrtrTool
		want := "Hello, " + mrtrAnswer(client, server) + "!"
		if r := got.Results[tool]; r.Text != want || r.IsError {
			t.Errorf("%s: %s answered %q (isError %v), want %q: the client's answer did not reach the %s upstream",
				client, tool, r.Text, r.IsError, want, server)
		}
		if ids := a.approvalsFor(server); len(ids) != 1 {
			t.Errorf("%s: %s needed %d approvals %v, want 1 (the retry with the answer must not be held again)", client, tool, len(ids), ids)
		}
	}
	if got.Elicitations != len(mrtrServers) {
		t.Errorf("%s answered %d elicitations, want %d (one per call)", client, got.Elicitations, len(mrtrServers))
	}
	a.mu.Lock()
	for _, e := range a.errs {
		t.Errorf("%s: %s", client, e)
	}
	a.mu.Unlock()
	for _, server := range mrtrServers {
		if !upstreamEras[server].MatchString(hubLog) {
			t.Errorf("the hub's log lacks %q: [servers.%s] was not spoken to in the era the test is about", upstreamEras[server], server)
		}
	}
}

// ---- go-sdk ----

// goSDKMRTR connects go-sdk v1.8 at era to the hub (a command for stdio, or
// a URL) and calls both upstreams' asking tool, its ElicitationHandler
// accepting with the call's answer (at 2026-07-28 the SDK fulfils
// input_required with it; at 2025-11-25 it answers elicitation/create).
func goSDKMRTR(t *testing.T, client, era string, tr gosdk.Transport) mrtrOutcome {
	t.Helper()
	var mu sync.Mutex
	var answer string
	out := mrtrOutcome{Results: map[string]mrtrResult{}}
	c := gosdk.NewClient(&gosdk.Implementation{Name: "go-sdk-mrtr", Version: "1.8.0"}, &gosdk.ClientOptions{
		ElicitationHandler: func(context.Context, *gosdk.ElicitRequest) (*gosdk.ElicitResult, error) {
			mu.Lock()
			defer mu.Unlock()
			out.Elicitations++
			return &gosdk.ElicitResult{Action: "accept", Content: map[string]any{"name": answer}}, nil
		},
	})
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	cs, err := c.Connect(ctx, tr, &gosdk.ClientSessionOptions{ProtocolVersion: era})
	if err != nil {
		t.Fatalf("%s: connect: %v", client, err)
	}
	defer cs.Close()
	if r := cs.InitializeResult(); r != nil {
		out.Version = r.ProtocolVersion
	}
	for _, server := range mrtrServers {
		mu.Lock()
		answer = mrtrAnswer(client, server)
		mu.Unlock()
		tool := server + "__" + mrtrTool
		r, err := cs.CallTool(ctx, &gosdk.CallToolParams{Name: tool, Arguments: map[string]any{}})
		if err != nil {
			out.Error = fmt.Sprintf("tools/call %s: %v", tool, err)
			return out
		}
		var text []string
		for _, c := range r.Content {
			if tc, ok := c.(*gosdk.TextContent); ok {
				text = append(text, tc.Text)
			}
		}
		out.Results[tool] = mrtrResult{strings.Join(text, "\n"), r.IsError}
	}
	mu.Lock()
	defer mu.Unlock()
	return out
}

// TestGoSDKClientMultiRoundTripThroughHub: go-sdk v1.8's client at
// 2026-07-28 and pinned to 2025-11-25, over stdio and Streamable HTTP, calls
// a held tool of a 2026-07-28 upstream and of a 2025 one that each need an
// elicitation answered mid-call: one approval per call, and the client's
// answer reaches the upstream.
func TestGoSDKClientMultiRoundTripThroughHub(t *testing.T) {
	t.Parallel()
	for _, era := range []string{eraModern, eraLegacy} {
		for _, tr := range []string{"stdio", "http"} {
			t.Run(era+"/"+tr, func(t *testing.T) {
				t.Parallel()
				s := newMRTRSetup(t)
				client := "go-sdk-" + era + "-" + tr
				var transport gosdk.Transport
				var log *testbuf.Buffer
				if tr == "http" {
					var url string
					url, log = startHTTPHub(t, s.env(), s.hubArgs()...)
					transport = &gosdk.StreamableClientTransport{Endpoint: url}
				} else {
					cmd := exec.Command(hubBin, s.hubArgs()...)
					cmd.Env = baseEnv(s.env()...)
					cmd.Dir = t.TempDir()
					log = &testbuf.Buffer{}
					cmd.Stderr = log
					transport = &gosdk.CommandTransport{Command: cmd}
				}
				t.Cleanup(func() {
					if t.Failed() {
						t.Logf("hub stderr:\n%s", log.String())
					}
				})
				a := startHoldApprover(t, s.home, log)
				got := goSDKMRTR(t, client, era, transport)
				checkMRTR(t, client, era, got, a, log.String())
			})
		}
	}
}

// ---- mcp-go (github.com/mark3labs/mcp-go) ----

// mcpGoElicitation answers every elicitation with the answer of the call in
// flight.
type mcpGoElicitation struct {
	mu     sync.Mutex
	answer string
	count  int
}

func (h *mcpGoElicitation) Elicit(context.Context, mcpgo.ElicitationRequest) (*mcpgo.ElicitationResult, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.count++
	return &mcpgo.ElicitationResult{ElicitationResponse: mcpgo.ElicitationResponse{
		Action: mcpgo.ElicitationResponseActionAccept, Content: map[string]any{"name": h.answer}}}, nil
}

// mcpGoMRTR connects mcp-go v1.2.1's client (server/discover first; pinned
// to 2025-11-25 for era 2025-11-25) to the hub and calls both upstreams'
// asking tool; its elicitation handler fulfils input_required at 2026-07-28
// and answers elicitation/create at 2025-11-25.
func mcpGoMRTR(t *testing.T, client, era string, tp transport.Interface) mrtrOutcome {
	t.Helper()
	h := &mcpGoElicitation{}
	opts := []mcpclient.ClientOption{mcpclient.WithElicitationHandler(h)}
	if era == eraLegacy {
		opts = append(opts, mcpclient.WithProtocolVersion(eraLegacy))
	}
	c := mcpclient.NewClient(tp, opts...)
	if err := c.Start(context.Background()); err != nil {
		t.Fatalf("%s: start: %v", client, err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	req := mcpgo.InitializeRequest{}
	req.Params.ClientInfo = mcpgo.Implementation{Name: "mcp-go-mrtr", Version: "1.2.1"}
	req.Params.Capabilities.Elicitation = &mcpgo.ElicitationCapability{}
	if _, err := c.Initialize(ctx, req); err != nil {
		t.Fatalf("%s: connect: %v", client, err)
	}
	out := mrtrOutcome{Version: c.ProtocolVersion(), Results: map[string]mrtrResult{}}
	for _, server := range mrtrServers {
		h.mu.Lock()
		h.answer = mrtrAnswer(client, server)
		h.mu.Unlock()
		tool := server + "__" + mrtrTool
		call := mcpgo.CallToolRequest{}
		call.Params.Name = tool
		call.Params.Arguments = map[string]any{}
		r, err := c.CallTool(ctx, call)
		if err != nil {
			out.Error = fmt.Sprintf("tools/call %s: %v", tool, err)
			return out
		}
		var text []string
		for _, c := range r.Content {
			if tc, ok := c.(mcpgo.TextContent); ok {
				text = append(text, tc.Text)
			}
		}
		out.Results[tool] = mrtrResult{strings.Join(text, "\n"), r.IsError}
	}
	h.mu.Lock()
	out.Elicitations = h.count
	h.mu.Unlock()
	return out
}

// TestMCPGoClientMultiRoundTripThroughHub: mcp-go v1.2.1's client at
// 2026-07-28 and pinned to 2025-11-25, over stdio and Streamable HTTP, calls
// both upstreams' held asking tool: one approval per call, and its answer
// reaches the upstream.
func TestMCPGoClientMultiRoundTripThroughHub(t *testing.T) {
	t.Parallel()
	for _, era := range []string{eraModern, eraLegacy} {
		for _, tr := range []string{"stdio", "http"} {
			t.Run(era+"/"+tr, func(t *testing.T) {
				t.Parallel()
				s := newMRTRSetup(t)
				client := "mcp-go-" + era + "-" + tr
				var tp transport.Interface
				var log *testbuf.Buffer
				if tr == "http" {
					var url string
					url, log = startHTTPHub(t, s.env(), s.hubArgs()...)
					h, err := transport.NewStreamableHTTP(url)
					if err != nil {
						t.Fatal(err)
					}
					tp = h
				} else {
					log = &testbuf.Buffer{}
					env := baseEnv(s.env()...)
					dir := t.TempDir()
					tp = transport.NewStdioWithOptions(hubBin, nil, s.hubArgs(),
						transport.WithCommandStderrWriter(log),
						transport.WithCommandFunc(func(ctx context.Context, command string, _ []string, args []string) (*exec.Cmd, error) {
							cmd := exec.Command(command, args...)
							cmd.Env = env
							cmd.Dir = dir
							return cmd, nil
						}))
				}
				t.Cleanup(func() {
					if t.Failed() {
						t.Logf("hub stderr:\n%s", log.String())
					}
				})
				a := startHoldApprover(t, s.home, log)
				got := mcpGoMRTR(t, client, era, tp)
				checkMRTR(t, client, era, got, a, log.String())
			})
		}
	}
}

// ---- TypeScript SDK v2 and v1 (testdata/npm/sdk-client/mrtr-calls.mjs) ----

// tsMRTR runs mrtr-calls.mjs with sdk at era against the hub: over stdio
// (url "") the script spawns the hub itself and the hub's stderr shows in
// the script's; over HTTP the hub runs here.
func tsMRTR(t *testing.T, pkg, sdk, era, tr string) {
	t.Helper()
	node, script := tsNode(t, pkg, "mrtr-calls.mjs")
	s := newMRTRSetup(t)
	client := "tssdk-" + sdk + "-" + era + "-" + tr
	log := &testbuf.Buffer{}
	endpoint := tsProbeTarget{Label: "hub"}
	if tr == "http" {
		endpoint.URL, log = startHTTPHub(t, s.env(), s.hubArgs()...)
	} else {
		endpoint.Command, endpoint.Args, endpoint.Cwd = hubBin, s.hubArgs(), t.TempDir()
		endpoint.Env = map[string]string{}
		for _, kv := range baseEnv(s.env()...) {
			if k, v, ok := strings.Cut(kv, "="); ok {
				endpoint.Env[k] = v // a later duplicate wins, as in exec
			}
		}
	}
	type call struct {
		Tool      string            `json:"tool"`
		Arguments map[string]any    `json:"arguments"`
		Answer    map[string]string `json:"answer"`
	}
	spec := struct {
		SDK      string        `json:"sdk"`
		Era      string        `json:"era"`
		Endpoint tsProbeTarget `json:"endpoint"`
		Calls    []call        `json:"calls"`
	}{SDK: sdk, Era: era, Endpoint: endpoint}
	for _, server := range mrtrServers {
		spec.Calls = append(spec.Calls, call{Tool: server + "__" + mrtrTool, Arguments: map[string]any{},
			Answer: map[string]string{"name": mrtrAnswer(client, server)}})
	}
	specJSON, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	// A guard against a hung client: the script has its own watchdog.
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, node, script, string(specJSON))
	cmd.Env = baseEnv()
	cmd.Dir = t.TempDir()
	var stdout bytes.Buffer
	stderr := &testbuf.Buffer{}
	cmd.Stdout = &stdout
	cmd.Stderr = stderr
	if tr == "stdio" {
		log = stderr
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("mrtr-calls.mjs stderr:\n%s", stderr.String())
			if tr == "http" {
				t.Logf("hub stderr:\n%s", log.String())
			}
		}
	})
	a := startHoldApprover(t, s.home, log)
	runErr := cmd.Run()
	var got mrtrOutcome
	sc := bufio.NewScanner(&stdout)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	if !sc.Scan() || json.Unmarshal(sc.Bytes(), &got) != nil {
		t.Fatalf("mrtr-calls.mjs wrote no outcome (%v): %.300q", runErr, stdout.String())
	}
	if runErr != nil && got.Error == "" {
		t.Errorf("node mrtr-calls.mjs: %v", runErr)
	}
	checkMRTR(t, client, era, got, a, log.String())
	wantEra := map[string]string{eraModern: "modern", eraLegacy: "legacy"}[era]
	if sdk == "v2" && got.Era != wantEra {
		t.Errorf("%s: the SDK's era is %q, want %q", client, got.Era, wantEra)
	}
}

// TestTSSDKv2ClientMultiRoundTripThroughHub: the TypeScript SDK v2 client
// with versionNegotiation auto (2026-07-28: the SDK fulfils input_required
// with its elicitation/create handler) and in its default 2025 mode, over
// stdio (and at 2026-07-28 over HTTP), calls both upstreams' held asking
// tool: one approval per call, and its answer reaches the upstream.
func TestTSSDKv2ClientMultiRoundTripThroughHub(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ era, tr string }{{eraModern, "stdio"}, {eraLegacy, "stdio"}, {eraModern, "http"}} {
		t.Run(c.era+"/"+c.tr, func(t *testing.T) {
			t.Parallel()
			tsMRTR(t, "client", "v2", c.era, c.tr)
		})
	}
}

// TestTSSDKv1ClientMultiRoundTripThroughHub: the TypeScript SDK v1 client
// (2025 era only: it answers elicitation/create), over stdio and HTTP, calls
// both upstreams' held asking tool: one approval per call, and its answer
// reaches the upstream.
func TestTSSDKv1ClientMultiRoundTripThroughHub(t *testing.T) {
	t.Parallel()
	for _, tr := range []string{"stdio", "http"} {
		t.Run(eraLegacy+"/"+tr, func(t *testing.T) {
			t.Parallel()
			tsMRTR(t, "sdk", "v1", eraLegacy, tr)
		})
	}
}
