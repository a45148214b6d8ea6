package hub

import (
	"encoding/json"
	"testing"

	"github.com/sigilcore/sigil-hub/front"
)

// TestUpstreamNotificationsKeepTheirBytes: progress and log notifications
// reach the client as the upstream wrote them, but for the one member the
// hub rewrites (the progress token, the logger); a notification that also
// holds that member written otherwise, which a case-insensitive client
// could read instead, is dropped.
func TestUpstreamNotificationsKeepTheirBytes(t *testing.T) {
	h := &Hub{}
	h.log = discardLogger()
	h.fleet.Store(&fleet{})
	out := &captureSession{}
	h.Register(out)
	s := h.sessionOf(out)
	s.uses.Store("docs", true)
	h.progress.Store("hub-tok", progressTarget{sess: s, token: json.RawMessage(`42`), upstream: "docs"})

	tests := []struct{ method, params, want string }{
		{"notifications/progress", `{ "progress":1.50, "progressToken" : "hub-tok","message":"<&> é","total":1e2}`,
			`{ "progress":1.50, "progressToken" : 42,"message":"<&> é","total":1e2}`},
		{"notifications/progress", `{"progressToken":"hub-tok","ProgressToken":"other"}`, ""},
		{"notifications/progress", `{"progressToken":"hub-tok","progress\u0054oken":"other"}`, ""},
		{"notifications/progress", `{"progressToken":"not-ours"}`, ""},
		{"notifications/message", `{"level":"info","data":{"n":1.50,"s":"<&>"},"logger":"db"}`,
			`{"level":"info","data":{"n":1.50,"s":"<&>"},"logger":"docs/db"}`},
		{"notifications/message", `{"level":"info", "data":[1.0]}`, `{"logger":"docs","level":"info", "data":[1.0]}`},
		{"notifications/message", `{"level":"info","data":1,"Logger":"x"}`, ""},
		{"notifications/message", `[1]`, ""},
	}
	for _, tt := range tests {
		out.mu.Lock()
		out.msgs = nil
		out.mu.Unlock()
		h.upstreamNotification("docs", tt.method, json.RawMessage(tt.params))
		want := []string{}
		if tt.want != "" {
			want = []string{string(front.EncodeNotification(tt.method, json.RawMessage(tt.want)))}
		}
		out.mu.Lock()
		got := append([]string{}, out.msgs...)
		out.mu.Unlock()
		if len(got) != len(want) || len(got) == 1 && got[0] != want[0] {
			t.Errorf("%s %s:\n got  %q\n want %q", tt.method, tt.params, got, want)
		}
	}
}

func TestSetMember(t *testing.T) {
	tests := []struct{ obj, want string }{
		{`{}`, `{"k":1}`},
		{` { } `, ` {"k":1 } `},
		{`{"a":2}`, `{"k":1,"a":2}`},
		{`{"a":2, "k" :"x" }`, `{"a":2, "k" :1 }`},
		{`{"K":2}`, ""},
		{`{"k":2,"k":3}`, ""},
		{`[]`, ""},
	}
	for _, tt := range tests {
		got, ok := setMember([]byte(tt.obj), "k", []byte("1"))
		if tt.want == "" {
			if ok {
				t.Errorf("setMember(%s) = %s, want a refusal", tt.obj, got)
			}
			continue
		}
		if !ok || string(got) != tt.want {
			t.Errorf("setMember(%s) = %s, %v; want %s", tt.obj, got, ok, tt.want)
		}
	}
}

// TestElicitationModeReadAsClientsRead: an elicitation whose params also
// hold "mode" in another case is not relayed (the hub would check one mode,
// a client could show the other).
func TestElicitationModeReadAsClientsRead(t *testing.T) {
	for _, params := range []string{`{"mode":"url","MODE":"form"}`, `{"Mode":"url","mode":"form"}`, `[1]`} {
		if name, sub := capabilityFor("elicitation/create", json.RawMessage(params)); name != "" {
			t.Errorf("%s: relayed as %s.%s", params, name, sub)
		}
	}
	if name, sub := capabilityFor("elicitation/create", json.RawMessage(`{"message":"m", "mode" :"url"}`)); name != "elicitation" || sub != "url" {
		t.Errorf("url mode read as %s.%s", name, sub)
	}
}
