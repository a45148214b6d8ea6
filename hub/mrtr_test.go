package hub

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigilcore/sigil-hub/front"
)

// TestRequestStateIsSealedBoundAndSingleUse: the requestState the hub hands
// a client opens only unaltered, before its expiry, once, for the request
// it was issued for (upstream, method, name, arguments, caller).
func TestRequestStateIsSealedBoundAndSingleUse(t *testing.T) {
	var ss stateSeal
	now := time.Now()
	up := "upstream-state"
	bind := callState{Upstream: "files", Method: "tools/call", Name: "files__write", Args: "digest", Principal: "stdio\x00"}
	issue := func() string {
		st := bind
		st.Keys, st.UpState, st.Hold = []string{"confirm"}, &up, "hold-1"
		st.Expires = now.Add(time.Minute).UnixMilli()
		s, err := ss.seal(st)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := issue()
	if strings.Contains(s, "upstream-state") || strings.Contains(s, "hold-1") {
		t.Fatalf("the state shows its contents in the clear: %s", s)
	}
	st, err := ss.open(s, bind, now)
	if err != nil || st.UpState == nil || *st.UpState != up || st.Hold != "hold-1" || len(st.Keys) != 1 {
		t.Fatalf("open: %+v %v", st, err)
	}
	if _, err := ss.open(s, bind, now); err == nil || !strings.Contains(err.Error(), "used already") {
		t.Errorf("replayed: %v", err)
	}
	other := func(f func(*callState)) callState { b := bind; f(&b); return b }
	for name, tc := range map[string]struct {
		state string
		want  callState
		at    time.Time
	}{
		"altered":         {issue() + "A", bind, now},
		"foreign":         {"sigil-hub.1.AAAA", bind, now},
		"not ours":        {"upstream-state", bind, now},
		"expired":         {issue(), bind, now.Add(2 * time.Minute)},
		"other upstream":  {issue(), other(func(c *callState) { c.Upstream = "mail" }), now},
		"other tool":      {issue(), other(func(c *callState) { c.Name = "files__rm" }), now},
		"other method":    {issue(), other(func(c *callState) { c.Method = "prompts/get" }), now},
		"other arguments": {issue(), other(func(c *callState) { c.Args = "another" }), now},
		"other client":    {issue(), other(func(c *callState) { c.Principal = "http\x00bob" }), now},
	} {
		if _, err := ss.open(tc.state, tc.want, tc.at); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// TestParkedCallsAreBounded: a client that never retries cannot hold
// upstream requests open without limit: beyond maxParked the call ends
// (its upstream request is cancelled) and the client is told why; taking
// or expiring a parked call frees its place.
func TestParkedCallsAreBounded(t *testing.T) {
	var h Hub
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	newParked := func() (*parked, *atomic.Bool) {
		cancelled := new(atomic.Bool)
		p := &parked{ended: make(chan struct{}), cancel: func() { cancelled.Store(true) }, pending: &ask{method: "elicitation/create"}}
		return p, cancelled
	}
	ids := make([]string, 0, maxParked)
	for range maxParked {
		p, _ := newParked()
		res, id, err := h.park(p, ctx)
		if err != nil || id == "" || !strings.Contains(string(res), `"input_required"`) {
			t.Fatalf("park %d: %s %q %v", len(ids), res, id, err)
		}
		ids = append(ids, id)
	}
	p, cancelled := newParked()
	if _, id, err := h.park(p, ctx); err == nil || id != "" || !cancelled.Load() {
		t.Fatalf("park beyond the limit: %q %v (upstream request cancelled: %v)", id, err, cancelled.Load())
	}
	if h.unpark(ids[0]) == nil {
		t.Fatal("unpark of a parked call")
	}
	p, _ = newParked()
	if _, _, err := h.park(p, ctx); err != nil {
		t.Fatalf("a place freed by a retry is not reused: %v", err)
	}
	short, stop := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer stop()
	h.unpark(ids[1])
	p, cancelled = newParked()
	if _, _, err := h.park(p, short); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !cancelled.Load() && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if !cancelled.Load() || h.parkedCalls.n.Load() != maxParked-1 {
		t.Fatalf("an expired parked call: cancelled %v, %d parked", cancelled.Load(), h.parkedCalls.n.Load())
	}
}

// TestModernErrorTellsTheHubsKeyFailureFromAnUpstreamsNotFound: -32002
// meant two things before 2026-07-28. Only the hub's own key failure
// becomes -31002; an upstream's -32002, whatever the method, is its 2025
// "resource not found" and becomes -32602 (with the URI when there is one).
func TestModernErrorTellsTheHubsKeyFailureFromAnUpstreamsNotFound(t *testing.T) {
	key := &front.Error{Code: front.CodeAuthFailure, Message: "key", Data: blockData{ErrorCode: "SIGIL_AUTH_FAILURE"}}
	upstream := &front.Error{Code: front.CodeAuthFailure, Message: "not found", Data: json.RawMessage(`{"x":1}`)}
	for _, tc := range []struct {
		method, params string
		err            *front.Error
		code           int
		uri            bool
	}{
		{"tools/call", `{"name":"t"}`, key, front.CodeAuthFailureModern, false},
		{"tools/call", `{"name":"t"}`, upstream, front.CodeInvalidParams, false},
		{"prompts/get", `{"name":"p"}`, upstream, front.CodeInvalidParams, false},
		{"resources/read", `{"uri":"file:///a"}`, upstream, front.CodeInvalidParams, true},
	} {
		var fe *front.Error
		err := modernError(&front.Request{Method: tc.method, Params: json.RawMessage(tc.params)}, tc.err)
		if !errors.As(err, &fe) || fe.Code != tc.code {
			t.Errorf("%s, %s: %v, want code %d", tc.method, tc.err.Message, err, tc.code)
			continue
		}
		if _, hasURI := fe.Data.(map[string]any); hasURI != tc.uri {
			t.Errorf("%s: data %v, want the uri: %v", tc.method, fe.Data, tc.uri)
		}
	}
	if err := modernError(&front.Request{Method: "tools/call"}, front.Errorf(front.CodeBlocked, "denied")); err.(*front.Error).Code != front.CodeBlocked {
		t.Errorf("-32001 changed: %v", err)
	}
}
