package hub

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestHTTPSessionLimits: idle sessions are swept and the live count is
// bounded, so clients that never end their sessions cannot grow the hub
// without limit.
func TestHTTPSessionLimits(t *testing.T) {
	h := &Hub{sessions: map[*session]struct{}{}, calls: map[string]map[callRef]struct{}{}}
	h.fleet.Store(&fleet{cfg: Config{TaskID: "t"}})
	h.log = discardLogger()
	h.view.Store(&view{})
	h.settled.Store(true)
	srv := httptest.NewServer(h.HTTPHandler(HTTPOptions{MaxSessions: 2, IdleTimeout: time.Hour}))
	defer srv.Close()
	defer h.CloseSessions()
	initialize := func() int {
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/mcp", strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if a, b := initialize(), initialize(); a != 200 || b != 200 {
		t.Fatalf("first two sessions: %d %d", a, b)
	}
	if c := initialize(); c != http.StatusServiceUnavailable {
		t.Fatalf("third session over the limit: %d, want 503", c)
	}
	// Age every session past the idle timeout: the next initialize sweeps them.
	h.mu.Lock()
	for _, hs := range h.httpSessions {
		hs.used.Store(time.Now().Add(-2 * time.Hour).UnixNano())
	}
	h.mu.Unlock()
	if c := initialize(); c != 200 {
		t.Fatalf("after idle sessions expired: %d, want 200", c)
	}
	h.mu.Lock()
	n := len(h.httpSessions)
	h.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d sessions live, want 1 (the idle ones swept)", n)
	}
}
