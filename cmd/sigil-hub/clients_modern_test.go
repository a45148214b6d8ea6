package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
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

// Real clients of both MCP eras, each connected three ways to the same
// upstream, our dual-era fixture internal/conformanceserver: directly, through
// sigil-hub wrapping it (single-wrap, names unchanged) and through sigil-hub in
// hub mode (the fixture as [servers.test], names test__X). Each client must
// see through the hub what it sees directly, names aside, and must have
// negotiated the era it was set up for (docs/protocol.md#mcp-revisions): a
// 2026-07-28 client that silently fell back to initialize fails.
//
// What is compared (decoded JSON, exposed names mapped back): tools/list
// (every tool with its inputSchema), tools/call of the content tools (text,
// image, embedded resource, mixed, a tool error), prompts/list and
// prompts/get, resources/list, resources/templates/list and resources/read
// (text, binary, template), and a tools/list_changed notification (via
// subscriptions/listen for a 2026-07-28 client, unsolicited for a 2025 one)
// followed by the changed tools/list.
//
// Not compared: what the hub stamps on a 2026-07-28 result by design (its own
// serverInfo, its cache hints: docs/protocol.md#mcp-revisions), and multi
// round-trip requests (input_required results and their retries), which are
// left to tests of their own.

const (
	eraModern = "2026-07-28"
	eraLegacy = "2025-11-25"
)

// hubModePrefix is what hub mode puts before the fixture's names: the server
// is "test" and the separator the default "__".
const hubModePrefix = "test__"

// clientsPolicy allows every tool of the fixture, wrapped with --server-id
// conformance (as testdata/conformance/warranty.md does for the suite).
const clientsPolicy = `version: 2.0.0

## mcp

allowed_tools: conformance.*

## execution_limits

max_tool_calls_per_task: 100000
`

var (
	fixtureOnce sync.Once
	fixturePath string
	fixtureErr  error
)

// conformanceFixture builds internal/conformanceserver once per test binary
// next to hubBin (TestMain removes that folder).
func conformanceFixture(t *testing.T) string {
	t.Helper()
	fixtureOnce.Do(func() {
		fixturePath = filepath.Join(filepath.Dir(hubBin), "conformanceserver")
		out, err := exec.Command("go", "build", "-o", fixturePath, "../../internal/conformanceserver").CombinedOutput()
		if err != nil {
			fixtureErr = fmt.Errorf("build internal/conformanceserver: %v\n%s", err, out)
		}
	})
	if fixtureErr != nil {
		t.Fatal(fixtureErr)
	}
	return fixturePath
}

// fixtureHTTP starts a fixture of its own on a free loopback port and
// returns its /mcp URL. Each endpoint gets its own: the list-change hook
// toggles a tool, so a shared fixture would show each side a different list.
func fixtureHTTP(t *testing.T) string {
	t.Helper()
	cmd := exec.Command(conformanceFixture(t), "-addr", "127.0.0.1:0")
	cmd.Env = baseEnv()
	stderr := &testbuf.Buffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("fixture stderr:\n%s", stderr.String())
		}
	})
	re := regexp.MustCompile(`serving MCP at (http://127\.0\.0\.1:\d+/mcp)`)
	var url string
	eventually(t, "the fixture's HTTP listener", func() bool {
		if m := re.FindStringSubmatch(stderr.String()); m != nil {
			url = m[1]
			return true
		}
		return false
	})
	return url
}

// clientsPolicyFile writes clientsPolicy into the test's temp dir.
func clientsPolicyFile(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "warranty.md")
	if err := os.WriteFile(p, []byte(clientsPolicy), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// endpoint is one way to reach the fixture: a command to spawn (stdio) or a
// URL (Streamable HTTP).
type endpoint struct {
	label  string   // direct, single-wrap or hub
	prefix string   // put before the fixture's tool and prompt names
	argv   []string // stdio: the command and its arguments
	env    []string // stdio: the command's environment
	url    string   // HTTP
}

func (e endpoint) String() string {
	if e.url != "" {
		return e.label + " " + e.url
	}
	return e.label + " " + strings.Join(e.argv, " ")
}

// endpoints returns the fixture directly, through single-wrap and through hub
// mode, all over transport ("stdio" or "http"); the hub's upstream is reached
// over the same transport as the hub.
func endpoints(t *testing.T, tr string) []endpoint {
	t.Helper()
	fixture := conformanceFixture(t)
	policy := clientsPolicyFile(t)
	switch tr {
	case "stdio":
		cfg := writeConfig(t, `policy = `+quoteTOML(policy)+`

[servers.test]
command = `+quoteTOML(fixture)+`
args = ["-stdio"]
server_id = "conformance"
`)
		return []endpoint{
			{label: "direct", argv: []string{fixture, "-stdio"}, env: baseEnv()},
			{label: "single-wrap", argv: []string{hubBin, "--server-id", "conformance", "--policy", policy, "--overlay", "none", "--", fixture, "-stdio"}, env: baseEnv()},
			{label: "hub", prefix: hubModePrefix, argv: []string{hubBin, "--config", cfg, "--overlay", "none"}, env: baseEnv()},
		}
	case "http":
		direct := fixtureHTTP(t)
		wrapped, _ := startHTTPHub(t, nil, "--remote", fixtureHTTP(t), "--server-id", "conformance", "--policy", policy, "--overlay", "none")
		cfg := writeConfig(t, `policy = `+quoteTOML(policy)+`

[servers.test]
url = `+quoteTOML(fixtureHTTP(t))+`
server_id = "conformance"
`)
		hub, _ := startHTTPHub(t, nil, "--config", cfg, "--overlay", "none")
		return []endpoint{
			{label: "direct", url: direct},
			{label: "single-wrap", url: wrapped},
			{label: "hub", prefix: hubModePrefix, url: hub},
		}
	}
	t.Fatalf("unknown transport %q", tr)
	return nil
}

// stdioCmd is the exec.Cmd of a stdio endpoint, its stderr kept for the log.
func (e endpoint) stdioCmd(t *testing.T) *exec.Cmd {
	cmd := exec.Command(e.argv[0], e.argv[1:]...)
	cmd.Env = e.env
	cmd.Dir = t.TempDir()
	stderr := &testbuf.Buffer{}
	cmd.Stderr = stderr
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s stderr:\n%s", e.label, stderr.String())
		}
	})
	return cmd
}

// mcpView is what one client saw of one endpoint: probe name → result as
// decoded JSON, plus the protocol version it negotiated.
type mcpView struct {
	Version string         `json:"version"`
	Probes  map[string]any `json:"probes"`
}

// Tools, prompts and resources the probes use: names are the fixture's own
// (internal/conformanceserver/catalog.go and diagnostics.go).
var (
	probeToolCalls = []string{"test_simple_text", "test_image_content", "test_embedded_resource", "test_multiple_content_types", "test_error_handling"}
	probePrompts   = []struct {
		name string
		args map[string]string
	}{
		{"test_simple_prompt", nil},
		{"test_prompt_with_arguments", map[string]string{"arg1": "first", "arg2": "second"}},
		{"test_prompt_with_embedded_resource", map[string]string{"resourceUri": "test://probe-embedded"}},
		{"test_prompt_with_image", nil},
	}
	probeReads = []string{"test://static-text", "test://static-binary", "test://template/42/data"}
)

const (
	triggerToolChange = "test_trigger_tool_change"
	dynamicToolName   = "test_dynamic_tool"
)

// probeNames are the names collectView (and view-probes.mjs) records.
func probeNames() []string {
	names := []string{"tools/list", "prompts/list", "resources/list", "resources/templates/list",
		"tools/call " + triggerToolChange, "notifications/tools/list_changed", "tools/list after list_changed"}
	for _, n := range probeToolCalls {
		names = append(names, "tools/call "+n)
	}
	for _, p := range probePrompts {
		names = append(names, "prompts/get "+p.name)
	}
	for _, uri := range probeReads {
		names = append(names, "resources/read "+uri)
	}
	return names
}

// probeClient is one MCP client library, connected.
type probeClient interface {
	version() string
	listTools(ctx context.Context) (any, error)
	callTool(ctx context.Context, name string) (any, error)
	listPrompts(ctx context.Context) (any, error)
	getPrompt(ctx context.Context, name string, args map[string]string) (any, error)
	listResources(ctx context.Context) (any, error)
	listResourceTemplates(ctx context.Context) (any, error)
	readResource(ctx context.Context, uri string) (any, error)
	// toolsChanged is closed or signalled when a tools/list_changed arrives
	// (the client opened whatever it needs to receive one at connect).
	toolsChanged() <-chan struct{}
	close()
}

// asJSON turns a typed result into decoded JSON (what the client saw, in
// the shape it decoded it).
func asJSON(v any, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	var out any
	return out, json.Unmarshal(b, &out)
}

// collectView runs every probe against c; names are the fixture's with
// prefix put in front.
func collectView(t *testing.T, c probeClient, e endpoint) mcpView {
	t.Helper()
	prefix := e.prefix
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	v := mcpView{Version: c.version(), Probes: map[string]any{}}
	probe := func(name string, r any, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %s: %v", e, name, err)
		}
		v.Probes[name] = r
	}
	r, err := c.listTools(ctx)
	probe("tools/list", r, err)
	for _, name := range probeToolCalls {
		r, err := c.callTool(ctx, prefix+name)
		probe("tools/call "+name, r, err)
	}
	r, err = c.listPrompts(ctx)
	probe("prompts/list", r, err)
	for _, p := range probePrompts {
		r, err := c.getPrompt(ctx, prefix+p.name, p.args)
		probe("prompts/get "+p.name, r, err)
	}
	r, err = c.listResources(ctx)
	probe("resources/list", r, err)
	r, err = c.listResourceTemplates(ctx)
	probe("resources/templates/list", r, err)
	for _, uri := range probeReads {
		r, err := c.readResource(ctx, uri)
		probe("resources/read "+uri, r, err)
	}

	// The list change: the trigger adds the dynamic tool and the fixture
	// says so; the client must hear it, then list the new tool. A change
	// heard before the trigger (the hub's own first publish of its view can
	// reach a listen opened while it starts) is dropped; one heard after it
	// must be followed by a list with the new tool, at the latest after a
	// further notification (a client re-lists on each).
	drained := 0
	for len(c.toolsChanged()) > 0 {
		<-c.toolsChanged()
		drained++
	}
	if drained > 0 {
		t.Logf("%s: %d tools/list_changed before the trigger", e.label, drained)
	}
	r, err = c.callTool(ctx, prefix+triggerToolChange)
	probe("tools/call "+triggerToolChange, r, err)
	deadline := time.After(10 * time.Second)
	for heard := 0; ; {
		select {
		case <-c.toolsChanged():
			heard++
		case <-deadline:
			t.Fatalf("%s: no notifications/tools/list_changed followed by a tools/list with %s within 10 s of calling %s (%d heard)",
				e, dynamicToolName, prefix+triggerToolChange, heard)
		}
		r, err = c.listTools(ctx)
		if err != nil || strings.Contains(fmt.Sprint(r), prefix+dynamicToolName) {
			v.Probes["notifications/tools/list_changed"] = true
			probe("tools/list after list_changed", r, err)
			break
		}
		t.Logf("%s: tools/list after notification %d lacks %s", e.label, heard, prefix+dynamicToolName)
	}
	return v
}

// hubStamped are the result members the hub sets itself on a 2026-07-28
// result, by design (docs/protocol.md#mcp-revisions): its own serverInfo in
// _meta, and cache hints (ttlMs 0, cacheScope private) of its own.
var hubStamped = []string{"ttlMs", "cacheScope"}

// normalizeView maps the exposed names back to the fixture's (strip prefix),
// orders lists by name and drops what the hub stamps by design, so that
// what remains must be equal.
func normalizeView(t *testing.T, v mcpView, prefix string) map[string]any {
	t.Helper()
	out := make(map[string]any, len(v.Probes))
	for probe, r := range v.Probes {
		m, ok := r.(map[string]any)
		if !ok {
			out[probe] = r
			continue
		}
		m = cloneMap(m)
		for _, k := range hubStamped {
			delete(m, k)
		}
		if meta, ok := m["_meta"].(map[string]any); ok {
			meta = cloneMap(meta)
			delete(meta, "io.modelcontextprotocol/serverInfo")
			if len(meta) == 0 {
				delete(m, "_meta")
			} else {
				m["_meta"] = meta
			}
		}
		for _, list := range []string{"tools", "prompts"} {
			items, ok := m[list].([]any)
			if !ok {
				continue
			}
			items = slices.Clone(items)
			for i, it := range items {
				o, ok := it.(map[string]any)
				if !ok {
					continue
				}
				o = cloneMap(o)
				name, _ := o["name"].(string)
				if !strings.HasPrefix(name, prefix) {
					t.Errorf("%s: %q does not start with %q", probe, name, prefix)
				}
				o["name"] = strings.TrimPrefix(name, prefix)
				items[i] = o
			}
			sortByKey(items, "name")
			m[list] = items
		}
		if items, ok := m["resources"].([]any); ok {
			items = slices.Clone(items)
			sortByKey(items, "uri")
			m["resources"] = items
		}
		if items, ok := m["resourceTemplates"].([]any); ok {
			items = slices.Clone(items)
			sortByKey(items, "uriTemplate")
			m["resourceTemplates"] = items
		}
		out[probe] = m
	}
	return out
}

func cloneMap(m map[string]any) map[string]any {
	c := make(map[string]any, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func sortByKey(items []any, key string) {
	sort.SliceStable(items, func(i, j int) bool {
		a, _ := items[i].(map[string]any)
		b, _ := items[j].(map[string]any)
		x, _ := a[key].(string)
		y, _ := b[key].(string)
		return x < y
	})
}

// compareViews fails the test for every probe whose normalized result
// through the hub differs from the direct one.
func compareViews(t *testing.T, direct mcpView, through mcpView, e endpoint) {
	t.Helper()
	// Every probe must have run on both sides: two empty views are equal.
	for _, probe := range probeNames() {
		if _, ok := direct.Probes[probe]; !ok {
			t.Errorf("direct: %s did not run", probe)
		}
	}
	want := normalizeView(t, direct, "")
	got := normalizeView(t, through, e.prefix)
	names := make([]string, 0, len(want))
	for k := range want {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, probe := range names {
		g, ok := got[probe]
		if !ok {
			t.Errorf("%s: %s missing through the hub", e.label, probe)
			continue
		}
		if !reflect.DeepEqual(want[probe], g) {
			wb, _ := json.Marshal(want[probe])
			gb, _ := json.Marshal(g)
			t.Errorf("%s: %s differs from direct (names aside)\n direct: %s\n    hub: %s", e.label, probe, wb, gb)
		}
	}
	for probe := range got {
		if _, ok := want[probe]; !ok {
			t.Errorf("%s: %s seen through the hub only", e.label, probe)
		}
	}
	// A check that cannot pass vacuously: the list change showed up.
	if !strings.Contains(fmt.Sprint(got["tools/list after list_changed"]), dynamicToolName) {
		t.Errorf("%s: tools/list after list_changed lacks %s", e.label, dynamicToolName)
	}
}

// seeThroughHub connects a client built by dial to each endpoint, checks it
// negotiated era, and compares the hub's endpoints with the direct one.
func seeThroughHub(t *testing.T, tr, era string, dial func(t *testing.T, e endpoint) probeClient) {
	t.Helper()
	eps := endpoints(t, tr)
	views := make([]mcpView, len(eps))
	for i, e := range eps {
		c := dial(t, e)
		if v := c.version(); v != era {
			t.Fatalf("%s: the client negotiated protocol %q, want %q", e, v, era)
		}
		views[i] = collectView(t, c, e)
		c.close()
	}
	for i := 1; i < len(eps); i++ {
		compareViews(t, views[0], views[i], eps[i])
	}
}

// ---- go-sdk (github.com/modelcontextprotocol/go-sdk) ----

type goSDKProbe struct {
	cs      *gosdk.ClientSession
	changed chan struct{}
}

func dialGoSDK(t *testing.T, e endpoint, era string) probeClient {
	t.Helper()
	p := &goSDKProbe{changed: make(chan struct{}, 16)}
	c := gosdk.NewClient(&gosdk.Implementation{Name: "go-sdk-probe", Version: "1.8.0"}, &gosdk.ClientOptions{
		ToolListChangedHandler: func(context.Context, *gosdk.ToolListChangedRequest) {
			select {
			case p.changed <- struct{}{}:
			default:
			}
		},
	})
	var tr gosdk.Transport
	if e.url != "" {
		tr = &gosdk.StreamableClientTransport{Endpoint: e.url}
	} else {
		tr = &gosdk.CommandTransport{Command: e.stdioCmd(t)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cs, err := c.Connect(ctx, tr, &gosdk.ClientSessionOptions{ProtocolVersion: era})
	if err != nil {
		t.Fatalf("go-sdk connect to %s: %v", e, err)
	}
	p.cs = cs
	t.Cleanup(func() { cs.Close() })
	return p
}

func (p *goSDKProbe) version() string {
	if r := p.cs.InitializeResult(); r != nil {
		return r.ProtocolVersion
	}
	return ""
}

func (p *goSDKProbe) listTools(ctx context.Context) (any, error) {
	return asJSON(p.cs.ListTools(ctx, &gosdk.ListToolsParams{}))
}

func (p *goSDKProbe) callTool(ctx context.Context, name string) (any, error) {
	return asJSON(p.cs.CallTool(ctx, &gosdk.CallToolParams{Name: name, Arguments: map[string]any{}}))
}

func (p *goSDKProbe) listPrompts(ctx context.Context) (any, error) {
	return asJSON(p.cs.ListPrompts(ctx, &gosdk.ListPromptsParams{}))
}

func (p *goSDKProbe) getPrompt(ctx context.Context, name string, args map[string]string) (any, error) {
	return asJSON(p.cs.GetPrompt(ctx, &gosdk.GetPromptParams{Name: name, Arguments: args}))
}

func (p *goSDKProbe) listResources(ctx context.Context) (any, error) {
	return asJSON(p.cs.ListResources(ctx, &gosdk.ListResourcesParams{}))
}

func (p *goSDKProbe) listResourceTemplates(ctx context.Context) (any, error) {
	return asJSON(p.cs.ListResourceTemplates(ctx, &gosdk.ListResourceTemplatesParams{}))
}

func (p *goSDKProbe) readResource(ctx context.Context, uri string) (any, error) {
	return asJSON(p.cs.ReadResource(ctx, &gosdk.ReadResourceParams{URI: uri}))
}

func (p *goSDKProbe) toolsChanged() <-chan struct{} { return p.changed }
func (p *goSDKProbe) close()                        { p.cs.Close() }

// TestGoSDKClientSeesThroughHub: the official Go SDK's client (go-sdk v1.8),
// at 2026-07-28 (its default: server/discover, per-request _meta,
// subscriptions/listen) and pinned to 2025-11-25 (initialize), over stdio and
// Streamable HTTP, sees through single-wrap and hub mode what it sees of the
// fixture directly, names aside.
func TestGoSDKClientSeesThroughHub(t *testing.T) {
	t.Parallel()
	for _, era := range []string{eraModern, eraLegacy} {
		for _, tr := range []string{"stdio", "http"} {
			t.Run(era+"/"+tr, func(t *testing.T) {
				t.Parallel()
				seeThroughHub(t, tr, era, func(t *testing.T, e endpoint) probeClient { return dialGoSDK(t, e, era) })
			})
		}
	}
}

// ---- mcp-go (github.com/mark3labs/mcp-go) ----

type mcpGoProbe struct {
	c       *mcpclient.Client
	changed chan struct{}
	stop    func()
}

func dialMCPGo(t *testing.T, e endpoint, era string) probeClient {
	t.Helper()
	p := &mcpGoProbe{changed: make(chan struct{}, 16), stop: func() {}}
	var opts []mcpclient.ClientOption
	if era == eraLegacy {
		opts = append(opts, mcpclient.WithProtocolVersion(eraLegacy))
	}
	var tp transport.Interface
	if e.url != "" {
		var topts []transport.StreamableHTTPCOption
		if era == eraLegacy {
			// A 2025 client hears list changes on its session's GET stream.
			topts = append(topts, transport.WithContinuousListening())
		}
		h, err := transport.NewStreamableHTTP(e.url, topts...)
		if err != nil {
			t.Fatal(err)
		}
		tp = h
	} else {
		stderr := &testbuf.Buffer{}
		tp = transport.NewStdioWithOptions(e.argv[0], nil, e.argv[1:],
			transport.WithCommandStderrWriter(stderr),
			transport.WithCommandFunc(func(ctx context.Context, command string, _ []string, args []string) (*exec.Cmd, error) {
				cmd := exec.Command(command, args...)
				cmd.Env = e.env
				cmd.Dir = t.TempDir()
				return cmd, nil
			}))
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("%s stderr:\n%s", e.label, stderr.String())
			}
		})
	}
	c := mcpclient.NewClient(tp, opts...)
	p.c = c
	acked := make(chan struct{}, 1)
	c.OnNotification(func(n mcpgo.JSONRPCNotification) {
		var ch chan struct{}
		switch n.Method {
		case string(mcpgo.MethodNotificationToolsListChanged):
			ch = p.changed
		case string(mcpgo.MethodNotificationSubscriptionsAcknowledged):
			ch = acked
		default:
			return
		}
		select {
		case ch <- struct{}{}:
		default:
		}
	})
	// Start's context bounds the transport's life (the GET stream of a
	// 2025 HTTP session, the stdio process), not just the start.
	if err := c.Start(context.Background()); err != nil {
		t.Fatalf("mcp-go start %s: %v", e, err)
	}
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req := mcpgo.InitializeRequest{}
	req.Params.ClientInfo = mcpgo.Implementation{Name: "mcp-go-probe", Version: "1.2.1"}
	if _, err := c.Initialize(ctx, req); err != nil {
		t.Fatalf("mcp-go connect to %s: %v", e, err)
	}
	if mcpgo.IsModernProtocol(c.ProtocolVersion()) {
		stop, err := c.ListenAsync(context.Background(), mcpgo.SubscriptionFilter{ToolsListChanged: true},
			func(err error) { t.Logf("%s: subscriptions/listen ended: %v", e.label, err) })
		if err != nil {
			t.Fatalf("mcp-go subscriptions/listen on %s: %v", e, err)
		}
		p.stop = stop
		select {
		case <-acked:
		case <-ctx.Done():
			t.Fatalf("%s: no notifications/subscriptions/acknowledged for the listen", e)
		}
	}
	return p
}

func (p *mcpGoProbe) version() string { return p.c.ProtocolVersion() }

func (p *mcpGoProbe) listTools(ctx context.Context) (any, error) {
	return asJSON(p.c.ListTools(ctx, mcpgo.ListToolsRequest{}))
}

func (p *mcpGoProbe) callTool(ctx context.Context, name string) (any, error) {
	req := mcpgo.CallToolRequest{}
	req.Params.Name = name
	req.Params.Arguments = map[string]any{}
	return asJSON(p.c.CallTool(ctx, req))
}

func (p *mcpGoProbe) listPrompts(ctx context.Context) (any, error) {
	return asJSON(p.c.ListPrompts(ctx, mcpgo.ListPromptsRequest{}))
}

func (p *mcpGoProbe) getPrompt(ctx context.Context, name string, args map[string]string) (any, error) {
	req := mcpgo.GetPromptRequest{}
	req.Params.Name = name
	req.Params.Arguments = args
	return asJSON(p.c.GetPrompt(ctx, req))
}

func (p *mcpGoProbe) listResources(ctx context.Context) (any, error) {
	return asJSON(p.c.ListResources(ctx, mcpgo.ListResourcesRequest{}))
}

func (p *mcpGoProbe) listResourceTemplates(ctx context.Context) (any, error) {
	return asJSON(p.c.ListResourceTemplates(ctx, mcpgo.ListResourceTemplatesRequest{}))
}

func (p *mcpGoProbe) readResource(ctx context.Context, uri string) (any, error) {
	req := mcpgo.ReadResourceRequest{}
	req.Params.URI = uri
	return asJSON(p.c.ReadResource(ctx, req))
}

func (p *mcpGoProbe) toolsChanged() <-chan struct{} { return p.changed }

func (p *mcpGoProbe) close() {
	p.stop()
	p.c.Close()
}

// TestMCPGoClientSeesThroughHub: mcp-go v1.2.1's client, which probes
// server/discover and settles on 2026-07-28 with a modern server, and the
// same client pinned to 2025-11-25, over stdio and Streamable HTTP, sees
// through single-wrap and hub mode what it sees of the fixture directly,
// names aside.
func TestMCPGoClientSeesThroughHub(t *testing.T) {
	t.Parallel()
	for _, era := range []string{eraModern, eraLegacy} {
		for _, tr := range []string{"stdio", "http"} {
			t.Run(era+"/"+tr, func(t *testing.T) {
				t.Parallel()
				seeThroughHub(t, tr, era, func(t *testing.T, e endpoint) probeClient { return dialMCPGo(t, e, era) })
			})
		}
	}
}
