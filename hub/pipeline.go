package hub

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sigilcore/sigil-hub/audit"
	"github.com/sigilcore/sigil-hub/authz"
	"github.com/sigilcore/sigil-hub/front"
	"github.com/sigilcore/sigil-hub/router"
	"github.com/sigilcore/sigil-hub/upstreams"
)

// The tools/call pipeline, in its fixed order. Each stage is a small
// function that takes what the stages before it settled and either settles
// its own part of the call or returns the error the client sees (errors.go
// builds every one):
//
//	read      the params, as the edge validated them (toolcall.go)
//	resolve   the exposed name to its upstream and tool; pin check and
//	          argument names against the tool's schema
//	authorize the exact argument bytes, for that upstream's serverId (authz)
//	forward   params built from the decision alone (upstreams)
//
// Nothing is sent upstream unless authorize approved (or, with
// --unsafe-bypass, Sign was unreachable: docs/security.md). The audit
// record observes the finished call once (callTool, record).

// toolCallRun is one tools/call as it goes through the pipeline.
type toolCallRun struct {
	req  *front.Request
	call toolCall

	// resolve
	view     *view
	route    router.Route
	u        *upstream
	toolHash string
	modernUp bool // the upstream speaks 2026-07-28: each request tells it who calls
	tasks    bool // the client opted in to the tasks extension and the upstream has it (tasks.go)

	// what a retry of a call the upstream asked input for carries over
	// (mrtr.go); zero for a first call
	cont continuation
	// parkID names the running call parked while its client answers
	// (mrtr.go), or "".
	parkID string

	// authorize
	decision   authz.Decision
	verdict    string // APPROVED, DENIED, PENDING, UNREACHABLE or CANCELLED
	bypassed   bool
	authzTime  time.Duration
	upstreamMS time.Duration
}

func (s *session) callToolInner(ctx context.Context, req *front.Request, rec *audit.Record) (json.RawMessage, error) {
	r := &toolCallRun{req: req}
	defer r.record(rec, s.h.audit != nil)
	var rerr *front.Error
	if r.call, rerr = readToolCall(req); rerr != nil {
		return nil, rerr
	}
	if err := s.resolveCall(ctx, r); err != nil {
		return nil, err
	}
	if r.call.requestState != "" { // a retry (mrtr.go)
		st, err := s.h.states.open(r.call.requestState, s.callBinding(r), time.Now())
		if err != nil {
			return nil, invalidState("tools/call", r.call.name, err)
		}
		responses, _ := askedResponses(r.call.inputResponses, st.Keys)
		r.cont = continuation{responses: responses, state: st.UpState, hold: st.Hold}
		if st.Park != "" {
			if r.cont.parked = s.h.unpark(st.Park); r.cont.parked == nil {
				return nil, invalidState("tools/call", r.call.name, errors.New("the call it continues has ended (its time ran out): call the tool again"))
			}
		}
	}
	for round := 1; ; round++ {
		if err := s.authorizeCall(ctx, r); err != nil {
			if r.cont.parked != nil {
				r.cont.parked.end() // not approved this time: the running call ends
			}
			return nil, err
		}
		result, err := s.forwardCall(ctx, r)
		if err != nil {
			return nil, err
		}
		if isTaskResult(result) { // the upstream runs the call as a task (tasks.go)
			return s.taskCreated(ctx, r, result)
		}
		ir, ok, err := readInputRequired(result)
		switch {
		case err != nil:
			return nil, upstreamError(r.u, r.call.name, fmt.Errorf("%w: %v", upstreams.ErrInvalidResponse, err), ctx)
		case !ok:
			return result, nil
		case r.req.Client != nil && r.req.Client.Modern:
			st := s.callBinding(r)
			st.Hold, st.Park = r.decision.HoldID, r.parkID
			return s.suspend(result, ir, st)
		case round >= maxInputRounds:
			return nil, front.Errorf(front.CodeInternal, "tool %q: upstream %q still asks for input after %d rounds; giving up", r.call.name, r.u.name, round)
		}
		responses, err := s.askClient(ctx, ir, r.call.name)
		if err != nil {
			return nil, err
		}
		r.cont = continuation{responses: responses, state: ir.state, hold: r.decision.HoldID}
	}
}

// record fills the audit record from the finished run; the outcome comes
// from the error the client got (callTool).
func (r *toolCallRun) record(rec *audit.Record, digest bool) {
	rec.ExposedTool = r.call.name
	if digest && r.call.args != nil {
		rec.ArgsSHA256 = argumentsDigest(r.call.args)
	}
	if r.u != nil {
		rec.Upstream, rec.ServerID, rec.Tool = r.u.name, r.u.serverID, r.route.Name
	}
	if r.verdict == "" {
		return
	}
	rec.Decision, rec.Bypassed = r.verdict, r.bypassed
	rec.HoldID, rec.PolicyHash, rec.ErrorCode = r.decision.HoldID, r.decision.PolicyHash, r.decision.ErrorCode
	if r.verdict == "UNREACHABLE" {
		rec.ErrorCode = "SIGIL_UNREACHABLE"
	}
	if r.bypassed {
		rec.Reason = "bypassed"
	}
	rec.AuthzMillis, rec.UpstreamMillis = millis(r.authzTime), millis(r.upstreamMS)
}

// resolveCall finds the call's upstream and tool, refuses a tool whose
// definition changed under strict pinning, and refuses argument names
// spelled unlike the properties the tool declares (argnames.go).
func (s *session) resolveCall(ctx context.Context, r *toolCallRun) error {
	h, exposed := s.h, r.call.name
	v := h.view.Load()
	route, ok := v.table.Tool(exposed)
	if !ok {
		// A call that races start-up (a client that does not list first)
		// waits for the upstreams like the first tools/list does.
		h.waitStartup(ctx)
		v = h.view.Load()
		route, ok = v.table.Tool(exposed)
	}
	if !ok {
		return unknownToolError(exposed)
	}
	r.view, r.route = v, route
	r.u = v.fleet.byName[route.Upstream] // the route's own upstream, even mid-reconfiguration
	s.use(r.u.name)
	st := r.u.conn.Snapshot()
	if st.State.String() != "ready" {
		return upstreamUnavailable(r.u, exposed, st.Err)
	}
	r.modernUp = st.Modern()
	r.tasks = r.modernUp && clientTakesTasks(r.req.Client) && hasTasks(st.Capabilities)
	// Tool pinning: a definition changed under strict pinning is refused
	// here, before authorization; otherwise its hash goes in the intent.
	var err error
	if r.toolHash, err = h.pinCheck(r.u, route.Name, exposed); err != nil {
		return err
	}
	if member, declared := v.argNamesFor(exposed).caseVariantArgument(r.call.args, ""); member != "" {
		return caseVariantError(exposed, member, declared)
	}
	return nil
}

// authorizeCall asks the authorizer about the exact argument bytes. It
// returns nil only for an approval, or for an unreachable Sign under
// --unsafe-bypass.
func (s *session) authorizeCall(ctx context.Context, r *toolCallRun) error {
	h, u, exposed := s.h, r.u, r.call.name
	rel := front.RelatedID(ctx)
	var progressN float64
	onHold := func(holdID string, waited time.Duration) {
		h.log.Info("tool call held for approval", "event", "tool_call_held", "exposed_tool", exposed, "upstream", u.name, "server_name", u.serverName,
			"hold_id", holdID, "waited_ms", waited.Milliseconds())
		if r.call.progressToken == nil {
			return
		}
		progressN++
		s.progress(rel, r.call.progressToken, progressN, "waiting for approval of "+exposed+" (hold "+holdID+")")
	}
	start := time.Now()
	decision, aerr := h.authorizer.Authorize(ctx, authz.Request{
		ServerID:  u.serverID,
		Tool:      r.route.Name,
		Arguments: r.call.args,
		Checked:   r.call.valid,
		TaskID:    s.taskID,
		AgentID:   s.agentName(r.req.Client),
		Extract:   u.extractors[r.route.Name],
		ToolHash:  r.toolHash,
		Continues: r.cont.hold,
		OnHold:    onHold,
	})
	r.authzTime, r.decision = time.Since(start), decision
	switch {
	case aerr != nil && front.ClientCancelled(ctx):
		r.verdict = "CANCELLED"
		h.logDecision(exposed, u, r.verdict, "", r.authzTime)
		return front.ErrNoResponse
	case aerr != nil && errors.Is(aerr, authz.ErrUnreachable) && h.opts.Bypass:
		r.verdict, r.bypassed = "UNREACHABLE", true
		h.log.Error("ungoverned_tool_call: Sigil Sign unreachable, forwarding because --unsafe-bypass is set", "event", "ungoverned_tool_call",
			"server_name", u.serverName,
			"exposed_tool", exposed, "upstream", u.name, "server_id", u.serverID, "err", aerr)
	case aerr != nil:
		r.verdict = "UNREACHABLE"
		h.logDecision(exposed, u, r.verdict, "SIGIL_UNREACHABLE", r.authzTime)
		return unreachableError(u, r.route, exposed, aerr)
	case decision.Verdict != authz.Approved:
		r.verdict = decision.Verdict.String()
		h.logDecision(exposed, u, r.verdict, decision.ErrorCode, r.authzTime)
		return decisionError(u, r.route, exposed, decision)
	default:
		r.verdict = "APPROVED"
		h.logDecision(exposed, u, r.verdict, "", r.authzTime)
	}
	if ctx.Err() != nil { // never forward after the budget or a cancel
		if front.ClientCancelled(ctx) {
			return front.ErrNoResponse
		}
		return timeoutError(u, exposed)
	}
	return nil
}

// agentName is the call's agentId: an HTTP session's token holder, else
// the configured agent_id, else the client's own name from the request's
// client context (docs/protocol.md).
func (s *session) agentName(c *front.ClientContext) string {
	label := s.fs.Label()
	if label == "anonymous" {
		label = ""
	}
	return cmp.Or(label, s.h.fleet.Load().cfg.AgentID, clientName(c))
}

// forwardCall sends the approved call. The upstream's params are built from
// the decision alone: the route's tool name, the authorized bytes, the
// hub's own _meta (toolcall.go). The upstream's result, tool errors
// included, passes through untouched.
func (s *session) forwardCall(ctx context.Context, r *toolCallRun) (json.RawMessage, error) {
	h, u, exposed := s.h, r.u, r.call.name
	rel := front.RelatedID(ctx)
	var progressTok, attestation string
	if r.call.progressToken != nil {
		// An unguessable token per call, answered only from this upstream:
		// no other upstream (or session) can speak into this call.
		progressTok = "sigil-hub-" + newCallID() + newCallID()
		h.progress.Store(progressTok, progressTarget{sess: s, token: r.call.progressToken, rel: rel, upstream: u.name})
		// Some servers (mcp-go's among them) queue notifications separately
		// from responses, so progress can trail the result by a moment: the
		// token stays mapped briefly so that it still reaches the client.
		defer time.AfterFunc(progressGrace, func() { h.progress.Delete(progressTok) })
	}
	if u.attest {
		attestation = r.decision.Attestation
	}
	params, err := upstreamCallParams(make([]byte, 0, len(r.call.args)+len(r.route.Name)+len(attestation)+96), r.route.Name, r.call.valid, progressTok, attestation, &r.cont)
	if err != nil {
		return nil, err // the builder refuses only a repeated name: a bug here
	}
	if r.modernUp {
		ctx = upstreams.WithRequestMeta(ctx, requestMeta(r.req.Client, r.tasks))
	}
	if c := r.req.Client; c != nil && c.Modern && c.LogLevel != "" {
		// A request with no session gets the log messages of its own call
		// (modern.go); like progress, they may trail the result.
		defer time.AfterFunc(progressGrace, h.logTargets.add(u.name, s, rel))
	}
	start := time.Now()
	var result json.RawMessage
	switch {
	case r.cont.parked != nil: // the call is running: answer what it asked (mrtr.go)
		result, r.parkID, err = s.resumeParked(ctx, r.cont.parked, r.cont.responses)
	case r.req.Client != nil && r.req.Client.Modern: // it may ask the client mid-call (mrtr.go)
		result, r.parkID, err = s.runParkable(ctx, u, func(ctx context.Context) (json.RawMessage, error) {
			return u.conn.CallValid(ctx, "tools/call", params)
		})
	default:
		untrack := h.calls.add(u.name, s, rel)
		result, err = u.conn.CallValid(ctx, "tools/call", params)
		untrack()
	}
	r.upstreamMS = time.Since(start)
	if h.log.Enabled(ctx, slog.LevelDebug) {
		h.log.Debug("tool call finished", "exposed_tool", exposed, "upstream", u.name, "server_name", u.serverName, "upstream_ms", r.upstreamMS.Milliseconds(), "err", err)
	}
	if err != nil {
		if front.ClientCancelled(ctx) {
			return nil, front.ErrNoResponse
		}
		return nil, upstreamError(u, exposed, err, ctx)
	}
	return result, nil
}
