package upstreams

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"testing/synctest"
	"time"
)

func TestSubstitute(t *testing.T) {
	r := newRawParams("abc")
	tok, release := r.add([]byte(`{"x":<1>}`))
	defer release()
	key := string(tok[1 : len(tok)-1])
	tests := []struct {
		name, frame, want string
	}{
		{"request", `{"id":1,"params":` + string(tok) + `}`, `{"id":1,"params":{"x":<1>}}`},
		{"notification", `{"method":"m","params":{"` + key + `":true}}`, `{"method":"m","params":{"x":<1>}}`},
		{"no token", `{"id":1,"params":{}}`, `{"id":1,"params":{}}`},
		{"unknown id", `{"params":"sigil-raw-abc-999"}`, `{"params":"sigil-raw-abc-999"}`},
		{"other nonce", `{"params":"sigil-raw-zzz-1"}`, `{"params":"sigil-raw-zzz-1"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := string(r.substitute([]byte(tt.frame))); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
}

func TestChildEnv(t *testing.T) {
	got := childEnv(
		[]string{"PATH=/bin", "HOME=/h", "SECRET=x", "LC_CTYPE=C", "LCX=no", "=weird", "TMPDIR=/t", "PATHX=no"},
		[]string{"A=1", "PATH=/override"},
	)
	want := []string{"PATH=/bin", "HOME=/h", "LC_CTYPE=C", "TMPDIR=/t", "A=1", "PATH=/override"}
	if !slices.Equal(got, want) {
		t.Errorf("childEnv = %q, want %q", got, want)
	}
}

func TestBackoffDelay(t *testing.T) {
	tests := []struct {
		attempt int
		jitter  float64
		want    time.Duration
	}{
		{0, 0, time.Second},
		{1, 0, 2 * time.Second},
		{4, 0, 16 * time.Second},
		{5, 0, 30 * time.Second},
		{100, 0, 30 * time.Second},
		{0, 0.5, 900 * time.Millisecond},
		{5, 0.999, 30*time.Second - time.Duration(0.999*0.2*float64(30*time.Second))},
	}
	for _, tt := range tests {
		got := backoffDelay(tt.attempt, time.Second, 30*time.Second, func() float64 { return tt.jitter })
		if got != tt.want {
			t.Errorf("backoffDelay(%d, jitter %v) = %v, want %v", tt.attempt, tt.jitter, got, tt.want)
		}
	}
}

// TestBackoffSchedule runs the supervisor against a dial that always fails,
// in a synctest bubble: the retry times follow the schedule exactly.
func TestBackoffSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		defer cancel()
		var states []State
		u := New(Spec{Name: "flaky"})
		u.spec.OnChange = func() { states = append(states, u.Snapshot().State) }
		u.tun.jitter = func() float64 { return 0.5 }
		var dials []time.Time
		const attempts = 8
		u.tun.dial = func(context.Context) (*session, error) {
			dials = append(dials, time.Now())
			if len(dials) == attempts {
				cancel()
			}
			return nil, errors.New("dial refused")
		}
		done := make(chan error)
		go func() { done <- u.Run(ctx) }()
		if err := u.WaitSettled(ctx); err != nil {
			t.Fatal(err)
		}
		if s := u.Snapshot(); s.State != Backoff || s.Err == nil || !strings.Contains(s.Err.Error(), "dial refused") {
			t.Errorf("after first failure: state %v err %v", s.State, s.Err)
		}
		if err := <-done; err != nil {
			t.Fatalf("Run: %v", err)
		}
		if len(dials) != attempts {
			t.Fatalf("%d dials, want %d", len(dials), attempts)
		}
		for i := 1; i < attempts; i++ {
			want := backoffDelay(i-1, time.Second, 30*time.Second, u.tun.jitter)
			if got := dials[i].Sub(dials[i-1]); got != want {
				t.Errorf("gap before dial %d = %v, want %v", i, got, want)
			}
		}
		if got := u.Snapshot().State; got != Stopped {
			t.Errorf("final state %v", got)
		}
		if states[0] != Backoff || states[len(states)-1] != Stopped {
			t.Errorf("state sequence %v", states)
		}
	})
}

// TestIsJSONRPCAnswer: of what mcp-go posts, answers to server requests
// (results, null ones included, and errors) are told from requests and
// notifications.
func TestIsJSONRPCAnswer(t *testing.T) {
	for body, want := range map[string]bool{
		`{"jsonrpc":"2.0","id":7,"result":{"a":1}}`:                                     true,
		`{"jsonrpc":"2.0","id":7,"result":null}`:                                        true,
		`{"jsonrpc":"2.0","id":"s","error":{"code":-32603,"message":"x","data":{}}}`:    true,
		`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{}}`:                    false,
		`{"jsonrpc":"2.0","method":"notifications/cancelled","params":{"requestId":1}}`: false,
		`not json`: false,
	} {
		if got := isJSONRPCAnswer([]byte(body)); got != want {
			t.Errorf("%s: %v, want %v", body, got, want)
		}
	}
}
