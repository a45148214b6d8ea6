package authz

import (
	"bytes"
	"cmp"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"

	"github.com/sigilcore/sigil-hub/internal/strictjson"
)

// DefaultSignURL is the hosted Sigil Sign service.
const DefaultSignURL = "https://sign.sigilcore.com"

// Attestation verification modes (docs/protocol.md#attestations-and-the-jwks),
// for SignOptions.Verify.
const (
	VerifyOff     = "off"
	VerifyWarn    = "warn"
	VerifyEnforce = "enforce"
)

// SignOptions configures a Sign client. NewSign copies it.
type SignOptions struct {
	// URL is the Sign base URL (scheme and host, optionally a path prefix;
	// no user info, query or fragment). If empty, DefaultSignURL is used.
	URL string
	// APIKey is the bearer token sent to Sign. Required: it never appears in
	// any error, log line or Decision message.
	APIKey string
	// RequestTimeout bounds each /v1/authorize attempt and each hold lookup
	// and JWKS fetch (also bounded by the caller's ctx). If zero, 10s is used.
	RequestTimeout time.Duration
	// PendingTimeout is how long a held (PENDING) call waits for its hold to
	// be resolved (docs/protocol.md#holds-pending). If zero, 30s is used.
	PendingTimeout time.Duration
	// Verify is the intent attestation mode: "off", "warn" (verify, log
	// failures, approve anyway) or "enforce" (a missing or failing
	// attestation denies). If empty, "warn" is used.
	Verify string
	// PolicyHash, if non-empty, is the operator's pinned policy hash (64
	// lowercase hex); attestations must carry it. If empty, any policy hash
	// is accepted.
	PolicyHash string
	// Transport carries every request to Sign. If nil, a dedicated
	// *http.Transport with keep-alive is used (never http.DefaultTransport).
	Transport http.RoundTripper
	// BreakerThreshold is the number of consecutive unreachable-class
	// failures (ErrUnreachable: no HTTP response, or HTTP 502/503/504) after
	// which the circuit breaker opens and calls fail fast without dialing
	// (docs/protocol.md#the-circuit-breaker). Answers of any kind (approvals,
	// denials, 401, invalid bodies) reset the count. If zero, 5 is used; a
	// negative value disables the breaker.
	BreakerThreshold int
	// BreakerCooldown is how long the breaker stays open before one probe
	// request is let through; each failed probe doubles it up to
	// BreakerMaxCooldown. If zero, 2s is used.
	BreakerCooldown time.Duration
	// BreakerMaxCooldown caps the doubled cooldown. If zero, 30s is used; a
	// value below BreakerCooldown is raised to it.
	BreakerMaxCooldown time.Duration
	// Logger receives warnings (attestation failures in warn mode, failed
	// hold lookups) and info lines about holds. If nil, logs are discarded.
	Logger *slog.Logger
}

// Validate reports the first problem with o that would make NewSign panic.
// Safe for concurrent use.
func (o SignOptions) Validate() error {
	if o.APIKey == "" {
		return errors.New("sign api key is empty")
	}
	if strings.IndexFunc(o.APIKey, func(r rune) bool { return r < 0x21 || r > 0x7e }) >= 0 {
		return errors.New("sign api key contains a space, control or non-ASCII character")
	}
	if o.URL != "" {
		u, err := url.Parse(o.URL)
		if err != nil {
			return fmt.Errorf("sign url: %v", err)
		}
		if u.Scheme != "https" && u.Scheme != "http" {
			return fmt.Errorf("sign url %q: scheme must be https or http", u.Redacted())
		}
		if u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
			return fmt.Errorf("sign url %q: want scheme://host[:port][/path] without user info, query or fragment", u.Redacted())
		}
	}
	if o.RequestTimeout < 0 || o.PendingTimeout < 0 {
		return errors.New("sign timeouts must not be negative")
	}
	if o.BreakerCooldown < 0 || o.BreakerMaxCooldown < 0 {
		return errors.New("sign breaker cooldowns must not be negative")
	}
	switch o.Verify {
	case "", VerifyOff, VerifyWarn, VerifyEnforce:
	default:
		return fmt.Errorf("sign verify mode %q: want off, warn or enforce", o.Verify)
	}
	if o.PolicyHash != "" && !IsHex64(o.PolicyHash) {
		return errors.New("pinned policy hash must be 64 lowercase hex characters")
	}
	return nil
}

// IsHex64 reports whether s is 64 lowercase hex characters: a SHA-256
// digest as Sign writes them (txCommit, policy hash).
func IsHex64(s string) bool {
	return len(s) == 64 && strings.Trim(s, "0123456789abcdef") == ""
}

// Sign is the Sigil Sign client: an Authorizer that asks POST
// {URL}/v1/authorize for every call, waits out PENDING holds and verifies
// intent attestations (docs/protocol.md: the request, statuses, retries,
// holds and attestations). It keeps no decision cache.
//
// A Sign is safe for concurrent use. Close it when done.
type Sign struct {
	apiKey         string
	authorizeURL   string
	holdsURL       string // ends in "/"
	requestTimeout time.Duration
	pendingTimeout time.Duration
	verify         string
	pin            string
	client         *http.Client
	log            *slog.Logger
	att            *attVerifier
	holds          *holdLimiter
	breaker        *signBreaker // nil: disabled

	// Test knobs (set only before first use, from tests in this package).
	clock       signClock
	holdFirst   time.Duration // first hold lookup this long after the hold
	bodyTimeout time.Duration // response body-read deadline
	retryDelay  time.Duration // pause before the single not-sent retry

	closeCtx    context.Context // cancelled by Close
	closeCancel context.CancelFunc
	mu          sync.Mutex     // orders Close's cancel with inflight.Add
	inflight    sync.WaitGroup // Authorize calls in progress
}

// NewSign returns a Sign client for o. It panics when o.Validate fails:
// callers validate user configuration first.
func NewSign(o SignOptions) *Sign {
	if err := o.Validate(); err != nil {
		panic("authz: NewSign: " + err.Error())
	}
	base := cmp.Or(strings.TrimRight(o.URL, "/"), DefaultSignURL)
	u, _ := url.Parse(base)
	origin := (&url.URL{Scheme: u.Scheme, Host: u.Host}).String()
	o.RequestTimeout = cmp.Or(o.RequestTimeout, 10*time.Second)
	o.PendingTimeout = cmp.Or(o.PendingTimeout, 30*time.Second)
	o.Verify = cmp.Or(o.Verify, VerifyWarn)
	o.Logger = cmp.Or(o.Logger, slog.New(slog.DiscardHandler))
	rt := o.Transport
	if rt == nil {
		rt = signTransport()
	}
	client := &http.Client{
		Transport: rt,
		// Redirects are never followed (docs/protocol.md#http-statuses): a
		// 3xx is an invalid response, and the key is never sent to a redirect
		// target.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	s := &Sign{
		apiKey:         o.APIKey,
		authorizeURL:   base + "/v1/authorize",
		holdsURL:       base + "/v1/holds/",
		requestTimeout: o.RequestTimeout,
		pendingTimeout: o.PendingTimeout,
		verify:         o.Verify,
		pin:            o.PolicyHash,
		client:         client,
		log:            o.Logger,
		holds:          &holdLimiter{interval: holdInterval},
		breaker:        newSignBreaker(o.BreakerThreshold, o.BreakerCooldown, o.BreakerMaxCooldown),
		clock:          holdRealClock{},
		holdFirst:      holdFirstDelay,
		bodyTimeout:    respBodyTimeout,
		retryDelay:     100 * time.Millisecond,
	}
	s.att = &attVerifier{
		jwksURL:     origin + "/.well-known/jwks.json",
		client:      client,
		timeout:     o.RequestTimeout,
		bodyTimeout: respBodyTimeout,
		now:         func() time.Time { return s.clock.Now() },
	}
	s.closeCtx, s.closeCancel = context.WithCancel(context.Background())
	return s
}

// signTransport is the dedicated keep-alive transport of one Sign client.
func signTransport() *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         d.DialContext,
		TLSClientConfig:     &tls.Config{MinVersion: tls.VersionTLS12},
		TLSHandshakeTimeout: 5 * time.Second,
		ForceAttemptHTTP2:   true,
		// Keep enough idle connections for the hub's concurrency: a call that
		// finds none dials a new TCP (and TLS) connection to Sign.
		MaxIdleConns:        256,
		MaxIdleConnsPerHost: 256,
		// And no more than that in use: a client that sends a thousand
		// calls at once makes them wait for a connection (within their
		// deadline) instead of opening a thousand sockets to Sign.
		MaxConnsPerHost:       256,
		IdleConnTimeout:       90 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
}

// Close makes later Authorize calls fail, cancels the waits of calls in
// progress (they return an error wrapping context.Canceled, never
// ErrUnreachable), waits for them to return and releases idle connections.
// Close is safe to call more than once and concurrently with Authorize.
func (s *Sign) Close() {
	s.mu.Lock()
	s.closeCancel()
	s.mu.Unlock()
	s.inflight.Wait()
	s.client.CloseIdleConnections()
}

// Authorize asks Sign whether req may be forwarded. It implements
// Authorizer. OnHold is called from the calling goroutine. Safe for
// concurrent use.
func (s *Sign) Authorize(ctx context.Context, req Request) (Decision, error) {
	s.mu.Lock()
	if s.closeCtx.Err() != nil {
		s.mu.Unlock()
		return Decision{}, fmt.Errorf("sigil sign client closed: %w", context.Canceled)
	}
	s.inflight.Add(1)
	s.mu.Unlock()
	defer s.inflight.Done()

	cctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stop := context.AfterFunc(s.closeCtx, cancel)
	defer stop()

	d, err := s.authorize(cctx, req)
	if err != nil && !errors.Is(err, ErrUnreachable) {
		if ctx.Err() != nil {
			err = ctx.Err()
		} else if s.closeCtx.Err() != nil {
			err = fmt.Errorf("sigil sign client closed: %w", context.Canceled)
		}
	}
	d.Message = s.scrub(d.Message)
	if s.apiKey != "" && strings.Contains(d.Attestation, s.apiKey) {
		d.Attestation = ""
	}
	return d, err
}

func (s *Sign) authorize(ctx context.Context, req Request) (Decision, error) {
	in, err := NewIntent(req)
	if err != nil {
		return inputDecision(err, "cannot build the intent: "), nil
	}
	d, holdID, err := s.send(ctx, in, req.AgentID)
	if err == nil && holdID != "" {
		d, err = s.holdWait(ctx, in, req, holdID)
	}
	d.TxCommit = in.TxCommit
	return d, err
}

// send asks the circuit breaker, then POSTs the intent (sendOnce) and tells
// the breaker whether Sign answered. A refusal by the open breaker wraps
// ErrUnreachable and sends nothing.
func (s *Sign) send(ctx context.Context, in Intent, agentID string) (Decision, string, error) {
	probe, err := s.breaker.allow(s.clock.Now())
	if err != nil {
		return Decision{}, "", err
	}
	d, holdID, err := s.sendOnce(ctx, in, agentID)
	o := outcomeAnswered
	switch {
	case errors.Is(err, ErrUnreachable):
		o = outcomeUnreachable
	case err != nil:
		o = outcomeUnknown
	}
	s.breaker.done(probe, o, s.clock.Now())
	return d, holdID, err
}

// sendOnce POSTs the intent once (plus at most one not-sent retry) with a
// fresh nonce. It returns a final decision, or the hold id of a PENDING
// answer, or an error (ctx.Err() or wrapping ErrUnreachable).
func (s *Sign) sendOnce(ctx context.Context, in Intent, agentID string) (Decision, string, error) {
	body := AuthorizeBody(in, agentID, NewNonce())
	resp, cancel, tlsd, err := s.post(ctx, body)
	if err != nil {
		return Decision{}, "", err
	}
	if tlsd != nil {
		return *tlsd, "", nil
	}
	defer cancel()
	defer resp.Body.Close()
	code := resp.StatusCode
	switch {
	case code == http.StatusBadGateway || code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout:
		return Decision{}, "", fmt.Errorf("%w: POST %s: HTTP %d", ErrUnreachable, s.authorizeURL, code)
	case code == http.StatusUnauthorized:
		b, _ := respReadBody(ctx, resp, cancel, s.bodyTimeout)
		return s.authFailed(code, b), "", nil
	case code == http.StatusConflict:
		return Decision{Verdict: Denied, ErrorCode: "SIGIL_NO_POLICY",
			Message: "no policy is deployed for this API key (HTTP 409); deploy a warranty policy for it in Sigil Command"}, "", nil
	case code == http.StatusTooManyRequests:
		return Decision{Verdict: Denied, ErrorCode: "SIGIL_RATE_LIMITED",
			Message: "sigil sign rate-limited this call (HTTP 429); it was not retried"}, "", nil
	case code == http.StatusForbidden:
		b, err := respReadBody(ctx, resp, cancel, s.bodyTimeout)
		if err != nil && ctx.Err() != nil {
			return Decision{}, "", ctx.Err()
		}
		if r, perr := respParse(b); perr == nil && r.kind == respDenied { // b is nil when unread
			return s.denied(r), "", nil
		}
		return s.authFailed(code, b), "", nil
	case code == http.StatusOK || code == http.StatusAccepted:
		b, err := respReadBody(ctx, resp, cancel, s.bodyTimeout)
		if err != nil && ctx.Err() != nil {
			return Decision{}, "", ctx.Err()
		}
		var r respBody
		if err == nil {
			r, err = respParse(b)
		}
		if err != nil {
			return signInvalid("%v", err), "", nil
		}
		if code == http.StatusAccepted && r.kind != respPending {
			return signInvalid("HTTP 202 with a non-PENDING decision"), "", nil
		}
		switch r.kind {
		case respPending:
			return Decision{}, r.holdID, nil
		case respDenied:
			return s.denied(r), "", nil
		}
		d, err := s.approved(ctx, r, in.TxCommit)
		return d, "", err
	case code >= 300 && code < 400:
		return signInvalid("redirect (HTTP %d) not followed", code), "", nil
	default:
		return signInvalid("unexpected HTTP %d", code), "", nil
	}
}

// post sends body to /v1/authorize. On success the caller owns resp and
// must call cancel after reading it. A TLS verification failure is a
// decision (never unreachable). The single retry happens only when the
// request provably never left (docs/protocol.md#retries).
func (s *Sign) post(ctx context.Context, body []byte) (*http.Response, context.CancelFunc, *Decision, error) {
	for attempt := 0; ; attempt++ {
		rctx, cancel := context.WithTimeout(ctx, s.requestTimeout)
		req, err := http.NewRequestWithContext(rctx, http.MethodPost, s.authorizeURL, bytes.NewReader(body))
		if err != nil {
			cancel()
			return nil, nil, nil, fmt.Errorf("%w: POST %s: %v", ErrUnreachable, s.authorizeURL, err)
		}
		req.Header.Set("Authorization", "Bearer "+s.apiKey)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json")
		resp, err := s.client.Do(req)
		if err == nil {
			return resp, cancel, nil, nil
		}
		timedOut := rctx.Err() != nil
		cancel()
		if ctx.Err() != nil {
			return nil, nil, nil, ctx.Err()
		}
		if signIsTLSVerify(err) {
			return nil, nil, &Decision{Verdict: Denied, ErrorCode: "SIGIL_TLS_VERIFICATION_FAILED",
				Message: fmt.Sprintf("the TLS certificate of %s failed verification: %v", s.authorizeURL, signErrText(err))}, nil
		}
		if attempt == 0 && signNotSent(err) {
			s.log.Warn("sigil sign not reached; retrying once", "url", s.authorizeURL, "err", signErrText(err))
			if err := s.clock.SleepUntil(ctx, s.clock.Now().Add(s.retryDelay)); err != nil {
				return nil, nil, nil, err
			}
			continue
		}
		reason := signErrText(err)
		if timedOut {
			reason = fmt.Sprintf("no response within %v", s.requestTimeout)
		}
		retried := ""
		if attempt > 0 {
			retried = " (after one retry)"
		}
		return nil, nil, nil, fmt.Errorf("%w: POST %s: %s%s", ErrUnreachable, s.authorizeURL, reason, retried)
	}
}

// approved turns a valid approval body into a decision, verifying its
// intent attestation per the Verify mode.
func (s *Sign) approved(ctx context.Context, r respBody, txCommit string) (Decision, error) {
	d := Decision{Verdict: Approved, PolicyHash: r.policyHash, Attestation: r.attestation, Message: r.message}
	if s.verify == VerifyOff {
		return d, nil
	}
	err := s.att.verify(ctx, r.attestation, txCommit, s.pin, r.policyHash)
	if err == nil {
		return d, nil
	}
	ae, ok := errors.AsType[*attError](err)
	if !ok {
		return Decision{}, err // ctx ended
	}
	if s.verify == VerifyEnforce {
		return Decision{Verdict: Denied, ErrorCode: "SIGIL_DECISION_VERIFICATION_FAILED",
			Message: fmt.Sprintf("sigil sign approved the call but its intent attestation failed verification (%s: %s)", ae.Reason, ae.Detail)}, nil
	}
	s.log.Warn("intent attestation not verified; approving because verify=warn",
		"reason", ae.Reason, "detail", ae.Detail, "tx_commit", txCommit)
	d.Attestation = "" // only verified attestations travel with the call
	return d, nil
}

func (s *Sign) denied(r respBody) Decision {
	msg := r.message
	if msg == "" {
		msg = "denied by sigil policy (" + r.errorCode + ")"
	}
	if r.nextSteps != "" {
		msg += "; " + r.nextSteps
	}
	return Decision{Verdict: Denied, ErrorCode: r.errorCode, Message: clip(msg, 1024, "…"), PolicyHash: r.policyHash}
}

// authFailed is the decision on a rejected key; body is the response's,
// when it was read.
func (s *Sign) authFailed(code int, body []byte) Decision {
	return Decision{Verdict: AuthFailed, ErrorCode: "SIGIL_AUTH_FAILURE", SignErrorCode: signErrorCode(body), Message: fmt.Sprintf(
		"sigil sign rejected the API key (HTTP %d); check SIGIL_API_KEY or --key (the key must be valid for %s)",
		code, s.authorizeURL)}
}

// signErrorCode returns the error_code (or errorCode) member of a rejected
// request's body when the body is a strict JSON object and the code is a
// plain SIGIL-style code (upper-case letters, digits and '_', at most 64):
// nothing else from the body is passed on.
func signErrorCode(body []byte) string {
	m, err := strictjson.Object(body, 4)
	if err != nil {
		return ""
	}
	for _, k := range []string{"error_code", "errorCode"} {
		if code, ok := strictjson.DecodeString(m[k]); ok && len(code) <= 64 && code != "" &&
			strings.Trim(code, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") == "" {
			return code
		}
	}
	return ""
}

func signInvalid(format string, args ...any) Decision {
	return Decision{Verdict: Denied, ErrorCode: "SIGIL_RESPONSE_INVALID",
		Message: "invalid response from sigil sign: " + fmt.Sprintf(format, args...)}
}

// scrub removes the API key from text that reaches a person (defence in
// depth: Sign-provided messages are copied into decisions).
func (s *Sign) scrub(text string) string {
	if s.apiKey == "" || !strings.Contains(text, s.apiKey) {
		return text
	}
	return strings.ReplaceAll(text, s.apiKey, "[redacted]")
}

// clip bounds s to max bytes at a rune boundary, ellipsis marking a cut:
// a Sign-provided message (1 KiB) or a value quoted in an error.
func clip(s string, max int, ellipsis string) string {
	if len(s) <= max {
		return s
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + ellipsis
}

// signIsTLSVerify reports whether err is a certificate verification failure
// (possible interception: never unreachable, never bypassed).
func signIsTLSVerify(err error) bool {
	return errors.As(err, new(*tls.CertificateVerificationError)) || errors.As(err, new(x509.UnknownAuthorityError)) ||
		errors.As(err, new(x509.HostnameError)) || errors.As(err, new(x509.CertificateInvalidError))
}

// signNotSent reports whether the request provably never left: a DNS
// failure or a refused connection (docs/protocol.md#retries).
func signNotSent(err error) bool {
	return errors.As(err, new(*net.DNSError)) || errors.Is(err, syscall.ECONNREFUSED)
}

// signErrText describes a transport error without the request URL (which
// callers add) and without anything from the request headers.
func signErrText(err error) string {
	if ue, ok := errors.AsType[*url.Error](err); ok {
		err = ue.Err
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "connection closed without a response"
	}
	return err.Error()
}
