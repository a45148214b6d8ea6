package policy

import (
	"bytes"
	"encoding/json"
	"slices"

	"github.com/sigilcore/sigil-hub/internal/strictjson"
)

// This file is the fast way into Evaluate. Measured: decoding a whole intent
// into map[string]any, tool arguments included, was most of the cost of
// authorizing a call, yet a policy without ## custom rules reads only a few
// top-level members. scanIntent checks the intent in one strict pass
// (sigil-hub's one JSON scanner, internal/strictjson) and cuts out those
// members' raw values.
//
// It is a shortcut, never a second opinion: whenever it is not certain that
// encoding/json would accept the document and decode the same values, it
// declines and Evaluate decodes the intent the thorough way.

// intentScanMaxDepth bounds the strict pass's nesting; deeper documents take
// the thorough path (encoding/json allows 10000 levels).
const intentScanMaxDepth = 512

// intentMembers are the top-level members evaluation reads outside
// ## custom rules: the ones scanIntent keeps.
func intentMembers() [9]string {
	return [9]string{"action", "provenance", "task_id", "metadata", "command", "url", "method", "path", "to"}
}

// intentTokens are the raw JSON values of intentMembers (by index); nil
// means absent.
type intentTokens struct {
	members [9][]byte
	// serverID and toolName are metadata's members, set only when metadata
	// is an object.
	serverID, toolName []byte
}

// slot returns where scanIntent keeps top-level member k, nil for a member
// it does not keep.
func (t *intentTokens) slot(k string) *[]byte {
	names := intentMembers()
	if i := slices.Index(names[:], k); i >= 0 {
		return &t.members[i]
	}
	return nil
}

// scanIntent reports whether raw is certainly an intent object that
// encoding/json decodes without error and to the same values, and returns
// the raw values of the members evaluation reads. strictjson's one pass
// settles that: it accepts only valid UTF-8, one value, unescaped names
// compared after unescaping and no repeated name at any depth, nesting up
// to intentScanMaxDepth (encoding/json reads repeated names and invalid
// UTF-8 its own way). Anything else declines (ok false).
func scanIntent(raw []byte) (intentTokens, bool) {
	if strictjson.ValidateObject(raw, intentScanMaxDepth) != nil {
		return intentTokens{}, false
	}
	var t intentTokens
	if !strictjson.EachMember(raw, func(k []byte, v json.RawMessage) {
		if p := t.slot(string(k)); p != nil {
			*p = v
		}
	}) {
		return intentTokens{}, false
	}
	if md := *t.slot("metadata"); len(md) > 0 && md[0] == '{' {
		if !strictjson.EachMember(md, func(k []byte, v json.RawMessage) {
			switch string(k) {
			case "serverId":
				t.serverID = v
			case "toolName":
				t.toolName = v
			}
		}) {
			return intentTokens{}, false
		}
	}
	return t, true
}

// tokenValue decodes a member's token as the thorough path does (numbers
// as json.Number); nil for an absent token.
func tokenValue(tok []byte) any {
	if tok == nil {
		return nil
	}
	if s, ok := strictjson.DecodeString(tok); ok {
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
