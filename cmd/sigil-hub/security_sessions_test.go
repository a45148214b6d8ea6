package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/sigilcore/sigil-hub/internal/signtest"
	"github.com/sigilcore/sigil-hub/internal/testupstream"
)

// Sessions are isolated from upstreams too (docs/security.md): an upstream
// cannot speak into a call that went to another upstream (progress tokens
// are unguessable and answered only from the call's own upstream), and its
// log messages reach only the sessions that use it.

// evilServer is a [servers.evil] table running the fake with its
// misbehaving tools (inject).
func evilServer(t *testing.T) string {
	return fmt.Sprintf(`
[servers.evil]
command = %q
env = { %s = "1", %s = "1", %s = "evil" }
`, selfExe(t), testupstream.EnvMarker, testupstream.EnvMisbehave, testupstream.EnvName)
}

func TestUpstreamCannotInjectProgressIntoAnotherCall(t *testing.T) {
	t.Parallel()
	sign := signtest.New(t, signtest.Options{APIKey: testKey})
	cfg := writeConfig(t, fakeServer(t, "files", newUpstreamLog(t), "")+evilServer(t))
	rc := startRaw(t, signEnv(sign), "--config", cfg)
	rc.send(`{"jsonrpc":"2.0","id":"list","method":"tools/list"}`)
	rc.await(`"list"`)
	// A slow call to files, with a progress token, in flight while evil
	// sends progress for every token the hub could have handed out.
	rc.send(`{"jsonrpc":"2.0","id":"slow","method":"tools/call","params":{"name":"files__slow","arguments":{"ms":1500},"_meta":{"progressToken":"mine"}}}`)
	time.Sleep(300 * time.Millisecond) // the slow call is forwarded
	rc.send(`{"jsonrpc":"2.0","id":"inject","method":"tools/call","params":{"name":"evil__inject","arguments":{"n":200}}}`)
	var seen []string
	deadline := time.After(60 * time.Second)
	for done := 0; done < 2; {
		select {
		case line := <-rc.lines:
			s := string(line)
			switch {
			case strings.Contains(s, `"id":"slow"`), strings.Contains(s, `"id":"inject"`):
				done++
			case strings.Contains(s, "notifications/progress"):
				seen = append(seen, s)
			}
		case <-deadline:
			t.Fatal("no answers")
		}
	}
	time.Sleep(200 * time.Millisecond)
	for len(rc.lines) > 0 {
		if s := string(<-rc.lines); strings.Contains(s, "notifications/progress") {
			seen = append(seen, s)
		}
	}
	for _, s := range seen {
		if strings.Contains(s, "injected") {
			t.Fatalf("another upstream's progress reached the call: %s", s)
		}
	}
}

func TestLogMessagesReachOnlySessionsUsingTheUpstream(t *testing.T) {
	t.Parallel()
	sign := signtest.New(t, signtest.Options{APIKey: testKey})
	cfg := writeConfig(t, fakeServer(t, "files", newUpstreamLog(t), "")+evilServer(t))
	url, _ := startHTTPHub(t, signEnv(sign), "--config", cfg)

	// rawSession is one HTTP session with its GET stream open: it collects
	// the data of every notifications/message on any of its streams.
	type rawSession struct {
		sid  string
		mu   sync.Mutex
		logs []string
	}
	do := func(method, body, sid string) *http.Response {
		req, _ := http.NewRequest(method, url, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		if sid != "" {
			req.Header.Set("Mcp-Session-Id", sid)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", method, err)
		}
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}
	collect := func(rs *rawSession, r *http.Response) {
		sc := bufio.NewScanner(r.Body)
		for sc.Scan() {
			line := strings.TrimPrefix(sc.Text(), "data: ")
			var m struct {
				Method string
				Params struct{ Data any }
			}
			if json.Unmarshal([]byte(line), &m) == nil && m.Method == "notifications/message" {
				rs.mu.Lock()
				rs.logs = append(rs.logs, fmt.Sprint(m.Params.Data))
				rs.mu.Unlock()
			}
		}
	}
	connect := func(name string) *rawSession {
		init := do(http.MethodPost, `{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"`+name+`","version":"1"}}}`, "")
		rs := &rawSession{sid: init.Header.Get("Mcp-Session-Id")}
		io.Copy(io.Discard, init.Body)
		do(http.MethodPost, `{"jsonrpc":"2.0","method":"notifications/initialized"}`, rs.sid)
		get := do(http.MethodGet, "", rs.sid)
		if get.StatusCode != http.StatusOK {
			t.Fatalf("GET stream: %s", get.Status)
		}
		go collect(rs, get)
		return rs
	}
	call := func(rs *rawSession, id int, name string) {
		r := do(http.MethodPost, fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":{"name":%q,"arguments":{"n":1}}}`, id, name), rs.sid)
		collect(rs, r)
	}
	logs := func(rs *rawSession) []string {
		rs.mu.Lock()
		defer rs.mu.Unlock()
		return append([]string(nil), rs.logs...)
	}
	alice, bob := connect("alice"), connect("bob")
	call(alice, 2, "files__echo") // alice uses files only
	call(bob, 2, "evil__inject")  // bob uses evil, which logs
	eventually(t, "bob's log message from evil", func() bool { return len(logs(bob)) > 0 })
	time.Sleep(300 * time.Millisecond)
	if got := logs(alice); len(got) != 0 {
		t.Fatalf("a session that never used evil got its log messages: %q", got)
	}
}

// TestOneTokenCannotFillTheSessionCap: one token holder opening sessions
// without end is stopped at the per-token cap (429), and another holder
// still gets a session.
func TestOneTokenCannotFillTheSessionCap(t *testing.T) {
	t.Parallel()
	const aliceTok, bobTok = "alice-token-0123456789abcdef0123456789", "bob-token-0123456789abcdef0123456789abc"
	sign := signtest.New(t, signtest.Options{APIKey: testKey})
	cfg := writeConfig(t, fakeServer(t, "files", newUpstreamLog(t), ""))
	url, _ := startHTTPHub(t, append(signEnv(sign), "SIGIL_HUB_TOKEN_ALICE="+aliceTok, "SIGIL_HUB_TOKEN_BOB="+bobTok), "--config", cfg)
	initialize := func(tok string) int {
		req, _ := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"x","version":"1"}}}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Accept", "application/json, text/event-stream")
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	// The total cap is 1,000 sessions: alice tries to take them all.
	refused := 0
	for range 1000 {
		if code := initialize(aliceTok); code != http.StatusOK {
			if code != http.StatusTooManyRequests {
				t.Fatalf("alice's session refused with %d, want 429", code)
			}
			refused++
		}
	}
	if refused != 900 {
		t.Errorf("alice was refused %d of 1000 sessions, want 900 (100 per token)", refused)
	}
	if code := initialize(bobTok); code != http.StatusOK {
		t.Fatalf("bob's first session: HTTP %d, want 200: one token holder locked out the others", code)
	}
}
