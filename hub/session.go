package hub

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Limits of one client session.
const (
	maxClientMessage = 4 << 20 // bytes per message (docs/faults.md case 11)
	maxInFlight      = 1024    // concurrent requests per session
)

// Protocol versions the hub speaks with clients (initialize handshake).
var supportedVersions = []string{"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"}

// errNoResponse ends a request without an answer: the client cancelled it
// (MCP: the receiver SHOULD NOT respond to a cancelled request).
var errNoResponse = errors.New("no response")

// outbox carries messages to one client. Implementations are safe for
// concurrent use and must not block for long.
type outbox interface {
	// deliver sends msg to the client. rel is the raw id of the client
	// request msg belongs to (its response, or a notification or request
	// that request caused), or nil. final marks the request's response (or,
	// with a nil msg, that the request ends without one).
	deliver(rel json.RawMessage, msg []byte, final bool)
}

// stdioOutbox writes every message as one line; stdio has one stream.
type stdioOutbox struct {
	w   *lineWriter
	log func(error)
}

func (o *stdioOutbox) deliver(_ json.RawMessage, msg []byte, _ bool) {
	if msg == nil {
		return
	}
	if err := o.w.write(msg); err != nil {
		o.log(err)
	}
}

// flush waits until every delivered message is written: the line writer
// may still be sending queued lines on another goroutine.
func (o *stdioOutbox) flush() { o.w.flush() }

// ctxKey types the request-scoped values the session keeps in contexts.
type ctxKey int

const reqKey ctxKey = iota // the *inflight of the client request being served

// inflight is one client request being served: its raw id, its cancel, and
// whether the client cancelled it (notifications/cancelled) rather than its
// budget running out. One per request, carried as a context value
// (measured: a cancel cause, a value and a timeout were three contexts per
// call).
type inflight struct {
	rel       json.RawMessage
	cancel    context.CancelFunc
	cancelled atomic.Bool // set before cancel is called
}

// relatedID returns the client request a context serves, or nil.
func relatedID(ctx context.Context) json.RawMessage {
	if r, _ := ctx.Value(reqKey).(*inflight); r != nil {
		return r.rel
	}
	return nil
}

// clientCancelled reports whether the request ctx serves was cancelled by
// the client (as opposed to its budget running out or the session ending).
func clientCancelled(ctx context.Context) bool {
	r, _ := ctx.Value(reqKey).(*inflight)
	return r != nil && r.cancelled.Load()
}

// session is one client connection.
type session struct {
	h      *Hub
	out    outbox
	id     string // session id (HTTP) or "stdio"
	label  string // who is connected, for logs (HTTP token name)
	taskID string

	initialized atomic.Bool
	listed      atomic.Uint32                   // listKind bits of the lists this session asked for
	agentID     atomic.Pointer[string]          // clientInfo.name from initialize (the agentId)
	clientCaps  atomic.Pointer[json.RawMessage] // capabilities from initialize
	// uses holds the names of the upstreams this session sent a request
	// to (string → struct{}): an upstream's log messages go only to the
	// sessions that use it.
	uses sync.Map

	mu       sync.Mutex               // guards the fields below
	inflight map[string]*inflight     // client request id (raw) → the request
	subs     map[string]struct{}      // subscribed resource URIs
	pending  map[string]chan *message // hub→client request id → answer
	reqSeq   uint64                   // hub→client request ids

	// idle hands a request to a worker goroutine waiting for one
	// (unbuffered: a send succeeds only when a worker is idle). nil (a
	// zero session in tests) starts a worker for every request.
	idle chan func()
}

func (h *Hub) newSession(out outbox) *session {
	s := &session{
		h:        h,
		out:      out,
		taskID:   h.fleet.Load().cfg.TaskID,
		inflight: make(map[string]*inflight),
		subs:     make(map[string]struct{}),
		pending:  make(map[string]chan *message),
		idle:     make(chan func()),
	}
	if s.taskID == "" {
		s.taskID = newTaskID()
	}
	return s
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

// send delivers a message that belongs to no particular request.
func (s *session) send(msg []byte) { s.out.deliver(nil, msg, false) }

// sendRelated delivers a message caused by the client request rel.
func (s *session) sendRelated(rel json.RawMessage, msg []byte) { s.out.deliver(rel, msg, false) }

// register adds the session to the hub's live set; the returned func
// removes it.
func (s *session) register() func() {
	s.h.mu.Lock()
	s.h.sessions[s] = struct{}{}
	s.h.mu.Unlock()
	return func() {
		s.h.mu.Lock()
		delete(s.h.sessions, s)
		s.h.mu.Unlock()
	}
}

// serve reads client messages until EOF or ctx ends, then cancels what is
// still running and waits for it.
func (s *session) serve(ctx context.Context, r io.Reader) error {
	unregister := s.register()
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	// The reader dispatches each line itself (measured: handing lines to this
	// goroutine cost a goroutine switch per message). dispatchMu is held
	// while it dispatches; once this goroutine has cancelled ctx and taken
	// it, the reader starts nothing more, so wg.Wait below cannot race with
	// wg.Add.
	var dispatchMu sync.Mutex
	defer func() {
		cancel()
		dispatchMu.Lock() // a barrier: a dispatch in progress has returned
		dispatchMu.Unlock()
		wg.Wait()
		unregister()
		if f, ok := s.out.(interface{ flush() }); ok {
			f.flush() // every response is on the wire when serve returns
		}
	}()

	readErr := make(chan error, 1)
	go func() { // ends when r does: not joined, as a blocked read cannot be interrupted
		lr := newLineReader(r, maxClientMessage)
		for {
			line, err := lr.next()
			if errors.Is(err, errTooLarge) {
				s.send(encodeError(nullID, newRPCError(codeParseError, "parse error: message too large (limit %d bytes)", maxClientMessage)))
				continue
			}
			if err != nil {
				readErr <- err
				return
			}
			dispatchMu.Lock()
			if ctx.Err() != nil {
				dispatchMu.Unlock()
				return
			}
			s.dispatch(ctx, line, &wg)
			dispatchMu.Unlock()
		}
	}()

	select {
	case <-ctx.Done():
		return nil
	case err := <-readErr:
		if err != nil && !errors.Is(err, io.EOF) && ctx.Err() == nil {
			return err
		}
		return nil
	}
}

// dispatch handles one line. Requests run on their own goroutine; responses
// and notifications are handled inline, in order.
func (s *session) dispatch(ctx context.Context, line []byte, wg *sync.WaitGroup) {
	m, id, rerr := parseMessage(line)
	if rerr != nil {
		s.rejected(&m, rerr)
		s.out.deliver(nil, encodeError(id, rerr), false)
		return
	}
	s.handle(ctx, &m, wg)
}

// handle processes one parsed message. Requests run on their own goroutine
// (joined through wg); responses and notifications are handled inline.
func (s *session) handle(ctx context.Context, mp *message, wg *sync.WaitGroup) {
	m := *mp
	switch {
	case m.isNotification():
		s.notification(m)
	case m.Method == "initialize":
		// Handled inline so that requests pipelined right behind it (without
		// waiting for its answer) see an initialized session.
		result, err := s.initialize(m.Params)
		if err != nil {
			s.out.deliver(m.ID, encodeError(m.ID, err), true)
			return
		}
		s.out.deliver(m.ID, encodeResult(m.ID, result), true)
	case m.isRequest():
		key := string(m.ID)
		s.mu.Lock()
		if _, dup := s.inflight[key]; dup {
			s.mu.Unlock()
			s.out.deliver(nil, encodeError(m.ID, newRPCError(codeInvalidRequest, "duplicate request id %s: an earlier request with this id is still running", key)), false)
			return
		}
		if len(s.inflight) >= maxInFlight {
			s.mu.Unlock()
			s.out.deliver(m.ID, encodeError(m.ID, newRPCError(codeInternal, "too many requests in flight (limit %d): wait for some to finish", maxInFlight)), true)
			return
		}
		r := &inflight{rel: m.ID}
		var rctx context.Context
		if m.Method == "tools/call" {
			// The call budget (docs/protocol.md#limits) runs from receipt:
			// one deadline for authorization, holding and the upstream call.
			rctx, r.cancel = context.WithTimeout(ctx, s.h.callTimeout())
		} else {
			rctx, r.cancel = context.WithCancel(ctx)
		}
		rctx = context.WithValue(rctx, reqKey, r)
		s.inflight[key] = r
		s.mu.Unlock()
		s.run(ctx, wg, func() {
			result, err := s.request(rctx, &m)
			// Release the id before answering: a client may reuse it as soon
			// as it reads the response.
			s.mu.Lock()
			delete(s.inflight, key)
			s.mu.Unlock()
			r.cancel()
			switch {
			case errors.Is(err, errNoResponse):
				s.out.deliver(m.ID, nil, true)
			case err != nil:
				var re *rpcError
				if !errors.As(err, &re) {
					re = newRPCError(codeInternal, "internal error: %v", err)
				}
				s.out.deliver(m.ID, encodeError(m.ID, re), true)
			default:
				s.out.deliver(m.ID, encodeResult(m.ID, result), true)
			}
		})
	default: // a response to a hub→client request
		s.mu.Lock()
		ch, ok := s.pending[string(m.ID)]
		delete(s.pending, string(m.ID))
		s.mu.Unlock()
		if ok {
			ch <- &m
		}
	}
}

// workerIdle is how long a request worker waits for the next request
// before it exits.
const workerIdle = 5 * time.Second

// run runs f on a worker goroutine joined through wg: an idle one if there
// is one, else a new one. Workers live on after their request (until ctx
// ends or they idle for workerIdle) because a fresh goroutine per request
// spent about a sixth of the hub's CPU growing and copying its stack on every
// tools/call (measured); a worker's stack has already grown.
func (s *session) run(ctx context.Context, wg *sync.WaitGroup, f func()) {
	select {
	case s.idle <- f:
		return
	default:
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTimer(workerIdle)
		defer t.Stop()
		for {
			f()
			t.Reset(workerIdle)
			select {
			case f = <-s.idle:
			case <-ctx.Done():
				return
			case <-t.C:
				return
			}
		}
	}()
}

// notification handles a client notification.
func (s *session) notification(m message) {
	switch m.Method {
	case "notifications/initialized":
	case "notifications/cancelled":
		var p struct {
			RequestID json.RawMessage `json:"requestId"`
		}
		if json.Unmarshal(m.Params, &p) == nil && p.RequestID != nil {
			s.mu.Lock()
			r := s.inflight[string(p.RequestID)]
			s.mu.Unlock()
			if r != nil {
				r.cancelled.Store(true)
				r.cancel()
			}
		}
	case "notifications/roots/list_changed":
		for _, u := range s.h.fleet.Load().ups {
			_ = u.conn.Notify(context.Background(), m.Method, nil)
		}
	default:
		s.h.log.Debug("client notification ignored", "method", m.Method)
	}
}

// request answers one client request: a raw result, or an error (an
// *rpcError, or errNoResponse).
func (s *session) request(ctx context.Context, m *message) (json.RawMessage, error) {
	if m.Method == "ping" {
		return json.RawMessage(`{}`), nil
	}
	if !s.initialized.Load() {
		return nil, newRPCError(codeInvalidRequest, "session not initialized: send initialize first")
	}
	switch m.Method {
	case "tools/list":
		return s.list(ctx, m.Params, "tools", func(v *view) []json.RawMessage { return v.tools })
	case "prompts/list":
		return s.list(ctx, m.Params, "prompts", func(v *view) []json.RawMessage { return v.prompts })
	case "resources/list":
		return s.list(ctx, m.Params, "resources", func(v *view) []json.RawMessage { return v.resources })
	case "resources/templates/list":
		return s.list(ctx, m.Params, "resourceTemplates", func(v *view) []json.RawMessage { return v.templates })
	case "tools/call":
		return s.callTool(ctx, m)
	case "prompts/get":
		return s.getPrompt(ctx, m.Params)
	case "resources/read", "resources/subscribe", "resources/unsubscribe":
		return s.resourceRequest(ctx, m.Method, m.Params)
	case "completion/complete":
		return s.complete(ctx, m.Params)
	case "logging/setLevel":
		return s.setLevel(ctx, m.Params)
	}
	return nil, newRPCError(codeMethodNotFound, "method %q is not supported by sigil-hub", m.Method)
}

// initialize answers the handshake with the hub's merged capabilities.
func (s *session) initialize(params json.RawMessage) (json.RawMessage, *rpcError) {
	var p struct {
		ProtocolVersion string          `json:"protocolVersion"`
		Capabilities    json.RawMessage `json:"capabilities"`
		ClientInfo      struct {
			Name string `json:"name"`
		} `json:"clientInfo"`
	}
	if err := json.Unmarshal(params, &p); err != nil {
		return nil, newRPCError(codeInvalidParams, "invalid initialize params: %v", err)
	}
	version := supportedVersions[0]
	for _, v := range supportedVersions {
		if v == p.ProtocolVersion {
			version = v
		}
	}
	if p.ClientInfo.Name != "" {
		name := p.ClientInfo.Name
		s.agentID.Store(&name)
	}
	if p.Capabilities != nil {
		s.clientCaps.Store(&p.Capabilities)
	}
	s.initialized.Store(true)
	result := map[string]any{
		"protocolVersion": version,
		"capabilities": map[string]any{
			"tools":       map[string]any{"listChanged": true},
			"prompts":     map[string]any{"listChanged": true},
			"resources":   map[string]any{"subscribe": true, "listChanged": true},
			"logging":     map[string]any{},
			"completions": map[string]any{},
		},
		"serverInfo": map[string]any{"name": "sigil-hub", "version": s.h.opts.Version},
	}
	if ups := s.h.fleet.Load().ups; s.h.opts.Single && len(ups) == 1 {
		if ins := ups[0].conn.Snapshot().Instructions; ins != "" {
			result["instructions"] = ins
		}
	}
	b, err := marshalNoEscape(result)
	if err != nil {
		return nil, newRPCError(codeInternal, "internal error: %v", err)
	}
	return b, nil
}

// list serves one paginated merged list.
func (s *session) list(ctx context.Context, params json.RawMessage, key string, items func(*view) []json.RawMessage) (json.RawMessage, error) {
	var p struct {
		Cursor string `json:"cursor"`
	}
	if params != nil {
		if err := json.Unmarshal(params, &p); err != nil {
			return nil, newRPCError(codeInvalidParams, "invalid params: %v", err)
		}
	}
	s.h.waitStartup(ctx)
	s.h.refreshPins()
	// Marked before the view is read: a change published after this read
	// is notified to this session (publish swaps the view, then reads the
	// marks).
	s.listed.Or(listKind(key))
	all := items(s.h.view.Load())
	pg, next, err := page(all, p.Cursor, s.h.pageSize)
	if err != nil {
		return nil, newRPCError(codeInvalidParams, "%v", err)
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
