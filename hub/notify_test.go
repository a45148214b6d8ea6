package hub

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/sigilcore/sigil-hub/front"
	"github.com/sigilcore/sigil-hub/router"
)

// captureSession is a front.Session that records what the hub sends to
// its client.
type captureSession struct {
	client *front.ClientContext
	mu     sync.Mutex
	msgs   []string
}

func (c *captureSession) ID() string                   { return "test" }
func (c *captureSession) Label() string                { return "" }
func (c *captureSession) Client() *front.ClientContext { return c.client }

func (c *captureSession) Send(_ json.RawMessage, msg []byte) {
	c.mu.Lock()
	c.msgs = append(c.msgs, string(msg))
	c.mu.Unlock()
}

func (c *captureSession) Request(context.Context, json.RawMessage, string, json.RawMessage) (json.RawMessage, error) {
	return nil, errors.New("captureSession answers no request")
}

func (c *captureSession) count(substr string) int {
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
	h := &Hub{}
	h.log = discardLogger()
	h.fleet.Store(&fleet{})
	table, _ := router.Build(router.Rules{Namespace: true}, []router.Source{
		{Upstream: "docs", Resources: []string{"test://doc"}},
		{Upstream: "other", Resources: []string{"test://else"}},
	})
	h.view.Store(&view{table: table})
	outs := []*captureSession{{}, {}}
	var sess []*session
	for _, o := range outs {
		h.Register(o)
		sess = append(sess, h.sessionOf(o))
	}
	sess[0].subs.Store("test://doc", struct{}{})
	h.upstreamNotification("docs", "notifications/resources/updated", json.RawMessage(`{"uri":"test://doc"}`))
	h.upstreamNotification("other", "notifications/resources/updated", json.RawMessage(`{"uri":"test://doc"}`)) // not its URI
	if outs[0].count("resources/updated") != 1 || outs[1].count("resources/updated") != 0 {
		t.Fatalf("subscribed session got %d, other session %d; want 1 and 0", outs[0].count("resources/updated"), outs[1].count("resources/updated"))
	}
}

// TestServerRequestCapabilities: a server request is relayed only when the
// client declared the capability it needs; URL-mode elicitation needs
// elicitation.url, not just elicitation.
func TestServerRequestCapabilities(t *testing.T) {
	tests := []struct {
		caps, method, params string
		want                 bool
	}{
		{`{"sampling":{}}`, "sampling/createMessage", `{}`, true},
		{`{}`, "sampling/createMessage", `{}`, false},
		{`{"roots":{"listChanged":true}}`, "roots/list", `{}`, true},
		{`{"elicitation":{}}`, "elicitation/create", `{"mode":"form"}`, true},
		{`{"elicitation":{"form":{}}}`, "elicitation/create", `{"mode":"url","url":"https://x"}`, false},
		{`{"elicitation":{"url":{}}}`, "elicitation/create", `{"mode":"url","url":"https://x"}`, true},
		{`{"sampling":{}}`, "elicitation/create", `{}`, false},
	}
	for _, tt := range tests {
		s := &session{fs: &captureSession{client: &front.ClientContext{Capabilities: json.RawMessage(tt.caps)}}}
		name, sub := capabilityFor(tt.method, json.RawMessage(tt.params))
		if got := name != "" && s.declared(name, sub); got != tt.want {
			t.Errorf("caps %s, %s %s: relayed=%v, want %v", tt.caps, tt.method, tt.params, got, tt.want)
		}
	}
	if name, _ := capabilityFor("tools/call", nil); name != "" {
		t.Error("an arbitrary method from an upstream must not be relayed")
	}
}
