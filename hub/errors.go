package hub

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/sigilcore/sigil-hub/authz"
	"github.com/sigilcore/sigil-hub/front"
	"github.com/sigilcore/sigil-hub/router"
	"github.com/sigilcore/sigil-hub/upstreams"
)

// This file is the one place that decides what a client sees when a call does
// not produce an upstream result, so that every path answers alike. Policy
// outcomes are JSON-RPC errors -32001/-32002 with the error.data shape of
// docs/protocol.md#json-rpc-errors; upstream failures are -32603 with
// data.reason; an upstream's own JSON-RPC error and its tool error results
// pass through untouched.

// blockData is error.data for -32001/-32002 (docs/protocol.md#json-rpc-errors).
type blockData struct {
	Decision    string `json:"decision"`
	ErrorCode   string `json:"error_code"`
	Message     string `json:"message"`
	ServerID    string `json:"server_id"`
	Tool        string `json:"tool"`
	ExposedTool string `json:"exposed_tool"`
	HoldID      string `json:"hold_id,omitempty"`
	Reason      string `json:"reason"`
	// SignErrorCode is Sign's own error_code when it rejected the key
	// (ErrorCode stays the hub's classification, SIGIL_AUTH_FAILURE).
	SignErrorCode string `json:"sign_error_code,omitempty"`
}

// decisionError maps a non-approval to the client's error.
func decisionError(u *upstream, route router.Route, exposed string, d authz.Decision) *front.Error {
	reason := "denied"
	switch d.ErrorCode {
	case "SIGIL_PENDING_TIMEOUT":
		reason = "pending_timeout"
	case "SIGIL_HOLD_DENIED", "SIGIL_HOLD_EXPIRED":
		reason = "pending_rejected"
	case "SIGIL_RESPONSE_INVALID", "SIGIL_TLS_VERIFICATION_FAILED", "SIGIL_DECISION_VERIFICATION_FAILED":
		reason = "invalid_decision"
	case "SIGIL_RATE_LIMITED":
		reason = "rate_limited"
	case "SIGIL_INPUT_TOO_LARGE":
		reason = "oversize"
	case "SIGIL_INPUT_MALFORMED":
		reason = "malformed_input"
	}
	data := blockData{
		Decision:    "DENIED",
		ErrorCode:   d.ErrorCode,
		Message:     d.Message,
		ServerID:    u.serverID,
		Tool:        route.Name,
		ExposedTool: exposed,
		HoldID:      d.HoldID,
		Reason:      reason,
	}
	why := cmp.Or(d.Message, d.ErrorCode)
	if d.Verdict == authz.AuthFailed {
		data.Reason, data.SignErrorCode = "auth_failure", d.SignErrorCode
		if d.SignErrorCode != "" {
			why = d.SignErrorCode + ": " + why
		}
		return &front.Error{Code: front.CodeAuthFailure, Data: data, Message: fmt.Sprintf(
			"tool %q was not called: Sigil Sign rejected the API key (%s). Check SIGIL_API_KEY or --key", exposed, why)}
	}
	msg := fmt.Sprintf("tool %q was blocked by policy (%s): %s", exposed, d.ErrorCode, why)
	if d.HoldID != "" {
		msg += fmt.Sprintf(" [hold %s]", d.HoldID)
	}
	return &front.Error{Code: front.CodeBlocked, Message: msg, Data: data}
}

// unknownToolError answers a call to a name no upstream serves.
func unknownToolError(exposed string) *front.Error {
	return &front.Error{Code: front.CodeInvalidParams, Message: "unknown tool " + strconv.Quote(exposed) + ": call tools/list to see the tools this hub offers",
		Data: map[string]any{"reason": "unknown_tool", "tool": exposed}}
}

// caseVariantError refuses an argument member spelled unlike the property
// the tool declares (argnames.go): member and declared are paths below
// arguments, such as ".PATH" and ".path".
func caseVariantError(exposed, member, declared string) *front.Error {
	return &front.Error{Code: front.CodeInvalidParams,
		Message: "invalid arguments for tool " + strconv.Quote(exposed) + ": member " + strconv.Quote("arguments"+member) +
			" differs from the tool's declared property " + strconv.Quote("arguments"+declared) + " only in letter case; spell it as declared",
		Data: map[string]any{"reason": "case_variant_argument", "tool": exposed, "member": "arguments" + member, "declared": "arguments" + declared}}
}

// unsupportedMemberError refuses a tools/call params member the hub does
// not forward (toolcall.go); what names a member a newer MCP revision
// defines, "" for any other.
func unsupportedMemberError(member, what string) *front.Error {
	why, reason := " is not part of a tool call: only name, arguments and _meta are accepted", "unknown_member"
	if what != "" {
		why, reason = " ("+what+") is not supported by sigil-hub yet: send the call without it", "unsupported_member"
	}
	return &front.Error{Code: front.CodeInvalidParams, Message: "tools/call params member " + strconv.Quote(member) + why,
		Data: map[string]any{"reason": reason, "member": member}}
}

// unreachableError is the fail-closed answer when Sign could not be asked
// (docs/protocol.md#unreachable-and-fail-closed).
func unreachableError(u *upstream, route router.Route, exposed string, err error) *front.Error {
	return &front.Error{Code: front.CodeBlocked,
		Message: fmt.Sprintf("tool %q was blocked: Sigil Sign could not be reached (%v), and sigil-hub fails closed. Check the network or --sign-url, then retry", exposed, err),
		Data: blockData{Decision: "DENIED", ErrorCode: "SIGIL_UNREACHABLE", Message: "Sigil Sign unreachable",
			ServerID: u.serverID, Tool: route.Name, ExposedTool: exposed, Reason: "unreachable"}}
}

// upstreamUnavailable answers a call to an upstream that is not serving.
func upstreamUnavailable(u *upstream, what string, cause error) *front.Error {
	if st := u.conn.Snapshot(); st.State == upstreams.Starting && st.Err == nil { // its first start: no failure yet
		return upstreamFailure(u, "upstream_unavailable", "%q is not available yet: upstream %q is still starting; retry in a few seconds", what, u.name)
	}
	msg := fmt.Sprintf("%q is not available: upstream %q is not running", what, u.name)
	if cause != nil {
		msg += fmt.Sprintf(" (%s)", u.redact(cause.Error()))
	}
	msg += "; it is restarted automatically, retry in a few seconds"
	return upstreamFailure(u, "upstream_unavailable", "%s", msg)
}

// redact replaces the hub's secrets in text bound for a client.
func (u *upstream) redact(text string) string {
	for _, s := range u.secrets {
		text = strings.ReplaceAll(text, s, "[redacted]")
	}
	return text
}

// timeoutError answers a call whose budget ran out.
func timeoutError(u *upstream, exposed string) *front.Error {
	return upstreamFailure(u, "upstream_timeout", "%q timed out: upstream %q did not answer within the call budget", exposed, u.name)
}

// upstreamFailure is -32603 for a failure at upstream u, data.reason naming
// which.
func upstreamFailure(u *upstream, reason, format string, args ...any) *front.Error {
	return &front.Error{Code: front.CodeInternal, Message: fmt.Sprintf(format, args...), Data: map[string]any{"reason": reason, "upstream": u.name}}
}

// upstreamError maps a failed upstream request.
func upstreamError(u *upstream, what string, err error, ctx context.Context) error {
	var re *upstreams.RPCError
	var hs *upstreams.HTTPStatusError
	if errors.As(err, &re) {
		out := &front.Error{Code: re.Code, Message: re.Message}
		if len(re.Data) > 0 {
			out.Data = re.Data
		}
		return out
	}
	switch {
	case ctx.Err() != nil:
		return timeoutError(u, what)
	case errors.Is(err, upstreams.ErrProtocol):
		return upstreamFailure(u, "upstream_protocol_error", "%q failed: upstream %q broke the protocol (%v) and is being restarted", what, u.name, err)
	case errors.Is(err, upstreams.ErrAuth):
		return upstreamFailure(u, "upstream_auth", "%q failed: %v at upstream %q; check the headers (or OAuth) configured for it", what, err, u.name)
	case errors.As(err, &hs):
		return &front.Error{Code: front.CodeInternal,
			Message: fmt.Sprintf("%q failed: upstream %q answered HTTP %d %s; the call was not retried (see that server's logs)", what, u.name, hs.Status, http.StatusText(hs.Status)),
			Data:    map[string]any{"reason": "upstream_http_error", "upstream": u.name, "status": hs.Status}}
	case errors.Is(err, upstreams.ErrLost):
		return upstreamFailure(u, "upstream_exited", "%q failed: upstream %q exited or disconnected during the call; the call was not retried", what, u.name)
	case errors.Is(err, upstreams.ErrUnavailable):
		// Not running (in backoff, restarting): say why it last failed.
		if st := u.conn.Snapshot(); st.State.String() != "ready" && st.Err != nil {
			return upstreamUnavailable(u, what, st.Err)
		}
		return upstreamUnavailable(u, what, err)
	case errors.Is(err, upstreams.ErrInvalidResponse):
		return upstreamFailure(u, "invalid_upstream_response", "%q failed: upstream %q answered with a malformed response (%v)", what, u.name, err)
	}
	return upstreamFailure(u, "upstream_error", "%q failed in upstream %q: %v", what, u.name, err)
}
