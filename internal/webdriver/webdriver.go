package webdriver

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/sigilcore/sigil-hub/internal/testbuf"
)

// RequireEnv is the environment variable that, set to "1", makes a missing
// browser a test failure instead of a skip. Tests read it and pass the
// result as Options.Require.
const RequireEnv = "SIGIL_HUB_REQUIRE_BROWSER"

// Options configure Start. The zero value skips when no browser is found.
type Options struct {
	// Require fails the test, instead of skipping it, when chromium or
	// chromedriver is missing.
	Require bool
	// Timeout bounds each wait (driver readiness, Click's search for an
	// element). Zero means one minute.
	Timeout time.Duration
}

// Session is one headless Chromium session. Its methods fail the test
// they are given (t.Fatal), so call them from that test's goroutine; one
// session may serve several subtests in turn. Start registers cleanups that
// delete the session and stop chromedriver.
type Session struct {
	o       Options
	base    string // http://127.0.0.1:port of chromedriver
	session string // /session/<id>
	client  *http.Client
}

// Find returns the chromedriver and Chromium binaries, or skips (fails with
// o.Require) when either is absent.
func Find(t testing.TB, o Options) (driver, browser string) {
	t.Helper()
	driver, derr := exec.LookPath("chromedriver")
	var berr error
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if browser, berr = exec.LookPath(name); berr == nil {
			break
		}
	}
	if derr != nil || berr != nil {
		msg := "headless browser test needs chromium and chromedriver on PATH (apt-get install -y chromium chromium-driver)"
		if o.Require {
			t.Fatal(msg + "; " + RequireEnv + "=1 makes this a failure")
		}
		t.Skip(msg)
	}
	return driver, browser
}

// Start runs chromedriver on a free loopback port and opens a headless
// session; both end with the test.
func Start(t testing.TB, o Options) *Session {
	t.Helper()
	if o.Timeout <= 0 {
		o.Timeout = time.Minute
	}
	driver, browser := Find(t, o)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	logs := &testbuf.Buffer{}
	cmd := exec.Command(driver, "--port="+strconv.Itoa(port), "--allowed-ips=127.0.0.1")
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromedriver: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	s := &Session{o: o, base: "http://127.0.0.1:" + strconv.Itoa(port), client: &http.Client{}}
	deadline := time.Now().Add(o.Timeout)
	for {
		var st struct {
			Ready bool `json:"ready"`
		}
		if _, err := s.call("GET", "/status", nil, &st); err == nil && st.Ready {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("chromedriver not ready:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond) // polling chromedriver's /status with a deadline
	}
	caps := map[string]any{"capabilities": map[string]any{"alwaysMatch": map[string]any{
		"browserName": "chrome",
		"goog:chromeOptions": map[string]any{
			"binary": browser,
			"args": []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
				"--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
				"--user-data-dir=" + t.TempDir()},
		},
	}}}
	var sess struct {
		SessionID string `json:"sessionId"`
	}
	if _, err := s.call("POST", "/session", caps, &sess); err != nil || sess.SessionID == "" {
		t.Fatalf("new session: %v\n%s", err, logs.String())
	}
	s.session = "/session/" + sess.SessionID
	t.Cleanup(func() { s.call("DELETE", s.session, nil, nil) })
	return s
}

// call sends one WebDriver command and decodes its "value" into out.
// It returns the WebDriver error code ("" on success).
func (s *Session) call(method, path string, in, out any) (string, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return "", err
		}
		body = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, s.base+path, body)
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var env struct {
		Value json.RawMessage `json:"value"`
	}
	if err := json.Unmarshal(raw, &env); err != nil {
		return "", fmt.Errorf("webdriver %s %s: HTTP %d: %s", method, path, resp.StatusCode, raw)
	}
	if resp.StatusCode != http.StatusOK {
		var e struct {
			Error   string `json:"error"`
			Message string `json:"message"`
		}
		_ = json.Unmarshal(env.Value, &e)
		return e.Error, fmt.Errorf("webdriver %s %s: %s: %.300s", method, path, e.Error, e.Message)
	}
	if out != nil {
		return "", json.Unmarshal(env.Value, out)
	}
	return "", nil
}

// Open navigates to u and waits for the page to load.
func (s *Session) Open(t testing.TB, u string) {
	t.Helper()
	if _, err := s.call("POST", s.session+"/url", map[string]string{"url": u}, nil); err != nil {
		t.Fatal(err)
	}
}

// Click waits (deadline-bounded) for the element matching css to appear,
// for example by the page's own refresh, and clicks it; an element replaced
// between finding and clicking is looked up again.
func (s *Session) Click(t testing.TB, css string) {
	t.Helper()
	deadline := time.Now().Add(s.o.Timeout)
	for {
		var el map[string]string
		code, err := s.call("POST", s.session+"/element", map[string]string{"using": "css selector", "value": css}, &el)
		if err == nil {
			for _, id := range el {
				code, err = s.call("POST", s.session+"/element/"+id+"/click", map[string]any{}, nil)
			}
			if err == nil {
				return
			}
		}
		if code != "no such element" && code != "stale element reference" {
			t.Fatalf("click %s: %v", css, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s on the page: %v\npage:\n%s", css, err, s.Source(t))
		}
		time.Sleep(100 * time.Millisecond) // polling the DOM with a deadline
	}
}

// Source returns the current page's HTML.
func (s *Session) Source(t testing.TB) string {
	t.Helper()
	var src string
	if _, err := s.call("GET", s.session+"/source", nil, &src); err != nil {
		t.Fatal(err)
	}
	return src
}

// URL returns the current page's URL.
func (s *Session) URL(t testing.TB) string {
	t.Helper()
	var u string
	if _, err := s.call("GET", s.session+"/url", nil, &u); err != nil {
		t.Fatal(err)
	}
	return u
}
