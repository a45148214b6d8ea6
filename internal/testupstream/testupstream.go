package testupstream

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"
)

// Environment variables read by Main (see the package doc).
const (
	EnvMarker      = "SIGIL_HUB_TEST_UPSTREAM"
	EnvName        = "TESTUPSTREAM_NAME"
	EnvTools       = "TESTUPSTREAM_TOOLS"
	EnvLog         = "TESTUPSTREAM_LOG"
	EnvFailStart   = "TESTUPSTREAM_FAIL_START"
	EnvIgnoreTerm  = "TESTUPSTREAM_IGNORE_TERM"
	EnvGrandchild  = "TESTUPSTREAM_GRANDCHILD"
	EnvStderrFlood = "TESTUPSTREAM_STDERR_FLOOD"
	EnvPageSize    = "TESTUPSTREAM_PAGE_SIZE"
	EnvHTTP        = "TESTUPSTREAM_HTTP"
	EnvGarbage     = "TESTUPSTREAM_GARBAGE"
	EnvMisbehave   = "TESTUPSTREAM_MISBEHAVE"
	// envSleeper makes Main sleep forever: the grandchild's mode.
	envSleeper = "TESTUPSTREAM_SLEEPER"
)

// RichInputSchema is the raw inputSchema of the "rich" tool: compact, free of
// HTML characters, with keywords mcp-go's client would drop, so a test can
// look for these exact bytes in what the hub listed.
const RichInputSchema = `{"$schema":"https://json-schema.org/draft/2020-12/schema","type":"object","description":"rich top","properties":{"q":{"anyOf":[{"type":"string","maxLength":9},{"type":"integer","minimum":-9007199254740993}]},"n":{"type":"number","x-unknown-keyword":{"deep":[1,2.50,"x"]}}},"required":["q"],"additionalProperties":false,"x-vendor":true}`

// RichOutputSchema is the raw outputSchema of the "rich" tool.
const RichOutputSchema = `{"type":"object","oneOf":[{"properties":{"a":{"type":"string"}}},{"properties":{"b":{"type":"integer"}}}],"title":"out"}`

// Config selects the fake server's behaviour. The zero value is a plain
// server named "testupstream".
type Config struct {
	Name        string   // serverInfo.name; "" → "testupstream"
	Tools       []string // extra plain tools
	LogPath     string   // "" → no log
	PageSize    int      // 0 → no paging
	IgnoreTerm  bool     // ignore SIGTERM and stdin EOF (stdio mode only)
	Grandchild  bool     // spawn a sleeping grandchild at start (stdio mode only)
	StderrFlood int      // bytes of stderr written at start; 0 → none
	Garbage     int      // non-JSON-RPC stdout lines written at start (stdio mode only); 0 → none
	Misbehave   bool     // also serve the misbehaving tools (misbehave.go); false → not listed
}

// Main runs the fake server as the whole process, configured from the
// environment, and exits. Call it only from a TestMain (or main).
func Main() {
	if os.Getenv(envSleeper) == "1" {
		if os.Getenv(EnvIgnoreTerm) == "1" {
			signal.Ignore(syscall.SIGTERM, os.Interrupt)
		}
		for {
			time.Sleep(time.Hour)
		}
	}
	if msg := os.Getenv(EnvFailStart); msg != "" {
		fmt.Fprintln(os.Stderr, msg)
		os.Exit(1)
	}
	cfg := Config{
		Name:       os.Getenv(EnvName),
		LogPath:    os.Getenv(EnvLog),
		IgnoreTerm: os.Getenv(EnvIgnoreTerm) == "1",
		Grandchild: os.Getenv(EnvGrandchild) == "1",
		Misbehave:  os.Getenv(EnvMisbehave) == "1",
	}
	if v := os.Getenv(EnvTools); v != "" {
		for _, t := range strings.Split(v, ",") {
			if t = strings.TrimSpace(t); t != "" {
				cfg.Tools = append(cfg.Tools, t)
			}
		}
	}
	if v := os.Getenv(EnvPageSize); v != "" {
		cfg.PageSize, _ = strconv.Atoi(v)
	}
	if v := os.Getenv(EnvStderrFlood); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			n = 1 << 20
		}
		cfg.StderrFlood = n
	}
	if v := os.Getenv(EnvGarbage); v != "" {
		cfg.Garbage, _ = strconv.Atoi(v)
	}
	if addr := os.Getenv(EnvHTTP); addr != "" {
		os.Exit(mainHTTP(cfg, addr))
	}
	os.Exit(mainStdio(cfg))
}

func mainStdio(cfg Config) int {
	if cfg.IgnoreTerm {
		signal.Ignore(syscall.SIGTERM, os.Interrupt)
	}
	lg, err := openLog(cfg.LogPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testupstream:", err)
		return 1
	}
	f := &fake{cfg: cfg, log: lg, barriers: map[string]*barrier{}, out: &lockedWriter{w: os.Stdout}}
	if cfg.Grandchild {
		if err := f.spawnGrandchild(); err != nil {
			fmt.Fprintln(os.Stderr, "testupstream: grandchild:", err)
			return 1
		}
	}
	flood(cfg.StderrFlood)
	f.raw(garbage(cfg.Garbage))
	fmt.Fprintf(os.Stderr, "testupstream %s: serving stdio (pid %d)\n", f.name(), os.Getpid())

	s := f.newServer()
	pr, pw := io.Pipe()
	go func() {
		br := bufio.NewReader(os.Stdin)
		for {
			line, err := br.ReadBytes('\n')
			if len(line) > 0 {
				lg.line(line)
				if cfg.Misbehave && f.intercept(line) {
					continue
				}
				if _, werr := pw.Write(line); werr != nil {
					return
				}
			}
			if err != nil {
				if cfg.IgnoreTerm {
					for {
						time.Sleep(time.Hour)
					}
				}
				pw.Close()
				return
			}
		}
	}()
	ss := server.NewStdioServer(s)
	server.WithWorkerPoolSize(100)(ss)
	server.WithQueueSize(1000)(ss)
	ss.SetErrorLogger(log.New(os.Stderr, "", 0))
	if err := ss.Listen(context.Background(), pr, f.out); err != nil && !errors.Is(err, io.EOF) && !errors.Is(err, context.Canceled) {
		fmt.Fprintln(os.Stderr, "testupstream:", err)
		return 1
	}
	return 0
}

func mainHTTP(cfg Config, addr string) int {
	hs, err := StartHTTP(cfg, addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testupstream:", err)
		return 1
	}
	fmt.Fprintf(os.Stdout, "LISTENING %s\n", hs.URL)
	_, _ = io.Copy(io.Discard, os.Stdin)
	_ = hs.Close()
	return 0
}

// HTTPServer is a fake server listening on loopback; see StartHTTP. Its
// fields are read-only; Close is safe to call once.
type HTTPServer struct {
	URL    string // Streamable HTTP endpoint, http://host:port/mcp
	SSEURL string // legacy SSE endpoint, http://host:port/sse
	srv    *http.Server
	log    *logFile
}

// StartHTTP serves the fake server on addr (e.g. "127.0.0.1:0") in this
// process: Streamable HTTP at /mcp and legacy SSE at /sse (+ /message). With
// cfg.LogPath set, every POST body is logged as one line. The "crash" tool
// exits the whole process, so in-process users must not call it.
func StartHTTP(cfg Config, addr string) (*HTTPServer, error) {
	lg, err := openLog(cfg.LogPath)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen %s: %w", addr, err)
	}
	f := &fake{cfg: cfg, log: lg, barriers: map[string]*barrier{}}
	s := f.newServer()
	base := "http://" + ln.Addr().String()
	sse := server.NewSSEServer(s)
	mux := http.NewServeMux()
	mux.Handle("/mcp", server.NewStreamableHTTPServer(s))
	mux.Handle("/sse", sse)
	mux.Handle("/message", sse)
	logging := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.Body != nil {
			b, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			lg.line(b)
			r.Body = io.NopCloser(strings.NewReader(string(b)))
		}
		mux.ServeHTTP(w, r)
	})
	hs := &HTTPServer{URL: base + "/mcp", SSEURL: base + "/sse", srv: &http.Server{Handler: logging}, log: lg}
	go func() { _ = hs.srv.Serve(ln) }()
	return hs, nil
}

// Close stops the listener and closes open connections (SSE streams included).
func (h *HTTPServer) Close() error {
	err := h.srv.Close()
	h.log.close()
	return err
}

// fake holds one server's mutable test state.
type fake struct {
	cfg Config
	log *logFile

	// out is the stdio server's stdout: misbehaving tools write raw lines
	// through it so that they never split one of the server's messages. nil
	// in HTTP mode (the raw misbehaviours are stdio-only).
	out *lockedWriter

	mu         sync.Mutex
	grandchild int                 // pid, 0 if none
	barriers   map[string]*barrier // by key
	s          *server.MCPServer
}

type barrier struct {
	n       int
	arrived int
	done    chan struct{}
}

func (f *fake) name() string {
	if f.cfg.Name != "" {
		return f.cfg.Name
	}
	return "testupstream"
}

func (f *fake) spawnGrandchild() error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), envSleeper+"=1")
	cmd.Stdout = os.Stdout
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	f.mu.Lock()
	f.grandchild = cmd.Process.Pid
	f.mu.Unlock()
	_ = cmd.Process.Release()
	return nil
}

func flood(n int) {
	if n <= 0 {
		return
	}
	line := []byte(strings.Repeat("flood ", 15) + "\n")
	w := bufio.NewWriter(os.Stderr)
	for written := 0; written < n; written += len(line) {
		_, _ = w.Write(line)
	}
	_ = w.Flush()
}

func text(s string) *mcp.CallToolResult { return mcp.NewToolResultText(s) }

func (f *fake) newServer() *server.MCPServer {
	opts := []server.ServerOption{
		server.WithToolCapabilities(true),
		server.WithPromptCapabilities(true),
		server.WithResourceCapabilities(false, true),
		server.WithInstructions("testupstream instructions"),
	}
	if f.cfg.PageSize > 0 {
		opts = append(opts, server.WithPaginationLimit(f.cfg.PageSize))
	}
	s := server.NewMCPServer(f.name(), "1.0.0", opts...)
	f.s = s

	s.AddTool(mcp.NewTool("echo", mcp.WithDescription("returns its raw arguments")),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return text(string(req.Params.RawArguments)), nil
		})
	s.AddTool(mcp.NewTool("slow", mcp.WithNumber("ms")),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			ms := req.GetFloat("ms", 1000)
			// Logged once mcp-go runs the handler: a cancellation sent from
			// here on reaches it (one sent earlier may not).
			f.log.event("started", map[string]any{"tool": "slow"})
			t := time.NewTimer(time.Duration(ms) * time.Millisecond)
			defer t.Stop()
			select {
			case <-t.C:
				return text("slept"), nil
			case <-ctx.Done():
				f.log.event("cancelled", map[string]any{"tool": "slow"})
				return nil, ctx.Err()
			}
		})
	s.AddTool(mcp.NewTool("barrier", mcp.WithString("key"), mcp.WithNumber("n")),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			key := req.GetString("key", "")
			n := int(req.GetFloat("n", 1))
			f.mu.Lock()
			b := f.barriers[key]
			if b == nil {
				b = &barrier{n: n, done: make(chan struct{})}
				f.barriers[key] = b
			}
			b.arrived++
			if b.arrived == b.n {
				close(b.done)
			}
			f.mu.Unlock()
			select {
			case <-b.done:
				return text("released"), nil
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		})
	s.AddTool(mcp.NewTool("crash"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		fmt.Fprintln(os.Stderr, "testupstream: crashing on request")
		os.Exit(3)
		return nil, nil
	})
	s.AddTool(mcp.NewTool("progress", mcp.WithNumber("n")),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			n := int(req.GetFloat("n", 3))
			var tok any
			if req.Params.Meta != nil {
				tok = req.Params.Meta.ProgressToken
			}
			for i := 1; i <= n; i++ {
				if tok == nil {
					break
				}
				if err := s.SendNotificationToClient(ctx, "notifications/progress",
					map[string]any{"progressToken": tok, "progress": i, "total": n}); err != nil {
					return nil, err
				}
			}
			return text(fmt.Sprintf("progressed %d", n)), nil
		})
	s.AddTool(mcp.NewTool("add_tool", mcp.WithString("name"), mcp.WithNumber("count")),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			name := req.GetString("name", "added")
			count := int(req.GetFloat("count", 1))
			for i := 1; i <= count; i++ {
				tn := name
				if i > 1 {
					tn = fmt.Sprintf("%s_%d", name, i)
				}
				s.AddTool(mcp.NewTool(tn), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
					return text("ok:" + tn), nil
				})
			}
			return text("added"), nil
		})
	s.AddTool(mcp.NewTool("remove_tool", mcp.WithString("name")),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			s.DeleteTools(req.GetString("name", ""))
			return text("removed"), nil
		})
	s.AddTool(mcp.NewTool("pid"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		f.mu.Lock()
		gc := f.grandchild
		f.mu.Unlock()
		b, _ := json.Marshal(map[string]int{"pid": os.Getpid(), "grandchild": gc})
		return text(string(b)), nil
	})
	s.AddTool(mcp.NewTool("roots"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		res, err := s.RequestRoots(ctx, mcp.ListRootsRequest{})
		if err != nil {
			return mcp.NewToolResultError("roots/list failed: " + err.Error()), nil
		}
		b, _ := json.Marshal(res.Roots)
		return text(string(b)), nil
	})
	// write_file binds its arguments to a struct, as Go servers on mcp-go
	// do: encoding/json fills a field from any member whose name folds to
	// the field's ("PATH", "pat\u017f"). It writes nothing: it logs an
	// "acted" event with the values it bound, so a test can compare what
	// was authorized with what a real Go tool would act on.
	s.AddTool(mcp.NewTool("write_file", mcp.WithDescription("binds path, content and opts.mode to a struct"),
		mcp.WithString("path"), mcp.WithString("content"),
		mcp.WithObject("opts", mcp.Properties(map[string]any{"mode": map[string]any{"type": "string"}}))),
		func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			var a struct {
				Path    string `json:"path"`
				Content string `json:"content"`
				Opts    struct {
					Mode string `json:"mode"`
				} `json:"opts"`
			}
			if err := req.BindArguments(&a); err != nil {
				return mcp.NewToolResultError("bind: " + err.Error()), nil
			}
			f.log.event("acted", map[string]any{"tool": "write_file", "path": a.Path, "mode": a.Opts.Mode})
			return text("wrote " + a.Path), nil
		})
	s.AddTool(mcp.NewTool("env"), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		b, _ := json.Marshal(os.Environ())
		return text(string(b)), nil
	})
	rich := mcp.NewToolWithRawSchema("rich", "a tool with a rich schema", json.RawMessage(RichInputSchema))
	rich.RawOutputSchema = json.RawMessage(RichOutputSchema)
	rich.Title = "Rich"
	rich.Annotations = mcp.ToolAnnotation{Title: "rich tool", ReadOnlyHint: mcp.ToBoolPtr(true)}
	rich.Meta = &mcp.Meta{AdditionalFields: map[string]any{"vendor/key": "v"}}
	rich.Icons = []mcp.Icon{{Src: "https://example.invalid/i.png", MIMEType: "image/png", Sizes: []string{"48x48"}}}
	s.AddTool(rich, func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
		return text("rich"), nil
	})
	if f.cfg.Misbehave {
		f.addMisbehaviour(s)
	}
	for _, name := range f.cfg.Tools {
		name := name
		s.AddTool(mcp.NewTool(name), func(ctx context.Context, req mcp.CallToolRequest) (*mcp.CallToolResult, error) {
			return text("ok:" + name), nil
		})
	}

	s.AddPrompt(mcp.NewPrompt("greet", mcp.WithPromptDescription("greets"), mcp.WithArgument("name", mcp.RequiredArgument())),
		func(ctx context.Context, req mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return mcp.NewGetPromptResult("greeting", []mcp.PromptMessage{
				mcp.NewPromptMessage(mcp.RoleUser, mcp.NewTextContent("Hello, "+req.Params.Arguments["name"]+"!")),
			}), nil
		})
	s.AddResource(mcp.NewResource("test://static", "static", mcp.WithMIMEType("text/plain")),
		func(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
			return []mcp.ResourceContents{mcp.TextResourceContents{URI: req.Params.URI, MIMEType: "text/plain", Text: "static content"}}, nil
		})
	s.AddResourceTemplate(mcp.NewResourceTemplate("test://items/{id}", "items"),
		func(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
			return []mcp.ResourceContents{mcp.TextResourceContents{URI: req.Params.URI, MIMEType: "text/plain", Text: "item " + req.Params.URI}}, nil
		})
	return s
}

// logFile appends whole lines to the TESTUPSTREAM_LOG file; a nil *logFile
// discards. Safe for concurrent use.
type logFile struct {
	mu sync.Mutex
	f  *os.File
}

func openLog(path string) (*logFile, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, fmt.Errorf("open log: %w", err)
	}
	return &logFile{f: f}, nil
}

func (l *logFile) line(b []byte) {
	if l == nil {
		return
	}
	buf := make([]byte, 0, len(b)+1)
	buf = append(buf, strings.TrimRight(string(b), "\r\n")...)
	buf = append(buf, '\n')
	l.mu.Lock()
	defer l.mu.Unlock()
	_, _ = l.f.Write(buf)
}

func (l *logFile) event(kind string, fields map[string]any) {
	if l == nil {
		return
	}
	m := map[string]any{"testupstream": kind}
	for k, v := range fields {
		m[k] = v
	}
	b, _ := json.Marshal(m)
	l.line(b)
}

func (l *logFile) close() {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	_ = l.f.Close()
}
