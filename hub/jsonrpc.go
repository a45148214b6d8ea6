package hub

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/sigilcore/sigil-hub/internal/strictjson"
)

// JSON-RPC error codes the hub answers with (../shared/faults.md §2.4,
// sigil-protocol.md D14).
const (
	codeParseError     = -32700
	codeInvalidRequest = -32600
	codeMethodNotFound = -32601
	codeInvalidParams  = -32602
	codeInternal       = -32603
	codeBlocked        = -32001 // every non-approval (D14)
	codeAuthFailure    = -32002 // Sign rejected the API key (D9)
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
// raw bytes the peer sent (ids are echoed byte for byte, faults.md A16).
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
// (faults.md §4 A1–A10). On failure it returns the error to answer with and
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

// lineReader reads newline-delimited messages with a size cap
// (faults.md A11–A13).
type lineReader struct {
	r     *bufio.Reader
	max   int
	first bool
}

func newLineReader(r io.Reader, max int) *lineReader {
	return &lineReader{r: bufio.NewReaderSize(r, 64<<10), max: max, first: true}
}

// stripBOM removes a UTF-8 byte order mark at the very start of the stream
// (some Windows tools write one); anywhere else it is left to fail parsing.
func (lr *lineReader) stripBOM(b []byte) []byte {
	if !lr.first {
		return b
	}
	lr.first = false
	return bytes.TrimPrefix(b, []byte("\xef\xbb\xbf"))
}

// errTooLarge reports a line over the cap; the reader has skipped it.
var errTooLarge = errors.New("message too large")

// next returns the next non-empty line without its terminator. A line over
// the cap is skipped up to its newline and reported as errTooLarge, so the
// stream resynchronises and memory stays bounded.
func (lr *lineReader) next() ([]byte, error) {
	for {
		var buf []byte
		tooLarge := false
		for {
			chunk, err := lr.r.ReadSlice('\n')
			if !tooLarge {
				switch {
				case len(buf)+len(chunk) > lr.max+2:
					tooLarge, buf = true, nil
				case err == bufio.ErrBufferFull && buf == nil:
					// A line longer than the read buffer: one buffer
					// for the largest line allowed, instead of growing
					// by copies that linger until a GC (faults.md G7).
					buf = append(make([]byte, 0, lr.max+2), chunk...)
				default:
					buf = append(buf, chunk...)
				}
			}
			if err == bufio.ErrBufferFull {
				continue
			}
			if err != nil {
				if tooLarge {
					return nil, errTooLarge
				}
				if line := bytes.TrimSpace(lr.stripBOM(buf)); len(line) > 0 && err == io.EOF {
					// A last line without a newline still counts.
					if len(line) > lr.max {
						return nil, errTooLarge
					}
					return line, nil
				}
				return nil, err
			}
			break
		}
		if tooLarge {
			return nil, errTooLarge
		}
		line := bytes.TrimRight(lr.stripBOM(buf), "\r\n \t")
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if len(line) > lr.max {
			return nil, errTooLarge
		}
		return line, nil
	}
}

// Write coalescing limits of lineWriter.
const (
	// maxQueued is how many bytes may wait behind a write in progress
	// before writers block (backpressure on a client that stops reading).
	maxQueued = 1 << 20
	// maxSpare is the largest buffer kept for reuse after a flush.
	maxSpare = 64 << 10
)

// lineWriter writes one message per line; safe for concurrent use.
//
// Writes are coalesced (issue 7): while one goroutine is writing (it yields
// once first, so that a burst can form), the lines of the others are
// queued, in call order, and the same goroutine writes them all before it
// returns. So a burst of responses costs one write, and one read on the
// client side, instead of one per message. A line is therefore on the wire
// only once the writing goroutine is done: flush waits for that. The zero
// value writes to w.
type lineWriter struct {
	mu      sync.Mutex
	w       io.Writer
	err     error     // sticky: the first write error
	queue   []byte    // lines waiting for the writing goroutine
	spare   []byte    // a flushed buffer, reused for the next queue
	writing bool      // a goroutine is writing; it also writes queue
	drained sync.Cond // signalled when a write returns (L is &mu)
}

// write sends msg followed by a newline, or queues it behind the write in
// progress. Raw JSON from upstreams may contain insignificant newlines
// (pretty-printed HTTP bodies): they are compacted first so that a message
// is always exactly one line. An error is the first write error of the
// stream (later messages are dropped); a queued message's own failure is
// seen by the writing goroutine and by the next caller.
func (lw *lineWriter) write(msg []byte) error {
	if bytes.ContainsAny(msg, "\r\n") {
		var b bytes.Buffer
		if err := json.Compact(&b, msg); err != nil {
			return fmt.Errorf("compact outgoing message: %w", err)
		}
		msg = b.Bytes()
	}
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if lw.drained.L == nil {
		lw.drained.L = &lw.mu
	}
	for lw.writing && len(lw.queue) > maxQueued && lw.err == nil {
		lw.drained.Wait()
	}
	if lw.err != nil {
		return lw.err
	}
	lw.queue = append(append(lw.queue, msg...), '\n')
	if lw.writing {
		return nil // the writing goroutine sends it, in order
	}
	lw.writing = true
	// Let the goroutines that are ready to run (under load, other requests
	// about to answer) queue behind this line before the syscall; with
	// nothing else runnable it returns at once.
	lw.mu.Unlock()
	runtime.Gosched()
	lw.mu.Lock()
	for len(lw.queue) > 0 && lw.err == nil {
		b := lw.queue
		lw.queue = lw.spare[:0]
		lw.spare = nil
		lw.mu.Unlock()
		_, err := lw.w.Write(b)
		lw.mu.Lock()
		if err != nil {
			lw.err = err
		}
		if cap(b) <= maxSpare {
			lw.spare = b[:0]
		}
		lw.drained.Broadcast()
	}
	lw.queue = lw.queue[:0]
	if cap(lw.queue) > maxSpare {
		lw.queue = nil // do not keep a burst's buffer
	}
	lw.writing = false
	lw.drained.Broadcast()
	return lw.err
}

// flush returns once every message written so far is on the wire (or the
// stream failed).
func (lw *lineWriter) flush() {
	lw.mu.Lock()
	defer lw.mu.Unlock()
	if lw.drained.L == nil {
		lw.drained.L = &lw.mu
	}
	for lw.writing {
		lw.drained.Wait()
	}
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
// by encoding/json (issue 7); ok is false for anything but a string.
func plainString(raw json.RawMessage) (s string, ok bool) {
	if n := len(raw); n >= 2 && raw[0] == '"' && raw[n-1] == '"' && bytes.IndexByte(raw[1:n-1], '\\') < 0 {
		return string(raw[1 : n-1]), true
	}
	if json.Unmarshal(raw, &s) != nil {
		return "", false
	}
	return s, true
}
