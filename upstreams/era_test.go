package upstreams

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigilcore/sigil-hub/internal/strictjson"
	"github.com/sigilcore/sigil-hub/internal/testmodern"
	"golang.org/x/sync/errgroup"
)

// The era tests run this binary as internal/testmodern's server when
// testmodern.EnvMode is set (init runs before TestMain).
func init() {
	if os.Getenv(testmodern.EnvMode) != "" {
		testmodern.Main()
	}
}

// modernSpec returns a stdio spec running testmodern in mode, logging what
// it reads to logPath.
func modernSpec(t *testing.T, mode, logPath string) Spec {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Spec{
		Name:        "era-" + mode,
		Command:     exe,
		Environ:     os.Environ(),
		Env:         []string{testmodern.EnvMode + "=" + mode, testmodern.EnvLog + "=" + logPath},
		InitTimeout: testDeadline,
	}
}

// whoami calls the whoami tool with ctx and decodes what the upstream saw.
func whoami(t *testing.T, ctx context.Context, u *Upstream) map[string]any {
	t.Helper()
	res, err := callTool(ctx, u, "whoami", `{}`)
	if err != nil {
		t.Fatalf("whoami: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(resultText(t, res)), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestWithMetaKeepsParamsBytes: the request _meta goes into the params'
// own _meta (or a new one), a member of the same name there is replaced,
// and every other member keeps its bytes and its place.
func TestWithMetaKeepsParamsBytes(t *testing.T) {
	set := []metaMember{
		{"io.modelcontextprotocol/protocolVersion", []byte(`"2026-07-28"`)},
		{"io.modelcontextprotocol/clientCapabilities", []byte(`{"sampling":{}}`)},
	}
	for _, c := range []struct{ name, in, want string }{
		{"none", ``, `{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"sampling":{}}}}`},
		{"empty", `{}`, `{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"sampling":{}}}}`},
		{"arguments verbatim", `{"name":"t","arguments":{"b": 1,  "a":"<&>\u00e9\/"}}`,
			`{"name":"t","arguments":{"b": 1,  "a":"<&>\u00e9\/"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"sampling":{}}}}`},
		{"own _meta kept, same name replaced", `{"name":"t","_meta":{"progressToken":"p1","io.modelcontextprotocol/protocolVersion":"1999-01-01","x/att":"a"},"arguments":{}}`,
			`{"name":"t","_meta":{"progressToken":"p1","x/att":"a","io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"sampling":{}}},"arguments":{}}`},
		{"null _meta", `{"_meta":null}`, `{"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"sampling":{}}}}`},
		{"escaped names", `{"_met\u0061":{"io.modelcontextprotocol\/protocolVersion":"old","k":1}}`,
			`{"_meta":{"k":1,"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"sampling":{}}}}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			got, err := withMeta(json.RawMessage(c.in), set)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != c.want {
				t.Errorf("got  %s\nwant %s", got, c.want)
			}
			if err := strictjson.Validate(got, 0); err != nil {
				t.Errorf("not strict JSON: %v", err)
			}
		})
	}
	for _, bad := range []string{`[1]`, `{"_meta":1}`, `{"_meta":{},"_meta":{}}`} {
		if got, err := withMeta(json.RawMessage(bad), set); err == nil {
			t.Errorf("%s: got %s, want an error", bad, got)
		}
	}
}

// TestEraStdio: each kind of stdio upstream is detected as the 2026-07-28
// stdio binding says, and calls work in the era chosen.
func TestEraStdio(t *testing.T) {
	for _, c := range []struct {
		name, mode, era string
		modern          bool
		initialize      bool // initialize was sent
		discover        bool // server/discover was sent
		starts          int  // processes started
	}{
		{"modern-only", "modern", EraDefault, true, false, true, 1},
		{"dual-era, default: legacy", "dual", EraDefault, false, true, true, 1},
		{"dual-era, prefer modern", "dual", EraPreferModern, true, false, true, 1},
		{"legacy (-32600 to discover)", "legacy", EraDefault, false, true, true, 1},
		{"legacy, no probe", "legacy", EraLegacy, false, true, false, 1},
		{"silent on discover: timeout", "silent", EraDefault, false, true, true, 1},
		{"exits on discover: respawned", "exit", EraDefault, false, true, true, 2},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			logPath := filepath.Join(t.TempDir(), "log")
			spec := modernSpec(t, c.mode, logPath)
			spec.Era = c.era
			// Only silence has to wait the probe out: a short wait for it,
			// and for the others one a loaded machine does not run into.
			spec.ProbeTimeout = 10 * time.Second
			if c.mode == "silent" {
				spec.ProbeTimeout = 500 * time.Millisecond
			}
			u := start(t, spec, nil)
			snap := waitState(t, u, Ready)
			if snap.Modern() != c.modern {
				t.Errorf("modern = %v (protocol version %q), want %v", snap.Modern(), snap.ProtocolVersion, c.modern)
			}
			if !strings.Contains(strings.Join(names(snap.Tools), ","), "whoami") || len(snap.Prompts) != 1 || len(snap.Resources) != 1 {
				t.Errorf("listing: tools %v prompts %v resources %v", names(snap.Tools), names(snap.Prompts), names(snap.Resources))
			}
			if !bytes.Contains(snap.ServerInfo, []byte(`"testmodern"`)) || snap.Instructions != "testmodern "+c.mode {
				t.Errorf("serverInfo %s, instructions %q", snap.ServerInfo, snap.Instructions)
			}
			wantEra := map[bool]string{true: "modern", false: "legacy"}[c.modern]
			if got := whoami(t, t.Context(), u)["era"]; got != wantEra {
				t.Errorf("the upstream served the call as %v, want %s", got, wantEra)
			}
			log := readLog(t, logPath)
			if got := strings.Contains(log, `"method":"initialize"`); got != c.initialize {
				t.Errorf("initialize sent = %v, want %v; log:\n%s", got, c.initialize, log)
			}
			if got := strings.Contains(log, `"method":"server/discover"`); got != c.discover {
				t.Errorf("server/discover sent = %v, want %v; log:\n%s", got, c.discover, log)
			}
			if got := strings.Count(log, `{"testmodern":"start"}`); got != c.starts {
				t.Errorf("%d processes started, want %d", got, c.starts)
			}
			if c.modern && strings.Contains(log, `"method":"ping"`) {
				t.Errorf("ping sent to a modern upstream")
			}
			if strings.Contains(log, "notifications/cancelled") {
				t.Errorf("the probe was cancelled on the wire; log:\n%s", log)
			}
		})
	}
}

// TestEraVerdictKept: after a legacy verdict, a restart sends initialize
// without probing again.
func TestEraVerdictKept(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "log")
	spec := modernSpec(t, "exit", logPath)
	u := start(t, spec, nil)
	waitState(t, u, Ready)
	// Kill the child: the supervisor restarts it.
	if s := u.sess.Load(); s != nil && s.proc != nil {
		killGroup(s.proc)
	}
	waitFor(t, "a third process", func() bool { return strings.Count(readLog(t, logPath), `{"testmodern":"start"}`) == 3 })
	waitState(t, u, Ready)
	if n := strings.Count(readLog(t, logPath), `"method":"server/discover"`); n != 1 {
		t.Errorf("server/discover sent %d times, want once", n)
	}
}

// TestModernRequestMeta: a modern upstream (modern-only, or dual-era with
// EraPreferModern) sees the caller's capabilities, identity, log level and
// trace context from RequestMeta, the hub's own without one; the params'
// own members arrive as they were given.
func TestModernRequestMeta(t *testing.T) {
	for _, mode := range []string{"modern", "dual"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			logPath := filepath.Join(t.TempDir(), "log")
			spec := modernSpec(t, mode, logPath)
			spec.Era = EraPreferModern
			spec.Capabilities = json.RawMessage(`{"roots":{"listChanged":true}}`)
			spec.ClientVersion = "1.2.3"
			u := start(t, spec, nil)
			waitState(t, u, Ready)

			own := whoami(t, t.Context(), u)
			if ci, _ := own["clientInfo"].(map[string]any); ci["name"] != "sigil-hub" || ci["version"] != "1.2.3" {
				t.Errorf("without RequestMeta: clientInfo %v", own["clientInfo"])
			}
			if caps, _ := own["clientCapabilities"].(map[string]any); caps["roots"] == nil || caps["sampling"] != nil {
				t.Errorf("without RequestMeta: capabilities %v", own["clientCapabilities"])
			}

			ctx := WithRequestMeta(t.Context(), RequestMeta{
				Capabilities: json.RawMessage(`{"sampling":{}}`),
				ClientInfo:   json.RawMessage(`{"name":"caller","version":"9","title":"The Caller"}`),
				LogLevel:     "debug",
				Trace: []TraceMember{
					{Name: "traceparent", Value: json.RawMessage(`"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"`)},
					{Name: "x-other", Value: json.RawMessage(`"left out"`)},
				},
			})
			got := whoami(t, ctx, u)
			if got["era"] != "modern" || got["protocolVersion"] != "2026-07-28" || got["logLevel"] != "debug" {
				t.Errorf("upstream saw %v", got)
			}
			if ci, _ := got["clientInfo"].(map[string]any); ci["name"] != "caller" || ci["version"] != "9" {
				t.Errorf("clientInfo %v, want the caller's", got["clientInfo"])
			}
			if caps, _ := got["clientCapabilities"].(map[string]any); caps["sampling"] == nil || caps["roots"] != nil {
				t.Errorf("capabilities %v, want the caller's {sampling}", got["clientCapabilities"])
			}
			if m, _ := got["meta"].(map[string]any); m["traceparent"] != "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01" || m["x-other"] != nil {
				t.Errorf("_meta %v: want the traceparent, and nothing else of Trace", got["meta"])
			}

			// The hub's own _meta members (a progress token) stay, and the
			// arguments reach the upstream byte for byte.
			params, err := strictjson.Check([]byte(`{"name":"echo","arguments":{"b": 1,  "a":"<&>\u00e9"},"_meta":{"progressToken":"tok-1"}}`), 0)
			if err != nil {
				t.Fatal(err)
			}
			res, err := u.CallValid(ctx, "tools/call", params)
			if err != nil {
				t.Fatal(err)
			}
			if txt := resultText(t, res); txt != `{"b": 1,  "a":"<&>\u00e9"}` {
				t.Errorf("echo saw %s", txt)
			}
			log := readLog(t, logPath)
			if !strings.Contains(log, `"arguments":{"b": 1,  "a":"<&>\u00e9"},"_meta":{"progressToken":"tok-1","io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"sampling":{}},"io.modelcontextprotocol/clientInfo":{"name":"caller","version":"9","title":"The Caller"},"io.modelcontextprotocol/logLevel":"debug","traceparent":`) {
				t.Errorf("the tools/call line is not as built; log:\n%s", log)
			}
		})
	}
}

// TestModernResultTypePassesThrough: an input_required result reaches the
// caller as the upstream sent it.
func TestModernResultTypePassesThrough(t *testing.T) {
	u := start(t, modernSpec(t, "modern", filepath.Join(t.TempDir(), "log")), nil)
	waitState(t, u, Ready)
	ctx := WithRequestMeta(t.Context(), RequestMeta{Capabilities: json.RawMessage(`{"elicitation":{"form":{}}}`)})
	res, err := callTool(ctx, u, "ask", `{}`)
	if err != nil {
		t.Fatal(err)
	}
	var r struct {
		ResultType    string                     `json:"resultType"`
		InputRequests map[string]json.RawMessage `json:"inputRequests"`
		RequestState  string                     `json:"requestState"`
	}
	if err := json.Unmarshal(res, &r); err != nil || r.ResultType != "input_required" || r.InputRequests["q"] == nil || r.RequestState != "state-1" {
		t.Fatalf("result %s (%v), want input_required with inputRequests.q and requestState state-1", res, err)
	}
}

// TestModernListenRelists: a modern upstream's tools/list_changed arrives
// on the hub's subscriptions/listen and the tools are listed again; the
// listen's acknowledgement is not passed on as a notification.
func TestModernListenRelists(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "log")
	spec := modernSpec(t, "modern", logPath)
	var acks atomic.Int32
	spec.OnNotification = func(method string, params json.RawMessage) {
		if strings.HasPrefix(method, "notifications/subscriptions/") {
			acks.Add(1)
		}
	}
	u := start(t, spec, func(tn *tuning) { tn.debounce = 10 * time.Millisecond })
	waitState(t, u, Ready)
	if _, err := callTool(t.Context(), u, "add_tool", `{"name":"fresh"}`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "tool fresh listed", func() bool { return strings.Contains(strings.Join(names(u.Snapshot().Tools), ","), "fresh") })
	log := readLog(t, logPath)
	if !strings.Contains(log, `"method":"subscriptions/listen","params":{"notifications":{"toolsListChanged":true,"promptsListChanged":true,"resourcesListChanged":true},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28"`) {
		t.Errorf("no subscriptions/listen as expected; log:\n%s", log)
	}
	if acks.Load() != 0 {
		t.Errorf("the listen's acknowledgement was passed on")
	}
}

// TestModernLogLevel: logging/setLevel is not sent to a modern upstream;
// the level goes with the hub's own requests, so that its log messages
// come only once a level is set.
func TestModernLogLevel(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "log")
	spec := modernSpec(t, "modern", logPath)
	var logs atomic.Int32
	spec.OnNotification = func(method string, params json.RawMessage) {
		if method == "notifications/message" {
			logs.Add(1)
		}
	}
	u := start(t, spec, nil)
	waitState(t, u, Ready)
	if res, err := callTool(t.Context(), u, "log", `{}`); err != nil || resultText(t, res) != "logged" {
		t.Fatalf("log: %s %v", res, err)
	}
	if res, err := u.Call(t.Context(), "logging/setLevel", json.RawMessage(`{"level":"info"}`)); err != nil || string(res) != `{}` {
		t.Fatalf("logging/setLevel: %s %v", res, err)
	}
	if _, err := callTool(t.Context(), u, "log", `{}`); err != nil {
		t.Fatal(err)
	}
	// mcp-go writes notifications apart from responses: the message may
	// trail the answer.
	waitFor(t, "the log message", func() bool { return logs.Load() >= 1 })
	time.Sleep(100 * time.Millisecond)
	if n := logs.Load(); n != 1 {
		t.Errorf("%d log messages, want 1 (only the call made after setLevel)", n)
	}
	if strings.Contains(readLog(t, logPath), "logging/setLevel") {
		t.Errorf("logging/setLevel was sent")
	}
}

// httpRecord is one request a recording front saw.
type httpRecord struct {
	method string // HTTP method
	header http.Header
	body   string
}

// recordingFront serves h, recording every request; override, if set, may
// answer a request itself (returning true).
type recordingFront struct {
	mu       sync.Mutex
	seen     []httpRecord
	h        http.Handler
	override func(w http.ResponseWriter, r *http.Request, body []byte) bool
}

func (f *recordingFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	f.mu.Lock()
	f.seen = append(f.seen, httpRecord{r.Method, r.Header.Clone(), string(body)})
	f.mu.Unlock()
	if f.override != nil && f.override(w, r, body) {
		return
	}
	f.h.ServeHTTP(w, r)
}

func (f *recordingFront) requests() []httpRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]httpRecord(nil), f.seen...)
}

func (f *recordingFront) posted(method string) bool {
	for _, r := range f.requests() {
		if strings.Contains(r.body, `"method":"`+method+`"`) {
			return true
		}
	}
	return false
}

// modernHeader says a request carries 2026-07-28's version header.
func modernHeader(r *http.Request) bool { return r.Header.Get("Mcp-Protocol-Version") == "2026-07-28" }

// TestEraHTTP: each kind of remote upstream is detected as the 2026-07-28
// HTTP binding says: 2xx modern; a 4xx with another body legacy (then
// initialize as before); a 5xx an error, not a verdict.
func TestEraHTTP(t *testing.T) {
	plain := func(status int) func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		return func(w http.ResponseWriter, r *http.Request, body []byte) bool {
			if !modernHeader(r) {
				return false
			}
			http.Error(w, "unsupported MCP-Protocol-Version", status)
			return true
		}
	}
	for _, c := range []struct {
		name, mode, era string
		override        func(w http.ResponseWriter, r *http.Request, body []byte) bool
		modern          bool
	}{
		{"modern-only", "modern", EraDefault, nil, true},
		{"dual-era, default: legacy", "dual", EraDefault, nil, false},
		{"dual-era, prefer modern", "dual", EraPreferModern, nil, true},
		{"legacy: JSON-RPC -32600", "legacy", EraDefault, nil, false},
		{"legacy: plain 400", "dual", EraPreferModern, plain(http.StatusBadRequest), false},
		{"legacy: plain 404", "dual", EraPreferModern, plain(http.StatusNotFound), false},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			h, err := testmodern.Handler(c.mode, "remote-"+c.mode)
			if err != nil {
				t.Fatal(err)
			}
			f := &recordingFront{h: h, override: c.override}
			srv := httptest.NewServer(f)
			t.Cleanup(srv.Close) // after the upstream stops (cleanups run last first)
			u := start(t, Spec{Name: "remote", URL: srv.URL + "/mcp", Era: c.era, InitTimeout: testDeadline}, nil)
			snap := waitState(t, u, Ready)
			if snap.Modern() != c.modern {
				t.Fatalf("modern = %v (%q), want %v", snap.Modern(), snap.ProtocolVersion, c.modern)
			}
			wantEra := map[bool]string{true: "modern", false: "legacy"}[c.modern]
			if got := whoami(t, t.Context(), u)["era"]; got != wantEra {
				t.Errorf("served as %v, want %s", got, wantEra)
			}
			if !f.posted("server/discover") || f.posted("initialize") == c.modern {
				t.Errorf("discover sent %v, initialize sent %v", f.posted("server/discover"), f.posted("initialize"))
			}
			if !c.modern {
				return
			}
			var call *httpRecord
			for _, r := range f.requests() {
				if r.method != http.MethodPost {
					t.Errorf("a modern upstream got HTTP %s", r.method)
				}
				if r.header.Get("Mcp-Session-Id") != "" {
					t.Errorf("a modern request carried Mcp-Session-Id")
				}
				if strings.Contains(r.body, `"name":"whoami"`) {
					call = &r
				}
			}
			if call == nil || call.header.Get("Mcp-Method") != "tools/call" || call.header.Get("Mcp-Name") != "whoami" {
				t.Fatalf("tools/call headers: %v", call)
			}
			// A method the server lacks is an answer (HTTP 404 with
			// -32601), not a lost connection.
			_, err = u.Call(t.Context(), "nothing/here", nil)
			var rpc *RPCError
			if !errors.As(err, &rpc) || rpc.Code != codeMethodNotFound {
				t.Errorf("unknown method: %v, want -32601", err)
			}
			if st := u.Snapshot().State; st != Ready {
				t.Errorf("state %v after a 404 answer", st)
			}
			// No GET stream: list changes come on the hub's listen.
			if _, err := callTool(t.Context(), u, "add_tool", `{"name":"fresh"}`); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "tool fresh listed", func() bool { return strings.Contains(strings.Join(names(u.Snapshot().Tools), ","), "fresh") })
		})
	}
}

// TestEraHTTPServerErrorIsNoVerdict: a 5xx to the probe fails the
// connection attempt (retried later); it never falls back to initialize.
func TestEraHTTPServerErrorIsNoVerdict(t *testing.T) {
	h, err := testmodern.Handler("dual", "flaky")
	if err != nil {
		t.Fatal(err)
	}
	var fail atomic.Bool
	fail.Store(true)
	f := &recordingFront{h: h, override: func(w http.ResponseWriter, r *http.Request, body []byte) bool {
		if fail.Load() && bytes.Contains(body, []byte(`"server/discover"`)) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"jsonrpc":"2.0","id":1,"error":{"code":-32603,"message":"overloaded"}}`))
			return true
		}
		return false
	}}
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	u := start(t, Spec{Name: "remote", URL: srv.URL + "/mcp", Era: EraPreferModern, InitTimeout: testDeadline}, nil)
	snap := waitState(t, u, Backoff)
	if snap.Err == nil || !strings.Contains(snap.Err.Error(), "503") {
		t.Errorf("error %v, want the 503", snap.Err)
	}
	if f.posted("initialize") {
		t.Fatalf("a 5xx to server/discover led to initialize")
	}
	fail.Store(false)
	if snap := waitState(t, u, Ready); !snap.Modern() {
		t.Errorf("after the server recovered: protocol version %q", snap.ProtocolVersion)
	}
}

// TestModernResourceSubscription: 2026-07-28 has no resources/subscribe;
// the hub's subscribe becomes a URI in its listen's filter, answered once
// the reopened listen is acknowledged, and the resource's updates come
// through without the listen's own id. Unsubscribing reopens the listen
// without it, and no update follows.
func TestModernResourceSubscription(t *testing.T) {
	for _, mode := range []string{"stdio", "http"} {
		t.Run(mode, func(t *testing.T) {
			logPath := filepath.Join(t.TempDir(), "log")
			var spec Spec
			if mode == "stdio" {
				spec = modernSpec(t, "modern", logPath)
			} else {
				h, err := testmodern.Handler("modern", "")
				if err != nil {
					t.Fatal(err)
				}
				srv := httptest.NewServer(h)
				t.Cleanup(srv.Close)
				spec = Spec{Name: "m", URL: srv.URL}
			}
			updates := make(chan json.RawMessage, 8)
			spec.OnNotification = func(method string, params json.RawMessage) {
				if method == "notifications/resources/updated" {
					updates <- params
				}
			}
			u := start(t, spec, nil)
			waitState(t, u, Ready)
			uri := json.RawMessage(`{"uri":"test://modern"}`)
			if res, err := u.Call(t.Context(), "resources/subscribe", uri); err != nil || string(res) != `{}` {
				t.Fatalf("resources/subscribe: %s %v", res, err)
			}
			if res, err := callTool(t.Context(), u, "touch", `{}`); err != nil || resultText(t, res) != "touched" {
				t.Fatalf("touch: %s %v", res, err)
			}
			select {
			case p := <-updates:
				if !strings.Contains(string(p), `"uri":"test://modern"`) || strings.Contains(string(p), "subscriptionId") {
					t.Errorf("update params %s: want the uri and no subscriptionId", p)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no notifications/resources/updated after subscribing")
			}
			if res, err := u.Call(t.Context(), "resources/unsubscribe", uri); err != nil || string(res) != `{}` {
				t.Fatalf("resources/unsubscribe: %s %v", res, err)
			}
			// Touches that reach the listen before it is reopened may still
			// send updates: drain them until the upstream's newest listen
			// no longer has the resource, then no update may come.
			waitFor(t, "the listen reopened without the resource", func() bool {
				res, err := callTool(t.Context(), u, "touch", `{}`)
				return err == nil && resultText(t, res) == "no listen subscribed test://modern"
			})
			time.Sleep(100 * time.Millisecond)
			for len(updates) > 0 {
				<-updates
			}
			if res, err := callTool(t.Context(), u, "touch", `{}`); err != nil || resultText(t, res) != "no listen subscribed test://modern" {
				t.Fatalf("touch after unsubscribing: %s %v", res, err)
			}
			select {
			case p := <-updates:
				t.Errorf("an update after unsubscribing: %s", p)
			case <-time.After(200 * time.Millisecond):
			}
			// Subscriptions made at once each reopen the listen: every one
			// is answered, none refused for an acknowledgement meant for
			// the listen before.
			var g errgroup.Group
			for i := range 5 {
				g.Go(func() error {
					uri := fmt.Sprintf(`{"uri":"test://c/%d"}`, i)
					if res, err := u.Call(t.Context(), "resources/subscribe", json.RawMessage(uri)); err != nil || string(res) != `{}` {
						return fmt.Errorf("resources/subscribe %s: %s %v", uri, res, err)
					}
					return nil
				})
			}
			if err := g.Wait(); err != nil {
				t.Fatal(err)
			}
			if mode == "stdio" {
				if log := readLog(t, logPath); !strings.Contains(log, `"resourceSubscriptions":["test://modern"]`) || strings.Contains(log, `"method":"resources/subscribe"`) {
					t.Errorf("want a listen with resourceSubscriptions and no resources/subscribe sent; log:\n%s", log)
				}
			}
		})
	}
}

// TestEraHTTPVerdictEndsWhenTheHandshakeFails: a remote server's legacy
// verdict is kept across reconnections only while initialize works; once
// the server speaks only 2026-07-28 (an upgrade in place), the failed
// handshake sends the next connection back to the probe, as for stdio.
func TestEraHTTPVerdictEndsWhenTheHandshakeFails(t *testing.T) {
	legacy, err := testmodern.Handler("legacy", "before")
	if err != nil {
		t.Fatal(err)
	}
	upgraded, err := testmodern.Handler("modern", "after")
	if err != nil {
		t.Fatal(err)
	}
	// The upgraded server was restarted: it knows no session of before.
	var modern http.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Mcp-Session-Id") != "" {
			http.Error(w, "unknown session", http.StatusNotFound)
			return
		}
		upgraded.ServeHTTP(w, r)
	})
	var current atomic.Pointer[http.Handler]
	current.Store(&legacy)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { (*current.Load()).ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	u := start(t, Spec{Name: "remote", URL: srv.URL + "/mcp", InitTimeout: testDeadline}, func(tn *tuning) {
		tn.backoffMin, tn.backoffMax = 10*time.Millisecond, 50*time.Millisecond
		tn.pingInterval = 50 * time.Millisecond
	})
	if snap := waitState(t, u, Ready); snap.Modern() {
		t.Fatalf("modern before the upgrade: %q", snap.ProtocolVersion)
	}
	current.Store(&modern)
	waitFor(t, "the upgraded server spoken to in 2026-07-28", func() bool {
		s := u.Snapshot()
		return s.State == Ready && s.Modern()
	})
}
