package front

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// connGauge counts a server's open connections through http.Server's
// ConnState hook and remembers the most ever open at once.
type connGauge struct {
	open, peak atomic.Int64
}

func (g *connGauge) hook(_ net.Conn, st http.ConnState) {
	switch st {
	case http.StateNew:
		n := g.open.Add(1)
		for p := g.peak.Load(); n > p && !g.peak.CompareAndSwap(p, n); p = g.peak.Load() {
		}
	case http.StateClosed, http.StateHijacked:
		g.open.Add(-1)
	}
}

// serveLimited serves handler on a LimitListener(n) with a connection
// gauge; the server's ReadHeaderTimeout is long, so that connections the
// test stalls hold their slots until the test closes them.
func serveLimited(t *testing.T, handler http.Handler, n int) (string, *connGauge, *limitListener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	g := &connGauge{}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 5 * time.Minute, ConnState: g.hook}
	ll := LimitListener(ln, n).(*limitListener)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ll) }()
	t.Cleanup(func() { _ = srv.Close(); <-done })
	return ln.Addr().String(), g, ll
}

// refused reads what the server answers on c before it closes it, and
// reports whether that was the listener's 503.
func refused(c net.Conn) (bool, string) {
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second)) // catches a hang, not a time
	b, _ := io.ReadAll(c)
	return strings.HasPrefix(string(b), "HTTP/1.1 503 ") && strings.Contains(string(b), "Retry-After: 1"), string(b)
}

// TestLimitListener: with n connections open, the next ones never reach
// the server: a request gets a 503 once its header arrived (a partial
// header within a second), a connection that sends nothing is closed after
// a second without an answer. Once a held connection closes, a new one is
// served again.
func TestLimitListener(t *testing.T) {
	const n = 4
	addr, g, _ := serveLimited(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "served") }), n)
	var held []net.Conn
	for range n {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		held = append(held, c)
	}
	waitFor(t, "the held connections accepted", func() bool { return g.open.Load() == n })
	for i, send := range []string{
		"GET / HTTP/1.1\r\nHost: x\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n" + strings.Repeat("b", 1000),
		"GET / HTTP/1.1\r\nHo", // a header that never ends
		"",                     // nothing at all
	} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(c, send)
		ok, got := refused(c)
		c.Close()
		switch {
		case send == "" && got != "":
			t.Errorf("a silent connection over the limit got %q, want no answer", got)
		case send != "" && !ok:
			t.Errorf("connection %d over the limit (sent %.20q) got %q, want a 503 with Retry-After", i, send, got)
		}
	}
	if p := g.peak.Load(); p != n {
		t.Fatalf("the server saw %d connections at once, want %d", p, n)
	}
	held[0].Close()
	waitFor(t, "a slot freed", func() bool { return g.open.Load() < n })
	resp, err := (&http.Client{Transport: &http.Transport{}}).Get("http://" + addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || string(b) != "served" {
		t.Fatalf("after a slot freed: %d %q", resp.StatusCode, b)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// procSelf returns this process's open fds and VmRSS in bytes (0, 0 where
// /proc is missing).
func procSelf() (fds, rss int) {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return 0, 0
	}
	b, _ := os.ReadFile("/proc/self/status")
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, _ := strconv.Atoi(f[1])
			rss = kb << 10
		}
	}
	return len(ents), rss
}

// TestHTTPConnectionFlood (docs/faults.md case 68): 1,000 connections, 16
// times the limit, stall inside their request headers. The hub holds at most
// the limit open; the rest get a 503 at once; an authenticated client keeps
// being served on its connection, and a new one is told 503 instead of
// hanging, then served once the flood ends. Sockets and goroutines stay
// bounded by the limit (the test process holds both ends of every connection)
// and return to the baseline.
func TestHTTPConnectionFlood(t *testing.T) {
	const limit, flood = 64, 1000
	f := NewHTTP(&fakeHandler{}, HTTPOptions{Tokens: map[string]string{"tok-alice": "alice"}})
	defer f.Close()
	addr, g, ll := serveLimited(t, f, limit)
	url := "http://" + addr + "/mcp"

	// One keep-alive connection for the authenticated client.
	alice := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}}
	defer alice.CloseIdleConnections()
	post := func(c *http.Client, sid, body string) (int, string, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Authorization", "Bearer tok-alice")
		if sid != "" {
			req.Header.Set("Mcp-Session-Id", sid)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("POST %s: %v", body, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Mcp-Session-Id"), string(b)
	}
	code, sid, body := post(alice, "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"alice","version":"1"}}}`)
	if code != 200 || sid == "" {
		t.Fatalf("initialize: %d %s", code, body)
	}
	ping := func(c *http.Client, id int) (int, string) {
		code, _, body := post(c, sid, `{"jsonrpc":"2.0","id":`+strconv.Itoa(id)+`,"method":"ping"}`)
		return code, body
	}
	if code, body := ping(alice, 2); code != 200 || !strings.Contains(body, `"result"`) {
		t.Fatalf("ping before the flood: %d %s", code, body)
	}
	runtime.GC()
	fds0, rss0 := procSelf()
	gr0 := runtime.NumGoroutine()

	// The flood: each connection stalls, half of them inside the header,
	// half inside the body; a reader per connection records a 503 and
	// closes its end when the hub does.
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	var got503, dropped atomic.Int64
	for i := range flood {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		mu.Lock()
		conns = append(conns, c)
		mu.Unlock()
		if i%2 == 0 {
			io.WriteString(c, "POST /mcp HTTP/1.1\r\nHost: "+addr+"\r\nContent-Ty")
		} else {
			io.WriteString(c, "POST /mcp HTTP/1.1\r\nHost: "+addr+"\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{")
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			br := bufio.NewReader(c)
			line, err := br.ReadString('\n')
			switch {
			case strings.HasPrefix(line, "HTTP/1.1 503 "):
				got503.Add(1)
			case err != nil && line == "":
				// Closed without an answer: more than maxRefusing
				// refusals were in progress (or the test closed it).
				dropped.Add(1)
			}
			_, _ = io.Copy(io.Discard, br)
			c.Close()
		}()
	}
	waitFor(t, "every connection over the limit refused", func() bool { return got503.Load()+dropped.Load() >= flood-limit+1 })
	if got503.Load() == 0 {
		t.Error("no connection over the limit was answered 503")
	}
	fds1, rss1 := procSelf()
	gr1 := runtime.NumGoroutine()
	t.Logf("%d connections (limit %d): %d refused with 503, %d closed unanswered, server peak %d open; fds %d → %d, goroutines %d → %d, RSS %.1f → %.1f MiB (test process: both ends)",
		flood, limit, got503.Load(), dropped.Load(), g.peak.Load(), fds0, fds1, gr0, gr1, float64(rss0)/(1<<20), float64(rss1)/(1<<20))
	if p := g.peak.Load(); p > limit {
		t.Errorf("the server held %d connections at once, over the limit of %d", p, limit)
	}
	// Held: limit-1 stalled connections (alice has one slot), two fds and
	// two goroutines each (server side, test side); refused ones are gone.
	if fds0 > 0 && fds1-fds0 > 2*limit+16 {
		t.Errorf("fds grew by %d under %d connections, want ≤ %d (bounded by the limit)", fds1-fds0, flood, 2*limit+16)
	}
	if gr1-gr0 > 2*limit+maxRefusing+16 {
		t.Errorf("goroutines grew by %d under %d connections, want ≤ %d", gr1-gr0, flood, 2*limit+maxRefusing+16)
	}
	if rss0 > 0 && rss1-rss0 > 64<<20 {
		t.Errorf("RSS grew by %.1f MiB under %d connections", float64(rss1-rss0)/(1<<20), flood)
	}

	// The authenticated client on its own connection: served.
	for i := range 5 {
		if code, body := ping(alice, 10+i); code != 200 || !strings.Contains(body, `"result"`) {
			t.Fatalf("alice's ping %d during the flood: %d %s", i, code, body)
		}
	}
	// A new connection, even authenticated, is told to retry once its
	// request arrived (with no other refusal in progress, it is answered).
	waitFor(t, "the flood's refusals over", func() bool { return ll.refusing.Load() == 0 })
	bob := &http.Client{Transport: &http.Transport{}}
	req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"jsonrpc":"2.0","id":20,"method":"ping"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer tok-alice")
	req.Header.Set("Mcp-Session-Id", sid)
	if resp, err := bob.Do(req); err == nil {
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") != "1" {
			t.Errorf("a new connection during the flood: %d %s, want 503 with Retry-After", resp.StatusCode, b)
		}
	} else {
		t.Errorf("a new connection during the flood: %v, want a 503", err)
	}

	// The flood ends: new connections are served, everything is released.
	mu.Lock()
	for _, c := range conns {
		c.Close()
	}
	mu.Unlock()
	wg.Wait()
	waitFor(t, "the stalled connections closed by the server", func() bool { return g.open.Load() <= 1 })
	if code, body := ping(bob, 21); code != 200 || !strings.Contains(body, `"result"`) {
		t.Fatalf("a new connection after the flood: %d %s", code, body)
	}
	bob.CloseIdleConnections()
	waitFor(t, "fds and goroutines back to the baseline", func() bool {
		fds, _ := procSelf()
		return fds <= fds0+4 && runtime.NumGoroutine() <= gr0+8
	})
}

// TestLimitListenerClose: Close stops accepting and returns only after the
// refusals in progress ended (their goroutines are joined).
func TestLimitListenerClose(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ll := LimitListener(ln, 1).(*limitListener)
	accepted := make(chan net.Conn, 4)
	acceptErr := make(chan error, 1)
	go func() {
		for {
			c, err := ll.Accept()
			if err != nil {
				acceptErr <- err
				return
			}
			accepted <- c
		}
	}()
	held, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	srvSide := <-accepted
	defer srvSide.Close()
	silent, err := net.Dial("tcp", ln.Addr().String()) // refused: waits for a header that never comes
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	waitFor(t, "the refusal in progress", func() bool { return ll.refusing.Load() == 1 })
	if err := ll.Close(); err != nil {
		t.Fatal(err)
	}
	if n := ll.refusing.Load(); n != 0 {
		t.Fatalf("Close returned with %d refusals in progress", n)
	}
	if err := <-acceptErr; err == nil {
		t.Fatal("Accept after Close returned no error")
	}
	srvSide.Close()
	srvSide.Close() // twice: the slot is given back once
	if n := ll.open.Load(); n != 0 {
		t.Fatalf("%d connections counted open after the only one closed", n)
	}
}
