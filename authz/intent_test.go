package authz_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/sigilcore/sigil-hub/authz"
	"github.com/sigilcore/sigil-hub/internal/strictjson"
)

func TestNewIntent(t *testing.T) {
	base := func(mod func(*authz.Request)) authz.Request {
		r := authz.Request{ServerID: "github", Tool: "create_issue", TaskID: "task-1", Arguments: json.RawMessage(`{"title":"x"}`)}
		if mod != nil {
			mod(&r)
		}
		return r
	}
	extract := func(action string, kv ...string) func(*authz.Request) {
		return func(r *authz.Request) {
			x := &authz.Extractor{Action: action, Fields: map[string]string{}}
			for i := 0; i < len(kv); i += 2 {
				x.Fields[kv[i]] = kv[i+1]
			}
			r.Extract = x
		}
	}
	args := func(a string) func(*authz.Request) {
		return func(r *authz.Request) { r.Arguments = json.RawMessage(a) }
	}
	both := func(fs ...func(*authz.Request)) func(*authz.Request) {
		return func(r *authz.Request) {
			for _, f := range fs {
				f(r)
			}
		}
	}
	for _, tc := range []struct {
		name     string
		req      authz.Request
		want     string // the exact intent JSON
		wantCode string // a local denial with this code
		wantMsg  string // ... whose message contains this
		wantErr  bool   // a non-InputError error
	}{
		{
			name: "plain mcp action",
			req:  base(nil),
			want: `{"action":"mcp.github.create_issue","task_id":"task-1","metadata":{"serverId":"github","toolName":"create_issue","arguments":{"title":"x"}}}`,
		},
		{
			name: "nil arguments become {}",
			req:  base(func(r *authz.Request) { r.Arguments = nil }),
			want: `{"action":"mcp.github.create_issue","task_id":"task-1","metadata":{"serverId":"github","toolName":"create_issue","arguments":{}}}`,
		},
		{
			name: "empty arguments become {}",
			req:  base(args(``)),
			want: `{"action":"mcp.github.create_issue","task_id":"task-1","metadata":{"serverId":"github","toolName":"create_issue","arguments":{}}}`,
		},
		{
			name: "arguments verbatim, outer whitespace dropped",
			req:  base(args(" \n{ \"b\" : 1.50, \"a\":\"\\u003c\" }\n")),
			want: `{"action":"mcp.github.create_issue","task_id":"task-1","metadata":{"serverId":"github","toolName":"create_issue","arguments":{ "b" : 1.50, "a":"\u003c" }}}`,
		},
		{
			name: "serverId and tool verbatim, no html escaping",
			req:  base(func(r *authz.Request) { r.ServerID = "https://h.example/mcp?a=1&b=<2>"; r.Tool = "t.x" }),
			want: `{"action":"mcp.https://h.example/mcp?a=1&b=<2>.t.x","task_id":"task-1","metadata":{"serverId":"https://h.example/mcp?a=1&b=<2>","toolName":"t.x","arguments":{"title":"x"}}}`,
		},
		{
			name: "url gives web_fetch",
			req:  base(both(args(`{"url":"https://e.example/?q=<a>&b"}`), extract("", "url", "url"))),
			want: `{"action":"web_fetch","url":"https://e.example/?q=<a>&b","task_id":"task-1","metadata":{"serverId":"github","toolName":"create_issue","arguments":{"url":"https://e.example/?q=<a>&b"}}}`,
		},
		{
			name: "url and valid method give http",
			req:  base(both(args(`{"req":{"u":"https://e.example","m":"POST"}}`), extract("", "url", "req.u", "method", "req.m"))),
			want: `{"action":"http","url":"https://e.example","method":"POST","task_id":"task-1","metadata":{"serverId":"github","toolName":"create_issue","arguments":{"req":{"u":"https://e.example","m":"POST"}}}}`,
		},
		{
			name: "escaped valid method is recognised",
			req:  base(both(args(`{"u":"https://e.example","m":"\u0047ET"}`), extract("", "url", "u", "method", "m"))),
			want: `{"action":"http","url":"https://e.example","method":"GET","task_id":"task-1","metadata":{"serverId":"github","toolName":"create_issue","arguments":{"u":"https://e.example","m":"\u0047ET"}}}`,
		},
		{
			name: "lowercase method omitted, stays web_fetch",
			req:  base(both(args(`{"u":"https://e.example","m":"post"}`), extract("", "url", "u", "method", "m"))),
			want: `{"action":"web_fetch","url":"https://e.example","task_id":"task-1","metadata":{"serverId":"github","toolName":"create_issue","arguments":{"u":"https://e.example","m":"post"}}}`,
		},
		{
			name: "unknown method omitted",
			req:  base(both(args(`{"u":"x","m":"CONNECT"}`), extract("", "url", "u", "method", "m"))),
			want: `{"action":"web_fetch","url":"x","task_id":"task-1","metadata":{"serverId":"github","toolName":"create_issue","arguments":{"u":"x","m":"CONNECT"}}}`,
		},
		{
			name: "method without http action not emitted",
			req:  base(both(args(`{"m":"GET"}`), extract("", "method", "m"))),
			want: `{"action":"mcp.github.create_issue","task_id":"task-1","metadata":{"serverId":"github","toolName":"create_issue","arguments":{"m":"GET"}}}`,
		},
		{
			name: "action override http keeps valid method",
			req:  base(both(args(`{"m":"DELETE","u":"x"}`), extract("http", "method", "m", "url", "u"))),
			want: `{"action":"http","url":"x","method":"DELETE","task_id":"task-1","metadata":{"serverId":"github","toolName":"create_issue","arguments":{"m":"DELETE","u":"x"}}}`,
		},
		{
			name: "path gives file_write",
			req:  base(both(args(`{"file":{"path":".env"}}`), extract("", "path", "file.path"))),
			want: `{"action":"file_write","path":".env","task_id":"task-1","metadata":{"serverId":"github","toolName":"create_issue","arguments":{"file":{"path":".env"}}}}`,
		},
		{
			name: "command gives bash",
			req:  base(both(args(`{"cmd":"ls -la"}`), extract("", "command", "cmd"))),
			want: `{"action":"bash","command":"ls -la","task_id":"task-1","metadata":{"serverId":"github","toolName":"create_issue","arguments":{"cmd":"ls -la"}}}`,
		},
		{
			name: "url wins over path and command; all emitted in wire order",
			req:  base(both(args(`{"c":"rm","p":"/x","u":"https://e"}`), extract("", "command", "c", "path", "p", "url", "u"))),
			want: `{"action":"web_fetch","command":"rm","url":"https://e","path":"/x","task_id":"task-1","metadata":{"serverId":"github","toolName":"create_issue","arguments":{"c":"rm","p":"/x","u":"https://e"}}}`,
		},
		{
			name: "path wins over command",
			req:  base(both(args(`{"c":"rm","p":"/x"}`), extract("", "command", "c", "path", "p"))),
			want: `{"action":"file_write","command":"rm","path":"/x","task_id":"task-1","metadata":{"serverId":"github","toolName":"create_issue","arguments":{"c":"rm","p":"/x"}}}`,
		},
		{
			name: "to with action override",
			req:  base(both(args(`{"rcpt":"a@b.example"}`), extract("email.send", "to", "rcpt"))),
			want: `{"action":"email.send","to":"a@b.example","task_id":"task-1","metadata":{"serverId":"github","toolName":"create_issue","arguments":{"rcpt":"a@b.example"}}}`,
		},
		{
			name: "to alone keeps mcp action",
			req:  base(both(args(`{"rcpt":"a@b.example"}`), extract("", "to", "rcpt"))),
			want: `{"action":"mcp.github.create_issue","to":"a@b.example","task_id":"task-1","metadata":{"serverId":"github","toolName":"create_issue","arguments":{"rcpt":"a@b.example"}}}`,
		},
		{
			name: "extracted string kept as its exact token",
			req:  base(both(args(`{"cmd":"echo \u00e9 \ud800 \"q\""}`), extract("", "command", "cmd"))),
			want: `{"action":"bash","command":"echo \u00e9 \ud800 \"q\"","task_id":"task-1","metadata":{"serverId":"github","toolName":"create_issue","arguments":{"cmd":"echo \u00e9 \ud800 \"q\""}}}`,
		},
		{
			name: "extractor action override alone",
			req:  base(extract("custom.thing")),
			want: `{"action":"custom.thing","task_id":"task-1","metadata":{"serverId":"github","toolName":"create_issue","arguments":{"title":"x"}}}`,
		},

		// Local denials.
		{name: "empty server id", req: base(func(r *authz.Request) { r.ServerID = "" }), wantCode: authz.CodeInputMalformed},
		{name: "empty tool", req: base(func(r *authz.Request) { r.Tool = "" }), wantCode: authz.CodeInputMalformed},
		{name: "invalid utf-8 tool", req: base(func(r *authz.Request) { r.Tool = "a\xffb" }), wantCode: authz.CodeInputMalformed},
		{name: "empty task id", req: base(func(r *authz.Request) { r.TaskID = "" }), wantCode: authz.CodeInputMalformed, wantMsg: "task id"},
		{name: "task id with space", req: base(func(r *authz.Request) { r.TaskID = "a b" }), wantCode: authz.CodeInputMalformed},
		{name: "task id with dot", req: base(func(r *authz.Request) { r.TaskID = "a.b" }), wantCode: authz.CodeInputMalformed},
		{name: "task id non-ascii", req: base(func(r *authz.Request) { r.TaskID = "tâche" }), wantCode: authz.CodeInputMalformed},
		{name: "task id 129", req: base(func(r *authz.Request) { r.TaskID = strings.Repeat("a", 129) }), wantCode: authz.CodeInputMalformed},
		{name: "arguments array", req: base(args(`[1]`)), wantCode: authz.CodeInputMalformed, wantMsg: "not a valid JSON object"},
		{name: "arguments null", req: base(args(`null`)), wantCode: authz.CodeInputMalformed},
		{name: "arguments whitespace only", req: base(args(`  `)), wantCode: authz.CodeInputMalformed},
		{name: "arguments invalid", req: base(args(`{"a":}`)), wantCode: authz.CodeInputMalformed},
		{name: "arguments trailing data", req: base(args(`{} {}`)), wantCode: authz.CodeInputMalformed},
		{name: "arguments duplicate key", req: base(args(`{"a":{"b":1,"b":2}}`)), wantCode: authz.CodeInputMalformed, wantMsg: `duplicate key "b" at $.a`},
		{name: "arguments invalid utf-8", req: base(args("{\"a\":\"\xff\"}")), wantCode: authz.CodeInputMalformed},
		{name: "arguments too deep", req: base(args(strings.Repeat(`{"a":`, 33) + "1" + strings.Repeat("}", 33))), wantCode: authz.CodeInputMalformed},
		{name: "arguments number overflow", req: base(args(`{"a":1e400}`)), wantCode: authz.CodeInputMalformed},
		{name: "arguments too large", req: base(args(`{"a":"` + strings.Repeat("x", authz.MaxArgumentsBytes) + `"}`)), wantCode: authz.CodeInputTooLarge, wantMsg: "create_issue"},
		{name: "oversize garbage is too large, not malformed", req: base(args(strings.Repeat("x", authz.MaxArgumentsBytes+1))), wantCode: authz.CodeInputTooLarge},
		{name: "extracted missing", req: base(both(args(`{}`), extract("", "url", "url"))), wantCode: authz.CodeInputMalformed, wantMsg: `tool "create_issue": argument "url" for intent field "url" is missing`},
		{name: "extracted not a string", req: base(both(args(`{"url":5}`), extract("", "url", "url"))), wantCode: authz.CodeInputMalformed, wantMsg: "is not a string"},
		{name: "extracted null", req: base(both(args(`{"url":null}`), extract("", "url", "url"))), wantCode: authz.CodeInputMalformed},
		{name: "extracted nested missing", req: base(both(args(`{"a":{"c":"x"}}`), extract("", "path", "a.b"))), wantCode: authz.CodeInputMalformed, wantMsg: `"a.b"`},
		{name: "extracted parent not object", req: base(both(args(`{"a":"x"}`), extract("", "path", "a.b"))), wantCode: authz.CodeInputMalformed},
		{name: "extracted method missing", req: base(both(args(`{"u":"x"}`), extract("", "url", "u", "method", "m"))), wantCode: authz.CodeInputMalformed},
		{name: "extracted method not a string", req: base(both(args(`{"u":"x","m":1}`), extract("", "url", "u", "method", "m"))), wantCode: authz.CodeInputMalformed},
		{name: "extracted to array", req: base(both(args(`{"to":["a"]}`), extract("email.send", "to", "to"))), wantCode: authz.CodeInputMalformed},

		// Configuration faults.
		{name: "unknown extractor field", req: base(extract("", "targetAddress", "to")), wantErr: true},
		{name: "bad extractor path", req: base(extract("", "url", "a..b")), wantErr: true},
		{name: "empty extractor path", req: base(extract("", "url", "")), wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in, err := authz.NewIntent(tc.req)
			var ie *authz.InputError
			switch {
			case tc.wantErr:
				if err == nil || errors.As(err, &ie) {
					t.Fatalf("NewIntent = %v, want a configuration error", err)
				}
				return
			case tc.wantCode != "":
				if !errors.As(err, &ie) || ie.Code != tc.wantCode {
					t.Fatalf("NewIntent error = %#v, want *InputError %s", err, tc.wantCode)
				}
				if !strings.Contains(ie.Message, tc.wantMsg) || ie.Error() != ie.Message {
					t.Errorf("message %q, want it to contain %q", ie.Message, tc.wantMsg)
				}
				if len(ie.Message) > 600 {
					t.Errorf("message is %d bytes; must not echo big input", len(ie.Message))
				}
				return
			case err != nil:
				t.Fatalf("NewIntent: %v", err)
			}
			if string(in.JSON) != tc.want {
				t.Errorf("intent JSON\n got %s\nwant %s", in.JSON, tc.want)
			}
			if err := strictjson.Validate(in.JSON, 64); err != nil {
				t.Errorf("intent JSON not strictly valid: %v", err)
			}
			var probe struct{ Action string }
			if err := json.Unmarshal(in.JSON, &probe); err != nil || probe.Action != in.Action {
				t.Errorf("Action = %q, JSON action = %q (%v)", in.Action, probe.Action, err)
			}
			commit, err := authz.TxCommit(in.JSON)
			if err != nil || commit != in.TxCommit {
				t.Errorf("TxCommit = %q, want TxCommit(JSON) = %q (%v)", in.TxCommit, commit, err)
			}
		})
	}
}

func TestNewIntentBoundaries(t *testing.T) {
	// Exactly MaxArgumentsBytes is allowed.
	pad := authz.MaxArgumentsBytes - len(`{"a":""}`)
	args := `{"a":"` + strings.Repeat("x", pad) + `"}`
	if len(args) != authz.MaxArgumentsBytes {
		t.Fatalf("test setup: %d", len(args))
	}
	if _, err := authz.NewIntent(authz.Request{ServerID: "s", Tool: "t", TaskID: "x", Arguments: json.RawMessage(args)}); err != nil {
		t.Errorf("arguments of exactly %d bytes: %v", authz.MaxArgumentsBytes, err)
	}
	// Depth 32 is allowed.
	deep := strings.Repeat(`{"a":`, 31) + `[1]` + strings.Repeat("}", 31)
	if _, err := authz.NewIntent(authz.Request{ServerID: "s", Tool: "t", TaskID: "x", Arguments: json.RawMessage(deep)}); err != nil {
		t.Errorf("arguments 32 deep: %v", err)
	}
	// A 128-character task id of every allowed class is allowed.
	id := strings.Repeat("aZ0_-", 25) + "abc"
	if _, err := authz.NewIntent(authz.Request{ServerID: "s", Tool: "t", TaskID: id}); err != nil {
		t.Errorf("task id %q: %v", id, err)
	}
}

// TestNewIntentArgumentsVerbatim pins
// docs/protocol.md#arguments-sent-as-received: numbers and escapes travel
// unchanged even where pg-commit-v1 (like JS) would rewrite them.
func TestNewIntentArgumentsVerbatim(t *testing.T) {
	raw := `{"n":12345678901234567890,"s":"\u00e9","f":1.50,"e":1E2,"z":-0,"u":"\ud800"}`
	in, err := authz.NewIntent(authz.Request{ServerID: "s", Tool: "t", TaskID: "x", Arguments: json.RawMessage(raw)})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(in.JSON, []byte(`"arguments":`+raw+`}`)) {
		t.Fatalf("arguments not verbatim in %s", in.JSON)
	}
	canon, err := authz.CanonicalPgCommitV1(in.JSON)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"action":"mcp.s.t","metadata":{"arguments":{"e":100,"f":1.5,"n":12345678901234567000,"s":"é","u":"\ud800","z":0},"serverId":"s","toolName":"t"},"task_id":"x"}`
	if string(canon) != want {
		t.Errorf("canonical\n got %s\nwant %s", canon, want)
	}
}

// TestNewIntentDeterministic: the same call gives the same txCommit, so an
// exact-intent reauthorization after a hold matches
// (docs/protocol.md#holds-pending); a different server or argument byte
// changes it.
func TestNewIntentDeterministic(t *testing.T) {
	req := authz.Request{ServerID: "s", Tool: "t", TaskID: "x", Arguments: json.RawMessage(`{"a":1}`)}
	a, _ := authz.NewIntent(req)
	b, _ := authz.NewIntent(req)
	if a.TxCommit != b.TxCommit || !bytes.Equal(a.JSON, b.JSON) {
		t.Fatal("not deterministic")
	}
	req.ServerID = "s2"
	c, _ := authz.NewIntent(req)
	req.ServerID = "s"
	req.Arguments = json.RawMessage(`{"a":2}`)
	d, _ := authz.NewIntent(req)
	if c.TxCommit == a.TxCommit || d.TxCommit == a.TxCommit {
		t.Fatal("txCommit does not bind serverId and arguments")
	}
	// Key order and whitespace in the arguments do not change the commit.
	req.Arguments = json.RawMessage(`{ "a" : 1 }`)
	e, _ := authz.NewIntent(req)
	if e.TxCommit != a.TxCommit {
		t.Fatal("whitespace changed the txCommit")
	}
}

func TestNewIntentDoesNotRetainArguments(t *testing.T) {
	args := []byte(`{"cmd":"ls"}`)
	in, err := authz.NewIntent(authz.Request{ServerID: "s", Tool: "t", TaskID: "x", Arguments: args,
		Extract: &authz.Extractor{Fields: map[string]string{"command": "cmd"}}})
	if err != nil {
		t.Fatal(err)
	}
	before := string(in.JSON)
	copy(args, `{"cmd":"rm"}`)
	if string(in.JSON) != before {
		t.Fatal("intent JSON aliases the request's arguments")
	}
}

func TestValidateExtractor(t *testing.T) {
	for _, tc := range []struct {
		name string
		x    *authz.Extractor
		ok   bool
	}{
		{"nil", nil, true},
		{"empty", &authz.Extractor{}, true},
		{"all fields", &authz.Extractor{Fields: map[string]string{"url": "u", "path": "a.b", "command": "c", "method": "m", "to": "t"}}, true},
		{"action only", &authz.Extractor{Action: "email.send"}, true},
		{"unknown field", &authz.Extractor{Fields: map[string]string{"amount": "a"}}, false},
		{"case matters", &authz.Extractor{Fields: map[string]string{"URL": "u"}}, false},
		{"empty path", &authz.Extractor{Fields: map[string]string{"url": ""}}, false},
		{"leading dot", &authz.Extractor{Fields: map[string]string{"url": ".a"}}, false},
		{"trailing dot", &authz.Extractor{Fields: map[string]string{"url": "a."}}, false},
		{"double dot", &authz.Extractor{Fields: map[string]string{"url": "a..b"}}, false},
		{"invalid utf-8 action", &authz.Extractor{Action: "\xff"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := authz.ValidateExtractor(tc.x); (err == nil) != tc.ok {
				t.Errorf("ValidateExtractor = %v, want ok=%v", err, tc.ok)
			}
		})
	}
}

func TestAuthorizeBody(t *testing.T) {
	in, err := authz.NewIntent(authz.Request{ServerID: "s", Tool: "t", TaskID: "x"})
	if err != nil {
		t.Fatal(err)
	}
	nonce := "00000000-0000-4000-8000-000000000000"
	want := `{"framework":"mcp-proxy","agentId":"sigil-hub","txCommit":"` + in.TxCommit +
		`","request_nonce":"` + nonce + `","intent":` + string(in.JSON) + `}`
	if got := string(authz.AuthorizeBody(in, "", nonce)); got != want {
		t.Errorf("body\n got %s\nwant %s", got, want)
	}
	got := authz.AuthorizeBody(in, `agent "<1>" & co`, nonce)
	if !bytes.Contains(got, []byte(`"agentId":"agent \"<1>\" & co"`)) {
		t.Errorf("agentId not encoded plainly: %s", got)
	}
	if err := strictjson.Validate(got, 64); err != nil {
		t.Errorf("body not strictly valid: %v", err)
	}
}

func TestNewNonce(t *testing.T) {
	re := regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$`)
	seen := map[string]bool{}
	for range 1000 {
		n := authz.NewNonce()
		if !re.MatchString(n) {
			t.Fatalf("nonce %q is not a lowercase UUIDv4", n)
		}
		if seen[n] {
			t.Fatalf("nonce %q repeated", n)
		}
		seen[n] = true
	}
}

// TestAuthorizeBodyShape compares our bodies with the reference client's
// pinned bodies (vectors/authorize-wire): the same top-level members in the
// same order (minus chainId, which tool calls never carry), and intent
// members that both have in the same relative order with the same values.
func TestAuthorizeBodyShape(t *testing.T) {
	dir := filepath.Join(pgcVectorsDir(t), "authorize-wire")
	for _, tc := range []struct {
		file string
		args string
		x    *authz.Extractor
	}{
		{"bash.json", `{"command":"ls -la"}`, &authz.Extractor{Fields: map[string]string{"command": "command"}}},
		{"intent_agent_override.json", `{"command":"echo hi"}`, &authz.Extractor{Fields: map[string]string{"command": "command"}}},
		{"web_fetch.json", `{"url":"https://example.com/policy"}`, &authz.Extractor{Fields: map[string]string{"url": "url"}}},
		{"cowork_pretooluse.json", `{"command":"CANARY_COMMAND_01"}`, &authz.Extractor{Fields: map[string]string{"command": "command"}}},
		{"wallet.transfer.json", `{"to":"0xabc"}`, &authz.Extractor{Action: "wallet.transfer", Fields: map[string]string{"to": "to"}}},
	} {
		t.Run(tc.file, func(t *testing.T) {
			ref, err := os.ReadFile(filepath.Join(dir, tc.file))
			if err != nil {
				t.Skipf("vector not available: %v", err)
			}
			var refBody struct {
				AgentID string `json:"agentId"`
				Nonce   string `json:"request_nonce"`
				Intent  struct {
					TaskID string `json:"task_id"`
				} `json:"intent"`
			}
			if err := json.Unmarshal(ref, &refBody); err != nil {
				t.Fatal(err)
			}
			in, err := authz.NewIntent(authz.Request{ServerID: "fixture", Tool: "tool", TaskID: refBody.Intent.TaskID,
				Arguments: json.RawMessage(tc.args), Extract: tc.x})
			if err != nil {
				t.Fatal(err)
			}
			ours := authz.AuthorizeBody(in, refBody.AgentID, refBody.Nonce)

			refTop, refIntent := intentKeyOrder(t, ref)
			ourTop, ourIntent := intentKeyOrder(t, ours)
			refTop = slices.DeleteFunc(refTop, func(k string) bool { return k == "chainId" })
			if !slices.Equal(ourTop, refTop) {
				t.Errorf("top-level keys\n ours %v\n ref  %v", ourTop, refTop)
			}
			common := func(a, b []string) []string {
				return slices.DeleteFunc(slices.Clone(a), func(k string) bool { return !slices.Contains(b, k) })
			}
			if c1, c2 := common(ourIntent, refIntent), common(refIntent, ourIntent); !slices.Equal(c1, c2) {
				t.Errorf("intent keys in a different order\n ours %v\n ref  %v", ourIntent, refIntent)
			}
			var refMap, ourMap struct {
				Framework string                     `json:"framework"`
				Intent    map[string]json.RawMessage `json:"intent"`
			}
			if err := json.Unmarshal(ref, &refMap); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(ours, &ourMap); err != nil {
				t.Fatal(err)
			}
			if ourMap.Framework != "mcp-proxy" {
				t.Errorf("framework %q", ourMap.Framework)
			}
			for _, k := range []string{"action", "command", "url", "method", "path", "task_id"} {
				if r, ok := refMap.Intent[k]; ok && string(ourMap.Intent[k]) != string(r) {
					t.Errorf("intent.%s = %s, reference %s", k, ourMap.Intent[k], r)
				}
			}
		})
	}
}

// intentKeyOrder returns the member names of a body and of its intent, in
// document order.
func intentKeyOrder(t *testing.T, body []byte) (top, intent []string) {
	t.Helper()
	top = intentMemberNames(t, body)
	var b struct {
		Intent json.RawMessage `json:"intent"`
	}
	if err := json.Unmarshal(body, &b); err != nil {
		t.Fatal(err)
	}
	return top, intentMemberNames(t, b.Intent)
}

// intentMemberNames lists an object's member names in document order.
func intentMemberNames(t *testing.T, obj []byte) []string {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(obj))
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		t.Fatalf("want an object, got %v, %v", tok, err)
	}
	var names []string
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, tok.(string))
		var skip json.RawMessage
		if err := dec.Decode(&skip); err != nil {
			t.Fatal(err)
		}
	}
	return names
}
