package hub

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"

	"github.com/sigilcore/sigil-hub/router"
)

// captureOutbox records what a session would send to its client.
type captureOutbox struct {
	mu   sync.Mutex
	msgs []string
}

func (c *captureOutbox) deliver(_ json.RawMessage, msg []byte, _ bool) {
	if msg == nil {
		return
	}
	c.mu.Lock()
	c.msgs = append(c.msgs, string(msg))
	c.mu.Unlock()
}

func (c *captureOutbox) count(substr string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, m := range c.msgs {
		if strings.Contains(m, substr) {
			n++
		}
	}
	return n
}

// TestResourceUpdatesReachSubscribersOnly: notifications/resources/updated
// goes to the sessions subscribed to that URI, and only when it comes from
// the upstream that owns the URI.
func TestResourceUpdatesReachSubscribersOnly(t *testing.T) {
	h := &Hub{sessions: map[*session]struct{}{}, calls: map[string]map[callRef]struct{}{}}
	h.log = discardLogger()
	table, _ := router.Build(router.Rules{Namespace: true}, []router.Source{
		{Upstream: "docs", Resources: []string{"test://doc"}},
		{Upstream: "other", Resources: []string{"test://else"}},
	})
	h.view.Store(&view{table: table})
	outs := []*captureOutbox{{}, {}}
	var sess []*session
	for _, o := range outs {
		s := h.newSession(o)
		s.initialized.Store(true)
		s.register()
		sess = append(sess, s)
	}
	sess[0].subs["test://doc"] = struct{}{}
	h.upstreamNotification("docs", "notifications/resources/updated", json.RawMessage(`{"uri":"test://doc"}`))
	h.upstreamNotification("other", "notifications/resources/updated", json.RawMessage(`{"uri":"test://doc"}`)) // not its URI
	if outs[0].count("resources/updated") != 1 || outs[1].count("resources/updated") != 0 {
		t.Fatalf("subscribed session got %d, other session %d; want 1 and 0", outs[0].count("resources/updated"), outs[1].count("resources/updated"))
	}
}
