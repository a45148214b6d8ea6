package hub

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/sigilcore/sigil-hub/internal/strictjson"
)

// Argument names against the tool's declared properties
// (docs/security.md, "One reading of every call").
//
// A policy reads `path`; a Go tool that binds its arguments to a struct
// fills its `path` field from "PATH", "Path" or "pat\u017f" as well. With a
// single such member (so no case-variant pair for strictjson to refuse) the
// policy and Sign see no `path` at all while the tool acts on it. The tool's
// inputSchema names the properties it reads, so a member that is the same
// name as a declared property (strictjson.SameName) without being spelled
// exactly like it is refused before authorization.

// argNames is the tree of property names a tool's inputSchema declares.
type argNames struct {
	props map[string]*argNames // declared properties; nil: none
	items *argNames            // the schema of array items; nil: none
}

// maxSchemaDepth bounds how deep argNamesOf follows a schema (nesting and
// $ref chains together).
const maxSchemaDepth = 32

// argNamesOf reads the declared property names of a tool definition's
// inputSchema; nil when it declares none. It understands properties, items
// and prefixItems, allOf/anyOf/oneOf (the union of their properties) and
// local $ref into $defs or definitions.
func argNamesOf(def json.RawMessage) *argNames {
	var d struct {
		InputSchema map[string]any `json:"inputSchema"`
	}
	if json.Unmarshal(def, &d) != nil || d.InputSchema == nil {
		return nil
	}
	n := &argNames{}
	n.add(d.InputSchema, d.InputSchema, 0)
	if len(n.props) == 0 && n.items == nil {
		return nil
	}
	return n
}

// add merges schema's declared names into n; root resolves local $refs.
func (n *argNames) add(schema, root map[string]any, depth int) {
	if depth > maxSchemaDepth {
		return
	}
	if ref, ok := schema["$ref"].(string); ok {
		if target := localRef(root, ref); target != nil {
			n.add(target, root, depth+1)
		}
	}
	if props, ok := schema["properties"].(map[string]any); ok {
		for name, sub := range props {
			if n.props == nil {
				n.props = map[string]*argNames{}
			}
			child := n.props[name]
			if child == nil {
				child = &argNames{}
				n.props[name] = child
			}
			if m, ok := sub.(map[string]any); ok {
				child.add(m, root, depth+1)
			}
		}
	}
	itemSchemas := []any{schema["items"]}
	if pre, ok := schema["prefixItems"].([]any); ok {
		itemSchemas = append(itemSchemas, pre...)
	}
	if arr, ok := schema["items"].([]any); ok { // draft-07 tuple form
		itemSchemas = append(itemSchemas, arr...)
	}
	for _, it := range itemSchemas {
		if m, ok := it.(map[string]any); ok {
			if n.items == nil {
				n.items = &argNames{}
			}
			n.items.add(m, root, depth+1)
		}
	}
	for _, k := range []string{"allOf", "anyOf", "oneOf"} {
		if subs, ok := schema[k].([]any); ok {
			for _, sub := range subs {
				if m, ok := sub.(map[string]any); ok {
					n.add(m, root, depth+1)
				}
			}
		}
	}
}

// localRef resolves "#/$defs/X" and "#/definitions/X" in root.
func localRef(root map[string]any, ref string) map[string]any {
	for _, prefix := range []string{"#/$defs/", "#/definitions/"} {
		if name, ok := strings.CutPrefix(ref, prefix); ok {
			defs, _ := root[strings.TrimSuffix(prefix[2:], "/")].(map[string]any)
			m, _ := defs[name].(map[string]any)
			return m
		}
	}
	return nil
}

// caseVariantArgument checks v (validated JSON, the arguments at path "")
// against n: it returns the path of the first member that is the same name
// as a declared property without being spelled like it, and that property,
// or "" when every name is spelled as declared (or undeclared).
func (n *argNames) caseVariantArgument(v json.RawMessage, path string) (member, declared string) {
	if n == nil || len(v) == 0 {
		return "", ""
	}
	switch v[0] {
	case '{':
		if len(n.props) == 0 {
			return "", ""
		}
		members, err := strictjson.Members(v)
		if err != nil {
			return "", ""
		}
		for k, val := range members {
			if child, ok := n.props[k]; ok {
				if m, d := child.caseVariantArgument(val, path+"."+k); m != "" {
					return m, d
				}
				continue
			}
			for p := range n.props {
				if strictjson.SameName(k, p) {
					return path + "." + k, path + "." + p
				}
			}
		}
	case '[':
		if n.items == nil {
			return "", ""
		}
		var elems []json.RawMessage
		if json.Unmarshal(v, &elems) != nil {
			return "", ""
		}
		for i, e := range elems {
			if m, d := n.items.caseVariantArgument(e, path+"["+strconv.Itoa(i)+"]"); m != "" {
				return m, d
			}
		}
	}
	return "", ""
}
