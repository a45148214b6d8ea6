package importer

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
)

// The wrappers' own settings (README "Coming from @sigilcore/mcp-proxy"):
// the hub-wide ones a wrapper ran with (--sign-url, --pending-timeout,
// --log-level) go to the hub file's top level, --unsafe-bypass to the
// printed hub entry, and a wrapper's sigil.config.json to its server
// (ApplySeed). Every setting that cannot be carried is named in a note,
// with why.

// seedFileName is the file @sigilcore/mcp-proxy reads from its working
// folder (config.SeedFileName).
const seedFileName = "sigil.config.json"

// Seed is what a wrapper's sigil.config.json holds, as the caller read and
// checked it (config.ParseSeed): header values as written (references
// only), never expanded. A plain value.
type Seed struct {
	SignURL, LogLevel    string
	ServerID, ServerName string
	// PendingTimeout is in milliseconds; 0 = not set.
	PendingTimeout int64
	Headers        map[string]string
	Extractors     map[string]map[string]string
}

// ApplySeed merges a wrapper's sigil.config.json into its entry under the
// wrapper's flags and env, which win (flag > environment > file, as the
// proxy does). file names the file in notes. Pure.
func ApplySeed(e *Entry, file string, s Seed) {
	e.ServerID = pick(e.ServerID, s.ServerID)
	e.ServerName = pick(e.ServerName, s.ServerName)
	e.SignURL = pick(e.SignURL, s.SignURL)
	e.LogLevel = pick(e.LogLevel, s.LogLevel)
	if e.PendingTimeout == "" && s.PendingTimeout > 0 {
		e.PendingTimeout = strconv.FormatInt(s.PendingTimeout, 10)
	}
	if len(s.Extractors) > 0 {
		e.Extractors = map[string]map[string]string{}
		for tool, x := range s.Extractors {
			e.Extractors[tool] = maps.Clone(x)
		}
	}
	if len(s.Headers) == 0 {
		return
	}
	if e.URL == "" {
		e.Notes = append(e.Notes, fmt.Sprintf("upstream.headers of %s apply only to a remote server (--remote): not imported", file))
		return
	}
	for _, h := range slices.Sorted(maps.Keys(s.Headers)) {
		if slices.ContainsFunc(slices.Collect(maps.Keys(e.Headers)), func(k string) bool { return strings.EqualFold(k, h) }) {
			continue // SIGIL_UPSTREAM_AUTH: the environment beats the file
		}
		if e.HeaderTemplates == nil {
			e.HeaderTemplates = map[string]string{}
		}
		e.HeaderTemplates[h] = s.Headers[h]
	}
}

// resolveSeed makes a wrapper's sigil.config.json path absolute against the
// entry's cwd when it is relative and the cwd is known.
func resolveSeed(e *Entry) {
	if e.SeedConfig == "" || isAbs(e.SeedConfig) || !isAbs(e.Cwd) {
		return
	}
	sep := "/"
	if strings.Contains(e.Cwd, `\`) && !strings.Contains(e.Cwd, "/") {
		sep = `\`
	}
	e.SeedConfig = strings.TrimRight(e.Cwd, `/\`) + sep + e.SeedConfig
}

// isAbs reports whether p is absolute on Unix or Windows.
func isAbs(p string) bool {
	return strings.HasPrefix(p, "/") || strings.HasPrefix(p, `\\`) || len(p) > 2 && p[1] == ':' && (p[2] == '\\' || p[2] == '/')
}

// SeedUnknownFolder reports whether e's sigil.config.json cannot be found
// because it is relative to the folder the client starts the wrapper in,
// which the client file does not say.
func (e Entry) SeedUnknownFolder() bool { return e.SeedConfig != "" && !isAbs(e.SeedConfig) }

// pickEnv returns the wrapper's --flag value, else its env variable's, and
// takes that variable out of the env (it is carried, not a note).
func pickEnv(flags map[string]string, flag string, env map[string]string, name string) string {
	v := env[name]
	delete(env, name)
	if f, ok := flags[flag]; ok && f != "" {
		return f
	}
	return v
}

// wrapperNotes names each wrapper flag that is not carried, with why.
func wrapperNotes(e *Entry, flags map[string]string) {
	why := map[string]string{
		"policy": "a local policy would decide every server's calls offline instead of Sigil Sign: not carried into a shared hub file " +
			"(add policy = \"...\" to it, or --policy to the hub entry, if that is what you want)",
		"call-timeout": "a hub-wide budget import does not carry: set call_timeout in the hub file if you need it",
		"audit":        "a hub-wide audit log import does not carry: set audit in the hub file if you need it",
		"pin":          "tool pinning is hub-wide and import does not carry it: set pin in the hub file if you need it",
		"pin-file":     "tool pinning is hub-wide and import does not carry it: set pin_file in the hub file if you need it",
		"only":         "it selects a server of a hub file, not a setting of this server: not carried",
		"overlay":      "a personal overlay belongs to the person, not the shared hub file: not carried (the hub entry still reads the default overlay)",
		"listen":       "it served HTTP instead of stdio: the hub entry speaks stdio; not carried",
		"approvals":    "the approval page's address applies to the running hub only: not carried",
		"port":         "the OAuth callback port applies to the running hub only: not carried (add --port to the hub entry if you need it)",
		"open-browser": "it applies to the running hub only: not carried (add --open-browser to the hub entry if you need it)",
	}
	carried := []string{"server-id", "server-name", "remote", "key", "sign-url", "log-level", "pending-timeout", "config", "unsafe-bypass"}
	for _, f := range slices.Sorted(maps.Keys(flags)) {
		switch {
		case slices.Contains(carried, f):
		case why[f] != "":
			e.Notes = append(e.Notes, fmt.Sprintf("the wrapper's --%s: %s", f, why[f]))
		default:
			e.Notes = append(e.Notes, fmt.Sprintf("the wrapper's --%s is not a flag of sigil-hub or @sigilcore/mcp-proxy: not carried", f))
		}
	}
}

// hubSetting is one hub-wide setting during Build: the first value seen
// and the entry it came from.
type hubSetting struct {
	value, from string
}

// hubWide carries an imported wrapper's hub-wide settings into the
// result, before s is named (--unsafe-bypass is recorded once it is). A
// conflicting Sign URL disables the later server: its calls would
// otherwise go to another Sign than before (its policy, its test keys).
func (b *builder) hubWide(e Entry, label string, s *Server) {
	if e.Wrapper == "" {
		return
	}
	if e.SignURL != "" {
		u := strings.TrimRight(e.SignURL, "/")
		if b.opts.CheckSignURL != nil {
			var err error
			if u, err = b.opts.CheckSignURL(e.SignURL); err != nil {
				b.note("%s: its Sign URL is not carried: %v", label, err)
				u = ""
			}
		}
		switch first := b.signURL; {
		case u == "":
		case first.value == "":
			b.signURL = hubSetting{u, label}
		case first.value != u:
			if !s.Disabled {
				s.Disabled = true
			}
			b.note("%s: its wrapper used Sign at %s, but the hub has one Sign URL (%s, from %s): imported disabled; "+
				"serve it from a second hub file with its own sign_url", label, u, first.value, first.from)
		}
	}
	if v := e.PendingTimeout; v != "" {
		ms, err := strconv.ParseInt(v, 10, 64)
		switch first := b.pending; {
		case err != nil || ms <= 0 || ms > 24*60*60*1000:
			b.note("%s: its pending timeout %q is not a positive number of milliseconds (at most one day): not carried", label, v)
		case first.value == "":
			b.pending = hubSetting{strconv.FormatInt(ms, 10), label}
		case first.value != strconv.FormatInt(ms, 10):
			b.note("%s: its pending timeout %d ms is not carried: the hub has one, %s ms from %s", label, ms, first.value, first.from)
		}
	}
	if v := strings.ToLower(e.LogLevel); v != "" {
		if v == "warning" {
			v = "warn"
		}
		switch first := b.logLevel; {
		case !slices.Contains([]string{"debug", "info", "warn", "error"}, v):
			b.note("%s: its log level %q is not debug, info, warn or error: not carried", label, e.LogLevel)
		case first.value == "":
			b.logLevel = hubSetting{v, label}
		case first.value != v:
			b.note("%s: its log level %s is not carried: the hub has one, %s from %s", label, v, first.value, first.from)
		}
	}
}

// hubWideNotes says what the carried hub-wide settings mean for servers
// that did not have them.
func (b *builder) hubWideNotes(servers []Server) {
	var others []string
	for _, s := range servers {
		if !slices.Contains(b.bypass, s.Name) {
			others = append(others, "servers."+s.Name)
		}
	}
	if len(b.bypass) > 0 {
		msg := fmt.Sprintf("--unsafe-bypass (a command-line flag only) is kept on the sigil-hub entry, from %s", strings.Join(prefixAll("servers.", b.bypass), ", "))
		if len(others) > 0 {
			msg += fmt.Sprintf("; it now applies to every server of the hub, also %s, which failed closed before: remove it from the entry to fail closed everywhere", strings.Join(others, ", "))
		}
		b.note("%s", msg)
	}
	if b.signURL.value != "" && len(servers) > 1 {
		b.note("sign_url = %q (from %s) applies to every server in the hub file", b.signURL.value, b.signURL.from)
	}
}

func prefixAll(p string, xs []string) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = p + x
	}
	return out
}
