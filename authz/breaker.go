package authz

import (
	"cmp"
	"fmt"
	"sync"
	"time"
)

// The circuit breaker on /v1/authorize (docs/protocol.md#the-circuit-breaker;
// docs/faults.md case 44 and goal G4), as SignOptions.Breaker* describe it.
// Half-open, exactly one call (the probe) goes to Sign while the others keep
// failing fast. It never turns a failure into an approval: --unsafe-bypass
// applies to its errors exactly as to any other ErrUnreachable
// (docs/protocol.md#unreachable-and-fail-closed).

// Breaker defaults, for SignOptions.
const (
	defaultBreakerThreshold   = 5
	defaultBreakerCooldown    = 2 * time.Second
	defaultBreakerMaxCooldown = 30 * time.Second
)

type breakerState int

const (
	breakerClosed breakerState = iota
	breakerOpen
	breakerHalfOpen
)

// breakerOutcome is what one authorize attempt told the breaker.
type breakerOutcome int

const (
	outcomeAnswered    breakerOutcome = iota // Sign answered (any decision)
	outcomeUnreachable                       // ErrUnreachable
	outcomeUnknown                           // ctx ended or the client closed: says nothing about Sign
)

// signBreaker is the state of one Sign client's breaker. A nil
// *signBreaker is disabled: allow always admits and done does nothing.
// Safe for concurrent use.
type signBreaker struct {
	threshold   int
	minCooldown time.Duration
	maxCooldown time.Duration

	mu        sync.Mutex
	state     breakerState
	failures  int           // consecutive unreachable failures while closed
	cooldown  time.Duration // current open period (doubles per failed probe)
	openUntil time.Time     // while open: when the next probe may go
	probing   bool          // while half-open: the probe is out
}

func newSignBreaker(threshold int, cooldown, maxCooldown time.Duration) *signBreaker {
	if threshold < 0 {
		return nil
	}
	cooldown = cmp.Or(cooldown, defaultBreakerCooldown)
	return &signBreaker{
		threshold:   cmp.Or(threshold, defaultBreakerThreshold),
		minCooldown: cooldown,
		maxCooldown: max(cmp.Or(maxCooldown, defaultBreakerMaxCooldown), cooldown),
		cooldown:    cooldown,
	}
}

// allow decides whether an attempt may go to Sign at now. It returns
// probe=true when this attempt is the half-open probe, and a non-nil error
// (wrapping ErrUnreachable) when the breaker refuses it. Every admitted
// attempt must be followed by exactly one done(probe, outcome).
func (b *signBreaker) allow(now time.Time) (probe bool, err error) {
	if b == nil {
		return false, nil
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch {
	case b.state == breakerClosed:
		return false, nil
	case b.state == breakerOpen && now.Before(b.openUntil):
		return false, fmt.Errorf("%w: circuit open after %d consecutive failures, next probe in %.1f s",
			ErrUnreachable, b.threshold, b.openUntil.Sub(now).Seconds())
	case b.state == breakerHalfOpen && b.probing:
		return false, fmt.Errorf("%w: circuit open after %d consecutive failures, probe in progress", ErrUnreachable, b.threshold)
	}
	b.state, b.probing = breakerHalfOpen, true // the cooldown is over: this attempt is the probe
	return true, nil
}

// done records the outcome of an attempt that allow admitted.
func (b *signBreaker) done(probe bool, o breakerOutcome, now time.Time) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if probe {
		b.probing = false
		switch o {
		case outcomeAnswered:
			b.state, b.failures, b.cooldown = breakerClosed, 0, b.minCooldown
		case outcomeUnreachable:
			b.cooldown = min(2*b.cooldown, b.maxCooldown)
			b.state, b.openUntil = breakerOpen, now.Add(b.cooldown)
		}
		// outcomeUnknown: stay half-open; the next attempt probes.
		return
	}
	if b.state != breakerClosed {
		return // a straggler admitted before the breaker opened
	}
	switch o {
	case outcomeAnswered:
		b.failures = 0
	case outcomeUnreachable:
		b.failures++
		if b.failures >= b.threshold {
			b.state, b.openUntil, b.cooldown = breakerOpen, now.Add(b.minCooldown), b.minCooldown
		}
	}
}

// snapshot reports the state for tests and logs.
func (b *signBreaker) snapshot() (state breakerState, failures int, cooldown time.Duration) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.state, b.failures, b.cooldown
}
