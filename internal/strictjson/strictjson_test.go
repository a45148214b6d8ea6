package strictjson_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/sigilcore/sigil-hub/internal/strictjson"
)

func TestValidate(t *testing.T) {
	deep := func(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }
	deepObj := func(n int) string { return strings.Repeat(`{"a":`, n) + "1" + strings.Repeat("}", n) }
	for _, tc := range []struct {
		name     string
		in       string
		maxDepth int
		kind     error // nil: accepted
		detail   string
		path     string
	}{
		// Accepted.
		{name: "object", in: `{"a":1,"b":[true,false,null],"c":{"d":"e"}}`},
		{name: "surrounding whitespace", in: " \t\r\n{}\n "},
		{name: "scalar root", in: `"x"`},
		{name: "number root", in: `-0.5e+10`},
		{name: "empty array", in: `[]`},
		{name: "empty string key", in: `{"":1}`},
		{name: "all escapes", in: `"\" \\ \/ \b \f \n \r \t \u00e9 \uD83D\uDE00"`},
		{name: "lone high surrogate escape", in: `"\ud800"`},
		{name: "lone low surrogate escape", in: `{"\udc00":1}`},
		{name: "raw non-ascii", in: `{"é":"café","😀":"\u2028"}`},
		{name: "case-variant keys are distinct", in: `{"a":1,"A":2}`},
		{name: "same key in sibling objects", in: `[{"a":1},{"a":2}]`},
		{name: "same key at different levels", in: `{"a":{"a":{"a":1}}}`},
		{name: "depth at limit", in: deep(3), maxDepth: 3},
		{name: "object depth at limit", in: deepObj(32), maxDepth: 32},
		{name: "default depth 64", in: deep(64)},
		{name: "many distinct keys", in: manyKeys(100, false)},

		// Syntax.
		{name: "empty", in: "", kind: strictjson.ErrSyntax, detail: "unexpected end of input", path: "$"},
		{name: "only whitespace", in: "  ", kind: strictjson.ErrSyntax, path: "$"},
		{name: "two values", in: `{} {}`, kind: strictjson.ErrSyntax, detail: "unexpected data after the top-level value"},
		{name: "trailing comma object", in: `{"a":1,}`, kind: strictjson.ErrSyntax},
		{name: "trailing comma array", in: `[1,]`, kind: strictjson.ErrSyntax, path: "$[1]"},
		{name: "single quotes", in: `{'a':1}`, kind: strictjson.ErrSyntax},
		{name: "unquoted key", in: `{a:1}`, kind: strictjson.ErrSyntax},
		{name: "missing colon", in: `{"a" 1}`, kind: strictjson.ErrSyntax},
		{name: "unterminated string", in: `"abc`, kind: strictjson.ErrSyntax},
		{name: "unterminated object", in: `{"a":1`, kind: strictjson.ErrSyntax},
		{name: "raw control char", in: "\"a\tb\"", kind: strictjson.ErrSyntax, detail: "control character in string"},
		{name: "bad escape", in: `"\x"`, kind: strictjson.ErrSyntax},
		{name: "short unicode escape", in: `"\u12"`, kind: strictjson.ErrSyntax},
		{name: "non-hex unicode escape", in: `"\u12g4"`, kind: strictjson.ErrSyntax},
		{name: "leading zero", in: `01`, kind: strictjson.ErrSyntax},
		{name: "plus sign", in: `+1`, kind: strictjson.ErrSyntax},
		{name: "bare dot", in: `1.`, kind: strictjson.ErrSyntax},
		{name: "bare exponent", in: `1e`, kind: strictjson.ErrSyntax},
		{name: "NaN", in: `NaN`, kind: strictjson.ErrSyntax},
		{name: "Infinity", in: `{"v":Infinity}`, kind: strictjson.ErrSyntax, path: "$.v"},
		{name: "truncated literal", in: `tru`, kind: strictjson.ErrSyntax},
		{name: "BOM", in: "\ufeff{}", kind: strictjson.ErrSyntax},
		{name: "comment", in: `{} // x`, kind: strictjson.ErrSyntax},
		{name: "error path in nested array", in: `{"a":[1,{"b c":[x]}]}`, kind: strictjson.ErrSyntax, path: `$.a[1]["b c"][0]`},

		// UTF-8.
		{name: "invalid utf-8 in string", in: "\"a\xffb\"", kind: strictjson.ErrInvalidUTF8, path: "$"},
		{name: "invalid utf-8 in key", in: "{\"\xc3\":1}", kind: strictjson.ErrInvalidUTF8},
		{name: "raw surrogate bytes", in: "\"\xed\xa0\x80\"", kind: strictjson.ErrInvalidUTF8},
		{name: "overlong encoding", in: "\"\xc0\xaf\"", kind: strictjson.ErrInvalidUTF8},
		{name: "invalid utf-8 outside string", in: "[\xff]", kind: strictjson.ErrInvalidUTF8},

		// Duplicates.
		{name: "duplicate at root", in: `{"a":1,"a":2}`, kind: strictjson.ErrDuplicateKey, detail: `duplicate key "a"`, path: "$"},
		{name: "duplicate nested", in: `{"x":{"a":1,"b":2,"a":3}}`, kind: strictjson.ErrDuplicateKey, detail: `duplicate key "a"`, path: "$.x"},
		{name: "duplicate in array element", in: `[0,{"k":1,"k":1}]`, kind: strictjson.ErrDuplicateKey, path: "$[1]"},
		{name: "duplicate via escape", in: `{"é":1,"\u00e9":2}`, kind: strictjson.ErrDuplicateKey, detail: `duplicate key "é"`},
		{name: "duplicate via escaped slash", in: `{"a/b":1,"a\/b":2}`, kind: strictjson.ErrDuplicateKey},
		{name: "duplicate via surrogate pair escape", in: `{"😀":1,"\ud83d\ude00":2}`, kind: strictjson.ErrDuplicateKey},
		{name: "duplicate lone surrogate", in: `{"\ud800":1,"\uD800":2}`, kind: strictjson.ErrDuplicateKey},
		{name: "distinct lone surrogates", in: `{"\ud800":1,"\ud801":2}`},
		{name: "lone surrogate is not U+FFFD", in: `{"\ud800":1,"\ufffd":2}`},
		{name: "duplicate in big object", in: manyKeys(100, true), kind: strictjson.ErrDuplicateKey, detail: `duplicate key "k0"`},
		{name: "duplicate after nested object", in: `{"a":{"b":1},"c":{"b":2},"a":3}`, kind: strictjson.ErrDuplicateKey, path: "$"},

		// Depth.
		{name: "too deep", in: deep(4), maxDepth: 3, kind: strictjson.ErrTooDeep, detail: "nesting deeper than 3", path: "$[0][0][0]"},
		{name: "object too deep", in: deepObj(33), maxDepth: 32, kind: strictjson.ErrTooDeep},
		{name: "default depth exceeded", in: deep(65), kind: strictjson.ErrTooDeep, detail: "nesting deeper than 64"},
		{name: "scalars do not count", in: `{"a":"b"}`, maxDepth: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := strictjson.Validate([]byte(tc.in), tc.maxDepth)
			if tc.kind == nil {
				if err != nil {
					t.Fatalf("Validate(%q) = %v, want nil", tc.in, err)
				}
				if !json.Valid([]byte(tc.in)) {
					t.Fatalf("accepted %q but encoding/json rejects it", tc.in)
				}
				return
			}
			var se *strictjson.Error
			if !errors.As(err, &se) {
				t.Fatalf("Validate(%q) = %v, want *Error", tc.in, err)
			}
			if !errors.Is(err, tc.kind) {
				t.Errorf("Validate(%q) kind = %v, want %v (err %v)", tc.in, se.Kind, tc.kind, err)
			}
			if tc.detail != "" && se.Detail != tc.detail {
				t.Errorf("detail = %q, want %q", se.Detail, tc.detail)
			}
			if tc.path != "" && se.Path != tc.path {
				t.Errorf("path = %q, want %q", se.Path, tc.path)
			}
			if !strings.Contains(err.Error(), se.Path) || !strings.Contains(err.Error(), se.Detail) {
				t.Errorf("message %q does not say what and where", err)
			}
		})
	}
}

func TestErrorMessage(t *testing.T) {
	err := strictjson.Validate([]byte(`{"x":{"a":1,"a":2}}`), 0)
	want := `duplicate key "a" at $.x (offset 12)`
	if err == nil || err.Error() != want {
		t.Fatalf("got %v, want %q", err, want)
	}
}

func TestLongKeyShortened(t *testing.T) {
	k := strings.Repeat("é", 200)
	err := strictjson.Validate([]byte(`{"`+k+`":1,"`+k+`":2}`), 0)
	if !errors.Is(err, strictjson.ErrDuplicateKey) {
		t.Fatalf("got %v", err)
	}
	if len(err.Error()) > 120 {
		t.Errorf("message not shortened: %d bytes", len(err.Error()))
	}
}

func TestObject(t *testing.T) {
	in := []byte(` { "a" : 12345678901234567890 , "b":"\u00e9<>" ,"c": {"d": [1, 2]},"\u0065":null } `)
	got, err := strictjson.Object(in, 0)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"a": `12345678901234567890`,
		"b": `"\u00e9<>"`,
		"c": `{"d": [1, 2]}`,
		"e": `null`,
	}
	if len(got) != len(want) {
		t.Fatalf("got %d members, want %d: %q", len(got), len(want), got)
	}
	for k, v := range want {
		if string(got[k]) != v {
			t.Errorf("member %q = %q, want %q", k, got[k], v)
		}
	}
	// Appending to a returned value must not write into the input.
	before := string(in)
	_ = append(got["a"], 'X')
	if string(in) != before {
		t.Errorf("append to a member value modified the input")
	}

	for _, tc := range []struct {
		name string
		in   string
		kind error
	}{
		{"array root", `[1]`, strictjson.ErrNotObject},
		{"string root", `"{}"`, strictjson.ErrNotObject},
		{"null root", `null`, strictjson.ErrNotObject},
		{"invalid", `{"a":}`, strictjson.ErrSyntax},
		{"duplicate", `{"a":1,"a":1}`, strictjson.ErrDuplicateKey},
		{"too deep", `{"a":{"b":{}}}`, strictjson.ErrTooDeep},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := strictjson.Object([]byte(tc.in), 2)
			if !errors.Is(err, tc.kind) || m != nil {
				t.Fatalf("Object(%q) = %v, %v; want nil, %v", tc.in, m, err, tc.kind)
			}
		})
	}
}

func manyKeys(n int, dupFirst bool) string {
	var b strings.Builder
	b.WriteString("{")
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"k`)
		b.WriteString(itoa(i))
		b.WriteString(`":{"inner":1}`)
	}
	if dupFirst {
		b.WriteString(`,"k0":1`)
	}
	b.WriteString("}")
	return b.String()
}

func itoa(i int) string {
	if i == 0 {
		return "0"
	}
	var d []byte
	for ; i > 0; i /= 10 {
		d = append([]byte{byte('0' + i%10)}, d...)
	}
	return string(d)
}
