package main

import (
	"bufio"
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/sigilcore/sigil-hub/internal/signtest"
)

// rootsAnswers returns the answers the scripted upstream got to its
// roots/list requests, in order.
func rootsAnswers(t *testing.T, log string) []string {
	t.Helper()
	f, err := os.Open(log)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		if l := sc.Text(); strings.Contains(l, `"scripted-roots-`) && !strings.Contains(l, `"method"`) {
			out = append(out, l)
		}
	}
	return out
}

// awaitRootsAnswer waits for the scripted upstream's n-th roots/list answer
// and fails unless it holds want.
func awaitRootsAnswer(t *testing.T, log string, n int, want string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if a := rootsAnswers(t, log); len(a) >= n {
			if !strings.Contains(a[n-1], want) {
				t.Fatalf("roots/list number %d was answered %s, want the roots %s", n, a[n-1], want)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("roots/list number %d not answered after 30 s", n)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// rootsClient is a Streamable HTTP client with its event stream open that
// answers roots/list with root.
func rootsClient(t *testing.T, url, root string) *client.Client {
	t.Helper()
	c, err := client.NewStreamableHttpClient(url, transport.WithContinuousListening())
	if err != nil {
		t.Fatal(err)
	}
	c = client.NewClient(c.GetTransport(), client.WithRootsHandler(rootsFunc(func(context.Context, mcp.ListRootsRequest) (*mcp.ListRootsResult, error) {
		return &mcp.ListRootsResult{Roots: []mcp.Root{{URI: root}}}, nil
	})))
	// Start's context is the event stream's life: not the handshake's.
	if err := c.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = mcp.LATEST_LEGACY_PROTOCOL_VERSION
	req.Params.ClientInfo = mcp.Implementation{Name: "roots-client", Version: "1"}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := c.Initialize(ctx, req); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// postMCP sends one JSON-RPC message to the hub's /mcp as a session
// (sid "" for initialize) and returns the session id the hub answered with.
func postMCP(t *testing.T, url, sid, body string) string {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if sid != "" {
		req.Header.Set("Mcp-Session-Id", sid)
		req.Header.Set("MCP-Protocol-Version", "2025-11-25")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 {
		t.Fatalf("POST %.60s: HTTP %d", body, resp.StatusCode)
	}
	return resp.Header.Get("Mcp-Session-Id")
}

// TestHTTPServerRequestOutsideACallWaitsForASession: over Streamable HTTP,
// an upstream's roots/list that no client call caused (a server asks right
// after it is initialized) waits for a client rather than fail when none is
// connected yet.
func TestHTTPServerRequestOutsideACallWaitsForASession(t *testing.T) {
	sign := signtest.New(t, signtest.Options{APIKey: testKey})
	log := filepath.Join(t.TempDir(), "scripted.log")
	cfg := "startup_timeout = 20000\n" + scriptedServerTOML(t, "ws", log, scriptedRoots+"=init")
	url, _ := startHTTPHub(t, signEnv(sign), "--config", writeConfig(t, cfg))

	eventually(t, "the upstream's roots/list at start", func() bool { return fileHas(log, `"asked roots/list"`) })
	time.Sleep(200 * time.Millisecond)
	if a := rootsAnswers(t, log); len(a) > 0 {
		t.Fatalf("roots/list asked before any client connected was answered at once: %s (want it to wait for a client)", a[0])
	}
	rootsClient(t, url, "file:///live")
	awaitRootsAnswer(t, log, 1, "file:///live")
}

// abandonedSession initializes an HTTP session that declares roots and
// never reads its event stream nor answers anything (a client gone without
// ending its session), and returns its id.
func abandonedSession(t *testing.T, url string) string {
	t.Helper()
	sid := postMCP(t, url, "", `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{"roots":{"listChanged":true}},"clientInfo":{"name":"gone","version":"1"}}}`)
	if sid == "" {
		t.Fatal("initialize: no Mcp-Session-Id")
	}
	postMCP(t, url, sid, `{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	return sid
}

// TestHTTPAbandonedSessionDoesNotBlockRoots: an HTTP session whose client
// went away without ending it never keeps an upstream's roots/list outside
// a call from the clients that are there: alone, it does not hold the
// request until a live client connects; next to a live client, and asked
// first (it is the most recently active), it is passed over.
func TestHTTPAbandonedSessionDoesNotBlockRoots(t *testing.T) {
	sign := signtest.New(t, signtest.Options{APIKey: testKey})
	log := filepath.Join(t.TempDir(), "scripted.log")
	cfg := "startup_timeout = 20000\n" + scriptedServerTOML(t, "ws", log, scriptedRoots+"=list_changed")
	url, _ := startHTTPHub(t, signEnv(sign), "--config", writeConfig(t, cfg))

	// Alone: the abandoned session's roots/list_changed makes the upstream
	// ask; a live client that connects meanwhile answers.
	sid := abandonedSession(t, url)
	postMCP(t, url, sid, `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`) // answered once the upstream is ready
	postMCP(t, url, sid, `{"jsonrpc":"2.0","method":"notifications/roots/list_changed"}`)
	eventually(t, "the upstream's roots/list", func() bool { return fileHas(log, `"asked roots/list"`) })
	rootsClient(t, url, "file:///live")
	awaitRootsAnswer(t, log, 1, "file:///live")

	// Next to a live client, asked first.
	start := time.Now()
	postMCP(t, url, sid, `{"jsonrpc":"2.0","method":"notifications/roots/list_changed"}`)
	awaitRootsAnswer(t, log, 2, "file:///live")
	t.Logf("answered by the live session %v after the abandoned one's list_changed", time.Since(start).Round(time.Millisecond))
}
