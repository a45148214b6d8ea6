package policy

import (
	"bytes"
	"encoding/json"
)

// This file is the fast way into Evaluate. Measured: decoding a whole intent
// into map[string]any, tool arguments included, was most of the cost of
// authorizing a call, yet a policy without ## custom rules reads only a few
// top-level members. scanIntent checks the intent in one pass without
// building anything and cuts out those members' raw values.
//
// It is a shortcut, never a second opinion: whenever it is not certain that
// encoding/json would accept the document and decode the same values (an
// escaped key where a member that is read could hide, a repeated member
// that is read, anything past the object but whitespace, nesting beyond
// intentScanMaxDepth, or any syntax error), it declines and Evaluate decodes
// the intent the thorough way, so every decision is the one that decoding
// gives.

// intentScanMaxDepth bounds the scanner's recursion; deeper documents take
// the thorough path (encoding/json allows 10000 levels).
const intentScanMaxDepth = 512

// intentTokens are the raw JSON values of the members evaluation reads
// outside ## custom rules; nil means absent.
type intentTokens struct {
	action, provenance, taskID, metadata []byte
	command, url, method, path, to       []byte
	// serverID and toolName are metadata's members, set only when metadata
	// is an object.
	serverID, toolName []byte
}

// member returns the token of top-level member k; ok is false for a member
// the scanner does not keep.
func (t *intentTokens) member(k string) (tok []byte, ok bool) {
	if p := t.slot(k); p != nil {
		return *p, true
	}
	return nil, false
}

func (t *intentTokens) slot(k string) *[]byte {
	switch k {
	case "action":
		return &t.action
	case "provenance":
		return &t.provenance
	case "task_id":
		return &t.taskID
	case "metadata":
		return &t.metadata
	case "command":
		return &t.command
	case "url":
		return &t.url
	case "method":
		return &t.method
	case "path":
		return &t.path
	case "to":
		return &t.to
	}
	return nil
}

func (t *intentTokens) metadataSlot(k string) *[]byte {
	switch k {
	case "serverId":
		return &t.serverID
	case "toolName":
		return &t.toolName
	}
	return nil
}

// Roles of an object for the scanner: the intent itself, its metadata, or
// any other object (whose members are only checked).
const (
	roleOther = iota
	roleRoot
	roleMetadata
)

type intentScanner struct {
	data []byte
	pos  int
	t    intentTokens
}

// scanIntent reports whether raw is certainly an intent object that
// encoding/json decodes without error and with no more input after it, and
// returns the raw values of the members evaluation reads. See the file
// comment for when it declines (ok false).
func scanIntent(raw []byte) (intentTokens, bool) {
	s := intentScanner{data: raw}
	s.skipSpace()
	if s.pos >= len(s.data) || s.data[s.pos] != '{' {
		return intentTokens{}, false
	}
	if !s.object(1, roleRoot) {
		return intentTokens{}, false
	}
	s.skipSpace()
	if s.pos != len(s.data) {
		return intentTokens{}, false
	}
	return s.t, true
}

func (s *intentScanner) skipSpace() {
	for s.pos < len(s.data) {
		switch s.data[s.pos] {
		case ' ', '\t', '\n', '\r':
			s.pos++
		default:
			return
		}
	}
}

// value checks the value at s.pos (no leading whitespace); depth counts the
// objects and arrays around it.
func (s *intentScanner) value(depth int) bool {
	if s.pos >= len(s.data) {
		return false
	}
	switch c := s.data[s.pos]; {
	case c == '{':
		return s.object(depth+1, roleOther)
	case c == '[':
		return s.array(depth + 1)
	case c == '"':
		_, ok := s.str()
		return ok
	case c == 't':
		return s.literal("true")
	case c == 'f':
		return s.literal("false")
	case c == 'n':
		return s.literal("null")
	default:
		return s.number()
	}
}

func (s *intentScanner) object(depth, role int) bool {
	if depth > intentScanMaxDepth {
		return false
	}
	s.pos++ // '{'
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == '}' {
		s.pos++
		return true
	}
	for {
		if s.pos >= len(s.data) || s.data[s.pos] != '"' {
			return false
		}
		keyStart := s.pos
		plain, ok := s.str()
		if !ok {
			return false
		}
		if !plain && role != roleOther {
			// An escaped key could spell a member that is read.
			return false
		}
		key := s.data[keyStart+1 : s.pos-1]
		s.skipSpace()
		if s.pos >= len(s.data) || s.data[s.pos] != ':' {
			return false
		}
		s.pos++
		s.skipSpace()
		valStart := s.pos
		var slot *[]byte
		switch role {
		case roleRoot:
			slot = s.t.slot(string(key))
		case roleMetadata:
			slot = s.t.metadataSlot(string(key))
		}
		if role == roleRoot && string(key) == "metadata" && s.pos < len(s.data) && s.data[s.pos] == '{' {
			if !s.object(depth+1, roleMetadata) {
				return false
			}
		} else if !s.value(depth) {
			return false
		}
		if slot != nil {
			if *slot != nil {
				return false // repeated: encoding/json keeps the last, decide there
			}
			*slot = s.data[valStart:s.pos:s.pos]
		}
		s.skipSpace()
		if s.pos >= len(s.data) {
			return false
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
			s.skipSpace()
		case '}':
			s.pos++
			return true
		default:
			return false
		}
	}
}

func (s *intentScanner) array(depth int) bool {
	if depth > intentScanMaxDepth {
		return false
	}
	s.pos++ // '['
	s.skipSpace()
	if s.pos < len(s.data) && s.data[s.pos] == ']' {
		s.pos++
		return true
	}
	for {
		if !s.value(depth) {
			return false
		}
		s.skipSpace()
		if s.pos >= len(s.data) {
			return false
		}
		switch s.data[s.pos] {
		case ',':
			s.pos++
			s.skipSpace()
		case ']':
			s.pos++
			return true
		default:
			return false
		}
	}
}

// str checks the string at s.pos as encoding/json does (no raw control
// characters, only the JSON escapes; other bytes, even invalid UTF-8, are
// accepted and decoded later by encoding/json) and reports whether it has
// no escapes.
func (s *intentScanner) str() (plain, ok bool) {
	s.pos++ // opening quote
	plain = true
	for s.pos < len(s.data) {
		c := s.data[s.pos]
		switch {
		case c == '"':
			s.pos++
			return plain, true
		case c < 0x20:
			return false, false
		case c == '\\':
			plain = false
			if s.pos+1 >= len(s.data) {
				return false, false
			}
			switch s.data[s.pos+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				s.pos += 2
			case 'u':
				if s.pos+6 > len(s.data) {
					return false, false
				}
				for _, h := range s.data[s.pos+2 : s.pos+6] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return false, false
					}
				}
				s.pos += 6
			default:
				return false, false
			}
		default:
			s.pos++
		}
	}
	return false, false
}

func (s *intentScanner) literal(lit string) bool {
	if len(s.data)-s.pos < len(lit) || string(s.data[s.pos:s.pos+len(lit)]) != lit {
		return false
	}
	s.pos += len(lit)
	return true
}

// number checks -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (s *intentScanner) number() bool {
	d, p := s.data, s.pos
	if p < len(d) && d[p] == '-' {
		p++
	}
	switch {
	case p < len(d) && d[p] == '0':
		p++
	case p < len(d) && '1' <= d[p] && d[p] <= '9':
		for p < len(d) && '0' <= d[p] && d[p] <= '9' {
			p++
		}
	default:
		return false
	}
	if p < len(d) && d[p] == '.' {
		p++
		if p >= len(d) || d[p] < '0' || d[p] > '9' {
			return false
		}
		for p < len(d) && '0' <= d[p] && d[p] <= '9' {
			p++
		}
	}
	if p < len(d) && (d[p] == 'e' || d[p] == 'E') {
		p++
		if p < len(d) && (d[p] == '+' || d[p] == '-') {
			p++
		}
		if p >= len(d) || d[p] < '0' || d[p] > '9' {
			return false
		}
		for p < len(d) && '0' <= d[p] && d[p] <= '9' {
			p++
		}
	}
	s.pos = p
	return true
}

// tokenString returns the string a member's token decodes to, as
// encoding/json decodes it (ok is false when the token is absent or not a
// string).
func tokenString(tok []byte) (string, bool) {
	if len(tok) < 2 || tok[0] != '"' {
		return "", false
	}
	body := tok[1 : len(tok)-1]
	simple := true
	for _, c := range body {
		if c == '\\' || c >= 0x80 {
			simple = false
			break
		}
	}
	if simple {
		return string(body), true
	}
	// Escapes or non-ASCII (invalid UTF-8 becomes U+FFFD): let
	// encoding/json decode it, exactly as the thorough path would.
	var v string
	if json.Unmarshal(tok, &v) != nil {
		return "", false
	}
	return v, true
}

// tokenValue decodes a member's token as the thorough path does (numbers
// as json.Number); nil for an absent token.
func tokenValue(tok []byte) any {
	if tok == nil {
		return nil
	}
	if s, ok := tokenString(tok); ok {
		return s
	}
	var v any
	dec := json.NewDecoder(bytes.NewReader(tok))
	dec.UseNumber()
	if dec.Decode(&v) != nil {
		return nil
	}
	return v
}
