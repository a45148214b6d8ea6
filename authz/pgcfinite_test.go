package authz

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sigilcore/sigil-hub/internal/strictjson"
)

// pgcFinite must deny exactly what the canonicalization denies as
// non-finite, with the same message: the embedded policy uses it instead of
// computing a commit it does not need.
func checkFiniteAgrees(t *testing.T, doc []byte) {
	t.Helper()
	if strictjson.Validate(doc, pgcMaxDepth) != nil {
		return
	}
	_, cerr := pgcCanonical(doc)
	if cerr != nil && !strings.Contains(cerr.Error(), "non-finite") {
		cerr = nil // duplicate keys and the like are strictjson's to reject
	}
	ferr := pgcFinite(doc)
	if fmt.Sprint(cerr) != fmt.Sprint(ferr) {
		t.Fatalf("%q: canonicalization says %v, pgcFinite %v", doc, cerr, ferr)
	}
}

var finiteSeeds = []string{
	`{"a":1e400}`, `{"a":-1e400}`, `{"a":1e-400}`, `{"a":1.7976931348623157e308}`, `{"a":1.8e308}`,
	`{"a":"1e400"}`, `{"a\"1e400":1}`, `{"s":"\\","n":1E400}`, `[1,2,{"x":[3e999]}]`,
	`{"big":` + strings.Repeat("9", 400) + `}`, `{"big":` + strings.Repeat("9", 308) + `}`,
	`{"big":-` + strings.Repeat("1", 309) + `.5}`, `{"a":0.` + strings.Repeat("0", 400) + `1}`, `1e400`, `"x"`, `{}`,
}

func TestPgcFiniteAgrees(t *testing.T) {
	denied := 0
	for _, s := range finiteSeeds {
		checkFiniteAgrees(t, []byte(s))
		if pgcFinite([]byte(s)) != nil {
			denied++
		}
	}
	if denied != 7 {
		t.Fatalf("%d seeds denied as non-finite, want 7", denied)
	}
}

func FuzzPgcFinite(f *testing.F) {
	for _, s := range finiteSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) { checkFiniteAgrees(t, doc) })
}
