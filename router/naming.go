package router

import (
	"crypto/sha256"
	"encoding/hex"
)

// DefaultSeparator is the separator used when Rules.Separator is empty.
const DefaultSeparator = "__"

// MaxNameLen is the longest exposed name produced in hub mode.
const MaxNameLen = 64

// hashSuffixLen is len("_") + 8 hex digits.
const hashSuffixLen = 9

func isNameByte(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-'
}

// ValidName reports whether s matches ^[A-Za-z0-9_-]{1,64}$, the form every
// hub-mode exposed name has. Safe for concurrent use.
func ValidName(s string) bool {
	if len(s) == 0 || len(s) > MaxNameLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isNameByte(s[i]) {
			return false
		}
	}
	return true
}

// ExposedName returns the hub-mode exposed name for the upstream's own name
// and whether it had to be rewritten. sep "" means DefaultSeparator.
//
// The name is upstream+sep+name when that fits ^[A-Za-z0-9_-]{1,64}$.
// Otherwise every character outside [A-Za-z0-9_-] (one '_' per rune; per
// byte for invalid UTF-8) is replaced by '_', the result is cut to 55 bytes
// if needed, and '_' plus the first 8 lowercase hex digits of
// SHA-256(upstream + "\x00" + name) are appended. The hash keeps two
// rewritten names apart ("a.b" and "a:b") and makes the result depend only
// on its inputs, so it is stable across restarts. Pure; safe for concurrent use.
func ExposedName(sep, upstream, name string) (exposed string, renamed bool) {
	if sep == "" {
		sep = DefaultSeparator
	}
	combined := upstream + sep + name
	if ValidName(combined) {
		return combined, false
	}
	b := make([]byte, 0, len(combined))
	for _, r := range combined { // one '_' per rune (invalid UTF-8: per byte)
		if r < 0x80 && isNameByte(byte(r)) {
			b = append(b, byte(r))
		} else {
			b = append(b, '_')
		}
	}
	if len(b) > MaxNameLen-hashSuffixLen {
		b = b[:MaxNameLen-hashSuffixLen]
	}
	sum := sha256.Sum256([]byte(upstream + "\x00" + name))
	b = append(b, '_')
	b = hex.AppendEncode(b, sum[:4])
	return string(b), true
}
