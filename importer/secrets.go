package importer

import (
	"regexp"
	"strings"

	"github.com/sigilcore/sigil-hub/internal/headername"
	"github.com/sigilcore/sigil-hub/internal/secretlike"
)

// Secret handling. The hub file is meant to be shared, so no env or header
// value from a client file is ever written into it. Every such value
// becomes a $NAME reference, with one exception decided by safeLiteral:
// an env value that is obviously not a secret (a boolean, a small number or
// a log-level word) under a name that does not suggest a secret. Paths,
// URLs, ids and anything else are references, even when harmless: a person
// can always paste a harmless value back; a leaked token cannot be
// un-leaked.

// secretish reports whether a variable or header name suggests a secret
// (secretlike.Name: the classifier the hub's config check shares).
func secretish(name string) bool { return secretlike.Name(name) }

// safeLiteral reports whether an env value may be copied into the hub file
// as is (see the comment at the top of this file): an obviously harmless
// value (secretlike.Harmless) under a name that does not suggest a secret.
func safeLiteral(name, value string) bool {
	return !secretlike.Name(name) && secretlike.Harmless(value)
}

// piece is a part of a value: literal text, or a reference to an
// environment variable (Var) or a VS Code input (Input).
type piece struct {
	Lit   string
	Var   string
	Input string
}

// refPattern matches the reference forms clients use: ${env:NAME},
// ${input:ID}, ${NAME}, ${NAME:-default}, $NAME and the escape $$.
func refPattern() *regexp.Regexp {
	return regexp.MustCompile(`\$\$|\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}|\$\{input:([^}]+)\}|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-[^}]*)?\}|\$([A-Za-z_][A-Za-z0-9_]*)`)
}

// splitRefs splits s into literal text and references. A '$' that starts
// no reference is literal text.
func splitRefs(re *regexp.Regexp, s string) (pieces []piece, refs int) {
	last := 0
	lit := func(t string) {
		if t == "" {
			return
		}
		if n := len(pieces); n > 0 && pieces[n-1].Var == "" && pieces[n-1].Input == "" {
			pieces[n-1].Lit += t
			return
		}
		pieces = append(pieces, piece{Lit: t})
	}
	for _, m := range re.FindAllStringSubmatchIndex(s, -1) {
		lit(s[last:m[0]])
		last = m[1]
		sub := func(g int) string {
			if m[2*g] < 0 {
				return ""
			}
			return s[m[2*g]:m[2*g+1]]
		}
		switch {
		case s[m[0]:m[1]] == "$$":
			lit("$")
		case sub(2) != "":
			pieces = append(pieces, piece{Input: sub(2)})
			refs++
		default:
			pieces = append(pieces, piece{Var: sub(1) + sub(3) + sub(4)})
			refs++
		}
	}
	lit(s[last:])
	return pieces, refs
}

// varName turns any text into an environment variable name: upper case,
// [A-Z0-9_], not starting with a digit.
func varName(s string) string {
	var b strings.Builder
	under := false
	for _, r := range strings.ToUpper(s) {
		if r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' {
			b.WriteRune(r)
			under = false
		} else if !under && b.Len() > 0 {
			b.WriteByte('_')
			under = true
		}
	}
	n := strings.TrimRight(b.String(), "_")
	if n == "" {
		return "MCP"
	}
	if n[0] >= '0' && n[0] <= '9' {
		n = "MCP_" + n
	}
	return n
}

// validVarName reports whether s can be referenced as $s.
func validVarName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c == '_' || c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// validHeaderName reports whether s is a header name (headername.Valid).
func validHeaderName(s string) bool { return headername.Valid(s) }

// escapeDollar makes literal text safe in a hub env or header value.
func escapeDollar(s string) string { return strings.ReplaceAll(s, "$", "$$") }

// authScheme returns the scheme prefix of "Bearer abc": "Bearer " (always
// ending in one space, the only literal text the hub keeps in a header
// value, even when the value had a tab; as long as the prefix in v); ok is
// false when the value does not start with a known scheme.
func authScheme(v string) (scheme string, ok bool) {
	for _, s := range []string{"Bearer", "Basic", "Token", "Bot", "ApiKey", "Api-Key"} {
		if len(v) > len(s)+1 && strings.EqualFold(v[:len(s)], s) && (v[len(s)] == ' ' || v[len(s)] == '\t') {
			return v[:len(s)] + " ", true
		}
	}
	return "", false
}

// secretArg reports whether args[i] holds a credential that a shared file
// must not carry: a value after a flag (or in NAME=VALUE form) whose name
// suggests a secret, or a URL with a password.
func secretArg(args []string, i int) bool {
	a := args[i]
	if k, v, ok := strings.Cut(a, "="); ok && v != "" && secretArgName(k) && !strings.Contains(k, "/") {
		return true
	}
	if i > 0 && strings.HasPrefix(args[i-1], "-") && !strings.Contains(args[i-1], "=") && secretArgName(args[i-1]) &&
		!strings.HasPrefix(a, "-") {
		return true
	}
	if j := strings.Index(a, "://"); j > 0 {
		rest := a[j+3:]
		if at := strings.IndexByte(rest, '@'); at >= 0 {
			if slash := strings.IndexByte(rest, '/'); slash < 0 || at < slash {
				if strings.Contains(rest[:at], ":") {
					return true
				}
			}
		}
	}
	return false
}

// secretArgName reports whether a flag or NAME= prefix names a secret
// value; names of files, paths and variables holding one do not.
func secretArgName(flag string) bool {
	n := strings.ToUpper(strings.TrimLeft(flag, "-"))
	for _, s := range []string{"FILE", "PATH", "DIR", "ENV", "VAR"} {
		if strings.HasSuffix(n, s) {
			return false
		}
	}
	return secretish(n)
}

// secretURL reports whether a URL's query carries a parameter whose
// name suggests a secret, or the URL has userinfo (secretlike.URL).
func secretURL(u string) bool { return secretlike.URL(u) }

// redactURL removes userinfo and replaces every query value with REDACTED.
func redactURL(u string) string {
	j := strings.Index(u, "://")
	if j < 0 {
		return u
	}
	scheme, rest := u[:j+3], u[j+3:]
	hostEnd := len(rest)
	if k := strings.IndexAny(rest, "/?#"); k >= 0 {
		hostEnd = k
	}
	host := rest[:hostEnd]
	if at := strings.LastIndexByte(host, '@'); at >= 0 {
		host = host[at+1:]
	}
	tail := rest[hostEnd:]
	frag := ""
	if k := strings.IndexByte(tail, '#'); k >= 0 {
		tail, frag = tail[:k], tail[k:]
	}
	if p, q, ok := strings.Cut(tail, "?"); ok {
		var parts []string
		for _, kv := range strings.Split(q, "&") {
			k, _, _ := strings.Cut(kv, "=")
			parts = append(parts, k+"=REDACTED")
		}
		tail = p + "?" + strings.Join(parts, "&")
	}
	_ = frag // a fragment is never sent; the hub refuses one
	return scheme + host + tail
}
