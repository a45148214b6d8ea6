package authz

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigilcore/sigil-hub/internal/signtest"
)

// TestBreakerStateMachine drives the breaker with explicit times: no clock,
// no network.
func TestBreakerStateMachine(t *testing.T) {
	t0 := time.Unix(1_900_000_000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	type step struct {
		at      int            // ms after t0
		outcome breakerOutcome // reported when admitted
		refused bool           // allow must refuse
		probe   bool           // allow must admit as the probe
		state   breakerState   // state after the step
	}
	u, a, x := outcomeUnreachable, outcomeAnswered, outcomeUnknown
	tests := []struct {
		name  string
		steps []step
	}{
		{"four failures then an answer stays closed", []step{
			{0, u, false, false, breakerClosed}, {1, u, false, false, breakerClosed}, {2, u, false, false, breakerClosed},
			{3, u, false, false, breakerClosed}, {4, a, false, false, breakerClosed},
			// the count restarted: four more failures keep it closed
			{5, u, false, false, breakerClosed}, {6, u, false, false, breakerClosed}, {7, u, false, false, breakerClosed},
			{8, u, false, false, breakerClosed},
		}},
		{"five failures open it; refused until the cooldown; probe success closes", []step{
			{0, u, false, false, breakerClosed}, {1, u, false, false, breakerClosed}, {2, u, false, false, breakerClosed},
			{3, u, false, false, breakerClosed}, {4, u, false, false, breakerOpen},
			{5, 0, true, false, breakerOpen}, {2003, 0, true, false, breakerOpen},
			{2004, a, false, true, breakerClosed},
			{2005, u, false, false, breakerClosed}, // count starts again from zero
		}},
		{"failed probes double the cooldown up to the cap", []step{
			{0, u, false, false, breakerClosed}, {0, u, false, false, breakerClosed}, {0, u, false, false, breakerClosed},
			{0, u, false, false, breakerClosed}, {0, u, false, false, breakerOpen}, // open until 2 s
			{2000, u, false, true, breakerOpen}, // probe fails: open 4 s, until 6 s
			{5999, 0, true, false, breakerOpen},
			{6000, u, false, true, breakerOpen},  // 8 s, until 14 s
			{14000, u, false, true, breakerOpen}, // 16 s, until 30 s
			{30000, u, false, true, breakerOpen}, // 32 → capped 30 s, until 60 s
			{59999, 0, true, false, breakerOpen},
			{60000, a, false, true, breakerClosed},
			// closed again: the next opening starts from the minimum cooldown
			{60001, u, false, false, breakerClosed}, {60001, u, false, false, breakerClosed}, {60001, u, false, false, breakerClosed},
			{60001, u, false, false, breakerClosed}, {60001, u, false, false, breakerOpen},
			{62000, 0, true, false, breakerOpen}, {62001, a, false, true, breakerClosed},
		}},
		{"a probe that ends without an outcome leaves it half-open for the next caller", []step{
			{0, u, false, false, breakerClosed}, {0, u, false, false, breakerClosed}, {0, u, false, false, breakerClosed},
			{0, u, false, false, breakerClosed}, {0, u, false, false, breakerOpen},
			{2000, x, false, true, breakerHalfOpen},
			{2001, a, false, true, breakerClosed},
		}},
		{"401s, denials and invalid bodies are answers, never failures", []step{
			{0, a, false, false, breakerClosed}, {0, a, false, false, breakerClosed}, {0, a, false, false, breakerClosed},
			{0, a, false, false, breakerClosed}, {0, a, false, false, breakerClosed}, {0, a, false, false, breakerClosed},
		}},
		{"cancelled attempts do not count", []step{
			{0, x, false, false, breakerClosed}, {0, x, false, false, breakerClosed}, {0, x, false, false, breakerClosed},
			{0, x, false, false, breakerClosed}, {0, x, false, false, breakerClosed}, {0, x, false, false, breakerClosed},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := newSignBreaker(0, 0, 0)
			for i, s := range tt.steps {
				probe, err := b.allow(at(s.at))
				if s.refused {
					if err == nil || !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "circuit open") {
						t.Fatalf("step %d: allow = %v, want a circuit-open refusal wrapping ErrUnreachable", i, err)
					}
				} else {
					if err != nil {
						t.Fatalf("step %d: refused: %v", i, err)
					}
					if probe != s.probe {
						t.Fatalf("step %d: probe = %v, want %v", i, probe, s.probe)
					}
					b.done(probe, s.outcome, at(s.at))
				}
				if st, _, _ := b.snapshot(); st != s.state {
					t.Fatalf("step %d: state %d, want %d", i, st, s.state)
				}
			}
		})
	}
}

// TestBreakerOneProbeAtATime: while the probe is out, every other attempt
// is refused; the refusal says a probe is in progress.
func TestBreakerOneProbeAtATime(t *testing.T) {
	t0 := time.Unix(1_900_000_000, 0)
	b := newSignBreaker(2, time.Second, 4*time.Second)
	for range 2 {
		p, err := b.allow(t0)
		if err != nil {
			t.Fatal(err)
		}
		b.done(p, outcomeUnreachable, t0)
	}
	if _, err := b.allow(t0.Add(999 * time.Millisecond)); err == nil || !strings.Contains(err.Error(), "after 2 consecutive failures, next probe in 0.0 s") {
		t.Fatalf("refusal %v", err)
	}
	probe, err := b.allow(t0.Add(time.Second))
	if err != nil || !probe {
		t.Fatalf("want the probe, got probe=%v err=%v", probe, err)
	}
	for i := range 10 {
		if _, err := b.allow(t0.Add(time.Second)); err == nil || !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "probe in progress") {
			t.Fatalf("attempt %d during the probe: %v", i, err)
		}
	}
	b.done(true, outcomeAnswered, t0.Add(time.Second))
	if _, err := b.allow(t0.Add(time.Second)); err != nil {
		t.Fatalf("closed breaker refused: %v", err)
	}
}

func TestBreakerDisabledAndOptions(t *testing.T) {
	var b *signBreaker = newSignBreaker(-1, 0, 0)
	if b != nil {
		t.Fatal("a negative threshold must disable the breaker")
	}
	now := time.Unix(0, 0)
	for range 20 {
		p, err := b.allow(now)
		if err != nil || p {
			t.Fatalf("disabled breaker: probe=%v err=%v", p, err)
		}
		b.done(p, outcomeUnreachable, now)
	}
	b = newSignBreaker(0, 3*time.Second, time.Second) // max below min is raised
	if b.threshold != 5 || b.minCooldown != 3*time.Second || b.maxCooldown != 3*time.Second {
		t.Fatalf("defaults: %+v", b)
	}
	for _, o := range []SignOptions{{APIKey: "k", BreakerCooldown: -1}, {APIKey: "k", BreakerMaxCooldown: -1}} {
		if o.Validate() == nil {
			t.Fatalf("%+v: negative cooldown accepted", o)
		}
	}
}

// TestSignBreakerC44 is docs/faults.md case 44 at client level with a manual
// clock: an outage (HTTP 503) opens the breaker after 5 requests, later calls
// fail with ErrUnreachable without reaching Sign, and the first call after
// the cooldown probes and, once Sign is back, is answered.
func TestSignBreakerC44(t *testing.T) {
	var down atomic.Bool
	down.Store(true)
	srv := signtest.New(t, signtest.Options{APIKey: signTestKey, Decide: func(signtest.Request) signtest.Reply {
		if down.Load() {
			return signtest.Reply{Status: 503}
		}
		return signtest.Approve()
	}})
	env := signTestNew(t, srv.URL, SignOptions{Verify: VerifyOff})
	clk := newBreakerTestClock()
	env.sign.clock = clk
	ctx := context.Background()

	for i := range 5 {
		d, err := env.sign.Authorize(ctx, signTestReq())
		if !errors.Is(err, ErrUnreachable) || strings.Contains(err.Error(), "circuit open") {
			t.Fatalf("call %d: %v, want a plain unreachable error", i, err)
		}
		signTestNoKey(t, d, err)
	}
	if n := len(srv.Requests()); n != 5 {
		t.Fatalf("%d authorize requests before the breaker opened, want 5", n)
	}
	var slowest time.Duration
	for i := range 50 {
		start := time.Now()
		d, err := env.sign.Authorize(ctx, signTestReq())
		slowest = max(slowest, time.Since(start))
		if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "circuit open after 5 consecutive failures, next probe in 2.0 s") {
			t.Fatalf("call %d with the breaker open: %v", i, err)
		}
		if d.Verdict == Approved {
			t.Fatal("an open breaker approved a call")
		}
	}
	if n := len(srv.Requests()); n != 5 || env.rt.posts.Load() != 5 {
		t.Fatalf("the open breaker let %d requests (%d posts) through, want 0", n-5, env.rt.posts.Load()-5)
	}
	t.Logf("C44/G4: 50 Authorize calls refused by the open breaker, slowest %v (goal ≤ 5 ms; not asserted)", slowest)

	// Still down at the first probe: one request, then open for 4 s.
	clk.Advance(2 * time.Second)
	if _, err := env.sign.Authorize(ctx, signTestReq()); !errors.Is(err, ErrUnreachable) || strings.Contains(err.Error(), "circuit open") {
		t.Fatalf("probe: %v, want the real unreachable error", err)
	}
	if n := len(srv.Requests()); n != 6 {
		t.Fatalf("%d requests after the probe, want 6", n)
	}
	clk.Advance(2 * time.Second)
	if _, err := env.sign.Authorize(ctx, signTestReq()); err == nil || !strings.Contains(err.Error(), "next probe in 2.0 s") {
		t.Fatalf("after a failed probe the cooldown must double: %v", err)
	}

	// Sign recovers: the next probe is answered and the breaker closes.
	down.Store(false)
	clk.Advance(2 * time.Second)
	for i := range 3 {
		d, err := env.sign.Authorize(ctx, signTestReq())
		if err != nil || d.Verdict != Approved {
			t.Fatalf("call %d after recovery: %+v %v", i, d, err)
		}
	}
	if n := len(srv.Requests()); n != 9 {
		t.Fatalf("%d requests, want 9", n)
	}
}

// TestSignBreakerIgnoresAnswers: 401, 429, 500 and invalid bodies are
// answers (never ErrUnreachable); a long run of them never opens the
// breaker, and every call still reaches Sign.
func TestSignBreakerIgnoresAnswers(t *testing.T) {
	replies := []signtest.Reply{
		{Status: 401}, {Status: 429}, {Status: 500}, {Body: []byte(`not json`)}, signtest.Deny("SIGIL_X", "no"),
	}
	var mu sync.Mutex
	n := 0
	srv := signtest.New(t, signtest.Options{APIKey: signTestKey, Decide: func(signtest.Request) signtest.Reply {
		mu.Lock()
		defer mu.Unlock()
		n++
		return replies[n%len(replies)]
	}})
	env := signTestNew(t, srv.URL, SignOptions{Verify: VerifyOff})
	env.sign.clock = newBreakerTestClock()
	for i := range 20 {
		d, err := env.sign.Authorize(context.Background(), signTestReq())
		if err != nil || d.Verdict == Approved {
			t.Fatalf("call %d: %+v %v", i, d, err)
		}
	}
	if got := len(srv.Requests()); got != 20 {
		t.Fatalf("%d requests reached Sign, want 20", got)
	}
}

// TestSignBreakerRefusedConnections: a refused connection (retried once,
// docs/protocol.md#retries) counts as one failure per call; the open breaker
// stops dialing.
func TestSignBreakerRefusedConnections(t *testing.T) {
	env := signTestNew(t, signtest.ClosedURL(t), SignOptions{Verify: VerifyOff, BreakerThreshold: 3})
	env.sign.clock = newBreakerTestClock()
	for range 3 {
		if _, err := env.sign.Authorize(context.Background(), signTestReq()); !errors.Is(err, ErrUnreachable) {
			t.Fatalf("want unreachable, got %v", err)
		}
	}
	posts := env.rt.posts.Load()
	if posts != 6 {
		t.Fatalf("%d dials for 3 calls, want 6 (one retry each)", posts)
	}
	for range 10 {
		if _, err := env.sign.Authorize(context.Background(), signTestReq()); err == nil || !strings.Contains(err.Error(), "circuit open after 3") {
			t.Fatalf("want a circuit-open refusal, got %v", err)
		}
	}
	if env.rt.posts.Load() != posts {
		t.Fatal("the open breaker dialed Sign")
	}
}

// breakerTestClock is a manual signClock: Now moves only on Advance, and a
// sleep (the retry pause after a refused connection) ends at once, moving
// time to its wake-up.
type breakerTestClock struct {
	mu  sync.Mutex
	now time.Time
}

func newBreakerTestClock() *breakerTestClock {
	return &breakerTestClock{now: time.Unix(1_900_000_000, 0)}
}

func (c *breakerTestClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *breakerTestClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func (c *breakerTestClock) SleepUntil(ctx context.Context, t time.Time) error {
	c.mu.Lock()
	if t.After(c.now) {
		c.now = t
	}
	c.mu.Unlock()
	return ctx.Err()
}
