package hub

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/sigilcore/sigil-hub/front"
	"github.com/sigilcore/sigil-hub/internal/strictjson"
	"github.com/sigilcore/sigil-hub/upstreams"
)

// The tasks extension of MCP 2026-07-28 (io.modelcontextprotocol/tasks,
// docs/protocol.md#mcp-revisions). A client opts in per request, in its
// capabilities' extensions; an upstream that advertises the extension may
// then answer a tools/call with resultType "task" and a task handle in
// place of the tool's result, and the client polls tasks/get, answers
// tasks/update and stops tasks/cancel by the handle's taskId.
//
// The call that creates a task is a tools/call like any other: read,
// resolved, authorized and forwarded by the pipeline (pipeline.go), so a
// call the authorizer refuses never creates a task. The hub hands the
// client an id of its own in place of the upstream's and keeps what routes
// it (task): tasks/get, tasks/update and tasks/cancel go only to the
// upstream that created the task, and only for its caller (anyone else is
// answered as if the task did not exist).

// tasksExtension names the extension in capabilities.
const tasksExtension = "io.modelcontextprotocol/tasks"

const (
	// maxTaskLife bounds how long the hub keeps a task: an upstream's
	// ttlMs when it is shorter, this when it is longer or null (no limit).
	maxTaskLife = 24 * time.Hour
	// maxTasks bounds the tasks the hub keeps at once; a call that
	// creates one more is answered with an error (the upstream's task is
	// cancelled).
	maxTasks = 10000
)

// taskStatuses are the statuses a task may report.
var taskStatuses = []string{"working", "input_required", "completed", "failed", "cancelled"}

// task is what the hub keeps of one task an upstream created.
type task struct {
	upstream  string // the upstream that created it
	upID      string // its taskId there
	exposed   string // the exposed tool whose call created it
	principal string // who called (principal)
	created   time.Time
	expires   time.Time
	// keys are the input requests outstanding at the last tasks/get: the
	// only inputResponses tasks/update forwards.
	keys []string
}

// taskTable is the hub's tasks by the id it handed out. The zero value is
// ready.
type taskTable struct {
	mu  sync.Mutex
	all map[string]*task
}

// add keeps t under a new id and returns the id; false when the table is
// full of live tasks.
func (tt *taskTable) add(t *task, now time.Time) (string, bool) {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	if tt.all == nil {
		tt.all = make(map[string]*task)
	}
	if len(tt.all) >= maxTasks {
		maps.DeleteFunc(tt.all, func(_ string, old *task) bool { return now.After(old.expires) })
		if len(tt.all) >= maxTasks {
			return "", false
		}
	}
	id := "sigil-task-" + newCallID() + newCallID()
	tt.all[id] = t
	return id, true
}

// get returns a copy of the task id names if principal created it and it
// has not expired.
func (tt *taskTable) get(id, principal string, now time.Time) (task, bool) {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	t, ok := tt.all[id]
	if !ok || t.principal != principal {
		return task{}, false
	}
	if now.After(t.expires) {
		delete(tt.all, id)
		return task{}, false
	}
	return *t, true
}

// byUpstream finds the task an upstream calls upID, with the hub's id.
func (tt *taskTable) byUpstream(upstream, upID string, now time.Time) (string, task, bool) {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	for id, t := range tt.all {
		if t.upstream == upstream && t.upID == upID && !now.After(t.expires) {
			return id, *t, true
		}
	}
	return "", task{}, false
}

// set updates what a tasks/get told of task id: its outstanding input
// requests and its ttlMs (which may change over the task's life).
func (tt *taskTable) set(id string, keys []string, ttl json.RawMessage) {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	if t, ok := tt.all[id]; ok {
		t.keys, t.expires = keys, taskExpiry(ttl, t.created)
	}
}

// taskExpiry is when the hub forgets a task created at created whose
// ttlMs (counted from creation) is raw; null or absent: no limit of the
// upstream's own.
func taskExpiry(raw json.RawMessage, created time.Time) time.Time {
	var ms *int64
	if len(raw) > 0 && json.Unmarshal(raw, &ms) == nil && ms != nil && *ms >= 0 && time.Duration(*ms) < maxTaskLife/time.Millisecond {
		return created.Add(time.Duration(*ms) * time.Millisecond)
	}
	return created.Add(maxTaskLife)
}

// hasTasks reports whether capabilities (a client's or a server's)
// declare the tasks extension.
func hasTasks(caps json.RawMessage) bool {
	all, _ := strictjson.Members(caps) // nil when not an object
	ext, _ := strictjson.Members(all["extensions"])
	v := ext[tasksExtension]
	return len(v) > 0 && v[0] == '{'
}

// clientTakesTasks reports whether a request's client opted in to the
// tasks extension (a 2026-07-28 request only: a 2025 session's tasks are
// another, earlier design the hub does not carry).
func clientTakesTasks(c *front.ClientContext) bool {
	return c != nil && c.Modern && hasTasks(c.Capabilities)
}

// isTaskResult reports whether an upstream's result is a task handle.
func isTaskResult(result json.RawMessage) bool {
	typ, _, _ := memberString(result, "resultType")
	return typ == "task"
}

// taskHandle is what the hub reads of a task an upstream reports.
type taskHandle struct {
	TaskID string          `json:"taskId"`
	Status string          `json:"status"`
	TTL    json.RawMessage `json:"ttlMs"`
	// InputRequests are the input requests outstanding (status
	// input_required).
	InputRequests map[string]json.RawMessage `json:"inputRequests"`
}

func readTaskHandle(result json.RawMessage) (taskHandle, error) {
	var h taskHandle
	if err := json.Unmarshal(result, &h); err != nil {
		return h, fmt.Errorf("a task that cannot be read: %w", err)
	}
	if h.TaskID == "" {
		return h, errors.New("a task without a taskId")
	}
	if !slices.Contains(taskStatuses, h.Status) {
		return h, fmt.Errorf("a task with status %q", h.Status)
	}
	return h, nil
}

// taskCreated answers a tools/call the upstream answered with a task: the
// handle goes to the client with the hub's id in place of the upstream's,
// after the hub kept what routes the task's later requests.
func (s *session) taskCreated(ctx context.Context, r *toolCallRun, result json.RawMessage) (json.RawMessage, error) {
	if !r.tasks {
		return nil, upstreamError(r.u, r.call.name, fmt.Errorf("%w: a task handle (resultType \"task\") for a call whose client did not opt in to the tasks extension", upstreams.ErrInvalidResponse), ctx)
	}
	th, err := readTaskHandle(result)
	if err != nil {
		return nil, upstreamError(r.u, r.call.name, fmt.Errorf("%w: %v", upstreams.ErrInvalidResponse, err), ctx)
	}
	now := time.Now()
	id, ok := s.h.tasks.add(&task{upstream: r.u.name, upID: th.TaskID, exposed: r.call.name, principal: principal(s.fs), created: now, expires: taskExpiry(th.TTL, now)}, now)
	if !ok {
		// Nobody could reach the upstream's task: it is cancelled.
		params, _ := taskParams(th.TaskID, strictjson.Valid{})
		_, _ = r.u.conn.Call(ctx, "tasks/cancel", params)
		return nil, front.Errorf(front.CodeInternal, "tool %q: sigil-hub keeps %d tasks at most and all are in use; try again when some have ended", r.call.name, maxTasks)
	}
	s.h.log.Info("task created", "event", "task_created", "task_id", id, "exposed_tool", r.call.name, "upstream", r.u.name, "server_name", r.u.serverName)
	return withTaskID(result, id)
}

// taskParams are the params of a tasks/* request to the upstream: its own
// taskId and, for tasks/update, the answers (nil: none).
func taskParams(upID string, responses strictjson.Valid) (json.RawMessage, error) {
	var o strictjson.ObjectBuilder
	o.Start(nil)
	o.String("taskId", upID)
	if responses.Bytes() != nil {
		o.Value("inputResponses", responses)
	}
	v, err := o.Finish()
	return v.Bytes(), err
}

// taskRequest serves tasks/get, tasks/update and tasks/cancel: to the
// upstream that created the task, for the caller that created it.
func (s *session) taskRequest(ctx context.Context, req *front.Request) (json.RawMessage, error) {
	h := s.h
	raw, _ := req.ParamsValid.Member("taskId")
	id, ok := strictjson.DecodeString(raw.Bytes())
	if !ok || id == "" {
		return nil, front.Errorf(front.CodeInvalidParams, "invalid %s params: taskId must be the task's id, a non-empty string", req.Method)
	}
	t, u, err := h.taskFor(s, id)
	if err != nil {
		return nil, front.Errorf(front.CodeInvalidParams, "%v", err)
	}
	var responses strictjson.Valid
	if req.Method == "tasks/update" {
		all, ok := req.ParamsValid.Member("inputResponses")
		if !ok || !all.IsObject() {
			return nil, front.Errorf(front.CodeInvalidParams, "invalid tasks/update params: inputResponses must be an object")
		}
		// Only answers to requests the upstream made go to it.
		if responses, ok = askedResponses(all, t.keys); !ok {
			responses = emptyObject
		}
	}
	params, err := taskParams(t.upID, responses)
	if err != nil {
		return nil, front.Errorf(front.CodeInternal, "internal error: %v", err)
	}
	res, err := s.forwardParams(ctx, u, req.Method, params, t.exposed, true)
	if err != nil || req.Method != "tasks/get" {
		return res, err
	}
	th, err := readTaskHandle(res)
	if err == nil && th.TaskID != t.upID {
		err = fmt.Errorf("task %q answered for task %q", th.TaskID, t.upID)
	}
	if err != nil {
		return nil, upstreamError(u, t.exposed, fmt.Errorf("%w: %v", upstreams.ErrInvalidResponse, err), ctx)
	}
	return s.clientTask(ctx, u, t, id, th, res)
}

// clientTask is an upstream's task t (a tasks/get result, or the params
// of a notifications/tasks) as the client that created it sees it: its
// input requests only if the client declared it can answer them (they are
// kept for tasks/update), and the hub's id in place of the upstream's.
func (s *session) clientTask(ctx context.Context, u *upstream, t task, id string, th taskHandle, res json.RawMessage) (json.RawMessage, error) {
	var keys []string
	if th.Status == "input_required" {
		for k, raw := range th.InputRequests {
			// As for input_required (mrtr.go): the client is shown only what
			// it declared it can answer.
			var ir inputRequest
			if json.Unmarshal(raw, &ir) != nil {
				return nil, upstreamError(u, t.exposed, fmt.Errorf("%w: input request %q cannot be read", upstreams.ErrInvalidResponse, k), ctx)
			}
			if capName, sub := capabilityFor(ir.Method, ir.Params); capName == "" || !s.declared(capName, sub) {
				return nil, front.Errorf(front.CodeInternal, "task of tool %q needs %s from the client (input request %q), which this client did not declare: upstream %q asked for it anyway",
					t.exposed, ir.Method, k, u.name)
			}
			keys = append(keys, k)
		}
		slices.Sort(keys)
	}
	s.h.tasks.set(id, keys, th.TTL)
	return withTaskID(res, id)
}

// taskFor is task id of the caller of session s, and its upstream.
func (h *Hub) taskFor(s *session, id string) (task, *upstream, error) {
	t, ok := h.tasks.get(id, principal(s.fs), time.Now())
	if !ok {
		return task{}, nil, fmt.Errorf("unknown task %q: no task of this caller has that id (a task is kept until its ttlMs runs out)", id)
	}
	u := h.fleet.Load().byName[t.upstream]
	if u == nil {
		return task{}, nil, fmt.Errorf("task %q of tool %q: its upstream %q is no longer configured", id, t.exposed, t.upstream)
	}
	return t, u, nil
}

// taskStatus passes an upstream's notifications/tasks to each listen that
// watches the task (listen.go), as that listen's client sees the task.
func (h *Hub) taskStatus(upstreamName string, params json.RawMessage) {
	th, err := readTaskHandle(params)
	if err != nil {
		h.log.Warn("upstream task notification dropped", "upstream", upstreamName, "server_name", h.serverName(upstreamName), "err", err)
		return
	}
	id, t, ok := h.tasks.byUpstream(upstreamName, th.TaskID, time.Now())
	u := h.fleet.Load().byName[upstreamName]
	if !ok || u == nil {
		return // not a task the hub handed out, or one it forgot
	}
	h.listeners.each(func(l *listener) {
		if !l.tasks[id] {
			return
		}
		p, err := l.s.clientTask(context.Background(), u, t, id, th, params)
		if err != nil {
			h.log.Warn("upstream task notification not passed on", "upstream", upstreamName, "server_name", h.serverName(upstreamName), "task_id", id, "err", err)
			return
		}
		l.send("notifications/tasks", p)
	})
}

// withTaskID is an upstream's task with the hub's id in place of its own.
func withTaskID(res json.RawMessage, id string) (json.RawMessage, error) {
	out, ok := setMember(res, "taskId", strictjson.AppendString(nil, id))
	if !ok {
		return nil, front.Errorf(front.CodeInternal, "internal error: the upstream's task could not be rewritten")
	}
	return out, nil
}
