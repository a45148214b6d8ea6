package strictjson

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// DefaultMaxDepth is the nesting limit used when a caller passes maxDepth <= 0.
const DefaultMaxDepth = 64

// The kinds of rejection. Every error returned by this package is an *Error
// whose Kind is one of these, so callers can match with errors.Is.
var (
	// ErrSyntax: the input is not exactly one JSON value.
	ErrSyntax = errors.New("invalid json")
	// ErrInvalidUTF8: the input contains bytes that are not valid UTF-8.
	ErrInvalidUTF8 = errors.New("invalid utf-8")
	// ErrDuplicateKey: an object has the same key twice (compared after
	// unescaping; keys that differ only by case are distinct).
	ErrDuplicateKey = errors.New("duplicate key")
	// ErrTooDeep: objects and arrays are nested deeper than allowed.
	ErrTooDeep = errors.New("nesting too deep")
	// ErrNotObject: Object was given a valid value that is not an object.
	ErrNotObject = errors.New("not an object")
	// ErrCaseVariant (ReadInput only): two member names of one object are
	// the same name under Unicode simple case folding, as encoding/json
	// matches them ("path" and "PATH", "arguments" and "argument\u017f").
	ErrCaseVariant = errors.New("case-variant key")
	// ErrLoneSurrogate (ReadInput only): a member name holds an escaped
	// unpaired UTF-16 surrogate, which decoders read differently (Go as
	// U+FFFD, JavaScript as the surrogate itself).
	ErrLoneSurrogate = errors.New("unpaired surrogate in key")
)

// Error describes why and where a document was rejected.
type Error struct {
	// Kind is one of ErrSyntax, ErrInvalidUTF8, ErrDuplicateKey, ErrTooDeep
	// and ErrNotObject.
	Kind error
	// Offset is the byte offset in the input where the problem was found.
	Offset int
	// Path locates the problem as a JSONPath-like string: "$" is the root,
	// ".name" or ["odd name"] an object member, "[3]" an array element.
	// For a duplicate key it is the path of the object holding it.
	Path string
	// Detail says what is wrong, e.g. `duplicate key "a"`.
	Detail string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s at %s (offset %d)", e.Detail, e.Path, e.Offset)
}

// Unwrap returns e.Kind.
func (e *Error) Unwrap() error { return e.Kind }

// Validate reports whether data is exactly one JSON value (whitespace around
// it allowed) that is valid UTF-8 throughout, has no duplicate object keys at
// any level and nests objects and arrays at most maxDepth deep (a root object
// or array is depth 1; maxDepth <= 0 means DefaultMaxDepth). Escaped lone
// surrogates such as "\ud800" are legal JSON and are accepted.
//
// The returned error, if any, is an *Error. Validate is safe for concurrent
// use and does not retain data.
func Validate(data []byte, maxDepth int) error {
	// The scanner lives on the stack: its first frames and keys sit in
	// fixed arrays inside it, so a typical document allocates nothing
	// (this runs several times on every tool call).
	s := newScanner(data, maxDepth)
	return s.document()
}

// Object validates data like Validate, requires the root value to be an
// object and returns its members. Each value is the byte-exact slice of data
// holding that member's value (without surrounding whitespace, capacity
// limited so that appending to it never writes into data). Keys are
// unescaped; an escaped lone surrogate is kept as its 3-byte generalized
// UTF-8 form so that distinct keys stay distinct.
//
// The returned error, if any, is an *Error. Object is safe for concurrent use;
// the returned values alias data.
func Object(data []byte, maxDepth int) (map[string]json.RawMessage, error) {
	s := newScanner(data, maxDepth)
	s.members = make(map[string]json.RawMessage)
	if err := s.objectDocument(); err != nil {
		return nil, err
	}
	return s.members, nil
}

// ValidateObject is Validate that also requires the root value to be an
// object (ErrNotObject otherwise, as Object reports it). It is for callers
// that need the check but not the members: unlike Object it allocates
// nothing for a valid document. It is safe for concurrent use and does not
// retain data.
func ValidateObject(data []byte, maxDepth int) error {
	s := newScanner(data, maxDepth)
	return s.objectDocument()
}

// setThreshold is the member count above which an object's keys are also
// kept in a map, so that duplicate detection stays linear for huge objects
// while small ones (the common case) allocate nothing.
const setThreshold = 16

// frame is one open object or array, kept for error paths and duplicate
// detection.
type frame struct {
	object    bool
	index     int    // current array index
	key       []byte // current object key (unescaped)
	keysStart int    // start of this object's keys (scanner.key index)
	useSet    bool   // this object's keys are also in scanner.sets[depth]
}

// frameInline and keyInline size the fixed arrays that back the first
// frames and keys. Nothing inside the scanner points into the scanner
// itself (overflow goes to separate slices and entries are addressed by
// index), so escape analysis keeps a scanner declared in a function on that
// function's stack.
const (
	frameInline = 16
	keyInline   = 32
)

type scanner struct {
	data     []byte
	pos      int
	maxDepth int

	depth     int                // open frames
	deepest   int                // the most frames open at once
	frameBuf  [frameInline]frame // frames 0..frameInline-1
	frameMore []frame            // frames from frameInline on

	nkeys   int               // keys of all open objects, innermost last
	keyBuf  [keyInline][]byte // keys 0..keyInline-1
	keyMore [][]byte          // keys from keyInline on

	sets       []map[string]struct{}      // per depth, for objects over setThreshold
	members    map[string]json.RawMessage // root members, only for Object
	rootObject bool                       // the root value is an object
	rootStart  int

	// fold selects ReadInput's reading of names (names.go): case variants
	// and names with unpaired surrogates are refused.
	fold bool
	// lone and unsafeInt name the root members holding a string with an
	// escaped unpaired surrogate, or an integer literal beyond ±(2^53-1).
	lone, unsafeInt map[string]bool
}

// flag records that the root member being scanned holds a value of a kind
// ReadInput reports.
func (s *scanner) flag(m *map[string]bool) {
	if s.depth == 0 {
		return // ReadInput refuses a root that is not an object anyway
	}
	if *m == nil {
		*m = map[string]bool{}
	}
	(*m)[string(s.frame(0).key)] = true
}

func newScanner(data []byte, maxDepth int) scanner {
	if maxDepth <= 0 {
		maxDepth = DefaultMaxDepth
	}
	return scanner{data: data, maxDepth: maxDepth}
}

// frame returns open frame i (0 is the root).
func (s *scanner) frame(i int) *frame {
	if i < frameInline {
		return &s.frameBuf[i]
	}
	return &s.frameMore[i-frameInline]
}

// key returns key i of the open objects.
func (s *scanner) key(i int) []byte {
	if i < keyInline {
		return s.keyBuf[i]
	}
	return s.keyMore[i-keyInline]
}

func (s *scanner) pushKey(k []byte) {
	if s.nkeys < keyInline {
		s.keyBuf[s.nkeys] = k
	} else {
		if s.keyMore == nil {
			s.keyMore = make([][]byte, 0, 4*keyInline)
		}
		s.keyMore = append(s.keyMore, k)
	}
	s.nkeys++
}

// truncateKeys drops the keys from n on, and their references to unescaped
// copies.
func (s *scanner) truncateKeys(n int) {
	for i := n; i < s.nkeys && i < keyInline; i++ {
		s.keyBuf[i] = nil
	}
	if m := max(n-keyInline, 0); m < len(s.keyMore) {
		clear(s.keyMore[m:])
		s.keyMore = s.keyMore[:m]
	}
	s.nkeys = n
}

func (s *scanner) document() error {
	s.skipSpace()
	s.rootStart = s.pos
	if err := s.value(); err != nil {
		return err
	}
	s.skipSpace()
	if s.pos != len(s.data) {
		return s.fail(ErrSyntax, "unexpected data after the top-level value")
	}
	return nil
}

// objectDocument is document for a root value that must be an object.
func (s *scanner) objectDocument() error {
	if err := s.document(); err != nil {
		return err
	}
	if !s.rootObject {
		return &Error{Kind: ErrNotObject, Offset: s.rootStart, Path: "$",
			Detail: "root value is not an object"}
	}
	return nil
}

func (s *scanner) skipSpace() { s.pos = SkipSpace(s.data, s.pos) }

// peek returns the byte at the current position, or 0 at the end of the
// input (which unexpected then reports as such).
func (s *scanner) peek() byte {
	if s.pos < len(s.data) {
		return s.data[s.pos]
	}
	return 0
}

func (s *scanner) value() error {
	switch c := s.peek(); {
	case c == '{':
		if s.depth == 0 {
			s.rootObject = true
		}
		return s.object()
	case c == '[':
		return s.array()
	case c == '"':
		_, err := s.str(false)
		return err
	case c == '-' || ('0' <= c && c <= '9'):
		return s.number()
	case c == 't' || c == 'f' || c == 'n':
		n := literalLen(s.data[s.pos:])
		if n == 0 {
			return s.unexpected()
		}
		s.pos += n
		return nil
	default:
		return s.unexpected()
	}
}

// push opens an object or array at its opening bracket; done reports that
// it was empty and is closed again.
func (s *scanner) push(object bool) (done bool, err error) {
	if s.depth >= s.maxDepth {
		return false, s.fail(ErrTooDeep, fmt.Sprintf("nesting deeper than %d", s.maxDepth))
	}
	f := frame{object: object, keysStart: s.nkeys}
	if s.depth < frameInline {
		s.frameBuf[s.depth] = f
	} else {
		s.frameMore = append(s.frameMore[:s.depth-frameInline], f)
	}
	s.depth++
	s.deepest = max(s.deepest, s.depth)
	s.pos++ // the opening bracket
	s.skipSpace()
	if c := s.peek(); object && c == '}' || !object && c == ']' {
		s.pop()
		return true, nil
	}
	return false, nil
}

// next reads what follows a member or an element: a comma (done false) or
// the closing bracket (done true, the frame popped).
func (s *scanner) next() (done bool, err error) {
	s.skipSpace()
	f := s.frame(s.depth - 1)
	switch c := s.peek(); {
	case c == ',':
		s.pos++
		f.index++
		s.skipSpace()
		return false, nil
	case f.object && c == '}' || !f.object && c == ']':
		s.pop()
		return true, nil
	}
	return false, s.unexpected()
}

func (s *scanner) pop() {
	f := s.frame(s.depth - 1)
	if f.object {
		s.truncateKeys(f.keysStart)
	}
	*f = frame{} // drop the key reference
	s.depth--
	s.pos++ // the closing bracket
}

func (s *scanner) object() error {
	done, err := s.push(true)
	for ; !done && err == nil; done, err = s.next() {
		if s.peek() != '"' {
			return s.unexpected()
		}
		keyStart := s.pos
		key, err := s.str(true)
		if err != nil {
			return err
		}
		if err := s.addKey(key, keyStart); err != nil {
			return err
		}
		s.skipSpace()
		if s.peek() != ':' {
			return s.unexpected()
		}
		s.pos++
		s.skipSpace()
		valStart := s.pos
		if err := s.value(); err != nil {
			return err
		}
		if s.members != nil && s.depth == 1 {
			s.members[string(key)] = s.data[valStart:s.pos:s.pos]
		}
	}
	return err
}

// addKey records key for the innermost object, rejecting a duplicate (for
// ReadInput, also a case variant: names.go).
func (s *scanner) addKey(key []byte, offset int) error {
	depth := s.depth - 1
	f := s.frame(depth)
	f.key = nil // a rejection is reported at the object's own path
	own := s.nkeys - f.keysStart
	var other []byte
	if f.useSet {
		if _, hit := s.sets[depth][s.setKey(key)]; hit {
			other = s.sameKey(f.keysStart, key)
		}
	} else {
		other = s.sameKey(f.keysStart, key)
	}
	if other != nil {
		s.pos = offset
		if string(other) == string(key) {
			return s.fail(ErrDuplicateKey, "duplicate key "+quoteShort(key))
		}
		return s.fail(ErrCaseVariant, "keys "+quoteShort(other)+" and "+quoteShort(key)+
			" are the same name to case-insensitive decoders")
	}
	f.key = key
	s.pushKey(key)
	if f.useSet {
		s.sets[depth][s.setKey(key)] = struct{}{}
	} else if own+1 > setThreshold {
		for len(s.sets) <= depth {
			s.sets = append(s.sets, nil)
		}
		if s.sets[depth] == nil {
			s.sets[depth] = make(map[string]struct{}, 2*setThreshold)
		} else {
			clear(s.sets[depth])
		}
		for i := f.keysStart; i < s.nkeys; i++ {
			s.sets[depth][s.setKey(s.key(i))] = struct{}{}
		}
		f.useSet = true
	}
	return nil
}

// sameKey returns the key of the innermost object, from index start on,
// that is the same name as key (byte-equal, or for ReadInput SameName), or
// nil.
func (s *scanner) sameKey(start int, key []byte) []byte {
	for i := start; i < s.nkeys; i++ {
		k := s.key(i)
		if string(k) == string(key) || s.fold && bytes.EqualFold(k, key) {
			return k
		}
	}
	return nil
}

// setKey is key's entry in a large object's set: the key itself, or for
// ReadInput its folded form.
func (s *scanner) setKey(key []byte) string {
	if s.fold {
		return string(FoldName(nil, key))
	}
	return aliasString(key)
}

func (s *scanner) array() error {
	done, err := s.push(false)
	for ; !done && err == nil; done, err = s.next() {
		if err := s.value(); err != nil {
			return err
		}
	}
	return err
}

// str scans a string starting at the opening quote. When wantKey is set it
// returns the unescaped contents: a slice of the input when there are no
// escapes, else a fresh copy in generalized UTF-8 (an escaped lone surrogate
// becomes its 3-byte form, which valid UTF-8 never contains, so equal byte
// strings mean equal UTF-16 strings).
func (s *scanner) str(wantKey bool) ([]byte, error) {
	s.pos++ // opening quote
	start := s.pos
	escaped, lone := false, false
	for {
		// Fast path: plain printable ASCII.
		s.pos += plainRun(s.data[s.pos:])
		if s.pos >= len(s.data) {
			return nil, s.fail(ErrSyntax, "unterminated string")
		}
		switch c := s.data[s.pos]; {
		case c == '"':
			end := s.pos
			s.pos++
			if lone {
				if wantKey && s.fold {
					s.pos = start - 1
					return nil, s.fail(ErrLoneSurrogate, "key holds an escaped unpaired UTF-16 surrogate")
				}
				s.flag(&s.lone)
			}
			if !wantKey {
				return nil, nil
			}
			if !escaped {
				return s.data[start:end:end], nil
			}
			return unescape(s.data[start-1 : end+1]), nil
		case c == '\\':
			escaped = true
			l, err := s.escape()
			if err != nil {
				return nil, err
			}
			lone = lone || l
		case c < 0x20:
			return nil, s.fail(ErrSyntax, "control character in string")
		default:
			r, size := utf8.DecodeRune(s.data[s.pos:])
			if r == utf8.RuneError && size == 1 {
				return nil, s.fail(ErrInvalidUTF8, "invalid utf-8 in string")
			}
			s.pos += size
		}
	}
}

// plainRun returns how many bytes at the start of b are printable ASCII
// other than '"' and '\\' (DEL included), the bytes a string can hold that
// need no further look. It tests eight bytes at a time: strings are most
// of what a tool call carries.
func plainRun(b []byte) int {
	const (
		ones  = 0x0101010101010101
		highs = 0x8080808080808080
	)
	i := 0
	for ; i+8 <= len(b); i += 8 {
		x := binary.LittleEndian.Uint64(b[i:])
		q := x ^ ('"' * ones)   // zero where a byte is '"'
		bs := x ^ ('\\' * ones) // zero where a byte is '\\'
		// Each term is non-zero exactly when some byte is >= 0x80, < 0x20,
		// '"' or '\\' (the classic has-less and has-zero tests, exact
		// as booleans).
		if (x|(x-0x20*ones)&^x|(q-ones)&^q|(bs-ones)&^bs)&highs != 0 {
			break
		}
	}
	for ; i < len(b); i++ {
		if c := b[i]; c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			break
		}
	}
	return i
}

// escape scans one escape sequence; lone reports a \u escape of a
// surrogate that is not the first half of an escaped pair (the second half
// of a pair is consumed with its first).
func (s *scanner) escape() (lone bool, err error) {
	if s.pos+1 >= len(s.data) {
		s.pos = len(s.data)
		return false, s.fail(ErrSyntax, "unterminated string")
	}
	switch c := s.data[s.pos+1]; {
	case unescapeByte[c] != 0:
		s.pos += 2
		return false, nil
	case c == 'u':
		if s.pos+6 > len(s.data) {
			return false, s.fail(ErrSyntax, "truncated \\u escape")
		}
		u, ok := hex4(s.data[s.pos+2:])
		if !ok {
			return false, s.fail(ErrSyntax, "invalid \\u escape")
		}
		s.pos += 6
		if u < 0xD800 || u >= 0xE000 {
			return false, nil
		}
		if u < 0xDC00 && s.pos+6 <= len(s.data) && s.data[s.pos] == '\\' && s.data[s.pos+1] == 'u' {
			if lo, ok := hex4(s.data[s.pos+2:]); ok && 0xDC00 <= lo && lo < 0xE000 {
				s.pos += 6
				return false, nil
			}
		}
		return true, nil
	default:
		return false, s.fail(ErrSyntax, "invalid escape in string")
	}
}

func (s *scanner) number() error {
	d := s.data
	p := s.pos
	if d[p] == '-' {
		p++
	}
	// digits skips the digits from p on; there must be at least one.
	digits := func(p int) (int, bool) {
		start := p
		for p < len(d) && '0' <= d[p] && d[p] <= '9' {
			p++
		}
		s.pos = p
		return p, p > start
	}
	ok, start := true, p
	if p < len(d) && d[p] == '0' {
		p++
	} else if p, ok = digits(p); !ok {
		return s.fail(ErrSyntax, "invalid number")
	} else if p-start >= 16 && !(p < len(d) && (d[p] == '.' || d[p] == 'e' || d[p] == 'E')) && unsafeInteger(d[start:p]) {
		s.flag(&s.unsafeInt)
	}
	if p < len(d) && d[p] == '.' {
		p, ok = digits(p + 1)
	}
	if ok && p < len(d) && (d[p] == 'e' || d[p] == 'E') {
		p++
		if p < len(d) && (d[p] == '+' || d[p] == '-') {
			p++
		}
		p, ok = digits(p)
	}
	s.pos = p
	if !ok {
		return s.fail(ErrSyntax, "invalid number")
	}
	return nil
}

// unsafeInteger reports whether digits (a plain integer literal's, no
// sign, at least 16 of them) name an integer that is not exactly a double:
// Python reads such a literal exactly, JavaScript and Go round it, so they
// act on different values. Integers that are doubles (up to 2^53, and larger
// ones such as 10^20) read the same everywhere.
func unsafeInteger(digits []byte) bool {
	f, err := strconv.ParseFloat(string(digits), 64)
	if err != nil {
		return true // beyond the double range
	}
	exact, ok := new(big.Int).SetString(string(digits), 10)
	if !ok {
		return true
	}
	return new(big.Float).SetInt(exact).Cmp(big.NewFloat(f)) != 0
}

// literalLen returns the length of the literal true, false or null that b
// starts with, or 0.
func literalLen(b []byte) int {
	for _, lit := range [...]string{"true", "false", "null"} {
		if len(b) >= len(lit) && string(b[:len(lit)]) == lit {
			return len(lit)
		}
	}
	return 0
}

func (s *scanner) unexpected() error {
	if s.pos >= len(s.data) {
		return s.fail(ErrSyntax, "unexpected end of input")
	}
	c := s.data[s.pos]
	if c >= utf8.RuneSelf {
		if r, size := utf8.DecodeRune(s.data[s.pos:]); r == utf8.RuneError && size == 1 {
			return s.fail(ErrInvalidUTF8, "invalid utf-8")
		}
		return s.fail(ErrSyntax, "unexpected non-ascii character")
	}
	return s.fail(ErrSyntax, "unexpected character "+strconv.QuoteRune(rune(c)))
}

func (s *scanner) fail(kind error, detail string) *Error {
	return &Error{Kind: kind, Offset: s.pos, Path: s.path(), Detail: detail}
}

// path renders the location of the current value. Only called on error.
func (s *scanner) path() string {
	b := []byte{'$'}
	for i := range s.depth {
		f := s.frame(i)
		switch {
		case !f.object:
			b = append(b, '[')
			b = strconv.AppendInt(b, int64(f.index), 10)
			b = append(b, ']')
		case f.key == nil:
			// Before the first key, or reporting a duplicate: stop at the object.
			return string(b)
		case isIdent(f.key):
			b = append(b, '.')
			b = append(b, f.key...)
		default:
			b = append(b, '[')
			b = append(b, quoteShort(f.key)...)
			b = append(b, ']')
		}
	}
	return string(b)
}

// aliasString views a key as a string without copying it. Keys are slices
// of the input or fresh unescaped copies; neither is written while the
// scanner lives, and the maps holding these strings die with the scanner
// (they are cleared before reuse), so the usual string immutability holds.
// It saves one allocation per key of every large object.
func aliasString(b []byte) string {
	return unsafe.String(unsafe.SliceData(b), len(b))
}

func isIdent(k []byte) bool {
	if len(k) == 0 || len(k) > 64 {
		return false
	}
	for i, c := range k {
		letter := c == '_' || c == '$' || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z')
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// quoteShort quotes a key for an error message, shortened so that a huge
// key cannot blow up messages and logs.
func quoteShort(k []byte) string {
	const max = 64
	if len(k) > max {
		cut := max
		for cut > 0 && !utf8.RuneStart(k[cut]) {
			cut--
		}
		return strconv.Quote(string(k[:cut])) + "..."
	}
	return strconv.Quote(string(k))
}

func hexVal(c byte) int {
	switch {
	case '0' <= c && c <= '9':
		return int(c - '0')
	case 'a' <= c && c <= 'f':
		return int(c-'a') + 10
	case 'A' <= c && c <= 'F':
		return int(c-'A') + 10
	}
	return -1
}

// unescape decodes an already validated string token (quotes included).
// Surrogate pairs written as two escapes combine into one code point; a
// lone surrogate is written in its 3-byte generalized UTF-8 form.
func unescape(tok []byte) []byte {
	units, _ := AppendUTF16(nil, tok)
	out := make([]byte, 0, len(tok))
	for i := 0; i < len(units); {
		r, n := utf16At(units, i)
		i += n
		if 0xD800 <= r && r < 0xE000 {
			// utf8.AppendRune refuses surrogates; write the 3 bytes directly.
			out = append(out, 0xE0|byte(r>>12), 0x80|byte(r>>6)&0x3F, 0x80|byte(r)&0x3F)
		} else {
			out = utf8.AppendRune(out, r)
		}
	}
	return out
}

// unescapeByte maps c of each single-character escape \\c to the byte it
// stands for (" \\ / b f n r t); it is 0 for every other c.
var unescapeByte = [256]byte{'"': '"', '\\': '\\', '/': '/', 'b': '\b', 'f': '\f', 'n': '\n', 'r': '\r', 't': '\t'}

// hex4 decodes the four hex digits at the start of b (len(b) >= 4); ok is
// false when one of them is not a hex digit.
func hex4(b []byte) (r rune, ok bool) {
	h := hexVal(b[0])<<12 | hexVal(b[1])<<8 | hexVal(b[2])<<4 | hexVal(b[3])
	return rune(h), h >= 0
}
