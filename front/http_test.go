package front

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
	h := &fakeHandler{}
	f := NewHTTP(h, HTTPOptions{MaxSessions: 2, IdleTimeout: time.Hour})
	srv := httptest.NewServer(f)
	defer srv.Close()
	defer f.Close()
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
	f.mu.Lock()
	for _, hs := range f.sessions {
		hs.used.Store(time.Now().Add(-2 * time.Hour).UnixNano())
	}
	f.mu.Unlock()
	if c := initialize(); c != 200 {
		t.Fatalf("after idle sessions expired: %d, want 200", c)
	}
	f.mu.Lock()
	n := len(f.sessions)
	f.mu.Unlock()
	if n != 1 {
		t.Fatalf("%d sessions live, want 1 (the idle ones swept)", n)
	}
	waitFor(t, "the swept sessions unregistered", func() bool { return h.liveCount() == 1 })
}

// TestStreamEventsJSONUnlessSomethingCameFirst: a request's response that
// nothing preceded is answered as application/json; one that progress (or
// any message the request caused) preceded is an event stream carrying
// those messages, then the response, in order.
func TestStreamEventsJSONUnlessSomethingCameFirst(t *testing.T) {
	final := []byte(`{"jsonrpc":"2.0","id":7,"result":{}}`)
	progress := []byte(`{"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":1,"progress":1}}`)
	tests := []struct {
		name     string
		events   [][]byte
		wantType string
		wantBody string
	}{
		{"response alone", nil, "application/json", string(final)},
		{"progress first", [][]byte{progress}, "text/event-stream",
			"event: message\ndata: " + string(progress) + "\n\nevent: message\ndata: " + string(final) + "\n\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := &postStream{events: make(chan []byte, streamBuffer), final: make(chan []byte, 1)}
			for _, e := range tt.events {
				st.events <- e
			}
			st.final <- final
			w := httptest.NewRecorder()
			streamEvents(w, httptest.NewRequest(http.MethodPost, "/mcp", nil), st)
			if got := w.Header().Get("Content-Type"); got != tt.wantType {
				t.Errorf("Content-Type %q, want %q", got, tt.wantType)
			}
			if got := w.Body.String(); got != tt.wantBody {
				t.Errorf("body %q, want %q", got, tt.wantBody)
			}
		})
	}
}
