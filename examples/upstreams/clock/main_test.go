package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
)

func TestTools(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, err := client.NewInProcessClient(newServer())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	req0 := mcp.InitializeRequest{}
	req0.Params.ProtocolVersion = mcp.LATEST_LEGACY_PROTOCOL_VERSION
	req0.Params.ClientInfo = mcp.Implementation{Name: "clock-test", Version: "1"}
	if _, err := c.Initialize(ctx, req0); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, tool string
		args       map[string]any
		check      func(text string) bool
		isError    bool
	}{
		{"now is RFC 3339", "now", nil, func(s string) bool { _, err := time.Parse(time.RFC3339, s); return err == nil }, false},
		{"sleep 0", "sleep", map[string]any{"ms": 0}, func(s string) bool { return s == "slept 0 ms" }, false},
		{"sleep 1", "sleep", map[string]any{"ms": 1}, func(s string) bool { return s == "slept 1 ms" }, false},
		{"sleep too long", "sleep", map[string]any{"ms": maxSleep + 1}, func(s string) bool { return strings.Contains(s, "between") }, true},
		{"sleep negative", "sleep", map[string]any{"ms": -1}, func(s string) bool { return strings.Contains(s, "between") }, true},
		{"sleep without ms", "sleep", nil, func(s string) bool { return strings.Contains(s, "ms") }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := mcp.CallToolRequest{}
			req.Params.Name, req.Params.Arguments = tt.tool, tt.args
			res, err := c.CallTool(ctx, req)
			if err != nil {
				t.Fatal(err)
			}
			text := ""
			if len(res.Content) > 0 {
				text = res.Content[0].(mcp.TextContent).Text
			}
			if !tt.check(text) || res.IsError != tt.isError {
				t.Errorf("%s(%v) = %q (isError %v), want isError %v", tt.tool, tt.args, text, res.IsError, tt.isError)
			}
		})
	}

	// A cancelled call ends the wait at once instead of sleeping a minute:
	// the handler gets a context that is already done.
	t.Run("sleep is cancellable", func(t *testing.T) {
		st := newServer().GetTool("sleep")
		if st == nil {
			t.Fatal("no sleep tool")
		}
		cctx, ccancel := context.WithCancel(ctx)
		ccancel()
		req := mcp.CallToolRequest{}
		req.Params.Name, req.Params.Arguments = "sleep", map[string]any{"ms": maxSleep}
		if _, err := st.Handler(cctx, req); err == nil || !strings.Contains(err.Error(), "cancelled") {
			t.Errorf("sleep with a cancelled context: err = %v, want cancelled", err)
		}
	})
}
