//go:build linux

package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/sigilcore/sigil-hub/front"
	"github.com/sigilcore/sigil-hub/internal/signtest"
)

// TestFaultE68ConnectionLimit (docs/faults.md case 68): 10,000 concurrent
// connections to the --listen front (fewer only where this process may not
// open that many files; the test says so), each stalled inside its request
// body. The hub holds at most its limit (its fd count stays within it, plus
// the refusals in progress), answers the rest 503 with Retry-After (or closes
// them unanswered when too many refusals are in progress), its RSS grows by
// less than 64 MiB, and a client whose session and connection predate the
// flood keeps calling tools. (hub TestLimitListener and
// TestHTTPConnectionFlood test the listener itself.)
func TestFaultE68ConnectionLimit(t *testing.T) {
	t.Parallel()
	n := 10000
	var lim syscall.Rlimit
	if syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim) == nil && int(lim.Cur) < n+1000 {
		n = max(front.DefaultMaxConns+300, int(lim.Cur)-1000)
		t.Logf("#68: this process may open %d files: %d connections instead of 10,000", lim.Cur, n)
	}
	extra := n - front.DefaultMaxConns
	sign := signtest.New(t, signtest.Options{APIKey: testKey})
	u, _, cmd := startHTTPHubCmd(t, signEnv(sign), "--config", writeConfig(t, fakeServer(t, "files", newUpstreamLog(t), "")))
	pu, _ := url.Parse(u)
	// A client on one keep-alive connection that predates the flood. JSON
	// answers only: a client that closes an SSE answer before its end (as
	// mcp-go's does once it has the response) cannot reuse the connection.
	c := &http.Client{Transport: &http.Transport{MaxConnsPerHost: 1, MaxIdleConnsPerHost: 1}}
	t.Cleanup(c.CloseIdleConnections)
	post := func(sid, body string) (int, string, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		if sid != "" {
			req.Header.Set("Mcp-Session-Id", sid)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("POST %.60s: %v", body, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header.Get("Mcp-Session-Id"), string(b)
	}
	code, sid, body := post("", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"e68","version":"1"}}}`)
	if code != 200 || sid == "" {
		t.Fatalf("initialize: %d %s", code, body)
	}
	post(sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	callOK := func(what string) {
		t.Helper()
		code, _, body := post(sid, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"files__echo","arguments":{"e68":"`+what+`"}}}`)
		if code != 200 || !strings.Contains(body, `\"e68\":\"`+what) {
			t.Fatalf("call %s: %d %s", what, code, body)
		}
	}
	callOK("before")
	base := countFDs(cmd.Process.Pid)
	rss := watchRSS(cmd.Process.Pid)

	var got503, dropped, answered atomic.Int64
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	head := "POST /mcp HTTP/1.1\r\nHost: " + pu.Host + "\r\nContent-Type: application/json\r\nAccept: application/json, text/event-stream\r\nContent-Length: 1000\r\n\r\n{"
	for i := 0; i < n; i++ {
		conn, err := net.DialTimeout("tcp", pu.Host, 30*time.Second)
		if err != nil {
			t.Fatalf("dial %d: %v", i, err)
		}
		mu.Lock()
		conns = append(conns, conn)
		mu.Unlock()
		_, _ = io.WriteString(conn, head)
		wg.Add(1)
		go func() {
			defer wg.Done()
			line, err := bufio.NewReader(conn).ReadString('\n')
			switch {
			case strings.HasPrefix(line, "HTTP/1.1 503 "):
				got503.Add(1)
			case err != nil && line == "":
				dropped.Add(1)
			default:
				answered.Add(1) // the hub's own answer (408 once the body timed out)
			}
			conn.Close()
		}()
	}
	t.Cleanup(func() {
		mu.Lock()
		for _, conn := range conns {
			conn.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	// The refused connections are answered within 1.5 s each; wait for
	// them (the bound only catches "never").
	deadline := time.Now().Add(30 * time.Second)
	fds := 0
	for got503.Load()+dropped.Load() < int64(extra) && time.Now().Before(deadline) {
		if fds = max(fds, countFDs(cmd.Process.Pid)); fds >= base+n {
			break // every connection accepted: no limit
		}
		time.Sleep(50 * time.Millisecond)
	}
	fds = max(fds, countFDs(cmd.Process.Pid))
	callOK("during")
	mem := checkRSS(t, rss, "#68", fmt.Sprintf("%d connections", n), 64<<20)
	t.Logf("%d connections to the --listen front (limit %d): %d refused 503, %d closed unanswered, %d answered by the hub; hub fds %d → at most %d",
		n, front.DefaultMaxConns, got503.Load(), dropped.Load(), answered.Load(), base, fds)
	if got503.Load()+dropped.Load() == 0 {
		t.Fatalf("#68: the --listen front accepted all %d connections: no connection limit", n)
	}
	if got503.Load() == 0 {
		t.Errorf("no connection over the limit was answered 503")
	}
	if mem != "" {
		t.Error(mem)
	}
	// Held: the limit; in refusal: at most 64 at a time.
	if fds > base+front.DefaultMaxConns+64+16 {
		t.Errorf("the hub had %d fds with %d connections open, baseline %d: over the limit of %d connections plus 64 refusals", fds, n, base, front.DefaultMaxConns)
	}
}
