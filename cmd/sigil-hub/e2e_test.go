package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/sigilcore/sigil-hub/internal/signtest"
)

const testKey = "sk_sigil_test_CANARY_e2e_key_7f3a"

// signEnv points the hub at a Sign double with the test key.
func signEnv(s *signtest.Server) []string {
	return []string{"SIGIL_API_KEY=" + testKey, "SIGIL_SIGN_URL=" + s.URL}
}

// assertNoSecret checks the key never reached the hub's logs
// (docs/protocol.md#json-rpc-errors).
func assertNoSecret(t *testing.T, h *hubProc) {
	t.Helper()
	if strings.Contains(h.stderr.String(), testKey) || strings.Contains(h.stderr.String(), "CANARY") {
		t.Fatalf("the API key appears in the hub's stderr:\n%s", h.stderr.String())
	}
}

// TestSingleWrapStdio: `sigil-hub -- <server>` keeps names unchanged, and a
// call is authorized with the upstream's serverId before it is forwarded with
// exactly the bytes that were authorized
// (docs/protocol.md#the-intent-for-a-tool-call, #arguments-sent-as-received).
func TestSingleWrapStdio(t *testing.T) {
	sign := signtest.New(t, signtest.Options{APIKey: testKey})
	log := newUpstreamLog(t)
	env := append(signEnv(sign), "SIGIL_HUB_TEST_UPSTREAM=1", "TESTUPSTREAM_LOG="+string(log))
	h := startHub(t, env, "--server-id", "files", "--", selfExe(t))

	names := h.toolNames()
	if !slices.Contains(names, "echo") || slices.ContainsFunc(names, func(n string) bool { return strings.Contains(n, "__") }) {
		t.Fatalf("single-wrap names = %v, want the upstream's own names (echo, ...)", names)
	}
	// An SDK client re-encodes arguments, so the byte-exact check speaks
	// raw JSON-RPC: integers beyond 2^53 (that a double holds exactly),
	// \u2028, <&> and escapes unchanged. (One a double cannot hold is
	// refused: docs/security.md.)
	raw := startRaw(t, env, "--server-id", "files", "--", selfExe(t))
	args := `{"n":100000000000000000000,"s":"\u2028<&>\u0000\"","f":1.50, "e":1E3}`
	raw.send(`{"jsonrpc":"2.0","id":9007199254740993,"method":"tools/call","params":{"name":"echo","arguments":` + args + `}}`)
	resp := raw.await("9007199254740993")
	var res struct {
		Content []struct{ Text string } `json:"content"`
	}
	if err := json.Unmarshal(resp["result"], &res); err != nil || len(res.Content) != 1 {
		t.Fatalf("result %s: %v", resp["result"], err)
	}
	if got := res.Content[0].Text; got != args {
		t.Fatalf("upstream received arguments %s, want the exact bytes %s", got, args)
	}
	reqs := sign.Requests()
	if len(reqs) != 1 {
		t.Fatalf("Sign saw %d requests, want 1", len(reqs))
	}
	r := reqs[0]
	if r.Action != "mcp.files.echo" || r.ServerID != "files" || r.Tool != "echo" {
		t.Fatalf("intent action=%q serverId=%q tool=%q", r.Action, r.ServerID, r.Tool)
	}
	if !strings.Contains(string(r.Body), `"arguments":`+args) {
		t.Fatalf("authorized body does not carry the argument bytes verbatim: %s", r.Body)
	}
	if r.Header.Get("Authorization") != "Bearer "+testKey {
		t.Fatalf("Authorization header = %q", r.Header.Get("Authorization"))
	}
	var agent struct {
		AgentID   string `json:"agentId"`
		Framework string `json:"framework"`
	}
	_ = json.Unmarshal(r.Body, &agent)
	if agent.AgentID != "raw-client" || agent.Framework != "mcp-proxy" {
		t.Fatalf("agentId=%q framework=%q, want the client's name and mcp-proxy", agent.AgentID, agent.Framework)
	}
	assertNoSecret(t, h)
}

// TestHubModeNamespacesAndServerIDs: three upstreams behind one hub, each
// call authorized with its own upstream's serverId.
func TestHubModeNamespacesAndServerIDs(t *testing.T) {
	sign := signtest.New(t, signtest.Options{APIKey: testKey})
	logs := map[string]upstreamLog{"alpha": newUpstreamLog(t), "beta": newUpstreamLog(t), "gamma": newUpstreamLog(t)}
	cfg := "separator = \"__\"\n"
	for _, n := range []string{"alpha", "beta", "gamma"} {
		cfg += fakeServer(t, n, logs[n], "")
	}
	h := startHub(t, signEnv(sign), "--config", writeConfig(t, cfg))
	names := h.toolNames()
	for _, want := range []string{"alpha__echo", "beta__echo", "gamma__echo", "gamma__crash"} {
		if !slices.Contains(names, want) {
			t.Fatalf("tools = %v, missing %s", names, want)
		}
	}
	var wg sync.WaitGroup
	for _, n := range []string{"alpha", "beta", "gamma"} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got := resultText(t, h.call(n+"__echo", fmt.Sprintf(`{"who":%q}`, n)))
			if got != fmt.Sprintf(`{"who":%q}`, n) {
				t.Errorf("%s answered %s", n, got)
			}
		}()
	}
	wg.Wait()
	seen := map[string]string{}
	for _, r := range sign.Requests() {
		seen[r.ServerID] = r.Action
	}
	for _, n := range []string{"alpha", "beta", "gamma"} {
		if seen[n] != "mcp."+n+".echo" {
			t.Fatalf("serverId %s: action %q (all: %v)", n, seen[n], seen)
		}
		if calls := logs[n].toolCalls(t); len(calls) != 1 || !strings.Contains(calls[0], `"name":"echo"`) {
			t.Fatalf("upstream %s received %v, want one call of its own tool name", n, calls)
		}
	}
}

// TestDecisionsNeverForwardWithoutApproval drives every non-approval and
// checks the upstream never saw a tools/call (the adversarial side of
// "nothing is sent upstream before an approval").
func TestDecisionsNeverForwardWithoutApproval(t *testing.T) {
	tests := []struct {
		name      string
		reply     signtest.Reply
		bypass    bool
		wantCode  int
		wantError string
		forwarded bool
	}{
		{name: "denied", reply: signtest.Deny("SIGIL_POLICY_VIOLATION", "not today"), wantCode: -32001, wantError: "SIGIL_POLICY_VIOLATION"},
		{name: "denied 403", reply: signtest.Reply{Status: 403, Body: []byte(`{"status":"DENIED","error_code":"SIGIL_BASH_BLOCKED"}`)}, wantCode: -32001, wantError: "SIGIL_BASH_BLOCKED"},
		{name: "401", reply: signtest.Reply{Status: 401, Body: []byte(`{"status":"ERROR"}`)}, wantCode: -32002, wantError: "SIGIL_AUTH_FAILURE"},
		{name: "401 with bypass", reply: signtest.Reply{Status: 401}, bypass: true, wantCode: -32002, wantError: "SIGIL_AUTH_FAILURE"},
		{name: "403 not a denial", reply: signtest.Reply{Status: 403, Body: []byte(`forbidden`)}, wantCode: -32002, wantError: "SIGIL_AUTH_FAILURE"},
		{name: "409 no policy", reply: signtest.Reply{Status: 409}, wantCode: -32001, wantError: "SIGIL_NO_POLICY"},
		{name: "429", reply: signtest.Reply{Status: 429}, bypass: true, wantCode: -32001, wantError: "SIGIL_RATE_LIMITED"},
		{name: "503 fails closed", reply: signtest.Reply{Status: 503}, wantCode: -32001, wantError: "SIGIL_UNREACHABLE"},
		{name: "503 with bypass", reply: signtest.Reply{Status: 503}, bypass: true, forwarded: true},
		{name: "500", reply: signtest.Reply{Status: 500}, bypass: true, wantCode: -32001, wantError: "SIGIL_RESPONSE_INVALID"},
		{name: "garbage body", reply: signtest.Reply{Body: []byte(`<html>ok</html>`)}, bypass: true, wantCode: -32001, wantError: "SIGIL_RESPONSE_INVALID"},
		{name: "unknown member on approval", reply: signtest.Reply{Body: []byte(`{"status":"APPROVED","fail_open":true}`)}, bypass: true, wantCode: -32001, wantError: "SIGIL_RESPONSE_INVALID"},
		{name: "HOLD literal", reply: signtest.Reply{Body: []byte(`{"status":"HOLD","hold_id":"h"}`)}, wantCode: -32001, wantError: "SIGIL_RESPONSE_INVALID"},
		{name: "duplicate status key", reply: signtest.Reply{Body: []byte(`{"status":"DENIED","status":"APPROVED","error_code":"X"}`)}, bypass: true, wantCode: -32001, wantError: "SIGIL_RESPONSE_INVALID"},
		{name: "redirect", reply: signtest.Reply{Status: 307, Header: map[string][]string{"Location": {"http://127.0.0.1:1/v1/authorize"}}}, bypass: true, wantCode: -32001, wantError: "SIGIL_RESPONSE_INVALID"},
		{name: "connection closed", reply: signtest.Reply{CloseConn: true}, wantCode: -32001, wantError: "SIGIL_UNREACHABLE"},
		{name: "approved", reply: signtest.Approve(), forwarded: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sign := signtest.New(t, signtest.Options{APIKey: testKey, Decide: func(signtest.Request) signtest.Reply { return tt.reply }})
			log := newUpstreamLog(t)
			args := []string{"--config", writeConfig(t, fakeServer(t, "files", log, ""))}
			if tt.bypass {
				args = append(args, "--unsafe-bypass")
			}
			h := startHub(t, signEnv(sign), args...)
			resp := h.call("files__echo", `{"path":"/etc/passwd"}`)
			if tt.forwarded {
				resultText(t, resp)
			} else {
				d := wantError(t, resp, tt.wantCode, tt.wantError)
				if d.ServerID != "files" || d.Tool != "echo" || d.Decision != "DENIED" {
					t.Fatalf("error.data = %+v, want server_id files, tool echo, decision DENIED (docs/protocol.md#json-rpc-errors)", d)
				}
				if !strings.Contains(resp.Error.Message, "files__echo") {
					t.Fatalf("message %q does not name the exposed tool", resp.Error.Message)
				}
			}
			calls := log.toolCalls(t)
			if tt.forwarded != (len(calls) == 1) || len(calls) > 1 {
				t.Fatalf("upstream received %d tools/call, forwarded=%v", len(calls), tt.forwarded)
			}
			if tt.bypass && tt.forwarded {
				// The log line is written before the call is forwarded, but
				// stderr reaches the test through its own pipe and copier.
				eventually(t, "ungoverned_tool_call in the log of a bypassed call", func() bool {
					return strings.Contains(h.stderr.String(), "ungoverned_tool_call")
				})
			}
			assertNoSecret(t, h)
		})
	}
}

// TestUnreachableSign: nothing listening at the Sign URL fails closed; with
// --unsafe-bypass the call goes through, loudly.
func TestUnreachableSign(t *testing.T) {
	for _, bypass := range []bool{false, true} {
		t.Run(fmt.Sprintf("bypass=%v", bypass), func(t *testing.T) {
			t.Parallel()
			log := newUpstreamLog(t)
			args := []string{"--config", writeConfig(t, fakeServer(t, "files", log, ""))}
			if bypass {
				args = append(args, "--unsafe-bypass")
			}
			h := startHub(t, []string{"SIGIL_API_KEY=" + testKey, "SIGIL_SIGN_URL=" + signtest.ClosedURL(t)}, args...)
			resp := h.call("files__echo", `{}`)
			if bypass {
				resultText(t, resp)
				if len(log.toolCalls(t)) != 1 {
					t.Fatalf("bypass: want one forwarded call")
				}
				eventually(t, "an ungoverned_tool_call log line", func() bool { // stderr may trail stdout
					return strings.Contains(h.stderr.String(), "ungoverned_tool_call")
				})
				return
			}
			d := wantError(t, resp, -32001, "SIGIL_UNREACHABLE")
			if d.Reason != "unreachable" || len(log.toolCalls(t)) != 0 {
				t.Fatalf("data %+v; upstream calls %d", d, len(log.toolCalls(t)))
			}
		})
	}
}
