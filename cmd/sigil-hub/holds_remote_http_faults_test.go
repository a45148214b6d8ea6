//go:build linux

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/mcp"

	"github.com/sigilcore/sigil-hub/internal/signtest"
	"github.com/sigilcore/sigil-hub/internal/testupstream"
)

// Fault catalogue cases left after faults_{a,bc,de}_test.go: #43 (many
// concurrent holds), #55 (list_changed flood: re-list counted from below
// too), #61 (remote upstream faults), #67–#69 (HTTP front guards).

// TestFaultC43ConcurrentHolds: 100 calls held PENDING at once share one
// hold-lookup limiter (docs/protocol.md#holds-pending: ≤ 30 lookups a minute
// in all, first after 2 s), every call resolves pending_timeout by the
// pending timeout with its hold id, nothing is forwarded, and the hub's fds
// stay within baseline plus its idle Sign connections.
func TestFaultC43ConcurrentHolds(t *testing.T) {
	t.Parallel()
	const calls = 100
	var n atomic.Int64
	sign := newFaultSign(t, false, func(signtest.Request) signtest.Reply {
		return signtest.Pending(fmt.Sprintf("hold-c43-%d", n.Add(1)))
	})
	h, log, _ := oneUpstream(t, sign, []string{"--pending-timeout", "5000"})
	start := time.Now()
	ids := make([]string, calls)
	for i := range ids {
		ids[i] = h.call("files__echo", fmt.Sprintf(`{"held":%d}`, i))
	}
	holds := map[string]bool{}
	for _, id := range ids {
		d := h.rpcErr(h.await(id), -32001)
		if d.Reason != "pending_timeout" || d.ErrorCode != "SIGIL_PENDING_TIMEOUT" || !strings.HasPrefix(d.HoldID, "hold-c43-") {
			t.Errorf("call %s: data %+v, want pending_timeout with a hold id", id, d)
		}
		holds[d.HoldID] = true
	}
	elapsed := time.Since(start)
	lookups := len(sign.HoldLookups())
	// One shared slot every 2 s, the first 2 s after a hold: within elapsed
	// at most elapsed/2s + 1 lookups, however many holds wait.
	limit := int(elapsed/(2*time.Second)) + 1
	t.Logf("%d held calls resolved in %v with %d hold lookups (limit %d; 30/min = one per 2 s)", calls, elapsed.Round(time.Millisecond), lookups, limit)
	if len(holds) != calls {
		t.Errorf("%d distinct hold ids in the answers, want %d", len(holds), calls)
	}
	if lookups == 0 || lookups > limit {
		t.Errorf("%d hold lookups for %d concurrent holds over %v: want 1..%d (one shared limiter)", lookups, calls, elapsed, limit)
	}
	if reqs := len(sign.Requests()); reqs != calls {
		t.Errorf("%d authorize requests, want %d (no re-submission without an approved hold)", reqs, calls)
	}
	// fds: the Sign client keeps one idle keep-alive socket per concurrent
	// authorization (≤ 256, 90 s, by design in authz/sign.go); anything
	// beyond that bound is a leak.
	h.mu.Lock()
	base := h.baseFDs
	h.mu.Unlock()
	if fds := countFDs(h.cmd.Process.Pid); base > 0 && fds > base+5+calls {
		t.Errorf("I5: hub has %d open fds after %d holds resolved, baseline %d (+%d idle Sign sockets at most)", fds, calls, base, calls)
	}
	assertInvariants(t, h, invariants{Sign: sign, Logs: map[string]upstreamLog{"files": log}, Audit: -1, SkipFDs: true})
	// The hub has exited: a leaked poller would have gone on looking up.
	if after := len(sign.HoldLookups()); after > limit+1 {
		t.Errorf("hold lookups went on after every call resolved: %d, then %d", lookups, after)
	}
}

// TestFaultD55ListChangedRelists: a burst of 1000 list_changed makes the
// hub re-list that upstream at least once (it did react) and at most a few
// times (coalesced), and the client, whose tool list did not change, gets
// at most one list_changed.
func TestFaultD55ListChangedRelists(t *testing.T) {
	t.Parallel()
	h, sign, logs := twoUpstreams(t)
	relists := func() int { return strings.Count(readFile(string(logs["bad"])), `"method":"tools/list"`) }
	before := relists()
	h.text(h.callWait("bad__notify_flood", `{"n":1000,"kind":"list_changed"}`))
	eventually(t, "a re-list after the list_changed flood", func() bool { return relists() > before })
	h.text(h.callWait("good__echo", `{}`))
	h.text(h.callWait("bad__echo", `{}`))
	assertInvariants(t, h, invariants{Sign: sign, Logs: logs, Audit: -1})
	// Counted after the hub exited: every re-list it ever made.
	got, notes := relists()-before, h.notes("notifications/tools/list_changed")
	t.Logf("1000 list_changed → %d re-lists upstream, %d list_changed to the client", got, notes)
	if got < 1 || got > 3 {
		t.Errorf("1000 list_changed in one burst caused %d re-lists, want 1..3", got)
	}
	if notes > 1 {
		t.Errorf("the client got %d list_changed for an unchanged tool list, want at most 1", notes)
	}
}

// remoteFaults sits between the hub and a Streamable HTTP fake upstream
// and injects the fault named by a tools/call's "fault" argument: "500",
// "401", "403", "hang" (no answer until the request ends), "close" (connection
// closed before any response), "cut" (SSE response cut mid-event), "drop"
// (the session is forgotten: this and every later request carrying its id
// get 404). Anything else is proxied.
type remoteFaults struct {
	proxy *httputil.ReverseProxy
	stop  chan struct{}

	mu      sync.Mutex
	dead    map[string]bool
	seen    map[string]int // fault → tools/call POSTs carrying it
	inits   int
	cancels int
}

func newRemoteFaults(t *testing.T, target string) *remoteFaults {
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	u.Path = ""
	p := httputil.NewSingleHostReverseProxy(u)
	p.FlushInterval = -1 // SSE: every write at once
	f := &remoteFaults{proxy: p, stop: make(chan struct{}), dead: map[string]bool{}, seen: map[string]int{}}
	return f
}

func (f *remoteFaults) counts() (inits, cancels int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.inits, f.cancels
}

func (f *remoteFaults) seenFault(k string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.seen[k]
}

func (f *remoteFaults) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sid := r.Header.Get("Mcp-Session-Id")
	var body []byte
	if r.Method == http.MethodPost {
		body, _ = io.ReadAll(r.Body)
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.ContentLength = int64(len(body))
	}
	var m struct {
		Method string `json:"method"`
		Params struct {
			Arguments struct {
				Fault string `json:"fault"`
			} `json:"arguments"`
		} `json:"params"`
	}
	_ = json.Unmarshal(body, &m)
	f.mu.Lock()
	dead := sid != "" && f.dead[sid]
	fault := ""
	switch m.Method {
	case "initialize":
		f.inits++
	case "notifications/cancelled":
		f.cancels++
	case "tools/call":
		fault = m.Params.Arguments.Fault
		if fault != "" {
			f.seen[fault]++
		}
	}
	if fault == "drop" {
		f.dead[sid] = true
	}
	f.mu.Unlock()
	if dead {
		http.Error(w, "session not found", http.StatusNotFound)
		return
	}
	switch fault {
	case "500":
		http.Error(w, "internal server error", http.StatusInternalServerError)
	case "401":
		w.Header().Set("WWW-Authenticate", `Bearer realm="remote"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
	case "403":
		http.Error(w, "forbidden", http.StatusForbidden)
	case "hang":
		select {
		case <-r.Context().Done():
		case <-f.stop:
		}
	case "close":
		panic(http.ErrAbortHandler) // the connection is closed, no response
	case "cut":
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, "event: message\nid: 1\ndata: {\"jsonrpc\":\"2.0\",\"id\":")
		http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler)
	case "drop":
		http.Error(w, "session not found", http.StatusNotFound)
	default:
		f.proxy.ServeHTTP(w, r)
	}
}

// TestFaultD61RemoteUpstreamFaults: a Streamable HTTP upstream that
// answers 500, hangs, closes the connection mid-call, cuts its SSE answer,
// answers 401 or 403, or forgets the session (404). Each faulty call fails -32603
// exactly once (never replayed), the upstream's token never shows, and the
// same upstream serves the next call (after a 404, through exactly one
// new session).
func TestFaultD61RemoteUpstreamFaults(t *testing.T) {
	t.Parallel()
	const token = "remote-token-CANARY-61"
	log := newUpstreamLog(t)
	hs, err := testupstream.StartHTTP(testupstream.Config{Name: "remote-fake", LogPath: string(log)}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hs.Close() })
	faults := newRemoteFaults(t, hs.URL)
	front := httptest.NewServer(faults)
	t.Cleanup(front.Close)
	t.Cleanup(func() { close(faults.stop) }) // runs before front.Close
	cfg := fmt.Sprintf(`
[servers.remote]
url = %q
transport = "streamable"
server_id = "remote"
headers = { Authorization = "Bearer ${REMOTE_TOKEN}" }
`, front.URL+"/mcp")
	sign := newFaultSign(t, false, nil)
	runID := faultRunID(t)
	h := startFault(t, sign, runID, faultOpts{Env: []string{"REMOTE_TOKEN=" + token},
		Args: []string{"--config", writeConfig(t, cfg), "--call-timeout", "3000"}})

	healthy := 0
	serves := func(t *testing.T) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for {
			healthy++
			args := fmt.Sprintf(`{"healthy":%d}`, healthy)
			m := h.callWait("remote__echo", args)
			if m["error"] == nil {
				if got := h.text(m); got != args {
					t.Fatalf("echo = %s, want %s", got, args)
				}
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("the remote upstream does not serve again after the fault: %s", m["error"])
			}
			time.Sleep(200 * time.Millisecond) // a lost session reconnects with backoff
		}
	}
	serves(t)

	tests := []struct {
		fault  string
		reason string // "" → any upstream_* reason
	}{
		{"500", "upstream_http_error"},
		{"hang", "upstream_timeout"},
		{"close", ""},
		{"cut", ""},
		{"drop", ""},
		{"401", "upstream_auth"},
		{"403", "upstream_auth"},
	}
	for _, tt := range tests {
		t.Run(tt.fault, func(t *testing.T) {
			inits, cancels := faults.counts()
			m := h.callWait("remote__echo", `{"fault":"`+tt.fault+`"}`)
			d := h.rpcErr(m, -32603)
			t.Logf("fault %s → %s: %s", tt.fault, d.Reason, d.Message)
			if n := faults.seenFault(tt.fault); n != 1 {
				t.Errorf("the faulty call reached the remote %d times, want 1 (never replayed)", n)
			}
			if strings.Contains(string(m["error"]), token) || strings.Contains(h.stderr.String(), token) {
				t.Fatal("the upstream's bearer token appears in a client message or the log")
			}
			if !strings.HasPrefix(d.Reason, "upstream_") {
				t.Errorf("reason %q, want upstream_*", d.Reason)
			}
			if tt.fault == "hang" {
				eventually(t, "notifications/cancelled to the remote", func() bool {
					_, c := faults.counts()
					return c > cancels
				})
			}
			serves(t)
			if after, _ := faults.counts(); tt.fault == "drop" && after-inits != 1 {
				t.Errorf("%d initialize requests after the session was dropped, want exactly 1", after-inits)
			}
			if tt.reason != "" && d.Reason != tt.reason {
				if tt.reason == "upstream_auth" {
					knownFailure(t, 61, "a remote 401/403 is reported as "+d.Reason+", not upstream_auth")
				}
				t.Errorf("reason %q, want %q", d.Reason, tt.reason)
			}
		})
	}
	assertInvariants(t, h, invariants{Sign: sign, Logs: map[string]upstreamLog{"remote": log}, Audit: -1})
}

// startHTTPFault runs an HTTP hub (loopback, no tokens) with one fake
// upstream and returns its /mcp URL.
func startHTTPFault(t *testing.T) string {
	t.Helper()
	sign := signtest.New(t, signtest.Options{APIKey: testKey})
	u, _ := startHTTPHub(t, signEnv(sign), "--config", writeConfig(t, fakeServer(t, "files", newUpstreamLog(t), "")))
	return u
}

// rawHTTP sends one request to the hub and returns the status, the
// Mcp-Session-Id header and the body.
func rawHTTP(t *testing.T, method, u, body string, hdr map[string]string) (int, string, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, resp.Header.Get("Mcp-Session-Id"), string(b)
}

const httpInit = `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"f","version":"1"}}}`

// TestFaultsE67E69HTTPSessionAndVersion: #67 a POST without a session id
// → 400, with an unknown one → 404 (DELETE too); #69 an unsupported
// MCP-Protocol-Version → 400, on initialize and inside a session. None of
// them is processed: the session still works afterwards.
func TestFaultsE67E69HTTPSessionAndVersion(t *testing.T) {
	t.Parallel()
	u := startHTTPFault(t)
	code, sid, body := rawHTTP(t, http.MethodPost, u, httpInit, nil)
	if code != 200 || len(sid) < 32 {
		t.Fatalf("initialize: %d, session id %q: %s", code, sid, body)
	}
	rawHTTP(t, http.MethodPost, u, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, map[string]string{"Mcp-Session-Id": sid})
	list := `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`
	call := `{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"files__echo","arguments":{"x":1}}}`
	unknown := strings.Repeat("0", len(sid))
	tests := []struct {
		name   string
		method string
		body   string
		hdr    map[string]string
		want   int
	}{
		{"E67_missing_session", http.MethodPost, list, nil, 400},
		{"E67_missing_session_call", http.MethodPost, call, nil, 400},
		{"E67_unknown_session", http.MethodPost, list, map[string]string{"Mcp-Session-Id": unknown}, 404},
		{"E67_unknown_session_call", http.MethodPost, call, map[string]string{"Mcp-Session-Id": unknown}, 404},
		{"E67_unknown_session_delete", http.MethodDelete, "", map[string]string{"Mcp-Session-Id": unknown}, 404},
		{"E69_unsupported_version", http.MethodPost, call, map[string]string{"Mcp-Session-Id": sid, "MCP-Protocol-Version": "1999-01-01"}, 400},
		{"E69_unsupported_version_initialize", http.MethodPost, httpInit, map[string]string{"MCP-Protocol-Version": "2099-12-31"}, 400},
		{"E69_garbage_version", http.MethodPost, list, map[string]string{"Mcp-Session-Id": sid, "MCP-Protocol-Version": "latest"}, 400},
		{"E69_supported_version", http.MethodPost, list, map[string]string{"Mcp-Session-Id": sid, "MCP-Protocol-Version": "2025-06-18"}, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, newSID, body := rawHTTP(t, tt.method, u, tt.body, tt.hdr)
			if code != tt.want {
				t.Fatalf("%s: %d %s, want %d", tt.name, code, body, tt.want)
			}
			if code != 200 && newSID != "" {
				t.Errorf("a refused request got a session id")
			}
			if code == 200 && !strings.Contains(body, "files__echo") {
				t.Errorf("tools/list: %s", body)
			}
			if code == 400 || code == 404 {
				if strings.Contains(body, `"result"`) || strings.Contains(body, "files__echo") {
					t.Errorf("a refused request was processed: %s", body)
				}
			}
		})
	}
	if code, _, body := rawHTTP(t, http.MethodPost, u, call, map[string]string{"Mcp-Session-Id": sid}); code != 200 || !strings.Contains(body, `\"x\":1`) {
		t.Fatalf("the session after the refused requests: %d %s", code, body)
	}
}

// TestFaultE68SlowBodiesAndManyConnections: 200 connections that send headers
// and part of a body and then stall, plus one that stalls inside its headers,
// do not stop a fresh client from initializing and calling a tool. The
// stalled header is closed by ReadHeaderTimeout (10 s); a stalled body should
// be closed by a read deadline too (docs/faults.md case 68).
func TestFaultE68SlowBodiesAndManyConnections(t *testing.T) {
	t.Parallel()
	const conns = 200
	const bound = 25 * time.Second // ReadHeaderTimeout 10 s plus slack; only catches "never"
	u := startHTTPFault(t)
	pu, _ := url.Parse(u)
	start := time.Now()
	dial := func(prefix string) net.Conn {
		c, err := net.Dial("tcp", pu.Host)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		t.Cleanup(func() { c.Close() })
		if _, err := io.WriteString(c, prefix); err != nil {
			t.Fatal(err)
		}
		return c
	}
	// closedBy waits until the server closes c (EOF, reset or an error
	// response) and reports whether it did within the bound.
	closedBy := func(c net.Conn, res *atomic.Int64, wg *sync.WaitGroup) {
		defer wg.Done()
		_ = c.SetReadDeadline(start.Add(bound))
		_, err := io.Copy(io.Discard, c)
		var ne net.Error
		if !(errors.As(err, &ne) && ne.Timeout()) {
			res.Add(1)
		}
	}
	bodyHead := "POST /mcp HTTP/1.1\r\nHost: " + pu.Host + "\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 1000\r\n\r\n{\"jsonrpc\":"
	var bodiesClosed, headerClosed atomic.Int64
	var wg sync.WaitGroup
	for range conns {
		c := dial(bodyHead)
		wg.Add(1)
		go closedBy(c, &bodiesClosed, &wg)
	}
	hc := dial("POST /mcp HTTP/1.1\r\nHost: " + pu.Host + "\r\nContent-Ty")
	wg.Add(1)
	go closedBy(hc, &headerClosed, &wg)

	// The hub still serves a new session meanwhile.
	c, _, _ := httpClient(t, u, nil)
	res, err := c.CallTool(t.Context(), mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "files__echo", Arguments: map[string]any{"during": "stall"}}})
	if err != nil || res.IsError || len(res.Content) == 0 {
		t.Fatalf("call while %d connections stall: %v %+v", conns, err, res)
	}
	wg.Wait()
	t.Logf("after %v: stalled header closed %d/1, stalled bodies closed %d/%d", time.Since(start).Round(time.Millisecond), headerClosed.Load(), bodiesClosed.Load(), conns)
	if headerClosed.Load() != 1 {
		t.Errorf("a connection stalled inside its headers was not closed within %v (ReadHeaderTimeout)", bound)
	}
	if n := bodiesClosed.Load(); n != conns {
		knownFailure(t, 68, fmt.Sprintf("%d of %d connections stalled inside their body were still open after %v: no read deadline on request bodies", conns-n, conns, bound))
	}
}
