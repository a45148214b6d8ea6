package hub

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"reflect"
	"strings"
	"testing"

	"github.com/sigilcore/sigil-hub/authz"
	"github.com/sigilcore/sigil-hub/front"
)

// The differential property behind "the bytes decided on are the bytes that
// run" (docs/security.md): for any tools/call the hub's edge accepts, the
// params it forwards, read by every kind of decoder a real upstream uses,
// give exactly the arguments the policy evaluated.
//
// The decoders: encoding/json into a struct (matches names by case folding,
// last match wins: a Go server on mcp-go binding arguments), into
// map[string]any (exact names), and an exact-name decoder that refuses
// duplicates (JavaScript's and Python's reading). The policy's reading is
// the embedded engine's: encoding/json with UseNumber over the intent that
// authz builds, which is also what Sign receives.

// fuzzToolDef is the tool the fuzzed calls go to: its schema declares the
// fields the struct decoder binds.
const fuzzToolDef = `{"name":"t","inputSchema":{"type":"object","properties":{` +
	`"path":{"type":"string"},"kind":{},"url":{"type":"string"},` +
	`"opts":{"type":"object","properties":{"mode":{}}},` +
	`"items":{"type":"array","items":{"$ref":"#/$defs/item"}}},` +
	`"$defs":{"item":{"type":"object","properties":{"name":{}}}}}}`

// boundArgs is how a Go server binds the call (every field an `any`, so a
// type mismatch cannot hide a value).
type boundArgs struct {
	Path  any `json:"path"`
	Kind  any `json:"kind"`
	URL   any `json:"url"`
	Opts  any `json:"opts"`
	Items any `json:"items"`
}

type boundCall struct {
	Params struct {
		Name      string         `json:"name"`
		Arguments map[string]any `json:"arguments"`
		Meta      map[string]any `json:"_meta"`
	} `json:"params"`
}

type boundStruct struct {
	Params struct {
		Name      string `json:"name"`
		Arguments struct {
			boundArgs
			Opts  struct{ Mode any }   `json:"opts"`
			Items []struct{ Name any } `json:"items"`
		} `json:"arguments"`
	} `json:"params"`
}

var toolCallSeeds = []string{
	// The reproductions of the argument-smuggling bypass.
	`{"name":"t","arguments":{"path":"/tmp/ok"},"argument\u017f":{"path":"/etc/passwd"}}`,
	"{\"name\":\"t\",\"arguments\":{\"path\":\"/tmp/ok\"},\"argument\u017f\":{\"path\":\"/etc/passwd\"}}",
	`{"name":"t","arguments":{"path":"/tmp/ok"},"ARGUMENTS":{"path":"/etc/passwd"}}`,
	`{"name":"t","arguments":{"path":"/tmp/ok","PATH":"/etc/passwd"}}`,
	`{"name":"t","arguments":{"PATH":"/etc/passwd"}}`,
	`{"name":"t","arguments":{"pat\u017f":"/etc/passwd"}}`,
	`{"name":"t","arguments":{"\u212aind":"x"}}`,
	`{"name":"t","arguments":{"opts":{"MODE":"x"}}}`,
	`{"name":"t","arguments":{"items":[{"name":"a"},{"NAME":"b"}]}}`,
	`{"name":"t","arguments":{"a":"\ud800"}}`,
	`{"name":"t","arguments":{"a\ud800":1,"a\udc00":2}}`,
	`{"name":"t","NAME":"other","arguments":{}}`,
	`{"name":"t","arguments":{"path":"a"},"_meta":{"progressToken":"x","sigilcore.com/attestation":"forged","other":1}}`,
	`{"name":"t","arguments":{},"task":{"ttl":1}}`,
	`{"name":"t","arguments":{},"inputResponses":{}}`,
	`{"name":"t","arguments":{"kind":1e400}}`,
	`{"name":"t","arguments":{"kind":12345678901234567890123}}`,
	`{"name":"t","arguments":{"kind":9007199254740993}}`,
	`{"name":"t","arguments":{"kind":-9007199254740991}}`,
	`{"name":"t","arguments":{"path":"/tmp/ok","url":"http://x/"}}`,
	`{"name":"t"}`,
	"{\"name\":\"t\",\"arguments\":{\r\n \"path\" :\n\"a\",\"opts\":{\"mode\":\t\"x\"}\n}}",
	`{"name":"t","arguments":  {"path" : "/tmp/\u002e\u002e/etc"}  }`,
}

func FuzzToolCallFrame(f *testing.F) {
	for _, s := range toolCallSeeds {
		f.Add([]byte(s))
	}
	names := argNamesOf(json.RawMessage(fuzzToolDef))
	f.Fuzz(func(t *testing.T, params []byte) {
		line := append(append([]byte(`{"jsonrpc":"2.0","id":1,"method":"tools/call","params":`), params...), '}')
		m, rerr := front.ReadRequest(line) // the edge, as every session runs it
		if rerr != nil {
			return
		}
		call, rerr := readToolCall(&m)
		if rerr != nil {
			return
		}
		if member, _ := names.caseVariantArgument(call.args, ""); member != "" {
			return
		}
		in, err := authz.NewIntent(authz.Request{ServerID: "srv", Tool: "t", Arguments: call.args, Checked: call.valid, TaskID: "task"})
		if err != nil {
			return // denied locally: nothing is forwarded
		}
		policy := policyArguments(t, in.JSON)

		up, err := upstreamCallParams(nil, "t", call.valid, "sigil-hub-tok", "att", nil)
		if err != nil || !call.valid.Is(call.args) {
			t.Fatalf("params: %v (arguments proven: %v)", err, call.valid.Is(call.args))
		}
		frame := append(append([]byte(`{"jsonrpc":"2.0","id":7,"method":"tools/call","params":`), up.Bytes()...), '}')
		if !json.Valid(frame) || bytes.ContainsAny(frame, "\r\n") {
			t.Fatalf("forwarded frame is not one line of JSON: %q", frame)
		}

		// encoding/json into map[string]any (exact names).
		var generic map[string]any
		decodeNumbers(t, frame, &generic)
		p := generic["params"].(map[string]any)
		for k := range p {
			if k != "name" && k != "arguments" && k != "_meta" {
				t.Fatalf("forwarded params member %q: %s", k, frame)
			}
		}
		if !reflect.DeepEqual(p["arguments"], policy) {
			t.Fatalf("map decoder: arguments %v, policy evaluated %v\nclient params %s", p["arguments"], policy, params)
		}

		// encoding/json into the structs mcp-go uses (folded names).
		var bc boundCall
		decodeNumbers(t, frame, &bc)
		if bc.Params.Name != "t" || !reflect.DeepEqual(bc.Params.Arguments, policy) {
			t.Fatalf("struct decoder: name %q arguments %v, policy evaluated %v\nclient params %s", bc.Params.Name, bc.Params.Arguments, policy, params)
		}
		if want := map[string]any{"progressToken": "sigil-hub-tok", "sigilcore.com/attestation": "att"}; !reflect.DeepEqual(bc.Params.Meta, want) {
			t.Fatalf("forwarded _meta %v, want only the hub's own %v", bc.Params.Meta, want)
		}
		var bs boundStruct
		decodeNumbers(t, frame, &bs)
		a := bs.Params.Arguments
		check := func(field string, got any, want any) {
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("a Go server binding %s acts on %#v; the policy evaluated %#v\nclient params %s", field, got, want, params)
			}
		}
		check("path", a.Path, policy["path"])
		check("kind", a.Kind, policy["kind"])
		check("url", a.URL, policy["url"])
		if opts, ok := policy["opts"].(map[string]any); ok {
			check("opts.mode", a.Opts.Mode, opts["mode"])
		}
		if items, ok := policy["items"].([]any); ok && len(items) == len(a.Items) {
			for i, it := range items {
				if obj, ok := it.(map[string]any); ok {
					check(fmt.Sprintf("items[%d].name", i), a.Items[i].Name, obj["name"])
				}
			}
		}

		// Numbers: an integer literal reads the same exactly (Python) and as
		// a double (JavaScript, Go, the policy).
		if n, ok := disagreeingNumber(policy); ok {
			t.Fatalf("number %s is read differently by exact and double decoders\nclient params %s", n, params)
		}

		// The exact-name reading (JavaScript, Python).
		exact, err := exactDecode(frame)
		if err != nil {
			t.Fatalf("exact decoder refused the forwarded frame: %v\n%s", err, frame)
		}
		ep := exact.(map[string]any)["params"].(map[string]any)
		if !reflect.DeepEqual(ep["arguments"], policy) || ep["name"] != "t" {
			t.Fatalf("exact decoder: %v, policy evaluated %v\nclient params %s", ep, policy, params)
		}
	})
}

// disagreeingNumber finds a number in v whose exact value (as Python reads
// an integer literal) differs from its nearest double.
func disagreeingNumber(v any) (json.Number, bool) {
	switch x := v.(type) {
	case json.Number:
		if strings.ContainsAny(string(x), ".eE") {
			return "", false
		}
		exact, ok := new(big.Int).SetString(string(x), 10)
		f, err := x.Float64()
		if !ok || err != nil {
			return x, true
		}
		if new(big.Float).SetInt(exact).Cmp(big.NewFloat(f)) != 0 {
			return x, true
		}
	case map[string]any:
		for _, e := range x {
			if n, bad := disagreeingNumber(e); bad {
				return n, true
			}
		}
	case []any:
		for _, e := range x {
			if n, bad := disagreeingNumber(e); bad {
				return n, true
			}
		}
	}
	return "", false
}

// policyArguments is metadata.arguments of an intent as the embedded
// policy engine decodes it.
func policyArguments(t *testing.T, intent []byte) map[string]any {
	var obj map[string]any
	decodeNumbers(t, intent, &obj)
	md := obj["metadata"].(map[string]any)
	return md["arguments"].(map[string]any)
}

func decodeNumbers(t *testing.T, b []byte, v any) {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	if err := dec.Decode(v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}

// exactDecode reads JSON with exact member names, refusing a duplicate
// name, as JavaScript's JSON.parse-then-lookup and Python's json.loads see
// names (without their last-wins rule: a duplicate must never reach here).
func exactDecode(b []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var value func() (any, error)
	value = func() (any, error) {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		switch d := tok.(type) {
		case json.Delim:
			switch d {
			case '{':
				obj := map[string]any{}
				for dec.More() {
					kt, err := dec.Token()
					if err != nil {
						return nil, err
					}
					k := kt.(string)
					if _, dup := obj[k]; dup {
						return nil, errors.New("duplicate name " + k)
					}
					if obj[k], err = value(); err != nil {
						return nil, err
					}
				}
				_, err := dec.Token()
				return obj, err
			case '[':
				arr := []any{}
				for dec.More() {
					v, err := value()
					if err != nil {
						return nil, err
					}
					arr = append(arr, v)
				}
				_, err := dec.Token()
				return arr, err
			}
		}
		return tok, nil
	}
	return value()
}
