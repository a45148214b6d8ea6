package hub

import (
	"context"
	"encoding/json"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/sigilcore/sigil-hub/front"
	"github.com/sigilcore/sigil-hub/internal/strictjson"
	"github.com/sigilcore/sigil-hub/upstreams"
)

// attestationMetaKey carries the intent attestation with a forwarded call
// (docs/protocol.md#attestations-and-the-jwks).
const attestationMetaKey = "sigilcore.com/attestation"

// progressGrace is how long a call's progress token stays mapped after the
// call ended.
const progressGrace = 2 * time.Second

// logDecision logs a call's authorization decision: a call that was not
// approved at info, an approved one at debug (the audit log, --audit, is the
// record of every call; formatting and writing a line per approved call was
// an eighth of the binary's CPU, measured).
func (h *Hub) logDecision(exposed string, u *upstream, decision, code string, latency time.Duration) {
	level := slog.LevelInfo
	if decision == "APPROVED" {
		level = slog.LevelDebug
	}
	if !h.log.Enabled(context.Background(), level) {
		return
	}
	attrs := []any{"event", decisionEvent(decision), "exposed_tool", exposed, "upstream", u.name, "server_id", u.serverID, "server_name", u.serverName,
		"decision", decision, "latency_ms", latency.Milliseconds()}
	if code != "" {
		attrs = append(attrs, "error_code", code)
	}
	h.log.Log(context.Background(), level, "tool call decision", attrs...)
}

// decisionEvent is the stable "event" of a decision's log line (README,
// "Flags and environment", --log-format): tool_call_approved, tool_call_denied, tool_call_pending,
// tool_call_blocked (Sign unreachable, fail-closed), tool_call_cancelled.
func decisionEvent(decision string) string {
	switch decision {
	case "UNREACHABLE":
		return "tool_call_blocked"
	case "APPROVED", "DENIED", "PENDING", "CANCELLED":
		return "tool_call_" + strings.ToLower(decision)
	}
	return "tool_call_decided"
}

// progress sends a progress notification for the client's own token.
func (s *session) progress(rel, token json.RawMessage, n float64, message string) {
	p := map[string]any{"progressToken": token, "progress": n, "message": message}
	b, err := front.MarshalNoEscape(p)
	if err == nil {
		s.fs.Send(rel, front.EncodeNotification("notifications/progress", b))
	}
}

// getPrompt routes prompts/get to the owning upstream with its own name.
func (s *session) getPrompt(ctx context.Context, params json.RawMessage) (json.RawMessage, error) {
	members, err := strictjson.Object(params, front.MaxDepth)
	if err != nil {
		return nil, front.Errorf(front.CodeInvalidParams, "invalid prompts/get params: %v", err)
	}
	var exposed string
	if err := json.Unmarshal(members["name"], &exposed); err != nil || exposed == "" {
		return nil, front.Errorf(front.CodeInvalidParams, "invalid prompts/get params: name must be a non-empty string")
	}
	v := s.h.view.Load()
	route, ok := v.table.Prompt(exposed)
	if !ok {
		return nil, front.Errorf(front.CodeInvalidParams, "unknown prompt %q: call prompts/list to see the prompts this hub offers", exposed)
	}
	members["name"] = strictjson.AppendString(nil, route.Name)
	return s.forwardRounds(ctx, v.fleet.byName[route.Upstream], "prompts/get", members, exposed)
}

// resourceRequest routes resources/read, subscribe and unsubscribe by URI.
func (s *session) resourceRequest(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	members, err := strictjson.Object(params, front.MaxDepth)
	if err != nil {
		return nil, front.Errorf(front.CodeInvalidParams, "invalid %s params: %v", method, err)
	}
	var uri string
	if err := json.Unmarshal(members["uri"], &uri); err != nil || uri == "" {
		return nil, front.Errorf(front.CodeInvalidParams, "invalid %s params: uri must be a non-empty string", method)
	}
	v := s.h.view.Load()
	owner, ok := s.h.resourceOwner(v, uri)
	if !ok {
		return nil, &front.Error{Code: front.CodeInvalidParams, Message: "resource not found: no upstream serves " + strconv.Quote(uri),
			Data: map[string]any{"uri": uri}}
	}
	// A subscription counts from before it is forwarded: a server may send
	// resources/updated right behind its answer.
	var had bool
	if method == "resources/subscribe" {
		_, had = s.subs.LoadOrStore(uri, struct{}{})
	}
	forward := s.forward
	if method == "resources/read" {
		forward = s.forwardRounds
	}
	res, err := forward(ctx, v.fleet.byName[owner], method, members, uri)
	switch {
	case method == "resources/subscribe" && err != nil && !had, method == "resources/unsubscribe" && err == nil:
		s.subs.Delete(uri)
	}
	return res, err
}

// resourceOwner names the upstream that serves uri: the one whose listed
// resource or template matches it, or, in single-wrap mode, the one upstream
// (a server may serve, and accept subscriptions to, URIs it does not list).
// Requests and the upstreams' resource notifications are routed alike.
func (h *Hub) resourceOwner(v *view, uri string) (string, bool) {
	if owner, ok := v.table.Resource(uri); ok {
		return owner, true
	}
	if h.opts.Single && len(v.fleet.ups) == 1 {
		return v.fleet.ups[0].name, true
	}
	return "", false
}

// complete routes completion/complete by its prompt name or resource URI.
func (s *session) complete(ctx context.Context, params json.RawMessage) (json.RawMessage, error) {
	members, err := strictjson.Object(params, front.MaxDepth)
	if err != nil {
		return nil, front.Errorf(front.CodeInvalidParams, "invalid completion/complete params: %v", err)
	}
	ref, err := strictjson.Object(members["ref"], front.MaxDepth)
	if err != nil {
		return nil, front.Errorf(front.CodeInvalidParams, "invalid completion/complete ref: %v", err)
	}
	var typ, name, uri string
	_ = json.Unmarshal(ref["type"], &typ)
	v := s.h.view.Load()
	switch typ {
	case "ref/prompt":
		_ = json.Unmarshal(ref["name"], &name)
		route, ok := v.table.Prompt(name)
		if !ok {
			return nil, front.Errorf(front.CodeInvalidParams, "unknown prompt %q", name)
		}
		ref["name"] = strictjson.AppendString(nil, route.Name)
		members["ref"] = encodeObject(ref)
		return s.forward(ctx, v.fleet.byName[route.Upstream], "completion/complete", members, name)
	case "ref/resource":
		_ = json.Unmarshal(ref["uri"], &uri)
		owner, ok := s.h.resourceOwner(v, uri)
		if !ok {
			return nil, front.Errorf(front.CodeInvalidParams, "resource not found: no upstream serves %q", uri)
		}
		return s.forward(ctx, v.fleet.byName[owner], "completion/complete", members, uri)
	}
	return nil, front.Errorf(front.CodeInvalidParams, "invalid completion/complete ref type %q", typ)
}

// setLevel sends logging/setLevel to every ready upstream that logs.
func (s *session) setLevel(ctx context.Context, params json.RawMessage) (json.RawMessage, error) {
	var p struct {
		Level string `json:"level"`
	}
	if err := json.Unmarshal(params, &p); err != nil || p.Level == "" {
		return nil, front.Errorf(front.CodeInvalidParams, "invalid logging/setLevel params: level is required")
	}
	for _, u := range s.h.fleet.Load().ups {
		snap := u.conn.Snapshot()
		if snap.State.String() != "ready" || !hasCapability(snap.Capabilities, "logging", "") {
			continue
		}
		s.use(u.name) // a session that asks for logs gets them
		if _, err := u.conn.Call(ctx, "logging/setLevel", params); err != nil {
			s.h.log.Warn("logging/setLevel failed", "upstream", u.name, "server_name", u.serverName, "err", err)
		}
	}
	return json.RawMessage(`{}`), nil
}

// forward sends a request that is not a tool call (not authorized) with
// forwardParams, its _meta without the protocol's own keys (modern.go).
func (s *session) forward(ctx context.Context, u *upstream, method string, members map[string]json.RawMessage, what string) (json.RawMessage, error) {
	if meta, ok := members["_meta"]; ok {
		members["_meta"] = withoutProtocolMeta(meta)
	}
	return s.forwardParams(ctx, u, method, encodeObject(members), what, false)
}

// forwardParams sends one request that is not a tool call to u, on behalf
// of what (a name or URI, for the errors of errors.go); tasks tells a
// 2026-07-28 upstream the caller takes tasks (tasks.go).
func (s *session) forwardParams(ctx context.Context, u *upstream, method string, params json.RawMessage, what string, tasks bool) (json.RawMessage, error) {
	if u == nil {
		return nil, front.Errorf(front.CodeInternal, "internal error: no upstream for %q", what)
	}
	st := u.conn.Snapshot()
	if st.State.String() != "ready" {
		return nil, upstreamUnavailable(u, what, st.Err)
	}
	if st.Modern() {
		ctx = upstreams.WithRequestMeta(ctx, requestMeta(s.fs.Client(), tasks))
	}
	s.use(u.name)
	res, err := u.conn.Call(ctx, method, params)
	if err != nil {
		if front.ClientCancelled(ctx) {
			return nil, front.ErrNoResponse
		}
		return nil, upstreamError(u, what, err, ctx)
	}
	return res, nil
}

// upstreamNotification handles one notification from an upstream. What it
// passes on is the upstream's params byte for byte, but for the one member
// the hub rewrites: the progress token (back to the client's own) and, in
// hub mode, the log message's logger (named by its upstream).
func (h *Hub) upstreamNotification(upstreamName, method string, params json.RawMessage) {
	switch method {
	case "notifications/progress":
		tok, _, _ := memberString(params, "progressToken") // "" when absent or not a string: none of the hub's
		t, _ := h.progress.Load(tok)
		target, ok := t.(progressTarget)
		if !ok || target.upstream != upstreamName {
			return // a token this hub did not hand out, or another upstream's: only the one the call went to speaks for it
		}
		p, _ := setMember(params, "progressToken", target.token)
		target.sess.fs.Send(target.rel, front.EncodeNotification(method, p))
	case "notifications/message":
		p := params
		// In hub mode the logger names its upstream; single-wrap keeps the
		// upstream's own names, loggers included.
		if !h.opts.Single {
			logger := upstreamName
			inner, present, ok := memberString(params, "logger")
			if !present && !ok { // not an object findMember reads
				return
			}
			if ok && inner != "" {
				logger += "/" + inner
			}
			p, _ = setMember(params, "logger", strictjson.AppendString(nil, logger))
		} else if strictjson.ValidateObject(params, front.MaxDepth) != nil {
			return
		}
		msg := front.EncodeNotification(method, p)
		for _, s := range h.liveSessions() {
			if s.usesUpstream(upstreamName) { // only sessions that use this upstream
				s.fs.Send(nil, msg)
			}
		}
		// A 2026-07-28 request has no session: it gets the messages of its
		// own call, when it asked for them (modern.go).
		if t := h.logTargets.of(upstreamName); len(t) == 1 && wantsLog(t[0].sess.fs.Client(), p) {
			t[0].sess.fs.Send(json.RawMessage(t[0].rel), msg)
		}
	case "notifications/tasks":
		h.taskStatus(upstreamName, params)
	case "notifications/resources/updated":
		var p struct {
			URI string `json:"uri"`
		}
		if json.Unmarshal(params, &p) != nil {
			return
		}
		if owner, ok := h.resourceOwner(h.view.Load(), p.URI); !ok || owner != upstreamName {
			return // only the owner of a URI speaks for it
		}
		h.listeners.each(func(l *listener) {
			if l.uris[p.URI] {
				l.send(method, params)
			}
		})
		for _, s := range h.liveSessions() {
			if _, sub := s.subs.Load(p.URI); sub {
				s.fs.Send(nil, front.EncodeNotification(method, params))
			}
		}
	default:
		h.log.Debug("upstream notification not forwarded", "upstream", upstreamName, "server_name", h.serverName(upstreamName), "method", method)
	}
}
