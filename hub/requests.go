package hub

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/sigilcore/sigil-hub/front"
	"github.com/sigilcore/sigil-hub/upstreams"
)

// Server→client requests (sampling, elicitation, roots) from an upstream are
// forwarded to the client whose call caused them, and only when that client
// declared the capability (an upstream must not reach a user or model the
// client did not offer).

// upstreamCapabilities is what the hub declares to every upstream: it can
// relay these requests, and answers them with an error when no client can.
var upstreamCapabilities = json.RawMessage(`{"roots":{"listChanged":true},"sampling":{},"elicitation":{"form":{},"url":{}}}`)

// callSet holds client calls by upstream name. The zero value is ready.
type callSet struct {
	mu  sync.Mutex
	all map[string]map[callRef]struct{}
}

// add records a call on upstream; the returned func forgets it.
func (cs *callSet) add(upstream string, s *session, rel json.RawMessage) func() {
	ref := callRef{sess: s, rel: string(rel)}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	if cs.all[upstream] == nil {
		if cs.all == nil {
			cs.all = make(map[string]map[callRef]struct{})
		}
		cs.all[upstream] = make(map[callRef]struct{})
	}
	cs.all[upstream][ref] = struct{}{}
	return func() {
		cs.mu.Lock()
		defer cs.mu.Unlock()
		delete(cs.all[upstream], ref)
	}
}

// of returns the calls on upstream.
func (cs *callSet) of(upstream string) []callRef {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	return slices.Collect(maps.Keys(cs.all[upstream]))
}

// callerOf finds the client whose call on upstream caused a request from
// it: the session with calls in flight there when it is the only one (and
// the call, when it is the only one). inCall is false when no call is in
// flight on upstream; s is nil when calls of several sessions are, and the
// client cannot be told apart: the request is refused rather than shown to
// the wrong person.
func (h *Hub) callerOf(upstream string) (s *session, rel json.RawMessage, inCall bool) {
	calls := h.calls.of(upstream)
	for _, ref := range calls {
		if s != nil && ref.sess != s {
			return nil, nil, true
		}
		s = ref.sess
		rel = json.RawMessage(ref.rel)
	}
	if len(calls) > 1 {
		rel = nil
	}
	return s, rel, s != nil
}

// rootsAttempt bounds one session's answer to a roots/list asked outside
// any call: clients answer it without a person, so a session silent this
// long (a client gone without ending its HTTP session, or one whose event
// stream is not open yet) is passed over for the next, and asked again
// later while the wait lasts.
const rootsAttempt = 2 * time.Second

// wakeSessionWaiters wakes the server→client requests waiting for a
// session (a session became ready).
func (h *Hub) wakeSessionWaiters() {
	h.sessionWakeMu.Lock()
	if h.sessionWake != nil {
		close(h.sessionWake)
		h.sessionWake = nil
	}
	h.sessionWakeMu.Unlock()
}

// sessionWaiter returns a channel closed when a session next becomes ready.
func (h *Hub) sessionWaiter() <-chan struct{} {
	h.sessionWakeMu.Lock()
	defer h.sessionWakeMu.Unlock()
	if h.sessionWake == nil {
		h.sessionWake = make(chan struct{})
	}
	return h.sessionWake
}

// readySessions returns the live sessions the hub may ask, those that
// sent upstream requests first, then the most recently active first.
func (h *Hub) readySessions(upstream string) []*session {
	out := slices.DeleteFunc(h.liveSessions(), func(s *session) bool { return !s.ready.Load() })
	sort.SliceStable(out, func(i, j int) bool {
		ui, uj := out[i].usesUpstream(upstream), out[j].usesUpstream(upstream)
		if ui != uj {
			return ui
		}
		return out[i].active.Load() > out[j].active.Load()
	})
	return out
}

// requestOutsideCall relays a server→client request that no client call
// caused (a server asks roots/list after notifications/initialized, or
// after roots/list_changed). With no client connected yet it waits for one,
// bounded by startup_timeout, instead of failing. roots/list goes to the
// sessions that declared roots in turn, rootsAttempt each, until one
// answers: a session whose client went away never blocks the others.
// Sampling and elicitation reach a person or a model, so they go only to
// the one session there is; with several they are refused.
func (h *Hub) requestOutsideCall(ctx context.Context, name, method string, params json.RawMessage, capName, sub string) (json.RawMessage, error) {
	wait := startupTimeout(h.fleet.Load().cfg)
	wctx, cancel := context.WithTimeout(ctx, wait)
	defer cancel()
	for {
		wake := h.sessionWaiter()
		ready := h.readySessions(name)
		able := slices.DeleteFunc(slices.Clone(ready), func(s *session) bool { return !s.declared(capName, sub) })
		switch {
		case len(ready) == 0:
			select { // no client yet: wait for one
			case <-wake:
				continue
			case <-wctx.Done():
			}
		case len(able) == 0:
			return nil, &upstreams.RPCError{Code: front.CodeMethodNotFound, Message: "the client connected to sigil-hub does not support " + method}
		case method != "roots/list" && len(ready) > 1:
			h.log.Warn("server request refused: no unique client to ask", "upstream", name, "server_name", h.serverName(name), "method", method)
			return nil, &upstreams.RPCError{Code: front.CodeInternal, Message: "sigil-hub cannot tell which client this " + method + " is for; it was not relayed"}
		case method != "roots/list":
			h.log.Debug("relaying server request to the client", "upstream", name, "server_name", h.serverName(name), "method", method)
			return able[0].clientRequest(ctx, nil, method, params)
		default:
			for _, s := range able {
				actx, acancel := context.WithTimeout(wctx, rootsAttempt)
				res, err := s.clientRequest(actx, nil, method, params)
				timedOut := err != nil && actx.Err() != nil && errors.Is(err, actx.Err())
				acancel()
				if !timedOut {
					return res, err // the client's answer, or its error
				}
				if wctx.Err() != nil {
					break
				}
				h.log.Debug("a client session did not answer roots/list in time; asking the next", "upstream", name, "server_name", h.serverName(name), "session", s.fs.ID())
			}
			if wctx.Err() == nil {
				continue // each was asked once: again, while the wait lasts (an event stream may have opened)
			}
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		h.log.Warn("server request not relayed: no client answered", "upstream", name, "server_name", h.serverName(name), "method", method, "waited", wait)
		return nil, &upstreams.RPCError{Code: front.CodeInternal, Message: "no client connected to sigil-hub answered " + method + " within " + wait.String() + "; it was not relayed"}
	}
}

// capabilityFor names the client capability a server→client method needs.
// The params are forwarded as the upstream sent them, so the mode of an
// elicitation is read as every client reads it: params that hold "mode"
// written otherwise as well (findMember) are not relayed.
func capabilityFor(method string, params json.RawMessage) (string, string) {
	switch method {
	case "sampling/createMessage":
		return "sampling", ""
	case "roots/list":
		return "roots", ""
	case "elicitation/create":
		if len(params) == 0 {
			return "elicitation", ""
		}
		mode, present, ok := memberString(params, "mode")
		if !present && !ok { // not an object findMember reads
			return "", ""
		}
		if mode == "url" {
			return "elicitation", "url"
		}
		return "elicitation", ""
	}
	return "", ""
}

// upstreamRequest answers one server→client request from upstream name.
func (h *Hub) upstreamRequest(ctx context.Context, name, method string, params json.RawMessage) (json.RawMessage, error) {
	capName, sub := capabilityFor(method, params)
	if capName == "" {
		return nil, &upstreams.RPCError{Code: front.CodeMethodNotFound, Message: "method " + strconv.Quote(method) + " is not relayed by sigil-hub"}
	}
	s, rel, inCall := h.callerOf(name)
	if !inCall {
		return h.requestOutsideCall(ctx, name, method, params, capName, sub)
	}
	if s == nil {
		h.log.Warn("server request refused: no unique client to ask", "upstream", name, "server_name", h.serverName(name), "method", method)
		return nil, &upstreams.RPCError{Code: front.CodeInternal, Message: "sigil-hub cannot tell which client this " + method + " is for; it was not relayed"}
	}
	if !s.declared(capName, sub) {
		return nil, &upstreams.RPCError{Code: front.CodeMethodNotFound, Message: "the client connected to sigil-hub does not support " + method}
	}
	h.log.Debug("relaying server request to the client", "upstream", name, "server_name", h.serverName(name), "method", method)
	return s.clientRequest(ctx, rel, method, params)
}

// serverName is the server_name label of upstream name for a log line
// ("" once the upstream is gone from the fleet).
func (h *Hub) serverName(name string) string {
	if u := h.fleet.Load().byName[name]; u != nil {
		return u.serverName
	}
	return ""
}

// declared reports whether the client declared capability name (and, when
// sub is set, its sub-capability, e.g. elicitation.url).
func (s *session) declared(name, sub string) bool {
	cc := s.fs.Client()
	return cc != nil && hasCapability(cc.Capabilities, name, sub)
}

// hasCapability reports whether caps (a client's or a server's) declare
// capability name and, when sub is set, its sub-capability sub.
func hasCapability(caps json.RawMessage, name, sub string) bool {
	var all map[string]json.RawMessage
	if json.Unmarshal(caps, &all) != nil {
		return false
	}
	c, ok := all[name]
	if !ok || sub == "" {
		return ok
	}
	return hasCapability(c, sub, "")
}

// clientRequest sends a request to the client (front.Session.Request) and
// turns the client's error answer into the upstream's.
func (s *session) clientRequest(ctx context.Context, rel json.RawMessage, method string, params json.RawMessage) (json.RawMessage, error) {
	if p := s.park.Load(); p != nil {
		return s.askParked(ctx, p, method, params)
	}
	res, err := s.fs.Request(ctx, rel, method, params)
	var fe *front.Error
	if errors.As(err, &fe) {
		out := &upstreams.RPCError{Code: fe.Code, Message: fe.Message}
		if d, ok := fe.Data.(json.RawMessage); ok {
			out.Data = d
		}
		return nil, out
	}
	return res, err
}
