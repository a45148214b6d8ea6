package strictjson

import (
	"bytes"
	"encoding/json"
)

// Members returns the members of an object that Validate or Object has
// already accepted (as part of a larger document is fine), exactly as
// Object would return them, without validating it again: a tools/call's
// params are checked with the whole message and then split, which was a
// second strict pass per call (issue 7). A key with an escape in it, and
// anything that is not a well-formed object after all, goes through
// Object. Members is safe for concurrent use; the values alias data.
func Members(data []byte) (map[string]json.RawMessage, error) {
	i := skipWS(data, 0)
	if i >= len(data) || data[i] != '{' {
		return Object(data, 0)
	}
	members := make(map[string]json.RawMessage)
	i = skipWS(data, i+1)
	if i < len(data) && data[i] == '}' {
		if skipWS(data, i+1) != len(data) {
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
		i = skipWS(data, i+end+2)
		if i >= len(data) || data[i] != ':' {
			return Object(data, 0)
		}
		start := skipWS(data, i+1)
		stop := skipValue(data, start)
		if stop <= start {
			return Object(data, 0)
		}
		if _, dup := members[string(key)]; dup {
			return Object(data, 0)
		}
		members[string(key)] = data[start:stop:stop]
		i = skipWS(data, stop)
		if i >= len(data) {
			return Object(data, 0)
		}
		switch data[i] {
		case ',':
			i = skipWS(data, i+1)
		case '}':
			if skipWS(data, i+1) != len(data) {
				return Object(data, 0)
			}
			return members, nil
		default:
			return Object(data, 0)
		}
	}
}

func skipWS(data []byte, i int) int {
	for i < len(data) && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r') {
		i++
	}
	return i
}

// skipValue returns the end of the value starting at i in valid JSON, or i
// when there is none.
func skipValue(data []byte, i int) int {
	if i >= len(data) {
		return i
	}
	switch data[i] {
	case '"':
		return skipString(data, i)
	case '{', '[':
		depth := 0
		for j := i; j < len(data); j++ {
			switch data[j] {
			case '"':
				j = skipString(data, j) - 1
				if j < 0 {
					return i
				}
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return j + 1
				}
			}
		}
		return i
	}
	j := i
	for j < len(data) && data[j] != ',' && data[j] != '}' && data[j] != ']' && data[j] != ' ' && data[j] != '\t' && data[j] != '\n' && data[j] != '\r' {
		j++
	}
	return j
}

// skipString returns the end of the string starting at i, or 0 when it is
// not terminated.
func skipString(data []byte, i int) int {
	for j := i + 1; j < len(data); j++ {
		switch data[j] {
		case '\\':
			j++
		case '"':
			return j + 1
		}
	}
	return 0
}
