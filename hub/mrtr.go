package hub

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sigilcore/sigil-hub/front"
	"github.com/sigilcore/sigil-hub/internal/strictjson"
	"github.com/sigilcore/sigil-hub/upstreams"
)

// Multi round-trip requests (MCP 2026-07-28): an upstream that needs
// something from the client (an elicitation, a sample, the roots) answers
// a tools/call, prompts/get or resources/read with resultType
// "input_required", its inputRequests and an opaque requestState; the
// client retries the same request with inputResponses and that state.
//
// The hub never hands the upstream's state to the client as it is: it
// seals it in state of its own (callState), bound to the upstream, the
// request (method, exposed name, the authorized arguments' digest), the
// caller and an expiry, so that a retry goes back to the same upstream for
// the same call, and a state that was altered, replayed, expired or moved
// to another call is refused. A retried tools/call is authorized again,
// like any call; only the inputResponses the upstream asked for are
// forwarded. A 2025 client cannot retry: the hub asks it with the
// server→client requests it understands and retries for it
// (docs/protocol.md#mcp-revisions).

// maxInputRounds bounds the rounds the hub runs for a 2025 client.
const maxInputRounds = 10

// inputRequired is an upstream's input_required result, read.
type inputRequired struct {
	requests map[string]inputRequest // by key
	keys     []string                // sorted
	state    *string                 // the upstream's requestState, nil when none
}

type inputRequest struct {
	Method string          `json:"method"`
	Params json.RawMessage `json:"params"`
}

// readInputRequired reads result when it is an input_required one.
func readInputRequired(result json.RawMessage) (*inputRequired, bool, error) {
	// Most results are not: a byte search spares them a strict read.
	if !bytes.Contains(result, []byte(`"input_required"`)) {
		return nil, false, nil
	}
	if typ, _, _ := memberString(result, "resultType"); typ != "input_required" {
		return nil, false, nil
	}
	var r struct {
		InputRequests map[string]inputRequest `json:"inputRequests"`
		RequestState  *string                 `json:"requestState"`
	}
	if err := json.Unmarshal(result, &r); err != nil {
		return nil, true, fmt.Errorf("an input_required result that cannot be read: %w", err)
	}
	for k, req := range r.InputRequests {
		if req.Method == "" {
			return nil, true, fmt.Errorf("input request %q names no method", k)
		}
	}
	ir := &inputRequired{requests: r.InputRequests, keys: slices.Sorted(maps.Keys(r.InputRequests)), state: r.RequestState}
	if len(ir.keys) == 0 && ir.state == nil {
		return nil, true, errors.New("an input_required result with neither inputRequests nor requestState")
	}
	return ir, true, nil
}

// callState is the hub's requestState: what a retry must match.
type callState struct {
	Upstream  string   `json:"u"`
	Method    string   `json:"m"`
	Name      string   `json:"n"` // the exposed tool or prompt name, or the resource URI
	Args      string   `json:"a"` // digest of the authorized arguments (tools/call) or of the request's arguments
	Principal string   `json:"p"` // who asked: the session's id and token holder
	Expires   int64    `json:"e"` // Unix milliseconds
	Keys      []string `json:"k"` // the input requests the upstream made
	UpState   *string  `json:"s,omitempty"`
	// Hold is a hold a person approved for this call in an earlier round:
	// the retry is the same call, not a new one to approve.
	Hold string `json:"h,omitempty"`
	// Park names the call still running on a 2025 upstream that asked the
	// client for input mid-call.
	Park  string `json:"c,omitempty"`
	Nonce string `json:"o"`
}

// stateSeal seals and opens callStates with a key of the process's own; a
// state is accepted once.
type stateSeal struct {
	once sync.Once
	key  [32]byte
	mu   sync.Mutex
	used map[string]int64 // nonce → expiry (Unix ms)
}

const statePrefix = "sigil-hub.1."

func (ss *stateSeal) init() {
	ss.once.Do(func() {
		_, _ = rand.Read(ss.key[:])
		ss.used = make(map[string]int64)
	})
}

func (ss *stateSeal) seal(st callState) (string, error) {
	ss.init()
	var n [16]byte
	_, _ = rand.Read(n[:])
	st.Nonce = base64.RawURLEncoding.EncodeToString(n[:])
	payload, err := json.Marshal(st)
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, ss.key[:])
	mac.Write(payload)
	return statePrefix + base64.RawURLEncoding.EncodeToString(append(mac.Sum(nil), payload...)), nil
}

// open returns the state sealed in s if it is authentic, unexpired, not
// used before and bound to want (every field but Keys, UpState, Hold,
// Expires and Nonce must match); it is then used.
func (ss *stateSeal) open(s string, want callState, now time.Time) (callState, error) {
	ss.init()
	var st callState
	raw, ok := strings.CutPrefix(s, statePrefix)
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if !ok || err != nil || len(b) < sha256.Size {
		return st, errors.New("it is not a state this hub issued")
	}
	mac := hmac.New(sha256.New, ss.key[:])
	mac.Write(b[sha256.Size:])
	if !hmac.Equal(mac.Sum(nil), b[:sha256.Size]) {
		return st, errors.New("it was altered, or issued by another hub process")
	}
	if err := json.Unmarshal(b[sha256.Size:], &st); err != nil {
		return st, errors.New("it cannot be read")
	}
	switch {
	case now.UnixMilli() > st.Expires:
		return st, errors.New("it expired: start the call again")
	case st.Upstream != want.Upstream || st.Method != want.Method || st.Name != want.Name:
		return st, errors.New("it belongs to another request")
	case st.Args != want.Args:
		return st, errors.New("the arguments differ from those of the request it continues")
	case st.Principal != want.Principal:
		return st, errors.New("it was issued to another client")
	}
	ss.mu.Lock()
	defer ss.mu.Unlock()
	maps.DeleteFunc(ss.used, func(_ string, exp int64) bool { return now.UnixMilli() > exp })
	if _, dup := ss.used[st.Nonce]; dup {
		return st, errors.New("it was used already: each requestState continues a call once")
	}
	ss.used[st.Nonce] = st.Expires
	return st, nil
}

// principal names who a state is issued to.
func principal(fs front.Session) string { return fs.ID() + "\x00" + fs.Label() }

// invalidState is the answer to a retry whose requestState is refused.
func invalidState(method, name string, err error) *front.Error {
	return front.Errorf(front.CodeInvalidParams, "invalid requestState for %s %q: %v", method, name, err)
}

// suspend answers a 2026-07-28 client with the upstream's input_required:
// its inputRequests as they are (each checked against what the client
// declared) and the hub's sealed state in place of the upstream's.
func (s *session) suspend(result json.RawMessage, ir *inputRequired, st callState) (json.RawMessage, error) {
	for _, k := range ir.keys {
		if capName, sub := capabilityFor(ir.requests[k].Method, ir.requests[k].Params); capName == "" || !s.declared(capName, sub) {
			return nil, front.Errorf(front.CodeInternal, "%s %q needs %s from the client (input request %q), which this client did not declare: upstream %q asked for it anyway",
				st.Method, st.Name, ir.requests[k].Method, k, st.Upstream)
		}
	}
	st.Keys, st.UpState = ir.keys, ir.state
	st.Expires = time.Now().Add(s.h.CallTimeout()).UnixMilli()
	sealed, err := s.h.states.seal(st)
	if err != nil {
		return nil, front.Errorf(front.CodeInternal, "internal error: %v", err)
	}
	out, ok := setMember(result, "requestState", strictjson.AppendString(nil, sealed))
	if !ok {
		return nil, front.Errorf(front.CodeInternal, "%s %q: upstream %q sent an input_required result that cannot be read", st.Method, st.Name, st.Upstream)
	}
	return out, nil
}

// askClient fulfils the upstream's input requests for a 2025 client with
// the server→client requests it understands, one after another, and
// returns the inputResponses object to retry with.
func (s *session) askClient(ctx context.Context, ir *inputRequired, what string) (strictjson.Valid, error) {
	var o strictjson.ObjectBuilder
	o.Start(nil)
	for _, k := range ir.keys {
		req := ir.requests[k]
		if capName, sub := capabilityFor(req.Method, req.Params); capName == "" || !s.declared(capName, sub) {
			return strictjson.Valid{}, front.Errorf(front.CodeInternal, "%q needs %s from the client (input request %q), which this client did not declare", what, req.Method, k)
		}
		ans, err := s.fs.Request(ctx, front.RelatedID(ctx), req.Method, req.Params)
		if err != nil {
			if front.ClientCancelled(ctx) {
				return strictjson.Valid{}, front.ErrNoResponse
			}
			return strictjson.Valid{}, front.Errorf(front.CodeInternal, "%q: the client did not answer %s (input request %q): %v", what, req.Method, k, err)
		}
		v, err := strictjson.Check(ans, front.MaxDepth)
		if err != nil {
			return strictjson.Valid{}, front.Errorf(front.CodeInternal, "%q: the client's answer to %s is not valid JSON: %v", what, req.Method, err)
		}
		o.Value(k, v)
	}
	return o.Finish()
}

// askedResponses are the client's inputResponses for the keys the upstream
// asked for; the rest are dropped.
func askedResponses(responses strictjson.Valid, keys []string) (strictjson.Valid, bool) {
	if responses.Bytes() == nil {
		return strictjson.Valid{}, false
	}
	var o strictjson.ObjectBuilder
	o.Start(nil)
	n := 0
	for _, k := range keys {
		if v, ok := responses.Member(k); ok {
			o.Value(k, v)
			n++
		}
	}
	if n == 0 {
		return strictjson.Valid{}, false
	}
	v, err := o.Finish()
	return v, err == nil
}

// continuation is what a round of a call carries over from the last: the
// answers the upstream asked for, its own requestState, and a hold a
// person already approved for the call.
type continuation struct {
	responses strictjson.Valid // zero: none
	state     *string
	hold      string
	parked    *parked // the running call it continues, or nil
}

// A 2025 upstream asks for input with a server→client request in the middle
// of a call, and waits for the answer. A 2026-07-28 client takes no such
// request: the call is parked (it keeps running, bounded by the call
// budget), the client is answered input_required with the upstream's
// request as its one input request, and the client's retry (authorized
// again) hands the answer to the waiting upstream and waits on with the
// call.

// parkKey is the key of the one input request of a parked call.
const parkKey = "input"

// ask is a server→client request from the upstream of a parked call.
type ask struct {
	method string
	params json.RawMessage
	answer chan callResult // cap 1
}

// parked is a running request of a 2026-07-28 client on a 2025 upstream.
// It counts as a call in flight on its upstream (requests.go: where a
// server→client request goes) only while it runs, not while it waits for
// its client's retry.
type parked struct {
	h        *Hub
	upstream string
	asks     chan *ask       // the upstream's server→client requests
	done     chan callResult // cap 1: the call's answer
	ended    chan struct{}   // closed by end
	endOnce  sync.Once
	cancel   context.CancelFunc

	mu      sync.Mutex
	untrack func() // set while it runs on behalf of a request
	pending *ask   // the request the client was shown, while parked
}

// callResult is an answer: the call's, or the client's to an ask.
type callResult struct {
	result json.RawMessage
	err    error
}

// runFor makes the call one of s's request rel: s's server→client
// requests from the upstream reach it.
func (p *parked) runFor(s *session, rel json.RawMessage) {
	s.park.Store(p)
	p.mu.Lock()
	p.untrack = p.h.calls.add(p.upstream, s, rel)
	p.mu.Unlock()
}

// pause stops counting the call as in flight.
func (p *parked) pause() {
	p.mu.Lock()
	if p.untrack != nil {
		p.untrack()
		p.untrack = nil
	}
	p.mu.Unlock()
}

// end gives the call up (the upstream is told it is cancelled) or, once it
// answered, lets it go.
func (p *parked) end() {
	p.endOnce.Do(func() {
		p.pause()
		p.cancel()
		close(p.ended)
	})
}

// askParked hands a server→client request to the running call and waits
// for the client's answer.
func (s *session) askParked(ctx context.Context, p *parked, method string, params json.RawMessage) (json.RawMessage, error) {
	a := &ask{method: method, params: params, answer: make(chan callResult, 1)}
	for asks := p.asks; ; {
		select {
		case asks <- a:
			asks = nil // handed to the call: wait for the client's answer
		case ans := <-a.answer:
			return ans.result, ans.err
		case <-p.ended:
			return nil, errors.New("the call was given up")
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// runParkable runs a 2026-07-28 client's request on upstream u so that it
// can be parked: on a context of its own (it may outlive this request),
// bounded by ctx's deadline or the call budget. parkID is set when it was
// parked (the result is then the input_required to answer).
func (s *session) runParkable(ctx context.Context, u *upstream, call func(context.Context) (json.RawMessage, error)) (res json.RawMessage, parkID string, err error) {
	cctx, cancel := context.WithDeadline(context.WithoutCancel(ctx), s.h.budgetEnd(ctx))
	p := &parked{h: s.h, upstream: u.name, asks: make(chan *ask), done: make(chan callResult, 1), ended: make(chan struct{}), cancel: cancel}
	p.runFor(s, front.RelatedID(ctx))
	go func() {
		res, err := call(cctx)
		p.done <- callResult{res, err}
	}()
	return s.awaitParked(ctx, p)
}

// resumeParked answers the parked call's pending request with the
// client's answer and waits on with the call; a retry without the answer
// is shown the request again.
func (s *session) resumeParked(ctx context.Context, p *parked, responses strictjson.Valid) (json.RawMessage, string, error) {
	v, ok := responses.Member(parkKey)
	if !ok {
		return s.h.park(p, ctx)
	}
	a := p.pending
	p.pending = nil
	p.runFor(s, front.RelatedID(ctx))
	a.answer <- callResult{result: v.Bytes()}
	return s.awaitParked(ctx, p)
}

// awaitParked waits for the call's answer or its next request to the
// client, which parks it.
func (s *session) awaitParked(ctx context.Context, p *parked) (json.RawMessage, string, error) {
	select {
	case cr := <-p.done:
		p.end()
		return cr.result, "", cr.err
	case a := <-p.asks:
		p.pause()
		p.pending = a
		return s.h.park(p, ctx)
	case <-ctx.Done():
		p.end()
		return nil, "", ctx.Err()
	}
}

// inputRequiredOf is the input_required result that shows the client a
// parked call's pending request.
func inputRequiredOf(a *ask) (json.RawMessage, error) {
	params := a.params
	if params == nil {
		params = json.RawMessage(`{}`)
	}
	return front.MarshalNoEscape(map[string]any{
		"resultType":    "input_required",
		"inputRequests": map[string]any{parkKey: map[string]any{"method": a.method, "params": params}},
	})
}

// parkedCalls are the calls parked while their client answers, by id.
type parkedCalls struct {
	m sync.Map     // id → *parked
	n atomic.Int64 // how many
}

// maxParked bounds the calls parked at once: each holds a request open on
// its upstream until its client retries or its budget runs out, so a
// client that never retries must not hold them without limit.
const maxParked = 1024

// park keeps p, whose pending request the client is to answer, until a
// retry takes it or its budget (ctx's deadline) runs out, which ends it;
// it returns the input_required that shows the request and the id the
// sealed state names. When too many calls are parked, p ends instead.
func (h *Hub) park(p *parked, ctx context.Context) (json.RawMessage, string, error) {
	res, err := inputRequiredOf(p.pending)
	if err == nil && h.parkedCalls.n.Add(1) > maxParked {
		h.parkedCalls.n.Add(-1)
		err = front.Errorf(front.CodeInternal, "too many calls wait for their clients' input (limit %d): answer or abandon some, then call again", maxParked)
	}
	if err != nil {
		p.end()
		return nil, "", err
	}
	id := newCallID() + newCallID()
	h.parkedCalls.m.Store(id, p)
	time.AfterFunc(time.Until(h.budgetEnd(ctx)), func() {
		if h.parkedCalls.m.CompareAndDelete(id, p) {
			h.parkedCalls.n.Add(-1)
			p.end()
		}
	})
	return res, id, nil
}

// budgetEnd is ctx's deadline, or the end of a call budget from now.
func (h *Hub) budgetEnd(ctx context.Context) time.Time {
	if d, ok := ctx.Deadline(); ok {
		return d
	}
	return time.Now().Add(h.CallTimeout())
}

// unpark takes the parked call id, or nil when it ended.
func (h *Hub) unpark(id string) *parked {
	if p, ok := h.parkedCalls.m.LoadAndDelete(id); ok {
		h.parkedCalls.n.Add(-1)
		return p.(*parked)
	}
	return nil
}

// callBinding is what a tools/call's state is bound to.
func (s *session) callBinding(r *toolCallRun) callState {
	return callState{Upstream: r.u.name, Method: "tools/call", Name: r.call.name, Args: argumentsDigest(r.call.args), Principal: principal(s.fs)}
}

// forwardRounds forwards a prompts/get or resources/read (not a tool call:
// nothing to authorize) across its rounds of input as callToolInner does a
// tools/call.
func (s *session) forwardRounds(ctx context.Context, u *upstream, method string, members map[string]json.RawMessage, what string) (json.RawMessage, error) {
	bind := callState{Upstream: u.name, Method: method, Name: what, Args: argumentsDigest(members["arguments"]), Principal: principal(s.fs)}
	var cont continuation
	if raw, ok := members["requestState"]; ok {
		state, _ := strictjson.DecodeString(raw)
		st, err := s.h.states.open(state, bind, time.Now())
		if err != nil {
			return nil, invalidState(method, what, err)
		}
		cont = continuation{state: st.UpState}
		if raw, ok := members["inputResponses"]; ok {
			if v, err := strictjson.Check(raw, front.MaxDepth); err == nil {
				cont.responses, _ = askedResponses(v, st.Keys)
			}
		}
		if st.Park != "" {
			if cont.parked = s.h.unpark(st.Park); cont.parked == nil {
				return nil, invalidState(method, what, errors.New("the request it continues has ended (its time ran out): send it again"))
			}
		}
	}
	modern := s.fs.Client() != nil && s.fs.Client().Modern
	for round := 1; ; round++ {
		delete(members, "requestState")
		delete(members, "inputResponses")
		if cont.state != nil {
			members["requestState"] = strictjson.AppendString(nil, *cont.state)
		}
		if cont.responses.Bytes() != nil {
			members["inputResponses"] = cont.responses.Bytes()
		}
		var res json.RawMessage
		var parkID string
		var err error
		switch {
		case cont.parked != nil: // the request is running: answer what it asked
			res, parkID, err = s.resumeParked(ctx, cont.parked, cont.responses)
		case modern: // it may ask the client mid-request
			res, parkID, err = s.runParkable(ctx, u, func(ctx context.Context) (json.RawMessage, error) {
				return s.forward(ctx, u, method, members, what)
			})
		default:
			res, err = s.forward(ctx, u, method, members, what)
		}
		if err != nil {
			if ctx.Err() != nil && errors.Is(err, ctx.Err()) {
				if front.ClientCancelled(ctx) {
					return nil, front.ErrNoResponse
				}
				return nil, upstreamError(u, what, err, ctx)
			}
			return nil, err
		}
		ir, ok, err := readInputRequired(res)
		switch {
		case err != nil:
			return nil, upstreamError(u, what, fmt.Errorf("%w: %v", upstreams.ErrInvalidResponse, err), ctx)
		case !ok:
			return res, nil
		case modern:
			st := bind
			st.Park = parkID
			return s.suspend(res, ir, st)
		case round >= maxInputRounds:
			return nil, front.Errorf(front.CodeInternal, "%s %q: upstream %q still asks for input after %d rounds; giving up", method, what, u.name, round)
		}
		responses, err := s.askClient(ctx, ir, what)
		if err != nil {
			return nil, err
		}
		cont = continuation{responses: responses, state: ir.state}
	}
}
