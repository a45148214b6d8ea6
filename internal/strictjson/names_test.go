package strictjson_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/sigilcore/sigil-hub/internal/strictjson"
)

func TestReadInputNames(t *testing.T) {
	many := func(extra string) string {
		var b strings.Builder
		b.WriteString("{")
		for i := range 40 {
			fmt.Fprintf(&b, `"k%d":%d,`, i, i)
		}
		b.WriteString(extra)
		b.WriteString(`"z":0}`)
		return b.String()
	}
	tests := []struct {
		doc  string
		kind error // nil: accepted
		lone bool
	}{
		{`{"jsonrpc":"2.0","id":1,"method":"ping"}`, nil, false},
		{`{"a":1,"A":2}`, strictjson.ErrCaseVariant, false},
		{`{"a":1,"a":2}`, strictjson.ErrDuplicateKey, false},
		{`{"a":1,"\u0061":2}`, strictjson.ErrDuplicateKey, false},
		// The reproductions: long s (U+017F) and the Kelvin sign (U+212A)
		// fold to ASCII letters, raw or escaped, at any depth.
		{`{"params":{"arguments":{},"argument\u017f":{}}}`, strictjson.ErrCaseVariant, false},
		{"{\"params\":{\"arguments\":{},\"argument\u017f\":{}}}", strictjson.ErrCaseVariant, false},
		{`{"a":{"b":[{"path":"x","PATH":"y"}]}}`, strictjson.ErrCaseVariant, false},
		{`{"kind":1,"\u212aind":2}`, strictjson.ErrCaseVariant, false},
		{`{"ÉTÉ":1,"été":2}`, strictjson.ErrCaseVariant, false},
		{many(`"NAME":1,"name":2,`), strictjson.ErrCaseVariant, false},
		{many(`"K0":1,`), strictjson.ErrCaseVariant, false},
		{many(`"k0":1,`), strictjson.ErrDuplicateKey, false},
		{many(``), nil, false},
		// Unpaired surrogates: refused in names, reported in values.
		{`{"a\ud800":1}`, strictjson.ErrLoneSurrogate, false},
		{`{"a\udc00":1}`, strictjson.ErrLoneSurrogate, false},
		{`{"a":"\ud800"}`, nil, true},
		{`{"a":"\ud800\u0041"}`, nil, true},
		{`{"a":"x\udc00"}`, nil, true},
		{`{"a":"\ud83d\ude00"}`, nil, false},
		{`{"\ud83d\ude00":"ok"}`, nil, false},
	}
	for _, tt := range tests {
		in, err := strictjson.ReadInput([]byte(tt.doc), 0)
		if tt.kind == nil {
			if err != nil {
				t.Errorf("ReadInput(%s) = %v, want accepted", tt.doc, err)
			} else if in.LoneSurrogate["a"] != tt.lone {
				t.Errorf("ReadInput(%s).LoneSurrogate = %v, want %v", tt.doc, in.LoneSurrogate, tt.lone)
			}
			continue
		}
		if !errors.Is(err, tt.kind) {
			t.Errorf("ReadInput(%s) = %v, want %v", tt.doc, err, tt.kind)
		}
	}
	for doc, unsafe := range map[string]bool{
		`{"n":9007199254740991}`: false, `{"n":-9007199254740991}`: false, `{"n":9007199254740992}`: false,
		`{"n":9007199254740993}`: true, `{"n":100000000000000000000}`: false, `{"n":-12345678901234567890}`: true,
		`{"n":[1,{"m":90071992547409911}]}`: true, `{"n":1` + strings.Repeat("0", 400) + `}`: true,
		`{"n":9007199254740993.5}`: false, `{"n":12345678901234567890e0}`: false, `{"n":"9007199254740993"}`: false,
	} {
		if in, err := strictjson.ReadInput([]byte(doc), 0); err != nil || in.UnsafeInteger["n"] != unsafe {
			t.Errorf("ReadInput(%s).UnsafeInteger = %v (%v), want %v", doc, in.UnsafeInteger, err, unsafe)
		}
	}
	// The exact scan (Object) keeps its own rules: case variants are
	// distinct names there (upstream and Sign documents are read exactly).
	if _, err := strictjson.Object([]byte(`{"a":1,"A":2}`), 0); err != nil {
		t.Errorf("Object refused case variants: %v", err)
	}
}

// FuzzReadInput: ReadInput accepts exactly what Object accepts minus
// documents in which some object holds two names that encoding/json would
// bind to one struct field, or a name with an unpaired surrogate; FoldName
// agrees with SameName; and the members are Object's.
func FuzzReadInput(f *testing.F) {
	for _, s := range []string{
		`{"a":1,"A":2}`, `{"argument\u017f":1,"arguments":2}`, `{"x":{"\u212a":1,"k":2}}`,
		`{"a":"\ud800"}`, `{"\ud800":1}`, `{"a":[{"b":1},{"B":1}]}`, `{"ǅ":1,"ǆ":2}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		in, err := strictjson.ReadInput(data, 0)
		m, oerr := strictjson.Object(data, 0)
		if err == nil && oerr != nil {
			t.Fatalf("ReadInput accepted %q, Object refused it: %v", data, oerr)
		}
		if err == nil {
			if len(m) != len(in.Members) {
				t.Fatalf("members differ for %q", data)
			}
			for k, v := range m {
				if !bytes.Equal(in.Members[k], v) {
					t.Fatalf("member %q differs for %q", k, data)
				}
			}
		}
		// The reference reading: every object's names, pairwise, by
		// strings.EqualFold after Go's own decoding.
		clash := foldClash(data)
		switch {
		case oerr != nil:
		case err == nil && clash:
			t.Fatalf("ReadInput accepted %q, which has names a case-insensitive decoder merges", data)
		case err != nil && !clash && !errors.Is(err, strictjson.ErrLoneSurrogate):
			t.Fatalf("ReadInput refused %q: %v, but no names clash", data, err)
		}
	})
}

// foldClash decodes data with encoding/json's token reader and reports
// whether some object has two names that strings.EqualFold matches (Go
// reads an unpaired surrogate as U+FFFD, so such names can clash too).
func foldClash(data []byte) bool {
	type frame struct {
		object, wantKey bool
		names           []string
	}
	var stack []*frame
	valueDone := func() {
		if n := len(stack); n > 0 && stack[n-1].object {
			stack[n-1].wantKey = true
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	for {
		tok, err := dec.Token()
		if err != nil {
			return false
		}
		switch v := tok.(type) {
		case json.Delim:
			switch v {
			case '{', '[':
				stack = append(stack, &frame{object: v == '{', wantKey: v == '{'})
			default:
				stack = stack[:len(stack)-1]
				valueDone()
			}
		case string:
			if n := len(stack); n > 0 && stack[n-1].object && stack[n-1].wantKey {
				top := stack[n-1]
				for _, name := range top.names {
					if strings.EqualFold(name, v) {
						return true
					}
				}
				top.names = append(top.names, v)
				top.wantKey = false
				continue
			}
			valueDone()
		default:
			valueDone()
		}
	}
}

func TestFoldNameMatchesSameName(t *testing.T) {
	names := []string{"path", "PATH", "pat\u017f", "\u212aelvin", "kelvin", "ǅ", "ǆ", "Ǆ", "ß", "SS", "ſ", "s", "", "é", "É", "\u0130", "i", "I", "\u0131"}
	for _, a := range names {
		for _, b := range names {
			same := strictjson.SameName(a, b)
			folded := string(strictjson.FoldName(nil, []byte(a))) == string(strictjson.FoldName(nil, []byte(b)))
			if same != folded {
				t.Errorf("SameName(%q, %q) = %v, FoldName equal = %v", a, b, same, folded)
			}
		}
	}
}
