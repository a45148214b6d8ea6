package hub

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/sigilcore/sigil-hub/front"
	"github.com/sigilcore/sigil-hub/internal/strictjson"
)

// subscriptions/listen (MCP 2026-07-28): a modern client's one stream of
// what changes, in place of a session's unsolicited notifications. A
// listen asks for some of the list changes and for updates of some
// resources; the hub acknowledges what it will honour, then sends each
// such notification tagged with the listen's id, until the client ends
// the request (docs/protocol.md#mcp-revisions).

// subscriptionMetaKey tags a notification with the listen it belongs to.
const subscriptionMetaKey = "io.modelcontextprotocol/subscriptionId"

// listener is one open subscriptions/listen.
type listener struct {
	s     *session
	rel   json.RawMessage // the listen request's id, as sent
	kind  uint32          // listKind bits asked for
	uris  map[string]bool // resources asked for and honoured
	tasks map[string]bool // tasks (the hub's ids) asked for and honoured
}

// listeners are the open listens (*listener → struct{}). The zero value
// is ready.
type listeners struct{ all sync.Map }

func (ls *listeners) each(f func(*listener)) {
	ls.all.Range(func(l, _ any) bool {
		f(l.(*listener))
		return true
	})
}

// unwatchTasks ends the upstreams' watch of the tasks listen l watched
// that no other listen watches. l has left h.listeners.
func (h *Hub) unwatchTasks(l *listener) {
	for id := range l.tasks {
		still := false
		h.listeners.each(func(o *listener) { still = still || o.tasks[id] })
		if t, u, err := h.taskFor(l.s, id); err == nil && !still {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			_ = u.conn.WatchTask(ctx, t.upID, false)
			cancel()
		}
	}
}

// send sends one notification tagged with the listen's id in its _meta;
// params (nil: none) keep every other member they had.
func (l *listener) send(method string, params json.RawMessage) {
	if params == nil {
		params = json.RawMessage(`{}`)
	}
	if p, ok := setMetaMember(params, subscriptionMetaKey, l.rel); ok {
		l.s.fs.Send(l.rel, front.EncodeNotification(method, p))
	}
}

// listenFilter is what a listen asks for, and what the hub honours of it.
type listenFilter struct {
	Tools     bool     `json:"toolsListChanged,omitempty"`
	Prompts   bool     `json:"promptsListChanged,omitempty"`
	Resources bool     `json:"resourcesListChanged,omitempty"`
	URIs      []string `json:"resourceSubscriptions,omitempty"`
	TaskIDs   []string `json:"taskIds,omitempty"`
}

// listen serves one subscriptions/listen until the client ends it.
func (h *Hub) listen(ctx context.Context, s *session, req *front.Request) (json.RawMessage, error) {
	var p struct {
		Notifications *listenFilter `json:"notifications"`
	}
	if err := json.Unmarshal(req.Params, &p); err != nil || p.Notifications == nil {
		return nil, front.Errorf(front.CodeInvalidParams, "invalid subscriptions/listen params: notifications must be an object naming what to listen for")
	}
	f := p.Notifications
	rel := front.RelatedID(ctx)
	h.waitStartup(ctx)
	l := &listener{s: s, rel: rel, uris: make(map[string]bool)}
	honoured := listenFilter{Tools: f.Tools, Prompts: f.Prompts, Resources: f.Resources}
	for bit, on := range map[uint32]bool{listTools: f.Tools, listPrompts: f.Prompts, listResources: f.Resources} {
		if on {
			l.kind |= bit
		}
	}
	// A resource is honoured when its upstream accepts the subscription.
	// The upstream's subscription is left in place when the listen ends:
	// another client may hold one to the same resource, and updates nobody
	// asked for are dropped here.
	v := h.view.Load()
	for _, uri := range f.URIs {
		owner, ok := h.resourceOwner(v, uri)
		if !ok || l.uris[uri] {
			continue
		}
		if _, err := s.forward(ctx, v.fleet.byName[owner], "resources/subscribe", map[string]json.RawMessage{"uri": strictjson.AppendString(nil, uri)}, uri); err != nil {
			h.log.Info("resource subscription not honoured", "upstream", owner, "server_name", h.serverName(owner), "uri", uri, "err", err)
			continue
		}
		l.uris[uri] = true
		honoured.URIs = append(honoured.URIs, uri)
	}
	// A task is honoured when it is the caller's and its upstream watches
	// it for the hub; that watch ends with the last listen of the task.
	if len(f.TaskIDs) > 0 {
		if !clientTakesTasks(req.Client) {
			return nil, &front.Error{Code: front.CodeMissingCapability,
				Message: "subscriptions/listen names taskIds: declare the " + tasksExtension + " extension in the request's client capabilities",
				Data:    map[string]any{"requiredCapabilities": map[string]any{"extensions": map[string]any{tasksExtension: map[string]any{}}}}}
		}
		l.tasks = make(map[string]bool)
		for _, id := range f.TaskIDs {
			if l.tasks[id] {
				continue
			}
			t, u, err := h.taskFor(s, id)
			if err == nil {
				err = u.conn.WatchTask(ctx, t.upID, true)
			}
			if err != nil {
				h.log.Info("task notifications not honoured", "task_id", id, "err", err)
				continue
			}
			l.tasks[id] = true
			honoured.TaskIDs = append(honoured.TaskIDs, id)
		}
		defer h.unwatchTasks(l)
	}
	h.listeners.all.Store(l, struct{}{})
	defer h.listeners.all.Delete(l)
	ack, err := front.MarshalNoEscape(map[string]any{"notifications": honoured})
	if err != nil {
		return nil, front.Errorf(front.CodeInternal, "internal error: %v", err)
	}
	l.send("notifications/subscriptions/acknowledged", ack)
	// It ends when the client ends it (or its session, or the hub, ends).
	<-ctx.Done()
	return nil, front.ErrNoResponse
}
