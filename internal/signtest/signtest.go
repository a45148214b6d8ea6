package signtest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

// DefaultPolicyHash is the policy hash the double reports when
// Options.PolicyHash is empty.
const DefaultPolicyHash = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"

// Kid is the key id of the double's initial signing key.
const Kid = "signtest-1"

// Options configures a Server. The zero Options accepts every API key and
// approves every call without an attestation.
type Options struct {
	// APIKey is the expected bearer token; a request carrying any other
	// Authorization header gets 401. If empty, every request is accepted.
	APIKey string
	// Decide scripts the reply to each POST /v1/authorize. It is called
	// concurrently, one call per request, and may block (e.g. on a channel)
	// but must return once the test ends. If nil, every call is approved.
	Decide func(r Request) Reply
	// Attest makes every Approve() reply carry an Ed25519 intent attestation
	// (iss sigil-core, aud sigil-sign, 60 s lifetime, intentHash =
	// sha256hex(txCommit)) signed with the current key. If false, approvals
	// carry none.
	Attest bool
	// PolicyHash is reported in approvals and attestations.
	// If empty, DefaultPolicyHash is used.
	PolicyHash string
	// Now is the clock used for attestation iat/exp. If nil, time.Now.
	Now func() time.Time
	// TLS serves HTTPS with the httptest self-signed certificate (clients
	// that do not trust Server.Certificate fail verification). If false,
	// plain HTTP.
	TLS bool
	// OnHoldLookup, if non-nil, is called (synchronously, before answering)
	// on every GET /v1/holds/{id}. It must not block for long.
	OnHoldLookup func(id string)
	// NoHistory keeps no record of the requests (Requests returns nil), so
	// that a long soak's memory stays flat; Decide still sees each one.
	// If false, every request is kept.
	NoHistory bool
}

// Request is one POST /v1/authorize the double received.
type Request struct {
	// Body is the raw request body.
	Body []byte
	// Intent is the decoded "intent" member (numbers as json.Number), or nil.
	Intent map[string]any
	// Action, ServerID and Tool are intent.action, intent.metadata.serverId
	// and intent.metadata.toolName ("" when absent).
	Action, ServerID, Tool string
	// TxCommit and Nonce are the body's txCommit and request_nonce.
	TxCommit, Nonce string
	// Header is the request's header.
	Header http.Header
}

// Reply is the double's answer to one POST /v1/authorize.
type Reply struct {
	// Status is the HTTP status. If 0, 200 is used.
	Status int
	// Body is sent verbatim.
	Body []byte
	// Header is added to the response (e.g. Location for a redirect).
	Header http.Header
	// Hang never answers: the handler waits until the client goes away or
	// the test ends.
	Hang bool
	// CloseConn hijacks the connection and closes it without any response.
	CloseConn bool
	// Trickle, if non-zero, sends the status and headers at once and then
	// the body one byte per Trickle interval.
	Trickle time.Duration

	approve bool   // built by Approve: the server may add an attestation
	holdID  string // built by Pending: the hold to register
}

// Approve is an approval: 200 {"status":"APPROVED","policy_hash":...}, plus an
// intent attestation when Options.Attest is set.
func Approve() Reply {
	return Reply{Status: http.StatusOK, Body: []byte(`{"status":"APPROVED"}`), approve: true}
}

// Deny is a policy denial: 200 {"status":"DENIED","error_code":code,"message":msg}.
func Deny(code, msg string) Reply {
	b, _ := json.Marshal(map[string]string{"status": "DENIED", "error_code": code, "message": msg})
	return Reply{Status: http.StatusOK, Body: b}
}

// Pending holds the call: 202 {"status":"PENDING","hold_id":holdID}. The hold
// is registered as PENDING unless SetHold already gave it a state. (A raw
// PENDING body in a hand-built Reply registers nothing: its lookups get 404.)
func Pending(holdID string) Reply {
	b, _ := json.Marshal(map[string]string{"status": "PENDING", "hold_id": holdID})
	return Reply{Status: http.StatusAccepted, Body: b, holdID: holdID}
}

// Server is a running Sign double. All methods are safe for concurrent use.
type Server struct {
	// URL is the base URL (http://127.0.0.1:port, or https:// with Options.TLS).
	URL string
	// Client is an *http.Client that trusts the server (its TLS
	// certificate when Options.TLS is set).
	Client *http.Client

	opts Options
	srv  *httptest.Server
	done chan struct{} // closed at cleanup: releases hanging handlers

	mu          sync.Mutex // guards the fields below
	reqs        []Request
	holds       map[string]string
	holdLookups []string
	jwksFetches int
	keys        []signKey // keys[0] signs; all are published
}

type signKey struct {
	kid  string
	priv ed25519.PrivateKey
}

// New starts a Server on 127.0.0.1; it is closed by tb.Cleanup.
func New(tb testing.TB, o Options) *Server {
	tb.Helper()
	if o.PolicyHash == "" {
		o.PolicyHash = DefaultPolicyHash
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	s := &Server{opts: o, done: make(chan struct{}), holds: map[string]string{}}
	s.keys = []signKey{newKey(tb, Kid)}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/authorize", s.handleAuthorize)
	mux.HandleFunc("GET /v1/holds/{id}", s.handleHold)
	mux.HandleFunc("GET /.well-known/jwks.json", s.handleJWKS)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok"}`)
	})
	s.srv = httptest.NewUnstartedServer(mux)
	s.srv.Config.ErrorLog = log.New(io.Discard, "", 0) // TLS handshake noise
	if o.TLS {
		s.srv.StartTLS()
	} else {
		s.srv.Start()
	}
	s.URL = s.srv.URL
	s.Client = s.srv.Client()
	tb.Cleanup(func() {
		close(s.done)
		s.srv.CloseClientConnections()
		s.srv.Close()
	})
	return s
}

func newKey(tb testing.TB, kid string) signKey {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatalf("signtest: generate key: %v", err)
	}
	return signKey{kid: kid, priv: priv}
}

// RotateKey makes a new key with id kid the signing key; the old keys stay
// published in the JWKS unless dropOld is set.
func (s *Server) RotateKey(tb testing.TB, kid string, dropOld bool) {
	k := newKey(tb, kid)
	s.mu.Lock()
	defer s.mu.Unlock()
	if dropOld {
		s.keys = []signKey{k}
		return
	}
	s.keys = append([]signKey{k}, s.keys...)
}

// Requests returns every POST /v1/authorize received so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.reqs...)
}

// SetHold sets the state GET /v1/holds/{id} answers (PENDING, APPROVED,
// DENIED, EXPIRED or anything else, sent verbatim as "status").
// An unknown id answers 404.
func (s *Server) SetHold(id, status string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.holds[id] = status
}

// HoldLookups returns the hold ids of every GET /v1/holds/{id}, in order.
func (s *Server) HoldLookups() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.holdLookups...)
}

// JWKSFetches returns how many times /.well-known/jwks.json was fetched.
func (s *Server) JWKSFetches() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.jwksFetches
}

// SignToken returns a compact JWS over header and claims (marshalled with
// encoding/json) signed with the current key. If header is nil,
// {"alg":"EdDSA","kid":<current kid>} is used.
func (s *Server) SignToken(header, claims map[string]any) string {
	s.mu.Lock()
	k := s.keys[0]
	s.mu.Unlock()
	if header == nil {
		header = map[string]any{"alg": "EdDSA", "kid": k.kid}
	}
	hb, _ := json.Marshal(header)
	cb, _ := json.Marshal(claims)
	return SignRaw(k.priv, hb, cb)
}

// SignRaw signs the raw header and claims JSON bytes with priv as a compact
// JWS (unpadded base64url segments).
func SignRaw(priv ed25519.PrivateKey, header, claims []byte) string {
	enc := base64.RawURLEncoding
	in := enc.EncodeToString(header) + "." + enc.EncodeToString(claims)
	return in + "." + enc.EncodeToString(ed25519.Sign(priv, []byte(in)))
}

// AttestationClaims returns the claims the double signs for an approval of
// txCommit at the current time: callers may modify them and pass them to
// SignToken.
func (s *Server) AttestationClaims(txCommit string) map[string]any {
	s.mu.Lock()
	kid := s.keys[0].kid
	s.mu.Unlock()
	now := s.opts.Now().Unix()
	sum := sha256.Sum256([]byte(txCommit))
	return map[string]any{
		"iss":        "sigil-core",
		"aud":        "sigil-sign",
		"agentId":    "signtest",
		"framework":  "mcp-proxy",
		"intentHash": hex.EncodeToString(sum[:]),
		"policyHash": s.opts.PolicyHash,
		"provenance": "agent",
		"decision":   "ALLOWED",
		"iat":        now,
		"exp":        now + 60,
		"kid":        kid,
	}
}

// ApproveWith is an approval whose body carries attestation as
// intent_attestation and the configured policy hash.
func (s *Server) ApproveWith(attestation string) Reply {
	b, _ := json.Marshal(map[string]string{"status": "APPROVED", "policy_hash": s.opts.PolicyHash, "intent_attestation": attestation})
	return Reply{Status: http.StatusOK, Body: b}
}

// ClosedURL returns an http:// URL on 127.0.0.1 where nothing listens
// (connections are refused).
func ClosedURL(tb testing.TB) string {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("signtest: listen: %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	return "http://" + addr
}

func (s *Server) authorized(r *http.Request) bool {
	return s.opts.APIKey == "" || r.Header.Get("Authorization") == "Bearer "+s.opts.APIKey
}

func (s *Server) handleAuthorize(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return
	}
	req := Request{Body: body, Header: r.Header.Clone()}
	var top struct {
		TxCommit string         `json:"txCommit"`
		Nonce    string         `json:"request_nonce"`
		Intent   map[string]any `json:"intent"`
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if dec.Decode(&top) == nil {
		req.TxCommit, req.Nonce, req.Intent = top.TxCommit, top.Nonce, top.Intent
		req.Action, _ = top.Intent["action"].(string)
		if md, ok := top.Intent["metadata"].(map[string]any); ok {
			req.ServerID, _ = md["serverId"].(string)
			req.Tool, _ = md["toolName"].(string)
		}
	}
	if !s.opts.NoHistory {
		s.mu.Lock()
		s.reqs = append(s.reqs, req)
		s.mu.Unlock()
	}
	if !s.authorized(r) {
		s.write(w, r, Reply{Status: http.StatusUnauthorized, Body: []byte(`{"status":"ERROR","error_code":"SIGIL_AUTH_INVALID_KEY","message":"invalid api key"}`)})
		return
	}
	rep := Approve()
	if s.opts.Decide != nil {
		rep = s.opts.Decide(req)
	}
	if rep.approve {
		m := map[string]string{"status": "APPROVED", "policy_hash": s.opts.PolicyHash}
		if s.opts.Attest {
			m["intent_attestation"] = s.SignToken(nil, s.AttestationClaims(req.TxCommit))
		}
		rep.Body, _ = json.Marshal(m)
	}
	if rep.holdID != "" {
		s.mu.Lock()
		if _, set := s.holds[rep.holdID]; !set {
			s.holds[rep.holdID] = "PENDING"
		}
		s.mu.Unlock()
	}
	s.write(w, r, rep)
}

func (s *Server) handleHold(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	s.holdLookups = append(s.holdLookups, id)
	st, ok := s.holds[id]
	s.mu.Unlock()
	if s.opts.OnHoldLookup != nil {
		s.opts.OnHoldLookup(id)
	}
	switch {
	case !s.authorized(r):
		s.write(w, r, Reply{Status: http.StatusUnauthorized, Body: []byte(`{"status":"ERROR","error_code":"SIGIL_AUTH_INVALID_KEY"}`)})
	case !ok:
		s.write(w, r, Reply{Status: http.StatusNotFound, Body: []byte(`{"status":"ERROR","error_code":"SIGIL_HOLD_NOT_FOUND"}`)})
	default:
		b, _ := json.Marshal(map[string]string{"hold_id": id, "status": st})
		s.write(w, r, Reply{Status: http.StatusOK, Body: b})
	}
}

func (s *Server) handleJWKS(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.jwksFetches++
	keys := make([]map[string]any, 0, len(s.keys))
	for _, k := range s.keys {
		keys = append(keys, map[string]any{
			"kty": "OKP", "crv": "Ed25519", "kid": k.kid, "use": "sig", "alg": "EdDSA",
			"x": base64.RawURLEncoding.EncodeToString(k.priv.Public().(ed25519.PublicKey)),
		})
	}
	s.mu.Unlock()
	b, _ := json.Marshal(map[string]any{"keys": keys})
	w.Header().Set("Content-Type", "application/json")
	w.Write(b)
}

// write sends rep, honouring its fault-injection fields.
func (s *Server) write(w http.ResponseWriter, r *http.Request, rep Reply) {
	if rep.Hang {
		select {
		case <-r.Context().Done():
		case <-s.done:
		}
		return
	}
	if rep.CloseConn {
		hj, ok := w.(http.Hijacker)
		if !ok {
			panic("signtest: connection cannot be hijacked")
		}
		conn, _, err := hj.Hijack()
		if err == nil {
			conn.Close()
		}
		return
	}
	for k, vs := range rep.Header {
		for _, v := range vs {
			w.Header().Add(k, v)
		}
	}
	if w.Header().Get("Content-Type") == "" && len(rep.Body) > 0 {
		w.Header().Set("Content-Type", "application/json")
	}
	status := rep.Status
	if status == 0 {
		status = http.StatusOK
	}
	if rep.Trickle <= 0 {
		w.WriteHeader(status)
		w.Write(rep.Body)
		return
	}
	w.WriteHeader(status)
	rc := http.NewResponseController(w)
	rc.Flush()
	t := time.NewTicker(rep.Trickle)
	defer t.Stop()
	for i := range rep.Body {
		select {
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		case <-t.C:
		}
		if _, err := w.Write(rep.Body[i : i+1]); err != nil {
			return
		}
		if rc.Flush() != nil {
			return
		}
	}
}
