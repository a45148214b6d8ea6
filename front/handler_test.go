package front

import (
	"context"
	"encoding/json"
	"sync"
	"time"
)

// fakeHandler stands in for the hub behind a front: it answers initialize
// with a fixed result and every other request with {}; it records the live
// sessions.
type fakeHandler struct {
	mu   sync.Mutex
	live map[Session]bool
}

func (h *fakeHandler) Register(s Session) func() {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.live == nil {
		h.live = map[Session]bool{}
	}
	h.live[s] = true
	return func() {
		h.mu.Lock()
		delete(h.live, s)
		h.mu.Unlock()
	}
}

func (h *fakeHandler) Handle(_ context.Context, _ Session, req *Request) (json.RawMessage, error) {
	if req.Method == "initialize" {
		return json.RawMessage(`{"protocolVersion":"` + req.Client.ProtocolVersion + `","capabilities":{},"serverInfo":{"name":"fake","version":"1"}}`), nil
	}
	return json.RawMessage(`{}`), nil
}

func (h *fakeHandler) Notify(Session, *Request)           {}
func (h *fakeHandler) Rejected(Session, *Request, *Error) {}
func (h *fakeHandler) CallTimeout() time.Duration         { return time.Minute }

func (h *fakeHandler) liveCount() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.live)
}
