package main

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sigilcore/sigil-hub/internal/testbuf"
)

// Issue 13 (a person sees what they approve, and the approval surfaces
// keep their secrets): against the real binary, `sigil-hub holds list`
// shows complete arguments and escapes every client-chosen field, `holds
// show` prints one hold completely, the approval page does the same, its
// cookie is a session id rather than the admin token, the signer's /v1/*
// refuses DNS rebinding, and `holds --sign-url` sends the admin token only
// to loopback or https.

// hostileAgent is a clientInfo.name that, printed raw, clears the terminal
// and draws a fake hold row, then reverses what follows.
const hostileAgent = "evil\x1b[2J\x1b[1;1Hhold-00000000 PENDING 0s files hold_me friendly\u202e\u2066"

// rawInvisible are characters that must never reach a terminal or page raw.
var rawInvisible = []string{"\x1b", "\u202e", "\u2066", "\u200b", "\x7f", "\u0085"}

func TestSecurityHoldsShowWhatIsApproved(t *testing.T) {
	t.Parallel()
	// A long run of spaces pushed "then" past the 60-rune cut; raw
	// bidirectional, zero-width, DEL and C1 characters inside a string are
	// valid JSON.
	args := `{"message":"hello` + strings.Repeat(" ", 300) + "\u202e\u200b\x7f\u0085" + `","then":"rm -rf ~"}`
	shownArgs := `{"message":"hello` + strings.Repeat(" ", 300) + `\u202e\u200b\u007f\u0085","then":"rm -rf ~"}`
	holdRow := regexp.MustCompile(`(?m)^(hold-[0-9a-f]+)\s+PENDING\s`)
	pageURL := regexp.MustCompile(`(http://127\.0\.0\.1:[0-9]+)/\?token=`)
	for _, mode := range []string{"embedded engine (--policy)", "sigil-hub sign over HTTP"} {
		t.Run(mode, func(t *testing.T) {
			s := newOfflineSetup(t)
			env := append(s.env(), "COLUMNS=80")
			hubArgs := []string{"--config", s.config, "--pending-timeout", "120000"}
			var base string
			if strings.HasPrefix(mode, "sigil-hub sign") {
				p := startSignBin(t, s)
				base = p.base
				hubArgs = append(hubArgs, "--sign-url", p.base, "--key", "anything")
			} else {
				hubArgs = append(hubArgs, "--policy", s.policy)
			}
			rc := startRawAs(t, hostileAgent, s.env(), hubArgs...)
			if base == "" {
				eventually(t, "the approval page URL in the hub's log", func() bool { return pageURL.MatchString(rc.stderr.String()) })
				base = pageURL.FindStringSubmatch(rc.stderr.String())[1]
			}
			rc.send(`{"jsonrpc":"2.0","id":"held","method":"tools/call","params":{"name":"files__hold_me","arguments":` + args + `}}`)

			holds := func(args ...string) string {
				t.Helper()
				cmd := exec.Command(hubBin, append(append([]string{"holds"}, args...), "--sign-url", base)...)
				cmd.Env = baseEnv(env...)
				var stderr testbuf.Buffer
				cmd.Stderr = &stderr
				out, err := cmd.Output()
				if err != nil {
					t.Errorf("holds %v: %v\n%s", args, err, stderr.String())
				}
				return string(out)
			}
			var list, id string
			eventually(t, "the hold in `sigil-hub holds list`", func() bool {
				if t.Failed() {
					t.FailNow()
				}
				list = holds("list")
				if m := holdRow.FindStringSubmatch(list); m != nil {
					id = m[1]
				}
				return id != ""
			})

			// list: the complete arguments, wrapped under the hold's row.
			lines := strings.Split(strings.TrimRight(list, "\n"), "\n")
			var got strings.Builder
			for i, l := range lines {
				if strings.HasPrefix(l, id) {
					for _, a := range lines[i+1:] {
						if !strings.HasPrefix(a, "    ") {
							break
						}
						if n := len([]rune(a)); n > 80 {
							t.Errorf("an arguments line has %d columns, wider than COLUMNS=80: %q", n, a)
						}
						got.WriteString(strings.TrimPrefix(a, "    "))
					}
				}
				if strings.HasPrefix(l, "hold-00000000") {
					t.Errorf("the agent name drew a fake hold row: %q", l)
				}
			}
			if got.String() != shownArgs {
				t.Errorf("list shows the arguments as\n%q\nwant them complete:\n%q\nlist:\n%s", got.String(), shownArgs, list)
			}
			if !strings.Contains(list, `evil\u001b[2J\u001b[1;1Hhold-00000000 PENDING`) {
				t.Errorf("list lacks the escaped agent name:\n%s", list)
			}

			// show: every field, the arguments pretty-printed.
			show := holds("show", id)
			for _, want := range []string{
				"hold       " + id, "state      PENDING", "server     files", "tool       hold_me",
				`agent      "evil\u001b[2J\u001b[1;1Hhold-00000000 PENDING 0s files hold_me friendly\u202e\u2066"`,
				"tx_commit  ", "\n{\n  \"message\": \"hello" + strings.Repeat(" ", 300) + `\u202e\u200b\u007f\u0085",` + "\n  \"then\": \"rm -rf ~\"\n}\n",
			} {
				if !strings.Contains(show, want) {
					t.Errorf("show lacks %q:\n%s", want, show)
				}
			}

			// The approval page: complete, pretty-printed, escaped.
			tok, err := os.ReadFile(holdsTokenFile(filepath.Join(s.cfgHome, "sigil-hub"), base))
			if err != nil {
				t.Fatal(err)
			}
			req, _ := http.NewRequest(http.MethodGet, base+"/", nil)
			req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			page, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, want := range []string{
				`&#34;message&#34;: &#34;hello` + strings.Repeat(" ", 300) + `\u202e\u200b\u007f\u0085&#34;,`,
				`&#34;then&#34;: &#34;rm -rf ~&#34;`, `evil\u001b[2J\u001b[1;1Hhold-00000000`,
			} {
				if !strings.Contains(string(page), want) {
					t.Errorf("page lacks %q", want)
				}
			}

			for what, out := range map[string]string{"list": list, "show": show, "page": string(page)} {
				for _, bad := range rawInvisible {
					if strings.Contains(out, bad) {
						t.Errorf("%s contains the raw character %q", what, bad)
					}
				}
			}

			if out := holds("deny", id); !strings.Contains(out, "denied "+id) {
				t.Errorf("deny: %q", out)
			}
			if m := rc.await(`"held"`); !strings.Contains(string(m["error"]), `"code":-32001`) {
				t.Errorf("the denied call answered %s", m["error"])
			}
		})
	}
}

// `holds show` of an unknown hold says so.
func TestSecurityHoldsShowUnknown(t *testing.T) {
	t.Parallel()
	s := newOfflineSetup(t)
	p := startSignBin(t, s)
	cmd := exec.Command(hubBin, "holds", "show", "hold-nope", "--sign-url", p.base, "--token-file", p.tokenFile)
	cmd.Env = baseEnv(s.env()...)
	out, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no such hold hold-nope") {
		t.Fatalf("%v: %s", err, out)
	}
}

// The approval page's cookie is a random session id kept by the server,
// not the admin token.
func TestSecurityAdminCookieIsASession(t *testing.T) {
	t.Parallel()
	s := newOfflineSetup(t)
	p := startSignBin(t, s)
	tok, err := os.ReadFile(p.tokenFile)
	if err != nil {
		t.Fatal(err)
	}
	token := strings.TrimSpace(string(tok))
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := noRedirect.Get(p.pageURL(t))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	cs := resp.Cookies()
	if resp.StatusCode != http.StatusSeeOther || len(cs) != 1 {
		t.Fatalf("login: HTTP %d, cookies %v", resp.StatusCode, cs)
	}
	c := cs[0]
	if c.Value == token || strings.Contains(c.Value, token) || len(c.Value) < 32 || !c.HttpOnly || c.MaxAge <= 0 {
		t.Errorf("cookie %s=%s (HttpOnly %v, Max-Age %d): the admin token is %s", c.Name, c.Value, c.HttpOnly, c.MaxAge, token)
	}
	page := func(value string) int {
		req, _ := http.NewRequest(http.MethodGet, p.base+"/", nil)
		req.AddCookie(&http.Cookie{Name: c.Name, Value: value})
		r, err := noRedirect.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(r.Body)
		r.Body.Close()
		if strings.Contains(string(body), token) {
			t.Errorf("the page carries the admin token")
		}
		return r.StatusCode
	}
	if st := page(c.Value); st != http.StatusOK {
		t.Errorf("the session cookie: HTTP %d", st)
	}
	if st := page(token); st != http.StatusUnauthorized {
		t.Errorf("the admin token as cookie: HTTP %d, want 401", st)
	}
}

// `sigil-hub sign`'s /v1/* refuses a foreign Host (DNS rebinding) and a
// foreign Origin, like its admin routes.
func TestSecuritySignerV1ChecksHostAndOrigin(t *testing.T) {
	t.Parallel()
	s := newOfflineSetup(t)
	p := startSignBin(t, s) // no SIGIL_API_KEY: /v1 accepts any bearer key
	port := p.base[strings.LastIndex(p.base, ":")+1:]
	tests := []struct {
		name, method, path, host, origin string
		refused                          bool
	}{
		{"loopback", "POST", "/v1/authorize", "", "", false},
		{"rebinding Host", "POST", "/v1/authorize", "evil.example:" + port, "", true},
		{"rebinding Host and its Origin", "POST", "/v1/authorize", "evil.example:" + port, "http://evil.example:" + port, true},
		{"foreign Origin", "POST", "/v1/authorize", "", "http://evil.example", true},
		{"hold lookup, rebinding Host", "GET", "/v1/holds/hold-x", "evil.example:" + port, "", true},
		{"hold lookup", "GET", "/v1/holds/hold-x", "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, p.base+tc.path, strings.NewReader(`{}`))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", "Bearer anything")
			if tc.host != "" {
				req.Host = tc.host
			}
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if (resp.StatusCode == http.StatusForbidden) != tc.refused {
				t.Fatalf("HTTP %d (refused: want %v): %s", resp.StatusCode, tc.refused, body)
			}
		})
	}
}

// `sigil-hub holds --sign-url` sends the admin token only to https or a
// loopback address: a plain-http remote URL is refused before anything is
// sent (an HTTP proxy on loopback stands in for the network and records
// what would have left), and a URL with a password is refused without
// echoing it.
func TestSecurityHoldsSignURLOnlyLoopbackOrHTTPS(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	var mu sync.Mutex
	var seen []string
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				c.SetDeadline(time.Now().Add(10 * time.Second))
				if req, err := http.ReadRequest(bufio.NewReader(c)); err == nil {
					mu.Lock()
					seen = append(seen, req.Method+" "+req.URL.String()+" Authorization: "+req.Header.Get("Authorization"))
					mu.Unlock()
				}
				io.WriteString(c, "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			}()
		}
	}()
	tokenFile := filepath.Join(t.TempDir(), "admin-token")
	if err := os.WriteFile(tokenFile, []byte("admin-token-must-stay-here\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	proxy := "http://" + ln.Addr().String()
	for _, tc := range []struct{ url, want string }{
		{"http://signer.example:8787", "must use https"},
		{"http://user:hunter2@127.0.0.1:1", "must not contain user information"},
	} {
		t.Run(tc.url, func(t *testing.T) {
			cmd := exec.Command(hubBin, "holds", "list", "--sign-url", tc.url, "--token-file", tokenFile)
			cmd.Env = baseEnv("HTTP_PROXY="+proxy, "http_proxy="+proxy, "NO_PROXY=", "no_proxy=")
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), tc.want) || strings.Contains(string(out), "hunter2") {
				t.Errorf("exit %v, output:\n%s\nwant an error saying %q, without the password", err, out, tc.want)
			}
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if len(seen) > 0 {
		t.Errorf("the admin token left for a plain-http remote:\n%s", strings.Join(seen, "\n"))
	}
}
