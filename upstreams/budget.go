package upstreams

import (
	"log/slog"
	"sync"
	"time"
)

// Notification budget (docs/faults.md case 54): an upstream may send at most
// notificationRate notifications per second on average, in bursts of up to
// notificationBurst; list_changed is coalesced instead and never counted.
// Beyond the budget notifications are dropped before anything decodes or
// queues them, so a flooding upstream costs the hub little more than
// reading its lines, and its responses are never queued behind them.
const (
	notificationRate  = 1000
	notificationBurst = 2000
	// dropReportEvery bounds how often one session logs what it dropped.
	dropReportEvery = 10 * time.Second
)

// budget is a token bucket with a drop counter. It is safe for concurrent
// use (remote transports deliver notifications from several streams).
type budget struct {
	mu       sync.Mutex
	tokens   float64
	last     time.Time
	dropped  map[string]int // since the last report, by reason
	reported time.Time      // when the last report was logged
}

// take reports whether one more notification fits the budget at now.
func (b *budget) take(now time.Time) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.last.IsZero() {
		b.tokens = notificationBurst
	} else {
		b.tokens = min(notificationBurst, b.tokens+now.Sub(b.last).Seconds()*notificationRate)
	}
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// drop counts one dropped notification and logs the count so far at most
// once per dropReportEvery: a flood costs one log line per period, not one
// per notification.
func (b *budget) drop(log *slog.Logger, now time.Time, reason string) {
	b.mu.Lock()
	if b.dropped == nil {
		b.dropped = map[string]int{}
	}
	b.dropped[reason]++
	due := b.reported.IsZero() || now.Sub(b.reported) >= dropReportEvery
	if due {
		b.reported = now
	}
	b.mu.Unlock()
	if due {
		b.flush(log)
	}
}

// flush logs what was dropped since the last report (at session end).
func (b *budget) flush(log *slog.Logger) {
	b.mu.Lock()
	counts := b.dropped
	b.dropped = nil
	b.mu.Unlock()
	for reason, n := range counts {
		msg := "upstream sends notifications faster than the hub passes them on; dropped (it keeps running; tell its maintainer if this persists)"
		if reason == "queue full" {
			msg = "notification queue full: the client reads too slowly; notifications dropped"
		}
		log.Warn(msg, "dropped", n, "reason", reason, "budget_per_s", notificationRate)
	}
}
