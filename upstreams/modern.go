package upstreams

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/sigilcore/sigil-hub/internal/strictjson"
)

// modernConn is the conn of an upstream that speaks 2026-07-28 (era.go),
// around the transport's conn: there is no initialize, so it adds the
// protocol version and the client's capabilities and identity (the
// request's RequestMeta, else the hub's own) to every request's
// params._meta (withMeta). Results pass through untouched, their
// resultType included; methods the revision removed are answered here
// without being sent.
type modernConn struct {
	inner conn
	stdio bool // notifications/cancelled is the one client notification (stdio only)

	hubCaps json.RawMessage // Spec.Capabilities
	hubInfo json.RawMessage // {"name":Spec.ClientName,"version":Spec.ClientVersion}
	// level is the log level (a string) the hub last set with
	// logging/setLevel, sent on requests that carry no RequestMeta ("" or
	// nil: none).
	level atomic.Value
	log   *slog.Logger
}

func (u *Upstream) newModernConn(inner conn, stdio bool) *modernConn {
	info := appendObject(nil, []metaMember{
		{"name", strictjson.AppendString(nil, u.spec.ClientName)},
		{"version", strictjson.AppendString(nil, u.spec.ClientVersion)},
	})
	return &modernConn{inner: inner, stdio: stdio, hubCaps: u.spec.Capabilities, hubInfo: info, log: u.log}
}

// removedMethods are the requests 2026-07-28 removed that the hub may still
// make of an upstream.
// (resources/subscribe and unsubscribe never reach here: session.subscribe
// answers them with the listen).
var removedMethods = []string{"initialize", "ping", "resources/subscribe", "resources/unsubscribe"}

func (m *modernConn) call(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	if method == "logging/setLevel" {
		// The level is per request now: the hub's own level goes with
		// the requests that carry no RequestMeta.
		var p struct {
			Level string `json:"level"`
		}
		if err := json.Unmarshal(params, &p); err != nil || p.Level == "" {
			return nil, &RPCError{Code: codeInvalidParams, Message: "logging/setLevel: level is required"}
		}
		m.level.Store(p.Level)
		return json.RawMessage(`{}`), nil
	}
	if slices.Contains(removedMethods, method) {
		return nil, &RPCError{Code: codeMethodNotFound,
			Message: fmt.Sprintf("%s is not part of MCP %s, which this upstream speaks", method, modernVersion)}
	}
	p, err := withMeta(params, m.meta(ctx))
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrUnavailable, method, err)
	}
	return m.inner.call(ctx, method, p)
}

// notify sends notifications/cancelled on stdio; 2026-07-28 has no other
// client notification (and none at all over HTTP, where closing the
// request's stream cancels it), so anything else is dropped.
func (m *modernConn) notify(ctx context.Context, method string, params json.RawMessage) error {
	if m.stdio && method == "notifications/cancelled" {
		return m.inner.notify(ctx, method, params)
	}
	m.log.Debug("notification not sent: MCP "+modernVersion+" has no such client notification", "method", method)
	return nil
}

func (m *modernConn) close() error { return m.inner.close() }

// metaMember is one member of a request's _meta: a name and its JSON value.
type metaMember struct {
	name  string
	value []byte
}

// meta returns the _meta members of a request made with ctx.
func (m *modernConn) meta(ctx context.Context) []metaMember {
	caps, info := m.hubCaps, m.hubInfo
	level, _ := m.level.Load().(string)
	rm, ok := RequestMetaFrom(ctx)
	if ok {
		if isObject(rm.Capabilities) {
			caps = rm.Capabilities
		}
		if isObject(rm.ClientInfo) {
			info = rm.ClientInfo
		}
		level = rm.LogLevel
	}
	set := []metaMember{
		{"io.modelcontextprotocol/protocolVersion", strictjson.AppendString(nil, modernVersion)},
		{"io.modelcontextprotocol/clientCapabilities", caps},
		{"io.modelcontextprotocol/clientInfo", info},
	}
	if level != "" {
		set = append(set, metaMember{"io.modelcontextprotocol/logLevel", strictjson.AppendString(nil, level)})
	}
	for _, t := range rm.Trace {
		switch t.Name {
		case "traceparent", "tracestate", "baggage":
			if _, ok := strictjson.DecodeString(t.Value); ok && !slices.ContainsFunc(set, func(m metaMember) bool { return m.name == t.Name }) {
				set = append(set, metaMember{t.Name, t.Value})
			}
		}
	}
	return set
}

// isObject reports whether b is one valid JSON object (a RequestMeta value
// that is not is replaced by the hub's own).
func isObject(b []byte) bool {
	return len(b) > 0 && strictjson.ValidateObject(b, validJSONDepth) == nil
}

// withMeta returns params (one JSON object, or empty for none) with the
// members of set in its _meta: added to the _meta the params have (a
// member of the same name there is replaced), or in a _meta of their own.
// Every other member, the arguments of a tools/call above all, keeps its
// bytes; members are not re-encoded, and keep their order.
func withMeta(params json.RawMessage, set []metaMember) (json.RawMessage, error) {
	p := bytes.TrimSpace(params)
	if len(p) == 0 {
		p = []byte(`{}`)
	}
	members, err := objectMembers(p)
	if err != nil {
		return nil, fmt.Errorf("params: %w", err)
	}
	isMeta := func(m metaMember) bool { return m.name == "_meta" }
	i := slices.IndexFunc(members, isMeta)
	if i < 0 {
		i, members = len(members), append(members, metaMember{name: "_meta"})
	}
	var meta []metaMember
	if v := members[i].value; len(v) > 0 && string(v) != "null" {
		if meta, err = objectMembers(v); err != nil {
			return nil, fmt.Errorf("params._meta: %w", err)
		}
	}
	if slices.ContainsFunc(members[i+1:], isMeta) {
		return nil, errors.New("params: _meta appears twice")
	}
	meta = slices.DeleteFunc(meta, func(mb metaMember) bool {
		return slices.ContainsFunc(set, func(s metaMember) bool { return s.name == mb.name })
	})
	members[i].value = appendObject(nil, append(meta, set...))
	return appendObject(make([]byte, 0, len(p)+256), members), nil
}

// appendObject appends the object of members, their values as they are.
func appendObject(out []byte, members []metaMember) []byte {
	out = append(out, '{')
	for i, mb := range members {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(append(strictjson.AppendString(out, mb.name), ':'), mb.value...)
	}
	return append(out, '}')
}

// objectMembers returns the members of a JSON object, in order, with names
// unescaped and values as their bytes. The object was checked already
// (Upstream.Call, or strictjson for CallValid): the fast path does not scan
// it again; a name with an escape goes through strictjson.Object, which
// checks and orders its members by name.
func objectMembers(obj []byte) ([]metaMember, error) {
	var ms []metaMember
	if strictjson.EachMember(obj, func(key []byte, value json.RawMessage) {
		ms = append(ms, metaMember{string(key), value})
	}) {
		return ms, nil
	}
	m, err := strictjson.Object(obj, validJSONDepth)
	if err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	ms = ms[:0]
	for _, k := range slices.Sorted(maps.Keys(m)) {
		ms = append(ms, metaMember{k, m[k]})
	}
	return ms, nil
}

// listenState is a modern session's subscriptions/listen: the hub's one
// subscription to the upstream's list changes and to the resources the hub
// subscribed (2026-07-28 sends no notification the client did not ask for,
// and has no resources/subscribe: a subscription is a URI in the listen's
// filter), whose notifications reach onNotification like a legacy
// upstream's.
type listenState struct {
	relistAll atomic.Bool // re-list everything on the next acknowledgement (a reopened listen)
	idle      atomic.Bool // the last acknowledgement honoured nothing

	mu       sync.Mutex
	runCtx   context.Context    // the supervisor's: how long a listen may last
	running  bool               // listenLoop runs
	reopen   context.CancelFunc // ends the listen in progress, which the loop reopens with the current filter
	watched  [2][]string        // by watchKind: the resources subscribed and the tasks watched, sorted
	gen      uint64             // counts changes of watched
	sentGen  uint64             // gen of the filter of the listen in progress
	sentID   atomic.Int64       // request id of the listen in progress (its subscription id)
	ackedGen uint64             // gen of the filter the last acknowledgement answered
	honoured [2][]string        // by watchKind: what the last acknowledgement honoured
	ackWait  chan struct{}      // made by ackSignal, closed by signalAck
}

// ackSignal returns a channel closed at the next acknowledgement, or when
// the loop ends (l.mu is held).
func (l *listenState) ackSignal() <-chan struct{} {
	if l.ackWait == nil {
		l.ackWait = make(chan struct{})
	}
	return l.ackWait
}

// signalAck wakes whoever waits on ackSignal (l.mu is held).
func (l *listenState) signalAck() {
	if l.ackWait != nil {
		close(l.ackWait)
		l.ackWait = nil
	}
}

// listenRetryMax bounds the wait before a listen that ended is reopened.
const listenRetryMax = 30 * time.Second

// startListen opens the listen when the server says any of its lists
// change, and waits (at most the probe's timeout, and ctx) for its
// acknowledgement, so that a change after the first listing is not
// missed. runCtx is the supervisor's: the listen lasts as long as the
// session.
func (s *session) startListen(runCtx, ctx context.Context) {
	s.listen.mu.Lock()
	s.listen.runCtx = runCtx
	acked := s.listen.ackSignal()
	started := s.listenParams() != nil && s.runListenLocked()
	s.listen.mu.Unlock()
	if !started {
		return
	}
	select {
	case <-acked:
	case <-time.After(s.u.probeTimeout()):
		s.u.log.Warn("subscriptions/listen not acknowledged in time; listing anyway")
	case <-ctx.Done():
	case <-s.lost.Done():
	}
}

// runListenLocked starts listenLoop (s.listen.mu is held).
func (s *session) runListenLocked() bool {
	if s.listen.runCtx == nil || !s.goBG(func() { s.listenLoop(s.listen.runCtx) }) {
		return false
	}
	s.listen.running = true
	return true
}

// listenParams returns the listen request's params for the lists the
// server says change (all three when its capabilities are unknown) and the
// resources subscribed, or nil for none. s.listen.mu is held.
func (s *session) listenParams() json.RawMessage {
	var on []metaMember
	for i, name := range [...]string{"toolsListChanged", "promptsListChanged", "resourcesListChanged"} {
		if s.init.changes[i] || s.init.unknownCaps {
			on = append(on, metaMember{name, []byte("true")})
		}
	}
	for k, values := range s.listen.watched {
		if len(values) == 0 {
			continue
		}
		list := []byte{'['}
		for i, v := range values {
			if i > 0 {
				list = append(list, ',')
			}
			list = strictjson.AppendString(list, v)
		}
		on = append(on, metaMember{watchMembers[k], append(list, ']')})
	}
	if len(on) == 0 {
		return nil
	}
	return appendObject(nil, []metaMember{{"notifications", appendObject(nil, on)}})
}

// watchKind is what a listen watches beside the lists: the resources the
// hub subscribed and the tasks (of the tasks extension) it watches.
type watchKind int

const (
	watchResource watchKind = iota
	watchTask
)

// watchMembers are each watchKind's member of the listen's filter.
var watchMembers = [...]string{watchResource: "resourceSubscriptions", watchTask: "taskIds"}

// subscribe answers the hub's resources/subscribe and unsubscribe, which
// 2026-07-28 removed, with the listen (watch).
func (s *session) subscribe(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	var p struct {
		URI string `json:"uri"`
	}
	if err := json.Unmarshal(params, &p); err != nil || p.URI == "" {
		return nil, &RPCError{Code: codeInvalidParams, Message: method + ": uri must be a non-empty string"}
	}
	if err := s.watch(ctx, watchResource, p.URI, method == "resources/subscribe"); err != nil {
		return nil, err
	}
	return json.RawMessage(`{}`), nil
}

// watch adds v to (on) or takes it out of the listen's filter of kind k,
// and reopens the listen with it. Adding returns once the new listen is
// acknowledged, with an *RPCError if the acknowledgement leaves v out.
func (s *session) watch(ctx context.Context, k watchKind, v string, on bool) error {
	l := &s.listen
	l.mu.Lock()
	if i, found := slices.BinarySearch(l.watched[k], v); on != found { // else: as it is already
		if on {
			l.watched[k] = slices.Insert(l.watched[k], i, v)
		} else {
			l.watched[k] = slices.Delete(l.watched[k], i, i+1)
		}
		l.gen++
		switch {
		case l.running && l.reopen != nil:
			l.reopen()
		case !l.running && s.listenParams() != nil:
			s.runListenLocked()
		}
	}
	gen := l.gen
	l.mu.Unlock()
	if !on {
		return nil
	}
	timeout := time.NewTimer(s.u.probeTimeout())
	defer timeout.Stop()
	for {
		l.mu.Lock()
		settled, honoured, wait := l.ackedGen >= gen || !l.running, slices.Contains(l.honoured[k], v), l.ackSignal()
		l.mu.Unlock()
		if settled && honoured {
			return nil
		}
		if settled {
			s.unwatchLost(k, v)
			return &RPCError{Code: codeInvalidParams, Message: fmt.Sprintf("this upstream (MCP %s) did not accept %s %q in its subscriptions/listen: its acknowledgement left it out", modernVersion, watchMembers[k], v)}
		}
		select {
		case <-wait:
		case <-timeout.C:
			s.unwatchLost(k, v)
			return fmt.Errorf("%w: %s %q: subscriptions/listen not acknowledged in time", ErrUnavailable, watchMembers[k], v)
		case <-ctx.Done():
			s.unwatchLost(k, v)
			return ctx.Err()
		}
	}
}

// subscriptionIDKey is the _meta member that tags each message of a
// 2026-07-28 listen with the listen's id.
const subscriptionIDKey = "io.modelcontextprotocol/subscriptionId"

// withoutSubscriptionID drops the id of the hub's own listen from a
// notification's _meta: the hub's clients have listens of their own, or
// none, and the hub tags what it sends them itself.
func withoutSubscriptionID(params json.RawMessage) json.RawMessage {
	ms, err := objectMembers(params)
	if err != nil {
		return params
	}
	i := slices.IndexFunc(ms, func(m metaMember) bool { return m.name == "_meta" })
	if i < 0 {
		return params
	}
	meta, err := objectMembers(ms[i].value)
	if err != nil {
		return params
	}
	meta = slices.DeleteFunc(meta, func(m metaMember) bool { return m.name == subscriptionIDKey })
	if len(meta) == 0 {
		ms = slices.Delete(ms, i, i+1)
	} else {
		ms[i].value = appendObject(nil, meta)
	}
	return appendObject(nil, ms)
}

// unwatchLost takes v out of the filter after a watch that did not take;
// the next reopening of the listen drops it.
func (s *session) unwatchLost(k watchKind, v string) {
	s.listen.mu.Lock()
	defer s.listen.mu.Unlock()
	if i, found := slices.BinarySearch(s.listen.watched[k], v); found {
		s.listen.watched[k] = slices.Delete(s.listen.watched[k], i, i+1)
		s.listen.gen++
	}
}

// listenLoop keeps the listen open for the session's life: the request
// lasts until the server ends it or the connection goes. It is reopened
// after a growing pause (1 s doubling to listenRetryMax), and everything
// is re-listed once the new one is acknowledged, since changes in between
// were not seen. A server without the method, or one that honours nothing
// of the filter, is left alone.
func (s *session) listenLoop(ctx context.Context) {
	l := &s.listen
	defer func() {
		l.mu.Lock()
		l.running, l.reopen = false, nil
		l.signalAck() // a waiting subscription learns the listen ended
		l.mu.Unlock()
	}()
	delay := time.Second
	for {
		l.mu.Lock()
		params := s.listenParams()
		lctx, reopen := context.WithCancel(ctx)
		lctx = context.WithValue(lctx, sentIDKey{}, &l.sentID)
		l.reopen, l.sentGen = reopen, l.gen
		l.mu.Unlock()
		if params == nil {
			reopen()
			return
		}
		start := time.Now()
		_, err := s.request(lctx, "subscriptions/listen", params)
		reopened := lctx.Err() != nil
		reopen()
		if ctx.Err() != nil || s.isLost() {
			return
		}
		if reopened { // the filter changed: reopen at once
			l.relistAll.Store(true)
			continue
		}
		var rpc *RPCError
		switch {
		case errors.As(err, &rpc) && rpc.Code == codeMethodNotFound:
			s.u.log.Warn("upstream does not serve subscriptions/listen: changes to its lists are seen only when it restarts", "err", err)
			return
		case err == nil && s.listen.idle.Load():
			s.u.log.Debug("subscriptions/listen: the upstream honours none of the hub's filter")
			return
		case err != nil:
			s.u.log.Warn("subscriptions/listen failed; reopening it", "err", err, "retry_in", delay)
		default:
			s.u.log.Debug("subscriptions/listen ended by the upstream; reopening it", "retry_in", delay)
		}
		if time.Since(start) > listenRetryMax {
			delay = time.Second
		}
		select {
		case <-time.After(delay):
		case <-s.lost.Done(): // also when the session closes
			return
		case <-ctx.Done():
			return
		}
		delay = min(2*delay, listenRetryMax)
		s.listen.relistAll.Store(true)
	}
}

// onListenAck handles notifications/subscriptions/acknowledged.
func (s *session) onListenAck(params json.RawMessage) {
	var p struct {
		Notifications struct {
			Tools     bool     `json:"toolsListChanged"`
			Prompts   bool     `json:"promptsListChanged"`
			Resources bool     `json:"resourcesListChanged"`
			URIs      []string `json:"resourceSubscriptions"`
			TaskIDs   []string `json:"taskIds"`
		} `json:"notifications"`
		Meta map[string]json.RawMessage `json:"_meta"`
	}
	_ = json.Unmarshal(params, &p)
	if id, ok := p.Meta[subscriptionIDKey]; ok && strings.Trim(string(id), `"`) != strconv.FormatInt(s.listen.sentID.Load(), 10) {
		return // the acknowledgement of a listen since reopened, late
	}
	n := p.Notifications
	s.listen.idle.Store(!n.Tools && !n.Prompts && !n.Resources && len(n.URIs) == 0 && len(n.TaskIDs) == 0)
	s.listen.mu.Lock()
	s.listen.honoured, s.listen.ackedGen = [2][]string{watchResource: n.URIs, watchTask: n.TaskIDs}, s.listen.sentGen
	s.listen.signalAck()
	s.listen.mu.Unlock()
	if s.listen.relistAll.Swap(false) {
		s.relistSoon(kindTools | kindPrompts | kindResources | kindTemplates)
	}
}

// withoutBadHeaderTools drops the tools whose x-mcp-header annotations
// break the 2026-07-28 rules, with a warning: a client on Streamable HTTP
// must not list them (the Mcp-Param-* headers could not be sent right).
func (s *session) withoutBadHeaderTools(tools []Item) []Item {
	return slices.DeleteFunc(slices.Clone(tools), func(it Item) bool {
		t, err := headerTool(it.Raw)
		if err == nil && t != nil {
			err = mcp.ValidateParamHeaderAnnotations(t)
		}
		if err != nil {
			s.u.log.Warn("tool left out: its x-mcp-header annotations are invalid", "tool", it.Name, "err", err)
		}
		return err != nil
	})
}

// headerTool decodes the tool definition raw when it has x-mcp-header
// annotations (the Mcp-Param-* headers of a tools/call), else returns nil.
func headerTool(raw json.RawMessage) (*mcp.Tool, error) {
	if !bytes.Contains(raw, []byte("x-mcp-header")) {
		return nil, nil
	}
	var t mcp.Tool
	if err := json.Unmarshal(raw, &t); err != nil {
		return nil, err
	}
	return &t, nil
}

// paramHeaderTool returns the upstream's definition of tool name when it
// has x-mcp-header annotations, else nil.
func (u *Upstream) paramHeaderTool(name string) *mcp.Tool {
	tools := u.Snapshot().Tools
	if i := slices.IndexFunc(tools, func(it Item) bool { return it.Name == name }); i >= 0 {
		t, _ := headerTool(tools[i].Raw)
		return t
	}
	return nil
}

// Modern reports whether the upstream speaks 2026-07-28 (no initialize:
// requests carry RequestMeta), rather than an older revision.
func (s *Snapshot) Modern() bool { return s.ProtocolVersion >= modernVersion }
