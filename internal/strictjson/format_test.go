package strictjson

import (
	"bytes"
	"encoding/json"
	"math"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"
	"unicode/utf8"
)

// marshalNoEscape is what AppendString must equal.
func marshalNoEscape(s string) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	return bytes.TrimSuffix(b.Bytes(), []byte("\n"))
}

var stringSeeds = []string{"", "plain", `a"b\c`, "\x00\x01\b\f\n\r\t\x1f\x7f", "<>&", "é café 😀",
	"\u2028\u2029", "\xff\xfe bad", "a\xe2\x80", "\ud7ff\ue000"}

func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	for _, s := range stringSeeds {
		if got, want := AppendString(nil, s), marshalNoEscape(s); !bytes.Equal(got, want) {
			t.Errorf("AppendString(%q) = %s, encoding/json writes %s", s, got, want)
		}
	}
}

func FuzzAppendString(f *testing.F) {
	for _, s := range stringSeeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := AppendString([]byte("x"), s), append([]byte("x"), marshalNoEscape(s)...); !bytes.Equal(got, want) {
			t.Fatalf("AppendString(%q) = %s, encoding/json writes %s", s, got, want)
		}
		if !utf8.ValidString(s) {
			return
		}
		// For well-formed text the UTF-8 and UTF-16 JSON.stringify forms agree.
		if a, b := AppendJSStringUTF8(nil, s), AppendJSString(nil, utf16.Encode([]rune(s))); !bytes.Equal(a, b) {
			t.Fatalf("AppendJSStringUTF8(%q) = %s, AppendJSString = %s", s, a, b)
		}
	})
}

func TestAppendJSNumber(t *testing.T) {
	// What JavaScript's String(x) prints for each.
	for f, want := range map[float64]string{
		0: "0", math.Copysign(0, -1): "0", 1: "1", -1.5: "-1.5", 100: "100", 0.1: "0.1",
		1e21: "1e+21", 1e20: "100000000000000000000", 123456789012345680000: "123456789012345680000",
		1e-6: "0.000001", 1e-7: "1e-7", 1.5e-7: "1.5e-7", -2.5e-10: "-2.5e-10", 1.7976931348623157e308: "1.7976931348623157e+308",
		5e-324: "5e-324", 9007199254740993: "9007199254740992", 0.000123: "0.000123", 12.5: "12.5",
	} {
		if got := string(AppendJSNumber(nil, f)); got != want {
			t.Errorf("AppendJSNumber(%v) = %s, JavaScript writes %s", f, got, want)
		}
	}
}

// FuzzAppendJSNumber checks the result against a second reading of the
// rules built on strconv's fixed and exponent forms.
func FuzzAppendJSNumber(f *testing.F) {
	for _, x := range []float64{0, 1, 1e21, 1e-7, 123.456, 5e-324, math.MaxFloat64} {
		f.Add(x)
	}
	f.Fuzz(func(t *testing.T, x float64) {
		if math.IsNaN(x) || math.IsInf(x, 0) {
			return
		}
		want := "0"
		if abs := math.Abs(x); x != 0 && abs >= 1e-6 && abs < 1e21 {
			want = strconv.FormatFloat(x, 'f', -1, 64)
		} else if x != 0 {
			mant, exp, _ := strings.Cut(strconv.FormatFloat(x, 'e', -1, 64), "e")
			sign, digits := exp[:1], strings.TrimLeft(exp[1:], "0")
			want = mant + "e" + sign + digits
		}
		if got := string(AppendJSNumber(nil, x)); got != want {
			t.Fatalf("AppendJSNumber(%v) = %s, want %s", x, got, want)
		}
	})
}
