package hub

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/sigilcore/sigil-hub/internal/framing"
	"github.com/sigilcore/sigil-hub/internal/strictjson"
)

// JSON-RPC error codes the hub answers with (docs/protocol.md#json-rpc-errors).
const (
	codeParseError     = -32700
	codeInvalidRequest = -32600
	codeMethodNotFound = -32601
	codeInvalidParams  = -32602
	codeInternal       = -32603
	codeBlocked        = -32001 // every non-approval
	codeAuthFailure    = -32002 // Sign rejected the API key (docs/protocol.md#http-statuses)
)

// maxMessageDepth bounds JSON nesting in client messages.
const maxMessageDepth = 64

// rpcError is a JSON-RPC error object to send to the client.
type rpcError struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

func (e *rpcError) Error() string { return fmt.Sprintf("json-rpc error %d: %s", e.Code, e.Message) }

func newRPCError(code int, format string, args ...any) *rpcError {
	return &rpcError{Code: code, Message: fmt.Sprintf(format, args...)}
}

// message is one JSON-RPC message as received, with every value kept as the
// raw bytes the peer sent (ids are echoed byte for byte: docs/faults.md case 16).
type message struct {
	ID     json.RawMessage // nil for a notification
	Method string          // "" for a response
	Params json.RawMessage
	Result json.RawMessage
	Error  json.RawMessage
	// LoneSurrogate: a string in params holds an escaped unpaired UTF-16
	// surrogate (strictjson.Input); a tools/call refuses it.
	LoneSurrogate bool
	// UnsafeInteger: a number in params is an integer beyond ±(2^53-1)
	// (strictjson.Input); a tools/call refuses it. (An id may be one: ids
	// are echoed byte for byte, never decoded.)
	UnsafeInteger bool
}

func (m *message) isRequest() bool      { return m.Method != "" && m.ID != nil }
func (m *message) isNotification() bool { return m.Method != "" && m.ID == nil }

// nullID is the id of an answer to a message whose id could not be read.
var nullID = json.RawMessage("null")

// parseMessage decodes and strictly validates one client line
// (docs/faults.md cases 1–10). On failure it returns the error to answer with and
// the id to answer to (null when the id itself is unusable).
func parseMessage(line []byte) (message, json.RawMessage, *rpcError) {
	// One strict pass settles a well-formed message: strictjson accepts
	// nothing that is not valid UTF-8 and valid JSON (its FuzzValidate
	// checks that against encoding/json), so the two separate checks only
	// classify a rejected message. It also reads member names as the
	// laxest decoder downstream does: names of one object that are the same
	// under case folding are refused at every depth (docs/security.md).
	in, err := strictjson.ReadInput(line, maxMessageDepth)
	if err != nil {
		if !utf8.Valid(line) {
			return message{}, nullID, newRPCError(codeParseError, "parse error: message is not valid UTF-8")
		}
		if !json.Valid(line) {
			return message{}, nullID, newRPCError(codeParseError, "parse error: message is not valid JSON")
		}
		// Answer to the request's id when it can be read unambiguously (a
		// duplicate key deep in params must not leave the request unanswered).
		id, method := recoverEnvelope(line)
		var se *strictjson.Error
		if method != "" && errors.As(err, &se) && (se.Path == "$.params" || strings.HasPrefix(se.Path, "$.params.") || strings.HasPrefix(se.Path, "$.params[")) {
			return message{ID: id, Method: method}, id, newRPCError(codeInvalidParams, "invalid %s params: %v", method, err)
		}
		return message{ID: id, Method: method}, id, newRPCError(codeInvalidRequest, "invalid request: %v", err)
	}
	members := in.Members
	id := nullID
	if raw, ok := members["id"]; ok {
		if validID(raw) {
			id = raw
		}
	}
	if v, ok := members["jsonrpc"]; !ok || string(v) != `"2.0"` {
		return message{}, id, newRPCError(codeInvalidRequest, `invalid request: "jsonrpc" must be "2.0"`)
	}
	var m message
	if raw, ok := members["id"]; ok {
		if !validID(raw) {
			return message{}, nullID, newRPCError(codeInvalidRequest, "invalid request: id must be a string or an integer")
		}
		m.ID = raw
	}
	if raw, ok := members["method"]; ok {
		method, ok := plainJSONString(raw)
		if !ok {
			if err := json.Unmarshal(raw, &method); err != nil {
				method = ""
			}
		}
		if method == "" {
			return message{}, id, newRPCError(codeInvalidRequest, "invalid request: method must be a non-empty string")
		}
		m.Method = method
	}
	m.Params = members["params"]
	m.Result = members["result"]
	m.Error = members["error"]
	m.LoneSurrogate, m.UnsafeInteger = in.LoneSurrogate["params"], in.UnsafeInteger["params"]
	switch {
	case m.Method != "":
		if m.Params != nil && m.Params[0] != '{' {
			return message{}, id, newRPCError(codeInvalidRequest, "invalid request: params must be an object")
		}
	case m.ID == nil:
		return message{}, id, newRPCError(codeInvalidRequest, "invalid request: method must be a non-empty string")
	case (m.Result == nil) == (m.Error == nil):
		return message{}, id, newRPCError(codeInvalidRequest, "invalid response: exactly one of result and error is required")
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

// plainJSONString returns the value of raw, a JSON string validated by
// strictjson, when it has no escape sequence (the common case: no decoding
// needed); ok is false otherwise.
func plainJSONString(raw json.RawMessage) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' || bytes.IndexByte(raw, '\\') >= 0 {
		return "", false
	}
	return string(raw[1 : len(raw)-1]), true
}

// lineReader is the client pipe's line reader: a size cap with
// resynchronisation (framing.Resync; docs/faults.md cases 11–13).
type lineReader struct{ r *framing.Reader }

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{r: framing.NewReader(r, max, framing.Resync)}
}

// errTooLarge reports a line over the cap; the reader has skipped it.
var errTooLarge = framing.ErrTooLong

// next returns the next non-empty line without its terminator, or
// errTooLarge for a line over the cap (skipped to its newline).
func (lr *lineReader) next() ([]byte, error) { return lr.r.Next() }

// lineWriter is the client pipe's writer: framing.Writer (one message per
// line, concurrent writes coalesced) to w. Safe for concurrent use; the
// zero value with w set is ready.
type lineWriter struct {
	w    io.Writer
	once sync.Once
	fw   *framing.Writer
}

func (lw *lineWriter) out() *framing.Writer {
	lw.once.Do(func() { lw.fw = framing.NewWriter(lw.w, nil) })
	return lw.fw
}

// write sends msg on a line of its own (compacted if it holds line breaks),
// or queues it behind the write in progress. An error is the first write
// error of the stream (later messages are dropped) or msg's own failure to
// compact.
func (lw *lineWriter) write(msg []byte) error { return lw.out().Write(msg) }

// flush returns once every message written so far is on the wire (or the
// stream failed).
func (lw *lineWriter) flush() { lw.out().Flush() }

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
func encodeError(id json.RawMessage, e *rpcError) []byte {
	body, err := marshalNoEscape(e)
	if err != nil {
		body, _ = marshalNoEscape(&rpcError{Code: codeInternal, Message: "internal error: cannot encode error"})
	}
	b := make([]byte, 0, len(id)+len(body)+40)
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = append(b, id...)
	b = append(b, `,"error":`...)
	b = append(b, body...)
	return append(b, '}')
}

// encodeNotification builds a notification with raw params (nil: none).
func encodeNotification(method string, params json.RawMessage) []byte {
	b := make([]byte, 0, len(method)+len(params)+48)
	b = append(b, `{"jsonrpc":"2.0","method":`...)
	b = appendQuoted(b, method)
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
	b = appendQuoted(b, method)
	if params != nil {
		b = append(b, `,"params":`...)
		b = append(b, params...)
	}
	return append(b, '}')
}

// marshalNoEscape is json.Marshal without HTML escaping and without the
// trailing newline.
func marshalNoEscape(v any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// encodeObject builds a JSON object from raw members, every value byte for
// byte (encoding/json would compact and re-escape json.RawMessage values).
// Keys are sorted so the output is deterministic.
func encodeObject(members map[string]json.RawMessage) []byte {
	keys := make([]string, 0, len(members))
	n := 2
	for k, v := range members {
		keys = append(keys, k)
		n += len(k) + len(v) + 4
	}
	sort.Strings(keys)
	b := make([]byte, 0, n)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendQuoted(b, k)
		b = append(b, ':')
		b = append(b, members[k]...)
	}
	return append(b, '}')
}

// findMember locates member name of obj, a JSON object: obj[start:end] is
// its value, start and end are -1 when it is absent. ok is false when obj
// is not an object strictjson accepts, or holds the name written otherwise
// (escaped, or in another case: a reader matching names case-insensitively
// could take that member for it), so that the member rewritten is the one
// every reader reads.
func findMember(obj []byte, name string) (start, end int, ok bool) {
	if strictjson.ValidateObject(obj, maxMessageDepth) != nil {
		return -1, -1, false
	}
	start, end = -1, -1
	i := strictjson.SkipSpace(obj, strictjson.SkipSpace(obj, 0)+1) // past '{'
	for i < len(obj) && obj[i] == '"' {
		kEnd := strictjson.SkipString(obj, i)
		vStart := strictjson.SkipSpace(obj, strictjson.SkipSpace(obj, kEnd)+1) // past ':'
		vEnd := strictjson.SkipValue(obj, vStart)
		if key, _ := plainString(obj[i:kEnd]); strictjson.SameName(key, name) {
			if start >= 0 || string(obj[i+1:kEnd-1]) != name {
				return -1, -1, false
			}
			start, end = vStart, vEnd
		}
		i = strictjson.SkipSpace(obj, vEnd)
		if i < len(obj) && obj[i] == ',' {
			i = strictjson.SkipSpace(obj, i+1)
		}
	}
	return start, end, true
}

// setMember returns obj with member name's value replaced by value, every
// other byte as it was; when absent, the member is added first. ok is false
// (and obj returned as it is) when findMember refuses obj.
func setMember(obj []byte, name string, value []byte) ([]byte, bool) {
	start, end, ok := findMember(obj, name)
	if !ok {
		return obj, false
	}
	if start < 0 {
		open := strictjson.SkipSpace(obj, 0) + 1
		head := appendQuoted(append([]byte(nil), obj[:open]...), name)
		head = append(append(head, ':'), value...)
		if rest := obj[open:]; strictjson.SkipSpace(rest, 0) < len(rest) && rest[strictjson.SkipSpace(rest, 0)] != '}' {
			head = append(head, ',')
		}
		return append(head, obj[open:]...), true
	}
	out := make([]byte, 0, len(obj)-(end-start)+len(value))
	out = append(append(append(out, obj[:start]...), value...), obj[end:]...)
	return out, true
}

// quote encodes s as a JSON string without HTML escaping.
func quote(s string) json.RawMessage {
	return appendQuoted(make([]byte, 0, len(s)+2), s)
}

// appendQuoted appends s encoded as marshalNoEscape encodes it. Printable
// ASCII other than `"` and `\` is copied as it is (the usual tool, method and
// member names: no encoder, no reflection); anything else is encoded by
// encoding/json (escapes, U+2028/U+2029, invalid UTF-8).
func appendQuoted(b []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			q, _ := marshalNoEscape(s)
			return append(b, q...)
		}
	}
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// plainString decodes a JSON string token that strictjson has accepted. A
// token without escapes (the usual tool name) is sliced rather than decoded
// by encoding/json (it runs on every call); ok is false for anything but a string.
func plainString(raw json.RawMessage) (s string, ok bool) {
	if n := len(raw); n >= 2 && raw[0] == '"' && raw[n-1] == '"' && bytes.IndexByte(raw[1:n-1], '\\') < 0 {
		return string(raw[1 : n-1]), true
	}
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}
