package authz

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sigilcore/sigil-hub/authz/policy"
)

// LocalOptions configure a Local authorizer. NewLocal copies them.
type LocalOptions struct {
	// Policy is the parsed warranty.md policy. Required.
	Policy *policy.Policy
	// PendingTimeout bounds how long a held call waits for a person's
	// decision (D11). Zero means 30s.
	PendingTimeout time.Duration
	// Counter keeps execution_limits counts. Nil means an in-memory counter.
	Counter policy.Counter
	// Logger receives decisions on held calls. Nil discards.
	Logger *slog.Logger
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time
}

// Local decides calls with the embedded policy engine: same intents, same
// decisions and codes as Sigil Sign, no key and no network. A require_approval
// rule holds the call (PENDING) until Resolve approves or denies it, or the
// pending timeout passes. Holds and Recent feed an approval surface (the
// hub's approval page in --policy mode, issue 3). Safe for concurrent use.
type Local struct {
	o      LocalOptions
	policy atomic.Pointer[policy.Policy] // o.Policy, then SetPolicy's

	mu     sync.Mutex       // guards holds and recent
	holds  map[string]*hold // pending holds by id
	recent []LocalRecord    // the last localRecentMax decisions, oldest first
}

// localRecentMax is how many decision records Recent keeps.
const localRecentMax = 50

// LocalRecord is one decision Local made, for an approval page's "recent
// decisions". It never holds argument values. It is a plain value.
type LocalRecord struct {
	Time time.Time `json:"time"`
	// Surface is "authorize" (a policy decision), "hold_resolve" (a person
	// approved or denied a hold) or "hold_timeout" (nobody decided in time).
	Surface string `json:"surface"`
	// Decision is ALLOWED, DENIED or PENDING (sigil-protocol.md §2).
	Decision string `json:"decision"`
	Code     string `json:"error_code,omitempty"`
	Rule     string `json:"rule,omitempty"`
	Action   string `json:"action,omitempty"`
	ServerID string `json:"server_id,omitempty"`
	Tool     string `json:"tool,omitempty"`
	HoldID   string `json:"hold_id,omitempty"`
}

// hold is one call waiting for a person's decision.
type hold struct {
	info HoldInfo
	done chan bool // receives the decision once (true = approve)
}

// HoldInfo describes a pending hold for an approval surface. It is a copy,
// safe to keep and share (Arguments must not be modified).
type HoldInfo struct {
	ID        string          `json:"id"`
	ServerID  string          `json:"server_id"`
	Tool      string          `json:"tool"`
	Action    string          `json:"action"`
	AgentID   string          `json:"agent_id"`
	TaskID    string          `json:"task_id,omitempty"`
	Rule      string          `json:"rule,omitempty"` // the require_approval rule that held the call
	Arguments json.RawMessage `json:"arguments"`
	TxCommit  string          `json:"tx_commit"`
	Created   time.Time       `json:"created"`
}

// NewLocal returns a Local authorizer. It panics if o.Policy is nil.
func NewLocal(o LocalOptions) *Local {
	if o.Policy == nil {
		panic("authz: NewLocal needs a policy")
	}
	if o.PendingTimeout <= 0 {
		o.PendingTimeout = 30 * time.Second
	}
	if o.Counter == nil {
		o.Counter = &policy.MemoryCounter{}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	l := &Local{o: o, holds: make(map[string]*hold)}
	l.policy.Store(o.Policy)
	return l
}

// PolicyHash is the loaded policy's hash (sigil-protocol.md §4.4).
func (l *Local) PolicyHash() string { return l.policy.Load().Hash() }

// SetPolicy replaces the policy for the calls authorized from now on (a
// reloaded warranty.md). Calls already held wait for their person as
// before; execution_limits counts carry over. It panics if p is nil.
func (l *Local) SetPolicy(p *policy.Policy) {
	if p == nil {
		panic("authz: SetPolicy(nil)")
	}
	l.policy.Store(p)
}

// Authorize implements Authorizer. It returns an error only when ctx ends.
func (l *Local) Authorize(ctx context.Context, req Request) (Decision, error) {
	in, err := buildIntent(req, false) // the commit only for a hold
	if err != nil {
		return inputDecision(err), nil
	}
	p := l.policy.Load() // one policy decides the whole call
	hash := p.Hash()
	d := p.Evaluate(in.JSON, l.o.Counter, l.o.Now())
	rec := LocalRecord{Surface: "authorize", Decision: d.Status, Rule: d.Rule, Action: in.Action, ServerID: req.ServerID, Tool: req.Tool}
	switch d.Status {
	case policy.StatusAllowed:
		l.record(rec)
		return Decision{Verdict: Approved, PolicyHash: hash}, nil
	case policy.StatusPending:
		return l.wait(ctx, req, in, hash, rec)
	}
	msg := d.Message
	if msg == "" {
		msg = "denied by policy"
	}
	rec.Decision, rec.Code = policy.StatusDenied, d.PublicCode()
	l.record(rec)
	return Decision{Verdict: Denied, ErrorCode: d.PublicCode(), Message: msg, PolicyHash: hash}, nil
}

// record stamps rec and keeps it for Recent.
func (l *Local) record(rec LocalRecord) {
	rec.Time = l.o.Now().UTC()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.recent = append(l.recent, rec)
	if len(l.recent) > localRecentMax {
		l.recent = append(l.recent[:0], l.recent[len(l.recent)-localRecentMax:]...)
	}
}

// Recent returns the last decisions (at most 50), newest first. Safe for
// concurrent use.
func (l *Local) Recent() []LocalRecord {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]LocalRecord, len(l.recent))
	for i, r := range l.recent {
		out[len(out)-1-i] = r
	}
	return out
}

// inputDecision turns a local input denial into a Decision.
func inputDecision(err error) Decision {
	if ie, ok := err.(*InputError); ok {
		return Decision{Verdict: Denied, ErrorCode: ie.Code, Message: ie.Message}
	}
	return Decision{Verdict: Denied, ErrorCode: "SIGIL_INPUT_MALFORMED", Message: err.Error()}
}

// wait holds the call until a person decides, the timeout passes or ctx ends.
func (l *Local) wait(ctx context.Context, req Request, in Intent, hash string, rec LocalRecord) (Decision, error) {
	tx, err := pgcTxCommit(in.JSON) // shown on the approval page
	if err != nil {
		return inputDecision(err), nil
	}
	in.TxCommit = tx
	var b [8]byte
	_, _ = rand.Read(b[:])
	agent := req.AgentID
	if agent == "" {
		agent = DefaultAgentID
	}
	h := &hold{
		info: HoldInfo{ID: "hold-" + hex.EncodeToString(b[:]), ServerID: req.ServerID, Tool: req.Tool, Action: in.Action,
			AgentID: agent, TaskID: req.TaskID, Rule: rec.Rule,
			Arguments: argumentsOrEmpty(req.Arguments), TxCommit: in.TxCommit, Created: l.o.Now()},
		done: make(chan bool, 1),
	}
	l.mu.Lock()
	l.holds[h.info.ID] = h
	l.mu.Unlock()
	rec.HoldID = h.info.ID
	l.record(rec) // PENDING
	l.o.Logger.Info("call held for approval", "hold_id", h.info.ID, "server_id", req.ServerID, "tool", req.Tool)
	base := Decision{Verdict: Denied, HoldID: h.info.ID, PolicyHash: hash, TxCommit: in.TxCommit}
	if req.OnHold != nil {
		req.OnHold(h.info.ID, 0)
	}
	timeout := time.NewTimer(l.o.PendingTimeout)
	defer timeout.Stop()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	start := time.Now()
	decided := func(ok bool) (Decision, error) {
		if !ok {
			base.ErrorCode, base.Message = "SIGIL_HOLD_DENIED", "a person denied the call"
			return base, nil
		}
		base.Verdict = Approved
		return base, nil
	}
	for {
		select {
		case <-ctx.Done():
			l.forget(h.info.ID)
			return Decision{}, ctx.Err()
		case ok := <-h.done:
			return decided(ok)
		case <-timeout.C:
			if !l.forget(h.info.ID) {
				// Resolve took the hold first: its decision is on the way,
				// and the person was told it counted.
				return decided(<-h.done)
			}
			rec.Surface, rec.Decision, rec.Code = "hold_timeout", policy.StatusDenied, "SIGIL_PENDING_TIMEOUT"
			l.record(rec)
			base.ErrorCode = "SIGIL_PENDING_TIMEOUT"
			base.Message = fmt.Sprintf("the call waited %s for approval and nobody decided", l.o.PendingTimeout.Round(time.Millisecond))
			return base, nil
		case <-tick.C:
			if req.OnHold != nil {
				req.OnHold(h.info.ID, time.Since(start))
			}
		}
	}
}

// forget removes a pending hold and reports whether it was still there.
func (l *Local) forget(id string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	_, ok := l.holds[id]
	delete(l.holds, id)
	return ok
}

func argumentsOrEmpty(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return json.RawMessage(`{}`)
	}
	return raw
}

// Holds lists the pending holds, oldest first. Safe for concurrent use.
func (l *Local) Holds() []HoldInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]HoldInfo, 0, len(l.holds))
	for _, h := range l.holds {
		out = append(out, h.info)
	}
	sort.Slice(out, func(i, j int) bool {
		if !out[i].Created.Equal(out[j].Created) {
			return out[i].Created.Before(out[j].Created)
		}
		return out[i].ID < out[j].ID
	})
	return out
}

// ErrNoHold is returned by Resolve for an unknown or already decided hold
// (a decided hold is forgotten at once).
var ErrNoHold = errors.New("no such pending hold")

// Resolve approves or denies a pending hold and returns what it held; the
// held call completes at once. It returns an error wrapping ErrNoHold when
// the hold is unknown, already decided or timed out. Safe for concurrent use.
func (l *Local) Resolve(id string, approve bool) (HoldInfo, error) {
	l.mu.Lock()
	h, ok := l.holds[id]
	if ok {
		delete(l.holds, id)
	}
	l.mu.Unlock()
	if !ok {
		return HoldInfo{}, fmt.Errorf("hold %.80q: %w", id, ErrNoHold)
	}
	h.done <- approve // cap 1, and only the one who deleted the hold sends
	rec := LocalRecord{Surface: "hold_resolve", Decision: policy.StatusAllowed, Rule: h.info.Rule, Action: h.info.Action,
		ServerID: h.info.ServerID, Tool: h.info.Tool, HoldID: id}
	if !approve {
		rec.Decision, rec.Code = policy.StatusDenied, "SIGIL_HOLD_DENIED"
	}
	l.record(rec)
	l.o.Logger.Info("hold decided", "hold_id", id, "approved", approve)
	return h.info, nil
}
