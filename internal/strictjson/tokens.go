package strictjson

import (
	"bytes"
	"encoding/json"
	"unicode/utf16"
	"unicode/utf8"
)

// Kind is the kind of a Token.
type Kind uint8

// The kinds of token a Tokens reader returns.
const (
	// End: the document is over, or it is not as Validate would accept it
	// after all (Tokens.OK says which).
	End Kind = iota
	BeginObject
	EndObject
	BeginArray
	EndArray
	// String is a string token, an object key included (the token after a
	// BeginObject or after a member's value is always a key).
	String
	// Number is a number token, its literal text as written.
	Number
	// Literal is true, false or null.
	Literal
)

// Token is one token of a document.
type Token struct {
	Kind Kind
	// Raw is the token's bytes in the document: a string with its quotes, a
	// number or literal as written, a bracket.
	Raw []byte
	// Escaped is set for a String holding at least one backslash escape; a
	// string without is its own content between the quotes.
	Escaped bool
}

// Tokens reads a document that Validate has accepted one token at a time,
// without building anything: it is the walk for callers that rewrite a
// validated document (the pg-commit canonicalization in authz), so that
// they need no scanner of their own. Commas, colons and whitespace are
// skipped; the caller knows the structure from the brackets. It does not
// check the document again, but it never panics: on anything a validated
// document cannot hold it returns End and OK reports false.
type Tokens struct {
	data []byte
	pos  int
	bad  bool
}

// NewTokens returns a reader positioned before the first token of data.
func NewTokens(data []byte) Tokens { return Tokens{data: data} }

// OK reports whether the reader has read well so far: false once it stopped
// at something a validated document cannot hold.
func (t *Tokens) OK() bool { return !t.bad }

// Offset returns the offset in the document just past the last token read.
func (t *Tokens) Offset() int { return t.pos }

// Done reports whether only whitespace is left.
func (t *Tokens) Done() bool { return SkipSpace(t.data, t.pos) == len(t.data) }

// Next returns the next token.
func (t *Tokens) Next() Token {
	d := t.data
	p := t.pos
	for p < len(d) && (d[p] == ' ' || d[p] == '\t' || d[p] == '\n' || d[p] == '\r' || d[p] == ',' || d[p] == ':') {
		p++
	}
	if p >= len(d) {
		t.pos = p
		return Token{}
	}
	start := p
	var k Kind
	escaped := false
	switch c := d[p]; {
	case c == '{':
		k, p = BeginObject, p+1
	case c == '}':
		k, p = EndObject, p+1
	case c == '[':
		k, p = BeginArray, p+1
	case c == ']':
		k, p = EndArray, p+1
	case c == '"':
		k = String
		// The string ends at the first '"' unless a backslash comes before
		// it; both are found with the library's vectorized search.
		q := bytes.IndexByte(d[p+1:], '"')
		if q < 0 {
			return t.fail()
		}
		if bytes.IndexByte(d[p+1:p+1+q], '\\') < 0 {
			p += q + 2
			break
		}
		escaped = true
		for p++; p < len(d) && d[p] != '"'; p++ {
			if d[p] == '\\' {
				p++
			}
		}
		if p >= len(d) {
			return t.fail()
		}
		p++
	case c == '-' || '0' <= c && c <= '9':
		k = Number
		for p++; p < len(d); p++ {
			if c := d[p]; !('0' <= c && c <= '9' || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-') {
				break
			}
		}
	case c == 't' || c == 'f' || c == 'n':
		k = Literal
		n := literalLen(d[p:])
		if n == 0 {
			return t.fail()
		}
		p += n
	default:
		return t.fail()
	}
	t.pos = p
	return Token{Kind: k, Raw: d[start:p:p], Escaped: escaped}
}

func (t *Tokens) fail() Token {
	t.bad = true
	t.pos = len(t.data)
	return Token{}
}

// AppendUTF16 appends the contents of a String token (Raw, quotes included)
// as UTF-16 code units, which is how JavaScript sees a string: a surrogate
// pair written as two escapes is the same string as the raw character, and
// an escaped lone surrogate stays one code unit. It reports false, with dst
// as far as it got, when tok is not a string token of a validated document.
func AppendUTF16(dst []uint16, tok []byte) ([]uint16, bool) {
	if len(tok) < 2 || tok[0] != '"' || tok[len(tok)-1] != '"' {
		return dst, false
	}
	b := tok[1 : len(tok)-1]
	for i := 0; i < len(b); {
		c := b[i]
		switch {
		case c == '\\':
			if i+1 >= len(b) {
				return dst, false
			}
			switch esc := b[i+1]; {
			case esc == 'u':
				if i+6 > len(b) {
					return dst, false
				}
				u, ok := hex4(b[i+2:])
				if !ok {
					return dst, false
				}
				dst = append(dst, uint16(u))
				i += 6
				continue
			case unescapeByte[esc] != 0:
				dst = append(dst, uint16(unescapeByte[esc]))
			default:
				return dst, false
			}
			i += 2
		case c < utf8.RuneSelf:
			dst = append(dst, uint16(c))
			i++
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size == 1 {
				return dst, false
			}
			dst = utf16.AppendRune(dst, r)
			i += size
		}
	}
	return dst, true
}

// utf16At returns the code point at s[i] and how many units it takes: a
// surrogate pair combines, a lone surrogate is returned as it is.
func utf16At(s []uint16, i int) (rune, int) {
	if i+1 < len(s) && utf16.IsSurrogate(rune(s[i])) {
		if r := utf16.DecodeRune(rune(s[i]), rune(s[i+1])); r != utf8.RuneError {
			return r, 2
		}
	}
	return rune(s[i]), 1
}

// DecodeString returns the text of a JSON string token that Validate has
// accepted (as part of a larger document is fine); ok is false for any
// other value. A token without escapes, the usual name or method, is
// sliced; one with escapes is decoded by encoding/json, so the text is
// what Go code reading the same document sees.
func DecodeString(tok []byte) (s string, ok bool) {
	n := len(tok)
	if n < 2 || tok[0] != '"' || tok[n-1] != '"' {
		return "", false
	}
	if bytes.IndexByte(tok[1:n-1], '\\') < 0 {
		return string(tok[1 : n-1]), true
	}
	// v is declared here so that only a token with escapes allocates it,
	// and decoded before the return: the spec leaves open whether v or the
	// call in one return list is evaluated first.
	var v string
	err := json.Unmarshal(tok, &v)
	return v, err == nil
}
