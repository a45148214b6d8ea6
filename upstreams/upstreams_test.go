package upstreams

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/sigilcore/sigil-hub/internal/testupstream"
)

// TestMain re-execs this test binary as the fake upstream (testupstream).
func TestMain(m *testing.M) {
	if os.Getenv(testupstream.EnvMarker) == "1" {
		testupstream.Main()
		return
	}
	os.Exit(m.Run())
}

const testDeadline = 60 * time.Second

// fakeSpec returns a stdio spec running this binary as the fake upstream.
func fakeSpec(t *testing.T, env ...string) Spec {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Spec{
		Name:        "fake",
		Command:     exe,
		Environ:     os.Environ(),
		Env:         append([]string{testupstream.EnvMarker + "=1"}, env...),
		InitTimeout: testDeadline,
	}
}

// start runs u until the test ends; cleanup cancels and waits for Run.
func start(t *testing.T, spec Spec, tune func(*tuning)) *Upstream {
	t.Helper()
	u := New(spec)
	u.tun.backoffMin = 20 * time.Millisecond
	u.tun.backoffMax = 200 * time.Millisecond
	u.tun.stopGrace = 500 * time.Millisecond
	u.tun.stopTerm = 500 * time.Millisecond
	if tune != nil {
		tune(&u.tun)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- u.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run: %v", err)
			}
		case <-time.After(testDeadline):
			t.Errorf("Run did not return after cancel")
		}
	})
	return u
}

// waitFor polls cond until it holds or the test deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(testDeadline)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func waitState(t *testing.T, u *Upstream, st State) *Snapshot {
	t.Helper()
	var s *Snapshot
	waitFor(t, "state "+st.String(), func() bool {
		s = u.Snapshot()
		return s.State == st
	})
	return s
}

func names(items []Item) []string {
	var out []string
	for _, it := range items {
		out = append(out, it.Name)
	}
	return out
}

func callTool(ctx context.Context, u *Upstream, name, args string) (json.RawMessage, error) {
	return u.Call(ctx, "tools/call", json.RawMessage(`{"name":"`+name+`","arguments":`+args+`}`))
}

// resultText returns content[0].text of a tools/call result.
func resultText(t *testing.T, res json.RawMessage) string {
	t.Helper()
	var r struct {
		Content []struct{ Text string } `json:"content"`
		IsError bool                    `json:"isError"`
	}
	if err := json.Unmarshal(res, &r); err != nil || len(r.Content) == 0 {
		t.Fatalf("bad tools/call result %s: %v", res, err)
	}
	if r.IsError {
		t.Fatalf("tool error: %s", res)
	}
	return r.Content[0].Text
}

func readLog(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	return string(b)
}

func TestStartAndList(t *testing.T) {
	tests := []struct {
		name     string
		pageSize string
	}{
		{"unpaged", ""},
		{"paged", "2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logPath := filepath.Join(t.TempDir(), "log")
			env := []string{testupstream.EnvName + "=fake-" + tt.name, testupstream.EnvTools + "=x1,x2,x3", testupstream.EnvLog + "=" + logPath}
			if tt.pageSize != "" {
				env = append(env, testupstream.EnvPageSize+"="+tt.pageSize)
			}
			u := start(t, fakeSpec(t, env...), nil)
			if err := u.WaitSettled(t.Context()); err != nil {
				t.Fatal(err)
			}
			s := waitState(t, u, Ready)
			wantTools := []string{"add_tool", "barrier", "crash", "echo", "env", "pid", "progress", "remove_tool", "rich", "roots", "slow", "write_file", "x1", "x2", "x3"}
			if got := strings.Join(names(s.Tools), ","); got != strings.Join(wantTools, ",") {
				t.Errorf("tools = %s, want %s", got, strings.Join(wantTools, ","))
			}
			for _, c := range []struct {
				kind string
				got  []Item
				want string
			}{
				{"prompts", s.Prompts, "greet"},
				{"resources", s.Resources, "test://static"},
				{"templates", s.Templates, "test://items/{id}"},
			} {
				if got := strings.Join(names(c.got), ","); got != c.want {
					t.Errorf("%s = %q, want %q", c.kind, got, c.want)
				}
			}
			if s.ProtocolVersion != protocolVersion {
				t.Errorf("protocol version = %q", s.ProtocolVersion)
			}
			if !bytes.Contains(s.ServerInfo, []byte(`"fake-`+tt.name+`"`)) {
				t.Errorf("serverInfo = %s", s.ServerInfo)
			}
			if s.Instructions != "testupstream instructions" {
				t.Errorf("instructions = %q", s.Instructions)
			}
			log := readLog(t, logPath)
			if !strings.Contains(log, `"protocolVersion":"2025-11-25"`) || !strings.Contains(log, `"clientInfo":{"name":"sigil-hub","version":"dev"}`) {
				t.Errorf("initialize not as expected; log:\n%s", log)
			}
			if !strings.Contains(log, `"method":"notifications/initialized"`) {
				t.Errorf("no notifications/initialized in log")
			}
			// The probe (era.go) comes first; the fake upstream is
			// dual-era, so by default it then gets initialize.
			if d, i := strings.Index(log, `"method":"server/discover"`), strings.Index(log, `"method":"initialize"`); d < 0 || d > i {
				t.Errorf("server/discover was not sent before initialize; log:\n%s", log)
			}
			if paged := strings.Contains(log, `"cursor"`); paged != (tt.pageSize != "") {
				t.Errorf("cursor in requests = %v, want %v", paged, tt.pageSize != "")
			}
		})
	}
}

func TestRawSchemaPreserved(t *testing.T) {
	u := start(t, fakeSpec(t), nil)
	s := waitState(t, u, Ready)
	var rich *Item
	for i := range s.Tools {
		if s.Tools[i].Name == "rich" {
			rich = &s.Tools[i]
		}
	}
	if rich == nil {
		t.Fatal("no rich tool")
	}
	for _, want := range []string{
		`"inputSchema":` + testupstream.RichInputSchema,
		`"outputSchema":` + testupstream.RichOutputSchema,
		`"_meta":{"vendor/key":"v"}`,
		`"icons":[{"src":"https://example.invalid/i.png","mimeType":"image/png","sizes":["48x48"]}]`,
	} {
		if !bytes.Contains(rich.Raw, []byte(want)) {
			t.Errorf("rich tool raw lacks %s\nraw: %s", want, rich.Raw)
		}
	}
}

func TestEchoVerbatim(t *testing.T) {
	tests := []struct {
		name string
		args string
		want string // what the child must receive; "" means args
	}{
		{"big ints and escapes", `{"big":123456789012345678901234567890,"neg":-9007199254740993,"f":1.0e+2,"s":"q\"b\\s\/\u00e9\ud83d\ude00<&>\u2028","t":[true,null]}`, ""},
		{"insignificant spaces kept", `{ "a" : 1 , "b":[ 1,2 ] }`, ""},
		{"newlines compacted", "{\n  \"a\": \"x y\",\n  \"b\": 10000000000000000000001\n}", `{"a":"x y","b":10000000000000000000001}`},
	}
	logPath := filepath.Join(t.TempDir(), "log")
	u := start(t, fakeSpec(t, testupstream.EnvLog+"="+logPath), nil)
	waitState(t, u, Ready)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want := tt.want
			if want == "" {
				want = tt.args
			}
			ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
			defer cancel()
			res, err := callTool(ctx, u, "echo", tt.args)
			if err != nil {
				t.Fatal(err)
			}
			if got := resultText(t, res); got != want {
				t.Errorf("child got arguments\n%s\nwant\n%s", got, want)
			}
			if !strings.Contains(readLog(t, logPath), `"params":{"name":"echo","arguments":`+want+`}`) {
				t.Errorf("stdin line lacks the verbatim params")
			}
		})
	}
}

func TestNotifyVerbatim(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "log")
	u := start(t, fakeSpec(t, testupstream.EnvLog+"="+logPath), nil)
	waitState(t, u, Ready)
	params := `{"x":"<&>\u00e9","n":123456789012345678901234567890}`
	if err := u.Notify(t.Context(), "notifications/roots/list_changed", json.RawMessage(params)); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "notification in the child's log", func() bool {
		return strings.Contains(readLog(t, logPath), `"method":"notifications/roots/list_changed","params":`+params)
	})
}

func TestServerToClientRequest(t *testing.T) {
	tests := []struct {
		name      string
		onRequest func(context.Context, string, json.RawMessage) (json.RawMessage, error)
		want      string
	}{
		{"answered", func(ctx context.Context, method string, params json.RawMessage) (json.RawMessage, error) {
			if method != "roots/list" {
				return nil, fmt.Errorf("unexpected %s", method)
			}
			return json.RawMessage(`{"roots":[{"uri":"file:///r","name":"r"}]}`), nil
		}, `[{"uri":"file:///r","name":"r"}]`},
		{"rpc error", func(context.Context, string, json.RawMessage) (json.RawMessage, error) {
			return nil, &RPCError{Code: -32042, Message: "nope"}
		}, "roots/list failed"},
		{"no handler", nil, "roots/list failed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			spec := fakeSpec(t)
			spec.OnRequest = tt.onRequest
			spec.Capabilities = json.RawMessage(`{"roots":{"listChanged":true}}`)
			u := start(t, spec, nil)
			waitState(t, u, Ready)
			res, err := callTool(t.Context(), u, "roots", `{}`)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(res), strings.ReplaceAll(tt.want, `"`, `\"`)) {
				t.Errorf("result %s lacks %s", res, tt.want)
			}
		})
	}
}

func TestConcurrentCalls(t *testing.T) {
	const n = 64
	u := start(t, fakeSpec(t), nil)
	waitState(t, u, Ready)
	ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
	defer cancel()
	// The barrier releases only when all n calls are in flight at once, so
	// any serialization would make the calls time out.
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			res, err := callTool(ctx, u, "barrier", fmt.Sprintf(`{"key":"k","n":%d}`, n))
			if err == nil && !bytes.Contains(res, []byte("released")) {
				err = fmt.Errorf("unexpected result %s", res)
			}
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func TestListChangedOneChangePerBurst(t *testing.T) {
	var changes atomic.Int64
	spec := fakeSpec(t)
	spec.OnChange = func() { changes.Add(1) }
	u := start(t, spec, nil)
	waitState(t, u, Ready)
	before := changes.Load()
	gen := u.Snapshot().Generation
	ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
	defer cancel()
	// One call, five AddTool on the server: a burst of five list_changed.
	if _, err := callTool(ctx, u, "add_tool", `{"name":"added","count":5}`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "added tools in snapshot", func() bool {
		return strings.Contains(strings.Join(names(u.Snapshot().Tools), ","), "added_5")
	})
	if got := changes.Load() - before; got != 1 {
		t.Errorf("OnChange called %d times for one burst, want 1", got)
	}
	if got := u.Snapshot().Generation - gen; got != 1 {
		t.Errorf("generation advanced by %d, want 1", got)
	}
	if _, err := callTool(ctx, u, "remove_tool", `{"name":"added"}`); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "tool removed", func() bool {
		return !strings.Contains(","+strings.Join(names(u.Snapshot().Tools), ",")+",", ",added,")
	})
}

func TestCrashMidCallThenRestart(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "log")
	u := start(t, fakeSpec(t, testupstream.EnvLog+"="+logPath), nil)
	waitState(t, u, Ready)
	ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
	defer cancel()
	slowErr := make(chan error, 1)
	go func() {
		_, err := callTool(ctx, u, "slow", `{"ms":600000}`)
		slowErr <- err
	}()
	waitFor(t, "slow call to reach the child", func() bool {
		return strings.Contains(readLog(t, logPath), `"name":"slow"`)
	})
	if _, err := callTool(ctx, u, "crash", `{}`); !errors.Is(err, ErrLost) {
		t.Fatalf("crash call: err = %v, want ErrLost", err)
	}
	// The in-flight slow call fails at once too, long before its ctx ends.
	if err := <-slowErr; !errors.Is(err, ErrLost) {
		t.Fatalf("in-flight call: err = %v, want ErrLost", err)
	}
	if ctx.Err() != nil {
		t.Fatal("ctx ended: in-flight call was not failed promptly")
	}
	waitFor(t, "restart after crash", func() bool {
		s := u.Snapshot()
		return s.State == Ready && s.Generation > 3
	})
	res, err := callTool(ctx, u, "echo", `{"again":1}`)
	if err != nil {
		t.Fatal(err)
	}
	if got := resultText(t, res); got != `{"again":1}` {
		t.Errorf("echo after restart = %s", got)
	}
}

func TestFailedStart(t *testing.T) {
	u := start(t, fakeSpec(t, testupstream.EnvFailStart+"=boom: missing API token"), nil)
	if err := u.WaitSettled(t.Context()); err != nil {
		t.Fatal(err)
	}
	s := u.Snapshot()
	if s.State != Backoff || s.Err == nil {
		t.Fatalf("state %v err %v, want backoff with error", s.State, s.Err)
	}
	for _, want := range []string{"boom: missing API token", "exit status 1", `"fake"`} {
		if !strings.Contains(s.Err.Error(), want) {
			t.Errorf("Err %q lacks %q", s.Err, want)
		}
	}
	if _, err := u.Call(t.Context(), "tools/list", nil); !errors.Is(err, ErrUnavailable) {
		t.Errorf("call in backoff: err = %v, want ErrUnavailable", err)
	}
}

func TestEnvIsolation(t *testing.T) {
	spec := fakeSpec(t, "DECLARED_VAR=declared")
	spec.Environ = append(os.Environ(), "SIGIL_CANARY=secret-canary", "AWS_SECRET_ACCESS_KEY=leak", "LC_ALL=C", "TZ=UTC")
	u := start(t, spec, nil)
	waitState(t, u, Ready)
	res, err := callTool(t.Context(), u, "env", `{}`)
	if err != nil {
		t.Fatal(err)
	}
	var env []string
	if err := json.Unmarshal([]byte(resultText(t, res)), &env); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		got[k] = v
	}
	for _, k := range []string{"SIGIL_CANARY", "AWS_SECRET_ACCESS_KEY"} {
		if _, ok := got[k]; ok {
			t.Errorf("%s reached the child", k)
		}
	}
	for k, v := range map[string]string{"LC_ALL": "C", "TZ": "UTC", "DECLARED_VAR": "declared"} {
		if got[k] != v {
			t.Errorf("child %s = %q, want %q", k, got[k], v)
		}
	}
	if strings.Contains(resultText(t, res), "secret-canary") {
		t.Error("canary value reached the child")
	}
}

func TestStderrFlood(t *testing.T) {
	u := start(t, fakeSpec(t, testupstream.EnvStderrFlood+"=2000000"), nil)
	waitState(t, u, Ready)
	if _, err := callTool(t.Context(), u, "echo", `{}`); err != nil {
		t.Fatal(err)
	}
}

func TestProgressAndNotifications(t *testing.T) {
	var mu sync.Mutex
	var got []string
	spec := fakeSpec(t)
	spec.OnNotification = func(method string, params json.RawMessage) {
		mu.Lock()
		got = append(got, method+" "+string(params))
		mu.Unlock()
	}
	u := start(t, spec, nil)
	waitState(t, u, Ready)
	res, err := u.Call(t.Context(), "tools/call", json.RawMessage(`{"name":"progress","arguments":{"n":3},"_meta":{"progressToken":"tok-1"}}`))
	if err != nil {
		t.Fatal(err)
	}
	if resultText(t, res) != "progressed 3" {
		t.Fatalf("result %s", res)
	}
	waitFor(t, "3 progress notifications", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(got) >= 3
	})
	mu.Lock()
	defer mu.Unlock()
	for i, g := range got[:3] {
		if !strings.HasPrefix(g, "notifications/progress ") || !strings.Contains(g, `"progressToken":"tok-1"`) || !strings.Contains(g, fmt.Sprintf(`"progress":%d`, i+1)) {
			t.Errorf("notification %d = %s", i, g)
		}
	}
}

func TestRPCError(t *testing.T) {
	u := start(t, fakeSpec(t), nil)
	waitState(t, u, Ready)
	_, err := u.Call(t.Context(), "no/such/method", json.RawMessage(`{}`))
	var rpc *RPCError
	if !errors.As(err, &rpc) || rpc.Code != -32601 {
		t.Fatalf("err = %v, want *RPCError -32601", err)
	}
	if _, err := u.Call(t.Context(), "tools/call", json.RawMessage(`{bad`)); err == nil || errors.As(err, &rpc) {
		t.Errorf("invalid params: err = %v", err)
	}
	res, err := u.Call(t.Context(), "resources/read", json.RawMessage(`{"uri":"test://items/7"}`))
	if err != nil || !bytes.Contains(res, []byte("item test://items/7")) {
		t.Errorf("resources/read = %s, %v", res, err)
	}
}

func TestCancelSendsNotification(t *testing.T) {
	tests := []struct {
		name   string
		remote bool
	}{
		{"stdio", false},
		{"streamable", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logPath := filepath.Join(t.TempDir(), "log")
			spec := fakeSpec(t, testupstream.EnvLog+"="+logPath)
			if tt.remote {
				hs, err := testupstream.StartHTTP(testupstream.Config{LogPath: logPath}, "127.0.0.1:0")
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = hs.Close() })
				spec = Spec{Name: "remote", URL: hs.URL, Transport: "streamable", InitTimeout: testDeadline}
			}
			u := start(t, spec, nil)
			waitState(t, u, Ready)
			ctx, cancel := context.WithCancel(t.Context())
			errc := make(chan error, 1)
			go func() {
				_, err := callTool(ctx, u, "slow", `{"ms":600000}`)
				errc <- err
			}()
			// Cancel once the tool runs: mcp-go drops a cancellation that
			// arrives before it registered the request.
			waitFor(t, "slow call to run in the upstream", func() bool {
				return strings.Contains(readLog(t, logPath), `"testupstream":"started"`)
			})
			cancel()
			if err := <-errc; !errors.Is(err, context.Canceled) {
				t.Fatalf("err = %v, want context.Canceled", err)
			}
			waitFor(t, "notifications/cancelled in the upstream's log", func() bool {
				log := readLog(t, logPath)
				return strings.Contains(log, `"method":"notifications/cancelled"`) && strings.Contains(log, `"testupstream":"cancelled"`)
			})
		})
	}
}

func TestRemote(t *testing.T) {
	hs, err := testupstream.StartHTTP(testupstream.Config{Name: "remote-fake"}, "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hs.Close() })
	tests := []struct {
		name      string
		url       string
		transport string
	}{
		{"streamable", hs.URL, "streamable"},
		{"auto streamable", hs.URL, ""},
		{"sse", hs.SSEURL, "sse"},
		{"auto falls back to sse", hs.SSEURL, "auto"},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var changes atomic.Int64
			u := start(t, Spec{
				Name: "remote", URL: tt.url, Transport: tt.transport, InitTimeout: testDeadline,
				Headers:  map[string]string{"X-Test": "1"},
				OnChange: func() { changes.Add(1) },
			}, nil)
			s := waitState(t, u, Ready)
			if !bytes.Contains(s.ServerInfo, []byte(`"remote-fake"`)) || len(s.Tools) == 0 {
				t.Fatalf("snapshot %+v", s)
			}
			args := `{"big":123456789012345678901234567890,"s":"<&>\u00e9"}`
			ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
			defer cancel()
			res, err := callTool(ctx, u, "echo", args)
			if err != nil {
				t.Fatal(err)
			}
			if got := resultText(t, res); got != args {
				t.Errorf("echo = %s, want %s", got, args)
			}
			// list_changed reaches us (GET stream / SSE stream) and re-lists.
			name := fmt.Sprintf("remote_added_%d", i)
			if _, err := callTool(ctx, u, "add_tool", `{"name":"`+name+`"}`); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "re-list after list_changed", func() bool {
				return strings.Contains(strings.Join(names(u.Snapshot().Tools), ","), name)
			})
		})
	}
}
