package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/sigilcore/sigil-hub/internal/signtest"
)

// The bytes decided on are the bytes that run (docs/security.md): a
// tools/call whose params or arguments a case-insensitive decoder reads
// differently from the policy never reaches the upstream. The upstream here
// is the fake's write_file, a Go tool on mcp-go that binds its arguments to
// a struct, and it logs what it bound: the test checks what a real Go tool
// would have acted on, not only what the hub answered.

// smuggledCalls are the reproductions: each is authorized on /tmp/ok (or on
// no path at all) while a struct-binding tool reads /etc/passwd.
var smuggledCalls = map[string]string{
	"params member folding to arguments (escaped long s)": `{"name":"files__write_file","arguments":{"path":"/tmp/ok"},"argument\u017f":{"path":"/etc/passwd"}}`,
	"params member folding to arguments (raw long s)":     "{\"name\":\"files__write_file\",\"arguments\":{\"path\":\"/tmp/ok\"},\"argument\u017f\":{\"path\":\"/etc/passwd\"}}",
	"params member in other case":                         `{"name":"files__write_file","arguments":{"path":"/tmp/ok"},"Arguments":{"path":"/etc/passwd"}}`,
	"case-variant pair in arguments":                      `{"name":"files__write_file","arguments":{"path":"/tmp/ok","PATH":"/etc/passwd"}}`,
	"lone case variant of a declared property":            `{"name":"files__write_file","arguments":{"PATH":"/etc/passwd"}}`,
	"long s in a declared property":                       `{"name":"files__write_file","arguments":{"path":"/tmp/ok","opt\u017f":{"mode":"/etc/passwd"}}}`,
	"case variant nested in a declared object":            `{"name":"files__write_file","arguments":{"path":"/tmp/ok","opts":{"mode":"safe","MODE":"/etc/passwd"}}}`,
}

// policyDenyingEtc allows the fake's tools but denies any path under /etc.
const policyDenyingEtc = `version: 2.0.0

## mcp
allowed_tools: files.*

## custom
deny_if.metadata.arguments.path starts_with /etc
deny_if.metadata.arguments.opts.mode contains /etc
`

// actedOn returns the paths and modes the fake's write_file bound.
func actedOn(t *testing.T, log upstreamLog) []string {
	t.Helper()
	b, err := os.ReadFile(string(log))
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, line := range strings.Split(string(b), "\n") {
		var e struct {
			Event string `json:"testupstream"`
			Path  string `json:"path"`
			Mode  string `json:"mode"`
		}
		if json.Unmarshal([]byte(line), &e) == nil && e.Event == "acted" {
			out = append(out, e.Path+"|"+e.Mode)
		}
	}
	return out
}

func TestArgumentSmugglingNeverReachesAGoUpstream(t *testing.T) {
	t.Parallel()
	// Sign reads names exactly, as JavaScript does: it approves only a call
	// whose arguments' path is /tmp/ok, and holds the first one it sees.
	signDecide := func(held bool) func(r signtest.Request) signtest.Reply {
		var n atomic.Int32
		return func(r signtest.Request) signtest.Reply {
			md, _ := r.Intent["metadata"].(map[string]any)
			args, _ := md["arguments"].(map[string]any)
			if p, _ := args["path"].(string); strings.HasPrefix(p, "/etc") {
				return signtest.Deny("SIGIL_POLICY_VIOLATION", "no /etc")
			}
			if held && n.Add(1) == 1 {
				return signtest.Pending("hold-smuggle")
			}
			return signtest.Approve()
		}
	}
	deciders := map[string]func(t *testing.T, cfg string) []string{
		"embedded policy": func(t *testing.T, cfg string) []string {
			p := filepath.Join(t.TempDir(), "warranty.md")
			if err := os.WriteFile(p, []byte(policyDenyingEtc), 0o600); err != nil {
				t.Fatal(err)
			}
			return []string{"--config", cfg, "--policy", p}
		},
		"Sigil Sign": func(t *testing.T, cfg string) []string {
			sign := signtest.New(t, signtest.Options{APIKey: testKey, Decide: signDecide(false)})
			return []string{"--config", cfg, "--sign-url", sign.URL, "--key", testKey}
		},
		"Sigil Sign, held and approved by a person": func(t *testing.T, cfg string) []string {
			sign := signtest.New(t, signtest.Options{APIKey: testKey, Decide: signDecide(true)})
			sign.SetHold("hold-smuggle", "APPROVED")
			return []string{"--config", cfg, "--sign-url", sign.URL, "--key", testKey}
		},
	}
	for name, args := range deciders {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			log := newUpstreamLog(t)
			cfg := writeConfig(t, fakeServer(t, "files", log, ""))
			rc := startRaw(t, nil, args(t, cfg)...)
			rc.send(`{"jsonrpc":"2.0","id":"list","method":"tools/list"}`)
			rc.await(`"list"`)
			i := 0
			for what, params := range smuggledCalls {
				i++
				id := strconv.Itoa(i)
				rc.send(`{"jsonrpc":"2.0","id":` + id + `,"method":"tools/call","params":` + params + `}`)
				m := rc.await(id)
				var e struct {
					Code int
					Data struct{ Reason string }
				}
				if m["error"] == nil || json.Unmarshal(m["error"], &e) != nil || e.Code != -32602 {
					t.Errorf("%s: answered %s %s, want -32602 before authorization", what, m["result"], m["error"])
				}
			}
			// The plain call still works, and is the only one acted on.
			rc.send(`{"jsonrpc":"2.0","id":"ok","method":"tools/call","params":{"name":"files__write_file","arguments":{"path":"/tmp/ok","opts":{"mode":"safe"}}}}`)
			if m := rc.await(`"ok"`); m["result"] == nil || !strings.Contains(string(m["result"]), "wrote /tmp/ok") {
				t.Fatalf("the plain call: %s %s", m["result"], m["error"])
			}
			got := actedOn(t, log)
			if len(got) != 1 || got[0] != "/tmp/ok|safe" {
				t.Fatalf("the Go upstream acted on %q; want only the plain call [/tmp/ok|safe]", got)
			}
		})
	}
}
