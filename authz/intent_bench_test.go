package authz_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/sigilcore/sigil-hub/authz"
)

// BenchmarkNewIntent measures building the intent and its txCommit for one
// tool call, the authorization hot path. "small" has the arguments the bench
// suite sends; "2KB" a realistic larger call; "extract" maps typed fields
// (docs/protocol.md#extractors).
func BenchmarkNewIntent(b *testing.B) {
	big := `{"owner":"sigilcore","repo":"sigil-hub","title":"Fix the build <now> & then","body":"` +
		strings.Repeat("lorem ipsum é ", 120) + `","labels":["bug","p1"],"n":12.5,"nested":{"b":[1,2,3],"a":{"x":null,"y":true}}}`
	for _, tc := range []struct {
		name string
		req  authz.Request
	}{
		{"small", authz.Request{ServerID: "up0", Tool: "echo", TaskID: "task-1",
			Arguments: json.RawMessage(`{"path":"/tmp/notes/today.md","text":"hello from the benchmark"}`)}},
		{"2KB", authz.Request{ServerID: "github", Tool: "create_issue", TaskID: "task-1", Arguments: json.RawMessage(big)}},
		{"extract", authz.Request{ServerID: "fetch", Tool: "get", TaskID: "task-1",
			Arguments: json.RawMessage(`{"req":{"url":"https://example.com/a?b=c","method":"POST"},"body":"hello"}`),
			Extract:   &authz.Extractor{Fields: map[string]string{"url": "req.url", "method": "req.method"}}}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(tc.req.Arguments)))
			b.ReportAllocs()
			for b.Loop() {
				if _, err := authz.NewIntent(tc.req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
