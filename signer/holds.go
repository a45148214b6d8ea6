package signer

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"
	"time"

	"github.com/sigilcore/sigil-hub/authz/policy"
)

// Approval holds (sigil-protocol.md §2.5, D11), in memory only.
//
// A PENDING decision creates a hold. A person approves or denies it on the
// approval page (or with `sigil-hub holds`); the client polls
// GET /v1/holds/{id}. After an approval the client re-submits the exact
// intent (same txCommit, fresh nonce): that re-submission, matched on
// txCommit and agentId, is approved once and consumes the approval. An
// approval nobody consumed stays valid until the hold expires, so a person
// may also approve first and let the agent retry the identical call.
//
// A hold not decided within HoldTTL is EXPIRED. Decided and expired holds
// are kept for another HoldTTL (so lookups answer their state) and then
// forgotten (lookups get 404, which clients treat as expired). A restart
// forgets every hold: a client still waiting gets 404 and denies; nothing
// is ever approved by a hold the signer no longer knows.

// Hold states, as GET /v1/holds/{id} reports them.
const (
	HoldPending  = "PENDING"
	HoldApproved = "APPROVED"
	HoldDenied   = "DENIED"
	HoldExpired  = "EXPIRED"
)

// maxHolds bounds the retained holds; a PENDING decision beyond it is
// answered 429 (a looping agent cannot exhaust memory).
const maxHolds = 10_000

// ErrNoHold is returned by Resolve for an unknown hold id.
var ErrNoHold = errors.New("no such hold")

// ErrHoldDecided is returned by Resolve for a hold that is no longer PENDING.
var ErrHoldDecided = errors.New("hold is no longer pending")

// HoldInfo describes one hold for the approval surface. It is a copy,
// safe to keep and share.
type HoldInfo struct {
	ID        string          `json:"id"`
	State     string          `json:"state"`
	ServerID  string          `json:"server_id,omitempty"`
	Tool      string          `json:"tool,omitempty"`
	Action    string          `json:"action"`
	AgentID   string          `json:"agent_id"`
	TaskID    string          `json:"task_id,omitempty"`
	Rule      string          `json:"rule,omitempty"`
	Arguments json.RawMessage `json:"arguments"`
	TxCommit  string          `json:"tx_commit"`
	Created   time.Time       `json:"created"`
	// Consumed reports whether an approval was used by a re-submission.
	Consumed bool `json:"consumed,omitempty"`
}

// hold is one retained hold; guarded by Server.mu.
type hold struct {
	HoldInfo
	decided time.Time // when it left PENDING (zero while pending)
}

// state returns the hold's state at now (PENDING turns EXPIRED at TTL).
func (s *Server) state(h *hold, now time.Time) string {
	if h.State == HoldPending && !now.Before(h.Created.Add(s.o.HoldTTL)) {
		return HoldExpired
	}
	return h.State
}

// sweepLocked forgets holds that ended more than HoldTTL ago. s.mu is held.
func (s *Server) sweepLocked(now time.Time) {
	for id, h := range s.holds {
		end := h.decided
		if end.IsZero() {
			end = h.Created.Add(s.o.HoldTTL)
		}
		if now.Sub(end) >= s.o.HoldTTL {
			delete(s.holds, id)
		}
	}
}

// newHold registers a PENDING hold for q.
func (s *Server) newHold(q authorizeReq, view intentView, rule string) (HoldInfo, error) {
	now := s.o.Now()
	args := view.Metadata.Arguments
	if len(args) == 0 {
		args = json.RawMessage(`{}`)
	}
	h := &hold{HoldInfo: HoldInfo{
		ID: "hold-" + randomHex(16), State: HoldPending, ServerID: view.Metadata.ServerID, Tool: view.Metadata.ToolName,
		Action: view.Action, AgentID: q.agentID, TaskID: view.TaskID, Rule: rule,
		Arguments: append(json.RawMessage(nil), args...), TxCommit: q.txCommit, Created: now,
	}}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweepLocked(now)
	if len(s.holds) >= maxHolds {
		return HoldInfo{}, fmt.Errorf("the signer already keeps %d holds; decide or let them expire first", maxHolds)
	}
	s.holds[h.ID] = h
	s.o.Logger.Info("call held for approval", "hold_id", h.ID, "action", Visible(h.Action), "agent_id", Visible(h.AgentID))
	return h.HoldInfo, nil
}

// consumeApproval finds an approved, unconsumed, unexpired hold for the
// exact intent (txCommit) of the same agent, marks it consumed and returns
// its id.
func (s *Server) consumeApproval(txCommit, agentID string) (string, bool) {
	now := s.o.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	var best *hold
	for _, h := range s.holds {
		if h.State != HoldApproved || h.Consumed || h.TxCommit != txCommit || h.AgentID != agentID {
			continue
		}
		if !now.Before(h.Created.Add(s.o.HoldTTL)) {
			continue // the approval expired with its hold
		}
		if best == nil || h.Created.Before(best.Created) {
			best = h
		}
	}
	if best == nil {
		return "", false
	}
	best.Consumed = true
	return best.ID, true
}

// Holds returns every retained hold, oldest first, with its current state.
// Safe for concurrent use.
func (s *Server) Holds() []HoldInfo {
	now := s.o.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]HoldInfo, 0, len(s.holds))
	for _, h := range s.holds {
		info := h.HoldInfo
		info.State = s.state(h, now)
		out = append(out, info)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// Resolve approves (approve true) or denies a PENDING hold. It returns an
// error wrapping ErrNoHold or ErrHoldDecided otherwise. Safe for concurrent
// use.
func (s *Server) Resolve(id string, approve bool) (HoldInfo, error) {
	now := s.o.Now()
	s.mu.Lock()
	h, ok := s.holds[id]
	if !ok {
		s.mu.Unlock()
		return HoldInfo{}, fmt.Errorf("hold %.80q: %w", id, ErrNoHold)
	}
	if st := s.state(h, now); st != HoldPending {
		s.mu.Unlock()
		return HoldInfo{}, fmt.Errorf("hold %s is %s: %w", id, st, ErrHoldDecided)
	}
	h.State, h.decided = HoldDenied, now
	if approve {
		h.State = HoldApproved
	}
	info := h.HoldInfo
	s.mu.Unlock()

	rec := Record{Surface: "hold_resolve", Action: info.Action, ServerID: info.ServerID, Tool: info.Tool, AgentID: info.AgentID,
		TxCommit: info.TxCommit, PolicyHash: s.o.Policy.Hash(), HoldID: id, Decision: policy.StatusAllowed,
		Message: "a person approved the hold; the exact intent may be re-submitted once"}
	if !approve {
		rec.Decision, rec.Code, rec.Message = policy.StatusDenied, "SIGIL_HOLD_DENIED", "a person denied the hold"
	}
	s.record(rec)
	return info, nil
}

func (s *Server) handleHoldLookup(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	now := s.o.Now()
	s.mu.Lock()
	h, ok := s.holds[id]
	st := ""
	if ok {
		st = s.state(h, now)
	}
	s.mu.Unlock()
	if !ok {
		writeJSON(w, http.StatusNotFound, map[string]string{"status": "ERROR", "error_code": "SIGIL_HOLD_NOT_FOUND",
			"message": "no such hold (holds live in the signer's memory and are forgotten when it restarts)"})
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"hold_id": id, "status": st})
}
