package upstreams

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
)

// noResponseTimeout replaces mcp-go's 60 s SSE response timeout: a long tool
// call is bounded by the caller's ctx, not by the transport.
const noResponseTimeout = 100 * 365 * 24 * time.Hour

// httpClient returns a client of our own (never http.DefaultClient) whose
// POST bodies get raw params substituted.
// With OAuth, the innermost round tripper retries a 401 with a refreshed
// token (returned so that the caller can give it the transport's handler).
func (u *Upstream) httpClient() (*http.Client, *oauthRoundTripper) {
	var base http.RoundTripper = &challengeRoundTripper{base: http.DefaultTransport.(*http.Transport).Clone(), u: u}
	var ort *oauthRoundTripper
	if u.oauth != nil {
		ort = &oauthRoundTripper{base: base, o: u.oauth}
		base = ort
	}
	return &http.Client{Transport: &rawRoundTripper{base: &answerRoundTripper{base: base}, raw: u.raw}}, ort
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
	hc, ort := u.httpClient()
	opts := []transport.StreamableHTTPCOption{
		transport.WithHTTPBasicClient(hc),
		transport.WithHTTPLogger(u.log),
		// The GET stream carries list_changed; it stays on because the
		// connection is pinned to a legacy protocol version.
		transport.WithContinuousListening(),
	}
	if len(u.spec.Headers) > 0 {
		opts = append(opts, transport.WithHTTPHeaders(u.spec.Headers))
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
	s := newSession(u)
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
	hc, _ := u.httpClient()
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
	if len(u.spec.Headers) > 0 {
		opts = append(opts, transport.WithHeaders(u.spec.Headers))
	}
	t, err := transport.NewSSE(u.spec.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("SSE %q: %w", u.spec.URL, err)
	}
	s := newSession(u)
	s.httpClient = hc
	s.attach(t)
	t.SetConnectionLostHandler(func(err error) { s.markLost(fmt.Errorf("SSE stream lost: %w", err)) })
	if err := t.Start(connCtx); err != nil {
		s.close()
		return nil, fmt.Errorf("SSE %q: start: %w", u.spec.URL, err)
	}
	if err := s.handshake(ctx); err != nil {
		s.close()
		return nil, fmt.Errorf("SSE %q: %w", u.spec.URL, err)
	}
	return s, nil
}
