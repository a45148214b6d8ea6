package policy

import (
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Sections the grammar knows. The embedded engine implements only the
// first four; the rest are rejected with a clear "not supported" error
// rather than being ignored (an ignored ## evm cap or ## repository boundary
// would silently weaken the operator's policy).
const (
	secCustom    = "custom"
	secToolCalls = "tool_calls"
	secMCP       = "mcp"
	secLimits    = "execution_limits"
)

func unsupportedSection(name string) bool {
	return slices.Contains([]string{"evm", "soft_limits", "repository", "filesystem", "git", "database"}, name)
}

// grammar holds the compiled regular expressions of one Parse call, so that
// the package keeps no state of its own between calls.
type grammar struct {
	indentedHeading *regexp.Regexp
	heading         *regexp.Regexp
	version         *regexp.Regexp
	versionDecl     *regexp.Regexp
	versionPunct    *regexp.Regexp
	versionGlued    *regexp.Regexp
	rootKey         *regexp.Regexp
	rootSyntaxKey   *regexp.Regexp
	rootSyntax      []*regexp.Regexp
	v2Only          *regexp.Regexp
	keyValue        *regexp.Regexp
	generic         *regexp.Regexp
	allowOnly       *regexp.Regexp
	denyIf          *regexp.Regexp
	denyString      *regexp.Regexp
	semver          *regexp.Regexp
	hostLabel       *regexp.Regexp
	positiveInt     *regexp.Regexp
}

func newGrammar() *grammar {
	m := regexp.MustCompile
	return &grammar{
		indentedHeading: m(`^ {1,3}##\s+\S`),
		heading:         m(`^##\s+(.+?)\s*$`),
		version:         m(`(?i)^\s*version:\s*(.+?)\r?$`),
		versionDecl:     m(`(?i)^version(?:\s*[:=]|\s*$|\s+\d)`),
		versionPunct:    m(`(?i)^version\s+[^A-Za-z0-9\s:=]+(?:\s*(?::|=)|\s+\d+\.\d+\.\d+(?:\s|$))`),
		versionGlued:    m(`(?i)^version[^A-Za-z0-9\s:=]+(?:\s*(?::|=)|\s+\d+\.\d+\.\d+(?:\s|$))`),
		rootKey:         m(`^([A-Za-z][\w-]*)(?:\s*[:=]|\s+\d+\.\d+\.\d+(?:\s|$))`),
		rootSyntaxKey:   m(`^([A-Za-z_][\w.]*)\s*:`),
		rootSyntax: []*regexp.Regexp{
			m(`^token\.[A-Za-z0-9_]+\.(?:max_transaction|consensus_threshold|decimals|addresses)\s*:`),
			m(`^cap\.[A-Za-z0-9_-]+\.(?:max_count|max_sum_usd|window|action|group_by|amount_field)\s*:`),
			m(`^allow_only(?:\[action=[^\]]*\])?\.[^\s:]+(?:\s+attested)?(?:\s+(?:contains|starts_with|prefix|ends_with|matches|equals))?\s*:`),
			m(`^deny_if\.\S+\s+(?:contains|starts_with|ends_with|matches|equals|not_equals)\s+.+$`),
		},
		v2Only:      m(`^(?:\s*allow_only(?:\[action=[^\]]+\])?\.[^\s:]+\s+(?:attested\s+)?(?:contains|starts_with|prefix|ends_with|matches|equals)\s*:|\s*http\.(?:allowed_methods|allowed_hosts|blocked_methods):|\s*cap\.[A-Za-z0-9_-]+\.)`),
		keyValue:    m(`^([\w.]+):\s*(.+)$`),
		generic:     m(`^(require_approval|require_shim):\s*(.+)$`),
		allowOnly:   m(`^allow_only(?:\[action=([^\]]*)\])?\.([^\s:]+)(?:\s+(attested))?(?:\s+(contains|starts_with|prefix|ends_with|matches|equals))?\s*:\s*(.*)$`),
		denyIf:      m(`^deny_if\.(\S+)\s+(contains|starts_with|ends_with|matches|equals|not_equals)\s+(.+)$`),
		denyString:  m(`^deny_string:\s*(.+)$`),
		semver:      m(`^\d+\.\d+\.\d+$`),
		hostLabel:   m(`^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?$`),
		positiveInt: m(`^\d+$`),
	}
}

// srcLine is one cleaned policy line with its 1-based line number.
type srcLine struct {
	n    int
	text string
}

// parser carries the state of one parseText call.
type parser struct {
	g       *grammar
	version string
	isV2    bool
	section string
}

func (p *parser) errf(line int, key, format string, args ...any) error {
	return &ParseError{Line: line, Section: p.section, Key: key, Code: "POLICY_SYNTAX", Msg: fmt.Sprintf(format, args...)}
}

// parseText parses the unsigned policy text (signature block already
// removed) into a Policy.
func parseText(text string) (*Policy, error) {
	structural, err := maskHTMLComments(text)
	if err != nil {
		return nil, err
	}
	g := newGrammar()
	p := &parser{g: g}
	lines := strings.Split(structural, "\n")
	if i := slices.IndexFunc(lines, g.indentedHeading.MatchString); i >= 0 {
		return nil, &ParseError{Line: i + 1, Code: "POLICY_SYNTAX", Msg: "indented policy headings are not supported"}
	}

	// Root: everything before the first "## " heading.
	type section struct {
		name  string
		line  int
		lines []srcLine
	}
	var sections []*section
	rootEnd := len(lines)
	for i, l := range lines {
		m := g.heading.FindStringSubmatch(l)
		if m == nil {
			if len(sections) > 0 {
				cur := sections[len(sections)-1]
				if t := strings.TrimSpace(l); t != "" && !strings.HasPrefix(t, "#") {
					cur.lines = append(cur.lines, srcLine{n: i + 1, text: t})
				}
			}
			continue
		}
		if len(sections) == 0 {
			rootEnd = i
		}
		name := strings.ToLower(strings.TrimSpace(m[1]))
		switch {
		case unsupportedSection(name):
			return nil, &ParseError{Line: i + 1, Section: name, Code: "POLICY_UNSUPPORTED_SECTION", Msg: fmt.Sprintf("section ## %s is not supported by the embedded engine", name)}
		case name != secCustom && name != secToolCalls && name != secMCP && name != secLimits:
			return nil, &ParseError{Line: i + 1, Section: name, Code: "POLICY_UNKNOWN_SECTION", Msg: fmt.Sprintf("unknown policy block ## %s", name)}
		case slices.ContainsFunc(sections, func(s *section) bool { return s.name == name }):
			return nil, &ParseError{Line: i + 1, Section: name, Code: "POLICY_DUPLICATE_SECTION", Msg: fmt.Sprintf("duplicate policy block ## %s", name)}
		}
		sections = append(sections, &section{name: name, line: i + 1})
	}
	if err := p.parseVersion(lines[:rootEnd]); err != nil {
		return nil, err
	}
	if i := slices.IndexFunc(lines, g.v2Only.MatchString); !p.isV2 && i >= 0 {
		return nil, &ParseError{Line: i + 1, Code: "POLICY_VERSION", Msg: "policy syntax requires version 2.0.0"}
	}

	pol := &Policy{version: p.version}
	canon := map[string]any{"version": p.version}
	for _, s := range sections {
		p.section = s.name
		// A section's canonical JSON is empty exactly when it declares
		// nothing enforceable (## custom or ## execution_limits without
		// rules; the others reject that).
		var sj map[string]any
		switch s.name {
		case secCustom:
			pol.custom, sj, err = p.parseCustom(s.lines)
		case secToolCalls:
			pol.tools, sj, err = p.parseToolCalls(s.lines, s.line)
		case secMCP:
			pol.mcp, sj, err = p.parseMCP(s.lines, s.line)
		case secLimits:
			pol.limits, sj, err = p.parseLimits(s.lines)
		}
		if err != nil {
			return nil, err
		}
		if len(sj) > 0 {
			canon[s.name] = sj
		}
	}
	p.section = ""
	if len(canon) == 1 { // only the version
		return nil, &ParseError{Code: "POLICY_EMPTY", Msg: "warranty.md must contain an enforceable policy block (## mcp, ## tool_calls, ## custom or ## execution_limits)"}
	}
	pol.canonJSON, pol.hash, err = canonicalize(canon)
	if err != nil {
		return nil, err
	}
	return pol, nil
}

// parseVersion reads the root version line and rejects root lines that look
// like a mistyped version or a policy key outside any block.
func (p *parser) parseVersion(root []string) error {
	g := p.g
	var values []string
	for i, line := range root {
		t := strings.TrimSpace(line)
		if t == "" || strings.HasPrefix(t, "#") {
			continue
		}
		if m := g.version.FindStringSubmatch(line); m != nil {
			values = append(values, strings.TrimSpace(m[1]))
			if len(values) > 1 {
				return &ParseError{Line: i + 1, Key: "version", Code: "POLICY_VERSION", Msg: "duplicate version fields are not allowed"}
			}
			continue
		}
		if g.isRootPolicySyntax(t) {
			return &ParseError{Line: i + 1, Code: "POLICY_SYNTAX", Msg: fmt.Sprintf("policy field must be inside a policy block: %s", t)}
		}
		u := strings.TrimLeft(t, "-*+> \t")
		if g.versionDecl.MatchString(u) || g.versionPunct.MatchString(u) {
			return &ParseError{Line: i + 1, Key: "version", Code: "POLICY_VERSION", Msg: fmt.Sprintf("invalid root version declaration: %s", t)}
		}
		if g.versionGlued.MatchString(u) {
			return &ParseError{Line: i + 1, Code: "POLICY_VERSION", Msg: fmt.Sprintf("unrecognized root policy field: %s", t)}
		}
		if m := g.rootKey.FindStringSubmatch(u); m != nil && isVersionTypo(m[1]) {
			return &ParseError{Line: i + 1, Code: "POLICY_VERSION", Msg: fmt.Sprintf("unrecognized root policy field: %s (did you mean version?)", t)}
		}
	}
	v := "0.0.0"
	if len(values) == 1 {
		v = values[0]
	}
	if !g.semver.MatchString(v) {
		return &ParseError{Key: "version", Code: "POLICY_VERSION", Msg: fmt.Sprintf("invalid policy version %q; expected semver X.Y.Z", v)}
	}
	major, _ := strconv.Atoi(strings.SplitN(v, ".", 2)[0])
	if (major == 0 && v != "0.0.0") || (major == 2 && v != "2.0.0" && v != "2.1.0") || major > 2 {
		return &ParseError{Key: "version", Code: "POLICY_VERSION", Msg: fmt.Sprintf("policy version %s is not supported by this engine", v)}
	}
	p.version = v
	p.isV2 = v == "2.0.0" || v == "2.1.0"
	return nil
}

func (g *grammar) isRootPolicySyntax(line string) bool {
	if m := g.rootSyntaxKey.FindStringSubmatch(line); m != nil && rootPolicyKey(m[1]) {
		return true
	}
	return slices.ContainsFunc(g.rootSyntax, func(re *regexp.Regexp) bool { return re.MatchString(line) })
}

func rootPolicyKey(k string) bool {
	return slices.Contains([]string{"require_approval", "require_shim",
		"max_transaction_eth", "allowed_actions", "allowed_chains", "chain_actions", "consensus_threshold_eth", "consensus_require_hold",
		"allowed", "bash.blocked_commands", "web_fetch.blocked_domains", "file_write.blocked_paths", "email.require_approval", "email.allowed_recipients", "email.blocked_recipients",
		"http.allowed_methods", "http.allowed_hosts", "http.blocked_methods",
		"deny_string", "allowed_servers", "allowed_tools", "blocked_tools",
		"daily_tool_calls", "daily_evm_limit_eth",
		"max_tool_calls_per_task", "max_tool_calls_per_hour", "max_model_spend_usd_per_task", "max_model_tokens_per_task",
		"roots", "block_outside_writes", "protect_git_history", "protect_sensitive_files", "git_providers",
		"actions", "write_roots", "read_roots", "allowed_effects", "blocked_paths", "protected_file_classes", "protected_class_catalog",
		"protected_effects", "max_files_per_action", "max_bytes_written_per_task", "max_bytes_deleted_per_task", "max_destructive_effects_per_task",
		"filesystem_actions", "providers", "allowed_remote_schemes", "allowed_operations", "blocked_operations", "protected_refs", "max_ref_changes_per_task",
		"protected_environments", "allowed_resources", "routine_catalog", "require_read_only_for_select", "deny_unreviewed_indirect_effects",
		"max_schema_changes_per_task", "statement_timeout_ms", "lock_timeout_ms",
	}, k)
}

// isVersionTypo reports whether key is one edit (deletion, insertion,
// substitution or adjacent transposition) away from "version".
func isVersionTypo(key string) bool {
	s, t := strings.ToLower(key), "version"
	if len(s) < len(t) {
		s, t = t, s
	}
	switch len(s) - len(t) {
	case 0: // substitution or transposition; "version" itself has no mismatch
		var mis []int
		for i := range s {
			if s[i] != t[i] {
				mis = append(mis, i)
			}
		}
		return len(mis) == 1 || (len(mis) == 2 && mis[1] == mis[0]+1 && s[mis[0]] == t[mis[1]] && s[mis[1]] == t[mis[0]])
	case 1: // deletion from the longer one
		for i := range s {
			if s[:i]+s[i+1:] == t {
				return true
			}
		}
	}
	return false
}

// --- value helpers (warrant-core policy.ts semantics) ---

func unquote(v string) string {
	if len(v) > 0 && (v[0] == '"' || v[0] == '\'') && v[len(v)-1] == v[0] {
		return v[1:max(1, len(v)-1)] // a lone quote is ""
	}
	return v
}

// list splits a comma-separated inline list, trimming and unquoting entries
// and dropping empty ones.
func list(v string) []string {
	var out []string
	for e := range strings.SplitSeq(v, ",") {
		if e = unquote(strings.TrimSpace(e)); e != "" {
			out = append(out, e)
		}
	}
	return out
}

func uniq(v []string) []string {
	out := make([]string, 0, len(v))
	for _, e := range v {
		if !slices.Contains(out, e) {
			out = append(out, e)
		}
	}
	return out
}

// validPattern: an exact value, or one trailing "*" wildcard.
func validPattern(v string) bool {
	i := strings.IndexByte(v, '*')
	return v != "" && (i < 0 || i == len(v)-1)
}

func (p *parser) patternList(l srcLine, key, value string) ([]string, error) {
	return p.validList(l, key, list(value), validPattern, "must contain exact values or one trailing * wildcard")
}

// validList returns vals without repeats, or an error saying msg when vals
// is empty or holds an entry that is not valid.
func (p *parser) validList(l srcLine, key string, vals []string, valid func(string) bool, msg string) ([]string, error) {
	if len(vals) == 0 || slices.ContainsFunc(vals, func(e string) bool { return !valid(e) }) {
		return nil, p.errf(l.n, key, "%s", msg)
	}
	return uniq(vals), nil
}

func (p *parser) boolean(l srcLine, key, value string, strict bool) (bool, error) {
	n := strings.ToLower(strings.TrimSpace(value))
	if strict && n != "true" && n != "false" {
		return false, p.errf(l.n, key, "must be true or false, got %q", value)
	}
	return n == "true", nil
}

func (p *parser) positiveInt(l srcLine, key, value string) (int64, error) {
	raw := strings.TrimSpace(value)
	if !p.g.positiveInt.MatchString(raw) {
		return 0, p.errf(l.n, key, "must be a positive integer, got %q", value)
	}
	n, err := strconv.ParseInt(raw, 10, 64)
	if err != nil || n < 1 || n > 1<<53-1 {
		return 0, p.errf(l.n, key, "must be a positive integer no larger than 2^53-1, got %q", value)
	}
	return n, nil
}

// eachKey splits section lines into key/value pairs, rejecting lines that
// are not "key: value" (block lists included) and duplicate keys, all lines
// first. Then it hands each pair to p.generic and, unless that took it, to
// fn.
func (p *parser) eachKey(lines []srcLine, c *controls, canon map[string]any, fn func(l srcLine, key, value string) error) error {
	seen := map[string]bool{}
	pairs := make([][]string, len(lines))
	for i, l := range lines {
		m := p.g.keyValue.FindStringSubmatch(l.text)
		if m == nil {
			return p.errf(l.n, "", "unrecognized line %q (expected key: value; lists are inline and comma-separated)", l.text)
		}
		if seen[m[1]] {
			return p.errf(l.n, m[1], "duplicate key")
		}
		seen[m[1]] = true
		pairs[i] = m
	}
	for i, m := range pairs {
		if ok, err := p.generic(c, canon, lines[i], m[1], m[2]); ok {
			if err != nil {
				return err
			}
			continue
		}
		if err := fn(lines[i], m[1], m[2]); err != nil {
			return err
		}
	}
	return nil
}

// controls holds the generic require_approval / require_shim keys shared by
// every section.
type controls struct {
	requireApproval []string
	requireShim     *bool
}

func (p *parser) generic(c *controls, canon map[string]any, l srcLine, key, value string) (bool, error) {
	switch {
	case key != "require_approval" && key != "require_shim":
		return false, nil
	case !p.isV2:
		return true, p.errf(l.n, key, "requires version 2.0.0")
	case key == "require_approval" && c.requireApproval != nil, key == "require_shim" && c.requireShim != nil:
		return true, p.errf(l.n, key, "duplicate key")
	case key == "require_approval":
		v, err := p.patternList(l, key, value)
		c.requireApproval, canon["requireApproval"] = v, v
		return true, err
	}
	b, err := p.boolean(l, key, value, true)
	c.requireShim, canon["requireShim"] = &b, b
	return true, err
}

// --- ## mcp ---

type mcpRules struct {
	allowedServers []string // nil: not declared
	allowedTools   []string
	blockedTools   []string
	controls
}

func (p *parser) parseMCP(lines []srcLine, header int) (*mcpRules, map[string]any, error) {
	if !p.isV2 {
		return nil, nil, p.errf(header, "", "policy block ## mcp requires version 2.0.0")
	}
	r := &mcpRules{}
	canon := map[string]any{}
	err := p.eachKey(lines, &r.controls, canon, func(l srcLine, key, value string) error {
		var dst *[]string
		var ck string
		switch key {
		case "allowed_servers":
			dst, ck = &r.allowedServers, "allowedServers"
		case "allowed_tools":
			dst, ck = &r.allowedTools, "allowedTools"
		case "blocked_tools":
			dst, ck = &r.blockedTools, "blockedTools"
		default:
			return p.errf(l.n, key, "unknown key (## mcp supports allowed_servers, allowed_tools, blocked_tools, require_approval, require_shim)")
		}
		v, err := p.patternList(l, key, value)
		*dst, canon[ck] = v, v
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	if r.allowedServers == nil && r.allowedTools == nil && r.blockedTools == nil {
		return nil, nil, p.errf(header, "", "must declare at least one of allowed_servers, allowed_tools or blocked_tools")
	}
	overlap := slices.DeleteFunc(slices.Clone(r.allowedTools), func(t string) bool {
		return !slices.Contains(r.blockedTools, t)
	})
	if len(overlap) > 0 {
		return nil, nil, p.errf(header, "allowed_tools", "lists the same tool in both allowed_tools and blocked_tools: %s", strings.Join(overlap, ", "))
	}
	return r, canon, nil
}

// --- ## tool_calls ---

type toolRules struct {
	allowed              []string
	bashBlocked          []string
	webBlockedDomains    []string
	fileBlockedPaths     []string
	emailRequireApproval bool
	emailAllowed         []string // nil: not declared
	emailBlocked         []string
	httpAllowedMethods   []string
	httpBlockedMethods   []string
	httpAllowedHosts     []string
	controls
}

func (p *parser) parseToolCalls(lines []srcLine, header int) (*toolRules, map[string]any, error) {
	r := &toolRules{}
	canon := map[string]any{}
	// The list keys, and their names in the canonical policy JSON.
	lists := map[string]struct {
		dst   *[]string
		canon string
	}{
		"allowed":                   {&r.allowed, "allowed"},
		"bash.blocked_commands":     {&r.bashBlocked, "bashBlockedCommands"},
		"web_fetch.blocked_domains": {&r.webBlockedDomains, "webFetchBlockedDomains"},
		"file_write.blocked_paths":  {&r.fileBlockedPaths, "fileWriteBlockedPaths"},
		"email.allowed_recipients":  {&r.emailAllowed, "emailAllowedRecipients"},
		"email.blocked_recipients":  {&r.emailBlocked, "emailBlockedRecipients"},
		"http.allowed_methods":      {&r.httpAllowedMethods, "httpAllowedMethods"},
		"http.blocked_methods":      {&r.httpBlockedMethods, "httpBlockedMethods"},
		"http.allowed_hosts":        {&r.httpAllowedHosts, "httpAllowedHosts"},
	}
	err := p.eachKey(lines, &r.controls, canon, func(l srcLine, key, value string) error {
		if key == "email.require_approval" {
			b, err := p.boolean(l, key, value, p.isV2)
			r.emailRequireApproval, canon["emailRequireApproval"] = b, b
			return err
		}
		d, ok := lists[key]
		if !ok {
			return p.errf(l.n, key, "unknown key")
		}
		if strings.HasPrefix(key, "http.") && !p.isV2 {
			return p.errf(l.n, key, "http policy keys require version 2.0.0")
		}
		v := list(value)
		var err error
		switch key {
		case "email.allowed_recipients", "email.blocked_recipients":
			for j := range v {
				v[j] = strings.ToLower(v[j])
			}
			if v == nil {
				v = []string{}
			}
		case "http.allowed_methods", "http.blocked_methods":
			v, err = p.validList(l, key, v, ValidMethod, "must contain only uppercase HTTP methods (GET, HEAD, OPTIONS, POST, PUT, PATCH, DELETE)")
		case "http.allowed_hosts":
			for j := range v {
				v[j] = strings.TrimSuffix(strings.ToLower(v[j]), ".")
			}
			v, err = p.validList(l, key, v, p.validHost, "must contain valid host names (use *.example.com for subdomains)")
		}
		*d.dst, canon[d.canon] = v, v
		return err
	})
	if err != nil {
		return nil, nil, err
	}
	if len(r.allowed) == 0 {
		return nil, nil, p.errf(header, "allowed", "## tool_calls requires at least one allowed tool")
	}
	return r, canon, nil
}

// ValidMethod reports whether m is an HTTP method an http intent may carry:
// uppercase only, never normalised (docs/protocol.md#extractors).
func ValidMethod(m string) bool {
	return slices.Contains([]string{"GET", "HEAD", "OPTIONS", "POST", "PUT", "PATCH", "DELETE"}, m)
}

func (p *parser) validHost(v string) bool {
	h := strings.TrimPrefix(v, "*.")
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || !p.g.hostLabel.MatchString(label) {
			return false
		}
	}
	return true
}

// --- ## execution_limits ---

type execLimits struct {
	perTask int64 // 0: not declared
	perHour int64
	controls
}

func (l *execLimits) enforceable() bool {
	return l.perTask > 0 || l.perHour > 0 || l.requireApproval != nil || (l.requireShim != nil && *l.requireShim)
}
func (p *parser) parseLimits(lines []srcLine) (*execLimits, map[string]any, error) {
	r := &execLimits{}
	canon := map[string]any{}
	err := p.eachKey(lines, &r.controls, canon, func(l srcLine, key, value string) error {
		var err error
		switch key {
		case "max_tool_calls_per_task":
			r.perTask, err = p.positiveInt(l, key, value)
			canon["maxToolCallsPerTask"] = r.perTask
		case "max_tool_calls_per_hour":
			r.perHour, err = p.positiveInt(l, key, value)
			canon["maxToolCallsPerHour"] = r.perHour
		case "max_model_spend_usd_per_task", "max_model_tokens_per_task":
			return &ParseError{Line: l.n, Section: p.section, Key: key, Code: "POLICY_UNSUPPORTED_KEY", Msg: "key is not supported by the embedded engine"}
		default:
			return p.errf(l.n, key, "unknown key")
		}
		return err
	})
	switch {
	case err != nil:
		return nil, nil, err
	case len(canon) == 0:
		return nil, nil, nil
	case !r.enforceable():
		return nil, nil, p.errf(lines[0].n, "", "## execution_limits must declare at least one enforceable control")
	}
	return r, canon, nil
}
