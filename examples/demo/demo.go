package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// options configure run. The zero value runs the whole demo quietly from
// the working directory, with the config file's pending_timeout and an
// empty environment for the hub.
type options struct {
	// Root is the repository root. Empty means: walk up from the working
	// directory to sigil-hub's go.mod.
	Root string
	// Stderr receives the hub's own logs when Verbose is set, and the last
	// of them when a step fails. Nil discards them.
	Stderr io.Writer
	// Verbose streams the hub's logs to Stderr as they are written.
	Verbose bool
	// PendingTimeout, when positive, replaces the config's pending_timeout:
	// how long the held write waits before it is denied.
	PendingTimeout time.Duration
	// Environ is the hub process's environment. SIGIL_* variables are
	// dropped so that a user's SIGIL_API_KEY, SIGIL_PENDING_TIMEOUT or
	// SIGIL_HUB_CONFIG cannot change the demo. Nil means an empty one.
	Environ []string
}

// errSteps reports that the hub ran but some step did not behave as
// expected; the transcript names them.
var errSteps = errors.New("some steps did not behave as expected")

// callBudget bounds one scripted call on top of the pending timeout.
const callBudget = 30 * time.Second

// run is the whole demo: build, start the hub, run the steps, print the
// transcript to w. It returns an error wrapping errSteps when a step
// misbehaved, or another error when the demo could not run at all. It is
// called once per process (or per test); the hub it starts is stopped
// before it returns.
func run(ctx context.Context, w io.Writer, o options) error {
	out := &transcript{w: w}
	stderr := o.Stderr
	if stderr == nil {
		stderr = io.Discard
	}
	root := o.Root
	if root == "" {
		var err error
		if root, err = findRoot("."); err != nil {
			return err
		}
	}

	dir, err := os.MkdirTemp("", "sigil-hub-demo-")
	if err != nil {
		return fmt.Errorf("make a temporary folder: %w", err)
	}
	defer os.RemoveAll(dir)

	out.printf("sigil-hub offline demo: the hub in front of two example MCP servers, every tool call\n")
	out.printf("decided by the embedded policy engine. No account, no API key, no network.\n\n")
	out.printf("Building the hub and the example upstreams ... ")
	p, err := prepare(ctx, root, dir, o.PendingTimeout)
	if err != nil {
		out.printf("failed\n")
		return err
	}
	out.printf("done in %.1fs (%s)\n", p.took.Seconds(), strings.Join(p.pkgs, ", "))
	out.printf("  config   %s (with the built binaries)\n", demoConfig)
	out.printf("  policy   %s\n", rel(root, p.policy))
	out.printf("  pending  held calls wait %s for approval\n\n", p.pending)

	// Start the hub the way an MCP client does: a child process speaking
	// newline-delimited JSON-RPC on its stdin/stdout.
	logs := &tailBuffer{max: 16 << 10}
	var hubStderr io.Writer = logs
	if o.Verbose {
		hubStderr = io.MultiWriter(logs, stderr)
	}
	env := make([]string, 0, len(o.Environ))
	for _, kv := range o.Environ {
		if !strings.HasPrefix(kv, "SIGIL_") {
			env = append(env, kv)
		}
	}
	c, err := client.NewStdioMCPClientWithOptions(p.hubBin, nil, []string{"--config", p.configPath},
		transport.WithCommandStderrWriter(hubStderr),
		transport.WithCommandFunc(func(_ context.Context, command string, _ []string, args []string) (*exec.Cmd, error) {
			cmd := exec.Command(command, args...)
			cmd.Env = env
			cmd.Dir = dir
			return cmd, nil
		}))
	if err != nil {
		return fmt.Errorf("start the hub: %w", err)
	}
	// Close ends the hub's stdin; the hub then stops its upstreams and exits.
	defer c.Close()
	// NewStdioMCPClient starts the process but not the client: without
	// Start no notification handler is installed and progress is dropped.
	if err := c.Start(ctx); err != nil {
		return fmt.Errorf("start the MCP client: %w", err)
	}
	failed := func(err error) error {
		if !o.Verbose {
			fmt.Fprintf(stderr, "the hub's last log lines:\n%s\n", logs.String())
		}
		return err
	}

	// Progress notifications arrive on the client's read loop, before the
	// answer to the call they belong to; active routes them to the step
	// that is running.
	var active struct {
		sync.Mutex
		token string
		start time.Time
		n     int
	}
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		if n.Method != "notifications/progress" {
			return
		}
		tok, _ := n.Params.AdditionalFields["progressToken"].(string)
		msg, _ := n.Params.AdditionalFields["message"].(string)
		active.Lock()
		defer active.Unlock()
		if tok == "" || tok != active.token {
			return
		}
		active.n++
		out.printf("    ...     HELD      %s  [+%.1fs]\n", msg, time.Since(active.start).Seconds())
	})

	initCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = mcp.LATEST_LEGACY_PROTOCOL_VERSION
	req.Params.ClientInfo = mcp.Implementation{Name: "sigil-hub-demo", Version: "1"}
	res, err := c.Initialize(initCtx, req)
	if err != nil {
		return failed(fmt.Errorf("initialize the hub: %w", err))
	}
	out.printf("Started %s %s over stdio (MCP %s).\n\n", res.ServerInfo.Name, res.ServerInfo.Version, res.ProtocolVersion)

	rpc := &caller{c: c}
	tools, err := rpc.listTools(initCtx)
	if err != nil {
		return failed(err)
	}
	out.printf("The hub exposes %d tools, named <server>__<tool>:\n", len(tools))
	for _, t := range tools {
		out.printf("  %-20s %s\n", t.Name, t.Description)
	}
	out.printf("\n")

	var bad []string
	script := steps()
	for i, s := range script {
		label := fmt.Sprintf("[%d] %s %s", i+1, s.tool, s.args)
		if s.progressToken != "" {
			label += fmt.Sprintf("   (progressToken %q)", s.progressToken)
		}
		out.printf("%s\n    expect  %s\n", label, s.expectation())

		active.Lock()
		active.token, active.start, active.n = s.progressToken, time.Now(), 0
		active.Unlock()
		o2, err := rpc.callTool(ctx, s, p.pending)
		active.Lock()
		o2.held, active.token = active.n, ""
		active.Unlock()
		if err != nil {
			return failed(fmt.Errorf("step %d (%s): %w", i+1, s.tool, err))
		}
		out.printf("    got     %s\n", o2.describe())
		if why := s.mismatch(o2); why != "" {
			out.printf("    FAILED  %s\n\n", why)
			bad = append(bad, fmt.Sprintf("step %d (%s %s): %s", i+1, s.tool, s.args, why))
			continue
		}
		out.printf("    ok\n\n")
	}

	if len(bad) > 0 {
		out.printf("%d of %d steps did not behave as expected:\n", len(bad), len(script))
		for _, b := range bad {
			out.printf("  - %s\n", b)
		}
		out.printf("\n")
		return failed(fmt.Errorf("%w: %s", errSteps, strings.Join(bad, "; ")))
	}
	out.printf("All %d steps behaved as expected.\n\n", len(script))
	out.printf("%s", clientHelp(root))
	return nil
}

// clientHelp tells how to put the same hub behind a real MCP client.
func clientHelp(root string) string {
	cfg := filepath.Join(root, filepath.FromSlash(demoConfig))
	args, _ := json.Marshal([]string{"run", "-C", root, hubPackage, "--config", cfg})
	return "To use this hub with a real MCP client (Claude Desktop, Cursor, ...), add this entry to the\n" +
		"client's MCP servers config. \"go\" must be on the client's PATH; or run `go build ./cmd/sigil-hub`\n" +
		"and use the binary as the command, with args [\"--config\", " + strconv.Quote(cfg) + "].\n\n" +
		"{\n" +
		"  \"mcpServers\": {\n" +
		"    \"sigil-hub-demo\": {\n" +
		"      \"command\": \"go\",\n" +
		"      \"args\": " + string(args) + "\n" +
		"    }\n" +
		"  }\n" +
		"}\n"
}

// rel shows p relative to root when it is inside it.
func rel(root, p string) string {
	if r, err := filepath.Rel(root, p); err == nil && !strings.HasPrefix(r, "..") {
		return filepath.ToSlash(r)
	}
	return p
}

// transcript serializes writes to the demo's stdout: steps print from run,
// progress from the client's read loop. Safe for concurrent use.
type transcript struct {
	mu sync.Mutex
	w  io.Writer
}

func (t *transcript) printf(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	fmt.Fprintf(t.w, format, args...)
}

// tailBuffer keeps the last max bytes written to it (the hub's logs).
// Safe for concurrent use.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if over := len(t.b) - t.max; over > 0 {
		t.b = append(t.b[:0], t.b[over:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}
