package authz

import (
	"errors"
	"strings"
	"testing"

	"github.com/sigilcore/sigil-hub/internal/strictjson"
)

// A strictjson.Valid from the edge spares NewIntent its own scan only for
// exactly the bytes it proves, and never lifts the intent's own limits.
func TestIntentTrustsOnlyItsOwnProof(t *testing.T) {
	in, err := strictjson.ReadInput([]byte(`{"params":{"arguments":{"path":"/tmp/x","n":1}}}`), 0)
	if err != nil {
		t.Fatal(err)
	}
	params, _ := in.Valid("params")
	args, _ := params.Member("arguments")
	base := Request{ServerID: "fs", Tool: "write", TaskID: "t1", Arguments: args.Bytes(), Checked: args,
		Extract: &Extractor{Fields: map[string]string{"path": "path"}}}
	proven, err := NewIntent(base)
	if err != nil {
		t.Fatal(err)
	}
	base.Checked = strictjson.Valid{}
	unproven, err := NewIntent(base)
	if err != nil || string(proven.JSON) != string(unproven.JSON) || proven.TxCommit != unproven.TxCommit {
		t.Fatalf("with the proof %s %s, without %s %s (%v)", proven.JSON, proven.TxCommit, unproven.JSON, unproven.TxCommit, err)
	}

	// A proof of other bytes proves nothing about these.
	bad := base
	bad.Arguments, bad.Checked = []byte(`{"a":1,"a":2}`), args
	var ie *InputError
	if _, err := NewIntent(bad); !errors.As(err, &ie) || ie.Code != CodeInputMalformed {
		t.Fatalf("duplicate keys with another value's proof: %v, want %s", err, CodeInputMalformed)
	}

	// Arguments deeper than MaxArgumentsDepth are refused even when proven valid.
	deep := []byte(`{"a":` + strings.Repeat("[", MaxArgumentsDepth) + strings.Repeat("]", MaxArgumentsDepth) + `}`)
	v, err := strictjson.Check(deep, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := NewIntent(Request{ServerID: "fs", Tool: "write", TaskID: "t1", Arguments: v.Bytes(), Checked: v}); !errors.As(err, &ie) || ie.Code != CodeInputMalformed {
		t.Fatalf("arguments %d deep with a proof: %v, want %s", v.Depth(), err, CodeInputMalformed)
	}
}
