package policy

import (
	"reflect"
	"strings"
	"testing"
	"time"
)

// intentScanSeeds are intents that stress the places where scanIntent must
// agree with encoding/json or decline.
func intentScanSeeds() []string {
	deep := strings.Repeat("[", intentScanMaxDepth+1) + strings.Repeat("]", intentScanMaxDepth+1)
	return []string{
		`{"action":"mcp.a.b","task_id":"t1","metadata":{"serverId":"a","toolName":"b","arguments":{"x":[1,2.5e3,true,null,{"y":"z"}]}}}`,
		` {"action":"bash","command":"rm -rf /","provenance":"shim"} `,
		`{"action":"web_fetch","url":"https://Example.COM./x","method":"GET"}`,
		`{"action":"email.send","to":["A@x.com"," b@y.org "]}`,
		`{"action":"email.send","to":"a@x.com"}`,
		`{"action":"email.send","to":[1,"a@x.com"]}`,
		`{"action":"file_write","path":"/etc/../etc/passwd"}`,
		`{"action":"http","url":"http://h/","method":"POST"}`,
		// Decline or decode the same: escapes, repeats, odd endings.
		`{"\u0061ction":"bash","action":"mcp.a.b"}`,
		`{"action":"mcp.a.b","action":"bash"}`,
		`{"action":"mcp.a.b","metadata":{"serverId":"a","toolName":"b"},"metadata":{"serverId":"c","toolName":"b"}}`,
		`{"action":"mcp.a.b","metadata":{"serverId":"a","serverId":"c","toolName":"b"}}`,
		`{"action":"mcp.a.b","metadata":{"serverI\u0064":"a","toolName":"b"}}`,
		`{"action":"mcp.a.b","metadata":"x"}`,
		`{"action":"mcp.a.b","metadata":{"serverId":1,"toolName":"b"}}`,
		`{"action":"mcp.\u0061.b","metadata":{"serverId":"a","toolName":"b"}}`,
		"{\"action\":\"mcp.\xff.b\",\"metadata\":{\"serverId\":\"\xff\",\"toolName\":\"b\"}}",
		`{"action":"mcp.a.b","metadata":{"serverId":"a","toolName":"b","arguments":{"k":1,"k":2}}}`,
		`{"action":"bash"} ]`, `{"action":"bash"} }`, `{"action":"bash"} x`, `{"action":"bash"}{}`,
		`{"action":"bash",}`, `{"action":"bash" "x":1}`, `{"action":01}`, `{"action":"a\x"}`,
		"{\"action\":\"a\tb\"}", `{"action":"ba\u0073h","command":"\"quoted\" \u00e9"}`,
		`{"action":"` + strings.Repeat("x", 100) + `"}`,
		`{"action":"bash","x":` + deep + `}`,
		`[]`, `null`, `"x"`, ``, ` `, `{}`, `{"action":""}`, `{"action":null}`, `{"provenance":"shim"}`,
		`{"action":"mcp.a.b","metadata":{"serverId":"a","toolName":"b"},"provenance":"sh\u0069m"}`,
		`{"action":"bash","task_id":"t\u00e9","command":"-1e400"}`,
	}
}

// checkIntentScan asserts that when scanIntent accepts raw, the intent it
// yields reads exactly as the one decodeIntent yields.
func checkIntentScan(t *testing.T, raw []byte) {
	t.Helper()
	tok, ok := scanIntent(raw)
	slow, slowD, slowOK := decodeIntent(raw)
	if !ok {
		return // declined: Evaluate decodes the thorough way
	}
	if slow.obj == nil {
		t.Fatalf("scanIntent accepted %q, encoding/json rejects it (%v)", raw, slowD)
	}
	fast, fastD, fastOK := readIntent(intent{tok: tok})
	if fastOK != slowOK || fastD != slowD {
		t.Fatalf("%q: fast (%v, %+v), thorough (%v, %+v)", raw, fastOK, fastD, slowOK, slowD)
	}
	if fast.action != slow.action || fast.shim != slow.shim || fast.isMCP != slow.isMCP || fast.server != slow.server || fast.tool != slow.tool {
		t.Fatalf("%q: fast %+v, thorough %+v", raw, fast, slow)
	}
	for _, k := range []string{"action", "provenance", "task_id", "metadata", "command", "url", "method", "path", "to"} {
		if got, want := fast.member(k), slow.member(k); !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: member %s: fast %#v, thorough %#v", raw, k, got, want)
		}
		gs, gok := fast.str(k)
		ws, wok := slow.str(k)
		if gs != ws || gok != wok {
			t.Fatalf("%q: str %s: fast (%q, %v), thorough (%q, %v)", raw, k, gs, gok, ws, wok)
		}
	}
}

func TestIntentScan(t *testing.T) {
	for _, s := range intentScanSeeds() {
		checkIntentScan(t, []byte(s))
	}
	// The common case must take the fast path.
	for _, s := range []string{
		`{"action":"mcp.a.b","task_id":"t1","metadata":{"serverId":"a","toolName":"b","arguments":{"x":[1,{"y":"\u00e9"}]}}}`,
		`{"action":"bash","command":"ls \"x\"","x":{"\u0061":1,"b":1}}`,
	} {
		if _, ok := scanIntent([]byte(s)); !ok {
			t.Errorf("scanIntent declined %q", s)
		}
	}
	// Declines where a read member could be misread.
	for _, s := range []string{
		`{"\u0061ction":"bash","action":"mcp.a.b"}`,
		`{"action":"mcp.a.b","action":"bash"}`,
		`{"action":"mcp.a.b","metadata":{"serverId":"a","serverId":"c","toolName":"b"}}`,
		`{"action":"bash"} ]`,
		// A repeated name anywhere: encoding/json keeps the last, so the
		// thorough path decides (the hub never sends one).
		`{"action":"bash","x":{"\u0061":1,"a":1}}`,
	} {
		if _, ok := scanIntent([]byte(s)); ok {
			t.Errorf("scanIntent accepted %q", s)
		}
	}
}

// TestEvaluatePathsAgree runs the package's policies over the seeds through
// both ways in and compares the decisions.
func TestEvaluatePathsAgree(t *testing.T) {
	for _, src := range []string{
		"version: 2.0.0\n\n## mcp\n\nallowed_tools: *\n",
		"version: 2.0.0\n\n## mcp\n\nallowed_servers: a\nblocked_tools: a.c\nrequire_approval: a.d\n",
		"version: 2.0.0\n\n## tool_calls\n\nallowed: bash, web_fetch, http, file_write, email.send, mcp.a.b\nbash.blocked_commands: rm -rf\nweb_fetch.blocked_domains: example.com\nfile_write.blocked_paths: /etc\nhttp.allowed_methods: GET\nhttp.allowed_hosts: *.example.com\nemail.blocked_recipients: a@x.com\nemail.allowed_recipients: *@x.com\n\n## execution_limits\n\nmax_tool_calls_per_task: 100\n",
		"version: 2.0.0\n\n## mcp\n\nallowed_tools: *\n\n## custom\n\ndeny_string: rm\n",
	} {
		p, err := Parse([]byte(src), Options{})
		if err != nil {
			t.Fatalf("policy %q: %v", src, err)
		}
		for _, s := range intentScanSeeds() {
			raw := []byte(s)
			got := p.Evaluate(raw, &MemoryCounter{}, time.Unix(0, 0))
			in, d, ok := decodeIntent(raw)
			want := d
			if ok {
				want = p.evaluateIntent(in, &MemoryCounter{}, time.Unix(0, 0))
			}
			if got != want {
				t.Errorf("policy %q, intent %q:\n got %+v\nwant %+v", src, s, got, want)
			}
		}
	}
}

// FuzzIntentScan checks that scanIntent never accepts what encoding/json
// rejects and never reads a member differently.
func FuzzIntentScan(f *testing.F) {
	for _, s := range intentScanSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		checkIntentScan(t, raw)
	})
}
