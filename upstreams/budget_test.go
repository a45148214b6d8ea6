package upstreams

import (
	"bytes"
	"encoding/json"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigilcore/sigil-hub/internal/testbuf"
	"github.com/sigilcore/sigil-hub/internal/testupstream"
)

func TestBudgetTokenBucket(t *testing.T) {
	var b budget
	t0 := time.Unix(1000, 0)
	passed := 0
	for range 3 * notificationBurst {
		if b.take(t0) {
			passed++
		}
	}
	if passed != notificationBurst {
		t.Fatalf("a burst at one instant passed %d, want the burst size %d", passed, notificationBurst)
	}
	// Half a second refills half the rate; never above the burst.
	passed = 0
	for range notificationBurst {
		if b.take(t0.Add(500 * time.Millisecond)) {
			passed++
		}
	}
	if passed != notificationRate/2 {
		t.Fatalf("after 0.5 s %d passed, want %d", passed, notificationRate/2)
	}
	passed = 0
	for range 3 * notificationBurst {
		if b.take(t0.Add(time.Hour)) {
			passed++
		}
	}
	if passed != notificationBurst {
		t.Fatalf("after an idle hour %d passed, want the burst size %d", passed, notificationBurst)
	}
}

func TestBudgetDropReports(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	var b budget
	t0 := time.Unix(1000, 0)
	for i := range 5000 {
		b.drop(log, t0.Add(time.Duration(i)*time.Millisecond), "over budget") // 5 s of drops
	}
	if n := strings.Count(logs.String(), "\n"); n != 1 {
		t.Fatalf("5 s of drops logged %d lines, want 1 (one per %v):\n%s", n, dropReportEvery, logs.String())
	}
	b.flush(log)
	if !strings.Contains(logs.String(), "dropped=4999") {
		t.Fatalf("flush did not report the 4999 later drops:\n%s", logs.String())
	}
	b.flush(log)
	if n := strings.Count(logs.String(), "\n"); n != 2 {
		t.Fatalf("a flush with nothing dropped logged: %d lines", n)
	}
}

// TestNotificationFloodBudget: an upstream flooding notifications gets at
// most its budget through to OnNotification, the drops are logged (not one
// line each), and its responses still arrive.
func TestNotificationFloodBudget(t *testing.T) {
	var got atomic.Int64
	logs := &testbuf.Buffer{}
	spec := fakeSpec(t, testupstream.EnvMisbehave+"=1")
	spec.Logger = slog.New(slog.NewTextHandler(logs, nil))
	spec.OnNotification = func(method string, params json.RawMessage) { got.Add(1) }
	u := start(t, spec, nil)
	waitState(t, u, Ready)
	start := time.Now()
	res, err := callTool(t.Context(), u, "notify_flood", `{"n":50000,"kind":"mixed"}`)
	if err != nil {
		t.Fatal(err)
	}
	elapsed := time.Since(start)
	if txt := resultText(t, res); txt != "flooded 50000" {
		t.Fatalf("result %q", txt)
	}
	if _, err := callTool(t.Context(), u, "echo", `{}`); err != nil {
		t.Fatalf("a call after the flood: %v", err)
	}
	// Everything admitted was queued before the flood's answer; the
	// dispatcher hands it on shortly after. On a loaded machine the queue
	// (notificationQueue) may fill before the dispatcher runs, so fewer
	// than the burst may pass: wait until the count stops moving.
	limit := int64(notificationBurst + elapsed.Seconds()*notificationRate + 1)
	last := int64(-1)
	waitFor(t, "the admitted notifications", func() bool {
		n := got.Load()
		if n > 0 && n == last {
			return true
		}
		last = n
		time.Sleep(200 * time.Millisecond)
		return false
	})
	t.Logf("50,000 notifications in %v: %d passed on (budget: burst %d, %d/s)", elapsed.Round(time.Millisecond), got.Load(), notificationBurst, notificationRate)
	if n := got.Load(); n > limit {
		t.Fatalf("%d notifications passed on, over the budget of %d for %v", n, limit, elapsed)
	}
	out := logs.String()
	if !strings.Contains(out, "dropped=") || strings.Count(out, "dropped=") > 2 {
		t.Fatalf("the drops were not reported once:\n%s", out)
	}
}
