package strictjson

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"
	"unicode/utf16"
)

// retoken writes a document back from its tokens, compact.
func retoken(doc []byte) ([]byte, bool) {
	var out []byte
	toks := NewTokens(doc)
	var stack []Kind // open brackets
	var count []int  // tokens read in each open bracket
	for tok := toks.Next(); tok.Kind != End; tok = toks.Next() {
		if tok.Kind == EndObject || tok.Kind == EndArray {
			if len(stack) == 0 {
				return nil, false
			}
			stack, count = stack[:len(stack)-1], count[:len(count)-1]
			out = append(out, tok.Raw...)
			continue
		}
		if n := len(stack); n > 0 {
			switch c := count[n-1]; {
			case stack[n-1] == BeginObject && c%2 == 1:
				out = append(out, ':')
			case c > 0:
				out = append(out, ',')
			}
			count[n-1]++
		}
		if tok.Escaped != (tok.Kind == String && bytes.IndexByte(tok.Raw, '\\') >= 0) {
			return nil, false
		}
		out = append(out, tok.Raw...)
		if tok.Kind == BeginObject || tok.Kind == BeginArray {
			stack, count = append(stack, tok.Kind), append(count, 0)
		}
	}
	return out, toks.OK() && toks.Done() && len(stack) == 0
}

var tokenSeeds = []string{`{}`, `[]`, ` { "a" : [ 1 , -2.5e+3 , true , false , null ] , "b\"c" : { "" : "\u00e9\\" } } `,
	`"x"`, `0`, `[[[{}]]]`, `{"k":"é😀","n":-0}`, `"\ud800"`}

func TestTokensRebuildDocument(t *testing.T) {
	for _, s := range tokenSeeds {
		checkTokens(t, []byte(s))
	}
}

func FuzzTokens(f *testing.F) {
	for _, s := range tokenSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(checkTokens)
}

// checkTokens: on a valid document the tokens are the document, compacted;
// on anything else Tokens and AppendUTF16 only must not panic.
func checkTokens(t *testing.T, doc []byte) {
	got, ok := retoken(doc)
	if Validate(doc, 0) != nil {
		return
	}
	var want bytes.Buffer
	if err := json.Compact(&want, doc); err != nil {
		t.Fatalf("json.Compact(%q): %v", doc, err)
	}
	if !ok || !bytes.Equal(got, want.Bytes()) {
		t.Fatalf("tokens of %q give %q (ok %v), want %q", doc, got, ok, want.Bytes())
	}
	toks := NewTokens(doc)
	for tok := toks.Next(); tok.Kind != End; tok = toks.Next() {
		if tok.Kind != String {
			continue
		}
		units, ok := AppendUTF16(nil, tok.Raw)
		var s string
		if err := json.Unmarshal(tok.Raw, &s); err != nil || !ok {
			t.Fatalf("AppendUTF16(%s): ok %v, json: %v", tok.Raw, ok, err)
		}
		if d, ok := DecodeString(tok.Raw); !ok || d != s {
			t.Fatalf("DecodeString(%s) = %q, %v; encoding/json reads %q", tok.Raw, d, ok, s)
		}
		// encoding/json reads a lone surrogate as U+FFFD; otherwise the
		// two readings are the same text.
		if !slices.ContainsFunc(units, func(u uint16) bool { return utf16.IsSurrogate(rune(u)) }) &&
			string(utf16.Decode(units)) != s {
			t.Fatalf("AppendUTF16(%s) = %q, encoding/json reads %q", tok.Raw, string(utf16.Decode(units)), s)
		}
	}
}
