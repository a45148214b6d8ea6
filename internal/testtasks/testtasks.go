// Package testtasks is a fake MCP server for tests of the tasks extension
// (io.modelcontextprotocol/tasks) of MCP 2026-07-28: a small hand-written
// stdio server (mcp-go has no tasks extension) that speaks only
// 2026-07-28. Tests run it as a child: their test binary re-executed with
// EnvMode set (see Main).
//
// Modes (EnvMode):
//
//	tasks   server/discover advertises the tasks extension, and a
//	        tools/call whose caller declared the extension is answered
//	        with a task
//	plain   no tasks extension: every call is answered at once
//
// Tools (each answers at once when no task is made):
//
//	slow     a task that completes on the third tasks/get with the text
//	         "slow done: " and the call's raw arguments
//	ask      a task that asks for input on the first tasks/get (an
//	         elicitation under the key "name") and completes with
//	         "hello " and the answer's content.name once tasks/update
//	         answered it
//	forever  a task that works until tasks/cancel
//	blocked  as slow (the tests' policy refuses it)
//
// Task ids are "task-1", "task-2", … in each process, so two processes
// hand out the same ids. Unknown task ids get -32602.
//
// A subscriptions/listen naming taskIds is acknowledged (with every id it
// names) and kept open; each change of a watched task's status is then
// sent on it as notifications/tasks with the task in full, tagged with the
// listen's id. A new listen replaces the one before.
//
// This package may import only the standard library; production code must
// not import it.
package testtasks

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"time"
)

// Environment of a child started with Main.
const (
	// EnvMode selects the mode; a test's init calls Main when it is set.
	EnvMode = "SIGIL_HUB_TEST_TASKS"
	// EnvLog is a file that gets every line the child reads on stdin.
	EnvLog = "TESTTASKS_LOG"
)

const (
	version   = "2026-07-28"
	extension = "io.modelcontextprotocol/tasks"
)

type request struct {
	ID     json.RawMessage `json:"id"`
	Method string          `json:"method"`
	Params struct {
		Notifications struct {
			TaskIDs []string `json:"taskIds"`
		} `json:"notifications"`
		Name           string                     `json:"name"`
		Arguments      json.RawMessage            `json:"arguments"`
		TaskID         string                     `json:"taskId"`
		InputResponses map[string]json.RawMessage `json:"inputResponses"`
		Meta           map[string]json.RawMessage `json:"_meta"`
	} `json:"params"`
}

type task struct {
	id, tool, status string
	args             json.RawMessage
	polls            int
	created          string
	answer           string // ask: the name given
	result           string
}

// Main serves the mode EnvMode names on stdin and stdout, and exits.
func Main() {
	mode := os.Getenv(EnvMode)
	if mode != "tasks" && mode != "plain" {
		fmt.Fprintf(os.Stderr, "testtasks: unknown mode %q\n", mode)
		os.Exit(1)
	}
	var in io.Reader = os.Stdin
	if p := os.Getenv(EnvLog); p != "" {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		if err != nil {
			fmt.Fprintln(os.Stderr, "testtasks:", err)
			os.Exit(1)
		}
		in = io.TeeReader(os.Stdin, f)
	}
	s := &server{mode: mode, tasks: map[string]*task{}, out: bufio.NewWriter(os.Stdout)}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var r request
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil || r.ID == nil {
			continue // a notification (or not JSON): nothing to answer
		}
		s.serve(&r)
		_ = s.out.Flush()
	}
	os.Exit(0)
}

type server struct {
	mode  string
	tasks map[string]*task
	n     int
	out   *bufio.Writer
	// the open listen: its id and the tasks it watches
	listenID json.RawMessage
	watched  []string
}

// notify writes one notification.
func (s *server) notify(method string, params map[string]any) {
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "method": method, "params": params})
	s.out.Write(append(b, '\n'))
}

// changed tells the listen, if it watches t, t's new state.
func (s *server) changed(t *task) {
	if s.listenID == nil || !slices.Contains(s.watched, t.id) {
		return
	}
	m := s.view(t)
	m["_meta"] = map[string]any{"io.modelcontextprotocol/subscriptionId": s.listenID}
	s.notify("notifications/tasks", m)
}

func (s *server) reply(id json.RawMessage, result any) {
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "result": result})
	s.out.Write(append(b, '\n'))
}

func (s *server) fail(id json.RawMessage, code int, msg string) {
	b, _ := json.Marshal(map[string]any{"jsonrpc": "2.0", "id": id, "error": map[string]any{"code": code, "message": msg}})
	s.out.Write(append(b, '\n'))
}

// callerTakesTasks reports whether the request's client capabilities
// declare the extension.
func callerTakesTasks(meta map[string]json.RawMessage) bool {
	var caps struct {
		Extensions map[string]json.RawMessage `json:"extensions"`
	}
	_ = json.Unmarshal(meta["io.modelcontextprotocol/clientCapabilities"], &caps)
	return caps.Extensions[extension] != nil
}

func text(s string) map[string]any {
	return map[string]any{"resultType": "complete", "content": []any{map[string]any{"type": "text", "text": s}}}
}

func (s *server) serve(r *request) {
	var v string
	_ = json.Unmarshal(r.Params.Meta["io.modelcontextprotocol/protocolVersion"], &v)
	if v != version {
		s.fail(r.ID, -32600, "this server speaks only MCP "+version)
		return
	}
	switch r.Method {
	case "subscriptions/listen":
		s.listenID, s.watched = r.ID, r.Params.Notifications.TaskIDs
		s.notify("notifications/subscriptions/acknowledged", map[string]any{
			"notifications": map[string]any{"taskIds": s.watched},
			"_meta":         map[string]any{"io.modelcontextprotocol/subscriptionId": r.ID}})
	case "server/discover":
		caps := map[string]any{"tools": map[string]any{}}
		if s.mode == "tasks" {
			caps["extensions"] = map[string]any{extension: map[string]any{}}
		}
		s.reply(r.ID, map[string]any{"resultType": "complete", "supportedVersions": []string{version}, "capabilities": caps,
			"_meta": map[string]any{"io.modelcontextprotocol/serverInfo": map[string]any{"name": "testtasks", "version": "1"}}})
	case "tools/list":
		var tools []any
		for _, n := range []string{"slow", "ask", "forever", "blocked"} {
			tools = append(tools, map[string]any{"name": n, "inputSchema": map[string]any{"type": "object"}})
		}
		s.reply(r.ID, map[string]any{"resultType": "complete", "tools": tools})
	case "tools/call":
		switch r.Params.Name {
		case "slow", "ask", "forever", "blocked":
		default:
			s.fail(r.ID, -32602, "unknown tool "+r.Params.Name)
			return
		}
		if s.mode != "tasks" || !callerTakesTasks(r.Params.Meta) {
			s.reply(r.ID, text(r.Params.Name+" done at once: "+string(r.Params.Arguments)))
			return
		}
		s.n++
		t := &task{id: fmt.Sprintf("task-%d", s.n), tool: r.Params.Name, status: "working", args: r.Params.Arguments,
			created: time.Now().UTC().Format(time.RFC3339)}
		s.tasks[t.id] = t
		m := s.view(t)
		m["resultType"] = "task"
		s.reply(r.ID, m)
	case "tasks/get", "tasks/update", "tasks/cancel":
		t, ok := s.tasks[r.Params.TaskID]
		if !ok {
			s.fail(r.ID, -32602, "unknown task "+r.Params.TaskID)
			return
		}
		switch r.Method {
		case "tasks/get":
			before := t.status
			s.advance(t)
			if t.status != before {
				s.changed(t)
			}
			m := s.view(t)
			m["resultType"] = "complete"
			s.reply(r.ID, m)
		case "tasks/update":
			if raw, ok := r.Params.InputResponses["name"]; ok && t.tool == "ask" && t.status == "input_required" {
				var a struct {
					Content struct {
						Name string `json:"name"`
					} `json:"content"`
				}
				_ = json.Unmarshal(raw, &a)
				t.answer = a.Content.Name
				t.status = "working"
				s.changed(t)
			}
			s.reply(r.ID, map[string]any{"resultType": "complete"})
		case "tasks/cancel":
			if t.status == "working" || t.status == "input_required" {
				t.status = "cancelled"
				s.changed(t)
			}
			s.reply(r.ID, map[string]any{"resultType": "complete"})
		}
	default:
		s.fail(r.ID, -32601, "method not found: "+r.Method)
	}
}

// advance moves a task on, one tasks/get at a time.
func (s *server) advance(t *task) {
	if t.status != "working" && t.status != "input_required" {
		return
	}
	t.polls++
	switch t.tool {
	case "slow", "blocked":
		if t.polls >= 3 {
			t.status, t.result = "completed", "slow done: "+string(t.args)
		}
	case "ask":
		switch {
		case t.answer != "":
			t.status, t.result = "completed", "hello "+t.answer
		case t.polls == 1:
			t.status = "input_required"
		}
	}
}

// view is the task as tasks/get shows it.
func (s *server) view(t *task) map[string]any {
	m := map[string]any{"taskId": t.id, "status": t.status, "createdAt": t.created, "lastUpdatedAt": t.created,
		"ttlMs": 60000, "pollIntervalMs": 10}
	switch t.status {
	case "completed":
		r := text(t.result)
		delete(r, "resultType")
		m["result"] = r
	case "input_required":
		m["inputRequests"] = map[string]any{"name": map[string]any{"method": "elicitation/create", "params": map[string]any{
			"mode": "form", "message": "Your name?",
			"requestedSchema": map[string]any{"type": "object", "properties": map[string]any{"name": map[string]any{"type": "string"}}},
		}}}
	}
	if t.status == "cancelled" {
		m["statusMessage"] = "cancelled by the client"
	}
	return m
}
