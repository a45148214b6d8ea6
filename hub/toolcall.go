package hub

import (
	"bytes"
	"encoding/json"
	"maps"
	"slices"

	"github.com/sigilcore/sigil-hub/front"
	"github.com/sigilcore/sigil-hub/internal/strictjson"
)

// This file is the edge of the tools/call pipeline and its far end: what a
// client's params may hold, and the upstream's params, built only from what
// was decided on (docs/security.md, "The bytes decided on are the bytes that
// run").
//
// The edge (front.ReadRequest, run by every session) has already read the whole message with
// strictjson.ReadInput: valid UTF-8, no duplicate and no case-variant member
// names at any depth. readToolCall adds what only a tools/call needs, and
// upstreamCallParams never copies anything the client sent except the
// authorized arguments' bytes.

// toolCall is one tools/call request as the edge read it.
type toolCall struct {
	// name is the exposed tool name the client called.
	name string
	// args are the arguments exactly as received, without surrounding
	// whitespace; `{}` when the client sent none. These bytes are
	// authorized and these bytes are forwarded.
	args json.RawMessage
	// progressToken is the client's own progress token (a JSON string or
	// number), or nil.
	progressToken json.RawMessage
	// valid is args as strictjson's proof that the edge checked them.
	valid strictjson.Valid
	// inputResponses and requestState continue a call the upstream asked
	// input for (a 2026-07-28 client's retry, mrtr.go); zero otherwise.
	inputResponses strictjson.Valid
	requestState   string
}

// emptyObject stands for the arguments of a call that sent none, and is
// what tasks/update forwards when none of the client's answers is to a
// request the upstream made (tasks.go).
var emptyObject, _ = strictjson.Check([]byte(`{}`), 0)

// toolCallMembers are the params members of a tools/call that sigil-hub
// reads. Every other member is refused: nothing is forwarded unexamined.
// modernMembers are those a 2026-07-28 request may add: the retry of a
// call the upstream asked input for (mrtr.go).
var (
	toolCallMembers = []string{"name", "arguments", "_meta"}
	modernMembers   = []string{"name", "arguments", "_meta", "inputResponses", "requestState"}
)

// laterMembers are params members that newer MCP revisions define for a
// tools/call, refused with a message that says so until the hub handles
// them under its decision.
var laterMembers = map[string]string{
	"task":           "MCP 2025-11-25's experimental task augmentation; a 2026-07-28 client opts in to the tasks extension in its capabilities instead",
	"inputResponses": "multi round-trip requests from a 2025-era client",
	"requestState":   "multi round-trip requests from a 2025-era client",
}

// readToolCall reads the params of m, a tools/call the edge validated
// (package front).
func readToolCall(m *front.Request) (toolCall, *front.Error) {
	var c toolCall
	params := m.Params
	if len(params) == 0 {
		return c, front.Errorf(front.CodeInvalidParams, "invalid tools/call params: name must be a non-empty string")
	}
	members, err := strictjson.Members(params)
	if err != nil {
		return c, front.Errorf(front.CodeInvalidParams, "invalid tools/call params: %v", err)
	}
	known := toolCallMembers
	if m.Client != nil && m.Client.Modern {
		known = modernMembers
	}
	if k := unknownMember(members, known); k != "" {
		return c, unsupportedMemberError(k, laterMembers[k])
	}
	name, ok := strictjson.DecodeString(members["name"])
	if !ok || name == "" {
		return c, front.Errorf(front.CodeInvalidParams, "invalid tools/call params: name must be a non-empty string")
	}
	c.name = name
	switch {
	case m.LoneSurrogate:
		// Go reads an escaped unpaired surrogate as U+FFFD, JavaScript and
		// Python keep it: the policy and the tool would read different text.
		return c, front.Errorf(front.CodeInvalidParams, "invalid arguments for tool %q: a string holds an escaped unpaired UTF-16 surrogate (such as \\ud800), which decoders read differently; send well-formed Unicode", name)
	case m.UnsafeInteger:
		// Python reads such an integer exactly, JavaScript and Go (and the
		// policy) round it to a double: they would act on different values.
		return c, front.Errorf(front.CodeInvalidParams, "invalid arguments for tool %q: a number is an integer that a double cannot hold exactly (such as 9007199254740993), which decoders read differently (some exactly, some rounded); send it as a string", name)
	}
	args, ok := m.ParamsValid.Member("arguments")
	switch {
	case !ok && members["arguments"] != nil:
		// The edge's proof and the split above must name the same bytes;
		// never fall back to `{}` for arguments the client did send.
		return c, front.Errorf(front.CodeInternal, "internal error: the arguments of tool %q could not be read", name)
	case !ok:
		args = emptyObject
	case !args.IsObject():
		return c, front.Errorf(front.CodeInvalidParams, "invalid arguments for tool %q: arguments must be a JSON object", name)
	case bytes.ContainsAny(args.Bytes(), "\r\n"):
		// Line breaks can only be whitespace between tokens (an HTTP body
		// may have them). A stdio upstream reads one line per message, so
		// they go now, before authorization: the bytes authorized are the
		// bytes forwarded, to the byte.
		args = args.Compact()
	}
	c.args, c.valid = args.Bytes(), args
	if raw, ok := members["requestState"]; ok {
		if c.requestState, ok = strictjson.DecodeString(raw); !ok || c.requestState == "" {
			return c, front.Errorf(front.CodeInvalidParams, "invalid tools/call params: requestState must be the non-empty string the hub sent")
		}
	}
	if _, ok := members["inputResponses"]; ok {
		if c.inputResponses, ok = m.ParamsValid.Member("inputResponses"); !ok || !c.inputResponses.IsObject() {
			return c, front.Errorf(front.CodeInvalidParams, "invalid tools/call params: inputResponses must be an object")
		}
		if c.requestState == "" {
			return c, front.Errorf(front.CodeInvalidParams, "invalid tools/call params: inputResponses without the requestState they answer")
		}
	}
	if raw, ok := members["_meta"]; ok {
		meta, err := strictjson.Members(raw)
		if err != nil {
			return c, front.Errorf(front.CodeInvalidParams, "invalid tools/call _meta: it must be an object")
		}
		if tok, ok := meta["progressToken"]; ok {
			if tok[0] != '"' && tok[0] != '-' && (tok[0] < '0' || tok[0] > '9') {
				return c, front.Errorf(front.CodeInvalidParams, "invalid tools/call _meta: progressToken must be a string or a number")
			}
			c.progressToken = tok
		}
	}
	return c, nil
}

// unknownMember returns the first member name (in sorted order, so the
// answer is stable) that is not in known, or "".
func unknownMember(members map[string]json.RawMessage, known []string) string {
	for _, k := range slices.Sorted(maps.Keys(members)) {
		if !slices.Contains(known, k) {
			return k
		}
	}
	return ""
}

// upstreamCallParams appends the params of the tools/call sent upstream:
// the upstream's own tool name, the authorized arguments' bytes, on a
// retry the answers the upstream asked for and its own requestState
// (mrtr.go), and the hub's own _meta (its progress token for this call and the attestation,
// each only when set). Nothing else from the client's params is copied.
func upstreamCallParams(dst []byte, tool string, args strictjson.Valid, progressToken, attestation string, cont *continuation) (strictjson.Valid, error) {
	var o strictjson.ObjectBuilder
	o.Start(dst)
	o.String("name", tool)
	o.Value("arguments", args)
	if cont != nil {
		if cont.responses.Bytes() != nil {
			o.Value("inputResponses", cont.responses)
		}
		if cont.state != nil {
			o.String("requestState", *cont.state)
		}
	}
	if progressToken != "" || attestation != "" {
		o.Begin("_meta")
		if progressToken != "" {
			o.String("progressToken", progressToken)
		}
		if attestation != "" {
			o.String(attestationMetaKey, attestation)
		}
		o.End()
	}
	return o.Finish()
}
