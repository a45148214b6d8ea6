// Package front is sigil-hub's client side: the fronts a client connects
// to, and the edge where what a client sends is read and validated, once.
//
// It owns the use of internal/framing on the client pipe (the line reader
// with its size cap, the coalescing writer), the JSON-RPC envelope
// (jsonrpc.go: parseMessage, the strict read with strictjson.ReadInput; the
// typed Request every later stage takes without scanning again, the error
// object and the encoders), the client session (session.go: dispatch,
// requests in flight and their cancellation, the worker goroutines,
// server→client requests and their answers, the initialize handshake and
// the client context it sets), the stdio front (ServeStdio), the
// Streamable HTTP front (http.go: sessions, POST/GET/DELETE, the routing of
// each message to its request's stream) and the connection-limited
// listener (listener.go).
//
// A Request carries its client context (protocol version, capabilities,
// clientInfo, log level): a session-based client's are set at initialize
// and shared by its requests; a request that brings its own (the
// 2026-07-28 revision's params._meta) fits the same type.
//
// What a request means is not the front's business: it hands every
// request to a Handler (package hub implements it) and gives the handler
// a Session to send its own messages through. The JSON-RPC error codes are
// docs/protocol.md#json-rpc-errors.
//
// front imports only the standard library and internal/framing and
// internal/strictjson. It must not import hub, upstreams, authz, router,
// config or mcp-go: package hub imports front (for the Request it is
// handed and the Session it answers through), so the edge stays testable
// with a fake Handler and can never reach an upstream except through the
// pipeline.
package front
