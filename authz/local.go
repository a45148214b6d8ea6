package authz

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sigilcore/sigil-hub/authz/policy"
)

// LocalOptions configure a Local authorizer. NewLocal copies them.
type LocalOptions struct {
	// Policy is the parsed warranty.md policy. Required.
	Policy *policy.Policy
	// PendingTimeout is how long a hold can be decided: a call held by
	// Authorize waits this long for a person, a hold opened by Submit is
	// EXPIRED after it. Zero means 30s.
	PendingTimeout time.Duration
	// Retain is how long a hold stays known (listed, looked up, reported
	// as decided) after it ended; then it is forgotten. Zero forgets it at
	// once.
	Retain time.Duration
	// Counter keeps execution_limits counts. Nil means an in-memory counter.
	Counter policy.Counter
	// Logger receives a line when a call is held and when a person decides
	// a hold (ids only). Nil discards.
	Logger *slog.Logger
	// OnRecord, if set, receives every decision record once it is kept
	// (outside Local's lock, possibly concurrently): the signer logs it and
	// appends it to its decision log.
	OnRecord func(Record)
	// Now returns the current time. Nil means time.Now.
	Now func() time.Time
}

// Local decides calls with the embedded policy engine: same intents, same
// decisions and codes as Sigil Sign, no key and no network. A
// require_approval rule holds the call until a person decides (see
// localholds.go). It serves the hub in --policy mode (Authorize, which waits
// on the hold) and the signer (Submit, which answers PENDING at once); both
// share its one store of holds and its one record of recent decisions,
// which feed an approval surface. Safe for concurrent use.
type Local struct {
	o      LocalOptions
	policy atomic.Pointer[policy.Policy] // o.Policy, then SetPolicy's

	mu     sync.Mutex       // guards holds, approvals and recent
	holds  map[string]*hold // kept holds by id
	recent []Record         // the last localRecentMax decisions, oldest first
	// approvals are the holds a person approved, by id, kept for the
	// hold's time whatever Retain is: a call that continues one
	// (Request.Continues) is not asked again.
	approvals map[string]approval
}

// approval is what a person approved: one intent, for one agent, until a
// time.
type approval struct {
	txCommit, agentID string
	until             time.Time
}

// localRecentMax is how many decision records Recent keeps.
const localRecentMax = 50

// Record is one decision Local made: a policy decision (Surface
// "authorize"), a person's decision on a hold ("hold_resolve") or a held
// call nobody decided in time ("hold_timeout"). It never holds argument
// values or keys. It is a plain value.
type Record struct {
	Time    time.Time `json:"time"`
	Surface string    `json:"surface"`
	// Decision is ALLOWED, DENIED or PENDING.
	Decision   string `json:"decision"`
	Code       string `json:"error_code,omitempty"`
	Message    string `json:"message,omitempty"`
	Rule       string `json:"rule,omitempty"`
	Action     string `json:"action,omitempty"`
	ServerID   string `json:"server_id,omitempty"`
	Tool       string `json:"tool,omitempty"`
	AgentID    string `json:"agent_id,omitempty"`
	TaskID     string `json:"task_id,omitempty"`
	HoldID     string `json:"hold_id,omitempty"`
	TxCommit   string `json:"tx_commit,omitempty"`
	PolicyHash string `json:"policy_hash"`
}

// NewLocal returns a Local authorizer. It panics if o.Policy is nil.
func NewLocal(o LocalOptions) *Local {
	if o.Policy == nil {
		panic("authz: NewLocal needs a policy")
	}
	if o.PendingTimeout <= 0 {
		o.PendingTimeout = 30 * time.Second
	}
	o.Counter = cmp.Or[policy.Counter](o.Counter, &policy.MemoryCounter{})
	o.Logger = cmp.Or(o.Logger, slog.New(slog.DiscardHandler))
	if o.Now == nil {
		o.Now = time.Now
	}
	l := &Local{o: o, holds: make(map[string]*hold), approvals: make(map[string]approval)}
	l.policy.Store(o.Policy)
	return l
}

// PolicyHash is the loaded policy's hash
// (docs/protocol.md#the-embedded-policy).
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

// decide evaluates intent with p and records the decision in rec, unless
// it is PENDING: the caller then opens a hold or uses an approval.
func (l *Local) decide(p *policy.Policy, intent []byte, rec Record) Record {
	d := p.Evaluate(intent, l.o.Counter, l.o.Now())
	rec.Decision, rec.Rule, rec.PolicyHash = d.Status, d.Rule, p.Hash()
	switch d.Status {
	case policy.StatusPending:
		rec.Code, rec.Message = d.PublicCode(), cmp.Or(d.Message, "the call requires human approval")
		return rec
	case policy.StatusAllowed:
	default:
		rec.Decision, rec.Code, rec.Message = policy.StatusDenied, d.PublicCode(), cmp.Or(d.Message, "denied by policy")
	}
	l.record(rec)
	return rec
}

// Authorize implements Authorizer. It returns an error only when ctx ends.
func (l *Local) Authorize(ctx context.Context, req Request) (Decision, error) {
	in, err := buildIntent(req, false) // the commit only for a hold
	if err != nil {
		return inputDecision(err, ""), nil
	}
	rec := l.decide(l.policy.Load(), in.JSON, Record{Surface: "authorize", Action: in.Action, ServerID: req.ServerID,
		Tool: req.Tool, AgentID: cmp.Or(req.AgentID, DefaultAgentID), TaskID: req.TaskID})
	switch rec.Decision {
	case policy.StatusAllowed:
		return Decision{Verdict: Approved, PolicyHash: rec.PolicyHash}, nil
	case policy.StatusPending:
		if d, ok := l.continued(req, in, rec); ok {
			return d, nil
		}
		return l.wait(ctx, req, in, rec)
	}
	return Decision{Verdict: Denied, ErrorCode: rec.Code, Message: rec.Message, PolicyHash: rec.PolicyHash}, nil
}

// continued approves a held call that continues one a person approved
// (Request.Continues): the same intent, the same agent, within the hold's
// time. It records the approval, naming the hold.
func (l *Local) continued(req Request, in Intent, rec Record) (Decision, bool) {
	if req.Continues == "" {
		return Decision{}, false
	}
	tx, err := pgcTxCommit(in.JSON)
	if err != nil {
		return Decision{}, false
	}
	now := l.o.Now()
	l.mu.Lock()
	maps.DeleteFunc(l.approvals, func(_ string, a approval) bool { return !now.Before(a.until) })
	a, ok := l.approvals[req.Continues]
	ok = ok && a.txCommit == tx && a.agentID == rec.AgentID
	l.mu.Unlock()
	if !ok {
		return Decision{}, false
	}
	rec.Decision, rec.Code, rec.HoldID, rec.TxCommit = policy.StatusAllowed, "", req.Continues, tx
	rec.Message = "continues the call a person approved (hold " + req.Continues + ")"
	l.record(rec)
	return Decision{Verdict: Approved, HoldID: req.Continues, PolicyHash: rec.PolicyHash, TxCommit: tx}, true
}

// Submit decides an intent that arrives whole, with the txCommit and agent
// its client sent (the signer's POST /v1/authorize), without waiting. The
// record it returns (and keeps) says ALLOWED, DENIED (SIGIL_VALIDATION_ERROR
// when txCommit is not the intent's pg-commit-v1 hash) or PENDING with the
// id of a new hold. A held intent that a person approved is ALLOWED once
// when its client submits it again with the same txCommit and agent: the
// record then names the hold it used. The error is non-nil only when too
// many holds are kept (the record says so too). Safe for concurrent use.
func (l *Local) Submit(intent json.RawMessage, txCommit, agentID string) (Record, error) {
	v := viewIntent(intent)
	p := l.policy.Load()
	rec := Record{Surface: "authorize", Action: v.Action, ServerID: v.Metadata.ServerID, Tool: v.Metadata.ToolName,
		AgentID: agentID, TaskID: v.TaskID, TxCommit: txCommit, PolicyHash: p.Hash()}
	commit, err := TxCommit(intent)
	if err != nil || commit != txCommit {
		rec.Decision, rec.Code, rec.Rule = policy.StatusDenied, "SIGIL_VALIDATION_ERROR", "txCommit"
		rec.Message = "txCommit does not match the intent (want the pg-commit-v1 SHA-256 of the intent object)"
		if err != nil {
			rec.Message = fmt.Sprintf("the intent cannot be committed with pg-commit-v1: %v", err)
		}
		l.record(rec)
		return rec, nil
	}
	if rec = l.decide(p, intent, rec); rec.Decision != policy.StatusPending {
		return rec, nil
	}
	if id, ok := l.consume(txCommit, agentID); ok {
		rec.Decision, rec.Code, rec.HoldID, rec.Message = policy.StatusAllowed, "", id, "approved by a person (hold "+id+")"
		l.record(rec)
		return rec, nil
	}
	_, err = l.openHold(&rec, v.Metadata.Arguments)
	return rec, err
}

// intentView is what records and holds show of an intent received whole,
// read leniently: the policy engine has the final word on its shape.
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

// record stamps rec, keeps it for Recent and hands it to OnRecord.
func (l *Local) record(rec Record) {
	rec.Time = l.o.Now().UTC()
	l.mu.Lock()
	l.recent = append(l.recent, rec)
	if len(l.recent) > localRecentMax {
		l.recent = append(l.recent[:0], l.recent[len(l.recent)-localRecentMax:]...)
	}
	l.mu.Unlock()
	if l.o.OnRecord != nil {
		l.o.OnRecord(rec)
	}
}

// Recent returns the last decisions (at most 50), newest first. Safe for
// concurrent use.
func (l *Local) Recent() []Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := slices.Clone(l.recent)
	slices.Reverse(out)
	return out
}

// inputDecision turns a local input denial into a Decision; any other
// error (an invalid extractor) denies as malformed input, its message
// after prefix.
func inputDecision(err error, prefix string) Decision {
	if ie, ok := errors.AsType[*InputError](err); ok {
		return Decision{Verdict: Denied, ErrorCode: ie.Code, Message: ie.Message}
	}
	return Decision{Verdict: Denied, ErrorCode: CodeInputMalformed, Message: prefix + err.Error()}
}

// wait holds the call until a person decides, the timeout passes or ctx ends.
func (l *Local) wait(ctx context.Context, req Request, in Intent, rec Record) (Decision, error) {
	tx, err := pgcTxCommit(in.JSON) // shown on the approval page
	if err != nil {
		return inputDecision(err, ""), nil
	}
	rec.TxCommit = tx
	h, err := l.openHold(&rec, argumentsOrEmpty(req.Arguments))
	if err != nil {
		return Decision{Verdict: Denied, ErrorCode: rec.Code, Message: rec.Message, PolicyHash: rec.PolicyHash}, nil
	}
	id := h.info.ID
	l.o.Logger.Info("call held for approval", "hold_id", id, "server_id", req.ServerID, "tool", req.Tool)
	if req.OnHold != nil {
		req.OnHold(id, 0)
	}
	timeout := time.NewTimer(l.o.PendingTimeout)
	defer timeout.Stop()
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	start := time.Now()
wait:
	for {
		select {
		case <-ctx.Done():
			l.expire(h)
			return Decision{}, ctx.Err()
		case <-h.done:
			break wait
		case <-timeout.C:
			break wait
		case <-tick.C:
			if req.OnHold != nil {
				req.OnHold(id, time.Since(start))
			}
		}
	}
	d := Decision{Verdict: Denied, HoldID: id, PolicyHash: rec.PolicyHash, TxCommit: tx}
	switch l.expire(h) { // a decision that came first counts
	case HoldApproved:
		d.Verdict = Approved
	case HoldDenied:
		d.ErrorCode, d.Message = "SIGIL_HOLD_DENIED", "a person denied the call"
	default:
		d.ErrorCode = "SIGIL_PENDING_TIMEOUT"
		d.Message = fmt.Sprintf("the call waited %s for approval and nobody decided", l.o.PendingTimeout.Round(time.Millisecond))
		rec.Surface, rec.Decision, rec.Code, rec.Message = "hold_timeout", policy.StatusDenied, d.ErrorCode, d.Message
		l.record(rec)
	}
	return d, nil
}

func argumentsOrEmpty(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return json.RawMessage(`{}`)
	}
	return raw
}
