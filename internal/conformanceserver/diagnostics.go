package main

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// This file holds the diagnostic tools: notifications on a request's own
// stream (progress, log messages), the capability check, and the hooks that
// change the tool and prompt lists so a subscriptions/listen stream has
// something to deliver.

// Names of the tools and prompts the list-change hooks add and remove.
const (
	dynamicTool   = "test_dynamic_tool"
	dynamicPrompt = "test_dynamic_prompt"
)

// settle is how long a tool waits after its last notification before it
// returns. mcp-go's Streamable HTTP transport forwards a request's
// notifications from a goroutine that can lose the race with the final
// response: a notification taken off the queue just as the response is
// written is dropped (the intermittent "got 2 of 3" of
// testdata/conformance/expected-failures.yml). Waiting lets the forwarder
// write it first.
const settle = 50 * time.Millisecond

// clientCaps returns the capabilities the caller declared: the request's
// own for a 2026-07-28 request, the session's (from initialize) otherwise.
func clientCaps(ctx context.Context) mcp.ClientCapabilities {
	if info := server.RequestProtocolInfoFromContext(ctx); info != nil && info.Modern {
		if info.ClientCapabilities != nil {
			return *info.ClientCapabilities
		}
		return mcp.ClientCapabilities{}
	}
	if s, ok := server.ClientSessionFromContext(ctx).(server.SessionWithClientInfo); ok {
		return s.GetClientCapabilities()
	}
	return mcp.ClientCapabilities{}
}

// logMessages sends messages as notifications/message at level info. A
// 2026-07-28 request gets them only if its _meta asked for a log level that
// includes info (mcp-go applies that rule); a 2025-era session gets them as
// mcp-go's conformance server sends them, whatever logging/setLevel said.
func (f *fixture) logMessages(ctx context.Context, messages ...string) error {
	modern := server.IsModernRequest(ctx)
	for i, m := range messages {
		if i > 0 {
			time.Sleep(settle)
		}
		var err error
		if modern {
			err = f.mcp.SendLogMessageToClient(ctx, mcp.NewLoggingMessageNotification(mcp.LoggingLevelInfo, "conformance-fixture", m))
		} else {
			err = f.mcp.SendNotificationToClient(ctx, string(mcp.MethodNotificationMessage), map[string]any{
				"level": "info", "logger": "conformance-fixture", "data": m,
			})
		}
		if err != nil {
			return err
		}
	}
	time.Sleep(settle)
	return nil
}

func (f *fixture) addDiagnosticTools() {
	steps := []string{"Tool execution started", "Tool processing data", "Tool execution completed"}
	f.tool("test_tool_with_logging", "Emits log messages during execution",
		func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			if err := f.logMessages(ctx, steps...); err != nil {
				return nil, err
			}
			return textResult("Tool with logging executed successfully"), nil
		})
	// server-stateless: no notifications/message unless the request's _meta
	// set io.modelcontextprotocol/logLevel.
	f.tool("test_logging_tool", "Emits log messages only when the request asked for a log level",
		func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			if err := f.logMessages(ctx, steps...); err != nil {
				return nil, err
			}
			return textResult("Logging evaluated"), nil
		})

	// tools-call-with-progress: three notifications/progress, with the
	// request's own progressToken, before the result.
	f.tool("test_tool_with_progress", "Reports progress notifications",
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			var token mcp.ProgressToken
			if req.Params.Meta != nil {
				token = req.Params.Meta.ProgressToken
			}
			if token == nil {
				return textResult("no progressToken: no progress reported"), nil
			}
			for i, p := range []int{0, 50, 100} {
				if i > 0 {
					time.Sleep(settle)
				}
				if err := f.mcp.SendNotificationToClient(ctx, string(mcp.MethodNotificationProgress), map[string]any{
					"progressToken": token, "progress": p, "total": 100,
				}); err != nil {
					return nil, err
				}
			}
			time.Sleep(settle)
			return textResult("progress reported"), nil
		})

	// server-stateless: a request that needs sampling from a client that did
	// not declare it gets -32021 MissingRequiredClientCapability with HTTP 400.
	// mcp-go reports any handler error as -32603, so the edge (edge.go)
	// answers that case before mcp-go sees it; this handler serves the rest.
	f.tool("test_missing_capability", "Needs the client's sampling capability (-32021 without it)",
		func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			if clientCaps(ctx).Sampling == nil {
				return mcp.NewToolResultError("this tool needs the sampling capability, which the client did not declare"), nil
			}
			return textResult("Success: the client declared sampling"), nil
		})

	// server-stateless: the elicitation a 2026-07-28 request needs comes back
	// on the request's stream as an input_required result, never as an
	// elicitation/create request. A 2025-era session gets the
	// elicitation/create request instead (mcp-go's bridge) and the result.
	f.tool("test_streaming_elicitation", "Asks for a confirmation through input_required",
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			if answer := server.ElicitationResponse(req.Params.InputResponses, "confirm"); answer != nil {
				return textResult("Streaming complete: action=" + string(answer.Action)), nil
			}
			return server.NewInputRequestBuilder("").Elicit("confirm", formElicitation("Please confirm",
				map[string]any{"ok": map[string]any{"type": "boolean"}}, "ok")).ToolResult(), nil
		})

	// http-custom-header-server-validation (reported, not scored): a string
	// argument mirrored in an Mcp-Param-Region header, which mcp-go checks
	// against the body on every 2026-07-28 call.
	f.addTool(mcp.NewTool("test_header_param",
		mcp.WithDescription("Echoes its region argument, which clients also send as the Mcp-Param-Region header"),
		mcp.WithString("region", mcp.Description("Any region name"), mcp.Required(),
			func(p map[string]any) { p["x-mcp-header"] = "Region" })),
		func(_ context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return textResult("region: " + req.GetString("region", "")), nil
		})

	// json-schema-2020-12 (reported, not scored): tools/list must carry the
	// 2020-12 keywords of an input schema unchanged.
	f.addTool(mcp.NewToolWithRawSchema("json_schema_2020_12_tool",
		"Takes a contact whose input schema uses JSON Schema 2020-12 keywords", json.RawMessage(contactSchema)),
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return textResult("contact accepted"), nil
		})

	// server-stateless: each call adds the dynamic tool (or prompt) if it is
	// absent and removes it otherwise; mcp-go then sends list_changed to
	// every subscriptions/listen stream that asked for that kind.
	var mu sync.Mutex
	toolPresent, promptPresent := false, false
	f.tool("test_trigger_tool_change", "Changes the tool list (adds or removes "+dynamicTool+")",
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			mu.Lock()
			defer mu.Unlock()
			if toolPresent {
				f.mcp.DeleteTools(f.exposed(dynamicTool))
			} else {
				f.tool(dynamicTool, "Added by test_trigger_tool_change", func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
					return textResult("dynamic tool"), nil
				})
			}
			toolPresent = !toolPresent
			return textResult("Mutation triggered: tools/list changed"), nil
		})
	f.tool("test_trigger_prompt_change", "Changes the prompt list (adds or removes "+dynamicPrompt+")",
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			mu.Lock()
			defer mu.Unlock()
			if promptPresent {
				f.mcp.DeletePrompts(f.exposed(dynamicPrompt))
			} else {
				f.addPrompt(mcp.NewPrompt(dynamicPrompt, mcp.WithPromptDescription("Added by test_trigger_prompt_change")),
					func(context.Context, mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
						return &mcp.GetPromptResult{Messages: []mcp.PromptMessage{userText("dynamic prompt")}}, nil
					})
			}
			promptPresent = !promptPresent
			return textResult("Mutation triggered: prompts/list changed"), nil
		})
}

// contactSchema is the input schema of json_schema_2020_12_tool: $schema,
// $defs with an $anchor, $ref, allOf/anyOf, if/then/else and
// additionalProperties, as the json-schema-2020-12 scenario expects.
const contactSchema = `{
  "$schema": "https://json-schema.org/draft/2020-12/schema",
  "type": "object",
  "$defs": {"address": {"$anchor": "addressDef", "type": "object",
    "properties": {"street": {"type": "string"}, "city": {"type": "string"}}}},
  "properties": {
    "name": {"type": "string"},
    "address": {"$ref": "#/$defs/address"},
    "contactMethod": {"type": "string", "enum": ["phone", "email"]},
    "phone": {"type": "string"},
    "email": {"type": "string"}
  },
  "allOf": [{"anyOf": [{"required": ["phone"]}, {"required": ["email"]}]}],
  "if": {"properties": {"contactMethod": {"const": "phone"}}, "required": ["contactMethod"]},
  "then": {"required": ["phone"]},
  "else": {"required": ["email"]},
  "additionalProperties": false
}`
