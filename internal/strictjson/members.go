package strictjson

import (
	"bytes"
	"encoding/json"
)

// Members returns the members of an object that Validate or Object has
// already accepted (as part of a larger document is fine), exactly as
// Object would return them, without validating it again: a tools/call's
// params are checked with the whole message and then split, which was a
// second strict pass on every call. A key with an escape in it, and
// anything that is not a well-formed object after all, goes through
// Object. Members is safe for concurrent use; the values alias data.
func Members(data []byte) (map[string]json.RawMessage, error) {
	members := make(map[string]json.RawMessage)
	dup := false
	if !EachMember(data, func(key []byte, value json.RawMessage) {
		if _, seen := members[string(key)]; seen {
			dup = true
		}
		members[string(key)] = value
	}) || dup {
		return Object(data, 0)
	}
	return members, nil
}

// EachMember calls fn with each member of an object that Validate or Object
// has already accepted, in order, without validating it again and without
// building anything: key aliases data (unescaped names only) and is valid
// during the call, value is the member's byte-exact slice. It reports false,
// possibly after some calls, when a name holds an escape or data is not a
// well-formed object after all; the caller then reads data another way
// (Object). It does not look for repeated names.
func EachMember(data []byte, fn func(key []byte, value json.RawMessage)) bool {
	i := SkipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return false
	}
	i = SkipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return SkipSpace(data, i+1) == len(data)
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return false
		}
		end := bytes.IndexByte(data[i+1:], '"')
		if end < 0 {
			return false
		}
		key := data[i+1 : i+1+end]
		if bytes.IndexByte(key, '\\') >= 0 {
			return false // escapes: Object's unescaping rules
		}
		i = SkipSpace(data, i+end+2)
		if i >= len(data) || data[i] != ':' {
			return false
		}
		start := SkipSpace(data, i+1)
		stop := SkipValue(data, start)
		if stop <= start {
			return false
		}
		fn(key, data[start:stop:stop])
		i = SkipSpace(data, stop)
		if i >= len(data) {
			return false
		}
		switch data[i] {
		case ',':
			i = SkipSpace(data, i+1)
		case '}':
			return SkipSpace(data, i+1) == len(data)
		default:
			return false
		}
	}
}

// SkipSpace returns the index of the first byte at or after i in b that is
// not JSON whitespace.
func SkipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// SkipString returns the index just past the JSON string starting at b[i]
// ('"'), or len(b) when it is not terminated.
func SkipString(b []byte, i int) int {
	for i++; i < len(b); i++ {
		switch b[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(b)
}

// SkipValue returns the index just past the value starting at b[i] in a
// document Validate has accepted (i itself where no value starts there).
// On anything else it returns some index in [i, len(b)] without panicking.
func SkipValue(b []byte, i int) int {
	if i >= len(b) {
		return i
	}
	switch b[i] {
	case '"':
		return SkipString(b, i)
	case '{', '[':
		depth := 0
		for i < len(b) {
			switch b[i] {
			case '"':
				i = SkipString(b, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	}
	for i < len(b) && b[i] != ',' && b[i] != '}' && b[i] != ']' && b[i] != ' ' && b[i] != '\t' && b[i] != '\n' && b[i] != '\r' {
		i++
	}
	return i
}
