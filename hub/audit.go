package hub

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"github.com/sigilcore/sigil-hub/audit"
	"github.com/sigilcore/sigil-hub/authz"
	"github.com/sigilcore/sigil-hub/front"
)

// callTool runs the tools/call pipeline and writes its audit record before
// the client gets the answer (README "Audit trail"). With an audit log
// configured, a call whose record cannot be written is answered with an
// error, and while the log is failing every later call is blocked before
// authorization: the audit trail fails closed, never silently.
func (s *session) callTool(ctx context.Context, req *front.Request) (json.RawMessage, error) {
	h := s.h
	rec := audit.Record{Session: s.fs.ID()}
	if h.audit != nil { // the record is only written to the audit log
		rec.Time, rec.CallID = time.Now(), newCallID()
		rec.ClientName = clientName(req.Client)
	}
	if h.audit != nil && h.auditBroken.Load() {
		rec.Outcome, rec.Reason = audit.OutcomeBlocked, "audit_unavailable"
		if err := h.audit.Write(context.WithoutCancel(ctx), rec); err != nil {
			return nil, auditError(err)
		}
		h.auditBroken.Store(false) // the log works again; this call stays blocked
		return nil, auditError(errors.New("the audit log was failing"))
	}
	res, err := s.callToolInner(ctx, req, &rec)
	if h.audit == nil {
		return res, err
	}
	rec.Outcome, rec.Reason = outcomeOf(err, rec.Reason)
	if werr := h.audit.Write(context.WithoutCancel(ctx), rec); werr != nil {
		h.auditBroken.Store(true)
		h.log.Error("audit record not written: tool calls are blocked until the audit log works again", "err", werr)
		return nil, auditError(werr)
	}
	return res, err
}

// Rejected audits a tools/call request that failed envelope validation
// (front.Handler): it is a call attempt too (invariant I4 in docs/faults.md),
// answered before any authorization.
func (h *Hub) Rejected(fs front.Session, req *front.Request, _ *front.Error) {
	if h.audit == nil || req.Method != "tools/call" || req.ID == nil || string(req.ID) == "null" {
		return
	}
	rec := audit.Record{Time: time.Now(), CallID: newCallID(), Session: fs.ID(),
		Outcome: audit.OutcomeInvalid, Reason: "invalid_request", ClientName: clientName(fs.Client())}
	if err := h.audit.Write(context.Background(), rec); err != nil {
		h.auditBroken.Store(true)
		h.log.Error("audit record not written: tool calls are blocked until the audit log works again", "err", err)
	}
}

// clientName is the clientInfo.name of c, "" without one.
func clientName(c *front.ClientContext) string {
	if c == nil {
		return ""
	}
	return c.Info.Name
}

// outcomeOf classifies how a call ended for its audit record.
func outcomeOf(err error, reason string) (string, string) {
	if err == nil {
		return audit.OutcomeForwarded, reason
	}
	if errors.Is(err, front.ErrNoResponse) {
		return audit.OutcomeCancelled, reason
	}
	var re *front.Error
	if !errors.As(err, &re) {
		return audit.OutcomeUpstreamError, reason
	}
	if reason == "" {
		switch d := re.Data.(type) {
		case blockData:
			reason = d.Reason
		case map[string]any:
			reason, _ = d["reason"].(string)
		}
	}
	switch {
	case re.Code == front.CodeBlocked || re.Code == front.CodeAuthFailure:
		return audit.OutcomeBlocked, reason
	case re.Code == front.CodeInvalidParams && reason == "unknown_tool":
		return audit.OutcomeUnknownTool, reason
	case re.Code == front.CodeInvalidParams || re.Code == front.CodeInvalidRequest:
		return audit.OutcomeInvalid, reason
	case reason == "upstream_timeout":
		return audit.OutcomeTimeout, reason
	}
	return audit.OutcomeUpstreamError, reason
}

func auditError(err error) *front.Error {
	return &front.Error{Code: front.CodeInternal,
		Message: "tool call blocked: the audit log cannot be written (" + err.Error() + "); free the disk or fix the audit file, then retry",
		Data:    map[string]any{"reason": "audit_unavailable"}}
}

// argumentsDigest is the SHA-256 of the canonical (pg-commit-v1) form of the
// arguments, or of their raw bytes when they do not canonicalize; the audit
// log never holds argument values.
func argumentsDigest(args json.RawMessage) string {
	if len(args) == 0 {
		args = json.RawMessage(`{}`)
	}
	if c, err := authz.CanonicalPgCommitV1(args); err == nil {
		args = c
	}
	sum := sha256.Sum256(args)
	return hex.EncodeToString(sum[:])
}

func newCallID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

func millis(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
