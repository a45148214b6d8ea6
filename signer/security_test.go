package signer

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/sigilcore/sigil-hub/authz"
)

func TestVisible(t *testing.T) {
	tests := []struct{ in, plain, json string }{
		{"files", "files", "files"},
		{"résumé 日本語 ✓", "résumé 日本語 ✓", "résumé 日本語 ✓"},
		{"a\x1b[2Jb", `a\u001b[2Jb`, `a\u001b[2Jb`},
		{"line\nbreak\r\t", `line\u000abreak\u000d\u0009`, `line\u000abreak\u000d\u0009`},
		{"del\x7f c1\u0085\u009b", `del\u007f c1\u0085\u009b`, `del\u007f c1\u0085\u009b`},
		{"txt.exe\u202ecod.sh", `txt.exe\u202ecod.sh`, `txt.exe\u202ecod.sh`},
		{"\u2066iso\u2069\u2067\u2068", `\u2066iso\u2069\u2067\u2068`, `\u2066iso\u2069\u2067\u2068`},
		{"zero\u200bwidth\u200c\u200d\u200e\u200f\ufeff", `zero\u200bwidth\u200c\u200d\u200e\u200f\ufeff`, `zero\u200bwidth\u200c\u200d\u200e\u200f\ufeff`},
		{"tag\U000e0041", `tag\udb40\udc41`, `tag\udb40\udc41`},
		{"nbsp\u00a0ls\u2028", `nbsp\u00a0ls\u2028`, `nbsp\u00a0ls\u2028`},
		{"bad\xff", `bad\xff`, `bad\xff`},
		{`back\slash`, `back\\slash`, `back\slash`},
	}
	for _, tc := range tests {
		if got := Visible(tc.in); got != tc.plain {
			t.Errorf("Visible(%q) = %q, want %q", tc.in, got, tc.plain)
		}
		if got := VisibleJSON(tc.in); got != tc.json {
			t.Errorf("VisibleJSON(%q) = %q, want %q", tc.in, got, tc.json)
		}
	}
	// Escaped JSON is the same JSON value.
	raw := json.RawMessage("{\"a\":\"x\u202ey\x7f\u0085\U000e0041\",\n \"b\" : [1, \"\\u001b\"]}")
	for _, shown := range []string{CompactArguments(raw), PrettyArguments(raw)} {
		var a, b any
		if err := json.Unmarshal(raw, &a); err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal([]byte(shown), &b); err != nil {
			t.Fatalf("%q is not JSON: %v", shown, err)
		}
		if ja, jb := mustJSON(t, a), mustJSON(t, b); ja != jb {
			t.Errorf("shown %q means %s, want %s", shown, jb, ja)
		}
	}
	if got, want := CompactArguments(raw), `{"a":"x\u202ey\u007f\u0085\udb40\udc41","b":[1,"\u001b"]}`; got != want {
		t.Errorf("CompactArguments = %s, want %s", got, want)
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// hostileHold holds a call whose agent name and arguments carry terminal
// escapes, bidirectional overrides and a long run of spaces, and returns
// its id and arguments.
func hostileHold(t *testing.T, base string) (id, args string) {
	t.Helper()
	args = `{"message":"hello` + strings.Repeat(" ", 300) + "\u202e\u2066\u200b\x7f\u0085" + `","then":"rm -rf ~"}`
	in, err := authz.NewIntent(authz.Request{ServerID: "slack", Tool: "send_message", Arguments: json.RawMessage(args), TaskID: "task-1",
		AgentID: "evil\x1b[2J\x1b[H\u202eagent"})
	if err != nil {
		t.Fatal(err)
	}
	r := post(t, base+"/v1/authorize", "Bearer "+testAPIKey, "application/json", authz.AuthorizeBody(in, "evil\x1b[2J\x1b[H\u202eagent", authz.NewNonce()))
	id, _ = r.m["hold_id"].(string)
	if r.status != http.StatusAccepted || id == "" {
		t.Fatalf("hold: %d %s", r.status, r.body)
	}
	return id, args
}

// The approval page shows every argument byte, pretty-printed, and makes
// control, bidirectional and invisible characters visible in every field.
func TestPageShowsEverythingVisible(t *testing.T) {
	srv := newTestServer(t, nil)
	ts := serve(t, srv.Handler())
	id, _ := hostileHold(t, ts.URL)
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/", nil)
	req.AddCookie(session(t, ts.URL, srv))
	r := do(t, req)
	page := string(r.body)
	if r.status != http.StatusOK || !strings.Contains(page, id) {
		t.Fatalf("page: %d\n%s", r.status, page)
	}
	for _, want := range []string{
		`&#34;message&#34;: &#34;hello` + strings.Repeat(" ", 300) + `\u202e\u2066\u200b\u007f\u0085&#34;,`,
		`&#34;then&#34;: &#34;rm -rf ~&#34;`,
		`agent <code>evil\u001b[2J\u001b[H\u202eagent</code>`,
		`task <code>task-1</code>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("page lacks %q", want)
		}
	}
	for _, bad := range []string{"\x1b", "\u202e", "\u2066", "\u200b", "\x7f", "\u0085", "max-height"} {
		if strings.Contains(page, bad) {
			t.Errorf("page contains %q", bad)
		}
	}
}

// The page's cookie is a random session id, not the admin token; it
// expires; the page does not embed the admin token; a session's form token
// works only with its own session.
func TestPageSessions(t *testing.T) {
	clock := &fakeClock{now: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
	srv := newTestServer(t, func(o *Options) { o.Now = clock.Now; o.HoldTTL = 1000 * time.Hour })
	ts := serve(t, srv.Handler())
	tok := srv.AdminToken()
	c1, c2 := session(t, ts.URL, srv), session(t, ts.URL, srv)
	for _, c := range []*http.Cookie{c1, c2} {
		if c.Value == tok || strings.Contains(c.Value, tok) || len(c.Value) < 32 || c.MaxAge <= 0 {
			t.Fatalf("cookie %+v (admin token %s)", c, tok)
		}
	}
	if c1.Value == c2.Value {
		t.Fatal("two logins got the same session id")
	}
	holdFor(t, ts.URL, `{"n":1}`)
	f1, f2 := formToken(t, ts.URL, c1), formToken(t, ts.URL, c2)
	if f1 == f2 || f1 == tok {
		t.Fatalf("form tokens %s %s (admin token %s)", f1, f2, tok)
	}
	req, _ := http.NewRequest(http.MethodGet, ts.URL+"/", nil)
	req.AddCookie(c1)
	if page := string(do(t, req).body); strings.Contains(page, tok) {
		t.Error("the page embeds the admin token")
	}
	resolve := func(c *http.Cookie, form string) int {
		id := holdFor(t, ts.URL, `{"n":2}`)
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/admin/holds/"+id+"/deny", strings.NewReader(url.Values{"csrf": {form}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.AddCookie(c)
		return do(t, req).status
	}
	if st := resolve(c1, f2); st != http.StatusForbidden {
		t.Errorf("another session's form token: HTTP %d", st)
	}
	if st := resolve(c1, f1); st != http.StatusSeeOther {
		t.Errorf("own form token: HTTP %d", st)
	}
	clock.Add(sessionLifetime)
	req, _ = http.NewRequest(http.MethodGet, ts.URL+"/", nil)
	req.AddCookie(c1)
	if r := do(t, req); r.status != http.StatusUnauthorized {
		t.Errorf("expired session: HTTP %d", r.status)
	}
	// Logins beyond maxSessions end the oldest.
	first := session(t, ts.URL, srv)
	for range maxSessions {
		session(t, ts.URL, srv)
	}
	req, _ = http.NewRequest(http.MethodGet, ts.URL+"/", nil)
	req.AddCookie(first)
	if r := do(t, req); r.status != http.StatusUnauthorized {
		t.Errorf("session beyond the cap: HTTP %d", r.status)
	}
}

// /v1/* refuses DNS rebinding (a foreign Host on the loopback listener) and
// other origins, like the admin routes.
func TestV1HostAndOrigin(t *testing.T) {
	srv := newTestServer(t, func(o *Options) { o.APIKey = "" }) // any bearer: the riskiest setting
	ts := serve(t, srv.Handler())
	port := ts.URL[strings.LastIndex(ts.URL, ":")+1:]
	body, _ := wireBody(t, "github", "get_issue", `{"n":1}`)
	tests := []struct {
		name, method, path, host, origin, site string
		want                                   int
	}{
		{"loopback", "POST", "/v1/authorize", "", "", "", 200},
		{"localhost Host", "POST", "/v1/authorize", "localhost:" + port, "", "", 200},
		{"rebinding Host", "POST", "/v1/authorize", "evil.example:" + port, "", "", 403},
		{"rebinding Host, same origin", "POST", "/v1/authorize", "evil.example:" + port, "http://evil.example:" + port, "same-origin", 403},
		{"loopback Host, other port", "POST", "/v1/authorize", "127.0.0.1:1", "", "", 403},
		{"foreign Origin", "POST", "/v1/authorize", "", "http://evil.example", "", 403},
		{"null Origin", "POST", "/v1/authorize", "", "null", "", 403},
		{"cross-site fetch", "POST", "/v1/authorize", "", "", "cross-site", 403},
		{"hold lookup, rebinding Host", "GET", "/v1/holds/hold-x", "evil.example:" + port, "", "", 403},
		{"hold lookup", "GET", "/v1/holds/hold-x", "", "", "", 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var req *http.Request
			if tc.method == "POST" {
				req, _ = http.NewRequest(tc.method, ts.URL+tc.path, strings.NewReader(string(body)))
				req.Header.Set("Content-Type", "application/json")
			} else {
				req, _ = http.NewRequest(tc.method, ts.URL+tc.path, nil)
			}
			req.Header.Set("Authorization", "Bearer anything")
			if tc.host != "" {
				req.Host = tc.host
			}
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			if tc.site != "" {
				req.Header.Set("Sec-Fetch-Site", tc.site)
			}
			if r := do(t, req); r.status != tc.want {
				t.Fatalf("HTTP %d, want %d: %s", r.status, tc.want, r.body)
			}
		})
	}
}
