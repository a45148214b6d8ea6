package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigilcore/sigil-hub/internal/signtest"
)

// TestAuditTrail: one JSON line per tool call attempt, with the SHA-256 of
// the canonical arguments and never their values.
func TestAuditTrail(t *testing.T) {
	sign := signtest.New(t, signtest.Options{APIKey: testKey, Decide: func(r signtest.Request) signtest.Reply {
		if strings.Contains(string(r.Body), "deny-me") {
			return signtest.Deny("SIGIL_POLICY_VIOLATION", "no")
		}
		return signtest.Approve()
	}})
	auditPath := filepath.Join(t.TempDir(), "audit.jsonl")
	h := startHub(t, signEnv(sign), "--audit", auditPath, "--config", writeConfig(t, fakeServer(t, "files", newUpstreamLog(t), "")))
	resultText(t, h.call("files__echo", `{"b":"secret-value-1","a":1}`))
	wantError(t, h.call("files__echo", `{"x":"deny-me secret-value-2"}`), -32001, "SIGIL_POLICY_VIOLATION")
	wantError(t, h.call("files__nope", `{"x":"secret-value-3"}`), -32602, "")
	h.c.Close() // shutdown flushes and fsyncs the log
	eventually(t, "three audit records", func() bool {
		b, _ := os.ReadFile(auditPath)
		return strings.Count(string(b), "\n") >= 3
	})
	b, err := os.ReadFile(auditPath)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "secret-value") {
		t.Fatalf("argument values in the audit log:\n%s", b)
	}
	var recs []map[string]any
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("not JSON: %q", sc.Text())
		}
		recs = append(recs, m)
	}
	if len(recs) != 3 {
		t.Fatalf("%d records, want 3:\n%s", len(recs), b)
	}
	want := []struct{ outcome, decision string }{{"forwarded", "APPROVED"}, {"blocked", "DENIED"}, {"unknown_tool", ""}}
	for i, w := range want {
		if recs[i]["outcome"] != w.outcome || (w.decision != "" && recs[i]["decision"] != w.decision) {
			t.Errorf("record %d = %v, want outcome %s decision %s", i, recs[i], w.outcome, w.decision)
		}
	}
	sum := sha256.Sum256([]byte(`{"a":1,"b":"secret-value-1"}`)) // canonical: keys sorted
	if recs[0]["args_sha256"] != hex.EncodeToString(sum[:]) || recs[0]["server_id"] != "files" || recs[0]["exposed_tool"] != "files__echo" {
		t.Errorf("record 0 = %v", recs[0])
	}
	if recs[1]["error_code"] != "SIGIL_POLICY_VIOLATION" {
		t.Errorf("record 1 = %v", recs[1])
	}
}

// TestAuditFullDiskBlocksCalls: when the audit log cannot be written (file
// size limit, like a full disk) the call is answered with an error and the
// next call is blocked before it can reach Sign or the upstream.
func TestAuditFullDiskBlocksCalls(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("needs sh for ulimit")
	}
	sign := signtest.New(t, signtest.Options{APIKey: testKey})
	log := newUpstreamLog(t)
	auditPath := filepath.Join(t.TempDir(), "audit.jsonl")
	cfg := writeConfig(t, fakeServer(t, "files", log, ""))
	// A file size limit of 1 block (512 bytes): the first record fits, the
	// next ones cannot be written, as on a full disk.
	wrapper := filepath.Join(t.TempDir(), "limited-hub.sh")
	if err := os.WriteFile(wrapper, []byte("#!/bin/sh\nulimit -f 1\nexec "+hubBin+` "$@"`+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	h := startHubCmd(t, wrapper, nil, signEnv(sign), "--audit", auditPath, "--config", cfg)
	resultText(t, h.call("files__echo", `{"n":1}`))
	resp := h.call("files__echo", `{"n":2,"pad":"`+strings.Repeat("p", 600)+`"}`)
	if resp.Error == nil || resp.Error.Code != -32603 || !strings.Contains(resp.Error.Message, "audit log") {
		t.Fatalf("a call whose record cannot be written: %+v, want -32603 naming the audit log", resp.Error)
	}
	before := len(sign.Requests())
	calls := len(log.toolCalls(t))
	resp = h.call("files__echo", `{"n":3}`)
	if resp.Error == nil || !strings.Contains(resp.Error.Message, "audit log") {
		t.Fatalf("a call while the audit log fails: %+v, want it blocked", resp.Error)
	}
	if len(sign.Requests()) != before || len(log.toolCalls(t)) != calls {
		t.Fatal("a call was authorized or forwarded while the audit log was failing")
	}
}
