package authz

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/sigilcore/sigil-hub/internal/strictjson"
)

// ErrUnreachable marks the "unreachable" class
// (docs/protocol.md#unreachable-and-fail-closed): no HTTP response at all
// (DNS, refused, connect/TLS-handshake timeout, response timeout) or HTTP
// 502/503/504. Only errors wrapping it may ever be bypassed (--unsafe-bypass).
var ErrUnreachable = errors.New("sigil sign unreachable")

// Authorizer decides whether one tool call may reach its upstream.
//
// Authorize returns a non-nil error only for the unreachable class (wrapping
// ErrUnreachable) or when ctx ends (ctx.Err()). Every other outcome,
// including local input denials, 401s and invalid responses, is a Decision.
// Implementations are safe for concurrent use.
type Authorizer interface {
	Authorize(ctx context.Context, req Request) (Decision, error)
}

// Request is one tools/call to authorize.
type Request struct {
	// ServerID is the upstream's serverId, used verbatim
	// (docs/protocol.md#deriving-the-serverid).
	ServerID string
	// Tool is the upstream's own tool name (never the namespaced one).
	Tool string
	// Arguments are the tool arguments exactly as the client sent them.
	// Nil or empty means the call carried no arguments ({} is used).
	Arguments json.RawMessage
	// Checked, when it holds exactly Arguments' bytes (strictjson.Valid.Is),
	// is the edge's proof that they passed the strict check: an object
	// nested at most MaxArgumentsDepth deep is then not scanned again.
	// Anything else (the zero Valid included) and Arguments are checked here.
	Checked strictjson.Valid
	// TaskID is the intent's task_id (docs/protocol.md#task_id); it must
	// match ^[A-Za-z0-9_-]{1,128}$.
	TaskID string
	// AgentID is the request's agentId (docs/protocol.md#the-authorize-request).
	// If empty, "sigil-hub" is used.
	AgentID string
	// Extract, if non-nil, maps typed intent fields to argument paths
	// (docs/protocol.md#extractors).
	Extract *Extractor
	// ToolHash is the lowercase hex SHA-256 of the tool's definition as the
	// upstream listed it (tool pinning), sent as metadata.toolHash so that a
	// policy can pin it too. Empty = not sent (the intent bytes are then
	// exactly those without pinning).
	ToolHash string
	// Continues, if set, is the id of a hold a person approved for this
	// very call in an earlier round of it (a multi round-trip request: the
	// upstream asked the client for input and the call is retried with the
	// answer). A call the policy would hold is then approved again without
	// asking, when that hold was approved for the same intent (txCommit) and
	// agent and is still within its time; anything else is decided as
	// usual. Sign decides on its side: a Sign-backed call may be held again.
	Continues string
	// OnHold, if non-nil, is called when the call is held for approval
	// (PENDING) and again at each poll while it waits. It must not block.
	OnHold func(holdID string, waited time.Duration)
}

// Extractor maps typed intent fields to argument paths for one tool
// (docs/protocol.md#extractors).
type Extractor struct {
	// Action, if non-empty, overrides the typed action the fields imply.
	Action string
	// Fields maps an intent field (url, path, command, method, to) to a
	// dot-separated path into the tool arguments.
	Fields map[string]string
}

// Verdict is the outcome class of a Decision.
type Verdict int

const (
	// Denied: the call must not be forwarded (-32001).
	Denied Verdict = iota
	// Approved: the call may be forwarded with the decision's attestation.
	Approved
	// AuthFailed: Sign rejected the API key (-32002). Never bypassed.
	AuthFailed
)

func (v Verdict) String() string {
	switch v {
	case Approved:
		return "APPROVED"
	case AuthFailed:
		return "AUTH_FAILED"
	default:
		return "DENIED"
	}
}

// Decision is what the policy service decided for one Request.
// The zero Decision denies.
type Decision struct {
	Verdict Verdict
	// ErrorCode is the SIGIL_* (or LEX_*) code of a non-approval.
	ErrorCode string
	// Message is a plain-words reason, safe to show a person (no secrets).
	Message string
	// SignErrorCode is Sign's own error_code on a rejected key (401/403),
	// such as SIGIL_API_KEY_WRONG_ENV, when its body names one; ErrorCode
	// stays the hub's classification (SIGIL_AUTH_FAILURE).
	SignErrorCode string
	// HoldID is set when the call was held for approval at some point.
	HoldID string
	// PolicyHash is the policy hash the service reported, if any.
	PolicyHash string
	// Attestation is the compact JWS intent attestation of an approval, if any.
	Attestation string
	// TxCommit is the txCommit that was authorized
	// (docs/protocol.md#txcommit-pg-commit-v1): set by Sign
	// decisions and by the embedded policy's holds (its immediate
	// decisions are taken on the intent itself and leave it empty).
	TxCommit string
}
