package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/sigilcore/sigil-hub/internal/signtest"
	"github.com/sigilcore/sigil-hub/internal/testbuf"
)

// startHTTPHub runs the binary with --listen 127.0.0.1:0 and returns the /mcp URL.
func startHTTPHub(t *testing.T, env []string, args ...string) (string, *testbuf.Buffer) {
	t.Helper()
	url, stderr, _ := startHTTPHubCmd(t, env, args...)
	return url, stderr
}

// startHTTPHubCmd is startHTTPHub that also returns the hub process.
func startHTTPHubCmd(t *testing.T, env []string, args ...string) (string, *testbuf.Buffer, *exec.Cmd) {
	t.Helper()
	cmd := exec.Command(hubBin, append([]string{"--listen", "127.0.0.1:0"}, args...)...)
	cmd.Env = baseEnv(env...)
	stderr := &testbuf.Buffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(interruptSignal())
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("hub stderr:\n%s", stderr.String())
		}
	})
	re := regexp.MustCompile(`url=(http://127\.0\.0\.1:\d+/mcp)`)
	var url string
	eventually(t, "the HTTP listener", func() bool {
		if m := re.FindStringSubmatch(stderr.String()); m != nil {
			url = m[1]
			return true
		}
		return false
	})
	return url, stderr, cmd
}

func httpClient(t *testing.T, url string, headers map[string]string) (*client.Client, *[]mcp.JSONRPCNotification, *sync.Mutex) {
	t.Helper()
	c, err := client.NewStreamableHttpClient(url, transport.WithHTTPHeaders(headers))
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var notes []mcp.JSONRPCNotification
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		mu.Lock()
		notes = append(notes, n)
		mu.Unlock()
	})
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = mcp.LATEST_LEGACY_PROTOCOL_VERSION
	req.Params.ClientInfo = mcp.Implementation{Name: "http-client", Version: "1"}
	if _, err := c.Initialize(ctx, req); err != nil {
		t.Fatalf("initialize over HTTP: %v", err)
	}
	t.Cleanup(func() { c.Close() })
	return c, &notes, &mu
}

// TestHTTPSessionsAreIsolated: two HTTP sessions calling the same upstream
// with identical request ids (each client counts from the same start) get
// only their own responses and progress notifications, and each is
// authorized as its token holder.
func TestHTTPSessionsAreIsolated(t *testing.T) {
	sign := signtest.New(t, signtest.Options{APIKey: testKey})
	env := append(signEnv(sign), "SIGIL_HUB_TOKEN_ALICE=tok-alice-1-0123456789abcdef0123456789", "SIGIL_HUB_TOKEN_BOB=tok-bob-2-0123456789abcdef0123456789")
	url, stderr := startHTTPHub(t, env, "--config", writeConfig(t, fakeServer(t, "files", newUpstreamLog(t), "")))

	type who struct {
		name  string
		token string
	}
	var wg sync.WaitGroup
	for _, w := range []who{{"alice", "tok-alice-1-0123456789abcdef0123456789"}, {"bob", "tok-bob-2-0123456789abcdef0123456789"}} {
		c, _, _ := httpClient(t, url, map[string]string{"Authorization": "Bearer " + w.token})
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			for i := range 20 {
				args := map[string]any{"who": w.name, "i": i}
				res, err := c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "files__echo", Arguments: args}})
				if err != nil {
					t.Errorf("%s call %d: %v", w.name, i, err)
					return
				}
				text := res.Content[0].(mcp.TextContent).Text
				want, _ := json.Marshal(args)
				if text != string(want) {
					t.Errorf("%s got another session's answer: %s (want %s)", w.name, text, want)
				}
			}
			// Progress over raw HTTP, reading both the POST stream and the
			// session's GET stream: mcp-go's server (the fake upstream) queues
			// notifications apart from responses, so progress may trail the
			// result, and the hub then delivers it on the GET stream.
			toks := rawProgress(t, url, w.token, "tok-"+w.name)
			for _, tok := range toks {
				if tok != "tok-"+w.name {
					t.Errorf("%s received a progress notification for %q", w.name, tok)
				}
			}
			if len(toks) != 3 {
				t.Errorf("%s received %d progress notifications, want 3", w.name, len(toks))
			}
		}()
	}
	wg.Wait()
	agents := map[string]int{}
	tasks := map[string]map[string]bool{} // agent → task_ids
	for _, r := range sign.Requests() {
		var b struct {
			AgentID string `json:"agentId"`
			Intent  struct {
				TaskID string `json:"task_id"`
			} `json:"intent"`
		}
		_ = json.Unmarshal(r.Body, &b)
		agents[b.AgentID]++
		if tasks[b.AgentID] == nil {
			tasks[b.AgentID] = map[string]bool{}
		}
		tasks[b.AgentID][b.Intent.TaskID] = true
	}
	// Each session has its own task_id (docs/protocol.md#task_id): alice's
	// two sessions (the SDK client and the raw one) and bob's two give four
	// distinct ids.
	seen := map[string]bool{}
	for _, ids := range tasks {
		for id := range ids {
			if seen[id] {
				t.Fatalf("task_id %q used by two sessions", id)
			}
			seen[id] = true
		}
	}
	if len(seen) != 4 {
		t.Fatalf("%d distinct task_ids, want one per session (4): %v", len(seen), tasks)
	}
	if agents["alice"] != 21 || agents["bob"] != 21 {
		t.Fatalf("agentIds seen by Sign = %v, want alice and bob 21 each (the token names)", agents)
	}
	if strings.Contains(stderr.String(), "tok-alice-1-0123456789abcdef0123456789") || strings.Contains(stderr.String(), "tok-bob-2-0123456789abcdef0123456789") {
		t.Fatal("a bearer token appears in the logs")
	}
}

// TestHTTPGuards: no token → 401; another token's session → 404; a foreign
// Origin or Host → 403; an oversized body → 413.
func TestHTTPGuards(t *testing.T) {
	sign := signtest.New(t, signtest.Options{APIKey: testKey})
	env := append(signEnv(sign), "SIGIL_HUB_TOKEN_ALICE=tok-a-0123456789abcdef0123456789", "SIGIL_HUB_TOKEN_BOB=tok-b-0123456789abcdef0123456789")
	url, _ := startHTTPHub(t, env, "--config", writeConfig(t, fakeServer(t, "files", newUpstreamLog(t), "")))
	initBody := `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"g","version":"1"}}}`
	post := func(body string, hdr map[string]string) *http.Response {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		for k, v := range hdr {
			if k == "Host" {
				req.Host = v
				continue
			}
			req.Header.Set(k, v)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	if r := post(initBody, nil); r.StatusCode != 401 {
		t.Fatalf("no token: %d, want 401", r.StatusCode)
	}
	if r := post(initBody, map[string]string{"Authorization": "Bearer wrong"}); r.StatusCode != 401 {
		t.Fatalf("wrong token: %d, want 401", r.StatusCode)
	}
	r := post(initBody, map[string]string{"Authorization": "Bearer tok-a-0123456789abcdef0123456789"})
	sid := r.Header.Get("Mcp-Session-Id")
	if r.StatusCode != 200 || len(sid) < 32 {
		t.Fatalf("initialize: %d, session id %q", r.StatusCode, sid)
	}
	list := `{"jsonrpc":"2.0","id":2,"method":"tools/list"}`
	if r := post(list, map[string]string{"Authorization": "Bearer tok-b-0123456789abcdef0123456789", "Mcp-Session-Id": sid}); r.StatusCode != 404 {
		t.Fatalf("bob using alice's session: %d, want 404", r.StatusCode)
	}
	if r := post(list, map[string]string{"Authorization": "Bearer tok-a-0123456789abcdef0123456789", "Mcp-Session-Id": sid, "Origin": "https://evil.example"}); r.StatusCode != 403 {
		t.Fatalf("foreign origin: %d, want 403", r.StatusCode)
	}
	if r := post(list, map[string]string{"Authorization": "Bearer tok-a-0123456789abcdef0123456789", "Mcp-Session-Id": sid, "Host": "evil.example:80"}); r.StatusCode != 403 {
		t.Fatalf("foreign host (DNS rebinding): %d, want 403", r.StatusCode)
	}
	big := `{"jsonrpc":"2.0","id":3,"method":"ping","params":{"x":"` + strings.Repeat("a", 5<<20) + `"}}`
	if r := post(big, map[string]string{"Authorization": "Bearer tok-a-0123456789abcdef0123456789", "Mcp-Session-Id": sid}); r.StatusCode != 413 {
		t.Fatalf("5 MiB body: %d, want 413", r.StatusCode)
	}
	r = post(list, map[string]string{"Authorization": "Bearer tok-a-0123456789abcdef0123456789", "Mcp-Session-Id": sid, "Origin": "http://localhost:3000"})
	var buf bytes.Buffer
	buf.ReadFrom(r.Body)
	if r.StatusCode != 200 || !strings.Contains(buf.String(), "files__echo") {
		t.Fatalf("own session: %d %s", r.StatusCode, buf.String())
	}
}

// TestHTTPPublicNeedsToken: a non-loopback --listen without tokens refuses.
func TestHTTPPublicNeedsToken(t *testing.T) {
	cmd := exec.Command(hubBin, "--listen", "0.0.0.0:0", "--config", writeConfig(t, fakeServer(t, "files", newUpstreamLog(t), "")))
	cmd.Env = baseEnv("SIGIL_API_KEY=k")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "SIGIL_HUB_TOKEN_") {
		t.Fatalf("public listen without a token: %v\n%s", err, out)
	}
}

// rawProgress opens its own session with token, holds its GET stream, calls
// files__progress (n=3) with progressToken tok, and returns the progress
// tokens seen on the POST and GET streams until three arrived or 30 s passed.
func rawProgress(t *testing.T, url, token, tok string) []string {
	do := func(method, body, sid, accept string) *http.Response {
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", accept)
		if sid != "" {
			req.Header.Set("Mcp-Session-Id", sid)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("%s: %v", method, err)
			return nil
		}
		return resp
	}
	init := do(http.MethodPost, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"raw","version":"1"}}}`, "", "application/json, text/event-stream")
	if init == nil {
		return nil
	}
	init.Body.Close()
	sid := init.Header.Get("Mcp-Session-Id")
	found := make(chan string, 16)
	read := func(r *http.Response) {
		defer r.Body.Close()
		sc := bufio.NewScanner(r.Body)
		for sc.Scan() {
			line, ok := strings.CutPrefix(sc.Text(), "data: ")
			if !ok {
				continue
			}
			var m struct {
				Method string `json:"method"`
				Params struct {
					ProgressToken any `json:"progressToken"`
				} `json:"params"`
			}
			if json.Unmarshal([]byte(line), &m) == nil && m.Method == "notifications/progress" {
				found <- fmt.Sprint(m.Params.ProgressToken)
			}
		}
	}
	get := do(http.MethodGet, "", sid, "text/event-stream")
	if get == nil {
		return nil
	}
	go read(get)
	post := do(http.MethodPost, `{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"files__progress","arguments":{"n":3},"_meta":{"progressToken":`+quoteJSON(tok)+`}}}`, sid, "application/json, text/event-stream")
	if post == nil {
		return nil
	}
	go read(post)
	var toks []string
	timeout := time.After(30 * time.Second)
	for len(toks) < 3 {
		select {
		case tk := <-found:
			toks = append(toks, tk)
		case <-timeout:
			return toks
		}
	}
	get.Body.Close()
	return toks
}

// TestHTTPServerRequestsReachTheCallingSession: with two HTTP sessions that
// both support roots, an upstream's roots/list caused by one session's call
// reaches that session only.
func TestHTTPServerRequestsReachTheCallingSession(t *testing.T) {
	sign := signtest.New(t, signtest.Options{APIKey: testKey})
	url, _ := startHTTPHub(t, signEnv(sign), "--config", writeConfig(t, fakeServer(t, "files", newUpstreamLog(t), "")))
	var asked [2]atomic.Int32
	clients := make([]*client.Client, 2)
	for i := range clients {
		c, err := client.NewStreamableHttpClient(url, transport.WithContinuousListening())
		if err != nil {
			t.Fatal(err)
		}
		// NewStreamableHttpClient takes no client options: set the handler
		// through a fresh client on its transport.
		c = client.NewClient(c.GetTransport(), client.WithRootsHandler(rootsFunc(func(ctx context.Context, r mcp.ListRootsRequest) (*mcp.ListRootsResult, error) {
			asked[i].Add(1)
			return &mcp.ListRootsResult{Roots: []mcp.Root{{URI: fmt.Sprintf("file:///session-%d", i)}}}, nil
		})))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		if err := c.Start(ctx); err != nil {
			t.Fatal(err)
		}
		req := mcp.InitializeRequest{}
		req.Params.ProtocolVersion = mcp.LATEST_LEGACY_PROTOCOL_VERSION
		req.Params.ClientInfo = mcp.Implementation{Name: fmt.Sprintf("s%d", i), Version: "1"}
		if _, err := c.Initialize(ctx, req); err != nil {
			t.Fatal(err)
		}
		cancel()
		t.Cleanup(func() { c.Close() })
		clients[i] = c
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := clients[1].CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "files__roots", Arguments: map[string]any{}}})
	if err != nil {
		t.Fatal(err)
	}
	text := res.Content[0].(mcp.TextContent).Text
	if !strings.Contains(text, "file:///session-1") || asked[0].Load() != 0 || asked[1].Load() != 1 {
		t.Fatalf("roots answered %q; session 0 asked %d times, session 1 %d times (want 0 and 1)", text, asked[0].Load(), asked[1].Load())
	}
}
