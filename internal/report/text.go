package report

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/pgaegis/pgaegis/internal/rules"
)

// TextOptions shape the text report.
type TextOptions struct {
	Color   bool // ANSI colours (only on a terminal)
	Verbose bool // list passing checks too, and every object of every rule (implies All)
	// All lists every object of a rule; otherwise a rule that fails on
	// many objects shows the count and the first PerRule.
	All bool
	// PerRule is how many objects a rule shows without All (default 5).
	PerRule int
	// FirstActions is how many changes "fix these first" lists (default 6).
	FirstActions int
}

const (
	ansiReset  = "\x1b[0m"
	ansiBold   = "\x1b[1m"
	ansiDim    = "\x1b[2m"
	ansiRed    = "\x1b[31m"
	ansiYellow = "\x1b[33m"
	ansiBlue   = "\x1b[34m"
	ansiGreen  = "\x1b[32m"
	ansiMag    = "\x1b[35m"
)

type painter bool

func (p painter) c(code, s string) string {
	if !p {
		return s
	}
	return code + s + ansiReset
}

func sevColor(s rules.Severity) string {
	switch s {
	case rules.Critical:
		return ansiMag + ansiBold
	case rules.High:
		return ansiRed + ansiBold
	case rules.Medium:
		return ansiYellow
	case rules.Low:
		return ansiBlue
	}
	return ansiDim
}

// WriteText writes the human report: a summary, then failures grouped by
// area (worst first) with evidence and fix, then what could not be checked.
func WriteText(w io.Writer, r *Report, o TextOptions) error {
	r = safeCopy(r) // every string escaped for the reader (safe.go)
	p := painter(o.Color)
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s audit of %s\n", p.c(ansiBold, r.Tool), r.ToolVersion, r.Target.Description)
	var meta []string
	if r.ServerVersion != "" {
		meta = append(meta, "PostgreSQL "+r.ServerVersion)
	}
	if r.AuditRole != "" {
		meta = append(meta, "as role "+r.AuditRole)
	}
	if r.Target.OnHost {
		meta = append(meta, "files read")
	}
	meta = append(meta, "collected "+r.CollectedAt.Format("2006-01-02 15:04:05 MST"))
	fmt.Fprintf(&b, "%s\n\n", strings.Join(meta, " · "))

	s := r.Summary
	var sevParts []string
	for sev := rules.Critical; sev >= rules.Info; sev-- {
		if n := s.FailBySev[sev.String()]; n > 0 {
			sevParts = append(sevParts, p.c(sevColor(sev), fmt.Sprintf("%d %s", n, sev)))
		}
	}
	failTxt := fmt.Sprintf("%d failed", s.Fail)
	if len(sevParts) > 0 {
		failTxt += " (" + strings.Join(sevParts, ", ") + ")"
	}
	waived := ""
	if s.Waived > 0 {
		waived = fmt.Sprintf(" · %d waived", s.Waived)
	}
	if bl := r.Baseline; bl != nil {
		// Only what is new is reported: counts of passes and unchecked
		// rules would read as zero, so the line says what the numbers are.
		fmt.Fprintf(&b, "result: %s (fail-on %s) · %s new since the baseline%s · %d unchanged (not shown) · %d fixed · %d rules\n",
			resultWord(p, r), s.FailOn, strings.Replace(failTxt, " failed", " failing", 1), waived, bl.Unchanged, len(bl.Fixed), s.Rules)
		fmt.Fprintf(&b, "baseline: %s, collected %s\n", bl.Path, bl.CollectedAt)
	} else {
		fmt.Fprintf(&b, "result: %s (fail-on %s) · %s%s · %d passed · %d not checked · %d rules\n", resultWord(p, r), s.FailOn, failTxt, waived, s.Pass, s.NotChecked, s.Rules)
	}

	perRule := o.PerRule
	if perRule <= 0 {
		perRule = 5
	}
	if o.All || o.Verbose {
		perRule = 0
	}
	nFirst := o.FirstActions
	if nFirst <= 0 {
		nFirst = 6
	}
	writeFirst(&b, p, r, nFirst)

	byArea := map[string][]rules.Finding{}
	var notChecked, passed, waivedList []rules.Finding
	for _, f := range r.Findings {
		switch f.Status {
		case rules.Fail:
			byArea[f.Area] = append(byArea[f.Area], f)
		case rules.Waived:
			waivedList = append(waivedList, f)
		case rules.NotChecked:
			notChecked = append(notChecked, f)
		default:
			passed = append(passed, f)
		}
	}
	areas := append([]string(nil), rules.AreaOrder...)
	for a := range byArea {
		if areaRank(a) == len(rules.AreaOrder) {
			areas = append(areas, a)
		}
	}
	// Areas with the worst findings first.
	sort.SliceStable(areas, func(i, j int) bool { return worst(byArea[areas[i]]) > worst(byArea[areas[j]]) })
	for _, a := range areas {
		fs := byArea[a]
		if len(fs) == 0 {
			continue
		}
		groups := groupByRule(fs)
		head := fmt.Sprintf("── %s: %d failing in %d rule%s ", a, len(fs), len(groups), plural(len(groups)))
		fmt.Fprintf(&b, "\n%s\n", p.c(ansiBold, head+strings.Repeat("─", max(3, 66-len([]rune(head))))))
		for _, g := range groups {
			writeGroup(&b, p, g, perRule)
		}
	}
	if len(waivedList) > 0 {
		fmt.Fprintf(&b, "\n%s\n", p.c(ansiBold, fmt.Sprintf("── waived (%d) %s", len(waivedList), strings.Repeat("─", 51))))
		for _, f := range waivedList {
			fmt.Fprintf(&b, "%s %s  %s [%s]\n", fmt.Sprintf("%-8s", strings.ToUpper(f.Severity.String())), f.Rule, f.Title, f.Object)
			field(&b, p, "objects", objectsText(f, perRule == 0))
			field(&b, p, "accepted", fmt.Sprintf("%s (until %s%s)", f.Waiver.Reason, f.Waiver.Expires, ownerSuffix(f.Waiver.Owner)))
		}
	}
	if r.Baseline != nil && len(r.Baseline.Fixed) > 0 {
		fmt.Fprintf(&b, "\n%s\n", p.c(ansiBold, fmt.Sprintf("── fixed since the baseline (%d) %s", len(r.Baseline.Fixed), strings.Repeat("─", 32))))
		for _, f := range r.Baseline.Fixed {
			fmt.Fprintf(&b, "%s %s  %s [%s]\n", p.c(ansiGreen, "fixed"), f.Rule, f.Title, f.Object)
		}
	}
	if len(notChecked) > 0 {
		fmt.Fprintf(&b, "\n%s\n", p.c(ansiBold, fmt.Sprintf("── not checked (%d) %s", len(notChecked), strings.Repeat("─", 46))))
		for _, g := range groupByRule(notChecked) {
			writeNotChecked(&b, p, g, perRule)
		}
	}
	if o.Verbose && len(passed) > 0 {
		fmt.Fprintf(&b, "\n%s\n", p.c(ansiBold, fmt.Sprintf("── passed (%d) %s", len(passed), strings.Repeat("─", 51))))
		for _, f := range passed {
			detail := f.Object
			if f.Evidence != "" {
				detail = strings.TrimSpace(detail + ": " + f.Evidence)
			}
			// One line per check: a newline in the evidence is shown, not obeyed.
			detail = strings.ReplaceAll(strings.TrimPrefix(detail, ": "), "\n", `\n`)
			fmt.Fprintf(&b, "%s  %s  %s\n", p.c(ansiGreen, "ok"), f.Rule, detail)
		}
	}
	if len(r.Warnings) > 0 {
		fmt.Fprintf(&b, "\nwarnings:\n")
		for _, w := range r.Warnings {
			fmt.Fprintf(&b, "  %s\n", w)
		}
	}
	fmt.Fprintf(&b, "\nresult: %s (fail-on %s)\n", resultWord(p, r), s.FailOn)
	if r.Incomplete() {
		fmt.Fprintf(&b, "incomplete: %s\n", s.IncompleteReason)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func worst(fs []rules.Finding) rules.Severity {
	w := rules.Severity(-1)
	for _, f := range fs {
		if f.Severity > w {
			w = f.Severity
		}
	}
	return w
}

// field writes "  label: value", indenting continuation lines.
func field(b *strings.Builder, p painter, label, value string) {
	indentedField(b, p, "  ", label, value)
}

func indentedField(b *strings.Builder, p painter, indent, label, value string) {
	if value == "" {
		return
	}
	lines := strings.Split(value, "\n")
	fmt.Fprintf(b, "%s%s %s\n", indent, p.c(ansiDim, fmt.Sprintf("%-9s", label+":")), lines[0])
	for _, l := range lines[1:] {
		fmt.Fprintf(b, "%s%s %s\n", indent, strings.Repeat(" ", 9), l)
	}
}

func ownerSuffix(o string) string {
	if o == "" {
		return ""
	}
	return ", owner " + o
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// writeFirst writes "fix these first": the changes that close the most
// critical and high risk, each with its edit or command.
func writeFirst(b *strings.Builder, p painter, r *Report, n int) {
	acts := FirstActions(r, n)
	if len(acts) == 0 {
		return
	}
	closes, hi, allHi := 0, 0, r.Summary.FailBySev["critical"]+r.Summary.FailBySev["high"]
	for _, a := range acts {
		closes += len(a.Findings)
		hi += a.BySev[rules.Critical] + a.BySev[rules.High]
	}
	verb := "close"
	if len(acts) == 1 {
		verb = "closes"
	}
	fmt.Fprintf(b, "\n%s %d change%s %s %d of %d failing findings (%d of %d critical or high)\n",
		p.c(ansiBold, "fix these first:"), len(acts), plural(len(acts)), verb, closes, r.Summary.Fail, hi, allHi)
	for i, a := range acts {
		then := ""
		if a.Apply != "" {
			then = ", then " + a.Apply
		}
		fmt.Fprintf(b, "%2d. %s%s: closes %d (%s)\n", i+1, p.c(ansiBold, a.Title), then, len(a.Findings), sevCounts(a.BySev))
		// At most 3 lines an action, 15 for pg_hba.conf (its new lines are
		// the one edit to make): six actions keep the summary within 40 lines.
		limit := 2
		if a.Kind == "hba" {
			limit = 14
		}
		hidden := a.More
		if len(a.Change) > limit+1 || (len(a.Change) == limit+1 && hidden > 0) {
			hidden += len(a.Change) - limit
		} else {
			limit = len(a.Change)
		}
		for _, l := range a.Change[:limit] {
			fmt.Fprintf(b, "      %s\n", l)
		}
		if hidden > 0 {
			fmt.Fprintf(b, "      … and %d more lines under the rules below\n", hidden)
		}
	}
}

// writeGroup writes one rule and its objects: what is shared (expected,
// fix) once, then each object with what is its own.
func writeGroup(b *strings.Builder, p painter, g *RuleGroup, perRule int) {
	count := ""
	if len(g.Findings) > 1 {
		count = fmt.Sprintf("  (%d)", len(g.Findings))
	}
	fmt.Fprintf(b, "%s %s  %s%s\n", p.c(sevColor(g.Severity), fmt.Sprintf("%-8s", strings.ToUpper(g.Severity.String()))), p.c(ansiBold, g.Rule), g.Title, count)
	one := len(g.Findings) == 1
	all := perRule == 0
	var own []string
	if !one {
		field(b, p, "expected", g.SameExpected)
		field(b, p, "fix", clipFix(withApply(g.SameFix, g.Findings[0].FixApply), all))
		if g.SameFix == "" {
			if shared, o, ok := splitSharedSQL(g.Findings); ok {
				// The statements every object needs, once; each object
				// keeps only its own.
				field(b, p, "fix, all", withApply(strings.Join(shared, "\n"), g.Findings[0].FixApply))
				own = o
			}
		}
	}
	for i, f := range g.Findings {
		if perRule > 0 && i == perRule {
			fmt.Fprintf(b, "  … and %d more (-v or --all lists every one)\n", len(g.Findings)-perRule)
			break
		}
		if one {
			field(b, p, "object", f.Object)
			field(b, p, "objects", objectsText(f, all))
			field(b, p, "at", f.Location)
			if !strings.Contains(f.Object, f.Evidence) {
				field(b, p, "evidence", f.Evidence)
			}
			field(b, p, "expected", f.Expected)
			field(b, p, "fix", clipFix(withApply(f.Fix, f.FixApply), all))
		} else {
			head := f.Object
			if f.Location != "" {
				head += "  at " + f.Location
			}
			if f.Severity != g.Severity {
				head += "  (" + f.Severity.String() + ")"
			}
			fmt.Fprintf(b, "  • %s\n", head)
			subfield(b, p, "objects", objectsText(f, all))
			if f.Evidence != "" && !strings.Contains(f.Object, f.Evidence) {
				subfield(b, p, "evidence", f.Evidence)
			}
			if g.SameExpected == "" {
				subfield(b, p, "expected", f.Expected)
			}
			switch {
			case own != nil:
				subfield(b, p, "fix", clipFix(own[i], all))
			case g.SameFix == "":
				subfield(b, p, "fix", clipFix(withApply(f.Fix, f.FixApply), all))
			}
		}
		if w := f.Waiver; w != nil && w.Expired {
			field(b, p, "waiver", fmt.Sprintf("expired on %s (%s)", w.Expires, w.Reason))
		}
	}
}

func withApply(fix, apply string) string {
	// Most config fixes already end in ", then reload".
	if apply != "" && fix != "" && !strings.Contains(fix, "then "+apply) {
		return fix + "\n(takes effect after a " + apply + ")"
	}
	return fix
}

// writeNotChecked lists a rule that could not be decided, its reason once
// when every object shares it.
func writeNotChecked(b *strings.Builder, p painter, g *RuleGroup, perRule int) {
	same := g.Findings[0].Reason
	for _, f := range g.Findings[1:] {
		if f.Reason != same {
			same = ""
		}
	}
	if len(g.Findings) == 1 || same != "" {
		var objs []string
		for _, f := range g.Findings {
			if f.Object != "" {
				objs = append(objs, f.Object)
			}
		}
		obj := ""
		if len(objs) > 0 {
			n := len(objs)
			if perRule > 0 && n > perRule {
				objs = append(objs[:perRule], fmt.Sprintf("and %d more", n-perRule))
			}
			obj = " [" + strings.Join(objs, ", ") + "]"
		}
		// One line each: what could not be checked is context, not work.
		fmt.Fprintf(b, "%s  %s%s: %s\n", p.c(ansiBold, g.Rule), g.Title, obj, p.c(ansiDim, strings.ReplaceAll(same, "\n", " ")))
		return
	}
	fmt.Fprintf(b, "%s  %s  (%d)\n", p.c(ansiBold, g.Rule), g.Title, len(g.Findings))
	for i, f := range g.Findings {
		if perRule > 0 && i == perRule {
			fmt.Fprintf(b, "  … and %d more (-v or --all lists every one)\n", len(g.Findings)-perRule)
			break
		}
		fmt.Fprintf(b, "  • %s\n", f.Object)
		subfield(b, p, "why", f.Reason)
	}
}

// subfield is a field under an object bullet.
func subfield(b *strings.Builder, p painter, label, value string) {
	indentedField(b, p, "      ", label, value)
}

func resultWord(p painter, r *Report) string {
	switch {
	case r.Failed():
		return p.c(ansiRed+ansiBold, "FAIL")
	case r.Incomplete():
		return p.c(ansiYellow+ansiBold, "INCOMPLETE")
	}
	return p.c(ansiGreen+ansiBold, "PASS")
}
