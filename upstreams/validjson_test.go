package upstreams

import (
	"encoding/json"
	"strings"
	"testing"
)

// validJSONSeeds cover what strictjson rejects but json.Valid accepts, and
// the depth limits of both.
func validJSONSeeds() []string {
	return []string{
		`{}`, `{"a":1,"b":[true,false,null,"x\u00e9"]}`, ` 1 `, `"s"`,
		`{"a":1,"a":2}`, "\"\xff\"", "{\"k\xc3\":1}", `{"a":1,}`, `{bad`, ``, ` `, `{} {}`, `[1 2]`,
		strings.Repeat("[", 10000) + strings.Repeat("]", 10000),
		strings.Repeat("[", 10001) + strings.Repeat("]", 10001),
		strings.Repeat(`{"a":`, 64) + "1" + strings.Repeat("}", 64),
	}
}

func TestValidJSONMatchesJSONValid(t *testing.T) {
	for _, s := range validJSONSeeds() {
		if got, want := validJSON([]byte(s)), json.Valid([]byte(s)); got != want {
			t.Errorf("validJSON(%.40q) = %v, json.Valid says %v", s, got, want)
		}
	}
}

// FuzzValidJSON checks that the check in Call is exactly json.Valid.
func FuzzValidJSON(f *testing.F) {
	for _, s := range validJSONSeeds() {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, want := validJSON(b), json.Valid(b); got != want {
			t.Fatalf("validJSON(%q) = %v, json.Valid says %v", b, got, want)
		}
	})
}
