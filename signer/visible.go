package signer

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// What a person approves must be what they see. Every field of a hold
// except its id and state comes from the client (the agent name is the
// client's clientInfo.name, the arguments its tools/call), so the approval
// page and `sigil-hub holds` show them through Visible and VisibleJSON:
// a character that a terminal or a browser would not display as itself
// (C0 and C1 controls and DEL, which drive terminals; bidirectional
// overrides and isolates such as U+202E and U+2066–U+2069, which reorder
// what is shown; zero-width and other invisible or default-ignorable
// characters such as U+200B–U+200F, U+FEFF and the tag characters; line
// and paragraph separators; spaces other than U+0020; unassigned code
// points) is shown as its escape, and nothing is ever cut.

// invisible reports whether r must be shown as an escape.
func invisible(r rune) bool {
	return r != ' ' && !unicode.IsPrint(r) ||
		unicode.In(r, unicode.Variation_Selector, unicode.Other_Default_Ignorable_Code_Point)
}

// appendEscape appends the JSON escape of r (\u001b, \u202e; a surrogate
// pair beyond the Basic Multilingual Plane), which is also what it means
// inside a JSON string.
func appendEscape(b *strings.Builder, r rune) {
	if r > 0xffff {
		r1, r2 := utf16.EncodeRune(r)
		fmt.Fprintf(b, `\u%04x\u%04x`, r1, r2)
		return
	}
	fmt.Fprintf(b, `\u%04x`, r)
}

// visible escapes s; backslash too when plain (so that an escape in the
// output always stands for one character of s).
func visible(s string, plain bool) string {
	escaped := func(r rune) bool { return r == utf8.RuneError || invisible(r) || plain && r == '\\' }
	i := strings.IndexFunc(s, escaped)
	if i < 0 {
		return s
	}
	var b strings.Builder
	b.WriteString(s[:i])
	for i < len(s) {
		r, n := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i]) // not UTF-8: the byte itself
		case plain && r == '\\':
			b.WriteString(`\\`)
		case invisible(r):
			appendEscape(&b, r)
		default:
			b.WriteString(s[i : i+n])
		}
		i += n
	}
	return b.String()
}

// Visible returns s as a person should read it on a terminal or a web
// page: every character that would not show as itself is replaced by its
// escape (\u001b for ESC, \u202e for RIGHT-TO-LEFT OVERRIDE, \x.. for a
// byte that is not UTF-8), and a backslash by \\, so that s can be read
// back exactly. Printable text, including non-Latin scripts, is unchanged.
func Visible(s string) string { return visible(s, true) }

// VisibleJSON returns JSON text as a person should read it: like Visible,
// but a backslash stays as it is (in JSON it always starts an escape), so
// that the result, when the input is valid JSON, is still JSON for the same
// value. Apply it to one line at a time: it escapes line breaks too.
func VisibleJSON(s string) string { return visible(s, false) }

// CompactArguments returns arguments on one line as a person should read
// them: compacted (the insignificant whitespace of the JSON text removed;
// string contents are kept byte for byte) and escaped with VisibleJSON.
// Nothing is cut: wrap it, never truncate it.
func CompactArguments(raw json.RawMessage) string {
	var b bytes.Buffer
	if json.Compact(&b, raw) == nil {
		return VisibleJSON(b.String())
	}
	return VisibleJSON(string(raw))
}

// PrettyArguments returns arguments indented by two spaces, each line
// escaped with VisibleJSON: complete, one member per line.
func PrettyArguments(raw json.RawMessage) string {
	var c, b bytes.Buffer
	if json.Compact(&c, raw) != nil || json.Indent(&b, c.Bytes(), "", "  ") != nil {
		return VisibleJSON(string(raw))
	}
	lines := strings.Split(b.String(), "\n")
	for i, l := range lines {
		lines[i] = VisibleJSON(l)
	}
	return strings.Join(lines, "\n")
}
