package audit

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"time"
)

// Outcomes of a tools/call attempt, the values of Record.Outcome
// (forwarded / blocked / upstream_error / timeout / cancelled, plus the two
// ways a call fails before authorization).
const (
	// OutcomeForwarded: the call reached the upstream and its result (a tool
	// error result included) was returned.
	OutcomeForwarded = "forwarded"
	// OutcomeBlocked: the call was not forwarded (deny, hold rejected or
	// timed out, authz unreachable, local denial, audit failure).
	OutcomeBlocked = "blocked"
	// OutcomeUpstreamError: the call was approved but the upstream was
	// unavailable or failed at the protocol level.
	OutcomeUpstreamError = "upstream_error"
	// OutcomeTimeout: the call's deadline passed while it was in flight.
	OutcomeTimeout = "timeout"
	// OutcomeCancelled: the client cancelled the call.
	OutcomeCancelled = "cancelled"
	// OutcomeUnknownTool: the exposed name did not resolve to any upstream.
	OutcomeUnknownTool = "unknown_tool"
	// OutcomeInvalid: the request was malformed (bad params, bad arguments).
	OutcomeInvalid = "invalid"
)

// Record is one audit line: one tools/call attempt. JSON member names are
// snake_case and stable; empty optional fields are omitted, while time,
// call_id, bypassed and outcome are always present.
//
// A Record holds no argument values by construction: ArgsSHA256 is the only
// field derived from the arguments. A Record is a plain value; it is safe to
// copy and to share read-only between goroutines.
type Record struct {
	// Time is when the call was received. If zero, Write uses the current
	// time. It is written in UTC, RFC 3339 with nanoseconds.
	Time time.Time `json:"time"`
	// CallID is the hub's correlation id for the call (also in log lines as
	// call_id).
	CallID string `json:"call_id"`
	// Session identifies the client session (stdio: the process run; HTTP:
	// a hash of the session id, never the raw id).
	Session string `json:"session,omitempty"`
	// ClientName is the client's self-reported clientInfo name: untrusted,
	// for correlation only.
	ClientName string `json:"client_name,omitempty"`
	// ServerID is the configured serverId of the upstream (empty when the
	// tool did not resolve).
	ServerID string `json:"server_id,omitempty"`
	// Upstream is the configured upstream name.
	Upstream string `json:"upstream,omitempty"`
	// Tool is the upstream's original tool name.
	Tool string `json:"tool,omitempty"`
	// ExposedTool is the (namespaced) name the client called.
	ExposedTool string `json:"exposed_tool,omitempty"`
	// ArgsSHA256 is the lowercase hex SHA-256 of the canonical arguments,
	// computed by the caller; audit never sees the values. Empty when the
	// arguments could not be canonicalized.
	ArgsSHA256 string `json:"args_sha256,omitempty"`
	// Decision is the authorization decision (APPROVED, DENIED, PENDING→…,
	// or a local decision such as UNREACHABLE).
	Decision string `json:"decision,omitempty"`
	// Reason is the reason class of the decision or block.
	Reason string `json:"reason,omitempty"`
	// ErrorCode is Sign's error_code (or the hub's SIGIL_* code).
	ErrorCode string `json:"error_code,omitempty"`
	// HoldID is Sign's hold id when the call was held.
	HoldID string `json:"hold_id,omitempty"`
	// PolicyHash is the policy_hash Sign reported.
	PolicyHash string `json:"policy_hash,omitempty"`
	// AuthzMillis is the authorization latency in milliseconds (holds
	// included); written with microsecond precision.
	AuthzMillis float64 `json:"authz_ms,omitempty"`
	// UpstreamMillis is the upstream call latency in milliseconds; written
	// with microsecond precision.
	UpstreamMillis float64 `json:"upstream_ms,omitempty"`
	// Bypassed is true when the call was forwarded under --unsafe-bypass
	// without an approval (docs/protocol.md#unreachable-and-fail-closed).
	// Always written, so it can be alarmed on.
	Bypassed bool `json:"bypassed"`
	// Outcome is one of the Outcome constants.
	Outcome string `json:"outcome"`
}

// encodeLine returns r as one JSON line ending in '\n'. now fills a zero
// Time. encoding/json escapes control characters (a value cannot break the
// line) and replaces invalid UTF-8, so every line is valid JSON.
func encodeLine(r Record, now time.Time) ([]byte, error) {
	if r.Time.IsZero() {
		r.Time = now
	}
	r.Time = r.Time.UTC()
	if !isHexSHA256(r.ArgsSHA256) {
		return nil, fmt.Errorf("args_sha256 must be empty or 64 lowercase hex digits (got %d bytes); audit records never carry argument values", len(r.ArgsSHA256))
	}
	var err error
	if r.AuthzMillis, err = millis("authz_ms", r.AuthzMillis); err != nil {
		return nil, err
	}
	if r.UpstreamMillis, err = millis("upstream_ms", r.UpstreamMillis); err != nil {
		return nil, err
	}
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&r); err != nil { // Encode appends the '\n'
		return nil, fmt.Errorf("encode audit record: %v", err)
	}
	return b.Bytes(), nil
}

// millis rounds a latency to microseconds; NaN and ±Inf (which JSON cannot
// carry) are errors.
func millis(name string, v float64) (float64, error) {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("%s is not a finite number", name)
	}
	return math.Round(v*1000) / 1000, nil
}

// isHexSHA256 reports whether s is empty or 64 lowercase hex digits.
func isHexSHA256(s string) bool {
	if s == "" {
		return true
	}
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}
