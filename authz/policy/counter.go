package policy

import (
	"slices"
	"sync"
	"time"
)

// Counter records tool calls for ## execution_limits. Add records one call
// for taskID at now and returns the number of calls recorded for that task
// (this one included) and the number recorded in the 60 minutes ending at
// now across all tasks (this one included). Implementations must be safe for
// concurrent use and must not block on I/O for long: Evaluate calls Add
// synchronously.
type Counter interface {
	Add(taskID string, now time.Time) (perTask, perHour int)
}

// MemoryCounter is an in-process Counter. The per-hour count is a sliding
// 60-minute window over every task (Sign counts it per API key; a hub
// process serves one key). Calls denied by a limit are still counted, so a
// looping agent stays stopped. Per-task counts live as long as the counter;
// the hub uses one task id per session, which keeps the map small.
//
// The zero value is ready to use. A MemoryCounter is safe for concurrent use
// and must not be copied after first use.
type MemoryCounter struct {
	mu      sync.Mutex
	perTask map[string]int // guarded by mu
	recent  []time.Time    // guarded by mu; call times, oldest first
}

// Add implements Counter.
func (m *MemoryCounter) Add(taskID string, now time.Time) (perTask, perHour int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.perTask == nil {
		m.perTask = make(map[string]int)
	}
	m.perTask[taskID]++
	cutoff := now.Add(-time.Hour)
	drop := 0
	for drop < len(m.recent) && !m.recent[drop].After(cutoff) {
		drop++
	}
	m.recent = slices.Delete(m.recent, 0, drop)
	m.recent = append(m.recent, now)
	return m.perTask[taskID], len(m.recent)
}
