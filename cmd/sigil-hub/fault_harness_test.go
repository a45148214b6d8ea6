//go:build linux

package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sigilcore/sigil-hub/internal/signtest"
	"github.com/sigilcore/sigil-hub/internal/testbuf"
)

// This file is the harness of the fault-catalogue tests (faults_*_test.go,
// ../../docs/faults.md): a raw client that records every byte the hub writes,
// a Sign double that remembers what it approved, and assertInvariants, which
// checks invariants I1–I5 (docs/faults.md) at the end of every fault test.

// knownFailure skips the rest of a test whose remaining assertion is a
// documented hub deviation (docs/faults.md lists it as "fails").
func knownFailure(t *testing.T, n int, cause string) {
	t.Helper()
	t.Skipf("KNOWN FAILURE faults.md #%d: %s; see docs/faults.md", n, cause)
}

// approval is one call Sign approved: the exact argument bytes it saw.
type approval struct{ serverID, tool, args string }

// faultSign is a Sign double that records every approval it gave, for I2.
type faultSign struct {
	*signtest.Server
	mu       sync.Mutex
	approved []approval
}

// newFaultSign starts a Sign double answering with decide (nil: approve all).
func newFaultSign(t *testing.T, tls bool, decide func(signtest.Request) signtest.Reply) *faultSign {
	t.Helper()
	return newFaultSignOpts(t, signtest.Options{TLS: tls, Decide: decide})
}

// newFaultSignOpts is newFaultSign with more of the double's options; the
// API key is always testKey.
func newFaultSignOpts(t *testing.T, o signtest.Options) *faultSign {
	t.Helper()
	fs := &faultSign{}
	decide := o.Decide
	o.APIKey = testKey
	o.Decide = func(r signtest.Request) signtest.Reply {
		rep := signtest.Approve()
		if decide != nil {
			rep = decide(r)
		}
		if isApproval(rep) {
			var b struct {
				Intent struct {
					Metadata struct {
						Arguments json.RawMessage `json:"arguments"`
					} `json:"metadata"`
				} `json:"intent"`
			}
			_ = json.Unmarshal(r.Body, &b)
			fs.mu.Lock()
			fs.approved = append(fs.approved, approval{r.ServerID, r.Tool, string(b.Intent.Metadata.Arguments)})
			fs.mu.Unlock()
		}
		return rep
	}
	fs.Server = signtest.New(t, o)
	return fs
}

// isApproval reports whether rep is a valid approval
// (docs/protocol.md#decision-literals-and-strict-bodies).
func isApproval(rep signtest.Reply) bool {
	if rep.Hang || rep.CloseConn || (rep.Status != 0 && rep.Status != 200) {
		return false
	}
	var m map[string]any
	if json.Unmarshal(rep.Body, &m) != nil {
		return false
	}
	return m["status"] == "APPROVED" || m["status"] == "ALLOWED"
}

func (fs *faultSign) approvals() []approval {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	return append([]approval(nil), fs.approved...)
}

// faultRunID is a random marker put into every fake upstream's environment,
// so that assertInvariants can find any process a test left behind.
func faultRunID(t *testing.T) string {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	return "fault-" + hex.EncodeToString(b)
}

// faultServer is one [servers.NAME] table running the fake upstream with the
// run marker and extra environment.
func faultServer(t *testing.T, name string, log upstreamLog, runID string, env ...string) string {
	kv := []string{
		`SIGIL_HUB_TEST_UPSTREAM = "1"`,
		fmt.Sprintf(`TESTUPSTREAM_LOG = %q`, string(log)),
		fmt.Sprintf(`TESTUPSTREAM_NAME = %q`, name),
		fmt.Sprintf(`FAULT_RUN_ID = %q`, runID),
		`TESTUPSTREAM_MISBEHAVE = "1"`,
	}
	for _, e := range env {
		k, v, _ := strings.Cut(e, "=")
		kv = append(kv, fmt.Sprintf("%s = %q", k, v))
	}
	return fmt.Sprintf("\n[servers.%s]\ncommand = %q\nserver_id = %q\nenv = { %s }\n", name, selfExe(t), name, strings.Join(kv, ", "))
}

// faultHub is the hub binary driven over raw stdio, with every line it
// writes recorded.
type faultHub struct {
	t      *testing.T
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	stderr *testbuf.Buffer
	audit  string
	runID  string

	exited chan struct{}

	mu        sync.Mutex
	wake      chan struct{} // closed and replaced on every new line
	lines     [][]byte
	byID      map[string][]map[string]json.RawMessage // responses, by raw id
	eof       bool
	expect    map[string]int  // raw response id → responses the client expects
	maybe     map[string]bool // ids the client cancelled: zero or one response
	toolCalls int             // tools/call requests sent on an initialized session
	inited    bool
	baseFDs   int
	seen      map[int]bool // descendants of the hub seen so far
	seq       int
}

// faultOpts configures startFault. The zero value runs an initialized hub
// with no extra env or args.
type faultOpts struct {
	Env    []string // added to signEnv
	Args   []string // after --audit
	NoInit bool     // skip initialize (framing tests before the handshake)
}

// startFault runs the hub with sign's URL, an audit log and args, and
// (unless NoInit) initializes it and waits for the upstreams' tools.
func startFault(t *testing.T, sign *faultSign, runID string, o faultOpts) *faultHub {
	t.Helper()
	h := &faultHub{t: t, stderr: &testbuf.Buffer{}, runID: runID, exited: make(chan struct{}),
		wake: make(chan struct{}), expect: map[string]int{}, maybe: map[string]bool{}, seen: map[int]bool{}}
	h.audit = filepath.Join(t.TempDir(), "audit.jsonl")
	env := o.Env
	if sign != nil {
		env = append(signEnv(sign.Server), env...)
		if strings.HasPrefix(sign.URL, "https://") {
			env = append(env, "SSL_CERT_FILE=/nonexistent") // the double's certificate stays untrusted
		}
	}
	h.cmd = exec.Command(hubBin, append([]string{"--audit", h.audit}, o.Args...)...)
	h.cmd.Env = baseEnv(env...)
	h.cmd.Dir = t.TempDir()
	h.cmd.Stderr = h.stderr
	in, err := h.cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := h.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := h.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	h.stdin = in
	go h.read(out)
	go func() { _ = h.cmd.Wait(); close(h.exited) }()
	t.Cleanup(func() {
		_ = in.Close()
		select {
		case <-h.exited:
		case <-time.After(30 * time.Second):
			_ = h.cmd.Process.Kill()
			<-h.exited
		}
		if t.Failed() {
			t.Logf("hub stderr (last 8 KiB):\n%s", tail(h.stderr.String(), 8<<10))
		}
	})
	if !o.NoInit {
		h.initialize()
	}
	return h
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// initialize performs the handshake and waits for the merged tool list.
func (h *faultHub) initialize() {
	h.t.Helper()
	h.send(`{"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"fault-client","version":"1"}}}`)
	h.await(`"init"`)
	h.send(`{"jsonrpc":"2.0","method":"notifications/initialized"}`)
	h.mu.Lock()
	h.inited = true
	h.mu.Unlock()
	h.tools()
	h.mu.Lock()
	h.baseFDs = countFDs(h.cmd.Process.Pid)
	h.mu.Unlock()
	h.descendants()
}

func (h *faultHub) read(out io.Reader) {
	br := bufio.NewReaderSize(out, 1<<20)
	for {
		line, err := br.ReadBytes('\n')
		if len(bytes.TrimSpace(line)) > 0 {
			l := bytes.TrimRight(line, "\r\n")
			var m map[string]json.RawMessage
			isResponse := bytes.Contains(l, []byte(`"id"`)) && json.Unmarshal(l, &m) == nil && m["id"] != nil && m["method"] == nil
			h.mu.Lock()
			h.lines = append(h.lines, l)
			if isResponse {
				if h.byID == nil {
					h.byID = map[string][]map[string]json.RawMessage{}
				}
				h.byID[string(m["id"])] = append(h.byID[string(m["id"])], m)
			}
			close(h.wake)
			h.wake = make(chan struct{})
			h.mu.Unlock()
		}
		if err != nil {
			h.mu.Lock()
			h.eof = true
			close(h.wake)
			h.wake = make(chan struct{})
			h.mu.Unlock()
			return
		}
	}
}

// send writes one line. A request (valid id and method) is expected to get
// exactly one response; use expectID for what the hub answers to anything
// else.
func (h *faultHub) send(line string) {
	h.t.Helper()
	var m struct {
		ID     json.RawMessage `json:"id"`
		Method string          `json:"method"`
	}
	if json.Unmarshal([]byte(line), &m) == nil && m.Method != "" && validRawID(m.ID) {
		h.mu.Lock()
		h.expect[string(m.ID)]++
		if m.Method == "tools/call" && h.inited {
			h.toolCalls++
		}
		h.mu.Unlock()
	}
	h.write([]byte(line + "\n"))
}

// write sends bytes as they are, with no bookkeeping.
func (h *faultHub) write(b []byte) {
	h.t.Helper()
	if _, err := h.stdin.Write(b); err != nil {
		h.t.Fatalf("write to hub: %v", err)
	}
}

// expectID records that the hub owes one more response with this raw id
// (e.g. "null" for a parse error).
func (h *faultHub) expectID(id string) {
	h.mu.Lock()
	h.expect[id]++
	h.mu.Unlock()
}

// unexpect moves one expected response from id to other (the hub answered
// a request under another id: a documented known failure).
func (h *faultHub) unexpect(id, other string) {
	h.mu.Lock()
	h.expect[id]--
	if h.expect[id] == 0 {
		delete(h.expect, id)
	}
	h.expect[other]++
	h.mu.Unlock()
}

func validRawID(id json.RawMessage) bool {
	if len(id) == 0 {
		return false
	}
	if id[0] == '"' {
		return true
	}
	if id[0] == '-' || (id[0] >= '0' && id[0] <= '9') {
		return !bytes.ContainsAny(id, ".eE")
	}
	return false
}

// next returns an id for a request.
func (h *faultHub) next() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.seq++
	return strconv.Quote("f-" + strconv.Itoa(h.seq))
}

// call sends a tools/call and returns its raw id.
func (h *faultHub) call(name, args string) string {
	h.t.Helper()
	id := h.next()
	h.send(`{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":{"name":"` + name + `","arguments":` + args + `}}`)
	return id
}

// callWait calls a tool and waits for its response.
func (h *faultHub) callWait(name, args string) map[string]json.RawMessage {
	h.t.Helper()
	return h.await(h.call(name, args))
}

// cancel sends notifications/cancelled for id; its response becomes optional.
func (h *faultHub) cancel(id string) {
	h.t.Helper()
	h.mu.Lock()
	h.maybe[id] = true
	h.mu.Unlock()
	h.send(`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":` + id + `,"reason":"test"}}`)
}

// responses returns every message with this raw id received so far.
func (h *faultHub) responses(id string) []map[string]json.RawMessage {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.byID[id])
}

// await waits for the first response with this raw id.
func (h *faultHub) await(id string) map[string]json.RawMessage {
	h.t.Helper()
	return h.awaitN(id, 1)[0]
}

// awaitN waits until n responses with this raw id arrived.
func (h *faultHub) awaitN(id string, n int) []map[string]json.RawMessage {
	h.t.Helper()
	deadline := time.After(90 * time.Second)
	for {
		h.mu.Lock()
		wake, eof := h.wake, h.eof
		h.mu.Unlock()
		if r := h.responses(id); len(r) >= n {
			return r
		}
		if eof {
			h.t.Fatalf("hub closed stdout while waiting for id %s", id)
		}
		select {
		case <-wake:
		case <-deadline:
			h.t.Fatalf("no answer for id %s", id)
		}
	}
}

// notes counts notifications with this method received so far.
func (h *faultHub) notes(method string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	n := 0
	q := []byte(`"method":` + strconv.Quote(method))
	for _, l := range h.lines {
		if bytes.Contains(l, q) && !bytes.Contains(l, []byte(`"id":`)) {
			n++
		}
	}
	return n
}

// tools lists the exposed tools (the raw JSON of each).
func (h *faultHub) tools() map[string]json.RawMessage {
	h.t.Helper()
	m := h.await(h.sendReq("tools/list", `{}`))
	var r struct {
		Tools []json.RawMessage `json:"tools"`
	}
	if err := json.Unmarshal(m["result"], &r); err != nil {
		h.t.Fatalf("tools/list: %s", m["error"])
	}
	out := map[string]json.RawMessage{}
	for _, tl := range r.Tools {
		var n struct{ Name string }
		_ = json.Unmarshal(tl, &n)
		out[n.Name] = tl
	}
	return out
}

// sendReq sends a request and returns its raw id.
func (h *faultHub) sendReq(method, params string) string {
	h.t.Helper()
	id := h.next()
	h.send(`{"jsonrpc":"2.0","id":` + id + `,"method":"` + method + `","params":` + params + `}`)
	return id
}

// text returns the first text block of a result, failing on an error.
func (h *faultHub) text(m map[string]json.RawMessage) string {
	h.t.Helper()
	var r struct {
		Content []struct{ Text string } `json:"content"`
	}
	if m["error"] != nil || json.Unmarshal(m["result"], &r) != nil || len(r.Content) == 0 {
		h.t.Fatalf("want a result, got %s %s", m["result"], m["error"])
	}
	return r.Content[0].Text
}

// rpcErr decodes an error response, failing on a result or another code.
func (h *faultHub) rpcErr(m map[string]json.RawMessage, code int) errData {
	h.t.Helper()
	var e struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	}
	if m["error"] == nil || json.Unmarshal(m["error"], &e) != nil {
		h.t.Fatalf("want error %d, got %s", code, m["result"])
	}
	if e.Code != code {
		h.t.Fatalf("error code %d (%s), want %d", e.Code, e.Message, code)
	}
	var d errData
	_ = json.Unmarshal(e.Data, &d)
	if d.Message == "" {
		d.Message = e.Message
	}
	return d
}

// descendants records every live descendant of the hub (children,
// grandchildren) and returns them.
func (h *faultHub) descendants() []int {
	pids := descendantsOf(h.cmd.Process.Pid)
	h.mu.Lock()
	for _, p := range pids {
		h.seen[p] = true
	}
	h.mu.Unlock()
	return pids
}

// descendantsOf walks /proc for the process tree under root.
func descendantsOf(root int) []int {
	ents, _ := os.ReadDir("/proc")
	parent := map[int]int{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) > 1 {
			ppid, _ := strconv.Atoi(f[1])
			parent[pid] = ppid
		}
	}
	var out []int
	for pid := range parent {
		for p, n := parent[pid], 0; p != 0 && n < 64; p, n = parent[p], n+1 {
			if p == root {
				out = append(out, pid)
				break
			}
		}
	}
	sort.Ints(out)
	return out
}

// marked lists live (non-zombie) processes whose environment holds runID.
func marked(runID string) []int {
	ents, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err == nil && bytes.Contains(b, []byte(runID)) && alive(pid) {
			out = append(out, pid)
		}
	}
	return out
}

func countFDs(pid int) int {
	ents, err := os.ReadDir(filepath.Join("/proc", strconv.Itoa(pid), "fd"))
	if err != nil {
		return -1
	}
	return len(ents)
}

// invariants says what assertInvariants may expect of one fault test.
type invariants struct {
	// Sign is the double the hub asked; nil when the test has none.
	Sign *faultSign
	// Logs are the fake upstreams' logs, by serverId, for I2.
	Logs map[string]upstreamLog
	// Bypass: the hub ran with --unsafe-bypass (I2 then allows forwarding
	// an unreachable-class call).
	Bypass bool
	// Audit is the number of audit records expected; -1 means one per
	// tools/call the client sent on an initialized session.
	Audit int
	// HubGone: the case ends with the hub exited (no ping, no EOF).
	HubGone bool
	// SkipFDs: the case legitimately changes the hub's fd count (e.g. a
	// restarted upstream still starting).
	SkipFDs bool
	// Pids are further processes (from the pid tool) that must be gone.
	Pids []int
}

// checkApproved is I2 over the upstreams' logs: every tools/call an
// upstream received was approved by sign for exactly those argument bytes,
// and each approval forwarded at most once. It returns a line per call
// that was not, and how many calls were forwarded.
func checkApproved(t *testing.T, sign *faultSign, logs map[string]upstreamLog) (unapproved []string, forwarded int) {
	t.Helper()
	budget := map[approval]int{}
	for _, a := range sign.approvals() {
		budget[a]++
	}
	for sid, log := range logs {
		for _, p := range log.toolCalls(t) {
			var c struct {
				Name      string          `json:"name"`
				Arguments json.RawMessage `json:"arguments"`
			}
			_ = json.Unmarshal([]byte(p), &c)
			a := approval{sid, c.Name, string(c.Arguments)}
			if budget[a] == 0 {
				unapproved = append(unapproved, fmt.Sprintf("I2: upstream %s received tools/call %s without an approval for those exact bytes (or more often than approved)", sid, p))
				continue
			}
			budget[a]--
			forwarded++
		}
	}
	return unapproved, forwarded
}

// assertInvariants checks invariants I1–I5 (docs/faults.md) and shuts the hub
// down:
//
//	I1 the hub still answers (ping) and exits 0 at stdin EOF;
//	I2 every tools/call an upstream received was approved by Sign for
//	   exactly those argument bytes (or bypassed, with Bypass);
//	I3 every request got exactly one response (zero or one if cancelled),
//	   no response for an id never sent, every stdout line is JSON;
//	I4 one audit record per tools/call attempt; the API key canary appears
//	   in no output (stdout, stderr, audit);
//	I5 the hub's fd count is back to baseline ± 5; after exit no descendant
//	   and no process carrying the run marker is alive (zombies included:
//	   a zombie left by the hub would be reaped by init only once the hub
//	   is gone).
//
// Goroutines of the hub binary are not observable from outside; they are
// covered by the package tests' leak checks.
func assertInvariants(t *testing.T, h *faultHub, inv invariants) {
	t.Helper()
	// I1 and I5 (fds), while the hub runs.
	if !inv.HubGone {
		ping := h.next()
		h.send(`{"jsonrpc":"2.0","id":` + ping + `,"method":"ping"}`)
		if m := h.await(ping); m["result"] == nil {
			t.Errorf("I1: ping answered %s", m["error"])
		}
		h.mu.Lock()
		base := h.baseFDs
		h.mu.Unlock()
		if base > 0 && !inv.SkipFDs {
			deadline := time.Now().Add(15 * time.Second)
			for n := countFDs(h.cmd.Process.Pid); n > base+5; n = countFDs(h.cmd.Process.Pid) {
				if time.Now().After(deadline) {
					t.Errorf("I5: hub has %d open fds, baseline %d", n, base)
					break
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		h.descendants()
		_ = h.stdin.Close()
	}
	select {
	case <-h.exited:
	case <-time.After(30 * time.Second):
		t.Errorf("I1/I5: hub did not exit within 30 s of stdin EOF")
		_ = h.cmd.Process.Kill()
		<-h.exited
	}
	if !inv.HubGone {
		if code := h.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("I1: hub exited with %d", code)
		}
	}
	// Wait for the reader to reach EOF so that every line is recorded.
	for {
		h.mu.Lock()
		eof, wake := h.eof, h.wake
		h.mu.Unlock()
		if eof {
			break
		}
		select {
		case <-wake:
		case <-time.After(10 * time.Second):
			t.Errorf("hub stdout not closed after exit (a child holds it?)")
			eof = true
		}
		if eof {
			break
		}
	}

	// I3.
	h.mu.Lock()
	got := map[string]int{}
	for _, l := range h.lines {
		var m map[string]json.RawMessage
		if err := json.Unmarshal(l, &m); err != nil {
			t.Errorf("I3: hub wrote a line that is not JSON: %.200q", l)
			continue
		}
		if m["method"] == nil && m["id"] != nil {
			got[string(m["id"])]++
		}
	}
	for id, n := range h.expect {
		want := n
		if h.maybe[id] && got[id] <= n {
			want = got[id]
		}
		if got[id] != want {
			t.Errorf("I3: id %s got %d responses, want %d", id, got[id], want)
		}
	}
	for id, n := range got {
		if _, ok := h.expect[id]; !ok {
			t.Errorf("I3: %d response(s) for id %s, which the client never sent", n, id)
		}
	}
	toolCalls := h.toolCalls
	seen := make([]int, 0, len(h.seen))
	for p := range h.seen {
		seen = append(seen, p)
	}
	stdout := bytes.Join(h.lines, []byte("\n"))
	h.mu.Unlock()

	// I2.
	if inv.Sign != nil && !inv.Bypass {
		unapproved, _ := checkApproved(t, inv.Sign, inv.Logs)
		for _, v := range unapproved {
			t.Error(v)
		}
	} else if inv.Sign == nil && !inv.Bypass {
		for sid, log := range inv.Logs {
			if calls := log.toolCalls(t); len(calls) > 0 {
				t.Errorf("I2: upstream %s received %d tools/call with no Sign to approve them", sid, len(calls))
			}
		}
	}

	// I4.
	audit, _ := os.ReadFile(h.audit)
	want := inv.Audit
	if want < 0 {
		want = toolCalls
	}
	if n := bytes.Count(audit, []byte("\n")); n != want {
		t.Errorf("I4: %d audit records, want %d:\n%s", n, want, audit)
	}
	for _, out := range []struct {
		name string
		b    []byte
	}{{"stdout", stdout}, {"stderr", []byte(h.stderr.String())}, {"audit", audit}} {
		if bytes.Contains(out.b, []byte(testKey)) || bytes.Contains(out.b, []byte("CANARY")) {
			t.Errorf("I4: the API key canary appears in the hub's %s", out.name)
		}
	}

	// I5: processes.
	pids := append(seen, inv.Pids...)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var left []int
		for _, p := range pids {
			if alive(p) {
				left = append(left, p)
			}
		}
		left = append(left, marked(h.runID)...)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("I5: processes left behind after the hub exited: %v", left)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
}
