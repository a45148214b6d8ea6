package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/url"
	"path"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/BurntSushi/toml"

	"github.com/sigilcore/sigil-hub/authz"
	"github.com/sigilcore/sigil-hub/internal/headername"
	"github.com/sigilcore/sigil-hub/internal/secretlike"
	"github.com/sigilcore/sigil-hub/upstreams"
)

// Config is the hub's TOML file after parsing, defaulting and validation,
// all in one place, so that no other package reads the file. It is a plain
// value: Parse returns a fresh one and nothing in it is shared, so it may
// be read from any number of goroutines; hub.New translates it into each
// leaf's options.
type Config struct {
	// SignURL is the Sigil Sign origin (sign_url), without a trailing slash.
	// Default "https://sign.sigilcore.com". Checked by authz.CheckSignURL,
	// like --sign-url and SIGIL_SIGN_URL: plain http only for loopback hosts
	// (the API key travels with every request), no user information.
	SignURL string
	// LogLevel is log_level: "debug", "info", "warn" or "error". Default "info".
	LogLevel string
	// LogFormat is log_format: "text" (coloured on a terminal) or "json"
	// (one object per line with a stable "event" on the lines operators
	// alert on). Default "text".
	LogFormat string
	// PendingTimeout is pending_timeout (integer milliseconds in the file):
	// how long a PENDING call waits for approval
	// (docs/protocol.md#holds-pending). Default 30s.
	PendingTimeout time.Duration
	// StartupTimeout is startup_timeout (milliseconds): how long the first
	// tools/list waits for upstreams that are still starting. Default 30s.
	StartupTimeout time.Duration
	// CallTimeout is call_timeout (milliseconds): the budget of one
	// tools/call, shared by authorization, any hold and the upstream call.
	// Default 120000.
	CallTimeout time.Duration
	// Separator is separator: between upstream name and tool or prompt name
	// in exposed names. Default "__"; 1–8 characters from [A-Za-z0-9_-].
	Separator string
	// AgentID is agent_id, the request's agentId
	// (docs/protocol.md#the-authorize-request). Empty = not set (the
	// client's clientInfo.name, else "sigil-hub", is used).
	AgentID string
	// TaskID is task_id (docs/protocol.md#task_id), matching
	// ^[A-Za-z0-9_-]{1,128}$. Empty = one random id per client session.
	TaskID string
	// Verify is verify: "off", "warn" or "enforce"
	// (docs/protocol.md#attestations-and-the-jwks). Default "warn".
	Verify string
	// PolicyHash is policy_hash: an optional pin, 64 lowercase hex digits.
	PolicyHash string
	// Policy is policy: an optional path to a local warranty.md, made
	// absolute against the config file's folder. Empty = none. Parse
	// does not read it.
	Policy string
	// Audit is audit: an optional path of the audit log (one JSON line per
	// tool call attempt), made absolute against the config file's folder.
	// Empty = no audit log.
	Audit string
	// Pin is pin: what a changed tool definition does (tool pinning, see
	// package pins). "warn" (the default) serves it and logs a warning once per
	// change; "strict" hides it until `sigil-hub pins accept`; "off"
	// disables pinning.
	Pin string
	// PinFile is pin_file: the pin store, made absolute against the config
	// file's folder. Empty = <user config dir>/sigil-hub/pins.json, chosen
	// by the CLI (the hub keeps pins in memory only when it stays empty).
	PinFile string
	// Servers are the [servers.NAME] tables in file order, disabled ones
	// included (with Disabled set).
	Servers []Server
}

// Server is one upstream, [servers.NAME]. Exactly one of Command and URL is
// set. Part of Config: a plain value, read-only after Parse.
type Server struct {
	// Name is the table key: the namespace in exposed names, matching
	// ^[A-Za-z0-9_-]{1,32}$.
	Name string
	// Command and Args start a stdio upstream. Args are not expanded.
	Command string
	Args    []string
	// Env is the stdio child's extra environment, with $VAR, ${VAR} and
	// ${VAR:-default} expanded through getenv ($$ is a literal $). A value
	// written in the file that looks like a secret is refused
	// (cfgEnvLiteral), and so is any reference to, or variable named like,
	// one of the hub's own secrets (upstreams.HubSecret). Nil for a
	// disabled server (not expanded) or when empty.
	Env map[string]string
	// Cwd is the stdio child's working directory, absolute, resolved
	// against the config file's folder; empty in the file means that folder.
	// Empty for a remote upstream.
	Cwd string
	// URL is a remote upstream's endpoint.
	URL string
	// Transport is a remote upstream's transport: "auto", "streamable" or
	// "sse". Default "auto"; empty for a stdio upstream.
	Transport string
	// Headers are sent to a remote upstream, expanded like Env. Every value
	// in the file references at least one variable and, besides its
	// references, holds at most a short scheme prefix such as "Bearer "
	// (cfgHeaderLiteral), so no secret is ever written in the file. Nil for
	// a disabled server or when empty.
	Headers map[string]string
	// OAuth is oauth: authorize with OAuth (remote only, see ServerOAuth).
	// Nil = no OAuth.
	OAuth *ServerOAuth
	// ServerID is server_id, verbatim, or derived
	// (docs/protocol.md#deriving-the-serverid): DeriveServerID for
	// stdio, DeriveServerIDFromURL for remote. Unique among enabled servers.
	ServerID string
	// ServerName is server_name, a display label only; default ServerID.
	ServerName string
	// Allow and Deny are the tool filters, tools = { allow = [...],
	// deny = [...] }: path.Match globs on the upstream's own tool names.
	// Empty Allow = every tool; Deny wins.
	Allow, Deny []string
	// Extractors map the upstream's own tool names to their extractors
	// (docs/protocol.md#extractors), [servers.NAME.extractors.TOOL]. Nil when
	// there are none.
	Extractors map[string]Extractor
	// Attestation is attach_attestation: attach the Sign attestation to
	// forwarded calls (docs/protocol.md#attestations-and-the-jwks). Default
	// true.
	Attestation bool
	// ServerRequests is server_requests: relay this server's sampling,
	// elicitation and roots requests to the client (when the client declared
	// the capability). Default true; false declares none of them to the
	// server and refuses them.
	ServerRequests bool
	// Disabled is disabled: the hub skips this server. A disabled server is
	// validated like the others, except that its variables are not expanded
	// (they need not be set) and its serverId may repeat another's.
	Disabled bool
}

// Extractor is one tool's extractor (docs/protocol.md#extractors). Part of
// Config: read-only after Parse.
type Extractor struct {
	// Action overrides the typed action the fields imply; empty = implied.
	Action string
	// Fields maps intent fields (url, path, command, method, to) to
	// dot-separated argument paths. Never empty.
	Fields map[string]string
}

// DefaultSignURL is the Sigil Sign origin used when sign_url is not set.
const DefaultSignURL = "https://sign.sigilcore.com"

// cfgMaxFileSize bounds the config file (it is read whole).
const cfgMaxFileSize = 1 << 20

// cfgMaxTimeoutMS bounds timeouts at one day.
const cfgMaxTimeoutMS = 24 * 60 * 60 * 1000

// The raw shape of the file. Every leaf is a toml.Primitive so that a type
// error in one key is reported without losing the others; keys that match
// no field stay undecoded and are reported as unknown.
type cfgRawFile struct {
	SignURL        toml.Primitive `toml:"sign_url"`
	LogLevel       toml.Primitive `toml:"log_level"`
	LogFormat      toml.Primitive `toml:"log_format"`
	PendingTimeout toml.Primitive `toml:"pending_timeout"`
	StartupTimeout toml.Primitive `toml:"startup_timeout"`
	CallTimeout    toml.Primitive `toml:"call_timeout"`
	Separator      toml.Primitive `toml:"separator"`
	AgentID        toml.Primitive `toml:"agent_id"`
	TaskID         toml.Primitive `toml:"task_id"`
	Verify         toml.Primitive `toml:"verify"`
	PolicyHash     toml.Primitive `toml:"policy_hash"`
	Policy         toml.Primitive `toml:"policy"`
	Audit          toml.Primitive `toml:"audit"`
	Pin            toml.Primitive `toml:"pin"`
	PinFile        toml.Primitive `toml:"pin_file"`
	Servers        toml.Primitive `toml:"servers"`
}

type cfgRawServer struct {
	Command           toml.Primitive `toml:"command"`
	Args              toml.Primitive `toml:"args"`
	Env               toml.Primitive `toml:"env"`
	Cwd               toml.Primitive `toml:"cwd"`
	URL               toml.Primitive `toml:"url"`
	Transport         toml.Primitive `toml:"transport"`
	Headers           toml.Primitive `toml:"headers"`
	OAuth             toml.Primitive `toml:"oauth"`
	ServerID          toml.Primitive `toml:"server_id"`
	ServerName        toml.Primitive `toml:"server_name"`
	Tools             toml.Primitive `toml:"tools"`
	Extractors        toml.Primitive `toml:"extractors"`
	AttachAttestation toml.Primitive `toml:"attach_attestation"`
	ServerRequests    toml.Primitive `toml:"server_requests"`
	Disabled          toml.Primitive `toml:"disabled"`
}

type cfgRawTools struct {
	Allow toml.Primitive `toml:"allow"`
	Deny  toml.Primitive `toml:"deny"`
}

// Parse reads a hub config file from r. dir is the file's folder:
// relative cwd and policy paths are resolved against it. getenv supplies
// the variables that env and headers values reference; it is the only
// source of environment (the package never reads the process's own), and
// an empty result counts as unset.
//
// Every problem is reported, each on its own line and prefixed with its key
// path (e.g. "servers.linear.headers.Authorization: ..."); the error is the
// errors.Join of them. No error ever contains the value of an env or
// headers entry or of any variable. Parse applies every default (see
// Config). It is safe for concurrent use if getenv is.
func Parse(r io.Reader, dir string, getenv func(string) string) (Config, error) {
	data, err := io.ReadAll(io.LimitReader(r, cfgMaxFileSize+1))
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	if len(data) > cfgMaxFileSize {
		return Config{}, fmt.Errorf("config file is larger than %d bytes", cfgMaxFileSize)
	}
	return parseConfig(data, dir, getenv, nil)
}

// parseConfig is Parse of data; a non-nil order gives the servers'
// order (a merged file has lost it).
func parseConfig(data []byte, dir string, getenv func(string) string, order []string) (Config, error) {
	var raw cfgRawFile
	md, err := toml.Decode(string(data), &raw)
	if err != nil {
		return Config{}, cfgSyntaxError(err)
	}
	p := &cfgParser{md: &md, dir: dir, getenv: getenv, order: order}
	cfg := p.file(&raw)
	p.unknownKeys()
	if errs := append(p.keyErrs, p.errs...); len(errs) > 0 {
		return Config{}, errors.Join(errs...)
	}
	return cfg, nil
}

// cfgSyntaxError reports a TOML syntax or decode error. The parser quotes
// the offending token, so under env or headers (where a secret may have
// been written unquoted) only the position is kept.
func cfgSyntaxError(err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		if cfgSecretPath(strings.Split(pe.LastKey, ".")) {
			return fmt.Errorf("config: line %d (key %s): invalid TOML value (not shown: it may be a secret)", pe.Position.Line, pe.LastKey)
		}
		return fmt.Errorf("config: line %d: %s", pe.Position.Line, pe.Message)
	}
	return fmt.Errorf("config: %v", err)
}

// cfgSecretPath reports whether a key path lies inside an env or headers
// table of a server (servers.NAME.env.*, servers.NAME.headers.*).
func cfgSecretPath(k []string) bool {
	return len(k) >= 3 && k[0] == "servers" && (k[2] == "env" || k[2] == "headers")
}

type cfgParser struct {
	md       *toml.MetaData
	dir      string
	getenv   func(string) string
	keyErrs  []error         // key-level problems, in file order
	errs     []error         // value problems
	reported map[string]bool // key paths already reported in keyErrs
	order    []string        // server order if not the file's
}

// cfgKeyPath formats a key path the way TOML would quote it.
func cfgKeyPath(parts ...string) string { return toml.Key(parts).String() }

func (p *cfgParser) errorf(key []string, format string, args ...any) {
	p.errs = append(p.errs, fmt.Errorf("%s: %s", cfgKeyPath(key...), fmt.Sprintf(format, args...)))
}

func cfgDefined(prim toml.Primitive) bool { return !reflect.ValueOf(prim).IsZero() }

// decode decodes one primitive into dst; a type error is reported as
// "<key>: must be <want>".
func (p *cfgParser) decode(prim toml.Primitive, key []string, dst any, want string) bool {
	if !cfgDefined(prim) {
		return false
	}
	if err := p.md.PrimitiveDecode(prim, dst); err != nil {
		p.errorf(key, "must be %s", want)
		return false
	}
	return true
}

// table decodes a TOML table into dst. The decoder silently ignores a
// non-table value decoded into a map, so the type is checked first; keys
// below a non-table are not reported again as unknown.
func (p *cfgParser) table(prim toml.Primitive, key []string, dst any, want string) bool {
	if !cfgDefined(prim) {
		return false
	}
	var v any
	if err := p.md.PrimitiveDecode(prim, &v); err == nil {
		if _, ok := v.(map[string]any); ok {
			return p.decode(prim, key, dst, want)
		}
	}
	p.misplaced(key, "must be "+want)
	return false
}

// misplaced reports a key that is known but not allowed here; keys below
// it are not reported again as unknown.
func (p *cfgParser) misplaced(key []string, msg string) {
	p.reported[cfgKeyPath(key...)] = true
	p.errorf(key, "%s", msg)
}

func (p *cfgParser) str(prim toml.Primitive, key []string, dst *string) bool {
	return p.decode(prim, key, dst, "a string")
}

func (p *cfgParser) strList(prim toml.Primitive, key []string, dst *[]string) bool {
	return p.decode(prim, key, dst, "an array of strings")
}

func (p *cfgParser) millis(prim toml.Primitive, key []string, def time.Duration) time.Duration {
	var ms int64
	if !p.decode(prim, key, &ms, "an integer number of milliseconds") {
		return def
	}
	if ms <= 0 {
		p.errorf(key, "must be a positive number of milliseconds")
		return def
	}
	if ms > cfgMaxTimeoutMS {
		p.errorf(key, "must be at most %d milliseconds (one day)", cfgMaxTimeoutMS)
		return def
	}
	return time.Duration(ms) * time.Millisecond
}

// file decodes and validates the top level. Every default is applied here
// and in server; nowhere else.
func (p *cfgParser) file(raw *cfgRawFile) Config {
	cfg := Config{
		SignURL:        DefaultSignURL,
		LogLevel:       "info",
		LogFormat:      "text",
		PendingTimeout: 30 * time.Second,
		StartupTimeout: 30 * time.Second,
		CallTimeout:    120 * time.Second,
		Separator:      "__",
		Verify:         "warn",
		Pin:            "warn",
	}
	serverOrder := p.scanKeys()
	if p.order != nil {
		serverOrder = p.order
	}

	if p.str(raw.SignURL, []string{"sign_url"}, &cfg.SignURL) {
		cfg.SignURL = p.signURL(cfg.SignURL)
	}
	if p.str(raw.LogLevel, []string{"log_level"}, &cfg.LogLevel) {
		switch cfg.LogLevel {
		case "debug", "info", "warn", "error":
		default:
			p.errorf([]string{"log_level"}, "must be debug, info, warn or error")
		}
	}
	if p.str(raw.LogFormat, []string{"log_format"}, &cfg.LogFormat) && cfg.LogFormat != "text" && cfg.LogFormat != "json" {
		p.errorf([]string{"log_format"}, "must be text or json")
	}
	cfg.PendingTimeout = p.millis(raw.PendingTimeout, []string{"pending_timeout"}, cfg.PendingTimeout)
	cfg.StartupTimeout = p.millis(raw.StartupTimeout, []string{"startup_timeout"}, cfg.StartupTimeout)
	cfg.CallTimeout = p.millis(raw.CallTimeout, []string{"call_timeout"}, cfg.CallTimeout)
	if p.str(raw.Separator, []string{"separator"}, &cfg.Separator) {
		if !cfgNameLike(cfg.Separator, 8) {
			p.errorf([]string{"separator"}, "must be 1 to 8 characters from A-Z, a-z, 0-9, '_' and '-'")
		}
	}
	if p.str(raw.AgentID, []string{"agent_id"}, &cfg.AgentID) {
		if cfg.AgentID == "" || len(cfg.AgentID) > 256 || strings.ContainsFunc(cfg.AgentID, cfgIsControl) {
			p.errorf([]string{"agent_id"}, "must be 1 to 256 bytes without control characters")
		}
	}
	if p.str(raw.TaskID, []string{"task_id"}, &cfg.TaskID) {
		if !cfgNameLike(cfg.TaskID, 128) {
			p.errorf([]string{"task_id"}, "must match ^[A-Za-z0-9_-]{1,128}$")
		}
	}
	if p.str(raw.Verify, []string{"verify"}, &cfg.Verify) {
		switch cfg.Verify {
		case "off", "warn", "enforce":
		default:
			p.errorf([]string{"verify"}, "must be off, warn or enforce")
		}
	}
	if p.str(raw.PolicyHash, []string{"policy_hash"}, &cfg.PolicyHash) {
		if len(cfg.PolicyHash) != 64 || strings.Trim(cfg.PolicyHash, "0123456789abcdef") != "" {
			p.errorf([]string{"policy_hash"}, "must be 64 lowercase hex digits")
		}
	}
	if p.str(raw.Policy, []string{"policy"}, &cfg.Policy) {
		if cfg.Policy == "" {
			p.errorf([]string{"policy"}, "must not be empty (leave it out for no local policy)")
		} else {
			cfg.Policy = p.resolve(cfg.Policy)
		}
	}
	if p.str(raw.Audit, []string{"audit"}, &cfg.Audit) {
		if cfg.Audit == "" {
			p.errorf([]string{"audit"}, "must not be empty (leave it out for no audit log)")
		} else {
			cfg.Audit = p.resolve(cfg.Audit)
		}
	}
	if p.str(raw.Pin, []string{"pin"}, &cfg.Pin) {
		switch cfg.Pin {
		case "off", "warn", "strict":
		default:
			p.errorf([]string{"pin"}, "must be off, warn or strict")
		}
	}
	if p.str(raw.PinFile, []string{"pin_file"}, &cfg.PinFile) {
		if cfg.PinFile == "" {
			p.errorf([]string{"pin_file"}, "must not be empty (leave it out for the default pin file)")
		} else {
			cfg.PinFile = p.resolve(cfg.PinFile)
		}
	}
	cfg.Servers = p.servers(raw.Servers, serverOrder)
	return cfg
}

// scanKeys walks every key in file order. It reports keys that must never
// be in the file (unsafe_bypass, API keys) and structural keys written with
// the wrong case (the decoder would accept them silently), and returns the
// server names in file order.
func (p *cfgParser) scanKeys() []string {
	p.reported = make(map[string]bool)
	var order []string
	for _, k := range p.md.Keys() {
		last := k[len(k)-1]
		norm := strings.NewReplacer("_", "", "-", "").Replace(strings.ToLower(last))
		path := k.String()
		switch {
		case norm == "unsafebypass" || norm == "sigilunsafebypass":
			p.keyError(path, "unsafe bypass cannot be set in the config file; it is a command-line flag only (--unsafe-bypass)")
			continue
		case !cfgStructural(k):
		case norm == "key" || norm == "apikey" || norm == "sigilapikey":
			p.keyError(path, "the Sigil API key is never read from the config file; set SIGIL_API_KEY in the environment")
			continue
		default:
			if want := cfgKnownKey(k); want != "" && want != last {
				p.keyError(path, fmt.Sprintf("unknown key (keys are case-sensitive: did you mean %s?)", want))
				continue
			}
		}
		if len(k) == 2 && k[0] == "servers" && !slices.Contains(order, k[1]) {
			order = append(order, k[1])
		}
	}
	return order
}

// cfgStructural reports whether the last element of k is one of our own
// key names rather than a user-chosen one (server name, variable, header
// or tool name).
func cfgStructural(k toml.Key) bool {
	switch {
	case len(k) == 1:
		return true
	case k[0] != "servers":
		return true // unknown anyway
	case len(k) == 2:
		return false // server name
	case len(k) == 3:
		return true
	case len(k) == 4:
		return k[2] == "tools" || k[2] == "oauth"
	case len(k) == 5:
		return k[2] == "extractors"
	}
	return false
}

// cfgKnownKey returns the known key that k's last element equals ignoring
// case, or "".
func cfgKnownKey(k toml.Key) string {
	var known []string
	switch {
	case len(k) == 1:
		known = []string{"sign_url", "log_level", "log_format", "pending_timeout", "startup_timeout", "call_timeout", "separator",
			"agent_id", "task_id", "verify", "policy_hash", "policy", "audit", "pin", "pin_file", "servers"}
	case len(k) == 3 && k[0] == "servers":
		known = []string{"command", "args", "env", "cwd", "url", "transport", "headers", "oauth", "server_id",
			"server_name", "tools", "extractors", "attach_attestation", "server_requests", "disabled"}
	case len(k) == 4 && k[0] == "servers" && k[2] == "tools":
		known = []string{"allow", "deny"}
	case len(k) == 4 && k[0] == "servers" && k[2] == "oauth":
		known = cfgOAuthKeys()
	case len(k) == 5 && k[0] == "servers" && k[2] == "extractors":
		known = cfgExtractorKeys()
	}
	for _, w := range known {
		if strings.EqualFold(w, k[len(k)-1]) {
			return w
		}
	}
	return ""
}

func cfgExtractorKeys() []string { return []string{"url", "path", "command", "method", "to", "action"} }

func (p *cfgParser) keyError(path, msg string) {
	p.reported[path] = true
	p.keyErrs = append(p.keyErrs, fmt.Errorf("%s: %s", path, msg))
}

// unknownKeys reports every key no field took, in file order, skipping
// keys (and keys below keys) that were already reported.
func (p *cfgParser) unknownKeys() {
	var errs []error
	for _, k := range p.md.Undecoded() {
		skip := false
		for i := 1; i <= len(k); i++ {
			if p.reported[k[:i].String()] {
				skip = true
				break
			}
		}
		if skip {
			continue
		}
		p.reported[k.String()] = true
		errs = append(errs, fmt.Errorf("%s: unknown key", k.String()))
	}
	p.keyErrs = append(p.keyErrs, errs...)
}

// signURL checks sign_url the one way every layer does
// (authz.CheckSignURL): the API key goes there.
func (p *cfgParser) signURL(raw string) string {
	u, err := authz.CheckSignURL(raw)
	if err != nil {
		p.errorf([]string{"sign_url"}, "%v", err)
		return ""
	}
	return u
}

// resolve makes a path absolute against the config file's folder.
func (p *cfgParser) resolve(name string) string {
	if !filepath.IsAbs(name) {
		name = filepath.Join(p.dir, name)
	}
	if abs, err := filepath.Abs(name); err == nil {
		return abs
	}
	return filepath.Clean(name)
}

func cfgNameLike(s string, maxLen int) bool {
	if s == "" || len(s) > maxLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func cfgIsControl(r rune) bool { return r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) }

// servers decodes [servers.*] in file order and checks serverId uniqueness.
func (p *cfgParser) servers(prim toml.Primitive, order []string) []Server {
	var table map[string]toml.Primitive
	if !p.table(prim, []string{"servers"}, &table, "a table of [servers.NAME] tables") {
		return nil
	}
	for _, name := range slices.Sorted(maps.Keys(table)) {
		if !slices.Contains(order, name) {
			order = append(order, name)
		}
	}
	var out []Server
	owner := make(map[string]string) // serverId → server name, enabled only
	for _, name := range order {
		sp, ok := table[name]
		if !ok {
			continue
		}
		s, idKey, ok := p.server(name, sp)
		if !ok {
			continue
		}
		if !s.Disabled && s.ServerID != "" {
			if first, dup := owner[s.ServerID]; dup {
				p.errorf(idKey, "serverId %q is already used by %s; give one of them a distinct server_id", s.ServerID, cfgKeyPath("servers", first))
			} else {
				owner[s.ServerID] = name
			}
		}
		out = append(out, s)
	}
	return out
}

// server decodes one [servers.NAME] table. idKey is the key path to blame
// for a duplicate serverId.
func (p *cfgParser) server(name string, prim toml.Primitive) (s Server, idKey []string, ok bool) {
	base := []string{"servers", name}
	key := func(k ...string) []string { return append(slices.Clone(base), k...) }
	var raw cfgRawServer
	if !p.table(prim, base, &raw, "a table") {
		return Server{}, nil, false
	}
	s = Server{Name: name, Attestation: true, ServerRequests: true}
	if !cfgNameLike(name, 32) {
		p.errorf(base, "server names must match ^[A-Za-z0-9_-]{1,32}$ (the name prefixes every exposed tool)")
	}
	p.decode(raw.Disabled, key("disabled"), &s.Disabled, "true or false")
	p.decode(raw.AttachAttestation, key("attach_attestation"), &s.Attestation, "true or false")
	p.decode(raw.ServerRequests, key("server_requests"), &s.ServerRequests, "true or false")

	hasCmd := p.str(raw.Command, key("command"), &s.Command)
	hasURL := p.str(raw.URL, key("url"), &s.URL)
	switch {
	case hasCmd && hasURL:
		p.errorf(base, "set either command (a stdio upstream) or url (a remote upstream), not both")
	case !hasCmd && !hasURL && !cfgDefined(raw.Command) && !cfgDefined(raw.URL):
		p.errorf(base, "set command (a stdio upstream) or url (a remote upstream)")
	}
	kindOK := hasCmd != hasURL // exactly one: a serverId can be derived
	if hasCmd && strings.TrimSpace(s.Command) == "" {
		p.errorf(key("command"), "must not be empty")
	}
	remote := hasURL && !hasCmd
	if remote {
		for _, k := range []struct {
			prim toml.Primitive
			name string
		}{{raw.Args, "args"}, {raw.Env, "env"}, {raw.Cwd, "cwd"}} {
			if cfgDefined(k.prim) {
				p.misplaced(key(k.name), "applies only to stdio (command) upstreams")
			}
		}
		if _, err := url.Parse(s.URL); err != nil {
			p.errorf(key("url"), "is not a valid URL")
		} else if u, _ := url.Parse(s.URL); u.User != nil {
			p.errorf(key("url"), "must not contain user information; send credentials in headers through $VARIABLES")
		} else if u.Fragment != "" {
			p.errorf(key("url"), "must not have a fragment")
		}
		s.Transport = "auto"
		if p.str(raw.Transport, key("transport"), &s.Transport) {
			switch s.Transport {
			case "auto", "streamable", "sse":
			default:
				p.errorf(key("transport"), "must be auto, streamable or sse")
			}
		}
		s.Headers = p.expandMap(raw.Headers, key("headers"), s.Disabled, true)
		p.oauth(raw.OAuth, key("oauth"), &s)
		p.checkOAuth(key, &s)
	} else {
		for _, k := range []struct {
			prim toml.Primitive
			name string
		}{{raw.Transport, "transport"}, {raw.Headers, "headers"}, {raw.OAuth, "oauth"}} {
			if cfgDefined(k.prim) {
				p.misplaced(key(k.name), "applies only to remote (url) upstreams")
			}
		}
		p.strList(raw.Args, key("args"), &s.Args)
		s.Env = p.expandMap(raw.Env, key("env"), s.Disabled, false)
		s.Cwd = p.dir
		p.str(raw.Cwd, key("cwd"), &s.Cwd)
		s.Cwd = p.resolve(s.Cwd)
	}

	idKey = base
	if p.str(raw.ServerID, key("server_id"), &s.ServerID) {
		idKey = key("server_id")
		if err := cfgCheckServerID(s.ServerID); err != nil {
			p.errorf(idKey, "%v", err)
			s.ServerID = ""
		}
	} else if kindOK && remote {
		id, err := DeriveServerIDFromURL(s.URL)
		if err != nil {
			p.errorf(key("url"), "%v", err)
		} else if err := cfgCheckServerID(id); err != nil {
			p.errorf(base, "the serverId derived from url %v; set server_id", err)
		} else {
			s.ServerID = id
		}
	} else if kindOK && strings.TrimSpace(s.Command) != "" {
		id := DeriveServerID(s.Command, s.Args)
		if err := cfgCheckServerID(id); err != nil {
			p.errorf(base, "the serverId derived from command %v; set server_id", err)
		} else {
			s.ServerID = id
		}
	}
	s.ServerName = s.ServerID
	if p.str(raw.ServerName, key("server_name"), &s.ServerName) {
		if s.ServerName == "" || len(s.ServerName) > 256 || strings.ContainsFunc(s.ServerName, cfgIsControl) {
			p.errorf(key("server_name"), "must be 1 to 256 bytes without control characters")
		}
	}

	var tools cfgRawTools
	if p.table(raw.Tools, key("tools"), &tools, "a table: tools = { allow = [...], deny = [...] }") {
		p.strList(tools.Allow, key("tools", "allow"), &s.Allow)
		p.strList(tools.Deny, key("tools", "deny"), &s.Deny)
		for _, l := range []struct {
			name string
			pats []string
		}{{"allow", s.Allow}, {"deny", s.Deny}} {
			for _, pat := range l.pats {
				if _, err := path.Match(pat, ""); err != nil || pat == "" {
					p.errorf(key("tools", l.name), "pattern %q is not a valid glob (path.Match syntax)", pat)
				}
			}
		}
	}
	s.Extractors = p.extractors(raw.Extractors, key("extractors"))
	return s, idKey, true
}

// extractors decodes [servers.NAME.extractors.TOOL] tables
// (docs/protocol.md#extractors).
func (p *cfgParser) extractors(prim toml.Primitive, key []string) map[string]Extractor {
	var raw map[string]map[string]toml.Primitive
	if !p.table(prim, key, &raw, "a table of [extractors.TOOL] tables") {
		return nil
	}
	out := make(map[string]Extractor, len(raw))
	for _, tool := range slices.Sorted(maps.Keys(raw)) {
		tk := append(slices.Clone(key), tool)
		if tool == "" {
			p.errorf(tk, "the tool name must not be empty")
			continue
		}
		ex := Extractor{Fields: make(map[string]string)}
		mapped := false // a field key is present, valid or not
		for _, field := range slices.Sorted(maps.Keys(raw[tool])) {
			fk := append(slices.Clone(tk), field)
			if p.reported[cfgKeyPath(fk...)] {
				continue
			}
			if field != "action" {
				mapped = true
			}
			var v string
			if !p.str(raw[tool][field], fk, &v) {
				continue
			}
			switch field {
			case "action":
				if !cfgActionLike(v) {
					p.errorf(fk, "must be 1 to 64 characters from A-Z, a-z, 0-9, '.', '_' and '-'")
				}
				ex.Action = v
			case "url", "path", "command", "method", "to":
				if v == "" || slices.Contains(strings.Split(v, "."), "") {
					p.errorf(fk, "must be a dot-separated argument path such as \"url\" or \"request.url\"")
				}
				ex.Fields[field] = v
			default:
				p.errorf(fk, "unknown key (want url, path, command, method, to or action)")
			}
		}
		if !mapped {
			p.errorf(tk, "must map at least one of url, path, command, method or to to an argument path")
		} else if _, ok := ex.Fields["method"]; ok {
			if _, ok := ex.Fields["url"]; !ok {
				p.errorf(tk, "method is only used together with url")
			}
		}
		out[tool] = ex
	}
	if len(out) == 0 {
		return nil
	}
	return out
}

func cfgActionLike(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}

// expandMap decodes an env or headers table and expands its values. Errors
// name the key and the variable, never a value. For a disabled server the
// values are checked but not expanded, and nil is returned.
func (p *cfgParser) expandMap(prim toml.Primitive, key []string, disabled, headers bool) map[string]string {
	var raw map[string]toml.Primitive
	if !p.table(prim, key, &raw, "a table of strings") {
		return nil
	}
	out := make(map[string]string, len(raw))
	for _, name := range slices.Sorted(maps.Keys(raw)) {
		k := append(slices.Clone(key), name)
		if p.reported[cfgKeyPath(k...)] {
			continue
		}
		var v string
		if !p.str(raw[name], k, &v) {
			continue
		}
		if headers && !cfgHeaderName(name) {
			p.errorf(k, "is not a valid HTTP header name")
		}
		if !headers && !cfgVarName(name) {
			p.errorf(k, "is not a valid environment variable name")
		}
		if !headers && upstreams.HubSecret(name) {
			p.errorf(k, "is the name of one of the hub's own secrets (SIGIL_API_KEY, SIGIL_HUB_TOKEN_*, SIGIL_UPSTREAM_AUTH), which no upstream gets: give the server's variable another name")
		}
		val, refs, errs := cfgExpand(v, p.getenv, !disabled)
		for _, e := range errs {
			p.errorf(k, "%s", e)
		}
		if headers && refs == 0 && len(errs) == 0 {
			p.errorf(k, "the value must come from the environment: reference a variable ($NAME or ${NAME}); literal header values are refused because they usually hold secrets")
		}
		if pieces, perrs, ok := cfgSplitRefs(v); ok && len(perrs) == 0 && (refs > 0 || !headers) {
			var why string
			if headers {
				why = cfgHeaderLiteral(pieces)
			} else {
				why = cfgEnvLiteral(name, pieces)
			}
			if why != "" {
				p.errorf(k, "%s", why)
				continue
			}
		}
		if len(errs) > 0 || disabled {
			continue
		}
		if headers && strings.ContainsAny(val, "\r\n\x00") {
			p.errorf(k, "the expanded value contains a line break or NUL")
			continue
		}
		if !headers && strings.ContainsRune(val, 0) {
			p.errorf(k, "the expanded value contains a NUL byte")
			continue
		}
		out[name] = val
	}
	if disabled || len(out) == 0 {
		return nil
	}
	return out
}

// cfgExpand expands $NAME, ${NAME} and ${NAME:-default} in s through
// getenv; $$ is a literal '$'. A variable whose value is empty counts as
// unset. It returns the number of variable references and, instead of
// failing fast, every problem found. Problems name variables only, never
// values. The hub's own secrets (upstreams.HubSecret: SIGIL_API_KEY,
// SIGIL_HUB_TOKEN_*, SIGIL_UPSTREAM_AUTH) may not be referenced: they are
// never given to an upstream (docs/faults.md case 50). With lookup false,
// references are only checked.
func cfgExpand(s string, getenv func(string) string, lookup bool) (string, int, []string) {
	pieces, errs, ok := cfgSplitRefs(s)
	var b strings.Builder
	refs := 0
	for _, p := range pieces {
		if !p.ref {
			b.WriteString(p.lit)
			continue
		}
		refs++
		if upstreams.HubSecret(p.name) {
			errs = append(errs, cfgHubSecretRef(p.name))
			continue
		}
		if !lookup {
			continue
		}
		v := ""
		if getenv != nil {
			v = getenv(p.name)
		}
		switch {
		case v != "":
			b.WriteString(v)
		case p.hasDef:
			b.WriteString(p.def)
		default:
			errs = append(errs, fmt.Sprintf("variable %s is not set (use ${%s:-default} for a default)", p.name, p.name))
		}
	}
	if !ok {
		return "", refs, errs
	}
	return b.String(), refs, errs
}

// cfgHubSecretRef is the error for a reference to one of the hub's own
// secrets in a server's env or headers.
func cfgHubSecretRef(name string) string {
	return fmt.Sprintf("%s must not be passed to an upstream: it is one of the hub's own secrets (SIGIL_API_KEY, SIGIL_HUB_TOKEN_*, SIGIL_UPSTREAM_AUTH); "+
		"give the server a credential of its own in another variable", name)
}

// cfgSchemePrefix is the only literal text a header value may keep once its
// references are removed: one short word and a space, before them
// ("Bearer ", "Basic ", "token ").
var cfgSchemePrefix = regexp.MustCompile(`^[A-Za-z][A-Za-z-]{0,15} $`)

// cfgHeaderDefault is what a ${NAME:-default} default in a header may be:
// one short word of letters and '-' (such as "unset"), never a token.
var cfgHeaderDefault = regexp.MustCompile(`^[A-Za-z][A-Za-z-]{0,15}$`)

// cfgHeaderLiteral checks the text written in the file of a header value
// (the pieces of cfgSplitRefs): at most a scheme prefix (cfgSchemePrefix)
// before the references, and defaults of one short word
// (cfgHeaderDefault). It returns why the value is refused, or "". The text
// itself is never quoted: it may be a secret.
func cfgHeaderLiteral(pieces []cfgPiece) string {
	for i, pc := range pieces {
		switch {
		case pc.ref && pc.def != "" && (!cfgHeaderDefault.MatchString(pc.def) || secretlike.Format(pc.def)):
			return fmt.Sprintf("the default of ${%s:-...} is text written in the file: in a header it may only be one short word "+
				"(letters and '-', at most 16), never a credential; set %s in the environment instead (the value is not shown: it may be a secret)", pc.name, pc.name)
		case pc.ref:
		case i == 0 && len(pieces) > 1 && cfgSchemePrefix.MatchString(pc.lit) && !secretlike.Format(pc.lit):
		default:
			return "once its ${VAR} references are removed, a header value may keep only a short scheme prefix such as \"Bearer \" " +
				"(one word and a space, before the references): put the rest of the value in the variable (the value is not shown: it may be a secret)"
		}
	}
	return ""
}

// cfgEnvLiteral checks the text written in the file of a server's env
// value (the pieces of cfgSplitRefs: literal text and defaults). README:
// secrets are only $ENV references. Refused:
//   - text of a credential's shape, under any name (secretlike.Format);
//   - under a name that suggests a secret (secretlike.Name), a value
//     without references that is not obviously harmless (empty, true/false,
//     on/off, yes/no, a small number, a log-level word, a path or a URL
//     without credentials), or, around references, text with a run of 16
//     or more letters, digits, '_' or '-' mixing letters and digits.
//
// It returns why, with the rule, or "". The text is never quoted.
func cfgEnvLiteral(name string, pieces []cfgPiece) string {
	const how = "a team file holds secrets only as references: set the value in the environment and write %s = \"${%s}\" (the value is not shown)"
	refs := 0
	for _, pc := range pieces {
		text := pc.lit
		if pc.ref {
			refs++
			text = pc.def
		}
		if secretlike.Format(text) {
			return fmt.Sprintf("looks like a secret written in the file: it has the form of a credential: %s; "+how, secretlike.FormatRule, name, name)
		}
	}
	if !secretlike.Name(name) {
		return ""
	}
	nameRule := "its name suggests a secret (it contains " + secretlike.NameWords + ")"
	for _, pc := range pieces {
		switch {
		case refs == 0 && !cfgHarmless(pc.lit):
			return fmt.Sprintf("looks like a secret written in the file: %s and its value is not obviously harmless "+
				"(empty, true/false, on/off, yes/no, a small number, a log-level word, a path or a URL without credentials); "+how, nameRule, name, name)
		case pc.ref && pc.def != "" && !cfgHarmless(pc.def):
			return fmt.Sprintf("looks like a secret written in the file: %s and the default of ${%s:-...} is not obviously harmless "+
				"(true/false, on/off, yes/no, a small number, a log-level word, a path or a URL without credentials); "+how, nameRule, pc.name, name, name)
		case !pc.ref && refs > 0 && secretlike.TokenRun(pc.lit):
			return fmt.Sprintf("looks like a secret written in the file: %s and the text around its references holds a token-like run "+
				"(16 or more letters, digits, '_' or '-' mixing letters and digits); "+how, nameRule, name, name)
		}
	}
	return ""
}

// cfgHarmless reports whether literal env text is obviously not a secret
// (see cfgEnvLiteral).
func cfgHarmless(v string) bool {
	switch {
	case v == "" || secretlike.Harmless(v):
		return true
	case strings.Contains(v, "://"):
		return !strings.ContainsAny(v, " \t") && !secretlike.URL(v)
	}
	return secretlike.Path(v)
}

// cfgPiece is one piece of a value: literal text (with $$ already turned
// into '$'), or a reference $NAME / ${NAME} / ${NAME:-def}.
type cfgPiece struct {
	lit       string
	ref       bool
	name, def string
	hasDef    bool
}

// cfgSplitRefs splits s into literal text and variable references: the one
// place that knows the reference syntax (cfgExpand and the masked display
// of MaskedValues both use it). errs names malformed references; ok is false
// when the rest of s could not be read (an unterminated ${).
func cfgSplitRefs(s string) (pieces []cfgPiece, errs []string, ok bool) {
	var lit strings.Builder
	flush := func() {
		if lit.Len() > 0 {
			pieces = append(pieces, cfgPiece{lit: lit.String()})
			lit.Reset()
		}
	}
	for i := 0; i < len(s); {
		c := s[i]
		if c != '$' {
			lit.WriteByte(c)
			i++
			continue
		}
		if i+1 < len(s) && s[i+1] == '$' {
			lit.WriteByte('$')
			i += 2
			continue
		}
		var p cfgPiece
		p.ref = true
		if i+1 < len(s) && s[i+1] == '{' {
			end := strings.IndexByte(s[i+2:], '}')
			if end < 0 {
				flush()
				return pieces, append(errs, "unterminated ${...} reference"), false
			}
			p.name, p.def, p.hasDef = strings.Cut(s[i+2:i+2+end], ":-")
			i += 2 + end + 1
			if strings.ContainsRune(p.def, '$') {
				errs = append(errs, "a ${NAME:-default} default must not contain '$' (references do not nest)")
				continue
			}
		} else {
			j := i + 1
			for j < len(s) && cfgVarByte(s[j], j == i+1) {
				j++
			}
			p.name = s[i+1 : j]
			i = j
		}
		if !cfgVarName(p.name) {
			errs = append(errs, "a '$' must start a variable reference such as $NAME or ${NAME} (write $$ for a literal '$')")
			continue
		}
		flush()
		pieces = append(pieces, p)
	}
	flush()
	return pieces, errs, true
}

func cfgVarByte(c byte, first bool) bool {
	return c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || !first && c >= '0' && c <= '9'
}

func cfgVarName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !cfgVarByte(s[i], i == 0) {
			return false
		}
	}
	return true
}

// cfgHeaderName reports whether s is a header name (headername.Valid).
func cfgHeaderName(s string) bool { return headername.Valid(s) }

// MaskedValues reads a config file and returns the env and headers value of
// every server as written, never expanded: each value that references
// variables keeps its text with every reference shown as ${NAME} (a
// ${NAME:-default} default becomes ***), and a value without any reference
// is "***" (a literal in the file may be a secret too). Keys are
// "<server>.env.<KEY>" and "<server>.headers.<Header>". It is what
// `sigil-hub check --print` shows instead of the expanded values; the
// result never contains a variable's value. Only TOML syntax is checked
// here (Parse validates). Pure; safe for concurrent use.
func MaskedValues(src []byte) (map[string]string, error) {
	var raw struct {
		Servers map[string]struct {
			Env     map[string]any `toml:"env"`
			Headers map[string]any `toml:"headers"`
		} `toml:"servers"`
	}
	if _, err := toml.NewDecoder(bytes.NewReader(src)).Decode(&raw); err != nil {
		return nil, fmt.Errorf("config: %v", cfgSyntaxError(err))
	}
	out := map[string]string{}
	for name, s := range raw.Servers {
		for k, v := range s.Env {
			out[name+".env."+k] = maskTemplate(v)
		}
		for k, v := range s.Headers {
			out[name+".headers."+k] = maskTemplate(v)
		}
	}
	return out, nil
}

// maskTemplate renders one raw env/headers value for display (MaskedValues).
func maskTemplate(v any) string {
	s, ok := v.(string)
	if !ok {
		return "***"
	}
	pieces, errs, ok := cfgSplitRefs(s)
	if !ok || len(errs) > 0 {
		return "***"
	}
	var b strings.Builder
	refs := 0
	for _, p := range pieces {
		switch {
		case !p.ref:
			b.WriteString(strings.ReplaceAll(p.lit, "$", "$$"))
		case p.hasDef:
			refs++
			b.WriteString("${" + p.name + ":-***}")
		default:
			refs++
			b.WriteString("${" + p.name + "}")
		}
	}
	if refs == 0 {
		return "***"
	}
	return b.String()
}
