package upstreams

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Kinds of list, as bits for pending re-lists.
const (
	kindTools uint32 = 1 << iota
	kindPrompts
	kindResources
	kindTemplates
)

// listings are the kinds of list in the order of their bits (and of
// Snapshot.lists): the method that lists one, the result member holding its
// items, and the item member that names an item.
var listings = [...]struct{ method, key, nameField string }{
	{"tools/list", "tools", "name"},
	{"prompts/list", "prompts", "name"},
	{"resources/list", "resources", "uri"},
	{"resources/templates/list", "resourceTemplates", "uriTemplate"},
}

// notificationQueue bounds the per-session queue between the transport's read
// loop and OnNotification. When full, notifications are dropped (logged):
// blocking would stall every response from the upstream.
const notificationQueue = 1024

// session is one live connection (one child process, or one remote session)
// and what the hub keeps of it: the initialize results, the notification
// queue, re-listing and liveness. It talks to the server through a conn,
// whatever the transport, and is the conn's inbound. It is created by
// connect, served and closed by the supervisor.
type session struct {
	u    *Upstream
	c    conn
	proc *process // stdio only

	// lost ends once the connection is gone (markLost); its cause says why,
	// the first error winning.
	lost     context.Context
	markLost context.CancelCauseFunc

	quit       context.Context // ended by close: workers stop
	endWorkers context.CancelFunc
	notes      chan note
	budget     budget // notifications passed on per second

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

	listen listenState // modern only (modern.go)

	// initialize results (or a modern server's DiscoverResult: era.go),
	// written by handshake or probe before the session is shared.
	init struct {
		protocolVersion          string
		serverInfo, capabilities json.RawMessage
		instructions             string
		// has and changes are by capability (tools, prompts, resources):
		// the lists the server has, and those it says change (a modern
		// server's listen filter).
		has, changes [3]bool
		// modern: the server speaks 2026-07-28 (no initialize, no ping);
		// its capabilities may be unknown (every list is tried).
		modern, unknownCaps bool
	}
}

// note is one queued notification.
type note struct {
	method string
	params json.RawMessage
}

// newSession returns a session whose notification dispatcher runs; give it
// its conn (made with s.wire()) before anything is sent.
func newSession(u *Upstream) *session {
	s := &session{
		u:     u,
		notes: make(chan note, notificationQueue),

		handledWake: make(chan struct{}),
		relist:      make(chan struct{}, 1),
	}
	s.lost, s.markLost = context.WithCancelCause(context.Background())
	s.quit, s.endWorkers = context.WithCancel(context.Background())
	s.goBG(s.dispatchNotifications)
	return s
}

// wire is what the session gives its conn.
func (s *session) wire() wire {
	return wire{in: s, ids: &s.u.ids, bg: s.goBG, log: s.u.log}
}

// abandon closes the session and returns why it failed: the redirect or
// cross-origin refusal it was lost to, if any, else err.
func (s *session) abandon(err error) error {
	s.close()
	if r := refusal(context.Cause(s.lost)); r != nil {
		return r
	}
	return err
}

func (s *session) isLost() bool { return s.lost.Err() != nil }

// goBG runs f on a goroutine joined by close; it reports false (and does not
// run f) once close has begun.
func (s *session) goBG(f func()) bool {
	s.bgMu.Lock()
	defer s.bgMu.Unlock()
	if s.bgClosed {
		return false
	}
	s.bg.Go(f)
	return true
}

// close tears the session down: in-flight requests fail at once, the child
// (if any) is stopped in stages, and every background goroutine is joined.
func (s *session) close() {
	s.markLost(errors.New("connection closed"))
	s.bgMu.Lock()
	s.bgClosed = true
	s.bgMu.Unlock()
	if s.c != nil {
		_ = s.c.close() // fails in-flight requests; closes a child's stdin
	}
	if s.proc != nil {
		s.proc.stop(s.u.tun.stopGrace, s.u.tun.stopTerm, s.u.log)
	}
	s.endWorkers()
	s.bg.Wait()
	s.budget.flush(s.u.log)
}

// request sends one request with params verbatim. A response (a result, or
// an error answer) is returned once the notifications the upstream sent
// before it were handed on.
func (s *session) request(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	if s.isLost() { // not sent
		return nil, fmt.Errorf("%w: connection lost: %v", ErrUnavailable, context.Cause(s.lost))
	}
	if s.init.modern && (method == "resources/subscribe" || method == "resources/unsubscribe") {
		return s.subscribe(ctx, method, params)
	}
	res, err := s.c.call(ctx, method, params)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			return nil, ctxErr
		}
		if _, rpc := errors.AsType[*RPCError](err); !rpc && !errors.Is(err, ErrInvalidResponse) {
			return nil, err // no answer
		}
	}
	s.awaitNotifications(ctx, s.queued.Load())
	return res, err
}

// notify sends one notification with params verbatim.
func (s *session) notify(ctx context.Context, method string, params json.RawMessage) error {
	if s.isLost() {
		return ErrUnavailable
	}
	err := s.c.notify(ctx, method, params)
	if err != nil && ctx.Err() != nil {
		return ctx.Err()
	}
	return err
}

// onNotification runs on the conn's read loop: it must not block.
func (s *session) onNotification(method string, params json.RawMessage) {
	var k uint32
	switch method {
	case "notifications/tools/list_changed":
		k = kindTools
	case "notifications/prompts/list_changed":
		k = kindPrompts
	case "notifications/resources/list_changed":
		k = kindResources | kindTemplates
	case "notifications/subscriptions/acknowledged":
		s.onListenAck(params) // the hub's own listen: nothing for OnNotification
		return
	}
	if k != 0 {
		s.relistSoon(k)
		return
	}
	if s.init.modern && (method == "notifications/resources/updated" || method == "notifications/tasks") {
		params = withoutSubscriptionID(params)
	}
	now := time.Now()
	if !s.budget.take(now) {
		s.budget.drop(s.u.log, now, "over budget")
		return
	}
	select {
	case s.notes <- note{method, params}:
		s.queued.Add(1)
	default:
		s.budget.drop(s.u.log, now, "queue full")
	}
}

// relistSoon adds the kinds k to the pending re-list and wakes relistLoop.
func (s *session) relistSoon(k uint32) {
	s.pending.Or(k)
	select {
	case s.relist <- struct{}{}:
	default:
	}
}

// dispatchNotifications hands queued notifications to OnNotification.
func (s *session) dispatchNotifications() {
	for {
		select {
		case <-s.quit.Done():
			return
		case n := <-s.notes:
			if h := s.u.spec.OnNotification; h != nil {
				h(n.method, n.params)
			}
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
		case <-s.quit.Done():
			return
		}
	}
}

// onRequest answers a server→client request: ping itself, anything else
// with Spec.OnRequest.
func (s *session) onRequest(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	if method == "ping" {
		return json.RawMessage(`{}`), nil
	}
	h := s.u.spec.OnRequest
	if h == nil {
		return nil, &RPCError{Code: codeMethodNotFound, Message: "method not found: " + method}
	}
	// The request may wait for a person (an elicitation): it is bounded by
	// this connection's life, not by a transport's 30 s (postRoundTripper).
	hctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(s.quit, cancel)
	defer stop()
	res, err := h(hctx, method, params)
	if err != nil {
		return nil, err
	}
	if len(res) == 0 {
		res = json.RawMessage(`{}`)
	}
	return res, nil
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
	if err := s.adopt(r.ProtocolVersion, r.ServerInfo, r.Capabilities, r.Instructions); err != nil {
		return fmt.Errorf("initialize: decode capabilities: %w", err)
	}
	if pv, ok := s.c.(interface{ setProtocolVersion(string) }); ok {
		pv.setProtocolVersion(r.ProtocolVersion)
	}
	if err := s.notify(ctx, "notifications/initialized", nil); err != nil {
		return fmt.Errorf("notifications/initialized: %w", err)
	}
	return nil
}

// adopt records what the server says of itself (its initialize result, or
// a modern server's DiscoverResult: era.go) as the session's init: which
// lists it has and which of them it says change, from its capabilities. An
// error says the capabilities are not an object (none are then assumed).
func (s *session) adopt(version string, info, caps json.RawMessage, instructions string) error {
	s.init.protocolVersion, s.init.serverInfo = version, info
	s.init.capabilities, s.init.instructions = caps, instructions
	var c struct {
		Tools, Prompts, Resources json.RawMessage
	}
	var err error
	if len(caps) > 0 {
		err = json.Unmarshal(caps, &c)
	}
	for i, m := range [...]json.RawMessage{c.Tools, c.Prompts, c.Resources} {
		var v struct {
			ListChanged bool `json:"listChanged"`
		}
		s.init.has[i] = len(m) > 0 && string(m) != "null"
		s.init.changes[i] = s.init.has[i] && json.Unmarshal(m, &v) == nil && v.ListChanged
	}
	return err
}

// listKinds lists the kinds in k that the server advertises into the lists
// of a Snapshot (nil: not listed).
func (s *session) listKinds(ctx context.Context, k uint32) (Snapshot, error) {
	var l Snapshot
	for i, dst := range l.lists() {
		bit := uint32(1) << i
		if k&bit == 0 || !s.init.has[min(i, 2)] { // templates need the resources capability
			continue
		}
		items, err := s.listAll(ctx, listings[i].method, listings[i].key, listings[i].nameField)
		if rpc, ok := errors.AsType[*RPCError](err); ok && rpc.Code == codeMethodNotFound {
			switch {
			case bit == kindTemplates:
				items, err = []Item{}, nil
			case s.init.unknownCaps: // a modern server whose capabilities are unknown may lack a list
				items, err = nil, nil
			}
		}
		if err != nil {
			return l, err
		}
		if bit == kindTools && s.init.modern && s.proc == nil && items != nil {
			items = s.withoutBadHeaderTools(items)
		}
		*dst = items
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
		if rt, ok := r["resultType"]; ok && string(rt) != `"complete"` {
			// A list is never input_required (2026-07-28).
			return nil, fmt.Errorf("%s: result type %s, not a list", method, rt)
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
		case <-s.quit.Done():
			return
		case <-s.relist:
		}
		// Debounce: keep waiting while signals keep arriving.
		t := time.NewTimer(s.u.tun.debounce)
	quiet:
		for {
			select {
			case <-s.quit.Done():
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
			for i, dst := range snap.lists() {
				src := *l.lists()[i]
				if k&(uint32(1)<<i) == 0 || src == nil || slices.EqualFunc(*dst, src, sameItem) {
					continue
				}
				*dst = src
				changed = true
			}
			return changed
		})
	}
}

func sameItem(a, b Item) bool { return a.Name == b.Name && bytes.Equal(a.Raw, b.Raw) }

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
		case <-s.quit.Done():
			return
		case <-t.C:
		}
		pctx, cancel := context.WithTimeout(ctx, s.u.tun.pingInterval)
		_, err := s.request(pctx, "ping", nil)
		cancel()
		if _, rpc := errors.AsType[*RPCError](err); err != nil && !rpc && ctx.Err() == nil && !s.isLost() {
			s.u.log.Warn("ping failed; reconnecting", "err", err)
			s.markLost(fmt.Errorf("ping: %w", err))
		}
	}
}
