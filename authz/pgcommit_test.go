package authz_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"github.com/sigilcore/sigil-hub/internal/vectors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sigilcore/sigil-hub/authz"
	"github.com/sigilcore/sigil-hub/internal/strictjson"
)

func pgcVectorsDir(t testing.TB) string { return vectors.Dir(t) }

func pgcReadJSON(t *testing.T, path string, into any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Skipf("vector file not available: %v", err)
	}
	if err := json.Unmarshal(data, into); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

func TestPgCommitVectors(t *testing.T) {
	var file struct {
		Vectors []struct {
			ID            string          `json:"id"`
			Intent        json.RawMessage `json:"intent"`
			CanonicalJSON string          `json:"canonicalJson"`
			SHA256        string          `json:"sha256"`
		} `json:"vectors"`
		Rejections []struct {
			ID string `json:"id"`
		} `json:"rejections"`
	}
	pgcReadJSON(t, filepath.Join(pgcVectorsDir(t), "warrant-core", "pg-commit-v1.json"), &file)
	if len(file.Vectors) == 0 {
		t.Fatal("no vectors in pg-commit-v1.json")
	}
	for _, v := range file.Vectors {
		t.Run(v.ID, func(t *testing.T) {
			got, err := authz.CanonicalPgCommitV1(v.Intent)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != v.CanonicalJSON {
				t.Errorf("canonical\n got %s\nwant %s", got, v.CanonicalJSON)
			}
			commit, err := authz.TxCommit(v.Intent)
			if err != nil || commit != v.SHA256 {
				t.Errorf("TxCommit = %q, %v; want %q", commit, err, v.SHA256)
			}
		})
	}

	// The rejection vectors describe JavaScript runtime values. Those a raw
	// JSON document can express are tested here; the rest cannot occur in
	// input that has been through a JSON parser:
	//   undefined, bigint, function, symbol, cyclic, non-plain-object,
	//   symbol-keyed-object-property, non-enumerable-object-property,
	//   accessor-property, sparse-array, non-index-array-property,
	//   non-enumerable-array-property, non-plain-array,
	//   symbol-keyed-array-property: N/A (no JSON spelling).
	rawCases := map[string][]string{
		"non-finite-nan":      {`{"value":NaN}`},
		"non-finite-infinity": {`{"value":Infinity}`, `{"value":1e400}`, `{"value":-1e400}`, `[1.8e308]`},
	}
	na := map[string]bool{
		"undefined": true, "bigint": true, "function": true, "symbol": true, "cyclic": true,
		"non-plain-object": true, "symbol-keyed-object-property": true,
		"non-enumerable-object-property": true, "accessor-property": true, "sparse-array": true,
		"non-index-array-property": true, "non-enumerable-array-property": true,
		"non-plain-array": true, "symbol-keyed-array-property": true,
	}
	for _, r := range file.Rejections {
		cases, ok := rawCases[r.ID]
		if !ok {
			if !na[r.ID] {
				t.Errorf("rejection vector %q is new: decide whether raw JSON can express it", r.ID)
			}
			continue
		}
		for _, in := range cases {
			if got, err := authz.CanonicalPgCommitV1([]byte(in)); err == nil {
				t.Errorf("rejection %s: CanonicalPgCommitV1(%s) = %s, want error", r.ID, in, got)
			}
		}
	}
}

func TestPgCommitLaunchScenarios(t *testing.T) {
	var file struct {
		Vectors []struct {
			ID      string `json:"id"`
			Request struct {
				TxCommit string          `json:"txCommit"`
				Intent   json.RawMessage `json:"intent"`
			} `json:"request"`
			CanonicalIntentJSON string `json:"canonicalIntentJson"`
			TxCommitSHA256      string `json:"txCommitSha256"`
		} `json:"vectors"`
	}
	pgcReadJSON(t, filepath.Join(pgcVectorsDir(t), "warrant-core", "launch-scenarios.json"), &file)
	if len(file.Vectors) == 0 {
		t.Fatal("no vectors in launch-scenarios.json")
	}
	for _, v := range file.Vectors {
		t.Run(v.ID, func(t *testing.T) {
			got, err := authz.CanonicalPgCommitV1(v.Request.Intent)
			if err != nil {
				t.Fatal(err)
			}
			if string(got) != v.CanonicalIntentJSON {
				t.Errorf("canonical\n got %s\nwant %s", got, v.CanonicalIntentJSON)
			}
			commit, err := authz.TxCommit(v.Request.Intent)
			if err != nil || commit != v.TxCommitSHA256 || commit != v.Request.TxCommit {
				t.Errorf("TxCommit = %q, %v; want %q (request %q)", commit, err, v.TxCommitSHA256, v.Request.TxCommit)
			}
		})
	}
}

// TestPgCommitNumbers pins ECMAScript Number::toString after JSON.parse.
// Expected values were produced by node: JSON.stringify(JSON.parse(in)).
func TestPgCommitNumbers(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"0", "0"},
		{"-0", "0"},
		{"-0.0", "0"},
		{"1", "1"},
		{"-1", "-1"},
		{"1.0", "1"},
		{"1E2", "100"},
		{"100", "100"},
		{"0.5", "0.5"},
		{"1.25", "1.25"},
		{"4.35", "4.35"},
		{"25.5e-1", "2.55"},
		{"0.1", "0.1"},
		{"0.30000000000000004", "0.30000000000000004"},
		{"1e20", "100000000000000000000"},
		{"1e21", "1e+21"},
		{"1e+21", "1e+21"},
		{"999999999999999999999", "1e+21"},
		{"9.999999999999999e20", "999999999999999900000"},
		{"123456789012345678901", "123456789012345680000"},
		{"12345678901234567890", "12345678901234567000"},
		{"9007199254740993", "9007199254740992"},
		{"1.2345e+30", "1.2345e+30"},
		{"1e-6", "0.000001"},
		{"0.000001", "0.000001"},
		{"1e-7", "1e-7"},
		{"0.0000001234", "1.234e-7"},
		{"-1.5e-9", "-1.5e-9"},
		{"123e-20", "1.23e-18"},
		{"5e-324", "5e-324"},
		{"2.5e-324", "5e-324"},
		{"1.7976931348623157e308", "1.7976931348623157e+308"},
		{"1e-400", "0"},
		{"-1e-400", "0"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := authz.CanonicalPgCommitV1([]byte(tc.in))
			if err != nil || string(got) != tc.want {
				t.Errorf("CanonicalPgCommitV1(%s) = %s, %v; want %s", tc.in, got, err, tc.want)
			}
		})
	}
}

// TestPgCommitStrings pins JSON.stringify string escaping. Expected values
// were produced by node: JSON.stringify(JSON.parse(in)).
func TestPgCommitStrings(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"controls", `"\u0000\u001f\u007f\u001B"`, "\"\\u0000\\u001f\x7f\\u001b\""},
		{"short escapes", `"\b\f\n\r\t\"\\\/"`, `"\b\f\n\r\t\"\\/"`},
		{"html and line separators raw", `"<>&\u2028\u2029"`, "\"<>&\u2028\u2029\""},
		{"raw line separator stays raw", "\"\u2028\"", "\"\u2028\""},
		{"lone high surrogate", `"\ud800"`, `"\ud800"`},
		{"lone surrogate uppercase escape", `"\uDABC"`, `"\udabc"`},
		{"reversed pair stays escaped", `"\udc00\ud800"`, `"\udc00\ud800"`},
		{"escaped pair becomes raw", `"a\ud83d\ude00b"`, `"a😀b"`},
		{"highest code point", `"\uDBFF\uDFFF"`, "\"\U0010FFFF\""},
		{"escaped non-ascii", `"\u00E9"`, `"é"`},
		{"BOM character", `"\uFEFF"`, "\"\uFEFF\""},
		{"raw non-ascii", `"café Ω 😀"`, `"café Ω 😀"`},
		{"keys escaped the same way", `{"\u00e9\n":"\ud800"}`, `{"é\n":"\ud800"}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := authz.CanonicalPgCommitV1([]byte(tc.in))
			if err != nil || string(got) != tc.want {
				t.Errorf("CanonicalPgCommitV1(%s)\n got %q, %v\nwant %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestPgCommitStructure(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"whitespace removed", " { \"b\" : [ 1 , 2 ] ,\n\"a\" : { } } ", `{"a":{},"b":[1,2]}`},
		{"nested sort", `{"z":{"y":1,"x":[{"b":1,"a":2}]},"a":null}`, `{"a":null,"z":{"x":[{"a":2,"b":1}],"y":1}}`},
		{"utf16 order not utf8 order", `{"\uff61":1,"\ud800\udc00":2,"~":3}`, `{"~":3,"𐀀":2,"｡":1}`},
		{"lone surrogate sorts by code unit", `{"\ud800x":1,"\ud800\udc00":2,"\ud7ff":3}`, "{\"\ud7ff\":3,\"\\ud800x\":1,\"𐀀\":2}"},
		{"uppercase before lowercase", `{"b":1,"B":2,"a":3,"A":4}`, `{"A":4,"B":2,"a":3,"b":1}`},
		{"prefix first", `{"ab":1,"a":2,"":3}`, `{"":3,"a":2,"ab":1}`},
		{"literals", `[true,false,null]`, `[true,false,null]`},
		{"scalar root", ` "x" `, `"x"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := authz.CanonicalPgCommitV1([]byte(tc.in))
			if err != nil || string(got) != tc.want {
				t.Errorf("CanonicalPgCommitV1(%s)\n got %s, %v\nwant %s", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestPgCommitRejects(t *testing.T) {
	for _, tc := range []struct{ name, in string }{
		{"duplicate key", `{"a":1,"a":2}`},
		{"duplicate key via escape", `{"a":{"é":1,"\u00e9":2}}`},
		{"invalid utf-8", "{\"a\":\"\xff\"}"},
		{"invalid json", `{"a":}`},
		{"trailing data", `{} x`},
		{"empty", ``},
		{"overflow", `{"a":[1e999]}`},
		{"NaN literal", `NaN`},
		{"too deep", strings.Repeat("[", 65) + strings.Repeat("]", 65)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got, err := authz.CanonicalPgCommitV1([]byte(tc.in)); err == nil {
				t.Errorf("CanonicalPgCommitV1(%q) = %s, want error", tc.in, got)
			}
			if got, err := authz.TxCommit([]byte(tc.in)); err == nil || got != "" {
				t.Errorf("TxCommit(%q) = %q, %v; want error", tc.in, got, err)
			}
		})
	}
	if _, err := authz.CanonicalPgCommitV1([]byte(strings.Repeat("[", 64) + strings.Repeat("]", 64))); err != nil {
		t.Errorf("depth 64 rejected: %v", err)
	}
}

func TestTxCommitIsSHA256OfCanonical(t *testing.T) {
	in := []byte(`{"b":1,"a":"x"}`)
	sum := sha256.Sum256([]byte(`{"a":"x","b":1}`))
	got, err := authz.TxCommit(in)
	if err != nil || got != hex.EncodeToString(sum[:]) {
		t.Fatalf("TxCommit = %q, %v", got, err)
	}
}

// FuzzPgCommit checks that canonical output is valid, strict JSON and a
// fixed point of the canonicalization.
func FuzzPgCommit(f *testing.F) {
	for _, s := range []string{
		`{"z":1,"a":"two","nested":{"beta":true,"alpha":null}}`,
		`{"negativeZero":-0,"decimal":1.25,"big":12345678901234567890,"tiny":1e-7,"e":1e21}`,
		`{"é":"café","Ω":"π","note":"\u2028","\ue000":1,"\ud800\udc00":2,"😀":3}`,
		`["\ud800","\udc00\ud800","\u0000\u001f<>&","\"\\\/\b\f\n\r\t"]`,
		`{"a":[{"z":1,"a":2},{"b":3,"a":4}],"":[]}`,
		`1e400`, `{"a":1,"a":2}`, `-0.0e-0`, `[[[]]]`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := authz.CanonicalPgCommitV1(in)
		if err != nil {
			return
		}
		if !json.Valid(out) {
			t.Fatalf("canonical output of %q is not valid JSON: %q", in, out)
		}
		if err := strictjson.Validate(out, 64); err != nil {
			t.Fatalf("canonical output of %q is not strict JSON: %q: %v", in, out, err)
		}
		again, err := authz.CanonicalPgCommitV1(out)
		if err != nil {
			t.Fatalf("canonical output %q rejected: %v", out, err)
		}
		if !bytes.Equal(again, out) {
			t.Fatalf("not a fixed point:\n in  %q\n out %q\n again %q", in, out, again)
		}
	})
}

func BenchmarkTxCommit(b *testing.B) {
	in := []byte(`{"action":"mcp.github.create_issue","task_id":"abc","metadata":{"serverId":"github","toolName":"create_issue","arguments":{"owner":"sigilcore","repo":"sigil-hub","title":"Fix the build <now> & then","body":"` + strings.Repeat("lorem ipsum é ", 100) + `","labels":["bug","p1"],"n":12.5}}}`)
	b.SetBytes(int64(len(in)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := authz.TxCommit(in); err != nil {
			b.Fatal(err)
		}
	}
}
