package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"
)

// checkValid: every Valid made from a document holds what it claims.
func checkValid(t *testing.T, doc []byte) {
	in, err := ReadInput(doc, 0)
	if err != nil {
		return
	}
	proves := func(v Valid, what string) {
		if Validate(v.Bytes(), max(v.Depth(), 1)) != nil {
			t.Fatalf("%s of %q: %q is not valid within depth %d", what, doc, v.Bytes(), v.Depth())
		}
		var want bytes.Buffer
		_ = json.Compact(&want, v.Bytes())
		if c := v.Compact(); !bytes.Equal(c.Bytes(), want.Bytes()) || c.Depth() != v.Depth() {
			t.Fatalf("Compact(%q) = %q, want %q", v.Bytes(), c.Bytes(), want.Bytes())
		}
	}
	for name := range in.Members {
		v, ok := in.Valid(name)
		if !ok || !v.Is(in.Members[name]) {
			t.Fatalf("Input.Valid(%q) of %q: ok %v, not the member's bytes", name, doc, ok)
		}
		proves(v, "member "+name)
		if !v.IsObject() {
			continue
		}
		inner, err := Object(v.Bytes(), 0)
		if err != nil {
			t.Fatal(err)
		}
		for k, raw := range inner {
			m, ok := v.Member(k)
			if !ok || !bytes.Equal(m.Bytes(), raw) {
				t.Fatalf("Member(%q) of %q = %q, %v; want %q", k, v.Bytes(), m.Bytes(), ok, raw)
			}
			proves(m, "member "+name+"."+k)
		}
	}
}

var validSeeds = []string{`{"params":{"name":"x","arguments":{"a":[1,{"b":2}]},"_meta":{}}}`,
	"{\"a\" : { \"k\\u0041\" : [ 1 , \"s p\" ] } }", `{"a":1}`, `{}`}

func TestValidFromInput(t *testing.T) {
	for _, s := range validSeeds {
		checkValid(t, []byte(s))
	}
	in, _ := ReadInput([]byte(`{"params":{"arguments":{"a":{"b":{}}}}}`), 0)
	p, _ := in.Valid("params")
	args, _ := p.Member("arguments")
	if args.Depth() != 3 || string(args.Bytes()) != `{"a":{"b":{}}}` {
		t.Fatalf("arguments: %q depth %d, want depth 3", args.Bytes(), args.Depth())
	}
	if (Valid{}).Is(nil) || (Valid{}).Bytes() != nil {
		t.Fatal("the zero Valid proves something")
	}
}

func FuzzValid(f *testing.F) {
	for _, s := range validSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(checkValid)
}

func TestObjectBuilder(t *testing.T) {
	args, err := Check([]byte(` {"q":[[1]]} `), 0)
	if err != nil {
		t.Fatal(err)
	}
	var o ObjectBuilder
	o.Start([]byte("x"))
	o.String("name", "t\"ool\u2028")
	o.Value("arguments", args)
	o.Begin("_meta")
	o.String("progressToken", "p")
	o.String("name", "again in another object")
	o.End()
	v, err := o.Finish()
	want := `{"name":"t\"ool\u2028","arguments":{"q":[[1]]},"_meta":{"progressToken":"p","name":"again in another object"}}`
	if err != nil || string(v.Bytes()) != want {
		t.Fatalf("built %q, %v; want %q", v.Bytes(), err, want)
	}
	if v.Depth() != 4 || Validate(v.Bytes(), v.Depth()) != nil {
		t.Fatalf("depth %d", v.Depth())
	}
	for _, build := range []func(*ObjectBuilder){
		func(o *ObjectBuilder) { o.String("a", "1"); o.String("a", "2") },
		func(o *ObjectBuilder) { o.Value("a", Valid{}) },
		func(o *ObjectBuilder) { o.Begin("a") },
		func(o *ObjectBuilder) { o.End() },
	} {
		var o ObjectBuilder
		o.Start(nil)
		build(&o)
		if _, err := o.Finish(); !errors.Is(err, ErrBuild) {
			t.Errorf("Finish = %v, want ErrBuild", err)
		}
	}
}
