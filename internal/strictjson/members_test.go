package strictjson

import (
	"reflect"
	"testing"
)

var membersSeeds = []string{
	`{"name":"files__echo","arguments":{"a":[1,{"b":"}\"]"}],"c":null},"_meta":{"progressToken":7}}`,
	` { "a" : 1 , "b" : "x" } `, `{}`, `{"a\u0062":1,"ab":2}`, `{"a\"b":1}`, `{"a":"\\"}`,
	`{"n":-1.5e3,"t":true,"f":false,"z":null,"s":"é\u2028"}`, `{"a":[]}`, `{"a":{}}`, `[1]`, `"x"`,
	`{"\ud800":1,"\udc00":2}`,
}

// checkMembers: on every document Object accepts as an object, Members
// returns the same members (and on anything else it does not panic).
func checkMembers(t *testing.T, doc []byte) {
	t.Helper()
	_, _ = Members(doc) // never panics, whatever it is given
	want, err := Object(doc, 0)
	if err != nil {
		return
	}
	got, err := Members(doc)
	if err != nil {
		t.Fatalf("%q: Object accepts it, Members says %v", doc, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("%q:\n Members %q\n Object  %q", doc, got, want)
	}
}

func TestMembersMatchesObject(t *testing.T) {
	for _, s := range membersSeeds {
		checkMembers(t, []byte(s))
	}
	if _, err := Members([]byte(`[1]`)); err == nil {
		t.Fatal("Members accepted an array")
	}
}

func FuzzMembers(f *testing.F) {
	for _, s := range membersSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) { checkMembers(t, doc) })
}
