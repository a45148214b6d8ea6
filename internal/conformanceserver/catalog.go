package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// This file holds the tools, resources and prompts the conformance suite has
// asked of a server since the 2025 revisions: the same set, names and content
// as mcp-go's examples/conformance, which the tools-*, resources-*, prompts-*
// and completion-complete scenarios check byte for byte.

// Fixed content the scenarios compare against: a 1x1 PNG and a tiny WAV.
const (
	testImage = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
	testAudio = "UklGRiYAAABXQVZFZm10IBAAAAABAAEAQB8AAAB9AAACABAAZGF0YQIAAAA="
)

// fixture is the server: mcp-go's MCPServer plus the key that signs its
// multi round-trip requestState.
type fixture struct {
	mcp    *server.MCPServer
	states *stateSigner
	// strip is removed from the front of every tool and prompt name (see
	// the -strip flag); names in this source are always the full ones.
	strip string
	// modernOnly narrows it to MCP 2026-07-28 (the -modern-only flag).
	modernOnly bool
}

func newFixture(strip string) *fixture {
	s := server.NewMCPServer(
		"sigil-hub-conformance-fixture",
		"1.0.0",
		server.WithToolCapabilities(true),
		server.WithResourceCapabilities(true, true),
		server.WithPromptCapabilities(true),
		server.WithCompletions(),
		server.WithLogging(),
		server.WithElicitation(),
	)
	s.EnableSampling()
	f := &fixture{mcp: s, states: newStateSigner(), strip: strip}
	f.addContentTools()
	f.addResources()
	f.addPrompts()
	f.addDiagnosticTools()
	f.addInputRequiredTools()
	return f
}

// tool registers a tool that takes no arguments.
func (f *fixture) tool(name, description string, h server.ToolHandlerFunc) {
	f.addTool(mcp.NewTool(name, mcp.WithDescription(description)), h)
}

// exposed is the name a tool or prompt is served under.
func (f *fixture) exposed(name string) string { return strings.TrimPrefix(name, f.strip) }

func (f *fixture) addTool(t mcp.Tool, h server.ToolHandlerFunc) {
	t.Name = f.exposed(t.Name)
	f.mcp.AddTool(t, h)
}

func (f *fixture) addPrompt(p mcp.Prompt, h server.PromptHandlerFunc) {
	p.Name = f.exposed(p.Name)
	f.mcp.AddPrompt(p, h)
}

func textResult(text string) *mcp.CallToolResult { return mcp.NewToolResultText(text) }

func (f *fixture) addContentTools() {
	f.tool("test_simple_text", "Returns a simple text response for conformance testing",
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return textResult("This is a simple text response for testing."), nil
		})
	f.tool("test_image_content", "Returns image content for conformance testing",
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{mcp.NewImageContent(testImage, "image/png")}}, nil
		})
	f.tool("test_audio_content", "Returns audio content for conformance testing",
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{mcp.NewAudioContent(testAudio, "audio/wav")}}, nil
		})
	f.tool("test_embedded_resource", "Returns an embedded text resource",
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{mcp.NewEmbeddedResource(mcp.TextResourceContents{
				URI: "test://embedded-resource", MIMEType: "text/plain", Text: "This is an embedded resource content.",
			})}}, nil
		})
	f.tool("test_multiple_content_types", "Returns text, image, and embedded resource content",
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return &mcp.CallToolResult{Content: []mcp.Content{
				mcp.NewTextContent("Multiple content types test:"),
				mcp.NewImageContent(testImage, "image/png"),
				mcp.NewEmbeddedResource(mcp.TextResourceContents{
					URI: "test://mixed-content-resource", MIMEType: "application/json", Text: `{"test":"data","value":123}`,
				}),
			}}, nil
		})
	f.tool("test_error_handling", "Returns an intentional tool error",
		func(context.Context, mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return mcp.NewToolResultError("This tool intentionally returns an error for testing"), nil
		})

	// The 2025 server→client request tools. A 2026-07-28 client has no such
	// requests: these are served to 2025-era sessions (and answer a modern
	// caller with mcp-go's error); the input_required tools of mrtr.go are
	// their 2026 counterparts.
	f.addTool(mcp.NewTool("test_sampling",
		mcp.WithDescription("Requests an LLM response from the client"),
		mcp.WithString("prompt", mcp.Description("Prompt to send to the LLM"), mcp.Required())),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			res, err := f.mcp.RequestSampling(ctx, mcp.CreateMessageRequest{
				Request: mcp.Request{Method: string(mcp.MethodSamplingCreateMessage)},
				CreateMessageParams: mcp.CreateMessageParams{
					Messages:  []mcp.SamplingMessage{{Role: mcp.RoleUser, Content: mcp.NewTextContent(req.GetString("prompt", ""))}},
					MaxTokens: 100,
				},
			})
			if err != nil {
				return mcp.NewToolResultError(err.Error()), nil
			}
			text := "No response"
			if c, ok := res.Content.(mcp.TextContent); ok {
				text = c.Text
			}
			return textResult("LLM response: " + text), nil
		})
	f.addTool(mcp.NewTool("test_elicitation",
		mcp.WithDescription("Requests information from the user"),
		mcp.WithString("message", mcp.Description("Message to show the user"), mcp.Required())),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return f.elicitOnce(ctx, req.GetString("message", ""), objectSchema(map[string]any{
				"username": map[string]any{"type": "string", "description": "User's response"},
				"email":    map[string]any{"type": "string", "description": "User's email address"},
			}, "username", "email"), "User response")
		})
	f.tool("test_elicitation_sep1034_defaults", "Requests elicitation with primitive defaults",
		func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return f.elicitOnce(ctx, "Provide your information", objectSchema(map[string]any{
				"name":     map[string]any{"type": "string", "default": "John Doe"},
				"age":      map[string]any{"type": "integer", "default": 30},
				"score":    map[string]any{"type": "number", "default": 95.5},
				"status":   map[string]any{"type": "string", "enum": []string{"active", "inactive", "pending"}, "default": "active"},
				"verified": map[string]any{"type": "boolean", "default": true},
			}), "Elicitation completed")
		})
	f.tool("test_elicitation_sep1330_enums", "Requests elicitation with enum schemas",
		func(ctx context.Context, _ mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			titled := []any{map[string]any{"const": "value1", "title": "Value One"}, map[string]any{"const": "value2", "title": "Value Two"}}
			return f.elicitOnce(ctx, "Select options", objectSchema(map[string]any{
				"untitledSingle": map[string]any{"type": "string", "enum": []string{"option1", "option2"}},
				"titledSingle":   map[string]any{"type": "string", "oneOf": titled},
				"legacyEnum":     map[string]any{"type": "string", "enum": []string{"opt1", "opt2"}, "enumNames": []string{"Option One", "Option Two"}},
				"untitledMulti":  map[string]any{"type": "array", "items": map[string]any{"type": "string", "enum": []string{"option1", "option2"}}},
				"titledMulti":    map[string]any{"type": "array", "items": map[string]any{"anyOf": titled}},
			}), "Elicitation completed")
		})
}

// elicitOnce sends one 2025-style elicitation/create and reports the answer.
func (f *fixture) elicitOnce(ctx context.Context, message string, schema map[string]any, label string) (*mcp.CallToolResult, error) {
	res, err := f.mcp.RequestElicitation(ctx, mcp.ElicitationRequest{
		Request: mcp.Request{Method: string(mcp.MethodElicitationCreate)},
		Params:  mcp.ElicitationParams{Message: message, RequestedSchema: schema},
	})
	if err != nil {
		return mcp.NewToolResultError(err.Error()), nil
	}
	return textResult(fmt.Sprintf("%s: action=%s, content=%v", label, res.Action, res.Content)), nil
}

// objectSchema is a JSON Schema object with the given properties.
func objectSchema(properties map[string]any, required ...string) map[string]any {
	s := map[string]any{"type": "object", "properties": properties}
	if len(required) > 0 {
		s["required"] = required
	}
	return s
}

func (f *fixture) addResources() {
	f.mcp.AddResource(mcp.NewResource("test://static-text", "static-text",
		mcp.WithResourceTitle("Static Text Resource"), mcp.WithResourceDescription("A static text resource for testing"), mcp.WithMIMEType("text/plain")),
		func(context.Context, mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
			return []mcp.ResourceContents{mcp.TextResourceContents{URI: "test://static-text", MIMEType: "text/plain", Text: "This is the content of the static text resource."}}, nil
		})
	f.mcp.AddResource(mcp.NewResource("test://static-binary", "static-binary",
		mcp.WithResourceTitle("Static Binary Resource"), mcp.WithResourceDescription("A static binary resource for testing"), mcp.WithMIMEType("image/png")),
		func(context.Context, mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
			return []mcp.ResourceContents{mcp.BlobResourceContents{URI: "test://static-binary", MIMEType: "image/png", Blob: testImage}}, nil
		})
	f.mcp.AddResourceTemplate(mcp.NewResourceTemplate("test://template/{id}/data", "template",
		mcp.WithTemplateDescription("A resource template with parameter substitution"), mcp.WithTemplateMIMEType("application/json")),
		func(_ context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
			// test://template/{id}/data splits into "test:", "", "template", id, "data".
			id := ""
			if parts := strings.Split(req.Params.URI, "/"); len(parts) == 5 {
				id = parts[3]
			}
			return []mcp.ResourceContents{mcp.TextResourceContents{
				URI: req.Params.URI, MIMEType: "application/json",
				Text: fmt.Sprintf(`{"id":%q,"templateTest":true,"data":%q}`, id, "Data for ID: "+id),
			}}, nil
		})
}

func userText(text string) mcp.PromptMessage {
	return mcp.PromptMessage{Role: mcp.RoleUser, Content: mcp.NewTextContent(text)}
}

func (f *fixture) addPrompts() {
	f.addPrompt(mcp.NewPrompt("test_simple_prompt",
		mcp.WithPromptTitle("Simple Test Prompt"), mcp.WithPromptDescription("A simple prompt without arguments")),
		func(context.Context, mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return &mcp.GetPromptResult{Messages: []mcp.PromptMessage{userText("This is a simple prompt for testing.")}}, nil
		})
	f.addPrompt(mcp.NewPrompt("test_prompt_with_arguments",
		mcp.WithPromptTitle("Prompt With Arguments"), mcp.WithPromptDescription("A prompt with required arguments"),
		mcp.WithArgument("arg1", mcp.ArgumentDescription("First test argument"), mcp.RequiredArgument()),
		mcp.WithArgument("arg2", mcp.ArgumentDescription("Second test argument"), mcp.RequiredArgument())),
		func(_ context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			text := fmt.Sprintf("Prompt with arguments: arg1='%s', arg2='%s'", req.Params.Arguments["arg1"], req.Params.Arguments["arg2"])
			return &mcp.GetPromptResult{Messages: []mcp.PromptMessage{userText(text)}}, nil
		})
	f.addPrompt(mcp.NewPrompt("test_prompt_with_embedded_resource",
		mcp.WithPromptTitle("Prompt With Embedded Resource"), mcp.WithPromptDescription("A prompt that includes an embedded resource"),
		mcp.WithArgument("resourceUri", mcp.ArgumentDescription("URI of the resource to embed"), mcp.RequiredArgument())),
		func(_ context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			embedded := mcp.NewEmbeddedResource(mcp.TextResourceContents{
				URI: req.Params.Arguments["resourceUri"], MIMEType: "text/plain", Text: "Embedded resource content for testing.",
			})
			return &mcp.GetPromptResult{Messages: []mcp.PromptMessage{
				{Role: mcp.RoleUser, Content: embedded},
				userText("Please process the embedded resource above."),
			}}, nil
		})
	f.addPrompt(mcp.NewPrompt("test_prompt_with_image",
		mcp.WithPromptTitle("Prompt With Image"), mcp.WithPromptDescription("A prompt that includes image content")),
		func(context.Context, mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return &mcp.GetPromptResult{Messages: []mcp.PromptMessage{
				{Role: mcp.RoleUser, Content: mcp.NewImageContent(testImage, "image/png")},
				userText("Please analyze the image above."),
			}}, nil
		})
}
