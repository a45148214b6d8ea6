package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sigilcore/sigil-hub/internal/testtasks"
)

// An upstream that implements the tasks extension is this test binary
// re-executed with testtasks.EnvMode set (init runs before TestMain).
func init() {
	if os.Getenv(testtasks.EnvMode) != "" {
		testtasks.Main()
	}
}

// tasksPolicy allows both task upstreams' tools but blocked.
const tasksPolicy = `version: 2.0.0

## mcp
allowed_tools: jobs.*, jobs2.*
blocked_tools: jobs.blocked
`

// tasksMeta is the _meta of a 2026-07-28 request whose client opted in to
// the tasks extension; plainMeta's did not.
const (
	tasksMeta = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"elicitation":{},"extensions":{"io.modelcontextprotocol/tasks":{}}}}`
	// noElicitMeta opts in to tasks but cannot answer an elicitation.
	noElicitMeta = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"extensions":{"io.modelcontextprotocol/tasks":{}}}}`
	plainMeta    = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}`
)

// tasksConfig is one testtasks upstream per name, each in mode with its
// own log.
func tasksConfig(t *testing.T, dir, mode string, names ...string) string {
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "\n[servers.%s]\ncommand = %q\nserver_id = %q\nenv = { %s = %q, %s = %q }\n",
			n, selfExe(t), n, testtasks.EnvMode, mode, testtasks.EnvLog, filepath.Join(dir, n+".log"))
	}
	return writeConfig(t, b.String())
}

// taskView is what the tests read of a task result.
type taskView struct {
	ResultType    string                     `json:"resultType"`
	TaskID        string                     `json:"taskId"`
	Status        string                     `json:"status"`
	InputRequests map[string]json.RawMessage `json:"inputRequests"`
	Result        struct {
		Content []struct {
			Text string `json:"text"`
		} `json:"content"`
	} `json:"result"`
}

func readTask(t *testing.T, m map[string]json.RawMessage) taskView {
	t.Helper()
	var v taskView
	if m["error"] != nil || json.Unmarshal(m["result"], &v) != nil {
		t.Fatalf("want a task, got %s %s", m["result"], m["error"])
	}
	return v
}

// upstreamReceived returns the lines an upstream's log holds with method.
func upstreamReceived(t *testing.T, log, method string) []string {
	t.Helper()
	b, _ := os.ReadFile(log)
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		if strings.Contains(line, `"method":"`+method+`"`) {
			out = append(out, line)
		}
	}
	return out
}

// TestTasksThroughHub: a 2026-07-28 stdio client that opted in to the
// tasks extension calls tools of two upstreams that answer with tasks (and
// hand out the same task ids). The hub advertises the extension, each call
// is authorized first (a blocked tool never creates a task upstream), the
// client gets task handles of the hub's own, and tasks/get, tasks/update
// and tasks/cancel reach the upstream that created each task, with its own
// id: polled to completion, answered (only the answer the upstream asked
// for is forwarded), cancelled. A client that did not opt in gets the
// tool's result, and the upstream's own ids mean nothing to the hub.
func TestTasksThroughHub(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rc := startRawUninitialized(t, nil, "--config", tasksConfig(t, dir, "tasks", "jobs", "jobs2"), "--policy", writePolicy(t, dir, tasksPolicy))
	n := 0
	do := func(method, params string) map[string]json.RawMessage {
		t.Helper()
		n++
		rc.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":%q,"params":%s}`, n, method, params))
		return rc.await(fmt.Sprint(n))
	}
	call := func(tool, args, meta string) map[string]json.RawMessage {
		return do("tools/call", `{"name":"`+tool+`","arguments":`+args+`,`+meta+`}`)
	}
	taskReq := func(method, id, extra string) map[string]json.RawMessage {
		return do(method, `{"taskId":"`+id+`",`+extra+tasksMeta+`}`)
	}

	// The list waits for the upstreams; then discover knows what they have.
	if m := do("tools/list", `{`+tasksMeta+`}`); !strings.Contains(string(m["result"]), "jobs__slow") {
		t.Fatalf("tools/list: %s %s", m["result"], m["error"])
	}
	if m := do("server/discover", `{`+tasksMeta+`}`); !strings.Contains(string(m["result"]), `"extensions":{"io.modelcontextprotocol/tasks":{}}`) {
		t.Errorf("server/discover does not advertise the tasks extension: %s %s", m["result"], m["error"])
	}

	a := readTask(t, call("jobs__slow", `{"n":1}`, tasksMeta))
	b := readTask(t, call("jobs2__slow", `{"n":2}`, tasksMeta))
	if a.ResultType != "task" || a.Status != "working" || !strings.HasPrefix(a.TaskID, "sigil-task-") || a.TaskID == b.TaskID {
		t.Fatalf("task handles %+v and %+v: want the hub's own, distinct ids", a, b)
	}

	if m := call("jobs__blocked", `{}`, tasksMeta); !strings.Contains(string(m["error"]), "SIGIL_POLICY_VIOLATION") {
		t.Errorf("a blocked tool: %s %s, want the policy's refusal", m["result"], m["error"])
	}
	if got := upstreamReceived(t, filepath.Join(dir, "jobs.log"), "tools/call"); len(got) != 1 || strings.Contains(got[0], "blocked") {
		t.Errorf("jobs received %d tools/call, want only the allowed one: %v", len(got), got)
	}

	// Polled to completion, each by the upstream that created it.
	for _, tc := range []struct {
		v    taskView
		want string
	}{{a, `slow done: {"n":1}`}, {b, `slow done: {"n":2}`}} {
		var v taskView
		for i := 0; i < 5 && v.Status != "completed"; i++ {
			v = readTask(t, taskReq("tasks/get", tc.v.TaskID, ""))
			if v.TaskID != tc.v.TaskID || v.ResultType != "complete" {
				t.Fatalf("tasks/get %s answered %+v", tc.v.TaskID, v)
			}
		}
		if v.Status != "completed" || len(v.Result.Content) != 1 || v.Result.Content[0].Text != tc.want {
			t.Errorf("task %s: %+v, want completed with %q", tc.v.TaskID, v, tc.want)
		}
	}
	for _, up := range []string{"jobs", "jobs2"} {
		gets := upstreamReceived(t, filepath.Join(dir, up+".log"), "tasks/get")
		if len(gets) != 3 || !strings.Contains(gets[0], `"taskId":"task-1"`) || strings.Contains(gets[0], "sigil-task-") {
			t.Errorf("%s received %d tasks/get, want 3 for its own task-1: %v", up, len(gets), gets)
		}
	}

	// Input the task asks for, answered through tasks/update.
	ask := readTask(t, call("jobs__ask", `{}`, tasksMeta))
	// A client that did not declare elicitation is not shown the request.
	if m := do("tasks/get", `{"taskId":"`+ask.TaskID+`",`+noElicitMeta+`}`); !strings.Contains(string(m["error"]), "did not declare") {
		t.Errorf("tasks/get asking an elicitation of a client without it: %s %s", m["result"], m["error"])
	}
	if v := readTask(t, taskReq("tasks/get", ask.TaskID, "")); v.Status != "input_required" || v.InputRequests["name"] == nil {
		t.Fatalf("ask: %+v, want input_required asking for name", v)
	}
	if m := taskReq("tasks/update", ask.TaskID, `"inputResponses":{"name":{"action":"accept","content":{"name":"Ada"}},"other":{"action":"accept","content":{}}},`); m["error"] != nil {
		t.Fatalf("tasks/update: %s", m["error"])
	}
	if up := upstreamReceived(t, filepath.Join(dir, "jobs.log"), "tasks/update"); len(up) != 1 || !strings.Contains(up[0], "Ada") || strings.Contains(up[0], "other") {
		t.Errorf("jobs received tasks/update %v, want the answer it asked for alone", up)
	}
	if v := readTask(t, taskReq("tasks/get", ask.TaskID, "")); v.Status != "completed" || v.Result.Content[0].Text != "hello Ada" {
		t.Errorf("ask after the answer: %+v", v)
	}

	// Cancelled.
	forever := readTask(t, call("jobs2__forever", `{}`, tasksMeta))
	if m := taskReq("tasks/cancel", forever.TaskID, ""); m["error"] != nil {
		t.Fatalf("tasks/cancel: %s", m["error"])
	}
	if v := readTask(t, taskReq("tasks/get", forever.TaskID, "")); v.Status != "cancelled" {
		t.Errorf("after tasks/cancel: %+v", v)
	}

	// No opt-in, no task; the upstream's own ids are unknown to the hub.
	if m := call("jobs__slow", `{"n":3}`, plainMeta); !strings.Contains(string(m["result"]), "done at once") {
		t.Errorf("a call without the extension: %s %s, want the tool's result", m["result"], m["error"])
	}
	if m := taskReq("tasks/get", "task-1", ""); !strings.Contains(string(m["error"]), `"code":-32602`) {
		t.Errorf("tasks/get of an upstream's own id: %s %s, want -32602", m["result"], m["error"])
	}
}

// TestTasksCapabilityOnlyWhenAnUpstreamHasIt: with no upstream that
// advertises the tasks extension, server/discover does not either, and a
// client that opted in gets the tool's result.
func TestTasksCapabilityOnlyWhenAnUpstreamHasIt(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rc := startRawUninitialized(t, nil, "--config", tasksConfig(t, dir, "plain", "jobs"), "--policy", writePolicy(t, dir, tasksPolicy))
	rc.send(`{"jsonrpc":"2.0","id":1,"method":"tools/list","params":{` + tasksMeta + `}}`)
	if m := rc.await("1"); !strings.Contains(string(m["result"]), "jobs__slow") {
		t.Fatalf("tools/list: %s %s", m["result"], m["error"])
	}
	rc.send(`{"jsonrpc":"2.0","id":2,"method":"server/discover","params":{` + tasksMeta + `}}`)
	if m := rc.await("2"); m["result"] == nil || strings.Contains(string(m["result"]), "io.modelcontextprotocol/tasks") {
		t.Errorf("server/discover: %s %s, want no tasks extension", m["result"], m["error"])
	}
	rc.send(`{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"jobs__slow","arguments":{},` + tasksMeta + `}}`)
	if m := rc.await("3"); !strings.Contains(string(m["result"]), "done at once") {
		t.Errorf("tools/call: %s %s, want the tool's result", m["result"], m["error"])
	}
	if got := upstreamReceived(t, filepath.Join(dir, "jobs.log"), "tools/call"); len(got) != 1 || strings.Contains(got[0], "io.modelcontextprotocol/tasks") {
		t.Errorf("the upstream was told of the extension it does not have: %v", got)
	}
}

// TestTasksBelongToTheirCreatorOverHTTP: over Streamable HTTP a task is
// its token holder's: another token holder polling, answering or
// cancelling it is answered as if it did not exist (and the upstream is
// not asked), while its creator polls it to completion. tasks/get names
// the task in Mcp-Name.
func TestTasksBelongToTheirCreatorOverHTTP(t *testing.T) {
	t.Parallel()
	const aliceTok, bobTok = "alice-token-0123456789abcdef0123456789", "bob-token-0123456789abcdef0123456789abc"
	dir := t.TempDir()
	url, stderr := startHTTPHub(t, []string{"SIGIL_HUB_TOKEN_ALICE=" + aliceTok, "SIGIL_HUB_TOKEN_BOB=" + bobTok},
		"--config", tasksConfig(t, dir, "tasks", "jobs"), "--policy", writePolicy(t, dir, tasksPolicy))
	post := func(tok, method, name, params string) (int, map[string]json.RawMessage) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"`+method+`","params":`+params+`}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		req.Header.Set("MCP-Protocol-Version", "2026-07-28")
		req.Header.Set("Mcp-Method", method)
		if name != "" {
			req.Header.Set("Mcp-Name", name)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		var m map[string]json.RawMessage
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("%s: %d %q\nstderr:\n%s", method, resp.StatusCode, body, stderr.String())
		}
		return resp.StatusCode, m
	}
	if _, m := post(aliceTok, "tools/list", "", `{`+tasksMeta+`}`); !strings.Contains(string(m["result"]), "jobs__slow") {
		t.Fatalf("tools/list: %s %s", m["result"], m["error"])
	}
	_, m := post(aliceTok, "tools/call", "jobs__slow", `{"name":"jobs__slow","arguments":{"who":"alice"},`+tasksMeta+`}`)
	task := readTask(t, m)
	if task.ResultType != "task" {
		t.Fatalf("tools/call: %+v", task)
	}
	params := `{"taskId":"` + task.TaskID + `",` + tasksMeta + `}`
	for _, method := range []string{"tasks/get", "tasks/update", "tasks/cancel"} {
		p := params
		if method == "tasks/update" {
			p = `{"taskId":"` + task.TaskID + `","inputResponses":{},` + tasksMeta + `}`
		}
		if _, m := post(bobTok, method, task.TaskID, p); !strings.Contains(string(m["error"]), "unknown task") {
			t.Errorf("bob's %s of alice's task: %s %s, want unknown task", method, m["result"], m["error"])
		}
	}
	// Nor can bob listen to its status: his listen is acknowledged without
	// it, and the upstream is never asked to watch it.
	lctx, lcancel := context.WithTimeout(t.Context(), 30*time.Second)
	lreq, _ := http.NewRequestWithContext(lctx, http.MethodPost, url, strings.NewReader(`{"jsonrpc":"2.0","id":"L","method":"subscriptions/listen","params":{"notifications":{"taskIds":["`+task.TaskID+`"]},`+tasksMeta+`}}`))
	for k, v := range map[string]string{"Content-Type": "application/json", "Accept": "application/json, text/event-stream",
		"Authorization": "Bearer " + bobTok, "MCP-Protocol-Version": "2026-07-28", "Mcp-Method": "subscriptions/listen"} {
		lreq.Header.Set(k, v)
	}
	lresp, err := http.DefaultClient.Do(lreq)
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(lresp.Body)
	ack := ""
	for ack == "" && sc.Scan() {
		if strings.Contains(sc.Text(), "notifications/subscriptions/acknowledged") {
			ack = sc.Text()
		}
	}
	lcancel()
	lresp.Body.Close()
	if ack == "" || strings.Contains(ack, task.TaskID) {
		t.Errorf("bob's listen to alice's task: acknowledged %q, want an acknowledgement without it", ack)
	}
	for _, method := range []string{"tasks/get", "tasks/update", "tasks/cancel", "subscriptions/listen"} {
		if got := upstreamReceived(t, filepath.Join(dir, "jobs.log"), method); len(got) != 0 {
			t.Errorf("bob's %s reached the upstream: %v", method, got)
		}
	}
	if status, m := post(aliceTok, "tasks/get", "another", params); status != http.StatusBadRequest || !strings.Contains(string(m["error"]), "-32020") {
		t.Errorf("tasks/get with a different Mcp-Name: %d %s, want 400 -32020", status, m["error"])
	}
	var v taskView
	for i := 0; i < 5 && v.Status != "completed"; i++ {
		_, m := post(aliceTok, "tasks/get", task.TaskID, params)
		v = readTask(t, m)
	}
	if v.Status != "completed" || !strings.Contains(v.Result.Content[0].Text, "alice") {
		t.Errorf("alice's task: %+v", v)
	}
}

// TestTaskStatusNotificationsThroughHub: a 2026-07-28 client's listen that
// names its tasks is acknowledged for those that are its own; the hub has
// the upstream watch each (by the upstream's own id) and passes each status
// change on with the hub's id, tagged with the client's listen. A listen
// naming tasks without declaring the extension is -32021.
func TestTaskStatusNotificationsThroughHub(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	rc := startRawUninitialized(t, nil, "--config", tasksConfig(t, dir, "tasks", "jobs"), "--policy", writePolicy(t, dir, tasksPolicy))
	// next returns the next message that match accepts; others are dropped.
	next := func(what string, match func(m map[string]json.RawMessage) bool) map[string]json.RawMessage {
		t.Helper()
		timeout := time.After(30 * time.Second)
		for {
			select {
			case line, ok := <-rc.lines:
				if !ok {
					t.Fatalf("hub closed stdout waiting for %s\nstderr:\n%s", what, rc.stderr.String())
				}
				var m map[string]json.RawMessage
				if json.Unmarshal(line, &m) == nil && match(m) {
					return m
				}
			case <-timeout:
				t.Fatalf("no %s\nstderr:\n%s", what, rc.stderr.String())
			}
		}
	}
	method := func(name string) func(map[string]json.RawMessage) bool {
		return func(m map[string]json.RawMessage) bool { return string(m["method"]) == `"`+name+`"` }
	}

	rc.send(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"jobs__forever","arguments":{},` + tasksMeta + `}}`)
	task := readTask(t, rc.await("1"))
	rc.send(`{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"jobs__slow","arguments":{},` + tasksMeta + `}}`)
	other := readTask(t, rc.await("2"))

	// Without the extension declared, a listen for tasks is refused.
	rc.send(`{"jsonrpc":"2.0","id":3,"method":"subscriptions/listen","params":{"notifications":{"taskIds":["` + task.TaskID + `"]},` + plainMeta + `}}`)
	if m := rc.await("3"); !strings.Contains(string(m["error"]), "-32021") {
		t.Errorf("listen for tasks without the extension: %s %s, want -32021", m["result"], m["error"])
	}

	// The upstream's own id is no task of the hub's: not honoured.
	rc.send(`{"jsonrpc":"2.0","id":"L","method":"subscriptions/listen","params":{"notifications":{"taskIds":["` + task.TaskID + `","task-2"]},` + tasksMeta + `}}`)
	ack := next("the listen's acknowledgement", method("notifications/subscriptions/acknowledged"))
	var a struct {
		Notifications struct {
			TaskIDs []string `json:"taskIds"`
		} `json:"notifications"`
		Meta map[string]json.RawMessage `json:"_meta"`
	}
	if err := json.Unmarshal(ack["params"], &a); err != nil || !slices.Equal(a.Notifications.TaskIDs, []string{task.TaskID}) || string(a.Meta["io.modelcontextprotocol/subscriptionId"]) != `"L"` {
		t.Fatalf("acknowledgement %s (%v), want taskIds [%s] for listen L", ack["params"], err, task.TaskID)
	}

	// A change of the watched task reaches the listen with the hub's id; the
	// other task's does not.
	rc.send(`{"jsonrpc":"2.0","id":4,"method":"tasks/get","params":{"taskId":"` + other.TaskID + `",` + tasksMeta + `}}`)
	rc.send(`{"jsonrpc":"2.0","id":5,"method":"tasks/cancel","params":{"taskId":"` + task.TaskID + `",` + tasksMeta + `}}`)
	note := next("notifications/tasks", method("notifications/tasks"))
	var n struct {
		TaskID string                     `json:"taskId"`
		Status string                     `json:"status"`
		Meta   map[string]json.RawMessage `json:"_meta"`
	}
	if err := json.Unmarshal(note["params"], &n); err != nil || n.TaskID != task.TaskID || n.Status != "cancelled" || string(n.Meta["io.modelcontextprotocol/subscriptionId"]) != `"L"` {
		t.Errorf("notifications/tasks %s (%v), want task %s cancelled, tagged with listen L", note["params"], err, task.TaskID)
	}
	if log := strings.Join(upstreamReceived(t, filepath.Join(dir, "jobs.log"), "subscriptions/listen"), "\n"); !strings.Contains(log, `"taskIds":["task-1"]`) || strings.Contains(log, "sigil-task-") {
		t.Errorf("the upstream's listens %s: want its own task-1 watched, never the hub's id", log)
	}
}
