package main

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/sigilcore/sigil-hub/internal/signtest"
	"github.com/sigilcore/sigil-hub/internal/testupstream"
)

type samplingFunc func(context.Context, mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error)

func (f samplingFunc) CreateMessage(ctx context.Context, r mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
	return f(ctx, r)
}

type elicitFunc func(context.Context, mcp.ElicitationRequest) (*mcp.ElicitationResult, error)

func (f elicitFunc) Elicit(ctx context.Context, r mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
	return f(ctx, r)
}

type rootsFunc func(context.Context, mcp.ListRootsRequest) (*mcp.ListRootsResult, error)

func (f rootsFunc) ListRoots(ctx context.Context, r mcp.ListRootsRequest) (*mcp.ListRootsResult, error) {
	return f(ctx, r)
}

// TestServerRequestsReachTheClient: sampling, elicitation and roots requests
// from server-everything reach the client that made the call, in hub mode,
// and are refused for a client that did not declare the capability.
func TestServerRequestsReachTheClient(t *testing.T) {
	everything := npmServer(t, "server-everything", "dist/index.js")
	cfg := "[servers.ev]\ncommand = \"node\"\nargs = [" + quoteTOML(everything) + "]\n"

	var sampled, elicited, rooted atomic.Int32
	opts := []client.ClientOption{
		client.WithSamplingHandler(samplingFunc(func(ctx context.Context, r mcp.CreateMessageRequest) (*mcp.CreateMessageResult, error) {
			sampled.Add(1)
			return &mcp.CreateMessageResult{Model: "test-model",
				SamplingMessage: mcp.SamplingMessage{Role: mcp.RoleAssistant, Content: mcp.NewTextContent("sampled by the client")}}, nil
		})),
		client.WithElicitationHandler(elicitFunc(func(ctx context.Context, r mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
			elicited.Add(1)
			return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: mcp.ElicitationResponseActionDecline}}, nil
		})),
		client.WithRootsHandler(rootsFunc(func(ctx context.Context, r mcp.ListRootsRequest) (*mcp.ListRootsResult, error) {
			rooted.Add(1)
			return &mcp.ListRootsResult{Roots: []mcp.Root{{URI: "file:///client/root", Name: "client-root"}}}, nil
		})),
	}
	sign := signtest.New(t, signtest.Options{APIKey: testKey})
	h := startHubWith(t, opts, signEnv(sign), "--config", writeConfig(t, cfg))
	h.toolNames()

	got := resultText(t, h.call("ev__trigger-sampling-request", `{"prompt":"hello","maxTokens":10}`))
	if sampled.Load() != 1 || !strings.Contains(got, "sampled by the client") {
		t.Fatalf("sampling: handler ran %d times; result %q", sampled.Load(), got)
	}
	resp := h.call("ev__trigger-elicitation-request", `{}`)
	if resp.Error != nil || elicited.Load() != 1 {
		t.Fatalf("elicitation: handler ran %d times; %+v", elicited.Load(), resp.Error)
	}
	got = resultText(t, h.call("ev__get-roots-list", `{}`))
	if !strings.Contains(got, "file:///client/root") {
		t.Fatalf("roots: %q (handler ran %d times)", got, rooted.Load())
	}

	// A client without the capabilities: the request never reaches it and the
	// upstream gets an error instead.
	plain := startHub(t, signEnv(sign), "--config", writeConfig(t, cfg))
	plain.toolNames()
	resp = plain.call("ev__trigger-sampling-request", `{"prompt":"hello","maxTokens":10}`)
	if resp.Error == nil {
		if txt := resultText(t, resp); strings.Contains(txt, "sampled by the client") {
			t.Fatalf("sampling reached a client that did not declare it: %q", txt)
		}
	}
}

// TestLogMessagesNamedByUpstream: in hub mode an upstream's
// notifications/message reaches the client with the upstream's name as the
// logger (prefix), after logging/setLevel reached the upstream.
func TestLogMessagesNamedByUpstream(t *testing.T) {
	everything := npmServer(t, "server-everything", "dist/index.js")
	cfg := "[servers.ev]\ncommand = \"node\"\nargs = [" + quoteTOML(everything) + "]\n"
	sign := signtest.New(t, signtest.Options{APIKey: testKey})
	h := startHub(t, signEnv(sign), "--config", writeConfig(t, cfg))
	h.toolNames()
	if resp := h.rpc("logging/setLevel", map[string]any{"level": "debug"}); resp.Error != nil {
		t.Fatalf("logging/setLevel: %+v", resp.Error)
	}
	resultText(t, h.call("ev__toggle-simulated-logging", `{}`))
	var logger string
	eventually(t, "a log message from the upstream", func() bool {
		h.mu.Lock()
		defer h.mu.Unlock()
		for _, n := range h.notes {
			if n.Method == "notifications/message" {
				logger, _ = n.Params.AdditionalFields["logger"].(string)
				return true
			}
		}
		return false
	})
	if logger != "ev" && !strings.HasPrefix(logger, "ev/") {
		t.Fatalf("logger = %q, want the upstream's name (ev or ev/...)", logger)
	}
}

// TestSlowElicitationOverHTTPUpstream: a person may take longer than 30 s to
// answer an elicitation from a Streamable HTTP upstream (mcp-go caps such
// requests at 30 s; the hub lifts the cap). Takes about 32 s.
func TestSlowElicitationOverHTTPUpstream(t *testing.T) {
	if testing.Short() {
		t.Skip("takes over 30 s")
	}
	t.Parallel()
	srv, err := testupstream.StartHTTP(testupstream.Config{Name: "remote", Misbehave: true}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	opts := []client.ClientOption{client.WithElicitationHandler(elicitFunc(func(ctx context.Context, r mcp.ElicitationRequest) (*mcp.ElicitationResult, error) {
		select { // a person thinking it over
		case <-time.After(31 * time.Second):
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		return &mcp.ElicitationResult{ElicitationResponse: mcp.ElicitationResponse{Action: mcp.ElicitationResponseActionAccept, Content: map[string]any{"secret": "s"}}}, nil
	}))}
	sign := signtest.New(t, signtest.Options{APIKey: testKey})
	cfg := "[servers.remote]\nurl = " + quoteTOML(srv.URL) + "\nserver_id = \"remote\"\n"
	h := startHubWith(t, opts, signEnv(sign), "--config", writeConfig(t, cfg))
	got := resultText(t, h.call("remote__sample", `{"kind":"elicitation"}`))
	if got != "answered" {
		t.Fatalf("an elicitation answered after 31 s: the upstream saw %q, want the answer", got)
	}
}
