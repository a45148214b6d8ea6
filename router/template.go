package router

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// template is one compiled resource template.
type template struct {
	raw      string
	upstream string
	prefix   int // length of the literal text before the first expression
	re       *regexp.Regexp
}

// compileTemplate turns an RFC 6570 URI template into an anchored regexp.
//
// Matching is deliberately coarse; it only has to pick an upstream, and the
// upstream does the real expansion:
//   - simple {var} and label/parameter {.var} {;var}: one or more
//     characters, none of them '/';
//   - reserved {+var}, fragment {#var}, path {/var} and query {?var} {&var}:
//     any characters, possibly none (an undefined variable expands to "").
//
// The literal text between expressions must match exactly. It returns the
// length of the literal prefix, which orders templates (longest first).
func compileTemplate(s string) (*regexp.Regexp, int, error) {
	var b strings.Builder
	b.WriteString(`^(?s:`)
	prefix := -1
	rest := s
	for rest != "" {
		open := strings.IndexByte(rest, '{')
		if open < 0 {
			b.WriteString(regexp.QuoteMeta(rest))
			break
		}
		if prefix < 0 {
			prefix = len(s) - len(rest) + open
		}
		b.WriteString(regexp.QuoteMeta(rest[:open]))
		end := strings.IndexByte(rest[open:], '}')
		if end < 0 {
			return nil, 0, errors.New("unclosed '{'")
		}
		expr := rest[open+1 : open+end]
		rest = rest[open+end+1:]
		if expr == "" {
			return nil, 0, errors.New("empty expression {}")
		}
		vars := expr
		switch expr[0] {
		case '+', '#', '/', '?', '&':
			b.WriteString(`.*`)
			vars = expr[1:]
		case '.', ';':
			b.WriteString(`[^/]+`)
			vars = expr[1:]
		case '=', ',', '!', '@', '|':
			return nil, 0, fmt.Errorf("reserved operator %q", expr[0])
		default:
			b.WriteString(`[^/]+`)
		}
		for v := range strings.SplitSeq(vars, ",") {
			if !validVarSpec(v) {
				return nil, 0, fmt.Errorf("invalid variable %q", v)
			}
		}
	}
	if prefix < 0 {
		prefix = len(s)
	}
	b.WriteString(`)$`)
	re, err := regexp.Compile(b.String())
	if err != nil {
		return nil, 0, err
	}
	return re, prefix, nil
}

// validVarSpec reports whether v is varname[:maxlength] or varname*, with
// varname made of [A-Za-z0-9_.] and %XX escapes (RFC 6570 §2.3).
func validVarSpec(v string) bool {
	if before, after, ok := strings.Cut(v, ":"); ok {
		if after == "" || len(after) > 4 {
			return false
		}
		for i := 0; i < len(after); i++ {
			if after[i] < '0' || after[i] > '9' {
				return false
			}
		}
		v = before
	} else {
		v = strings.TrimSuffix(v, "*")
	}
	if v == "" {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '_', c == '.':
		case c == '%' && i+2 < len(v) && isHex(v[i+1]) && isHex(v[i+2]):
			i += 2
		default:
			return false
		}
	}
	return true
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

// templates compiles every template and orders them for matching. The same
// template string from two upstreams is a collision (withheld from both);
// otherwise overlapping templates are resolved by match order.
func (b *builder) templates(srcs []*Source) ([]template, []Entry) {
	type cand struct {
		t     template
		route Route
	}
	var cands []cand
	owners := make(map[string]int)
	for _, s := range srcs {
		seen := make(map[string]bool, len(s.Templates))
		for _, raw := range s.Templates {
			route := Route{s.Upstream, raw}
			if seen[raw] {
				continue
			}
			seen[raw] = true
			if raw == "" {
				b.add(InvalidName, "", []Route{route}, "upstream %q listed a resource template with an empty URI template; withheld", s.Upstream)
				continue
			}
			re, prefix, err := compileTemplate(raw)
			if err != nil {
				b.add(InvalidName, raw, []Route{route}, "upstream %q listed a malformed resource template %q: %v; withheld", s.Upstream, raw, err)
				continue
			}
			cands = append(cands, cand{template{raw: raw, upstream: s.Upstream, prefix: prefix, re: re}, route})
			owners[raw]++
		}
	}
	var out []template
	var list []Entry
	reported := make(map[string]bool)
	for _, c := range cands {
		if owners[c.t.raw] > 1 {
			if !reported[c.t.raw] {
				reported[c.t.raw] = true
				var rs []Route
				for _, d := range cands {
					if d.t.raw == c.t.raw {
						rs = append(rs, d.route)
					}
				}
				b.problems = append(b.problems, Problem{Kind: Collision, Exposed: c.t.raw, Routes: rs, Message: collisionMessage("resource template", c.t.raw, rs)})
			}
			continue
		}
		out = append(out, c.t)
		list = append(list, Entry{c.t.raw, c.route})
	}
	// Stable: ties keep source order, then the upstream's own order.
	slices.SortStableFunc(out, func(x, y template) int { return y.prefix - x.prefix })
	return out, list
}
