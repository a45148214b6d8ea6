package policy

import (
	"cmp"
	"regexp"
	"slices"
	"strings"
)

// --- ## custom ---

type ruleKind uint8

const (
	ruleDenyString ruleKind = iota
	ruleDenyIf
	ruleAllowOnly
)

type customRule struct {
	kind        ruleKind
	name        string
	path        []string // field path segments (intent. prefix removed)
	op          string   // contains, starts_with, ends_with, equals, not_equals, matches
	value       string   // deny_if / deny_string
	values      []string // allow_only
	re          *regexp.Regexp
	res         []*regexp.Regexp
	actionScope string // allow_only[action=...]; "" means every intent
	attested    bool
	canon       map[string]any
}

type customRules struct {
	deny  []*customRule // deny_string and deny_if, in declaration order
	allow []*customRule
	controls
}

func (p *parser) compileRegexp(l srcLine, key, expr string) (*regexp.Regexp, error) {
	re, err := regexp.Compile(expr)
	if err != nil {
		return nil, p.errf(l.n, key, "regular expression %q is not supported by the embedded engine (RE2 syntax): %v", expr, err)
	}
	return re, nil
}

func (p *parser) parseCustom(lines []srcLine) (*customRules, map[string]any, error) {
	g := p.g
	r := &customRules{}
	canon := map[string]any{}
	canonRules := []any{}
	allows := map[[2]string]*customRule{} // by action scope and field path
	for _, l := range lines {
		if m := g.generic.FindStringSubmatch(l.text); m != nil {
			if _, err := p.generic(&r.controls, canon, l, m[1], m[2]); err != nil {
				return nil, nil, err
			}
			continue
		}
		if m := g.allowOnly.FindStringSubmatchIndex(l.text); m != nil {
			grp := func(i int) (string, bool) {
				if m[2*i] < 0 {
					return "", false
				}
				return l.text[m[2*i]:m[2*i+1]], true
			}
			scope, scoped := grp(1)
			rawPath, _ := grp(2)
			_, attested := grp(3)
			op, hasOp := grp(4)
			rawValues, _ := grp(5)
			if !p.isV2 && (scoped || attested || hasOp) {
				return nil, nil, p.errf(l.n, "allow_only", "policy syntax requires version 2.0.0")
			}
			scope = strings.TrimSpace(scope)
			if scoped && scope == "" {
				return nil, nil, p.errf(l.n, "allow_only", "action scope must not be empty")
			}
			path := strings.TrimPrefix(rawPath, "intent.")
			if op == "prefix" {
				op = "starts_with"
			}
			op = cmp.Or(op, "equals") // none given
			values := list(rawValues)
			if path == "" {
				return nil, nil, p.errf(l.n, "allow_only", "field path must not be empty")
			}
			if len(values) == 0 {
				return nil, nil, p.errf(l.n, "allow_only."+path, "must contain at least one value")
			}
			sk := [2]string{scope, path}
			rule := allows[sk]
			if rule != nil && rule.op != op {
				return nil, nil, p.errf(l.n, "allow_only."+path, "mixes operators (%s, %s); use one operator per field and action scope", rule.op, op)
			}
			var res []*regexp.Regexp
			if op == "matches" {
				for _, v := range values {
					re, err := p.compileRegexp(l, "allow_only."+path, v)
					if err != nil {
						return nil, nil, err
					}
					res = append(res, re)
				}
			}
			switch {
			case rule == nil:
				rule = &customRule{kind: ruleAllowOnly, name: "allow_only." + path, path: strings.Split(path, "."), op: op, actionScope: scope, attested: attested}
				rule.canon = map[string]any{"type": "allow_field", "fieldPath": path}
				if scoped {
					rule.name, rule.canon["actionScope"] = "allow_only[action="+scope+"]."+path, scope
				}
				rule.canon["name"] = rule.name
				if attested {
					rule.canon["attested"] = true
				}
				if op != "equals" {
					rule.canon["operator"] = op
				}
				allows[sk] = rule
				r.allow = append(r.allow, rule)
				canonRules = append(canonRules, rule.canon)
			case rule.attested != attested:
				return nil, nil, p.errf(l.n, "allow_only."+path, "mixes attested and non-attested rules; use one provenance mode per field and action scope")
			}
			// Repeated lines for one field, scope and operator add to one rule.
			for i, v := range values {
				if !slices.Contains(rule.values, v) {
					rule.values = append(rule.values, v)
					if res != nil {
						rule.res = append(rule.res, res[i])
					}
				}
			}
			rule.canon["values"] = rule.values
			continue
		}
		var rule *customRule
		if m := g.denyIf.FindStringSubmatch(l.text); m != nil {
			path := strings.TrimPrefix(m[1], "intent.")
			if path == "" {
				return nil, nil, p.errf(l.n, "deny_if", "field path must not be empty")
			}
			value := unquote(m[3])
			name := "deny_if." + path + "." + m[2] + ":" + value
			rule = &customRule{kind: ruleDenyIf, name: name, path: strings.Split(path, "."), op: m[2], value: value}
			if m[2] == "matches" {
				re, err := p.compileRegexp(l, "deny_if."+path, value)
				if err != nil {
					return nil, nil, err
				}
				rule.re = re
			}
			rule.canon = map[string]any{"name": name, "type": "field", "fieldPath": path, "operator": m[2], "value": value}
		} else if m := g.denyString.FindStringSubmatch(l.text); m != nil {
			value := unquote(m[1])
			name := "deny_string:" + value
			rule = &customRule{kind: ruleDenyString, name: name, value: value}
			rule.canon = map[string]any{"name": name, "type": "deny_string", "value": value}
		} else {
			return nil, nil, p.errf(l.n, "", "unrecognized custom rule %q", l.text)
		}
		r.deny = append(r.deny, rule)
		canonRules = append(canonRules, rule.canon)
	}
	if len(canonRules) == 0 && r.requireApproval == nil && (r.requireShim == nil || !*r.requireShim) {
		if r.requireShim != nil {
			return nil, nil, p.errf(0, "", "## custom must declare at least one enforceable rule or control")
		}
		return nil, nil, nil
	}
	canon["rules"] = canonRules
	return r, canon, nil
}
