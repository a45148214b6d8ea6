package signer

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/sigilcore/sigil-hub/authz"
)

// A headless-Chromium test of the approval page, driven over plain HTTP
// WebDriver (no dependency). CI installs the browser with
//
//	apt-get install -y chromium chromium-driver
//
// and sets SIGIL_HUB_REQUIRE_BROWSER=1 so that a missing browser fails
// instead of skipping.

// findBrowser returns the chromedriver and Chromium binaries, or skips (or
// fails, when SIGIL_HUB_REQUIRE_BROWSER=1) when either is absent.
func findBrowser(t *testing.T) (driver, browser string) {
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
		if os.Getenv("SIGIL_HUB_REQUIRE_BROWSER") == "1" {
			t.Fatal(msg + "; SIGIL_HUB_REQUIRE_BROWSER=1 makes this a failure")
		}
		t.Skip(msg)
	}
	return driver, browser
}

// webDriver is a minimal W3C WebDriver client for one session.
type webDriver struct {
	t       *testing.T
	base    string // http://127.0.0.1:port
	session string
}

// call sends one WebDriver command and decodes its "value" into out.
// It returns the WebDriver error code ("" on success).
func (wd *webDriver) call(method, path string, in, out any) (string, error) {
	var body io.Reader
	if in != nil {
		b, _ := json.Marshal(in)
		body = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, wd.base+path, body)
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
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
	if resp.StatusCode != 200 {
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

// startWebDriver runs chromedriver on a free loopback port and opens a
// headless session; both end with the test.
func startWebDriver(t *testing.T) *webDriver {
	driver, browser := findBrowser(t)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	var logs bytes.Buffer
	cmd := exec.Command(driver, "--port="+strconv.Itoa(port), "--allowed-ips=127.0.0.1")
	cmd.Stdout, cmd.Stderr = &logs, &logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start chromedriver: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	wd := &webDriver{t: t, base: "http://127.0.0.1:" + strconv.Itoa(port)}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var st struct {
			Ready bool `json:"ready"`
		}
		if _, err := wd.call("GET", "/status", nil, &st); err == nil && st.Ready {
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
	if _, err := wd.call("POST", "/session", caps, &sess); err != nil || sess.SessionID == "" {
		t.Fatalf("new session: %v\n%s", err, logs.String())
	}
	wd.session = "/session/" + sess.SessionID
	t.Cleanup(func() { wd.call("DELETE", wd.session, nil, nil) })
	return wd
}

func (wd *webDriver) open(u string) {
	if _, err := wd.call("POST", wd.session+"/url", map[string]string{"url": u}, nil); err != nil {
		wd.t.Fatal(err)
	}
}

// click waits (deadline-bounded) for the element matching css to appear,
// via the page's own 2 s refresh, and clicks it; a refresh replacing the
// element between finding and clicking is retried.
func (wd *webDriver) click(t *testing.T, css string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		var el map[string]string
		code, err := wd.call("POST", wd.session+"/element", map[string]string{"using": "css selector", "value": css}, &el)
		if err == nil {
			for _, id := range el {
				code, err = wd.call("POST", wd.session+"/element/"+id+"/click", map[string]any{}, nil)
			}
			if err == nil {
				return
			}
		}
		if code != "no such element" && code != "stale element reference" {
			t.Fatalf("click %s: %v", css, err)
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %s on the page: %v", css, err)
		}
		time.Sleep(100 * time.Millisecond) // polling the DOM with a deadline
	}
}

func (wd *webDriver) source() string {
	var s string
	if _, err := wd.call("GET", wd.session+"/source", nil, &s); err != nil {
		wd.t.Fatal(err)
	}
	return s
}

func TestApprovalPageInBrowser(t *testing.T) {
	wd := startWebDriver(t)
	srv := newTestServer(t, nil)
	ts := serve(t, srv.Handler())

	// The page is open before anything is held: holds appear by its refresh.
	wd.open(ts.URL + "/?token=" + url.QueryEscape(srv.AdminToken()))
	if src := wd.source(); !bytes.Contains([]byte(src), []byte("No calls are waiting")) {
		t.Fatalf("page after login:\n%s", src)
	}

	for _, tc := range []struct {
		button  string
		verdict authz.Verdict
		code    string
	}{
		{"approve", authz.Approved, ""},
		{"deny", authz.Denied, "SIGIL_HOLD_DENIED"},
	} {
		t.Run(tc.button, func(t *testing.T) {
			done, held := startCall(t, ts.URL, "slack", "send_message")
			id := wait(t, held, "the hold")
			wd.click(t, fmt.Sprintf(`button.%s[data-hold="%s"]`, tc.button, id))
			r := wait(t, done, "the waiting call")
			if r.err != nil || r.d.Verdict != tc.verdict || r.d.ErrorCode != tc.code || r.d.HoldID != id {
				t.Fatalf("decision %+v %v", r.d, r.err)
			}
			if tc.verdict == authz.Approved && r.d.Attestation == "" {
				t.Fatal("approval without a verified attestation")
			}
		})
	}
}
