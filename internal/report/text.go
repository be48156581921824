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
	Verbose bool // list passing checks too
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
	fmt.Fprintf(&b, "%s%s · %d passed · %d not checked · %d rules\n", failTxt, waived, s.Pass, s.NotChecked, s.Rules)
	if bl := r.Baseline; bl != nil {
		fmt.Fprintf(&b, "since %s (%s): %d new, %d unchanged (not shown), %d fixed\n", bl.CollectedAt, bl.Path, bl.New, bl.Unchanged, len(bl.Fixed))
	}

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
		fmt.Fprintf(&b, "\n%s\n", p.c(ansiBold, fmt.Sprintf("── %s (%d) %s", a, len(fs), strings.Repeat("─", max(0, 60-len(a))))))
		for _, f := range fs {
			fmt.Fprintf(&b, "%s %s  %s\n", p.c(sevColor(f.Severity), fmt.Sprintf("%-8s", strings.ToUpper(f.Severity.String()))), p.c(ansiBold, f.Rule), f.Title)
			field(&b, p, "object", f.Object)
			field(&b, p, "at", f.Location)
			field(&b, p, "evidence", f.Evidence)
			field(&b, p, "expected", f.Expected)
			fix := f.Fix
			if f.FixApply != "" && fix != "" {
				fix += "\n(takes effect after a " + f.FixApply + ")"
			}
			field(&b, p, "fix", fix)
			if w := f.Waiver; w != nil && w.Expired {
				field(&b, p, "waiver", fmt.Sprintf("expired on %s (%s)", w.Expires, w.Reason))
			}
		}
	}
	if len(waivedList) > 0 {
		fmt.Fprintf(&b, "\n%s\n", p.c(ansiBold, fmt.Sprintf("── waived (%d) %s", len(waivedList), strings.Repeat("─", 51))))
		for _, f := range waivedList {
			fmt.Fprintf(&b, "%s %s  %s [%s]\n", fmt.Sprintf("%-8s", strings.ToUpper(f.Severity.String())), f.Rule, f.Title, f.Object)
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
		for _, f := range notChecked {
			obj := f.Object
			if obj != "" {
				obj = " [" + obj + "]"
			}
			fmt.Fprintf(&b, "%s  %s%s\n", p.c(ansiBold, f.Rule), f.Title, obj)
			field(&b, p, "why", f.Reason)
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
	result := p.c(ansiGreen+ansiBold, "PASS")
	if r.Failed() {
		result = p.c(ansiRed+ansiBold, "FAIL")
	} else if r.Incomplete() {
		result = p.c(ansiYellow+ansiBold, "INCOMPLETE")
	}
	fmt.Fprintf(&b, "\nresult: %s (fail-on %s)\n", result, s.FailOn)
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
	if value == "" {
		return
	}
	lines := strings.Split(value, "\n")
	fmt.Fprintf(b, "  %s %s\n", p.c(ansiDim, fmt.Sprintf("%-9s", label+":")), lines[0])
	for _, l := range lines[1:] {
		fmt.Fprintf(b, "  %s %s\n", strings.Repeat(" ", 9), l)
	}
}

func ownerSuffix(o string) string {
	if o == "" {
		return ""
	}
	return ", owner " + o
}
