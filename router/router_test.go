package router

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// diff returns a line diff of want and got ("-" only in want, "+" only in
// got), or "" when they are equal. It is an LCS diff; inputs are small.
func diff(want, got []string) string {
	n, m := len(want), len(got)
	lcs := make([][]int, n+1)
	for i := range lcs {
		lcs[i] = make([]int, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if want[i] == got[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	var b strings.Builder
	changed := false
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && want[i] == got[j]:
			fmt.Fprintf(&b, "  %s\n", want[i])
			i++
			j++
		case j < m && (i == n || lcs[i][j+1] >= lcs[i+1][j]):
			fmt.Fprintf(&b, "+ %s\n", got[j])
			j++
			changed = true
		default:
			fmt.Fprintf(&b, "- %s\n", want[i])
			i++
			changed = true
		}
	}
	if !changed {
		return ""
	}
	return b.String()
}

func entryLines(es []Entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = fmt.Sprintf("%s -> %s/%s", e.Exposed, e.Route.Upstream, e.Route.Name)
	}
	return out
}

func problemLines(ps []Problem) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		rs := make([]string, len(p.Routes))
		for j, r := range p.Routes {
			rs[j] = r.Upstream + "/" + r.Name
		}
		out[i] = fmt.Sprintf("%s %q [%s]", p.Kind, p.Exposed, strings.Join(rs, " "))
	}
	return out
}

func hash8(upstream, name string) string {
	sum := sha256.Sum256([]byte(upstream + "\x00" + name))
	return hex.EncodeToString(sum[:4])
}

func TestExposedName(t *testing.T) {
	long := strings.Repeat("x", 70)
	tests := []struct {
		name, sep, upstream, tool string
		want                      string
		wantRenamed               bool
	}{
		{"plain", "", "github", "create_issue", "github__create_issue", false},
		{"custom separator", "-", "gh", "list", "gh-list", false},
		{"dots in tool", "__", "fs", "read.file", "fs__read_file_" + hash8("fs", "read.file"), true},
		{"upstream with dot", "__", "a.b", "t", "a_b__t_" + hash8("a.b", "t"), true},
		{"unicode rune is one underscore", "__", "s", "sеarch", "s__s_arch_" + hash8("s", "sеarch"), true},
		{"exactly 64", "__", "u", strings.Repeat("y", 61), "u__" + strings.Repeat("y", 61), false},
		{"65 is cut with hash", "__", "u", strings.Repeat("y", 62), ("u__" + strings.Repeat("y", 62))[:55] + "_" + hash8("u", strings.Repeat("y", 62)), true},
		{"long and invalid", "__", "u", long + "/z", ("u__" + long)[:55] + "_" + hash8("u", long+"/z"), true},
		{"invalid utf8 per byte", "__", "u", "\xff\xfe", "u_____" + hash8("u", "\xff\xfe"), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, renamed := ExposedName(tt.sep, tt.upstream, tt.tool)
			if got != tt.want || renamed != tt.wantRenamed {
				t.Errorf("ExposedName(%q, %q, %q) = %q, %v; want %q, %v", tt.sep, tt.upstream, tt.tool, got, renamed, tt.want, tt.wantRenamed)
			}
			if !ValidName(got) {
				t.Errorf("ExposedName(...) = %q is not a valid name", got)
			}
		})
	}
}

func TestExposedNameRenamesStayDistinct(t *testing.T) {
	a, _ := ExposedName("__", "u", "a.b")
	b, _ := ExposedName("__", "u", "a:b")
	c, _ := ExposedName("__", "u", "a_b")
	if a == b || a == c || b == c {
		t.Errorf("names collide: %q %q %q", a, b, c)
	}
}

func TestBuildTools(t *testing.T) {
	hub := Rules{Namespace: true}
	tests := []struct {
		name         string
		rules        Rules
		srcs         []Source
		wantTools    []string
		wantProblems []string
	}{
		{
			name:  "hub mode keeps source order then upstream order",
			rules: hub,
			srcs: []Source{
				{Upstream: "b", Tools: []string{"z", "a"}},
				{Upstream: "a", Tools: []string{"m"}},
			},
			wantTools: []string{"b__z -> b/z", "b__a -> b/a", "a__m -> a/m"},
		},
		{
			name:  "same tool on two upstreams is fine in hub mode",
			rules: hub,
			srcs: []Source{
				{Upstream: "a", Tools: []string{"search"}},
				{Upstream: "b", Tools: []string{"search"}},
			},
			wantTools: []string{"a__search -> a/search", "b__search -> b/search"},
		},
		{
			name:  "single-wrap collision withholds both",
			rules: Rules{},
			srcs: []Source{
				{Upstream: "a", Tools: []string{"search", "x"}},
				{Upstream: "b", Tools: []string{"search", "y"}},
			},
			wantTools:    []string{"x -> a/x", "y -> b/y"},
			wantProblems: []string{`collision "search" [a/search b/search]`},
		},
		{
			name:  "hub mode collision via separator ambiguity",
			rules: hub,
			srcs: []Source{
				{Upstream: "a", Tools: []string{"b__c"}},
				{Upstream: "a__b", Tools: []string{"c"}},
			},
			wantProblems: []string{`collision "a__b__c" [a/b__c a__b/c]`},
		},
		{
			name:  "three-way collision names all routes",
			rules: Rules{},
			srcs: []Source{
				{Upstream: "a", Tools: []string{"t"}},
				{Upstream: "b", Tools: []string{"t"}},
				{Upstream: "c", Tools: []string{"t"}},
			},
			wantProblems: []string{`collision "t" [a/t b/t c/t]`},
		},
		{
			name:      "single-wrap keeps unusual names",
			rules:     Rules{},
			srcs:      []Source{{Upstream: "a", Tools: []string{"read.file", "ünï"}}},
			wantTools: []string{"read.file -> a/read.file", "ünï -> a/ünï"},
		},
		{
			name:         "hub mode renames and reports",
			rules:        hub,
			srcs:         []Source{{Upstream: "fs", Tools: []string{"read.file"}}},
			wantTools:    []string{"fs__read_file_" + hash8("fs", "read.file") + " -> fs/read.file"},
			wantProblems: []string{`renamed "fs__read_file_` + hash8("fs", "read.file") + `" [fs/read.file]`},
		},
		{
			name:  "allow and deny, deny wins",
			rules: hub,
			srcs: []Source{{Upstream: "gh", Tools: []string{"get_issue", "list_issues", "delete_repo", "get_secret"},
				Allow: []string{"get_*", "list_*", "delete_*"}, Deny: []string{"delete_*", "*secret*"}}},
			wantTools: []string{"gh__get_issue -> gh/get_issue", "gh__list_issues -> gh/list_issues"},
			wantProblems: []string{
				`filtered "gh__delete_repo" [gh/delete_repo]`,
				`filtered "gh__get_secret" [gh/get_secret]`,
			},
		},
		{
			name:         "allow only",
			rules:        hub,
			srcs:         []Source{{Upstream: "gh", Tools: []string{"a", "b"}, Allow: []string{"a"}}},
			wantTools:    []string{"gh__a -> gh/a"},
			wantProblems: []string{`filtered "gh__b" [gh/b]`},
		},
		{
			name:  "filtered tool does not collide",
			rules: Rules{},
			srcs: []Source{
				{Upstream: "a", Tools: []string{"t"}, Deny: []string{"t"}},
				{Upstream: "b", Tools: []string{"t"}},
			},
			wantTools:    []string{"t -> b/t"},
			wantProblems: []string{`filtered "t" [a/t]`},
		},
		{
			name:  "malformed deny glob fails closed",
			rules: hub,
			srcs:  []Source{{Upstream: "a", Tools: []string{"t"}, Deny: []string{"[x"}}},
			wantProblems: []string{
				`invalid_name "[x" [a/]`,
				`filtered "a__t" [a/t]`,
			},
		},
		{
			name:      "malformed allow glob matches nothing",
			rules:     hub,
			srcs:      []Source{{Upstream: "a", Tools: []string{"t", "u"}, Allow: []string{"[x", "u"}}},
			wantTools: []string{"a__u -> a/u"},
			wantProblems: []string{
				`invalid_name "[x" [a/]`,
				`filtered "a__t" [a/t]`,
			},
		},
		{
			name:         "empty and duplicate names",
			rules:        hub,
			srcs:         []Source{{Upstream: "a", Tools: []string{"", "t", "t"}}},
			wantTools:    []string{"a__t -> a/t"},
			wantProblems: []string{`invalid_name "" [a/]`, `invalid_name "t" [a/t]`},
		},
		{
			name:  "empty and repeated upstream",
			rules: hub,
			srcs: []Source{
				{Upstream: "", Tools: []string{"t"}},
				{Upstream: "a", Tools: []string{"t"}},
				{Upstream: "a", Tools: []string{"u"}},
			},
			wantTools:    []string{"a__t -> a/t"},
			wantProblems: []string{`invalid_name "" []`, `invalid_name "a" []`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab, probs := Build(tt.rules, tt.srcs)
			if d := diff(tt.wantTools, entryLines(tab.Tools())); d != "" {
				t.Errorf("Tools() mismatch (-want +got):\n%s", d)
			}
			if d := diff(tt.wantProblems, problemLines(probs)); d != "" {
				t.Errorf("problems mismatch (-want +got):\n%s", d)
			}
			// Every listed entry routes both ways; nothing else does.
			for _, e := range tab.Tools() {
				if r, ok := tab.Tool(e.Exposed); !ok || r != e.Route {
					t.Errorf("Tool(%q) = %v, %v; want %v, true", e.Exposed, r, ok, e.Route)
				}
				if x, ok := tab.ExposedTool(e.Route.Upstream, e.Route.Name); !ok || x != e.Exposed {
					t.Errorf("ExposedTool(%q, %q) = %q, %v; want %q, true", e.Route.Upstream, e.Route.Name, x, ok, e.Exposed)
				}
			}
			for _, p := range probs {
				if p.Kind == Collision || p.Kind == Filtered {
					if r, ok := tab.Tool(p.Exposed); ok && (p.Kind == Collision || r == p.Routes[0]) {
						t.Errorf("Tool(%q) = %v, true; want withheld (%s)", p.Exposed, r, p.Kind)
					}
					for _, r := range p.Routes {
						if x, ok := tab.ExposedTool(r.Upstream, r.Name); ok {
							t.Errorf("ExposedTool(%q, %q) = %q, true; want withheld", r.Upstream, r.Name, x)
						}
					}
				}
			}
		})
	}
}

func TestLookupNeverSplits(t *testing.T) {
	tab, _ := Build(Rules{Namespace: true}, []Source{{Upstream: "a", Tools: []string{"b__c"}}})
	if r, ok := tab.Tool("a__b__c"); !ok || r != (Route{"a", "b__c"}) {
		t.Errorf("Tool(a__b__c) = %v, %v; want a/b__c", r, ok)
	}
	for _, name := range []string{"a__b", "b__c", "a", "", "A__b__c"} {
		if r, ok := tab.Tool(name); ok {
			t.Errorf("Tool(%q) = %v, true; want not found", name, r)
		}
	}
}

func TestCollisionProblemIsErrCollision(t *testing.T) {
	_, probs := Build(Rules{}, []Source{{Upstream: "a", Tools: []string{"t"}}, {Upstream: "b", Tools: []string{"t"}}})
	if len(probs) != 1 {
		t.Fatalf("got %d problems, want 1: %v", len(probs), probs)
	}
	if !errors.Is(probs[0].Err(), ErrCollision) {
		t.Errorf("errors.Is(%v, ErrCollision) = false", probs[0].Err())
	}
	if err := fmt.Errorf("rebuild: %w", probs[0]); !errors.Is(err, ErrCollision) {
		t.Errorf("wrapped problem does not match ErrCollision")
	}
	_, probs = Build(Rules{Namespace: true}, []Source{{Upstream: "a", Tools: []string{"x.y"}}})
	if len(probs) != 1 || errors.Is(probs[0], ErrCollision) {
		t.Errorf("renamed problem matches ErrCollision: %v", probs)
	}
}

// A collision must never turn into a silent reroute: after a rebuild in
// which one side disappears the name routes to the survivor, but while both
// exist, neither gets it.
func TestCollisionAcrossRebuilds(t *testing.T) {
	both := []Source{{Upstream: "a", Tools: []string{"t"}}, {Upstream: "b", Tools: []string{"t"}}}
	tab, _ := Build(Rules{}, both)
	if r, ok := tab.Tool("t"); ok {
		t.Fatalf("Tool(t) = %v with both upstreams listing it; want withheld", r)
	}
	tab, _ = Build(Rules{}, both[1:])
	if r, ok := tab.Tool("t"); !ok || r.Upstream != "b" {
		t.Fatalf("Tool(t) = %v, %v; want b/t", r, ok)
	}
}

func TestBuildPrompts(t *testing.T) {
	tests := []struct {
		name         string
		rules        Rules
		srcs         []Source
		want         []string
		wantProblems []string
	}{
		{
			name:  "namespaced, not filtered",
			rules: Rules{Namespace: true},
			srcs:  []Source{{Upstream: "a", Prompts: []string{"p", "q"}, Allow: []string{"nothing"}}},
			want:  []string{"a__p -> a/p", "a__q -> a/q"},
		},
		{
			name:         "single-wrap collision",
			rules:        Rules{},
			srcs:         []Source{{Upstream: "a", Prompts: []string{"p"}}, {Upstream: "b", Prompts: []string{"p", "q"}}},
			want:         []string{"q -> b/q"},
			wantProblems: []string{`collision "p" [a/p b/p]`},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tab, probs := Build(tt.rules, tt.srcs)
			if d := diff(tt.want, entryLines(tab.Prompts())); d != "" {
				t.Errorf("Prompts() mismatch (-want +got):\n%s", d)
			}
			if d := diff(tt.wantProblems, problemLines(probs)); d != "" {
				t.Errorf("problems mismatch (-want +got):\n%s", d)
			}
			for _, e := range tab.Prompts() {
				if r, ok := tab.Prompt(e.Exposed); !ok || r != e.Route {
					t.Errorf("Prompt(%q) = %v, %v", e.Exposed, r, ok)
				}
				if x, ok := tab.ExposedPrompt(e.Route.Upstream, e.Route.Name); !ok || x != e.Exposed {
					t.Errorf("ExposedPrompt(%v) = %q, %v", e.Route, x, ok)
				}
			}
		})
	}
}

func TestResources(t *testing.T) {
	srcs := []Source{
		{Upstream: "fs", Resources: []string{"file:///etc/hosts", "shared://x"}, Templates: []string{"file:///{+path}", "file:///home/{user}/notes", "db://{table}"}},
		{Upstream: "home", Templates: []string{"file:///home/{user}/{+rest}", "db://{table}", "q://x{?a,b}", "bad://{"}},
		{Upstream: "other", Resources: []string{"shared://x", "mem://only"}, Templates: []string{"file:///home/{+rest}"}},
	}
	tab, probs := Build(Rules{Namespace: true}, srcs)
	wantProblems := []string{
		`collision "shared://x" [fs/shared://x other/shared://x]`,
		`invalid_name "bad://{" [home/bad://{]`,
		`collision "db://{table}" [fs/db://{table} home/db://{table}]`,
	}
	if d := diff(wantProblems, problemLines(probs)); d != "" {
		t.Errorf("problems mismatch (-want +got):\n%s", d)
	}
	if d := diff([]string{"file:///etc/hosts -> fs/file:///etc/hosts", "mem://only -> other/mem://only"}, entryLines(tab.Resources())); d != "" {
		t.Errorf("Resources() mismatch (-want +got):\n%s", d)
	}
	tests := []struct {
		uri  string
		want string // "" = not routed
	}{
		{"file:///etc/hosts", "fs"},        // exact beats template
		{"file:///etc/passwd", "fs"},       // only file:///{+path}
		{"shared://x", ""},                 // collided exact URI, no template matches
		{"mem://only", "other"},            //
		{"file:///home/ann/notes", "fs"},   // prefix "file:///home/" ties; fs is first
		{"file:///home/ann/todo", "home"},  // {user}/{+rest}: prefix len 13, source order beats other
		{"file:///home/ann", "other"},      // home needs a '/' after {user}; other's {+rest} (13) beats {+path} (8)
		{"file:///home/a/b/notes", "home"}, // {user} has no '/', so fs's notes template fails
		{"db://users", ""},                 // collided template withheld
		{"q://x", "home"},                  // query expansion may be empty
		{"q://x?a=1&b=2", "home"},          //
		{"q://y", ""},                      //
		{"http://elsewhere", ""},           //
		{"file:///home//notes", "other"},   // {user} needs at least one char, so only {+rest} and {+path} match
	}
	for _, tt := range tests {
		got, ok := tab.Resource(tt.uri)
		if tt.want == "" {
			if ok {
				t.Errorf("Resource(%q) = %q; want not routed", tt.uri, got)
			}
			continue
		}
		if !ok || got != tt.want {
			t.Errorf("Resource(%q) = %q, %v; want %q", tt.uri, got, ok, tt.want)
		}
	}
}

func TestCompileTemplate(t *testing.T) {
	tests := []struct {
		tmpl       string
		wantPrefix int
		match      []string
		noMatch    []string
		wantErr    bool
	}{
		{tmpl: "file:///{path}", wantPrefix: 8, match: []string{"file:///a"}, noMatch: []string{"file:///", "file:///a/b"}},
		{tmpl: "file:///{+path}", wantPrefix: 8, match: []string{"file:///", "file:///a/b"}},
		{tmpl: "x://a{/seg}", wantPrefix: 5, match: []string{"x://a", "x://a/b/c"}},
		{tmpl: "x://a{#f}", wantPrefix: 5, match: []string{"x://a#frag"}},
		{tmpl: "x://{a}.{b}", wantPrefix: 4, match: []string{"x://1.2"}, noMatch: []string{"x://1.", "x://12"}},
		{tmpl: "x://lit", wantPrefix: 7, match: []string{"x://lit"}, noMatch: []string{"x://li", "x://lit/"}},
		{tmpl: "x://{v:3}/{list*}", wantPrefix: 4, match: []string{"x://abc/d"}},
		{tmpl: "x://a.b+c/{v}", wantPrefix: 10, match: []string{"x://a.b+c/1"}, noMatch: []string{"x://aXb+c/1", "x://a.bbc/1"}},
		{tmpl: "x://{", wantErr: true},
		{tmpl: "x://{}", wantErr: true},
		{tmpl: "x://{=a}", wantErr: true},
		{tmpl: "x://{a b}", wantErr: true},
		{tmpl: "x://{a:}", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.tmpl, func(t *testing.T) {
			re, prefix, err := compileTemplate(tt.tmpl)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("compileTemplate(%q) succeeded; want error", tt.tmpl)
				}
				return
			}
			if err != nil {
				t.Fatalf("compileTemplate(%q): %v", tt.tmpl, err)
			}
			if prefix != tt.wantPrefix {
				t.Errorf("prefix = %d; want %d", prefix, tt.wantPrefix)
			}
			for _, u := range tt.match {
				if !re.MatchString(u) {
					t.Errorf("%q does not match %q", tt.tmpl, u)
				}
			}
			for _, u := range tt.noMatch {
				if re.MatchString(u) {
					t.Errorf("%q matches %q", tt.tmpl, u)
				}
			}
		})
	}
}

func TestNilTable(t *testing.T) {
	var tab *Table
	if _, ok := tab.Tool("x"); ok {
		t.Error("nil Tool found something")
	}
	if _, ok := tab.Resource("x"); ok {
		t.Error("nil Resource found something")
	}
	if tab.Tools() != nil || tab.Prompts() != nil || tab.Resources() != nil || tab.Templates() != nil {
		t.Error("nil table lists something")
	}
}

func TestToolsReturnsCopy(t *testing.T) {
	tab, _ := Build(Rules{}, []Source{{Upstream: "a", Tools: []string{"t"}}})
	tab.Tools()[0].Exposed = "changed"
	if got := tab.Tools()[0].Exposed; got != "t" {
		t.Errorf("table mutated through Tools(): %q", got)
	}
}

func TestBuildDoesNotKeepSourceSlices(t *testing.T) {
	tools := []string{"t"}
	tab, _ := Build(Rules{}, []Source{{Upstream: "a", Tools: tools}})
	tools[0] = "u"
	if _, ok := tab.Tool("t"); !ok {
		t.Error("table changed when the caller reused its slice")
	}
}

func benchSources() []Source {
	srcs := make([]Source, 50)
	for i := range srcs {
		tools := make([]string, 100)
		for j := range tools {
			tools[j] = fmt.Sprintf("tool_%03d", j)
		}
		srcs[i] = Source{Upstream: fmt.Sprintf("upstream%02d", i), Tools: tools, Deny: []string{"*_099"}}
	}
	return srcs
}

func BenchmarkBuild(b *testing.B) {
	srcs := benchSources()
	b.ReportAllocs()
	for b.Loop() {
		Build(Rules{Namespace: true}, srcs)
	}
}

func BenchmarkTool(b *testing.B) {
	tab, _ := Build(Rules{Namespace: true}, benchSources())
	names := make([]string, 0, 5000)
	for _, e := range tab.Tools() {
		names = append(names, e.Exposed)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if _, ok := tab.Tool(names[i%len(names)]); !ok {
			b.Fatal("not found")
		}
		i++
	}
}
