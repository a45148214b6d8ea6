package upstreams

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/mark3labs/mcp-go/client/transport"
	"github.com/sigilcore/sigil-hub/internal/oauthtest"
	"github.com/sigilcore/sigil-hub/internal/testbuf"
	"github.com/sigilcore/sigil-hub/internal/testupstream"
)

// startOAuthServer starts the fake MCP server behind the OAuth double.
func startOAuthServer(t *testing.T, o oauthtest.Options) *oauthtest.Server {
	t.Helper()
	hs, err := testupstream.StartHTTP(testupstream.Config{Name: "oauth-fake"}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hs.Close() })
	o.Upstream = hs.URL
	as, err := oauthtest.Start(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = as.Close() })
	return as
}

// startCallback runs an OAuthCallback until the test ends.
func startCallback(t *testing.T) *OAuthCallback {
	t.Helper()
	cb := NewOAuthCallback(OAuthCallbackOptions{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- cb.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("callback Run: %v", err)
		}
	})
	return cb
}

// browse plays the browser: it follows the authorization URL to the hub's
// callback and returns the final status and body.
func browse(t *testing.T, authURL string) (int, string) {
	t.Helper()
	resp, err := (&http.Client{}).Get(authURL)
	if err != nil {
		t.Fatalf("browser: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// pendingURL waits for the upstream to ask for authorization.
func pendingURL(t *testing.T, u *Upstream) string {
	t.Helper()
	var pe *AuthorizationPendingError
	waitFor(t, "authorization pending", func() bool { return errors.As(u.Snapshot().Err, &pe) })
	return pe.URL
}

func TestOAuthFlowStoreRefreshRestart(t *testing.T) {
	as := startOAuthServer(t, oauthtest.Options{})
	cb := startCallback(t)
	tokenFile := filepath.Join(t.TempDir(), "oauth", "remote.json")
	logs := &testbuf.Buffer{}
	spec := Spec{Name: "remote", URL: as.URL, Transport: "streamable", InitTimeout: testDeadline,
		Logger: slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		OAuth:  &OAuth{TokenFile: tokenFile, Callback: cb}}
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	defer cancel()

	u := start(t, spec, nil)
	authURL := pendingURL(t, u)
	if st := u.Snapshot().State; st != Starting {
		t.Errorf("state while waiting = %v, want starting", st)
	}
	if code, body := browse(t, authURL); code != http.StatusOK || !strings.Contains(body, "authorization complete") {
		t.Fatalf("callback answered %d %q", code, body)
	}
	waitState(t, u, Ready)
	res, err := callTool(ctx, u, "echo", `{"x":1}`)
	if err != nil {
		t.Fatalf("call after authorization: %v", err)
	}
	if got := resultText(t, res); got != `{"x":1}` {
		t.Errorf("echo = %q", got)
	}
	if s := as.Stats(); s.Registrations != 1 || s.CodeGrants != 1 {
		t.Errorf("stats after the flow = %+v, want one registration and one code grant", s)
	}

	// The token file: 0600 in a 0700 folder, bound to the URL.
	if runtime.GOOS != "windows" {
		for path, want := range map[string]os.FileMode{tokenFile: 0o600, filepath.Dir(tokenFile): 0o700} {
			fi, err := os.Stat(path)
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != want {
				t.Errorf("%s mode = %v, want %v", path, fi.Mode().Perm(), want)
			}
		}
	}
	var rec tokenRecord
	b, err := os.ReadFile(tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &rec); err != nil || rec.ServerURL != as.URL || rec.Token == nil || rec.ClientID == "" {
		t.Fatalf("token file = %s (err %v)", b, err)
	}

	// The server revokes the access token: the next call gets a 401, the
	// token is refreshed and the call retried once.
	as.Expire()
	res, err = callTool(ctx, u, "echo", `{"y":2}`)
	if err != nil {
		t.Fatalf("call after expiry: %v", err)
	}
	if got := resultText(t, res); got != `{"y":2}` {
		t.Errorf("echo = %q", got)
	}
	if s := as.Stats(); s.RefreshGrants != 1 || s.CodeGrants != 1 {
		t.Errorf("stats after expiry = %+v, want one refresh and no new code grant", s)
	}

	// A new upstream on the same file (a hub restart) needs no new flow.
	u2 := start(t, spec, nil)
	waitState(t, u2, Ready)
	if _, err := callTool(ctx, u2, "echo", `{}`); err != nil {
		t.Fatalf("call after restart: %v", err)
	}
	if s := as.Stats(); s.Authorizations != 1 || s.Registrations != 1 {
		t.Errorf("stats after restart = %+v, want no new authorization", s)
	}

	// Canary: no token issued ever reaches the logs.
	out := logs.String()
	if !strings.Contains(out, "authorization") {
		t.Errorf("logs lack the authorization messages:\n%s", out)
	}
	for _, tok := range as.Issued() {
		if strings.Contains(out, tok) {
			t.Errorf("token %s… appears in the logs", tok[:6])
		}
	}
}

func TestOAuthRefreshBeforeExpiry(t *testing.T) {
	// Tokens live 3s, so the store reports them expired after 2s (a third
	// early) and mcp-go refreshes them before the server would refuse them.
	as := startOAuthServer(t, oauthtest.Options{TokenTTL: 3 * time.Second})
	cb := startCallback(t)
	spec := Spec{Name: "remote", URL: as.URL, Transport: "streamable", InitTimeout: testDeadline,
		OAuth: &OAuth{Callback: cb}}
	u := start(t, spec, nil)
	if code, _ := browse(t, pendingURL(t, u)); code != http.StatusOK {
		t.Fatalf("callback answered %d", code)
	}
	waitState(t, u, Ready)
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	defer cancel()
	waitFor(t, "a refresh before expiry", func() bool {
		if _, err := callTool(ctx, u, "echo", `{}`); err != nil {
			t.Fatalf("call: %v", err)
		}
		return as.Stats().RefreshGrants > 0
	})
	if s := as.Stats(); s.Unauthorized != 0 {
		// The first request of a flow has no token at all, but mcp-go does
		// not send it; any 401 means a token was used after it expired.
		t.Errorf("the resource server refused %d requests; want refresh before expiry", s.Unauthorized)
	}
}

func TestOAuthNotConfiguredHint(t *testing.T) {
	as := startOAuthServer(t, oauthtest.Options{})
	u := start(t, Spec{Name: "remote", URL: as.URL, InitTimeout: testDeadline}, nil)
	s := waitState(t, u, Backoff)
	if s.Err == nil || !strings.Contains(s.Err.Error(), "add oauth = true") {
		t.Errorf("error = %v, want a hint to add oauth = true", s.Err)
	}
}

func TestOAuthCallbackRejects(t *testing.T) {
	cb := startCallback(t)
	ctx, cancel := context.WithTimeout(context.Background(), testDeadline)
	defer cancel()
	uri, err := cb.RedirectURI(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p := cb.expect("good-state")
	defer cb.forget("good-state")
	for _, tc := range []struct{ name, query string }{
		{"no state", "?code=x"},
		{"unknown state", "?code=x&state=bad"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, _ := browse(t, uri+tc.query); code != http.StatusBadRequest {
				t.Errorf("status %d, want 400", code)
			}
		})
	}
	select {
	case r := <-p.got:
		t.Errorf("pending flow got %+v from a bad redirect", r)
	default:
	}
	if _, err := (&OAuthCallback{opts: OAuthCallbackOptions{Addr: "0.0.0.0:0"}}).listen(); err == nil {
		t.Error("listening on a non-loopback address was allowed")
	}
}

func TestTokenStoreSkewAndBinding(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "t.json")
	s := &tokenStore{path: path, url: "https://a.example/mcp"}
	if err := s.load(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetToken(ctx); !errors.Is(err, transport.ErrNoToken) {
		t.Fatalf("empty store: %v, want ErrNoToken", err)
	}
	exp := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		in   int64
		skew time.Duration
	}{{0, 30 * time.Second}, {3, time.Second}, {90, 30 * time.Second}, {3600, time.Minute}} {
		if err := s.SaveToken(ctx, &transport.Token{AccessToken: "a", ExpiresIn: tc.in, ExpiresAt: exp}); err != nil {
			t.Fatal(err)
		}
		got, err := s.GetToken(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := exp.Add(-tc.skew); !got.ExpiresAt.Equal(want) {
			t.Errorf("expires_in %d: ExpiresAt %v, want %v", tc.in, got.ExpiresAt, want)
		}
	}
	// A file for another URL is ignored.
	other := &tokenStore{path: path, url: "https://b.example/mcp"}
	if err := other.load(); err == nil {
		t.Error("a token file for another URL was accepted")
	}
	if _, err := other.GetToken(ctx); !errors.Is(err, transport.ErrNoToken) {
		t.Errorf("other URL: %v, want ErrNoToken", err)
	}
}

// TestOAuthSessionDeleteCarriesToken: the session DELETE, which mcp-go sends
// without the token, gets it; other requests are left as mcp-go built them.
func TestOAuthSessionDeleteCarriesToken(t *testing.T) {
	store := &tokenStore{url: "http://127.0.0.1:9/mcp"}
	if err := store.SaveToken(t.Context(), &transport.Token{AccessToken: "at-1", TokenType: "bearer", ExpiresAt: time.Now().Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	var got []string
	base := roundTripFunc(func(r *http.Request) (*http.Response, error) {
		got = append(got, r.Method+" "+r.Header.Get("Authorization"))
		return &http.Response{StatusCode: 200, Body: http.NoBody, Header: http.Header{}}, nil
	})
	rt := &oauthRoundTripper{base: base, o: &oauthState{store: store}}
	rt.handler.Store(transport.NewOAuthHandler(transport.OAuthConfig{TokenStore: store}))
	for _, m := range []string{http.MethodDelete, http.MethodGet} {
		req, _ := http.NewRequestWithContext(t.Context(), m, "http://127.0.0.1:9/mcp", nil)
		resp, err := rt.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if req.Header.Get("Authorization") != "" {
			t.Fatal("the caller's request was modified")
		}
	}
	if want := []string{"DELETE Bearer at-1", "GET "}; strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("sent %q, want %q", got, want)
	}
}
