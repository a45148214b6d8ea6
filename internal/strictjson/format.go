package strictjson

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// This file writes JSON: strings as Go's encoding/json and as JavaScript's
// JSON.stringify write them, and numbers as JavaScript writes them. The
// canonical forms (pg-commit in authz, the policy hash in authz/policy) and
// every message sigil-hub builds by hand use these, so that each rule is
// written once.

const lowerHex = "0123456789abcdef"

// AppendString appends s as a JSON string exactly as encoding/json encodes
// it with HTML escaping off (json.Encoder.SetEscapeHTML(false)): '<', '>'
// and '&' as they are, U+2028 and U+2029 escaped, invalid UTF-8 as \ufffd.
// A string of printable ASCII without '"' and '\\' (the usual name or id)
// is copied without an encoder.
func AppendString(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' {
			var b bytes.Buffer
			enc := json.NewEncoder(&b)
			enc.SetEscapeHTML(false)
			_ = enc.Encode(s) // a string always encodes
			return append(dst, bytes.TrimSuffix(b.Bytes(), []byte("\n"))...)
		}
	}
	dst = append(dst, '"')
	dst = append(dst, s...)
	return append(dst, '"')
}

// appendASCIIEscape appends the escape that both encoding/json and
// JSON.stringify write for c, '"', '\\' or a C0 control character.
func appendASCIIEscape(dst []byte, c byte) []byte {
	switch c {
	case '"', '\\':
		return append(dst, '\\', c)
	case '\b', '\t', '\n', '\f', '\r': // 8, 9, 10, 12, 13: '\v' (11) has no short escape
		return append(dst, '\\', "btn_fr"[c-'\b'])
	}
	return append(dst, '\\', 'u', '0', '0', lowerHex[c>>4], lowerHex[c&0xF])
}

// AppendJSString appends the string s, given as UTF-16 code units, as
// JavaScript's JSON.stringify writes it (ECMAScript QuoteJSONString,
// well-formed since ES2019): the two-character escapes \" \\ \b \f \n \r
// \t, other C0 controls and lone surrogates as lowercase \uXXXX, and
// everything else, U+2028, U+2029, '<', '>' and '&' included, raw as UTF-8.
func AppendJSString(dst []byte, s []uint16) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); {
		r, n := utf16At(s, i)
		i += n
		switch {
		case r < 0x20 || r == '"' || r == '\\':
			dst = appendASCIIEscape(dst, byte(r))
		case utf16.IsSurrogate(r):
			dst = append(dst, '\\', 'u', lowerHex[r>>12], lowerHex[r>>8&0xF], lowerHex[r>>4&0xF], lowerHex[r&0xF])
		default:
			dst = utf8.AppendRune(dst, r)
		}
	}
	return append(dst, '"')
}

// AppendJSStringUTF8 is AppendJSString for a Go string in UTF-8, which
// cannot hold a lone surrogate: '"', '\\' and C0 controls are escaped as
// JSON.stringify escapes them and every other byte is copied as it is.
func AppendJSStringUTF8(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 || c == '"' || c == '\\' {
			dst = appendASCIIEscape(append(dst, s[start:i]...), c)
			start = i + 1
		}
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// AppendJSNumber appends a finite f as ECMAScript Number::toString(f)
// (ECMA-262 §6.1.6.1.20), which is what JSON.stringify writes: the shortest
// digits that round-trip (Go's shortest formatting picks the same digits),
// in plain notation for decimal exponents from -6 to 20 and in exponent
// notation otherwise; -0 is written 0. What to write for NaN and the
// infinities is the caller's decision (JSON.stringify writes null).
func AppendJSNumber(dst []byte, f float64) []byte {
	if f == 0 {
		return append(dst, '0') // +0 and -0
	}
	if f < 0 {
		dst = append(dst, '-')
		f = -f
	}
	var buf [32]byte
	mant, exp, _ := bytes.Cut(strconv.AppendFloat(buf[:0], f, 'e', -1, 64), []byte("e")) // d[.ddd]e±XX
	var digits [24]byte
	d := append(append(digits[:0], mant[0]), bytes.TrimPrefix(mant[1:], []byte("."))...)
	k := len(d)
	// In the spec's terms the value is 0.d1d2...dk × 10^n.
	e, _ := strconv.Atoi(string(exp))
	n := e + 1
	switch {
	case k <= n && n <= 21:
		dst = append(dst, d...)
		for range n - k {
			dst = append(dst, '0')
		}
	case 0 < n && n <= 21:
		dst = append(dst, d[:n]...)
		dst = append(dst, '.')
		dst = append(dst, d[n:]...)
	case -6 < n && n <= 0:
		dst = append(dst, '0', '.')
		for range -n {
			dst = append(dst, '0')
		}
		dst = append(dst, d...)
	default:
		dst = append(dst, d[0])
		if k > 1 {
			dst = append(dst, '.')
			dst = append(dst, d[1:]...)
		}
		dst = append(dst, 'e')
		if n-1 >= 0 {
			dst = append(dst, '+')
		}
		dst = strconv.AppendInt(dst, int64(n-1), 10)
	}
	return dst
}
