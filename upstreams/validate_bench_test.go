package upstreams

import (
	"encoding/json"
	"strings"
	"testing"
)

// BenchmarkParamsValid measures the check Call runs on the params it is
// given (it runs on every call): a tools/call of about 2 kB.
func BenchmarkParamsValid(b *testing.B) {
	params := []byte(`{"name":"create_issue","arguments":{"owner":"sigilcore","repo":"sigil-hub","title":"Fix the build <now> & then","body":"` +
		strings.Repeat("lorem ipsum é ", 120) + `","labels":["bug","p1"],"n":12.5}}`)
	for _, tc := range []struct {
		name  string
		valid func([]byte) bool
	}{{"json.Valid", json.Valid}, {"validJSON", validJSON}} {
		b.Run(tc.name, func(b *testing.B) {
			b.SetBytes(int64(len(params)))
			b.ReportAllocs()
			for b.Loop() {
				if !tc.valid(params) {
					b.Fatal("invalid")
				}
			}
		})
	}
}
