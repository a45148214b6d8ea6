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

// POST /v1/authorize (docs/protocol.md#the-authorize-request and
// #decision-literals-and-strict-bodies, seen from the server's side).
//
// Answers:
//   - a body that is not a strict authorize request (size, media type, strict
//     JSON, unknown or mistyped members): HTTP 400 (413, 415) with
//     {"status":"DENIED","error_code":"SIGIL_VALIDATION_ERROR","message":…};
//     the Sign client treats any such status as an invalid response and
//     denies;
//   - a well-formed request whose txCommit is not pg-commit-v1 of its
//     intent: HTTP 200 DENIED SIGIL_VALIDATION_ERROR, so the hub reports
//     the code and the reason to the person;
//   - otherwise the policy decision (authz.Local.Submit): APPROVED 200
//     (with an intent attestation), DENIED 200, PENDING 202 with a hold id;
//     429 when the signer keeps too many holds already.

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
	// str reads the string member name; the first error found is kept.
	str := func(name string, required bool) (v string) {
		raw, ok := m[name]
		switch {
		case err != nil:
		case !ok && required:
			err = badRequest("missing %q", name)
		case !ok:
		case len(raw) == 0 || raw[0] != '"' || json.Unmarshal(raw, &v) != nil:
			err = badRequest("%q must be a string", name)
		case required && v == "":
			err = badRequest("%q must not be empty", name)
		}
		return v
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
	q.framework, q.agentID, q.txCommit = str("framework", true), str("agentId", true), str("txCommit", true)
	if err == nil && !authz.IsHex64(q.txCommit) {
		err = badRequest(`"txCommit" must be 64 lowercase hex characters`)
	}
	q.nonce = str("request_nonce", false)
	str("context", false) // checked, not used
	if err == nil && q.intent == nil {
		err = badRequest(`missing "intent"`)
	}
	if err != nil {
		return authorizeReq{}, err
	}
	return q, nil
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
	rec, err := s.local.Submit(q.intent, q.txCommit, q.agentID)
	switch {
	case err != nil:
		writeJSON(w, http.StatusTooManyRequests, map[string]string{"status": "ERROR", "error_code": "SIGIL_RATE_LIMIT_EXCEEDED", "message": err.Error()})
	case rec.Decision == policy.StatusPending:
		writeJSON(w, http.StatusAccepted, map[string]string{"status": "PENDING", "hold_id": rec.HoldID, "message": rec.Message})
	case rec.Decision == policy.StatusAllowed:
		body := map[string]string{
			"status":             "APPROVED",
			"policy_hash":        rec.PolicyHash,
			"intent_attestation": s.attest(q, rec.PolicyHash),
		}
		if rec.TaskID != "" {
			body["task_id"] = rec.TaskID
		}
		writeJSON(w, http.StatusOK, body)
	default:
		writeJSON(w, http.StatusOK, map[string]string{"status": "DENIED", "error_code": rec.Code, "message": rec.Message, "policy_hash": rec.PolicyHash})
	}
}

// handleHoldLookup answers GET /v1/holds/{id} from the holds the signer
// keeps in memory.
func (s *Server) handleHoldLookup(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	h, ok := s.local.Hold(id)
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"status": "ERROR", "error_code": "SIGIL_HOLD_NOT_FOUND",
			"message": "no such hold (holds live in the signer's memory and are forgotten when it restarts)"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"hold_id": id, "status": h.State})
}
