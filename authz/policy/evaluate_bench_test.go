package policy

import (
	"strings"
	"testing"
	"time"
)

// BenchmarkEvaluateLarge evaluates an MCP intent with about 2 kB of arguments
// under the bench suite's permissive policy (## mcp only) and under a policy
// with ## custom rules, which need the whole intent.
func BenchmarkEvaluateLarge(b *testing.B) {
	args := `{"owner":"sigilcore","repo":"sigil-hub","title":"Fix the build <now> & then","body":"` +
		strings.Repeat("lorem ipsum é ", 120) + `","labels":["bug","p1"],"n":12.5,"nested":{"b":[1,2,3],"a":{"x":null,"y":true}}}`
	in := []byte(`{"action":"mcp.github.create_issue","task_id":"s1","metadata":{"serverId":"github","toolName":"create_issue","arguments":` + args + `}}`)
	for _, tc := range []struct{ name, policy string }{
		{"permissive", "version: 2.0.0\n\n## mcp\n\nallowed_tools: *\n"},
		{"custom", "version: 2.0.0\n\n## mcp\n\nallowed_tools: *\n\n## custom\n\ndeny_string: DROP TABLE\ndeny_if.intent.metadata.arguments.owner equals evil\n"},
	} {
		p, err := Parse([]byte(tc.policy), Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tc.name, func(b *testing.B) {
			c := &MemoryCounter{}
			now := time.Unix(0, 0)
			b.SetBytes(int64(len(in)))
			b.ReportAllocs()
			for b.Loop() {
				if d := p.Evaluate(in, c, now); d.Status != StatusAllowed {
					b.Fatal(d)
				}
			}
		})
	}
}
