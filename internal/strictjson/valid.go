package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
)

// Valid is JSON that this package has accepted: one value, valid UTF-8, no
// duplicate keys at any depth (Validate's rules), nested at most Depth()
// deep. Only this package makes a non-zero Valid (Check, Input.Valid,
// Valid.Member, Valid.Compact, ObjectBuilder), so a function handed one
// need not scan the bytes again: that is how a value checked at the edge
// travels to later stages (docs/security.md, "One reading of every call")
// without a second pass. The zero Valid proves nothing.
type Valid struct {
	data  []byte
	depth int // an upper bound of the nesting; 0 for a scalar
}

// Check validates data as Validate does and returns it as a Valid.
func Check(data []byte, maxDepth int) (Valid, error) {
	s := newScanner(data, maxDepth)
	if err := s.document(); err != nil {
		return Valid{}, err
	}
	v := bytes.Trim(data, " \t\n\r")
	return Valid{data: v[:len(v):len(v)], depth: s.deepest}, nil
}

// Bytes returns the value's bytes, without surrounding whitespace; nil for
// the zero Valid. The caller must not modify them.
func (v Valid) Bytes() []byte { return v.data }

// Depth returns an upper bound of the value's nesting: a root object or
// array is depth 1, a scalar 0.
func (v Valid) Depth() int { return v.depth }

// IsObject reports whether the value is an object.
func (v Valid) IsObject() bool { return len(v.data) > 0 && v.data[0] == '{' }

// Is reports whether b is exactly v's bytes (the same memory, not just
// equal content): the test a consumer applies before trusting v for b.
func (v Valid) Is(b []byte) bool {
	return len(v.data) > 0 && len(b) == len(v.data) && &b[0] == &v.data[0]
}

// Member returns the value of the member name of an object, without
// scanning it again; ok is false when v is not an object or has no such
// member.
func (v Valid) Member(name string) (Valid, bool) {
	if !v.IsObject() {
		return Valid{}, false
	}
	var found json.RawMessage
	if !EachMember(v.data, func(key []byte, value json.RawMessage) {
		if string(key) == name {
			found = value
		}
	}) {
		// A key with an escape: Object reads it (and checks again; nil
		// members when it refuses).
		members, _ := Object(v.data, 0)
		found = members[name]
	}
	if found == nil {
		return Valid{}, false
	}
	return Valid{data: found, depth: max(v.depth-1, 0)}, true
}

// Compact returns a copy of v without whitespace between tokens
// (json.Compact's result, which cannot fail on a Valid).
func (v Valid) Compact() Valid {
	var b bytes.Buffer
	b.Grow(len(v.data))
	if json.Compact(&b, v.data) != nil {
		return Valid{}
	}
	return Valid{data: b.Bytes(), depth: v.depth}
}

// ErrBuild reports a member name used twice in one object of an
// ObjectBuilder, or an unbalanced Begin and End.
var ErrBuild = errors.New("strictjson: object built with a repeated name or unbalanced nesting")

// ObjectBuilder writes a JSON object member by member, and what it writes is
// Valid by construction: names and strings are written by AppendString,
// values added are Valid, and a name repeated within one object is an
// error. The zero ObjectBuilder is ready; Start gives it a buffer.
type ObjectBuilder struct {
	b       []byte
	start   int // where the object starts in b
	deepest int
	open    []int    // per open object, where its names start in names
	names   []string // the names of every open object
	bad     bool
}

// Start begins the object, appending to dst.
func (o *ObjectBuilder) Start(dst []byte) {
	*o = ObjectBuilder{b: append(dst, '{'), start: len(dst), deepest: 1, open: append(o.open[:0], 0), names: o.names[:0]}
}

func (o *ObjectBuilder) name(name string) {
	if len(o.open) == 0 {
		o.bad = true
		return
	}
	first := o.open[len(o.open)-1]
	for _, n := range o.names[first:] {
		if n == name {
			o.bad = true
		}
	}
	if len(o.names) > first {
		o.b = append(o.b, ',')
	}
	o.names = append(o.names, name)
	o.b = append(AppendString(o.b, name), ':')
}

// String adds the member name with a string value.
func (o *ObjectBuilder) String(name, value string) {
	o.name(name)
	o.b = AppendString(o.b, value)
}

// Value adds the member name with the value v; a zero v is an error.
func (o *ObjectBuilder) Value(name string, v Valid) {
	if v.data == nil {
		o.bad = true
	}
	o.name(name)
	o.b = append(o.b, v.data...)
	o.deepest = max(o.deepest, len(o.open)+v.depth)
}

// Begin adds the member name with an object value, whose members follow
// until End.
func (o *ObjectBuilder) Begin(name string) {
	o.name(name)
	o.b = append(o.b, '{')
	o.open = append(o.open, len(o.names))
	o.deepest = max(o.deepest, len(o.open))
}

// End closes the object Begin opened.
func (o *ObjectBuilder) End() {
	if len(o.open) < 2 {
		o.bad = true
		return
	}
	o.names = o.names[:o.open[len(o.open)-1]]
	o.open = o.open[:len(o.open)-1]
	o.b = append(o.b, '}')
}

// Finish closes the object and returns it (Bytes is the object alone; the
// buffer given to Start holds it after what was there); the error is ErrBuild when a
// name was repeated or Begin and End did not pair.
func (o *ObjectBuilder) Finish() (Valid, error) {
	if o.bad || len(o.open) != 1 {
		return Valid{}, ErrBuild
	}
	o.b = append(o.b, '}')
	o.open = o.open[:0]
	return Valid{data: o.b[o.start:], depth: o.deepest}, nil
}
