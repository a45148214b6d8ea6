package front

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/sigilcore/sigil-hub/internal/strictjson"
)

// This file is the edge for the 2026-07-28 revision of MCP ("modern"
// requests, docs/protocol.md#mcp-revisions): no initialize and no
// session; every request carries its own client context in params._meta.
// A front serves both eras at once: each request is classified on its own
// (isModern), a modern one is checked here in the order the revision
// fixes, and the hub is handed a Request whose ClientContext is the
// request's own, through a Session that is the request's alone
// (requestSession).

// ModernVersion is the MCP revision a modern request speaks.
const ModernVersion = "2026-07-28"

// CodeAuthFailureModern is CodeAuthFailure for a modern request: the
// 2026-07-28 revision forbids -32002 (it meant "resource not found"
// before) and reserves -32020…-32099, so the hub's own code is allocated
// outside the JSON-RPC range, as the revision asks (docs/protocol.md#json-rpc-errors).
const CodeAuthFailureModern = -31002

// Error codes the 2026-07-28 revision defines.
const (
	CodeHeaderMismatch      = -32020
	CodeMissingCapability   = -32021
	CodeUnsupportedProtocol = -32022
)

// Request _meta keys of the 2026-07-28 revision.
const (
	metaProtocolVersion = "io.modelcontextprotocol/protocolVersion"
	metaCapabilities    = "io.modelcontextprotocol/clientCapabilities"
	metaClientInfo      = "io.modelcontextprotocol/clientInfo"
	metaLogLevel        = "io.modelcontextprotocol/logLevel"
)

// AllVersions are every protocol version the fronts speak, newest first:
// server/discover's supportedVersions and the list an unsupported version
// is answered with.
func AllVersions() []string { return append([]string{ModernVersion}, SupportedVersions...) }

// modernMethods are the requests a modern client may send. The revision
// removed the rest (initialize, ping, logging/setLevel,
// resources/subscribe and unsubscribe): they are answered "method not
// found".
var modernMethods = []string{
	"server/discover", "subscriptions/listen",
	"tools/list", "tools/call", "prompts/list", "prompts/get",
	"resources/list", "resources/read", "resources/templates/list",
	"completion/complete",
	// The tasks extension's (io.modelcontextprotocol/tasks); it has no
	// tasks/list or tasks/result.
	"tasks/get", "tasks/update", "tasks/cancel",
}

// LogLevels are the levels a request may ask for (RFC 5424, as MCP names
// them), least severe first.
var LogLevels = []string{"debug", "info", "notice", "warning", "error", "critical", "alert", "emergency"}

// legacyVersion reports whether v is a 2025-era version (one negotiated at
// initialize).
func legacyVersion(v string) bool { return slices.Contains(SupportedVersions, v) }

// metaVersion returns params._meta's protocol version, or "" when the
// request carries none (or params are not what a request holds).
func metaVersion(req *Request) string {
	meta, ok := req.ParamsValid.Member("_meta")
	if !ok || !meta.IsObject() {
		return ""
	}
	raw, ok := meta.Member(metaProtocolVersion)
	if !ok {
		return ""
	}
	v, _ := strictjson.DecodeString(raw.Bytes())
	return v
}

// isModern classifies a request: modern when its protocol version (the
// HTTP header, or params._meta's) is not a 2025-era one, or when its
// method exists only in the modern revision. Anything else is served as
// the 2025 era serves it, in its session.
func isModern(req *Request, header string) bool {
	if header != "" && !legacyVersion(header) {
		return true
	}
	if v := metaVersion(req); v != "" && !legacyVersion(v) {
		return true
	}
	return req.Method == "server/discover" || req.Method == "subscriptions/listen"
}

// modernClient checks a modern request in the order the revision fixes
// and returns its client context. h is the HTTP request's header (nil on
// stdio: the body is all there is).
func modernClient(req *Request, h http.Header) (*ClientContext, *Error) {
	mismatch := func(format string, args ...any) *Error { return Errorf(CodeHeaderMismatch, format, args...) }
	var hv string
	if h != nil {
		if h.Get("Last-Event-ID") != "" {
			return nil, mismatch("Last-Event-ID is not used by MCP %s: a request is never resumed; send it again with a new id", ModernVersion)
		}
		if hv = h.Get("MCP-Protocol-Version"); hv == "" {
			return nil, mismatch("missing MCP-Protocol-Version header: a %s request carries it, equal to params._meta[%q]", ModernVersion, metaProtocolVersion)
		}
	}
	meta, ok := req.ParamsValid.Member("_meta")
	if !ok || !meta.IsObject() {
		return nil, Errorf(CodeInvalidParams, "invalid %s params: a %s request carries params._meta with %q and %q", req.Method, ModernVersion, metaProtocolVersion, metaCapabilities)
	}
	c := &ClientContext{Modern: true}
	raw, ok := meta.Member(metaProtocolVersion)
	if ok {
		c.ProtocolVersion, ok = strictjson.DecodeString(raw.Bytes())
	}
	if !ok || c.ProtocolVersion == "" {
		return nil, Errorf(CodeInvalidParams, "invalid %s params: _meta[%q] must be a protocol version string", req.Method, metaProtocolVersion)
	}
	caps, ok := meta.Member(metaCapabilities)
	if !ok || !caps.IsObject() {
		return nil, Errorf(CodeInvalidParams, "invalid %s params: _meta[%q] must be an object (`{}` when the client has none)", req.Method, metaCapabilities)
	}
	c.Capabilities = caps.Bytes()
	if h != nil {
		if hv != c.ProtocolVersion {
			return nil, mismatch("MCP-Protocol-Version header %q differs from params._meta[%q] %q: send the same version in both", hv, metaProtocolVersion, c.ProtocolVersion)
		}
		if err := checkMethodHeaders(req, h); err != nil {
			return nil, err
		}
	}
	if c.ProtocolVersion != ModernVersion {
		return nil, &Error{Code: CodeUnsupportedProtocol, Message: "unsupported protocol version " + c.ProtocolVersion,
			Data: map[string]any{"supported": AllVersions(), "requested": c.ProtocolVersion}}
	}
	if info, ok := meta.Member(metaClientInfo); ok {
		if !info.IsObject() {
			return nil, Errorf(CodeInvalidParams, "invalid %s params: _meta[%q] must be an object", req.Method, metaClientInfo)
		}
		c.InfoRaw = info.Bytes()
		if n, ok := info.Member("name"); ok {
			c.Info.Name, _ = strictjson.DecodeString(n.Bytes())
		}
		if v, ok := info.Member("version"); ok {
			c.Info.Version, _ = strictjson.DecodeString(v.Bytes())
		}
	}
	if lvl, ok := meta.Member(metaLogLevel); ok {
		c.LogLevel, _ = strictjson.DecodeString(lvl.Bytes())
		if !slices.Contains(LogLevels, c.LogLevel) {
			return nil, Errorf(CodeInvalidParams, "invalid %s params: _meta[%q] must be one of %s", req.Method, metaLogLevel, strings.Join(LogLevels, ", "))
		}
	}
	for _, k := range []string{"traceparent", "tracestate", "baggage"} {
		if v, ok := meta.Member(k); ok {
			c.Trace = append(c.Trace, TraceMember{Name: k, Value: v.Bytes()})
		}
	}
	if !slices.Contains(modernMethods, req.Method) {
		return nil, Errorf(CodeMethodNotFound, "method %q is not part of MCP %s", req.Method, ModernVersion)
	}
	return c, nil
}

// checkMethodHeaders checks Mcp-Method, and Mcp-Name where the revision
// (or the tasks extension) asks for it, against the body: an intermediary routes by the headers,
// so they must name what the body does.
func checkMethodHeaders(req *Request, h http.Header) *Error {
	if got := h.Get("Mcp-Method"); got != req.Method {
		return Errorf(CodeHeaderMismatch, "Mcp-Method header %q differs from the request's method %q: send the same method in both", got, req.Method)
	}
	var member string
	switch req.Method {
	case "tools/call", "prompts/get":
		member = "name"
	case "resources/read":
		member = "uri"
	case "tasks/get", "tasks/update", "tasks/cancel":
		member = "taskId" // the tasks extension: an intermediary routes a task by it
	default:
		return nil
	}
	var want string
	if raw, ok := req.ParamsValid.Member(member); ok {
		want, _ = strictjson.DecodeString(raw.Bytes())
	}
	got, ok := decodeHeaderValue(h.Get("Mcp-Name"))
	if !ok || got != want {
		return Errorf(CodeHeaderMismatch, "Mcp-Name header differs from params.%s %q: send the same value in both", member, want)
	}
	return nil
}

// decodeHeaderValue reads an Mcp-* header value: as it is, or, written
// =?base64?…?= (a value a header cannot carry as it is), decoded.
func decodeHeaderValue(v string) (string, bool) {
	inner, ok := strings.CutPrefix(v, "=?base64?")
	if !ok {
		return v, v != ""
	}
	inner, ok = strings.CutSuffix(inner, "?=")
	if !ok {
		return "", false
	}
	b, err := base64.StdEncoding.DecodeString(inner)
	if err != nil {
		return "", false
	}
	return string(b), true
}

// ErrNoClientRequests is what a modern request's Session answers a
// server→client request with: the 2026-07-28 revision has none (a server
// asks for input with an input_required result instead).
var ErrNoClientRequests = errors.New("a 2026-07-28 client takes no server→client requests")

// requestSession is the Session a modern request is served through: its
// own client context, and messages only for the request itself (progress,
// and log messages when it asked for them). It is never registered with
// the handler, so nothing meant for sessions reaches it.
type requestSession struct {
	*session
	client *ClientContext
}

func (r *requestSession) Client() *ClientContext { return r.client }

func (r *requestSession) Request(context.Context, json.RawMessage, string, json.RawMessage) (json.RawMessage, error) {
	return nil, ErrNoClientRequests
}

// modernStatus is the HTTP status of a modern error answer, as the
// revision's Streamable HTTP binding maps them.
func modernStatus(code int) int {
	switch code {
	case CodeMethodNotFound:
		return http.StatusNotFound
	case CodeHeaderMismatch, CodeMissingCapability, CodeUnsupportedProtocol, CodeInvalidRequest, CodeInvalidParams, CodeParseError:
		return http.StatusBadRequest
	}
	return http.StatusOK
}

// keepAliveEvery is how often a quiet SSE stream gets a comment line.
const keepAliveEvery = 15 * time.Second

// serveModern answers a modern POST: a notification or a response is
// accepted and ignored (a modern client sends none the hub acts on: it
// cancels by closing the stream); a request is checked, served through a
// requestSession of its own and answered on this POST alone, as JSON or,
// when it caused messages first (progress, a subscription's
// notifications), as an event stream.
func (f *HTTP) serveModern(w http.ResponseWriter, r *http.Request, m *message, who string) {
	if !m.isRequest() {
		w.WriteHeader(http.StatusAccepted)
		return
	}
	c, rerr := modernClient(&m.Request, r.Header)
	if rerr != nil {
		writeJSONError(w, modernStatus(rerr.Code), m.ID, rerr)
		return
	}
	m.Client = c
	out := &httpOutbox{streams: make(map[string]*postStream)}
	s := newSession(f.h, out, "http", who, f.log)
	st, _ := out.open(m.ID)
	in := &inflight{rel: m.ID}
	var ctx context.Context
	if m.Method == "tools/call" {
		ctx, in.cancel = context.WithTimeout(context.Background(), f.h.CallTimeout())
	} else {
		ctx, in.cancel = context.WithCancel(context.Background())
	}
	defer in.cancel()
	// Closing the stream is how a modern client cancels.
	stop := context.AfterFunc(r.Context(), func() {
		in.cancelled.Store(true)
		in.cancel()
	})
	defer stop()
	ctx = context.WithValue(ctx, reqKey, in)
	done := make(chan struct{})
	go func() {
		defer close(done)
		result, err := f.h.Handle(ctx, &requestSession{session: s, client: c}, &m.Request)
		msg, status := answer(m.ID, result, err)
		st.status = status
		out.deliver(m.ID, msg, true)
	}()
	if acceptsSSE(r) {
		streamEvents(w, r, st)
	} else {
		select {
		case final := <-st.final:
			if final != nil {
				w.Header().Set("Content-Type", "application/json")
				if st.status != 0 {
					w.WriteHeader(st.status)
				}
				_, _ = w.Write(final)
			} else {
				w.WriteHeader(http.StatusAccepted)
			}
		case <-r.Context().Done():
		}
	}
	in.cancel()
	<-done
}

// answer encodes a modern request's outcome and the HTTP status it goes
// with when sent as JSON (msg nil: no response).
func answer(id, result json.RawMessage, err error) ([]byte, int) {
	if errors.Is(err, ErrNoResponse) {
		return nil, 0
	}
	if err != nil {
		var re *Error
		if !errors.As(err, &re) {
			re = Errorf(CodeInternal, "internal error: %v", err)
		}
		return encodeError(id, re), modernStatus(re.Code)
	}
	return encodeResult(id, result), 0
}
