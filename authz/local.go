package authz

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"sync"
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
// pending timeout passes. Safe for concurrent use.
type Local struct {
	o LocalOptions

	mu    sync.Mutex       // guards holds
	holds map[string]*hold // pending holds by id
}

// hold is one call waiting for a person's decision.
type hold struct {
	info HoldInfo
	done chan bool // receives the decision once (true = approve)
}

// HoldInfo describes a pending hold for an approval surface.
type HoldInfo struct {
	ID        string          `json:"id"`
	ServerID  string          `json:"server_id"`
	Tool      string          `json:"tool"`
	Action    string          `json:"action"`
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
	return &Local{o: o, holds: make(map[string]*hold)}
}

// PolicyHash is the loaded policy's hash (sigil-protocol.md §4.4).
func (l *Local) PolicyHash() string { return l.o.Policy.Hash() }

// Authorize implements Authorizer. It returns an error only when ctx ends.
func (l *Local) Authorize(ctx context.Context, req Request) (Decision, error) {
	in, err := NewIntent(req)
	if err != nil {
		return inputDecision(err), nil
	}
	hash := l.o.Policy.Hash()
	d := l.o.Policy.Evaluate(in.JSON, l.o.Counter, l.o.Now())
	switch d.Status {
	case policy.StatusAllowed:
		return Decision{Verdict: Approved, PolicyHash: hash, TxCommit: in.TxCommit}, nil
	case policy.StatusPending:
		return l.wait(ctx, req, in, hash)
	}
	msg := d.Message
	if msg == "" {
		msg = "denied by policy"
	}
	return Decision{Verdict: Denied, ErrorCode: d.PublicCode(), Message: msg, PolicyHash: hash, TxCommit: in.TxCommit}, nil
}

// inputDecision turns a local input denial into a Decision.
func inputDecision(err error) Decision {
	if ie, ok := err.(*InputError); ok {
		return Decision{Verdict: Denied, ErrorCode: ie.Code, Message: ie.Message}
	}
	return Decision{Verdict: Denied, ErrorCode: "SIGIL_INPUT_MALFORMED", Message: err.Error()}
}

// wait holds the call until a person decides, the timeout passes or ctx ends.
func (l *Local) wait(ctx context.Context, req Request, in Intent, hash string) (Decision, error) {
	var b [8]byte
	_, _ = rand.Read(b[:])
	h := &hold{
		info: HoldInfo{ID: "hold-" + hex.EncodeToString(b[:]), ServerID: req.ServerID, Tool: req.Tool, Action: in.Action,
			Arguments: argumentsOrEmpty(req.Arguments), TxCommit: in.TxCommit, Created: l.o.Now()},
		done: make(chan bool, 1),
	}
	l.mu.Lock()
	l.holds[h.info.ID] = h
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		delete(l.holds, h.info.ID)
		l.mu.Unlock()
	}()
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
	for {
		select {
		case <-ctx.Done():
			return Decision{}, ctx.Err()
		case ok := <-h.done:
			if !ok {
				base.ErrorCode, base.Message = "SIGIL_HOLD_DENIED", "a person denied the call"
				return base, nil
			}
			base.Verdict = Approved
			return base, nil
		case <-timeout.C:
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

func argumentsOrEmpty(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 {
		return json.RawMessage(`{}`)
	}
	return raw
}

// Holds lists the pending holds, oldest first.
func (l *Local) Holds() []HoldInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	out := make([]HoldInfo, 0, len(l.holds))
	for _, h := range l.holds {
		out = append(out, h.info)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out
}

// ErrNoHold is returned by Resolve for an unknown or already decided hold.
var ErrNoHold = fmt.Errorf("no such pending hold")

// Resolve approves or denies a pending hold. The held call completes at once.
func (l *Local) Resolve(id string, approve bool) error {
	l.mu.Lock()
	h, ok := l.holds[id]
	if ok {
		delete(l.holds, id)
	}
	l.mu.Unlock()
	if !ok {
		return fmt.Errorf("hold %q: %w", id, ErrNoHold)
	}
	h.done <- approve
	return nil
}
