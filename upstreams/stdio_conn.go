package upstreams

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"strconv"
	"strings"
	"sync"

	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"

	"github.com/sigilcore/sigil-hub/internal/strictjson"
)

// stdioConn is the client end of a stdio upstream's JSON-RPC stream:
// newline-delimited messages over the child's stdin (a frameWriter) and
// stdout. It implements mcp-go's transport.BidirectionalInterface, so a
// session drives it as it drives the remote transports.
//
// It replaces mcp-go's transport.Stdio (NewIO), whose read loop decodes every
// incoming line up to three times with encoding/json and whose writes build
// each frame by reflection: together the largest single cost of a tools/call
// in the hub, about a fifth of its CPU (issue 7). The message handling is
// mcp-go's, with one fast path (fastResponse): a well-formed result for an
// integer id is taken from a single strict scan. Anything else gets mcp-go's
// decoding exactly, so malformed and unexpected lines are treated as before
// (skipped, or answered).
//
// Request ids must be integers (the session numbers its requests). Methods
// are safe for concurrent use; set the handlers before Start.
type stdioConn struct {
	r     io.Reader
	w     *frameWriter
	log   *slog.Logger
	spawn func(func()) bool // runs f on a goroutine joined by the session; false once closing

	handlerMu sync.RWMutex
	onNote    func(mcp.JSONRPCNotification) // guarded by handlerMu
	onRequest transport.RequestHandler      // guarded by handlerMu
	ctx       context.Context               // Start's; guarded by handlerMu

	mu      sync.Mutex
	pending map[int64]chan *transport.JSONRPCResponse // request id → answer; guarded by mu

	chans  sync.Pool // one-slot answer channels, recycled once emptied
	frames sync.Pool // *[]byte request frame buffers (the frameWriter copies them)

	done      chan struct{} // closed when the stream ended or Close was called
	doneOnce  sync.Once
	closeOnce sync.Once
	closeErr  error
}

var _ transport.BidirectionalInterface = (*stdioConn)(nil)

func newStdioConn(r io.Reader, w *frameWriter, log *slog.Logger, spawn func(func()) bool) *stdioConn {
	c := &stdioConn{
		r:       r,
		w:       w,
		log:     log,
		spawn:   spawn,
		ctx:     context.Background(),
		pending: make(map[int64]chan *transport.JSONRPCResponse),
		done:    make(chan struct{}),
	}
	c.chans.New = func() any { return make(chan *transport.JSONRPCResponse, 1) }
	c.frames.New = func() any { b := make([]byte, 0, 512); return &b }
	return c
}

// Start starts the read loop; ctx is given to server→client request
// handlers.
func (c *stdioConn) Start(ctx context.Context) error {
	c.handlerMu.Lock()
	c.ctx = ctx
	c.handlerMu.Unlock()
	if !c.spawn(c.readLoop) {
		return errors.New("stdio upstream: connection closing")
	}
	return nil
}

// SetNotificationHandler sets the handler of incoming notifications; it
// runs on the read loop.
func (c *stdioConn) SetNotificationHandler(h func(mcp.JSONRPCNotification)) {
	c.handlerMu.Lock()
	c.onNote = h
	c.handlerMu.Unlock()
}

// SetRequestHandler sets the handler of server→client requests; each runs
// on its own goroutine.
func (c *stdioConn) SetRequestHandler(h transport.RequestHandler) {
	c.handlerMu.Lock()
	c.onRequest = h
	c.handlerMu.Unlock()
}

// GetSessionId returns "": stdio has no session id.
func (c *stdioConn) GetSessionId() string { return "" }

// Close ends the connection: requests in flight fail with
// transport.ErrTransportClosed and the child's stdin is closed.
func (c *stdioConn) Close() error {
	c.closeDone()
	c.closeOnce.Do(func() {
		if err := c.w.Close(); err != nil {
			c.closeErr = fmt.Errorf("failed to close stdin: %w", err)
		}
	})
	return c.closeErr
}

func (c *stdioConn) closeDone() { c.doneOnce.Do(func() { close(c.done) }) }

// SendRequest sends request and waits for its answer, ctx, or the end of
// the connection (transport.ErrTransportClosed).
func (c *stdioConn) SendRequest(ctx context.Context, request transport.JSONRPCRequest) (*transport.JSONRPCResponse, error) {
	select {
	case <-c.done:
		return nil, transport.ErrTransportClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	default:
	}
	id, ok := request.ID.Value().(int64)
	if !ok {
		return nil, fmt.Errorf("stdio upstream: request id %v is not an integer", request.ID.Value())
	}
	bp := c.frames.Get().(*[]byte)
	frame, err := appendRequest((*bp)[:0], id, request.Method, request.Params)
	if err != nil {
		c.frames.Put(bp)
		return nil, fmt.Errorf("failed to marshal request: %w", err)
	}
	ch := c.chans.Get().(chan *transport.JSONRPCResponse)
	c.mu.Lock()
	c.pending[id] = ch
	c.mu.Unlock()
	_, err = c.w.Write(frame)
	if cap(frame) <= 64<<10 {
		*bp = frame[:0]
		c.frames.Put(bp)
	}
	if err != nil {
		c.forget(id)
		return nil, fmt.Errorf("failed to write request: %w", err)
	}
	select {
	case resp := <-ch:
		c.chans.Put(ch) // emptied, and no longer in pending
		return resp, nil
	case <-c.done:
		// An answer may have arrived just before the stream ended.
		select {
		case resp := <-ch:
			return resp, nil
		default:
		}
		c.forget(id)
		return nil, transport.ErrTransportClosed
	case <-ctx.Done():
		c.forget(id)
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

// SendNotification sends a notification, encoded as mcp-go does.
func (c *stdioConn) SendNotification(ctx context.Context, n mcp.JSONRPCNotification) error {
	select {
	case <-c.done:
		return transport.ErrTransportClosed
	case <-ctx.Done():
		return ctx.Err()
	default:
	}
	b, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("failed to marshal notification: %w", err)
	}
	if _, err := c.w.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("failed to write notification: %w", err)
	}
	return nil
}

// appendRequest appends the frame of one request with an integer id, the
// bytes json.Marshal(transport.JSONRPCRequest) gives for our requests
// (params: nil, a raw JSON value, or anything json.Marshal encodes),
// followed by a newline.
func appendRequest(b []byte, id int64, method string, params any) ([]byte, error) {
	b = append(b, `{"jsonrpc":"2.0","id":`...)
	b = strconv.AppendInt(b, id, 10)
	b = append(b, `,"method":`...)
	if plainString(method) {
		b = append(append(append(b, '"'), method...), '"')
	} else {
		m, err := json.Marshal(method)
		if err != nil {
			return b, err
		}
		b = append(b, m...)
	}
	if params != nil {
		raw, ok := params.(json.RawMessage)
		if !ok || bytes.ContainsAny(raw, "\r\n") || !json.Valid(raw) {
			// json.Marshal compacts and checks raw values; ours (a
			// placeholder token, or a marshalled value) are already compact.
			var err error
			if raw, err = json.Marshal(params); err != nil {
				return b, err
			}
		}
		b = append(b, `,"params":`...)
		b = append(b, raw...)
	}
	return append(b, "}\n"...), nil
}

// plainString reports whether s needs no escaping in JSON (json.Marshal
// also escapes <, > and &).
func plainString(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}

// readLoop reads the child's stdout until it ends, handing each line to
// handleLine; then it fails every request still waiting.
func (c *stdioConn) readLoop() {
	defer c.closeDone()
	br := bufio.NewReaderSize(c.r, 64<<10)
	for {
		select {
		case <-c.done:
			return
		default:
		}
		line, err := readLine(br)
		if err != nil {
			// A last line without its newline is not a message (mcp-go).
			if !errors.Is(err, io.EOF) && !errors.Is(err, context.Canceled) && !errors.Is(err, fs.ErrClosed) {
				c.log.Error("Error reading from stdout", "err", err)
			}
			return
		}
		c.handleLine(bytes.TrimRight(line, "\r\n"))
	}
}

// readLine is bufio.Reader.ReadBytes('\n') except that a line ended by an
// error (the child's stdout closed, or eofReader's line cap) is dropped as
// the pieces read so far, never joined into one more copy: an oversize
// line is held once, not twice (faults.md G7).
func readLine(br *bufio.Reader) ([]byte, error) {
	var frags [][]byte
	n := 0
	for {
		chunk, err := br.ReadSlice('\n')
		switch {
		case err == bufio.ErrBufferFull:
			frags = append(frags, bytes.Clone(chunk))
			n += len(chunk)
			continue
		case err != nil:
			return nil, err
		}
		line := make([]byte, 0, n+len(chunk))
		for _, f := range frags {
			line = append(line, f...)
		}
		return append(line, chunk...), nil
	}
}

// handleLine handles one incoming line as mcp-go's stdio transport does:
// a notification goes to the handler, a request is answered, a response
// reaches the request with its id; anything else is skipped.
func (c *stdioConn) handleLine(line []byte) {
	if id, resp, ok := fastResponse(line); ok {
		c.deliver(id, resp)
		return
	}
	var base struct {
		JSONRPC string         `json:"jsonrpc"`
		ID      *mcp.RequestId `json:"id,omitempty"`
		Method  string         `json:"method,omitempty"`
	}
	if err := json.Unmarshal(line, &base); err != nil {
		return
	}
	if base.Method != "" && base.ID == nil {
		var n mcp.JSONRPCNotification
		if err := json.Unmarshal(line, &n); err != nil {
			return
		}
		c.handlerMu.RLock()
		h := c.onNote
		c.handlerMu.RUnlock()
		if h != nil {
			h(n)
		}
		return
	}
	if base.Method != "" && base.ID != nil {
		var req transport.JSONRPCRequest
		if err := json.Unmarshal(line, &req); err == nil {
			c.handleRequest(req)
			return
		}
	}
	var resp transport.JSONRPCResponse
	if err := json.Unmarshal(line, &resp); err != nil {
		return
	}
	// mcp-go matches ids by their String(): an integral number is an int64
	// whatever its spelling; strings and null match none of our ids.
	if id, ok := resp.ID.Value().(int64); ok {
		c.deliver(id, &resp)
	}
}

// maxFastID bounds the digits of an id on the fast path: mcp-go reads ids
// as float64, exact up to 2^53.
const maxFastID = 15

// fastResponse decodes line when it is a result for an integer id in the
// form every server sends: one strict pass, no reflection, no allocation
// but the answer. It reports false for anything else (an error, a
// notification or request, duplicate keys, invalid UTF-8, a member name
// that is escaped, non-ASCII or a case variant of a message field, an
// unusual id, a "jsonrpc" other than "2.0"), which then takes mcp-go's
// path. For what it accepts the answer is the one mcp-go's decoding gives:
// same id, same result bytes (unknown members ignored).
func fastResponse(line []byte) (int64, *transport.JSONRPCResponse, bool) {
	start := strictjson.SkipSpace(line, 0)
	if start == len(line) || line[start] != '{' || strictjson.ValidateObject(line, validJSONDepth) != nil {
		return 0, nil, false
	}
	var rawID, result, version []byte
	for i := strictjson.SkipSpace(line, start+1); i < len(line) && line[i] == '"'; {
		kEnd := strictjson.SkipString(line, i)
		key := line[i+1 : kEnd-1]
		vStart := strictjson.SkipSpace(line, strictjson.SkipSpace(line, kEnd)+1) // past ':'
		vEnd := strictjson.SkipValue(line, vStart)
		switch string(key) {
		case "id":
			rawID = line[vStart:vEnd]
		case "result":
			result = line[vStart:vEnd:vEnd]
		case "jsonrpc":
			version = line[vStart:vEnd]
		default:
			if !otherMember(key) {
				return 0, nil, false
			}
		}
		i = strictjson.SkipSpace(line, vEnd)
		if i < len(line) && line[i] == ',' {
			i = strictjson.SkipSpace(line, i+1)
		}
	}
	if result == nil || (version != nil && string(version) != `"2.0"`) {
		return 0, nil, false
	}
	digits := rawID
	neg := len(digits) > 0 && digits[0] == '-'
	if neg {
		digits = digits[1:]
	}
	if len(digits) == 0 || len(digits) > maxFastID {
		return 0, nil, false
	}
	var id int64
	for _, d := range digits {
		if d < '0' || d > '9' {
			return 0, nil, false
		}
		id = id*10 + int64(d-'0')
	}
	if neg {
		id = -id
	}
	resp := &transport.JSONRPCResponse{ID: mcp.NewRequestId(id), Result: json.RawMessage(result)}
	if version != nil {
		resp.JSONRPC = mcp.JSONRPC_VERSION
	}
	return id, resp, true
}

// otherMember reports whether encoding/json, which matches member names to
// fields case-insensitively, would ignore a member named key when decoding a
// message: key is plain ASCII (no escape, so as written; no character whose
// Unicode folding reaches ASCII, such as U+017F) and no case variant of
// "id", "result", "error", "method" or "jsonrpc". Exact "error" and
// "method" are not other members either.
func otherMember(key []byte) bool {
	for _, c := range key {
		if c == '\\' || c >= 0x80 {
			return false
		}
	}
	for _, name := range [...]string{"id", "result", "error", "method", "jsonrpc"} {
		if len(key) == len(name) && strings.EqualFold(string(key), name) {
			return false
		}
	}
	return true
}

// deliver hands resp to the request waiting for id; an answer nobody waits
// for (unknown id, duplicate, abandoned request) is dropped.
func (c *stdioConn) deliver(id int64, resp *transport.JSONRPCResponse) {
	c.mu.Lock()
	ch, ok := c.pending[id]
	delete(c.pending, id)
	c.mu.Unlock()
	if ok {
		ch <- resp // cap 1, and each channel gets one answer
	}
}

// handleRequest answers a server→client request on its own goroutine, as
// mcp-go does.
func (c *stdioConn) handleRequest(req transport.JSONRPCRequest) {
	c.handlerMu.RLock()
	h, ctx := c.onRequest, c.ctx
	c.handlerMu.RUnlock()
	if h == nil {
		c.sendResponse(*transport.NewJSONRPCErrorResponse(req.ID, mcp.METHOD_NOT_FOUND, "No request handler configured", nil))
		return
	}
	c.spawn(func() {
		if err := ctx.Err(); err != nil {
			c.sendResponse(*transport.NewJSONRPCErrorResponse(req.ID, mcp.INTERNAL_ERROR, err.Error(), nil))
			return
		}
		resp, err := h(ctx, req)
		if err != nil {
			c.sendResponse(*transport.NewJSONRPCErrorResponse(req.ID, mcp.INTERNAL_ERROR, err.Error(), nil))
			return
		}
		if resp != nil {
			c.sendResponse(*resp)
		}
	})
}

func (c *stdioConn) sendResponse(resp transport.JSONRPCResponse) {
	b, err := json.Marshal(resp)
	if err != nil {
		c.log.Error("Error marshaling response", "err", err)
		return
	}
	if _, err := c.w.Write(append(b, '\n')); err != nil {
		c.log.Error("Error writing response", "err", err)
	}
}
