package upstreams

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
)

// noResponseTimeout replaces mcp-go's 60 s SSE response timeout: a long tool
// call is bounded by the caller's ctx, not by the transport.
const noResponseTimeout = 100 * 365 * 24 * time.Hour

// httpClient returns a client of our own (never http.DefaultClient) whose
// POST bodies get raw params substituted. From the outside in: raw params,
// answers to server requests, OAuth (if configured: it retries a 401 with a
// refreshed token, and is returned so that the caller can give it the
// transport's handler), the 401 challenge, the SSE retry clamp, certificate
// errors as failed dials, the origin guard (origin.go: url's origin only,
// configured headers, no redirects; sseEndpoints checks a legacy SSE
// stream's endpoint events; lost is called when it refuses), the
// transport. The client's own redirect following is off as well.
func (u *Upstream) httpClient(lost func(error), sseEndpoints bool) (*http.Client, *oauthRoundTripper) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	guard := &originRoundTripper{base: tr, headers: u.spec.Headers, sseEndpoints: sseEndpoints, lost: lost}
	if cu, err := url.Parse(u.spec.URL); err == nil {
		guard.origin = originOf(cu)
	} // else the transports refuse the URL before any request
	var base http.RoundTripper = &challengeRoundTripper{base: &sseRetryRoundTripper{base: &handshakeRoundTripper{base: guard}}, u: u}
	var ort *oauthRoundTripper
	if u.oauth != nil {
		ort = &oauthRoundTripper{base: base, o: u.oauth}
		base = ort
	}
	rt := &rawRoundTripper{base: &answerRoundTripper{base: base}, raw: u.raw}
	return &http.Client{Transport: idleCloser{RoundTripper: rt, tr: tr}, CheckRedirect: refuseRedirects}, ort
}

// idleCloser lets http.Client.CloseIdleConnections (called when a session
// closes) reach the transport under the wrappers: the client only forwards
// it to a RoundTripper that has the method, and without it every reconnect
// would leave the old transport's keep-alive sockets open until they idle
// out (90 s).
type idleCloser struct {
	http.RoundTripper
	tr *http.Transport
}

func (c idleCloser) CloseIdleConnections() { c.tr.CloseIdleConnections() }

// handshakeRoundTripper reports a TLS certificate the hub does not trust as
// a failed dial (faults.md #61). Certificate verification fails inside the
// handshake, before a byte of the request is written, so the request was
// certainly not sent: the session classifies a dial failure as
// ErrUnavailable and marks the connection lost, and the client learns the
// reason ("… x509: certificate signed by unknown authority") instead of
// "exited or disconnected during the call". Nothing is retried, and never
// over another scheme: an https URL is only ever dialled with TLS.
type handshakeRoundTripper struct {
	base http.RoundTripper
}

func (rt *handshakeRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := rt.base.RoundTrip(req)
	if err != nil && isCertificateError(err) {
		return nil, &net.OpError{Op: "dial", Net: "tcp", Err: fmt.Errorf("tls handshake with %s: %w", req.URL.Host, err)}
	}
	return resp, err
}

// isCertificateError reports whether err is a failed certificate check:
// errors that only the handshake's verification produces.
func isCertificateError(err error) bool {
	var (
		verify   *tls.CertificateVerificationError
		unknown  x509.UnknownAuthorityError
		hostname x509.HostnameError
		invalid  x509.CertificateInvalidError
	)
	return errors.As(err, &verify) || errors.As(err, &unknown) || errors.As(err, &hostname) || errors.As(err, &invalid)
}

// SSE reconnection time bounds (faults.md #61, proposal: 250 ms…30 s).
const (
	minSSERetry = 250 * time.Millisecond
	maxSSERetry = 30 * time.Second
)

// sseRetryRoundTripper clamps the `retry:` field of SSE responses to
// minSSERetry…maxSSERetry. mcp-go v1.2.1 honours the field when it resumes a
// Streamable HTTP POST stream that the server ended before the response
// (SEP-1699: a GET with Last-Event-ID after the server's retry time) with a
// 10 ms floor and no ceiling: `retry: 0` would poll the server every 10 ms,
// `retry: 1000000000` would hold the call for 11.6 days. (Its legacy SSE
// transport ignores the field: the supervisor's backoff, 1 s doubling to
// 30 s, paces those reconnects.)
type sseRetryRoundTripper struct {
	base http.RoundTripper
}

func (rt *sseRetryRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := rt.base.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "text/event-stream" {
		resp.Body = &retryClampBody{rc: resp.Body, br: bufio.NewReaderSize(resp.Body, 4096)}
	}
	return resp, nil
}

// retryClampBody passes an SSE stream through unchanged except for `retry:`
// lines, whose value it clamps. It never holds more than one read buffer:
// a line longer than that (a big data line) streams through in pieces.
// Close may be called concurrently with Read (mcp-go closes the body to
// unblock its reader).
type retryClampBody struct {
	rc  io.ReadCloser
	br  *bufio.Reader
	out []byte // bytes of the current piece not yet returned
	mid bool   // the next piece continues a line
	err error  // returned once out is drained
}

func (b *retryClampBody) Read(p []byte) (int, error) {
	for len(b.out) == 0 {
		if b.err != nil {
			return 0, b.err
		}
		piece, err := b.br.ReadSlice('\n')
		if err == bufio.ErrBufferFull {
			err = nil
		}
		if !b.mid && err == nil && bytes.HasPrefix(piece, []byte("retry:")) && bytes.HasSuffix(piece, []byte("\n")) {
			piece = clampRetryLine(piece)
		}
		b.mid = len(piece) > 0 && piece[len(piece)-1] != '\n'
		b.out, b.err = piece, err
	}
	n := copy(p, b.out)
	b.out = b.out[n:]
	return n, nil
}

func (b *retryClampBody) Close() error { return b.rc.Close() }

// clampRetryLine rewrites one complete `retry:` line. A value that is not a
// string of ASCII digits is left alone (an SSE client ignores it).
func clampRetryLine(line []byte) []byte {
	v := bytes.TrimRight(line[len("retry:"):], "\r\n")
	v = bytes.TrimPrefix(v, []byte(" "))
	if len(v) == 0 || len(bytes.Trim(v, "0123456789")) != 0 {
		return line
	}
	ms := maxSSERetry.Milliseconds()
	if n, err := strconv.ParseInt(string(v), 10, 64); err == nil {
		ms = min(max(n, minSSERetry.Milliseconds()), maxSSERetry.Milliseconds())
	}
	return []byte("retry: " + strconv.FormatInt(ms, 10) + "\n")
}

// answerPostTimeout bounds the POST that carries our answer to a
// server→client request.
const answerPostTimeout = 30 * time.Second

// answerRoundTripper lets the answer to a server→client request (sampling,
// elicitation, roots) reach a Streamable HTTP upstream however long a person
// took to give it. mcp-go runs such requests under a fixed 30 s context and
// posts the answer with that same context, so an elicitation answered after
// 30 s would be dropped; the handler's wait is detached from that deadline
// (session.onRequest), and here the answer's POST gets a context of its own.
type answerRoundTripper struct {
	base http.RoundTripper
}

func (rt *answerRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodPost || req.Body == nil || req.Context().Err() == nil {
		return rt.base.RoundTrip(req)
	}
	body, err := io.ReadAll(req.Body)
	_ = req.Body.Close()
	if err != nil {
		return nil, err
	}
	ctx := req.Context()
	var cancel context.CancelFunc = func() {}
	if isJSONRPCAnswer(body) {
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), answerPostTimeout)
	}
	r2 := req.Clone(ctx)
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	resp, err := rt.base.RoundTrip(r2)
	if err != nil {
		cancel()
		return nil, err
	}
	resp.Body = &cancelOnClose{ReadCloser: resp.Body, cancel: cancel}
	return resp, nil
}

type cancelOnClose struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (c *cancelOnClose) Close() error {
	err := c.ReadCloser.Close()
	c.cancel()
	return err
}

// isJSONRPCAnswer reports whether body is a JSON-RPC response (result or
// error, no method) rather than a request or notification. It reads only the
// leading members (mcp-go writes jsonrpc, id, then result or error).
func isJSONRPCAnswer(body []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return false
	}
	for dec.More() {
		t, err := dec.Token()
		if err != nil {
			return false
		}
		switch t {
		case "method":
			return false
		case "result", "error":
			return true
		}
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return false
		}
	}
	return false
}

// dialRemote connects to a remote upstream and runs the handshake (the
// handshake is part of dialling because "auto" falls back to SSE when the
// Streamable HTTP initialize gets a 4xx). connCtx outlives the dial: it
// carries the GET / SSE stream.
func (u *Upstream) dialRemote(ctx, connCtx context.Context) (*session, error) {
	switch u.spec.Transport {
	case "", "auto":
		s, err := u.dialStreamable(ctx, connCtx)
		if err == nil || !errors.Is(err, transport.ErrLegacySSEServer) {
			return s, err
		}
		u.log.Info("streamable HTTP initialize got a 4xx; falling back to legacy SSE")
		return u.dialSSE(ctx, connCtx)
	case "streamable":
		return u.dialStreamable(ctx, connCtx)
	case "sse":
		return u.dialSSE(ctx, connCtx)
	}
	return nil, fmt.Errorf("unknown transport %q (want auto, streamable or sse)", u.spec.Transport)
}

func (u *Upstream) dialStreamable(ctx, connCtx context.Context) (*session, error) {
	s := newSession(u)
	// The configured headers are added by the origin guard (not by mcp-go,
	// whose session DELETE goes out without them).
	hc, ort := u.httpClient(s.markLost, false)
	opts := []transport.StreamableHTTPCOption{
		transport.WithHTTPBasicClient(hc),
		transport.WithHTTPLogger(u.log),
		// The GET stream carries list_changed; it stays on because the
		// connection is pinned to a legacy protocol version.
		transport.WithContinuousListening(),
	}
	if u.oauth != nil {
		// Without a callback (or when it could not listen) a stored token
		// still works; authorize reports the problem if a flow is needed.
		redirect := ""
		if cb := u.oauth.cfg.Callback; cb != nil {
			redirect, _ = cb.RedirectURI(ctx)
		}
		opts = append(opts, transport.WithHTTPOAuth(u.oauth.config(redirect)))
	}
	t, err := transport.NewStreamableHTTP(u.spec.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("streamable HTTP %q: %w", u.spec.URL, err)
	}
	if ort != nil {
		ort.setHandler(t.GetOAuthHandler())
	}
	if u.oauth != nil {
		u.oauth.setHandler(t.GetOAuthHandler())
	}
	s.httpClient = hc
	s.attach(t)
	if err := t.Start(connCtx); err != nil {
		s.close()
		return nil, fmt.Errorf("streamable HTTP %q: start: %w", u.spec.URL, err)
	}
	if err := s.handshake(ctx); err != nil {
		s.close()
		return nil, fmt.Errorf("streamable HTTP %q: %w", u.spec.URL, err)
	}
	return s, nil
}

func (u *Upstream) dialSSE(ctx, connCtx context.Context) (*session, error) {
	if u.oauth != nil {
		return nil, fmt.Errorf("SSE %q: oauth is supported over Streamable HTTP only", u.spec.URL)
	}
	s := newSession(u)
	// The configured headers are added by the origin guard, which also
	// checks the endpoint the server names for the POSTs.
	hc, _ := u.httpClient(s.markLost, true)
	endpointWait := u.spec.InitTimeout
	if dl, ok := ctx.Deadline(); ok {
		endpointWait = time.Until(dl)
	}
	opts := []transport.ClientOption{
		transport.WithHTTPClient(hc),
		transport.WithSSELogger(u.log),
		transport.WithResponseTimeout(noResponseTimeout),
		transport.WithEndpointTimeout(max(endpointWait, time.Millisecond)),
	}
	t, err := transport.NewSSE(u.spec.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("SSE %q: %w", u.spec.URL, err)
	}
	s.httpClient = hc
	s.attach(t)
	t.SetConnectionLostHandler(func(err error) { s.markLost(fmt.Errorf("SSE stream lost: %w", err)) })
	// The stream ends with the session: a refused endpoint event (which
	// marks it lost) ends the wait for the endpoint at once.
	streamCtx, stop := context.WithCancel(connCtx)
	s.goBG(func() {
		defer stop()
		select {
		case <-s.lost:
		case <-streamCtx.Done():
		}
	})
	if err := t.Start(streamCtx); err != nil {
		s.close()
		if r := s.refused(); r != nil {
			err = r
		}
		return nil, fmt.Errorf("SSE %q: start: %w", u.spec.URL, err)
	}
	if err := s.handshake(ctx); err != nil {
		s.close()
		return nil, fmt.Errorf("SSE %q: %w", u.spec.URL, err)
	}
	return s, nil
}
