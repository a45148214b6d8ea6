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
	buf  []byte
}

// canonicalize returns the canonical JSON and its policyHash for v, a tree
// of map[string]any, []any, []string, string, bool, int, int64, float64 and
// json.Number.
func canonicalize(v any) ([]byte, string, error) {
	e := &canonicalEncoder{coll: collate.New(language.AmericanEnglish)}
	if err := e.encode(v); err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(e.buf)
	return e.buf, hex.EncodeToString(sum[:]), nil
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
		e.buf = append(e.buf, "null"...)
	case bool:
		e.buf = strconv.AppendBool(e.buf, x)
	case string:
		e.buf = strictjson.AppendJSStringUTF8(e.buf, x)
	case int:
		e.buf = strconv.AppendInt(e.buf, int64(x), 10)
	case int64:
		e.buf = strconv.AppendInt(e.buf, x, 10)
	case float64:
		e.buf = append(e.buf, jsNumber(x)...)
	case json.Number:
		f, err := x.Float64()
		if err != nil {
			return fmt.Errorf("canonical json: number %q: %v", x, err)
		}
		e.buf = append(e.buf, jsNumber(f)...)
	case []string:
		items := make([]any, len(x))
		for i, s := range x {
			items[i] = s
		}
		return e.encode(items)
	case []any:
		e.buf = append(e.buf, '[')
		for i, el := range x {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			if err := e.encode(el); err != nil {
				return err
			}
		}
		e.buf = append(e.buf, ']')
	case map[string]any:
		e.buf = append(e.buf, '{')
		for i, k := range slices.SortedFunc(maps.Keys(x), e.less) {
			if i > 0 {
				e.buf = append(e.buf, ',')
			}
			e.buf = strictjson.AppendJSStringUTF8(e.buf, k)
			e.buf = append(e.buf, ':')
			if err := e.encode(x[k]); err != nil {
				return err
			}
		}
		e.buf = append(e.buf, '}')
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
