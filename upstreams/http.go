package upstreams

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// httpClient returns a client of our own (never http.DefaultClient) for a
// remote upstream's transport: the layers below, each saying what it does,
// outermost first, down to the origin guard (origin.go; sseEndpoints checks
// a legacy SSE stream's endpoint events; lost is called when it refuses).
// The OAuth layer (nil without OAuth) is returned so that the caller can
// give it the transport's handler. The client's own redirect following is
// off as well.
func (u *Upstream) httpClient(lost func(error), sseEndpoints bool) (*http.Client, *oauthRoundTripper) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	guard := &originRoundTripper{base: tr, headers: u.spec.Headers, sseEndpoints: sseEndpoints, lost: lost}
	if cu, err := url.Parse(u.spec.URL); err == nil {
		guard.origin = originOf(cu)
	} // else the transports refuse the URL before any request
	var base http.RoundTripper = &sseRetryRoundTripper{base: guard}
	var ort *oauthRoundTripper
	if u.oauth != nil {
		ort = &oauthRoundTripper{base: base, o: u.oauth}
		base = ort
	}
	rt := statusRoundTripper{base: &postRoundTripper{base: base, raw: u.raw}, u: u, idle: tr}
	return &http.Client{Transport: rt, CheckRedirect: refuseRedirects(false)}, ort
}

// isCertificateError reports whether err is a failed certificate check:
// errors that only the handshake's verification produces. Verification
// fails before a byte of the request is written, so statusRoundTripper
// reports it as a failed dial (docs/faults.md case 61): the session
// classifies that as ErrUnavailable and marks the connection lost, and the
// client learns the reason ("… x509: certificate signed by unknown
// authority") instead of "exited or disconnected during the call". Nothing
// is retried, and never over another scheme: an https URL is only ever
// dialled with TLS.
func isCertificateError(err error) bool {
	_, verify := errors.AsType[*tls.CertificateVerificationError](err)
	_, unknown := errors.AsType[x509.UnknownAuthorityError](err)
	_, hostname := errors.AsType[x509.HostnameError](err)
	_, invalid := errors.AsType[x509.CertificateInvalidError](err)
	return verify || unknown || hostname || invalid
}

// SSE reconnection time bounds (docs/faults.md case 61: 250 ms…30 s).
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

// postRoundTripper rewrites the POST bodies of a remote upstream, the
// messages the hub sends:
//   - it swaps the tokens of raw params for their bytes (raw.go);
//   - it lets the answer to a server→client request (sampling, elicitation,
//     roots) reach a Streamable HTTP upstream however long a person took to
//     give it. mcp-go runs such requests under a fixed 30 s context and
//     posts the answer with that same context, so an elicitation answered
//     after 30 s would be dropped; the handler's wait is detached from that
//     deadline (session.onRequest), and here the answer's POST gets a
//     context of its own.
type postRoundTripper struct {
	base http.RoundTripper
	raw  *rawParams
}

func (rt *postRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	late := req.Context().Err() != nil
	if req.Method != http.MethodPost || req.Body == nil || !late && !rt.raw.pending() {
		return rt.base.RoundTrip(req)
	}
	body, err := io.ReadAll(req.Body)
	_ = req.Body.Close()
	if err != nil {
		return nil, err
	}
	body = rt.raw.substitute(body)
	ctx := req.Context()
	var cancel context.CancelFunc = func() {}
	if late && isJSONRPCAnswer(body) {
		ctx, cancel = context.WithTimeout(context.WithoutCancel(ctx), answerPostTimeout)
	}
	r2 := req.Clone(ctx)
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.ContentLength = int64(len(body))
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

// isJSONRPCAnswer reports whether body is a JSON-RPC response (it has an
// id and no method: mcp-go posts nothing else so) rather than a request or
// notification.
func isJSONRPCAnswer(body []byte) bool {
	m, ok := splitMessage(body)
	return ok && m.method == "" && m.id != nil
}
