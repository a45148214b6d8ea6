package main

import (
	"context"
	"io"
	"log"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"
)

// newClient serves a fresh, seeded store to an in-process MCP client.
func newClient(t *testing.T) (*client.Client, context.Context) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	c, err := client.NewInProcessClient(newServer(newStore(seed()), log.New(io.Discard, "", 0)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if err := c.Start(ctx); err != nil {
		t.Fatal(err)
	}
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = mcp.LATEST_LEGACY_PROTOCOL_VERSION
	req.Params.ClientInfo = mcp.Implementation{Name: "notes-test", Version: "1"}
	if _, err := c.Initialize(ctx, req); err != nil {
		t.Fatal(err)
	}
	return c, ctx
}

func callText(t *testing.T, c *client.Client, ctx context.Context, tool string, args map[string]any) (string, bool) {
	t.Helper()
	req := mcp.CallToolRequest{}
	req.Params.Name, req.Params.Arguments = tool, args
	res, err := c.CallTool(ctx, req)
	if err != nil {
		t.Fatalf("%s: %v", tool, err)
	}
	var b strings.Builder
	for _, ct := range res.Content {
		if tc, ok := ct.(mcp.TextContent); ok {
			b.WriteString(tc.Text)
		}
	}
	return b.String(), res.IsError
}

func TestTools(t *testing.T) {
	c, ctx := newClient(t)
	// One store for the whole table: the steps build on each other.
	tests := []struct {
		name, tool string
		args       map[string]any
		want       string // substring of the text
		isError    bool
	}{
		{"list", "list_notes", nil, ".env\ntodo\nwelcome", false},
		{"read", "read_note", map[string]any{"name": "todo"}, "sigil-hub", false},
		// The server itself does not guard .env: that is the hub's policy's job.
		{"read hidden", "read_note", map[string]any{"name": ".env"}, "DEMO_API_TOKEN", false},
		{"read missing", "read_note", map[string]any{"name": "nope"}, `no note named "nope"`, true},
		{"read without name", "read_note", nil, "name", true},
		{"create", "write_note", map[string]any{"name": "draft", "text": "hello"}, `created note "draft"`, false},
		{"replace", "write_note", map[string]any{"name": "draft", "text": "hello again"}, `replaced note "draft"`, false},
		{"read written", "read_note", map[string]any{"name": "draft"}, "hello again", false},
		{"bad name", "write_note", map[string]any{"name": "a/b", "text": "x"}, "slashes", true},
		{"delete", "delete_note", map[string]any{"name": "draft"}, `deleted note "draft"`, false},
		{"delete again", "delete_note", map[string]any{"name": "draft"}, `no note named "draft"`, true},
		{"list after", "list_notes", nil, ".env\ntodo\nwelcome", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, isErr := callText(t, c, ctx, tt.tool, tt.args)
			if !strings.Contains(got, tt.want) || isErr != tt.isError {
				t.Errorf("%s(%v) = %q (isError %v), want %q (isError %v)", tt.tool, tt.args, got, isErr, tt.want, tt.isError)
			}
		})
	}
}

// TestHiddenNotes: the prompt and the resource, which the hub does not
// authorize, refuse hidden notes.
func TestHiddenNotes(t *testing.T) {
	c, ctx := newClient(t)
	tests := []struct {
		name, note, wantErr string // wantErr "" = success
	}{
		{"visible", "todo", ""},
		{"hidden", ".env", "hidden"},
		{"missing", "nope", "no note"},
	}
	for _, tt := range tests {
		t.Run("resource "+tt.name, func(t *testing.T) {
			req := mcp.ReadResourceRequest{}
			req.Params.URI = "notes://" + tt.note
			res, err := c.ReadResource(ctx, req)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("read %s: err = %v, want %q", req.Params.URI, err, tt.wantErr)
				}
				return
			}
			if err != nil || len(res.Contents) != 1 {
				t.Fatalf("read %s: %v, %d contents", req.Params.URI, err, len(res.Contents))
			}
			if tc, ok := res.Contents[0].(mcp.TextResourceContents); !ok || !strings.Contains(tc.Text, "sigil-hub") {
				t.Errorf("read %s = %#v", req.Params.URI, res.Contents[0])
			}
		})
		t.Run("prompt "+tt.name, func(t *testing.T) {
			req := mcp.GetPromptRequest{}
			req.Params.Name, req.Params.Arguments = "summarize", map[string]string{"name": tt.note}
			res, err := c.GetPrompt(ctx, req)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("summarize %s: err = %v, want %q", tt.note, err, tt.wantErr)
				}
				return
			}
			if err != nil || len(res.Messages) != 1 {
				t.Fatalf("summarize %s: %v", tt.note, err)
			}
			if tc, ok := res.Messages[0].Content.(mcp.TextContent); !ok || !strings.Contains(tc.Text, "sigil-hub") {
				t.Errorf("summarize %s = %#v", tt.note, res.Messages[0].Content)
			}
		})
	}
}
