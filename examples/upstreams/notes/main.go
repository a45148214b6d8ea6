package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strings"
	"sync"
	"syscall"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

const version = "0.1.0"

func main() {
	logger := log.New(os.Stderr, "notes: ", log.LstdFlags)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	stdio := server.NewStdioServer(newServer(newStore(seed()), logger))
	stdio.SetErrorLogger(logger)
	logger.Printf("serving MCP on stdio")
	if err := stdio.Listen(ctx, os.Stdin, os.Stdout); err != nil && !errors.Is(err, context.Canceled) {
		logger.Printf("stopped: %v", err)
		os.Exit(1)
	}
	logger.Printf("stdin closed; bye")
}

// seed is the store's content at every start.
func seed() map[string]string {
	return map[string]string{
		"todo": "- try the sigil-hub offline demo\n- point a real MCP client at examples/demo/sigil-hub.toml\n- write a warranty.md for my own servers\n",
		"welcome": "This note store is an example MCP server. Every call to it goes through sigil-hub, " +
			"which asks the policy in examples/demo/warranty.md first.\n",
		// A fake secret: the demo policy denies any call whose "name"
		// argument contains ".env", so it can never be read through the hub.
		".env": "DEMO_API_TOKEN=sk-demo-0000-not-a-real-secret\n",
	}
}

// store is the in-memory note store. Safe for concurrent use: every method
// takes mu.
type store struct {
	mu    sync.Mutex
	notes map[string]string // guarded by mu
}

func newStore(notes map[string]string) *store { return &store{notes: notes} }

func (s *store) names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.notes))
	for n := range s.notes {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

func (s *store) get(name string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.notes[name]
	return t, ok
}

// put stores text under name and reports whether it replaced a note.
func (s *store) put(name, text string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, existed := s.notes[name]
	s.notes[name] = text
	return existed
}

func (s *store) remove(name string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.notes[name]
	delete(s.notes, name)
	return ok
}

// validName keeps names printable and short; they also appear in URIs.
func validName(name string) error {
	switch {
	case name == "":
		return errors.New("name must not be empty")
	case len(name) > 64:
		return errors.New("name must be at most 64 bytes")
	case strings.ContainsAny(name, "/\\") || strings.ContainsFunc(name, func(r rune) bool { return r < ' ' || r == 0x7f }):
		return errors.New("name must not contain slashes or control characters")
	}
	return nil
}

// hidden notes (".env") are served only through read_note; see doc.go.
func hidden(name string) bool { return strings.HasPrefix(name, ".") }

func newServer(st *store, logger *log.Logger) *server.MCPServer {
	s := server.NewMCPServer("notes", version,
		server.WithToolCapabilities(false),
		server.WithPromptCapabilities(false),
		server.WithResourceCapabilities(false, false),
		server.WithInstructions("An in-memory note store (an example upstream for sigil-hub)."),
	)

	s.AddTool(mcp.NewTool("list_notes",
		mcp.WithDescription("List the names of all notes, one per line."),
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithOpenWorldHintAnnotation(false),
	), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText(strings.Join(st.names(), "\n")), nil
	})

	s.AddTool(mcp.NewTool("read_note",
		mcp.WithDescription("Read one note by name."),
		mcp.WithString("name", mcp.Required(), mcp.Description("The note's name, e.g. todo.")),
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithOpenWorldHintAnnotation(false),
	), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		name, err := req.RequireString("name")
		if err != nil {
			return mcp.NewToolResultError(err.Error()), nil
		}
		text, ok := st.get(name)
		if !ok {
			return mcp.NewToolResultError(fmt.Sprintf("no note named %q", name)), nil
		}
		return mcp.NewToolResultText(text), nil
	})

	s.AddTool(mcp.NewTool("write_note",
		mcp.WithDescription("Create a note, or replace the note with that name."),
		mcp.WithString("name", mcp.Required(), mcp.Description("The note's name.")),
		mcp.WithString("text", mcp.Required(), mcp.Description("The note's full text.")),
		mcp.WithDestructiveHintAnnotation(true),
		mcp.WithIdempotentHintAnnotation(true),
		mcp.WithOpenWorldHintAnnotation(false),
	), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		name, err := req.RequireString("name")
		if err != nil {
			return mcp.NewToolResultError(err.Error()), nil
		}
		text, err := req.RequireString("text")
		if err != nil {
			return mcp.NewToolResultError(err.Error()), nil
		}
		if err := validName(name); err != nil {
			return mcp.NewToolResultError(err.Error()), nil
		}
		verb := "created"
		if st.put(name, text) {
			verb = "replaced"
		}
		logger.Printf("note %q %s", name, verb)
		return mcp.NewToolResultText(fmt.Sprintf("%s note %q (%d bytes)", verb, name, len(text))), nil
	})

	s.AddTool(mcp.NewTool("delete_note",
		mcp.WithDescription("Delete a note by name."),
		mcp.WithString("name", mcp.Required(), mcp.Description("The note's name.")),
		mcp.WithDestructiveHintAnnotation(true),
		mcp.WithOpenWorldHintAnnotation(false),
	), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		name, err := req.RequireString("name")
		if err != nil {
			return mcp.NewToolResultError(err.Error()), nil
		}
		if !st.remove(name) {
			return mcp.NewToolResultError(fmt.Sprintf("no note named %q", name)), nil
		}
		logger.Printf("note %q deleted", name)
		return mcp.NewToolResultText(fmt.Sprintf("deleted note %q", name)), nil
	})

	s.AddPrompt(mcp.NewPrompt("summarize",
		mcp.WithPromptDescription("Ask the model to summarize one note."),
		mcp.WithArgument("name", mcp.RequiredArgument(), mcp.ArgumentDescription("The note to summarize.")),
	), func(ctx context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
		name := req.Params.Arguments["name"]
		text, err := visible(st, name)
		if err != nil {
			return nil, err
		}
		return mcp.NewGetPromptResult("Summarize note "+name, []mcp.PromptMessage{
			mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent(
				fmt.Sprintf("Summarize the note %q in one or two sentences:\n\n%s", name, text))),
		}), nil
	})

	s.AddResourceTemplate(mcp.NewResourceTemplate("notes://{name}", "note",
		mcp.WithTemplateDescription("One note's text, by name."),
		mcp.WithTemplateMIMEType("text/plain"),
	), func(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
		rest, ok := strings.CutPrefix(req.Params.URI, "notes://")
		if !ok {
			return nil, fmt.Errorf("not a notes:// URI: %q", req.Params.URI)
		}
		name, err := url.PathUnescape(rest)
		if err != nil {
			return nil, fmt.Errorf("bad note name in %q: %v", req.Params.URI, err)
		}
		text, err := visible(st, name)
		if err != nil {
			return nil, err
		}
		return []mcp.ResourceContents{mcp.TextResourceContents{URI: req.Params.URI, MIMEType: "text/plain", Text: text}}, nil
	})
	return s
}

// visible returns a note for the prompt and the resource, which refuse
// hidden notes (the hub does not authorize prompts/get or resources/read).
func visible(st *store, name string) (string, error) {
	if hidden(name) {
		return "", fmt.Errorf("note %q is hidden: read it with the read_note tool, where policy applies", name)
	}
	text, ok := st.get(name)
	if !ok {
		return "", fmt.Errorf("no note named %q", name)
	}
	return text, nil
}
