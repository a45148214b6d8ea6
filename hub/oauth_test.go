package hub

import (
	"strings"
	"testing"
)

func TestOAuthFileName(t *testing.T) {
	long := strings.Repeat("x", 70)
	for _, tc := range []struct{ id, want string }{
		{"linear", "linear.json"},
		{"my.server-1_a", "my.server-1_a.json"},
		{"https://mcp.linear.app/mcp", "https___mcp.linear.app_mcp-"},
		{"../etc", "_._etc-"},
		{".hidden", "_hidden-"},
		{long, strings.Repeat("x", 48) + "-"},
	} {
		got := oauthFileName(tc.id)
		if strings.HasSuffix(tc.want, ".json") {
			if got != tc.want {
				t.Errorf("oauthFileName(%q) = %q, want %q", tc.id, got, tc.want)
			}
			continue
		}
		// Unsafe ids get a sanitized prefix plus an 8-hex hash.
		if !strings.HasPrefix(got, tc.want) || len(got) != len(tc.want)+8+len(".json") || strings.ContainsAny(got, `/\:`) {
			t.Errorf("oauthFileName(%q) = %q, want %q<hash>.json", tc.id, got, tc.want)
		}
	}
	if oauthFileName("a/b") == oauthFileName("a:b") {
		t.Error("two serverIds that sanitize alike share a token file")
	}
}
