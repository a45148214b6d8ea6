package upstreams

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigilcore/sigil-hub/internal/strictjson"
	"github.com/sigilcore/sigil-hub/internal/testupstream"
)

// CallValid sends params a strictjson.Valid proves, byte for byte, as Call
// sends checked ones.
func TestCallValidSendsTheProvenBytes(t *testing.T) {
	logPath := filepath.Join(t.TempDir(), "log")
	u := start(t, fakeSpec(t, testupstream.EnvLog+"="+logPath), nil)
	waitState(t, u, Ready)
	args, err := strictjson.Check([]byte(`{"s":"q\"b\u00e9","n":[1,2.5]}`), 0)
	if err != nil {
		t.Fatal(err)
	}
	var o strictjson.ObjectBuilder
	o.Start(nil)
	o.String("name", "echo")
	o.Value("arguments", args)
	params, err := o.Finish()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), testDeadline)
	defer cancel()
	res, err := u.CallValid(ctx, "tools/call", params)
	if err != nil {
		t.Fatal(err)
	}
	if got := resultText(t, res); got != string(args.Bytes()) {
		t.Errorf("child got arguments %s, want %s", got, args.Bytes())
	}
	if !strings.Contains(readLog(t, logPath), `"params":`+string(params.Bytes())) {
		t.Errorf("stdin line lacks the verbatim params %s", params.Bytes())
	}
}
