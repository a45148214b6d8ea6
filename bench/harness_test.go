package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigilcore/sigil-hub/config"
	"github.com/sigilcore/sigil-hub/front"
	"github.com/sigilcore/sigil-hub/hub"
	"github.com/sigilcore/sigil-hub/internal/testupstream"
)

// TestMain doubles as the do-nothing relay and as the fake upstream (the
// re-exec trick).
func TestMain(m *testing.M) {
	if os.Getenv(relayEnv) == "1" {
		relayMain()
		return
	}
	if os.Getenv(testupstream.EnvMarker) == "1" {
		testupstream.Main()
		return
	}
	os.Exit(m.Run())
}

// permissivePolicy allows every tool on every server (## mcp only, no
// execution limits), so the embedded engine does its full evaluation and
// approves.
const permissivePolicy = "version: 2.0.0\n\n## mcp\n\nallowed_tools: *\n"

// benchPolicyHash is what the Sign double reports.
const benchPolicyHash = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

// echoArgs are the arguments of every benchmarked call: small, realistic.
const echoArgs = `{"path":"/tmp/notes/today.md","text":"hello from the benchmark"}`

// --- a minimal JSON-RPC client over newline-delimited stdio -------------

// rpcConn is the benchmark's MCP client: it writes one request line and
// waits for the response with the same id. It is deliberately tiny so that
// the same client (and the same client cost) drives the hub and the direct
// upstream. Safe for concurrent use.
type rpcConn struct {
	wmu sync.Mutex // guards w
	w   io.Writer

	seq     atomic.Uint64
	mu      sync.Mutex             // guards pending and err
	pending map[uint64]chan []byte // request id → response line
	err     error                  // set when the read side ended
	done    chan struct{}          // closed when the read side ended
}

func newRPCConn(r io.Reader, w io.Writer) *rpcConn {
	c := &rpcConn{w: w, pending: map[uint64]chan []byte{}, done: make(chan struct{})}
	go c.readLoop(r) // ends when r reaches EOF: joined by the owner closing r
	return c
}

func (c *rpcConn) readLoop(r io.Reader) {
	br := bufio.NewReaderSize(r, 64<<10)
	var err error
	for {
		var line []byte
		line, err = br.ReadBytes('\n')
		if id, ok := responseID(line); ok {
			c.mu.Lock()
			ch := c.pending[id]
			delete(c.pending, id)
			c.mu.Unlock()
			if ch != nil {
				ch <- line
			}
		}
		if err != nil {
			break
		}
	}
	c.mu.Lock()
	c.err = fmt.Errorf("connection closed: %w", err)
	c.mu.Unlock()
	close(c.done)
}

// responsePrefix starts every response both the hub and mcp-go write; the
// fast path keeps the client from decoding a 1 MB tools/list page just to
// find its id (that cost would be charged to the hub).
const responsePrefix = `{"jsonrpc":"2.0","id":`

// responseID returns the numeric id of a response line; notifications and
// requests report false.
func responseID(line []byte) (uint64, bool) {
	if rest, ok := bytes.CutPrefix(line, []byte(responsePrefix)); ok {
		i := 0
		for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
			i++
		}
		if i > 0 && (bytes.HasPrefix(rest[i:], []byte(`,"result":`)) || bytes.HasPrefix(rest[i:], []byte(`,"error":`))) {
			id, err := strconv.ParseUint(string(rest[:i]), 10, 64)
			return id, err == nil
		}
	}
	var m struct {
		ID     *uint64 `json:"id"`
		Method string  `json:"method"`
	}
	if json.Unmarshal(line, &m) != nil || m.ID == nil || m.Method != "" {
		return 0, false
	}
	return *m.ID, true
}

// call sends one request and returns its raw response line.
func (c *rpcConn) call(ctx context.Context, method, params string) ([]byte, error) {
	id := c.seq.Add(1)
	ch := make(chan []byte, 1)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, c.err
	}
	c.pending[id] = ch
	c.mu.Unlock()
	b := append(appendRequest(nil, id, method, params), '\n')
	c.wmu.Lock()
	_, err := c.w.Write(b)
	c.wmu.Unlock()
	if err != nil {
		return nil, fmt.Errorf("write %s: %w", method, err)
	}
	select {
	case line := <-ch:
		return line, nil
	case <-c.done:
		return nil, c.err
	case <-ctx.Done():
		return nil, fmt.Errorf("%s: %w", method, ctx.Err())
	}
}

// notify sends a notification.
func (c *rpcConn) notify(method string) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_, err := fmt.Fprintf(c.w, `{"jsonrpc":"2.0","method":%q}`+"\n", method)
	return err
}

// result returns the result of one request, or an error for a JSON-RPC
// error response.
func (c *rpcConn) result(ctx context.Context, method, params string) (json.RawMessage, error) {
	line, err := c.call(ctx, method, params)
	if err != nil {
		return nil, err
	}
	var m struct {
		Result json.RawMessage `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(line, &m); err != nil {
		return nil, fmt.Errorf("%s: bad response %.200q: %w", method, line, err)
	}
	if m.Error != nil {
		return nil, fmt.Errorf("%s: error response %s", method, m.Error)
	}
	return m.Result, nil
}

// initialize performs the MCP handshake.
func (c *rpcConn) initialize(ctx context.Context) error {
	if _, err := c.result(ctx, "initialize", `{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}`); err != nil {
		return err
	}
	return c.notify("notifications/initialized")
}

// appendRequest appends one JSON-RPC request with raw params ("" for none).
func appendRequest(b []byte, id uint64, method, params string) []byte {
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = strconv.AppendUint(b, id, 10)
	b = append(b, `,"method":`...)
	b = strconv.AppendQuote(b, method)
	if params != "" {
		b = append(b, `,"params":`...)
		b = append(b, params...)
	}
	return append(b, '}')
}

// requester is a client connection that sends one request and returns its
// raw response: rpcConn (stdio) or httpConn (Streamable HTTP).
type requester interface {
	call(ctx context.Context, method, params string) ([]byte, error)
}

// callTool calls name with raw arguments over c and checks the result is
// not a tool error.
func callTool(ctx context.Context, c requester, name, args string) error {
	line, err := c.call(ctx, "tools/call", `{"name":`+strconv.Quote(name)+`,"arguments":`+args+`}`)
	if err != nil {
		return err
	}
	// Cheap check that costs the same for both sides: a result, no error.
	if !bytes.Contains(line, []byte(`"result":`)) || bytes.Contains(line, []byte(`"isError":true`)) {
		return fmt.Errorf("tools/call %s: %.300s", name, line)
	}
	return nil
}

func (c *rpcConn) callTool(ctx context.Context, name, args string) error {
	return callTool(ctx, c, name, args)
}

// listTools lists every tool, following nextCursor, and returns the count.
func (c *rpcConn) listTools(ctx context.Context) (int, error) {
	n, cursor := 0, ""
	for {
		params := `{}`
		if cursor != "" {
			params = `{"cursor":` + strconv.Quote(cursor) + `}`
		}
		res, err := c.result(ctx, "tools/list", params)
		if err != nil {
			return 0, err
		}
		var r struct {
			Tools      []json.RawMessage `json:"tools"`
			NextCursor string            `json:"nextCursor"`
		}
		if err := json.Unmarshal(res, &r); err != nil {
			return 0, fmt.Errorf("tools/list: %w", err)
		}
		n += len(r.Tools)
		if r.NextCursor == "" {
			return n, nil
		}
		cursor = r.NextCursor
	}
}

// toolNames lists every tool name (first page chain), for checks.
func (c *rpcConn) toolNames(ctx context.Context) ([]string, error) {
	var names []string
	cursor := ""
	for {
		params := `{}`
		if cursor != "" {
			params = `{"cursor":` + strconv.Quote(cursor) + `}`
		}
		res, err := c.result(ctx, "tools/list", params)
		if err != nil {
			return nil, err
		}
		var r struct {
			Tools []struct {
				Name string `json:"name"`
			} `json:"tools"`
			NextCursor string `json:"nextCursor"`
		}
		if err := json.Unmarshal(res, &r); err != nil {
			return nil, fmt.Errorf("tools/list: %w", err)
		}
		for _, t := range r.Tools {
			names = append(names, t.Name)
		}
		if r.NextCursor == "" {
			return names, nil
		}
		cursor = r.NextCursor
	}
}

// --- processes --------------------------------------------------------

// selfExe is the test binary, which is also the fake upstream.
func selfExe(tb testing.TB) string {
	tb.Helper()
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	return exe
}

// cleanEnv is this process's environment minus SIGIL_* and TESTUPSTREAM_*.
func cleanEnv(extra ...string) []string {
	var out []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "SIGIL_") && !strings.HasPrefix(kv, "TESTUPSTREAM_") {
			out = append(out, kv)
		}
	}
	return append(out, extra...)
}

// child is a process driven over its stdin/stdout with an rpcConn.
type child struct {
	cmd  *exec.Cmd
	conn *rpcConn
	stop func() // closes stdin and waits for the process; idempotent
}

// spawnChild starts cmd with pipes and registers a cleanup that closes
// stdin and waits for the process (killing it after a grace period).
func spawnChild(tb testing.TB, cmd *exec.Cmd) *child {
	tb.Helper()
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	if cmd.Stderr == nil {
		cmd.Stderr = io.Discard
	}
	if err := cmd.Start(); err != nil {
		tb.Fatalf("start %s: %v", cmd.Path, err)
	}
	c := &child{cmd: cmd, conn: newRPCConn(stdout, stdin)}
	c.stop = sync.OnceFunc(func() { stopProcess(cmd, stdin) })
	tb.Cleanup(c.stop)
	return c
}

// startChild spawns cmd (spawnChild) and initializes it.
func startChild(tb testing.TB, cmd *exec.Cmd) *child {
	tb.Helper()
	c := spawnChild(tb, cmd)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if err := c.conn.initialize(ctx); err != nil {
		tb.Fatalf("initialize %s: %v", cmd.Path, err)
	}
	return c
}

// stopProcess closes the stdin of a started cmd and waits for it to exit,
// killing it after a grace period.
func stopProcess(cmd *exec.Cmd, stdin io.Closer) {
	_ = stdin.Close()
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	select {
	case <-exited:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
}

// startDirect starts one fake upstream and connects the client to it
// directly: the baseline every hub figure is compared with.
func startDirect(tb testing.TB) *rpcConn { return startDirectChild(tb).conn }

// startDirectChild is startDirect with the upstream's process.
func startDirectChild(tb testing.TB) *child {
	tb.Helper()
	cmd := exec.Command(selfExe(tb))
	cmd.Env = cleanEnv(testupstream.EnvMarker + "=1")
	return startChild(tb, cmd)
}

// nodeEverything is the entry point of the reference server
// @modelcontextprotocol/server-everything (installed by .ci/run into
// testdata/npm), or "" when it or node is missing.
func nodeEverything() string {
	p, err := filepath.Abs(filepath.Join("..", "testdata", "npm", "node_modules", "@modelcontextprotocol", "server-everything", "dist", "index.js"))
	if err != nil {
		return ""
	}
	if _, err := os.Stat(p); err != nil {
		return ""
	}
	if _, err := exec.LookPath("node"); err != nil {
		return ""
	}
	return p
}

// nodeEchoArgs are the arguments of server-everything's echo tool.
const nodeEchoArgs = `{"message":"hello from the benchmark"}`

// --- the Sign double ----------------------------------------------------

// countingListener counts accepted connections.
type countingListener struct {
	net.Listener
	accepted atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.accepted.Add(1)
	}
	return c, err
}

// signDouble is a minimal Sigil Sign on 127.0.0.1 that approves every call
// at once, on a listener that counts TCP connections (internal/signtest's
// httptest server does not expose its listener).
type signDouble struct {
	URL   string
	ln    *countingListener
	calls atomic.Int64
}

func startSign(tb testing.TB) *signDouble {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	d := &signDouble{URL: "http://" + l.Addr().String(), ln: &countingListener{Listener: l}}
	body := []byte(`{"status":"APPROVED","policy_hash":"` + benchPolicyHash + `"}`)
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/authorize", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		d.calls.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	})
	srv := &http.Server{Handler: mux}
	served := make(chan struct{})
	go func() { _ = srv.Serve(d.ln); close(served) }()
	tb.Cleanup(func() {
		_ = srv.Close()
		<-served
	})
	return d
}

// --- hub configuration ----------------------------------------------------

// authMode selects the hub's decision point.
type authMode string

const (
	authPolicy authMode = "policy" // embedded engine, permissive ## mcp policy
	authSign   authMode = "sign"   // Sign double on loopback, verify = "off"
)

// upstreamSpec is one [servers.NAME] table of a generated config.
type upstreamSpec struct {
	name  string
	argv  []string      // command and arguments; nil = the fake upstream
	url   string        // a Streamable HTTP upstream instead of a command
	delay time.Duration // start delay through sh -c 'sleep'; 0 = none
	tools int           // extra tools tool000..; exposed are only these when > 0
	log   string        // TESTUPSTREAM_LOG file; "" = none
}

// hubSetup describes a generated hub configuration.
type hubSetup struct {
	mode      authMode
	signURL   string // for authSign
	upstreams []upstreamSpec
	logLevel  string // "" = default
}

// writeConfig writes sigil-hub.toml (and warranty.md) into dir and returns
// the config path.
func writeConfig(tb testing.TB, dir string, s hubSetup) string {
	tb.Helper()
	exe := selfExe(tb)
	var b strings.Builder
	switch s.mode {
	case authPolicy:
		pol := filepath.Join(dir, "warranty.md")
		if err := os.WriteFile(pol, []byte(permissivePolicy), 0o600); err != nil {
			tb.Fatal(err)
		}
		fmt.Fprintf(&b, "policy = %s\n", strconv.Quote(pol))
	case authSign:
		fmt.Fprintf(&b, "sign_url = %s\nverify = \"off\"\n", strconv.Quote(s.signURL))
	}
	if s.logLevel != "" {
		fmt.Fprintf(&b, "log_level = %q\n", s.logLevel)
	}
	b.WriteString("startup_timeout = 120000\n")
	for _, u := range s.upstreams {
		fmt.Fprintf(&b, "\n[servers.%s]\nserver_id = %q\n", u.name, u.name)
		if u.url != "" {
			fmt.Fprintf(&b, "url = %s\n", strconv.Quote(u.url))
			continue
		}
		if u.argv != nil {
			args := make([]string, len(u.argv)-1)
			for i, a := range u.argv[1:] {
				args[i] = strconv.Quote(a)
			}
			fmt.Fprintf(&b, "command = %s\nargs = [%s]\n", strconv.Quote(u.argv[0]), strings.Join(args, ", "))
			continue
		}
		if u.delay > 0 {
			fmt.Fprintf(&b, "command = \"sh\"\nargs = [\"-c\", %s]\n",
				strconv.Quote(fmt.Sprintf("sleep %.3f; exec %s", u.delay.Seconds(), shQuote(exe))))
		} else {
			fmt.Fprintf(&b, "command = %s\n", strconv.Quote(exe))
		}
		tools := ""
		if u.tools > 0 {
			tools = fmt.Sprintf(", %s = %q", testupstream.EnvTools, toolList(u.tools))
		}
		if u.log != "" {
			tools += fmt.Sprintf(", %s = %s", testupstream.EnvLog, strconv.Quote(u.log))
		}
		fmt.Fprintf(&b, "env = { %s = \"1\", %s = %q%s }\n", testupstream.EnvMarker, testupstream.EnvName, u.name, tools)
		if u.tools > 0 {
			b.WriteString("tools = { allow = [\"tool*\"] }\n")
		}
	}
	path := filepath.Join(dir, "sigil-hub.toml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		tb.Fatal(err)
	}
	return path
}

func shQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// toolList is "tool000,tool001,...".
func toolList(n int) string {
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("tool%03d", i)
	}
	return strings.Join(names, ",")
}

// upstreamNames is up0..up{n-1}.
func upstreamNames(n int, delay time.Duration, tools int) []upstreamSpec {
	out := make([]upstreamSpec, n)
	for i := range out {
		out[i] = upstreamSpec{name: "up" + strconv.Itoa(i), delay: delay, tools: tools}
	}
	return out
}

// inProcHub is a hub running in this process, with the client attached
// over a pair of OS pipes.
type inProcHub struct {
	h    *hub.Hub
	conn *rpcConn
	stop func() // ends the session and Run and waits; idempotent
}

// startHub runs hub.New + Run + front.ServeStdio in process and connects an
// rpcConn. stop (also run by the cleanup) ends the session, cancels Run and
// waits for both, which stops every child.
// It does not initialize the session.
func startHub(tb testing.TB, s hubSetup) *inProcHub {
	tb.Helper()
	h, stopRun := runHub(tb, s)
	// OS pipes, like a real stdio client: io.Pipe hands each write over
	// synchronously, which serializes concurrent callers in a way no real
	// client connection does.
	cr, cw, err := os.Pipe() // client → hub
	if err != nil {
		tb.Fatal(err)
	}
	hr, hw, err := os.Pipe() // hub → client
	if err != nil {
		tb.Fatal(err)
	}
	serveDone := make(chan error, 1)
	go func() {
		err := front.ServeStdio(context.Background(), h, cr, hw, nil)
		hw.Close()
		serveDone <- err
	}()
	ih := &inProcHub{h: h, conn: newRPCConn(hr, cw)}
	ih.stop = sync.OnceFunc(func() {
		cw.Close()
		if err := <-serveDone; err != nil && !errors.Is(err, io.ErrClosedPipe) {
			tb.Logf("ServeStdio: %v", err)
		}
		cr.Close()
		stopRun()
		<-ih.conn.done // the client saw EOF
		hr.Close()
	})
	tb.Cleanup(ih.stop)
	return ih
}

// runHub runs hub.New + Run in process for s; stop cancels Run and waits
// for it, which stops every child.
func runHub(tb testing.TB, s hubSetup) (h *hub.Hub, stop func()) {
	tb.Helper()
	dir := tb.TempDir()
	var upLog string
	if raceEnabled && len(s.upstreams) > 0 && s.upstreams[0].url == "" {
		// hub.Run writes Hub.started without synchronisation while the
		// first tools/list reads it. Under
		// the race detector, wait until the first upstream has received a
		// line the hub wrote after Run began: a syscall write in Run's
		// goroutines and our read of the log are ordered for the detector.
		s.upstreams = append([]upstreamSpec(nil), s.upstreams...)
		upLog = filepath.Join(dir, "up0.log")
		s.upstreams[0].log = upLog
	}
	path := writeConfig(tb, dir, s)
	f, err := os.Open(path)
	if err != nil {
		tb.Fatal(err)
	}
	cfg, err := config.Parse(f, dir, func(string) string { return "" })
	f.Close()
	if err != nil {
		tb.Fatalf("parse config: %v", err)
	}
	h, err = hub.New(hub.Options{Config: cfg, APIKey: "bench-key", Environ: cleanEnv()})
	if err != nil {
		tb.Fatalf("hub.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	runDone := make(chan error, 1)
	go func() { runDone <- h.Run(ctx) }()
	if upLog != "" {
		waitNonEmpty(tb, upLog)
	}
	return h, sync.OnceFunc(func() {
		cancel()
		if err := <-runDone; err != nil {
			tb.Logf("Run: %v", err)
		}
	})
}

// waitNonEmpty polls until the file at path has content, with a deadline.
func waitNonEmpty(tb testing.TB, path string) {
	tb.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
			if _, err := os.ReadFile(path); err == nil {
				return
			}
		}
		if time.Now().After(deadline) {
			tb.Fatalf("upstream never received a line (%s)", path)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// readyHub starts an in-process hub, initializes the session and lists the
// tools once (which waits for every upstream's first start attempt).
func readyHub(tb testing.TB, s hubSetup) *rpcConn {
	tb.Helper()
	ih := startHub(tb, s)
	ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
	defer cancel()
	if err := ih.conn.initialize(ctx); err != nil {
		tb.Fatalf("initialize hub: %v", err)
	}
	if _, err := ih.conn.listTools(ctx); err != nil {
		tb.Fatalf("hub tools/list: %v", err)
	}
	return ih.conn
}

// buildHub builds the real sigil-hub binary into dir.
func buildHub(tb testing.TB, dir string) string {
	tb.Helper()
	bin := filepath.Join(dir, "sigil-hub")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/sigilcore/sigil-hub/cmd/sigil-hub")
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("build sigil-hub: %v\n%s", err, out)
	}
	return bin
}

// startBinary runs the real binary with a generated config and returns the
// initialized client connection and the process.
func startBinary(tb testing.TB, bin string, s hubSetup) *child {
	tb.Helper()
	dir := tb.TempDir()
	path := writeConfig(tb, dir, s)
	cmd := exec.Command(bin, "--config", path)
	cmd.Env = cleanEnv("SIGIL_API_KEY=bench-key")
	cmd.Dir = dir
	return startChild(tb, cmd)
}

// vmRSS reads VmRSS (bytes) of pid from /proc; 0 if unavailable.
func vmRSS(pid string) int64 {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(rest)
			if len(f) >= 1 {
				kb, _ := strconv.ParseInt(f[0], 10, 64)
				return kb << 10
			}
		}
	}
	return 0
}

// --- statistics ---------------------------------------------------------

// percentile returns the p-th percentile (0..100) of sorted d.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted)-1)*p/100 + 0.5)
	return sorted[i]
}

func sortDurations(d []time.Duration) {
	sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
}

func mean(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	var sum time.Duration
	for _, x := range d {
		sum += x
	}
	return sum / time.Duration(len(d))
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
