//go:build linux

package main

import (
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sigilcore/sigil-hub/internal/signtest"
)

// Fault catalogue cases 19–27 (tools/call semantics) and 28–46 (Sign faults;
// docs/faults.md), at hub level over raw stdio. The Sign client's own rules
// (every status, body and hold rule) are unit-tested in authz; these tests
// pin what the client sees.

// oneUpstream starts a hub with one fake upstream "files" and returns it
// with the upstream's log.
func oneUpstream(t *testing.T, sign *faultSign, args []string, env ...string) (*faultHub, upstreamLog, string) {
	t.Helper()
	runID := faultRunID(t)
	log := newUpstreamLog(t)
	a := append([]string{"--config", writeConfig(t, faultServer(t, "files", log, runID))}, args...)
	return startFault(t, sign, runID, faultOpts{Args: a, Env: env}), log, runID
}

func TestToolCallInputFaults(t *testing.T) {
	t.Parallel()
	sign := newFaultSign(t, false, nil)
	runID := faultRunID(t)
	log := newUpstreamLog(t)
	cfg := faultServer(t, "files", log, runID) + "tools = { deny = [\"pid\"] }\n" +
		faultServer(t, "down", newUpstreamLog(t), runID, "TESTUPSTREAM_FAIL_START=cannot start")
	h := startFault(t, sign, runID, faultOpts{Args: []string{"--config", writeConfig(t, cfg)}})
	parent := t
	run := func(name string, f func(t *testing.T)) {
		t.Run(name, func(t *testing.T) {
			h.t = t
			defer func() { h.t = parent }()
			f(t)
		})
	}
	noSign := func(t *testing.T, before int) {
		t.Helper()
		if n := len(sign.Requests()); n != before {
			t.Fatalf("%d Sign requests, want none", n-before)
		}
	}
	run("B19_unknown_tool", func(t *testing.T) {
		before := len(sign.Requests())
		if d := h.rpcErr(h.callWait("files__nope", `{}`), -32602); d.Reason != "unknown_tool" {
			t.Fatalf("data %+v", d)
		}
		noSign(t, before)
	})
	run("B20_hidden_tool", func(t *testing.T) {
		before := len(sign.Requests())
		h.rpcErr(h.callWait("files__pid", `{}`), -32602) // filtered
		h.rpcErr(h.callWait("down__echo", `{}`), -32602) // upstream down: never listed
		noSign(t, before)
	})
	run("B21_arguments_not_object", func(t *testing.T) {
		before := len(sign.Requests())
		for _, a := range []string{`[]`, `"x"`, `null`, `1`} {
			h.rpcErr(h.callWait("files__echo", a), -32602)
		}
		noSign(t, before)
	})
	run("B22_oversize_arguments", func(t *testing.T) {
		before := len(sign.Requests())
		d := h.rpcErr(h.callWait("files__echo", `{"big":"`+strings.Repeat("a", 150<<10)+`"}`), -32001)
		if d.ErrorCode != "SIGIL_INPUT_TOO_LARGE" || d.Reason != "oversize" {
			t.Fatalf("data %+v", d)
		}
		noSign(t, before)
	})
	run("B23_numbers_and_escapes_verbatim", func(t *testing.T) {
		args := `{"n":100000000000000000000,"m":-9007199254740992,"s":"\u2028\u0000\ud83d\ude00<&>","f":1.50e+3}`
		if got := h.text(h.callWait("files__echo", args)); got != args {
			t.Fatalf("upstream got %s, want %s", got, args)
		}
		// I2 (assertInvariants) checks the forwarded bytes equal the approved ones.
		// An integer a double cannot hold is read exactly by some decoders and
		// rounded by others (and by the policy): refused, never forwarded.
		before := len(sign.Requests())
		for _, n := range []string{"12345678901234567890", "-9007199254740993"} {
			h.rpcErr(h.callWait("files__echo", `{"n":`+n+`}`), -32602)
		}
		noSign(t, before)
	})
	run("B26_cancel_after_forwarding", func(t *testing.T) {
		id := h.call("files__hang", `{}`)
		eventually(t, "the hang call upstream", func() bool { return log.contains(t, `"testupstream":"hang"`) })
		h.cancel(id)
		eventually(t, "notifications/cancelled upstream", func() bool { return log.contains(t, `notifications/cancelled`) })
		h.await(h.sendReq("ping", `{}`))
		if n := len(h.responses(id)); n != 0 {
			t.Fatalf("a cancelled call got %d responses", n)
		}
	})
	run("B27_concurrent_calls_colliding_ids", func(t *testing.T) {
		// 500 calls in flight together, ids "n" and n colliding by value;
		// each answer must carry its own call's nonce.
		type c struct{ id, nonce string }
		var calls []c
		for i := 0; i < 250; i++ {
			for _, id := range []string{fmt.Sprintf(`"b27-%d"`, i), fmt.Sprintf(`%d`, 27000+i)} {
				nonce := fmt.Sprintf(`{"nonce":"%s"}`, strings.Trim(id, `"`)+"-x")
				h.send(`{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":{"name":"files__echo","arguments":` + nonce + `}}`)
				calls = append(calls, c{id, nonce})
			}
		}
		for _, cl := range calls {
			if got := h.text(h.await(cl.id)); got != cl.nonce {
				t.Fatalf("id %s answered %s, want %s", cl.id, got, cl.nonce)
			}
		}
	})
	// SkipFDs: after 500 concurrent authorizations the Sign client keeps up
	// to 256 idle keep-alive sockets for 90 s by design (authz/sign.go).
	assertInvariants(t, h, invariants{Sign: sign, Logs: map[string]upstreamLog{"files": log}, Audit: -1, SkipFDs: true})
}

// TestFaultB24CancelWhileAuthorizing and TestFaultB25CancelWhilePending: a
// cancel stops the call; a late approval forwards nothing; no response.
func TestFaultB24CancelWhileAuthorizing(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	sign := newFaultSign(t, false, func(signtest.Request) signtest.Reply {
		<-release
		return signtest.Approve()
	})
	h, log, _ := oneUpstream(t, sign, nil)
	id := h.call("files__echo", `{"b24":1}`)
	eventually(t, "the authorize request", func() bool { return len(sign.Requests()) == 1 })
	h.cancel(id)
	eventually(t, "the hub to drop the call", func() bool { return strings.Contains(h.stderr.String(), "decision=CANCELLED") })
	close(release)
	h.await(h.sendReq("ping", `{}`))
	if len(h.responses(id)) != 0 || len(log.toolCalls(t)) != 0 {
		t.Fatalf("cancelled call: %d responses, %d forwarded", len(h.responses(id)), len(log.toolCalls(t)))
	}
	assertInvariants(t, h, invariants{Sign: sign, Logs: map[string]upstreamLog{"files": log}, Audit: -1})
}

func TestFaultB25CancelWhilePending(t *testing.T) {
	t.Parallel()
	var once sync.Once
	sign := newFaultSign(t, false, func(signtest.Request) signtest.Reply { return signtest.Pending("hold-b25") })
	h, log, _ := oneUpstream(t, sign, nil)
	id := h.call("files__echo", `{"b25":1}`)
	eventually(t, "the held call", func() bool { return strings.Contains(h.stderr.String(), "hold-b25") })
	h.cancel(id)
	eventually(t, "the hub to drop the call", func() bool { return strings.Contains(h.stderr.String(), "decision=CANCELLED") })
	once.Do(func() { sign.SetHold("hold-b25", "APPROVED") })
	h.await(h.sendReq("ping", `{}`))
	lookups := len(sign.HoldLookups())
	if len(h.responses(id)) != 0 || len(log.toolCalls(t)) != 0 {
		t.Fatalf("cancelled held call: %d responses, %d forwarded", len(h.responses(id)), len(log.toolCalls(t)))
	}
	assertInvariants(t, h, invariants{Sign: sign, Logs: map[string]upstreamLog{"files": log}, Audit: -1})
	if n := len(sign.HoldLookups()); n != lookups {
		t.Fatalf("hold polled %d more times after the cancel", n-lookups)
	}
}

// TestSignFaults drives each Sign fault through the hub (with and without
// --unsafe-bypass where docs/protocol.md#unreachable-and-fail-closed makes it
// matter) and pins code, error_code and data.reason.
func TestSignFaults(t *testing.T) {
	t.Parallel()
	redirectTarget := signtest.New(t, signtest.Options{})
	tests := []struct {
		name      string
		reply     signtest.Reply
		tls       bool
		closedURL bool
		bypass    bool
		code      int    // 0: forwarded
		errorCode string //
		reason    string
		signReqs  int // exact number of authorize requests; 0: don't check
	}{
		{name: "C28_approved", reply: signtest.Approve(), signReqs: 1},
		{name: "C29_denied_200", reply: signtest.Deny("SIGIL_POLICY_VIOLATION", "no"), code: -32001, errorCode: "SIGIL_POLICY_VIOLATION", reason: "denied"},
		{name: "C29_denied_403", reply: signtest.Reply{Status: 403, Body: []byte(`{"status":"DENIED","error_code":"SIGIL_BASH_BLOCKED"}`)}, code: -32001, errorCode: "SIGIL_BASH_BLOCKED", reason: "denied"},
		{name: "C30_refused", closedURL: true, code: -32001, errorCode: "SIGIL_UNREACHABLE", reason: "unreachable"},
		{name: "C30_refused_bypass", closedURL: true, bypass: true},
		{name: "C31_hang", reply: signtest.Reply{Hang: true}, code: -32001, errorCode: "SIGIL_UNREACHABLE", reason: "unreachable", signReqs: 1},
		{name: "C31_hang_bypass", reply: signtest.Reply{Hang: true}, bypass: true, signReqs: 1},
		{name: "C32_trickle_bypass", reply: signtest.Reply{Body: []byte(`{"status":"APPROVED"}`), Trickle: time.Second}, bypass: true, code: -32001, errorCode: "SIGIL_RESPONSE_INVALID", reason: "invalid_decision"},
		{name: "C33_500_bypass", reply: signtest.Reply{Status: 500}, bypass: true, code: -32001, errorCode: "SIGIL_RESPONSE_INVALID", reason: "invalid_decision"},
		{name: "C33_502", reply: signtest.Reply{Status: 502}, code: -32001, errorCode: "SIGIL_UNREACHABLE", reason: "unreachable"},
		{name: "C33_502_bypass", reply: signtest.Reply{Status: 502}, bypass: true},
		{name: "C33_503_bypass", reply: signtest.Reply{Status: 503}, bypass: true},
		{name: "C33_504_bypass", reply: signtest.Reply{Status: 504}, bypass: true},
		{name: "C34_not_json", reply: signtest.Reply{Body: []byte(`<html>`)}, bypass: true, code: -32001, errorCode: "SIGIL_RESPONSE_INVALID", reason: "invalid_decision"},
		{name: "C34_truncated", reply: signtest.Reply{Body: []byte(`{"status":"APPRO`)}, bypass: true, code: -32001, errorCode: "SIGIL_RESPONSE_INVALID", reason: "invalid_decision"},
		{name: "C34_ALLOW", reply: signtest.Reply{Body: []byte(`{"status":"ALLOW"}`)}, code: -32001, errorCode: "SIGIL_RESPONSE_INVALID", reason: "invalid_decision"},
		{name: "C34_lowercase_approved", reply: signtest.Reply{Body: []byte(`{"status":"approved"}`)}, code: -32001, errorCode: "SIGIL_RESPONSE_INVALID", reason: "invalid_decision"},
		{name: "C34_extra_member", reply: signtest.Reply{Body: []byte(`{"status":"APPROVED","fail_open":true}`)}, code: -32001, errorCode: "SIGIL_RESPONSE_INVALID", reason: "invalid_decision"},
		{name: "C35_10MiB_body", reply: signtest.Reply{Body: []byte(`{"status":"APPROVED","message":"` + strings.Repeat("a", 10<<20) + `"}`)}, bypass: true, code: -32001, errorCode: "SIGIL_RESPONSE_INVALID", reason: "invalid_decision"},
		{name: "C36_401_bypass", reply: signtest.Reply{Status: 401}, bypass: true, code: -32002, errorCode: "SIGIL_AUTH_FAILURE", reason: "auth_failure"},
		{name: "C37_429_retry_after_bypass", reply: signtest.Reply{Status: 429, Header: http.Header{"Retry-After": {"1"}}}, bypass: true, code: -32001, errorCode: "SIGIL_RATE_LIMITED", reason: "rate_limited", signReqs: 1},
		{name: "C38_redirect_bypass", reply: signtest.Reply{Status: 307, Header: http.Header{"Location": {redirectTarget.URL + "/v1/authorize"}}}, bypass: true, code: -32001, errorCode: "SIGIL_RESPONSE_INVALID", reason: "invalid_decision"},
		{name: "C39_bad_tls_bypass", tls: true, bypass: true, code: -32001, errorCode: "SIGIL_TLS_VERIFICATION_FAILED", reason: "invalid_decision"},
		{name: "C45_reset_after_body", reply: signtest.Reply{CloseConn: true}, code: -32001, errorCode: "SIGIL_UNREACHABLE", reason: "unreachable", signReqs: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			sign := newFaultSign(t, tt.tls, func(signtest.Request) signtest.Reply { return tt.reply })
			var args []string
			if tt.bypass {
				args = append(args, "--unsafe-bypass")
			}
			var env []string
			if tt.closedURL {
				env = append(env, "SIGIL_SIGN_URL="+signtest.ClosedURL(t))
			}
			h, log, _ := oneUpstream(t, sign, args, env...)
			m := h.callWait("files__echo", `{"case":"`+tt.name+`"}`)
			if tt.code == 0 {
				h.text(m)
				if len(log.toolCalls(t)) != 1 {
					t.Fatalf("forwarded %d times, want 1", len(log.toolCalls(t)))
				}
				if tt.bypass { // stderr is its own pipe: the line may trail the response
					eventually(t, "a bypassed call logs ungoverned_tool_call", func() bool {
						return strings.Contains(h.stderr.String(), "ungoverned_tool_call")
					})
				}
			} else {
				d := h.rpcErr(m, tt.code)
				if d.ErrorCode != tt.errorCode || d.Reason != tt.reason || d.ServerID != "files" || d.Tool != "echo" {
					t.Fatalf("error.data = %+v, want error_code %s reason %s", d, tt.errorCode, tt.reason)
				}
				if len(log.toolCalls(t)) != 0 {
					t.Fatal("a blocked call was forwarded")
				}
			}
			if tt.signReqs > 0 && len(sign.Requests()) != tt.signReqs {
				t.Fatalf("Sign saw %d authorize requests, want %d (no retry after the body was sent)", len(sign.Requests()), tt.signReqs)
			}
			if len(redirectTarget.Requests()) != 0 {
				t.Fatal("the redirect target received a request (and the API key)")
			}
			assertInvariants(t, h, invariants{Sign: sign, Bypass: tt.bypass, Logs: map[string]upstreamLog{"files": log}, Audit: -1})
		})
	}
}

// TestSignHoldFaults: C40–C42 at hub level with a short pending timeout.
func TestSignHoldFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		hold      string // "" → never registered: lookups get 404
		errorCode string // "" → forwarded
		reason    string
	}{
		{name: "C40_pending_then_approved", hold: "APPROVED"},
		{name: "C41_pending_never_resolved", hold: "PENDING", errorCode: "SIGIL_PENDING_TIMEOUT", reason: "pending_timeout"},
		{name: "C42_pending_rejected", hold: "DENIED", errorCode: "SIGIL_HOLD_DENIED", reason: "pending_rejected"},
		{name: "C42_pending_expired", hold: "EXPIRED", errorCode: "SIGIL_HOLD_EXPIRED", reason: "pending_rejected"},
		{name: "C42_hold_404", hold: "", errorCode: "", reason: "pending_rejected"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var sign *faultSign
			n := 0
			var mu sync.Mutex
			sign = newFaultSign(t, false, func(signtest.Request) signtest.Reply {
				mu.Lock()
				defer mu.Unlock()
				n++
				if n > 1 {
					return signtest.Approve() // the re-submission after an approved hold
				}
				if tt.hold == "" {
					return signtest.Reply{Status: 202, Body: []byte(`{"status":"PENDING","hold_id":"hold-404"}`)}
				}
				return signtest.Pending("hold-" + tt.name)
			})
			if tt.hold != "" {
				sign.SetHold("hold-"+tt.name, tt.hold)
			}
			h, log, _ := oneUpstream(t, sign, []string{"--pending-timeout", "4000"})
			m := h.callWait("files__echo", `{"held":true}`)
			if tt.hold == "APPROVED" {
				h.text(m)
				if reqs := sign.Requests(); len(reqs) != 2 || reqs[0].TxCommit != reqs[1].TxCommit {
					t.Fatalf("want one re-submission of the same intent, got %d requests", len(reqs))
				}
			} else {
				d := h.rpcErr(m, -32001)
				if d.HoldID == "" || d.Reason != tt.reason || (tt.errorCode != "" && d.ErrorCode != tt.errorCode) {
					t.Fatalf("error.data = %+v", d)
				}
				if tt.hold == "PENDING" {
					sign.SetHold("hold-"+tt.name, "APPROVED") // too late
					h.await(h.sendReq("ping", `{}`))
				}
				if len(log.toolCalls(t)) != 0 {
					t.Fatal("a held call that was not approved was forwarded")
				}
			}
			assertInvariants(t, h, invariants{Sign: sign, Logs: map[string]upstreamLog{"files": log}, Audit: -1})
		})
	}
}

// TestFaultC46NoKey: without a key (unset or empty) the hub refuses to start.
func TestFaultC46NoKey(t *testing.T) {
	t.Parallel()
	for _, env := range [][]string{nil, {"SIGIL_API_KEY="}} {
		out, err := runHubOnce(t, env, "--", selfExe(t))
		if err == nil || !strings.Contains(out, "SIGIL_API_KEY") {
			t.Fatalf("env %v: hub started or said nothing useful: %v\n%s", env, err, out)
		}
	}
}
