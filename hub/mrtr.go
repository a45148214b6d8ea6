package hub

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/sigilcore/sigil-hub/front"
	"github.com/sigilcore/sigil-hub/internal/strictjson"
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
	ir := &inputRequired{requests: r.InputRequests, state: r.RequestState}
	for k, req := range r.InputRequests {
		if req.Method == "" {
			return nil, true, fmt.Errorf("input request %q names no method", k)
		}
		ir.keys = append(ir.keys, k)
	}
	slices.Sort(ir.keys)
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
	Hold  string `json:"h,omitempty"`
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
	raw, ok := cutPrefix(s, statePrefix)
	if !ok {
		return st, errors.New("it is not a state this hub issued")
	}
	b, err := base64.RawURLEncoding.DecodeString(raw)
	if err != nil || len(b) < sha256.Size {
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
	for n, exp := range ss.used {
		if now.UnixMilli() > exp {
			delete(ss.used, n)
		}
	}
	if _, dup := ss.used[st.Nonce]; dup {
		return st, errors.New("it was used already: each requestState continues a call once")
	}
	ss.used[st.Nonce] = st.Expires
	return st, nil
}

func cutPrefix(s, prefix string) (string, bool) {
	if len(s) < len(prefix) || s[:len(prefix)] != prefix {
		return "", false
	}
	return s[len(prefix):], true
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
}

// callBinding is what a tools/call's state is bound to.
func (s *session) callBinding(r *toolCallRun) callState {
	return callState{Upstream: r.u.name, Method: "tools/call", Name: r.call.name, Args: argumentsDigest(r.call.args), Principal: principal(s.fs)}
}
