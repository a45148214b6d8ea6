package upstreams

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
)

// OAuth configures OAuth 2.1 authorization of one remote (Streamable HTTP)
// upstream: discovery (RFC 9728 protected-resource metadata, RFC 8414
// authorization-server metadata), dynamic client registration (RFC 7591)
// when ClientID is "", the authorization-code flow with PKCE through a
// loopback Callback, and refresh before expiry and on a 401. Tokens are kept
// in TokenFile and sent only to this upstream's URL; they are never logged.
type OAuth struct {
	// ClientID and ClientSecret are pre-registered client credentials; ""
	// means register dynamically (a public client, PKCE only).
	ClientID, ClientSecret string
	// Scopes are requested at authorization; nil means none.
	Scopes []string
	// TokenFile is where the tokens (and a dynamically registered client)
	// are kept, as JSON, mode 0600, in a folder of mode 0700; "" keeps them
	// in memory only (a restart needs a new authorization).
	TokenFile string
	// Callback receives the authorization server's redirect. nil means an
	// upstream that needs a new authorization fails with an error saying so.
	Callback *OAuthCallback
	// AuthTimeout bounds the wait for a person to authorize; zero means 10
	// minutes.
	AuthTimeout time.Duration
}

// AuthorizationPendingError is the Snapshot.Err of an upstream waiting for a
// person to open URL and authorize the hub.
type AuthorizationPendingError struct {
	URL string
}

// Error says what to do.
func (e *AuthorizationPendingError) Error() string {
	return "waiting for authorization: open URL " + e.URL
}

// errAuthRequired is wrapped when the hub has no way to get a new
// authorization.
var errAuthRequired = errors.New("oauth authorization required")

// oauthState is one upstream's OAuth state; it outlives its connections.
type oauthState struct {
	cfg   OAuth
	store *tokenStore
	hc    *http.Client // for the authorization server only

	refreshMu sync.Mutex // serializes refreshes after a 401

	handler atomic.Pointer[transport.OAuthHandler] // of the last connection
}

// needsAuthorization returns the OAuth handler to run the browser flow
// with when err says the upstream has no usable token (a 401, or no token
// at all), else nil.
func (u *Upstream) needsAuthorization(err error) *transport.OAuthHandler {
	if err == nil || u.oauth == nil {
		return nil
	}
	if oe, ok := errors.AsType[*transport.OAuthAuthorizationRequiredError](err); ok && oe.Handler != nil {
		return oe.Handler
	}
	if !is401(err) {
		return nil
	}
	return u.oauth.handler.Load()
}

// is401 reports whether err is the upstream refusing the hub for want of
// (valid) credentials: mcp-go's authorization errors, which ErrAuth keeps
// in its chain for an HTTP 401 (remoteConn.classify; a 403 is not fixed by
// a token).
func is401(err error) bool {
	return errors.Is(err, transport.ErrAuthorizationRequired) || errors.Is(err, transport.ErrOAuthAuthorizationRequired)
}

func newOAuthState(cfg OAuth, serverURL string, log *slog.Logger) *oauthState {
	cfg.Scopes = append([]string(nil), cfg.Scopes...)
	if cfg.AuthTimeout <= 0 {
		cfg.AuthTimeout = 10 * time.Minute
	}
	st := &oauthState{
		cfg:   cfg,
		store: &tokenStore{path: cfg.TokenFile, url: serverURL},
		// Discovery, registration and token requests never follow a
		// redirect (a 307 would re-send a refresh token elsewhere).
		hc: &http.Client{Timeout: 30 * time.Second, Transport: http.DefaultTransport.(*http.Transport).Clone(),
			CheckRedirect: refuseRedirects(true)},
	}
	if err := st.store.load(); err != nil {
		log.Warn("ignoring the stored OAuth token", "err", err)
	}
	return st
}

// config returns the mcp-go OAuth configuration for one connection.
func (o *oauthState) config(redirectURI string) transport.OAuthConfig {
	rec := o.store.record()
	c := transport.OAuthConfig{
		ClientID:     o.cfg.ClientID,
		ClientSecret: o.cfg.ClientSecret,
		RedirectURI:  redirectURI,
		Scopes:       o.cfg.Scopes,
		TokenStore:   o.store,
		PKCEEnabled:  true,
		HTTPClient:   o.hc,
	}
	if c.ClientID == "" {
		c.ClientID, c.ClientSecret, c.TokenEndpointAuthMethod = rec.ClientID, rec.ClientSecret, rec.AuthMethod
	}
	return c
}

// authorize runs the browser flow with h (the handler of the connection
// that found no usable token): register a client if needed, log the
// authorization URL, wait for the redirect, exchange the code. The token
// lands in the store.
func (u *Upstream) authorize(ctx context.Context, h *transport.OAuthHandler) error {
	o := u.oauth
	cb := o.cfg.Callback
	if cb == nil {
		return fmt.Errorf("%w: no usable token is stored and this run does not start the browser flow (run the hub itself to authorize)", errAuthRequired)
	}
	if _, err := cb.RedirectURI(ctx); err != nil {
		return fmt.Errorf("%w: oauth callback: %w", errAuthRequired, err)
	}
	ctx, cancel := context.WithTimeout(ctx, o.cfg.AuthTimeout)
	defer cancel()
	if o.cfg.ClientID == "" {
		// A registration is bound to its redirect URI, whose port may change
		// between runs: register afresh for every browser flow.
		if err := h.RegisterClient(ctx, "sigil-hub"); err != nil {
			return fmt.Errorf("oauth dynamic client registration: %w", err)
		}
		if err := o.store.setClient(h.GetClientID(), h.GetClientSecret(), h.GetTokenEndpointAuthMethod()); err != nil {
			return err
		}
	}
	verifier, err := transport.GenerateCodeVerifier()
	if err != nil {
		return fmt.Errorf("oauth: %w", err)
	}
	state, err := transport.GenerateState()
	if err != nil {
		return fmt.Errorf("oauth: %w", err)
	}
	authURL, err := h.GetAuthorizationURL(ctx, state, transport.GenerateCodeChallenge(verifier))
	if err != nil {
		return fmt.Errorf("oauth: %w", err)
	}
	p := cb.expect(state)
	defer cb.forget(state)
	u.log.Warn("upstream needs OAuth authorization: open this URL in a browser", "url", authURL)
	u.setState(Starting, &AuthorizationPendingError{URL: authURL})
	u.settle()
	cb.open(authURL)
	var r callbackResult
	select {
	case <-ctx.Done():
		return fmt.Errorf("oauth: waiting for authorization: %w", ctx.Err())
	case r = <-p.got:
	}
	if r.err != nil {
		p.reply <- r.err
		return fmt.Errorf("oauth authorization: %w", r.err)
	}
	err = h.ProcessAuthorizationResponse(ctx, r.code, state, verifier)
	p.reply <- err
	if err != nil {
		return fmt.Errorf("oauth code exchange: %w", err)
	}
	u.log.Info("OAuth authorization complete")
	return nil
}

// refreshAfter401 returns a token to retry with after sent (the access
// token) got a 401: the stored one if a refresh already replaced sent, else
// a refreshed one. ok is false when there is nothing to retry with.
func (o *oauthState) refreshAfter401(ctx context.Context, h *transport.OAuthHandler, sent string) (*transport.Token, bool) {
	o.refreshMu.Lock()
	defer o.refreshMu.Unlock()
	cur := o.store.current()
	if cur == nil {
		return nil, false
	}
	if cur.AccessToken != sent && cur.AccessToken != "" {
		return cur, true
	}
	if cur.RefreshToken == "" || h == nil {
		return nil, false
	}
	t, err := h.RefreshToken(ctx, cur.RefreshToken)
	return t, err == nil
}

// oauthRoundTripper retries a request once with a refreshed token when the
// upstream answers 401 (the token was revoked or expired early). A 401 means
// the request was not processed, so the retry is safe. It also gives the
// session DELETE the token.
type oauthRoundTripper struct {
	base    http.RoundTripper
	o       *oauthState
	handler atomic.Pointer[transport.OAuthHandler] // of its connection
}

func (rt *oauthRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method == http.MethodDelete && len(req.Header.Values("Authorization")) == 0 {
		// mcp-go sends the session DELETE without the token; the
		// origin guard under this layer keeps it to url's origin.
		if h := rt.handler.Load(); h != nil {
			if v, err := h.GetAuthorizationHeader(req.Context()); err == nil {
				req = req.Clone(req.Context())
				req.Header.Set("Authorization", v)
			}
		}
	}
	sent, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return rt.base.RoundTrip(req)
	}
	var body []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		_ = req.Body.Close()
		if err != nil {
			return nil, err
		}
		body = b
		req = req.Clone(req.Context())
		req.Body = io.NopCloser(bytes.NewReader(body))
	}
	resp, err := rt.base.RoundTrip(req)
	if err != nil || resp.StatusCode != http.StatusUnauthorized {
		return resp, err
	}
	tok, ok := rt.o.refreshAfter401(req.Context(), rt.handler.Load(), sent)
	if !ok {
		return resp, nil
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	r2 := req.Clone(req.Context())
	if body != nil {
		r2.Body = io.NopCloser(bytes.NewReader(body))
	}
	r2.Header.Set("Authorization", "Bearer "+tok.AccessToken)
	return rt.base.RoundTrip(r2)
}

// authHint turns a 401 from an upstream without OAuth configured into an
// error that says how to fix it.
func (u *Upstream) authHint(err error) error {
	if u.oauth != nil || !is401(err) {
		return err
	}
	meta := ""
	if are, ok := errors.AsType[*transport.AuthorizationRequiredError](err); ok {
		meta = are.ResourceMetadataURL
	}
	if p := u.challenge.Load(); meta == "" && p != nil {
		meta = *p
	}
	if meta != "" {
		return fmt.Errorf("%w: the server requires OAuth (resource metadata at %s): add oauth = true to its server entry", err, meta)
	}
	return fmt.Errorf("%w: the server requires authorization: set oauth = true, or an Authorization header, in its server entry", err)
}

// resourceMetadata returns the resource_metadata parameter of one
// WWW-Authenticate header value, or "".
func resourceMetadata(h string) string {
	_, rest, ok := strings.Cut(h, "resource_metadata=")
	if !ok {
		return ""
	}
	if v, ok := strings.CutPrefix(rest, `"`); ok {
		v, _, _ = strings.Cut(v, `"`)
		return v
	}
	v, _, _ := strings.Cut(rest, ",")
	return strings.TrimSpace(v)
}

// TokenInfo describes a token file without its secrets (ReadTokenInfo).
type TokenInfo struct {
	// ServerURL is the upstream URL the tokens are for.
	ServerURL string
	// Authorized is true when an access token is stored; Refreshable when a
	// refresh token is too (the hub can renew access without a browser).
	Authorized, Refreshable bool
	// ExpiresAt is the access token's expiry; zero when unknown.
	ExpiresAt time.Time
	// Registered is true when a client registration (or pre-registered
	// client id) is stored.
	Registered bool
}

// ReadTokenInfo reads the token file at path (OAuth.TokenFile) and reports
// what it holds, never a token or secret. A missing file is an error
// wrapping fs.ErrNotExist.
func ReadTokenInfo(path string) (TokenInfo, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return TokenInfo{}, err
	}
	var rec tokenRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return TokenInfo{}, fmt.Errorf("token file %s is not valid: %v", path, err)
	}
	info := TokenInfo{ServerURL: rec.ServerURL, Registered: rec.ClientID != ""}
	if t := rec.Token; t != nil {
		info.Authorized = t.AccessToken != ""
		info.Refreshable = t.RefreshToken != ""
		info.ExpiresAt = t.ExpiresAt
	}
	return info, nil
}

// tokenRecord is the on-disk form of a token file.
type tokenRecord struct {
	// ServerURL binds the record to one upstream URL: a record for another
	// URL is ignored.
	ServerURL    string           `json:"server_url"`
	ClientID     string           `json:"client_id,omitempty"`
	ClientSecret string           `json:"client_secret,omitempty"`
	AuthMethod   string           `json:"token_endpoint_auth_method,omitempty"`
	Token        *transport.Token `json:"token,omitempty"`
}

// tokenStore implements mcp-go's transport.TokenStore over one file (or
// memory when path is ""). It reports a token as expired a little before
// it is (refreshSkew), so that mcp-go refreshes it before the upstream
// rejects it. Safe for concurrent use.
type tokenStore struct {
	path string // "" → memory only
	url  string

	mu  sync.Mutex
	rec tokenRecord // guarded by mu
}

// refreshSkew is how long before its expiry a token is refreshed: a third
// of its lifetime, at most one minute.
func refreshSkew(t *transport.Token) time.Duration {
	if t.ExpiresIn > 0 {
		return min(time.Duration(t.ExpiresIn)*time.Second/3, time.Minute)
	}
	return 30 * time.Second
}

func (s *tokenStore) load() error {
	s.rec = tokenRecord{ServerURL: s.url}
	if s.path == "" {
		return nil
	}
	b, err := os.ReadFile(s.path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("read token file: %w", err)
	}
	var rec tokenRecord
	if err := json.Unmarshal(b, &rec); err != nil {
		return fmt.Errorf("token file %s: %v", s.path, err)
	}
	if rec.ServerURL != s.url {
		return fmt.Errorf("token file %s is for another URL", s.path)
	}
	s.rec = rec
	return nil
}

func (s *tokenStore) record() tokenRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.rec
}

// current returns the stored token as stored (no skew), or nil.
func (s *tokenStore) current() *transport.Token {
	t := s.record().Token
	if t == nil {
		return nil
	}
	c := *t
	return &c
}

// GetToken returns a copy of the stored token with ExpiresAt moved
// refreshSkew earlier, or transport.ErrNoToken.
func (s *tokenStore) GetToken(ctx context.Context) (*transport.Token, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	t := s.current()
	if t == nil {
		return nil, transport.ErrNoToken
	}
	if !t.ExpiresAt.IsZero() {
		t.ExpiresAt = t.ExpiresAt.Add(-refreshSkew(t))
	}
	return t, nil
}

// SaveToken stores t and writes the file.
func (s *tokenStore) SaveToken(ctx context.Context, t *transport.Token) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	c := *t
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rec.Token = &c
	return s.writeLocked()
}

func (s *tokenStore) setClient(id, secret, method string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rec.ClientID, s.rec.ClientSecret, s.rec.AuthMethod = id, secret, method
	return s.writeLocked()
}

// writeLocked writes the record atomically (temp file + rename), 0600 in a
// 0700 folder. s.mu is held.
func (s *tokenStore) writeLocked() error {
	if s.path == "" {
		return nil
	}
	b, err := json.MarshalIndent(s.rec, "", "  ")
	if err != nil {
		return fmt.Errorf("encode token file: %w", err)
	}
	dir := filepath.Dir(s.path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("token folder: %w", err)
	}
	f, err := os.CreateTemp(dir, ".token-*")
	if err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	defer os.Remove(f.Name())
	err = f.Chmod(0o600)
	if errors.Is(err, errors.ErrUnsupported) {
		err = nil
	}
	if err == nil {
		_, err = f.Write(b)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), s.path)
	}
	if err != nil {
		return fmt.Errorf("token file: %w", err)
	}
	return nil
}

// OAuthCallbackOptions configures an OAuthCallback.
type OAuthCallbackOptions struct {
	// Addr is the loopback address to listen on; "" means "127.0.0.1:0" (a
	// free port, logged). A host other than a loopback one is refused.
	Addr string
	// Logger receives the listener's logs; nil discards.
	Logger *slog.Logger
	// Open, if set, is called with each authorization URL (for example to
	// start a browser); its error is logged. nil means the URL is only
	// logged.
	Open func(url string) error
}

// OAuthCallback is the loopback listener that receives OAuth redirects
// (GET /callback?code=...&state=...) for every upstream. Create it with
// NewOAuthCallback, serve it with Run; RedirectURI and the upstreams' use
// are safe for concurrent use.
type OAuthCallback struct {
	opts  OAuthCallbackOptions
	log   *slog.Logger
	ready chan struct{} // closed once Run has bound (or failed to)

	mu      sync.Mutex
	uri     string                   // set before ready closes
	bindErr error                    // set before ready closes
	pending map[string]*pendingState // by state; guarded by mu
}

type pendingState struct {
	got   chan callbackResult // cap 1
	reply chan error          // cap 1
}

type callbackResult struct {
	code string
	err  error
}

// NewOAuthCallback returns a callback listener; nothing listens until Run.
func NewOAuthCallback(o OAuthCallbackOptions) *OAuthCallback {
	o.Addr = cmp.Or(o.Addr, "127.0.0.1:0")
	log := cmp.Or(o.Logger, slog.New(slog.DiscardHandler))
	return &OAuthCallback{opts: o, log: log, ready: make(chan struct{}), pending: map[string]*pendingState{}}
}

// Run listens on Addr and serves redirects until ctx is done. It returns
// an error only when it cannot listen; the upstreams waiting for it then
// fail with that error.
func (c *OAuthCallback) Run(ctx context.Context) error {
	ln, err := c.listen()
	c.bindErr = err
	if err == nil {
		c.uri = "http://" + ln.Addr().String() + "/callback"
	}
	close(c.ready)
	if err != nil {
		return err
	}
	c.log.Info("OAuth callback listening", "redirect_uri", c.uri)
	srv := &http.Server{Handler: http.HandlerFunc(c.serveHTTP), ReadHeaderTimeout: 10 * time.Second}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	<-ctx.Done()
	_ = srv.Close()
	<-done
	return nil
}

func (c *OAuthCallback) listen() (net.Listener, error) {
	host, _, err := net.SplitHostPort(c.opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("oauth callback address %q: %w", c.opts.Addr, err)
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("oauth callback address %q: not a loopback address", c.opts.Addr)
	}
	ln, err := net.Listen("tcp", c.opts.Addr)
	if err != nil {
		return nil, fmt.Errorf("oauth callback: %w", err)
	}
	return ln, nil
}

// RedirectURI returns the redirect URI, waiting until Run has bound.
func (c *OAuthCallback) RedirectURI(ctx context.Context) (string, error) {
	select {
	case <-ctx.Done():
		return "", ctx.Err()
	case <-c.ready:
	}
	return c.uri, c.bindErr
}

func (c *OAuthCallback) expect(state string) *pendingState {
	p := &pendingState{got: make(chan callbackResult, 1), reply: make(chan error, 1)}
	c.mu.Lock()
	c.pending[state] = p
	c.mu.Unlock()
	return p
}

func (c *OAuthCallback) forget(state string) {
	c.mu.Lock()
	delete(c.pending, state)
	c.mu.Unlock()
}

func (c *OAuthCallback) open(url string) {
	if c.opts.Open == nil {
		return
	}
	if err := c.opts.Open(url); err != nil {
		c.log.Warn("cannot open a browser; open the URL yourself", "err", err)
	}
}

func (c *OAuthCallback) serveHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/callback" || r.Method != http.MethodGet {
		http.NotFound(w, r)
		return
	}
	q := r.URL.Query()
	state := q.Get("state")
	c.mu.Lock()
	p := c.pending[state]
	delete(c.pending, state) // one use
	c.mu.Unlock()
	if state == "" || p == nil {
		http.Error(w, "unknown or expired authorization request (state)", http.StatusBadRequest)
		return
	}
	res := callbackResult{code: q.Get("code")}
	if e := q.Get("error"); e != "" {
		res.err = fmt.Errorf("authorization server answered %s: %s", e, q.Get("error_description"))
	} else if res.code == "" {
		res.err = errors.New("redirect without a code")
	}
	p.got <- res
	var err error
	select {
	case err = <-p.reply:
	case <-r.Context().Done():
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		fmt.Fprintf(w, "<p>sigil-hub: authorization failed: %s</p>\n", html.EscapeString(err.Error()))
		return
	}
	fmt.Fprint(w, "<p>sigil-hub: authorization complete. You can close this tab.</p>\n")
}
