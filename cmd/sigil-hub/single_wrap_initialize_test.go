package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigilcore/sigil-hub/internal/signtest"
)

// TestSingleWrapInitializeCarriesUpstreamInstructions: in single-wrap mode
// a client that initializes while the upstream is still starting gets the
// upstream's own instructions (initialize waits for the upstream, bounded
// by the start-up timeout).
func TestSingleWrapInitializeCarriesUpstreamInstructions(t *testing.T) {
	sign := signtest.New(t, signtest.Options{APIKey: testKey})
	log := filepath.Join(t.TempDir(), "scripted.log")
	const ins = "use the hello tool first"
	env := append(signEnv(sign), scriptedEnv(log, scriptedDelay+"=1500", scriptedInstructions+"="+ins)...)
	rc := startRawUninitialized(t, env, "--server-id", "slow", "--", selfExe(t))
	rc.send(`{"jsonrpc":"2.0","id":"init","method":"initialize","params":{"protocolVersion":"2025-11-25","capabilities":{},"clientInfo":{"name":"one-shot","version":"1"}}}`)
	m := rc.await(`"init"`)
	var res struct {
		Instructions string `json:"instructions"`
	}
	if err := json.Unmarshal(m["result"], &res); err != nil {
		t.Fatalf("initialize: %s %s", m["result"], m["error"])
	}
	if res.Instructions != ins {
		t.Fatalf("initialize answered while the upstream started: instructions %q, want the upstream's %q", res.Instructions, ins)
	}
}

// TestSingleWrapUnlistedSubscriptionGetsUpdates: in single-wrap mode a
// subscription to a URI the upstream does not list is forwarded (the one
// upstream serves it), and so are that upstream's
// notifications/resources/updated for it, even one sent right behind the
// subscription's answer.
func TestSingleWrapUnlistedSubscriptionGetsUpdates(t *testing.T) {
	sign := signtest.New(t, signtest.Options{APIKey: testKey})
	log := filepath.Join(t.TempDir(), "scripted.log")
	rc := startRaw(t, append(signEnv(sign), scriptedEnv(log)...), "--server-id", "res", "--", selfExe(t))
	rc.send(`{"jsonrpc":"2.0","id":"list","method":"resources/list"}`)
	rc.await(`"list"`) // the upstream is ready
	for _, uri := range []string{"test://listed", "test://unlisted/1"} {
		rc.send(`{"jsonrpc":"2.0","id":"sub","method":"resources/subscribe","params":{"uri":"` + uri + `"}}`)
		timeout := time.After(15 * time.Second)
		answered, updated := false, false
		for !answered || !updated {
			select {
			case line, ok := <-rc.lines:
				if !ok {
					t.Fatal("hub closed stdout")
				}
				s := string(line)
				if strings.Contains(s, `"id":"sub"`) {
					if strings.Contains(s, `"error"`) {
						t.Fatalf("resources/subscribe %s: %s", uri, s)
					}
					answered = true
				}
				if strings.Contains(s, `"notifications/resources/updated"`) && strings.Contains(s, `"uri":"`+uri+`"`) {
					updated = true
				}
			case <-timeout:
				t.Fatalf("subscribed to %s (answered %v): the upstream's notifications/resources/updated for it never reached the client", uri, answered)
			}
		}
	}
}
