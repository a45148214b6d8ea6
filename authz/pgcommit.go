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
// (docs/protocol.md#txcommit-pg-commit-v1), and an intent is at most 34 deep
// (arguments are capped at 32), so 64 rejects nothing a verifier would
// accept.
const pgcMaxDepth = 64

// CanonicalPgCommitV1 returns the pg-commit-v1 canonical form of the JSON
// value raw (docs/protocol.md#txcommit-pg-commit-v1): what warrant-core's
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
	return pgcCanonical(raw)
}

// TxCommit returns the lowercase hex SHA-256 of CanonicalPgCommitV1(raw):
// the txCommit for an intent. It is safe for concurrent use.
func TxCommit(raw []byte) (string, error) {
	if err := strictjson.Validate(raw, pgcMaxDepth); err != nil {
		return "", fmt.Errorf("pg-commit-v1: %w", err)
	}
	return pgcTxCommit(raw)
}

// pgcTxCommit is TxCommit for a document already known to be strictly valid:
// NewIntent builds the intent from arguments it has just validated and
// strings it encoded itself, so validating the whole intent again would only
// repeat work on every call. The encoder still checks the structure it relies
// on, and rejects duplicate keys and non-finite numbers itself.
func pgcTxCommit(raw []byte) (string, error) {
	c, err := pgcCanonical(raw)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(c)
	var h [2 * sha256.Size]byte
	hex.Encode(h[:], sum[:])
	return string(h[:]), nil
}

// pgcFinite reports, with the error pgcCanonical would give, the first
// number of a strictly valid document that overflows float64. Only a
// number with an exponent or with more than 308 digits can.
func pgcFinite(raw []byte) error {
	for i := 0; i < len(raw); i++ {
		switch c := raw[i]; {
		case c == '"':
			for i++; i < len(raw) && raw[i] != '"'; i++ {
				if raw[i] == '\\' {
					i++
				}
			}
		case c == '-' || c >= '0' && c <= '9':
			start, exp := i, false
			for ; i < len(raw) && (raw[i] >= '0' && raw[i] <= '9' || raw[i] == '.' || raw[i] == 'e' || raw[i] == 'E' || raw[i] == '+' || raw[i] == '-'); i++ {
				exp = exp || raw[i] == 'e' || raw[i] == 'E'
			}
			if lit := raw[start:i]; exp || len(lit) > 308 {
				if f, _ := strconv.ParseFloat(string(lit), 64); math.IsInf(f, 0) {
					return fmt.Errorf("pg-commit-v1: non-finite number %s at offset %d", lit, start)
				}
			}
			i--
		}
	}
	return nil
}

// pgcCanonical encodes a strictly valid document.
func pgcCanonical(raw []byte) ([]byte, error) {
	// Sized so that a typical document never grows them.
	e := pgcEncoder{data: raw, out: make([]byte, 0, len(raw)+len(raw)/8),
		keys: make([]uint16, 0, 256), members: make([]pgcMember, 0, 32)}
	e.skipSpace()
	if err := e.value(); err != nil {
		return nil, fmt.Errorf("pg-commit-v1: %w", err)
	}
	if e.skipSpace(); e.pos != len(e.data) {
		return nil, fmt.Errorf("pg-commit-v1: %w", errPgcInternal)
	}
	return e.out, nil
}

// pgcEncoder writes the canonical form of a document that strictjson has
// already accepted. It still checks what it relies on and reports, rather
// than panics on, anything unexpected.
//
// Its scratch space is shared by all objects of the document and used as
// stacks (an inner object is finished before its parent is rewritten), so
// a document costs a handful of allocations however many objects it has.
type pgcEncoder struct {
	data    []byte
	pos     int
	out     []byte
	units   []uint16    // scratch for escaped string values
	keys    []uint16    // the keys of every open object, as UTF-16 code units
	members []pgcMember // the members of every open object
	tmp     []byte      // scratch for reordering an object's members
}

var errPgcInternal = errors.New("malformed input after validation")

// pgcMember is one object member: its key as UTF-16 code units (what JS
// compares; keys[k0:k1] of the encoder) and where the canonical member,
// "key":value, sits in the output.
type pgcMember struct {
	k0, k1   int
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
		if e.plainString() {
			return nil
		}
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

// plainString copies the string at e.pos verbatim when it has no escapes
// and reports whether it did. Such a string is already canonical: it holds
// no control characters (strict JSON), no '"' or '\\', and no lone
// surrogates (valid UTF-8 cannot encode them), which are the only things
// JSON.stringify escapes; every other character it writes raw as UTF-8, as
// the input has it.
func (e *pgcEncoder) plainString() bool {
	i := e.pos + 1
	for i < len(e.data) {
		switch c := e.data[i]; {
		case c == '"':
			e.out = append(e.out, e.data[e.pos:i+1]...)
			e.pos = i + 1
			return true
		case c == '\\' || c < 0x20:
			return false
		}
		i++
	}
	return false
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
	plainInt := true // -?[0-9]+, which strict JSON writes without leading zeros
	for e.pos < len(e.data) {
		c := e.data[e.pos]
		if '0' <= c && c <= '9' || c == '-' && e.pos == start {
			e.pos++
			continue
		}
		if !(c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E') {
			break
		}
		plainInt = false
		e.pos++
	}
	lit := e.data[start:e.pos]
	digits := lit
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	// Up to 15 digits is below 2^53, so float64 holds the integer exactly
	// and Number::toString writes the same digits; only -0 changes.
	if plainInt && 0 < len(digits) && len(digits) <= 15 && (len(digits) == 1 || digits[0] != '0') {
		if string(lit) == "-0" {
			e.out = append(e.out, '0')
		} else {
			e.out = append(e.out, lit...)
		}
		return nil
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return fmt.Errorf("non-finite number %s at offset %d", lit, start)
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

// object writes each member, "key":value, to the output as it goes; when
// the keys did not arrive in UTF-16 order it then rewrites that region with
// the members sorted.
func (e *pgcEncoder) object() error {
	e.pos++
	e.out = append(e.out, '{')
	start := len(e.out)
	mbase, kbase := len(e.members), len(e.keys)
	e.skipSpace()
	for e.pos < len(e.data) && e.data[e.pos] != '}' {
		if e.data[e.pos] != '"' {
			return errPgcInternal
		}
		if len(e.members) > mbase {
			e.out = append(e.out, ',')
		}
		from, k0 := len(e.out), len(e.keys)
		keyStart := e.pos
		keys, err := e.str(e.keys)
		if err != nil {
			return err
		}
		e.keys = keys
		if !e.writeRawKey(keyStart) {
			e.out = pgcAppendString(e.out, e.keys[k0:])
		}
		e.out = append(e.out, ':')
		e.skipSpace()
		if e.pos >= len(e.data) || e.data[e.pos] != ':' {
			return errPgcInternal
		}
		e.pos++
		e.skipSpace()
		if err := e.value(); err != nil {
			return err
		}
		e.members = append(e.members, pgcMember{k0: k0, k1: len(e.keys), from: from, to: len(e.out)})
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

	members := e.members[mbase:]
	key := func(m pgcMember) []uint16 { return e.keys[m.k0:m.k1] }
	cmp := func(a, b pgcMember) int { return slices.Compare(key(a), key(b)) }
	sorted := slices.IsSortedFunc(members, cmp)
	if !sorted {
		slices.SortFunc(members, cmp)
	}
	for i := 1; i < len(members); i++ {
		if slices.Equal(key(members[i-1]), key(members[i])) {
			return fmt.Errorf("duplicate key %q", string(utf16.Decode(key(members[i]))))
		}
	}
	if !sorted {
		e.tmp = append(e.tmp[:0], e.out[start:]...)
		e.out = e.out[:start]
		for i, m := range members {
			if i > 0 {
				e.out = append(e.out, ',')
			}
			e.out = append(e.out, e.tmp[m.from-start:m.to-start]...)
		}
	}
	e.out = append(e.out, '}')
	e.members, e.keys = e.members[:mbase], e.keys[:kbase]
	return nil
}

// writeRawKey copies the key token that starts at from verbatim when it has
// no escapes (already canonical, see plainString) and reports whether it did.
func (e *pgcEncoder) writeRawKey(from int) bool {
	tok := e.data[from:e.pos]
	if len(tok) < 2 || slices.Contains(tok, '\\') {
		return false
	}
	e.out = append(e.out, tok...)
	return true
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
