package policy

import (
	"crypto/ed25519"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

const gatewayPolicy = `version: 2.0.0

## mcp
allowed_servers: github, slack, fs*
allowed_tools: github.*, slack.send_message, fs.read_file
blocked_tools: github.delete_repository, delete_*
require_approval: slack.send_message

## custom
deny_string: AKIA
deny_if.intent.metadata.arguments.path contains .env
deny_if.intent.metadata.arguments.env not_equals prod
allow_only[action=mcp.fs.read_file].metadata.arguments.root starts_with: /srv/, /data/

## execution_limits
max_tool_calls_per_task: 2
max_tool_calls_per_hour: 3
`

func mcpIntent(server, tool, args string) string {
	if args == "" {
		args = `{"env":"prod"}`
	}
	return fmt.Sprintf(`{"action":"mcp.%s.%s","task_id":"t1","metadata":{"serverId":%q,"toolName":%q,"arguments":%s}}`, server, tool, server, tool, args)
}

func TestEvaluate(t *testing.T) {
	p, err := Parse([]byte(gatewayPolicy), Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, intent           string
		status, code, rule, pc string
	}{
		{"allowed wildcard tool", mcpIntent("github", "create_issue", ""), StatusAllowed, "", "", ""},
		{"blocked exact", mcpIntent("github", "delete_repository", ""), StatusDenied, CodeNotAllowed, "mcp.blockedTools: github.delete_repository", "SIGIL_POLICY_VIOLATION"},
		{"blocked bare wildcard on any server", mcpIntent("slack", "delete_message", ""), StatusDenied, CodeNotAllowed, "mcp.blockedTools: delete_*", ""},
		{"unlisted server", mcpIntent("jira", "create_issue", ""), StatusDenied, CodeNotAllowed, "mcp.allowedServers", ""},
		{"server wildcard, tool not listed", mcpIntent("fsx", "read_file", ""), StatusDenied, CodeNotAllowed, "mcp.allowedTools", ""},
		{"unlisted tool", mcpIntent("slack", "list_channels", ""), StatusDenied, CodeNotAllowed, "mcp.allowedTools", ""},
		{"approval", mcpIntent("slack", "send_message", ""), StatusPending, CodeRequiresApproval, "mcp.requireApproval: slack.send_message", "SIGIL_POLICY_HOLD_APPROVAL_REQUIRED"},
		{"missing toolName", `{"action":"mcp.github.x","metadata":{"serverId":"github"}}`, StatusDenied, CodeValidation, "mcp.metadata", ""},
		{"action/metadata mismatch", `{"action":"mcp.github.x","metadata":{"serverId":"github","toolName":"delete_repository"}}`, StatusDenied, CodeValidation, "mcp.metadata", ""},
		{"not an object", `[1]`, StatusDenied, CodeValidation, "intent", ""},
		{"trailing data", `{"action":"a"} {}`, StatusDenied, CodeValidation, "intent", ""},
		{"deny_string in nested value", mcpIntent("github", "create_issue", `{"env":"prod","body":"key AKIA123"}`), StatusDenied, CodeCustomRule, "deny_string:AKIA", "SIGIL_POLICY_VIOLATION_CUSTOM_RULE"},
		{"deny_if contains", mcpIntent("github", "create_issue", `{"env":"prod","path":"a/.env"}`), StatusDenied, CodeCustomRule, "deny_if.metadata.arguments.path.contains:.env", ""},
		{"deny_if not_equals", mcpIntent("github", "create_issue", `{"env":"dev"}`), StatusDenied, CodeCustomRule, "deny_if.metadata.arguments.env.not_equals:prod", ""},
		{"deny_if not_equals missing field fails closed", mcpIntent("github", "create_issue", `{"x":1}`), StatusDenied, CodeCustomRule, "deny_if.metadata.arguments.env.not_equals:prod", ""},
		{"scoped allow_only passes", mcpIntent("fs", "read_file", `{"env":"prod","root":"/srv/a"}`), StatusAllowed, "", "", ""},
		{"scoped allow_only fails", mcpIntent("fs", "read_file", `{"env":"prod","root":"/etc"}`), StatusDenied, CodeNotAllowed, "allow_only[action=mcp.fs.read_file].metadata.arguments.root", "SIGIL_POLICY_VIOLATION_NOT_ON_ALLOWLIST"},
		{"scoped allow_only missing field", mcpIntent("fs", "read_file", `{"env":"prod"}`), StatusDenied, CodeNotAllowed, "allow_only[action=mcp.fs.read_file].metadata.arguments.root", ""},
		{"non-mcp action without tool_calls", `{"action":"bash","command":"ls","metadata":{"arguments":{"env":"prod"}}}`, StatusDenied, CodeNotAllowed, "default.deny", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := p.Evaluate([]byte(tt.intent), &MemoryCounter{}, time.Unix(0, 0))
			if got.Status != tt.status || got.Code != tt.code || got.Rule != tt.rule {
				t.Fatalf("got %+v, want %s/%s rule %q", got, tt.status, tt.code, tt.rule)
			}
			if tt.pc != "" && got.PublicCode() != tt.pc {
				t.Fatalf("PublicCode %s, want %s", got.PublicCode(), tt.pc)
			}
			if got.Status != StatusAllowed && got.Message == "" {
				t.Fatal("empty message")
			}
		})
	}
}

func TestToolCalls(t *testing.T) {
	p, err := Parse([]byte(`version: 2.0.0
## tool_calls
allowed: bash, web_fetch, file_write, email.send, http
bash.blocked_commands: rm -rf
web_fetch.blocked_domains: evil.com
file_write.blocked_paths: /etc
email.allowed_recipients: *@example.com
email.blocked_recipients: boss@example.com
email.require_approval: true
http.allowed_methods: GET
http.allowed_hosts: *.example.com
require_shim: false
`), Options{})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ intent, status, code, rule string }{
		{`{"action":"bash","command":"ls"}`, StatusAllowed, "", ""},
		{`{"action":"bash","command":"sudo rm -rf /"}`, StatusDenied, CodeNotAllowed, "tool_calls.bashBlockedCommands: rm -rf"},
		{`{"action":"bash"}`, StatusDenied, CodeValidation, "tool_calls.bashBlockedCommands"},
		{`{"action":"web_fetch","url":"https://a.EVIL.com./x"}`, StatusDenied, CodeNotAllowed, "tool_calls.webFetchBlockedDomains: evil.com"},
		{`{"action":"web_fetch","url":"https://notevil.com/"}`, StatusAllowed, "", ""},
		{`{"action":"file_write","path":"/tmp/../etc/passwd"}`, StatusDenied, CodeNotAllowed, "tool_calls.fileWriteBlockedPaths: /etc"},
		{`{"action":"email.send","to":["a@example.com","BOSS@example.com"]}`, StatusDenied, CodeBlockedRecipient, "tool_calls.emailBlockedRecipients: boss@example.com"},
		{`{"action":"email.send","to":"a@sub.example.com"}`, StatusDenied, CodeRecipientNotAllow, "tool_calls.emailAllowedRecipients"},
		{`{"action":"email.send"}`, StatusDenied, CodeValidation, "tool_calls.emailRecipientRequired"},
		{`{"action":"email.send","to":"a@example.com"}`, StatusPending, CodeRequiresApproval, "tool_calls.emailRequireApproval"},
		{`{"action":"http","method":"GET","url":"https://api.example.com/x"}`, StatusAllowed, "", ""},
		{`{"action":"http","method":"GET","url":"https://example.com/x"}`, StatusDenied, CodeNotAllowed, "tool_calls.httpAllowedHosts"},
		{`{"action":"http","method":"POST","url":"https://api.example.com/x"}`, StatusDenied, CodeNotAllowed, "tool_calls.httpAllowedMethods"},
		{`{"action":"http","method":"get","url":"https://api.example.com/x"}`, StatusDenied, CodeValidation, "tool_calls.http"},
		{`{"action":"file_read","path":"/x"}`, StatusDenied, CodeNotAllowed, "tool_calls.allowed"},
		{`{"action":"mcp.a.b","metadata":{"serverId":"a","toolName":"b"}}`, StatusDenied, CodeNotAllowed, "tool_calls.allowed"},
	}
	for _, tt := range tests {
		got := p.Evaluate([]byte(tt.intent), nil, time.Unix(0, 0))
		if got.Status != tt.status || got.Code != tt.code || got.Rule != tt.rule {
			t.Errorf("%s: got %+v, want %s/%s %q", tt.intent, got, tt.status, tt.code, tt.rule)
		}
	}
}

func TestExecutionLimits(t *testing.T) {
	p, err := Parse([]byte(gatewayPolicy), Options{})
	if err != nil {
		t.Fatal(err)
	}
	c := &MemoryCounter{}
	t0 := time.Unix(1000, 0)
	in := func(task string) []byte {
		return []byte(strings.Replace(mcpIntent("github", "create_issue", ""), `"t1"`, `"`+task+`"`, 1))
	}
	steps := []struct {
		task string
		at   time.Duration
		rule string
	}{
		{"a", 0, ""},
		{"a", time.Minute, ""},
		{"a", 2 * time.Minute, "execution_limits.maxToolCallsPerTask"}, // 3rd call of task a
		{"b", 3 * time.Minute, "execution_limits.maxToolCallsPerHour"}, // 4th call this hour
		{"c", 61 * time.Minute, ""},                                    // calls at 0 and 1m left the window
	}
	for i, s := range steps {
		d := p.Evaluate(in(s.task), c, t0.Add(s.at))
		if d.Rule != s.rule || (s.rule != "" && d.Code != CodeLoopLimit) || (s.rule == "" && d.Status != StatusAllowed) {
			t.Fatalf("step %d: got %+v, want rule %q", i, d, s.rule)
		}
	}
	if d := p.Evaluate(in("z"), nil, t0); d.Code != CodeLimitStore {
		t.Fatalf("nil counter: got %+v", d)
	}
	// Concurrent use of one counter and one policy.
	var wg sync.WaitGroup
	shared := &MemoryCounter{}
	for range 8 {
		wg.Go(func() { p.Evaluate(in("x"), shared, t0) })
	}
	wg.Wait()
	if n, _ := shared.Add("x", t0); n != 9 {
		t.Fatalf("count %d, want 9", n)
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name, src            string
		line                 int
		section, key, substr string
	}{
		{"unsupported evm", "version: 2.0.0\n\n## mcp\nallowed_servers: a\n\n## evm\nallowed_actions: x\n", 6, "evm", "", "section ## evm is not supported by the embedded engine"},
		{"unsupported soft_limits", "version: 2.0.0\n## soft_limits\ndaily_tool_calls: 1\n", 2, "soft_limits", "", "not supported"},
		{"unsupported git", "version: 2.1.0\n## git\nactions: git.push\n", 2, "git", "", "not supported"},
		{"unknown section", "version: 2.0.0\n## mpc\nallowed_servers: a\n", 2, "mpc", "", "unknown policy block"},
		{"unknown key", "version: 2.0.0\n## mcp\nallowed_servers: a\nallowed_server: b\n", 4, "mcp", "allowed_server", "unknown key"},
		{"duplicate key", "version: 2.0.0\n## tool_calls\nallowed: bash\nallowed: http\n", 4, "tool_calls", "allowed", "duplicate"},
		{"model spend unsupported", "version: 2.0.0\n## execution_limits\nmax_model_spend_usd_per_task: 1\n", 3, "execution_limits", "max_model_spend_usd_per_task", "not supported"},
		{"bad regexp", "version: 2.0.0\n## custom\ndeny_if.command matches (?<=x)\n", 3, "custom", "deny_if.command", "RE2"},
		{"mcp needs v2", "version: 1.0.0\n## mcp\nallowed_servers: a\n", 2, "mcp", "", "requires version 2.0.0"},
		{"bad wildcard", "version: 2.0.0\n## mcp\nallowed_tools: a*b\n", 3, "mcp", "allowed_tools", "wildcard"},
		{"overlap", "version: 2.0.0\n## mcp\nallowed_tools: a.b\nblocked_tools: a.b\n", 2, "mcp", "allowed_tools", "both"},
		{"empty", "# nothing\n", 0, "", "", "enforceable"},
		{"unsigned required", "version: 2.0.0\n## mcp\nallowed_servers: a\n", 0, "signature", "", "unsigned"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.src), Options{RequireSignature: tt.name == "unsigned required"})
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("got %v, want *ParseError", err)
			}
			if pe.Line != tt.line || pe.Section != tt.section || pe.Key != tt.key || !strings.Contains(err.Error(), tt.substr) {
				t.Fatalf("got %q (line %d section %q key %q), want line %d section %q key %q containing %q", err, pe.Line, pe.Section, pe.Key, tt.line, tt.section, tt.key, tt.substr)
			}
		})
	}
}

func TestSignedPolicyRoundTrip(t *testing.T) {
	pub, priv, err := ed25519.GenerateKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	unsigned := "version: 2.0.0\n\n## mcp\nallowed_servers: github\n"
	sig := base64.RawURLEncoding.EncodeToString(ed25519.Sign(priv, []byte(unsigned)))
	signed := unsigned + "\n## signature\nsigil-sig: " + sig + "\n"
	p, err := Parse([]byte(signed), Options{PublicKey: pub, RequireSignature: true})
	if err != nil {
		t.Fatal(err)
	}
	q, err := Parse([]byte(unsigned), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if p.Hash() != q.Hash() || len(p.Hash()) != 64 {
		t.Fatalf("signature block changed the hash: %s vs %s", p.Hash(), q.Hash())
	}
	for _, bad := range []string{
		strings.Replace(signed, "github", "gitlab", 1), // tampered body
		strings.Replace(signed, "\n## signature", "\n## signature\n", 1),
		signed + "## custom\ndeny_string: x\n",
		strings.ReplaceAll(signed, "\n", "\r\n"),
	} {
		if _, err := Parse([]byte(bad), Options{PublicKey: pub}); err == nil {
			t.Errorf("loaded: %q", bad)
		}
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range []string{
		gatewayPolicy,
		"version: 2.0.0\n## tool_calls\nallowed: http\nhttp.allowed_hosts: API.Example.Com., *.example.com\n",
		"<!--\n## notes\n-->\nversion: 2.0.0\n## custom\nallow_only[action=x].a.b attested matches: ^a$, b\n",
		"version: 2.0.0\n## signature\nsigil-sig: AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n",
		"versoin: 2.0.0\n",
		"## custom\ndeny_if.intent. equals x\n<!-- open",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		p, err := Parse(src, Options{})
		if err != nil {
			return
		}
		if len(p.Hash()) != 64 {
			t.Fatalf("hash %q", p.Hash())
		}
		p.Evaluate([]byte(`{"action":"mcp.a.b","metadata":{"serverId":"a","toolName":"b","arguments":{}}}`), &MemoryCounter{}, time.Unix(0, 0))
	})
}

func BenchmarkEvaluateMCP(b *testing.B) {
	p, err := Parse([]byte(`version: 2.0.0
## mcp
allowed_servers: github, slack, postgres-readonly
allowed_tools: github.*, slack.send_message, postgres-readonly.query
blocked_tools: github.delete_repository, github.force_push, delete_*
`), Options{})
	if err != nil {
		b.Fatal(err)
	}
	in := []byte(`{"action":"mcp.github.create_issue","task_id":"s1","metadata":{"serverId":"github","toolName":"create_issue","arguments":{"title":"x","body":"y"}}}`)
	c := &MemoryCounter{}
	now := time.Unix(0, 0)
	b.ReportAllocs()
	for b.Loop() {
		if d := p.Evaluate(in, c, now); d.Status != StatusAllowed {
			b.Fatal(d)
		}
	}
}

// TestNumbersAsToolsReadThem: a rule on a number matches every spelling a
// tool reads as that number (the nearest double), so "1e2" or
// "100.0000000000000001" cannot slip past a rule on 100.
func TestNumbersAsToolsReadThem(t *testing.T) {
	p, err := Parse([]byte("version: 2.0.0\n\n## mcp\nallowed_tools: bank.*\n\n## custom\ndeny_if.metadata.arguments.amount equals 100\ndeny_if.metadata.arguments.fee not_equals 0\n"), Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, amount := range []string{"100", "1e2", "1E+2", "100.0", "100.0000000000000001", "10000e-2"} {
		d := p.Evaluate([]byte(mcpIntent("bank", "pay", `{"amount":`+amount+`,"fee":0}`)), &MemoryCounter{}, time.Unix(0, 0))
		if d.Status != StatusDenied || d.Code != CodeCustomRule {
			t.Errorf("amount %s: %s %s, want denied by the rule on 100", amount, d.Status, d.Code)
		}
	}
	for _, fee := range []string{"0", "-0", "0.0", "0e5", "1e-400"} {
		d := p.Evaluate([]byte(mcpIntent("bank", "pay", `{"amount":5,"fee":`+fee+`}`)), &MemoryCounter{}, time.Unix(0, 0))
		if d.Status != StatusAllowed {
			t.Errorf("fee %s: %s %s %s, want allowed (a tool reads 0)", fee, d.Status, d.Code, d.Message)
		}
	}
	if d := p.Evaluate([]byte(mcpIntent("bank", "pay", `{"amount":100.5,"fee":0}`)), &MemoryCounter{}, time.Unix(0, 0)); d.Status != StatusAllowed {
		t.Errorf("amount 100.5: %s, want allowed", d.Status)
	}
}
