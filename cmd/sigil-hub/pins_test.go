//go:build linux

package main

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigilcore/sigil-hub/internal/testupstream"
	"github.com/sigilcore/sigil-hub/pins"
)

// TestPinsWarnMode: the default pin mode serves a changed definition, warns
// once per change, sends the new hash in the intent and records it pending.
func TestPinsWarnMode(t *testing.T) {
	t.Parallel()
	runID := faultRunID(t)
	sign := newFaultSign(t, false, nil)
	logs := map[string]upstreamLog{"bad": newUpstreamLog(t)}
	pinFile := filepath.Join(t.TempDir(), "pins.json")
	h := startFault(t, sign, runID, faultOpts{Args: []string{"--config", writeConfig(t, faultServer(t, "bad", logs["bad"], runID)), "--pin-file", pinFile}})
	h.text(h.callWait("bad__victim", `{"path":"/tmp/w1"}`))
	v1 := pinToolHash(t, sign, "/tmp/w1")
	p, err := pins.Load(pinFile)
	if err != nil || p["bad"]["victim"].SHA256 != v1 {
		t.Fatalf("pin file after first sight: %+v %v, want victim pinned to %s", p, err, v1)
	}
	h.text(h.callWait("bad__rug_pull", `{}`))
	eventually(t, "the changed definition listed", func() bool {
		return strings.Contains(string(h.tools()["bad__victim"]), testupstream.RugPullV2)
	})
	h.text(h.callWait("bad__victim", `{"path":"/tmp/w2"}`))
	h.text(h.callWait("bad__victim", `{"path":"/tmp/w3"}`))
	v2 := pinToolHash(t, sign, "/tmp/w2")
	if v2 == v1 || pinToolHash(t, sign, "/tmp/w3") != v2 {
		t.Fatalf("toolHash: v1 %s, v2 %s", v1, v2)
	}
	if n := strings.Count(h.stderr.String(), "tool definition changed"); n != 1 {
		t.Fatalf("%d warnings about the change, want exactly 1:\n%s", n, h.stderr.String())
	}
	if !strings.Contains(h.stderr.String(), v2) {
		t.Fatal("the warning does not name the new hash")
	}
	if p, err = pins.Load(pinFile); err != nil || p["bad"]["victim"].SHA256 != v1 || p["bad"]["victim"].Pending != v2 {
		t.Fatalf("pin file after the change: %+v %v", p["bad"], err)
	}
	assertInvariants(t, h, invariants{Sign: sign, Logs: logs, Audit: -1})
}

// TestPinsCommand drives `sigil-hub pins` in-process: the pin file comes
// from --pin-file, else the config's pin_file, else the user config folder.
func TestPinsCommand(t *testing.T) {
	dir := t.TempDir()
	cfgPin := filepath.Join(dir, "from-config.json")
	cfg := writeConfig(t, "pin_file = "+strconvQuote(cfgPin)+"\n[servers.a]\ncommand = \"a\"\n")
	env := []string{"XDG_CONFIG_HOME=" + filepath.Join(dir, "xdg"), "HOME=" + dir}
	for _, tc := range []struct {
		name    string
		args    []string
		wantOut string
		wantErr bool
	}{
		{"no verb", []string{"pins"}, "", true},
		{"unknown verb", []string{"pins", "frob"}, "", true},
		{"too many args", []string{"pins", "accept", "a", "b", "c"}, "", true},
		{"default folder", []string{"pins", "list"}, filepath.Join(dir, "xdg", "sigil-hub", "pins.json"), false},
		{"config pin_file", []string{"pins", "list", "--config", cfg}, cfgPin, false},
		{"flag wins", []string{"pins", "list", "--config", cfg, "--pin-file", filepath.Join(dir, "f.json")}, filepath.Join(dir, "f.json"), false},
		{"accept nothing", []string{"pins", "accept", "--pin-file", filepath.Join(dir, "f.json")}, "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errOut strings.Builder
			err := runMain(t.Context(), tc.args, env, nil, &out, &errOut)
			if (err != nil) != tc.wantErr || !strings.Contains(out.String(), tc.wantOut) {
				t.Fatalf("err %v, stdout %q, want %q", err, out.String(), tc.wantOut)
			}
		})
	}
}

func strconvQuote(s string) string { return `"` + strings.ReplaceAll(s, `\`, `\\`) + `"` }
