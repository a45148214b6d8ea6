package hub

import (
	"encoding/json"
	"iter"
	"sort"

	"github.com/sigilcore/sigil-hub/front"
	"github.com/sigilcore/sigil-hub/internal/strictjson"
)

// Raw-JSON edits of upstream messages: every byte the upstream sent is kept
// but for the one member the hub rewrites.

// encodeObject builds a JSON object from raw members, every value byte for
// byte (encoding/json would compact and re-escape json.RawMessage values).
// Keys are sorted so the output is deterministic.
func encodeObject(members map[string]json.RawMessage) []byte {
	keys := make([]string, 0, len(members))
	n := 2
	for k, v := range members {
		keys = append(keys, k)
		n += len(k) + len(v) + 4
	}
	sort.Strings(keys)
	b := make([]byte, 0, n)
	b = append(b, '{')
	for i, k := range keys {
		if i > 0 {
			b = append(b, ',')
		}
		b = strictjson.AppendString(b, k)
		b = append(b, ':')
		b = append(b, members[k]...)
	}
	return append(b, '}')
}

// findMember locates member name of obj, a JSON object: obj[start:end] is
// its value, start and end are -1 when it is absent. ok is false when obj
// is not an object strictjson accepts, or holds the name written otherwise
// (escaped, or in another case: a reader matching names case-insensitively
// could take that member for it), so that the member rewritten is the one
// every reader reads.
func findMember(obj []byte, name string) (start, end int, ok bool) {
	if strictjson.ValidateObject(obj, front.MaxDepth) != nil {
		return -1, -1, false
	}
	start, end = -1, -1
	for key, v := range members(obj) {
		if k, _ := strictjson.DecodeString(key); strictjson.SameName(k, name) {
			if start >= 0 || string(key[1:len(key)-1]) != name {
				return -1, -1, false
			}
			start, end = v[0], v[1]
		}
	}
	return start, end, true
}

// members yields the members of obj, a valid JSON object, in order: each
// name as written (a string token, quotes and escapes included) and the
// span of its value in obj.
func members(obj []byte) iter.Seq2[[]byte, [2]int] {
	return func(yield func([]byte, [2]int) bool) {
		i := strictjson.SkipSpace(obj, strictjson.SkipSpace(obj, 0)+1) // past '{'
		for i < len(obj) && obj[i] == '"' {
			kEnd := strictjson.SkipString(obj, i)
			vStart := strictjson.SkipSpace(obj, strictjson.SkipSpace(obj, kEnd)+1) // past ':'
			vEnd := strictjson.SkipValue(obj, vStart)
			if !yield(obj[i:kEnd], [2]int{vStart, vEnd}) {
				return
			}
			i = strictjson.SkipSpace(obj, vEnd)
			if i < len(obj) && obj[i] == ',' {
				i = strictjson.SkipSpace(obj, i+1)
			}
		}
	}
}

// setMember returns obj with member name's value replaced by value, every
// other byte as it was; when absent, the member is added first. ok is false
// (and obj returned as it is) when findMember refuses obj.
func setMember(obj []byte, name string, value []byte) ([]byte, bool) {
	start, end, ok := findMember(obj, name)
	if !ok {
		return obj, false
	}
	if start < 0 {
		open := strictjson.SkipSpace(obj, 0) + 1
		head := strictjson.AppendString(append([]byte(nil), obj[:open]...), name)
		head = append(append(head, ':'), value...)
		if rest := obj[open:]; strictjson.SkipSpace(rest, 0) < len(rest) && rest[strictjson.SkipSpace(rest, 0)] != '}' {
			head = append(head, ',')
		}
		return append(head, obj[open:]...), true
	}
	out := make([]byte, 0, len(obj)-(end-start)+len(value))
	out = append(append(append(out, obj[:start]...), value...), obj[end:]...)
	return out, true
}

// setMetaMember returns obj with member key of its _meta set to value (a
// _meta that is absent or not an object is replaced by one); ok is false
// when setMember refuses obj or its _meta.
func setMetaMember(obj []byte, key string, value []byte) ([]byte, bool) {
	meta := []byte("{}")
	if start, end, ok := findMember(obj, "_meta"); ok && start >= 0 && obj[start] == '{' {
		meta = obj[start:end]
	}
	meta, ok := setMember(meta, key, value)
	if !ok {
		return obj, false
	}
	return setMember(obj, "_meta", meta)
}
