//go:build linux

package main

import (
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// A remote upstream is one origin (README "Security guarantees";
// upstreams/origin.go): the hub never follows an HTTP redirect (a 3xx is an
// upstream error naming the Location), sends nothing (so no configured header
// or token) to another origin, and the Streamable HTTP session DELETE carries
// the configured headers like every other request.

const (
	remoteKey   = "remote-key-CANARY-13"
	remoteToken = "remote-token-CANARY-13"
)

// remoteHeaders is the headers line of a remote server entry; its values
// come from remoteEnv.
const remoteHeaders = `headers = { X-Api-Key = "${REMOTE_KEY}", Authorization = "Bearer ${REMOTE_TOKEN}" }`

var remoteEnv = []string{"REMOTE_KEY=" + remoteKey, "REMOTE_TOKEN=" + remoteToken}

// elsewhere is a loopback server that records every request it gets: where
// the redirect points, which must never hear from the hub.
type elsewhere struct {
	URL  string
	mu   sync.Mutex
	reqs []string
}

func newElsewhere(t *testing.T) *elsewhere {
	t.Helper()
	e := &elsewhere{}
	e.URL = serveFront(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		e.mu.Lock()
		e.reqs = append(e.reqs, fmt.Sprintf("%s %s %v %s", r.Method, r.URL, r.Header, b))
		e.mu.Unlock()
		// What a hostile target would answer: an MCP-looking success.
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"jsonrpc":"2.0","id":1,"result":{}}`)
	}))
	return e
}

func (e *elsewhere) received() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]string(nil), e.reqs...)
}

// What a movingFront redirects; the rest goes to the fake upstream.
const (
	moveNothing int32 = iota
	moveEverything
	movePOSTs
)

// movingFront relays to the fake upstream until told to answer 307 to
// elsewhere (same path and query). It records the session DELETEs' headers.
type movingFront struct {
	URL   string
	to    string
	mode  atomic.Int32
	proxy *httputil.ReverseProxy

	mu      sync.Mutex
	deletes []http.Header
}

func newMovingFront(t *testing.T, proxy *httputil.ReverseProxy, to string, mode int32) *movingFront {
	t.Helper()
	proxy.FlushInterval = -1
	f := &movingFront{to: to, proxy: proxy}
	f.mode.Store(mode)
	f.URL = serveFront(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodDelete {
			f.mu.Lock()
			f.deletes = append(f.deletes, r.Header.Clone())
			f.mu.Unlock()
		}
		if m := f.mode.Load(); m == moveEverything || m == movePOSTs && r.Method == http.MethodPost {
			http.Redirect(w, r, f.to+r.URL.RequestURI(), http.StatusTemporaryRedirect)
			return
		}
		f.proxy.ServeHTTP(w, r)
	}))
	return f
}

func remoteEntry(url, transport string) string {
	return fmt.Sprintf("\n[servers.remote]\nurl = %q\ntransport = %q\nserver_id = \"remote\"\n%s\n", url, transport, remoteHeaders)
}

// noSecrets fails if the configured header values show in the hub's log or
// in a client message.
func noSecrets(t *testing.T, h *faultHub, msgs ...string) {
	t.Helper()
	for _, s := range append(msgs, h.stderr.String()) {
		if strings.Contains(s, remoteKey) || strings.Contains(s, remoteToken) {
			t.Fatal("a configured header value appears in the hub's log or a client message")
		}
	}
}

// TestSecurityRemoteRedirectNotFollowed: a remote upstream answers 307 to
// another loopback server. From the first request on (Streamable HTTP and
// legacy SSE): the other server receives nothing (no initialize, no
// listing, no header), the upstream stays down and the hub's log names the
// redirect and its location. After the connection is up: the approved call
// is not re-sent there either; the client gets -32603 naming the redirect,
// and the next call finds the upstream down for that reason.
func TestSecurityRemoteRedirectNotFollowed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ transport, path string }{{"streamable", "/mcp"}, {"sse", "/sse"}} {
		t.Run("from_start_"+tc.transport, func(t *testing.T) {
			t.Parallel()
			other := newElsewhere(t)
			_, proxy, _ := proxiedUpstream(t, "remote-moved")
			front := newMovingFront(t, proxy, other.URL, moveEverything)
			h := startFault(t, newFaultSign(t, false, nil), faultRunID(t), faultOpts{Env: remoteEnv,
				Args: []string{"--config", writeConfig(t, remoteEntry(front.URL+tc.path, tc.transport))}})
			want := "to " + other.URL + tc.path + ": sigil-hub never follows redirects; point url at the final address"
			eventually(t, "the redirect named in the hub's log (or followed)", func() bool {
				return strings.Contains(h.stderr.String(), want) || len(other.received()) > 0
			})
			time.Sleep(300 * time.Millisecond) // a reconnect or two (backoff from 1 s)
			if got := other.received(); len(got) != 0 {
				t.Fatalf("the redirect target received %d requests, first %q", len(got), got[0])
			}
			if _, ok := h.tools()["remote__echo"]; ok {
				t.Error("the tools of an upstream that answers only redirects are listed")
			}
			noSecrets(t, h)
		})
	}

	t.Run("mid_session", func(t *testing.T) {
		t.Parallel()
		other := newElsewhere(t)
		_, proxy, log := proxiedUpstream(t, "remote-moving")
		front := newMovingFront(t, proxy, other.URL, moveNothing)
		sign := newFaultSign(t, false, nil)
		h := startFault(t, sign, faultRunID(t), faultOpts{Env: remoteEnv,
			Args: []string{"--config", writeConfig(t, remoteEntry(front.URL+"/mcp", "streamable")), "--call-timeout", "10000"}})
		if got := h.text(h.callWait("remote__echo", `{"before":"move"}`)); got != `{"before":"move"}` {
			t.Fatalf("echo before the move = %s", got)
		}
		front.mode.Store(movePOSTs)
		args := `{"approved":"only-here"}`
		m := h.callWait("remote__echo", args)
		if got := other.received(); len(got) != 0 {
			t.Fatalf("the redirect target received %d requests, first %q", len(got), got[0])
		}
		d := h.rpcErr(m, -32603)
		t.Logf("call answered by a redirect: %s: %s", d.Reason, d.Message)
		if !strings.Contains(d.Message, "HTTP 307 Temporary Redirect to "+other.URL+"/mcp") || !strings.Contains(d.Message, "never follows redirects") {
			t.Errorf("the client's error does not name the redirect: %q", d.Message)
		}
		d2 := h.rpcErr(h.callWait("remote__echo", `{"after":"move"}`), -32603)
		t.Logf("next call: %s: %s", d2.Reason, d2.Message)
		if d2.Reason != "upstream_unavailable" || !strings.Contains(d2.Message, "never follows redirects") {
			t.Errorf("next call: reason %q, message %q: want the upstream down for the redirect", d2.Reason, d2.Message)
		}
		time.Sleep(300 * time.Millisecond)
		if got := other.received(); len(got) != 0 {
			t.Fatalf("the redirect target received %d requests, first %q", len(got), got[0])
		}
		if log.contains(t, "only-here") {
			t.Error("the redirected call reached the upstream")
		}
		noSecrets(t, h, d.Message, d2.Message)
		assertInvariants(t, h, invariants{Sign: sign, Logs: map[string]upstreamLog{"remote": log}, Audit: -1})
	})
}

// TestSecurityRemoteSSEEndpointOtherOrigin: a legacy SSE server whose
// endpoint event names another origin is refused at once, and that origin
// receives nothing (no initialize, no header); the hub's log says why.
// other_port: the endpoint is another loopback server. downgrade: the
// server is https and the endpoint names the same host and port over plain
// http (mcp-go compares hosts only): not one cleartext byte goes out.
func TestSecurityRemoteSSEEndpointOtherOrigin(t *testing.T) {
	t.Parallel()
	endpointStream := func(endpoint func(r *http.Request) string) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet {
				http.Error(w, "the endpoint named is elsewhere", http.StatusMethodNotAllowed)
				return
			}
			w.Header().Set("Content-Type", "text/event-stream")
			fmt.Fprintf(w, "event: endpoint\ndata: %s\n\n", endpoint(r))
			_ = http.NewResponseController(w).Flush()
			<-r.Context().Done()
		})
	}

	t.Run("other_port", func(t *testing.T) {
		t.Parallel()
		other := newElsewhere(t)
		sse := serveFront(t, endpointStream(func(*http.Request) string { return other.URL + "/message?sessionId=1" }))
		h := startFault(t, newFaultSign(t, false, nil), faultRunID(t), faultOpts{Env: remoteEnv,
			Args: []string{"--config", writeConfig(t, remoteEntry(sse+"/sse", "sse"))}})
		eventually(t, "the refused endpoint named in the hub's log", func() bool {
			return strings.Contains(h.stderr.String(), "refused the SSE endpoint event: "+other.URL+"/message")
		})
		if got := other.received(); len(got) != 0 {
			t.Fatalf("the other origin received %d requests, first %q", len(got), got[0])
		}
		noSecrets(t, h)
	})

	t.Run("downgrade", func(t *testing.T) {
		t.Parallel()
		cert := newTestCert(t, "sse-tls")
		caFile := filepath.Join(t.TempDir(), "ca.pem")
		if err := os.WriteFile(caFile, cert.pem, 0o600); err != nil {
			t.Fatal(err)
		}
		var cur atomic.Pointer[tls.Certificate]
		cur.Store(&cert.cert)
		base, sl := tlsFront(t, endpointStream(func(r *http.Request) string { return "http://" + r.Host + "/message?sessionId=1" }), &cur)
		h := startFault(t, newFaultSign(t, false, nil), faultRunID(t), faultOpts{Env: append([]string{"SSL_CERT_FILE=" + caFile}, remoteEnv...),
			Args: []string{"--config", writeConfig(t, remoteEntry(base+"/sse", "sse"))}})
		eventually(t, "the refused endpoint named in the hub's log (or a cleartext request)", func() bool {
			_, plain := sl.counts()
			return strings.Contains(h.stderr.String(), "refused the SSE endpoint event: http://127.0.0.1") || len(plain) > 0
		})
		time.Sleep(300 * time.Millisecond)
		if n, plain := sl.counts(); len(plain) > 0 {
			t.Fatalf("the hub sent plain http to the https server's port (%d TLS connections): %v", n, plain)
		}
		noSecrets(t, h)
	})
}

// TestSecurityRemoteSessionDeleteHeaders: when the hub stops, the
// Streamable HTTP session DELETE carries the configured headers (it used to
// go out without them).
func TestSecurityRemoteSessionDeleteHeaders(t *testing.T) {
	t.Parallel()
	_, proxy, _ := proxiedUpstream(t, "remote-delete")
	front := newMovingFront(t, proxy, "http://127.0.0.1:1", moveNothing)
	h := startFault(t, newFaultSign(t, false, nil), faultRunID(t), faultOpts{Env: remoteEnv,
		Args: []string{"--config", writeConfig(t, remoteEntry(front.URL+"/mcp", "streamable"))}})
	if got := h.text(h.callWait("remote__echo", `{"x":1}`)); got != `{"x":1}` {
		t.Fatalf("echo = %s", got)
	}
	_ = h.stdin.Close()
	select {
	case <-h.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("the hub did not exit after stdin closed")
	}
	front.mu.Lock()
	defer front.mu.Unlock()
	if len(front.deletes) != 1 {
		t.Fatalf("%d session DELETEs, want 1", len(front.deletes))
	}
	got := front.deletes[0]
	if got.Get("X-Api-Key") != remoteKey || got.Get("Authorization") != "Bearer "+remoteToken || got.Get("Mcp-Session-Id") == "" {
		t.Fatalf("the session DELETE went out with X-Api-Key %q, Authorization %q, Mcp-Session-Id %q",
			got.Get("X-Api-Key"), got.Get("Authorization"), got.Get("Mcp-Session-Id"))
	}
}
