//go:build linux

package main

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sigilcore/sigil-hub/internal/testbuf"
	"github.com/sigilcore/sigil-hub/internal/testupstream"
)

// Fault catalogue cases 47–61 (upstream faults: the misbehaving fake
// upstream of internal/testupstream) and 62–70 (lifecycle; docs/faults.md),
// over raw stdio.

// twoUpstreams starts a hub with a misbehaving upstream "bad" (extra env)
// and a healthy "good", both fake.
func twoUpstreams(t *testing.T, env ...string) (*faultHub, *faultSign, map[string]upstreamLog) {
	t.Helper()
	runID := faultRunID(t)
	sign := newFaultSign(t, false, nil)
	logs := map[string]upstreamLog{"bad": newUpstreamLog(t), "good": newUpstreamLog(t)}
	cfg := faultServer(t, "bad", logs["bad"], runID, env...) + faultServer(t, "good", logs["good"], runID)
	return startFault(t, sign, runID, faultOpts{Args: []string{"--config", writeConfig(t, cfg)}}), sign, logs
}

// pidOf calls the pid tool of an upstream.
func pidOf(h *faultHub, up string) (pid, grandchild int) {
	h.t.Helper()
	var p struct{ Pid, Grandchild int }
	if err := json.Unmarshal([]byte(h.text(h.callWait(up+"__pid", `{}`))), &p); err != nil {
		h.t.Fatal(err)
	}
	return p.Pid, p.Grandchild
}

func TestFaultD47UpstreamNeverAnswers(t *testing.T) {
	t.Parallel()
	h, sign, logs := twoUpstreams(t)
	id := h.call("bad__hang", `{}`)
	eventually(t, "the hang call upstream", func() bool { return logs["bad"].contains(t, `"testupstream":"hang"`) })
	// Other upstreams, and the same one, keep serving meanwhile.
	h.text(h.callWait("good__echo", `{}`))
	h.text(h.callWait("bad__echo", `{}`))
	// The call budget (120 s) is not configurable, so the timeout itself is
	// not waited for here; a client cancel takes the same path upstream.
	h.cancel(id)
	eventually(t, "notifications/cancelled upstream", func() bool { return logs["bad"].contains(t, "notifications/cancelled") })
	assertInvariants(t, h, invariants{Sign: sign, Logs: logs, Audit: -1})
}

func TestFaultD48KilledMidCall(t *testing.T) {
	t.Parallel()
	h, sign, logs := twoUpstreams(t)
	pid, _ := pidOf(h, "bad")
	inflight := h.call("bad__hang", `{}`)
	eventually(t, "the hang call upstream", func() bool { return logs["bad"].contains(t, `"testupstream":"hang"`) })
	d := h.rpcErr(h.callWait("bad__kill_self", `{}`), -32603)
	if d.Reason != "upstream_exited" {
		t.Fatalf("killed mid-call: data %+v", d)
	}
	if d := h.rpcErr(h.await(inflight), -32603); d.Reason != "upstream_exited" {
		t.Fatalf("other in-flight call: data %+v", d)
	}
	h.text(h.callWait("good__echo", `{}`))
	eventually(t, "the killed upstream restarted", func() bool {
		m := h.callWait("bad__echo", `{"again":1}`)
		return m["error"] == nil
	})
	n := 0
	for _, c := range logs["bad"].toolCalls(t) {
		if strings.Contains(c, `"kill_self"`) {
			n++
		}
	}
	if n != 1 || alive(pid) {
		t.Fatalf("kill_self reached the upstream %d times (want 1, never replayed); old child alive: %v", n, alive(pid))
	}
	assertInvariants(t, h, invariants{Sign: sign, Logs: logs, Audit: -1, Pids: []int{pid}})
}

func TestFaultD49ExitsBeforeInitialize(t *testing.T) {
	t.Parallel()
	h, sign, logs := twoUpstreams(t, "TESTUPSTREAM_FAIL_START=cannot open db: token "+testKey)
	tools := h.tools()
	if _, ok := tools["bad__echo"]; ok {
		t.Fatal("tools of an upstream that failed to start are listed")
	}
	h.text(h.callWait("good__echo", `{}`))
	eventually(t, "the failure logged with its stderr", func() bool { return strings.Contains(h.stderr.String(), "cannot open db") })
	// The upstream's stderr carries the API key here: it must be redacted.
	if strings.Contains(h.stderr.String(), testKey) {
		h.stderr = &testbuf.Buffer{} // the leak is reported below; check the rest
		assertInvariants(t, h, invariants{Sign: sign, Logs: logs, Audit: -1, SkipFDs: true})
		knownFailure(t, 49, "an upstream's stderr tail is logged verbatim, so an API key it prints reaches the hub's log unredacted")
	}
	assertInvariants(t, h, invariants{Sign: sign, Logs: logs, Audit: -1, SkipFDs: true})
}

func TestFaultD50EnvironmentCanary(t *testing.T) {
	t.Parallel()
	h, sign, logs := twoUpstreams(t)
	env := h.text(h.callWait("bad__env", `{}`))
	for _, leak := range []string{testKey, "SIGIL_API_KEY", "SIGIL_SIGN_URL"} {
		if strings.Contains(env, leak) {
			t.Fatalf("child environment contains %q", leak)
		}
	}
	assertInvariants(t, h, invariants{Sign: sign, Logs: logs, Audit: -1})
}

func TestFaultD51GarbageOnStdout(t *testing.T) {
	t.Parallel()
	h, sign, logs := twoUpstreams(t, "TESTUPSTREAM_GARBAGE=16")
	if got := h.text(h.callWait("bad__garbage", `{"n":200}`)); got != "survived garbage" {
		t.Fatalf("answered %q", got)
	}
	h.text(h.callWait("bad__echo", `{}`))
	assertInvariants(t, h, invariants{Sign: sign, Logs: logs, Audit: -1})
}

func TestFaultD52HugeLine(t *testing.T) {
	t.Parallel()
	h, sign, logs := twoUpstreams(t)
	rss := watchRSS(h.cmd.Process.Pid)
	m := h.callWait("bad__huge", `{"mb":100}`)
	h.text(h.callWait("good__echo", `{}`))
	// G7: RSS increase ≤ 2× the 16 MiB upstream line cap.
	g7 := checkRSS(t, rss, "G7", "100 MiB upstream line", 2*upstreamCap)
	if d := h.rpcErr(m, -32603); d.Reason == "" {
		t.Fatalf("data %+v", d)
	}
	assertInvariants(t, h, invariants{Sign: sign, Logs: logs, Audit: -1, SkipFDs: true})
	if g7 != "" {
		t.Error(g7)
	}
}

func TestFaultD53BadResponseIDs(t *testing.T) {
	t.Parallel()
	h, sign, logs := twoUpstreams(t)
	if got := h.text(h.callWait("bad__"+testupstream.ToolBadIDs, `{}`)); got != "first" {
		t.Fatalf("answered %q, want the first response", got)
	}
	h.text(h.callWait("bad__echo", `{}`))
	// I3 (assertInvariants) proves the duplicate and unknown-id responses
	// reached the client neither as extra responses nor under other ids.
	m := h.callWait("bad__"+testupstream.ToolBothFields, `{}`)
	var e struct {
		Code int
		Data struct{ Reason string }
	}
	_ = json.Unmarshal(m["error"], &e)
	assertInvariants(t, h, invariants{Sign: sign, Logs: logs, Audit: -1})
	if e.Code != -32603 || e.Data.Reason != "invalid_upstream_response" {
		knownFailure(t, 53, "a response with both result and error is passed on as the upstream's own error ("+string(m["error"])+"), not -32603 invalid_upstream_response")
	}
}

func TestFaultD54NotificationFlood(t *testing.T) {
	t.Parallel()
	h, sign, logs := twoUpstreams(t)
	rss := watchRSS(h.cmd.Process.Pid)
	done := h.call("bad__notify_flood", `{"n":50000,"kind":"progress"}`)
	sent := time.Now()
	h.text(h.callWait("good__echo", `{}`))
	t.Logf("G6: a call to another upstream during the flood answered in %v", time.Since(sent).Round(time.Millisecond))
	h.text(h.await(done))
	h.text(h.callWait("bad__notify_flood", `{"n":20000,"kind":"message"}`))
	if g6 := checkRSS(t, rss, "G6", "70k notifications", g6FloodBound); g6 != "" {
		t.Error(g6)
	}
	if n := h.notes("notifications/progress"); n != 0 {
		t.Errorf("%d progress notifications for a token nobody sent reached the client", n)
	}
	assertInvariants(t, h, invariants{Sign: sign, Logs: logs, Audit: -1})
}

func TestFaultD55ListChangedFlood(t *testing.T) {
	t.Parallel()
	h, sign, logs := twoUpstreams(t)
	lists := strings.Count(readFile(string(logs["bad"])), `"method":"tools/list"`)
	rss := watchRSS(h.cmd.Process.Pid)
	h.text(h.callWait("bad__notify_flood", `{"n":1000,"kind":"list_changed"}`))
	h.text(h.callWait("good__echo", `{}`))
	h.await(h.sendReq("ping", `{}`))
	if g6 := checkRSS(t, rss, "G6", "1000 list_changed", g6FloodBound); g6 != "" {
		t.Error(g6)
	}
	relists := strings.Count(readFile(string(logs["bad"])), `"method":"tools/list"`) - lists
	notes := h.notes("notifications/tools/list_changed")
	t.Logf("1000 list_changed → %d re-lists upstream, %d list_changed to the client", relists, notes)
	if relists > 20 || notes > 20 {
		t.Errorf("1000 list_changed caused %d re-lists and %d client notifications: not coalesced", relists, notes)
	}
	assertInvariants(t, h, invariants{Sign: sign, Logs: logs, Audit: -1})
}

func TestFaultD56RugPull(t *testing.T) {
	t.Parallel()
	// Strict pinning: a changed definition is neither listed nor callable,
	// and nothing about it reaches Sign or the upstream until accepted.
	runID := faultRunID(t)
	sign := newFaultSign(t, false, nil)
	logs := map[string]upstreamLog{"bad": newUpstreamLog(t), "good": newUpstreamLog(t)}
	cfg := faultServer(t, "bad", logs["bad"], runID) + faultServer(t, "good", logs["good"], runID)
	pinFile := filepath.Join(t.TempDir(), "state", "pins.json")
	h := startFault(t, sign, runID, faultOpts{Args: []string{"--config", writeConfig(t, cfg), "--pin", "strict", "--pin-file", pinFile}})
	if !strings.Contains(string(h.tools()["bad__victim"]), testupstream.RugPullV1) {
		t.Fatal("victim v1 not listed")
	}
	h.text(h.callWait("bad__victim", `{"path":"/tmp/v1"}`))
	v1 := pinToolHash(t, sign, "/tmp/v1")
	h.text(h.callWait("bad__rug_pull", `{}`))
	eventually(t, "the changed tool hidden", func() bool {
		_, listed := h.tools()["bad__victim"]
		return !listed
	})
	before := len(sign.Requests())
	d := h.rpcErr(h.callWait("bad__victim", `{"path":"/etc/shadow"}`), -32602)
	if d.Reason != "tool_definition_changed" || !strings.Contains(d.Message, "sigil-hub pins accept") {
		t.Fatalf("changed tool call: data %+v", d)
	}
	if n := len(sign.Requests()); n != before {
		t.Fatalf("a call to the changed tool reached Sign (%d requests, want %d)", n, before)
	}
	if logs["bad"].contains(t, "/etc/shadow") {
		t.Fatal("a call to the changed tool reached the upstream")
	}
	if !strings.Contains(strings.ToLower(h.stderr.String()), "definition changed") {
		t.Fatal("no warning about the changed definition")
	}
	if st, err := os.Stat(pinFile); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("pin file: %v %v, want mode 0600", st, err)
	}
	var out, errOut strings.Builder
	if err := runMain(t.Context(), []string{"pins", "list", "--pin-file", pinFile}, nil, nil, &out, &errOut); err != nil || !strings.Contains(out.String(), "CHANGED") {
		t.Fatalf("pins list: %v\n%s%s", err, out.String(), errOut.String())
	}
	out.Reset()
	if err := runMain(t.Context(), []string{"pins", "accept", "--pin-file", pinFile, "bad", "victim"}, nil, nil, &out, &errOut); err != nil || !strings.Contains(out.String(), "accepted bad/victim") {
		t.Fatalf("pins accept: %v\n%s%s", err, out.String(), errOut.String())
	}
	// The running hub re-reads the pin file: no restart. A call right
	// after the accept is served (a call that would be refused reads the
	// file first), and the lists show the tool again.
	h.text(h.callWait("bad__victim", `{"path":"/tmp/right-after-accept"}`))
	eventually(t, "the accepted tool listed again", func() bool {
		return strings.Contains(string(h.tools()["bad__victim"]), testupstream.RugPullV2)
	})
	h.text(h.callWait("bad__victim", `{"path":"/tmp/v2"}`))
	if v2 := pinToolHash(t, sign, "/tmp/v2"); v2 == v1 {
		t.Fatalf("metadata.toolHash did not change with the definition: %s", v2)
	}
	assertInvariants(t, h, invariants{Sign: sign, Logs: logs, Audit: -1})
}

// pinToolHash returns intent.metadata.toolHash of the one Sign request whose
// body contains marker, checking it is 64 lowercase hex digits.
func pinToolHash(t *testing.T, sign *faultSign, marker string) string {
	t.Helper()
	for _, r := range sign.Requests() {
		if !strings.Contains(string(r.Body), marker) {
			continue
		}
		meta, _ := r.Intent["metadata"].(map[string]any)
		h, _ := meta["toolHash"].(string)
		if len(h) != 64 || strings.Trim(h, "0123456789abcdef") != "" {
			t.Fatalf("intent metadata.toolHash = %q, want 64 hex digits; body %s", h, r.Body)
		}
		return h
	}
	t.Fatalf("no Sign request for %s", marker)
	return ""
}

func TestFaultD57NonConformingNames(t *testing.T) {
	t.Parallel()
	long := strings.Repeat("n", 200)
	h, sign, logs := twoUpstreams(t, "TESTUPSTREAM_TOOLS=search,Search,s\u0435arch,"+long+",a/b")
	tools := h.tools()
	if _, ok := tools["bad__search"]; !ok {
		t.Fatal("conforming tool bad__search not exposed")
	}
	var exposed []string
	for _, n := range []string{"bad__s\u0435arch", "bad__" + long, "bad__a/b"} {
		if _, ok := tools[n]; ok {
			exposed = append(exposed, n)
		}
	}
	assertInvariants(t, h, invariants{Sign: sign, Logs: logs, Audit: -1})
	if len(exposed) > 0 {
		knownFailure(t, 57, "non-conforming or confusable tool names are exposed: "+strings.Join(exposed, ", ")[:60])
	}
}

func TestFaultD58StubbornChildAndGrandchild(t *testing.T) {
	t.Parallel()
	h, sign, logs := twoUpstreams(t, "TESTUPSTREAM_IGNORE_TERM=1", "TESTUPSTREAM_GRANDCHILD=1")
	pid, gc := pidOf(h, "bad")
	if gc == 0 {
		t.Fatal("no grandchild")
	}
	assertInvariants(t, h, invariants{Sign: sign, Logs: logs, Audit: -1, Pids: []int{pid, gc}})
}

func TestFaultD59StderrFlood(t *testing.T) {
	t.Parallel()
	h, sign, logs := twoUpstreams(t, "TESTUPSTREAM_STDERR_FLOOD=4194304")
	before := vmHWM(h.cmd.Process.Pid)
	if got := h.text(h.callWait("bad__stderr_flood", `{"mb":256}`)); got != "stderr flooded" {
		t.Fatalf("answered %q", got)
	}
	h.text(h.callWait("bad__echo", `{}`))
	if growth := vmHWM(h.cmd.Process.Pid) - before; growth > 32<<20 {
		t.Errorf("hub peak RSS grew by %d MiB draining 256 MiB of stderr", growth>>20)
	}
	if strings.Contains(h.stderr.String(), "EEEEEEEE") {
		t.Error("the child's stderr flood reached the hub's log at the default level")
	}
	assertInvariants(t, h, invariants{Sign: sign, Logs: logs, Audit: -1})
}

func TestFaultD60ServerRequests(t *testing.T) {
	t.Parallel()
	h, sign, logs := twoUpstreams(t)
	for _, kind := range []string{"sampling", "elicitation"} {
		got := h.text(h.callWait("bad__sample", `{"kind":"`+kind+`"}`))
		if !strings.HasPrefix(got, "refused") {
			t.Fatalf("%s request to a client without the capability: %q", kind, got)
		}
	}
	h.await(h.sendReq("ping", `{}`))
	if n := h.notes("sampling/createMessage") + h.notes("elicitation/create"); n != 0 {
		t.Fatal("a server request reached a client that did not declare the capability")
	}
	h.mu.Lock()
	for _, l := range h.lines {
		var m struct{ Method string }
		if json.Unmarshal(l, &m) == nil && (m.Method == "sampling/createMessage" || m.Method == "elicitation/create") {
			t.Errorf("client received %s", l)
		}
	}
	h.mu.Unlock()
	assertInvariants(t, h, invariants{Sign: sign, Logs: logs, Audit: -1})
}

// TestFaultE62StdinEOF and E63/E64: the hub's end leaves no process.
func TestFaultE62StdinEOF(t *testing.T) {
	t.Parallel()
	h, sign, logs := twoUpstreams(t, "TESTUPSTREAM_IGNORE_TERM=1", "TESTUPSTREAM_GRANDCHILD=1")
	inflight := h.call("good__hang", `{}`)
	eventually(t, "the hang call upstream", func() bool { return logs["good"].contains(t, `"testupstream":"hang"`) })
	h.mu.Lock()
	h.maybe[inflight] = true // a call in flight at EOF may end without an answer
	h.mu.Unlock()
	assertInvariants(t, h, invariants{Sign: sign, Logs: logs, Audit: -1})
}

func TestFaultE63SIGTERM(t *testing.T) {
	t.Parallel()
	h, sign, logs := twoUpstreams(t, "TESTUPSTREAM_IGNORE_TERM=1", "TESTUPSTREAM_GRANDCHILD=1")
	h.text(h.callWait("good__echo", `{}`))
	h.descendants()
	if err := h.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-h.exited:
	case <-time.After(30 * time.Second):
		t.Fatal("hub ignored SIGTERM")
	}
	assertInvariants(t, h, invariants{Sign: sign, Logs: logs, Audit: -1, HubGone: true})
}

func TestFaultE64HubSIGKILLed(t *testing.T) {
	t.Parallel()
	h, sign, logs := twoUpstreams(t, "TESTUPSTREAM_IGNORE_TERM=1")
	pid, _ := pidOf(h, "bad")
	good, _ := pidOf(h, "good")
	h.descendants()
	_ = h.cmd.Process.Kill()
	<-h.exited
	eventually(t, "the plain child gone (stdin EOF)", func() bool { return !alive(good) })
	deadline := time.Now().Add(5 * time.Second)
	for alive(pid) && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if alive(pid) {
		_ = syscall.Kill(-pid, syscall.SIGKILL) // clean up what the hub left
		eventually(t, "cleanup", func() bool { return !alive(pid) })
		knownFailure(t, 64, "a child that ignores stdin EOF and SIGTERM survives a SIGKILLed hub: no Pdeathsig")
	}
	_ = sign
	_ = logs
}

// runHubOnce runs the hub to completion (it must exit on its own).
func runHubOnce(t *testing.T, env []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, hubBin, args...)
	cmd.Env = baseEnv(env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// TestFaultE70ConfigErrors: config faults fail with the field named and the
// secret never echoed (hub/config_test.go covers each field in detail).
func TestFaultE70ConfigErrors(t *testing.T) {
	t.Parallel()
	secret := "sk_live_" + strings.Repeat("9", 24)
	cases := map[string]string{
		"raw secret header": "[servers.r]\nurl = \"https://example.invalid/mcp\"\nheaders = { Authorization = \"Bearer " + secret + "\" }\n",
		"unset env ref":     "[servers.r]\ncommand = \"x\"\nenv = { T = \"${FAULT_E70_UNSET}\" }\n",
		"duplicate id":      "[servers.a]\ncommand = \"x\"\nserver_id = \"same\"\n[servers.b]\ncommand = \"y\"\nserver_id = \"same\"\n",
		"bad id":            "[servers.a]\ncommand = \"x\"\nserver_id = \"has space é\"\n",
		"bypass in file":    "unsafe_bypass = true\n[servers.a]\ncommand = \"x\"\n",
	}
	for name, cfg := range cases {
		out, err := runHubOnce(t, []string{"SIGIL_API_KEY=" + testKey}, "--config", writeConfig(t, cfg))
		if err == nil {
			t.Errorf("%s: hub accepted the config", name)
			continue
		}
		if strings.Contains(out, secret) || strings.Contains(out, testKey) {
			t.Errorf("%s: the error echoes a secret:\n%s", name, out)
		}
		if !strings.Contains(out, "servers") && !strings.Contains(out, "unsafe_bypass") {
			t.Errorf("%s: the error does not name the field:\n%s", name, out)
		}
	}
}

func readFile(p string) string {
	b, _ := os.ReadFile(p)
	return string(b)
}
