package upstreams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// Kinds of list, as bits for pending re-lists.
const (
	kindTools uint32 = 1 << iota
	kindPrompts
	kindResources
	kindTemplates
)

// notificationQueue bounds the per-session queue between the transport's read
// loop and OnNotification. When full, notifications are dropped (logged):
// blocking would stall every response from the upstream.
const notificationQueue = 1024

// cancelTimeout bounds sending notifications/cancelled after a caller gave up.
const cancelTimeout = 5 * time.Second

// session is one live connection (one child process, or one remote session).
// It is created by connect, served and closed by the supervisor.
type session struct {
	u          *Upstream
	t          transport.Interface
	proc       *process     // stdio only
	httpClient *http.Client // remote only
	lineFramed bool         // stdio: params must be one line

	lost     chan struct{} // closed once the connection is gone
	lostOnce sync.Once
	lostErr  error // written before lost is closed

	quit   chan struct{} // closed by close: workers stop
	notes  chan mcp.JSONRPCNotification
	budget budget // notifications passed on per second

	// Notification ordering: a response must not overtake the notifications
	// the upstream sent before it (progress first, then the result). queued
	// counts notifications put on notes (read loop); handled, guarded by
	// handledMu, counts those given to OnNotification, and handledWake is
	// closed and replaced at each step.
	queued      atomic.Uint64
	handledMu   sync.Mutex
	handled     uint64
	handledWake chan struct{}
	// relist is signalled (cap 1) when list_changed arrives; pending holds
	// the kinds to re-list.
	relist  chan struct{}
	pending atomic.Uint32

	bgMu     sync.Mutex
	bgClosed bool // guarded by bgMu: no new background goroutines
	bg       sync.WaitGroup

	// initialize results, written by handshake before the session is shared.
	init struct {
		protocolVersion string
		serverInfo      json.RawMessage
		capabilities    json.RawMessage
		instructions    string
		tools, prompts  bool
		resources       bool
	}
}

func newSession(u *Upstream) *session {
	return &session{
		u:     u,
		lost:  make(chan struct{}),
		quit:  make(chan struct{}),
		notes: make(chan mcp.JSONRPCNotification, notificationQueue),

		handledWake: make(chan struct{}),
		relist:      make(chan struct{}, 1),
	}
}

// markLost records that the connection is gone; the first error wins.
func (s *session) markLost(err error) {
	s.lostOnce.Do(func() {
		s.lostErr = err
		close(s.lost)
	})
}

// refused returns the redirect or cross-origin refusal the session was
// lost to, or nil.
func (s *session) refused() error {
	if !s.isLost() {
		return nil
	}
	return refusal(s.lostErr)
}

func (s *session) isLost() bool {
	select {
	case <-s.lost:
		return true
	default:
		return false
	}
}

// goBG runs f on a goroutine joined by close; it reports false (and does not
// run f) once close has begun.
func (s *session) goBG(f func()) bool {
	s.bgMu.Lock()
	defer s.bgMu.Unlock()
	if s.bgClosed {
		return false
	}
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		f()
	}()
	return true
}

// attach installs the handlers on t; call before t.Start.
func (s *session) attach(t transport.Interface) {
	s.t = t
	t.SetNotificationHandler(s.onNotification)
	if bt, ok := t.(transport.BidirectionalInterface); ok {
		bt.SetRequestHandler(s.onRequest)
	}
	s.goBG(s.dispatchNotifications)
}

// close tears the session down: in-flight requests fail at once, the child
// (if any) is stopped in stages, and every background goroutine is joined.
func (s *session) close() {
	s.markLost(errors.New("connection closed"))
	s.bgMu.Lock()
	s.bgClosed = true
	s.bgMu.Unlock()
	if s.t != nil {
		_ = s.t.Close() // fails in-flight requests; closes a child's stdin
	}
	if s.proc != nil {
		s.proc.stop(s.u.tun.stopGrace, s.u.tun.stopTerm, s.u.log)
	}
	if s.httpClient != nil {
		s.httpClient.CloseIdleConnections()
	}
	close(s.quit)
	s.bg.Wait()
	s.budget.flush(s.u.log)
}

// request sends one request with a fresh id and params verbatim.
func (s *session) request(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	if s.isLost() { // not sent; lostErr is set before lost is closed
		return nil, fmt.Errorf("%w: connection lost: %v", ErrUnavailable, s.lostErr)
	}
	id := s.u.ids.Add(1)
	req := transport.JSONRPCRequest{JSONRPC: mcp.JSONRPC_VERSION, ID: mcp.NewRequestId(id), Method: method}
	if len(params) > 0 {
		if s.lineFramed {
			params = compactLine(params)
		}
		tok, release := s.u.raw.add(params)
		defer release()
		req.Params = json.RawMessage(tok)
	}
	resp, err := s.t.SendRequest(ctx, req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			s.sendCancel(ctx, id, ctxErr)
			return nil, ctxErr
		}
		return nil, s.classify(err)
	}
	s.awaitNotifications(ctx, s.queued.Load())
	if resp == nil {
		return nil, fmt.Errorf("%w: no response", ErrLost)
	}
	if resp.Error != nil && len(resp.Result) > 0 {
		// A response carrying both is malformed (JSON-RPC 2.0 §5): neither
		// part is trusted.
		return nil, fmt.Errorf("%w: response has both result and error", ErrInvalidResponse)
	}
	if resp.Error != nil {
		rpc := &RPCError{Code: resp.Error.Code, Message: resp.Error.Message}
		if resp.Error.Data != nil {
			if b, err := json.Marshal(resp.Error.Data); err == nil {
				rpc.Data = b
			}
		}
		return nil, rpc
	}
	if len(resp.Result) == 0 {
		return json.RawMessage(`{}`), nil
	}
	return resp.Result, nil
}

// classify maps a transport failure (the caller's ctx still alive) to
// ErrUnavailable (certainly not sent) or ErrLost, and marks the session lost
// when the failure means the connection is gone.
func (s *session) classify(err error) error {
	var op *net.OpError
	if r := refusal(err); r != nil {
		// A redirect, or a request for another origin: the origin guard
		// refused it (and marked the session lost); the error says why
		// and what to do, without the transport's wrapping.
		s.markLost(r)
		return r
	}
	switch {
	case errors.Is(err, transport.ErrAuthorizationRequired), errors.Is(err, transport.ErrOAuthAuthorizationRequired):
		return fmt.Errorf("%w (HTTP 401): %w", ErrAuth, err) // the typed cause stays in the chain (OAuth)
	case strings.Contains(err.Error(), "request failed with status 403"):
		return fmt.Errorf("%w (HTTP 403): %w", ErrAuth, err)
	case httpStatus(err) != 0:
		return &HTTPStatusError{Status: httpStatus(err)}
	case errors.As(err, &op) && op.Op == "dial":
		s.markLost(err)
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	case errors.Is(err, transport.ErrTransportClosed), errors.Is(err, transport.ErrSessionTerminated):
		s.markLost(err)
		if s.lostErr != nil && errors.Is(s.lostErr, ErrProtocol) {
			return fmt.Errorf("%w: %w", ErrLost, s.lostErr)
		}
	}
	return fmt.Errorf("%w: %w", ErrLost, err)
}

// httpStatus is the status of mcp-go's "request failed with status N: …"
// error (its only form for an HTTP error answer), or 0.
func httpStatus(err error) int {
	_, rest, ok := strings.Cut(err.Error(), "request failed with status ")
	if !ok || len(rest) < 3 {
		return 0
	}
	n, err2 := strconv.Atoi(rest[:3])
	if err2 != nil || n < 400 || n > 599 {
		return 0
	}
	return n
}

// sendCancel tells the upstream that request id is abandoned, on a joined
// background goroutine so the caller is not held (MCP cancellation).
func (s *session) sendCancel(ctx context.Context, id int64, cause error) {
	s.goBG(func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cancelTimeout)
		defer cancel()
		n := mcp.JSONRPCNotification{JSONRPC: mcp.JSONRPC_VERSION, Notification: mcp.Notification{
			Method: "notifications/cancelled",
			Params: mcp.NotificationParams{AdditionalFields: map[string]any{"requestId": id, "reason": cause.Error()}},
		}}
		if err := s.t.SendNotification(cctx, n); err != nil {
			s.u.log.Debug("send notifications/cancelled failed", "request_id", id, "err", err)
		}
	})
}

// notify sends one notification with params verbatim.
func (s *session) notify(ctx context.Context, method string, params json.RawMessage) error {
	if s.isLost() {
		return ErrUnavailable
	}
	n := mcp.JSONRPCNotification{JSONRPC: mcp.JSONRPC_VERSION, Notification: mcp.Notification{Method: method}}
	if len(params) > 0 {
		if s.lineFramed {
			params = compactLine(params)
		}
		tok, release := s.u.raw.add(params)
		defer release()
		key := string(tok[1 : len(tok)-1])
		n.Params = mcp.NotificationParams{AdditionalFields: map[string]any{key: true}}
	}
	if err := s.t.SendNotification(ctx, n); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return s.classify(err)
	}
	return nil
}

// onNotification runs on the transport's read loop: it must not block.
func (s *session) onNotification(n mcp.JSONRPCNotification) {
	var k uint32
	switch n.Method {
	case "notifications/tools/list_changed":
		k = kindTools
	case "notifications/prompts/list_changed":
		k = kindPrompts
	case "notifications/resources/list_changed":
		k = kindResources | kindTemplates
	}
	if k != 0 {
		s.pending.Or(k)
		select {
		case s.relist <- struct{}{}:
		default:
		}
		return
	}
	now := time.Now()
	if !s.budget.take(now) {
		s.budget.drop(s.u.log, now, "over budget")
		return
	}
	select {
	case s.notes <- n:
		s.queued.Add(1)
	default:
		s.budget.drop(s.u.log, now, "queue full")
	}
}

// dispatchNotifications hands queued notifications to OnNotification.
func (s *session) dispatchNotifications() {
	for {
		select {
		case <-s.quit:
			return
		case n := <-s.notes:
			s.dispatchOne(n)
			s.handledMu.Lock()
			s.handled++
			close(s.handledWake)
			s.handledWake = make(chan struct{})
			s.handledMu.Unlock()
		}
	}
}

// awaitNotifications waits (bounded by ctx and the session's life) until
// the first n queued notifications were handed to OnNotification.
func (s *session) awaitNotifications(ctx context.Context, n uint64) {
	for {
		s.handledMu.Lock()
		done, wake := s.handled >= n, s.handledWake
		s.handledMu.Unlock()
		if done {
			return
		}
		select {
		case <-wake:
		case <-ctx.Done():
			return
		case <-s.quit:
			return
		}
	}
}

// dispatchOne hands one notification to OnNotification.
func (s *session) dispatchOne(n mcp.JSONRPCNotification) {
	if s.u.spec.OnNotification == nil {
		return
	}
	p := n.Params
	if len(p.Meta) == 0 {
		p.Meta = nil
	}
	var raw json.RawMessage
	if p.Meta != nil || len(p.AdditionalFields) > 0 {
		b, err := json.Marshal(p)
		if err != nil {
			s.u.log.Warn("re-encode notification params", "method", n.Method, "err", err)
			return
		}
		raw = b
	}
	s.u.spec.OnNotification(n.Method, raw)
}

// onRequest answers a server→client request.
func (s *session) onRequest(ctx context.Context, req transport.JSONRPCRequest) (*transport.JSONRPCResponse, error) {
	if req.Method == "ping" {
		return transport.NewJSONRPCResultResponse(req.ID, json.RawMessage(`{}`)), nil
	}
	h := s.u.spec.OnRequest
	if h == nil {
		return transport.NewJSONRPCErrorResponse(req.ID, mcp.METHOD_NOT_FOUND, "method not found: "+req.Method, nil), nil
	}
	var params json.RawMessage
	if req.Params != nil {
		b, err := json.Marshal(req.Params)
		if err != nil {
			return transport.NewJSONRPCErrorResponse(req.ID, mcp.INVALID_PARAMS, "invalid params", nil), nil
		}
		params = b
	}
	// The request may wait for a person (an elicitation): it is bounded by
	// this connection's life, not by the transport's 30 s (answerRoundTripper).
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	go func() {
		select {
		case <-s.quit:
			cancel()
		case <-hctx.Done():
		}
	}()
	res, err := h(hctx, req.Method, params)
	if err != nil {
		var rpc *RPCError
		if errors.As(err, &rpc) {
			var data any
			if len(rpc.Data) > 0 {
				data = rpc.Data
			}
			return transport.NewJSONRPCErrorResponse(req.ID, rpc.Code, rpc.Message, data), nil
		}
		return transport.NewJSONRPCErrorResponse(req.ID, mcp.INTERNAL_ERROR, err.Error(), nil), nil
	}
	if len(res) == 0 {
		res = json.RawMessage(`{}`)
	}
	return transport.NewJSONRPCResultResponse(req.ID, res), nil
}

// handshake sends initialize (pinned version) and notifications/initialized.
func (s *session) handshake(ctx context.Context) error {
	spec := &s.u.spec
	params, err := json.Marshal(map[string]any{
		"protocolVersion": protocolVersion,
		"capabilities":    spec.Capabilities,
		"clientInfo":      map[string]string{"name": spec.ClientName, "version": spec.ClientVersion},
	})
	if err != nil {
		return fmt.Errorf("initialize: %w", err)
	}
	res, err := s.request(ctx, "initialize", params)
	if err != nil {
		return fmt.Errorf("initialize: %w", err)
	}
	var r struct {
		ProtocolVersion string          `json:"protocolVersion"`
		Capabilities    json.RawMessage `json:"capabilities"`
		ServerInfo      json.RawMessage `json:"serverInfo"`
		Instructions    string          `json:"instructions"`
	}
	if err := json.Unmarshal(res, &r); err != nil {
		return fmt.Errorf("initialize: decode result: %w", err)
	}
	if r.ProtocolVersion == "" {
		return errors.New("initialize: result has no protocolVersion")
	}
	var caps struct {
		Tools, Prompts, Resources json.RawMessage
	}
	if len(r.Capabilities) > 0 {
		if err := json.Unmarshal(r.Capabilities, &caps); err != nil {
			return fmt.Errorf("initialize: decode capabilities: %w", err)
		}
	}
	present := func(m json.RawMessage) bool { return len(m) > 0 && string(m) != "null" }
	s.init.protocolVersion = r.ProtocolVersion
	s.init.serverInfo = r.ServerInfo
	s.init.capabilities = r.Capabilities
	s.init.instructions = r.Instructions
	s.init.tools, s.init.prompts, s.init.resources = present(caps.Tools), present(caps.Prompts), present(caps.Resources)
	if hc, ok := s.t.(transport.HTTPConnection); ok {
		hc.SetProtocolVersion(r.ProtocolVersion)
	}
	if err := s.notify(ctx, "notifications/initialized", nil); err != nil {
		return fmt.Errorf("notifications/initialized: %w", err)
	}
	return nil
}

// lists holds one listing result; a nil slice means "not listed".
type lists struct {
	tools, prompts, resources, templates []Item
}

// listKinds lists the kinds in k that the server advertises.
func (s *session) listKinds(ctx context.Context, k uint32) (lists, error) {
	var l lists
	var err error
	if k&kindTools != 0 && s.init.tools {
		if l.tools, err = s.listAll(ctx, "tools/list", "tools", "name"); err != nil {
			return l, err
		}
	}
	if k&kindPrompts != 0 && s.init.prompts {
		if l.prompts, err = s.listAll(ctx, "prompts/list", "prompts", "name"); err != nil {
			return l, err
		}
	}
	if k&kindResources != 0 && s.init.resources {
		if l.resources, err = s.listAll(ctx, "resources/list", "resources", "uri"); err != nil {
			return l, err
		}
	}
	if k&kindTemplates != 0 && s.init.resources {
		l.templates, err = s.listAll(ctx, "resources/templates/list", "resourceTemplates", "uriTemplate")
		var rpc *RPCError
		if errors.As(err, &rpc) && rpc.Code == mcp.METHOD_NOT_FOUND {
			l.templates, err = []Item{}, nil
		}
		if err != nil {
			return l, err
		}
	}
	return l, nil
}

// maxPages bounds pagination against a server that never stops.
const maxPages = 10000

// listAll follows nextCursor and returns the items as raw bytes.
func (s *session) listAll(ctx context.Context, method, key, nameField string) ([]Item, error) {
	items := []Item{}
	seen := map[string]bool{}
	cursor := ""
	for page := 0; ; page++ {
		if page >= maxPages {
			return nil, fmt.Errorf("%s: more than %d pages", method, maxPages)
		}
		var params json.RawMessage
		if cursor != "" {
			params, _ = json.Marshal(map[string]string{"cursor": cursor})
		}
		res, err := s.request(ctx, method, params)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", method, err)
		}
		var r map[string]json.RawMessage
		if err := json.Unmarshal(res, &r); err != nil {
			return nil, fmt.Errorf("%s: decode result: %w", method, err)
		}
		var raws []json.RawMessage
		if v, ok := r[key]; ok && string(v) != "null" {
			if err := json.Unmarshal(v, &raws); err != nil {
				return nil, fmt.Errorf("%s: decode %s: %w", method, key, err)
			}
		}
		for i, raw := range raws {
			var fields map[string]json.RawMessage
			if err := json.Unmarshal(raw, &fields); err != nil {
				return nil, fmt.Errorf("%s: item %d: %w", method, i, err)
			}
			var name string
			if err := json.Unmarshal(fields[nameField], &name); err != nil || name == "" {
				return nil, fmt.Errorf("%s: item %d has no %s", method, i, nameField)
			}
			items = append(items, Item{Name: name, Raw: raw})
		}
		cursor = ""
		if v, ok := r["nextCursor"]; ok && string(v) != "null" {
			if err := json.Unmarshal(v, &cursor); err != nil {
				return nil, fmt.Errorf("%s: decode nextCursor: %w", method, err)
			}
		}
		if cursor == "" {
			return items, nil
		}
		if seen[cursor] {
			return nil, fmt.Errorf("%s: repeated cursor %q", method, cursor)
		}
		seen[cursor] = true
	}
}

// relistLoop re-lists after list_changed: one re-list per burst (it waits
// for a quiet debounce window), then one snapshot swap and at most one
// OnChange.
func (s *session) relistLoop(ctx context.Context) {
	for {
		select {
		case <-s.quit:
			return
		case <-s.relist:
		}
		// Debounce: keep waiting while signals keep arriving.
		t := time.NewTimer(s.u.tun.debounce)
	quiet:
		for {
			select {
			case <-s.quit:
				t.Stop()
				return
			case <-s.relist:
				t.Reset(s.u.tun.debounce)
			case <-t.C:
				break quiet
			}
		}
		k := s.pending.Swap(0)
		if k == 0 {
			continue
		}
		lctx, cancel := context.WithTimeout(ctx, s.u.spec.InitTimeout)
		l, err := s.listKinds(lctx, k)
		cancel()
		if err != nil {
			if !s.isLost() {
				s.u.log.Warn("re-list after list_changed failed", "err", err)
			}
			continue
		}
		s.u.update(func(snap *Snapshot) bool {
			if s.u.sess.Load() != s {
				return false // superseded
			}
			changed := false
			set := func(dst *[]Item, src []Item, kind uint32) {
				if k&kind == 0 || src == nil || itemsEqual(*dst, src) {
					return
				}
				*dst = src
				changed = true
			}
			set(&snap.Tools, l.tools, kindTools)
			set(&snap.Prompts, l.prompts, kindPrompts)
			set(&snap.Resources, l.resources, kindResources)
			set(&snap.Templates, l.templates, kindTemplates)
			return changed
		})
	}
}

func itemsEqual(a, b []Item) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].Name != b[i].Name || string(a[i].Raw) != string(b[i].Raw) {
			return false
		}
	}
	return true
}

// pingLoop checks a remote upstream's liveness; a transport failure marks
// the session lost (an error answer still proves it alive).
func (s *session) pingLoop(ctx context.Context) {
	if s.u.tun.pingInterval <= 0 {
		return
	}
	t := time.NewTicker(s.u.tun.pingInterval)
	defer t.Stop()
	for {
		select {
		case <-s.quit:
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, s.u.tun.pingInterval)
		_, err := s.request(pctx, "ping", nil)
		cancel()
		var rpc *RPCError
		if err != nil && !errors.As(err, &rpc) && ctx.Err() == nil && !s.isLost() {
			s.u.log.Warn("ping failed; reconnecting", "err", err)
			s.markLost(fmt.Errorf("ping: %w", err))
		}
	}
}
