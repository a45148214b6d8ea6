package authz

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"testing"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/sigilcore/sigil-hub/internal/strictjson"
)

// This file keeps the pg-commit-v1 encoder as it was before it was made
// faster (it ran on every call), as a reference: the fast encoder must
// produce the same bytes for every input.

func refCanonical(raw []byte) ([]byte, error) {
	if err := strictjson.Validate(raw, pgcMaxDepth); err != nil {
		return nil, fmt.Errorf("pg-commit-v1: %w", err)
	}
	e := refEncoder{data: raw, out: make([]byte, 0, len(raw))}
	e.skipSpace()
	if err := e.value(); err != nil {
		return nil, fmt.Errorf("pg-commit-v1: %w", err)
	}
	return e.out, nil
}

// refEncoder writes the canonical form of a document that strictjson has
// already accepted. It still checks what it relies on and reports, rather
// than panics on, anything unexpected.
type refEncoder struct {
	data  []byte
	pos   int
	out   []byte
	units []uint16 // scratch for string values
}

var errRefInternal = errors.New("malformed input after validation (reference)")

// refMember is one object member: its key as UTF-16 code units (what JS
// compares) and where its canonical value sits in the output.
type refMember struct {
	key      []uint16
	from, to int
}

func (e *refEncoder) skipSpace() {
	for e.pos < len(e.data) {
		switch e.data[e.pos] {
		case ' ', '\t', '\n', '\r':
			e.pos++
		default:
			return
		}
	}
}

func (e *refEncoder) value() error {
	if e.pos >= len(e.data) {
		return errRefInternal
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
		e.out = strictjson.AppendJSString(e.out, units)
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

func (e *refEncoder) literal(lit string) error {
	if len(e.data)-e.pos < len(lit) || string(e.data[e.pos:e.pos+len(lit)]) != lit {
		return errRefInternal
	}
	e.pos += len(lit)
	e.out = append(e.out, lit...)
	return nil
}

func (e *refEncoder) number() error {
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
		return errRefInternal
	}
	e.out = strictjson.AppendJSNumber(e.out, f)
	return nil
}

func (e *refEncoder) array() error {
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
			return errRefInternal
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
			return errRefInternal
		}
	}
}

// object writes each member's canonical value to the output as it goes,
// then rewrites that region with the members in UTF-16 key order.
func (e *refEncoder) object() error {
	e.pos++
	start := len(e.out)
	var members []refMember
	e.skipSpace()
	for e.pos < len(e.data) && e.data[e.pos] != '}' {
		if e.data[e.pos] != '"' {
			return errRefInternal
		}
		key, err := e.str(nil)
		if err != nil {
			return err
		}
		e.skipSpace()
		if e.pos >= len(e.data) || e.data[e.pos] != ':' {
			return errRefInternal
		}
		e.pos++
		e.skipSpace()
		from := len(e.out)
		if err := e.value(); err != nil {
			return err
		}
		members = append(members, refMember{key: key, from: from, to: len(e.out)})
		e.skipSpace()
		if e.pos < len(e.data) && e.data[e.pos] == ',' {
			e.pos++
			e.skipSpace()
		}
	}
	if e.pos >= len(e.data) {
		return errRefInternal
	}
	e.pos++ // '}'

	slices.SortFunc(members, func(a, b refMember) int { return slices.Compare(a.key, b.key) })
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
		e.out = strictjson.AppendJSString(e.out, m.key)
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
func (e *refEncoder) str(dst []uint16) ([]uint16, error) {
	e.pos++ // opening quote
	for e.pos < len(e.data) {
		c := e.data[e.pos]
		switch {
		case c == '"':
			e.pos++
			return dst, nil
		case c == '\\':
			if e.pos+1 >= len(e.data) {
				return nil, errRefInternal
			}
			switch esc := e.data[e.pos+1]; esc {
			case 'u':
				if e.pos+6 > len(e.data) {
					return nil, errRefInternal
				}
				u, err := strconv.ParseUint(string(e.data[e.pos+2:e.pos+6]), 16, 16)
				if err != nil {
					return nil, errRefInternal
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
				return nil, errRefInternal
			}
			e.pos += 2
		case c < utf8.RuneSelf:
			dst = append(dst, uint16(c))
			e.pos++
		default:
			r, size := utf8.DecodeRune(e.data[e.pos:])
			if r == utf8.RuneError && size == 1 {
				return nil, errRefInternal
			}
			dst = utf16.AppendRune(dst, r)
			e.pos += size
		}
	}
	return nil, errRefInternal
}

func checkPgcMatchesReference(t *testing.T, in []byte) {
	t.Helper()
	want, werr := refCanonical(in)
	got, gerr := CanonicalPgCommitV1(in)
	if (werr == nil) != (gerr == nil) || !bytes.Equal(got, want) {
		t.Fatalf("CanonicalPgCommitV1(%q) = %q, %v; reference %q, %v", in, got, gerr, want, werr)
	}
	if strictjson.Validate(in, pgcMaxDepth) == nil {
		// The path NewIntent takes, without the validation pass.
		got, gerr = pgcCanonical(in)
		if (werr == nil) != (gerr == nil) || !bytes.Equal(got, want) {
			t.Fatalf("pgcCanonical(%q) = %q, %v; reference %q, %v", in, got, gerr, want, werr)
		}
	}
}

func pgcReferenceSeeds() []string {
	return []string{
		`{"z":1,"a":"two","nested":{"beta":true,"alpha":null}}`,
		`{"negativeZero":-0,"decimal":1.25,"big":12345678901234567890,"tiny":1e-7,"e":1e21}`,
		`{"é":"café","Ω":"π","note":"\u2028","\ue000":1,"\ud800\udc00":2,"😀":3}`,
		`["\ud800","\udc00\ud800","\u0000\u001f<>&","\"\\\/\b\f\n\r\t"]`,
		`{"a":[{"z":1,"a":2},{"b":3,"a":4}],"":[]}`,
		`1e400`, `{"a":1,"a":2}`, `-0.0e-0`, `[[[]]]`, `-0`, `0`, `-1`, `123456789012345`, `1234567890123456`,
		`9007199254740993`, `-123456789012345`, `100E-2`, `1.0`, `[0, -0, 10, -10, 1e2]`,
		`{"b":{"d":1,"c":{"f":[{"h":1,"g":2}],"e":3}},"a":0}`,
		`{"\u00e9":1,"é\u0000":2,"e":3,"\uffff":4,"\ud83d\ude00":5}`,
		` {"x" : [ 1 , "a\/b" ] } `,
	}
}

func TestPgCommitMatchesReference(t *testing.T) {
	for _, s := range pgcReferenceSeeds() {
		checkPgcMatchesReference(t, []byte(s))
	}
}

// FuzzPgCommitReference checks the encoder against the reference.
func FuzzPgCommitReference(f *testing.F) {
	for _, s := range pgcReferenceSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(checkPgcMatchesReference)
}
