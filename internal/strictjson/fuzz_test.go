package strictjson_test

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/sigilcore/sigil-hub/internal/strictjson"
)

// FuzzValidate checks that Validate never accepts what encoding/json
// rejects, that every rejection is a typed *Error, and that Object agrees
// with Validate.
func FuzzValidate(f *testing.F) {
	for _, s := range []string{
		`{}`, `[]`, `""`, `0`, `-0.5e-3`, `true`, `null`,
		`{"a":1,"b":[true,false,null],"c":{"d":"e"}}`,
		`{"a":1,"a":2}`, `{"é":1,"\u00e9":2}`, `{"\ud800":1,"\udbff":2}`,
		`"\uD83D\uDE00 \u2028 <>&"`, "\"\xff\"", `[[[[[[[[[[]]]]]]]]]]`,
		`{"a":{"b":{"c":[1,2,{"d":null}]}}}`, ` {"x" : "y"} `, `{"a":1,}`, `01`,
	} {
		f.Add([]byte(s), 3)
	}
	f.Fuzz(func(t *testing.T, data []byte, maxDepth int) {
		maxDepth %= 80
		err := strictjson.Validate(data, maxDepth)
		if err == nil {
			if !json.Valid(data) {
				t.Fatalf("Validate accepted %q, encoding/json rejects it", data)
			}
		} else {
			var se *strictjson.Error
			if !errors.As(err, &se) || se.Offset < 0 || se.Offset > len(data) || se.Path == "" {
				t.Fatalf("bad error for %q: %#v", data, err)
			}
		}
		m, oerr := strictjson.Object(data, maxDepth)
		switch {
		case err != nil && oerr == nil:
			t.Fatalf("Object accepted %q that Validate rejects: %v", data, err)
		case err == nil && oerr == nil:
			for k, v := range m {
				if !json.Valid(v) {
					t.Fatalf("member %q value %q is not valid JSON", k, v)
				}
			}
		case err == nil && !errors.Is(oerr, strictjson.ErrNotObject):
			t.Fatalf("Object rejected valid %q with %v", data, oerr)
		}
	})
}
