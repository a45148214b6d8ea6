package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// mrtrPolicy holds every call of the fake upstream's roots tool for a
// person: a multi round-trip call is approved once, then retried.
const mrtrPolicy = `version: 2.0.0

## mcp
allowed_tools: files.*
require_approval: files.roots
`

const modernMetaRoots = `"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{"roots":{}}}`

// TestModernClientAnswersALegacyUpstreamsRequest: a 2026-07-28 client calls a
// tool of a 2025 upstream that asks the client roots/list in the middle of
// the call. The hub parks the running call and answers the client
// input_required with that request and a state of its own; the client's
// retry is authorized again (the hold a person approved in the first round
// is not asked twice), its answer reaches the upstream, and the call
// completes with it. The state is single use and cannot be altered.
func TestModernClientAnswersALegacyUpstreamsRequest(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	policy := writePolicy(t, dir, mrtrPolicy)
	home := filepath.Join(dir, "home")
	ulog := newUpstreamLog(t)
	rc := startRaw(t, []string{"XDG_CONFIG_HOME=" + home, "HOME=" + home}, "--policy", policy, "--pending-timeout", "120000",
		"--config", writeConfig(t, fakeServer(t, "files", ulog, "")))

	call := `{"name":"files__roots","arguments":{},` + modernMetaRoots
	rc.send(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":` + call + `}}`)
	// A person approves the held call.
	hs := holdsOf(t, rc, home)
	hs.approveOne(t)

	var first struct {
		ResultType    string `json:"resultType"`
		InputRequests map[string]struct {
			Method string `json:"method"`
		} `json:"inputRequests"`
		RequestState string `json:"requestState"`
	}
	if m := rc.await("1"); json.Unmarshal(m["result"], &first) != nil || first.ResultType != "input_required" ||
		first.InputRequests["input"].Method != "roots/list" || !strings.HasPrefix(first.RequestState, "sigil-hub.1.") {
		t.Fatalf("first round: %s %s", m["result"], m["error"])
	}
	retry := func(id int, state string) map[string]json.RawMessage {
		rc.send(fmt.Sprintf(`{"jsonrpc":"2.0","id":%d,"method":"tools/call","params":%s,"inputResponses":{"input":{"roots":[{"uri":"file:///work/answered","name":"w"}]}},"requestState":%q}}`,
			id, call, state))
		return rc.await(fmt.Sprint(id))
	}
	tampered := first.RequestState[:len(first.RequestState)-2] + "AA"
	if m := retry(2, tampered); !strings.Contains(string(m["error"]), `"code":-32602`) {
		t.Errorf("an altered state: %s %s", m["result"], m["error"])
	}
	m := retry(3, first.RequestState)
	if !strings.Contains(string(m["result"]), "file:///work/answered") {
		t.Fatalf("the retry: %s %s\nstderr:\n%s", m["result"], m["error"], rc.stderr.String())
	}
	if hs.pending(t) {
		t.Errorf("the retry was held again")
	}
	if m := retry(4, first.RequestState); !strings.Contains(string(m["error"]), "used already") {
		t.Errorf("a replayed state: %s %s", m["result"], m["error"])
	}
	if calls := ulog.toolCalls(t); len(calls) != 1 {
		t.Errorf("the upstream received %d tools/call, want the one that ran: %v", len(calls), calls)
	}
}

// hubHolds decides the calls a hub binary holds, with `sigil-hub holds`
// against the approval surface the hub logs.
type hubHolds struct {
	setup    offlineSetup
	base     string
	approved int
}

func holdsOf(t *testing.T, rc *rawClient, home string) *hubHolds {
	t.Helper()
	pattern := regexp.MustCompile(`holds list --sign-url (http://127\.0\.0\.1:[0-9]+)`)
	eventually(t, "the hub's holds URL in its log", func() bool { return pattern.MatchString(rc.stderr.String()) })
	return &hubHolds{setup: offlineSetup{cfgHome: home}, base: pattern.FindStringSubmatch(rc.stderr.String())[1]}
}

var pendingHold = regexp.MustCompile(`(?m)^(hold-[0-9a-f]+)\s+PENDING`)

// approveOne waits for a held call and approves it.
func (h *hubHolds) approveOne(t *testing.T) {
	t.Helper()
	var id string
	eventually(t, "a held call", func() bool {
		out, _ := holdsCLI(t, h.setup, h.base, "list")
		if m := pendingHold.FindStringSubmatch(out); m != nil {
			id = m[1]
		}
		return id != ""
	})
	if out, err := holdsCLI(t, h.setup, h.base, "approve", id); err != nil {
		t.Fatalf("approve %s: %s %v", id, out, err)
	}
	h.approved++
}

// pending reports whether a call is held now.
func (h *hubHolds) pending(t *testing.T) bool {
	out, _ := holdsCLI(t, h.setup, h.base, "list")
	return pendingHold.MatchString(out)
}
