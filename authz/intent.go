package authz

import (
	"bytes"
	"cmp"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/sigilcore/sigil-hub/authz/policy"
	"github.com/sigilcore/sigil-hub/internal/strictjson"
)

// Input limits and codes (docs/protocol.md#arguments-sent-as-received,
// #extractors, #task_id).
const (
	// MaxArgumentsBytes is the largest tool-arguments document sent for
	// authorization (the server's 100 kB body limit). Larger arguments
	// are denied locally with SIGIL_INPUT_TOO_LARGE, never truncated.
	MaxArgumentsBytes = 100_000
	// MaxArgumentsDepth is the deepest nesting allowed in tool arguments
	// (objects and arrays; the arguments object itself is depth 1).
	MaxArgumentsDepth = 32

	// CodeInputMalformed denies a call whose input cannot be expressed as
	// a valid intent.
	CodeInputMalformed = "SIGIL_INPUT_MALFORMED"
	// CodeInputTooLarge denies a call whose arguments exceed MaxArgumentsBytes.
	CodeInputTooLarge = "SIGIL_INPUT_TOO_LARGE"

	// Framework is the authorize request's framework value
	// (docs/protocol.md#the-authorize-request).
	Framework = "mcp-proxy"
	// DefaultAgentID is the agentId used when none is configured or known.
	DefaultAgentID = "sigil-hub"
)

// Intent is the intent for one tool call, ready to send
// (docs/protocol.md#the-intent-for-a-tool-call).
type Intent struct {
	// JSON is the intent object exactly as sent on the wire; the raw tool
	// arguments are embedded byte for byte as metadata.arguments.
	JSON []byte
	// TxCommit is the lowercase hex SHA-256 of the pg-commit-v1
	// canonicalization of JSON (docs/protocol.md#txcommit-pg-commit-v1).
	TxCommit string
	// Action is the intent's action (mcp.<serverId>.<tool>, or a typed one
	// from an extractor).
	Action string
}

// InputError is a local denial of a call's input
// (docs/protocol.md#arguments-sent-as-received, #extractors): the call is
// denied with Code and never sent to the policy service.
type InputError struct {
	Code    string // e.g. SIGIL_INPUT_MALFORMED, SIGIL_INPUT_TOO_LARGE
	Message string
}

func (e *InputError) Error() string { return e.Message }

// errIntentExtractor marks an Extractor that cannot be applied to any call.
var errIntentExtractor = errors.New("invalid extractor")

// intentFieldOrder lists the intent fields an Extractor may map, in
// the order they appear on the wire.
func intentFieldOrder() [5]string {
	return [5]string{"command", "url", "method", "path", "to"}
}

// Indexes into intentFieldOrder.
const (
	intentFieldCommand = iota
	intentFieldURL
	intentFieldMethod
	intentFieldPath
	intentFieldTo
)

// intentFieldIndex returns field's index in intentFieldOrder, or -1.
func intentFieldIndex(field string) int {
	fields := intentFieldOrder()
	return slices.Index(fields[:], field)
}

// ValidateExtractor reports whether x can be used with NewIntent: Action is
// valid UTF-8, every field is one of url, path, command, method and to, and
// every path is a non-empty dot-separated list of non-empty keys. A nil x is
// valid. Config loading should call it so that a typo fails at startup
// rather than on every call. It is safe for concurrent use.
func ValidateExtractor(x *Extractor) error {
	if x == nil {
		return nil
	}
	if !utf8.ValidString(x.Action) {
		return fmt.Errorf("%w: action %q is not valid utf-8", errIntentExtractor, x.Action)
	}
	for field, path := range x.Fields {
		if intentFieldIndex(field) < 0 {
			return fmt.Errorf("%w: unknown intent field %q (want url, path, command, method or to)", errIntentExtractor, field)
		}
		if path == "" || strings.HasPrefix(path, ".") || strings.HasSuffix(path, ".") || strings.Contains(path, "..") {
			return fmt.Errorf("%w: field %q: argument path %q is not a dot-separated list of keys", errIntentExtractor, field, path)
		}
	}
	return nil
}

// NewIntent builds the intent for req and its txCommit
// (docs/protocol.md#the-intent-for-a-tool-call, #txcommit-pg-commit-v1).
//
// The intent's members appear in the order action, command, url, method,
// path, to, task_id, metadata; absent ones are omitted, never null. metadata
// is {"serverId","toolName","arguments"} with the arguments' bytes embedded
// verbatim (only whitespace around the object is dropped), so the bytes that
// are authorized are the bytes that are forwarded. When req.ToolHash is set,
// metadata gets a fourth member, "toolHash", after arguments; without it the
// bytes are unchanged.
//
// The action is "mcp.<ServerID>.<Tool>", unless req.Extract maps a field that
// implies a typed action (docs/protocol.md#extractors): url gives web_fetch
// (http when a valid uppercase method is extracted too), else path gives
// file_write, else command gives bash. Extract.Action, when set, overrides
// all of these. method is emitted only when the action is http and the method
// is valid.
//
// A local input denial is returned as *InputError with Code
// CodeInputMalformed (empty ServerID or Tool, invalid UTF-8 in them, a bad
// TaskID, arguments that are not one strictly valid JSON object nested at
// most MaxArgumentsDepth deep, an extracted argument missing or not a
// string) or CodeInputTooLarge (arguments over MaxArgumentsBytes). An
// invalid req.Extract (see ValidateExtractor) is returned as a plain error:
// it is a configuration fault, and the call must be denied all the same.
//
// NewIntent is safe for concurrent use; it does not retain req.Arguments.
func NewIntent(req Request) (Intent, error) { return buildIntent(req, true) }

// buildIntent is NewIntent; without commit it leaves TxCommit empty (the
// embedded policy decides on the intent itself and needs the commit only
// for a hold: measured, canonicalizing and hashing every call was a fifth
// of the hub's CPU) but denies exactly the same inputs: the one input
// only the commit rejects, a number that overflows float64, is looked for
// directly.
func buildIntent(req Request, commit bool) (Intent, error) {
	malformed := func(format string, args ...any) (Intent, error) {
		return Intent{}, &InputError{Code: CodeInputMalformed, Message: fmt.Sprintf(format, args...)}
	}
	if req.ServerID == "" || req.Tool == "" {
		return malformed("tool call has an empty server id or tool name")
	}
	if !utf8.ValidString(req.ServerID) || !utf8.ValidString(req.Tool) || !utf8.ValidString(req.ToolHash) {
		return malformed("server id or tool name of %q is not valid utf-8", req.Tool)
	}
	if !intentValidTaskID(req.TaskID) {
		return malformed("task id %q must be 1-128 characters of A-Z a-z 0-9 _ -", clip(req.TaskID, 40, "..."))
	}
	if err := ValidateExtractor(req.Extract); err != nil {
		return Intent{}, fmt.Errorf("tool %q: %w", req.Tool, err)
	}

	args := []byte(argumentsOrEmpty(req.Arguments))
	if len(args) > MaxArgumentsBytes {
		return Intent{}, &InputError{Code: CodeInputTooLarge, Message: fmt.Sprintf(
			"arguments of tool %q are %d bytes, over the %d-byte limit", req.Tool, len(args), MaxArgumentsBytes)}
	}
	// Only an Extractor needs the members; everything else needs just the
	// check, which allocates nothing (this runs on every call), and none
	// when the edge proves it made it (req.Checked).
	var members map[string]json.RawMessage
	var err error
	x := cmp.Or(req.Extract, &Extractor{})
	checked := req.Checked.Is(req.Arguments) && req.Checked.IsObject() && req.Checked.Depth() <= MaxArgumentsDepth
	switch wantMembers := len(x.Fields) > 0; {
	case checked && wantMembers:
		members, err = strictjson.Members(args)
	case checked:
	case wantMembers:
		members, err = strictjson.Object(args, MaxArgumentsDepth)
	default:
		err = strictjson.ValidateObject(args, MaxArgumentsDepth)
	}
	if err != nil {
		return malformed("arguments of tool %q are not a valid JSON object: %v", req.Tool, err)
	}
	args = bytes.Trim(args, " \t\r\n")

	// Extracted fields, as the raw JSON string tokens from the
	// arguments, so the typed field is exactly the value the tool receives.
	// extracted[i] belongs to intentFieldOrder()[i].
	var extracted [5][]byte
	for field, path := range x.Fields {
		tok, err := intentLookup(members, path)
		if err != nil {
			return malformed("tool %q: argument %q for intent field %q %v", req.Tool, path, field, err)
		}
		extracted[intentFieldIndex(field)] = tok
	}
	method := ""
	if tok := extracted[intentFieldMethod]; tok != nil {
		if m, _ := strictjson.DecodeString(tok); policy.ValidMethod(m) {
			method = m
		}
	}

	action := "mcp." + req.ServerID + "." + req.Tool
	switch {
	case x.Action != "":
		action = x.Action
	case extracted[intentFieldURL] != nil && method != "":
		action = "http"
	case extracted[intentFieldURL] != nil:
		action = "web_fetch"
	case extracted[intentFieldPath] != nil:
		action = "file_write"
	case extracted[intentFieldCommand] != nil:
		action = "bash"
	}

	b := make([]byte, 0, len(args)+256)
	b = appendString(b, `{"action":`, action)
	for i, field := range intentFieldOrder() {
		switch {
		case i == intentFieldMethod && action == "http" && method != "":
			b = appendString(b, `,"method":`, method)
		case i != intentFieldMethod && extracted[i] != nil:
			b = append(b, `,"`+field+`":`...)
			b = append(b, extracted[i]...)
		}
	}
	b = appendString(b, `,"task_id":`, req.TaskID)
	b = appendString(b, `,"metadata":{"serverId":`, req.ServerID)
	b = appendString(b, `,"toolName":`, req.Tool)
	b = append(b, `,"arguments":`...)
	b = append(b, args...)
	if req.ToolHash != "" {
		b = appendString(b, `,"toolHash":`, req.ToolHash)
	}
	b = append(b, '}', '}')

	// b is strictly valid by construction (validated arguments, tokens cut
	// from them, strings encoded here, depth at most MaxArgumentsDepth+2), so
	// the commit skips a second validation pass (on every call it would only
	// repeat work).
	in := Intent{JSON: b, Action: action}
	if commit {
		in.TxCommit, err = pgcTxCommit(b)
	} else {
		err = pgcFinite(b)
	}
	if err != nil { // only a number that overflows float64, e.g. 1e400
		return malformed("arguments of tool %q cannot be committed: %v", req.Tool, err)
	}
	return in, nil
}

// AuthorizeBody returns the /v1/authorize request body for in
// (docs/protocol.md#the-authorize-request):
// {"framework":"mcp-proxy","agentId":…,"txCommit":…,"request_nonce":…,"intent":…}
// with in.JSON embedded verbatim. An empty agentID means DefaultAgentID.
// The nonce must be fresh for every request (NewNonce). It is safe for
// concurrent use.
func AuthorizeBody(in Intent, agentID, nonce string) []byte {
	agentID = cmp.Or(agentID, DefaultAgentID)
	b := make([]byte, 0, len(in.JSON)+len(agentID)+192)
	b = appendString(b, `{"framework":`, Framework)
	b = appendString(b, `,"agentId":`, agentID)
	b = appendString(b, `,"txCommit":`, in.TxCommit)
	b = appendString(b, `,"request_nonce":`, nonce)
	b = append(b, `,"intent":`...)
	b = append(b, in.JSON...)
	return append(b, '}')
}

// appendString appends JSON text that ends where a value starts, then s
// as a JSON string.
func appendString(b []byte, before, s string) []byte {
	return strictjson.AppendString(append(b, before...), s)
}

// NewNonce returns a fresh random UUIDv4 (RFC 9562) in lowercase, for the
// request_nonce of every authorize request. It is safe for concurrent use.
func NewNonce() string {
	var u [16]byte
	rand.Read(u[:])         // never fails (crypto/rand crashes the program instead)
	u[6] = u[6]&0x0f | 0x40 // version 4
	u[8] = u[8]&0x3f | 0x80 // variant 10
	h := hex.EncodeToString(u[:])
	return h[:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:]
}

// intentLookup follows a dot-separated path of object keys from the
// arguments' members and returns the raw JSON string token found there.
func intentLookup(members map[string]json.RawMessage, path string) ([]byte, error) {
	keys := strings.Split(path, ".")
	for i, key := range keys {
		v, ok := members[key]
		if !ok {
			return nil, errors.New("is missing")
		}
		if i == len(keys)-1 {
			if len(v) == 0 || v[0] != '"' {
				return nil, errors.New("is not a string")
			}
			return v, nil
		}
		if len(v) == 0 || v[0] != '{' {
			return nil, errors.New("is missing (a parent is not an object)")
		}
		var err error
		// Already validated as part of the arguments; this only splits it.
		if members, err = strictjson.Members(v); err != nil {
			return nil, err
		}
	}
	return nil, errors.New("is missing")
}

func intentValidTaskID(id string) bool {
	return len(id) > 0 && len(id) <= 128 &&
		strings.Trim(id, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-") == ""
}
