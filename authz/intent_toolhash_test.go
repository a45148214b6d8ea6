package authz_test

import (
	"encoding/json"
	"testing"

	"github.com/sigilcore/sigil-hub/authz"
)

// TestNewIntentToolHash pins metadata.toolHash (tool pinning): emitted after
// arguments only when set, and part of the committed bytes.
func TestNewIntentToolHash(t *testing.T) {
	const hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
	for _, tc := range []struct {
		name string
		hash string
		want string
	}{
		{"absent", "", `{"action":"mcp.github.create_issue","task_id":"task-1","metadata":{"serverId":"github","toolName":"create_issue","arguments":{"title":"x"}}}`},
		{"present", hash, `{"action":"mcp.github.create_issue","task_id":"task-1","metadata":{"serverId":"github","toolName":"create_issue","arguments":{"title":"x"},"toolHash":"` + hash + `"}}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, err := authz.NewIntent(authz.Request{ServerID: "github", Tool: "create_issue", TaskID: "task-1",
				Arguments: json.RawMessage(`{"title":"x"}`), ToolHash: tc.hash})
			if err != nil {
				t.Fatal(err)
			}
			if string(in.JSON) != tc.want {
				t.Fatalf("intent\n got %s\nwant %s", in.JSON, tc.want)
			}
			commit, err := authz.TxCommit([]byte(tc.want))
			if err != nil || commit != in.TxCommit {
				t.Fatalf("txCommit %s, want %s (%v)", in.TxCommit, commit, err)
			}
		})
	}
	if _, err := authz.NewIntent(authz.Request{ServerID: "s", Tool: "t", TaskID: "x", ToolHash: "\xff"}); err == nil {
		t.Fatal("invalid utf-8 tool hash accepted")
	}
}
