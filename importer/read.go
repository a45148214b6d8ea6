package importer

import (
	"encoding/json"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Entry is one MCP server entry as a client file holds it, after the
// seed proxy's or sigil-hub's own wrapping was undone. Values are raw: Env
// and Headers may hold secrets and must never be printed or logged; Build
// turns them into references. A plain value.
type Entry struct {
	// Source is the file the entry is in; Key is its name there.
	Source Source
	Key    string
	// Command and Args start a stdio server (Command empty for remote).
	Command string
	Args    []string
	// Cwd is the stdio server's working folder, if the entry sets one.
	Cwd string
	// Env is the stdio server's environment, raw values.
	Env map[string]string
	// URL is a remote server's endpoint; Transport is "sse", "streamable"
	// or "" (not said: auto).
	URL       string
	Transport string
	// Headers are a remote server's headers, raw values.
	Headers map[string]string
	// HeaderVars are headers whose value the client takes from an
	// environment variable (Codex bearer_token_env_var, env_http_headers):
	// header name → "Scheme $VAR" template with the variable name only.
	HeaderVars map[string]string
	// Disabled is set for disabled: true or enabled: false.
	Disabled bool
	// ServerID and ServerName come from a wrapper's --server-id and
	// --server-name.
	ServerID, ServerName string
	// APIKey is a Sigil API key found in the entry (SIGIL_API_KEY in env,
	// --key in a wrapper's arguments). Never imported into a file; Build
	// keeps it so that Apply can carry it into the same client file.
	APIKey string
	// Wrapper is "@sigilcore/mcp-proxy" or "sigil-hub" when the entry was
	// unwrapped; empty otherwise.
	Wrapper string
	// SignURL, LogLevel and PendingTimeout are the wrapper's hub-wide
	// settings, as written: --sign-url, --log-level and --pending-timeout,
	// else SIGIL_SIGN_URL, SIGIL_LOG_LEVEL and SIGIL_PENDING_TIMEOUT in its
	// env, else its sigil.config.json (ApplySeed). Build carries them into
	// the hub file's top level.
	SignURL, LogLevel, PendingTimeout string
	// Bypass is set when the wrapper ran with --unsafe-bypass, a CLI-only
	// flag: it is kept on the printed hub entry (Result.Bypass).
	Bypass bool
	// SeedConfig is the wrapper's sigil.config.json (the @sigilcore/mcp-proxy
	// format): --config FILE.json, or, without it, the sigil.config.json in
	// the entry's cwd, where the proxy looks (SeedImplicit: it need not
	// exist). Relative to an unknown folder when not absolute. The caller
	// reads it and calls ApplySeed.
	SeedConfig   string
	SeedImplicit bool
	// HeaderTemplates are a remote server's headers from a
	// sigil.config.json: values as written there, references only, which a
	// hub file accepts as they are.
	HeaderTemplates map[string]string
	// Extractors are the wrapper's extractors from its sigil.config.json:
	// tool → key (url, path, command, method, to, action) → value.
	Extractors map[string]map[string]string
	// Notes are things the person should know about this entry.
	Notes []string
	// Skip, when not empty, says why the entry cannot be imported; it is
	// then left in the client file by Apply.
	Skip string
}

// Read parses a client file and returns its MCP server entries in file
// order. A file without a servers section yields no entries and no error.
// Errors describe the problem (with line and column when known) but never
// quote a value, which may be a secret; the caller names the file. Pure;
// safe for concurrent use.
func Read(src Source, data []byte) ([]Entry, error) {
	var entries []Entry
	var err error
	if src.Layout == LayoutCodex {
		entries, err = readCodex(src, data)
	} else {
		entries, err = readJSON(src, data)
	}
	if err != nil {
		return nil, err
	}
	for i := range entries {
		unwrap(&entries[i])
		if src.Client == VSCode || src.Client == Cursor {
			expandWorkspace(&entries[i])
		}
		resolveSeed(&entries[i])
	}
	return entries, nil
}

// containerPath is the path of the object holding the servers.
func containerPath(l Layout) []string {
	switch l {
	case LayoutVSCode:
		return []string{"servers"}
	case LayoutVSCodeSettings:
		return []string{"mcp", "servers"}
	}
	return []string{"mcpServers"}
}

// locateContainer finds the servers object in a clean JSON file. ok is
// false when the file has none.
func locateContainer(clean []byte, l Layout) (member, []member, bool, error) {
	start := skipSpace(clean, 0)
	if start >= len(clean) {
		return member{}, nil, false, nil // an empty file holds no servers
	}
	var dec any
	if err := json.Unmarshal(clean, &dec); err != nil {
		return member{}, nil, false, jsonError(clean, err)
	}
	if _, ok := dec.(map[string]any); !ok {
		return member{}, nil, false, errors.New("the file must hold a JSON object")
	}
	ms, _, err := objectMembers(clean, start)
	if err != nil {
		return member{}, nil, false, jsonError(clean, err)
	}
	p := containerPath(l)
	var m member
	for i, key := range p {
		var ok bool
		if m, ok = findMember(ms, key); !ok {
			return member{}, nil, false, nil
		}
		if clean[m.ValStart] != '{' {
			if string(clean[m.ValStart:m.ValEnd]) == "null" {
				return member{}, nil, false, nil
			}
			return member{}, nil, false, fmt.Errorf("%q must be a JSON object", strings.Join(p[:i+1], "."))
		}
		if ms, _, err = objectMembers(clean, m.ValStart); err != nil {
			return member{}, nil, false, jsonError(clean, err)
		}
	}
	return m, ms, true, nil
}

func readJSON(src Source, data []byte) ([]Entry, error) {
	clean := cleanJSONC(data)
	_, ms, ok, err := locateContainer(clean, src.Layout)
	if err != nil || !ok {
		return nil, err
	}
	where := strings.Join(containerPath(src.Layout), ".")
	var out []Entry
	for _, m := range ms {
		e := Entry{Source: src, Key: m.Key}
		raw := clean[m.ValStart:m.ValEnd]
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(raw, &fields); err != nil || fields == nil {
			line, _ := lineCol(clean, m.ValStart)
			return nil, fmt.Errorf("line %d: %s.%s must be a JSON object", line, where, strconv.Quote(m.Key))
		}
		if err := jsonEntry(&e, fields); err != nil {
			line, _ := lineCol(clean, m.ValStart)
			return nil, fmt.Errorf("line %d: %s.%s: %v", line, where, strconv.Quote(m.Key), err)
		}
		out = append(out, e)
	}
	return out, nil
}

// jsonEntry fills e from one server object. Type errors name the field,
// never its value.
func jsonEntry(e *Entry, f map[string]json.RawMessage) error {
	str := func(name string) (string, error) {
		raw, ok := f[name]
		if !ok || string(raw) == "null" {
			return "", nil
		}
		var s string
		if err := json.Unmarshal(raw, &s); err != nil {
			return "", fmt.Errorf("%s must be a string", name)
		}
		return s, nil
	}
	var err error
	if e.Command, err = str("command"); err != nil {
		return err
	}
	if raw, ok := f["args"]; ok && string(raw) != "null" {
		var args []any
		if err := json.Unmarshal(raw, &args); err != nil {
			return errors.New("args must be an array")
		}
		for i, a := range args {
			s, ok := scalarString(a)
			if !ok {
				return fmt.Errorf("args[%d] must be a string", i)
			}
			e.Args = append(e.Args, s)
		}
	}
	if e.Env, err = stringMap(f, "env"); err != nil {
		return err
	}
	if e.Headers, err = stringMap(f, "headers"); err != nil {
		return err
	}
	if e.Cwd, err = str("cwd"); err != nil {
		return err
	}
	for _, k := range []string{"url", "serverUrl", "httpUrl"} {
		if e.URL != "" {
			break
		}
		if e.URL, err = str(k); err != nil {
			return err
		}
	}
	kind, err := str("type")
	if err != nil {
		return err
	}
	if kind == "" {
		if kind, err = str("transport"); err != nil {
			return err
		}
	}
	switch strings.ToLower(kind) {
	case "sse":
		e.Transport = "sse"
	case "http", "streamable-http", "streamablehttp", "streamable_http", "streamable":
		e.Transport = "streamable"
	}
	for _, k := range []string{"disabled", "enabled"} {
		raw, ok := f[k]
		if !ok {
			continue
		}
		var b bool
		if err := json.Unmarshal(raw, &b); err != nil {
			return fmt.Errorf("%s must be true or false", k)
		}
		if (k == "disabled") == b {
			e.Disabled = true
		}
	}
	if envFile, _ := str("envFile"); envFile != "" {
		e.Notes = append(e.Notes, "its envFile is not imported: set the variables it holds where sigil-hub runs")
	}
	if e.Command == "" && e.URL == "" {
		e.Skip = "it has neither a command nor a url"
	}
	return nil
}

// scalarString turns a JSON string, number or boolean into a string.
func scalarString(v any) (string, bool) {
	switch v := v.(type) {
	case string:
		return v, true
	case float64:
		return strconv.FormatFloat(v, 'f', -1, 64), true
	case bool:
		return strconv.FormatBool(v), true
	}
	return "", false
}

func stringMap(f map[string]json.RawMessage, name string) (map[string]string, error) {
	raw, ok := f[name]
	if !ok || string(raw) == "null" {
		return nil, nil
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("%s must be an object", name)
	}
	out := make(map[string]string, len(m))
	for k, v := range m {
		if v == nil {
			continue
		}
		s, ok := scalarString(v)
		if !ok {
			return nil, fmt.Errorf("%s.%s must be a string", name, k)
		}
		out[k] = s
	}
	return out, nil
}

// codexServer is one [mcp_servers.NAME] table of Codex's config.toml.
type codexServer struct {
	Command           string            `toml:"command"`
	Args              []string          `toml:"args"`
	Env               map[string]string `toml:"env"`
	EnvVars           []string          `toml:"env_vars"`
	Cwd               string            `toml:"cwd"`
	URL               string            `toml:"url"`
	BearerTokenEnvVar string            `toml:"bearer_token_env_var"`
	HTTPHeaders       map[string]string `toml:"http_headers"`
	EnvHTTPHeaders    map[string]string `toml:"env_http_headers"`
	Enabled           *bool             `toml:"enabled"`
	Disabled          *bool             `toml:"disabled"`
}

func readCodex(src Source, data []byte) ([]Entry, error) {
	var file struct {
		MCPServers map[string]toml.Primitive `toml:"mcp_servers"`
	}
	md, err := toml.Decode(string(data), &file)
	if err != nil {
		return nil, tomlError(err)
	}
	var order []string
	for _, k := range md.Keys() {
		if len(k) >= 2 && k[0] == "mcp_servers" && !slices.Contains(order, k[1]) {
			order = append(order, k[1])
		}
	}
	var out []Entry
	for _, name := range order {
		prim, ok := file.MCPServers[name]
		if !ok {
			continue
		}
		var s codexServer
		if err := md.PrimitiveDecode(prim, &s); err != nil {
			return nil, fmt.Errorf("mcp_servers.%s: %v", toml.Key{name}, typeOnly(err))
		}
		e := Entry{Source: src, Key: name, Command: s.Command, Args: s.Args, Env: s.Env, Cwd: s.Cwd, URL: s.URL}
		if e.Env == nil && len(s.EnvVars) > 0 {
			e.Env = map[string]string{}
		}
		for _, v := range s.EnvVars { // forwarded from Codex's own environment
			if _, set := e.Env[v]; !set {
				e.Env[v] = "$" + v
			}
		}
		e.Headers = s.HTTPHeaders
		e.HeaderVars = map[string]string{}
		for h, v := range s.EnvHTTPHeaders {
			e.HeaderVars[h] = "$" + v
		}
		if s.BearerTokenEnvVar != "" {
			e.HeaderVars["Authorization"] = "Bearer $" + s.BearerTokenEnvVar
		}
		if (s.Enabled != nil && !*s.Enabled) || (s.Disabled != nil && *s.Disabled) {
			e.Disabled = true
		}
		if e.Command == "" && e.URL == "" {
			e.Skip = "it has neither a command nor a url"
		}
		out = append(out, e)
	}
	return out, nil
}

// tomlError reports a TOML syntax error by position; the parser's message
// may quote a token, so it is kept only outside env and header tables.
func tomlError(err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		lk := strings.ToLower(pe.LastKey)
		if strings.Contains(lk, "env") || strings.Contains(lk, "header") || secretish(lk) {
			return fmt.Errorf("invalid TOML at line %d (details not shown: the value may be a secret)", pe.Position.Line)
		}
		return fmt.Errorf("invalid TOML at line %d: %s", pe.Position.Line, pe.Message)
	}
	return fmt.Errorf("invalid TOML: %v", typeOnly(err))
}

// typeOnly hides decoder messages that might quote a value.
func typeOnly(err error) error {
	msg := err.Error()
	if strings.ContainsAny(msg, `"'`) {
		return errors.New("a value has the wrong type")
	}
	return err
}

// The wrappers' flags (sigil-hub's own, which @sigilcore/mcp-proxy shares)
// that take a value.
func wrapperValueFlag(name string) bool {
	switch name {
	case "server-id", "server-name", "remote", "key", "sign-url", "log-level",
		"pending-timeout", "config", "only", "policy", "call-timeout", "audit",
		"approvals", "pin", "pin-file", "overlay", "listen", "port":
		return true
	}
	return false
}

// unwrap replaces an entry that runs @sigilcore/mcp-proxy or sigil-hub
// with the server it wraps, keeping --server-id, --server-name, --remote
// and SIGIL_UPSTREAM_AUTH.
func unwrap(e *Entry) {
	if e.Command == "" || e.Skip != "" {
		return
	}
	var rest []string
	base := strings.ToLower(path.Base(strings.ReplaceAll(e.Command, `\`, "/")))
	base = strings.TrimSuffix(strings.TrimSuffix(base, ".exe"), ".cmd")
	if base == "sigil-hub" {
		e.Wrapper, rest = "sigil-hub", e.Args
	} else {
		for i, a := range e.Args {
			if a == "@sigilcore/mcp-proxy" || strings.HasPrefix(a, "@sigilcore/mcp-proxy@") {
				e.Wrapper, rest = "@sigilcore/mcp-proxy", e.Args[i+1:]
				break
			}
		}
	}
	if e.Wrapper == "" {
		return
	}
	flags := map[string]string{}
	var inner []string
	for i := 0; i < len(rest); i++ {
		a := rest[i]
		if a == "--" {
			inner = rest[i+1:]
			break
		}
		if !strings.HasPrefix(a, "-") || a == "-" {
			inner = rest[i:]
			break
		}
		name, val, hasVal := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if wrapperValueFlag(name) && !hasVal && i+1 < len(rest) {
			i++
			val = rest[i]
		}
		flags[name] = val
	}
	if _, ok := flags["key"]; ok {
		e.APIKey = flags["key"]
	}
	if flags["config"] != "" && len(inner) == 0 && flags["remote"] == "" {
		e.Skip = "it already runs a sigil-hub config (--config); left as is"
		return
	}
	if c := flags["config"]; c != "" {
		if !strings.EqualFold(path.Ext(strings.ReplaceAll(c, `\`, "/")), ".json") {
			e.Skip = "it runs --config " + c + " (a hub file) together with a wrapped server, which sigil-hub refuses; left as is"
			return
		}
		e.SeedConfig = c
	} else {
		e.SeedConfig, e.SeedImplicit = seedFileName, true
	}
	wrapperNotes(e, flags)
	e.SignURL = pickEnv(flags, "sign-url", e.Env, "SIGIL_SIGN_URL")
	e.LogLevel = pickEnv(flags, "log-level", e.Env, "SIGIL_LOG_LEVEL")
	e.PendingTimeout = pickEnv(flags, "pending-timeout", e.Env, "SIGIL_PENDING_TIMEOUT")
	_, e.Bypass = flags["unsafe-bypass"]
	e.ServerID, e.ServerName = flags["server-id"], flags["server-name"]
	auth, hasAuth := e.Env["SIGIL_UPSTREAM_AUTH"]
	switch {
	case flags["remote"] != "":
		e.Command, e.Args, e.URL = "", nil, flags["remote"]
		var other []string
		for k := range e.Env {
			if !strings.HasPrefix(strings.ToUpper(k), "SIGIL_") {
				other = append(other, k)
			}
		}
		if len(other) > 0 {
			slices.Sort(other)
			e.Notes = append(e.Notes, fmt.Sprintf("env %s of a remote server is not used: not imported", strings.Join(other, ", ")))
		}
		apiKey := e.Env["SIGIL_API_KEY"]
		e.Env = nil
		if apiKey != "" {
			e.Env = map[string]string{"SIGIL_API_KEY": apiKey}
		}
		if hasAuth {
			if e.Headers == nil {
				e.Headers = map[string]string{}
			}
			e.Headers["Authorization"] = auth
		}
	case len(inner) > 0:
		e.Command, e.Args = inner[0], slices.Clone(inner[1:])
		if hasAuth {
			e.Notes = append(e.Notes, "SIGIL_UPSTREAM_AUTH applies only to --remote: not imported")
		}
	default:
		e.Skip = "it runs " + e.Wrapper + " without a wrapped command or --remote"
	}
	if e.Env != nil {
		delete(e.Env, "SIGIL_UPSTREAM_AUTH")
	}
}

// expandWorkspace replaces VS Code's and Cursor's ${workspaceFolder} with
// the folder that holds a project file (.vscode/mcp.json → its parent):
// sigil-hub does not expand arguments.
func expandWorkspace(e *Entry) {
	p := e.Source.Path
	i := strings.LastIndexAny(p, `/\`)
	if i < 0 {
		return
	}
	j := strings.LastIndexAny(p[:i], `/\`)
	if j <= 0 {
		return
	}
	if d := p[j+1 : i]; d != ".vscode" && d != ".cursor" || e.Source.Scope == "user" {
		return // only a project file has a workspace folder
	}
	ws := p[:j]
	rep := strings.NewReplacer("${workspaceFolder}", ws, "${workspaceRoot}", ws)
	for i, a := range e.Args {
		e.Args[i] = rep.Replace(a)
	}
	e.Cwd = rep.Replace(e.Cwd)
	if e.Command != "" {
		e.Command = rep.Replace(e.Command)
	}
}
