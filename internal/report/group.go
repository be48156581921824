package report

import (
	"fmt"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"

	"github.com/pgaegis/pgaegis/internal/rules"
	"github.com/pgaegis/pgaegis/internal/sqllex"
	"github.com/pgaegis/pgaegis/internal/textsafe"
)

// The human reports do not list findings one block each: a catalog of
// 14,000 tables gives thousands of failures of a few rules. They show
// what to change first (actions), then each rule once with its objects.

// RuleGroup is the findings of one rule with one status, in file and
// line order.
type RuleGroup struct {
	Rule     string
	Title    string
	Area     string
	Status   rules.Status
	Severity rules.Severity // the worst of the findings
	Findings []rules.Finding
	// SameFix / SameExpected are set when every finding shares it: the
	// reports then show it once for the rule.
	SameFix      string
	SameExpected string
}

// groupByRule groups findings (already in SortFindings order) by rule and
// status, keeping the order in which each group first appears, and sorts
// each group's findings by location (file, then line as a number).
func groupByRule(fs []rules.Finding) []*RuleGroup {
	var out []*RuleGroup
	idx := map[string]*RuleGroup{}
	for _, f := range fs {
		k := f.Rule + "\x00" + string(f.Status)
		g := idx[k]
		if g == nil {
			g = &RuleGroup{Rule: f.Rule, Title: f.Title, Area: f.Area, Status: f.Status, Severity: f.Severity}
			idx[k] = g
			out = append(out, g)
		}
		if f.Severity > g.Severity {
			g.Severity = f.Severity
		}
		g.Findings = append(g.Findings, f)
	}
	for _, g := range out {
		sort.SliceStable(g.Findings, func(i, j int) bool { return lessPlace(g.Findings[i], g.Findings[j]) })
		g.SameFix, g.SameExpected = g.Findings[0].Fix, g.Findings[0].Expected
		for _, f := range g.Findings[1:] {
			if f.Fix != g.SameFix {
				g.SameFix = ""
			}
			if f.Expected != g.SameExpected {
				g.SameExpected = ""
			}
		}
		if len(g.Findings) == 1 {
			g.SameFix, g.SameExpected = "", ""
		}
	}
	return out
}

// splitLine splits "file:12" into ("file", 12); a location without a
// line number gives -1 (it sorts before the lines of its file).
func splitLine(loc string) (string, int) {
	if i := strings.LastIndexByte(loc, ':'); i >= 0 {
		if n, err := strconv.Atoi(loc[i+1:]); err == nil {
			return loc[:i], n
		}
	}
	return loc, -1
}

// lessPlace orders by file, then line number (so :9 comes before :10),
// then object.
func lessPlace(a, b rules.Finding) bool {
	af, al := splitLine(a.Location)
	bf, bl := splitLine(b.Location)
	if af != bf {
		return af < bf
	}
	if al != bl {
		return al < bl
	}
	return naturalLess(a.Object, b.Object)
}

// naturalLess compares strings with runs of digits compared as numbers
// (table t9 before t10).
func naturalLess(a, b string) bool {
	for a != "" && b != "" {
		ad, bd := isDigit(a[0]), isDigit(b[0])
		if ad && bd {
			i, j := digits(a), digits(b)
			na, nb := strings.TrimLeft(a[:i], "0"), strings.TrimLeft(b[:j], "0")
			if len(na) != len(nb) {
				return len(na) < len(nb)
			}
			if na != nb {
				return na < nb
			}
			a, b = a[i:], b[j:]
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }

func digits(s string) int {
	i := 0
	for i < len(s) && isDigit(s[i]) {
		i++
	}
	return i
}

// Action is one change that closes several failing findings: one edit of
// pg_hba.conf, the settings of postgresql.conf (ALTER SYSTEM), or the
// statements about one object (a role, a function, a schema).
type Action struct {
	Kind   string // "hba", "settings", "file" or "object"
	Target string // the file, or the object
	// Title says what to change, in a few words.
	Title string
	// Change is the command or edit, a few lines at most; More counts the
	// further distinct fix lines left to the rules' own blocks.
	Change []string
	More   int
	// Apply is "reload" or "restart" when the change needs one.
	Apply    string
	Findings []rules.Finding
	Weight   int
	Worst    rules.Severity
	BySev    map[rules.Severity]int
	Rules    []string
}

// severityWeight ranks actions: a critical finding outweighs a few high
// ones, and low findings barely count.
var severityWeight = map[rules.Severity]int{rules.Critical: 16, rules.High: 6, rules.Medium: 2, rules.Low: 1}

// settingLine is a fix that starts like a postgresql.conf line.
var settingLine = regexp.MustCompile(`^[a-z_][a-z0-9_.]* = `)

// actionKey says which change closes a failing finding.
func actionKey(f rules.Finding) (kind, target string) {
	// The plan says it: findings one step closes are one change.
	if f.Step != "" {
		return "step", f.Step
	}
	// A fix only the administrator can make is its own item, not part of
	// a file's rewrite that the plan does not do.
	if manualOnly(f) {
		return "object", f.Object
	}
	file, _ := splitLine(f.Location)
	base := path.Base(file)
	switch {
	case f.FixKind == rules.FixConfig && base == "pg_hba.conf":
		return "hba", file
	case strings.HasPrefix(f.Object, "setting ") && strings.HasPrefix(f.Fix, "ALTER SYSTEM"),
		f.FixKind == rules.FixConfig && (base == "postgresql.conf" || base == "postgresql.auto.conf"),
		// A finding about something else (the TLS probe of a port) whose fix
		// is setting lines: the same postgresql.conf change closes it.
		f.FixKind == rules.FixConfig && file == "" && settingLine.MatchString(f.Fix):
		return "settings", "postgresql.conf"
	}
	obj := f.Object
	// "role app via function f(x)": revoking from the function closes the
	// chain of every role that goes through it.
	if _, via, ok := strings.Cut(obj, " via "); ok {
		obj = via
	}
	obj = strings.ReplaceAll(obj, `"`, "")
	return "object", obj
}

// manualOnly reports whether every change the finding needs is manual.
func manualOnly(f rules.Finding) bool {
	for _, c := range f.Changes {
		if c.Manual == "" {
			return false
		}
	}
	return len(f.Changes) > 0
}

// Actions groups the failing findings by the change that fixes them,
// heaviest (severity-weighted count) first.
func Actions(fs []rules.Finding) []*Action {
	idx := map[string]*Action{}
	var out []*Action
	byFix := map[string]*Action{}
	for _, f := range fs {
		if f.Status != rules.Fail {
			continue
		}
		kind, target := actionKey(f)
		k := kind + "\x00" + target
		a := idx[k]
		if a == nil && kind == "object" && f.Fix != "" {
			// The same statement fixes findings about different objects.
			a = byFix[f.Fix]
		}
		if a == nil {
			a = &Action{Kind: kind, Target: target, BySev: map[rules.Severity]int{}, Worst: f.Severity}
			idx[k] = a
			out = append(out, a)
		}
		if f.Fix != "" && byFix[f.Fix] == nil {
			byFix[f.Fix] = a
		}
		a.Findings = append(a.Findings, f)
		a.Weight += severityWeight[f.Severity]
		a.BySev[f.Severity]++
		if f.Severity > a.Worst {
			a.Worst = f.Severity
		}
		if !containsStr(a.Rules, f.Rule) {
			a.Rules = append(a.Rules, f.Rule)
		}
		if f.FixApply == "restart" || (f.FixApply == "reload" && a.Apply == "") {
			a.Apply = f.FixApply
		}
	}
	for _, a := range out {
		a.describe()
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Weight != out[j].Weight {
			return out[i].Weight > out[j].Weight
		}
		return out[i].Worst > out[j].Worst
	})
	return out
}

func containsStr(xs []string, s string) bool {
	for _, x := range xs {
		if x == s {
			return true
		}
	}
	return false
}

// describe fills the title and the change.
func (a *Action) describe() {
	switch a.Kind {
	case "hba":
		a.Title = "rewrite " + a.Target
		a.Change = hbaEdit(a.Findings)
	case "settings":
		var names []string
		for _, f := range a.Findings {
			n := strings.TrimPrefix(f.Object, "setting ")
			if strings.HasPrefix(f.Object, "setting ") && !containsStr(names, n) {
				names = append(names, n)
			}
		}
		a.Title = "postgresql.conf (or ALTER SYSTEM): " + listSome(names, 4)
		a.Change, a.More = firstFixLines(a.Findings, "", 3)
	case "step":
		// A summary can list a dozen settings: the change lines say the rest.
		a.Title = "step " + a.Target + " of `pgaegis fix`: " + textsafe.Shorten(a.Findings[0].StepTitle, 100)
		a.Change, a.More = stepLines(a.Findings, 3)
	default:
		a.Title = a.Target
		a.Change, a.More = firstFixLines(a.Findings, a.Target, 3)
	}
}

// stepLines are the first distinct lines of the findings' fixes (each
// finding shows its own part of the step), without the "(step N ...)"
// notes, which the title already gives.
func stepLines(fs []rules.Finding, max int) ([]string, int) {
	var lines []string
	// A set, not a scan of the lines so far: a step can close findings
	// with thousands of statements.
	seen := map[string]bool{}
	more := 0
	for _, f := range fs {
		for _, l := range strings.Split(f.Fix, "\n") {
			if strings.TrimSpace(l) == "" || strings.HasPrefix(l, "(step ") || seen[l] {
				continue
			}
			seen[l] = true
			if len(lines) == max {
				more++
				continue
			}
			lines = append(lines, l)
		}
	}
	return lines, more
}

// hbaEdit is the new pg_hba.conf lines: for each line with findings, the
// fix of its worst finding (a replacement line), then the lines to insert
// or append, so the whole edit reads as one.
func hbaEdit(fs []rules.Finding) []string {
	best := map[int]rules.Finding{}
	var order []int
	var other []string
	for _, f := range fs {
		_, n := splitLine(f.Location)
		switch {
		case n >= 0 && strings.Contains(f.Fix, "    # replaces "):
		case strings.Contains(f.Fix, "    # insert ") || strings.Contains(f.Fix, "    # append "):
			// New lines (a reject before a rule, a final reject).
			for _, l := range strings.Split(f.Fix, "\n") {
				if l = hbaLine(l); l != "" && !containsStr(other, l) {
					other = append(other, l)
				}
			}
			continue
		default:
			continue // advice in words ("narrow the address of ..."), shown under its rule
		}
		cur, ok := best[n]
		if !ok {
			order = append(order, n)
		}
		if !ok || f.Severity > cur.Severity {
			best[n] = f
		}
	}
	sort.Ints(order)
	var out []string
	for _, n := range order {
		out = append(out, fmt.Sprintf("line %d: %s", n, hbaLine(best[n].Fix)))
	}
	out = append(out, other...)
	return out
}

// hbaLine drops the path from a fix comment ("# replaces /x/pg_hba.conf:2,
// then reload"): the action names the file once.
func hbaLine(fix string) string {
	if i := strings.Index(fix, "    # "); i >= 0 {
		verb := strings.Fields(fix[i+6:])
		if len(verb) > 0 {
			switch verb[0] {
			case "replaces":
				return fix[:i]
			case "insert", "append":
				return fix[:i] + "    # " + verb[0] + pos(fix[i+6:])
			}
		}
	}
	return fix
}

// pos keeps "before line N" of "insert before /x/pg_hba.conf:N, then reload".
func pos(s string) string {
	if i := strings.Index(s, " before "); i >= 0 {
		rest := s[i+8:]
		if j := strings.IndexByte(rest, ','); j >= 0 {
			rest = rest[:j]
		}
		if _, n := splitLine(rest); n >= 0 {
			return fmt.Sprintf(" before line %d", n)
		}
	}
	if strings.HasPrefix(s, "append") {
		return " at the end"
	}
	return ""
}

// firstFixLines is the distinct lines (SQL: statements) of the fixes,
// worst first, at most max; the count of the others is returned too.
func firstFixLines(fs []rules.Finding, target string, max int) ([]string, int) {
	// The fix of a finding about the target itself first: revoking on the
	// function closes every chain through it, whatever the role.
	sorted := append([]rules.Finding(nil), fs...)
	sort.SliceStable(sorted, func(i, j int) bool {
		ai, aj := sorted[i].Object == target, sorted[j].Object == target
		if ai != aj {
			return ai
		}
		return sorted[i].Severity > sorted[j].Severity
	})
	var out []string
	more := 0
	for _, f := range sorted {
		pieces := strings.Split(f.Fix, "\n")
		if f.FixKind == rules.FixSQL {
			// By statement: the ALTER FUNCTION that six roles' fixes share is one.
			pieces = sqlStatements(f.Fix)
		}
		for _, l := range pieces {
			l = strings.TrimSpace(l)
			// The action's title says "then reload": the reload call of
			// every ALTER SYSTEM would crowd out the settings.
			if l == "" || containsStr(out, l) || l == "SELECT pg_reload_conf();" {
				continue
			}
			if len(out) == max {
				more++
				continue
			}
			out = append(out, l)
		}
	}
	return out, more
}

func listSome(xs []string, n int) string {
	if len(xs) <= n {
		return strings.Join(xs, ", ")
	}
	return strings.Join(xs[:n], ", ") + fmt.Sprintf(" and %d more", len(xs)-n)
}

// sevCounts renders "2 critical, 16 high".
func sevCounts(by map[rules.Severity]int) string {
	var parts []string
	for s := rules.Critical; s >= rules.Info; s-- {
		if by[s] > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", by[s], s))
		}
	}
	return strings.Join(parts, ", ")
}

// FirstActions is what to fix first: the heaviest actions that close a
// critical or high finding, at most n.
func FirstActions(r *Report, n int) []*Action {
	var out []*Action
	for _, a := range Actions(r.Findings) {
		if a.Worst < rules.High {
			continue
		}
		out = append(out, a)
		if len(out) == n {
			break
		}
	}
	return out
}

// ruleInfo finds a rule's metadata (rationale, references) by id.
func ruleInfo() map[string]*rules.Rule {
	m := map[string]*rules.Rule{}
	for _, r := range rules.All() {
		m[r.ID] = r
	}
	return m
}

// sqlStatements splits a SQL fix into its statements, each with the
// comment that follows it on its line, lexed as the server would (a ';'
// in a literal or a comment does not split).
func sqlStatements(fix string) []string {
	toks := sqllex.Tokens(fix)
	var out []string
	start := 0
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		if t.Kind != sqllex.Op || fix[t.Start:t.End] != ";" {
			continue
		}
		end := t.End
		j := i + 1
		for j < len(toks) && toks[j].Kind == sqllex.Space && !strings.Contains(fix[toks[j].Start:toks[j].End], "\n") {
			j++
		}
		if j < len(toks) && toks[j].Kind == sqllex.Comment {
			end, i = toks[j].End, j
		}
		if st := strings.TrimSpace(fix[start:end]); st != "" {
			out = append(out, st)
		}
		start = end
	}
	if rest := strings.TrimSpace(fix[start:]); rest != "" {
		out = append(out, rest)
	}
	return out
}

// splitSharedSQL finds the statements every SQL fix of a group holds
// (PRIV-02.chains: the same ALTER FUNCTION for each role), so a report
// shows them once; own[i] is what remains of finding i's fix. ok is false
// when nothing is shared.
func splitSharedSQL(fs []rules.Finding) (shared []string, own []string, ok bool) {
	if len(fs) < 2 {
		return nil, nil, false
	}
	per := make([][]string, len(fs))
	for i, f := range fs {
		if f.FixKind != rules.FixSQL || f.Fix == "" {
			return nil, nil, false
		}
		per[i] = sqlStatements(f.Fix)
	}
	for _, st := range per[0] {
		in := true
		for _, p := range per[1:] {
			in = in && containsStr(p, st)
		}
		if in && !containsStr(shared, st) {
			shared = append(shared, st)
		}
	}
	// Only the "-- in database" comment or the step note in common is
	// nothing to show once.
	real := false
	for _, st := range shared {
		real = real || !(strings.HasPrefix(st, "--") || strings.HasPrefix(st, "("))
	}
	if !real {
		return nil, nil, false
	}
	own = make([]string, len(fs))
	for i, p := range per {
		var rest []string
		for _, st := range p {
			if !containsStr(shared, st) {
				rest = append(rest, st)
			}
		}
		if len(rest) == 0 {
			return nil, nil, false // then the fixes are the same, shown once already
		}
		own[i] = strings.Join(rest, "  ")
	}
	return shared, own, true
}
