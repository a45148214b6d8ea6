package strictjson

import (
	"encoding/json"
	"strings"
	"unicode"
	"unicode/utf8"
)

// This file is the one notion of "the same member name" that sigil-hub
// applies to what a client sends (docs/security.md, "One reading of every
// call").
//
// Decoders differ on names. JavaScript and Python compare them exactly; Go's
// encoding/json, which a Go MCP server uses to bind arguments to a struct,
// matches a member to a field by Unicode simple case folding and lets the
// last match win ("PATH", "Path" and "pat\u017f" all fill the field "path";
// "argument\u017f" fills Arguments). A document holding two names of one
// object that fold to the same name is therefore read differently by
// different decoders: ReadInput refuses it. It also refuses a name holding
// an escaped unpaired surrogate (Go reads it as U+FFFD, so "\ud800" and
// "\udc00" become one name for Go and two for JavaScript).

// SameName reports whether two member names are the same name to a
// case-insensitive decoder: equal under Unicode simple case folding, exactly
// as encoding/json compares a member with a struct field's name.
func SameName(a, b string) bool { return strings.EqualFold(a, b) }

// FoldName appends the folded form of name to dst: FoldName(x) equals
// FoldName(y) exactly when SameName(x, y). It is encoding/json's own folding
// (ASCII letters to upper case, every other rune to the smallest rune of its
// simple fold orbit).
func FoldName(dst, name []byte) []byte {
	for i := 0; i < len(name); {
		c := name[i]
		if c < utf8.RuneSelf {
			if 'a' <= c && c <= 'z' {
				c -= 'a' - 'A'
			}
			dst = append(dst, c)
			i++
			continue
		}
		r, n := utf8.DecodeRune(name[i:])
		dst = utf8.AppendRune(dst, foldRune(r))
		i += n
	}
	return dst
}

// foldRune returns the smallest rune of r's simple fold orbit.
func foldRune(r rune) rune {
	for {
		r2 := unicode.SimpleFold(r)
		if r2 <= r {
			return r2
		}
		r = r2
	}
}

// Input is a document read by ReadInput.
type Input struct {
	// Members are the root object's members, as Object returns them.
	Members map[string]json.RawMessage
	// LoneSurrogate names the root members whose value holds a string with
	// an escaped unpaired UTF-16 surrogate (nil when none). Accepted here; a
	// caller that hands those values to decoders which must agree refuses
	// them.
	LoneSurrogate map[string]bool
	// UnsafeInteger names the root members whose value holds an integer
	// literal that is not exactly a double (such as 9007199254740993), which
	// Python reads exactly and JavaScript and Go round (nil when none);
	// likewise accepted here.
	UnsafeInteger map[string]bool

	deepest int // the document's nesting
}

// Valid returns the root member name as a Valid, for later stages that
// take the value without scanning it again; ok is false when there is no
// such member.
func (in Input) Valid(name string) (Valid, bool) {
	v, ok := in.Members[name]
	if !ok {
		return Valid{}, false
	}
	return Valid{data: v, depth: max(in.deepest-1, 0)}, true
}

// ReadInput validates data as Object does and, in the same pass, reads
// member names as the laxest common decoder does: two names of one object
// that are the same under SameName are refused (ErrDuplicateKey when they are
// byte-identical after unescaping, ErrCaseVariant otherwise), at every depth,
// and so is a name holding an escaped unpaired surrogate (ErrLoneSurrogate).
// It is for input that sigil-hub authorizes and forwards, so that every
// decoder downstream reads one set of names.
//
// The returned error, if any, is an *Error. ReadInput is safe for concurrent
// use; the returned values alias data.
func ReadInput(data []byte, maxDepth int) (Input, error) {
	s := newScanner(data, maxDepth)
	s.fold = true
	s.members = make(map[string]json.RawMessage)
	if err := s.objectDocument(); err != nil {
		return Input{}, err
	}
	return Input{Members: s.members, LoneSurrogate: s.lone, UnsafeInteger: s.unsafeInt, deepest: s.deepest}, nil
}
