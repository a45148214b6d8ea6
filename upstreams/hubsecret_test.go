package upstreams

import (
	"slices"
	"testing"
)

// TestChildEnvDropsHubSecrets: the hub's own secrets never reach a child,
// whether they come from the hub's environment or from the declared env
// (a wrapped server's env is built from the hub's environment).
func TestChildEnvDropsHubSecrets(t *testing.T) {
	got := childEnv(
		[]string{"PATH=/bin", "SIGIL_API_KEY=k"},
		[]string{"A=1", "SIGIL_API_KEY=k", "SIGIL_HUB_TOKEN_ALICE=t", "sigil_hub_token_bob=t", "SIGIL_UPSTREAM_AUTH=a", "SIGIL_HUB_TOKENX=kept"},
	)
	want := []string{"PATH=/bin", "A=1", "SIGIL_HUB_TOKENX=kept"}
	if !slices.Equal(got, want) {
		t.Errorf("childEnv = %q, want %q", got, want)
	}
	for name, want := range map[string]bool{
		"SIGIL_API_KEY": true, "SIGIL_UPSTREAM_AUTH": true, "SIGIL_HUB_TOKEN_X": true, "Sigil_Hub_Token_x": true,
		"SIGIL_SIGN_URL": false, "SIGIL_API_KEYS": false, "API_KEY": false,
	} {
		if HubSecret(name) != want {
			t.Errorf("HubSecret(%q) = %v, want %v", name, !want, want)
		}
	}
}
