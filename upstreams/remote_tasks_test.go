package upstreams

import (
	"encoding/json"
	"testing"
)

// TestModernHeadersNameTheTask: tasks/get, tasks/update and tasks/cancel to
// a 2026-07-28 HTTP upstream carry the task's id in Mcp-Name, as the tasks
// extension asks, so that an intermediary routes them to the instance that
// holds the task.
func TestModernHeadersNameTheTask(t *testing.T) {
	c := &remoteConn{}
	for _, m := range []string{"tasks/get", "tasks/update", "tasks/cancel"} {
		h := c.modernHeaders(m, json.RawMessage(`{"taskId":"task-7","inputResponses":{}}`))
		if h.Get("Mcp-Name") != "task-7" || h.Get("Mcp-Method") != m {
			t.Errorf("%s: headers %v, want Mcp-Name task-7", m, h)
		}
	}
}
