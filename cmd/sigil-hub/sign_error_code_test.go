package main

import (
	"encoding/json"
	"testing"

	"github.com/sigilcore/sigil-hub/internal/signtest"
)

// TestRejectedKeyCarriesSignsErrorCode: on a 401 the client sees -32002 with
// the hub's classification (SIGIL_AUTH_FAILURE) and, beside it, Sign's own
// error_code (such as SIGIL_API_KEY_WRONG_ENV), so a user can tell a test
// key sent to production from a revoked one. Only a plain code is passed
// on, never other text from the body.
func TestRejectedKeyCarriesSignsErrorCode(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ body, want string }{
		{`{"error_code":"SIGIL_API_KEY_WRONG_ENV","message":"test key used against production"}`, "SIGIL_API_KEY_WRONG_ENV"},
		{`{"errorCode":"SIGIL_API_KEY_REVOKED"}`, "SIGIL_API_KEY_REVOKED"},
		{`{"error_code":"sk_live_leaked value"}`, ""},
		{`not json`, ""},
	} {
		sign := signtest.New(t, signtest.Options{Decide: func(signtest.Request) signtest.Reply {
			return signtest.Reply{Status: 401, Body: []byte(tc.body)}
		}})
		rc := startRaw(t, signEnv(sign), "--config", writeConfig(t, fakeServer(t, "files", newUpstreamLog(t), "")))
		rc.send(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"files__echo","arguments":{}}}`)
		m := rc.await("1")
		var e struct {
			Code int
			Data struct {
				ErrorCode     string `json:"error_code"`
				SignErrorCode string `json:"sign_error_code"`
			}
		}
		if err := json.Unmarshal(m["error"], &e); err != nil || e.Code != -32002 || e.Data.ErrorCode != "SIGIL_AUTH_FAILURE" || e.Data.SignErrorCode != tc.want {
			t.Errorf("body %s: error %s; want -32002, SIGIL_AUTH_FAILURE and sign_error_code %q", tc.body, m["error"], tc.want)
		}
	}
}

// TestModernRejectedKeyIs31002: MCP 2026-07-28 forbids -32002 (a 2025
// "resource not found"), so on a 2026-07-28 request a rejected key is
// -31002 with the same data; a 2025 request on the same hub still gets
// -32002 (docs/protocol.md#json-rpc-errors). Nothing reaches the upstream.
func TestModernRejectedKeyIs31002(t *testing.T) {
	t.Parallel()
	sign := signtest.New(t, signtest.Options{Decide: func(signtest.Request) signtest.Reply {
		return signtest.Reply{Status: 401, Body: []byte(`{"error_code":"SIGIL_API_KEY_REVOKED"}`)}
	}})
	ulog := newUpstreamLog(t)
	rc := startRaw(t, signEnv(sign), "--config", writeConfig(t, fakeServer(t, "files", ulog, "")))
	rc.send(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"files__echo","arguments":{"text":"hi"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}`)
	m := rc.await("1")
	var e struct {
		Code int
		Data struct {
			ErrorCode     string `json:"error_code"`
			SignErrorCode string `json:"sign_error_code"`
		}
	}
	if err := json.Unmarshal(m["error"], &e); err != nil || e.Code != -31002 || e.Data.ErrorCode != "SIGIL_AUTH_FAILURE" || e.Data.SignErrorCode != "SIGIL_API_KEY_REVOKED" {
		t.Errorf("2026-07-28 request: error %s; want -31002, SIGIL_AUTH_FAILURE and Sign's code", m["error"])
	}
	rc.send(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"files__echo","arguments":{"text":"hi"}}}`)
	if m := rc.await("2"); json.Unmarshal(m["error"], &e) != nil || e.Code != -32002 {
		t.Errorf("2025 request: error %s; want -32002", m["error"])
	}
	if calls := ulog.toolCalls(t); len(calls) != 0 {
		t.Errorf("the upstream received %d calls after a rejected key", len(calls))
	}
}
