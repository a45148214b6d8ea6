package authz

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"unicode/utf16"

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
func TxCommit(raw []byte) (string, error) { return pgcSum(CanonicalPgCommitV1(raw)) }

// pgcTxCommit is TxCommit for a document already known to be strictly valid,
// such as the intent buildIntent builds (pgcEncoder still checks what it
// relies on).
func pgcTxCommit(raw []byte) (string, error) { return pgcSum(pgcCanonical(raw)) }

// pgcSum is the lowercase hex SHA-256 of a canonical form c, or err.
func pgcSum(c []byte, err error) (string, error) {
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
	toks := strictjson.NewTokens(raw)
	for tok := toks.Next(); tok.Kind != strictjson.End; tok = toks.Next() {
		if lit := tok.Raw; tok.Kind == strictjson.Number && (len(lit) > 308 || bytes.ContainsAny(lit, "eE")) {
			if f, _ := strconv.ParseFloat(string(lit), 64); math.IsInf(f, 0) {
				return fmt.Errorf("pg-commit-v1: non-finite number %s at offset %d", lit, toks.Offset()-len(lit))
			}
		}
	}
	return nil
}

// pgcCanonical encodes a strictly valid document.
func pgcCanonical(raw []byte) ([]byte, error) {
	// Sized so that a typical document never grows them.
	e := pgcEncoder{toks: strictjson.NewTokens(raw), out: make([]byte, 0, len(raw)+len(raw)/8),
		keys: make([]uint16, 0, 256), members: make([]pgcMember, 0, 32)}
	if err := e.value(e.toks.Next()); err != nil {
		return nil, fmt.Errorf("pg-commit-v1: %w", err)
	}
	if !e.toks.Done() {
		return nil, fmt.Errorf("pg-commit-v1: %w", errPgcInternal)
	}
	return e.out, nil
}

// pgcEncoder writes the canonical form of a document that strictjson has
// already accepted, reading it with strictjson.Tokens. It still checks the
// structure it relies on and reports, rather than panics on, anything
// unexpected.
//
// Its scratch space is shared by all objects of the document and used as
// stacks (an inner object is finished before its parent is rewritten), so
// a document costs a handful of allocations however many objects it has.
type pgcEncoder struct {
	toks    strictjson.Tokens
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

func (e *pgcEncoder) value(tok strictjson.Token) error {
	switch tok.Kind {
	case strictjson.BeginObject:
		return e.object()
	case strictjson.BeginArray:
		return e.array()
	case strictjson.String:
		// A string without escapes is already canonical: it holds no
		// control characters (strict JSON), no '"' or '\\', and no lone
		// surrogates (valid UTF-8 cannot encode them), which are the only
		// things JSON.stringify escapes; every other character it writes
		// raw as UTF-8, as the input has it.
		if !tok.Escaped {
			e.out = append(e.out, tok.Raw...)
			return nil
		}
		units, ok := strictjson.AppendUTF16(e.units[:0], tok.Raw)
		if !ok {
			return errPgcInternal
		}
		e.units = units
		e.out = strictjson.AppendJSString(e.out, units)
		return nil
	case strictjson.Literal:
		e.out = append(e.out, tok.Raw...)
		return nil
	case strictjson.Number:
		return e.number(tok.Raw)
	}
	return errPgcInternal
}

func (e *pgcEncoder) number(lit []byte) error {
	// A plain integer of up to 15 digits is below 2^53, so float64 holds it
	// exactly and Number::toString writes the same digits; only -0 changes.
	if plainInt(lit, 15) {
		if string(lit) == "-0" {
			e.out = append(e.out, '0')
		} else {
			e.out = append(e.out, lit...)
		}
		return nil
	}
	f, err := strconv.ParseFloat(string(lit), 64)
	if math.IsInf(f, 0) || math.IsNaN(f) {
		return fmt.Errorf("non-finite number %s at offset %d", lit, e.toks.Offset()-len(lit))
	}
	if err != nil {
		return errPgcInternal
	}
	e.out = strictjson.AppendJSNumber(e.out, f)
	return nil
}

// plainInt reports whether lit is a JSON integer (an optional minus, no
// fraction, no exponent) of 1 to maxDigits digits.
func plainInt(lit []byte, maxDigits int) bool {
	digits := bytes.TrimPrefix(lit, []byte("-"))
	if len(digits) == 0 || len(digits) > maxDigits || (digits[0] == '0' && len(digits) > 1) {
		return false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

func (e *pgcEncoder) array() error {
	e.out = append(e.out, '[')
	for n := 0; ; n++ {
		tok := e.toks.Next()
		if tok.Kind == strictjson.EndArray {
			e.out = append(e.out, ']')
			return nil
		}
		if n > 0 {
			e.out = append(e.out, ',')
		}
		if err := e.value(tok); err != nil {
			return err
		}
	}
}

// object writes each member, "key":value, to the output as it goes; when
// the keys did not arrive in UTF-16 order it then rewrites that region with
// the members sorted.
func (e *pgcEncoder) object() error {
	e.out = append(e.out, '{')
	start := len(e.out)
	mbase, kbase := len(e.members), len(e.keys)
	for {
		key := e.toks.Next()
		if key.Kind == strictjson.EndObject {
			break
		}
		if key.Kind != strictjson.String {
			return errPgcInternal
		}
		if len(e.members) > mbase {
			e.out = append(e.out, ',')
		}
		from, k0 := len(e.out), len(e.keys)
		keys, ok := strictjson.AppendUTF16(e.keys, key.Raw)
		if !ok {
			return errPgcInternal
		}
		e.keys = keys
		if key.Escaped {
			e.out = strictjson.AppendJSString(e.out, e.keys[k0:])
		} else {
			e.out = append(e.out, key.Raw...) // canonical already, as a value would be
		}
		e.out = append(e.out, ':')
		if err := e.value(e.toks.Next()); err != nil {
			return err
		}
		e.members = append(e.members, pgcMember{k0: k0, k1: len(e.keys), from: from, to: len(e.out)})
	}

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
