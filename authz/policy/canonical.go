package policy

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"unicode/utf16"

	"github.com/sigilcore/sigil-hub/internal/strictjson"
	"golang.org/x/text/collate"
	"golang.org/x/text/language"
)

// canonicalEncoder serialises a canonical policy tree the way warrant-core's
// canonical.ts does (docs/protocol.md#the-embedded-policy): compact JSON,
// object keys ordered by ICU en-US collation (JS localeCompare) with UTF-16
// order breaking ties, strings and numbers as JS JSON.stringify writes them.
// A collator is not safe for concurrent use, so each encoder owns one.
type canonicalEncoder struct {
	coll *collate.Collator
	buf  strings.Builder
}

func newCanonicalEncoder() *canonicalEncoder {
	return &canonicalEncoder{coll: collate.New(language.AmericanEnglish)}
}

// canonicalize returns the canonical JSON and its policyHash for v, a tree
// of map[string]any, []any, []string, string, bool, int, int64, float64 and
// json.Number.
func canonicalize(v any) ([]byte, string, error) {
	e := newCanonicalEncoder()
	if err := e.encode(v); err != nil {
		return nil, "", err
	}
	out := []byte(e.buf.String())
	sum := sha256.Sum256(out)
	return out, hex.EncodeToString(sum[:]), nil
}

func (e *canonicalEncoder) less(a, b string) int {
	if c := e.coll.CompareString(a, b); c != 0 {
		return c
	}
	return slices.Compare(utf16.Encode([]rune(a)), utf16.Encode([]rune(b)))
}

func (e *canonicalEncoder) encode(v any) error {
	switch x := v.(type) {
	case nil:
		e.buf.WriteString("null")
	case bool:
		e.buf.WriteString(strconv.FormatBool(x))
	case string:
		writeJSString(&e.buf, x)
	case int:
		e.buf.WriteString(strconv.Itoa(x))
	case int64:
		e.buf.WriteString(strconv.FormatInt(x, 10))
	case float64:
		e.buf.WriteString(jsNumber(x))
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return fmt.Errorf("canonical json: number %q: %v", x, err)
		}
		e.buf.WriteString(jsNumber(f))
	case []string:
		items := make([]any, len(x))
		for i, s := range x {
			items[i] = s
		}
		return e.encode(items)
	case []any:
		e.buf.WriteByte('[')
		for i, el := range x {
			if i > 0 {
				e.buf.WriteByte(',')
			}
			if err := e.encode(el); err != nil {
				return err
			}
		}
		e.buf.WriteByte(']')
	case map[string]any:
		e.buf.WriteByte('{')
		for i, k := range slices.SortedFunc(maps.Keys(x), e.less) {
			if i > 0 {
				e.buf.WriteByte(',')
			}
			writeJSString(&e.buf, k)
			e.buf.WriteByte(':')
			if err := e.encode(x[k]); err != nil {
				return err
			}
		}
		e.buf.WriteByte('}')
	default:
		return fmt.Errorf("canonical json: unsupported type %T", v)
	}
	return nil
}

// jsNumber formats f as ECMAScript Number::toString does; non-finite
// numbers become null as in JSON.stringify.
func jsNumber(f float64) string {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return "null"
	}
	var b [32]byte
	return string(strictjson.AppendJSNumber(b[:0], f))
}

// writeJSString writes s as JSON.stringify does (strictjson.AppendJSStringUTF8).
func writeJSString(b *strings.Builder, s string) {
	var buf [64]byte
	b.Write(strictjson.AppendJSStringUTF8(buf[:0], s))
}
