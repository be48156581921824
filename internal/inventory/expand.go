package inventory

import (
	"fmt"
	"sort"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// forVars reads a for: mapping (variable: "01..40" or a list of values)
// into every combination of values. The name template must use each
// variable, so generated names cannot collide among themselves.
func (l *loader) forVars(path string, n *yaml.Node, nameT string, nameN *yaml.Node) ([]map[string]string, bool) {
	if n.Kind != yaml.MappingNode || len(n.Content) == 0 {
		l.errs.add(posOf(path, n), "for is a mapping of variables to values (for: {n: 1..40})")
		return nil, false
	}
	type variable struct {
		name   string
		values []string
	}
	var vars []variable
	total := 1
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		if k.Kind != yaml.ScalarNode || !varRE.MatchString(k.Value) {
			l.errs.add(posOf(path, k), "for: variable name %q: use lower-case letters, digits and _", k.Value)
			return nil, false
		}
		for _, o := range vars {
			if o.name == k.Value {
				l.errs.add(posOf(path, k), "for: variable %q given twice", k.Value)
				return nil, false
			}
		}
		if nameN != nil && nameT != "" && !strings.Contains(nameT, "{"+k.Value+"}") {
			l.errs.add(posOf(path, nameN), "the name of a generated server must use {%s}, so each one gets its own name", k.Value)
			return nil, false
		}
		vals, ok := l.forValues(path, k.Value, v)
		if !ok {
			return nil, false
		}
		total *= len(vals)
		if total > maxExpand {
			l.errs.add(posOf(path, n), "for: generates more than %d servers", maxExpand)
			return nil, false
		}
		vars = append(vars, variable{k.Value, vals})
	}
	combos := []map[string]string{{}}
	for _, v := range vars {
		var next []map[string]string
		for _, c := range combos {
			for _, val := range v.values {
				m := make(map[string]string, len(c)+1)
				for k, x := range c {
					m[k] = x
				}
				m[v.name] = val
				next = append(next, m)
			}
		}
		combos = next
	}
	return combos, true
}

// forValues reads "A..B" (inclusive; a leading zero in A pads every
// value to A's width: 01..40 gives 01 to 40) or a list of plain values.
func (l *loader) forValues(path, name string, n *yaml.Node) ([]string, bool) {
	if n.Kind == yaml.SequenceNode {
		var out []string
		seen := map[string]bool{}
		for _, it := range n.Content {
			s, ok := l.scalar(path, it, "for: "+name)
			if !ok {
				return nil, false
			}
			if !nameRE.MatchString(s) {
				l.errs.add(posOf(path, it), "for: %s: value %q: use letters, digits, '.', '_' and '-'", name, s)
				return nil, false
			}
			if seen[s] {
				l.errs.add(posOf(path, it), "for: %s: value %q given twice", name, s)
				return nil, false
			}
			seen[s] = true
			out = append(out, s)
		}
		if len(out) == 0 {
			l.errs.add(posOf(path, n), "for: %s has no values", name)
			return nil, false
		}
		if len(out) > maxExpand {
			l.errs.add(posOf(path, n), "for: generates more than %d servers", maxExpand)
			return nil, false
		}
		return out, true
	}
	s, ok := l.scalar(path, n, "for: "+name)
	if !ok {
		return nil, false
	}
	m := rangeRE.FindStringSubmatch(s)
	if m == nil {
		l.errs.add(posOf(path, n), "for: %s: %q is not a range (1..40, 01..40, 5432..5439) or a list", name, s)
		return nil, false
	}
	a, _ := strconv.Atoi(m[1])
	b, _ := strconv.Atoi(m[2])
	if b < a {
		l.errs.add(posOf(path, n), "for: %s: range %q runs backwards", name, s)
		return nil, false
	}
	if b-a+1 > maxExpand {
		l.errs.add(posOf(path, n), "for: generates more than %d servers", maxExpand)
		return nil, false
	}
	width := 0
	if len(m[1]) > 1 && m[1][0] == '0' {
		width = len(m[1])
	}
	out := make([]string, 0, b-a+1)
	for i := a; i <= b; i++ {
		out = append(out, fmt.Sprintf("%0*d", width, i))
	}
	return out, true
}

// subst replaces {var} with its value for each variable of vars. Longer
// names first is not needed: the braces delimit each name.
func subst(s string, vars map[string]string) string {
	if len(vars) == 0 || !strings.Contains(s, "{") {
		return s
	}
	ks := make([]string, 0, len(vars))
	for k := range vars {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	pairs := make([]string, 0, 2*len(ks))
	for _, k := range ks {
		pairs = append(pairs, "{"+k+"}", vars[k])
	}
	return strings.NewReplacer(pairs...).Replace(s)
}
