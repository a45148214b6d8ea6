package hub

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strconv"
	"strings"

	"github.com/sigilcore/sigil-hub/front"
	"github.com/sigilcore/sigil-hub/internal/strictjson"
	"github.com/sigilcore/sigil-hub/upstreams"
)

// This file serves 2026-07-28 ("modern") requests, each with its own client
// context (front/modern.go read and checked it): the package doc says what.

// handleModern answers one modern request.
func (h *Hub) handleModern(ctx context.Context, fs front.Session, req *front.Request) (json.RawMessage, error) {
	// A session of the request's own: never registered, so nothing meant
	// for sessions (list changes, logs, server→client requests outside a
	// call) reaches it.
	s := h.newSession(fs)
	if h.fleet.Load().cfg.TaskID == "" {
		// With no session, the calls of one stdio client, or of one HTTP
		// token holder, are one task to Sign's per-task limits.
		id, ok := h.modernTaskIDs.Load(principal(fs))
		if !ok {
			id, _ = h.modernTaskIDs.LoadOrStore(principal(fs), newTaskID())
		}
		s.taskID = id.(string)
	}
	var res json.RawMessage
	var err error
	switch req.Method {
	case "server/discover":
		res, err = h.discover(ctx)
	case "subscriptions/listen":
		return h.listen(ctx, s, req)
	case "tasks/get", "tasks/update", "tasks/cancel":
		res, err = s.taskRequest(ctx, req)
	default:
		res, err = s.request(ctx, req)
	}
	if err != nil {
		return nil, modernError(req, err)
	}
	return h.modernResult(req.Method, res)
}

// discover answers server/discover: what initialize told a 2025-era
// client, as the revision shapes it.
func (h *Hub) discover(ctx context.Context) (json.RawMessage, error) {
	return h.serverResult(ctx, map[string]any{"supportedVersions": front.AllVersions()}, true)
}

// serverResult completes result, initialize's or server/discover's (modern),
// with the hub's capabilities and, in single-wrap mode, the upstream's own
// instructions (waiting for its start-up, bounded by startup_timeout, so
// that an immediate client gets them).
func (h *Hub) serverResult(ctx context.Context, result map[string]any, modern bool) (json.RawMessage, error) {
	caps := map[string]any{
		"tools":       map[string]any{"listChanged": true},
		"prompts":     map[string]any{"listChanged": true},
		"resources":   map[string]any{"subscribe": true, "listChanged": true},
		"logging":     map[string]any{},
		"completions": map[string]any{},
	}
	if ups := h.fleet.Load().ups; h.opts.Single && len(ups) == 1 {
		h.waitStartup(ctx)
		if instructions := ups[0].conn.Snapshot().Instructions; instructions != "" {
			result["instructions"] = instructions
		}
	}
	if modern && slices.ContainsFunc(h.fleet.Load().ups, func(u *upstream) bool { return hasTasks(u.conn.Snapshot().Capabilities) }) {
		// When an upstream advertised the tasks extension, only a
		// 2026-07-28 client is told: a 2025 one's initialize capabilities
		// stay as they were (tasks.go).
		caps["extensions"] = map[string]any{tasksExtension: map[string]any{}}
	}
	result["capabilities"] = caps
	b, err := front.MarshalNoEscape(result)
	if err != nil {
		return nil, front.Errorf(front.CodeInternal, "internal error: %v", err)
	}
	return b, nil
}

// cacheable are the methods whose complete results carry ttlMs and
// cacheScope.
var cacheable = map[string]bool{
	"server/discover": true, "tools/list": true, "prompts/list": true,
	"resources/list": true, "resources/templates/list": true, "resources/read": true,
}

// modernResult stamps what the revision requires of every result: a
// resultType ("complete" when the upstream, of the 2025 era, sent none),
// the hub's serverInfo in _meta, and on cacheable results the cache hints.
// The hub makes no freshness promise of its own: a list is gathered from
// upstreams that may change at any moment, so its ttlMs is 0 (an
// upstream's own ttlMs on a resource it serves is kept); and every result
// is private: the hub serves callers of different standing (tokens, the
// hub's own filters and pins), so no shared cache may hand one caller's
// answer to another.
func (h *Hub) modernResult(method string, res json.RawMessage) (json.RawMessage, error) {
	out := res
	typ, _, _ := memberString(res, "resultType")
	if typ == "" {
		typ = "complete"
		out, _ = setMember(out, "resultType", []byte(`"complete"`))
	}
	if typ == "complete" && cacheable[method] {
		if start, _, ok := findMember(out, "ttlMs"); ok && start < 0 {
			out, _ = setMember(out, "ttlMs", []byte("0"))
		}
		out, _ = setMember(out, "cacheScope", []byte(`"private"`))
	}
	info := strictjson.AppendString([]byte(`{"name":"sigil-hub","version":`), h.opts.Version)
	info = append(info, '}')
	if stamped, ok := setMetaMember(out, serverInfoMetaKey, info); ok {
		return stamped, nil
	}
	if _, _, ok := findMember(out, "_meta"); ok {
		return nil, front.Errorf(front.CodeInternal, "internal error: the upstream's result _meta could not be read")
	}
	return nil, front.Errorf(front.CodeInternal, "internal error: the upstream's result could not be read")
}

// serverInfoMetaKey is where a modern result names its server.
const serverInfoMetaKey = "io.modelcontextprotocol/serverInfo"

// memberString reads member name of obj as a string: present is whether
// the member exists at all.
func memberString(obj []byte, name string) (s string, present, ok bool) {
	start, end, ok := findMember(obj, name)
	if !ok || start < 0 {
		return "", false, ok
	}
	s, ok = strictjson.DecodeString(obj[start:end])
	return s, true, ok
}

// modernError maps an error to what a modern client may be sent: the
// revision retired -32002, which meant two things before it. The hub's own
// Sign key failure (its error.data is the hub's) gets a code of its own;
// any other -32002 is an upstream's 2025 "resource not found", which the
// revision calls -32602, with the URI when the request named one
// (docs/protocol.md#json-rpc-errors).
func modernError(req *front.Request, err error) error {
	var fe *front.Error
	if !errors.As(err, &fe) || fe.Code != front.CodeAuthFailure {
		return err
	}
	out := *fe
	if _, ours := fe.Data.(blockData); ours {
		out.Code = front.CodeAuthFailureModern
		return &out
	}
	out.Code = front.CodeInvalidParams
	if uri, present, _ := memberString(req.Params, "uri"); present {
		out.Data = map[string]any{"uri": uri}
		out.Message = cmp.Or(out.Message, "resource not found: "+strconv.Quote(uri))
	}
	return &out
}

// protocolMetaPrefix starts the _meta keys the protocol itself defines
// (protocol version, client capabilities, client info, log level).
const protocolMetaPrefix = "io.modelcontextprotocol/"

// withoutProtocolMeta returns a client's request _meta without the keys
// the protocol defines: they describe the client's exchange with the hub,
// not the hub's with the upstream (whose connection sets its own). Every
// other member is kept byte for byte; anything not an object is dropped.
func withoutProtocolMeta(meta json.RawMessage) json.RawMessage {
	members, err := strictjson.Members(meta)
	if err != nil {
		return json.RawMessage(`{}`)
	}
	maps.DeleteFunc(members, func(k string, _ json.RawMessage) bool { return strings.HasPrefix(k, protocolMetaPrefix) })
	return encodeObject(members)
}

// relayedCapabilities are the client capabilities an upstream may be told
// of: what the hub can carry between them (the upstream's input requests).
var relayedCapabilities = []string{"elicitation", "roots", "sampling"}

// requestMeta is what a 2026-07-28 upstream is told of the caller of one
// request: its capabilities that the hub relays (the upstream asks only for
// input the caller can give) and, with tasks, the tasks extension (tasks.go:
// its settings are the hub's own, `{}`, nothing of the client's is copied),
// its clientInfo, its log level and trace context. A 2025 client's come
// from its session.
func requestMeta(c *front.ClientContext, tasks bool) upstreams.RequestMeta {
	var m upstreams.RequestMeta
	if c == nil {
		return m
	}
	caps := map[string]json.RawMessage{}
	if all, err := strictjson.Members(c.Capabilities); err == nil {
		for _, k := range relayedCapabilities {
			if v, ok := all[k]; ok {
				caps[k] = v
			}
		}
	}
	if tasks {
		caps["extensions"] = json.RawMessage(`{"` + tasksExtension + `":{}}`)
	}
	m.Capabilities = encodeObject(caps)
	m.ClientInfo = c.InfoRaw
	if m.ClientInfo == nil && c.Info.Name != "" {
		m.ClientInfo, _ = front.MarshalNoEscape(c.Info)
	}
	m.LogLevel = c.LogLevel
	for _, t := range c.Trace {
		m.Trace = append(m.Trace, upstreams.TraceMember{Name: t.Name, Value: t.Value})
	}
	return m
}

// wantsLog reports whether a 2026-07-28 request asked for log messages
// (its _meta logLevel) at the level of the message params: a session's
// client gets the session's messages instead.
func wantsLog(c *front.ClientContext, params json.RawMessage) bool {
	if c == nil || !c.Modern || c.LogLevel == "" {
		return false
	}
	level, _, _ := memberString(params, "level")
	got, want := slices.Index(front.LogLevels, level), slices.Index(front.LogLevels, c.LogLevel)
	return got >= 0 && want >= 0 && got >= want
}
