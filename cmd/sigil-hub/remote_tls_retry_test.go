//go:build linux

package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigilcore/sigil-hub/internal/testupstream"
)

// Fault catalogue #61 left-overs: a remote upstream behind TLS the hub does
// not trust, and the SSE reconnection time (`retry:`) a server asks for.
//
// mcp-go v1.2.1 (client/transport) and `retry:`:
//   - legacy SSE (sse.go readSSE) ignores the field: a lost stream calls the
//     connection-lost handler and the hub's supervisor reconnects after its
//     own backoff (1 s doubling to 30 s, minus up to 20% jitter);
//   - Streamable HTTP (streamable_http.go readSSEWithCursor/resumeSSE)
//     honours it when it resumes a POST stream the server ended before the
//     response (SEP-1699), with a 10 ms floor and no ceiling: `retry: 0`
//     would poll every 10 ms, `retry: 1000000000` would wait 11.6 days. The
//     hub clamps the field to 250 ms…30 s in upstreams/http.go.

// testCert is a self-signed certificate for 127.0.0.1 and its PEM.
type testCert struct {
	cert tls.Certificate
	pem  []byte
}

func newTestCert(t *testing.T, cn string) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return testCert{
		cert: tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		pem:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
	}
}

// sniffListener records the first byte of every connection it accepts (a
// TLS ClientHello starts with 0x16, plain HTTP with a method name) and can
// close every connection it handed out.
type sniffListener struct {
	net.Listener
	mu    sync.Mutex
	conns []net.Conn
	tlsN  int
	plain []string // the first bytes of connections that were not TLS
}

func (l *sniffListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	l.mu.Lock()
	l.conns = append(l.conns, c)
	l.mu.Unlock()
	return &sniffConn{Conn: c, l: l}, nil
}

func (l *sniffListener) closeAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, c := range l.conns {
		_ = c.Close()
	}
	l.conns = nil
}

func (l *sniffListener) counts() (tlsConns int, plain []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.tlsN, append([]string(nil), l.plain...)
}

type sniffConn struct {
	net.Conn
	l    *sniffListener
	once sync.Once
}

func (c *sniffConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if n > 0 {
		c.once.Do(func() {
			c.l.mu.Lock()
			defer c.l.mu.Unlock()
			if p[0] == 0x16 {
				c.l.tlsN++
			} else {
				c.l.plain = append(c.l.plain, fmt.Sprintf("%.16q", p[:n]))
			}
		})
	}
	return n, err
}

// tlsFront serves handler over TLS with a certificate that can be swapped,
// on a sniffing listener. It returns the base URL (https://127.0.0.1:port).
func tlsFront(t *testing.T, handler http.Handler, cert *atomic.Pointer[tls.Certificate]) (string, *sniffListener) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sl := &sniffListener{Listener: ln}
	cfg := &tls.Config{GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) { return cert.Load(), nil }}
	srv := &http.Server{Handler: handler, ErrorLog: log.New(io.Discard, "", 0)} // handshake failures are the point
	go func() { _ = srv.Serve(tls.NewListener(sl, cfg)) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "https://" + ln.Addr().String(), sl
}

// TestFaultD61RemoteTLS: a Streamable HTTP upstream behind TLS. When its
// certificate is not trusted (from the start, or after the server switched
// certificates mid-session), nothing is sent: calls fail -32603 with the
// certificate problem named, the upstream keeps getting TLS handshakes
// (never a plain-http request: no downgrade), and nothing reaches it. Once
// the trusted certificate is back, the same upstream serves again.
func TestFaultD61RemoteTLS(t *testing.T) {
	t.Parallel()
	trusted, untrusted := newTestCert(t, "trusted"), newTestCert(t, "untrusted")
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(caFile, trusted.pem, 0o600); err != nil {
		t.Fatal(err)
	}
	// start runs a fake upstream behind a TLS front serving cert, and a hub
	// that trusts only the trusted certificate.
	start := func(t *testing.T, cert *tls.Certificate) (*faultHub, *faultSign, *sniffListener, *atomic.Pointer[tls.Certificate], upstreamLog) {
		_, proxy, log := proxiedUpstream(t, "remote-tls")
		proxy.FlushInterval = -1
		var cur atomic.Pointer[tls.Certificate]
		cur.Store(cert)
		base, sl := tlsFront(t, proxy, &cur)
		cfg := fmt.Sprintf("\n[servers.remote]\nurl = %q\ntransport = \"streamable\"\nserver_id = \"remote\"\n", base+"/mcp")
		sign := newFaultSign(t, false, nil)
		runID := faultRunID(t)
		h := startFault(t, sign, runID, faultOpts{Env: []string{"SSL_CERT_FILE=" + caFile},
			Args: []string{"--config", writeConfig(t, cfg), "--call-timeout", "10000"}})
		return h, sign, sl, &cur, log
	}
	noPlain := func(t *testing.T, sl *sniffListener) int {
		t.Helper()
		n, plain := sl.counts()
		if len(plain) > 0 {
			t.Errorf("the hub spoke plain http to an https upstream: %v", plain)
		}
		return n
	}

	t.Run("untrusted_from_start", func(t *testing.T) {
		t.Parallel()
		h, sign, sl, _, log := start(t, &untrusted.cert)
		eventually(t, "a certificate error logged", func() bool {
			return strings.Contains(h.stderr.String(), "certificate signed by unknown authority")
		})
		if _, ok := h.tools()["remote__echo"]; ok {
			t.Fatal("tools of an upstream whose certificate is not trusted are listed")
		}
		d := h.rpcErr(h.callWait("remote__echo", `{"tls":"start"}`), -32602)
		t.Logf("call to the untrusted upstream's tool: %d handshakes, %s", noPlain(t, sl), d.Message)
		assertInvariants(t, h, invariants{Sign: sign, Logs: map[string]upstreamLog{"remote": log}, Audit: -1})
	})

	t.Run("certificate_changed", func(t *testing.T) {
		t.Parallel()
		h, sign, sl, cur, log := start(t, &trusted.cert)
		if got := h.text(h.callWait("remote__echo", `{"tls":1}`)); got != `{"tls":1}` {
			t.Fatalf("echo over trusted TLS = %s", got)
		}
		cur.Store(&untrusted.cert)
		sl.closeAll() // every later request needs a new handshake
		for i := 2; i <= 3; i++ {
			args := fmt.Sprintf(`{"tls":%d}`, i)
			d := h.rpcErr(h.callWait("remote__echo", args), -32603)
			t.Logf("call %d after the certificate changed: reason %s: %s", i, d.Reason, d.Message)
			// The first call meets the failed handshake itself; later
			// ones find the upstream in backoff, whose message does not
			// carry the last connection error (upstreams.Call).
			if i == 2 && !strings.Contains(d.Message, "certificate signed by unknown authority") {
				t.Errorf("call %d: message %q does not name the certificate problem", i, d.Message)
			}
			if d.Reason != "upstream_unavailable" {
				t.Errorf("call %d: reason %q, want upstream_unavailable (the handshake failed: nothing was sent)", i, d.Reason)
			}
			if log.contains(t, args) {
				t.Errorf("call %d reached the upstream through an untrusted connection", i)
			}
		}
		eventually(t, "the reconnect's certificate error logged", func() bool {
			return strings.Contains(h.stderr.String(), "certificate signed by unknown authority")
		})
		cur.Store(&trusted.cert)
		eventually(t, "the upstream served again with the trusted certificate", func() bool {
			m := h.callWait("remote__echo", `{"tls":"back"}`)
			return m["error"] == nil
		})
		t.Logf("%d TLS handshakes, no plain-http connection", noPlain(t, sl))
		assertInvariants(t, h, invariants{Sign: sign, Logs: map[string]upstreamLog{"remote": log}, Audit: -1})
	})
}

func log2discard() *log.Logger { return log.New(io.Discard, "", 0) }

// serveFront serves handler on a loopback port until the test ends and
// returns its base URL (http://127.0.0.1:port).
func serveFront(t *testing.T, handler http.Handler) string {
	t.Helper()
	srv := &http.Server{Handler: handler, ErrorLog: log2discard()}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}

// sseRetryFront relays a legacy SSE upstream (GET /sse, POST /message).
// Every stream it relays starts with `retry: <ms>`; cut ends every open
// stream. It records when streams were cut and when the hub reconnected.
type sseRetryFront struct {
	backend string // http://host:port
	retry   int64
	proxy   *httputil.ReverseProxy

	mu    sync.Mutex
	cuts  map[chan struct{}]bool
	opens []time.Time
	cutAt time.Time
}

func (f *sseRetryFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet || r.URL.Path != "/sse" {
		f.proxy.ServeHTTP(w, r)
		return
	}
	req, _ := http.NewRequestWithContext(r.Context(), http.MethodGet, f.backend+"/sse", nil)
	req.Header.Set("Accept", "text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	cut := make(chan struct{})
	f.mu.Lock()
	f.opens = append(f.opens, time.Now())
	f.cuts[cut] = true
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		delete(f.cuts, cut)
		f.mu.Unlock()
	}()
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "retry: %d\n\n", f.retry)
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	chunks := make(chan []byte)
	go func() {
		defer close(chunks)
		buf := make([]byte, 32<<10)
		for {
			n, err := resp.Body.Read(buf)
			if n > 0 {
				select {
				case chunks <- append([]byte(nil), buf[:n]...):
				case <-r.Context().Done():
					return
				}
			}
			if err != nil {
				return
			}
		}
	}()
	for {
		select {
		case b, ok := <-chunks:
			if !ok {
				return
			}
			if _, err := w.Write(b); err != nil {
				return
			}
			_ = rc.Flush()
		case <-cut:
			panic(http.ErrAbortHandler) // the stream breaks off
		case <-r.Context().Done():
			return
		}
	}
}

// cutAll breaks every open stream and returns how many streams had been
// opened before.
func (f *sseRetryFront) cutAll() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.cutAt = time.Now()
	for c := range f.cuts {
		close(c)
		delete(f.cuts, c)
	}
	return len(f.opens)
}

// reopenedAfter returns the delay between the cut and the first stream
// opened after it.
func (f *sseRetryFront) reopenedAfter(n int) (time.Duration, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.opens) <= n {
		return 0, false
	}
	return f.opens[n].Sub(f.cutAt), true
}

// TestFaultD61SSERetryClamped: a legacy SSE upstream asks for `retry: 0`
// and `retry: 1000000000` (ms) and then breaks its stream. The hub
// reconnects within 250 ms…30 s either way: never in a tight loop, never
// after 11 days. Its calls work again after the reconnect.
func TestFaultD61SSERetryClamped(t *testing.T) {
	t.Parallel()
	for _, retry := range []int64{0, 1_000_000_000} {
		t.Run(fmt.Sprintf("retry_%d", retry), func(t *testing.T) {
			t.Parallel()
			mcpURL, proxy, log := proxiedUpstream(t, "remote-sse")
			backend := strings.TrimSuffix(mcpURL, "/mcp")
			front := &sseRetryFront{backend: backend, retry: retry, proxy: proxy, cuts: map[chan struct{}]bool{}}
			cfg := fmt.Sprintf("\n[servers.remote]\nurl = %q\ntransport = \"sse\"\nserver_id = \"remote\"\n", serveFront(t, front)+"/sse")
			sign := newFaultSign(t, false, nil)
			h := startFault(t, sign, faultRunID(t), faultOpts{Args: []string{"--config", writeConfig(t, cfg)}})
			h.text(h.callWait("remote__echo", `{"before":"cut"}`))

			n := front.cutAll()
			var delay time.Duration
			// The bound only catches "never" (retry honoured: 11.6 days).
			deadline := time.Now().Add(30*time.Second + 30*time.Second)
			for {
				d, ok := front.reopenedAfter(n)
				if ok {
					delay = d
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("retry: %d: the hub did not reconnect within 60 s of the stream breaking", retry)
				}
				time.Sleep(20 * time.Millisecond)
			}
			t.Logf("retry: %d ms → reconnected %v after the stream broke (clamp 250 ms…30 s)", retry, delay.Round(time.Millisecond))
			if delay < 250*time.Millisecond {
				t.Errorf("retry: %d: reconnected after %v, under the 250 ms floor", retry, delay)
			}
			eventually(t, "calls served after the reconnect", func() bool {
				return h.callWait("remote__echo", `{"after":"cut"}`)["error"] == nil
			})
			assertInvariants(t, h, invariants{Sign: sign, Logs: map[string]upstreamLog{"remote": log}, Audit: -1})
		})
	}
}

// resumeFront sits before a Streamable HTTP upstream. A tools/call whose
// arguments carry "resume": N is answered the SEP-1699 way: the POST's SSE
// stream carries only an event id and `retry: R` and ends; each resume GET
// (Last-Event-ID) ends the same way until the N-th, which delivers the
// response. It records how long the hub waited before each resume.
type resumeFront struct {
	backend string // http://host:port/mcp
	proxy   *httputil.ReverseProxy

	mu    sync.Mutex
	seq   int
	held  map[string]*resumeState
	waits []time.Duration
}

type resumeState struct {
	resp  []byte
	left  int
	retry int64
	round int
	ended time.Time
}

func (f *resumeFront) endStream(w http.ResponseWriter, key string, st *resumeState) {
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	fmt.Fprintf(w, "id: %s-%d\nretry: %d\n\n", key, st.round, st.retry)
	_ = http.NewResponseController(w).Flush()
	st.round++
	st.ended = time.Now()
}

func (f *resumeFront) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if last := r.Header.Get("Last-Event-ID"); r.Method == http.MethodGet && last != "" {
		key := last[:strings.LastIndexByte(last, '-')]
		f.mu.Lock()
		defer f.mu.Unlock()
		st := f.held[key]
		if st == nil {
			http.Error(w, "unknown event id", http.StatusNotFound)
			return
		}
		f.waits = append(f.waits, time.Since(st.ended))
		if st.left > 0 {
			st.left--
			f.endStream(w, key, st)
			return
		}
		delete(f.held, key)
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		fmt.Fprintf(w, "id: %s-final\ndata: %s\n\n", key, bytes.TrimSpace(st.resp))
		return
	}
	if r.Method != http.MethodPost {
		f.proxy.ServeHTTP(w, r)
		return
	}
	body, _ := io.ReadAll(r.Body)
	var m struct {
		Method string `json:"method"`
		Params struct {
			Arguments struct {
				Resume int   `json:"resume"`
				Retry  int64 `json:"retry"`
			} `json:"arguments"`
		} `json:"params"`
	}
	_ = json.Unmarshal(body, &m)
	if m.Method != "tools/call" || m.Params.Arguments.Resume == 0 {
		r.Body = io.NopCloser(bytes.NewReader(body))
		f.proxy.ServeHTTP(w, r)
		return
	}
	req, _ := http.NewRequestWithContext(r.Context(), http.MethodPost, f.backend, bytes.NewReader(body))
	req.Header = r.Header.Clone()
	req.Header.Set("Accept", "application/json, text/event-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	answer, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); strings.HasPrefix(ct, "text/event-stream") {
		// Take the data line of the single event.
		for _, l := range strings.Split(string(answer), "\n") {
			if d, ok := strings.CutPrefix(l, "data:"); ok {
				answer = []byte(strings.TrimSpace(d))
			}
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	key := fmt.Sprintf("ev%d", f.seq)
	st := &resumeState{resp: answer, left: m.Params.Arguments.Resume - 1, retry: m.Params.Arguments.Retry}
	f.held[key] = st
	f.endStream(w, key, st)
}

func (f *resumeFront) takeWaits() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	w := f.waits
	f.waits = nil
	return w
}

// TestFaultD61StreamableResumeRetryClamped: a Streamable HTTP upstream
// ends a call's SSE stream before the response, asking for `retry: 0` or
// `retry: 1000000000` (ms), and delivers the response on a resume GET
// (Last-Event-ID). The hub waits at least 250 ms between resumes (not
// mcp-go's 10 ms floor) and at most 30 s (not 11.6 days: the call, with a
// 90 s budget, succeeds instead of timing out). The call reaches the
// upstream once.
func TestFaultD61StreamableResumeRetryClamped(t *testing.T) {
	t.Parallel()
	mcpURL, proxy, log := proxiedUpstream(t, "remote-resume")
	proxy.FlushInterval = -1
	front := &resumeFront{backend: mcpURL, proxy: proxy, held: map[string]*resumeState{}}
	cfg := fmt.Sprintf("\n[servers.remote]\nurl = %q\ntransport = \"streamable\"\nserver_id = \"remote\"\n", serveFront(t, front)+"/mcp")
	sign := newFaultSign(t, false, nil)
	h := startFault(t, sign, faultRunID(t), faultOpts{Args: []string{"--config", writeConfig(t, cfg), "--call-timeout", "90000"}})

	for _, tc := range []struct {
		retry  int64
		rounds int
	}{{0, 4}, {1_000_000_000, 1}} {
		args := fmt.Sprintf(`{"resume":%d,"retry":%d}`, tc.rounds, tc.retry)
		m := h.callWait("remote__echo", args)
		waits := front.takeWaits()
		var shown []string
		for _, w := range waits {
			shown = append(shown, w.Round(time.Millisecond).String())
		}
		t.Logf("retry: %d ms, %d resumes → waits %v (clamp 250 ms…30 s)", tc.retry, tc.rounds, shown)
		if e, isErr := errOf(m); isErr {
			t.Errorf("retry: %d: the resumed call failed %d %s (%s)", tc.retry, e.Code, e.Data.Reason, e.Message)
			continue
		}
		if got := h.text(m); got != args {
			t.Errorf("retry: %d: echo %s, want %s", tc.retry, got, args)
		}
		if len(waits) != tc.rounds {
			t.Errorf("retry: %d: %d resume requests, want %d", tc.retry, len(waits), tc.rounds)
		}
		for _, w := range waits {
			if w < 250*time.Millisecond {
				t.Errorf("retry: %d: resumed after %v, under the 250 ms floor", tc.retry, w)
			}
		}
		if n := strings.Count(readFile(string(log)), `"resume":`+fmt.Sprint(tc.rounds)); n != 1 {
			t.Errorf("retry: %d: the call reached the upstream %d times, want 1", tc.retry, n)
		}
	}
	assertInvariants(t, h, invariants{Sign: sign, Logs: map[string]upstreamLog{"remote": log}, Audit: -1})
}

// proxiedUpstream starts the fake Streamable HTTP upstream (stopped by the
// cleanup) and a reverse proxy to its origin that a fault front wraps. It
// returns the upstream's /mcp URL, the proxy and the upstream's log.
func proxiedUpstream(t *testing.T, name string) (string, *httputil.ReverseProxy, upstreamLog) {
	t.Helper()
	log := newUpstreamLog(t)
	hs, err := testupstream.StartHTTP(testupstream.Config{Name: name, LogPath: string(log)}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hs.Close() })
	target, _ := url.Parse(hs.URL)
	target.Path = ""
	proxy := httputil.NewSingleHostReverseProxy(target)
	proxy.ErrorLog = log2discard()
	return hs.URL, proxy, log
}
