package upstreams

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
)

// noResponseTimeout replaces mcp-go's 60 s SSE response timeout: a long tool
// call is bounded by the caller's ctx, not by the transport.
const noResponseTimeout = 100 * 365 * 24 * time.Hour

// httpClient returns a client of our own (never http.DefaultClient) whose
// POST bodies get raw params substituted.
func (u *Upstream) httpClient() *http.Client {
	base := http.DefaultTransport.(*http.Transport).Clone()
	return &http.Client{Transport: &rawRoundTripper{base: base, raw: u.raw}}
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
	hc := u.httpClient()
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
	t, err := transport.NewStreamableHTTP(u.spec.URL, opts...)
	if err != nil {
		return nil, fmt.Errorf("streamable HTTP %q: %w", u.spec.URL, err)
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
	hc := u.httpClient()
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
