package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	neturl "net/url"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigilcore/sigil-hub/front"
	"github.com/sigilcore/sigil-hub/internal/testupstream"
)

// --- a minimal Streamable HTTP client -----------------------------------

// httpConn is the benchmark's Streamable HTTP MCP client: one POST per
// message on keep-alive connections, the answer read from a JSON body or
// from the SSE event that carries it. Like rpcConn it is deliberately tiny,
// and the same client drives the hub and the direct upstream. Safe for
// concurrent use once initialized.
type httpConn struct {
	url     string
	client  *http.Client
	session string // Mcp-Session-Id, set by initialize
	seq     atomic.Uint64
}

func newHTTPConn(tb testing.TB, url string) *httpConn {
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute}
	tb.Cleanup(tr.CloseIdleConnections)
	return &httpConn{url: url, client: &http.Client{Transport: tr}}
}

// post sends one message and returns the response, whose body the caller
// closes.
func (c *httpConn) post(ctx context.Context, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json, text/event-stream")
	if c.session != "" {
		req.Header.Set("Mcp-Session-Id", c.session)
		req.Header.Set("MCP-Protocol-Version", "2025-06-18")
	}
	return c.client.Do(req)
}

// call sends one request and returns its raw JSON-RPC response.
func (c *httpConn) call(ctx context.Context, method, params string) ([]byte, error) {
	id := c.seq.Add(1)
	b := appendRequest(nil, id, method, params)
	resp, err := c.post(ctx, b)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", method, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<10))
		return nil, fmt.Errorf("%s: HTTP %d: %s", method, resp.StatusCode, body)
	}
	if method == "initialize" {
		c.session = resp.Header.Get("Mcp-Session-Id")
	}
	if !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/event-stream") {
		return io.ReadAll(resp.Body)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 16<<20)
	for sc.Scan() {
		data, ok := bytes.CutPrefix(sc.Bytes(), []byte("data:"))
		if !ok {
			continue
		}
		data = bytes.TrimSpace(data)
		if rid, ok := responseID(data); ok && rid == id {
			return bytes.Clone(data), nil
		}
	}
	return nil, fmt.Errorf("%s: event stream ended without the response (%v)", method, sc.Err())
}

// initialize performs the MCP handshake and keeps the session id.
func (c *httpConn) initialize(ctx context.Context) error {
	line, err := c.call(ctx, "initialize", `{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}`)
	if err != nil {
		return err
	}
	if !bytes.Contains(line, []byte(`"result":`)) {
		return fmt.Errorf("initialize: %.300s", line)
	}
	resp, err := c.post(ctx, []byte(`{"jsonrpc":"2.0","method":"notifications/initialized"}`))
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("notifications/initialized: HTTP %d", resp.StatusCode)
	}
	return nil
}

func (c *httpConn) callTool(ctx context.Context, name, args string) error {
	return callTool(ctx, c, name, args)
}

// --- processes and the in-process hub's HTTP front ------------------------

// startHTTPUpstream starts the fake upstream serving Streamable HTTP on a
// loopback port, in a process of its own, and returns its /mcp URL.
func startHTTPUpstream(tb testing.TB) string {
	tb.Helper()
	cmd := exec.Command(selfExe(tb))
	cmd.Env = cleanEnv(testupstream.EnvMarker+"=1", testupstream.EnvHTTP+"=127.0.0.1:0")
	stdin, err := cmd.StdinPipe() // the fake stops at stdin EOF
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { stopProcess(cmd, stdin) })
	line, err := bufio.NewReader(stdout).ReadString('\n')
	url, ok := strings.CutPrefix(strings.TrimSpace(line), "LISTENING ")
	if err != nil || !ok {
		tb.Fatalf("HTTP upstream did not say where it listens: %q %v", line, err)
	}
	return url
}

// directHTTP starts an HTTP upstream and connects the HTTP client to it
// directly.
func directHTTP(tb testing.TB) (conn *httpConn, url string) {
	tb.Helper()
	url = startHTTPUpstream(tb)
	conn = newHTTPConn(tb, url)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := conn.initialize(ctx); err != nil {
		tb.Fatalf("initialize the HTTP upstream: %v", err)
	}
	return conn, url
}

// readyHTTPHub runs a hub in process with its Streamable HTTP front on a
// loopback port (no tokens, as on loopback by default), connects the HTTP
// client, initializes and lists the tools once (which waits for every
// upstream's first start attempt).
func readyHTTPHub(tb testing.TB, s hubSetup) *httpConn {
	tb.Helper()
	h, stopRun := runHub(tb, s)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	hf := front.NewHTTP(h, front.HTTPOptions{})
	srv := &http.Server{Handler: hf}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	tb.Cleanup(func() {
		_ = srv.Close()
		if err := <-served; err != nil && !errors.Is(err, http.ErrServerClosed) {
			tb.Logf("HTTP front: %v", err)
		}
		hf.Close()
		stopRun()
	})
	conn := newHTTPConn(tb, "http://"+ln.Addr().String()+"/mcp")
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	if err := conn.initialize(ctx); err != nil {
		tb.Fatalf("initialize the hub over HTTP: %v", err)
	}
	if _, err := conn.call(ctx, "tools/list", `{}`); err != nil {
		tb.Fatalf("hub tools/list over HTTP: %v", err)
	}
	return conn
}

// proxiedHTTP puts a reverse proxy that only copies bytes (Go's
// httputil.ReverseProxy, flushing at once) in front of the Streamable HTTP
// upstream at url, in this process on a loopback port, and returns an
// initialized client connected through it.
func proxiedHTTP(tb testing.TB, url string) *httpConn {
	tb.Helper()
	target, err := neturl.Parse(url)
	if err != nil {
		tb.Fatal(err)
	}
	rp := httputil.NewSingleHostReverseProxy(&neturl.URL{Scheme: target.Scheme, Host: target.Host})
	rp.FlushInterval = -1
	tr := &http.Transport{MaxIdleConns: 256, MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute}
	rp.Transport = tr
	srv := httptest.NewServer(rp)
	tb.Cleanup(func() { srv.Close(); tr.CloseIdleConnections() })
	conn := newHTTPConn(tb, srv.URL+target.Path)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := conn.initialize(ctx); err != nil {
		tb.Fatalf("initialize through the proxy: %v", err)
	}
	return conn
}
