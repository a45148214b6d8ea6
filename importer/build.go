package importer

import (
	"fmt"
	"maps"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// BuildOptions tune Build. The zero value works: serverIds are then
// compared by command line and URL only.
type BuildOptions struct {
	// DeriveID returns the serverId sigil-hub derives for a stdio server
	// without server_id (config.DeriveServerID). Build uses it to keep
	// serverIds unique among enabled servers, as the hub requires. Nil =
	// the command and arguments joined by spaces.
	DeriveID func(command string, args []string) string
	// DeriveURLID is the same for a remote server
	// (config.DeriveServerIDFromURL). Nil = the URL itself.
	DeriveURLID func(url string) (string, error)
	// Now, when not zero, is written (UTC) in the file's header comment.
	Now time.Time
	// CheckSignURL checks and normalises a wrapper's Sign URL
	// (authz.CheckSignURL); one it refuses is not carried. Nil = any URL,
	// without a trailing slash.
	CheckSignURL func(string) (string, error)
}

// KV is one env or headers entry of the hub file. Value is what the file
// holds: a $NAME reference, or a literal that safeLiteral allowed; never a
// secret.
type KV struct {
	Key, Value string
}

// Origin is one client entry a server was imported from.
type Origin struct {
	Source Source
	Key    string
}

// Server is one [servers.NAME] table of the generated file. A plain value.
type Server struct {
	// Name is the table key, matching ^[A-Za-z0-9_-]{1,32}$.
	Name string
	// From lists the client entries it came from (more than one when
	// identical definitions were merged).
	From []Origin
	// Command, Args, Cwd and Env describe a stdio server; URL, Transport
	// and Headers a remote one. Env and Headers are sorted by key.
	Command   string
	Args      []string
	Cwd       string
	Env       []KV
	URL       string
	Transport string
	Headers   []KV
	// ServerID and ServerName are written only when set.
	ServerID, ServerName string
	// Disabled is written as disabled = true.
	Disabled bool
	// Extractors come from a wrapper's sigil.config.json: tool → key (url,
	// path, command, method, to, action) → value.
	Extractors map[string]map[string]string
}

// Var is an environment variable the person must set where sigil-hub runs
// (typically in the hub entry's env).
type Var struct {
	// Name is the variable's name.
	Name string
	// From says, for each use, where it came from — never the value.
	From []string
	// valueIn returns the value the variable had in one client file (the
	// literal secret or the client's own reference form), for Apply. A
	// function so that fmt's %v of a Var or Result never prints it.
	valueIn func(path string) (string, bool)
}

// ValueIn returns what to write for this variable in the hub entry of the
// client file at path: the literal value the entry had in that same file,
// or the file's own reference form (VS Code and Cursor: ${env:NAME},
// ${input:ID}). ok is false when the file had no value for it. The value
// may be a secret: write it only into that file, never print or log it.
// Safe for concurrent use.
func (v Var) ValueIn(path string) (value string, ok bool) {
	if v.valueIn == nil {
		return "", false
	}
	return v.valueIn(path)
}

// Result is what Build produced. It is a plain value; ValueIn and APIKeyIn
// give access to secrets only for Apply.
type Result struct {
	// TOML is the hub file.
	TOML []byte
	// Servers are its [servers.NAME] tables, in order.
	Servers []Server
	// Vars are the variables to set, sorted by name. SIGIL_API_KEY is not
	// among them: see APIKeyIn.
	Vars []Var
	// Notes are things to tell the person (merges, renames, skipped
	// entries, dropped settings), in order.
	Notes []string
	// Imported maps a client file path to the entry keys imported from it.
	Imported map[string][]string
	// SignURL, PendingTimeout (milliseconds) and LogLevel are the hub-wide
	// settings carried from wrappers (their first value; "" = none), written
	// at the top of TOML.
	SignURL, PendingTimeout, LogLevel string
	// Bypass names the servers whose wrapper ran with --unsafe-bypass: the
	// hub entry keeps the flag (HubEntry.Bypass) when there is any.
	Bypass []string
	// apiKeys maps a client file path to a Sigil API key found in it.
	apiKeys func(path string) (string, bool)
}

// APIKeyIn returns a Sigil API key found in an entry of the client file at
// path (SIGIL_API_KEY in env, or a wrapper's --key). It is never put in
// the hub file; Apply may carry it into the hub entry of that same file.
// Safe for concurrent use.
func (r Result) APIKeyIn(path string) (string, bool) {
	if r.apiKeys == nil {
		return "", false
	}
	return r.apiKeys(path)
}

// varState is one variable during Build. literals holds the distinct
// literal values seen for it, so that two different secrets never share a
// name; raw holds, per client file, what Apply may write.
type varState struct {
	from     []string
	literals []string
	raw      map[string]string
}

// varUse is one reference a server makes, recorded once the server is
// named.
type varUse struct {
	name, what, path string
}

type builder struct {
	opts  BuildOptions
	re    *regexp.Regexp
	vars  map[string]*varState
	notes []string
	keys  map[string]string // client file → Sigil API key
	// The wrappers' hub-wide settings (seed.go).
	signURL, pending, logLevel hubSetting
	bypass                     []string
}

// Build turns entries (from Read, any number of files) into the hub file.
// It names servers after their entry keys, sanitized; merges identical
// definitions found under one name; renames different ones with a -2, -3
// suffix; disables a server whose serverId repeats an enabled one's; and
// replaces every secret with a $NAME reference (see secrets.go). Entries
// with Skip set are reported in Notes. Pure; safe for concurrent use if the
// DeriveID functions are.
func Build(entries []Entry, opts BuildOptions) Result {
	b := &builder{opts: opts, re: refPattern(), vars: map[string]*varState{}, keys: map[string]string{}}
	var servers []Server
	uses := map[string][]varUse{} // by server name
	imported := map[string][]string{}
	for _, e := range entries {
		label := fmt.Sprintf("%s entry %q", e.Source, e.Key)
		for _, n := range e.Notes {
			b.note("%s: %s", label, n)
		}
		if e.APIKey != "" {
			b.keys[e.Source.Path] = e.APIKey
		}
		if e.Skip != "" {
			b.note("%s: not imported: %s", label, e.Skip)
			continue
		}
		s, us := b.convert(e)
		b.hubWide(e, label, &s)
		base := sanitizeName(e.Key)
		name, merged := "", false
		for i := 1; ; i++ {
			cand := suffixName(base, i)
			j := slices.IndexFunc(servers, func(x Server) bool { return x.Name == cand })
			if j < 0 {
				name = cand
				break
			}
			if sameServer(servers[j], s) {
				servers[j].From = append(servers[j].From, s.From...)
				name, merged = cand, true
				b.note("%s: identical to servers.%s from %s: merged", label, cand, servers[j].From[0].Source)
				break
			}
		}
		if !merged {
			s.Name = name
			if name != e.Key {
				if name != base {
					b.note("%s: imported as servers.%s (a different server already has the name %s)", label, name, base)
				} else {
					b.note("%s: imported as servers.%s (server names must match ^[A-Za-z0-9_-]{1,32}$)", label, name)
				}
			}
			servers = append(servers, s)
		}
		uses[name] = append(uses[name], us...)
		imported[e.Source.Path] = append(imported[e.Source.Path], e.Key)
		if e.Bypass && !slices.Contains(b.bypass, name) {
			b.bypass = append(b.bypass, name)
		}
	}
	b.uniqueIDs(servers)
	b.hubWideNotes(servers)

	for _, s := range servers {
		for _, u := range uses[s.Name] {
			st := b.vars[u.name]
			d := fmt.Sprintf("servers.%s %s", s.Name, u.what)
			if !slices.Contains(st.from, d) {
				st.from = append(st.from, d)
			}
		}
	}
	res := Result{Servers: servers, Notes: b.notes, Imported: imported,
		SignURL: b.signURL.value, PendingTimeout: b.pending.value, LogLevel: b.logLevel.value, Bypass: b.bypass}
	for _, name := range slices.Sorted(maps.Keys(b.vars)) {
		st := b.vars[name]
		res.Vars = append(res.Vars, Var{Name: name, From: st.from, valueIn: func(p string) (string, bool) {
			v, ok := st.raw[p]
			return v, ok
		}})
	}
	keys := b.keys
	res.apiKeys = func(p string) (string, bool) {
		v, ok := keys[p]
		return v, ok
	}
	res.TOML = renderTOML(res, opts.Now)
	return res
}

func (b *builder) note(format string, args ...any) {
	b.notes = append(b.notes, fmt.Sprintf(format, args...))
}

// convert turns one entry into a server (unnamed) and the variables it
// uses.
func (b *builder) convert(e Entry) (Server, []varUse) {
	label := fmt.Sprintf("%s entry %q", e.Source, e.Key)
	s := Server{From: []Origin{{Source: e.Source, Key: e.Key}}, Command: e.Command, Args: slices.Clone(e.Args),
		URL: e.URL, Transport: e.Transport, ServerID: e.ServerID, ServerName: e.ServerName, Disabled: e.Disabled,
		Extractors: e.Extractors}
	var uses []varUse
	path := e.Source.Path
	if s.Command != "" && s.URL != "" {
		b.note("%s: has both a command and a url: imported as the stdio command", label)
		s.URL, s.Transport = "", ""
	}
	if s.Command != "" {
		s.Transport = ""
		if e.Cwd != "" {
			if strings.HasPrefix(e.Cwd, "/") || len(e.Cwd) > 2 && e.Cwd[1] == ':' {
				s.Cwd = e.Cwd
			} else {
				b.note("%s: its relative cwd is not imported (sigil-hub resolves cwd against the hub file's folder)", label)
			}
		}
		for i := range s.Args {
			if secretArg(s.Args, i) {
				s.Args[i] = "REDACTED"
				if !s.Disabled {
					s.Disabled = true
				}
				b.note("%s: args[%d] holds a credential: replaced with REDACTED and the server imported disabled (arguments are not expanded from the environment; pass the credential through env if the server accepts it, then enable it)", label, i)
			}
		}
	} else if secretURL(s.URL) {
		s.URL = redactURL(s.URL)
		s.Disabled = true
		b.note("%s: its url carries a credential (user information or a query parameter): removed, and the server imported disabled (urls are not expanded from the environment; send the credential in a header)", label)
	}
	prefix := varName(sanitizeName(e.Key))
	for _, k := range slices.Sorted(maps.Keys(e.Env)) {
		raw := e.Env[k]
		if strings.HasPrefix(strings.ToUpper(k), "SIGIL_") {
			if strings.EqualFold(k, "SIGIL_API_KEY") && raw != "" {
				b.keys[path] = raw
			}
			b.note("%s: env %s is a sigil-hub setting: not imported (the Sigil API key stays in the environment only, never in the file)", label, k)
			continue
		}
		if !validVarName(k) {
			b.note("%s: env %q is not a valid variable name for sigil-hub: not imported", label, k)
			continue
		}
		v, us, ok := b.envValue(label, path, e.Source.Client, prefix, k, raw)
		if !ok {
			continue
		}
		s.Env = append(s.Env, KV{k, v})
		uses = append(uses, us...)
	}
	for _, h := range slices.Sorted(maps.Keys(e.Headers)) {
		if !validHeaderName(h) {
			b.note("%s: header %q is not a valid header name: not imported", label, h)
			continue
		}
		v, us, ok := b.headerValue(label, path, e.Source.Client, prefix, h, e.Headers[h])
		if !ok {
			continue
		}
		s.Headers = append(s.Headers, KV{h, v})
		uses = append(uses, us...)
	}
	for _, h := range slices.Sorted(maps.Keys(e.HeaderVars)) {
		if _, dup := e.Headers[h]; dup || !validHeaderName(h) {
			continue
		}
		tmpl := e.HeaderVars[h] // "Scheme $VAR" from the client's own env-var settings
		pieces, _ := splitRefs(b.re, tmpl)
		if !headerShape(pieces) {
			b.note("%s: header %s mixes text and variables in a way the hub refuses (only a scheme word such as \"Bearer \" may precede them): not imported; set it in the hub file as one variable", label, h)
			continue
		}
		var out strings.Builder
		for _, p := range pieces {
			if p.Var != "" {
				out.WriteString("$" + p.Var)
				b.reserve(p.Var, "", path, "", false)
				uses = append(uses, varUse{p.Var, "header " + h + " (the client read it from $" + p.Var + ")", path})
			} else {
				out.WriteString(escapeDollar(p.Lit))
			}
		}
		s.Headers = append(s.Headers, KV{h, out.String()})
	}
	for _, h := range slices.Sorted(maps.Keys(e.HeaderTemplates)) {
		if slices.ContainsFunc(s.Headers, func(kv KV) bool { return strings.EqualFold(kv.Key, h) }) {
			continue
		}
		// A sigil.config.json value holds references only, in the hub's own
		// syntax (config.ParseSeed checked it): it is written as is.
		tmpl := e.HeaderTemplates[h]
		pieces, _ := splitRefs(b.re, tmpl)
		for _, p := range pieces {
			if p.Var != "" {
				b.reserve(p.Var, "", path, "", false)
				uses = append(uses, varUse{p.Var, "header " + h + " (from the wrapper's " + seedFileName + ")", path})
			}
		}
		s.Headers = append(s.Headers, KV{h, tmpl})
	}
	slices.SortFunc(s.Headers, func(a, b KV) int { return strings.Compare(a.Key, b.Key) })
	if s.URL == "" {
		s.Headers = nil
	} else {
		s.Env = nil
	}
	return s, uses
}

// envValue converts one env value. ok is false when the entry is dropped.
func (b *builder) envValue(label, path string, client Client, prefix, k, raw string) (string, []varUse, bool) {
	pieces, refs := splitRefs(b.re, raw)
	if refs == 0 {
		if safeLiteral(k, raw) {
			return escapeDollar(raw), nil, true
		}
		name := b.reserve(k, prefix+"_"+k, path, raw, true)
		return "$" + name, []varUse{{name, "env " + k + ": a literal value in " + path + " (not copied)", path}}, true
	}
	if refs == 1 && len(pieces) == 1 || !secretish(k) {
		var out strings.Builder
		var uses []varUse
		for _, p := range pieces {
			switch {
			case p.Var != "" && strings.HasPrefix(strings.ToUpper(p.Var), "SIGIL_"):
				b.note("%s: env %s references %s, a sigil-hub setting that is never passed to a server: not imported", label, k, p.Var)
				return "", nil, false
			case p.Var != "":
				b.reserve(p.Var, "", path, clientRef(client, p), false)
				out.WriteString("$" + p.Var)
				uses = append(uses, varUse{p.Var, "env " + k + ": was a reference to " + p.Var + " in " + path, path})
			case p.Input != "":
				name := k
				if len(pieces) > 1 {
					name = varName(p.Input)
				}
				name = b.reserve(name, prefix+"_"+name, path, clientRef(client, p), false)
				out.WriteString("$" + name)
				uses = append(uses, varUse{name, "env " + k + ": was the VS Code input " + strconv.Quote(p.Input) + " in " + path, path})
			default:
				out.WriteString(escapeDollar(p.Lit))
			}
		}
		return out.String(), uses, true
	}
	// A secret-looking name whose value mixes literal text and references:
	// the literal part may be the secret, so the whole value is one
	// variable.
	name := b.reserve(k, prefix+"_"+k, path, "", false)
	return "$" + name, []varUse{{name, "env " + k + ": a value mixing text and references in " + path + " (not copied; set the whole value)", path}}, true
}

// headerValue converts one header value: references are kept (as $NAME),
// literal text around them too; a value without references becomes
// "Scheme $VAR" or "$VAR".
func (b *builder) headerValue(label, path string, client Client, prefix, h, raw string) (string, []varUse, bool) {
	pieces, refs := splitRefs(b.re, raw)
	derived := varName(h)
	if !strings.HasPrefix(derived, prefix+"_") {
		derived = prefix + "_" + derived
	}
	if strings.EqualFold(h, "Authorization") || strings.EqualFold(h, "Proxy-Authorization") {
		derived = prefix + "_TOKEN"
	}
	if refs == 0 {
		scheme, _ := authScheme(raw)
		name := b.reserve(derived, "", path, strings.TrimSpace(raw[len(scheme):]), true)
		return escapeDollar(scheme) + "$" + name, []varUse{{name, "header " + h + ": a literal value in " + path + " (not copied)", path}}, true
	}
	if !headerShape(pieces) {
		// Text around the references beyond a scheme word may be the
		// secret, and the hub refuses it: the whole value is one variable.
		name := b.reserve(derived, "", path, "", false)
		return "$" + name, []varUse{{name, "header " + h + ": a value mixing text and references in " + path + " (not copied; set the whole value)", path}}, true
	}
	var out strings.Builder
	var uses []varUse
	for _, p := range pieces {
		switch {
		case p.Var != "" && strings.HasPrefix(strings.ToUpper(p.Var), "SIGIL_"):
			b.note("%s: header %s references %s, a sigil-hub setting that is never passed to a server: not imported", label, h, p.Var)
			return "", nil, false
		case p.Var != "":
			b.reserve(p.Var, "", path, clientRef(client, p), false)
			out.WriteString("$" + p.Var)
			uses = append(uses, varUse{p.Var, "header " + h + ": was a reference to " + p.Var + " in " + path, path})
		case p.Input != "":
			name := b.reserve(varName(p.Input), prefix+"_"+varName(p.Input), path, clientRef(client, p), false)
			out.WriteString("$" + name)
			uses = append(uses, varUse{name, "header " + h + ": was the VS Code input " + strconv.Quote(p.Input) + " in " + path, path})
		default:
			out.WriteString(escapeDollar(p.Lit))
		}
	}
	return out.String(), uses, true
}

// schemeWord is the only literal text the hub keeps in a header value
// besides its references: one short word and a space, before them.
var schemeWord = regexp.MustCompile(`^[A-Za-z][A-Za-z-]{0,15} $`)

// headerShape reports whether a header value's pieces are what the hub
// accepts: references, after at most a scheme word ("Bearer ").
func headerShape(pieces []piece) bool {
	for i, p := range pieces {
		if p.Var != "" || p.Input != "" {
			continue
		}
		if i != 0 || len(pieces) == 1 || !schemeWord.MatchString(p.Lit) {
			return false
		}
	}
	return true
}

// clientRef is how a client file refers to a variable or input, for the
// hub entry Apply writes into it; empty when the client has no such form.
func clientRef(c Client, p piece) string {
	if c != VSCode && c != Cursor {
		return ""
	}
	if p.Input != "" {
		if c == VSCode {
			return "${input:" + p.Input + "}"
		}
		return ""
	}
	return "${env:" + p.Var + "}"
}

// reserve registers a use of variable name. A literal value (literal true)
// must not share a name with a different literal value: then alt (or
// name_2, name_3, …) is used instead. raw is what Apply may write for it in
// the file at path (empty = nothing). It returns the name used.
func (b *builder) reserve(name, alt, path, raw string, literal bool) string {
	cands := []string{name}
	if alt != "" && alt != name {
		cands = append(cands, alt)
	}
	for i := 2; ; i++ {
		for _, c := range cands {
			st := b.vars[c]
			if literal && st != nil && len(st.literals) > 0 && !slices.Contains(st.literals, raw) {
				continue // a different secret already has this name
			}
			if st == nil {
				st = &varState{raw: map[string]string{}}
				b.vars[c] = st
			}
			if literal && !slices.Contains(st.literals, raw) {
				st.literals = append(st.literals, raw)
			}
			if _, set := st.raw[path]; raw != "" && !set {
				st.raw[path] = raw
			}
			return c
		}
		cands = []string{fmt.Sprintf("%s_%d", name, i)}
	}
}

// uniqueIDs disables a server whose serverId (explicit or derived) an
// earlier enabled server already has: the hub refuses duplicates.
func (b *builder) uniqueIDs(servers []Server) {
	owner := map[string]string{}
	for i := range servers {
		s := &servers[i]
		if s.Disabled {
			continue
		}
		id := b.serverID(*s)
		if id == "" {
			continue
		}
		if first, dup := owner[id]; dup {
			s.Disabled = true
			b.note("servers.%s has the same serverId as servers.%s (%s): imported disabled; give one of them its own server_id to use both", s.Name, first, id)
			continue
		}
		owner[id] = s.Name
	}
}

func (b *builder) serverID(s Server) string {
	if s.ServerID != "" {
		return s.ServerID
	}
	if s.URL != "" {
		if b.opts.DeriveURLID != nil {
			id, err := b.opts.DeriveURLID(s.URL)
			if err != nil {
				return ""
			}
			return id
		}
		return s.URL
	}
	if b.opts.DeriveID != nil {
		return b.opts.DeriveID(s.Command, s.Args)
	}
	return strings.Join(append([]string{s.Command}, s.Args...), " ")
}

// sameServer reports whether two servers have the same definition.
func sameServer(a, b Server) bool {
	a.Name, b.Name, a.From, b.From = "", "", nil, nil
	return reflect.DeepEqual(a, b)
}

// sanitizeName makes a server name from an entry key: runs of characters
// outside [A-Za-z0-9_-] become one '_', leading and trailing '_' are
// dropped, and the result is cut to 32 bytes. Deterministic.
func sanitizeName(key string) string {
	var b strings.Builder
	under := false
	for _, r := range key {
		ok := r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-'
		if ok {
			b.WriteRune(r)
			under = false
		} else if !under {
			b.WriteByte('_')
			under = true
		}
	}
	n := strings.Trim(b.String(), "_")
	if len(n) > 32 {
		n = strings.TrimRight(n[:32], "_")
	}
	if n == "" {
		n = "server"
	}
	return n
}

// suffixName is base for i == 1 and base-i otherwise, cut to 32 bytes.
func suffixName(base string, i int) string {
	if i == 1 {
		return base
	}
	suf := "-" + strconv.Itoa(i)
	if len(base)+len(suf) > 32 {
		base = base[:32-len(suf)]
	}
	return base + suf
}
