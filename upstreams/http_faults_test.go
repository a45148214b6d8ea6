package upstreams

import (
	"errors"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"
)

// Remote upstream faults (docs/faults.md case 61) at the HTTP client: the `retry:`
// clamp, a certificate the hub does not trust, and idle sockets closed with
// the session. The end-to-end cases are cmd/sigil-hub TestFaultD61*.

func TestClampRetryLine(t *testing.T) {
	tests := []struct{ in, want string }{
		{"retry: 0\n", "retry: 250\n"},
		{"retry:0\r\n", "retry: 250\n"},
		{"retry: 249\n", "retry: 250\n"},
		{"retry: 250\n", "retry: 250\n"},
		{"retry: 1500\n", "retry: 1500\n"},
		{"retry: 30000\n", "retry: 30000\n"},
		{"retry: 30001\n", "retry: 30000\n"},
		{"retry: 1000000000\n", "retry: 30000\n"},
		{"retry: 99999999999999999999999\n", "retry: 30000\n"}, // beyond int64
		{"retry: \n", "retry: \n"},                             // not digits: an SSE client ignores it
		{"retry: -5\n", "retry: -5\n"},
		{"retry: 1e9\n", "retry: 1e9\n"},
		{"retry:  7\n", "retry:  7\n"}, // only one space is stripped: not digits
	}
	for _, tt := range tests {
		if got := string(clampRetryLine([]byte(tt.in))); got != tt.want {
			t.Errorf("clampRetryLine(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestRetryClampBody: an SSE stream passes through byte for byte except
// its retry lines, however the reads are split, and lines longer than the
// read buffer (a big data line, or one merely starting with "retry:"
// inside it) stream through untouched.
func TestRetryClampBody(t *testing.T) {
	big := "data: " + strings.Repeat("x", 10000) + "retry: 0\n"
	in := "retry: 0\n\nid: 1\nretry: 1000000000\ndata: {\"retry: 0\":1}\n\n" + big + "\nretry: 5000\r\n\n: comment retry: 0\ndata: tail"
	want := "retry: 250\n\nid: 1\nretry: 30000\ndata: {\"retry: 0\":1}\n\n" + big + "\nretry: 5000\n\n: comment retry: 0\ndata: tail"
	for name, r := range map[string]io.Reader{
		"whole":    strings.NewReader(in),
		"one byte": iotest.OneByteReader(strings.NewReader(in)),
		"halves":   iotest.HalfReader(strings.NewReader(in)),
	} {
		b := newRetryClampBodyForTest(io.NopCloser(r))
		got, err := io.ReadAll(iotest.OneByteReader(b))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if string(got) != want {
			t.Errorf("%s:\n got %q\nwant %q", name, got, want)
		}
	}
}

func newRetryClampBodyForTest(rc io.ReadCloser) *retryClampBody {
	resp := &http.Response{Header: http.Header{"Content-Type": {"text/event-stream; charset=utf-8"}}, Body: rc}
	rt := &sseRetryRoundTripper{base: roundTripFunc(func(*http.Request) (*http.Response, error) { return resp, nil })}
	got, _ := rt.RoundTrip(httptest.NewRequest(http.MethodGet, "http://x/", nil))
	return got.Body.(*retryClampBody)
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// TestSSERetryOnlyOnEventStreams: a JSON response is not wrapped.
func TestSSERetryOnlyOnEventStreams(t *testing.T) {
	body := io.NopCloser(strings.NewReader("retry: 0\n"))
	resp := &http.Response{Header: http.Header{"Content-Type": {"application/json"}}, Body: body}
	rt := &sseRetryRoundTripper{base: roundTripFunc(func(*http.Request) (*http.Response, error) { return resp, nil })}
	got, _ := rt.RoundTrip(httptest.NewRequest(http.MethodPost, "http://x/", nil))
	if got.Body != body {
		t.Fatal("a JSON body was wrapped")
	}
}

// TestUntrustedCertificateIsNotSent: a TLS server whose certificate the
// hub does not trust fails as a dial (certainly not sent, the reason
// named), and the request never reaches the handler.
func TestUntrustedCertificateIsNotSent(t *testing.T) {
	var reached atomic.Bool
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Store(true)
	}))
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the failed handshake
	srv.StartTLS()
	defer srv.Close()
	hc, _ := New(Spec{Name: "tls", URL: srv.URL}).httpClient(nil, false)
	resp, err := hc.Post(srv.URL+"/mcp", "application/json", strings.NewReader(`{}`))
	if err == nil {
		resp.Body.Close()
		t.Fatal("a server with an untrusted certificate was reached")
	}
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "dial" || !strings.Contains(err.Error(), "certificate signed by unknown authority") {
		t.Fatalf("error %v (%T), want a dial error naming the certificate", err, err)
	}
	if reached.Load() {
		t.Fatal("the request reached the handler")
	}
	// A plain-http server behind an https URL is not a certificate error:
	// it stays whatever the transport said.
	plain := httptest.NewServer(http.NotFoundHandler())
	defer plain.Close()
	_, err = hc.Get(strings.Replace(plain.URL, "http://", "https://", 1))
	if err == nil || errors.As(err, &op) && op.Op == "dial" && strings.Contains(err.Error(), "tls handshake") {
		t.Fatalf("https to a plain-http server: %v", err)
	}
}

// TestHTTPClientClosesIdleConnections: closing a session's client closes
// its keep-alive sockets at once (the wrappers pass the call on).
func TestHTTPClientClosesIdleConnections(t *testing.T) {
	closed := make(chan struct{}, 1)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	srv.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateClosed {
			select {
			case closed <- struct{}{}:
			default:
			}
		}
	}
	srv.Start()
	defer srv.Close()
	hc, _ := New(Spec{Name: "idle", URL: srv.URL}).httpClient(nil, false)
	resp, err := hc.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	hc.CloseIdleConnections()
	select {
	case <-closed:
	case <-time.After(testDeadline): // only catches "never": idle sockets live 90 s
		t.Fatal("the idle keep-alive socket was not closed by CloseIdleConnections")
	}
}
