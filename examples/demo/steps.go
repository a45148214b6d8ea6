package main

import (
	"fmt"
	"strings"
)

// verdict is what a client sees for one tools/call.
type verdict string

const (
	// approved: the policy allowed the call and the tool answered (isError false).
	approved verdict = "APPROVED"
	// denied: JSON-RPC error -32001 with error.data.decision "DENIED".
	denied verdict = "DENIED"
	// held: notifications/progress "waiting for approval" arrived for the
	// call's progressToken before its answer.
	held verdict = "HELD"
	// rpcError: any other JSON-RPC error (e.g. -32602 for an unknown tool).
	rpcError verdict = "ERROR"
)

// Hub error codes the demo expects (docs/protocol.md#json-rpc-errors;
// JSON-RPC 2.0).
const (
	codeBlocked       = -32001
	codeInvalidParams = -32602
)

// step is one scripted tools/call and what it must produce.
type step struct {
	tool string
	args string // a raw JSON object
	// progressToken, when set, is sent in _meta so that a held call reports
	// "waiting for approval" progress.
	progressToken string
	// why is the rule that should decide, shown in the transcript.
	why string

	// The expected outcome. A held call is expected to end with want
	// (denied, errorCode SIGIL_PENDING_TIMEOUT today). Once the hub has an
	// approval surface, a step can approve the hold while it waits: add a
	// field such as `approve bool`, call the surface from the progress
	// handler in run (it knows the hold id), and expect approved.
	want      verdict
	wantHeld  bool   // at least one progress notification must arrive
	code      int    // the JSON-RPC error code, for denied and rpcError
	errorCode string // error.data.error_code, for denied
	// check, when set, checks an approved call's result text.
	check func(text string) error
}

// steps is the demo script, in order. It relies only on
// examples/demo/warranty.md and the example upstreams' seed data.
func steps() []step {
	return []step{
		{
			tool: "clock__now", args: `{}`,
			why:  "allowed_tools: clock.*",
			want: approved,
		},
		{
			tool: "notes__read_note", args: `{"name":"todo"}`,
			why:  "allowed_tools: notes.*",
			want: approved,
			check: func(text string) error {
				if !strings.Contains(text, "sigil-hub") {
					return fmt.Errorf("the todo note should mention sigil-hub, got %q", text)
				}
				return nil
			},
		},
		{
			tool: "notes__read_note", args: `{"name":".env"}`,
			why:  "## custom deny_if.metadata.arguments.name contains .env",
			want: denied, code: codeBlocked, errorCode: "SIGIL_POLICY_VIOLATION_CUSTOM_RULE",
		},
		{
			tool: "notes__delete_note", args: `{"name":"welcome"}`,
			why:  "blocked_tools: notes.delete_note",
			want: denied, code: codeBlocked, errorCode: "SIGIL_POLICY_VIOLATION",
		},
		{
			tool: "notes__write_note", args: `{"name":"draft","text":"written by the demo"}`,
			progressToken: "demo-write-draft",
			why:           "require_approval: notes.write_note; nobody approves, so it times out",
			want:          denied, wantHeld: true, code: codeBlocked, errorCode: "SIGIL_PENDING_TIMEOUT",
		},
		{
			tool: "notes__rename_note", args: `{"name":"todo"}`,
			why:  "no such tool: the hub answers before any policy check",
			want: rpcError, code: codeInvalidParams,
		},
		{
			tool: "notes__list_notes", args: `{}`,
			why:  "allowed; shows that the denied delete and the unapproved write never reached the server",
			want: approved,
			check: func(text string) error {
				names := strings.Fields(text)
				has := func(n string) bool {
					for _, x := range names {
						if x == n {
							return true
						}
					}
					return false
				}
				switch {
				case !has("welcome"):
					return fmt.Errorf("note welcome is gone, so the denied delete reached the server: %q", text)
				case has("draft"):
					return fmt.Errorf("note draft exists, so the unapproved write reached the server: %q", text)
				}
				return nil
			},
		},
	}
}

// expectation renders what a step should produce, for the transcript.
func (s step) expectation() string {
	var b strings.Builder
	if s.wantHeld {
		b.WriteString("HELD, then ")
	}
	b.WriteString(string(s.want))
	switch {
	case s.errorCode != "":
		fmt.Fprintf(&b, " %s", s.errorCode)
	case s.code != 0:
		fmt.Fprintf(&b, " %d", s.code)
	}
	return b.String() + "  (" + s.why + ")"
}

// outcome is what a step actually produced.
type outcome struct {
	verdict   verdict
	held      int    // progress notifications received for the step's token
	code      int    // JSON-RPC error code, if any
	errorCode string // error.data.error_code, if any
	message   string // the tool's text, or error.data.message, or error.message
	holdID    string // error.data.hold_id, if any
	toolError bool   // the tool answered with isError true
}

// mismatch returns why o is not what s expects, or "".
func (s step) mismatch(o outcome) string {
	switch {
	case s.wantHeld && o.held == 0:
		return "the call was not held: no approval progress arrived"
	case !s.wantHeld && o.held > 0:
		return "the call was held for approval, which the policy does not ask for"
	case o.verdict != s.want:
		return fmt.Sprintf("want %s, got %s", s.want, o.verdict)
	case o.toolError:
		return "the tool reported an error: " + o.message
	case s.code != 0 && o.code != s.code:
		return fmt.Sprintf("want JSON-RPC error %d, got %d", s.code, o.code)
	case s.errorCode != "" && o.errorCode != s.errorCode:
		return fmt.Sprintf("want error_code %s, got %q", s.errorCode, o.errorCode)
	case s.check != nil && o.verdict == approved:
		if err := s.check(o.message); err != nil {
			return err.Error()
		}
	}
	return ""
}
