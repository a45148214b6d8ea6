package signer

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/sigilcore/sigil-hub/authz"
	"github.com/sigilcore/sigil-hub/authz/policy"
)

// Wire constants (docs/protocol.md#the-authorize-request,
// #attestations-and-the-jwks).
const (
	// SOFVersion is the X-SOF-Version header sent on decision responses.
	SOFVersion = "sigil-attestations-v1"
	// DefaultIssuer is the attestation iss claim (Sign's default trusted issuer).
	DefaultIssuer = "sigil-core"
	// Audience is the attestation aud claim.
	Audience = "sigil-sign"
	// AttestationLifetime is exp - iat of every intent attestation.
	AttestationLifetime = 60 * time.Second
	// DefaultHoldTTL is how long a hold can be decided (and an approval
	// consumed) before it expires: 24 h, as Sign's holds do.
	DefaultHoldTTL = 24 * time.Hour
	// MaxBodyBytes caps a POST /v1/authorize body: 100 KiB, Sign's 100 kB
	// limit rounded up so that every intent the hub sends (arguments of at
	// most 100 000 bytes, docs/protocol.md#limits, plus the envelope) fits.
	// Larger bodies get 413.
	MaxBodyBytes = 100 << 10
	// maxDepth bounds request JSON nesting (pg-commit-v1's verifier cap).
	maxDepth = 64
)

// Options configures a Server. New copies it.
type Options struct {
	// Policy is the parsed warranty.md every intent is evaluated with.
	// Required (New panics without it).
	Policy *policy.Policy
	// Key signs intent attestations. Required (New panics when it is not an
	// Ed25519 private key).
	Key ed25519.PrivateKey
	// Kid is the key id in the JWS header, the kid claim and the JWKS.
	// If empty, the RFC 7638 thumbprint of Key's public key is used
	// (what LoadOrCreateKey returns).
	Kid string
	// APIKey, if set, is the only bearer token /v1/* accepts (compared in
	// constant time). If empty, any non-empty bearer token is accepted: the
	// signer is then as open as its listener (loopback by default).
	APIKey string
	// Issuer is the attestation iss claim. If empty, DefaultIssuer.
	Issuer string
	// HoldTTL is how long a hold stays decidable (and an approval usable),
	// and how long a decided or expired hold is still reported after it
	// ended. If zero, DefaultHoldTTL.
	HoldTTL time.Duration
	// AdminToken authenticates people and the `holds` CLI on the admin
	// surface. If empty, New draws a random one (see Server.AdminToken).
	AdminToken string
	// Now returns the current time. If nil, time.Now.
	Now func() time.Time
	// Logger receives one info line per decision (never arguments or keys).
	// If nil, logs are discarded.
	Logger *slog.Logger
	// DecisionLog, if non-nil, receives one JSON line per decision record
	// (authorize decisions and hold resolutions). Writes are serialized.
	DecisionLog io.Writer
}

// Server is a local Sigil Sign. Its handler is safe for concurrent use;
// every method of Server is safe for concurrent use.
type Server struct {
	o       Options
	pub     ed25519.PublicKey
	local   *authz.Local // decides, and keeps the holds and recent decisions
	logMu   sync.Mutex   // serializes DecisionLog writes
	handler http.Handler
}

// New returns a Server for o. It panics when o.Policy is nil or o.Key is
// not a valid Ed25519 private key (programmer errors: callers load both
// first).
func New(o Options) *Server {
	if o.Policy == nil {
		panic("signer: New needs a policy")
	}
	if len(o.Key) != ed25519.PrivateKeySize {
		panic("signer: New needs an Ed25519 private key")
	}
	pub := o.Key.Public().(ed25519.PublicKey)
	if o.Kid == "" {
		o.Kid = Thumbprint(pub)
	}
	if o.Issuer == "" {
		o.Issuer = DefaultIssuer
	}
	if o.HoldTTL <= 0 {
		o.HoldTTL = DefaultHoldTTL
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{o: o, pub: pub}
	s.local = authz.NewLocal(authz.LocalOptions{Policy: o.Policy, PendingTimeout: o.HoldTTL, Retain: o.HoldTTL, Now: o.Now,
		OnRecord: s.logDecision})
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/authorize", s.v1(s.handleAuthorize))
	mux.HandleFunc("GET /v1/holds/{id}", s.v1(s.handleHoldLookup))
	mux.HandleFunc("GET /.well-known/jwks.json", s.handleJWKS)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	admin := NewAdmin(AdminOptions{Local: s.local, Token: o.AdminToken, Name: "sigil-hub signer", Kid: o.Kid, Now: o.Now})
	admin.register(mux)
	s.o.AdminToken = admin.Token() // drawn by NewAdmin when not given
	s.handler = mux
	return s
}

// Handler returns the HTTP handler serving every endpoint.
func (s *Server) Handler() http.Handler { return s.handler }

// AdminToken is the token the admin surface accepts (Authorization: Bearer,
// the page's forms, or ?token= on the approval page URL).
func (s *Server) AdminToken() string { return s.o.AdminToken }

// Kid is the key id attestations are signed under.
func (s *Server) Kid() string { return s.o.Kid }

// PolicyHash is the loaded policy's hash.
func (s *Server) PolicyHash() string { return s.o.Policy.Hash() }

// logDecision logs a decision record and appends it to the decision log.
func (s *Server) logDecision(rec authz.Record) {
	// The client chose action and agent: escaped, so that they cannot
	// drive the terminal the log is read on (Visible).
	s.o.Logger.Info("decision", "surface", rec.Surface, "decision", rec.Decision, "error_code", rec.Code,
		"action", Visible(rec.Action), "agent_id", Visible(rec.AgentID), "hold_id", rec.HoldID)
	if s.o.DecisionLog == nil {
		return
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return
	}
	s.logMu.Lock()
	defer s.logMu.Unlock()
	if _, err := s.o.DecisionLog.Write(append(b, '\n')); err != nil {
		s.o.Logger.Error("writing the decision log failed", "err", err)
	}
}

// v1 guards a /v1 endpoint: a request that came in on a loopback address
// must name a loopback Host with the listener's port, and one a browser
// made must come from the signer's own origin (Origin, Sec-Fetch-Site), so
// that a web page cannot reach the signer by DNS rebinding (its requests
// then carry the page's own host name) even when any bearer key is
// accepted; then the bearer API key. A --listen-public signer's requests on
// other addresses carry whatever name the network uses for it; the API key
// it requires guards them.
func (s *Server) v1(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if localLoopback(r) && !loopbackHost(r) || !sameOrigin(r) {
			s.o.Logger.Info("request refused: foreign Host or Origin", "path", r.URL.Path)
			writeJSON(w, http.StatusForbidden, map[string]string{
				"status": "DENIED", "error_code": "SIGIL_VALIDATION_ERROR",
				"message": "the signer answers /v1 on its loopback address only for requests addressed to a loopback host and its own port " +
					"(localhost or 127.0.0.1), and never for a web page of another origin (DNS rebinding); use --sign-url http://127.0.0.1:PORT"})
			return
		}
		tok, ok := bearer(r)
		if !ok || (s.o.APIKey != "" && !equalSecret(tok, s.o.APIKey)) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="sigil-sign"`)
			writeJSON(w, http.StatusUnauthorized, map[string]string{
				"status": "ERROR", "error_code": "SIGIL_AUTH_INVALID_KEY",
				"message": "missing or invalid API key (Authorization: Bearer <key>)"})
			return
		}
		next(w, r)
	}
}

// bearer returns the non-empty token of an "Authorization: Bearer" header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	tok = strings.TrimSpace(tok)
	return tok, tok != ""
}

// equalSecret compares two secrets in constant time (hashing first, so
// that not even the length leaks).
func equalSecret(a, b string) bool {
	ha, hb := sha256.Sum256([]byte(a)), sha256.Sum256([]byte(b))
	return subtle.ConstantTimeCompare(ha[:], hb[:]) == 1
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never fails (crypto/rand crashes the program instead)
	return hex.EncodeToString(b)
}

// writeJSON sends v as JSON with status.
func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(b)
}
