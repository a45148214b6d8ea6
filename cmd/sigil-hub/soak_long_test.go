//go:build soak && linux

package main

import (
	"os"
	"testing"
	"time"
)

// TestSoak is goal G9 of docs/faults.md at its figures: 50 calls/s, one
// upstream killed every 30 s, ~10% Sign faults, for SIGIL_SOAK_DURATION (a Go
// duration; default 1h). Run it alone, without a test timeout:
//
//	SIGIL_SOAK_DURATION=1h go test -tags soak -run 'TestSoak$' -timeout 0 -v ./cmd/sigil-hub/
func TestSoak(t *testing.T) {
	d := time.Hour
	if v := os.Getenv("SIGIL_SOAK_DURATION"); v != "" {
		var err error
		if d, err = time.ParseDuration(v); err != nil || d < time.Minute {
			t.Fatalf("SIGIL_SOAK_DURATION=%q: want a Go duration of at least 1m", v)
		}
	}
	runSoak(t, soakConfig{Duration: d, Rate: 50, KillEvery: 30 * time.Second, Sample: 5 * time.Second, Upstreams: 4})
}
