package authz

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// PENDING holds (docs/protocol.md#holds-pending).
//
// A held call waits while its hold is looked up with GET /v1/holds/{id}.
// Sign allows 30 lookups a minute per API key, so every lookup of every
// concurrent hold of one Sign client takes a slot from one shared limiter
// (one slot every holdInterval), the first no earlier than holdFirstDelay
// after the hold. A lookup that says APPROVED is not itself authority: the
// exact intent is re-submitted and only that fresh decision counts.

const (
	holdFirstDelay = 2 * time.Second
	holdInterval   = time.Minute / 30
)

// signClock is the time source of hold waits, JWKS caching and attestation
// checks. Production uses holdRealClock; tests substitute a manual clock so
// that nothing depends on wall time. Implementations are safe for
// concurrent use.
type signClock interface {
	Now() time.Time
	// SleepUntil blocks until t (returning nil) or until ctx ends
	// (returning ctx.Err()).
	SleepUntil(ctx context.Context, t time.Time) error
}

type holdRealClock struct{}

func (holdRealClock) Now() time.Time { return time.Now() }

func (holdRealClock) SleepUntil(ctx context.Context, t time.Time) error {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}

// holdLimiter hands out hold-lookup slots at least interval apart, shared by
// every hold of one Sign client. It is safe for concurrent use.
type holdLimiter struct {
	interval time.Duration

	mu   sync.Mutex // guards next
	next time.Time  // earliest start of the next slot
}

// reserve takes the first free slot at or after earliest. When that slot
// would start after deadline nothing is reserved and ok is false.
func (l *holdLimiter) reserve(earliest, deadline time.Time) (slot time.Time, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	slot = earliest
	if slot.Before(l.next) {
		slot = l.next
	}
	if slot.After(deadline) {
		return time.Time{}, false
	}
	l.next = slot.Add(l.interval)
	return slot, true
}

// holdWait waits for hold holdID of the call in (sent for req) to resolve:
// it returns the decision of the re-submitted intent after an approval, a
// denial with HoldID set otherwise, or ctx.Err() / an unreachable error.
func (s *Sign) holdWait(ctx context.Context, in Intent, req Request, holdID string) (Decision, error) {
	start := s.clock.Now()
	deadline := start.Add(s.pendingTimeout)
	notify := func() {
		if req.OnHold != nil {
			req.OnHold(holdID, s.clock.Now().Sub(start))
		}
	}
	deny := func(code, msg string) (Decision, error) {
		return Decision{Verdict: Denied, ErrorCode: code, Message: msg, HoldID: holdID}, nil
	}
	s.log.Info("call held for approval", "hold_id", holdID, "action", in.Action)
	notify()
	earliest := start.Add(s.holdFirst)
	for {
		slot, ok := s.holds.reserve(earliest, deadline)
		if !ok {
			if err := s.clock.SleepUntil(ctx, deadline); err != nil {
				return Decision{HoldID: holdID}, err
			}
			return deny("SIGIL_PENDING_TIMEOUT", fmt.Sprintf(
				"the call waited %d s for approval of hold %s and was not approved in time",
				int((s.pendingTimeout+time.Second/2)/time.Second), holdID))
		}
		if err := s.clock.SleepUntil(ctx, slot); err != nil {
			return Decision{HoldID: holdID}, err
		}
		st, d, err := s.holdLookup(ctx, holdID)
		if err != nil {
			return Decision{HoldID: holdID}, err
		}
		notify()
		if d != nil {
			d.HoldID = holdID
			return *d, nil
		}
		switch st {
		case HoldApproved:
			// The exact intent again: same bytes and txCommit, a fresh nonce.
			s.log.Info("hold approved; re-submitting the intent", "hold_id", holdID)
			fresh, again, err := s.send(ctx, in, req.AgentID)
			if err != nil {
				return Decision{HoldID: holdID}, err
			}
			if again != "" {
				return deny("SIGIL_RESPONSE_INVALID", fmt.Sprintf("sigil sign held the call again (hold %s) after hold %s was approved", again, holdID))
			}
			fresh.HoldID = holdID
			return fresh, nil
		case HoldDenied:
			return deny("SIGIL_HOLD_DENIED", fmt.Sprintf("hold %s was denied by an approver", holdID))
		case HoldExpired:
			return deny("SIGIL_HOLD_EXPIRED", fmt.Sprintf("hold %s expired or no longer exists", holdID))
		}
		// PENDING, or no usable answer this time: wait for the next slot.
		earliest = s.clock.Now()
	}
}

// holdLookup does one GET /v1/holds/{id}. It returns the hold's state, or a
// final decision (invalid response, rejected key), or ctx.Err(). A lookup
// that got no usable answer (no response, 429, 5xx) returns an empty state:
// the caller tries again at its next slot.
func (s *Sign) holdLookup(ctx context.Context, holdID string) (string, *Decision, error) {
	invalid := func(msg string) (string, *Decision, error) {
		return "", &Decision{Verdict: Denied, ErrorCode: "SIGIL_RESPONSE_INVALID", Message: msg}, nil
	}
	rctx, cancel := context.WithTimeout(ctx, s.requestTimeout)
	defer cancel()
	u := s.holdsURL + url.PathEscape(holdID)
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, u, nil)
	if err != nil {
		return invalid(fmt.Sprintf("bad hold id %.64q", holdID))
	}
	req.Header.Set("Authorization", "Bearer "+s.apiKey)
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return "", nil, ctx.Err()
		}
		s.log.Warn("hold lookup got no response; trying again", "hold_id", holdID, "err", signErrText(err))
		return "", nil, nil
	}
	defer resp.Body.Close()
	switch code := resp.StatusCode; {
	case code == http.StatusOK:
		body, err := respReadBody(ctx, resp, cancel, s.bodyTimeout)
		if err != nil && ctx.Err() != nil {
			return "", nil, ctx.Err()
		}
		st := ""
		if err == nil {
			st, err = respParseHold(body)
		}
		if err != nil {
			return invalid("invalid hold lookup response: " + err.Error())
		}
		return st, nil, nil
	case code == http.StatusNotFound:
		return HoldExpired, nil, nil
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		d := s.authFailed(code, nil)
		return "", &d, nil
	case code == http.StatusTooManyRequests || code >= 500:
		s.log.Warn("hold lookup failed; trying again", "hold_id", holdID, "status", code)
		return "", nil, nil
	default:
		return invalid(fmt.Sprintf("unexpected HTTP %d from hold lookup", code))
	}
}
