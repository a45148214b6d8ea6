// Package testmodern is a fake MCP server for tests of the protocol era an
// upstream speaks (the 2026-07-28 revision, "modern", or an older one,
// "legacy"): mcp-go's server, which serves both eras per request, narrowed
// to one era or made to misbehave on the server/discover probe. Tests run
// it as a child (their test binary re-executed with EnvMode set: see Main)
// or in process over HTTP (Handler).
//
// Modes (EnvMode):
//
//	modern  only 2026-07-28 requests (with _meta protocolVersion) are
//	        served, and server/discover lists only 2026-07-28; anything
//	        else, initialize included, gets -32600
//	dual    both eras, as mcp-go serves them
//	legacy  only requests without 2026-07-28 _meta are served; a modern
//	        one (server/discover) gets -32600
//	silent  legacy, and server/discover is never answered
//	exit    legacy, and the process exits when it reads server/discover
//
// Tools: whoami (answers what the request declared, as JSON: era,
// protocolVersion, clientInfo, clientCapabilities, logLevel), echo (its raw
// arguments), add_tool {name} (adds a tool: a tools/list_changed), ask (a
// modern caller gets an input_required result asking an elicitation), log
// (sends an info log message, then answers), touch (sends
// notifications/resources/updated for test://modern on the newest
// subscriptions/listen, tagged with its subscription id, if it subscribed
// that resource). Prompt hello; resource
// test://modern, which can be subscribed.
//
// This package may import mcp-go and the standard library, no sigil-hub
// package; production code must not import it.
package testmodern

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// Environment of a child started with Main.
const (
	// EnvMode selects the mode; a test's init calls Main when it is set.
	EnvMode = "SIGIL_HUB_TEST_MODERN"
	// EnvLog is a file that gets every byte the child reads on stdin
	// (the JSON-RPC lines it received), and {"testmodern":"start"} once
	// per process.
	EnvLog = "TESTMODERN_LOG"
	// EnvName is serverInfo.name ("testmodern" if unset).
	EnvName = "TESTMODERN_NAME"
)

// Main serves the mode EnvMode names on stdin and stdout, and exits.
func Main() {
	mode, name := os.Getenv(EnvMode), os.Getenv(EnvName)
	var in io.Reader = os.Stdin
	if p := os.Getenv(EnvLog); p != "" {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			fmt.Fprintln(os.Stderr, "testmodern:", err)
			os.Exit(1)
		}
		_, _ = f.WriteString(`{"testmodern":"start"}` + "\n")
		in = io.TeeReader(os.Stdin, f)
	}
	s, err := NewServer(mode, name)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testmodern:", err)
		os.Exit(1)
	}
	ss := server.NewStdioServer(s)
	if mode == "modern" {
		ss.SetContextFunc(func(ctx context.Context) context.Context {
			return server.WithSupportedProtocolVersions(ctx, []string{mcp.ProtocolVersion20260728})
		})
	}
	if err := ss.Listen(context.Background(), in, os.Stdout); err != nil && !errors.Is(err, io.EOF) {
		fmt.Fprintln(os.Stderr, "testmodern:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Handler serves mode over Streamable HTTP (both eras on one endpoint, as
// mcp-go does, narrowed as the mode says).
func Handler(mode, name string) (http.Handler, error) {
	s, err := NewServer(mode, name)
	if err != nil {
		return nil, err
	}
	if mode == "modern" {
		return server.NewStreamableHTTPServer(s, server.WithStreamableHTTPProtocolVersions(mcp.ProtocolVersion20260728)), nil
	}
	return server.NewStreamableHTTPServer(s), nil
}

// modernMeta reports whether a raw request declares a 2026-07-28 protocol
// version in its _meta.
func modernMeta(message any) bool {
	raw, ok := message.(json.RawMessage)
	if !ok {
		return false
	}
	var m struct {
		Params struct {
			Meta map[string]json.RawMessage `json:"_meta"`
		} `json:"params"`
	}
	_ = json.Unmarshal(raw, &m)
	var v string
	_ = json.Unmarshal(m.Params.Meta[mcp.MetaKeyProtocolVersion], &v)
	return mcp.IsModernProtocol(v)
}

func method(message any) string {
	raw, _ := message.(json.RawMessage)
	var m struct {
		Method string `json:"method"`
	}
	_ = json.Unmarshal(raw, &m)
	return m.Method
}

// NewServer returns the server of one mode.
func NewServer(mode, name string) (*server.MCPServer, error) {
	if name == "" {
		name = "testmodern"
	}
	hooks := &server.Hooks{}
	// listens are the sessions serving a subscriptions/listen, by request
	// id, with the URIs each subscribed.
	var listens sync.Map // id → listenSub
	hooks.AddBeforeSubscriptionsListen(func(ctx context.Context, id any, req *mcp.SubscriptionsListenRequest) {
		if session := server.ClientSessionFromContext(ctx); session != nil {
			listens.Store(fmt.Sprint(id), listenSub{id, session, req.Params.Notifications.ResourceSubscriptions, time.Now()})
		}
	})
	switch mode {
	case "dual":
	case "modern":
		hooks.AddOnRequestInitialization(func(ctx context.Context, id any, message any) error {
			if !modernMeta(message) {
				return errors.New("this server speaks only MCP 2026-07-28")
			}
			return nil
		})
	case "legacy", "silent", "exit":
		hooks.AddOnRequestInitialization(func(ctx context.Context, id any, message any) error {
			if method(message) == "server/discover" {
				switch mode {
				case "silent":
					<-ctx.Done()
				case "exit":
					fmt.Fprintln(os.Stderr, "testmodern: exiting on server/discover")
					os.Exit(4)
				}
			}
			if modernMeta(message) {
				return errors.New("unknown request before initialize")
			}
			return nil
		})
	default:
		return nil, fmt.Errorf("unknown mode %q", mode)
	}
	s := server.NewMCPServer(name, "1.0.0",
		server.WithToolCapabilities(true),
		server.WithPromptCapabilities(true),
		server.WithResourceCapabilities(true, true),
		server.WithLogging(),
		server.WithInstructions("testmodern "+mode),
		server.WithHooks(hooks),
	)
	text := mcp.NewToolResultText
	s.AddTool(mcp.NewTool("whoami"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		out := map[string]any{"era": "legacy"}
		if info := server.RequestProtocolInfoFromContext(ctx); info != nil && info.Modern {
			out = map[string]any{"era": "modern", "protocolVersion": info.ProtocolVersion,
				"clientInfo": info.ClientInfo, "clientCapabilities": info.ClientCapabilities, "logLevel": info.LogLevel}
		}
		if req.Params.Meta != nil {
			out["progressToken"] = req.Params.Meta.ProgressToken
			out["meta"] = req.Params.Meta.AdditionalFields
		}
		b, err := json.Marshal(out)
		if err != nil {
			return nil, err
		}
		return text(string(b)), nil
	})
	s.AddTool(mcp.NewTool("echo"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return text(string(req.Params.RawArguments)), nil
	})
	s.AddTool(mcp.NewTool("add_tool", mcp.WithString("name")), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		n := req.GetString("name", "added")
		s.AddTool(mcp.NewTool(n), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return text("ok:" + n), nil
		})
		return text("added " + n), nil
	})
	s.AddTool(mcp.NewTool("ask"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		if r := server.ElicitationResponse(req.Params.InputResponses, "q"); r != nil {
			return text("answered " + string(r.Action)), nil
		}
		return server.NewInputRequestBuilder("state-1").Elicit("q", mcp.ElicitationParams{
			Message:         "which?",
			RequestedSchema: map[string]any{"type": "object", "properties": map[string]any{"x": map[string]any{"type": "string"}}},
		}).ToolResult(), nil
	})
	s.AddTool(mcp.NewTool("log"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		err := s.SendLogMessageToClient(ctx, mcp.NewLoggingMessageNotification(mcp.LoggingLevelInfo, "testmodern", "hello from log"))
		if err != nil {
			return text("log failed: " + err.Error()), nil
		}
		return text("logged"), nil
	})
	s.AddTool(mcp.NewTool("touch"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		var last *listenSub // the newest listen: a reopened one replaces the one before
		listens.Range(func(_, v any) bool {
			if l := v.(listenSub); last == nil || l.at.After(last.at) {
				last = &l
			}
			return true
		})
		if last == nil || !slices.Contains(last.uris, "test://modern") {
			return text("no listen subscribed test://modern"), nil
		}
		last.session.NotificationChannel() <- mcp.JSONRPCNotification{JSONRPC: mcp.JSONRPC_VERSION,
			Notification: mcp.Notification{Method: "notifications/resources/updated",
				Params: mcp.NotificationParams{Meta: map[string]any{mcp.MetaKeySubscriptionID: last.id},
					AdditionalFields: map[string]any{"uri": "test://modern"}}}}
		return text("touched"), nil
	})
	s.AddPrompt(mcp.NewPrompt("hello"), func(ctx context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		return mcp.NewGetPromptResult("hello", []mcp.PromptMessage{mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent("hello"))}), nil
	})
	s.AddResource(mcp.NewResource("test://modern", "modern", mcp.WithMIMEType("text/plain")),
		func(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
			return []mcp.ResourceContents{mcp.TextResourceContents{URI: "test://modern", MIMEType: "text/plain", Text: strings.ToUpper("modern")}}, nil
		})
	return s, nil
}

// listenSub is one subscriptions/listen: the session it is served on and
// the resources it subscribed.
type listenSub struct {
	id      any // the listen's request id: its subscription id
	session server.ClientSession
	uris    []string
	at      time.Time
}
