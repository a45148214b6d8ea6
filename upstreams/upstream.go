package upstreams

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sigilcore/sigil-hub/internal/strictjson"
)

// protocolVersion is the MCP protocol version every upstream is pinned to:
// the newest one with an initialize handshake (mcp-go v1.2.1 speaks it).
const protocolVersion = "2025-11-25"

// Spec describes one upstream. New copies it; the caller may reuse it.
// Exactly one of Command (stdio) and URL (remote) must be set.
type Spec struct {
	// Name is the upstream's name, used in logs and error messages. "" is
	// allowed but unhelpful.
	Name string

	// Command is the program of a stdio upstream; "" means remote (URL).
	Command string
	// Args are the program's arguments; nil means none.
	Args []string
	// Dir is the child's working directory; "" means the hub's.
	Dir string
	// Environ is the hub's own environment ("K=V"). Only an allow-list is
	// passed to the child: PATH HOME USER LOGNAME SHELL TERM LANG LC_* TZ
	// TMPDIR, plus on Windows the system's own (SystemRoot, TEMP, APPDATA…:
	// envAllowed in proc_windows.go). nil means the child gets only Env.
	Environ []string
	// Env is the upstream's declared environment ("K=V"), added on top of the
	// allow-listed Environ (later entries win). nil means none.
	Env []string

	// URL is the endpoint of a remote upstream; "" means stdio (Command).
	URL string
	// Transport selects the remote transport: "auto" or "" (Streamable HTTP,
	// falling back to legacy SSE when initialize gets a 4xx), "streamable" or
	// "sse".
	Transport string
	// Headers are sent with every remote request (the SSE and GET streams
	// and the session DELETE included), and only to URL's origin. nil means
	// none.
	Headers map[string]string
	// OAuth, if set, authorizes a Streamable HTTP upstream with OAuth
	// (see OAuth). nil means none: a 401 is then reported with a hint to
	// configure it.
	OAuth *OAuth

	// ClientName and ClientVersion are the clientInfo sent in initialize
	// (and in the _meta of a modern upstream's requests that carry no
	// RequestMeta); "" means "sigil-hub" and "dev".
	ClientName, ClientVersion string
	// Capabilities are the client capabilities declared in initialize (and
	// as for ClientName); nil means {}.
	Capabilities json.RawMessage
	// Era is how the upstream's protocol era is chosen (era.go): EraDefault
	// (""), EraPreferModern or EraLegacy.
	Era string
	// ProbeTimeout bounds the wait for the answer to server/discover; zero
	// means 5s. It is never more than a quarter of InitTimeout. A stdio
	// upstream that does not answer in time gets initialize.
	ProbeTimeout time.Duration
	// InitTimeout bounds spawn/connect + initialize + the first listing; zero
	// means 60s (npx downloads are slow). It also bounds each re-list.
	InitTimeout time.Duration

	// Logger receives the upstream's logs, with attribute upstream=Name; nil
	// discards. A stdio child's stderr lines are logged at debug level and
	// the last ~4 KiB are kept for error messages.
	Logger *slog.Logger

	// OnChange, if set, is called after the Snapshot changed (state change,
	// or a re-list after list_changed that changed a list). It is called with
	// an internal lock held, in order, and must not block or call Run; it
	// may call Snapshot.
	OnChange func()
	// OnNotification, if set, gets every upstream notification except the
	// list_changed ones, in arrival order, on a per-upstream goroutine.
	// params (nil when absent) are the bytes a stdio upstream sent; a
	// remote upstream's are re-encoded from mcp-go's decoding. It must not
	// block.
	OnNotification func(method string, params json.RawMessage)
	// OnRequest, if set, answers server→client requests (sampling,
	// elicitation, roots/list); it may block until ctx ends and is called
	// concurrently. params are as for OnNotification; the result is sent
	// as it is (it must be valid JSON). nil answers every request but ping
	// with JSON-RPC method-not-found. An error of type *RPCError is sent as
	// is, any other error as -32603. Legacy SSE upstreams cannot send
	// requests.
	OnRequest func(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error)
}

// State is an upstream's connection state.
type State int

const (
	// Starting means a connection attempt (spawn/connect, initialize, first
	// listing) is in progress.
	Starting State = iota
	// Ready means the upstream is connected and calls are sent.
	Ready
	// Backoff means the last attempt or connection failed and a retry is
	// scheduled; Snapshot.Err says why.
	Backoff
	// Stopped means Run has returned (ctx done, child gone).
	Stopped
)

// String returns the lowercase name of the state.
func (s State) String() string {
	if names := [...]string{"starting", "ready", "backoff", "stopped"}; s >= 0 && int(s) < len(names) {
		return names[s]
	}
	return fmt.Sprintf("state(%d)", int(s))
}

// Item is one listed tool, prompt, resource or resource template.
type Item struct {
	// Name is the tool or prompt name, the resource uri or the template's
	// uriTemplate.
	Name string
	// Raw is the item's JSON exactly as the upstream listed it.
	Raw json.RawMessage
}

// Snapshot is an immutable view of an upstream. Never modify one: it is
// shared by every reader.
type Snapshot struct {
	State State
	// Err is the last failure (for a failed stdio start it includes the exit
	// status and the stderr tail); nil when Ready.
	Err error
	// Tools, Prompts, Resources and Templates are the items of the last
	// successful listing, all pages followed, in upstream order. They are
	// kept (stale) while the upstream restarts; consult State. A list the
	// upstream does not advertise is nil.
	Tools, Prompts, Resources, Templates []Item
	// ServerInfo and Capabilities are the raw initialize result fields.
	ServerInfo, Capabilities json.RawMessage
	// Instructions is the initialize result's instructions.
	Instructions string
	// ProtocolVersion is the negotiated protocol version.
	ProtocolVersion string
	// Generation increments on every change.
	Generation uint64
}

// lists returns the snapshot's lists in the order of the kind bits
// (session.go).
func (s *Snapshot) lists() [4]*[]Item {
	return [...]*[]Item{&s.Tools, &s.Prompts, &s.Resources, &s.Templates}
}

// RPCError is an error answer from the upstream. It implements error.
type RPCError struct {
	Code    int
	Message string
	Data    json.RawMessage // nil when absent
}

// Error returns "upstream error <code>: <message>".
func (e *RPCError) Error() string {
	return fmt.Sprintf("upstream error %d: %s", e.Code, e.Message)
}

// ErrUnavailable means the upstream is not ready (starting, in backoff,
// stopped, or just died): the request was NOT sent, so it is safe to report
// "unavailable" or to retry.
var ErrUnavailable = errors.New("upstream unavailable")

// ErrLost means the request was sent but the connection died (or failed)
// before an answer arrived. Such a request must never be retried.
var ErrLost = errors.New("upstream connection lost before the answer")

// ErrAuth means a remote upstream refused the hub's credentials (HTTP 401
// or 403): the request was not served.
var ErrAuth = errors.New("upstream refused the credentials")

// ErrProtocol means the upstream broke the framing (for example a message
// over the size cap); its connection is dropped and it is restarted.
var ErrProtocol = errors.New("upstream protocol error")

// HTTPStatusError is a remote upstream's answer to a request with an HTTP
// error status other than 401/403 (for example 500): the request was sent,
// so it is never retried. Only the status is kept: the body is the
// remote's and may echo anything, the hub's own headers included.
type HTTPStatusError struct{ Status int }

func (e *HTTPStatusError) Error() string {
	return fmt.Sprintf("remote upstream answered HTTP %d %s", e.Status, http.StatusText(e.Status))
}

// ErrInvalidResponse is a malformed answer from the upstream (for example
// both result and error): the request was sent, so it is never retried.
var ErrInvalidResponse = errors.New("invalid response from upstream")

// Upstream is one supervised upstream. Create it with New, run it with Run;
// Snapshot, WaitSettled, Call and Notify are safe for concurrent use at any
// time (before Run they report ErrUnavailable / state Starting).
type Upstream struct {
	spec Spec
	log  *slog.Logger
	tun  tuning

	// snap is the current snapshot; written only by update (under mu).
	snap atomic.Pointer[Snapshot]
	mu   sync.Mutex

	// sess is the Ready session, nil otherwise; written by the supervisor
	// (Run) only.
	sess atomic.Pointer[session]

	settled chan struct{}
	settle  func() // closes settled, once
	running atomic.Bool

	ids atomic.Int64 // request id source
	raw *rawParams
	// legacyKnown: a probe said legacy and initialize then succeeded; later
	// connections skip the probe until a handshake fails.
	legacyKnown atomic.Bool

	oauth *oauthState // nil without Spec.OAuth; immutable after New
	// challenge is the resource_metadata URL of the last 401 that carried
	// one (RFC 9728), for the error hint; written by statusRoundTripper.
	challenge atomic.Pointer[string]
}

// tuning holds timings and hooks that tests may change.
type tuning struct {
	backoffMin, backoffMax time.Duration
	jitter                 func() float64 // in [0,1); nil → math/rand/v2
	debounce               time.Duration  // list_changed burst window
	stopGrace, stopTerm    time.Duration  // staged stop waits
	pingInterval           time.Duration  // remote liveness ping; 0 → none
	// dial replaces the real connect when set (backoff tests).
	dial func(ctx context.Context) (*session, error)
}

func defaultTuning() tuning {
	return tuning{
		backoffMin:   time.Second,
		backoffMax:   30 * time.Second,
		debounce:     100 * time.Millisecond,
		stopGrace:    2 * time.Second,
		stopTerm:     3 * time.Second,
		pingInterval: 30 * time.Second,
	}
}

// New returns an upstream for s in state Starting; nothing happens until Run.
// It copies s.
func New(s Spec) *Upstream {
	s.Args = append([]string(nil), s.Args...)
	s.Environ = append([]string(nil), s.Environ...)
	s.Env = append([]string(nil), s.Env...)
	s.Headers = maps.Clone(s.Headers)
	s.ClientName = cmp.Or(s.ClientName, "sigil-hub")
	s.ClientVersion = cmp.Or(s.ClientVersion, "dev")
	s.Capabilities = bytes.Clone(s.Capabilities)
	if len(s.Capabilities) == 0 {
		s.Capabilities = json.RawMessage(`{}`)
	}
	if s.InitTimeout <= 0 {
		s.InitTimeout = 60 * time.Second
	}
	var nonce [8]byte
	_, _ = rand.Read(nonce[:])
	u := &Upstream{
		spec:    s,
		log:     cmp.Or(s.Logger, slog.New(slog.DiscardHandler)).With("upstream", s.Name),
		tun:     defaultTuning(),
		settled: make(chan struct{}),
		raw:     newRawParams(hex.EncodeToString(nonce[:])),
	}
	u.settle = sync.OnceFunc(func() { close(u.settled) })
	if s.OAuth != nil && s.URL != "" {
		u.oauth = newOAuthState(*s.OAuth, s.URL, u.log)
	}
	u.spec.OAuth = nil // kept in u.oauth
	u.snap.Store(&Snapshot{State: Starting})
	return u
}

// Snapshot returns the current snapshot. It never blocks (lock-free).
func (u *Upstream) Snapshot() *Snapshot { return u.snap.Load() }

// WaitSettled returns nil once the first start attempt has finished (Ready,
// or failed and in Backoff), or ctx.Err() if ctx ends first.
func (u *Upstream) WaitSettled(ctx context.Context) error {
	select {
	case <-u.settled:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// update is the single funnel for snapshot changes: f edits a copy and
// reports whether it changed anything; if so the copy is published with the
// next Generation and OnChange is called (under mu, so calls are ordered).
func (u *Upstream) update(f func(s *Snapshot) bool) {
	u.mu.Lock()
	defer u.mu.Unlock()
	old := u.snap.Load()
	next := *old
	if !f(&next) {
		return
	}
	next.Generation = old.Generation + 1
	u.snap.Store(&next)
	if u.spec.OnChange != nil {
		u.spec.OnChange()
	}
}

func (u *Upstream) setState(st State, err error) {
	u.update(func(s *Snapshot) bool {
		if s.State == st && s.Err == err {
			return false
		}
		s.State, s.Err = st, err
		return true
	})
}

// Call sends one request (e.g. "tools/call") with its own id and returns the
// raw result. params are sent verbatim (nil or empty means no params); they
// must be valid JSON. If ctx ends after the request was sent, Call sends
// notifications/cancelled for it and returns ctx.Err(). It never retries.
// Errors: ErrUnavailable (not sent), ErrLost (sent, no answer), *RPCError
// (the upstream's error answer), *RedirectError and *CrossOriginError (a
// remote upstream's redirect, never followed; origin.go), ctx.Err(). Safe
// for concurrent use; calls run in parallel.
func (u *Upstream) Call(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	if len(params) > 0 && !validJSON(params) {
		return nil, fmt.Errorf("upstream %q: %s: params are not valid JSON", u.spec.Name, method)
	}
	return u.call(ctx, method, params)
}

// CallValid is Call for params that strictjson has accepted, as a
// strictjson.Valid proves: they are not scanned again (the zero Valid means
// no params). The hub builds a tools/call's params this way from the
// arguments the edge checked.
func (u *Upstream) CallValid(ctx context.Context, method string, params strictjson.Valid) (json.RawMessage, error) {
	return u.call(ctx, method, params.Bytes())
}

func (u *Upstream) call(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
	s := u.sess.Load()
	if s == nil {
		return nil, fmt.Errorf("upstream %q: %s: %w", u.spec.Name, method, ErrUnavailable)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	res, err := s.request(ctx, method, params)
	if err != nil {
		if _, rpc := errors.AsType[*RPCError](err); rpc || errors.Is(err, ctx.Err()) && ctx.Err() != nil {
			return nil, err
		}
		return nil, fmt.Errorf("upstream %q: %s: %w", u.spec.Name, method, err)
	}
	return res, nil
}

// WatchTask adds the upstream's task id to (on) or takes it out of the
// hub's subscriptions/listen to it, so that its notifications/tasks reach
// OnNotification; adding returns once the upstream acknowledged it (an
// *RPCError when it would not). Only a 2026-07-28 upstream has the tasks
// extension; any other gets ErrUnavailable.
func (u *Upstream) WatchTask(ctx context.Context, id string, on bool) error {
	s := u.sess.Load()
	if s == nil || !s.init.modern {
		return fmt.Errorf("upstream %q: task %q: %w", u.spec.Name, id, ErrUnavailable)
	}
	return s.watch(ctx, watchTask, id, on)
}

// Notify sends one notification with params verbatim (nil or empty means no
// params). It returns ErrUnavailable when the upstream is not ready. Safe for
// concurrent use.
func (u *Upstream) Notify(ctx context.Context, method string, params json.RawMessage) error {
	if len(params) > 0 && !json.Valid(params) {
		return fmt.Errorf("upstream %q: %s: params are not valid JSON", u.spec.Name, method)
	}
	if len(bytes.TrimSpace(params)) > 0 && bytes.TrimSpace(params)[0] != '{' {
		return fmt.Errorf("upstream %q: %s: params must be a JSON object", u.spec.Name, method)
	}
	s := u.sess.Load()
	if s == nil {
		return fmt.Errorf("upstream %q: %s: %w", u.spec.Name, method, ErrUnavailable)
	}
	if err := s.notify(ctx, method, params); err != nil {
		return fmt.Errorf("upstream %q: %s: %w", u.spec.Name, method, err)
	}
	return nil
}

// validJSONDepth is encoding/json's nesting limit, so that the strict scan
// in validJSON never accepts a document json.Valid rejects for depth.
const validJSONDepth = 10000

// validJSON reports json.Valid(b), at a fraction of its cost on the
// documents Call is given. The params (and the answer to a server request)
// are spliced into the frame verbatim, so the check guards the framing:
// params that are not one JSON value could add members to the frame.
// strictjson accepts nothing json.Valid rejects (its FuzzValidate checks
// that); what it rejects (a duplicate key, invalid UTF-8, a syntax error)
// gets json.Valid's own answer.
func validJSON(b []byte) bool {
	return strictjson.Validate(b, validJSONDepth) == nil || json.Valid(b)
}
