package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client"
	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/sigilcore/sigil-hub/internal/testbuf"
	"github.com/sigilcore/sigil-hub/internal/testupstream"
)

// hubBin is the real sigil-hub binary, built once by TestMain.
var hubBin string

// testConfigHome is the config folder every hub the tests start uses
// (XDG_CONFIG_HOME), so that pin files, signer keys and admin tokens never
// land in the real user's folder.
var testConfigHome string

// TestMain doubles as the fake upstream server (the re-exec trick: an
// upstream's command is this test binary with SIGIL_HUB_TEST_UPSTREAM=1)
// and builds the real binary the end-to-end tests drive.
func TestMain(m *testing.M) {
	if os.Getenv(testupstream.EnvMarker) == "1" {
		testupstream.Main()
		return
	}
	dir, err := os.MkdirTemp("", "sigil-hub-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	hubBin = filepath.Join(dir, "sigil-hub")
	testConfigHome = filepath.Join(dir, "config")
	if err := os.MkdirAll(testConfigHome, 0o700); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	if out, err := exec.Command("go", "build", "-o", hubBin, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build sigil-hub: %v\n%s", err, out)
		os.Exit(1)
	}
	// Most tests here wait on processes, timeouts and backoff rather than
	// compute: run more of them at once than -parallel's default of
	// GOMAXPROCS (2 on a small CI machine), unless -parallel is given.
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit {
		_ = flag.Set("test.parallel", strconv.Itoa(max(4, runtime.GOMAXPROCS(0))))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// selfExe is the test binary, used as the fake upstream's command.
func selfExe(t *testing.T) string {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return exe
}

// hubProc is a running sigil-hub binary with an MCP client attached over
// its stdin/stdout, the way Claude Desktop or Cursor runs it.
type hubProc struct {
	t      *testing.T
	c      *client.Client
	stderr *testbuf.Buffer
	mu     sync.Mutex
	notes  []mcp.JSONRPCNotification
	seq    int
	cmd    *exec.Cmd // the hub process
}

// baseEnv is the environment the hub process gets: the test's own minus any
// SIGIL_* variable, plus env.
func baseEnv(env ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SIGIL_") && !strings.HasPrefix(kv, "TESTUPSTREAM_") && !strings.HasPrefix(kv, "XDG_CONFIG_HOME=") {
			out = append(out, kv)
		}
	}
	// Each hub gets a config folder of its own (pin files, admin tokens):
	// tests run in parallel and must not see each other's. Callers' env
	// comes last: a later duplicate wins.
	home, err := os.MkdirTemp(testConfigHome, "home-")
	if err != nil {
		home = testConfigHome
	}
	out = append(out, "XDG_CONFIG_HOME="+home)
	return append(out, env...)
}

// startHub runs the binary with args and env and initializes a client.
func startHub(t *testing.T, env []string, args ...string) *hubProc {
	t.Helper()
	return startHubWith(t, nil, env, args...)
}

// startHubWith is startHub with client options (sampling, elicitation and
// roots handlers declare those capabilities).
func startHubWith(t *testing.T, opts []client.ClientOption, env []string, args ...string) *hubProc {
	t.Helper()
	return startHubCmd(t, hubBin, opts, env, args...)
}

// startHubCmd is startHubWith for another command that runs the hub (a
// wrapper script).
func startHubCmd(t *testing.T, bin string, opts []client.ClientOption, env []string, args ...string) *hubProc {
	t.Helper()
	h := &hubProc{t: t, stderr: &testbuf.Buffer{}}
	tr := transport.NewStdioWithOptions(bin, nil, args,
		transport.WithCommandStderrWriter(h.stderr),
		transport.WithCommandFunc(func(ctx context.Context, command string, _ []string, args []string) (*exec.Cmd, error) {
			cmd := exec.Command(command, args...)
			cmd.Env = baseEnv(env...)
			cmd.Dir = t.TempDir()
			h.cmd = cmd
			return cmd, nil
		}))
	c := client.NewClient(tr, opts...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.Start(context.Background()); err != nil {
		t.Fatalf("start hub: %v", err)
	}
	c.OnNotification(func(n mcp.JSONRPCNotification) {
		h.mu.Lock()
		h.notes = append(h.notes, n)
		h.mu.Unlock()
	})
	h.c = c
	t.Cleanup(func() {
		c.Close()
		if t.Failed() {
			t.Logf("hub stderr:\n%s", h.stderr.String())
		}
	})
	req := mcp.InitializeRequest{}
	req.Params.ProtocolVersion = mcp.LATEST_LEGACY_PROTOCOL_VERSION
	req.Params.ClientInfo = mcp.Implementation{Name: "e2e-client", Version: "1"}
	if _, err := c.Initialize(ctx, req); err != nil {
		t.Fatalf("initialize: %v\nstderr:\n%s", err, h.stderr.String())
	}
	return h
}

// rpc sends one raw request through the client's transport and returns the
// raw response, so that error codes and error.data can be checked exactly.
func (h *hubProc) rpc(method string, params any) *transport.JSONRPCResponse {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	h.mu.Lock()
	h.seq++
	id := fmt.Sprintf("e2e-%d", h.seq)
	h.mu.Unlock()
	resp, err := h.c.GetTransport().SendRequest(ctx, transport.JSONRPCRequest{JSONRPC: "2.0", ID: mcp.NewRequestId(id), Method: method, Params: params})
	if err != nil {
		h.t.Fatalf("%s: %v\nstderr:\n%s", method, err, h.stderr.String())
	}
	return resp
}

// call calls a tool with raw JSON arguments.
func (h *hubProc) call(name, args string) *transport.JSONRPCResponse {
	h.t.Helper()
	p := map[string]any{"name": name}
	if args != "" {
		p["arguments"] = json.RawMessage(args)
	}
	return h.rpc("tools/call", p)
}

// toolNames lists the exposed tool names.
func (h *hubProc) toolNames() []string {
	h.t.Helper()
	resp := h.rpc("tools/list", map[string]any{})
	if resp.Error != nil {
		h.t.Fatalf("tools/list: %+v", resp.Error)
	}
	var r struct {
		Tools []struct {
			Name string `json:"name"`
		} `json:"tools"`
	}
	if err := json.Unmarshal(resp.Result, &r); err != nil {
		h.t.Fatal(err)
	}
	var names []string
	for _, tl := range r.Tools {
		names = append(names, tl.Name)
	}
	return names
}

func (h *hubProc) notifications(method string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	for _, x := range h.notes {
		if x.Method == method {
			n++
		}
	}
	return n
}

// errData decodes error.data of a blocked call.
type errData struct {
	Decision    string `json:"decision"`
	ErrorCode   string `json:"error_code"`
	Message     string `json:"message"`
	ServerID    string `json:"server_id"`
	Tool        string `json:"tool"`
	ExposedTool string `json:"exposed_tool"`
	HoldID      string `json:"hold_id"`
	Reason      string `json:"reason"`
}

func wantError(t *testing.T, resp *transport.JSONRPCResponse, code int, errorCode string) errData {
	t.Helper()
	if resp.Error == nil {
		t.Fatalf("got result %s, want error %d", resp.Result, code)
	}
	if resp.Error.Code != code {
		t.Fatalf("error code = %d (%s), want %d", resp.Error.Code, resp.Error.Message, code)
	}
	var d errData
	b, _ := json.Marshal(resp.Error.Data)
	_ = json.Unmarshal(b, &d)
	if errorCode != "" && d.ErrorCode != errorCode {
		t.Fatalf("error_code = %q (message %q), want %q", d.ErrorCode, resp.Error.Message, errorCode)
	}
	return d
}

// resultText returns the first text block of a tool result.
func resultText(t *testing.T, resp *transport.JSONRPCResponse) string {
	t.Helper()
	if resp.Error != nil {
		t.Fatalf("error %d: %s (%v)", resp.Error.Code, resp.Error.Message, resp.Error.Data)
	}
	var r struct {
		Content []struct {
			Text string `json:"text"`
		} `json:"content"`
	}
	if err := json.Unmarshal(resp.Result, &r); err != nil || len(r.Content) == 0 {
		t.Fatalf("result %s: %v", resp.Result, err)
	}
	return r.Content[0].Text
}

// upstreamLog is what a fake upstream received, line by line.
type upstreamLog string

func newUpstreamLog(t *testing.T) upstreamLog {
	return upstreamLog(filepath.Join(t.TempDir(), "upstream.log"))
}

// toolCalls returns the raw params of every tools/call the upstream received.
func (l upstreamLog) toolCalls(t *testing.T) []string {
	t.Helper()
	f, err := os.Open(string(l))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		var m struct {
			Method string          `json:"method"`
			Params json.RawMessage `json:"params"`
		}
		if json.Unmarshal(sc.Bytes(), &m) == nil && m.Method == "tools/call" {
			out = append(out, string(m.Params))
		}
	}
	return out
}

func (l upstreamLog) contains(t *testing.T, s string) bool {
	b, _ := os.ReadFile(string(l))
	return bytes.Contains(b, []byte(s))
}

// eventually polls cond until it holds or the deadline passes.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// writeConfig writes a hub TOML file into a temp dir and returns its path.
func writeConfig(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "sigil-hub.toml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// fakeServer is one [servers.NAME] table running the fake upstream.
func fakeServer(t *testing.T, name string, log upstreamLog, extra string) string {
	return fmt.Sprintf(`
[servers.%s]
command = %q
server_id = %q
env = { SIGIL_HUB_TEST_UPSTREAM = "1", TESTUPSTREAM_LOG = %q, TESTUPSTREAM_NAME = %q }
%s
`, name, selfExe(t), name, string(log), name, extra)
}

// rawClient speaks newline-delimited JSON-RPC to the hub binary byte for
// byte, for tests where the exact bytes matter (an SDK client re-encodes).
type rawClient struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  interface{ Write([]byte) (int, error) }
	lines  chan []byte
	stderr *testbuf.Buffer
}

func startRaw(t *testing.T, env []string, args ...string) *rawClient {
	t.Helper()
	return startRawAs(t, "raw-client", env, args...)
}

// startRawAs is startRaw with the client's clientInfo.name (the agent name
// a hold shows) chosen by the test.
func startRawAs(t *testing.T, clientName string, env []string, args ...string) *rawClient {
	t.Helper()
	rc := startRawUninitialized(t, env, args...)
	name, _ := json.Marshal(clientName)
	rc.send(`{"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":` +
		string(name) + `,"version":"1"}}}`)
	rc.await(`"init"`)
	rc.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	return rc
}

func (rc *rawClient) send(line string) {
	rc.t.Helper()
	if _, err := rc.stdin.Write([]byte(line + "\n")); err != nil {
		rc.t.Fatalf("write to hub: %v", err)
	}
}

// await returns the next message whose id is exactly the raw JSON id,
// skipping notifications and other responses.
func (rc *rawClient) await(id string) map[string]json.RawMessage {
	rc.t.Helper()
	timeout := time.After(60 * time.Second)
	for {
		select {
		case line, ok := <-rc.lines:
			if !ok {
				rc.t.Fatalf("hub closed stdout while waiting for id %s\nstderr:\n%s", id, rc.stderr.String())
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal(line, &m); err != nil {
				rc.t.Fatalf("hub wrote a line that is not JSON: %q", line)
			}
			if string(m["id"]) == id {
				return m
			}
		case <-timeout:
			rc.t.Fatalf("no answer for id %s\nstderr:\n%s", id, rc.stderr.String())
		}
	}
}

func scanLines(r interface{ Read([]byte) (int, error) }, out chan<- []byte) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		out <- append([]byte(nil), sc.Bytes()...)
	}
	close(out)
}

// lineSession drives a started hub process one raw line at a time: for
// tests that need the process's pipes as they are (no client library).
type lineSession struct {
	t   *testing.T
	in  io.Writer
	out *bufio.Reader
}

func newLineSession(t *testing.T, in io.Writer, out io.Reader) *lineSession {
	return &lineSession{t: t, in: in, out: bufio.NewReader(out)}
}

// rpc writes one request line and returns the next line the hub writes.
func (ls *lineSession) rpc(line string) string {
	ls.t.Helper()
	ls.send(line)
	resp, err := ls.out.ReadString('\n')
	if err != nil {
		ls.t.Fatalf("no answer to %.60s: %v", line, err)
	}
	return resp
}

func (ls *lineSession) send(line string) {
	ls.t.Helper()
	if _, err := io.WriteString(ls.in, line+"\n"); err != nil {
		ls.t.Fatalf("write: %v", err)
	}
}

// handshake initializes the session.
func (ls *lineSession) handshake() {
	ls.t.Helper()
	ls.rpc(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`)
	ls.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
}

// waitExit waits for cmd (whose stdin the caller has closed) to exit and
// returns its error; the test fails if it is still running after 30 s.
func waitExit(t *testing.T, cmd *exec.Cmd) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second):
		t.Fatal("the hub did not exit within 30 s of stdin EOF")
		return nil
	}
}

// startRawUninitialized starts the hub binary with a raw client and no
// handshake: the test sends initialize itself, or speaks 2026-07-28 (no
// initialize at all).
func startRawUninitialized(t *testing.T, env []string, args ...string) *rawClient {
	t.Helper()
	cmd := exec.Command(hubBin, args...)
	cmd.Env = baseEnv(env...)
	cmd.Dir = t.TempDir()
	rc := &rawClient{t: t, cmd: cmd, lines: make(chan []byte, 1024), stderr: &testbuf.Buffer{}}
	cmd.Stderr = rc.stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	rc.stdin = in
	go scanLines(out, rc.lines)
	t.Cleanup(func() {
		in.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("hub stderr:\n%s", rc.stderr.String())
		}
	})
	return rc
}

// writePolicy writes a warranty.md of body in dir and returns its path.
func writePolicy(t *testing.T, dir, body string) string {
	t.Helper()
	p := filepath.Join(dir, "warranty.md")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
