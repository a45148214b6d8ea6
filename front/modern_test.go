package front

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// modernHandler is fakeHandler that records, for each request, the client
// context it was handed and what its Session answers a server→client
// request with.
type modernHandler struct {
	fakeHandler
	mu   sync.Mutex
	seen map[string]*ClientContext // by method
	ask  map[string]error          // by method: Session.Request's error
}

func (h *modernHandler) Handle(ctx context.Context, s Session, req *Request) (json.RawMessage, error) {
	var err error
	if req.Client != nil && req.Client.Modern { // a 2025 session would wait for the client's answer
		_, err = s.Request(ctx, nil, "roots/list", nil)
	}
	h.mu.Lock()
	if h.seen == nil {
		h.seen, h.ask = map[string]*ClientContext{}, map[string]error{}
	}
	h.seen[req.Method], h.ask[req.Method] = req.Client, err
	h.mu.Unlock()
	return h.fakeHandler.Handle(ctx, s, req)
}

const modernMeta = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"elicitation":{}},"io.modelcontextprotocol/clientInfo":{"name":"modern-client","version":"2.0"},"io.modelcontextprotocol/logLevel":"info","traceparent":"00-abc-def-01"}`

// TestModernRequestChecksInTheRevisionsOrder: a 2026-07-28 POST is checked
// in the order the revision fixes (a header that disagrees with the body
// is a mismatch before its version is judged), each failure answered in
// JSON-RPC with the status the HTTP binding gives its code.
func TestModernRequestChecksInTheRevisionsOrder(t *testing.T) {
	srv := httptest.NewServer(NewHTTP(&modernHandler{}, HTTPOptions{}))
	defer srv.Close()
	meta := func(version string) string {
		return `"_meta":{"io.modelcontextprotocol/protocolVersion":"` + version + `","io.modelcontextprotocol/clientCapabilities":{}}`
	}
	call := `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo","arguments":{},` + meta("2026-07-28") + `}}`
	hdr := map[string]string{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/call", "Mcp-Name": "echo"}
	with := func(k, v string) map[string]string {
		out := map[string]string{}
		for a, b := range hdr {
			out[a] = b
		}
		if v == "" {
			delete(out, k)
		} else {
			out[k] = v
		}
		return out
	}
	cases := []struct {
		name    string
		headers map[string]string
		body    string
		code    int // 0: a result
		status  int
	}{
		{"served", hdr, call, 0, 200},
		{"name in base64", with("Mcp-Name", "=?base64?ZWNobw==?="), call, 0, 200},
		{"no version header", with("MCP-Protocol-Version", ""), call, CodeHeaderMismatch, 400},
		{"no _meta", hdr, `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"echo"}}`, CodeInvalidParams, 400},
		{"header and _meta differ", hdr, strings.Replace(call, "2026-07-28", "v999.0.0", 1), CodeHeaderMismatch, 400},
		{"method header differs", with("Mcp-Method", "tools/list"), call, CodeHeaderMismatch, 400},
		{"name header differs", with("Mcp-Name", "other"), call, CodeHeaderMismatch, 400},
		{"name header missing", with("Mcp-Name", ""), call, CodeHeaderMismatch, 400},
		{"unsupported version", with("MCP-Protocol-Version", "v999.0.0"), strings.Replace(call, "2026-07-28", "v999.0.0", 1), CodeUnsupportedProtocol, 400},
		{"bad log level", hdr, strings.Replace(call, `"io.modelcontextprotocol/clientCapabilities":{}`, `"io.modelcontextprotocol/clientCapabilities":{},"io.modelcontextprotocol/logLevel":"loud"`, 1), CodeInvalidParams, 400},
		{"removed method", map[string]string{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "ping"}, `{"jsonrpc":"2.0","id":7,"method":"ping","params":{` + meta("2026-07-28") + `}}`, CodeMethodNotFound, 404},
		{"initialize, modern", map[string]string{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "initialize"}, `{"jsonrpc":"2.0","id":7,"method":"initialize","params":{"protocolVersion":"2026-07-28","capabilities":{},"clientInfo":{"name":"x","version":"1"},` + meta("2026-07-28") + `}}`, CodeMethodNotFound, 404},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			resp, body := post(t, srv.URL, c.headers, c.body)
			if resp.StatusCode != c.status {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, c.status, body)
			}
			if resp.Header.Get("Mcp-Session-Id") != "" {
				t.Errorf("a modern request got a session id")
			}
			var m struct {
				ID    json.RawMessage
				Error *struct {
					Code int
					Data struct{ Supported []string }
				}
			}
			if err := json.Unmarshal([]byte(body), &m); err != nil {
				t.Fatalf("answer is not JSON: %s", body)
			}
			if string(m.ID) != "7" {
				t.Errorf("id %s, want 7: %s", m.ID, body)
			}
			switch {
			case c.code == 0 && m.Error != nil:
				t.Fatalf("refused: %s", body)
			case c.code != 0 && (m.Error == nil || m.Error.Code != c.code):
				t.Fatalf("want error %d: %s", c.code, body)
			case c.code == CodeUnsupportedProtocol && (len(m.Error.Data.Supported) == 0 || m.Error.Data.Supported[0] != ModernVersion):
				t.Fatalf("-32022 does not list the versions the hub speaks: %s", body)
			}
		})
	}
}

// TestModernHTTPIsStateless: a modern client has no session: a GET or a
// DELETE is 405 (POST only), a notification is accepted and ignored, and a
// 2025 client on the same endpoint still gets its session.
func TestModernHTTPIsStateless(t *testing.T) {
	h := &modernHandler{}
	srv := httptest.NewServer(NewHTTP(h, HTTPOptions{}))
	defer srv.Close()
	for _, method := range []string{http.MethodGet, http.MethodDelete} {
		req, _ := http.NewRequest(method, srv.URL+"/mcp", nil)
		req.Header.Set("MCP-Protocol-Version", "2026-07-28")
		req.Header.Set("Accept", "text/event-stream")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed || resp.Header.Get("Allow") != "POST" {
			t.Errorf("%s with a modern version: %d Allow=%q, want 405 Allow=POST", method, resp.StatusCode, resp.Header.Get("Allow"))
		}
	}
	resp, body := post(t, srv.URL, map[string]string{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "notifications/cancelled"},
		`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1,`+modernMeta+`}}`)
	if resp.StatusCode != http.StatusAccepted || body != "" {
		t.Errorf("modern notification: %d %q, want 202 and no body", resp.StatusCode, body)
	}
	resp, body = post(t, srv.URL, map[string]string{"MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "tools/list"},
		`{"jsonrpc":"2.0","id":"a","method":"tools/list","params":{`+modernMeta+`}}`)
	if resp.StatusCode != 200 || !strings.Contains(body, `"result"`) {
		t.Fatalf("modern tools/list: %d %s", resp.StatusCode, body)
	}
	resp, body = post(t, srv.URL, nil, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"old","version":"1"}}}`)
	if resp.StatusCode != 200 || resp.Header.Get("Mcp-Session-Id") == "" {
		t.Fatalf("a 2025 initialize beside modern requests: %d %s", resp.StatusCode, body)
	}
	if n := h.liveCount(); n != 1 {
		t.Errorf("%d live sessions, want 1 (the 2025 client's; modern requests are never registered)", n)
	}
	checkModernContext(t, h, "tools/list")
}

// TestModernStdioServesBothEras: one stdio connection serves a 2025
// session and 2026-07-28 requests side by side; each modern request is
// handed its own client context, and its Session refuses server→client
// requests (the revision has none).
func TestModernStdioServesBothEras(t *testing.T) {
	h := &modernHandler{}
	cr, cw := io.Pipe()
	sr, sw := io.Pipe()
	done := make(chan error, 1)
	go func() { done <- ServeStdio(context.Background(), h, cr, sw, nil) }()
	out := bufio.NewScanner(sr)
	send := func(line string) string {
		t.Helper()
		if _, err := io.WriteString(cw, line+"\n"); err != nil {
			t.Fatal(err)
		}
		if !out.Scan() {
			t.Fatalf("no answer to %s", line)
		}
		return out.Text()
	}
	if got := send(`{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{` + modernMeta + `}}`); !strings.Contains(got, `"result"`) {
		t.Fatalf("modern tools/list before any initialize: %s", got)
	}
	checkModernContext(t, h, "tools/list")
	if got := send(`{"jsonrpc":"2.0","id":2,"method":"server/discover"}`); !strings.Contains(got, `"code":-32602`) {
		t.Errorf("server/discover without _meta: %s, want -32602", got)
	}
	if got := send(`{"jsonrpc":"2.0","id":3,"method":"tools/list"}`); !strings.Contains(got, "send initialize first") {
		t.Errorf("a 2025 request before initialize: %s", got)
	}
	if got := send(`{"jsonrpc":"2.0","id":4,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"old","version":"1"}}}`); !strings.Contains(got, `"result"`) {
		t.Fatalf("initialize: %s", got)
	}
	if got := send(`{"jsonrpc":"2.0","id":5,"method":"prompts/list"}`); !strings.Contains(got, `"result"`) {
		t.Fatalf("a 2025 request after initialize: %s", got)
	}
	h.mu.Lock()
	legacy := h.seen["prompts/list"]
	h.mu.Unlock()
	if legacy == nil || legacy.Modern || legacy.Info.Name != "old" {
		t.Errorf("the 2025 request's context: %+v", legacy)
	}
	if got := send(`{"jsonrpc":"2.0","id":6,"method":"ping","params":{` + modernMeta + `}}`); !strings.Contains(got, `"code":-32601`) {
		t.Errorf("modern ping: %s, want -32601", got)
	}
	if got := send(`{"jsonrpc":"2.0","id":7,"method":"ping"}`); !strings.Contains(got, `"result":{}`) {
		t.Errorf("2025 ping: %s", got)
	}
	cw.Close()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("ServeStdio did not return at EOF")
	}
}

func checkModernContext(t *testing.T, h *modernHandler, method string) {
	t.Helper()
	h.mu.Lock()
	c, askErr := h.seen[method], h.ask[method]
	h.mu.Unlock()
	if c == nil || !c.Modern || c.ProtocolVersion != ModernVersion {
		t.Fatalf("%s: context %+v, want a modern one", method, c)
	}
	if c.Info.Name != "modern-client" || c.Info.Version != "2.0" || string(c.InfoRaw) != `{"name":"modern-client","version":"2.0"}` {
		t.Errorf("%s: client info %+v %s", method, c.Info, c.InfoRaw)
	}
	if string(c.Capabilities) != `{"elicitation":{}}` || c.LogLevel != "info" {
		t.Errorf("%s: capabilities %s, log level %q", method, c.Capabilities, c.LogLevel)
	}
	if len(c.Trace) != 1 || c.Trace[0].Name != "traceparent" || string(c.Trace[0].Value) != `"00-abc-def-01"` {
		t.Errorf("%s: trace %+v", method, c.Trace)
	}
	if !errors.Is(askErr, ErrNoClientRequests) {
		t.Errorf("%s: a server→client request through a modern request's session: %v, want ErrNoClientRequests", method, askErr)
	}
}

func post(t *testing.T, base string, headers map[string]string, body string) (*http.Response, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, base+"/mcp", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range headers {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}
