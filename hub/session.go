package hub

import (
	"context"
	"encoding/json"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sigilcore/sigil-hub/front"
)

// This file is the hub's front.Handler surface (the package doc) and its
// side of a client session.

// session is the hub's side of one live client session: what the pipeline
// keeps per session (the front keeps the rest: its requests in flight, its
// client context).
type session struct {
	h      *Hub
	fs     front.Session
	taskID string

	listed atomic.Uint32 // listKind bits of the lists this session asked for
	// uses holds the names of the upstreams this session sent a request
	// to (string → struct{}): an upstream's log messages go only to the
	// sessions that use it.
	uses sync.Map

	subs sync.Map // subscribed resource URIs (string → struct{})

	// park is the call of a 2026-07-28 request that its upstream may ask
	// the client for input in (mrtr.go), or nil.
	park atomic.Pointer[parked]

	// ready is set once the client may be sent requests of the hub's own
	// (server→client requests outside any call): after its initialize was
	// answered, at its next message or after initializeGrace, whichever
	// comes first (the hub is not told of notifications/initialized).
	ready atomic.Bool
	// active is the UnixNano of the client's last message: the sessions
	// asked first outside a call are the ones in use (requests.go).
	active atomic.Int64
}

// initializeGrace is how long after its initialize was answered a session
// that sent nothing since counts as ready.
const initializeGrace = 500 * time.Millisecond

func (h *Hub) newSession(fs front.Session) *session {
	s := &session{h: h, fs: fs, taskID: h.fleet.Load().cfg.TaskID}
	if s.taskID == "" {
		s.taskID = newTaskID()
	}
	return s
}

// Register makes fs a live session (front.Handler).
func (h *Hub) Register(fs front.Session) func() {
	s := h.newSession(fs)
	s.active.Store(time.Now().UnixNano())
	h.sessions.Store(fs, s)
	return func() { h.sessions.CompareAndDelete(fs, s) }
}

// touch records a message from the client: the session is in use, and a
// client that speaks after its initialize has read the answer.
func (s *session) touch() {
	s.active.Store(time.Now().UnixNano())
	s.markReady()
}

// markReady makes the session one the hub may ask (requests.go) and wakes
// the server→client requests waiting for one.
func (s *session) markReady() {
	if !s.ready.Swap(true) {
		s.h.wakeSessionWaiters()
	}
}

// sessionOf returns the live session of fs, or nil.
func (h *Hub) sessionOf(fs front.Session) *session {
	if s, ok := h.sessions.Load(fs); ok {
		return s.(*session)
	}
	return nil
}

func (h *Hub) liveSessions() []*session {
	var out []*session
	h.sessions.Range(func(_, s any) bool {
		out = append(out, s.(*session))
		return true
	})
	return out
}

// Handle answers one client request (front.Handler).
func (h *Hub) Handle(ctx context.Context, fs front.Session, req *front.Request) (json.RawMessage, error) {
	if req.Client != nil && req.Client.Modern {
		return h.handleModern(ctx, fs, req)
	}
	if req.Method == "initialize" {
		res, err := h.initialize(ctx, req)
		if s := h.sessionOf(fs); s != nil && err == nil {
			time.AfterFunc(initializeGrace, s.markReady)
		}
		return res, err
	}
	s := h.sessionOf(fs)
	if s == nil { // the session ended while the request waited
		return nil, front.ErrNoResponse
	}
	s.touch()
	return s.request(ctx, req)
}

// Notify handles a client notification (front.Handler).
func (h *Hub) Notify(fs front.Session, req *front.Request) {
	if s := h.sessionOf(fs); s != nil {
		s.touch()
	}
	switch req.Method {
	case "notifications/roots/list_changed":
		for _, u := range h.fleet.Load().ups {
			_ = u.conn.Notify(context.Background(), req.Method, nil)
		}
	default:
		h.log.Debug("client notification ignored", "method", req.Method)
	}
}

// CallTimeout is the current call_timeout, 120s if unset (front.Handler).
func (h *Hub) CallTimeout() time.Duration {
	if d := h.fleet.Load().cfg.CallTimeout; d > 0 {
		return d
	}
	return 120 * time.Second
}

// use records that the session sent a request to upstream name.
func (s *session) use(name string) {
	if _, ok := s.uses.Load(name); !ok {
		s.uses.Store(name, struct{}{})
	}
}

// usesUpstream reports whether the session sent a request to upstream
// name; in single-wrap mode every session uses the one upstream.
func (s *session) usesUpstream(name string) bool {
	if s.h.opts.Single {
		return true
	}
	_, ok := s.uses.Load(name)
	return ok
}

// request answers one client request of an initialized session: a raw
// result, or an error (a *front.Error, or front.ErrNoResponse).
func (s *session) request(ctx context.Context, req *front.Request) (json.RawMessage, error) {
	switch req.Method {
	case "tools/list":
		return s.list(ctx, req.Params, "tools", listTools, func(v *view) []json.RawMessage { return v.tools })
	case "prompts/list":
		return s.list(ctx, req.Params, "prompts", listPrompts, func(v *view) []json.RawMessage { return v.prompts })
	case "resources/list":
		return s.list(ctx, req.Params, "resources", listResources, func(v *view) []json.RawMessage { return v.resources })
	case "resources/templates/list":
		return s.list(ctx, req.Params, "resourceTemplates", listResources, func(v *view) []json.RawMessage { return v.templates })
	case "tools/call":
		return s.callTool(ctx, req)
	}
	// Every other request waits for start-up as the lists do: a one-shot
	// client (the MCP Inspector CLI) sends it right after initialize, and
	// the upstream that serves it may not be ready yet.
	s.h.waitStartup(ctx)
	switch req.Method {
	case "prompts/get":
		return s.getPrompt(ctx, req.Params)
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		return s.resourceRequest(ctx, req.Method, req.Params)
	case "completion/complete":
		return s.complete(ctx, req.Params)
	case "logging/setLevel":
		return s.setLevel(ctx, req.Params)
	}
	return nil, front.Errorf(front.CodeMethodNotFound, "method %q is not supported by sigil-hub", req.Method)
}

// initialize answers the handshake in the protocol version the front
// negotiated (req.Client), with the hub's capabilities and instructions
// (serverResult).
func (h *Hub) initialize(ctx context.Context, req *front.Request) (json.RawMessage, error) {
	version := front.SupportedVersions[0]
	if req.Client != nil {
		version = req.Client.ProtocolVersion
	}
	return h.serverResult(ctx, map[string]any{
		"protocolVersion": version,
		"serverInfo":      map[string]any{"name": "sigil-hub", "version": h.opts.Version},
	}, false)
}

// list serves one paginated merged list, of listKind kind.
func (s *session) list(ctx context.Context, params json.RawMessage, key string, kind uint32, items func(*view) []json.RawMessage) (json.RawMessage, error) {
	var p struct {
		Cursor string `json:"cursor"`
	}
	if params != nil {
		if err := json.Unmarshal(params, &p); err != nil {
			return nil, front.Errorf(front.CodeInvalidParams, "invalid params: %v", err)
		}
	}
	s.h.waitStartup(ctx)
	s.h.refreshPins()
	// Marked before the view is read: a change published after this read
	// is notified to this session (publish swaps the view, then reads the
	// marks).
	s.listed.Or(kind)
	all := items(s.h.view.Load())
	pg, next, err := page(all, p.Cursor, s.h.pageSize)
	if err != nil {
		return nil, front.Errorf(front.CodeInvalidParams, "%v", err)
	}
	n := 64
	for _, it := range pg {
		n += len(it) + 1
	}
	b := make([]byte, 0, n)
	b = append(b, '{')
	b = strconv.AppendQuote(b, key)
	b = append(b, ":["...)
	for i, it := range pg {
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, it...)
	}
	b = append(b, ']')
	if next != "" {
		b = append(b, `,"nextCursor":`...)
		b = strconv.AppendQuote(b, next)
	}
	return append(b, '}'), nil
}
