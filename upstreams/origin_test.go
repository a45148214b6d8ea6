package upstreams

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/sigilcore/sigil-hub/internal/testupstream"
)

// A remote upstream is one origin (origin.go): no redirect is followed, no
// request (and so no configured header or token) goes to another origin,
// and every request to it carries the configured headers, the session
// DELETE included. The end-to-end cases are cmd/sigil-hub
// TestSecurityRemote*.

func TestOriginOf(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"http://h/mcp", "http://h:80"},
		{"HTTP://H:80/", "http://h:80"},
		{"https://h", "https://h:443"},
		{"https://h:443/x?y", "https://h:443"},
		{"https://h:8443", "https://h:8443"},
		{"http://[::1]:9/", "http://[::1]:9"},
		{"http://u:p@h/", "http://h:80"},
	} {
		u, err := url.Parse(tt.in)
		if err != nil {
			t.Fatal(err)
		}
		if got := originOf(u); got != tt.want {
			t.Errorf("originOf(%s) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// guardFor returns the origin guard of an upstream at configured, over
// base, and the errors it reported as lost.
func guardFor(configured string, headers map[string]string, base http.RoundTripper) (*originRoundTripper, *[]error) {
	var lost []error
	u, _ := url.Parse(configured)
	return &originRoundTripper{base: base, origin: originOf(u), headers: headers,
		lost: func(err error) { lost = append(lost, err) }}, &lost
}

// TestOriginGuardRefusesOtherOrigins: a request for another scheme, host or
// port is refused before anything is sent, with a typed error naming both
// URLs; the same origin, however spelled, passes.
func TestOriginGuardRefusesOtherOrigins(t *testing.T) {
	var sent []string
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		sent = append(sent, r.URL.String())
		return &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}}, nil
	})
	rt, lost := guardFor("https://mcp.example.com/mcp", map[string]string{"X-Api-Key": "k"}, base)
	for _, other := range []string{
		"http://mcp.example.com/mcp",      // scheme (a downgrade)
		"https://mcp.example.com:444/mcp", // port
		"https://evil.example.com/mcp",    // host
		"https://mcp.example.com.evil/mcp",
	} {
		req := httptest.NewRequest(http.MethodPost, other, strings.NewReader(`{}`))
		resp, err := rt.RoundTrip(req)
		var ce *CrossOriginError
		if resp != nil || !errors.As(err, &ce) || !errors.Is(err, ErrCrossOrigin) {
			t.Fatalf("%s: resp %v, err %v, want a *CrossOriginError", other, resp, err)
		}
		if ce.Origin != "https://mcp.example.com:443" || !strings.Contains(err.Error(), other) {
			t.Errorf("%s: error %q does not name the URL and the configured origin", other, err)
		}
	}
	if len(sent) != 0 {
		t.Fatalf("requests for other origins were sent: %v", sent)
	}
	if len(*lost) != 4 {
		t.Errorf("%d refusals reported lost, want 4", len(*lost))
	}
	for _, same := range []string{"https://MCP.example.com:443/mcp", "https://mcp.example.com/other?x=1"} {
		resp, err := rt.RoundTrip(httptest.NewRequest(http.MethodGet, same, nil))
		if err != nil {
			t.Fatalf("%s: %v", same, err)
		}
		resp.Body.Close()
	}
	if len(sent) != 2 {
		t.Fatalf("sent %v, want the two same-origin requests", sent)
	}
}

// TestOriginGuardHeaders: the configured headers are added to every request
// that does not carry them (the session DELETE, which mcp-go sends without
// them), and never replace one the transport set (the OAuth Authorization).
// The caller's request is not modified.
func TestOriginGuardHeaders(t *testing.T) {
	var got http.Header
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		got = r.Header.Clone()
		return &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}}, nil
	})
	rt, _ := guardFor("http://127.0.0.1:9/mcp", map[string]string{"X-Api-Key": "k1", "authorization": "Bearer configured"}, base)

	del := httptest.NewRequest(http.MethodDelete, "http://127.0.0.1:9/mcp", nil)
	del.Header.Set("Mcp-Session-Id", "s1")
	resp, err := rt.RoundTrip(del)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got.Get("X-Api-Key") != "k1" || got.Get("Authorization") != "Bearer configured" || got.Get("Mcp-Session-Id") != "s1" {
		t.Errorf("DELETE went out with %v", got)
	}
	if del.Header.Get("X-Api-Key") != "" {
		t.Error("the caller's request was modified")
	}

	post := httptest.NewRequest(http.MethodPost, "http://127.0.0.1:9/mcp", nil)
	post.Header.Set("Authorization", "Bearer oauth-token")
	resp, err = rt.RoundTrip(post)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if v := got.Values("Authorization"); len(v) != 1 || v[0] != "Bearer oauth-token" {
		t.Errorf("Authorization = %q, want the transport's own", v)
	}
}

// TestOriginGuardRedirect: every 3xx answer becomes a *RedirectError naming
// the resolved Location (without a password), its body is closed, and the
// connection is reported lost.
func TestOriginGuardRedirect(t *testing.T) {
	for _, tt := range []struct {
		status        int
		location      string
		wantLocation  string
		wantInMessage string
	}{
		{307, "http://127.0.0.1:8/mcp", "http://127.0.0.1:8/mcp", "HTTP 307 Temporary Redirect to http://127.0.0.1:8/mcp"},
		{308, "/elsewhere?key=k-secret#f", "http://127.0.0.1:9/elsewhere?…", "to http://127.0.0.1:9/elsewhere?…"},
		{302, "https://user:pw@other/", "https://other/", "to https://other/"},
		{301, "", "", "HTTP 301 Moved Permanently without a Location"},
		{303, "//other/x", "http://other/x", "HTTP 303 See Other"},
		{300, "http://a\x7f/", "", "not a URL"},
	} {
		closed := false
		base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
			h := http.Header{}
			if tt.location != "" {
				h.Set("Location", tt.location)
			}
			return &http.Response{StatusCode: tt.status, Header: h, Request: r,
				Body: closeFunc{Reader: strings.NewReader("moved"), close: func() { closed = true }}}, nil
		})
		rt, lost := guardFor("http://127.0.0.1:9/mcp", nil, base)
		resp, err := rt.RoundTrip(httptest.NewRequest(http.MethodPost, "http://127.0.0.1:9/mcp", nil))
		var re *RedirectError
		if resp != nil || !errors.As(err, &re) || !errors.Is(err, ErrRedirect) {
			t.Fatalf("%d: resp %v, err %v, want a *RedirectError", tt.status, resp, err)
		}
		if tt.wantLocation != "" && re.Location != tt.wantLocation {
			t.Errorf("%d: Location %q, want %q", tt.status, re.Location, tt.wantLocation)
		}
		msg := err.Error()
		if !strings.Contains(msg, tt.wantInMessage) || !strings.Contains(msg, "never follows redirects; point url at the final address") {
			t.Errorf("%d: message %q", tt.status, msg)
		}
		if strings.Contains(msg, "pw") || strings.Contains(msg, "k-secret") {
			t.Errorf("%d: message shows userinfo or a query: %q", tt.status, msg)
		}
		if !closed {
			t.Errorf("%d: the redirect's body was not closed", tt.status)
		}
		if len(*lost) != 1 || !errors.Is((*lost)[0], ErrRedirect) {
			t.Errorf("%d: lost got %v", tt.status, *lost)
		}
	}
}

type closeFunc struct {
	io.Reader
	close func()
}

func (c closeFunc) Close() error { c.close(); return nil }

// TestEndpointWatch: a legacy SSE stream passes through byte for byte
// while its endpoint events name the configured origin (absolute or
// relative), however the reads are split; an endpoint event for another
// scheme, host or port ends the stream with a *CrossOriginError before
// mcp-go reads the event's end.
func TestEndpointWatch(t *testing.T) {
	base, _ := url.Parse("http://127.0.0.1:9/sse")
	good := ": hi\n\nevent: endpoint\ndata: /message?sessionId=1\n\nevent: message\ndata: {\"jsonrpc\":\"2.0\"}\n\n" +
		"event:endpoint\r\ndata: http://127.0.0.1:9/m2\r\n\r\n" + "data: " + strings.Repeat("x", 3*maxWatchedField) + "\n\n" +
		"event: endpoint\ndata:/tail"
	for _, bad := range []string{
		"event: endpoint\ndata: http://127.0.0.2:9/message\n\n",
		"event: endpoint\ndata: https://127.0.0.1:9/message\n\n",
		"event: endpoint\ndata: http://127.0.0.1:10/message\n\n",
		"event: endpoint\ndata: //evil/message\n\n",
		": first a good one\nevent: endpoint\ndata: /message\n\nevent: endpoint\ndata: http://evil/\n\n",
		"event: endpoint\ndata: http://evil/at-eof\n", // mcp-go dispatches pending data at EOF
		"event:" + strings.Repeat(" ", 2*maxWatchedField) + "endpoint\ndata: http://evil/\n\n",
	} {
		for name, wrap := range map[string]func(io.Reader) io.Reader{
			"whole":    func(r io.Reader) io.Reader { return r },
			"one byte": iotest.OneByteReader,
		} {
			var lost []error
			w := &endpointWatch{rc: io.NopCloser(wrap(strings.NewReader(bad))), base: base, origin: originOf(base),
				refuse: func(err error) { lost = append(lost, err) }}
			got, err := io.ReadAll(w)
			var ce *CrossOriginError
			if !errors.As(err, &ce) {
				t.Fatalf("%s %.60q: err %v, want a *CrossOriginError", name, bad, err)
			}
			if len(lost) != 1 {
				t.Errorf("%s %.60q: lost got %d errors", name, bad, len(lost))
			}
			// The bad event's end (its empty line, or EOF) never reaches
			// the reader, so mcp-go never dispatches it.
			if i := strings.LastIndex(bad, "data:"); len(got) > i && strings.Contains(string(got[i:]), "\n\n") {
				t.Errorf("%s %.60q: the bad event's end reached the reader: %.80q", name, bad, got)
			}
			if !strings.Contains(err.Error(), "SSE endpoint event") {
				t.Errorf("%s: message %q", name, err)
			}
		}
	}
	for name, wrap := range map[string]func(io.Reader) io.Reader{
		"whole":    func(r io.Reader) io.Reader { return r },
		"one byte": iotest.OneByteReader,
		"halves":   iotest.HalfReader,
	} {
		w := &endpointWatch{rc: io.NopCloser(wrap(strings.NewReader(good))), base: base, origin: originOf(base),
			refuse: func(err error) { t.Errorf("%s: refused %v", name, err) }}
		got, err := io.ReadAll(w)
		if err != nil || string(got) != good {
			t.Errorf("%s: err %v, stream changed: %d bytes of %d", name, err, len(got), len(good))
		}
	}
}

// recorder is a loopback server that records every request it gets: the
// place a redirect points to, which must never hear from the hub.
type recorder struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []string
}

func newRecorder(t *testing.T) *recorder {
	t.Helper()
	rec := &recorder{}
	rec.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		rec.mu.Lock()
		rec.reqs = append(rec.reqs, fmt.Sprintf("%s %s %v %s", r.Method, r.URL, r.Header, b))
		rec.mu.Unlock()
		http.Error(w, "recorder", http.StatusTeapot)
	}))
	t.Cleanup(rec.Close)
	return rec
}

func (rec *recorder) got() []string {
	rec.mu.Lock()
	defer rec.mu.Unlock()
	return append([]string(nil), rec.reqs...)
}

// Front modes: what redirectFront redirects (the rest goes to the real
// upstream).
const (
	redirectNone int32 = iota
	redirectAll
	redirectPOST
	redirectGET
)

// redirectFront relays to the fake upstream, or answers status with a
// Location on the recorder (same path and query), per mode.
type redirectFront struct {
	*httptest.Server
	mode   atomic.Int32
	status int
	to     string
	proxy  *httputil.ReverseProxy

	mu      sync.Mutex
	deletes []http.Header
}

func newRedirectFront(t *testing.T, to string, status int, mode int32) (*redirectFront, *testupstream.HTTPServer) {
	t.Helper()
	hs, err := testupstream.StartHTTP(testupstream.Config{Name: "redirect-fake"}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hs.Close() })
	target, _ := url.Parse(hs.URL)
	target.Path = ""
	f := &redirectFront{status: status, to: to, proxy: httputil.NewSingleHostReverseProxy(target)}
	f.proxy.FlushInterval = -1
	f.proxy.ErrorLog = log.New(io.Discard, "", 0)
	f.mode.Store(mode)
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			f.mu.Lock()
			f.deletes = append(f.deletes, r.Header.Clone())
			f.mu.Unlock()
		}
		m := f.mode.Load()
		if m == redirectAll || m == redirectPOST && r.Method == http.MethodPost || m == redirectGET && r.Method == http.MethodGet {
			http.Redirect(w, r, f.to+r.URL.RequestURI(), f.status)
			return
		}
		f.proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	return f, hs
}

// TestRemoteRedirectNeverFollowed: a remote upstream whose server answers
// a redirect from the first request on never reaches the redirect target
// (no initialize, no header) over any transport, and its snapshot says
// why, with a typed error naming the location.
func TestRemoteRedirectNeverFollowed(t *testing.T) {
	for _, tr := range []struct{ transport, path string }{{"streamable", "/mcp"}, {"auto", "/mcp"}, {"sse", "/sse"}} {
		for _, status := range []int{301, 302, 303, 307, 308} {
			t.Run(fmt.Sprintf("%s_%d", tr.transport, status), func(t *testing.T) {
				t.Parallel()
				rec := newRecorder(t)
				front, _ := newRedirectFront(t, rec.URL, status, redirectAll)
				u := start(t, Spec{Name: "r", URL: front.URL + tr.path, Transport: tr.transport, InitTimeout: testDeadline,
					Headers: map[string]string{"X-Api-Key": "configured-secret"}}, nil)
				var re *RedirectError
				waitFor(t, "a redirect error", func() bool { return errors.As(u.Snapshot().Err, &re) })
				if re.Status != status || re.Location != rec.URL+tr.path {
					t.Errorf("redirect error %+v, want status %d to %s", re, status, rec.URL+tr.path)
				}
				if got := rec.got(); len(got) != 0 {
					t.Fatalf("the redirect target received %q", got)
				}
				t.Logf("snapshot: %v", u.Snapshot().Err)
			})
		}
	}
}

// TestRemoteRedirectMidSession: a server that starts redirecting after the
// connection is up: the call (or notification) gets a *RedirectError, the
// redirect target hears nothing, and the upstream goes down with the reason
// (every reconnect meets the redirect). A redirect of the GET event
// stream alone, which no caller sees, takes the connection down too.
func TestRemoteRedirectMidSession(t *testing.T) {
	for _, tc := range []struct {
		name, transport, path string
		mode                  int32
	}{
		{"streamable_post", "streamable", "/mcp", redirectPOST},
		{"sse_post", "sse", "/sse", redirectPOST},
		{"streamable_get_stream", "streamable", "/mcp", redirectGET},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := newRecorder(t)
			front, _ := newRedirectFront(t, rec.URL, http.StatusTemporaryRedirect, redirectNone)
			u := start(t, Spec{Name: "r", URL: front.URL + tc.path, Transport: tc.transport, InitTimeout: testDeadline,
				Headers: map[string]string{"X-Api-Key": "configured-secret"}}, nil)
			waitState(t, u, Ready)
			front.mode.Store(tc.mode)
			if tc.mode == redirectGET {
				front.CloseClientConnections() // the open GET stream ends; mcp-go opens it again
			}
			if tc.mode == redirectPOST {
				ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
				defer cancel()
				_, err := callTool(ctx, u, "echo", `{"approved":"once"}`)
				var re *RedirectError
				if !errors.As(err, &re) || re.Method != http.MethodPost {
					t.Fatalf("call: %v, want a *RedirectError", err)
				}
				t.Logf("call: %v", err)
			}
			waitFor(t, "the upstream down, naming the redirect", func() bool {
				s := u.Snapshot()
				return s.State != Ready && s.Err != nil && strings.Contains(s.Err.Error(), "never follows redirects")
			})
			if got := rec.got(); len(got) != 0 {
				t.Fatalf("the redirect target received %q", got)
			}
			t.Logf("snapshot: %v", u.Snapshot().Err)
		})
	}
}

// TestRemoteSessionDeleteCarriesHeaders: the Streamable HTTP session DELETE
// sent when the connection closes carries the configured headers (mcp-go
// sends it without them).
func TestRemoteSessionDeleteCarriesHeaders(t *testing.T) {
	rec := newRecorder(t)
	front, _ := newRedirectFront(t, rec.URL, http.StatusTemporaryRedirect, redirectNone)
	u := New(Spec{Name: "d", URL: front.URL + "/mcp", Transport: "streamable", InitTimeout: testDeadline,
		Headers: map[string]string{"X-Api-Key": "configured-secret", "Authorization": "Bearer configured"}})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	waitState(t, u, Ready)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	front.mu.Lock()
	defer front.mu.Unlock()
	if len(front.deletes) != 1 {
		t.Fatalf("%d session DELETEs, want 1", len(front.deletes))
	}
	h := front.deletes[0]
	if h.Get("X-Api-Key") != "configured-secret" || h.Get("Authorization") != "Bearer configured" || h.Get("Mcp-Session-Id") == "" {
		t.Fatalf("the session DELETE went out with %v", h)
	}
}

// sseEndpointServer is a legacy SSE server whose endpoint event names
// endpoint (then it keeps the stream open).
func sseEndpointServer(t *testing.T, endpoint func(self string) string) *httptest.Server {
	t.Helper()
	var srv *httptest.Server
	srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet {
			http.Error(w, "no", http.StatusMethodNotAllowed)
			return
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "event: endpoint\ndata: %s\n\n", endpoint(srv.URL))
		_ = http.NewResponseController(w).Flush()
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	return srv
}

// TestSSEEndpointOtherOrigin: a legacy SSE server whose endpoint event
// names another host, port or scheme is refused at once (not after the
// connect timeout), with a typed error naming the endpoint; the other
// origin hears nothing.
func TestSSEEndpointOtherOrigin(t *testing.T) {
	rec := newRecorder(t)
	for name, endpoint := range map[string]func(self string) string{
		"other host": func(string) string { return strings.Replace(rec.URL, "127.0.0.1", "localhost", 1) + "/message" },
		"other port": func(string) string { return rec.URL + "/message" },
		"downgrade":  func(self string) string { return strings.Replace(self, "http://", "https://", 1) + "/message" },
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := sseEndpointServer(t, endpoint)
			began := time.Now()
			u := start(t, Spec{Name: "e", URL: srv.URL + "/sse", Transport: "sse", InitTimeout: testDeadline,
				Headers: map[string]string{"X-Api-Key": "configured-secret"}}, nil)
			var ce *CrossOriginError
			waitFor(t, "a cross-origin error", func() bool { return errors.As(u.Snapshot().Err, &ce) })
			if d := time.Since(began); d > testDeadline/4 {
				t.Errorf("refused after %v: the endpoint wait ran out instead", d)
			}
			if !strings.Contains(ce.URL, "/message") {
				t.Errorf("error %v does not name the endpoint", ce)
			}
			t.Logf("snapshot: %v", u.Snapshot().Err)
		})
	}
	t.Cleanup(func() {
		if got := rec.got(); len(got) != 0 {
			t.Errorf("the other origin received %q", got)
		}
	})
}

// TestOAuthClientRefusesRedirects: the OAuth discovery, registration and
// token requests do not follow a redirect (a 307 would re-send a refresh
// token's POST body elsewhere).
func TestOAuthClientRefusesRedirects(t *testing.T) {
	rec := newRecorder(t)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, rec.URL+r.URL.RequestURI(), http.StatusTemporaryRedirect)
	}))
	t.Cleanup(front.Close)
	o := newOAuthState(OAuth{}, front.URL+"/mcp", slog.New(slog.NewTextHandler(io.Discard, nil)))
	resp, err := o.hc.Post(front.URL+"/token", "application/x-www-form-urlencoded", strings.NewReader("grant_type=refresh_token&refresh_token=rt"))
	if err == nil {
		resp.Body.Close()
	}
	var re *RedirectError
	if !errors.As(err, &re) || !re.OAuth || re.Location != rec.URL+"/token" {
		t.Fatalf("err %v, want an OAuth *RedirectError to %s", err, rec.URL+"/token")
	}
	if got := rec.got(); len(got) != 0 {
		t.Fatalf("the redirect target received %q", got)
	}
}
