package importer

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// renderTOML writes the hub file: a header comment (where each server came
// from, which variables to set), then one [servers.NAME] table per server.
func renderTOML(r Result, now time.Time) []byte {
	var b strings.Builder
	b.WriteString("# sigil-hub.toml, written by `sigil-hub import`")
	if !now.IsZero() {
		b.WriteString(" on " + now.UTC().Format(time.RFC3339))
	}
	b.WriteString(".\n# Every key is described in sigil-hub.toml.example.\n#\n")
	b.WriteString("# Secrets were not copied: env and header values are $VARIABLE references.\n")
	if len(r.Vars) > 0 {
		b.WriteString("# Set these variables where sigil-hub runs (e.g. in the env of the client's\n# sigil-hub entry):\n")
		for _, v := range r.Vars {
			b.WriteString("#   " + v.Name + "\n")
		}
	}
	b.WriteString("# The Sigil API key is read from SIGIL_API_KEY only, never from this file.\n")
	if len(r.Servers) > 0 {
		b.WriteString("#\n# Imported from:\n")
		for _, s := range r.Servers {
			for _, o := range s.From {
				fmt.Fprintf(&b, "#   servers.%s <- %s, entry %s\n", s.Name, comment(o.Source.String()), comment(tomlString(o.Key)))
			}
		}
	}
	if r.SignURL != "" || r.PendingTimeout != "" || r.LogLevel != "" {
		b.WriteString("\n# Carried from the wrappers' --sign-url, --pending-timeout and --log-level\n# (or their environment or sigil.config.json); they apply to every server.\n")
		if r.SignURL != "" {
			fmt.Fprintf(&b, "sign_url = %s\n", tomlString(r.SignURL))
		}
		if r.PendingTimeout != "" {
			fmt.Fprintf(&b, "pending_timeout = %s\n", r.PendingTimeout)
		}
		if r.LogLevel != "" {
			fmt.Fprintf(&b, "log_level = %s\n", tomlString(r.LogLevel))
		}
	}
	for _, s := range r.Servers {
		fmt.Fprintf(&b, "\n[servers.%s]\n", tomlKey(s.Name))
		if s.Command != "" {
			fmt.Fprintf(&b, "command = %s\n", tomlString(s.Command))
			if len(s.Args) > 0 {
				fmt.Fprintf(&b, "args = %s\n", tomlArray(s.Args))
			}
			if s.Cwd != "" {
				fmt.Fprintf(&b, "cwd = %s\n", tomlString(s.Cwd))
			}
			if len(s.Env) > 0 {
				fmt.Fprintf(&b, "env = %s\n", tomlInline(s.Env))
			}
		} else {
			fmt.Fprintf(&b, "url = %s\n", tomlString(s.URL))
			if s.Transport != "" {
				fmt.Fprintf(&b, "transport = %s\n", tomlString(s.Transport))
			}
			if len(s.Headers) > 0 {
				fmt.Fprintf(&b, "headers = %s\n", tomlInline(s.Headers))
			}
		}
		if s.ServerID != "" {
			fmt.Fprintf(&b, "server_id = %s\n", tomlString(s.ServerID))
		}
		if s.ServerName != "" {
			fmt.Fprintf(&b, "server_name = %s\n", tomlString(s.ServerName))
		}
		if s.Disabled {
			b.WriteString("disabled = true\n")
		}
		for _, tool := range slices.Sorted(maps.Keys(s.Extractors)) {
			var kvs []KV
			for _, k := range slices.Sorted(maps.Keys(s.Extractors[tool])) {
				kvs = append(kvs, KV{k, s.Extractors[tool][k]})
			}
			fmt.Fprintf(&b, "extractors.%s = %s\n", tomlKey(tool), tomlInline(kvs))
		}
	}
	return []byte(b.String())
}

// comment makes text safe inside a one-line TOML comment.
func comment(s string) string {
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
}

// tomlString quotes s as a TOML basic string.
func tomlString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch r {
		case '"':
			b.WriteString(`\"`)
		case '\\':
			b.WriteString(`\\`)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\r':
			b.WriteString(`\r`)
		default:
			if r < 0x20 || r == 0x7f {
				fmt.Fprintf(&b, `\u%04X`, r)
			} else {
				b.WriteRune(r)
			}
		}
	}
	b.WriteByte('"')
	return b.String()
}

// tomlKey writes a key bare when it can be, quoted otherwise.
func tomlKey(k string) string {
	if k == "" {
		return `""`
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return tomlString(k)
		}
	}
	return k
}

func tomlArray(a []string) string {
	q := make([]string, len(a))
	for i, s := range a {
		q[i] = tomlString(s)
	}
	return "[" + strings.Join(q, ", ") + "]"
}

func tomlInline(kvs []KV) string {
	q := make([]string, len(kvs))
	for i, kv := range kvs {
		q[i] = tomlKey(kv.Key) + " = " + tomlString(kv.Value)
	}
	return "{ " + strings.Join(q, ", ") + " }"
}
