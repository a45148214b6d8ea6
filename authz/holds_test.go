package authz

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigilcore/sigil-hub/internal/signtest"
)

// holdTestClock is a manual signClock: time moves only when the test calls
// AdvanceToNext, so hold tests never depend on wall time.
type holdTestClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []holdTestWaiter
}

type holdTestWaiter struct {
	at time.Time
	ch chan struct{}
}

func newHoldTestClock() *holdTestClock {
	return &holdTestClock{now: time.Unix(1_900_000_000, 0)}
}

func (c *holdTestClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *holdTestClock) SleepUntil(ctx context.Context, t time.Time) error {
	c.mu.Lock()
	if !t.After(c.now) {
		c.mu.Unlock()
		return ctx.Err()
	}
	w := holdTestWaiter{at: t, ch: make(chan struct{})}
	c.waiters = append(c.waiters, w)
	c.mu.Unlock()
	select {
	case <-w.ch:
		return nil
	case <-ctx.Done():
		c.mu.Lock()
		c.waiters = slices.DeleteFunc(c.waiters, func(x holdTestWaiter) bool { return x.ch == w.ch })
		c.mu.Unlock()
		return ctx.Err()
	}
}

func (c *holdTestClock) Waiters() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.waiters)
}

// AdvanceToNext moves time to the earliest waiter and wakes every waiter due.
func (c *holdTestClock) AdvanceToNext() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.waiters) == 0 {
		return
	}
	next := c.waiters[0].at
	for _, w := range c.waiters {
		if w.at.Before(next) {
			next = w.at
		}
	}
	c.now = next
	c.waiters = slices.DeleteFunc(c.waiters, func(w holdTestWaiter) bool {
		if !w.at.After(next) {
			close(w.ch)
			return true
		}
		return false
	})
}

// holdTestRun runs n concurrent Authorize calls and drives the manual clock:
// whenever every live call sleeps on it, time jumps to the next wake-up.
// Real time only bounds the test (a hang fails it, nothing else).
func holdTestRun(t *testing.T, s *Sign, clk *holdTestClock, n int, mkReq func(i int) Request) ([]Decision, []error) {
	t.Helper()
	ds, errs := make([]Decision, n), make([]error, n)
	var live atomic.Int32
	live.Store(int32(n))
	for i := range n {
		go func() {
			defer live.Add(-1)
			ds[i], errs[i] = s.Authorize(context.Background(), mkReq(i))
		}()
	}
	limit := time.Now().Add(60 * time.Second)
	for {
		l := int(live.Load())
		if l == 0 {
			return ds, errs
		}
		if clk.Waiters() == l {
			clk.AdvanceToNext()
			continue
		}
		if time.Now().After(limit) {
			t.Fatalf("calls did not settle: %d live, %d sleeping", l, clk.Waiters())
		}
		time.Sleep(200 * time.Microsecond) // polling, bounded by limit
	}
}

func holdTestSign(t *testing.T, url string, o SignOptions) (*signTestEnv, *holdTestClock) {
	env := signTestNew(t, url, o)
	clk := newHoldTestClock()
	env.sign.clock = clk
	return env, clk
}

func TestHoldLimiterReserve(t *testing.T) {
	t0 := time.Unix(0, 0)
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	l := &holdLimiter{interval: 2 * time.Second}
	steps := []struct {
		earliest, deadline int
		want               int
		ok                 bool
	}{
		{2, 30, 2, true},
		{2, 30, 4, true}, // next free slot
		{10, 30, 10, true},
		{3, 11, 0, false}, // slot 12 is past the deadline: nothing reserved
		{3, 12, 12, true},
		{40, 30, 0, false},
	}
	for i, s := range steps {
		got, ok := l.reserve(at(s.earliest), at(s.deadline))
		if ok != s.ok || (ok && !got.Equal(at(s.want))) {
			t.Fatalf("step %d: reserve = %v, %v; want %ds, %v", i, got.Sub(t0), ok, s.want, s.ok)
		}
	}
}

func TestHoldApprovedResubmits(t *testing.T) {
	var srv *signtest.Server
	srv = signtest.New(t, signtest.Options{APIKey: signTestKey, Decide: func(r signtest.Request) signtest.Reply {
		if len(srv.Requests()) == 1 {
			return signtest.Pending("hold-1")
		}
		return signtest.Approve()
	}})
	env, clk := holdTestSign(t, srv.URL, SignOptions{Verify: VerifyOff})
	srv.SetHold("hold-1", "PENDING")
	var mu sync.Mutex
	var waited []time.Duration
	mkReq := func(int) Request {
		r := signTestReq()
		r.OnHold = func(id string, w time.Duration) {
			mu.Lock()
			defer mu.Unlock()
			if id != "hold-1" {
				t.Errorf("OnHold id = %q", id)
			}
			waited = append(waited, w)
			if len(waited) == 2 { // after the first poll: approve
				srv.SetHold("hold-1", "APPROVED")
			}
		}
		return r
	}
	ds, errs := holdTestRun(t, env.sign, clk, 1, mkReq)
	d, err := ds[0], errs[0]
	if err != nil || d.Verdict != Approved || d.HoldID != "hold-1" {
		t.Fatalf("Authorize = %+v, %v; want approval with HoldID", d, err)
	}
	reqs := srv.Requests()
	if len(reqs) != 2 {
		t.Fatalf("authorize requests = %d, want 2 (original + re-submission)", len(reqs))
	}
	intent := func(b []byte) string {
		var m struct {
			Intent json.RawMessage `json:"intent"`
		}
		if err := json.Unmarshal(b, &m); err != nil {
			t.Fatal(err)
		}
		return string(m.Intent)
	}
	if intent(reqs[0].Body) != intent(reqs[1].Body) || reqs[0].TxCommit != reqs[1].TxCommit || d.TxCommit != reqs[0].TxCommit {
		t.Errorf("re-submission changed the intent or txCommit")
	}
	if reqs[0].Nonce == reqs[1].Nonce || reqs[1].Nonce == "" {
		t.Errorf("re-submission reused nonce %q", reqs[0].Nonce)
	}
	if got := srv.HoldLookups(); len(got) != 2 {
		t.Errorf("hold lookups = %v, want 2", got)
	}
	mu.Lock()
	defer mu.Unlock()
	want := []time.Duration{0, 2 * time.Second, 4 * time.Second}
	if !slices.Equal(waited, want) {
		t.Errorf("OnHold waited = %v, want %v", waited, want)
	}
}

func TestHoldOutcomes(t *testing.T) {
	tests := []struct {
		name     string
		first    signtest.Reply
		hold     string // state set before the call ("" = leave as registered)
		resubmit signtest.Reply
		timeout  time.Duration
		verdict  Verdict
		code     string
		msg      string
		lookups  int
	}{
		{name: "denied", first: signtest.Pending("h"), hold: "DENIED", code: "SIGIL_HOLD_DENIED", lookups: 1},
		{name: "expired", first: signtest.Pending("h"), hold: "EXPIRED", code: "SIGIL_HOLD_EXPIRED", lookups: 1},
		{name: "unknown hold 404", first: signtest.Reply{Status: 202, Body: []byte(`{"status":"PENDING","hold_id":"h"}`)}, code: "SIGIL_HOLD_EXPIRED", lookups: 1},
		{name: "holdId alias on 200", first: signtest.Reply{Status: 200, Body: []byte(`{"status":"PENDING","holdId":"h"}`)}, code: "SIGIL_HOLD_EXPIRED", lookups: 1},
		{name: "unknown hold state", first: signtest.Pending("h"), hold: "MAYBE", code: "SIGIL_RESPONSE_INVALID", lookups: 1},
		{name: "timeout", first: signtest.Pending("h"), code: "SIGIL_PENDING_TIMEOUT", msg: "waited 30 s", lookups: 15},
		{name: "timeout 5s", first: signtest.Pending("h"), timeout: 5 * time.Second, code: "SIGIL_PENDING_TIMEOUT", msg: "waited 5 s", lookups: 2},
		{name: "approved then denied", first: signtest.Pending("h"), hold: "APPROVED", resubmit: signtest.Deny("SIGIL_POLICY_VIOLATION", "no"), code: "SIGIL_POLICY_VIOLATION", lookups: 1},
		{name: "approved then pending again", first: signtest.Pending("h"), hold: "APPROVED", resubmit: signtest.Pending("h2"), code: "SIGIL_RESPONSE_INVALID", lookups: 1},
		{name: "approved then approved", first: signtest.Pending("h"), hold: "APPROVED", resubmit: signtest.Approve(), verdict: Approved, lookups: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var srv *signtest.Server
			srv = signtest.New(t, signtest.Options{APIKey: signTestKey, Decide: func(signtest.Request) signtest.Reply {
				if len(srv.Requests()) == 1 {
					return tt.first
				}
				return tt.resubmit
			}})
			if tt.hold != "" {
				srv.SetHold("h", tt.hold)
			}
			env, clk := holdTestSign(t, srv.URL, SignOptions{PendingTimeout: tt.timeout, Verify: VerifyOff})
			ds, errs := holdTestRun(t, env.sign, clk, 1, func(int) Request { return signTestReq() })
			d, err := ds[0], errs[0]
			signTestNoKey(t, d, err)
			if err != nil || d.Verdict != tt.verdict || d.ErrorCode != tt.code || d.HoldID != "h" {
				t.Fatalf("Authorize = %+v, %v; want %v %q with HoldID h", d, err, tt.verdict, tt.code)
			}
			if !strings.Contains(d.Message, tt.msg) {
				t.Errorf("message %q does not contain %q", d.Message, tt.msg)
			}
			if got := len(srv.HoldLookups()); got != tt.lookups {
				t.Errorf("hold lookups = %d, want %d", got, tt.lookups)
			}
		})
	}
}

func TestHoldLookupWithoutResponseTriesAgain(t *testing.T) {
	var srv *signtest.Server
	srv = signtest.New(t, signtest.Options{Decide: func(signtest.Request) signtest.Reply {
		if len(srv.Requests()) == 1 {
			return signtest.Pending("h")
		}
		return signtest.Approve()
	}})
	srv.SetHold("h", "APPROVED")
	env, clk := holdTestSign(t, srv.URL, SignOptions{Verify: VerifyOff})
	env.rt.failHoldFirst.Store(true)
	ds, errs := holdTestRun(t, env.sign, clk, 1, func(int) Request { return signTestReq() })
	if errs[0] != nil || ds[0].Verdict != Approved {
		t.Fatalf("Authorize = %+v, %v; want approval after a failed lookup", ds[0], errs[0])
	}
	if gets := env.rt.gets.Load(); gets != 2 {
		t.Errorf("hold lookup round trips = %d, want 2", gets)
	}
}

func TestHoldCancelStopsWaiting(t *testing.T) {
	srv := signtest.New(t, signtest.Options{Decide: func(signtest.Request) signtest.Reply { return signtest.Pending("h") }})
	env, _ := holdTestSign(t, srv.URL, SignOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req := signTestReq()
	req.OnHold = func(string, time.Duration) { cancel() }
	d, err := env.sign.Authorize(ctx, req)
	if !errors.Is(err, context.Canceled) || errors.Is(err, ErrUnreachable) || d.Verdict == Approved {
		t.Fatalf("Authorize = %+v, %v; want context.Canceled", d, err)
	}
	if n := len(srv.Requests()); n != 1 {
		t.Errorf("authorize requests = %d, want 1", n)
	}
}

// TestHoldLimiterSharedAcrossHolds runs many concurrent held calls and
// checks, on the manual clock, that all hold lookups of one client together
// stay within 30 a minute, the first 2 s after the hold.
func TestHoldLimiterSharedAcrossHolds(t *testing.T) {
	const n = 12
	var mu sync.Mutex
	var at []time.Time
	var clk *holdTestClock
	srv := signtest.New(t, signtest.Options{
		Decide: func(r signtest.Request) signtest.Reply { return signtest.Pending("h-" + r.Nonce) },
		OnHoldLookup: func(string) {
			mu.Lock()
			defer mu.Unlock()
			at = append(at, clk.Now())
		},
	})
	env, c := holdTestSign(t, srv.URL, SignOptions{PendingTimeout: 90 * time.Second})
	clk = c
	start := clk.Now()
	ds, errs := holdTestRun(t, env.sign, clk, n, func(int) Request { return signTestReq() })
	for i := range n {
		if errs[i] != nil || ds[i].ErrorCode != "SIGIL_PENDING_TIMEOUT" {
			t.Errorf("call %d = %+v, %v; want SIGIL_PENDING_TIMEOUT", i, ds[i], errs[i])
		}
	}
	mu.Lock()
	defer mu.Unlock()
	sort.Slice(at, func(i, j int) bool { return at[i].Before(at[j]) })
	if len(at) == 0 || at[0].Before(start.Add(2*time.Second)) {
		t.Fatalf("lookups at %v: first must be >= 2 s after the hold", at)
	}
	for i := 1; i < len(at); i++ {
		if at[i].Sub(at[i-1]) < 2*time.Second {
			t.Errorf("lookups %d and %d only %v apart", i-1, i, at[i].Sub(at[i-1]))
		}
	}
	for i := range at {
		inWindow := 0
		for _, x := range at[i:] {
			if x.Sub(at[i]) < time.Minute {
				inWindow++
			}
		}
		if inWindow > 30 {
			t.Errorf("%d lookups in the minute from %v", inWindow, at[i].Sub(start))
		}
	}
	// 2 s .. 90 s at one slot per 2 s: exactly 45 lookups for 12 holds.
	if len(at) != 45 {
		t.Errorf("lookups = %d, want 45", len(at))
	}
}
