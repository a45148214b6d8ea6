package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/sigilcore/sigil-hub/internal/signtest"
	"github.com/sigilcore/sigil-hub/internal/testbuf"
)

// TestPendingApproved: a held call is re-authorized after the hold is
// approved and only then forwarded (docs/protocol.md#holds-pending); the
// client's progress token gets "waiting for approval" notifications
// meanwhile.
func TestPendingApproved(t *testing.T) {
	t.Parallel()
	var n atomic.Int32
	sign := signtest.New(t, signtest.Options{APIKey: testKey, Decide: func(r signtest.Request) signtest.Reply {
		if n.Add(1) == 1 {
			return signtest.Pending("hold-e2e-1")
		}
		return signtest.Approve()
	}})
	sign.SetHold("hold-e2e-1", "PENDING")
	log := newUpstreamLog(t)
	h := startHub(t, signEnv(sign), "--config", writeConfig(t, fakeServer(t, "files", log, "")))

	done := make(chan *transport.JSONRPCResponse, 1)
	go func() {
		done <- h.rpc("tools/call", map[string]any{"name": "files__echo", "arguments": map[string]any{"a": 1},
			"_meta": map[string]any{"progressToken": "tok-1"}})
	}()
	eventually(t, "a hold lookup", func() bool { return len(sign.HoldLookups()) > 0 })
	if len(log.toolCalls(t)) != 0 {
		t.Fatal("a held call reached the upstream before approval")
	}
	sign.SetHold("hold-e2e-1", "APPROVED")
	resp := <-done
	if got := resultText(t, resp); got != `{"a":1}` {
		t.Fatalf("result %q", got)
	}
	reqs := sign.Requests()
	if len(reqs) != 2 || reqs[0].TxCommit != reqs[1].TxCommit || reqs[0].Nonce == reqs[1].Nonce {
		t.Fatalf("want a re-submission of the same intent with a fresh nonce, got %d requests", len(reqs))
	}
	if len(log.toolCalls(t)) != 1 {
		t.Fatalf("upstream received %d calls, want 1", len(log.toolCalls(t)))
	}
	if h.notifications("notifications/progress") == 0 {
		t.Fatal("no progress notification while the call waited for approval")
	}
}

// TestPendingTimeoutNeverForwarded: a hold that nobody resolves ends with
// -32001 carrying the hold id; approving it afterwards forwards nothing.
func TestPendingTimeoutNeverForwarded(t *testing.T) {
	sign := signtest.New(t, signtest.Options{APIKey: testKey, Decide: func(signtest.Request) signtest.Reply {
		return signtest.Pending("hold-late")
	}})
	sign.SetHold("hold-late", "PENDING")
	log := newUpstreamLog(t)
	h := startHub(t, signEnv(sign), "--pending-timeout", "300", "--config", writeConfig(t, fakeServer(t, "files", log, "")))
	d := wantError(t, h.call("files__echo", `{}`), -32001, "SIGIL_PENDING_TIMEOUT")
	if d.HoldID != "hold-late" || d.Reason != "pending_timeout" {
		t.Fatalf("error.data = %+v", d)
	}
	sign.SetHold("hold-late", "APPROVED")
	// Another call proves the hub is still serving; the late approval must
	// not have released the first one.
	h.toolNames()
	if calls := log.toolCalls(t); len(calls) != 0 {
		t.Fatalf("upstream received %v after a pending timeout", calls)
	}
}

// TestPendingDenied: a hold that a person rejects is -32001 with the hold id.
func TestPendingDenied(t *testing.T) {
	t.Parallel()
	sign := signtest.New(t, signtest.Options{APIKey: testKey, Decide: func(signtest.Request) signtest.Reply {
		return signtest.Pending("hold-no")
	}})
	sign.SetHold("hold-no", "DENIED")
	log := newUpstreamLog(t)
	h := startHub(t, signEnv(sign), "--config", writeConfig(t, fakeServer(t, "files", log, "")))
	d := wantError(t, h.call("files__echo", `{}`), -32001, "SIGIL_HOLD_DENIED")
	if d.HoldID != "hold-no" || len(log.toolCalls(t)) != 0 {
		t.Fatalf("data %+v, upstream calls %d", d, len(log.toolCalls(t)))
	}
}

// TestCancelWhileAuthorizingNeverForwards: a client that cancels while Sign
// is deciding gets no response, and a late approval forwards nothing
// (docs/faults.md case 24).
func TestCancelWhileAuthorizingNeverForwards(t *testing.T) {
	release := make(chan struct{})
	sign := signtest.New(t, signtest.Options{APIKey: testKey, Decide: func(signtest.Request) signtest.Reply {
		<-release
		return signtest.Approve()
	}})
	defer close(release)
	log := newUpstreamLog(t)
	h := startHub(t, signEnv(sign), "--config", writeConfig(t, fakeServer(t, "files", log, "")))
	h.toolNames()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() {
		_, err := h.c.CallTool(ctx, mcp.CallToolRequest{Params: mcp.CallToolParams{Name: "files__echo", Arguments: map[string]any{}}})
		errc <- err
	}()
	eventually(t, "the authorize request", func() bool { return len(sign.Requests()) == 1 })
	cancel() // mcp-go sends notifications/cancelled over stdio
	<-errc
	// The cancel travels asynchronously: release Sign's approval only once
	// the hub has acted on it, then check the approval forwarded nothing.
	eventually(t, "the hub to drop the cancelled call", func() bool {
		return strings.Contains(h.stderr.String(), "decision=CANCELLED")
	})
	release <- struct{}{}
	h.toolNames()
	time.Sleep(100 * time.Millisecond) // give a wrongly forwarded call time to show up
	if calls := log.toolCalls(t); len(calls) != 0 {
		t.Fatalf("a cancelled call reached the upstream: %v", calls)
	}
}

// TestFiltersCollisionsAndExtractors covers tool filters (hidden and
// uncallable, never authorized), collisions (withheld, never rerouted) and an
// extractor turning a tool into a typed file_write intent
// (docs/protocol.md#extractors).
func TestFiltersCollisionsAndExtractors(t *testing.T) {
	sign := signtest.New(t, signtest.Options{APIKey: testKey})
	cfg := fakeServer(t, "files", newUpstreamLog(t), `tools = { allow = ["echo", "pid", "b__c"], deny = ["pid"] }
[servers.files.extractors.echo]
path = "target"
`) +
		// "a" + "b__c" and "a__b" + "c" both expose "a__b__c".
		strings.Replace(fakeServer(t, "a", newUpstreamLog(t), ""), `TESTUPSTREAM_NAME = "a"`, `TESTUPSTREAM_NAME = "a", TESTUPSTREAM_TOOLS = "b__c"`, 1) +
		strings.Replace(fakeServer(t, "a__b", newUpstreamLog(t), ""), `TESTUPSTREAM_NAME = "a__b"`, `TESTUPSTREAM_NAME = "a__b", TESTUPSTREAM_TOOLS = "c"`, 1)
	h := startHub(t, signEnv(sign), "--config", writeConfig(t, cfg))
	names := h.toolNames()
	if slices.Contains(names, "files__pid") || slices.Contains(names, "files__crash") || !slices.Contains(names, "files__echo") {
		t.Fatalf("filters: tools = %v", names)
	}
	if slices.Contains(names, "a__b__c") || !slices.Contains(names, "a__echo") {
		t.Fatalf("collision: tools = %v, want a__b__c withheld", names)
	}
	wantError(t, h.call("files__pid", `{}`), -32602, "")
	wantError(t, h.call("a__b__c", `{}`), -32602, "")
	if len(sign.Requests()) != 0 {
		t.Fatal("a hidden tool was sent to Sign")
	}
	resultText(t, h.call("files__echo", `{"target":"/srv/a.txt"}`))
	r := sign.Requests()[0]
	if r.Action != "file_write" || r.Intent["path"] != "/srv/a.txt" {
		t.Fatalf("extractor: action %q intent %v", r.Action, r.Intent)
	}
	meta, _ := r.Intent["metadata"].(map[string]any)
	if meta["serverId"] != "files" || meta["toolName"] != "echo" {
		t.Fatalf("extractor intent metadata = %v", meta)
	}
	d := wantError(t, h.call("files__echo", `{"other":1}`), -32001, "SIGIL_INPUT_MALFORMED")
	if d.Reason != "malformed_input" || len(sign.Requests()) != 1 {
		t.Fatalf("a missing extracted argument must be denied locally: %+v, sign requests %d", d, len(sign.Requests()))
	}
}

// TestListChangedReachesClient: an upstream adding a tool makes the hub tell
// the client once, and the new tool is listed and callable.
func TestListChangedReachesClient(t *testing.T) {
	sign := signtest.New(t, signtest.Options{APIKey: testKey})
	h := startHub(t, signEnv(sign), "--config", writeConfig(t, fakeServer(t, "files", newUpstreamLog(t), "")))
	h.toolNames()
	before := h.notifications("notifications/tools/list_changed")
	resultText(t, h.call("files__add_tool", `{"name":"fresh","count":5}`))
	eventually(t, "list_changed", func() bool { return h.notifications("notifications/tools/list_changed") > before })
	eventually(t, "the new tool", func() bool { return slices.Contains(h.toolNames(), "files__fresh") })
	if got := resultText(t, h.call("files__fresh", `{}`)); !strings.Contains(got, "fresh") {
		t.Fatalf("new tool answered %q", got)
	}
	time.Sleep(200 * time.Millisecond)
	if n := h.notifications("notifications/tools/list_changed") - before; n > 2 {
		t.Fatalf("a burst of 5 additions produced %d list_changed notifications, want one per burst", n)
	}
}

// TestCrashingUpstream: a child that dies mid-call fails that call at once
// (never replayed), the other upstream keeps serving, and the crashed one
// comes back after a restart.
func TestCrashingUpstream(t *testing.T) {
	sign := signtest.New(t, signtest.Options{APIKey: testKey})
	logA := newUpstreamLog(t)
	h := startHub(t, signEnv(sign), "--config", writeConfig(t, fakeServer(t, "a", logA, "")+fakeServer(t, "b", newUpstreamLog(t), "")))
	h.toolNames()
	resp := h.call("a__crash", `{}`)
	if resp.Error == nil || resp.Error.Code != -32603 {
		t.Fatalf("crash: %+v", resp)
	}
	// While a is down (backoff of at least 1 s), a prompt of its says why,
	// as a tool call does.
	if r := h.rpc("prompts/get", map[string]any{"name": "a__greet", "arguments": map[string]any{"name": "x"}}); r.Error == nil {
		t.Logf("a restarted before prompts/get: the unavailable message is not checked this run")
	} else if !strings.Contains(r.Error.Message, "not running (") || !strings.Contains(r.Error.Message, "connection lost: ") {
		t.Errorf("prompts/get while a is down: %q, want the reason it is not running", r.Error.Message)
	}
	resultText(t, h.call("b__echo", `{}`))
	eventually(t, "upstream a back", func() bool {
		r := h.call("a__echo", `{"again":true}`)
		return r.Error == nil
	})
	n := 0
	for _, c := range logA.toolCalls(t) {
		if strings.Contains(c, `"crash"`) {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("the crashing call reached the upstream %d times, want exactly 1 (never replayed)", n)
	}
}

// TestFailedUpstreamLeftOut: an upstream that cannot start is logged with its
// stderr and left out; the others serve.
func TestFailedUpstreamLeftOut(t *testing.T) {
	sign := signtest.New(t, signtest.Options{APIKey: testKey})
	bad := strings.Replace(fakeServer(t, "broken", newUpstreamLog(t), ""), `TESTUPSTREAM_NAME = "broken"`,
		`TESTUPSTREAM_NAME = "broken", TESTUPSTREAM_FAIL_START = "cannot open database: permission denied"`, 1)
	h := startHub(t, signEnv(sign), "--config", writeConfig(t, bad+fakeServer(t, "good", newUpstreamLog(t), "")))
	names := h.toolNames()
	if !slices.Contains(names, "good__echo") || slices.Contains(names, "broken__echo") {
		t.Fatalf("tools = %v", names)
	}
	eventually(t, "the failure logged with its stderr", func() bool {
		return strings.Contains(h.stderr.String(), "cannot open database: permission denied")
	})
}

// TestShutdownLeavesNoProcess: closing the client's stdin stops the hub and
// every child, including one that ignores SIGTERM and a grandchild holding
// its stdout.
func TestShutdownLeavesNoProcess(t *testing.T) {
	t.Parallel()
	sign := signtest.New(t, signtest.Options{APIKey: testKey})
	stubborn := strings.Replace(fakeServer(t, "stubborn", newUpstreamLog(t), ""), `TESTUPSTREAM_NAME = "stubborn"`,
		`TESTUPSTREAM_NAME = "stubborn", TESTUPSTREAM_IGNORE_TERM = "1", TESTUPSTREAM_GRANDCHILD = "1"`, 1)
	cfg := writeConfig(t, stubborn+fakeServer(t, "plain", newUpstreamLog(t), ""))
	cmd := exec.Command(hubBin, "--config", cfg)
	cmd.Env = baseEnv(signEnv(sign)...)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	stderr := &testbuf.Buffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &rawClient{t: t, stdin: stdin, lines: make(chan []byte, 64), stderr: stderr}
	go scanLines(stdout, c.lines)
	c.send(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`)
	c.await("1")
	var pids []int
	for i, name := range []string{"stubborn__pid", "plain__pid"} {
		id := strconv.Itoa(10 + i)
		c.send(`{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":{"name":"` + name + `","arguments":{}}}`)
		m := c.await(id)
		var res struct {
			Content []struct{ Text string } `json:"content"`
		}
		if err := json.Unmarshal(m["result"], &res); err != nil || len(res.Content) == 0 {
			t.Fatalf("%s: %s", name, m["error"])
		}
		var p struct {
			Pid, Grandchild int
		}
		if err := json.Unmarshal([]byte(res.Content[0].Text), &p); err != nil {
			t.Fatalf("pid tool answered %q", res.Content[0].Text)
		}
		pids = append(pids, p.Pid)
		if p.Grandchild > 0 {
			pids = append(pids, p.Grandchild)
		}
	}
	if len(pids) != 3 {
		t.Fatalf("pids %v: want two children and a grandchild", pids)
	}
	stdin.Close()
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case err := <-waited:
		if err != nil {
			t.Fatalf("hub exited with %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("hub did not exit after stdin EOF\n%s", stderr.String())
	}
	for _, pid := range pids {
		if alive(pid) {
			t.Errorf("process %d survived the hub's shutdown", pid)
		}
	}
}

// TestEnvIsolation: the child sees its declared env and the allow-list, never
// the hub's API key or other variables.
func TestEnvIsolation(t *testing.T) {
	sign := signtest.New(t, signtest.Options{APIKey: testKey})
	h := startHub(t, append(signEnv(sign), "UNRELATED_SECRET=canary-9d2"), "--config", writeConfig(t, fakeServer(t, "files", newUpstreamLog(t), "")))
	env := resultText(t, h.call("files__env", `{}`))
	for _, leak := range []string{testKey, "canary-9d2", "SIGIL_API_KEY", "SIGIL_SIGN_URL"} {
		if strings.Contains(env, leak) {
			t.Fatalf("child environment contains %q:\n%s", leak, env)
		}
	}
	if !strings.Contains(env, "PATH=") || !strings.Contains(env, "TESTUPSTREAM_NAME=files") {
		t.Fatalf("child environment lacks PATH or its declared env:\n%s", env)
	}
}

// TestSingleWrapEnvNeverCarriesKey: a server wrapped with `--` gets the
// client's env for it, but never the hub's own SIGIL_* settings.
func TestSingleWrapEnvNeverCarriesKey(t *testing.T) {
	sign := signtest.New(t, signtest.Options{APIKey: testKey})
	env := append(signEnv(sign), "SIGIL_HUB_TEST_UPSTREAM=1", "GITHUB_TOKEN=for-the-server")
	h := startHub(t, env, "--server-id", "gh", "--", selfExe(t))
	got := resultText(t, h.call("env", `{}`))
	if strings.Contains(got, testKey) || strings.Contains(got, "SIGIL_SIGN_URL") {
		t.Fatalf("wrapped child sees the hub's settings:\n%s", got)
	}
	if !strings.Contains(got, "GITHUB_TOKEN=for-the-server") {
		t.Fatalf("wrapped child lacks the env its client entry set:\n%s", got)
	}
}

// TestNoKeyRefusesToStart (docs/protocol.md#no-key-no-start): no key and no
// policy → exit 1 with advice.
func TestNoKeyRefusesToStart(t *testing.T) {
	cmd := exec.Command(hubBin, "--", selfExe(t))
	cmd.Env = baseEnv()
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatal("hub started without a key")
	}
	if !strings.Contains(string(out), "SIGIL_API_KEY") || !strings.Contains(string(out), "policy") {
		t.Fatalf("message does not say how to get a key or run offline:\n%s", out)
	}
}

// TestBypassEnvRejected: the bypass is CLI-only.
func TestBypassEnvRejected(t *testing.T) {
	cmd := exec.Command(hubBin, "--", selfExe(t))
	cmd.Env = baseEnv("SIGIL_API_KEY=k", "SIGIL_UNSAFE_BYPASS=1")
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "CLI-only") {
		t.Fatalf("SIGIL_UNSAFE_BYPASS accepted: %v\n%s", err, out)
	}
}

// TestSIGTERMStopsEverything: SIGTERM to the hub stops it and its children.
func TestSIGTERMStopsEverything(t *testing.T) {
	sign := signtest.New(t, signtest.Options{APIKey: testKey})
	cmd := exec.Command(hubBin, "--config", writeConfig(t, fakeServer(t, "files", newUpstreamLog(t), "")))
	cmd.Env = baseEnv(signEnv(sign)...)
	stdin, _ := cmd.StdinPipe()
	defer stdin.Close()
	stdout, _ := cmd.StdoutPipe()
	stderr := &testbuf.Buffer{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &rawClient{t: t, stdin: stdin, lines: make(chan []byte, 64), stderr: stderr}
	go scanLines(stdout, c.lines)
	c.send(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`)
	c.await("1")
	c.send(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"files__pid","arguments":{}}}`)
	m := c.await("2")
	var res struct {
		Content []struct{ Text string } `json:"content"`
	}
	var p struct{ Pid int }
	if json.Unmarshal(m["result"], &res) != nil || len(res.Content) == 0 || json.Unmarshal([]byte(res.Content[0].Text), &p) != nil {
		t.Fatalf("pid: %s", m["result"])
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	waited := make(chan error, 1)
	go func() { waited <- cmd.Wait() }()
	select {
	case <-waited:
	case <-time.After(30 * time.Second):
		cmd.Process.Kill()
		t.Fatalf("hub ignored SIGTERM\n%s", stderr.String())
	}
	if alive(p.Pid) {
		t.Fatalf("child %d survived SIGTERM to the hub", p.Pid)
	}
}

// TestInitAndHelp: --init writes a starter file that the hub accepts, never
// overwrites one, and --help documents every flag.
func TestInitAndHelp(t *testing.T) {
	dir := t.TempDir()
	cmd := exec.Command(hubBin, "--init")
	cmd.Dir = dir
	cmd.Env = baseEnv()
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("--init: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dir, "sigil-hub.toml")); err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command(hubBin, "--init")
	cmd.Dir = dir
	cmd.Env = baseEnv()
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "already exists") {
		t.Fatalf("second --init overwrote or said nothing: %v\n%s", err, out)
	}
	out, _ := exec.Command(hubBin, "--help").CombinedOutput()
	for _, flag := range []string{"-key", "-sign-url", "-log-level", "-server-id", "-server-name", "-pending-timeout",
		"-unsafe-bypass", "-remote", "-config", "-only", "-policy", "-init", "SIGIL_API_KEY", "SIGIL_UPSTREAM_AUTH"} {
		if !strings.Contains(string(out), flag) {
			t.Errorf("--help does not mention %s", flag)
		}
	}
}

// TestClosedStderrDoesNotKillTheHub: mcp-go's client closes its end of the
// hub's stderr before it closes stdin. A log line written after that must
// not kill the hub (SIGPIPE on fd 2): it keeps answering, and at stdin EOF
// it shuts down in order and exits 0.
func TestClosedStderrDoesNotKillTheHub(t *testing.T) {
	t.Parallel()
	sign := signtest.New(t, signtest.Options{APIKey: testKey, Decide: func(signtest.Request) signtest.Reply {
		return signtest.Deny("SIGIL_POLICY_VIOLATION", "no") // logged at info
	}})
	cmd := exec.Command(hubBin, "--config", writeConfig(t, fakeServer(t, "files", newUpstreamLog(t), "")))
	cmd.Env = baseEnv(signEnv(sign)...)
	cmd.Dir = t.TempDir()
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	stderr, _ := cmd.StderrPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	ls := newLineSession(t, stdin, stdout)
	ls.handshake()
	ls.rpc(`{"jsonrpc":"2.0","id":2,"method":"tools/list"}`)
	stderr.Close() // as mcp-go's Close does, before stdin
	for i := 3; i < 6; i++ {
		if resp := ls.rpc(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":"files__echo","arguments":{}}}`, i)); !strings.Contains(resp, "SIGIL_POLICY_VIOLATION") {
			t.Fatalf("call %d after stderr closed: %s", i, resp)
		}
	}
	stdin.Close()
	if err := waitExit(t, cmd); err != nil {
		t.Fatalf("the hub did not exit cleanly after its stderr was closed: %v", err)
	}
}

// TestDecisionLogLevels: at the default level an approved call writes no
// log line (a line per call was an eighth of the binary's CPU), a denied
// one does.
func TestDecisionLogLevels(t *testing.T) {
	t.Parallel()
	sign := signtest.New(t, signtest.Options{APIKey: testKey, Decide: func(r signtest.Request) signtest.Reply {
		if strings.Contains(string(r.Body), "deny-me") {
			return signtest.Deny("SIGIL_POLICY_VIOLATION", "no")
		}
		return signtest.Approve()
	}})
	h := startHub(t, signEnv(sign), "--config", writeConfig(t, fakeServer(t, "files", newUpstreamLog(t), "")))
	resultText(t, h.call("files__echo", `{"a":1}`))
	if r := h.call("files__echo", `{"deny-me":1}`); r.Error == nil {
		t.Fatal("the denied call was not refused")
	}
	// The approved call's line, if any, was written before its answer and
	// so before the denied call's line.
	eventually(t, "the denied call's log line", func() bool { return strings.Contains(h.stderr.String(), "decision=DENIED") })
	if strings.Contains(h.stderr.String(), "decision=APPROVED") {
		t.Fatalf("an approved call was logged at info:\n%s", h.stderr.String())
	}
}
