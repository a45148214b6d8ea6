package signer

import (
	"crypto/ed25519"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"

	"github.com/sigilcore/sigil-hub/authz"
)

// holdFor creates a PENDING hold with the given arguments and returns its id.
func holdFor(t *testing.T, base, args string) string {
	t.Helper()
	body, _ := wireBody(t, "slack", "send_message", args)
	r := post(t, base+"/v1/authorize", "Bearer "+testAPIKey, "application/json", body)
	id, _ := r.m["hold_id"].(string)
	if r.status != 202 || id == "" {
		t.Fatalf("hold: %d %s", r.status, r.body)
	}
	return id
}

// session opens the approval page URL with the token and returns the cookie.
func session(t *testing.T, base string, srv *Server) *http.Cookie {
	t.Helper()
	r := get(t, base+"/?token="+url.QueryEscape(srv.AdminToken()), "")
	if r.status != http.StatusSeeOther {
		t.Fatalf("token exchange: %d %s", r.status, r.body)
	}
	cs := (&http.Response{Header: r.header}).Cookies()
	if len(cs) != 1 || !cs[0].HttpOnly || cs[0].SameSite != http.SameSiteStrictMode {
		t.Fatalf("cookie: %+v", cs)
	}
	return cs[0]
}

// formToken returns the form token the page embeds for the session.
func formToken(t *testing.T, base string, cookie *http.Cookie) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
	req.AddCookie(cookie)
	r := do(t, req)
	m := regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`).FindStringSubmatch(string(r.body))
	if r.status != http.StatusOK || m == nil {
		t.Fatalf("no form token on the page (is a call held?): %d %s", r.status, r.body)
	}
	return m[1]
}

func TestAdminGuards(t *testing.T) {
	srv := newTestServer(t, nil)
	ts := serve(t, srv.Handler())
	cookie := session(t, ts.URL, srv)
	tok := srv.AdminToken()
	holdFor(t, ts.URL, `{"case":"a form to read the form token from"}`)
	csrf := formToken(t, ts.URL, cookie)
	type reqSpec struct {
		name   string
		method string
		path   string
		host   string // overrides Host
		origin string
		site   string // Sec-Fetch-Site
		bearer string
		cookie bool
		form   string
		// cookieValue, if set, replaces the session cookie's value.
		cookieValue string
		want        int
		resolve     bool // the hold is resolved by this request
	}
	tests := []reqSpec{
		{name: "CLI bearer", method: "POST", bearer: tok, want: 200, resolve: true},
		{name: "foreign Origin with the token", method: "POST", bearer: tok, origin: "http://evil.example", want: 403},
		{name: "null Origin", method: "POST", bearer: tok, origin: "null", want: 403},
		{name: "cross-site fetch", method: "POST", bearer: tok, site: "cross-site", want: 403},
		{name: "no token at all", method: "POST", want: 401},
		{name: "wrong bearer", method: "POST", bearer: "nope", want: 401},
		{name: "API key is not the admin token", method: "POST", bearer: testAPIKey, want: 401},
		{name: "cookie without the form token", method: "POST", cookie: true, want: 403},
		{name: "cookie with a wrong form token", method: "POST", cookie: true, form: "csrf=nope", want: 403},
		{name: "cookie with the admin token as form token", method: "POST", cookie: true, form: "csrf=" + tok, want: 403},
		{name: "page form: cookie, form token, same origin", method: "POST", cookie: true, form: "csrf=" + csrf, origin: "self", site: "same-origin", want: 303, resolve: true},
		{name: "the admin token as cookie", method: "GET", path: "/", cookie: true, cookieValue: tok, want: 401},
		{name: "DNS rebinding Host", method: "POST", bearer: tok, host: "evil.example:PORT", want: 403},
		{name: "loopback Host, other port", method: "POST", bearer: tok, host: "127.0.0.1:1", want: 403},
		{name: "localhost Host", method: "POST", bearer: tok, host: "localhost:PORT", want: 200, resolve: true},
		{name: "page without a session", method: "GET", path: "/", want: 401},
		{name: "page with a wrong token", method: "GET", path: "/?token=nope", want: 403},
		{name: "page over DNS rebinding", method: "GET", path: "/", cookie: true, host: "evil.example:PORT", want: 403},
		{name: "page with the session", method: "GET", path: "/", cookie: true, want: 200},
		{name: "hold list without a token", method: "GET", path: "/admin/holds", want: 401},
		{name: "hold list with the token", method: "GET", path: "/admin/holds", bearer: tok, want: 200},
	}
	port := ts.URL[strings.LastIndex(ts.URL, ":")+1:]
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			id := holdFor(t, ts.URL, `{"case":"`+tc.name+`"}`)
			path := tc.path
			if path == "" {
				path = "/admin/holds/" + id + "/approve"
			}
			var body *strings.Reader
			if tc.form != "" {
				body = strings.NewReader(tc.form)
			} else {
				body = strings.NewReader("")
			}
			req, _ := http.NewRequest(tc.method, ts.URL+path, body)
			if tc.form != "" {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			if tc.host != "" {
				req.Host = strings.ReplaceAll(tc.host, "PORT", port)
			}
			switch tc.origin {
			case "":
			case "self":
				req.Header.Set("Origin", ts.URL)
			default:
				req.Header.Set("Origin", tc.origin)
			}
			if tc.site != "" {
				req.Header.Set("Sec-Fetch-Site", tc.site)
			}
			if tc.bearer != "" {
				req.Header.Set("Authorization", "Bearer "+tc.bearer)
			}
			if tc.cookie {
				c := *cookie
				if tc.cookieValue != "" {
					c.Value = tc.cookieValue
				}
				req.AddCookie(&c)
			}
			r := do(t, req)
			if r.status != tc.want {
				t.Fatalf("HTTP %d, want %d: %s", r.status, tc.want, r.body)
			}
			if r.header.Get("X-Frame-Options") != "DENY" {
				t.Errorf("X-Frame-Options = %q", r.header.Get("X-Frame-Options"))
			}
			resolved := false
			for _, h := range srv.local.Holds() {
				if h.ID == id {
					resolved = h.State != authz.HoldPending
				}
			}
			if tc.method == "POST" && resolved != tc.resolve {
				t.Errorf("hold resolved = %v, want %v", resolved, tc.resolve)
			}
			if tc.want == 200 && tc.path == "/" {
				csp := r.header.Get("Content-Security-Policy")
				if !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "script-src 'nonce-") {
					t.Errorf("CSP %q", csp)
				}
			}
		})
	}
	t.Run("JSON API errors", func(t *testing.T) {
		id := holdFor(t, ts.URL, `{}`)
		if r := adminPost(t, ts.URL, srv, id, "deny"); r.status != 200 {
			t.Fatalf("deny: %d %s", r.status, r.body)
		}
		if r := adminPost(t, ts.URL, srv, id, "approve"); r.status != 409 {
			t.Fatalf("approve after deny: %d %s", r.status, r.body)
		}
		if r := adminPost(t, ts.URL, srv, "hold-nope", "approve"); r.status != 404 {
			t.Fatalf("unknown: %d %s", r.status, r.body)
		}
		if r := adminPost(t, ts.URL, srv, id, "explode"); r.status != 404 {
			t.Fatalf("unknown verb: %d %s", r.status, r.body)
		}
	})
}

func TestPageEscapesArguments(t *testing.T) {
	srv := newTestServer(t, nil)
	ts := serve(t, srv.Handler())
	const hostile = `</pre><script>alert(1)</script><img src=x onerror=alert(2)>`
	args := `{"text":"` + strings.ReplaceAll(hostile, `"`, `\"`) + `","n":1}`
	id := holdFor(t, ts.URL, args)
	// A few decisions for the recent list too, one with a hostile tool name.
	holdFor(t, ts.URL, `{"x":"<script>"}`)
	body, _ := wireBody(t, "jira", "<script>alert(3)</script>", `{}`)
	post(t, ts.URL+"/v1/authorize", "Bearer "+testAPIKey, "application/json", body)

	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/", nil)
	req.AddCookie(session(t, ts.URL, srv))
	r := do(t, req)
	page := string(r.body)
	if r.status != 200 || !strings.HasPrefix(r.header.Get("Content-Type"), "text/html") {
		t.Fatalf("page: %d %s", r.status, page)
	}
	for _, bad := range []string{"<script>alert", "<img src=x", "</pre><script>"} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains %q unescaped", bad)
		}
	}
	for _, want := range []string{"&lt;script&gt;alert(1)&lt;/script&gt;", id, `data-hold="` + id + `"`, "Approve", "Deny",
		"\n  &#34;n&#34;: 1", "send_message", "DENIED", "SIGIL_POLICY_VIOLATION", srv.PolicyHash()} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	if n := strings.Count(page, "<script"); n != 1 {
		t.Errorf("page has %d script tags, want 1 (its own)", n)
	}
}

func TestLoadOrCreateKey(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "cfg", "sigil-hub")
	path := filepath.Join(dir, "signer-ed25519.key")
	k1, kid1, err := LoadOrCreateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	if kid1 == "" || kid1 != Thumbprint(k1.Public().(ed25519.PublicKey)) {
		t.Fatalf("kid %q", kid1)
	}
	if runtime.GOOS != "windows" {
		for p, want := range map[string]os.FileMode{dir: 0o700, path: 0o600} {
			st, err := os.Stat(p)
			if err != nil || st.Mode().Perm() != want {
				t.Errorf("%s: mode %v, want %v (%v)", p, st.Mode().Perm(), want, err)
			}
		}
	}
	k2, kid2, err := LoadOrCreateKey(path)
	if err != nil || !k1.Equal(k2) || kid1 != kid2 {
		t.Fatalf("reload: same key %v, kid %q vs %q, err %v", k1.Equal(k2), kid1, kid2, err)
	}
	if runtime.GOOS != "windows" {
		if err := os.Chmod(path, 0o644); err != nil {
			t.Fatal(err)
		}
		if _, _, err := LoadOrCreateKey(path); err == nil || !strings.Contains(err.Error(), "chmod 600") {
			t.Fatalf("world-readable key accepted: %v", err)
		}
	}
	bad := filepath.Join(t.TempDir(), "bad.key")
	if err := os.WriteFile(bad, []byte("not a key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := LoadOrCreateKey(bad); err == nil || !strings.Contains(err.Error(), "PRIVATE KEY") {
		t.Fatalf("garbage key accepted: %v", err)
	}
}
