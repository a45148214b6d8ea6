package front

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// HTTPOptions configure the Streamable HTTP front (MCP 2025-11-25
// "Streamable HTTP" transport). The zero value serves loopback clients
// without authentication.
type HTTPOptions struct {
	// Tokens maps a bearer token to the name of whoever holds it. The name
	// labels the session in logs and is sent as Sign's agentId. If empty,
	// requests need no token (only sensible on a loopback address).
	Tokens map[string]string
	// AllowedHosts are extra Host header values accepted besides localhost,
	// 127.0.0.1 and [::1] (DNS-rebinding protection). "*" accepts any.
	AllowedHosts []string
	// AllowedOrigins are extra Origin values accepted besides loopback ones.
	AllowedOrigins []string
	// MaxBody bounds a POST body in bytes. Zero means 4 MiB.
	MaxBody int64
	// IdleTimeout ends a session unused for this long. Zero means 1 hour.
	IdleTimeout time.Duration
	// MaxSessions bounds live sessions; a new one beyond it is refused
	// (503) after idle ones were swept. Zero means 1000.
	MaxSessions int
	// MaxSessionsPerToken bounds the live sessions of one token holder, so
	// that one client cannot fill MaxSessions and lock every other out; a
	// new one beyond it is refused (429). Zero means 100. It does not apply
	// without Tokens (every client is then the same anonymous holder).
	MaxSessionsPerToken int
	// Logger receives the front's logs (sessions started and ended). Nil
	// discards them.
	Logger *slog.Logger
}

// bodyReadTimeout bounds reading one POST body.
const bodyReadTimeout = 10 * time.Second

// httpSession is one client session on the HTTP front.
type httpSession struct {
	s      *session
	out    *httpOutbox
	owner  string // token name that created it; other tokens cannot use it
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	used   atomic.Int64 // UnixNano of the last request
}

// HTTP is the Streamable HTTP front: it serves h at /mcp. Each session has
// an unguessable id and its own routing: no response or notification ever
// reaches another session. Safe for concurrent use.
type HTTP struct {
	h   Handler
	o   HTTPOptions
	log *slog.Logger
	mux *http.ServeMux

	mu       sync.Mutex              // guards sessions
	sessions map[string]*httpSession // by Mcp-Session-Id
}

// NewHTTP returns the Streamable HTTP front of h.
func NewHTTP(h Handler, o HTTPOptions) *HTTP {
	if o.MaxBody <= 0 {
		o.MaxBody = maxClientMessage
	}
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = time.Hour
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = 1000
	}
	if o.MaxSessionsPerToken <= 0 {
		o.MaxSessionsPerToken = 100
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	f := &HTTP{h: h, o: o, log: o.Logger, mux: http.NewServeMux(), sessions: make(map[string]*httpSession)}
	f.mux.HandleFunc("/mcp", f.serveMCP)
	return f
}

// ServeHTTP serves /mcp; every other path is not found.
func (f *HTTP) ServeHTTP(w http.ResponseWriter, r *http.Request) { f.mux.ServeHTTP(w, r) }

func (f *HTTP) serveMCP(w http.ResponseWriter, r *http.Request) {
	o := &f.o
	if !hostAllowed(r.Host, o.AllowedHosts) {
		http.Error(w, "forbidden host", http.StatusForbidden)
		return
	}
	if origin := r.Header.Get("Origin"); origin != "" && !originAllowed(origin, o.AllowedOrigins) {
		http.Error(w, "forbidden origin", http.StatusForbidden)
		return
	}
	who, ok := authenticate(r, o.Tokens)
	if !ok {
		w.Header().Set("WWW-Authenticate", `Bearer realm="sigil-hub"`)
		http.Error(w, "a valid bearer token is required", http.StatusUnauthorized)
		return
	}
	if v := r.Header.Get("MCP-Protocol-Version"); v != "" && !legacyVersion(v) && r.Method != http.MethodPost {
		// A 2026-07-28 client has no session and no standalone stream: it
		// only POSTs (a POST with any other version is answered by
		// serveModern, in JSON-RPC).
		w.Header().Set("Allow", "POST")
		http.Error(w, "method not allowed: MCP "+v+" requests are POSTs (no session, no GET stream)", http.StatusMethodNotAllowed)
		return
	}
	switch r.Method {
	case http.MethodPost:
		f.servePost(w, r, o, who)
	case http.MethodGet:
		f.serveGet(w, r, who)
	case http.MethodDelete:
		hs := f.httpSessionFor(r, who)
		if hs == nil {
			http.Error(w, "unknown session", http.StatusNotFound)
			return
		}
		f.closeHTTPSession(r.Header.Get("Mcp-Session-Id"), hs)
		w.WriteHeader(http.StatusNoContent)
	default:
		w.Header().Set("Allow", "GET, POST, DELETE")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	}
}

func (f *HTTP) servePost(w http.ResponseWriter, r *http.Request, o *HTTPOptions, who string) {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(strings.ToLower(ct), "application/json") {
		http.Error(w, "Content-Type must be application/json", http.StatusUnsupportedMediaType)
		return
	}
	// A body that trickles must not hold a goroutine and a socket forever
	// (docs/faults.md case 68); the server's ReadTimeout would also cut
	// streams.
	rc := http.NewResponseController(w)
	_ = rc.SetReadDeadline(time.Now().Add(bodyReadTimeout))
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, o.MaxBody))
	if err != nil {
		// The deadline stays set: the server then drops the connection.
		var tooBig *http.MaxBytesError
		if !errors.As(err, &tooBig) {
			http.Error(w, "request body not received in time", http.StatusRequestTimeout)
			return
		}
		writeJSONError(w, http.StatusRequestEntityTooLarge, nullID, Errorf(CodeParseError, "parse error: message too large (limit %d bytes)", o.MaxBody))
		return
	}
	_ = rc.SetReadDeadline(time.Time{})
	m, id, rerr := parseMessage(body)
	if rerr != nil {
		if hs := f.httpSessionFor(r, who); hs != nil {
			f.h.Rejected(hs.s, &m.Request, rerr)
		}
		writeJSONError(w, http.StatusBadRequest, id, rerr)
		return
	}
	if isModern(&m.Request, r.Header.Get("MCP-Protocol-Version")) {
		f.serveModern(w, r, &m, who)
		return
	}
	if m.Method == "initialize" {
		total, mine := f.sweepSessions(o, who)
		switch {
		case len(o.Tokens) > 0 && mine >= o.MaxSessionsPerToken:
			writeJSONError(w, http.StatusTooManyRequests, m.ID, Errorf(CodeInternal, "too many client sessions for token %q (limit %d per token): end unused ones (DELETE) or retry later", who, o.MaxSessionsPerToken))
			return
		case total >= o.MaxSessions:
			writeJSONError(w, http.StatusServiceUnavailable, m.ID, Errorf(CodeInternal, "too many client sessions (limit %d): end unused ones (DELETE) or retry later", o.MaxSessions))
			return
		}
		f.initializeHTTP(w, &m, who)
		return
	}
	hs := f.httpSessionFor(r, who)
	if hs == nil {
		if r.Header.Get("Mcp-Session-Id") == "" {
			writeJSONError(w, http.StatusBadRequest, id, Errorf(CodeInvalidRequest, "missing Mcp-Session-Id header: send initialize first"))
			return
		}
		writeJSONError(w, http.StatusNotFound, id, Errorf(CodeInvalidRequest, "unknown or expired session: initialize a new one"))
		return
	}
	if !m.isRequest() {
		hs.s.handle(hs.ctx, &m, &hs.wg)
		w.WriteHeader(http.StatusAccepted)
		return
	}
	st, ok := hs.out.open(m.ID)
	if !ok {
		writeJSONError(w, http.StatusOK, m.ID, Errorf(CodeInvalidRequest, "duplicate request id %s: an earlier request with this id is still running", m.ID))
		return
	}
	hs.s.handle(hs.ctx, &m, &hs.wg)
	if acceptsSSE(r) {
		streamEvents(w, r, st)
		return
	}
	// A JSON-only client gets the response alone; messages the request
	// caused meanwhile have nowhere to go and are dropped.
	select {
	case final := <-st.final:
		if final == nil {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(final)
	case <-r.Context().Done():
	}
}

// initializeHTTP starts a new session.
func (f *HTTP) initializeHTTP(w http.ResponseWriter, m *message, who string) {
	var b [24]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	out := &httpOutbox{streams: make(map[string]*postStream)}
	hs := &httpSession{s: newSession(f.h, out, id, who, f.log), out: out, owner: who}
	hs.ctx, hs.cancel = context.WithCancel(context.Background())
	hs.used.Store(time.Now().UnixNano())
	result, rerr := hs.s.initialize(hs.ctx, &m.Request)
	if rerr != nil {
		hs.cancel()
		hs.s.close()
		writeJSONError(w, http.StatusOK, m.ID, rerr)
		return
	}
	go func() {
		<-hs.ctx.Done()
		hs.s.close()
	}()
	f.mu.Lock()
	f.sessions[id] = hs
	f.mu.Unlock()
	f.log.Info("client session started", "session", id[:8], "client", who)
	w.Header().Set("Mcp-Session-Id", id)
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(encodeResult(m.ID, result))
}

// httpSessionFor finds the request's session, if it belongs to who.
func (f *HTTP) httpSessionFor(r *http.Request, who string) *httpSession {
	id := r.Header.Get("Mcp-Session-Id")
	if id == "" {
		return nil
	}
	f.mu.Lock()
	hs := f.sessions[id]
	f.mu.Unlock()
	if hs == nil || hs.owner != who {
		return nil
	}
	hs.used.Store(time.Now().UnixNano())
	return hs
}

// sweepSessions ends sessions idle past the timeout and counts the live
// ones: in all, and those of token holder who.
func (f *HTTP) sweepSessions(o *HTTPOptions, who string) (total, mine int) {
	cutoff := time.Now().Add(-o.IdleTimeout).UnixNano()
	f.mu.Lock()
	var idle []*httpSession
	for id, hs := range f.sessions {
		if hs.used.Load() < cutoff {
			delete(f.sessions, id)
			idle = append(idle, hs)
		}
	}
	total = len(f.sessions)
	for _, hs := range f.sessions {
		if hs.owner == who {
			mine++
		}
	}
	f.mu.Unlock()
	for _, hs := range idle {
		f.log.Info("client session ended: idle", "session", hs.s.id[:8], "client", hs.owner)
		hs.cancel()
		hs.wg.Wait()
	}
	return total, mine
}

// closeHTTPSession ends a session: its requests are cancelled and waited for.
func (f *HTTP) closeHTTPSession(id string, hs *httpSession) {
	f.mu.Lock()
	delete(f.sessions, id)
	f.mu.Unlock()
	hs.cancel()
	hs.wg.Wait()
}

// Close ends every session (at shutdown); a session started later is
// served as usual.
func (f *HTTP) Close() {
	f.mu.Lock()
	all := f.sessions
	f.sessions = make(map[string]*httpSession)
	f.mu.Unlock()
	for _, hs := range all {
		hs.cancel()
		hs.wg.Wait()
	}
}

// serveGet holds the session's standalone SSE stream: messages that belong
// to no request (list_changed, logs, resource updates) go there.
func (f *HTTP) serveGet(w http.ResponseWriter, r *http.Request, who string) {
	if !acceptsSSE(r) {
		w.Header().Set("Allow", "POST, DELETE")
		http.Error(w, "GET needs Accept: text/event-stream", http.StatusMethodNotAllowed)
		return
	}
	hs := f.httpSessionFor(r, who)
	if hs == nil {
		http.Error(w, "unknown session", http.StatusNotFound)
		return
	}
	events, ok := hs.out.openGet()
	if !ok {
		http.Error(w, "this session already has a GET stream", http.StatusConflict)
		return
	}
	defer hs.out.closeGet(events)
	flusher, _ := w.(http.Flusher)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	if flusher != nil {
		flusher.Flush()
	}
	for {
		select {
		case msg := <-events:
			if writeEvent(w, msg) != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		case <-r.Context().Done():
			return
		case <-hs.ctx.Done():
			return
		}
	}
}

// streamEvents answers a POST as an SSE stream: the messages the request
// causes (progress, server→client requests), then its response; a response
// that nothing preceded is answered as plain JSON instead.
func streamEvents(w http.ResponseWriter, r *http.Request, st *postStream) {
	flusher, _ := w.(http.Flusher)
	// A long stream (a subscription, a call held for approval) gets an SSE
	// comment now and then, so that proxies keep it open.
	var ticker *time.Ticker
	var keepAlive <-chan time.Time // nil (never ready) until the stream started
	defer func() {
		if ticker != nil {
			ticker.Stop()
		}
	}()
	started := false
	start := func() {
		if !started {
			ticker = time.NewTicker(keepAliveEvery)
			keepAlive = ticker.C
			w.Header().Set("Content-Type", "text/event-stream")
			w.Header().Set("Cache-Control", "no-store")
			w.Header().Set("X-Accel-Buffering", "no")
			w.WriteHeader(http.StatusOK)
			started = true
		}
	}
	for {
		select {
		case msg := <-st.events:
			start()
			if writeEvent(w, msg) != nil {
				return
			}
			if flusher != nil {
				flusher.Flush()
			}
		case final := <-st.final:
			// Drain what the request caused before its response.
			for {
				select {
				case msg := <-st.events:
					start()
					_ = writeEvent(w, msg)
					continue
				default:
				}
				break
			}
			if final == nil {
				if !started {
					w.WriteHeader(http.StatusAccepted)
				}
				return
			}
			if !started {
				// Nothing came before the response: it goes as plain JSON
				// (the transport lets the server choose), one write with a
				// length instead of a chunked event stream to open, flush
				// and parse (measured: the hub's added latency over HTTP,
				// p50, went from 300 to about 170 µs).
				w.Header().Set("Content-Type", "application/json")
				if st.status != 0 {
					w.WriteHeader(st.status)
				}
				_, _ = w.Write(final)
				return
			}
			_ = writeEvent(w, final)
			if flusher != nil {
				flusher.Flush()
			}
			return
		case <-keepAlive:
			if started {
				if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil {
					return
				}
				if flusher != nil {
					flusher.Flush()
				}
			}
		case <-r.Context().Done():
			return
		}
	}
}

func writeEvent(w io.Writer, msg []byte) error {
	_, err := fmt.Fprintf(w, "event: message\ndata: %s\n\n", compactOneLine(msg))
	return err
}

// compactOneLine makes msg a single line (an SSE data field cannot hold a
// newline).
func compactOneLine(msg []byte) []byte {
	if !strings.ContainsAny(string(msg), "\r\n") {
		return msg
	}
	var b strings.Builder
	lw := &lineWriter{w: &b}
	if lw.write(msg) != nil {
		return msg
	}
	return []byte(strings.TrimRight(b.String(), "\n"))
}

func writeJSONError(w http.ResponseWriter, status int, id json.RawMessage, e *Error) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(encodeError(id, e))
}

func acceptsSSE(r *http.Request) bool {
	return strings.Contains(r.Header.Get("Accept"), "text/event-stream")
}

// authenticate returns the token holder's name. With no tokens configured
// every request is accepted as "anonymous".
func authenticate(r *http.Request, tokens map[string]string) (string, bool) {
	if len(tokens) == 0 {
		return "anonymous", true
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || got == "" {
		return "", false
	}
	name, found := "", false
	for tok, n := range tokens { // compare with every token, in constant time each
		if subtle.ConstantTimeCompare([]byte(tok), []byte(got)) == 1 {
			name, found = n, true
		}
	}
	return name, found
}

func hostAllowed(host string, extra []string) bool {
	h := host
	if hh, _, err := net.SplitHostPort(host); err == nil {
		h = hh
	}
	h = strings.Trim(h, "[]")
	if h == "localhost" || h == "127.0.0.1" || h == "::1" {
		return true
	}
	for _, e := range extra {
		if e == "*" || strings.EqualFold(e, h) || strings.EqualFold(e, host) {
			return true
		}
	}
	return false
}

func originAllowed(origin string, extra []string) bool {
	for _, e := range extra {
		if e == "*" || strings.EqualFold(e, origin) {
			return true
		}
	}
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return false
	}
	h := u.Hostname()
	return h == "localhost" || h == "127.0.0.1" || h == "::1"
}

// httpOutbox routes one HTTP session's messages: a request's own messages
// to its POST stream, everything else to the GET stream (if one is open).
type httpOutbox struct {
	mu      sync.Mutex
	streams map[string]*postStream // open POST streams by raw request id
	get     chan []byte            // the standalone stream, or nil
}

// postStream carries one request's messages to its POST response.
type postStream struct {
	events chan []byte // caused by the request; dropped when full
	final  chan []byte // the response (nil: no response); cap 1
	// status is the HTTP status of a response sent as JSON (0: 200); set
	// before final is sent.
	status int
}

const streamBuffer = 256

func (o *httpOutbox) open(id json.RawMessage) (*postStream, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if _, dup := o.streams[string(id)]; dup {
		return nil, false
	}
	st := &postStream{events: make(chan []byte, streamBuffer), final: make(chan []byte, 1)}
	o.streams[string(id)] = st
	return st, true
}

func (o *httpOutbox) openGet() (chan []byte, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.get != nil {
		return nil, false
	}
	o.get = make(chan []byte, streamBuffer)
	return o.get, true
}

func (o *httpOutbox) closeGet(ch chan []byte) {
	o.mu.Lock()
	if o.get == ch {
		o.get = nil
	}
	o.mu.Unlock()
}

func (o *httpOutbox) deliver(rel json.RawMessage, msg []byte, final bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if rel != nil {
		if st, ok := o.streams[string(rel)]; ok {
			if final {
				delete(o.streams, string(rel))
				st.final <- msg
				return
			}
			select {
			case st.events <- msg:
			default: // a stalled client loses progress, never a response
			}
			return
		}
	}
	if msg == nil || o.get == nil {
		return
	}
	select {
	case o.get <- msg:
	default:
	}
}
