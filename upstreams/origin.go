package upstreams

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// A remote upstream is one origin (scheme, host and port of Spec.URL), and
// no redirect is followed (package doc), so that initialize, listings,
// approved calls and the headers are never re-sent to wherever a server
// says: originRoundTripper enforces both.

// ErrRedirect is wrapped by every error a remote upstream's 3xx answer
// produces (*RedirectError).
var ErrRedirect = errors.New("remote upstream answered with a redirect")

// RedirectError is a remote upstream's (or its authorization server's) 3xx
// answer, which the hub does not follow. errors.Is(err, ErrRedirect) holds.
type RedirectError struct {
	// Method and URL are the request that got the answer (URL as shown in
	// messages: no userinfo, no query).
	Method, URL string
	// Status is the HTTP status (300…399).
	Status int
	// Location is the redirect target resolved against URL, shown the same
	// way; "" when the answer had none.
	Location string
	// OAuth is true for a request to the OAuth authorization server
	// (discovery, registration, token) rather than to url.
	OAuth bool
}

// Error names the status and the location and says what to do.
func (e *RedirectError) Error() string {
	to := "without a Location"
	if e.Location != "" {
		to = "to " + e.Location
	}
	do := "point url at the final address"
	if e.OAuth {
		do = "the OAuth authorization server must answer its discovery, registration and token requests at the addresses it announces"
	}
	return fmt.Sprintf("the server answered %s %s with HTTP %d %s %s: sigil-hub never follows redirects; %s",
		e.Method, e.URL, e.Status, http.StatusText(e.Status), to, do)
}

// Unwrap returns ErrRedirect.
func (e *RedirectError) Unwrap() error { return ErrRedirect }

// ErrCrossOrigin is wrapped by every error of a request the hub refused to
// send because it was for another origin than the upstream's url
// (*CrossOriginError).
var ErrCrossOrigin = errors.New("request to another origin refused")

// CrossOriginError is a request (or a legacy SSE endpoint event naming a
// URL) for another origin than the upstream's url. Nothing was sent there.
// errors.Is(err, ErrCrossOrigin) holds.
type CrossOriginError struct {
	// What is what named the URL: "a POST request", "the SSE endpoint
	// event"…
	What string
	// URL is where it would have gone (no userinfo, no query).
	URL string
	// Origin is the configured origin (scheme://host:port of url).
	Origin string
}

// Error names the URL and the configured origin and says what to do.
func (e *CrossOriginError) Error() string {
	return fmt.Sprintf("refused %s: %s is not on url's origin %s, and sigil-hub sends nothing (no request, no configured header, no token) to another origin; the server must stay on url's scheme, host and port",
		e.What, e.URL, e.Origin)
}

// Unwrap returns ErrCrossOrigin.
func (e *CrossOriginError) Unwrap() error { return ErrCrossOrigin }

// refusal returns err's *RedirectError or *CrossOriginError (without the
// transport's wrapping), or nil.
func refusal(err error) error {
	if re, ok := errors.AsType[*RedirectError](err); ok {
		return re
	}
	if ce, ok := errors.AsType[*CrossOriginError](err); ok {
		return ce
	}
	return nil
}

// originOf returns u's origin as scheme://host:port, lowercase, with the
// scheme's default port made explicit, so that http://H/ and
// http://h:80/x compare equal.
func originOf(u *url.URL) string {
	scheme := strings.ToLower(u.Scheme)
	port := cmp.Or(u.Port(), defaultPorts[scheme])
	return scheme + "://" + net.JoinHostPort(strings.ToLower(u.Hostname()), port)
}

var defaultPorts = map[string]string{"http": "80", "https": "443"}

// maxShownURL bounds a URL quoted in an error message.
const maxShownURL = 512

// shownURL is u for an error message or a log: without userinfo, query or
// fragment (a configured url may carry a key there, and a redirect may
// echo it; "?…" marks a query left out), bounded.
func shownURL(u *url.URL) string {
	c := *u
	c.User = nil
	c.Fragment, c.RawFragment = "", ""
	query := c.RawQuery != "" || c.ForceQuery
	c.RawQuery, c.ForceQuery = "", false
	s := c.String()
	if len(s) > maxShownURL {
		s = s[:maxShownURL] + "…"
	}
	if query {
		s += "?…"
	}
	return s
}

// newRedirectError describes resp, a 3xx answer to req.
func newRedirectError(req *http.Request, resp *http.Response) *RedirectError {
	e := &RedirectError{Method: req.Method, URL: shownURL(req.URL), Status: resp.StatusCode}
	if loc := resp.Header.Get("Location"); loc != "" {
		if u, err := req.URL.Parse(loc); err == nil {
			e.Location = shownURL(u)
		} else {
			e.Location = "(a Location that is not a URL)"
		}
	}
	return e
}

// refuseRedirects returns the CheckRedirect of a remote upstream's HTTP
// client (oauth: of its OAuth client): the 3xx answer that made http.Client
// want to send req becomes the error, nothing goes to its Location. (The
// origin guard turns a 3xx into an error before the client sees it; this
// holds should a layer ever pass one up.)
func refuseRedirects(oauth bool) func(req *http.Request, _ []*http.Request) error {
	return func(req *http.Request, _ []*http.Request) error {
		var e *RedirectError
		if r := req.Response; r != nil && r.Request != nil {
			e = newRedirectError(r.Request, r)
		} else {
			e = &RedirectError{Method: req.Method, URL: shownURL(req.URL), Location: shownURL(req.URL)}
		}
		e.OAuth = oauth
		return e
	}
}

// originRoundTripper is the innermost layer of a remote upstream's HTTP
// client (Upstream.httpClient). For each request it
//   - refuses one for another origin than the configured url: nothing is
//     sent (*CrossOriginError);
//   - adds the configured headers that the request does not carry already
//     (mcp-go sets its own, and the OAuth Authorization, first): this is the
//     only place configured headers are attached, so they reach the
//     configured origin only, and every request to it, the session DELETE
//     included;
//   - turns a 3xx answer into *RedirectError, so that neither http.Client
//     nor mcp-go follows it;
//   - on a legacy SSE stream (sseEndpoints), checks the origin of the URL
//     every `endpoint` event names, and ends the stream with a
//     *CrossOriginError when it is another origin.
//
// A refusal also calls lost (the connection's markLost, when set): the
// server told the hub to go elsewhere, so the connection is dropped and the
// reconnect reports why (a redirect on the GET event stream, for one, has
// no caller to report to).
type originRoundTripper struct {
	base         http.RoundTripper
	origin       string
	headers      map[string]string
	sseEndpoints bool
	lost         func(error)
}

func (rt *originRoundTripper) refuse(err error) {
	if rt.lost != nil {
		rt.lost(err)
	}
}

func (rt *originRoundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	if originOf(req.URL) != rt.origin {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		err := &CrossOriginError{What: "a " + req.Method + " request", URL: shownURL(req.URL), Origin: rt.origin}
		rt.refuse(err)
		return nil, err
	}
	if len(rt.headers) > 0 {
		req = req.Clone(req.Context())
		for k, v := range rt.headers {
			if len(req.Header.Values(k)) == 0 {
				req.Header.Set(k, v)
			}
		}
	}
	resp, err := rt.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode >= 300 && resp.StatusCode <= 399 {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
		rerr := newRedirectError(req, resp)
		rt.refuse(rerr)
		return nil, rerr
	}
	if rt.sseEndpoints && req.Method == http.MethodGet {
		if mt, _, _ := mime.ParseMediaType(resp.Header.Get("Content-Type")); mt == "text/event-stream" {
			resp.Body = &endpointWatch{rc: resp.Body, base: req.URL, origin: rt.origin, refuse: rt.refuse}
		}
	}
	return resp, nil
}

// maxWatchedField bounds the event and data kept by endpointWatch; an
// endpoint URL longer than this is not checked here (the origin check of
// the POST still applies).
const maxWatchedField = 8 << 10

// endpointWatch passes a legacy SSE stream through unchanged while it
// parses it as mcp-go's SSE transport does (lines split at "\n", "\r\n"
// trimmed, `event:` value trimmed, `data:` lines joined with "\n", an event
// dispatched at an empty line). The URL of an `endpoint` event, resolved
// against the stream's URL as mcp-go does, must be on the configured
// origin. mcp-go itself ignores an endpoint on another host (and then waits
// for one until the connect times out) but accepts one on another scheme;
// here either ends the stream at once with a *CrossOriginError, before
// mcp-go reads the event.
type endpointWatch struct {
	rc     io.ReadCloser
	base   *url.URL
	origin string
	refuse func(error)

	line       []byte // the current line so far (up to maxWatchedField)
	event      string
	data       []byte
	dataCapped bool // data went over maxWatchedField: not checked
	err        error
}

func (w *endpointWatch) Read(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	n, err := w.rc.Read(p)
	chunk := p[:n]
	var cerr error
	for len(chunk) > 0 && cerr == nil {
		i := bytes.IndexByte(chunk, '\n')
		if i < 0 {
			w.appendLine(chunk)
			break
		}
		w.appendLine(chunk[:i])
		chunk = chunk[i+1:]
		cerr = w.endLine()
	}
	if cerr == nil && err == io.EOF {
		cerr = w.dispatch() // mcp-go dispatches pending data at EOF
	}
	if cerr != nil {
		// The chunk holding the event's end is withheld: mcp-go never
		// dispatches the event.
		w.err = cerr
		w.refuse(cerr)
		return 0, cerr
	}
	return n, err
}

func (w *endpointWatch) appendLine(b []byte) {
	if room := maxWatchedField + 1 - len(w.line); room > 0 {
		w.line = append(w.line, b[:min(len(b), room)]...)
	}
}

// endLine handles one complete line and returns the refusal of a bad
// endpoint event.
func (w *endpointWatch) endLine() error {
	line := bytes.TrimRight(w.line, "\r\n")
	long := len(w.line) > maxWatchedField
	w.line = w.line[:0]
	if len(line) == 0 {
		return w.dispatch()
	}
	if v, ok := bytes.CutPrefix(line, []byte("event:")); ok {
		w.event = strings.TrimSpace(string(v))
		if long {
			w.event = eventUnknown // its trimmed value might still be "endpoint"
		}
	} else if v, ok := bytes.CutPrefix(line, []byte("data:")); ok {
		v = bytes.TrimPrefix(v, []byte(" "))
		if len(w.data) > 0 || w.dataCapped {
			w.data = append(w.data, '\n')
		}
		w.data = append(w.data, v...)
		if long || len(w.data) > maxWatchedField {
			w.data, w.dataCapped = w.data[:0], true
		}
	}
	return nil
}

// eventUnknown stands for an event line too long to keep.
const eventUnknown = "\x00unknown"

// dispatch ends the pending event, as mcp-go does at an empty line (and at
// EOF): an event without data is not dispatched and keeps its name.
func (w *endpointWatch) dispatch() error {
	if len(w.data) == 0 && !w.dataCapped {
		return nil
	}
	event, data, capped := w.event, string(w.data), w.dataCapped
	w.event, w.data, w.dataCapped = "", w.data[:0], false
	if event != "endpoint" && event != eventUnknown || capped {
		return nil
	}
	u, err := w.base.Parse(data)
	if err != nil || originOf(u) == w.origin {
		return nil // mcp-go ignores what it cannot parse
	}
	return &CrossOriginError{What: "the SSE endpoint event", URL: shownURL(u), Origin: w.origin}
}

func (w *endpointWatch) Close() error { return w.rc.Close() }
