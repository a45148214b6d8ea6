package policy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/sigilcore/sigil-hub/internal/strictjson"
)

// Decision statuses.
const (
	StatusAllowed = "ALLOWED"
	StatusDenied  = "DENIED"
	StatusPending = "PENDING"
)

// Engine (Sigil Lex) codes used in Decision.Code, as the SOF conformance
// vectors name them. Limit failures carry the public SIGIL_* code directly
// because no LEX_* name for them is published.
const (
	CodeValidation         = "LEX_VALIDATION_ERROR"
	CodeNotAllowed         = "LEX_TOOL_CALL_NOT_ALLOWED"
	CodeRequiresApproval   = "LEX_TOOL_CALL_REQUIRES_APPROVAL"
	CodeProvenanceRequired = "LEX_PROVENANCE_REQUIRED"
	CodeCustomRule         = "LEX_CUSTOM_RULE_VIOLATION"
	CodeBlockedRecipient   = "LEX_TOOL_CALL_BLOCKED_RECIPIENT"
	CodeRecipientNotAllow  = "LEX_TOOL_CALL_RECIPIENT_NOT_ALLOWED"
	CodeLoopLimit          = "SIGIL_LOOP_LIMIT_EXCEEDED"
	CodeLimitStore         = "SIGIL_LIMIT_STORE_UNAVAILABLE"
)

// Decision is the outcome of evaluating one intent. It is a plain value,
// safe to copy and share.
type Decision struct {
	Status  string // StatusAllowed, StatusDenied or StatusPending
	Code    string // LEX_* (or SIGIL_* for limits); "" when allowed
	Message string // plain-words reason
	Rule    string // the rule that decided, e.g. "deny_if.path.contains:.env"; "" when allowed
}

// PublicCode maps Code to the SIGIL_* error code the hosted Sign API returns
// for the same rule (launch-scenarios.json pairs expected.errorCode with
// observedEvaluator.lexErrorCode). It returns "" for an allowed decision.
// Mappings not pinned by a vector (validation, provenance, blocked bash
// command) use the nearest code the vendor documents.
func (d Decision) PublicCode() string {
	switch d.Code {
	case "":
		return ""
	case CodeCustomRule:
		return "SIGIL_POLICY_VIOLATION_CUSTOM_RULE"
	case CodeRequiresApproval:
		return "SIGIL_POLICY_HOLD_APPROVAL_REQUIRED"
	case CodeBlockedRecipient:
		return "SIGIL_POLICY_VIOLATION_BLOCKED_RECIPIENT"
	case CodeRecipientNotAllow:
		return "SIGIL_POLICY_VIOLATION_RECIPIENT_NOT_ALLOWED"
	case "LEX_AMOUNT_EXCEEDS_TOKEN_LIMIT":
		return "SIGIL_POLICY_VIOLATION_TOKEN_AMOUNT_EXCEEDED"
	case "LEX_POLICY_VIOLATION_EXECUTION_BOUNDARY_REQUIRED":
		return "SIGIL_POLICY_VIOLATION_EXECUTION_BOUNDARY_REQUIRED"
	case CodeValidation:
		return "SIGIL_VALIDATION_ERROR"
	case CodeNotAllowed:
		switch {
		case strings.HasPrefix(d.Rule, "allow_only"):
			return "SIGIL_POLICY_VIOLATION_NOT_ON_ALLOWLIST"
		case strings.HasPrefix(d.Rule, "tool_calls.bashBlockedCommands"):
			return "SIGIL_BASH_BLOCKED"
		}
		return "SIGIL_POLICY_VIOLATION"
	}
	if strings.HasPrefix(d.Code, "SIGIL_") {
		return d.Code
	}
	return "SIGIL_POLICY_VIOLATION"
}

func deny(code, rule, format string, args ...any) Decision {
	return Decision{Status: StatusDenied, Code: code, Rule: rule, Message: fmt.Sprintf(format, args...)}
}

// intent is the evaluated view of a wire intent object.
type intent struct {
	// obj is the whole intent, decoded by decodeIntent; nil when
	// scanIntent read it, and then tok holds the members that are read.
	obj    map[string]any
	tok    intentTokens
	action string
	shim   bool // provenance == "shim": metadata came through a trusted shim
	isMCP  bool
	server string
	tool   string
}

// Evaluate decides one intent (the wire `intent` object,
// docs/protocol.md#the-intent-for-a-tool-call) in the documented order
// (docs/protocol.md#the-embedded-policy): validation; ## custom
// deny_string/deny_if; ## custom allow_only; require_shim controls; the typed
// section (## mcp for mcp.* actions, else ## tool_calls); approval holds;
// execution limits. Anything no section allows is denied. c may be nil only
// when the policy has no numeric ## execution_limits (otherwise the call is
// denied SIGIL_LIMIT_STORE_UNAVAILABLE, fail closed). Evaluate is safe for
// concurrent use.
func (p *Policy) Evaluate(raw []byte, c Counter, now time.Time) Decision {
	in, d, ok := p.decode(raw)
	if !ok {
		return d
	}
	return p.evaluateIntent(in, c, now)
}

// evaluateIntent is Evaluate after the intent was read.
func (p *Policy) evaluateIntent(in intent, c Counter, now time.Time) Decision {
	if d, ok := p.evalCustom(in); !ok {
		return d
	}
	// Provenance controls that apply to every intent.
	if p.custom != nil && p.custom.requireShim != nil && *p.custom.requireShim && !in.shim {
		return deny(CodeProvenanceRequired, "custom.requireShim", "the policy requires intents to arrive through a trusted shim")
	}
	if p.limits != nil && p.limits.requireShim != nil && *p.limits.requireShim && !in.shim {
		return deny(CodeProvenanceRequired, "execution_limits.requireShim", "the policy requires intents to arrive through a trusted shim")
	}
	var hold string
	var d Decision
	var ok bool
	switch {
	case in.isMCP && p.mcp != nil:
		hold, d, ok = p.mcp.eval(in)
	case p.tools != nil:
		hold, d, ok = p.tools.eval(in)
	default:
		return deny(CodeNotAllowed, "default.deny", "no policy block allows action %q", in.action)
	}
	if !ok {
		return d
	}
	if hold == "" && p.custom != nil {
		hold = firstAction("custom.requireApproval: ", p.custom.requireApproval, in.action)
	}
	if hold == "" && p.limits != nil {
		hold = firstAction("execution_limits.requireApproval: ", p.limits.requireApproval, in.action)
	}
	if hold != "" {
		return Decision{Status: StatusPending, Code: CodeRequiresApproval, Rule: hold, Message: fmt.Sprintf("action %q requires human approval", in.action)}
	}
	if l := p.limits; l != nil && (l.perTask > 0 || l.perHour > 0) {
		if c == nil {
			return deny(CodeLimitStore, "execution_limits", "execution limits are configured but no counter is available")
		}
		task, _ := in.str("task_id")
		perTask, perHour := c.Add(task, now)
		if l.perTask > 0 && int64(perTask) > l.perTask {
			return deny(CodeLoopLimit, "execution_limits.maxToolCallsPerTask", "task %q exceeded %d tool calls", task, l.perTask)
		}
		if l.perHour > 0 && int64(perHour) > l.perHour {
			return deny(CodeLoopLimit, "execution_limits.maxToolCallsPerHour", "more than %d tool calls in the last hour", l.perHour)
		}
	}
	return Decision{Status: StatusAllowed}
}

// decode reads an intent for p: with scanIntent (intentscan.go), unless it
// declines or ## custom deny and allow rules look at arbitrary members
// (deny_string: anywhere); else decodeIntent decodes the whole intent.
func (p *Policy) decode(raw []byte) (intent, Decision, bool) {
	if p.custom == nil || len(p.custom.deny)+len(p.custom.allow) == 0 {
		if t, ok := scanIntent(raw); ok {
			return readIntent(intent{tok: t})
		}
	}
	return decodeIntent(raw)
}

func decodeIntent(raw []byte) (intent, Decision, bool) {
	var in intent
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	if err := dec.Decode(&in.obj); err != nil || in.obj == nil || dec.More() {
		return in, deny(CodeValidation, "intent", "intent is not a JSON object"), false
	}
	return readIntent(in)
}

// readIntent fills in the fields every evaluation uses and checks them.
func readIntent(in intent) (intent, Decision, bool) {
	in.action, _ = in.str("action")
	if in.action == "" {
		return in, deny(CodeValidation, "intent.action", "intent.action must be a non-empty string"), false
	}
	prov, _ := in.str("provenance")
	in.shim = prov == "shim"
	if strings.HasPrefix(in.action, "mcp.") {
		in.isMCP = true
		in.server, in.tool = in.metadataNames()
		switch {
		case in.tool == "":
			return in, deny(CodeValidation, "mcp.metadata", "mcp intent lacks metadata.toolName"), false
		case in.server == "":
			return in, deny(CodeValidation, "mcp.metadata", "mcp intent lacks metadata.serverId"), false
		case in.action != "mcp."+in.server+"."+in.tool:
			return in, deny(CodeValidation, "mcp.metadata", "action %q does not match metadata serverId %q and toolName %q", in.action, in.server, in.tool), false
		}
	}
	return in, Decision{}, true
}

// member returns the intent's top-level member k (nil when absent), decoded
// as encoding/json decodes it with UseNumber.
func (in *intent) member(k string) any {
	if in.obj != nil {
		return in.obj[k]
	}
	return tokenValue(in.token(k))
}

// str returns the top-level member k if it is a string.
func (in *intent) str(k string) (string, bool) {
	s, ok := in.member(k).(string)
	return s, ok
}

// token returns the raw value scanIntent kept of top-level member k.
func (in *intent) token(k string) []byte {
	p := in.tok.slot(k)
	if p == nil {
		panic("policy: member " + k + " is not kept by scanIntent") // a programming error
	}
	return *p
}

// metadataNames returns metadata.serverId and metadata.toolName when they
// are strings ("" otherwise).
func (in *intent) metadataNames() (server, tool string) {
	if in.obj != nil {
		md, _ := in.obj["metadata"].(map[string]any)
		server, _ = md["serverId"].(string)
		tool, _ = md["toolName"].(string)
		return server, tool
	}
	server, _ = strictjson.DecodeString(in.tok.serverID)
	tool, _ = strictjson.DecodeString(in.tok.toolName)
	return server, tool
}

// --- ## custom ---

func (p *Policy) evalCustom(in intent) (Decision, bool) {
	c := p.custom
	if c == nil {
		return Decision{}, true
	}
	for _, r := range c.deny {
		if r.kind == ruleDenyString {
			if containsString(in.obj, r.value) {
				return deny(CodeCustomRule, r.name, "intent contains the denied string %q", r.value), false
			}
			continue
		}
		v, ok := lookup(in.obj, r.path)
		if r.denyIfMatches(v, ok) {
			return deny(CodeCustomRule, r.name, "intent field %s %s %q", strings.Join(r.path, "."), r.op, r.value), false
		}
	}
	for _, r := range c.allow {
		if r.actionScope != "" && !wild(r.actionScope, in.action) {
			continue
		}
		if r.attested && !in.shim {
			return deny(CodeProvenanceRequired, r.name, "intent field %s must be attested by a trusted shim", strings.Join(r.path, ".")), false
		}
		v, ok := lookup(in.obj, r.path)
		s, isStr := v.(string)
		if !ok || !isStr || !r.allowMatches(s) {
			return deny(CodeNotAllowed, r.name, "intent field %s is missing or not on the allowlist", strings.Join(r.path, ".")), false
		}
	}
	return Decision{}, true
}

// scalarText returns the text of a JSON scalar (strings as is, numbers as
// ECMAScript prints their double value, booleans as true/false); ok is false
// for null, objects, arrays.
func scalarText(v any) (string, bool) {
	switch x := v.(type) {
	case string:
		return x, true
	case json.Number:
		// As the tool reads it: every JSON decoder a tool uses (JavaScript,
		// Go's float64, Python's float) reads a number as the nearest double,
		// so "1e2", "100.0" and "100.0000000000000001" are all 100 and must
		// match a rule on "100" (docs/security.md). ECMAScript's
		// Number-to-String gives the text, as JSON.stringify would.
		f, err := x.Float64()
		if err != nil {
			return string(x), true // not finite: denied before evaluation
		}
		return jsNumber(f), true
	case bool:
		return strconv.FormatBool(x), true
	}
	return "", false
}

func (r *customRule) denyIfMatches(v any, present bool) bool {
	s, ok := scalarText(v)
	if !present || !ok {
		// A missing field satisfies only not_equals (fail closed).
		return r.op == "not_equals"
	}
	return opMatches(r.op, s, r.value, r.re, true)
}

func (r *customRule) allowMatches(s string) bool {
	for i, v := range r.values {
		var re *regexp.Regexp
		if r.res != nil {
			re = r.res[i]
		}
		if opMatches(r.op, s, v, re, false) {
			return true
		}
	}
	return false
}

// opMatches applies a ## custom operator to s and a rule's value v (re is
// v compiled, for matches). An operator the parser never produces gives
// failClosed, the caller's denying answer.
func opMatches(op, s, v string, re *regexp.Regexp, failClosed bool) bool {
	switch op {
	case "contains":
		return strings.Contains(s, v)
	case "starts_with":
		return strings.HasPrefix(s, v)
	case "ends_with":
		return strings.HasSuffix(s, v)
	case "equals":
		return s == v
	case "not_equals":
		return s != v
	case "matches":
		return re.MatchString(s)
	}
	return failClosed
}

func lookup(obj map[string]any, path []string) (any, bool) {
	var cur any = obj
	for _, seg := range path {
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[seg]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// containsString reports whether needle occurs in any key, string value or
// number literal of v (deny_string: "anywhere in the intent").
func containsString(v any, needle string) bool {
	switch x := v.(type) {
	case string:
		return strings.Contains(x, needle)
	case json.Number:
		return strings.Contains(string(x), needle)
	case bool:
		return strings.Contains(fmt.Sprint(x), needle)
	case []any:
		return slices.ContainsFunc(x, func(e any) bool { return containsString(e, needle) })
	case map[string]any:
		for k, e := range x {
			if strings.Contains(k, needle) || containsString(e, needle) {
				return true
			}
		}
	}
	return false
}

// wild matches an exact value or a pattern with one trailing "*".
func wild(pat, s string) bool {
	if prefix, ok := strings.CutSuffix(pat, "*"); ok {
		return strings.HasPrefix(s, prefix)
	}
	return pat == s
}

func firstAction(prefix string, pats []string, action string) string {
	if i := slices.IndexFunc(pats, func(pat string) bool { return wild(pat, action) }); i >= 0 {
		return prefix + pats[i]
	}
	return ""
}

// --- ## mcp ---

// mcpMatch matches a ## mcp tool pattern: "server.tool" (or "server.*")
// against server.tool; a pattern without a dot ("delete_*") names a tool on
// any server.
func mcpMatch(pat, server, tool string) bool {
	if !strings.Contains(pat, ".") {
		return wild(pat, tool)
	}
	prefix, wildcard := strings.CutSuffix(pat, "*")
	if len(prefix) < len(server)+1 {
		// "git*" style pattern spanning the server name.
		return wildcard && strings.HasPrefix(server+"."+tool, prefix)
	}
	if prefix[:len(server)] != server || prefix[len(server)] != '.' {
		return false
	}
	rest := prefix[len(server)+1:]
	if wildcard {
		return strings.HasPrefix(tool, rest)
	}
	return tool == rest
}

// eval applies ## mcp to an MCP action. It returns the hold rule, if any.
func (m *mcpRules) eval(in intent) (string, Decision, bool) {
	matches := func(pat string) bool { return mcpMatch(pat, in.server, in.tool) }
	if i := slices.IndexFunc(m.blockedTools, matches); i >= 0 {
		return "", deny(CodeNotAllowed, "mcp.blockedTools: "+m.blockedTools[i], "tool %q on server %q is blocked", in.tool, in.server), false
	}
	if m.allowedServers != nil && !slices.ContainsFunc(m.allowedServers, func(p string) bool { return wild(p, in.server) }) {
		return "", deny(CodeNotAllowed, "mcp.allowedServers", "server %q is not on the allowed_servers list", in.server), false
	}
	if m.allowedTools != nil && !slices.ContainsFunc(m.allowedTools, matches) {
		return "", deny(CodeNotAllowed, "mcp.allowedTools", "tool %q on server %q is not on the allowed_tools list", in.tool, in.server), false
	}
	if m.requireShim != nil && *m.requireShim && !in.shim {
		return "", deny(CodeProvenanceRequired, "mcp.requireShim", "the policy requires MCP intents to arrive through a trusted shim"), false
	}
	if i := slices.IndexFunc(m.requireApproval, matches); i >= 0 {
		return "mcp.requireApproval: " + m.requireApproval[i], Decision{}, true
	}
	return "", Decision{}, true
}

// --- ## tool_calls ---

// eval applies ## tool_calls to a non-MCP action (or an MCP action when the
// policy has no ## mcp block). It returns the hold rule, if any.
func (t *toolRules) eval(in intent) (string, Decision, bool) {
	a := in.action
	if !slices.Contains(t.allowed, a) {
		return "", deny(CodeNotAllowed, "tool_calls.allowed", "action %q is not on the tool_calls allowed list", a), false
	}
	if t.requireShim != nil && *t.requireShim && !in.shim {
		return "", deny(CodeProvenanceRequired, "tool_calls.requireShim", "the policy requires intents to arrive through a trusted shim"), false
	}
	str := func(k string) (string, bool) {
		s, ok := in.str(k)
		return s, ok && s != ""
	}
	switch a {
	case "bash":
		if len(t.bashBlocked) > 0 {
			cmd, ok := str("command")
			if !ok {
				return "", deny(CodeValidation, "tool_calls.bashBlockedCommands", "bash intent lacks a command"), false
			}
			if i := slices.IndexFunc(t.bashBlocked, func(b string) bool { return strings.Contains(cmd, b) }); i >= 0 {
				b := t.bashBlocked[i]
				return "", deny(CodeNotAllowed, "tool_calls.bashBlockedCommands: "+b, "command contains the blocked text %q", b), false
			}
		}
	case "web_fetch":
		if len(t.webBlockedDomains) > 0 {
			host, ok := hostOf(in.member("url"))
			if !ok {
				return "", deny(CodeValidation, "tool_calls.webFetchBlockedDomains", "web_fetch intent lacks a valid url"), false
			}
			for _, d := range t.webBlockedDomains {
				d = strings.TrimSuffix(strings.ToLower(d), ".")
				if host == d || strings.HasSuffix(host, "."+d) {
					return "", deny(CodeNotAllowed, "tool_calls.webFetchBlockedDomains: "+d, "host %q is blocked", host), false
				}
			}
		}
	case "file_write":
		if len(t.fileBlockedPaths) > 0 {
			p, ok := str("path")
			if !ok {
				return "", deny(CodeValidation, "tool_calls.fileWriteBlockedPaths", "file_write intent lacks a path"), false
			}
			clean := path.Clean(p)
			if i := slices.IndexFunc(t.fileBlockedPaths, func(b string) bool { return strings.HasPrefix(p, b) || strings.HasPrefix(clean, b) }); i >= 0 {
				b := t.fileBlockedPaths[i]
				return "", deny(CodeNotAllowed, "tool_calls.fileWriteBlockedPaths: "+b, "path %q is under the blocked path %q", p, b), false
			}
		}
	case "http":
		method, _ := str("method")
		if !ValidMethod(method) {
			return "", deny(CodeValidation, "tool_calls.http", "http intent needs an uppercase method (GET, HEAD, OPTIONS, POST, PUT, PATCH, DELETE)"), false
		}
		host, ok := hostOf(in.member("url"))
		if !ok {
			return "", deny(CodeValidation, "tool_calls.http", "http intent lacks a valid url"), false
		}
		if slices.Contains(t.httpBlockedMethods, method) {
			return "", deny(CodeNotAllowed, "tool_calls.httpBlockedMethods: "+method, "HTTP method %s is blocked", method), false
		}
		if t.httpAllowedMethods != nil && !slices.Contains(t.httpAllowedMethods, method) {
			return "", deny(CodeNotAllowed, "tool_calls.httpAllowedMethods", "HTTP method %s is not allowed", method), false
		}
		if t.httpAllowedHosts != nil && !slices.ContainsFunc(t.httpAllowedHosts, func(h string) bool {
			if sub, ok := strings.CutPrefix(h, "*."); ok {
				return strings.HasSuffix(host, "."+sub)
			}
			return host == h
		}) {
			return "", deny(CodeNotAllowed, "tool_calls.httpAllowedHosts", "host %q is not on the allowed hosts list", host), false
		}
	case "email.send":
		if t.emailBlocked != nil || t.emailAllowed != nil {
			rcpts, ok := recipients(in.member("to"))
			if !ok {
				return "", deny(CodeValidation, "tool_calls.emailRecipientRequired", "email.send intent lacks recipients in to"), false
			}
			for _, r := range rcpts {
				if i := slices.IndexFunc(t.emailBlocked, func(b string) bool { return recipientMatch(b, r) }); i >= 0 {
					return "", deny(CodeBlockedRecipient, "tool_calls.emailBlockedRecipients: "+t.emailBlocked[i], "recipient %q is blocked", r), false
				}
			}
			if t.emailAllowed != nil {
				for _, r := range rcpts {
					if !slices.ContainsFunc(t.emailAllowed, func(a string) bool { return recipientMatch(a, r) }) {
						return "", deny(CodeRecipientNotAllow, "tool_calls.emailAllowedRecipients", "recipient %q is not on the allowed recipients list", r), false
					}
				}
			}
		}
		if t.emailRequireApproval {
			return "tool_calls.emailRequireApproval", Decision{}, true
		}
	}
	return firstAction("tool_calls.requireApproval: ", t.requireApproval, a), Decision{}, true
}

// hostOf returns the lowercase host name (no port, no trailing dot) of an
// absolute http(s) URL value.
func hostOf(v any) (string, bool) {
	s, ok := v.(string)
	if !ok {
		return "", false
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return "", false
	}
	return strings.TrimSuffix(strings.ToLower(u.Hostname()), "."), true
}

// recipients returns the lowercase recipients of intent.to (a string or an
// array of strings); ok is false when missing, empty or malformed.
func recipients(v any) ([]string, bool) {
	var out []string
	switch x := v.(type) {
	case string:
		out = []string{x}
	case []any:
		for _, e := range x {
			s, ok := e.(string)
			if !ok {
				return nil, false
			}
			out = append(out, s)
		}
	}
	for i, r := range out {
		r = strings.ToLower(strings.TrimSpace(r))
		if r == "" {
			return nil, false
		}
		out[i] = r
	}
	return out, len(out) > 0
}

// recipientMatch: "*@domain" matches exactly that domain (no subdomains);
// anything else is an exact, case-insensitive address.
func recipientMatch(entry, rcpt string) bool {
	if d, ok := strings.CutPrefix(entry, "*@"); ok {
		at := strings.LastIndexByte(rcpt, '@')
		return at >= 0 && rcpt[at+1:] == d
	}
	return entry == rcpt
}
