package rules

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/remedy"
)

// Findings scale with the problem, not with its product: a weakness that
// PUBLIC opens to every login role, or one pattern repeated over thousands
// of roles or tables, is one finding that lists its objects
// (Finding.Objects), not one finding per object. An auditor reads one
// decision; the planner still gets every member's change.

// repeatMin is the number of objects from which a rule's findings that
// repeat one pattern (the same attribute missing on many roles, the same
// problem on many tables of a schema) become one finding. Below it each
// object keeps its own finding, which reads better on a small cluster.
// Waivers match the members either way (internal/waiver), so crossing the
// threshold does not undo an accepted finding.
const repeatMin = 10

// problems collects the problems of a rule by pattern, in the order the
// patterns first appear.
type problems struct {
	keys []string
	by   map[string][]Problem
}

func (ps *problems) add(key string, p Problem) {
	if ps.by == nil {
		ps.by = map[string][]Problem{}
	}
	if _, ok := ps.by[key]; !ok {
		ps.keys = append(ps.keys, key)
	}
	ps.by[key] = append(ps.by[key], p)
}

// memberNames lists the members' objects.
func memberNames(ps []Problem) []string {
	out := make([]string, len(ps))
	for i, p := range ps {
		out[i] = p.Object
	}
	return out
}

// merged is one problem standing for members: object and evidence say
// what they share; Objects lists every member's object; the changes are
// the members' changes merged (one SQL change per database, each
// statement once, so REVOKE ... FROM PUBLIC runs once however many roles
// it closes). manual, when set, replaces the members' manual steps (one
// per object, naming it) by one for all of them.
func merged(object, evidence, manual string, ps []Problem) Problem {
	first := ps[0]
	out := Problem{Object: object, Evidence: evidence, Expected: first.Expected, Objects: memberNames(ps), Count: len(ps),
		FixKind: first.FixKind, FixApply: first.FixApply, Database: first.Database, Severity: first.Severity, SevSet: first.SevSet,
		members: ps}
	for _, p := range ps[1:] {
		if p.Database != out.Database {
			out.Database = ""
		}
		if p.SevSet && (!out.SevSet || p.Severity > out.Severity) {
			out.Severity, out.SevSet = p.Severity, true
		}
	}
	type sqlAcc struct {
		sql    *remedy.SQL
		seen   map[string]bool
		breaks []string
		seenB  map[string]bool
	}
	var accs []*sqlAcc
	accIdx := map[string]*sqlAcc{}
	var manuals []string
	seenManual := map[string]bool{}
	var other []remedy.Change
	for _, p := range ps {
		for _, ch := range p.Changes {
			switch {
			case ch.SQL != nil && len(ch.SQL.Undo) == len(ch.SQL.Statements):
				k := ch.SQL.Database + "\x00" + strconv.FormatBool(ch.SQL.Superuser)
				a := accIdx[k]
				if a == nil {
					a = &sqlAcc{sql: &remedy.SQL{Database: ch.SQL.Database, Superuser: ch.SQL.Superuser}, seen: map[string]bool{}, seenB: map[string]bool{}}
					accIdx[k] = a
					accs = append(accs, a)
				}
				for i, st := range ch.SQL.Statements {
					if !a.seen[st] {
						a.seen[st] = true
						a.sql.Statements = append(a.sql.Statements, st)
						a.sql.Undo = append(a.sql.Undo, ch.SQL.Undo[i])
					}
				}
				if ch.Breaks != "" && !a.seenB[ch.Breaks] {
					a.seenB[ch.Breaks] = true
					a.breaks = append(a.breaks, ch.Breaks)
				}
			case ch.Kind() == "manual":
				if manual == "" && !seenManual[ch.Manual] {
					seenManual[ch.Manual] = true
					manuals = append(manuals, ch.Manual)
				}
				if manual != "" && len(manuals) == 0 {
					manuals = append(manuals, manual)
				}
			default:
				other = append(other, ch)
			}
		}
	}
	var fixes []string
	for _, a := range accs {
		out.Changes = append(out.Changes, remedy.Change{SQL: a.sql, Breaks: summarise(a.breaks)})
		fix := strings.Join(a.sql.Statements, ";\n") + ";"
		if a.sql.Database != "" {
			fix += "    -- in database " + quote.Ident(a.sql.Database)
		}
		fixes = append(fixes, fix)
	}
	out.Changes = append(out.Changes, other...)
	if len(manuals) > 0 {
		m := summarise(manuals)
		out.Changes = append(out.Changes, remedy.Change{Manual: m})
		if len(fixes) == 0 {
			fixes = append(fixes, m)
		}
	}
	if len(fixes) == 0 {
		// Findings with advice only: the distinct advice, briefly.
		var fs []string
		seen := map[string]bool{}
		for _, p := range ps {
			if p.Fix != "" && !seen[p.Fix] {
				seen[p.Fix] = true
				fs = append(fs, p.Fix)
			}
		}
		fixes = append(fixes, summarise(fs))
	}
	out.Fix = strings.Join(fixes, "\n")
	return out
}

// summarise joins distinct texts, the first few and how many more.
func summarise(xs []string) string {
	const few = 3
	if len(xs) <= few {
		return strings.Join(xs, "; ")
	}
	return fmt.Sprintf("%s; and %d more like these", strings.Join(xs[:few], "; "), len(xs)-few)
}

// failRepeated reports each pattern of ps: one finding per object when it
// has fewer than repeatMin, else one merged finding that describe names
// (object, evidence and the manual step for all members; manual may be "").
func (c *Check) failRepeated(ps *problems, describe func(key string, members []Problem) (object, evidence, manual string)) {
	for _, k := range ps.keys {
		members := ps.by[k]
		if len(members) < repeatMin {
			for _, p := range members {
				c.Fail(p)
			}
			continue
		}
		obj, ev, man := describe(k, members)
		p := merged(obj, ev, man, members)
		p.describe = func(ms []Problem) (string, string, string) { return describe(k, ms) }
		c.Fail(p)
	}
}

// group is what an aggregated finding needs to be split: its members,
// how its rule describes a set of them, and the rule's own severity (a
// member may have raised the finding's).
type group struct {
	members  []Problem
	describe func(members []Problem) (object, evidence, manual string)
	severity Severity
}

// Split divides an aggregated finding between the members whose object
// in accepts (part) and the others (rest), each described, counted and
// fixed by its own members only: the rest's changes no longer touch the
// members split off, and the part's are only theirs. The rest keeps the
// finding's object, so baselines still recognise it. ok is false when
// the finding keeps no members (not made by an aggregating rule) or in
// takes none or all of them; the caller then decides on the whole.
func (f Finding) Split(in func(object string) bool) (part, rest Finding, ok bool) {
	g := f.group
	if g == nil {
		return f, f, false
	}
	var ins, outs []Problem
	for _, m := range g.members {
		if in(m.Object) {
			ins = append(ins, m)
		} else {
			outs = append(outs, m)
		}
	}
	if len(ins) == 0 || len(outs) == 0 {
		return f, f, false
	}
	part, rest = f.regroup(ins), f.regroup(outs)
	rest.Object = f.Object
	return part, rest, true
}

// regroup is f standing for ms only.
func (f Finding) regroup(ms []Problem) Finding {
	p := ms[0]
	if len(ms) > 1 {
		obj, ev, man := f.group.describe(ms)
		p = merged(obj, ev, man, ms)
		p.describe = f.group.describe
	}
	out := f
	out.Object, out.Location, out.Evidence, out.Expected = p.Object, p.Location, p.Evidence, p.Expected
	out.Objects, out.Count = memberNames(ms), len(ms)
	out.Fix, out.FixKind, out.FixApply, out.Database = p.Fix, p.FixKind, p.FixApply, p.Database
	out.Changes = p.Changes
	out.Severity = f.group.severity
	if p.SevSet {
		out.Severity = p.Severity
	}
	out.group = nil
	if len(ms) > 1 {
		out.group = &group{members: ms, describe: f.group.describe, severity: f.group.severity}
	}
	// The plan sets these again for what is still failing.
	out.Step, out.StepTitle = "", ""
	return out
}

// someNames renders "n: a, b, c, …" for an evidence line.
func someNames(names []string) string {
	const few = 5
	if len(names) <= few {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:few], ", ") + ", …"
}

// stripRole turns the members' objects "role x" into role names for
// evidence.
func stripRole(objs []string) []string {
	out := make([]string, len(objs))
	for i, o := range objs {
		out[i] = strings.TrimPrefix(o, "role ")
	}
	return out
}
