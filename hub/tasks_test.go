package hub

import (
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestTaskTableKeepsATaskForItsCreatorUntilItsTTL: a task is found only by
// the principal that created it, and not after its ttlMs (counted from its
// creation, as a later tasks/get may change it); a null ttlMs is bounded
// by maxTaskLife.
func TestTaskTableKeepsATaskForItsCreatorUntilItsTTL(t *testing.T) {
	var tt taskTable
	now := time.Now()
	id, ok := tt.add(&task{upstream: "jobs", upID: "task-1", principal: "alice", created: now, expires: taskExpiry(json.RawMessage(`1000`), now)}, now)
	if !ok || !strings.HasPrefix(id, "sigil-task-") {
		t.Fatalf("add: %q %v", id, ok)
	}
	if got, ok := tt.get(id, "alice", now); !ok || got.upID != "task-1" || got.upstream != "jobs" {
		t.Errorf("the creator: %+v %v", got, ok)
	}
	if _, ok := tt.get(id, "bob", now); ok {
		t.Errorf("another principal found the task")
	}
	if _, ok := tt.get(id, "alice", now.Add(1500*time.Millisecond)); ok {
		t.Errorf("found after its ttlMs")
	}
	id, _ = tt.add(&task{principal: "alice", created: now, expires: taskExpiry(json.RawMessage(`1000`), now)}, now)
	tt.set(id, []string{"name"}, json.RawMessage(`null`))
	if got, ok := tt.get(id, "alice", now.Add(time.Hour)); !ok || len(got.keys) != 1 {
		t.Errorf("a ttlMs changed to null: %+v %v", got, ok)
	}
	if _, ok := tt.get(id, "alice", now.Add(maxTaskLife+time.Second)); ok {
		t.Errorf("found after maxTaskLife")
	}
}
