package front

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/sigilcore/sigil-hub/internal/strictjson"
)

// JSON-RPC error codes sigil-hub answers with (docs/protocol.md#json-rpc-errors).
const (
	CodeParseError     = -32700
	CodeInvalidRequest = -32600
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602
	CodeInternal       = -32603
	CodeBlocked        = -32001 // every non-approval
	CodeAuthFailure    = -32002 // Sign rejected the API key (docs/protocol.md#http-statuses)
)

// MaxDepth bounds JSON nesting in client messages.
const MaxDepth = 64

// Error is a JSON-RPC error object sent to the client, or received from it
// (the answer to a server→client request).
type Error struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

func (e *Error) Error() string { return fmt.Sprintf("json-rpc error %d: %s", e.Code, e.Message) }

// Errorf builds an Error with a formatted message.
func Errorf(code int, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// ClientContext is what a request says about its client: the protocol
// version, the capabilities and the clientInfo it declared, and the log
// level it asked for. A session-based (2025) client declares them once, at
// initialize, and every request of its session carries the session's
// values; a 2026-07-28 request carries its own in params._meta. Immutable
// once a request carries it (a session replaces it whole).
type ClientContext struct {
	ProtocolVersion string
	Capabilities    json.RawMessage // nil: none declared
	Info            ClientInfo
	LogLevel        string // "": not set
	// Modern marks a 2026-07-28 request (modern.go): the context is the
	// request's own, from its params._meta, and no session holds it.
	Modern bool
	// InfoRaw is a modern request's clientInfo as sent (nil: none), for an
	// upstream that is told who calls.
	InfoRaw json.RawMessage
	// Trace are a modern request's W3C trace members of _meta
	// (traceparent, tracestate, baggage), as sent.
	Trace []TraceMember
}

// TraceMember is one W3C trace context member of a request's _meta.
type TraceMember struct {
	Name  string
	Value json.RawMessage
}

// ClientInfo is the clientInfo a client declared.
type ClientInfo struct {
	Name    string `json:"name"`
	Version string `json:"version"`
}

// Request is one client request (or notification, with ID nil) as the edge
// read it: validated once by ParseMessage, and read by later stages without
// scanning again. Every value is the raw bytes the client sent (ids are
// echoed byte for byte: docs/faults.md case 16).
type Request struct {
	ID     json.RawMessage // nil for a notification
	Method string
	Params json.RawMessage // nil or a JSON object
	// ParamsValid is Params as strictjson's proof of the check ParseMessage
	// made: later stages take it without scanning again.
	ParamsValid strictjson.Valid
	// LoneSurrogate: a string in params holds an escaped unpaired UTF-16
	// surrogate (strictjson.Input); a tools/call refuses it.
	LoneSurrogate bool
	// UnsafeInteger: a number in params is an integer beyond ±(2^53-1)
	// (strictjson.Input); a tools/call refuses it. (An id may be one: ids
	// are echoed byte for byte, never decoded.)
	UnsafeInteger bool
	// Client is the request's client context: the session's (nil before
	// initialize), or the request's own.
	Client *ClientContext
}

// message is one JSON-RPC message as received: a request or notification,
// or a response to a server→client request.
type message struct {
	Request
	Result json.RawMessage
	Error  json.RawMessage
}

func (m *message) isRequest() bool      { return m.Method != "" && m.ID != nil }
func (m *message) isNotification() bool { return m.Method != "" && m.ID == nil }

// nullID is the id of an answer to a message whose id could not be read.
var nullID = json.RawMessage("null")

// ReadRequest is the edge's read of one request line, exactly as a session
// does it (parseMessage), for callers that check what later stages receive
// (the tools/call fuzz of package hub). A response is refused.
func ReadRequest(line []byte) (Request, *Error) {
	m, _, rerr := parseMessage(line)
	if rerr == nil && m.Method == "" {
		rerr = Errorf(CodeInvalidRequest, "invalid request: a response, not a request")
	}
	return m.Request, rerr
}

// parseMessage decodes and strictly validates one client line
// (docs/faults.md cases 1–10). On failure it returns the error to answer with and
// the id to answer to (null when the id itself is unusable).
func parseMessage(line []byte) (message, json.RawMessage, *Error) {
	// One strict pass settles a well-formed message: strictjson accepts
	// nothing that is not valid UTF-8 and valid JSON (its FuzzValidate
	// checks that against encoding/json), so the two separate checks only
	// classify a rejected message. It also reads member names as the
	// laxest decoder downstream does: names of one object that are the same
	// under case folding are refused at every depth (docs/security.md).
	in, err := strictjson.ReadInput(line, MaxDepth)
	if err != nil {
		if !utf8.Valid(line) {
			return message{}, nullID, Errorf(CodeParseError, "parse error: message is not valid UTF-8")
		}
		if !json.Valid(line) {
			return message{}, nullID, Errorf(CodeParseError, "parse error: message is not valid JSON")
		}
		// Answer to the request's id when it can be read unambiguously (a
		// duplicate key deep in params must not leave the request unanswered).
		id, method := recoverEnvelope(line)
		var se *strictjson.Error
		bad := message{Request: Request{ID: id, Method: method}}
		if method != "" && errors.As(err, &se) && (se.Path == "$.params" || strings.HasPrefix(se.Path, "$.params.") || strings.HasPrefix(se.Path, "$.params[")) {
			return bad, id, Errorf(CodeInvalidParams, "invalid %s params: %v", method, err)
		}
		return bad, id, Errorf(CodeInvalidRequest, "invalid request: %v", err)
	}
	members := in.Members
	id := nullID
	if raw, ok := members["id"]; ok {
		if validID(raw) {
			id = raw
		}
	}
	if v, ok := members["jsonrpc"]; !ok || string(v) != `"2.0"` {
		return message{}, id, Errorf(CodeInvalidRequest, `invalid request: "jsonrpc" must be "2.0"`)
	}
	var m message
	if raw, ok := members["id"]; ok {
		if !validID(raw) {
			return message{}, nullID, Errorf(CodeInvalidRequest, "invalid request: id must be a string or an integer")
		}
		m.ID = raw
	}
	if raw, ok := members["method"]; ok {
		method, _ := strictjson.DecodeString(raw)
		if method == "" {
			return message{}, id, Errorf(CodeInvalidRequest, "invalid request: method must be a non-empty string")
		}
		m.Method = method
	}
	m.Params = members["params"]
	m.ParamsValid, _ = in.Valid("params")
	m.Result = members["result"]
	m.Error = members["error"]
	m.LoneSurrogate, m.UnsafeInteger = in.LoneSurrogate["params"], in.UnsafeInteger["params"]
	switch {
	case m.Method != "":
		if m.Params != nil && m.Params[0] != '{' {
			return message{}, id, Errorf(CodeInvalidRequest, "invalid request: params must be an object")
		}
	case m.ID == nil:
		return message{}, id, Errorf(CodeInvalidRequest, "invalid request: method must be a non-empty string")
	case (m.Result == nil) == (m.Error == nil):
		return message{}, id, Errorf(CodeInvalidRequest, "invalid response: exactly one of result and error is required")
	}
	return m, id, nil
}

// recoverEnvelope returns the top-level id (when exactly one valid id
// member is present; else null) and method (when exactly one string method
// is present) of a message that failed strict validation, so that the
// rejection reaches the request it belongs to.
func recoverEnvelope(line []byte) (json.RawMessage, string) {
	dec := json.NewDecoder(bytes.NewReader(line))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return nullID, ""
	}
	var id, method json.RawMessage
	ids, methods := 0, 0
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return nullID, ""
		}
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			return nullID, ""
		}
		switch k, _ := t.(string); k {
		case "id":
			id, ids = v, ids+1
		case "method":
			method, methods = v, methods+1
		}
	}
	var m string
	if methods == 1 {
		_ = json.Unmarshal(method, &m)
	}
	if ids != 1 || !validID(id) {
		return nullID, m
	}
	return id, m
}

// validID reports whether raw is a JSON-RPC id MCP allows: a string or an
// integer (MCP forbids null ids; fractions and exponents are not integers).
func validID(raw json.RawMessage) bool {
	if len(raw) == 0 {
		return false
	}
	switch c := raw[0]; {
	case c == '"':
		return true
	case c == '-' || (c >= '0' && c <= '9'):
		return !bytes.ContainsAny(raw, ".eE")
	}
	return false
}

// encodeResult builds a response carrying a raw result.
func encodeResult(id, result json.RawMessage) []byte {
	b := make([]byte, 0, len(id)+len(result)+40)
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = append(b, id...)
	b = append(b, `,"result":`...)
	b = append(b, result...)
	return append(b, '}')
}

// encodeError builds an error response.
func encodeError(id json.RawMessage, e *Error) []byte {
	body, err := MarshalNoEscape(e)
	if err != nil {
		body, _ = MarshalNoEscape(&Error{Code: CodeInternal, Message: "internal error: cannot encode error"})
	}
	b := make([]byte, 0, len(id)+len(body)+40)
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = append(b, id...)
	b = append(b, `,"error":`...)
	b = append(b, body...)
	return append(b, '}')
}

// EncodeNotification builds a notification with raw params (nil: none).
func EncodeNotification(method string, params json.RawMessage) []byte {
	b := make([]byte, 0, len(method)+len(params)+48)
	b = append(b, `{"jsonrpc":"2.0","method":`...)
	b = strictjson.AppendString(b, method)
	if params != nil {
		b = append(b, `,"params":`...)
		b = append(b, params...)
	}
	return append(b, '}')
}

// encodeRequest builds a server→client request with raw params.
func encodeRequest(id json.RawMessage, method string, params json.RawMessage) []byte {
	b := make([]byte, 0, len(method)+len(params)+64)
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = append(b, id...)
	b = append(b, `,"method":`...)
	b = strictjson.AppendString(b, method)
	if params != nil {
		b = append(b, `,"params":`...)
		b = append(b, params...)
	}
	return append(b, '}')
}

// MarshalNoEscape is json.Marshal without HTML escaping and without the
// trailing newline.
func MarshalNoEscape(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}
