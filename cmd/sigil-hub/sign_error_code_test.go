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
