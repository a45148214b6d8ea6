package importer

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// VS Code's settings.json and mcp.json are JSONC (comments, trailing
// commas), and people put comments in the other clients' files too. The
// files are cleaned into plain JSON of the same length — comments, trailing
// commas and a byte-order mark become spaces, line breaks stay — so that a
// byte offset in the clean text is the same offset in the file. That lets
// RewriteJSON splice the file in place and keep everything it does not
// rewrite byte for byte, comments included.

// cleanJSONC returns the same-length plain-JSON version of data.
func cleanJSONC(data []byte) []byte {
	out := bytes.Clone(data)
	if bytes.HasPrefix(out, []byte("\xef\xbb\xbf")) {
		copy(out, "   ")
	}
	blank := func(from, to int) {
		for k := from; k < to && k < len(out); k++ {
			if out[k] != '\n' && out[k] != '\r' {
				out[k] = ' '
			}
		}
	}
	inStr := false
	for i := 0; i < len(out); i++ {
		c := out[i]
		if inStr {
			switch c {
			case '\\':
				i++
			case '"':
				inStr = false
			}
			continue
		}
		switch {
		case c == '"':
			inStr = true
		case c == '/' && i+1 < len(out) && out[i+1] == '/':
			end := bytes.IndexByte(out[i:], '\n')
			if end < 0 {
				end = len(out) - i
			}
			blank(i, i+end)
			i += end - 1
		case c == '/' && i+1 < len(out) && out[i+1] == '*':
			end := bytes.Index(out[i+2:], []byte("*/"))
			if end < 0 {
				blank(i, len(out)) // unterminated: let the decoder complain about what is left
				i = len(out)
				break
			}
			blank(i, i+2+end+2)
			i += 2 + end + 1
		}
	}
	// Trailing commas: a ',' whose next significant byte closes the object
	// or array. Comments are spaces by now.
	inStr = false
	for i := 0; i < len(out); i++ {
		c := out[i]
		if inStr {
			switch c {
			case '\\':
				i++
			case '"':
				inStr = false
			}
			continue
		}
		if c == '"' {
			inStr = true
			continue
		}
		if c == ',' {
			j := skipSpace(out, i+1)
			if j < len(out) && (out[j] == '}' || out[j] == ']') {
				out[i] = ' '
			}
		}
	}
	return out
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// jsonError describes a JSON decoding error with its line and column.
func jsonError(clean []byte, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line, col := lineCol(clean, int(se.Offset))
		return fmt.Errorf("invalid JSON at line %d, column %d: %v", line, col, se)
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		line, col := lineCol(clean, int(te.Offset))
		return fmt.Errorf("invalid JSON at line %d, column %d: %s must not be a %s", line, col, pick(te.Field, "the file"), te.Value)
	}
	return fmt.Errorf("invalid JSON: %v", err)
}

func lineCol(b []byte, off int) (int, int) {
	off = min(max(off, 0), len(b))
	line := 1 + bytes.Count(b[:off], []byte("\n"))
	col := off - bytes.LastIndexByte(b[:off], '\n')
	return line, col
}

// member is one "key": value of a JSON object, located in the file.
type member struct {
	Key      string
	KeyStart int // the key's opening quote
	ValStart int // the value's first byte
	ValEnd   int // just after the value
}

// objectMembers returns the members of the JSON object whose '{' is at
// clean[start], and the offset just after its '}'.
func objectMembers(clean []byte, start int) ([]member, int, error) {
	if start >= len(clean) || clean[start] != '{' {
		return nil, 0, errors.New("not a JSON object")
	}
	dec := json.NewDecoder(bytes.NewReader(clean[start:]))
	if _, err := dec.Token(); err != nil {
		return nil, 0, err
	}
	var out []member
	for dec.More() {
		ks := start + int(dec.InputOffset())
		for ks < len(clean) && (clean[ks] == ',' || clean[ks] == ' ' || clean[ks] == '\t' || clean[ks] == '\n' || clean[ks] == '\r') {
			ks++
		}
		tok, err := dec.Token()
		if err != nil {
			return nil, 0, err
		}
		key, _ := tok.(string)
		vs := start + int(dec.InputOffset())
		for vs < len(clean) && (clean[vs] == ':' || clean[vs] == ' ' || clean[vs] == '\t' || clean[vs] == '\n' || clean[vs] == '\r') {
			vs++
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return nil, 0, err
		}
		out = append(out, member{Key: key, KeyStart: ks, ValStart: vs, ValEnd: start + int(dec.InputOffset())})
	}
	if _, err := dec.Token(); err != nil {
		return nil, 0, err
	}
	return out, start + int(dec.InputOffset()), nil
}

// findMember returns the member named key, or false.
func findMember(ms []member, key string) (member, bool) {
	for _, m := range ms {
		if m.Key == key {
			return m, true
		}
	}
	return member{}, false
}

// jsonHasTopKey reports whether data is a JSON(C) object with key at its
// top level.
func jsonHasTopKey(data []byte, key string) bool {
	clean := cleanJSONC(data)
	ms, _, err := objectMembers(clean, skipSpace(clean, 0))
	if err != nil {
		return false
	}
	_, ok := findMember(ms, key)
	return ok
}

func pick(vals ...string) string {
	return firstNonEmpty(vals...)
}
