package upstreams

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/sigilcore/sigil-hub/internal/framing"
	"github.com/sigilcore/sigil-hub/internal/strictjson"
)

// maxUpstreamLine bounds one message from a stdio upstream: a child writing
// one endless line must not exhaust the hub's memory. A longer line is a
// protocol error: the upstream is restarted.
const maxUpstreamLine = 16 << 20

// stdioConn is the conn of a stdio upstream (package doc): newline-delimited
// JSON-RPC over the child's pipes, frames written from the caller's bytes,
// and each line read with one strict scan (splitMessage) that decodes
// nothing but the id and method.
type stdioConn struct {
	wire
	r    *framing.Reader
	w    *framing.Writer
	lost func(error) // the session's markLost: the stream ended or broke

	mu      sync.Mutex
	pending map[int64]chan reply // request id → answer; guarded by mu

	chans  sync.Pool // one-slot answer channels, recycled once emptied
	frames sync.Pool // *[]byte request frame buffers (the writer copies them)

	// done ends when the stream ended or close was called; its cause says
	// why.
	done   context.Context
	finish context.CancelCauseFunc
}

// reply is the answer to one request.
type reply struct {
	result json.RawMessage
	err    error // *RPCError, or ErrInvalidResponse
}

// newStdioConn starts reading stdout; a write error or the end of stdout
// calls lost.
func newStdioConn(stdout io.Reader, stdin io.WriteCloser, w wire, lost func(error)) (*stdioConn, error) {
	c := &stdioConn{
		wire:    w,
		r:       framing.NewReader(stdout, maxUpstreamLine, framing.Strict),
		lost:    lost,
		pending: make(map[int64]chan reply),
	}
	c.done, c.finish = context.WithCancelCause(context.Background())
	c.w = framing.NewWriter(stdin, func(err error) { lost(fmt.Errorf("write to stdin: %w", err)) })
	c.chans.New = func() any { return make(chan reply, 1) }
	c.frames.New = func() any { b := make([]byte, 0, 512); return &b }
	if !c.bg(c.readLoop) {
		return nil, errors.New("stdio upstream: connection closing")
	}
	return c, nil
}

// close fails the calls in flight and closes the child's stdin.
func (c *stdioConn) close() error {
	c.finish(errors.New("connection closed"))
	if err := c.w.Close(); err != nil {
		return fmt.Errorf("close stdin: %w", err)
	}
	return nil
}

func (c *stdioConn) call(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	if c.done.Err() != nil {
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, context.Cause(c.done))
	}
	id := c.ids.Add(1)
	noteSentID(ctx, id)
	bp := c.frames.Get().(*[]byte)
	frame := appendMessage((*bp)[:0], strconv.AppendInt(nil, id, 10), method, params)
	ch := c.chans.Get().(chan reply)
	c.mu.Lock()
	c.pending[id] = ch
	c.mu.Unlock()
	err := c.w.Write(frame)
	if cap(frame) <= 64<<10 {
		*bp = frame[:0]
		c.frames.Put(bp)
	}
	if err != nil {
		c.forget(id)
		return nil, fmt.Errorf("%w: %w", ErrLost, err)
	}
	select {
	case r := <-ch:
		c.chans.Put(ch) // emptied, and no longer in pending
		return r.result, r.err
	case <-c.done.Done():
		// An answer may have arrived just before the stream ended.
		select {
		case r := <-ch:
			return r.result, r.err
		default:
		}
		c.forget(id)
		return nil, fmt.Errorf("%w: %w", ErrLost, context.Cause(c.done))
	case <-ctx.Done():
		c.forget(id)
		c.cancelLater(c, ctx, id, ctx.Err())
		return nil, ctx.Err()
	}
}

// forget drops the answer channel of an abandoned request; a late answer
// is then dropped (the channel is never reused: the read loop may hold it).
func (c *stdioConn) forget(id int64) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

func (c *stdioConn) notify(ctx context.Context, method string, params json.RawMessage) error {
	select {
	case <-c.done.Done():
		return fmt.Errorf("%w: %w", ErrUnavailable, context.Cause(c.done))
	case <-ctx.Done():
		return ctx.Err()
	default:
	}
	if err := c.w.Write(appendMessage(nil, nil, method, params)); err != nil {
		return fmt.Errorf("%w: %w", ErrLost, err)
	}
	return nil
}

// appendMessage appends a request (id set) or notification frame with
// params verbatim (nil: none).
func appendMessage(b, id []byte, method string, params json.RawMessage) []byte {
	b = append(b, `{"jsonrpc":"2.0"`...)
	if id != nil {
		b = append(append(b, `,"id":`...), id...)
	}
	b = strictjson.AppendString(append(b, `,"method":`...), method)
	if params != nil {
		b = append(append(b, `,"params":`...), params...)
	}
	return append(b, '}')
}

// readLoop reads the child's stdout until it ends (or breaks the framing),
// handing each line to handleLine; then it fails every request still
// waiting.
func (c *stdioConn) readLoop() {
	for {
		line, err := c.r.Next()
		if err != nil {
			switch {
			case errors.Is(err, framing.ErrTooLong):
				err = fmt.Errorf("%w: a message longer than %d bytes", ErrProtocol, maxUpstreamLine)
			case !errors.Is(err, io.EOF) && !errors.Is(err, fs.ErrClosed):
				c.log.Error("Error reading from stdout", "err", err)
				fallthrough
			default:
				err = fmt.Errorf("stdout closed: %w", err)
			}
			c.lost(err)
			c.finish(err)
			return
		}
		c.handleLine(line)
	}
}

// handleLine handles one line: a notification goes to the inbound, a
// request is answered, a response reaches the request with its id.
// Anything else (a banner, malformed JSON, an answer nobody waits for) is
// skipped.
func (c *stdioConn) handleLine(line []byte) {
	m, ok := splitMessage(line)
	if !ok {
		return
	}
	switch {
	case m.method != "" && m.id == nil:
		c.in.onNotification(m.method, m.params)
	case m.method != "":
		c.answer(m)
	default:
		id, ok := integerID(m.id)
		if !ok {
			return // not one of ours
		}
		r := reply{result: m.result}
		switch {
		case m.error != nil && m.result != nil:
			r = reply{err: errResultAndError}
		case m.error != nil:
			r.err = decodeRPCError(m.error)
		case m.result == nil:
			r.result = json.RawMessage(`{}`)
		}
		c.deliver(id, r)
	}
}

// deliver hands r to the request waiting for id; an answer nobody waits
// for (unknown id, duplicate, abandoned request) is dropped.
func (c *stdioConn) deliver(id int64, r reply) {
	c.mu.Lock()
	ch, ok := c.pending[id]
	delete(c.pending, id)
	c.mu.Unlock()
	if ok {
		ch <- r // cap 1, and each channel gets one answer
	}
}

// answer answers a server→client request on a goroutine of its own.
func (c *stdioConn) answer(m message) {
	c.bg(func() {
		res, err := c.in.onRequest(context.Background(), m.method, m.params)
		if err == nil && !validJSON(res) {
			err = errors.New("the answer is not valid JSON")
		}
		b := append(append([]byte(`{"jsonrpc":"2.0","id":`), m.id...), ',')
		if err == nil {
			b = append(append(append(b, `"result":`...), res...), '}')
		} else {
			b = appendRPCError(b, err)
		}
		if err := c.w.Write(b); err != nil {
			c.log.Error("Error writing response", "err", err)
		}
	})
}

// appendRPCError appends `"error":{…}}`: err's code, message and data when
// it is an *RPCError (data only when it is valid JSON), else -32603 with
// err's text.
func appendRPCError(b []byte, err error) []byte {
	rpc := &RPCError{Code: codeInternalError, Message: err.Error()}
	errors.As(err, &rpc)
	b = strconv.AppendInt(append(b, `"error":{"code":`...), int64(rpc.Code), 10)
	b = strictjson.AppendString(append(b, `,"message":`...), rpc.Message)
	if len(rpc.Data) > 0 && validJSON(rpc.Data) {
		b = append(append(b, `,"data":`...), rpc.Data...)
	}
	return append(b, "}}"...)
}

// errResultAndError answers a response carrying both a result and an
// error: it is malformed (JSON-RPC 2.0 §5), and neither part is trusted.
var errResultAndError = fmt.Errorf("%w: response has both result and error", ErrInvalidResponse)

// JSON-RPC error codes the upstreams package answers with.
const (
	codeMethodNotFound = -32601
	codeInternalError  = -32603
)

// decodeRPCError reads an error answer's error member.
func decodeRPCError(raw json.RawMessage) error {
	var e struct {
		Code    int             `json:"code"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(raw, &e); err != nil {
		return fmt.Errorf("%w: error member: %v", ErrInvalidResponse, err)
	}
	rpc := &RPCError{Code: e.Code, Message: e.Message}
	if len(e.Data) > 0 && string(e.Data) != "null" {
		rpc.Data = e.Data
	}
	return rpc
}

// message is one line from a stdio upstream split into the members of a
// JSON-RPC message. The raw members are the line's own bytes (nil when
// absent or null).
type message struct {
	id, params, result, error json.RawMessage
	method                    string // "" when absent
}

// messageMembers are the member names of a JSON-RPC message.
var messageMembers = [...]string{"jsonrpc", "id", "method", "params", "result", "error"}

// splitMessage splits line with one strict pass (strictjson: one object,
// valid UTF-8, no duplicate member). It reports false for what is not a
// message: anything else, a "jsonrpc" other than "2.0", a method that is
// not a string, an id that is not a string or a number, notification
// params that are not an object, or a member whose name is a message
// member's written otherwise (escaped, or another case: decoders that
// match names case-insensitively, as Go's does, would read it as that
// member).
func splitMessage(line []byte) (m message, ok bool) {
	if strictjson.ValidateObject(line, validJSONDepth) != nil {
		return m, false
	}
	start := strictjson.SkipSpace(line, 0) // at '{'
	for i := strictjson.SkipSpace(line, start+1); i < len(line) && line[i] == '"'; {
		kEnd := strictjson.SkipString(line, i)
		key := line[i+1 : kEnd-1]
		vStart := strictjson.SkipSpace(line, strictjson.SkipSpace(line, kEnd)+1) // past ':'
		vEnd := strictjson.SkipValue(line, vStart)
		v := json.RawMessage(line[vStart:vEnd:vEnd])
		if string(v) == "null" {
			v = nil
		}
		switch string(key) {
		case "jsonrpc":
			if string(v) != `"2.0"` {
				return m, false
			}
		case "id":
			m.id = v
		case "method":
			if v != nil {
				if m.method, ok = strictjson.DecodeString(v); !ok {
					return m, false
				}
			}
		case "params":
			m.params = v
		case "result":
			m.result = v
		case "error":
			m.error = v
		default:
			if messageMember(line[i:kEnd]) {
				return m, false
			}
		}
		i = strictjson.SkipSpace(line, vEnd)
		if i < len(line) && line[i] == ',' {
			i = strictjson.SkipSpace(line, i+1)
		}
	}
	if m.id != nil && m.id[0] != '"' && m.id[0] != '-' && (m.id[0] < '0' || m.id[0] > '9') {
		return m, false
	}
	if m.method != "" && m.id == nil && m.params != nil && m.params[0] != '{' {
		return m, false
	}
	return m, true
}

// messageMember reports whether the member name token (quoted, as written)
// names a message member to a case-insensitive decoder.
func messageMember(token []byte) bool {
	name := string(token[1 : len(token)-1])
	if strings.ContainsAny(name, `\`) {
		if json.Unmarshal(token, &name) != nil {
			return true
		}
	}
	return slices.ContainsFunc(messageMembers[:], func(mm string) bool { return strictjson.SameName(name, mm) })
}

// integerID reads a response id written as an integer (as every server
// echoes ours); anything else is not one of ours.
func integerID(raw json.RawMessage) (int64, bool) {
	id, err := strconv.ParseInt(string(raw), 10, 64)
	return id, err == nil
}
