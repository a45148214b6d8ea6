package authz

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/sigilcore/sigil-hub/authz/policy"
)

const localTestPolicy = `version: 2.0.0

## mcp
allowed_tools: files.*
blocked_tools: files.rm
require_approval: files.write

## custom
deny_if.metadata.arguments.name contains .env
`

func newTestLocal(t *testing.T, timeout time.Duration) *Local {
	t.Helper()
	p, err := policy.Parse([]byte(localTestPolicy), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return NewLocal(LocalOptions{Policy: p, PendingTimeout: timeout})
}

func TestLocalDecisions(t *testing.T) {
	l := newTestLocal(t, time.Minute)
	tests := []struct {
		tool, args string
		verdict    Verdict
		code       string
	}{
		{"read", `{"name":"a.txt"}`, Approved, ""},
		{"read", `{"name":"prod.env"}`, Denied, "SIGIL_POLICY_VIOLATION_CUSTOM_RULE"},
		{"rm", `{}`, Denied, "SIGIL_POLICY_VIOLATION"},
		{"read", `{"n":1e999}`, Denied, "SIGIL_INPUT_MALFORMED"},
	}
	for _, tc := range tests {
		t.Run(tc.tool+" "+tc.args, func(t *testing.T) {
			d, err := l.Authorize(context.Background(), Request{ServerID: "files", Tool: tc.tool, Arguments: json.RawMessage(tc.args), TaskID: "t1"})
			if err != nil || d.Verdict != tc.verdict || d.ErrorCode != tc.code {
				t.Fatalf("got %+v %v, want %v %q", d, err, tc.verdict, tc.code)
			}
		})
	}
	// Policy decisions are recorded, newest first; a local input denial
	// never reached the policy and is not.
	var got []string
	for _, r := range l.Recent() {
		got = append(got, r.Surface+" "+r.Decision+" "+r.Code+" "+r.Action)
	}
	want := []string{
		"authorize DENIED SIGIL_POLICY_VIOLATION mcp.files.rm",
		"authorize DENIED SIGIL_POLICY_VIOLATION_CUSTOM_RULE mcp.files.read",
		"authorize ALLOWED  mcp.files.read",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("recent:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// heldCall runs Authorize for a held call and returns its hold id and
// where the decision arrives.
func heldCall(t *testing.T, l *Local, ctx context.Context, args string) (string, <-chan Decision) {
	t.Helper()
	held := make(chan string, 1)
	done := make(chan Decision, 1)
	go func() {
		d, err := l.Authorize(ctx, Request{ServerID: "files", Tool: "write", Arguments: json.RawMessage(args), TaskID: "t1",
			OnHold: func(id string, _ time.Duration) {
				select {
				case held <- id:
				default:
				}
			}})
		if err != nil {
			d = Decision{Message: err.Error()}
		}
		done <- d
	}()
	return <-held, done
}

func TestLocalHolds(t *testing.T) {
	tests := []struct {
		name    string
		decide  func(l *Local, id string, cancel context.CancelFunc) // nil: nobody decides
		verdict Verdict
		code    string
		surface string // the last recent record's surface
	}{
		{"approved", func(l *Local, id string, _ context.CancelFunc) { l.Resolve(id, true) }, Approved, "", "hold_resolve"},
		{"denied", func(l *Local, id string, _ context.CancelFunc) { l.Resolve(id, false) }, Denied, "SIGIL_HOLD_DENIED", "hold_resolve"},
		{"timed out", nil, Denied, "SIGIL_PENDING_TIMEOUT", "hold_timeout"},
		{"client gone", func(_ *Local, _ string, cancel context.CancelFunc) { cancel() }, Denied, "", "authorize"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				l := newTestLocal(t, 30*time.Second)
				ctx, cancel := context.WithCancel(context.Background())
				defer cancel()
				id, done := heldCall(t, l, ctx, `{"name":"notes.txt","text":"SECRET"}`)
				hs := l.Holds()
				if len(hs) != 1 || hs[0].ID != id || hs[0].ServerID != "files" || hs[0].Tool != "write" ||
					hs[0].Action != "mcp.files.write" || hs[0].AgentID != DefaultAgentID || hs[0].TaskID != "t1" ||
					hs[0].Rule == "" || string(hs[0].Arguments) != `{"name":"notes.txt","text":"SECRET"}` || hs[0].TxCommit == "" {
					t.Fatalf("holds: %+v", hs)
				}
				if tc.decide != nil {
					tc.decide(l, id, cancel)
				}
				d := <-done // with nobody deciding, synctest's clock runs to the timeout
				if d.Verdict != tc.verdict || d.ErrorCode != tc.code || (tc.name != "client gone" && d.HoldID != id) {
					t.Fatalf("decision %+v", d)
				}
				if n := len(l.Holds()); n != 0 {
					t.Fatalf("%d holds left", n)
				}
				if _, err := l.Resolve(id, true); !errors.Is(err, ErrNoHold) {
					t.Fatalf("deciding an ended hold: %v", err)
				}
				rec := l.Recent()
				if rec[0].Surface != tc.surface || rec[0].HoldID != id && tc.surface != "authorize" {
					t.Fatalf("recent: %+v", rec)
				}
				b, _ := json.Marshal(rec)
				if strings.Contains(string(b), "SECRET") {
					t.Fatalf("recent decisions carry argument values: %s", b)
				}
			})
		})
	}
}

func TestLocalResolveRacesTimeout(t *testing.T) {
	// A person deciding at the very moment the hold times out either wins
	// (and the call gets that decision) or is told the hold is gone: never
	// "approved" for a call that was denied.
	synctest.Test(t, func(t *testing.T) {
		l := newTestLocal(t, time.Second)
		id, done := heldCall(t, l, context.Background(), `{}`)
		time.Sleep(time.Second) // fake time: the timeout fires now
		_, err := l.Resolve(id, true)
		d := <-done
		switch {
		case err == nil && d.Verdict != Approved:
			t.Fatalf("resolve succeeded but the call got %+v", d)
		case err != nil && (!errors.Is(err, ErrNoHold) || d.ErrorCode != "SIGIL_PENDING_TIMEOUT"):
			t.Fatalf("resolve %v, call %+v", err, d)
		}
	})
}

func TestLocalRecentIsBounded(t *testing.T) {
	l := newTestLocal(t, time.Minute)
	for range localRecentMax + 10 {
		if _, err := l.Authorize(context.Background(), Request{ServerID: "files", Tool: "read", TaskID: "t1"}); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(l.Recent()); n != localRecentMax {
		t.Fatalf("%d recent records, want %d", n, localRecentMax)
	}
}

// The signer's side of the store: Submit answers PENDING at once, a
// person's approval is used by one re-submission of the same intent and
// agent, and ended holds are still reported for Retain, then forgotten.
func TestLocalSubmitHolds(t *testing.T) {
	p, err := policy.Parse([]byte(localTestPolicy), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Unix(1_800_000_000, 0)
	l := NewLocal(LocalOptions{Policy: p, PendingTimeout: time.Hour, Retain: time.Hour, Now: func() time.Time { return now }})
	in, err := NewIntent(Request{ServerID: "files", Tool: "write", Arguments: json.RawMessage(`{"name":"a"}`), TaskID: "t1"})
	if err != nil {
		t.Fatal(err)
	}
	submit := func(agent, want string) Record {
		t.Helper()
		rec, err := l.Submit(in.JSON, in.TxCommit, agent)
		if err != nil || rec.Decision != want {
			t.Fatalf("Submit by %s = %+v %v, want %s", agent, rec, err, want)
		}
		return rec
	}
	if rec, _ := l.Submit(in.JSON, strings.Repeat("0", 64), "a1"); rec.Code != "SIGIL_VALIDATION_ERROR" {
		t.Fatalf("wrong txCommit: %+v", rec)
	}
	id := submit("a1", policy.StatusPending).HoldID
	if h, ok := l.Hold(id); !ok || h.State != HoldPending || h.TaskID != "t1" || string(h.Arguments) != `{"name":"a"}` {
		t.Fatalf("hold %+v %v", h, ok)
	}
	if _, err := l.Resolve(id, true); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Resolve(id, false); !errors.Is(err, ErrHoldDecided) {
		t.Fatalf("deciding twice: %v", err)
	}
	submit("a2", policy.StatusPending) // another agent's identical intent
	if rec := submit("a1", policy.StatusAllowed); rec.HoldID != id {
		t.Fatalf("re-submission used %+v", rec)
	}
	if h, _ := l.Hold(id); h.State != HoldApproved || !h.Consumed {
		t.Fatalf("used approval: %+v", h)
	}
	last := submit("a1", policy.StatusPending).HoldID // the approval was used once
	now = now.Add(time.Hour)
	if h, ok := l.Hold(last); !ok || h.State != HoldExpired {
		t.Fatalf("after an hour: %+v %v", h, ok)
	}
	if _, err := l.Resolve(last, true); !errors.Is(err, ErrHoldDecided) {
		t.Fatalf("deciding an expired hold: %v", err)
	}
	now = now.Add(time.Hour)
	if _, err := l.Resolve(last, true); !errors.Is(err, ErrNoHold) {
		t.Fatalf("deciding a forgotten hold: %v", err)
	}
	if n := len(l.Holds()); n != 0 {
		t.Fatalf("%d holds kept after Retain", n)
	}
}

// TestLocalContinuesAnApprovedHold: a call retried after the upstream asked
// for input (Request.Continues naming the hold a person approved for it) is
// approved without a new hold, but only for the same intent and agent; a
// changed argument, another agent or an unknown hold is held as usual.
func TestLocalContinuesAnApprovedHold(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		l := newTestLocal(t, 30*time.Second)
		args := `{"name":"notes.txt","text":"hi"}`
		id, done := heldCall(t, l, context.Background(), args)
		if _, err := l.Resolve(id, true); err != nil {
			t.Fatal(err)
		}
		if d := <-done; d.Verdict != Approved || d.HoldID != id {
			t.Fatalf("first round: %+v", d)
		}
		d, err := l.Authorize(context.Background(), Request{ServerID: "files", Tool: "write", Arguments: json.RawMessage(args), TaskID: "t1", Continues: id})
		if err != nil || d.Verdict != Approved || d.HoldID != id || len(l.Holds()) != 0 {
			t.Fatalf("the retry: %+v %v, holds %+v", d, err, l.Holds())
		}
		for name, req := range map[string]Request{
			"other arguments": {ServerID: "files", Tool: "write", Arguments: json.RawMessage(`{"name":"notes.txt","text":"HI"}`), TaskID: "t1", Continues: id},
			"other agent":     {ServerID: "files", Tool: "write", Arguments: json.RawMessage(args), TaskID: "t1", AgentID: "someone", Continues: id},
			"unknown hold":    {ServerID: "files", Tool: "write", Arguments: json.RawMessage(args), TaskID: "t1", Continues: "hold-nope"},
		} {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			d, err := l.Authorize(ctx, req)
			cancel()
			if err == nil || d.Verdict == Approved {
				t.Errorf("%s: %+v %v, want held (until the context ended)", name, d, err)
			}
		}
		time.Sleep(31 * time.Second) // the approval ends with its hold's time
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if d, err := l.Authorize(ctx, Request{ServerID: "files", Tool: "write", Arguments: json.RawMessage(args), TaskID: "t1", Continues: id}); err == nil || d.Verdict == Approved {
			t.Errorf("after the hold's time: %+v %v, want held", d, err)
		}
	})
}
