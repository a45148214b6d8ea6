package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sigilcore/sigil-hub/internal/signtest"
)

// upstreamPid asks an upstream's pid tool for its process id.
func upstreamPid(t *testing.T, h *hubProc, tool string) int {
	t.Helper()
	var p struct {
		Pid int `json:"pid"`
	}
	if err := json.Unmarshal([]byte(resultText(t, h.call(tool, `{}`))), &p); err != nil || p.Pid == 0 {
		t.Fatalf("%s: no pid (%v)", tool, err)
	}
	return p.Pid
}

// rewrite replaces a config file's content the way editors that save
// atomically do: a new file renamed over the old one.
func rewrite(t *testing.T, path, body string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func hasTool(names []string, prefix string) bool {
	return slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, prefix) })
}

// TestHotReload: editing the config file while clients are connected adds,
// removes and restarts exactly the servers that changed; an upstream whose
// only change is what the hub applies itself (a tool filter) keeps its
// process and its call in flight; the client gets one list_changed; a
// removed server's tool is never forwarded to again.
func TestHotReload(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("process checks use Unix signals")
	}
	sign := signtest.New(t, signtest.Options{APIKey: testKey})
	logA, logB, logC, logD := newUpstreamLog(t), newUpstreamLog(t), newUpstreamLog(t), newUpstreamLog(t)
	otherDir := t.TempDir()
	v1 := fakeServer(t, "a", logA, "") + fakeServer(t, "b", logB, "") + fakeServer(t, "c", logC, "")
	path := writeConfig(t, v1)
	h := startHub(t, signEnv(sign), "--config", path)

	names := h.toolNames()
	if !hasTool(names, "a__") || !hasTool(names, "b__") || !hasTool(names, "c__") || !slices.Contains(names, "b__crash") {
		t.Fatalf("tools before reload: %v", names)
	}
	pidA, pidB, pidC := upstreamPid(t, h, "a__pid"), upstreamPid(t, h, "b__pid"), upstreamPid(t, h, "c__pid")
	time.Sleep(300 * time.Millisecond) // let start-up notifications land before counting
	before := h.notifications("notifications/tools/list_changed")

	// A call in flight on b, which the reload must leave alone.
	var wg sync.WaitGroup
	var slowText string
	var slowErr string
	wg.Go(func() {
		resp := h.call("b__slow", `{"ms":2500}`)
		if resp.Error != nil {
			slowErr = resp.Error.Message
			return
		}
		var r struct {
			Content []struct{ Text string } `json:"content"`
		}
		_ = json.Unmarshal(resp.Result, &r)
		if len(r.Content) > 0 {
			slowText = r.Content[0].Text
		}
	})
	eventually(t, "b received the slow call", func() bool { return len(logB.toolCalls(t)) >= 2 })

	// a removed, b filtered (no restart), c moved to another folder
	// (restart), d added.
	v2 := fakeServer(t, "b", logB, `tools = { deny = ["crash"] }`) +
		fakeServer(t, "c", logC, "cwd = "+tomlString(otherDir)) +
		fakeServer(t, "d", logD, "")
	rewrite(t, path, v2)

	eventually(t, "the reloaded tool list", func() bool {
		n := h.toolNames()
		return hasTool(n, "d__") && !hasTool(n, "a__") && !slices.Contains(n, "b__crash")
	})
	wg.Wait()
	if slowErr != "" || slowText == "" {
		t.Fatalf("the call in flight on the untouched server b failed: %q", slowErr)
	}
	if got := upstreamPid(t, h, "b__pid"); got != pidB {
		t.Errorf("b was restarted (pid %d → %d) though only its tool filter changed", pidB, got)
	}
	if got := upstreamPid(t, h, "c__pid"); got == pidC {
		t.Errorf("c kept pid %d though its cwd changed", pidC)
	}
	upstreamPid(t, h, "d__pid")
	eventually(t, "a's process gone", func() bool { return !alive(pidA) })
	eventually(t, "c's old process gone", func() bool { return !alive(pidC) })

	// A removed server is never called again, even by its old name.
	callsA := len(logA.toolCalls(t))
	wantError(t, h.call("a__echo", `{"x":1}`), -32602, "")
	wantError(t, h.call("b__crash", `{}`), -32602, "")
	if got := len(logA.toolCalls(t)); got != callsA {
		t.Fatalf("a received %d tools/call after it was removed", got-callsA)
	}
	time.Sleep(2 * reloadPoll) // a second notification would have come by now
	if got := h.notifications("notifications/tools/list_changed") - before; got != 1 {
		t.Errorf("%d tools/list_changed notifications for one reload, want 1", got)
	}
	log := h.stderr.String()
	for _, want := range []string{"config reloaded", "added d", "removed a", "restarted c", "updated b"} {
		if !strings.Contains(log, want) {
			t.Errorf("hub log lacks %q:\n%s", want, log)
		}
	}
}

// TestReloadRefusals: a config that does not parse, or that changes how
// calls are governed, is refused with a log line that says why, and the hub
// keeps serving the config it has; SIGHUP reloads on demand.
func TestReloadRefusals(t *testing.T) {
	t.Parallel()
	if runtime.GOOS == "windows" {
		t.Skip("SIGHUP")
	}
	sign := signtest.New(t, signtest.Options{APIKey: testKey})
	logA := newUpstreamLog(t)
	v1 := fakeServer(t, "a", logA, "")
	path := writeConfig(t, v1)
	h := startHub(t, signEnv(sign), "--config", path)
	resultText(t, h.call("a__echo", `{"n":1}`))

	rewrite(t, path, v1+"\n[servers.broken\n")
	eventually(t, "the syntax error logged", func() bool { return strings.Contains(h.stderr.String(), "config not reloaded") })
	resultText(t, h.call("a__echo", `{"n":2}`))

	rewrite(t, path, "pin = \"strict\"\n"+v1+fakeServer(t, "b", newUpstreamLog(t), ""))
	eventually(t, "the start-only change refused", func() bool {
		return strings.Contains(h.stderr.String(), "pin changed") && strings.Contains(h.stderr.String(), "restart sigil-hub")
	})
	if hasTool(h.toolNames(), "b__") {
		t.Fatal("a refused reload still added server b")
	}

	rewrite(t, path, "")
	eventually(t, "an empty config refused", func() bool { return strings.Count(h.stderr.String(), "config not reloaded") >= 3 })
	resultText(t, h.call("a__echo", `{"n":3}`))

	rewrite(t, path, v1)
	time.Sleep(3 * reloadPoll) // the poll settles on the restored file
	if err := h.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	eventually(t, "a SIGHUP reload", func() bool {
		return strings.Contains(h.stderr.String(), "trigger=SIGHUP")
	})
	resultText(t, h.call("a__echo", `{"n":4}`))
	if got := len(logA.toolCalls(t)); got != 4 {
		t.Fatalf("upstream saw %d calls, want 4", got)
	}
}

// TestOverlay: a personal overlay in the user's config folder (or
// --overlay) sets the person's own env references, disables a team server,
// adds a private one, and reloads when edited; it cannot change how calls
// are governed; `check --print` names it and masks its values.
func TestOverlay(t *testing.T) {
	t.Parallel()
	sign := signtest.New(t, signtest.Options{APIKey: testKey})
	logA, logB, logP := newUpstreamLog(t), newUpstreamLog(t), newUpstreamLog(t)
	team := fakeServer(t, "a", logA, "") + fakeServer(t, "b", logB, "")
	path := writeConfig(t, team)
	home := t.TempDir()
	overlayPath := filepath.Join(home, "sigil-hub", "local.toml")
	if err := os.MkdirAll(filepath.Dir(overlayPath), 0o700); err != nil {
		t.Fatal(err)
	}
	overlay := `
[servers.a]
disabled = true

[servers.b.env]
MY_SETTING = "${OVERLAY_SECRET_VAR}"
` + fakeServer(t, "p", logP, "")
	if err := os.WriteFile(overlayPath, []byte(overlay), 0o600); err != nil {
		t.Fatal(err)
	}
	env := append(signEnv(sign), "XDG_CONFIG_HOME="+home, "OVERLAY_SECRET_VAR=overlay-canary-value-42")
	h := startHub(t, env, "--config", path)
	names := h.toolNames()
	if hasTool(names, "a__") || !hasTool(names, "b__") || !hasTool(names, "p__") {
		t.Fatalf("tools with the overlay: %v", names)
	}
	if !strings.Contains(resultText(t, h.call("b__env", `{}`)), "MY_SETTING=overlay-canary-value-42") {
		t.Fatal("the overlay's env did not reach b")
	}

	// Editing the overlay reloads: a comes back.
	rewrite(t, overlayPath, strings.Replace(overlay, "disabled = true", "disabled = false", 1))
	eventually(t, "a enabled by the edited overlay", func() bool { return hasTool(h.toolNames(), "a__") })

	// check --print names the overlay and shows references, never values.
	pr := exec.Command(hubBin, "check", "--print", "--config", path)
	pr.Env = baseEnv(env...)
	out, err := pr.CombinedOutput()
	if err != nil {
		t.Fatalf("check --print: %v\n%s", err, out)
	}
	cmdOut := string(out)
	if !strings.Contains(cmdOut, "# personal overlay: "+overlayPath) || !strings.Contains(cmdOut, "${OVERLAY_SECRET_VAR}") ||
		!strings.Contains(cmdOut, "[servers.p]") || strings.Contains(cmdOut, "overlay-canary-value-42") {
		t.Fatalf("check --print:\n%s", cmdOut)
	}

	// An overlay cannot loosen governance: the hub refuses to start.
	bad := filepath.Join(t.TempDir(), "bad.toml")
	if err := os.WriteFile(bad, []byte("sign_url = \"http://127.0.0.1:1\"\n[servers.a]\ntools = { allow = [\"*\"] }\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(hubBin, "--config", path, "--overlay", bad)
	cmd.Env = baseEnv(signEnv(sign)...)
	b, err := cmd.CombinedOutput()
	if err == nil || !strings.Contains(string(b), "overlay: sign_url: is set by the team file only") ||
		!strings.Contains(string(b), "overlay: servers.a.tools: is set by the team file only") {
		t.Fatalf("hub with a governance-changing overlay: err %v\n%s", err, b)
	}
	// --overlay none runs without the default overlay.
	h2 := startHub(t, env, "--config", path, "--overlay", "none")
	if n := h2.toolNames(); hasTool(n, "p__") || !hasTool(n, "a__") {
		t.Fatalf("tools with --overlay none: %v", n)
	}
}

// TestReloadNeverForwardsHeldCalls: a call held for approval when its
// server is restarted or removed by a reload is never forwarded, not to
// the new process and not to any other upstream, even when the hold is
// approved afterwards; the client gets an error.
func TestReloadNeverForwardsHeldCalls(t *testing.T) {
	t.Parallel()
	sign := signtest.New(t, signtest.Options{APIKey: testKey, Decide: func(r signtest.Request) signtest.Reply {
		switch {
		case strings.Contains(string(r.Body), "held-restart"):
			return signtest.Pending("hold-restart")
		case strings.Contains(string(r.Body), "held-remove"):
			return signtest.Pending("hold-remove")
		}
		return signtest.Approve()
	}})
	sign.SetHold("hold-restart", "PENDING")
	sign.SetHold("hold-remove", "PENDING")
	logC, logR, logK := newUpstreamLog(t), newUpstreamLog(t), newUpstreamLog(t)
	otherDir := t.TempDir()
	v1 := fakeServer(t, "c", logC, "") + fakeServer(t, "r", logR, "") + fakeServer(t, "keep", logK, "")
	path := writeConfig(t, v1)
	h := startHub(t, signEnv(sign), "--config", path)
	h.toolNames()

	answers := make(chan string, 2)
	for _, tool := range []string{"c__echo", "r__echo"} {
		arg := `{"x":"held-restart"}`
		if tool == "r__echo" {
			arg = `{"x":"held-remove"}`
		}
		go func() {
			resp := h.call(tool, arg)
			if resp.Error == nil {
				answers <- tool + ": forwarded"
				return
			}
			answers <- tool + ": " + resp.Error.Message
		}()
	}
	eventually(t, "both calls held", func() bool { return len(sign.HoldLookups()) >= 2 })

	// c restarts (new folder), r is removed; keep stays.
	rewrite(t, path, fakeServer(t, "c", logC, "cwd = "+tomlString(otherDir))+fakeServer(t, "keep", logK, ""))
	eventually(t, "the reload", func() bool { return !hasTool(h.toolNames(), "r__") })
	sign.SetHold("hold-restart", "APPROVED")
	sign.SetHold("hold-remove", "APPROVED")
	for range 2 {
		select {
		case a := <-answers:
			if strings.HasSuffix(a, ": forwarded") {
				t.Errorf("%s after its server was reloaded away", a)
			}
		case <-time.After(60 * time.Second):
			t.Fatal("a held call was never answered")
		}
	}
	for name, l := range map[string]upstreamLog{"c": logC, "r": logR, "keep": logK} {
		for _, c := range l.toolCalls(t) {
			if strings.Contains(c, "held-") {
				t.Errorf("upstream %s received a held call after the reload: %s", name, c)
			}
		}
	}
	resultText(t, h.call("c__echo", `{"after":1}`)) // the restarted c serves new calls
}

// TestPolicyReload: with the embedded engine, saving warranty.md changes
// the decisions of the next calls (a tool the new policy blocks is never
// forwarded again); a policy that does not parse is refused and the one in
// force keeps deciding.
func TestPolicyReload(t *testing.T) {
	t.Parallel()
	s := newOfflineSetup(t)
	both := strings.Replace(offlinePolicy, "allowed_tools: files.*", "allowed_tools: files.*, other.*", 1)
	rewrite(t, s.policy, both)
	h := startHub(t, s.env(), "--config", s.config, "--policy", s.policy, "--approvals", "off")
	resultText(t, h.call("files__echo", `{"v":1}`))
	resultText(t, h.call("other__echo", `{"v":2}`))

	// other.* is no longer allowed.
	rewrite(t, s.policy, offlinePolicy)
	eventually(t, "the policy reloaded", func() bool { return strings.Contains(h.stderr.String(), "policy reloaded") })
	before := len(s.log.toolCalls(t))
	wantError(t, h.call("other__echo", `{"v":3}`), -32001, "")
	resultText(t, h.call("files__echo", `{"v":4}`))
	if got := len(s.log.toolCalls(t)) - before; got != 1 {
		t.Fatalf("%d calls forwarded after the policy change, want 1 (files__echo)", got)
	}

	// A broken policy is refused; the reloaded one stays in force.
	rewrite(t, s.policy, "version: 2.0.0\n\n## nonsense_section\nx: y\n")
	eventually(t, "the broken policy refused", func() bool {
		return strings.Contains(h.stderr.String(), "config not reloaded") && strings.Contains(h.stderr.String(), "keeps the policy it has")
	})
	wantError(t, h.call("other__echo", `{"v":5}`), -32001, "")
	resultText(t, h.call("files__echo", `{"v":6}`))
	for _, c := range s.log.toolCalls(t) {
		if strings.Contains(c, `"v":3`) || strings.Contains(c, `"v":5`) {
			t.Fatalf("a call the reloaded policy blocks was forwarded: %s", c)
		}
	}
}
