package upstreams

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/mark3labs/mcp-go/mcp"
)

// remoteConn is the conn of a remote upstream (package doc): raw calls go
// out as mcp-go requests (raw.go keeps the params' bytes), notifications
// and server requests come in re-encoded from mcp-go's decoding, and
// mcp-go's errors are classified by their types and by the HTTP status the
// request got (callStatus), never by their text.
type remoteConn struct {
	wire
	t    transport.Interface
	hc   *http.Client
	raw  *rawParams
	lost func(error) // the session's markLost
	// modern: the transport speaks 2026-07-28 (era.go): each request gets
	// the Mcp-Method, Mcp-Name and Mcp-Param-* headers, a 404 is an answer
	// (not a lost session), and cancelling is closing the request's
	// stream (no notifications/cancelled). tool finds a tool's
	// x-mcp-header annotations.
	modern bool
	tool   func(name string) *mcp.Tool
}

// newRemoteConn wraps t, whose HTTP client is hc; call before t.Start.
func newRemoteConn(t transport.Interface, hc *http.Client, raw *rawParams, w wire, lost func(error)) *remoteConn {
	c := &remoteConn{wire: w, t: t, hc: hc, raw: raw, lost: lost}
	t.SetNotificationHandler(c.onNotification)
	if bt, ok := t.(transport.BidirectionalInterface); ok {
		bt.SetRequestHandler(c.onRequest)
	}
	return c
}

func (c *remoteConn) call(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	id := c.ids.Add(1)
	noteSentID(ctx, id)
	req := transport.JSONRPCRequest{JSONRPC: mcp.JSONRPC_VERSION, ID: mcp.NewRequestId(id), Method: method}
	if len(params) > 0 {
		tok, release := c.raw.add(params)
		defer release()
		req.Params = json.RawMessage(tok)
	}
	if c.modern {
		req.Header = c.modernHeaders(method, params)
	}
	st, _ := ctx.Value(callStatusKey{}).(*callStatus) // the probe reads the status too
	if st == nil {
		st = &callStatus{}
		ctx = context.WithValue(ctx, callStatusKey{}, st)
	}
	resp, err := c.t.SendRequest(ctx, req)
	if err != nil {
		if ctxErr := ctx.Err(); ctxErr != nil {
			if !c.modern {
				c.cancelLater(c, ctx, id, ctxErr)
			}
			return nil, ctxErr
		}
		if c.modern && errors.Is(err, transport.ErrSessionTerminated) {
			return nil, modernStatus(st)
		}
		return nil, c.classify(err, st)
	}
	if resp == nil {
		return nil, fmt.Errorf("%w: no response", ErrLost)
	}
	if resp.Error != nil && len(resp.Result) > 0 {
		return nil, errResultAndError
	}
	if resp.Error != nil {
		rpc := &RPCError{Code: resp.Error.Code, Message: resp.Error.Message}
		if resp.Error.Data != nil {
			if b, err := json.Marshal(resp.Error.Data); err == nil {
				rpc.Data = b
			}
		}
		return nil, rpc
	}
	if len(resp.Result) == 0 {
		return json.RawMessage(`{}`), nil
	}
	return resp.Result, nil
}

func (c *remoteConn) notify(ctx context.Context, method string, params json.RawMessage) error {
	n := mcp.JSONRPCNotification{JSONRPC: mcp.JSONRPC_VERSION, Notification: mcp.Notification{Method: method}}
	if len(params) > 0 {
		// mcp-go encodes notification params from a map: the token is
		// its one key (rawParams.substitute).
		tok, release := c.raw.add(params)
		defer release()
		key := string(tok[1 : len(tok)-1])
		n.Params = mcp.NotificationParams{AdditionalFields: map[string]any{key: true}}
	}
	st := &callStatus{}
	if err := c.t.SendNotification(context.WithValue(ctx, callStatusKey{}, st), n); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return c.classify(err, st)
	}
	return nil
}

// close ends the remote session (mcp-go sends its DELETE) and closes the
// client's idle connections.
func (c *remoteConn) close() error {
	err := c.t.Close()
	c.hc.CloseIdleConnections()
	return err
}

// setProtocolVersion gives the negotiated version to the transport, which
// sends it as a header.
func (c *remoteConn) setProtocolVersion(v string) {
	if hc, ok := c.t.(transport.HTTPConnection); ok {
		hc.SetProtocolVersion(v)
	}
}

// onNotification runs on the transport's read loop.
func (c *remoteConn) onNotification(n mcp.JSONRPCNotification) {
	p := n.Params
	if len(p.Meta) == 0 {
		p.Meta = nil
	}
	var raw json.RawMessage
	if p.Meta != nil || len(p.AdditionalFields) > 0 {
		b, err := json.Marshal(p)
		if err != nil {
			c.log.Warn("re-encode notification params", "method", n.Method, "err", err)
			return
		}
		raw = b
	}
	c.in.onNotification(n.Method, raw)
}

// onRequest answers a server→client request.
func (c *remoteConn) onRequest(ctx context.Context, req transport.JSONRPCRequest) (*transport.JSONRPCResponse, error) {
	var params json.RawMessage
	if req.Params != nil {
		b, err := json.Marshal(req.Params)
		if err != nil {
			return transport.NewJSONRPCErrorResponse(req.ID, mcp.INVALID_PARAMS, "invalid params", nil), nil
		}
		params = b
	}
	res, err := c.in.onRequest(ctx, req.Method, params)
	if err != nil {
		rpc := &RPCError{Code: mcp.INTERNAL_ERROR, Message: err.Error()}
		errors.As(err, &rpc)
		var data any
		if len(rpc.Data) > 0 {
			data = rpc.Data
		}
		return transport.NewJSONRPCErrorResponse(req.ID, rpc.Code, rpc.Message, data), nil
	}
	return transport.NewJSONRPCResultResponse(req.ID, res), nil
}

// callStatusKey carries a call's *callStatus in its requests' context.
type callStatusKey struct{}

// callStatus is the HTTP error status (4xx, 5xx) the last request of one
// call or notification got, recorded by statusRoundTripper: the typed fact
// behind mcp-go's "request failed with status N" errors. body is the start
// of a 404's body, which mcp-go drops (a modern server answers -32601 so).
type callStatus struct {
	code atomic.Int32
	body atomic.Pointer[[]byte]
}

// maxErrorBody bounds the 404 body callStatus keeps.
const maxErrorBody = 64 << 10

// statusRoundTripper, the outermost layer of a remote upstream's HTTP
// client, turns what a request got into the facts classify reads: an
// untrusted certificate becomes a failed dial (isCertificateError), an
// HTTP error status is recorded in the request's callStatus, if it has
// one, and the resource_metadata URL of a 401's WWW-Authenticate challenge
// (RFC 9728 §5.1) is kept for authHint (which reads it only without OAuth,
// when no layer below retries a 401). It also lets
// http.Client.CloseIdleConnections (called when a session closes) reach the
// transport under the layers: without it every reconnect would leave the
// old transport's keep-alive sockets open until they idle out (90 s).
type statusRoundTripper struct {
	base http.RoundTripper
	u    *Upstream
	idle *http.Transport
}

func (rt statusRoundTripper) CloseIdleConnections() { rt.idle.CloseIdleConnections() }

func (rt statusRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := rt.base.RoundTrip(req)
	if err != nil && isCertificateError(err) {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("tls handshake with %s: %w", req.URL.Host, err)}
	}
	if err != nil || resp.StatusCode < 400 {
		return resp, err
	}
	if resp.StatusCode == http.StatusUnauthorized {
		for _, h := range resp.Header.Values("WWW-Authenticate") {
			if m := resourceMetadata(h); m != "" {
				rt.u.challenge.Store(&m)
				break
			}
		}
	}
	if st, ok := req.Context().Value(callStatusKey{}).(*callStatus); ok {
		st.code.Store(int32(resp.StatusCode))
		if resp.StatusCode == http.StatusNotFound {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
			_ = resp.Body.Close()
			st.body.Store(&b)
			resp.Body = io.NopCloser(bytes.NewReader(b))
		}
	}
	return resp, nil
}

// classify maps a transport failure (the caller's ctx still alive) to this
// package's errors: a refusal of the origin guard, ErrAuth, ErrUnavailable
// (certainly not sent), *HTTPStatusError or ErrLost; it marks the session
// lost when the failure means the connection is gone.
func (c *remoteConn) classify(err error, st *callStatus) error {
	if r := refusal(err); r != nil {
		// A redirect, or a request for another origin: the origin guard
		// refused it (and marked the session lost); the error says why
		// and what to do, without the transport's wrapping.
		c.lost(r)
		return r
	}
	var op *net.OpError
	status := int(st.code.Load())
	switch {
	case is401(err):
		return fmt.Errorf("%w (HTTP 401): %w", ErrAuth, err) // the typed cause stays in the chain (OAuth)
	case errors.Is(err, transport.ErrLegacySSEServer):
		// initialize got a 4xx: dialRemote falls back to legacy SSE.
	case errors.Is(err, transport.ErrTransportClosed), errors.Is(err, transport.ErrSessionTerminated):
		c.lost(err)
	// Only the status is kept: the body (in err's text) is the remote's
	// and may echo anything, the hub's own headers included.
	case status == http.StatusForbidden:
		return fmt.Errorf("%w (HTTP 403)", ErrAuth)
	case status >= 400:
		return &HTTPStatusError{Status: status}
	case errors.As(err, &op) && op.Op == "dial":
		c.lost(err)
		return fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return fmt.Errorf("%w: %w", ErrLost, err)
}

// noResponseTimeout replaces mcp-go's 60 s SSE response timeout: a long tool
// call is bounded by the caller's ctx, not by the transport.
const noResponseTimeout = 100 * 365 * 24 * time.Hour

// dialRemote connects to a remote upstream and settles its era: a
// Streamable HTTP upstream is first probed with server/discover on a
// modern transport (era.go), kept if it speaks 2026-07-28; otherwise it is
// dialled as before, with the handshake (part of dialling because "auto"
// falls back to SSE when the Streamable HTTP initialize gets a 4xx).
// connCtx outlives the dial: it carries the GET / SSE stream.
func (u *Upstream) dialRemote(ctx, connCtx context.Context) (*session, error) {
	probed := false
	if t := u.spec.Transport; (t == "" || t == "auto" || t == "streamable") && u.probes() {
		probed = true
		s, err := u.probeRemote(ctx, connCtx)
		if err != nil || s != nil {
			return s, err
		}
	}
	s, err := u.dialLegacy(ctx, connCtx)
	switch {
	case err != nil:
		u.legacyKnown.Store(false) // probe again: the server may speak 2026-07-28 now
	case probed:
		u.legacyKnown.Store(true)
	}
	return s, err
}

// dialLegacy connects to a remote upstream that does not speak 2026-07-28.
func (u *Upstream) dialLegacy(ctx, connCtx context.Context) (*session, error) {
	switch u.spec.Transport {
	case "", "auto":
		s, err := u.dialStreamable(ctx, connCtx)
		if err == nil || !errors.Is(err, transport.ErrLegacySSEServer) {
			return s, err
		}
		u.log.Info("streamable HTTP initialize got a 4xx; falling back to legacy SSE")
		return u.dialSSE(ctx, connCtx)
	case "streamable":
		return u.dialStreamable(ctx, connCtx)
	case "sse":
		return u.dialSSE(ctx, connCtx)
	}
	return nil, fmt.Errorf("unknown transport %q (want auto, streamable or sse)", u.spec.Transport)
}

func (u *Upstream) dialStreamable(ctx, connCtx context.Context) (*session, error) {
	s, err := u.startStreamable(ctx, connCtx, false)
	if err != nil {
		return nil, err
	}
	if err := s.handshake(ctx); err != nil {
		s.close()
		return nil, fmt.Errorf("streamable HTTP %q: %w", u.spec.URL, err)
	}
	return s, nil
}

// startStreamable makes a session on a started Streamable HTTP transport,
// legacy or (modern) speaking 2026-07-28, whose conn is a remoteConn;
// nothing is sent yet.
func (u *Upstream) startStreamable(ctx, connCtx context.Context, modern bool) (*session, error) {
	s := newSession(u)
	// The configured headers are added by the origin guard (not by mcp-go,
	// whose session DELETE goes out without them).
	hc, ort := u.httpClient(s.markLost, false)
	opts := []transport.StreamableHTTPCOption{
		transport.WithHTTPBasicClient(hc),
		transport.WithHTTPLogger(u.log),
	}
	if !modern {
		// The GET stream carries list_changed; it stays on because the
		// connection is pinned to a legacy protocol version (2026-07-28
		// has no GET stream: subscriptions/listen, modern.go).
		opts = append(opts, transport.WithContinuousListening())
	}
	if u.oauth != nil {
		// Without a callback (or when it could not listen) a stored token
		// still works; authorize reports the problem if a flow is needed.
		redirect := ""
		if cb := u.oauth.cfg.Callback; cb != nil {
			redirect, _ = cb.RedirectURI(ctx)
		}
		opts = append(opts, transport.WithHTTPOAuth(u.oauth.config(redirect)))
	}
	t, err := transport.NewStreamableHTTP(u.spec.URL, opts...)
	if err != nil {
		s.close()
		return nil, fmt.Errorf("streamable HTTP %q: %w", u.spec.URL, err)
	}
	if ort != nil { // u.oauth is set
		ort.handler.Store(t.GetOAuthHandler())
		u.oauth.handler.Store(t.GetOAuthHandler())
	}
	rc := newRemoteConn(t, hc, u.raw, s.wire(), s.markLost)
	if modern {
		t.SetProtocolVersion(modernVersion) // before Start: no session, no GET stream
		rc.modern, rc.tool = true, u.paramHeaderTool
	}
	s.c = rc
	if err := t.Start(connCtx); err != nil {
		s.close()
		return nil, fmt.Errorf("streamable HTTP %q: start: %w", u.spec.URL, err)
	}
	return s, nil
}

// modernHeaders are a modern request's Mcp-Method and Mcp-Name headers (a
// task's id for tasks/get, tasks/update and tasks/cancel),
// plus, for a tools/call, the Mcp-Param-* headers the upstream's tool
// definition asks for (from the params that are sent: the authorized
// arguments).
func (c *remoteConn) modernHeaders(method string, params json.RawMessage) http.Header {
	h := http.Header{}
	for k, v := range mcp.StandardHeaders(modernVersion, mcp.MCPMethod(method), params) {
		h.Set(k, v)
	}
	switch method {
	case "tasks/get", "tasks/update", "tasks/cancel": // the tasks extension names the task (docs/protocol.md#mcp-revisions)
		var p struct {
			TaskID string `json:"taskId"`
		}
		if json.Unmarshal(params, &p) == nil {
			if v, ok := mcp.EncodeHeaderValue(p.TaskID); ok {
				h.Set(mcp.HeaderName, v)
			}
		}
	}
	if method == string(mcp.MethodToolsCall) && c.tool != nil {
		if name, ok := mcp.ExtractHeaderName(mcp.MethodToolsCall, params); ok {
			if t := c.tool(name); t != nil {
				for k, v := range mcp.GenerateParamHeaders(t, params) {
					h.Set(k, v)
				}
			}
		}
	}
	return h
}

func (u *Upstream) dialSSE(ctx, connCtx context.Context) (*session, error) {
	if u.oauth != nil {
		return nil, fmt.Errorf("SSE %q: oauth is supported over Streamable HTTP only", u.spec.URL)
	}
	s := newSession(u)
	// The configured headers are added by the origin guard, which also
	// checks the endpoint the server names for the POSTs.
	hc, _ := u.httpClient(s.markLost, true)
	endpointWait := u.spec.InitTimeout
	if dl, ok := ctx.Deadline(); ok {
		endpointWait = time.Until(dl)
	}
	opts := []transport.ClientOption{
		transport.WithHTTPClient(hc),
		transport.WithSSELogger(u.log),
		transport.WithResponseTimeout(noResponseTimeout),
		transport.WithEndpointTimeout(max(endpointWait, time.Millisecond)),
	}
	t, err := transport.NewSSE(u.spec.URL, opts...)
	if err != nil {
		s.close()
		return nil, fmt.Errorf("SSE %q: %w", u.spec.URL, err)
	}
	s.c = newRemoteConn(t, hc, u.raw, s.wire(), s.markLost)
	t.SetConnectionLostHandler(func(err error) { s.markLost(fmt.Errorf("SSE stream lost: %w", err)) })
	// The stream ends with the session: a refused endpoint event (which
	// marks it lost) ends the wait for the endpoint at once.
	streamCtx, stop := context.WithCancel(connCtx)
	context.AfterFunc(s.lost, stop)
	if err := t.Start(streamCtx); err != nil {
		return nil, fmt.Errorf("SSE %q: start: %w", u.spec.URL, s.abandon(err))
	}
	if err := s.handshake(ctx); err != nil {
		s.close()
		return nil, fmt.Errorf("SSE %q: %w", u.spec.URL, err)
	}
	return s, nil
}
