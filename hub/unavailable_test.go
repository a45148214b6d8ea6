package hub

import (
	"strings"
	"testing"

	"github.com/sigilcore/sigil-hub/upstreams"
)

// TestStartingUpstreamIsNotCalledRestarted: a request that finds its
// upstream in its first start is told the server is still starting, not
// that it is being restarted.
func TestStartingUpstreamIsNotCalledRestarted(t *testing.T) {
	u := &upstream{name: "slow", conn: upstreams.New(upstreams.Spec{Name: "slow", Command: "unused"})}
	e := upstreamUnavailable(u, "test://doc", nil)
	if !strings.Contains(e.Message, "still starting") || strings.Contains(e.Message, "restart") {
		t.Fatalf("message %q: want it to say the upstream is still starting, not that it is restarted", e.Message)
	}
}
