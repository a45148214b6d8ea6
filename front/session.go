package front

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sigilcore/sigil-hub/internal/strictjson"
)

// Limits of one client session.
const (
	maxClientMessage = 4 << 20 // bytes per message (docs/faults.md case 11)
	maxInFlight      = 1024    // concurrent requests per session
)

// SupportedVersions are the protocol versions the fronts speak with
// clients (initialize handshake, MCP-Protocol-Version), newest first.
var SupportedVersions = []string{"2025-11-25", "2025-06-18", "2025-03-26", "2024-11-05"}

// ErrNoResponse ends a request without an answer: the client cancelled it
// (MCP: the receiver SHOULD NOT respond to a cancelled request).
var ErrNoResponse = errors.New("no response")

// Handler is what serves the requests the fronts read: package hub's
// pipeline. Its methods are called concurrently, from every session.
type Handler interface {
	// Register makes s a live session once its client initialized: from
	// then on the handler may send it messages of its own (list_changed,
	// logs, resource updates, server→client requests) until the returned
	// func is called.
	Register(s Session) (unregister func())
	// Handle answers one request of s: initialize (after the front read
	// the client's context into req.Client), then any request but ping.
	// It returns a raw result, or an error: an *Error for the client,
	// ErrNoResponse, or any other error (answered as internal).
	Handle(ctx context.Context, s Session, req *Request) (json.RawMessage, error)
	// Notify handles a client notification the front does not handle
	// itself (it handles initialized and cancelled).
	Notify(s Session, req *Request)
	// Rejected is told about a message the edge refused; req holds what
	// could be read of it (its method may be empty).
	Rejected(s Session, req *Request, err *Error)
	// CallTimeout is the budget of one tools/call, counted from its receipt
	// (docs/protocol.md#limits).
	CallTimeout() time.Duration
}

// Session is one client session as the Handler sees it. Safe for
// concurrent use.
type Session interface {
	// ID is "stdio", or the HTTP session's Mcp-Session-Id.
	ID() string
	// Label names who is connected: the HTTP token holder ("anonymous"
	// without tokens), "" on stdio.
	Label() string
	// Client is the context the client declared at initialize, nil before.
	Client() *ClientContext
	// Send delivers a message the handler built: rel is the raw id of the
	// client request it belongs to (progress), or nil.
	Send(rel json.RawMessage, msg []byte)
	// Request sends a server→client request on behalf of the client request
	// rel (or nil) and waits for the answer as long as ctx allows (no fixed
	// cap: a person may take minutes to answer an elicitation); when ctx
	// ends first, the client is told the request is cancelled. A client's
	// error answer is returned as an *Error.
	Request(ctx context.Context, rel json.RawMessage, method string, params json.RawMessage) (json.RawMessage, error)
}

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

// RelatedID returns the raw id of the client request a context serves, or
// nil.
func RelatedID(ctx context.Context) json.RawMessage {
	if r, _ := ctx.Value(reqKey).(*inflight); r != nil {
		return r.rel
	}
	return nil
}

// ClientCancelled reports whether the request ctx serves was cancelled by
// the client (as opposed to its budget running out or the session ending).
func ClientCancelled(ctx context.Context) bool {
	r, _ := ctx.Value(reqKey).(*inflight)
	return r != nil && r.cancelled.Load()
}

// session is one client connection.
type session struct {
	h     Handler
	out   outbox
	id    string // session id (HTTP) or "stdio"
	label string // who is connected, for logs (HTTP token name)
	log   *slog.Logger

	client     atomic.Pointer[ClientContext] // set by initialize
	unregister func()                        // set by the first initialize; guarded by mu

	mu       sync.Mutex               // guards the fields below
	inflight map[string]*inflight     // client request id (raw) → the request
	pending  map[string]chan *message // hub→client request id → answer
	reqSeq   uint64                   // hub→client request ids

	// idle hands a request to a worker goroutine waiting for one
	// (unbuffered: a send succeeds only when a worker is idle). nil (a
	// zero session in tests) starts a worker for every request.
	idle chan func()
}

func newSession(h Handler, out outbox, id, label string, log *slog.Logger) *session {
	return &session{
		h:        h,
		out:      out,
		id:       id,
		label:    label,
		log:      log,
		inflight: make(map[string]*inflight),
		pending:  make(map[string]chan *message),
		idle:     make(chan func()),
	}
}

func (s *session) ID() string             { return s.id }
func (s *session) Label() string          { return s.label }
func (s *session) Client() *ClientContext { return s.client.Load() }

func (s *session) Send(rel json.RawMessage, msg []byte) { s.out.deliver(rel, msg, false) }

// close unregisters the session from the handler (if it initialized).
func (s *session) close() {
	s.mu.Lock()
	unregister := s.unregister
	s.unregister = func() {}
	s.mu.Unlock()
	if unregister != nil {
		unregister()
	}
}

// ServeStdio serves one client session over r/w (newline-delimited
// JSON-RPC, the MCP stdio transport) until r reaches EOF or ctx ends. It
// returns after every request of the session has finished. log may be nil.
func ServeStdio(ctx context.Context, h Handler, r io.Reader, w io.Writer, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	lw := &lineWriter{w: w}
	out := &stdioOutbox{w: lw, log: func(err error) { log.Debug("write to client failed", "err", err) }}
	return newSession(h, out, "stdio", "", log).serve(ctx, r)
}

// serve reads client messages until EOF or ctx ends, then cancels what is
// still running and waits for it.
func (s *session) serve(ctx context.Context, r io.Reader) error {
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
		s.close()
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
				s.Send(nil, encodeError(nullID, Errorf(CodeParseError, "parse error: message too large (limit %d bytes)", maxClientMessage)))
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
		s.h.Rejected(s, &m.Request, rerr)
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
		s.notification(&m.Request)
	case m.Method == "initialize":
		// Handled inline so that requests pipelined right behind it (without
		// waiting for its answer) see an initialized session.
		result, err := s.initialize(ctx, &m.Request)
		if err != nil {
			s.out.deliver(m.ID, encodeError(m.ID, err), true)
			return
		}
		s.out.deliver(m.ID, encodeResult(m.ID, result), true)
	case m.isRequest():
		var fs Session = s
		if isModern(&m.Request, "") {
			c, rerr := modernClient(&m.Request, nil)
			if rerr != nil {
				s.h.Rejected(s, &m.Request, rerr)
				s.out.deliver(m.ID, encodeError(m.ID, rerr), true)
				return
			}
			m.Client = c
			fs = &requestSession{session: s, client: c}
		} else {
			m.Client = s.client.Load()
		}
		key := string(m.ID)
		s.mu.Lock()
		if _, dup := s.inflight[key]; dup {
			s.mu.Unlock()
			s.out.deliver(nil, encodeError(m.ID, Errorf(CodeInvalidRequest, "duplicate request id %s: an earlier request with this id is still running", key)), false)
			return
		}
		if len(s.inflight) >= maxInFlight {
			s.mu.Unlock()
			s.out.deliver(m.ID, encodeError(m.ID, Errorf(CodeInternal, "too many requests in flight (limit %d): wait for some to finish", maxInFlight)), true)
			return
		}
		r := &inflight{rel: m.ID}
		var rctx context.Context
		if m.Method == "tools/call" {
			// The call budget (docs/protocol.md#limits) runs from receipt:
			// one deadline for authorization, holding and the upstream call.
			rctx, r.cancel = context.WithTimeout(ctx, s.h.CallTimeout())
		} else {
			rctx, r.cancel = context.WithCancel(ctx)
		}
		rctx = context.WithValue(rctx, reqKey, r)
		s.inflight[key] = r
		s.mu.Unlock()
		s.run(ctx, wg, func() {
			result, err := s.request(rctx, fs, &m.Request)
			// Release the id before answering: a client may reuse it as soon
			// as it reads the response.
			s.mu.Lock()
			delete(s.inflight, key)
			s.mu.Unlock()
			r.cancel()
			switch {
			case errors.Is(err, ErrNoResponse):
				s.out.deliver(m.ID, nil, true)
			case err != nil:
				var re *Error
				if !errors.As(err, &re) {
					re = Errorf(CodeInternal, "internal error: %v", err)
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

// notification handles a client notification: cancellation here, the rest
// by the handler.
func (s *session) notification(req *Request) {
	switch req.Method {
	case "notifications/initialized":
	case "notifications/cancelled":
		var p struct {
			RequestID json.RawMessage `json:"requestId"`
		}
		if json.Unmarshal(req.Params, &p) == nil && p.RequestID != nil {
			s.mu.Lock()
			r := s.inflight[string(p.RequestID)]
			s.mu.Unlock()
			if r != nil {
				r.cancelled.Store(true)
				r.cancel()
			}
		}
	default:
		req.Client = s.client.Load()
		s.h.Notify(s, req)
	}
}

// request answers one client request: a raw result, or an error (an
// *Error, or ErrNoResponse).
func (s *session) request(ctx context.Context, fs Session, req *Request) (json.RawMessage, error) {
	if req.Client != nil && req.Client.Modern {
		return s.h.Handle(ctx, fs, req)
	}
	if req.Method == "ping" {
		return json.RawMessage(`{}`), nil
	}
	if req.Client == nil {
		return nil, Errorf(CodeInvalidRequest, "session not initialized: send initialize first")
	}
	res, err := s.h.Handle(ctx, s, req)
	if err == nil && req.Method == "logging/setLevel" {
		s.setLogLevel(req.Params)
	}
	return res, err
}

// setLogLevel records the level a logging/setLevel asked for in the
// session's client context (replaced whole: requests hold the old one).
func (s *session) setLogLevel(params json.RawMessage) {
	var p struct {
		Level string `json:"level"`
	}
	if json.Unmarshal(params, &p) != nil || p.Level == "" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if old := s.client.Load(); old != nil {
		c := *old
		c.LogLevel = p.Level
		s.client.Store(&c)
	}
}

// initialize reads the client's context from the handshake, makes the
// session live and answers with the handler's result.
func (s *session) initialize(ctx context.Context, req *Request) (json.RawMessage, *Error) {
	var p struct {
		ProtocolVersion string          `json:"protocolVersion"`
		Capabilities    json.RawMessage `json:"capabilities"`
		ClientInfo      struct {
			Name    string          `json:"name"`
			Version json.RawMessage `json:"version"`
		} `json:"clientInfo"`
	}
	if err := json.Unmarshal(req.Params, &p); err != nil {
		return nil, Errorf(CodeInvalidParams, "invalid initialize params: %v", err)
	}
	c := &ClientContext{ProtocolVersion: SupportedVersions[0], Capabilities: p.Capabilities, Info: ClientInfo{Name: p.ClientInfo.Name}}
	for _, v := range SupportedVersions {
		if v == p.ProtocolVersion {
			c.ProtocolVersion = v
		}
	}
	c.Info.Version, _ = strictjson.DecodeString(p.ClientInfo.Version)
	if c.Capabilities != nil && string(c.Capabilities) == "null" {
		c.Capabilities = nil
	}
	s.mu.Lock()
	if old := s.client.Load(); old != nil {
		c.LogLevel = old.LogLevel
	}
	s.client.Store(c)
	first := s.unregister == nil
	s.mu.Unlock()
	if first {
		unregister := s.h.Register(s)
		s.mu.Lock()
		if s.unregister == nil {
			s.unregister = unregister
			unregister = nil
		}
		s.mu.Unlock()
		if unregister != nil { // closed meanwhile
			unregister()
		}
	}
	r := *req
	r.Client = c
	result, err := s.h.Handle(ctx, s, &r)
	if err != nil {
		var re *Error
		if !errors.As(err, &re) {
			re = Errorf(CodeInternal, "internal error: %v", err)
		}
		return nil, re
	}
	return result, nil
}

// Request sends a server→client request and waits for its answer (Session).
func (s *session) Request(ctx context.Context, rel json.RawMessage, method string, params json.RawMessage) (json.RawMessage, error) {
	s.mu.Lock()
	s.reqSeq++
	id := json.RawMessage(strictjson.AppendString(nil, "sigil-hub-"+strconv.FormatUint(s.reqSeq, 10)))
	ch := make(chan *message, 1)
	s.pending[string(id)] = ch
	s.mu.Unlock()
	s.Send(rel, encodeRequest(id, method, params))
	select {
	case m := <-ch:
		if m.Error != nil {
			var e struct {
				Code    int             `json:"code"`
				Message string          `json:"message"`
				Data    json.RawMessage `json:"data"`
			}
			if err := json.Unmarshal(m.Error, &e); err != nil {
				return nil, &Error{Code: CodeInternal, Message: "the client answered with an invalid error"}
			}
			out := &Error{Code: e.Code, Message: e.Message}
			if e.Data != nil {
				out.Data = e.Data
			}
			return nil, out
		}
		return m.Result, nil
	case <-ctx.Done():
		s.mu.Lock()
		delete(s.pending, string(id))
		s.mu.Unlock()
		p, _ := MarshalNoEscape(map[string]any{"requestId": id, "reason": "the upstream no longer needs the answer"})
		s.Send(rel, EncodeNotification("notifications/cancelled", p))
		return nil, ctx.Err()
	}
}
