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
	i := SkipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return Object(data, 0)
	}
	members := make(map[string]json.RawMessage)
	i = SkipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		if SkipSpace(data, i+1) != len(data) {
			return Object(data, 0)
		}
		return members, nil
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return Object(data, 0)
		}
		end := bytes.IndexByte(data[i+1:], '"')
		if end < 0 {
			return Object(data, 0)
		}
		key := data[i+1 : i+1+end]
		if bytes.IndexByte(key, '\\') >= 0 {
			return Object(data, 0) // escapes: Object's unescaping rules
		}
		i = SkipSpace(data, i+end+2)
		if i >= len(data) || data[i] != ':' {
			return Object(data, 0)
		}
		start := SkipSpace(data, i+1)
		stop := SkipValue(data, start)
		if stop <= start {
			return Object(data, 0)
		}
		if _, dup := members[string(key)]; dup {
			return Object(data, 0)
		}
		members[string(key)] = data[start:stop:stop]
		i = SkipSpace(data, stop)
		if i >= len(data) {
			return Object(data, 0)
		}
		switch data[i] {
		case ',':
			i = SkipSpace(data, i+1)
		case '}':
			if SkipSpace(data, i+1) != len(data) {
				return Object(data, 0)
			}
			return members, nil
		default:
			return Object(data, 0)
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
