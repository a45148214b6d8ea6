package signer

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"

	"github.com/sigilcore/sigil-hub/authz"
	"github.com/sigilcore/sigil-hub/authz/policy"
	"github.com/sigilcore/sigil-hub/internal/strictjson"
)

// POST /v1/authorize (sigil-protocol.md §1.2, §2; D6, D7).
//
// Answers:
//   - a body that is not a strict §1.2 request (size, media type, strict
//     JSON, unknown or mistyped members): HTTP 400 (413, 415) with
//     {"status":"DENIED","error_code":"SIGIL_VALIDATION_ERROR","message":…};
//     the Sign client treats any such status as an invalid response and
//     denies;
//   - a well-formed request whose txCommit is not pg-commit-v1 of its
//     intent: HTTP 200 DENIED SIGIL_VALIDATION_ERROR, so the hub reports
//     the code and the reason to the person;
//   - otherwise the policy decision: APPROVED 200 (with an intent
//     attestation), DENIED 200, PENDING 202 with a hold id.

// isHex64 reports whether s is 64 lowercase hex characters (a txCommit).
func isHex64(s string) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// authorizeReq is a validated /v1/authorize body.
type authorizeReq struct {
	framework, agentID, txCommit, nonce string
	chainID                             *int64
	intent                              json.RawMessage
}

// errBadRequest is a body rejected before evaluation; status is the HTTP status.
type errBadRequest struct {
	status int
	msg    string
}

func (e *errBadRequest) Error() string { return e.msg }

func badRequest(format string, args ...any) error {
	return &errBadRequest{status: http.StatusBadRequest, msg: fmt.Sprintf(format, args...)}
}

// parseAuthorize reads and validates the request body.
func parseAuthorize(r *http.Request) (authorizeReq, error) {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return authorizeReq{}, &errBadRequest{status: http.StatusUnsupportedMediaType, msg: "Content-Type must be application/json"}
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		return authorizeReq{}, badRequest("reading body: %v", err)
	}
	if len(body) > MaxBodyBytes {
		return authorizeReq{}, &errBadRequest{status: http.StatusRequestEntityTooLarge, msg: fmt.Sprintf("body is larger than %d bytes", MaxBodyBytes)}
	}
	m, err := strictjson.Object(body, maxDepth)
	if err != nil {
		return authorizeReq{}, badRequest("body is not a strict JSON object: %v", err)
	}
	var q authorizeReq
	str := func(name string, required bool) (string, error) {
		raw, ok := m[name]
		if !ok {
			if required {
				return "", badRequest("missing %q", name)
			}
			return "", nil
		}
		var v string
		if len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &v) != nil {
			return "", badRequest("%q must be a string", name)
		}
		if required && v == "" {
			return "", badRequest("%q must not be empty", name)
		}
		return v, nil
	}
	for name, raw := range m {
		switch name {
		case "framework", "agentId", "txCommit", "request_nonce", "context":
		case "intent":
			if raw[0] != '{' {
				return authorizeReq{}, badRequest(`"intent" must be an object`)
			}
			q.intent = raw
		case "chainId":
			n, err := strconv.ParseInt(string(raw), 10, 64)
			if err != nil || n < -(1<<53-1) || n > 1<<53-1 {
				return authorizeReq{}, badRequest(`"chainId" must be a safe integer`)
			}
			q.chainID = &n
		case "delegation":
			if raw[0] != '{' {
				return authorizeReq{}, badRequest(`"delegation" must be an object`)
			}
		default:
			return authorizeReq{}, badRequest("unknown member %.40q", name)
		}
	}
	if q.framework, err = str("framework", true); err != nil {
		return authorizeReq{}, err
	}
	if q.agentID, err = str("agentId", true); err != nil {
		return authorizeReq{}, err
	}
	if q.txCommit, err = str("txCommit", true); err != nil {
		return authorizeReq{}, err
	}
	if !isHex64(q.txCommit) {
		return authorizeReq{}, badRequest(`"txCommit" must be 64 lowercase hex characters`)
	}
	if q.nonce, err = str("request_nonce", false); err != nil {
		return authorizeReq{}, err
	}
	if _, err = str("context", false); err != nil {
		return authorizeReq{}, err
	}
	if q.intent == nil {
		return authorizeReq{}, badRequest(`missing "intent"`)
	}
	return q, nil
}

// intentView is what the approval surface and the decision log show of an
// intent (read leniently: the policy engine has the final word on shape).
type intentView struct {
	Action   string `json:"action"`
	TaskID   string `json:"task_id"`
	Metadata struct {
		ServerID  string          `json:"serverId"`
		ToolName  string          `json:"toolName"`
		Arguments json.RawMessage `json:"arguments"`
	} `json:"metadata"`
}

func viewIntent(raw json.RawMessage) intentView {
	var v intentView
	if json.Unmarshal(raw, &v) != nil {
		// Mistyped members: keep what a second, member-wise pass can read.
		var m map[string]json.RawMessage
		_ = json.Unmarshal(raw, &m)
		_ = json.Unmarshal(m["action"], &v.Action)
		_ = json.Unmarshal(m["task_id"], &v.TaskID)
	}
	if len(v.Metadata.Arguments) == 0 && v.Metadata.ToolName == "" {
		v.Metadata.Arguments = raw // not an MCP intent: show the whole intent
	}
	return v
}

func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("X-SOF-Version", SOFVersion)
	q, err := parseAuthorize(r)
	if err != nil {
		var br *errBadRequest
		errors.As(err, &br)
		s.o.Logger.Info("authorize request rejected", "status", br.status, "reason", Visible(br.msg))
		writeJSON(w, br.status, map[string]string{"status": "DENIED", "error_code": "SIGIL_VALIDATION_ERROR", "message": br.msg})
		return
	}
	view := viewIntent(q.intent)
	rec := Record{Surface: "authorize", Action: view.Action, ServerID: view.Metadata.ServerID, Tool: view.Metadata.ToolName,
		AgentID: q.agentID, TxCommit: q.txCommit, PolicyHash: s.o.Policy.Hash()}
	deny := func(code, msg, rule string) {
		rec.Decision, rec.Code, rec.Message, rec.Rule = policy.StatusDenied, code, msg, rule
		s.record(rec)
		writeJSON(w, http.StatusOK, map[string]string{"status": "DENIED", "error_code": code, "message": msg, "policy_hash": rec.PolicyHash})
	}
	commit, err := authz.TxCommit(q.intent)
	if err != nil {
		deny("SIGIL_VALIDATION_ERROR", fmt.Sprintf("the intent cannot be committed with pg-commit-v1: %v", err), "txCommit")
		return
	}
	if commit != q.txCommit {
		deny("SIGIL_VALIDATION_ERROR", "txCommit does not match the intent (want the pg-commit-v1 SHA-256 of the intent object)", "txCommit")
		return
	}
	d := s.o.Policy.Evaluate(q.intent, &s.counter, s.o.Now())
	switch d.Status {
	case policy.StatusAllowed:
		s.approve(w, q, view, rec, "")
	case policy.StatusPending:
		if id, ok := s.consumeApproval(q.txCommit, q.agentID); ok {
			s.approve(w, q, view, rec, id)
			return
		}
		h, err := s.newHold(q, view, d.Rule)
		if err != nil {
			rec.Decision, rec.Code, rec.Message, rec.Rule = policy.StatusDenied, "SIGIL_RATE_LIMITED", err.Error(), d.Rule
			s.record(rec)
			writeJSON(w, http.StatusTooManyRequests, map[string]string{"status": "ERROR", "error_code": "SIGIL_RATE_LIMIT_EXCEEDED", "message": err.Error()})
			return
		}
		msg := d.Message
		if msg == "" {
			msg = "the call requires human approval"
		}
		msg += "; approve or deny hold " + h.ID + " on the signer's approval page or with `sigil-hub holds`"
		rec.Decision, rec.Code, rec.Message, rec.Rule, rec.HoldID = policy.StatusPending, d.PublicCode(), msg, d.Rule, h.ID
		s.record(rec)
		writeJSON(w, http.StatusAccepted, map[string]string{"status": "PENDING", "hold_id": h.ID, "message": msg})
	default:
		msg := d.Message
		if msg == "" {
			msg = "denied by policy"
		}
		deny(d.PublicCode(), msg, d.Rule)
	}
}

// approve answers an approval with a fresh intent attestation. holdID is
// the consumed hold, if the approval came from one.
func (s *Server) approve(w http.ResponseWriter, q authorizeReq, view intentView, rec Record, holdID string) {
	rec.Decision, rec.HoldID = policy.StatusAllowed, holdID
	if holdID != "" {
		rec.Message = "approved by a person (hold " + holdID + ")"
	}
	s.record(rec)
	body := map[string]string{
		"status":             "APPROVED",
		"policy_hash":        rec.PolicyHash,
		"intent_attestation": s.attest(q.txCommit, q.agentID, q.framework, q.chainID),
	}
	if view.TaskID != "" {
		body["task_id"] = view.TaskID
	}
	writeJSON(w, http.StatusOK, body)
}
