// oauthtest.go: the servers. See doc.go for the package contract.
//
// This file holds a local OAuth 2.1 authorization server double and a
// bearer-checking resource server for tests: RFC 8414 authorization-server
// metadata, RFC 9728 protected-resource metadata, RFC 7591 dynamic client
// registration, an authorize endpoint that redirects back at once with a
// code (the test plays the browser), and a token endpoint that checks PKCE
// (S256) and issues rotating refresh tokens. The resource server is a
// reverse proxy in front of an MCP endpoint (for example
// internal/testupstream.StartHTTP) that answers 401 with a WWW-Authenticate
// resource_metadata challenge unless the bearer token is valid.

package oauthtest

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Options configures a Server.
type Options struct {
	// Upstream is the MCP endpoint URL the resource server proxies to
	// (path included, e.g. http://127.0.0.1:1234/mcp). Required.
	Upstream string
	// TokenTTL is the access tokens' expires_in; zero means one hour.
	TokenTTL time.Duration
	// Open makes the resource server accept every request (no bearer
	// check): a recording proxy, to see what a non-OAuth upstream gets.
	Open bool
}

// Server is a running authorization server plus resource server. Its
// methods are safe for concurrent use.
type Server struct {
	// URL is the protected MCP endpoint (resource server origin + upstream
	// path).
	URL string
	// Issuer is the authorization server's issuer (its own origin).
	Issuer string

	opts   Options
	rs, as *http.Server

	mu       sync.Mutex
	clients  map[string]string    // client_id → registered redirect_uri
	codes    map[string]codeGrant // code → grant
	access   map[string]bool      // valid access tokens
	refresh  map[string]string    // valid refresh token → client_id
	seenAuth []string             // Authorization headers the resource server got
	stats    Stats                // counters
	issued   []string             // every access and refresh token issued
	resource string               // the resource identifier
}

type codeGrant struct {
	clientID, redirect, challenge string
}

// Stats counts the authorization server's work.
type Stats struct {
	Registrations, Authorizations, CodeGrants, RefreshGrants int
	// Unauthorized counts the resource server's 401 answers.
	Unauthorized int
}

// Start serves both servers on 127.0.0.1 free ports.
func Start(o Options) (*Server, error) {
	if o.TokenTTL <= 0 {
		o.TokenTTL = time.Hour
	}
	up, err := url.Parse(o.Upstream)
	if err != nil || up.Host == "" {
		return nil, fmt.Errorf("oauthtest: bad upstream %q", o.Upstream)
	}
	rsLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	asLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = rsLn.Close()
		return nil, err
	}
	s := &Server{
		opts:    o,
		Issuer:  "http://" + asLn.Addr().String(),
		clients: map[string]string{}, codes: map[string]codeGrant{},
		access: map[string]bool{}, refresh: map[string]string{},
	}
	rsBase := "http://" + rsLn.Addr().String()
	s.URL = rsBase + up.Path
	s.resource = s.URL
	proxy := httputil.NewSingleHostReverseProxy(&url.URL{Scheme: up.Scheme, Host: up.Host})
	proxy.FlushInterval = -1
	rsMux := http.NewServeMux()
	prm := func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]any{
			"resource":              s.resource,
			"authorization_servers": []string{s.Issuer},
		})
	}
	rsMux.HandleFunc("/.well-known/oauth-protected-resource", prm)
	rsMux.HandleFunc("/.well-known/oauth-protected-resource/", prm)
	rsMux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		h := r.Header.Get("Authorization")
		s.mu.Lock()
		s.seenAuth = append(s.seenAuth, h)
		tok, _ := strings.CutPrefix(h, "Bearer ")
		ok := o.Open || s.access[tok]
		if !ok {
			s.stats.Unauthorized++
		}
		s.mu.Unlock()
		if !ok {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer resource_metadata="%s/.well-known/oauth-protected-resource%s"`, rsBase, up.Path))
			http.Error(w, "invalid or missing bearer token", http.StatusUnauthorized)
			return
		}
		proxy.ServeHTTP(w, r)
	})
	asMux := http.NewServeMux()
	asMux.HandleFunc("/.well-known/oauth-authorization-server", s.metadata)
	asMux.HandleFunc("/register", s.register)
	asMux.HandleFunc("/authorize", s.authorize)
	asMux.HandleFunc("/token", s.token)
	s.rs = &http.Server{Handler: rsMux}
	s.as = &http.Server{Handler: asMux}
	go func() { _ = s.rs.Serve(rsLn) }()
	go func() { _ = s.as.Serve(asLn) }()
	return s, nil
}

// Close stops both servers and closes their connections.
func (s *Server) Close() error {
	err := s.rs.Close()
	if e := s.as.Close(); err == nil {
		err = e
	}
	return err
}

// Expire invalidates every access token issued so far (refresh tokens stay
// valid), as if they had expired.
func (s *Server) Expire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.access)
}

// Stats returns the counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.stats
}

// Issued returns every access and refresh token issued so far.
func (s *Server) Issued() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.issued...)
}

// SeenAuthorization returns the Authorization header of every request the
// resource server got ("" when absent), in order.
func (s *Server) SeenAuthorization() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.seenAuth...)
}

func (s *Server) metadata(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                s.Issuer,
		"authorization_endpoint":                s.Issuer + "/authorize",
		"token_endpoint":                        s.Issuer + "/token",
		"registration_endpoint":                 s.Issuer + "/register",
		"response_types_supported":              []string{"code"},
		"grant_types_supported":                 []string{"authorization_code", "refresh_token"},
		"code_challenge_methods_supported":      []string{"S256"},
		"token_endpoint_auth_methods_supported": []string{"none"},
	})
}

func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	var req struct {
		RedirectURIs []string `json:"redirect_uris"`
	}
	if r.Method != http.MethodPost || json.NewDecoder(r.Body).Decode(&req) != nil || len(req.RedirectURIs) != 1 {
		oauthError(w, "invalid_client_metadata")
		return
	}
	id := "client-" + random()
	s.mu.Lock()
	s.clients[id] = req.RedirectURIs[0]
	s.stats.Registrations++
	s.mu.Unlock()
	writeJSON(w, http.StatusCreated, map[string]any{
		"client_id": id, "redirect_uris": req.RedirectURIs, "token_endpoint_auth_method": "none",
	})
}

// authorize approves at once and redirects to the registered redirect URI
// with a code (or an error when the request is bad).
func (s *Server) authorize(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	s.mu.Lock()
	defer s.mu.Unlock()
	redirect, ok := s.clients[q.Get("client_id")]
	if !ok || redirect != q.Get("redirect_uri") {
		http.Error(w, "unknown client or redirect_uri", http.StatusBadRequest)
		return
	}
	back, _ := url.Parse(redirect)
	v := url.Values{"state": {q.Get("state")}}
	switch {
	case q.Get("response_type") != "code", q.Get("code_challenge_method") != "S256", q.Get("code_challenge") == "":
		v.Set("error", "invalid_request")
	case q.Get("resource") != s.resource:
		v.Set("error", "invalid_target")
	default:
		code := "code-" + random()
		s.codes[code] = codeGrant{clientID: q.Get("client_id"), redirect: redirect, challenge: q.Get("code_challenge")}
		s.stats.Authorizations++
		v.Set("code", code)
	}
	back.RawQuery = v.Encode()
	http.Redirect(w, r, back.String(), http.StatusFound)
}

func (s *Server) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.ParseForm() != nil {
		oauthError(w, "invalid_request")
		return
	}
	f := r.PostForm
	s.mu.Lock()
	defer s.mu.Unlock()
	var client string
	switch f.Get("grant_type") {
	case "authorization_code":
		g, ok := s.codes[f.Get("code")]
		delete(s.codes, f.Get("code")) // one use
		sum := sha256.Sum256([]byte(f.Get("code_verifier")))
		switch {
		case !ok, g.clientID != f.Get("client_id"), g.redirect != f.Get("redirect_uri"):
			oauthError(w, "invalid_grant")
			return
		case base64.RawURLEncoding.EncodeToString(sum[:]) != g.challenge:
			oauthError(w, "invalid_grant") // PKCE
			return
		}
		client = g.clientID
		s.stats.CodeGrants++
	case "refresh_token":
		c, ok := s.refresh[f.Get("refresh_token")]
		if !ok || c != f.Get("client_id") {
			oauthError(w, "invalid_grant")
			return
		}
		delete(s.refresh, f.Get("refresh_token")) // rotation
		client = c
		s.stats.RefreshGrants++
	default:
		oauthError(w, "unsupported_grant_type")
		return
	}
	at, rt := "at-"+random(), "rt-"+random()
	s.access[at] = true
	s.refresh[rt] = client
	s.issued = append(s.issued, at, rt)
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": at, "token_type": "Bearer", "refresh_token": rt,
		"expires_in": int64(s.opts.TokenTTL / time.Second),
	})
}

func oauthError(w http.ResponseWriter, code string) {
	writeJSON(w, http.StatusBadRequest, map[string]string{"error": code})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func random() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
