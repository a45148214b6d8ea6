package main

import (
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sigilcore/sigil-hub/authz"
	"github.com/sigilcore/sigil-hub/config"
	"github.com/sigilcore/sigil-hub/hub"
	"github.com/sigilcore/sigil-hub/internal/testupstream"
)

// TestInventory starts a hub with a working remote upstream (the fake
// server over loopback HTTP) and a stdio upstream that fails at once with a
// stderr message, and checks what the inventory reports: states, the stderr
// tail, counts, routes, intent actions (extractor included) and warnings.
func TestInventory(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh to run the failing upstream")
	}
	long := strings.Repeat("l", 54) // good__ + 54 = 60 characters
	extra := []string{long}
	for i := range 45 {
		extra = append(extra, fmt.Sprintf("t%02d", i))
	}
	fake, err := testupstream.StartHTTP(testupstream.Config{Name: "good", Tools: extra}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { fake.Close() })

	cfg := config.Config{
		Separator:      "__",
		StartupTimeout: 30 * time.Second,
		SignURL:        "http://127.0.0.1:1",
		Verify:         "off",
		Servers: []config.Server{
			{Name: "good", URL: fake.URL, Transport: "streamable", ServerID: "good.example", Attestation: true,
				Extractors: map[string]config.Extractor{
					"echo":   {Fields: map[string]string{"url": "target.href"}},
					"nosuch": {Fields: map[string]string{"path": "p"}},
				}},
			{Name: "bad", Command: sh, Args: []string{"-c", "echo inventory-boom >&2; exit 3"}, ServerID: "bad", Attestation: true},
		},
	}
	h, err := hub.New(hub.Options{Config: cfg, APIKey: "test-key"})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- h.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	inv := inventoryOf(h.Status(t.Context()))
	if len(inv.Upstreams) != 2 {
		t.Fatalf("%d upstreams, want 2", len(inv.Upstreams))
	}
	good, bad := inv.Upstreams[0], inv.Upstreams[1]
	if good.Name != "good" || !good.Ready || good.State != "ready" || !good.Settled || good.Err != "" {
		t.Errorf("good upstream: %+v", good)
	}
	if good.Tools < 46 || good.Exposed != good.Tools || good.Prompts != 1 || good.Resources != 1 || good.Templates != 1 {
		t.Errorf("good counts: tools %d exposed %d prompts %d resources %d templates %d", good.Tools, good.Exposed, good.Prompts, good.Resources, good.Templates)
	}
	if good.Target != fake.URL || good.ServerInfo == "" || good.ProtocolVersion == "" {
		t.Errorf("good target %q serverInfo %q protocol %q", good.Target, good.ServerInfo, good.ProtocolVersion)
	}
	if bad.Ready || bad.State == "ready" || !bad.Settled || !strings.Contains(bad.Err, "inventory-boom") || bad.Tools != 0 || bad.Exposed != 0 {
		t.Errorf("bad upstream: %+v (want a failed start whose error carries the stderr tail)", bad)
	}
	if !strings.HasPrefix(bad.Target, sh+" -c ") {
		t.Errorf("bad target %q", bad.Target)
	}

	byName := map[string]toolInfo{}
	for _, tl := range inv.Tools {
		byName[tl.Exposed] = tl
	}
	for _, tc := range []struct{ exposed, name, action string }{
		{"good__echo", "echo", "web_fetch"},
		{"good__slow", "slow", "mcp.good.example.slow"},
		{"good__t00", "t00", "mcp.good.example.t00"},
	} {
		tl, ok := byName[tc.exposed]
		if !ok {
			t.Errorf("%s not exposed", tc.exposed)
			continue
		}
		if tl.Upstream != "good" || tl.ServerID != "good.example" || tl.Name != tc.name || tl.Action != tc.action {
			t.Errorf("%s: %+v, want name %q action %q", tc.exposed, tl, tc.name, tc.action)
		}
	}
	if x := byName["good__echo"].Extract; x["url"] != "target.href" {
		t.Errorf("echo extract = %v", x)
	}

	kinds := map[string][]warning{}
	for _, w := range inv.Warnings {
		kinds[w.Kind] = append(kinds[w.Kind], w)
	}
	if ws := kinds[warnServerID]; len(ws) != 1 || ws[0].Upstream != "good" || !strings.Contains(ws[0].Message, "'.'") {
		t.Errorf("server_id warnings: %+v", ws)
	}
	if ws := kinds[warnNameLength]; len(ws) != 1 || ws[0].Subject != "good__"+long {
		t.Errorf("name_length warnings: %+v", ws)
	}
	if ws := kinds[warnToolCount]; len(ws) != 1 || !strings.Contains(ws[0].Message, "Windsurf 50") || strings.Contains(ws[0].Message, "Cursor 80") {
		t.Errorf("tool_count warnings: %+v", ws)
	}
	if ws := kinds[warnExtractor]; len(ws) != 1 || ws[0].Subject != "nosuch" {
		t.Errorf("extractor warnings: %+v", ws)
	}
}

func TestIntentAction(t *testing.T) {
	for _, tc := range []struct {
		name       string
		x          *authz.Extractor
		action     string
		noteSubstr string
	}{
		{"none", nil, "mcp.srv.tool", ""},
		{"empty extractor", &authz.Extractor{}, "mcp.srv.tool", ""},
		{"url", &authz.Extractor{Fields: map[string]string{"url": "u"}}, "web_fetch", ""},
		{"url and method", &authz.Extractor{Fields: map[string]string{"url": "req.url", "method": "req.method"}}, "http", `web_fetch when argument "req.method"`},
		{"path", &authz.Extractor{Fields: map[string]string{"path": "file"}}, "file_write", ""},
		{"command", &authz.Extractor{Fields: map[string]string{"command": "cmd"}}, "bash", ""},
		{"to only", &authz.Extractor{Fields: map[string]string{"to": "recipient"}}, "mcp.srv.tool", ""},
		{"action override", &authz.Extractor{Action: "email.send", Fields: map[string]string{"to": "to"}}, "email.send", ""},
		{"overlapping paths", &authz.Extractor{Fields: map[string]string{"url": "a", "path": "a.b"}}, "", "every call is denied"},
		{"unknown field", &authz.Extractor{Fields: map[string]string{"host": "h"}}, "", "every call is denied"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			action, note := intentAction("srv", "tool", tc.x)
			if action != tc.action || !strings.Contains(note, tc.noteSubstr) || (tc.noteSubstr == "") != (note == "") {
				t.Fatalf("intentAction = %q, %q; want %q, note containing %q", action, note, tc.action, tc.noteSubstr)
			}
		})
	}
}

func TestRedactURL(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"https://mcp.example.com/mcp", "https://mcp.example.com/mcp"},
		{"https://user:secret@mcp.example.com/mcp", "https://***@mcp.example.com/mcp"},
		{"https://mcp.example.com/mcp?token=secret#frag", "https://mcp.example.com/mcp?***"},
		{"http://127.0.0.1:8080", "http://127.0.0.1:8080"},
		{"not a url secret", "***"},
	} {
		if got := redactURL(tc.in); got != tc.want {
			t.Errorf("redactURL(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
