package report

import (
	"fmt"
	"io"
	"strings"

	"github.com/pgaegis/pgaegis/internal/rules"
)

// MarkdownOptions shape the Markdown report.
type MarkdownOptions struct {
	// All lists every object of a rule; otherwise the first PerRule (default 10).
	All     bool
	PerRule int
}

// WriteMarkdown writes a report for pull requests and tickets.
func WriteMarkdown(w io.Writer, r *Report) error { return WriteMarkdownWith(w, r, MarkdownOptions{}) }

// WriteMarkdownWith writes a summary table, what to fix first, then each
// failing rule once with its objects; passes and not-checked items fold
// away.
func WriteMarkdownWith(w io.Writer, r *Report, o MarkdownOptions) error {
	r = safeCopy(r) // every string escaped for the reader (safe.go)
	perRule := o.PerRule
	if perRule <= 0 {
		perRule = 10
	}
	if o.All {
		perRule = 0
	}
	var b strings.Builder
	fmt.Fprintf(&b, "## pgaegis audit: %s\n\n", mdEscape(r.Target.Description))
	var meta []string
	if r.ServerVersion != "" {
		meta = append(meta, "PostgreSQL "+r.ServerVersion)
	}
	meta = append(meta, "collected "+r.CollectedAt.Format("2006-01-02 15:04 MST"), "result **"+strings.ToUpper(r.Summary.Result)+"** (fail-on "+r.Summary.FailOn+")")
	fmt.Fprintf(&b, "%s\n\n", strings.Join(meta, " · "))
	b.WriteString("| severity | failed |\n|---|---:|\n")
	for sev := rules.Critical; sev >= rules.Info; sev-- {
		fmt.Fprintf(&b, "| %s | %d |\n", sev, r.Summary.FailBySev[sev.String()])
	}
	fmt.Fprintf(&b, "\n%d passed · %d not checked · %d waived\n", r.Summary.Pass, r.Summary.NotChecked, r.Summary.Waived)
	if bl := r.Baseline; bl != nil {
		fmt.Fprintf(&b, "\nSince %s: %d new, %d fixed, %d unchanged.\n", bl.CollectedAt, bl.New, len(bl.Fixed), bl.Unchanged)
	}
	if acts := FirstActions(r, 6); len(acts) > 0 {
		b.WriteString("\n### Fix these first\n\n")
		for i, a := range acts {
			then := ""
			if a.Apply != "" {
				then = ", then " + a.Apply
			}
			fmt.Fprintf(&b, "%d. **%s**%s: closes %d (%s; %s)\n", i+1, mdEscape(a.Title), then, len(a.Findings), sevCounts(a.BySev), strings.Join(a.Rules, ", "))
			body := strings.Join(a.Change, "\n")
			if a.More > 0 {
				body += fmt.Sprintf("\n-- … and %d more under the rules below", a.More)
			}
			fc := fence(body)
			fmt.Fprintf(&b, "\n%s\n%s\n%s\n\n", fc, body, fc)
		}
	}
	var fails, other []rules.Finding
	for _, f := range r.Findings {
		if f.Status == rules.Fail {
			fails = append(fails, f)
		} else {
			other = append(other, f)
		}
	}
	if len(fails) > 0 {
		b.WriteString("\n### Failures\n")
	}
	for _, g := range groupByRule(fails) {
		count := ""
		if len(g.Findings) > 1 {
			count = fmt.Sprintf(" (%d)", len(g.Findings))
		}
		fmt.Fprintf(&b, "\n#### %s `%s` %s%s\n\n", sevBadge(g.Severity), g.Rule, mdEscape(g.Title), count)
		if len(g.Findings) == 1 {
			f := g.Findings[0]
			for _, kv := range [][2]string{{"Object", f.Object}, {"Objects", objectsText(f, perRule == 0)}, {"Location", f.Location}, {"Evidence", f.Evidence}, {"Expected", f.Expected}} {
				if kv[1] != "" {
					fmt.Fprintf(&b, "- **%s:** %s\n", kv[0], mdCode(kv[1]))
				}
			}
			mdFix(&b, "Fix", clipped(f, perRule == 0), "")
			continue
		}
		if g.SameExpected != "" {
			fmt.Fprintf(&b, "- **Expected:** %s\n", mdCode(g.SameExpected))
		}
		if g.SameFix != "" {
			mdFix(&b, "Fix, for every object", clipped(g.Findings[0], perRule == 0), "")
		}
		for i, f := range g.Findings {
			if perRule > 0 && i == perRule {
				fmt.Fprintf(&b, "- … and %d more\n", len(g.Findings)-perRule)
				break
			}
			line := "- " + mdCode(f.Object)
			if f.Location != "" {
				line += " at " + mdCode(f.Location)
			}
			if f.Severity != g.Severity {
				line += " (" + f.Severity.String() + ")"
			}
			if f.Evidence != "" && !strings.Contains(f.Object, f.Evidence) {
				line += ": " + mdCell(f.Evidence)
			}
			if o := objectsText(f, perRule == 0); o != "" {
				line += " — objects " + mdCell(o)
			}
			b.WriteString(line + "\n")
			if g.SameFix == "" {
				mdFix(&b, "Fix", clipped(f, perRule == 0), "  ")
			}
		}
	}
	if len(other) > 0 {
		fmt.Fprintf(&b, "\n<details><summary>%d other results</summary>\n\n| rule | status | object | detail |\n|---|---|---|---|\n", len(other))
		for _, f := range other {
			detail := f.Evidence
			if f.Status == rules.NotChecked {
				detail = f.Reason
			}
			if f.Status == rules.Waived && f.Waiver != nil {
				detail = "waived: " + f.Waiver.Reason + " (until " + f.Waiver.Expires + ")"
			}
			fmt.Fprintf(&b, "| %s | %s | %s | %s |\n", f.Rule, f.Status, mdCell(f.Object), mdCell(detail))
		}
		b.WriteString("\n</details>\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// mdFix writes a finding's fix as a fenced block under a list item.
func mdFix(b *strings.Builder, label string, f rules.Finding, ind string) {
	if f.Fix == "" {
		return
	}
	lang := map[string]string{rules.FixSQL: "sql", rules.FixShell: "sh", rules.FixConfig: "ini"}[f.FixKind]
	apply := ""
	if f.FixApply != "" {
		apply = " (then " + f.FixApply + ")"
	}
	fc := fence(f.Fix)
	// The fence starts the line: the fix stays byte for byte what to paste.
	fmt.Fprintf(b, "%s- **%s%s:**\n\n%s%s\n%s\n%s\n\n", ind, label, apply, fc, lang, f.Fix, fc)
}

func sevBadge(s rules.Severity) string {
	return map[rules.Severity]string{rules.Critical: "🟣 CRITICAL", rules.High: "🔴 HIGH", rules.Medium: "🟠 MEDIUM", rules.Low: "🔵 LOW", rules.Info: "⚪ INFO"}[s]
}

// mdEscape neutralises characters Markdown would interpret in prose.
func mdEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "\\", "\\\\", "*", "\\*", "_", "\\_", "`", "\\`", "<", "&lt;", ">", "&gt;", "[", "\\[", "]", "\\]", "|", "\\|").Replace(s)
}

// mdCode renders a value as inline code, multi-line values as a block.
func mdCode(s string) string {
	if strings.Contains(s, "\n") {
		fc := fence(s)
		return "\n\n" + fc + "\n" + s + "\n" + fc + "\n"
	}
	ticks := "`"
	for strings.Contains(s, ticks) {
		ticks += "`"
	}
	pad := ""
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		pad = " "
	}
	return ticks + pad + s + pad + ticks
}

func mdCell(s string) string {
	s = strings.ReplaceAll(s, "\n", " ")
	return strings.ReplaceAll(mdEscape(s), "\\|", "&#124;")
}

// fence is a code fence longer than any run of backticks in s, so nothing
// in s can close it (a closing fence is at least as long as the opening
// one) and s is shown unchanged: a fix stays exactly what to paste.
func fence(s string) string {
	longest, run := 0, 0
	for i := 0; i < len(s); i++ {
		if s[i] != '`' {
			run = 0
			continue
		}
		run++
		longest = max(longest, run)
	}
	return strings.Repeat("`", max(3, longest+1))
}
