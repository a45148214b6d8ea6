package authz

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/sigilcore/sigil-hub/internal/strictjson"
)

// Strict response reading and parsing
// (docs/protocol.md#decision-literals-and-strict-bodies).
//
// Every body Sign sends is read under a size cap and a deadline and parsed
// with strictjson (duplicate keys, invalid UTF-8 and deep nesting reject). An
// approval is schema-closed: an unknown member ignored on the one answer that
// means "proceed" is how a future server field would silently become a
// bypass.

const (
	respMaxBody     = 64 << 10                // bytes of any Sign response body
	respMaxDepth    = 32                      // JSON nesting of a Sign response
	respBodyTimeout = 1500 * time.Millisecond // the default body-read deadline
)

// respKind is the class of a parsed /v1/authorize body.
type respKind int

const (
	respApproved respKind = iota + 1
	respDenied
	respPending
)

// respBody is a strictly validated /v1/authorize body.
type respBody struct {
	kind           respKind
	errorCode      string // DENIED
	message        string
	nextSteps      string // DENIED
	policyHash     string
	taskID         string
	holdID         string // PENDING
	attestation    string // APPROVED, "" when absent or null
	decisionRecord string
}

// respReadBody reads resp.Body under the size cap and the body-read deadline
// (bodyTimeout from when the headers arrived); the caller closes it. cancel
// aborts the request (it is the request's context cancel func). It returns
// ctx.Err() when the caller's ctx ended; any other failure is an invalid
// response.
func respReadBody(ctx context.Context, resp *http.Response, cancel context.CancelFunc, bodyTimeout time.Duration) ([]byte, error) {
	t := time.AfterFunc(bodyTimeout, cancel)
	defer t.Stop()
	b, err := io.ReadAll(io.LimitReader(resp.Body, respMaxBody+1))
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	if err != nil {
		if !t.Stop() {
			return nil, fmt.Errorf("response body not received within %v", bodyTimeout)
		}
		return nil, fmt.Errorf("reading response body: %v", err)
	}
	if len(b) > respMaxBody {
		return nil, fmt.Errorf("response body larger than %d bytes", respMaxBody)
	}
	return b, nil
}

// respMembers is the strictly parsed root object of a response body.
type respMembers map[string]json.RawMessage

func respObject(body []byte) (respMembers, error) {
	m, err := strictjson.Object(body, respMaxDepth)
	if err != nil {
		return nil, fmt.Errorf("response body is not a strict JSON object: %v", err)
	}
	return m, nil
}

// str returns the string member key (or its alias), "" when absent.
// A present member that is not a JSON string (null included) is an error,
// as is a body carrying both spellings.
func (m respMembers) str(key, alias string) (string, bool, error) {
	raw, ok := m[key]
	name := key
	if alias != "" {
		if araw, aok := m[alias]; aok {
			if ok {
				return "", false, fmt.Errorf("both %q and %q present", key, alias)
			}
			raw, ok, name = araw, true, alias
		}
	}
	if !ok {
		return "", false, nil
	}
	s, ok := strictjson.DecodeString(raw)
	if !ok {
		return "", false, fmt.Errorf("member %q is not a string", name)
	}
	return s, true, nil
}

// nullableStr is str but also accepts null (reported as absent).
func (m respMembers) nullableStr(key, alias string) (string, error) {
	_, hasKey := m[key]
	_, hasAlias := m[alias]
	if hasKey != hasAlias && (string(m[key]) == "null" || string(m[alias]) == "null") {
		return "", nil // both present is str's error
	}
	s, _, err := m.str(key, alias)
	return s, err
}

// respMemberAllowed reports whether a body with the given literal may carry
// member name (aliases included). DENIED and PENDING may carry
// intent_attestation only as null (Sign sends null there).
func respMemberAllowed(kind respKind, name string) bool {
	switch name {
	case "status", "message", "policy_hash", "policyHash", "task_id", "decision_record",
		"intent_attestation", "intentAttestation":
		return true
	}
	switch kind {
	case respDenied:
		return name == "error_code" || name == "errorCode" || name == "next_steps"
	case respPending:
		return name == "hold_id" || name == "holdId"
	}
	return false
}

// respParse validates a /v1/authorize body. Any error means the body
// is invalid (SIGIL_RESPONSE_INVALID).
func respParse(body []byte) (respBody, error) {
	m, err := respObject(body)
	if err != nil {
		return respBody{}, err
	}
	status, ok, err := m.str("status", "")
	if err != nil {
		return respBody{}, err
	}
	if !ok {
		return respBody{}, errors.New(`response has no "status"`)
	}
	var r respBody
	switch status {
	case "APPROVED", "ALLOWED":
		r.kind = respApproved
	case "DENIED":
		r.kind = respDenied
	case "PENDING":
		r.kind = respPending
	default:
		return respBody{}, fmt.Errorf("unknown decision literal %.40q", status)
	}
	for name := range m {
		if !respMemberAllowed(r.kind, name) {
			return respBody{}, fmt.Errorf("unexpected member %.40q on %s", name, status)
		}
	}
	for _, f := range []struct {
		dst        *string
		key, alias string
	}{{&r.message, "message", ""}, {&r.policyHash, "policy_hash", "policyHash"}, {&r.taskID, "task_id", ""}, {&r.decisionRecord, "decision_record", ""}} {
		if *f.dst, _, err = m.str(f.key, f.alias); err != nil {
			return respBody{}, err
		}
	}
	if r.attestation, err = m.nullableStr("intent_attestation", "intentAttestation"); err != nil {
		return respBody{}, err
	}
	switch r.kind {
	case respDenied:
		if r.errorCode, _, err = m.str("error_code", "errorCode"); err != nil {
			return respBody{}, err
		}
		if r.errorCode == "" {
			return respBody{}, errors.New(`DENIED without a non-empty "error_code"`)
		}
		if r.nextSteps, _, err = m.str("next_steps", ""); err != nil {
			return respBody{}, err
		}
	case respPending:
		if r.holdID, _, err = m.str("hold_id", "holdId"); err != nil {
			return respBody{}, err
		}
		if r.holdID == "" {
			return respBody{}, errors.New(`PENDING without a non-empty "hold_id"`)
		}
	}
	if r.kind != respApproved && r.attestation != "" {
		return respBody{}, fmt.Errorf("%s carries an intent attestation", status)
	}
	return r, nil
}

// respParseHold validates a hold lookup body: a strict JSON object whose
// "status" (or "state") is one of the four hold states (HoldPending...).
// Other members are allowed (the vendor does not specify the schema) but
// must be strict JSON too.
func respParseHold(body []byte) (string, error) {
	m, err := respObject(body)
	if err != nil {
		return "", err
	}
	st, ok1, err := m.str("status", "")
	if err != nil {
		return "", err
	}
	alt, ok2, err := m.str("state", "")
	if err != nil {
		return "", err
	}
	switch {
	case ok1 && ok2 && st != alt:
		return "", fmt.Errorf("hold status %.20q and state %.20q disagree", st, alt)
	case !ok1 && !ok2:
		return "", errors.New(`hold has no "status"`)
	case !ok1:
		st = alt
	}
	switch st {
	case HoldPending, HoldApproved, HoldDenied, HoldExpired:
		return st, nil
	}
	return "", fmt.Errorf("unknown hold state %.40q", st)
}
