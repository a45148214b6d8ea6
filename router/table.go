package router

import (
	"fmt"
	"path"
	"slices"
)

// Rules are the naming rules for one Build. The zero value is hub mode off
// (single-wrap) with the default separator. A plain value, safe to copy.
type Rules struct {
	// Separator goes between the upstream name and the tool or prompt name
	// in hub mode. If empty, DefaultSeparator ("__") is used.
	Separator string
	// Namespace selects hub mode: exposed names are
	// <upstream><Separator><name> (rewritten if needed, see ExposedName).
	// If false (single-wrap mode), exposed names are the upstream's own,
	// unchanged, however unusual.
	Namespace bool
}

// Source is one upstream's current surface, as the upstream listed it.
// Build only reads it and keeps no reference to its slices, so the caller
// may reuse them afterwards.
type Source struct {
	// Upstream is the upstream's configured name (the namespace). It must be
	// non-empty and unique among the sources given to one Build.
	Upstream string
	// Tools are the upstream's own tool names, in the order it listed them.
	Tools []string
	// Prompts are the upstream's own prompt names, in the order it listed them.
	Prompts []string
	// Resources are exact resource URIs.
	Resources []string
	// Templates are RFC 6570 URI templates of resource templates.
	Templates []string
	// Allow and Deny are path.Match globs on the upstream's own tool names.
	// Empty Allow allows every tool; a tool matching any Deny glob is
	// removed even if Allow matches it. A malformed glob fails closed: a bad
	// Allow glob matches nothing, a bad Deny glob matches everything.
	// Prompts and resources are never filtered.
	Allow, Deny []string
}

// Route is where an exposed name goes: the upstream and the upstream's own
// name (for resources, the URI or template itself). A comparable plain value.
type Route struct{ Upstream, Name string }

// Entry is one exposed name and its route. A plain value.
type Entry struct {
	Exposed string
	Route   Route
}

// Table is an immutable routing table built by Build. All methods are safe
// for concurrent use, and are safe on a nil *Table (which routes nothing).
type Table struct {
	tools, prompts nameTable
	resources      map[string]string // exact URI → upstream
	resourceList   []Entry           // source order
	templates      []template        // match order
	templateList   []Entry           // source order
}

type nameTable struct {
	byExposed map[string]Route
	byRoute   map[Route]string
	list      []Entry // source order, then the upstream's order
}

// Tool returns the route of an exposed tool name. It is an exact lookup: the
// exposed name is never split on the separator.
func (t *Table) Tool(exposed string) (Route, bool) {
	if t == nil {
		return Route{}, false
	}
	r, ok := t.tools.byExposed[exposed]
	return r, ok
}

// Prompt returns the route of an exposed prompt name (exact lookup).
func (t *Table) Prompt(exposed string) (Route, bool) {
	if t == nil {
		return Route{}, false
	}
	r, ok := t.prompts.byExposed[exposed]
	return r, ok
}

// Tools returns every exposed tool in a stable order: source order, then
// the order the upstream listed them. The slice is a fresh copy.
func (t *Table) Tools() []Entry {
	if t == nil {
		return nil
	}
	return slices.Clone(t.tools.list)
}

// Prompts returns every exposed prompt, ordered like Tools. Fresh copy.
func (t *Table) Prompts() []Entry {
	if t == nil {
		return nil
	}
	return slices.Clone(t.prompts.list)
}

// ExposedTool returns the exposed name of the upstream's tool name, if that
// tool is in the table (not filtered, not withheld by a collision).
func (t *Table) ExposedTool(upstream, name string) (string, bool) {
	if t == nil {
		return "", false
	}
	e, ok := t.tools.byRoute[Route{upstream, name}]
	return e, ok
}

// ExposedPrompt is ExposedTool for prompts.
func (t *Table) ExposedPrompt(upstream, name string) (string, bool) {
	if t == nil {
		return "", false
	}
	e, ok := t.prompts.byRoute[Route{upstream, name}]
	return e, ok
}

// Resource returns the upstream that serves uri: an exact resource URI
// first, then the first matching template in match order (longest literal
// prefix first, ties in source order).
func (t *Table) Resource(uri string) (upstream string, ok bool) {
	if t == nil {
		return "", false
	}
	if up, ok := t.resources[uri]; ok {
		return up, true
	}
	for i := range t.templates {
		if t.templates[i].re.MatchString(uri) {
			return t.templates[i].upstream, true
		}
	}
	return "", false
}

// Resources returns the exposed exact resources (Exposed = Route.Name = the
// URI) in source order. Fresh copy.
func (t *Table) Resources() []Entry {
	if t == nil {
		return nil
	}
	return slices.Clone(t.resourceList)
}

// Templates returns the exposed resource templates (Exposed = Route.Name =
// the template) in source order. Fresh copy.
func (t *Table) Templates() []Entry {
	if t == nil {
		return nil
	}
	return slices.Clone(t.templateList)
}

// Build makes the table for srcs under r and reports every problem found,
// in a deterministic order. It never fails as a whole: whatever can be
// routed safely is routed. Pure; safe for concurrent use.
func Build(r Rules, srcs []Source) (*Table, []Problem) {
	b := builder{rules: r}
	if b.rules.Separator == "" {
		b.rules.Separator = DefaultSeparator
	}
	usable := b.sources(srcs)
	t := &Table{
		tools:   b.names("tool", usable, func(s *Source) []string { return s.Tools }, true),
		prompts: b.names("prompt", usable, func(s *Source) []string { return s.Prompts }, false),
	}
	t.resources, t.resourceList = b.resources(usable)
	t.templates, t.templateList = b.templates(usable)
	return t, b.problems
}

type builder struct {
	rules    Rules
	problems []Problem
}

func (b *builder) add(kind ProblemKind, exposed string, routes []Route, format string, args ...any) {
	b.problems = append(b.problems, Problem{Kind: kind, Exposed: exposed, Routes: routes, Message: fmt.Sprintf(format, args...)})
}

// sources drops sources that cannot be routed (empty or repeated upstream).
func (b *builder) sources(srcs []Source) []*Source {
	out := make([]*Source, 0, len(srcs))
	seen := make(map[string]bool, len(srcs))
	for i := range srcs {
		s := &srcs[i]
		switch {
		case s.Upstream == "":
			b.add(InvalidName, "", nil, "source %d has an empty upstream name; all of its names are withheld", i)
		case seen[s.Upstream]:
			b.add(InvalidName, s.Upstream, nil, "upstream %q is given more than once; only its first source is used", s.Upstream)
		default:
			seen[s.Upstream] = true
			out = append(out, s)
		}
	}
	return out
}

type candidate struct {
	exposed string
	route   Route
}

// names builds the tool or prompt half of the table.
func (b *builder) names(what string, srcs []*Source, get func(*Source) []string, filter bool) nameTable {
	var cands []candidate
	count := make(map[string]int)
	for _, s := range srcs {
		var allow, deny func(string) (bool, string)
		if filter {
			allow, deny = b.globs(s, s.Allow, false), b.globs(s, s.Deny, true)
		}
		seen := make(map[string]bool, len(get(s)))
		for _, name := range get(s) {
			route := Route{s.Upstream, name}
			if name == "" {
				b.add(InvalidName, "", []Route{route}, "upstream %q listed a %s with an empty name; withheld", s.Upstream, what)
				continue
			}
			if seen[name] {
				b.add(InvalidName, name, []Route{route}, "upstream %q listed %s %q more than once; kept once", s.Upstream, what, name)
				continue
			}
			seen[name] = true
			exposed, renamed := name, false
			if b.rules.Namespace {
				exposed, renamed = ExposedName(b.rules.Separator, s.Upstream, name)
			}
			if filter {
				if len(s.Allow) > 0 {
					if ok, _ := allow(name); !ok {
						b.add(Filtered, exposed, []Route{route}, "tool %q of upstream %q matches no allow pattern", name, s.Upstream)
						continue
					}
				}
				if ok, pat := deny(name); ok {
					b.add(Filtered, exposed, []Route{route}, "tool %q of upstream %q matches deny pattern %q", name, s.Upstream, pat)
					continue
				}
			}
			if renamed {
				b.add(Renamed, exposed, []Route{route}, "%s %q of upstream %q is exposed as %q (names must match ^[A-Za-z0-9_-]{1,64}$)", what, name, s.Upstream, exposed)
			}
			cands = append(cands, candidate{exposed, route})
			count[exposed]++
		}
	}
	nt := nameTable{
		byExposed: make(map[string]Route, len(cands)),
		byRoute:   make(map[Route]string, len(cands)),
		list:      make([]Entry, 0, len(cands)),
	}
	var collided map[string][]Route
	var order []string
	for _, c := range cands {
		if count[c.exposed] > 1 {
			if collided == nil {
				collided = make(map[string][]Route)
			}
			if _, ok := collided[c.exposed]; !ok {
				order = append(order, c.exposed)
			}
			collided[c.exposed] = append(collided[c.exposed], c.route)
			continue
		}
		nt.byExposed[c.exposed] = c.route
		nt.byRoute[c.route] = c.exposed
		nt.list = append(nt.list, Entry{c.exposed, c.route})
	}
	for _, e := range order {
		b.problems = append(b.problems, Problem{Kind: Collision, Exposed: e, Routes: collided[e], Message: collisionMessage(what, e, collided[e])})
	}
	return nt
}

// globs returns a matcher over patterns. A malformed pattern is reported and
// fails closed: it matches everything when failMatches, nothing otherwise.
func (b *builder) globs(s *Source, patterns []string, failMatches bool) func(string) (bool, string) {
	bad := make([]bool, len(patterns))
	for i, p := range patterns {
		if _, err := path.Match(p, ""); err != nil {
			bad[i] = true
			list, effect := "allow", "matches no tool"
			if failMatches {
				list, effect = "deny", "matches every tool"
			}
			b.add(InvalidName, p, []Route{{Upstream: s.Upstream}}, "upstream %q has a malformed %s pattern %q; it %s", s.Upstream, list, p, effect)
		}
	}
	return func(name string) (bool, string) {
		for i, p := range patterns {
			if bad[i] {
				if failMatches {
					return true, p
				}
				continue
			}
			if ok, _ := path.Match(p, name); ok {
				return true, p
			}
		}
		return false, ""
	}
}

// resources builds the exact-URI map; a URI listed by two upstreams is
// withheld from both.
func (b *builder) resources(srcs []*Source) (map[string]string, []Entry) {
	owners := make(map[string][]Route)
	var order []string
	for _, s := range srcs {
		seen := make(map[string]bool, len(s.Resources))
		for _, uri := range s.Resources {
			route := Route{s.Upstream, uri}
			if uri == "" {
				b.add(InvalidName, "", []Route{route}, "upstream %q listed a resource with an empty URI; withheld", s.Upstream)
				continue
			}
			if seen[uri] {
				continue // the same upstream twice routes the same way
			}
			seen[uri] = true
			if _, ok := owners[uri]; !ok {
				order = append(order, uri)
			}
			owners[uri] = append(owners[uri], route)
		}
	}
	m := make(map[string]string, len(order))
	list := make([]Entry, 0, len(order))
	for _, uri := range order {
		rs := owners[uri]
		if len(rs) > 1 {
			b.problems = append(b.problems, Problem{Kind: Collision, Exposed: uri, Routes: rs, Message: collisionMessage("resource", uri, rs)})
			continue
		}
		m[uri] = rs[0].Upstream
		list = append(list, Entry{uri, rs[0]})
	}
	return m, list
}
