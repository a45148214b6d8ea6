package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/sigilcore/sigil-hub/internal/signtest"
	"github.com/sigilcore/sigil-hub/internal/testupstream"
)

// TestFirstListWaitsForSlowUpstream: clients that ignore list_changed get
// every upstream in their first tools/list, even one that starts slowly
// (an npx download); start-up is bounded by startup_timeout.
func TestFirstListWaitsForSlowUpstream(t *testing.T) {
	sign := signtest.New(t, signtest.Options{APIKey: testKey})
	slow := filepath.Join(t.TempDir(), "slow-upstream.sh")
	script := fmt.Sprintf("#!/bin/sh\nsleep 1.5\nexec %q\n", selfExe(t))
	if err := os.WriteFile(slow, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	cfg := fakeServer(t, "fast", newUpstreamLog(t), "") +
		strings.Replace(fakeServer(t, "slow", newUpstreamLog(t), ""), fmt.Sprintf("command = %q", selfExe(t)), fmt.Sprintf("command = %q", slow), 1)
	h := startHub(t, signEnv(sign), "--config", writeConfig(t, cfg))
	names := h.toolNames()
	if !slices.Contains(names, "slow__echo") || !slices.Contains(names, "fast__echo") {
		t.Fatalf("first tools/list = %v, want the slow upstream's tools too", names)
	}
}

// TestToolDefinitionsForwardedLosslessly: schemas, annotations, _meta,
// icons and unknown keywords reach the client byte for byte (mcp-go's own
// decode would drop anyOf, $schema and unknown keywords).
func TestToolDefinitionsForwardedLosslessly(t *testing.T) {
	sign := signtest.New(t, signtest.Options{APIKey: testKey})
	raw := startRaw(t, signEnv(sign), "--config", writeConfig(t, fakeServer(t, "files", newUpstreamLog(t), "")))
	raw.send(`{"jsonrpc":"2.0","id":"l","method":"tools/list"}`)
	m := raw.await(`"l"`)
	var res struct {
		Tools []json.RawMessage `json:"tools"`
	}
	if err := json.Unmarshal(m["result"], &res); err != nil {
		t.Fatal(err)
	}
	var rich string
	for _, tl := range res.Tools {
		if strings.Contains(string(tl), `"name":"files__rich"`) {
			rich = string(tl)
		}
	}
	if rich == "" {
		t.Fatalf("files__rich not listed: %s", m["result"])
	}
	for _, want := range []string{`"inputSchema":` + testupstream.RichInputSchema, `"outputSchema":` + testupstream.RichOutputSchema} {
		if !strings.Contains(rich, want) {
			t.Fatalf("rich tool definition changed:\n got  %s\n want it to contain %s", rich, want)
		}
	}
}

// TestCancelAfterForwardReachesUpstream: a client that cancels a forwarded
// call makes the hub send notifications/cancelled upstream (docs/faults.md
// case 26).
func TestCancelAfterForwardReachesUpstream(t *testing.T) {
	sign := signtest.New(t, signtest.Options{APIKey: testKey})
	log := newUpstreamLog(t)
	h := startHub(t, signEnv(sign), "--config", writeConfig(t, fakeServer(t, "files", log, "")))
	h.toolNames()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := h.c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "files__slow", Arguments: map[string]any{"ms": 60000}}})
		errc <- err
	}()
	eventually(t, "the call to reach the upstream", func() bool { return len(log.toolCalls(t)) == 1 })
	cancel()
	<-errc
	eventually(t, "notifications/cancelled at the upstream", func() bool {
		return log.contains(t, "notifications/cancelled") && log.contains(t, `"cancelled"`)
	})
}

// TestServerRequestsOptOut: server_requests = false declares no sampling,
// elicitation or roots to that upstream and refuses its requests, even for
// a client that supports them.
func TestServerRequestsOptOut(t *testing.T) {
	sign := signtest.New(t, signtest.Options{APIKey: testKey})
	log := newUpstreamLog(t)
	called := false
	opts := []client.ClientOption{client.WithRootsHandler(rootsFunc(func(ctx context.Context, r mcp.ListRootsRequest) (*mcp.ListRootsResult, error) {
		called = true
		return &mcp.ListRootsResult{Roots: []mcp.Root{{URI: "file:///x"}}}, nil
	}))}
	h := startHubWith(t, opts, signEnv(sign), "--config", writeConfig(t, fakeServer(t, "files", log, "server_requests = false")))
	resp := h.call("files__roots", `{}`)
	if called {
		t.Fatal("a roots/list request of an opted-out upstream reached the client")
	}
	if resp.Error == nil && !strings.Contains(string(resp.Result), "error") && !strings.Contains(string(resp.Result), "isError") {
		t.Fatalf("roots tool answered %s, want a failure", resp.Result)
	}
	if log.contains(t, `"roots":{`) || log.contains(t, `"sampling":{`) {
		t.Fatal("the opted-out upstream was told the hub relays roots or sampling")
	}
}

// TestSingleWrapRelaysServerRequests: a server wrapped with `--` (or
// --remote) may ask the client for roots, sampling and elicitation.
func TestSingleWrapRelaysServerRequests(t *testing.T) {
	sign := signtest.New(t, signtest.Options{APIKey: testKey})
	called := false
	opts := []client.ClientOption{client.WithRootsHandler(rootsFunc(func(ctx context.Context, r mcp.ListRootsRequest) (*mcp.ListRootsResult, error) {
		called = true
		return &mcp.ListRootsResult{Roots: []mcp.Root{{URI: "file:///wrapped-root"}}}, nil
	}))}
	env := append(signEnv(sign), "SIGIL_HUB_TEST_UPSTREAM=1")
	h := startHubWith(t, opts, env, "--server-id", "files", "--", selfExe(t))
	got := resultText(t, h.call("roots", `{}`))
	if !called || !strings.Contains(got, "file:///wrapped-root") {
		t.Fatalf("roots request not relayed in single-wrap mode: handler called %v, result %q", called, got)
	}
}

// TestListPagination: a list longer than a page comes in pages with an
// opaque cursor, and following the cursors yields every tool exactly once.
func TestListPagination(t *testing.T) {
	sign := signtest.New(t, signtest.Options{APIKey: testKey})
	var extra []string
	for i := range 1500 {
		extra = append(extra, fmt.Sprintf("t%04d", i))
	}
	cfg := strings.Replace(fakeServer(t, "many", newUpstreamLog(t), ""), `TESTUPSTREAM_NAME = "many"`,
		`TESTUPSTREAM_NAME = "many", TESTUPSTREAM_TOOLS = "`+strings.Join(extra, ",")+`", TESTUPSTREAM_PAGE_SIZE = "400"`, 1)
	h := startHub(t, signEnv(sign), "--config", writeConfig(t, cfg))
	seen := map[string]int{}
	cursor, pages := "", 0
	for {
		params := map[string]any{}
		if cursor != "" {
			params["cursor"] = cursor
		}
		resp := h.rpc("tools/list", params)
		if resp.Error != nil {
			t.Fatalf("page %d: %+v", pages, resp.Error)
		}
		var r struct {
			Tools []struct {
				Name string `json:"name"`
			} `json:"tools"`
			NextCursor string `json:"nextCursor"`
		}
		if err := json.Unmarshal(resp.Result, &r); err != nil {
			t.Fatal(err)
		}
		pages++
		for _, tl := range r.Tools {
			seen[tl.Name]++
		}
		if r.NextCursor == "" {
			break
		}
		cursor = r.NextCursor
	}
	if pages < 2 {
		t.Fatalf("%d tools came in %d page(s), want several", len(seen), pages)
	}
	for _, n := range extra {
		if seen["many__"+n] != 1 {
			t.Fatalf("tool many__%s listed %d times", n, seen["many__"+n])
		}
	}
	if resp := h.rpc("tools/list", map[string]any{"cursor": "not-a-cursor"}); resp.Error == nil || resp.Error.Code != -32602 {
		t.Fatalf("an invalid cursor: %+v, want -32602", resp.Error)
	}
}
