package main

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/server"
)

// modernCall posts a 2026-07-28 tools/call with the headers a conformant
// client sends, and returns the HTTP status and the decoded JSON-RPC message.
func modernCall(t *testing.T, url, tool string, caps string, extra string) (int, map[string]any) {
	t.Helper()
	body := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"` + tool + `","arguments":{}` + extra +
		`,"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":` + caps + `}}}`
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	req.Header.Set("MCP-Protocol-Version", "2026-07-28")
	req.Header.Set("Mcp-Method", "tools/call")
	req.Header.Set("Mcp-Name", tool)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	raw, _ := io.ReadAll(res.Body)
	if i := bytes.Index(raw, []byte("data: ")); i >= 0 { // an SSE answer: its last event
		lines := strings.Split(strings.TrimSpace(string(raw)), "\n")
		raw = []byte(strings.TrimPrefix(lines[len(lines)-1], "data: "))
	}
	var msg map[string]any
	if err := json.Unmarshal(raw, &msg); err != nil {
		t.Fatalf("%s: not JSON-RPC: %v: %s", tool, err, raw)
	}
	if id, _ := msg["id"].(float64); id != 7 {
		t.Fatalf("%s: the answer does not carry the request id 7: %s", tool, raw)
	}
	return res.StatusCode, msg
}

func startFixture(t *testing.T) string {
	t.Helper()
	f := newFixture("")
	ts := httptest.NewServer(f.edgeHTTP(server.NewStreamableHTTPServer(f.mcp)))
	t.Cleanup(ts.Close)
	return ts.URL
}

func errorCode(msg map[string]any) float64 {
	e, _ := msg["error"].(map[string]any)
	c, _ := e["code"].(float64)
	return c
}

// server-stateless expects -32021 with HTTP 400 and requiredCapabilities as an
// object keyed by the capability; mcp-go alone would answer -32603.
func TestMissingSamplingCapabilityIs32021With400AndObjectData(t *testing.T) {
	url := startFixture(t)
	status, msg := modernCall(t, url, "test_missing_capability", `{}`, "")
	if status != http.StatusBadRequest || errorCode(msg) != -32021 {
		t.Fatalf("got HTTP %d, %v; want 400 and -32021", status, msg)
	}
	data, _ := msg["error"].(map[string]any)["data"].(map[string]any)
	req, _ := data["requiredCapabilities"].(map[string]any)
	if _, ok := req["sampling"].(map[string]any); !ok {
		t.Fatalf("data.requiredCapabilities.sampling is not an object: %v", msg)
	}
	status, msg = modernCall(t, url, "test_missing_capability", `{"sampling":{}}`, "")
	if status != http.StatusOK || msg["result"] == nil {
		t.Fatalf("with sampling declared: HTTP %d, %v; want a result", status, msg)
	}
}

// input-required-result-tampered-state: an altered requestState is refused
// with -32602, the state as issued is accepted.
func TestAlteredRequestStateIsRefusedAndTheIssuedOneAccepted(t *testing.T) {
	url := startFixture(t)
	const tool = "test_input_required_result_tampered_state"
	_, first := modernCall(t, url, tool, `{"elicitation":{}}`, "")
	result, _ := first["result"].(map[string]any)
	st, _ := result["requestState"].(string)
	if result["resultType"] != "input_required" || st == "" {
		t.Fatalf("first call: want input_required with a requestState, got %v", first)
	}
	answer := `,"inputResponses":{"confirm":{"action":"accept","content":{"ok":true}}}`
	status, msg := modernCall(t, url, tool, `{"elicitation":{}}`, answer+`,"requestState":"`+st+`-TAMPERED"`)
	if status != http.StatusBadRequest || errorCode(msg) != -32602 {
		t.Fatalf("tampered: HTTP %d, %v; want 400 and -32602", status, msg)
	}
	status, msg = modernCall(t, url, tool, `{"elicitation":{}}`, answer+`,"requestState":"`+st+`"`)
	done, _ := msg["result"].(map[string]any)
	if status != http.StatusOK || done == nil || done["resultType"] == "input_required" {
		t.Fatalf("untampered retry: HTTP %d, %v; want a complete result", status, msg)
	}
}

// input-required-result-multi-round: each round issues a new state, and only
// the third call completes.
func TestMultiRoundIssuesANewStateEachRound(t *testing.T) {
	url := startFixture(t)
	const tool = "test_input_required_result_multi_round"
	extra := ""
	var states []string
	for round, key := range []string{"step1", "step2"} {
		_, msg := modernCall(t, url, tool, `{"elicitation":{}}`, extra)
		result, _ := msg["result"].(map[string]any)
		st, _ := result["requestState"].(string)
		if result["resultType"] != "input_required" || st == "" {
			t.Fatalf("round %d: want input_required with a requestState, got %v", round+1, msg)
		}
		if reqs, _ := result["inputRequests"].(map[string]any); reqs[key] == nil {
			t.Fatalf("round %d: want inputRequests.%s, got %v", round+1, key, msg)
		}
		for _, old := range states {
			if old == st {
				t.Fatalf("round %d reused the state of an earlier round", round+1)
			}
		}
		states = append(states, st)
		extra = `,"inputResponses":{"` + key + `":{"action":"accept","content":{"name":"Alice","color":"blue"}}},"requestState":"` + st + `"`
	}
	_, msg := modernCall(t, url, tool, `{"elicitation":{}}`, extra)
	result, _ := msg["result"].(map[string]any)
	if result == nil || result["resultType"] == "input_required" {
		t.Fatalf("round 3: want a complete result, got %v", msg)
	}
}

// The stdio edge applies the same checks, and writes every other line through
// to mcp-go untouched.
func TestStdioEdgeAnswersItsCasesAndPassesTheRest(t *testing.T) {
	f := newFixture("")
	meta := `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}`
	in := `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"test_missing_capability","arguments":{},` + meta + "}}\n" +
		`{"jsonrpc":"2.0","id":2,"method":"tools/list","params":{` + meta + "}}\n"
	var through, out bytes.Buffer
	if err := f.edgeLines(strings.NewReader(in), &through, &out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), `"code":-32021`) || !strings.Contains(out.String(), `"id":1`) {
		t.Fatalf("answered on stdout: %q; want the -32021 for id 1", out.String())
	}
	if through.String() != strings.SplitAfter(in, "\n")[1] {
		t.Fatalf("passed to mcp-go: %q; want exactly the tools/list line", through.String())
	}
}
