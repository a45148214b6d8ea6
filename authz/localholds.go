package authz

import (
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/sigilcore/sigil-hub/authz/policy"
)

// Approval holds, kept by Local in memory only: the
// one store behind the hub's approval page in --policy mode and behind the
// signer's GET /v1/holds/{id} and approval page.
//
// A require_approval decision opens a PENDING hold (Authorize waits on it,
// Submit's client re-submits). A person approves or denies it (Resolve); a
// hold nobody decided within PendingTimeout of its creation is EXPIRED. An
// ended hold stays known for Retain, then it is forgotten: Resolve answers
// ErrNoHold, a lookup finds nothing. A restart forgets every hold, so nothing
// is ever approved by a hold that is no longer known.

// Hold states, as Holds and GET /v1/holds/{id} report them.
const (
	HoldPending  = "PENDING"
	HoldApproved = "APPROVED"
	HoldDenied   = "DENIED"
	HoldExpired  = "EXPIRED"
)

// maxHolds bounds the kept holds; a call held beyond it is denied
// SIGIL_RATE_LIMITED (a looping agent cannot exhaust memory).
const maxHolds = 10_000

// ErrNoHold is returned by Resolve for a hold that is unknown or forgotten.
var ErrNoHold = errors.New("no such hold")

// ErrHoldDecided is returned by Resolve for a hold that is no longer PENDING.
var ErrHoldDecided = errors.New("hold is no longer pending")

// HoldInfo describes one hold for an approval surface. It is a copy, safe to
// keep and share (Arguments must not be modified). Every field but ID and
// State comes from the client.
type HoldInfo struct {
	ID        string          `json:"id"`
	State     string          `json:"state"`
	ServerID  string          `json:"server_id,omitempty"`
	Tool      string          `json:"tool,omitempty"`
	Action    string          `json:"action"`
	AgentID   string          `json:"agent_id"`
	TaskID    string          `json:"task_id,omitempty"`
	Rule      string          `json:"rule,omitempty"` // the require_approval rule that held the call
	Arguments json.RawMessage `json:"arguments"`
	TxCommit  string          `json:"tx_commit"`
	Created   time.Time       `json:"created"`
	// Consumed reports whether a re-submission used the approval.
	Consumed bool `json:"consumed,omitempty"`
}

// hold is one kept hold; its fields are guarded by Local.mu.
type hold struct {
	info  HoldInfo      // info.State is the current state
	ended time.Time     // when it left PENDING
	done  chan struct{} // closed when it leaves PENDING
}

// endLocked moves a PENDING hold to state at time at. Local.mu is held.
func (h *hold) endLocked(state string, at time.Time) {
	h.info.State, h.ended = state, at
	close(h.done)
}

// liveLocked returns hold id as it is at now: a PENDING hold past its time
// becomes EXPIRED, and one that ended Retain ago is forgotten (nil).
// l.mu is held.
func (l *Local) liveLocked(id string, now time.Time) *hold {
	h, ok := l.holds[id]
	if !ok {
		return nil
	}
	if exp := h.info.Created.Add(l.o.PendingTimeout); h.info.State == HoldPending && !now.Before(exp) {
		h.endLocked(HoldExpired, exp)
	}
	if h.info.State != HoldPending && now.Sub(h.ended) >= l.o.Retain {
		delete(l.holds, id)
		return nil
	}
	return h
}

// openHold registers a PENDING hold for the call rec describes and records
// rec as PENDING with the hold's id and how to decide it. When too many
// holds are kept it records and returns a denial instead (rec then says
// why), with the error.
func (l *Local) openHold(rec *Record, args json.RawMessage) (*hold, error) {
	now := l.o.Now()
	var b [16]byte
	rand.Read(b[:]) // never fails (crypto/rand crashes the program instead)
	h := &hold{done: make(chan struct{}), info: HoldInfo{ID: "hold-" + hex.EncodeToString(b[:]), State: HoldPending,
		ServerID: rec.ServerID, Tool: rec.Tool, Action: rec.Action, AgentID: rec.AgentID, TaskID: rec.TaskID, Rule: rec.Rule,
		Arguments: append(json.RawMessage(nil), args...), TxCommit: rec.TxCommit, Created: now}}
	l.mu.Lock()
	for id := range l.holds {
		l.liveLocked(id, now)
	}
	full := len(l.holds) >= maxHolds
	if !full {
		l.holds[h.info.ID] = h
	}
	l.mu.Unlock()
	if full {
		err := fmt.Errorf("%d calls already wait for approval; decide them or let them expire first", maxHolds)
		rec.Decision, rec.Code, rec.Message = policy.StatusDenied, "SIGIL_RATE_LIMITED", err.Error()
		l.record(*rec)
		return nil, err
	}
	rec.HoldID = h.info.ID
	rec.Message += "; approve or deny hold " + h.info.ID + " on the approval page or with `sigil-hub holds`"
	l.record(*rec)
	return h, nil
}

// expire ends h as EXPIRED unless it already ended, and returns its state.
func (l *Local) expire(h *hold) string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if h.info.State == HoldPending {
		h.endLocked(HoldExpired, l.o.Now())
	}
	return h.info.State
}

// consume marks the oldest approved, unused hold of the exact intent
// (txCommit) of the same agent, still within its time, as used and returns
// its id.
func (l *Local) consume(txCommit, agentID string) (string, bool) {
	now := l.o.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	var best *hold
	for id := range l.holds {
		h := l.liveLocked(id, now)
		if h == nil || h.info.State != HoldApproved || h.info.Consumed || h.info.TxCommit != txCommit || h.info.AgentID != agentID ||
			!now.Before(h.info.Created.Add(l.o.PendingTimeout)) { // the approval expires with its hold
			continue
		}
		if best == nil || h.info.Created.Before(best.info.Created) {
			best = h
		}
	}
	if best == nil {
		return "", false
	}
	best.info.Consumed = true
	return best.info.ID, true
}

// Hold returns hold id as it is now, or false when it is unknown or
// forgotten. Safe for concurrent use.
func (l *Local) Hold(id string) (HoldInfo, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if h := l.liveLocked(id, l.o.Now()); h != nil {
		return h.info, true
	}
	return HoldInfo{}, false
}

// Holds returns every kept hold with its current state, oldest first. Safe
// for concurrent use.
func (l *Local) Holds() []HoldInfo {
	now := l.o.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]HoldInfo, 0, len(l.holds))
	for id := range l.holds {
		if h := l.liveLocked(id, now); h != nil {
			out = append(out, h.info)
		}
	}
	slices.SortFunc(out, func(a, b HoldInfo) int {
		return cmp.Or(a.Created.Compare(b.Created), strings.Compare(a.ID, b.ID))
	})
	return out
}

// Resolve approves (approve true) or denies a PENDING hold and returns it; a
// call waiting on it completes at once. It returns an error wrapping
// ErrNoHold (unknown or forgotten) or ErrHoldDecided (decided or expired
// already). Safe for concurrent use.
func (l *Local) Resolve(id string, approve bool) (HoldInfo, error) {
	now := l.o.Now()
	l.mu.Lock()
	h := l.liveLocked(id, now)
	if h == nil {
		l.mu.Unlock()
		return HoldInfo{}, fmt.Errorf("hold %.80q: %w (never held here, or it ended and was forgotten)", id, ErrNoHold)
	}
	if st := h.info.State; st != HoldPending {
		l.mu.Unlock()
		return HoldInfo{}, fmt.Errorf("hold %s is %s: %w", id, st, ErrHoldDecided)
	}
	rec := Record{Surface: "hold_resolve", Decision: policy.StatusAllowed, Message: "a person approved the hold"}
	if approve {
		h.endLocked(HoldApproved, now)
		l.approvals[id] = approval{txCommit: h.info.TxCommit, agentID: h.info.AgentID, until: h.info.Created.Add(l.o.PendingTimeout)}
	} else {
		h.endLocked(HoldDenied, now)
		rec.Decision, rec.Code, rec.Message = policy.StatusDenied, "SIGIL_HOLD_DENIED", "a person denied the hold"
	}
	info := h.info
	l.mu.Unlock()
	rec.Rule, rec.Action, rec.ServerID, rec.Tool, rec.AgentID, rec.TaskID = info.Rule, info.Action, info.ServerID, info.Tool, info.AgentID, info.TaskID
	rec.HoldID, rec.TxCommit, rec.PolicyHash = id, info.TxCommit, l.PolicyHash()
	l.record(rec)
	l.o.Logger.Info("hold decided", "hold_id", id, "approved", approve)
	return info, nil
}
