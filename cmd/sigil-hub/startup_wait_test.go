package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sigilcore/sigil-hub/internal/signtest"
)

// oneShotRequests are what a one-shot client (the MCP Inspector CLI) sends
// right after initialize, without listing first.
var oneShotRequests = []struct{ id, line string }{
	{`"read"`, `{"jsonrpc":"2.0","id":"read","method":"resources/read","params":{"uri":"test://listed"}}`},
	{`"prompt"`, `{"jsonrpc":"2.0","id":"prompt","method":"prompts/get","params":{"name":"%PROMPT%"}}`},
	{`"complete"`, `{"jsonrpc":"2.0","id":"complete","method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"%PROMPT%"},"argument":{"name":"a","value":"x"}}}`},
	{`"level"`, `{"jsonrpc":"2.0","id":"level","method":"logging/setLevel","params":{"level":"debug"}}`},
}

// TestEveryRequestKindWaitsForStartup: on a freshly started hub whose
// upstream is still starting, resources/read, prompts/get,
// completion/complete and logging/setLevel wait for it like the lists do
// (bounded by startup_timeout), in hub mode and in single-wrap mode: each is
// answered by the upstream, and the log level reaches it.
func TestEveryRequestKindWaitsForStartup(t *testing.T) {
	sign := signtest.New(t, signtest.Options{APIKey: testKey})
	for _, mode := range []string{"hub", "single-wrap"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			log := filepath.Join(t.TempDir(), "scripted.log")
			var raw *rawClient
			prompt := "slow__greet"
			if mode == "hub" {
				cfg := "startup_timeout = 20000\n" + scriptedServerTOML(t, "slow", log, scriptedDelay+"=1500")
				raw = startRaw(t, signEnv(sign), "--config", writeConfig(t, cfg))
			} else {
				prompt = "greet"
				raw = startRaw(t, append(signEnv(sign), scriptedEnv(log, scriptedDelay+"=1500")...), "--server-id", "slow", "--", selfExe(t))
			}
			for _, r := range oneShotRequests {
				raw.send(strings.ReplaceAll(r.line, "%PROMPT%", prompt))
			}
			for id, m := range raw.awaitAll(len(oneShotRequests)) {
				if m["error"] != nil {
					t.Errorf("%s sent while the upstream starts: error %s, want the upstream's answer", id, m["error"])
				}
			}
			if !fileHas(log, `"method":"logging/setLevel"`) {
				t.Errorf("logging/setLevel sent while the upstream started never reached it")
			}
		})
	}
}

// awaitAll returns the next n responses by raw id, in whatever order they
// come (await drops the responses it is not waiting for).
func (rc *rawClient) awaitAll(n int) map[string]map[string]json.RawMessage {
	rc.t.Helper()
	out := map[string]map[string]json.RawMessage{}
	timeout := time.After(60 * time.Second)
	for len(out) < n {
		select {
		case line, ok := <-rc.lines:
			if !ok {
				rc.t.Fatalf("hub closed stdout with %d of %d answers\nstderr:\n%s", len(out), n, rc.stderr.String())
			}
			var m map[string]json.RawMessage
			if err := json.Unmarshal(line, &m); err != nil {
				rc.t.Fatalf("hub wrote a line that is not JSON: %q", line)
			}
			if m["id"] != nil && m["method"] == nil {
				out[string(m["id"])] = m
			}
		case <-timeout:
			rc.t.Fatalf("%d of %d answers after 60 s\nstderr:\n%s", len(out), n, rc.stderr.String())
		}
	}
	return out
}
