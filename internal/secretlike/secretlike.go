// Package secretlike is the one classifier of "this looks like a secret",
// shared by the importer (which turns such values into $NAME references
// when it writes a hub file) and the hub's config parser (which refuses
// them written literally in a team file: README says secrets are only
// $ENV references). It only looks at names and text; it never logs or
// returns a value. It imports only the standard library, so both of its
// users can depend on it without depending on each other.
package secretlike

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// nameWords are the upper-case fragments of a variable, header, flag or
// query parameter name that suggest a secret. The list is deliberately
// broad.
var nameWords = []string{"KEY", "TOKEN", "SECRET", "PASSW", "PWD", "PASS", "AUTH", "CREDENTIAL", "PRIVATE",
	"SESSION", "COOKIE", "CERT", "SIGNATURE", "SALT", "DSN", "CONNECTION", "BEARER", "JWT"}

// NameWords lists, for messages, what Name looks for.
const NameWords = "KEY, TOKEN, SECRET, PASS, PWD, AUTH, CREDENTIAL, PRIVATE, SESSION, COOKIE, CERT, SIGNATURE, SALT, DSN, CONNECTION, BEARER or JWT"

// Name reports whether a variable or header name suggests a secret.
// Matching is on the upper-cased name.
func Name(name string) bool {
	n := strings.ToUpper(name)
	return slices.ContainsFunc(nameWords, func(w string) bool { return strings.Contains(n, w) })
}

// Harmless reports whether a value is obviously not a secret, whatever its
// name: a boolean, a small number or a log-level or environment word.
func Harmless(value string) bool {
	switch strings.ToLower(value) {
	case "true", "false", "yes", "no", "on", "off",
		"trace", "debug", "info", "warn", "warning", "error", "fatal", "silent", "verbose", "quiet",
		"production", "development", "test":
		return true
	}
	if len(value) <= 6 {
		if _, err := strconv.ParseFloat(value, 64); err == nil && strings.Trim(value, "0123456789.-") == "" {
			return true
		}
	}
	return false
}

// URL reports whether a URL carries a credential: user information, or a
// query parameter whose name suggests a secret (or is code or sig).
func URL(u string) bool {
	j := strings.Index(u, "://")
	if j < 0 {
		return false
	}
	rest := u[j+3:]
	host := rest
	if k := strings.IndexAny(rest, "/?#"); k >= 0 {
		host = rest[:k]
	}
	if strings.Contains(host, "@") {
		return true
	}
	_, q, ok := strings.Cut(rest, "?")
	if !ok {
		return false
	}
	q, _, _ = strings.Cut(q, "#")
	for _, kv := range strings.Split(q, "&") {
		k, _, _ := strings.Cut(kv, "=")
		if Name(k) || strings.EqualFold(k, "code") || strings.EqualFold(k, "sig") {
			return true
		}
	}
	return false
}

// FormatRule says, for messages, what Format looks for.
const FormatRule = "a known token prefix such as sk_live_, sk-ant-, ghp_, github_pat_, glpat-, xoxb- or AKIA, " +
	"a private key, a JWT, a URL with a password or a secret query parameter, " +
	"or 32 or more random-looking letters and digits"

// tokenFormats are credential formats with a recognisable shape.
var tokenFormats = regexp.MustCompile(`` +
	`(?:^|[^A-Za-z0-9])(?:` +
	`[sr]k_(?:live|test)_[A-Za-z0-9]{8,}` + // Stripe
	`|sk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}` + // Anthropic, OpenAI
	`|gh[pousr]_[A-Za-z0-9]{20,}|github_pat_[A-Za-z0-9_]{20,}` + // GitHub
	`|glpat-[A-Za-z0-9_-]{16,}` + // GitLab
	`|xox[abeoprs]-[A-Za-z0-9-]{8,}|xapp-[A-Za-z0-9-]{8,}` + // Slack
	`|(?:AKIA|ASIA)[A-Z0-9]{16}` + // AWS access key id
	`|AIza[A-Za-z0-9_-]{30,}` + // Google API key
	`|eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*` + // JWT
	`)` +
	`|-----BEGIN [A-Z ]*PRIVATE KEY-----`)

// Format reports whether text has the shape of a credential whatever name
// it is under (see FormatRule).
func Format(text string) bool {
	if tokenFormats.MatchString(text) {
		return true
	}
	for _, f := range strings.Fields(text) {
		switch {
		case strings.Contains(f, "://"):
			if URL(f) {
				return true
			}
		case Path(f):
			// Folder names (a temporary folder's CamelCase name with
			// random digits) are not tokens.
		case randomRun(f):
			return true
		}
	}
	return false
}

// Path reports whether text starts like a file path: /, ~/, ./, ../ or a
// Windows drive (C:\ or C:/).
func Path(text string) bool {
	prefix := func(p string) bool { return strings.HasPrefix(text, p) }
	if slices.ContainsFunc([]string{"/", "~/", "./", "../"}, prefix) {
		return true
	}
	return len(text) > 2 && text[1] == ':' && (text[2] == '\\' || text[2] == '/') && (text[0]|0x20 >= 'a' && text[0]|0x20 <= 'z')
}

// randomRun reports whether text holds a run of at least 32 ASCII letters
// and digits that looks random: upper case, lower case and digits all
// present, and the character class changing at least twice in five
// characters (a random base62 string changes about three times in five; a
// CamelCase name with a number far less often).
func randomRun(text string) bool {
	for run := range strings.FieldsFuncSeq(text, func(r rune) bool { return class(r) == 0 }) {
		var seen [4]bool
		changes := 0
		for j := range len(run) {
			seen[class(rune(run[j]))] = true
			if j > 0 && class(rune(run[j])) != class(rune(run[j-1])) {
				changes++
			}
		}
		if n := len(run); n >= 32 && seen[lower] && seen[upper] && seen[digit] && changes*5 >= n*2 {
			return true
		}
	}
	return false
}

// The classes of ASCII letters and digits (0 for every other rune).
const (
	lower = 1 + iota
	upper
	digit
)

func class(r rune) int {
	switch {
	case r >= 'a' && r <= 'z':
		return lower
	case r >= 'A' && r <= 'Z':
		return upper
	case r >= '0' && r <= '9':
		return digit
	}
	return 0
}

// TokenRun reports whether text holds a run of at least 16 letters, digits,
// '_' or '-' with both a letter and a digit in it: literal text that could
// be (part of) a token.
func TokenRun(text string) bool {
	for run := range strings.FieldsFuncSeq(text, func(r rune) bool { return class(r) == 0 && r != '_' && r != '-' }) {
		letter := strings.ContainsFunc(run, func(r rune) bool { return class(r) == lower || class(r) == upper })
		if len(run) >= 16 && letter && strings.ContainsAny(run, "0123456789") {
			return true
		}
	}
	return false
}
