package hub

import (
	"context"
	"encoding/json"
	"errors"
	"strconv"

	"github.com/sigilcore/sigil-hub/front"
	"github.com/sigilcore/sigil-hub/internal/strictjson"
	"github.com/sigilcore/sigil-hub/upstreams"
)

// Server→client requests (sampling, elicitation, roots) from an upstream are
// forwarded to the client whose call caused them, and only when that client
// declared the capability (an upstream must not reach a user or model the
// client did not offer).

// upstreamCapabilities is what the hub declares to every upstream: it can
// relay these requests, and answers them with an error when no client can.
var upstreamCapabilities = json.RawMessage(`{"roots":{"listChanged":true},"sampling":{},"elicitation":{"form":{},"url":{}}}`)

// track records a call forwarded to upstream; the returned func forgets it.
func (h *Hub) track(upstream string, s *session, rel json.RawMessage) func() {
	ref := callRef{sess: s, rel: string(rel)}
	h.callsMu.Lock()
	m := h.calls[upstream]
	if m == nil {
		m = make(map[callRef]struct{})
		h.calls[upstream] = m
	}
	m[ref] = struct{}{}
	h.callsMu.Unlock()
	return func() {
		h.callsMu.Lock()
		delete(h.calls[upstream], ref)
		h.callsMu.Unlock()
	}
}

// routeRequest picks the client for a request from upstream: the session
// with calls in flight on that upstream when it is the only one (and the
// call, when it is the only one), else the only live session. It returns
// nil when the client cannot be told apart: the request is refused rather
// than shown to the wrong person.
func (h *Hub) routeRequest(upstream string) (*session, json.RawMessage) {
	h.callsMu.Lock()
	var sess *session
	var rel json.RawMessage
	calls := 0
	for ref := range h.calls[upstream] {
		if sess != nil && ref.sess != sess {
			h.callsMu.Unlock()
			return nil, nil
		}
		sess = ref.sess
		rel = json.RawMessage(ref.rel)
		calls++
	}
	h.callsMu.Unlock()
	if sess != nil {
		if calls > 1 {
			rel = nil
		}
		return sess, rel
	}
	if live := h.liveSessions(); len(live) == 1 {
		return live[0], nil
	}
	return nil, nil
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
		start, end, ok := findMember(params, "mode")
		if !ok {
			return "", ""
		}
		if start >= 0 {
			if mode, _ := strictjson.DecodeString(params[start:end]); mode == "url" {
				return "elicitation", "url"
			}
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
	s, rel := h.routeRequest(name)
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
	if cc == nil || cc.Capabilities == nil {
		return false
	}
	var caps map[string]json.RawMessage
	if json.Unmarshal(cc.Capabilities, &caps) != nil {
		return false
	}
	c, ok := caps[name]
	if !ok {
		return false
	}
	if sub == "" {
		return true
	}
	var subs map[string]json.RawMessage
	if json.Unmarshal(c, &subs) != nil {
		return false
	}
	_, ok = subs[sub]
	return ok
}

// clientRequest sends a request to the client (front.Session.Request) and
// turns the client's error answer into the upstream's.
func (s *session) clientRequest(ctx context.Context, rel json.RawMessage, method string, params json.RawMessage) (json.RawMessage, error) {
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
