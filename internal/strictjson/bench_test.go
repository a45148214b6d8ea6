package strictjson_test

import (
	"strings"
	"testing"

	"github.com/sigilcore/sigil-hub/internal/strictjson"
)

// benchDoc is shaped like a tools/call request with a few kB of arguments.
func benchDoc(n int) []byte {
	var b strings.Builder
	b.WriteString(`{"jsonrpc":"2.0","id":42,"method":"tools/call","params":{"name":"github__create_issue","arguments":{`)
	for i := range n {
		if i > 0 {
			b.WriteString(",")
		}
		b.WriteString(`"field_`)
		b.WriteString(itoa(i))
		b.WriteString(`":{"title":"Fix the build on main \u00e9 café","labels":["bug","p1"],"count":12345,"ratio":-0.25e-3,"ok":true,"none":null}`)
	}
	b.WriteString(`}}}`)
	return []byte(b.String())
}

func BenchmarkValidate(b *testing.B) {
	for _, tc := range []struct {
		name string
		n    int
	}{{"2KB", 15}, {"100KB", 800}} {
		doc := benchDoc(tc.n)
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(doc)))
			b.ReportAllocs()
			for b.Loop() {
				if err := strictjson.Validate(doc, 32); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkObject(b *testing.B) {
	doc := benchDoc(15)
	b.SetBytes(int64(len(doc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := strictjson.Object(doc, 32); err != nil {
			b.Fatal(err)
		}
	}
}
