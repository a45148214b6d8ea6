package authz

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/sigilcore/sigil-hub/internal/strictjson"
)

// pgcMaxDepth bounds nesting for pg-commit-v1. The algorithm itself has no
// limit; the sigil-sign-authorize-v1 proof verifier caps JSON nesting at 64
// (sigil-protocol.md §4.3), and an intent is at most 34 deep (arguments are
// capped at 32, D5), so 64 rejects nothing a verifier would accept.
const pgcMaxDepth = 64

// CanonicalPgCommitV1 returns the pg-commit-v1 canonical form of the JSON
// value raw (sigil-protocol.md §4.3): what warrant-core's
// canonicalizePgCommitV1(JSON.parse(raw)) produces. Object keys are sorted
// by UTF-16 code units, arrays keep their order, there is no whitespace, and
// strings and numbers are written exactly as JavaScript's JSON.stringify
// writes them (numbers go through float64, so integers beyond 2^53 lose
// precision as they do in JS; -0 becomes 0).
//
// raw must be strictly valid (internal/strictjson): one value, valid UTF-8,
// no duplicate keys, nesting at most 64. A number that overflows float64
// (e.g. 1e400, which JS parses as Infinity) is rejected, as pg-commit-v1
// rejects non-finite numbers. CanonicalPgCommitV1 is safe for concurrent use.
func CanonicalPgCommitV1(raw []byte) ([]byte, error) {
	if err := strictjson.Validate(raw, pgcMaxDepth); err != nil {
		return nil, fmt.Errorf("pg-commit-v1: %w", err)
	}
	e := pgcEncoder{data: raw, out: make([]byte, 0, len(raw))}
	e.skipSpace()
	if err := e.value(); err != nil {
		return nil, fmt.Errorf("pg-commit-v1: %w", err)
	}
	return e.out, nil
}

// TxCommit returns the lowercase hex SHA-256 of CanonicalPgCommitV1(raw):
// the txCommit for an intent (D3). It is safe for concurrent use.
func TxCommit(raw []byte) (string, error) {
	c, err := CanonicalPgCommitV1(raw)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(c)
	return hex.EncodeToString(sum[:]), nil
}

// pgcEncoder writes the canonical form of a document that strictjson has
// already accepted. It still checks what it relies on and reports, rather
// than panics on, anything unexpected.
type pgcEncoder struct {
	data  []byte
	pos   int
	out   []byte
	units []uint16 // scratch for string values
}

var errPgcInternal = errors.New("malformed input after validation")

// pgcMember is one object member: its key as UTF-16 code units (what JS
// compares) and where its canonical value sits in the output.
type pgcMember struct {
	key      []uint16
	from, to int
}

func (e *pgcEncoder) skipSpace() {
	for e.pos < len(e.data) {
		switch e.data[e.pos] {
		case ' ', '\t', '\n', '\r':
			e.pos++
		default:
			return
		}
	}
}

func (e *pgcEncoder) value() error {
	if e.pos >= len(e.data) {
		return errPgcInternal
	}
	switch c := e.data[e.pos]; {
	case c == '{':
		return e.object()
	case c == '[':
		return e.array()
	case c == '"':
		units, err := e.str(e.units[:0])
		if err != nil {
			return err
		}
		e.units = units
		e.out = pgcAppendString(e.out, units)
		return nil
	case c == 't':
		return e.literal("true")
	case c == 'f':
		return e.literal("false")
	case c == 'n':
		return e.literal("null")
	default:
		return e.number()
	}
}

func (e *pgcEncoder) literal(lit string) error {
	if len(e.data)-e.pos < len(lit) || string(e.data[e.pos:e.pos+len(lit)]) != lit {
		return errPgcInternal
	}
	e.pos += len(lit)
	e.out = append(e.out, lit...)
	return nil
}

func (e *pgcEncoder) number() error {
	start := e.pos
	for e.pos < len(e.data) {
		c := e.data[e.pos]
		if !('0' <= c && c <= '9' || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E') {
			break
		}
		e.pos++
	}
	f, err := strconv.ParseFloat(string(e.data[start:e.pos]), 64)
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return fmt.Errorf("non-finite number %s at offset %d", e.data[start:e.pos], start)
	}
	if err != nil {
		return errPgcInternal
	}
	e.out = pgcAppendNumber(e.out, f)
	return nil
}

func (e *pgcEncoder) array() error {
	e.pos++
	e.out = append(e.out, '[')
	e.skipSpace()
	if e.pos < len(e.data) && e.data[e.pos] == ']' {
		e.pos++
		e.out = append(e.out, ']')
		return nil
	}
	for {
		if err := e.value(); err != nil {
			return err
		}
		e.skipSpace()
		if e.pos >= len(e.data) {
			return errPgcInternal
		}
		switch e.data[e.pos] {
		case ',':
			e.pos++
			e.out = append(e.out, ',')
			e.skipSpace()
		case ']':
			e.pos++
			e.out = append(e.out, ']')
			return nil
		default:
			return errPgcInternal
		}
	}
}

// object writes each member's canonical value to the output as it goes,
// then rewrites that region with the members in UTF-16 key order.
func (e *pgcEncoder) object() error {
	e.pos++
	start := len(e.out)
	var members []pgcMember
	e.skipSpace()
	for e.pos < len(e.data) && e.data[e.pos] != '}' {
		if e.data[e.pos] != '"' {
			return errPgcInternal
		}
		key, err := e.str(nil)
		if err != nil {
			return err
		}
		e.skipSpace()
		if e.pos >= len(e.data) || e.data[e.pos] != ':' {
			return errPgcInternal
		}
		e.pos++
		e.skipSpace()
		from := len(e.out)
		if err := e.value(); err != nil {
			return err
		}
		members = append(members, pgcMember{key: key, from: from, to: len(e.out)})
		e.skipSpace()
		if e.pos < len(e.data) && e.data[e.pos] == ',' {
			e.pos++
			e.skipSpace()
		}
	}
	if e.pos >= len(e.data) {
		return errPgcInternal
	}
	e.pos++ // '}'

	slices.SortFunc(members, func(a, b pgcMember) int { return slices.Compare(a.key, b.key) })
	for i := 1; i < len(members); i++ {
		if slices.Equal(members[i-1].key, members[i].key) {
			return fmt.Errorf("duplicate key %q", string(utf16.Decode(members[i].key)))
		}
	}
	values := slices.Clone(e.out[start:])
	e.out = append(e.out[:start], '{')
	for i, m := range members {
		if i > 0 {
			e.out = append(e.out, ',')
		}
		e.out = pgcAppendString(e.out, m.key)
		e.out = append(e.out, ':')
		e.out = append(e.out, values[m.from-start:m.to-start]...)
	}
	e.out = append(e.out, '}')
	return nil
}

// str decodes the string at e.pos into UTF-16 code units appended to dst,
// which is the JavaScript view of a string: a surrogate pair written as two
// escapes is the same string as the raw character, and a lone surrogate
// escape stays a lone code unit.
func (e *pgcEncoder) str(dst []uint16) ([]uint16, error) {
	e.pos++ // opening quote
	for e.pos < len(e.data) {
		c := e.data[e.pos]
		switch {
		case c == '"':
			e.pos++
			return dst, nil
		case c == '\\':
			if e.pos+1 >= len(e.data) {
				return nil, errPgcInternal
			}
			switch esc := e.data[e.pos+1]; esc {
			case 'u':
				if e.pos+6 > len(e.data) {
					return nil, errPgcInternal
				}
				u, err := strconv.ParseUint(string(e.data[e.pos+2:e.pos+6]), 16, 16)
				if err != nil {
					return nil, errPgcInternal
				}
				dst = append(dst, uint16(u))
				e.pos += 6
				continue
			case 'b':
				dst = append(dst, '\b')
			case 'f':
				dst = append(dst, '\f')
			case 'n':
				dst = append(dst, '\n')
			case 'r':
				dst = append(dst, '\r')
			case 't':
				dst = append(dst, '\t')
			case '"', '\\', '/':
				dst = append(dst, uint16(esc))
			default:
				return nil, errPgcInternal
			}
			e.pos += 2
		case c < utf8.RuneSelf:
			dst = append(dst, uint16(c))
			e.pos++
		default:
			r, size := utf8.DecodeRune(e.data[e.pos:])
			if r == utf8.RuneError && size == 1 {
				return nil, errPgcInternal
			}
			dst = utf16.AppendRune(dst, r)
			e.pos += size
		}
	}
	return nil, errPgcInternal
}

const pgcHex = "0123456789abcdef"

// pgcAppendString writes s as JSON.stringify does (ECMAScript
// QuoteJSONString, well-formed since ES2019): the two-character escapes
// \" \\ \b \f \n \r \t, other C0 controls and lone surrogates as lowercase
// \uXXXX, and everything else, U+2028, U+2029, '<', '>' and '&' included,
// raw as UTF-8.
func pgcAppendString(dst []byte, s []uint16) []byte {
	dst = append(dst, '"')
	for i := 0; i < len(s); i++ {
		u := s[i]
		switch {
		case u == '"':
			dst = append(dst, '\\', '"')
		case u == '\\':
			dst = append(dst, '\\', '\\')
		case u == '\b':
			dst = append(dst, '\\', 'b')
		case u == '\f':
			dst = append(dst, '\\', 'f')
		case u == '\n':
			dst = append(dst, '\\', 'n')
		case u == '\r':
			dst = append(dst, '\\', 'r')
		case u == '\t':
			dst = append(dst, '\\', 't')
		case u < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', pgcHex[u>>4], pgcHex[u&0xF])
		case u < utf8.RuneSelf:
			dst = append(dst, byte(u))
		case utf16.IsSurrogate(rune(u)):
			if u < 0xDC00 && i+1 < len(s) && 0xDC00 <= s[i+1] && s[i+1] < 0xE000 {
				dst = utf8.AppendRune(dst, utf16.DecodeRune(rune(u), rune(s[i+1])))
				i++
				continue
			}
			dst = append(dst, '\\', 'u', pgcHex[u>>12], pgcHex[u>>8&0xF], pgcHex[u>>4&0xF], pgcHex[u&0xF])
		default:
			dst = utf8.AppendRune(dst, rune(u))
		}
	}
	return append(dst, '"')
}

// pgcAppendNumber writes a finite f as ECMAScript Number::toString(f)
// (ECMA-262 §6.1.6.1.20): the shortest digits that round-trip (Go's
// shortest formatting picks the same digits), in plain notation for
// decimal exponents from -6 to 20 and in exponent notation otherwise.
func pgcAppendNumber(dst []byte, f float64) []byte {
	if f == 0 {
		return append(dst, '0') // +0 and -0
	}
	if f < 0 {
		dst = append(dst, '-')
		f = -f
	}
	var buf [32]byte
	b := strconv.AppendFloat(buf[:0], f, 'e', -1, 64) // d[.ddd]e±XX
	var digits [24]byte
	k := 0
	i := 0
	for ; b[i] != 'e'; i++ {
		if b[i] != '.' {
			digits[k] = b[i]
			k++
		}
	}
	exp := 0
	neg := b[i+1] == '-'
	for _, c := range b[i+2:] {
		exp = exp*10 + int(c-'0')
	}
	if neg {
		exp = -exp
	}
	// In the spec's terms the value is 0.d1d2...dk × 10^n.
	n := exp + 1
	d := digits[:k]
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
