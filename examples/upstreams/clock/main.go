package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

const (
	version = "0.1.0"
	// maxSleep bounds sleep so that a stray call cannot park a worker for long.
	maxSleep = 60_000
)

func main() {
	logger := log.New(os.Stderr, "clock: ", log.LstdFlags)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	stdio := server.NewStdioServer(newServer())
	stdio.SetErrorLogger(logger)
	logger.Printf("serving MCP on stdio")
	if err := stdio.Listen(ctx, os.Stdin, os.Stdout); err != nil && !errors.Is(err, context.Canceled) {
		logger.Printf("stopped: %v", err)
		os.Exit(1)
	}
	logger.Printf("stdin closed; bye")
}

func newServer() *server.MCPServer {
	s := server.NewMCPServer("clock", version, server.WithToolCapabilities(false))

	s.AddTool(mcp.NewTool("now",
		mcp.WithDescription("The current time (RFC 3339, UTC)."),
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithOpenWorldHintAnnotation(false),
	), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return mcp.NewToolResultText(time.Now().UTC().Format(time.RFC3339)), nil
	})

	s.AddTool(mcp.NewTool("sleep",
		mcp.WithDescription(fmt.Sprintf("Wait ms milliseconds (at most %d), then answer. Cancelling the call ends the wait.", maxSleep)),
		mcp.WithNumber("ms", mcp.Required(), mcp.Min(0), mcp.Max(maxSleep), mcp.Description("How long to wait, in milliseconds.")),
		mcp.WithReadOnlyHintAnnotation(true),
		mcp.WithDestructiveHintAnnotation(false),
		mcp.WithOpenWorldHintAnnotation(false),
	), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		ms, err := req.RequireFloat("ms")
		if err != nil {
			return mcp.NewToolResultError(err.Error()), nil
		}
		if ms < 0 || ms > maxSleep {
			return mcp.NewToolResultError(fmt.Sprintf("ms must be between 0 and %d", maxSleep)), nil
		}
		d := time.Duration(ms * float64(time.Millisecond))
		t := time.NewTimer(d)
		defer t.Stop()
		select {
		case <-t.C:
			return mcp.NewToolResultText(fmt.Sprintf("slept %d ms", d.Milliseconds())), nil
		case <-ctx.Done():
			// The client (or the hub's call budget) gave up; the answer is
			// not read by anyone, but say why for the logs.
			return nil, fmt.Errorf("sleep cancelled after part of %d ms: %w", d.Milliseconds(), ctx.Err())
		}
	})
	return s
}
