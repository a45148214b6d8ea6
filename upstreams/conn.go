package upstreams

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync/atomic"
	"time"
)

// conn is one live connection to an upstream server, raw JSON in and out:
// call, notify and close, with what the server sends unasked (notifications
// and server→client requests) handed to an inbound as the bytes it sent. A
// session holds one. Methods are safe for concurrent use.
type conn interface {
	// call sends one request with an id of its own and params verbatim
	// (nil: none; otherwise one valid JSON value, which Upstream.Call
	// checks) and returns the raw result. If ctx ends first it tells the
	// server the request is cancelled and returns ctx.Err(). Errors:
	// *RPCError (the server's error answer), ErrInvalidResponse (a
	// malformed answer), ErrUnavailable (not sent), ErrLost (sent, no
	// answer; the connection is gone), ErrAuth, *HTTPStatusError,
	// *RedirectError, *CrossOriginError (remote only), ctx.Err().
	call(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error)
	// notify sends one notification with params verbatim (nil: none;
	// otherwise a JSON object). Errors as for call.
	notify(ctx context.Context, method string, params json.RawMessage) error
	// close ends the connection; calls in flight fail with ErrLost.
	close() error
}

// inbound receives what an upstream sends unasked: the session.
type inbound interface {
	// onNotification gets every notification, in arrival order, on the
	// connection's read loop, so it must not block. params are the
	// server's bytes (nil when absent) in a buffer that is not reused.
	onNotification(method string, params json.RawMessage)
	// onRequest answers one server→client request; it may block and is
	// called on a goroutine of its own. params as for onNotification. An
	// error of type *RPCError is sent as it is, any other as -32603.
	onRequest(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error)
}

// wire is what a conn gets from its session.
type wire struct {
	in  inbound
	ids *atomic.Int64 // request ids: the upstream's, so that they never repeat
	// bg runs f on a goroutine the session joins when it closes; false
	// (f not run) once it is closing.
	bg  func(f func()) bool
	log *slog.Logger
}

// sentIDKey marks a ctx whose caller wants the id its request is sent
// with (the listen matches its acknowledgement by it: modern.go).
type sentIDKey struct{}

// noteSentID tells the caller of a request made with ctx its id, if asked.
func noteSentID(ctx context.Context, id int64) {
	if p, ok := ctx.Value(sentIDKey{}).(*atomic.Int64); ok {
		p.Store(id)
	}
}

// cancelTimeout bounds sending notifications/cancelled after a caller gave up.
const cancelTimeout = 5 * time.Second

// cancelLater tells the server that request id is abandoned (MCP
// cancellation), on a background goroutine so that the caller is not held;
// not for a request whose ctx is marked noCancelKey (era.go's probe).
func (w *wire) cancelLater(c conn, ctx context.Context, id int64, cause error) {
	if ctx.Value(noCancelKey{}) != nil {
		return
	}
	params, err := json.Marshal(struct {
		RequestID int64  `json:"requestId"`
		Reason    string `json:"reason"`
	}{id, cause.Error()})
	if err != nil {
		return
	}
	w.bg(func() {
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cancelTimeout)
		defer cancel()
		if err := c.notify(cctx, "notifications/cancelled", params); err != nil {
			w.log.Debug("send notifications/cancelled failed", "request_id", id, "err", err)
		}
	})
}
