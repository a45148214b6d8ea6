package bench

import (
	"context"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/sigilcore/sigil-hub/internal/procstat"
)

// TestHarnesses drives every harness once (a direct upstream, an in-process
// hub with the embedded policy and with the Sign double, the raw client's
// list paging, the Streamable HTTP client, upstream and hub front, and the
// statistics helpers), so that the benchmarks cannot rot while
// `go test ./...` stays cheap. It checks behaviour, never wall time.
func TestHarnesses(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	direct := startDirect(t)
	if err := direct.callTool(ctx, "echo", echoArgs); err != nil {
		t.Fatalf("direct call: %v", err)
	}
	sd := startSign(t)
	tests := []struct {
		name string
		s    hubSetup
	}{
		{"policy", hubSetup{mode: authPolicy, upstreams: upstreamNames(2, 0, 0)}},
		{"sign", hubSetup{mode: authSign, signURL: sd.URL, upstreams: upstreamNames(2, 0, 0)}},
		{"tools", hubSetup{mode: authPolicy, upstreams: []upstreamSpec{{name: "up0", tools: 3}, {name: "up1", delay: 10 * time.Millisecond, tools: 3}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := sd.calls.Load()
			conn := readyHub(t, tt.s)
			names, err := conn.toolNames(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if tt.name == "tools" {
				if got, want := len(names), 6; got != want {
					t.Fatalf("listed %d tools %v, want %d", got, names, want)
				}
				return
			}
			if err := parallel(4, 8, func(i int) error { return conn.callTool(ctx, hubTool(i%2), echoArgs) }); err != nil {
				t.Fatalf("hub calls: %v", err)
			}
			if tt.s.mode == authSign {
				if got := sd.calls.Load() - before; got != 8 {
					t.Errorf("sign double saw %d authorizations, want 8", got)
				}
			}
		})
	}
}

func TestHTTPHarness(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	direct, url := directHTTP(t)
	if err := direct.callTool(ctx, "echo", echoArgs); err != nil {
		t.Fatalf("direct HTTP call: %v", err)
	}
	sd := startSign(t)
	via := readyHTTPHub(t, hubSetup{mode: authSign, signURL: sd.URL, upstreams: []upstreamSpec{{name: "up0", url: url}}})
	if err := parallel(4, 8, func(int) error { return via.callTool(ctx, hubTool(0), echoArgs) }); err != nil {
		t.Fatalf("hub calls over HTTP: %v", err)
	}
	if got := sd.calls.Load(); got != 8 {
		t.Errorf("sign double saw %d authorizations, want 8: the calls did not go through the hub's policy", got)
	}
	if err := via.callTool(ctx, "up0__nope", echoArgs); err == nil {
		t.Error("a call to an unknown tool passed the client's result check")
	}
	if err := proxiedHTTP(t, url).callTool(ctx, "echo", echoArgs); err != nil {
		t.Fatalf("call through the reverse proxy: %v", err)
	}
}

func TestHelpers(t *testing.T) {
	ds := []time.Duration{5, 1, 4, 2, 3}
	sortDurations(ds)
	tests := []struct {
		name string
		got  time.Duration
		want time.Duration
	}{
		{"p0", percentile(ds, 0), 1},
		{"p50", percentile(ds, 50), 3},
		{"p100", percentile(ds, 100), 5},
		{"mean", mean(ds), 3},
		{"empty", percentile(nil, 50), 0},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %v, want %v", tt.name, tt.got, tt.want)
		}
	}
	cursors := []struct{ line, want string }{
		{`{"jsonrpc":"2.0","id":3,"result":{"tools":[],"nextCursor":"abc=="}}`, "abc=="},
		{`{"jsonrpc":"2.0","id":3,"result":{"tools":[]}}`, ""},
	}
	for _, c := range cursors {
		if got := nextCursor([]byte(c.line)); got != c.want {
			t.Errorf("nextCursor(%s) = %q, want %q", c.line, got, c.want)
		}
	}
	ids := []struct {
		line string
		id   uint64
		ok   bool
	}{
		{`{"jsonrpc":"2.0","id":42,"result":{}}`, 42, true},
		{`{"id":7,"jsonrpc":"2.0","result":{}}`, 7, true},
		{`{"jsonrpc":"2.0","method":"notifications/tools/list_changed"}`, 0, false},
		{`{"jsonrpc":"2.0","id":1,"method":"roots/list"}`, 0, false},
	}
	for _, c := range ids {
		if id, ok := responseID([]byte(c.line)); id != c.id || ok != c.ok {
			t.Errorf("responseID(%s) = %d, %v; want %d, %v", c.line, id, ok, c.id, c.ok)
		}
	}
}

// TestRelayHarness drives the do-nothing relay once: calls reach the fake
// upstream through it, it runs that upstream as its one child (what the
// throughput runs read CPU from), and it exits cleanly, taking the upstream
// with it, when the client closes its stdin.
func TestRelayHarness(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	r := startFakeRelay(t)
	if err := parallel(4, 8, func(int) error { return r.conn.callTool(ctx, "echo", echoArgs) }); err != nil {
		t.Fatalf("calls through the relay: %v", err)
	}
	if err := r.conn.callTool(ctx, "nope", echoArgs); err == nil {
		t.Error("a call to an unknown tool through the relay passed the client's result check")
	}
	var up int
	if runtime.GOOS == "linux" {
		kids := procstat.Children(r.cmd.Process.Pid)
		if len(kids) != 1 {
			t.Fatalf("relay has children %v, want its one upstream", kids)
		}
		up = kids[0]
	}
	r.stop()
	if !r.cmd.ProcessState.Success() {
		t.Errorf("relay exited with %v after the client closed its stdin, want 0", r.cmd.ProcessState)
	}
	if up != 0 {
		if _, err := os.Stat("/proc/" + strconv.Itoa(up)); err == nil {
			t.Errorf("upstream %d still runs after the relay exited", up)
		}
	}
}
