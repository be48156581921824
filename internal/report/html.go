package report

import (
	"fmt"
	"html/template"
	"io"
	"math"
	"strings"

	"github.com/pgaegis/pgaegis/internal/rules"
)

// HTMLOptions shape the HTML report.
type HTMLOptions struct {
	// Print opens every finding and hides the filters: the page is meant
	// for paper or PDF, where nothing can be clicked.
	Print bool
	// TopRisks is how many risks the first screen explains (default 5).
	TopRisks int
}

// WriteHTML writes one self-contained page (no external resources).
func WriteHTML(w io.Writer, r *Report) error { return WriteHTMLWith(w, r, HTMLOptions{}) }

// WriteHTMLWith writes the page for a reader who may not run the audit:
// a first screen with the result, a severity chart on a fixed scale, the
// top risks in plain words with why they matter, and a score per area;
// then every rule with its objects, filterable.
func WriteHTMLWith(w io.Writer, r *Report, o HTMLOptions) error {
	r = safeCopy(r) // every string escaped for the reader (safe.go)
	return htmlTmpl.Execute(w, htmlData(r, o))
}

type htmlSevBar struct {
	Sev    string
	Color  string
	N      int
	Y      int
	W      int // width on the fixed scale
	LabelX int
}

type htmlTick struct {
	X     int
	Label string
}

type htmlArea struct {
	Area              string
	Score             int // 0-100: the severity-weighted share of checks that pass
	Fail, Checked     int
	Worst             string
	HasFail, HasCheck bool
}

type htmlRisk struct {
	Title    string // the worst finding's rule title, in plain words
	Target   string
	Why      string // the rule's rationale
	Sev      string
	Closes   int
	Counts   string
	Apply    string
	Change   string
	RuleList string
}

type htmlGroup struct {
	*RuleGroup
	SevName    string
	Rationale  string
	References []string
	Shown      []rules.Finding // the first rows
	Rest       []rules.Finding // behind "show all"
	Single     bool
	// SharedSQL is what every object's SQL fix holds, shown once; Own
	// is the rest of each one's (by index in Findings).
	SharedSQL string
	Own       []string
}

// OwnFix is finding i's fix without the shared statements.
func (g htmlGroup) OwnFix(i int) string {
	if g.Own != nil {
		return g.Own[i]
	}
	return g.Findings[i].Fix
}

type htmlView struct {
	R         *Report
	O         HTMLOptions
	Headline  string
	Bars      []htmlSevBar
	Ticks     []htmlTick
	ChartW    int
	Areas     []string
	AreaScore []htmlArea
	Risks     []htmlRisk
	Groups    []htmlGroup
	Sevs      []string
	Colors    map[string]string
	// PassHidden counts the passing checks left out of the print layout.
	PassHidden int
}

var sevColors = map[string]string{"critical": "#7b1fa2", "high": "#d32f2f", "medium": "#f57c00", "low": "#1976d2", "info": "#757575"}

// The chart's scale is fixed, logarithmic from 0 to 10,000 findings, so
// charts of different reports compare and 3 low findings stay short.
const (
	chartX0    = 80
	chartW     = 420
	chartMaxLg = 4.0 // log10(10,000)
)

func chartWidth(n int) int {
	if n <= 0 {
		return 0
	}
	w := int(math.Round(math.Log10(float64(n)+1) / chartMaxLg * chartW))
	return min(max(w, 3), chartW)
}

// htmlRowsShown is how many objects a rule shows before "show all".
const htmlRowsShown = 20

func htmlData(r *Report, o HTMLOptions) htmlView {
	if o.TopRisks <= 0 {
		o.TopRisks = 5
	}
	v := htmlView{R: r, O: o, Colors: sevColors, ChartW: chartX0 + chartW + 60}
	for s := rules.Critical; s >= rules.Info; s-- {
		v.Sevs = append(v.Sevs, s.String())
	}
	for i, s := range v.Sevs {
		n := r.Summary.FailBySev[s]
		w := chartWidth(n)
		v.Bars = append(v.Bars, htmlSevBar{Sev: s, Color: sevColors[s], N: n, Y: 8 + i*28, W: w, LabelX: chartX0 + w + 6})
	}
	for i, l := range []string{"0", "10", "100", "1,000", "10,000"} {
		x := chartX0
		if i > 0 {
			x += chartWidth(int(math.Pow(10, float64(i))) - 1)
		}
		v.Ticks = append(v.Ticks, htmlTick{X: x, Label: l})
	}
	v.Headline = headline(r)

	info := ruleInfo()
	seen := map[string]bool{}
	type acc struct{ pass, fail, wp, wf int }
	areas := map[string]*acc{}
	worstIn := map[string]rules.Severity{}
	for _, f := range r.Findings {
		seen[f.Area] = true
		a := areas[f.Area]
		if a == nil {
			a = &acc{}
			areas[f.Area] = a
		}
		w := severityWeight[f.Severity] + 1
		switch f.Status {
		case rules.Pass, rules.Waived:
			a.pass++
			a.wp += w
		case rules.Fail:
			a.fail++
			a.wf += w
			if s, ok := worstIn[f.Area]; !ok || f.Severity > s {
				worstIn[f.Area] = f.Severity
			}
		}
	}
	for _, a := range rules.AreaOrder {
		if !seen[a] {
			continue
		}
		v.Areas = append(v.Areas, a)
		c := areas[a]
		ha := htmlArea{Area: a, Fail: c.fail, Checked: c.pass + c.fail, HasFail: c.fail > 0, HasCheck: c.pass+c.fail > 0}
		if ha.HasCheck {
			ha.Score = int(math.Floor(100 * float64(c.wp) / float64(c.wp+c.wf)))
		}
		if s, ok := worstIn[a]; ok {
			ha.Worst = s.String()
		}
		v.AreaScore = append(v.AreaScore, ha)
	}

	for _, a := range FirstActions(r, o.TopRisks) {
		worstF := a.Findings[0]
		for _, f := range a.Findings {
			if f.Severity > worstF.Severity {
				worstF = f
			}
		}
		risk := htmlRisk{Title: worstF.Title, Target: a.Title, Sev: a.Worst.String(), Closes: len(a.Findings), Counts: sevCounts(a.BySev),
			Apply: a.Apply, RuleList: strings.Join(a.Rules, ", ")}
		change, more := a.Change, a.More
		if len(change) > 8 {
			change, more = change[:7], more+len(change)-7
		}
		if more > 0 {
			change = append(append([]string(nil), change...), fmt.Sprintf("… and %d more: see the rules below", more))
		}
		risk.Change = strings.Join(change, "\n")
		if ru := info[worstF.Rule]; ru != nil {
			risk.Why = ru.Rationale
		}
		v.Risks = append(v.Risks, risk)
	}

	for _, g := range groupByRule(r.Findings) {
		if o.Print && g.Status == rules.Pass {
			v.PassHidden += len(g.Findings)
			continue // on paper only what needs reading; the count says the rest
		}
		hg := htmlGroup{RuleGroup: g, SevName: g.Severity.String(), Single: len(g.Findings) == 1}
		if ru := info[g.Rule]; ru != nil {
			hg.Rationale = ru.Rationale
		}
		refs := g.Findings[0].References
		for _, ref := range refs {
			if ref.Source == "pgaegis" {
				continue // the rule id is on the card already
			}
			hg.References = append(hg.References, ref.Name())
		}
		if !hg.Single && g.SameFix == "" {
			if shared, own, ok := splitSharedSQL(g.Findings); ok {
				hg.SharedSQL, hg.Own = strings.Join(shared, "\n"), own
			}
		}
		hg.Shown = g.Findings
		if len(g.Findings) > htmlRowsShown && !o.Print {
			hg.Shown, hg.Rest = g.Findings[:htmlRowsShown], g.Findings[htmlRowsShown:]
		}
		v.Groups = append(v.Groups, hg)
	}
	return v
}

// headline is the result in one sentence.
func headline(r *Report) string {
	s := r.Summary
	switch s.Result {
	case "pass":
		if s.Fail == 0 {
			return fmt.Sprintf("No failing finding among %d checks.", s.Pass+s.Fail)
		}
		return fmt.Sprintf("No failing finding at or above %s; %d below it.", s.FailOn, s.Fail)
	case "incomplete":
		return "The audit could not see everything it needs: " + s.IncompleteReason + "."
	}
	crit, high := s.FailBySev["critical"], s.FailBySev["high"]
	var parts []string
	if crit > 0 {
		parts = append(parts, fmt.Sprintf("%d critical", crit))
	}
	if high > 0 {
		parts = append(parts, fmt.Sprintf("%d high", high))
	}
	what := strings.Join(parts, " and ")
	if what == "" {
		what = fmt.Sprintf("%d", s.Fail)
	}
	return fmt.Sprintf("%s finding%s need fixing (%d failing in all, fail-on %s).", what, plural(crit+high), s.Fail, s.FailOn)
}

var htmlTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"upper": strings.ToUpper,
	"sevs":  func(s rules.Severity) string { return s.String() },
	"add":   func(a, b int) int { return a + b },
	// A finding that stands for many objects: the first few, then all of
	// them behind "show all".
	"objects":     func(f rules.Finding) string { return objectsHint(f, false, "") },
	"allObjects":  func(f rules.Finding) string { return strings.Join(f.Objects, ", ") },
	"manyObjects": func(f rules.Finding) bool { return len(f.Objects) > shownObjects },
	"join":        func(xs []string) string { return strings.Join(xs, "; ") },
}).Parse(`<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>pgaegis audit: {{.R.Target.Description}}</title>
<style>
:root { --fg:#1d2330; --muted:#5f6b7a; --line:#dde2e8; --bg:#f6f8fa; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif; color:var(--fg); background:var(--bg); }
header { background:#233044; color:#fff; padding:14px 28px; }
header h1 { margin:0 0 2px; font-size:19px; }
header .meta { color:#c8d1dc; font-size:13px; }
main { padding:16px 28px; max-width:1200px; }
h2 { font-size:16px; margin:0 0 8px; }
.first { display:grid; grid-template-columns: 1fr 1fr; gap:14px; margin-bottom:18px; }
.panel { background:#fff; border:1px solid var(--line); border-radius:8px; padding:12px 16px; }
.verdict { display:flex; gap:16px; align-items:center; grid-column: 1 / -1; }
.verdict .word { font-size:34px; font-weight:700; letter-spacing:.03em; padding:4px 16px; border-radius:6px; color:#fff; }
.result-fail .word { background:#c62828; } .result-pass .word { background:#2e7d32; } .result-incomplete .word { background:#ef6c00; }
.verdict p { margin:0; font-size:16px; }
.verdict .counts { color:var(--muted); font-size:13px; margin-top:2px; }
.scale { color:var(--muted); font-size:11px; }
table.areas { border-collapse:collapse; width:100%; font-size:13px; }
table.areas td { padding:3px 6px; border-bottom:1px solid var(--line); }
table.areas td.n { text-align:right; font-variant-numeric:tabular-nums; white-space:nowrap; }
.scorebar { display:block; height:10px; border-radius:3px; background:#2e7d32; }
.scoretrack { display:inline-block; width:160px; height:10px; border-radius:3px; background:#f2d4d4; vertical-align:middle; }
.risks { grid-column: 1 / -1; }
.risks ol { margin:0; padding-left:22px; }
.risks li { margin:0 0 10px; }
.risks .what { font-weight:600; }
.risks .why { margin:2px 0; }
.risks .how { color:var(--muted); font-size:13px; }
.sevdot { display:inline-block; width:10px; height:10px; border-radius:50%; margin-right:5px; vertical-align:baseline; }
.filters { display:flex; gap:14px; flex-wrap:wrap; align-items:center; background:#fff; border:1px solid var(--line); border-radius:8px; padding:10px 16px; margin-bottom:12px; }
.filters label { font-size:13px; }
.filters input[type=search] { padding:5px 8px; border:1px solid var(--line); border-radius:5px; min-width:240px; }
.finding { background:#fff; border:1px solid var(--line); border-left:5px solid var(--sev); border-radius:6px; margin:8px 0; }
.finding summary { cursor:pointer; padding:9px 12px; display:flex; gap:10px; align-items:baseline; list-style:none; }
.finding summary::-webkit-details-marker { display:none; }
.badge { font-size:11px; font-weight:700; color:#fff; background:var(--sev); border-radius:4px; padding:1px 6px; text-transform:uppercase; min-width:68px; text-align:center; }
.status { font-size:11px; color:var(--muted); text-transform:uppercase; min-width:80px; }
.rule { font-family:ui-monospace,Menlo,monospace; font-weight:600; white-space:nowrap; }
.obj { color:var(--muted); overflow:hidden; text-overflow:ellipsis; white-space:nowrap; }
.body { padding:0 14px 12px 14px; }
.body dt { font-weight:600; margin-top:8px; color:var(--muted); font-size:12px; text-transform:uppercase; }
.body dd { margin:2px 0 0; }
table.objs { border-collapse:collapse; width:100%; margin-top:4px; font-size:13px; }
table.objs th { text-align:left; color:var(--muted); font-weight:600; font-size:12px; border-bottom:1px solid var(--line); padding:3px 6px; }
table.objs td { vertical-align:top; border-bottom:1px solid var(--line); padding:4px 6px; }
pre { background:#f0f3f6; border-radius:5px; padding:8px 10px; white-space:pre-wrap; word-break:break-word; margin:4px 0; font:12.5px ui-monospace,Menlo,monospace; }
td pre { margin:0; padding:4px 6px; }
.hidden { display:none; }
#count { color:var(--muted); font-size:13px; }
@media (max-width: 900px) { .first { grid-template-columns: 1fr; } }
@media print {
  body { background:#fff; font-size:11pt; }
  * { -webkit-print-color-adjust:exact; print-color-adjust:exact; }
  header { padding:8px 0; background:#fff; color:var(--fg); border-bottom:2px solid #233044; }
  header .meta { color:var(--muted); }
  main { padding:8px 0; max-width:none; }
  .filters, #count, .showall > summary { display:none; }
  .first { grid-template-columns: 1fr 1fr; page-break-after:always; }
  .finding, .risks li, .panel { break-inside:avoid; }
  .panel.risks { break-inside:auto; }
  .scoretrack { width:90px; }
  .finding summary { cursor:auto; }
  pre { white-space:pre-wrap; }
}
</style>
</head>
<body>
<header>
<h1>pgaegis audit: {{.R.Target.Description}}</h1>
<div class="meta">{{if .R.ServerVersion}}PostgreSQL {{.R.ServerVersion}} · {{end}}{{if .R.AuditRole}}as {{.R.AuditRole}} · {{end}}collected {{.R.CollectedAt.Format "2006-01-02 15:04 MST"}} · {{.R.Tool}} {{.R.ToolVersion}}</div>
</header>
<main>
<section class="first" id="first-screen" aria-label="Summary">
<div class="panel verdict result-{{.R.Summary.Result}}" id="result"><div class="word">{{upper .R.Summary.Result}}</div>
<div><p>{{.Headline}}</p><div class="counts">{{.R.Summary.Fail}} failed · {{.R.Summary.Pass}} passed · {{.R.Summary.NotChecked}} not checked · {{.R.Summary.Waived}} waived · {{.R.Summary.Rules}} rules</div></div></div>
<div class="panel" id="severity-chart"><h2>Failing findings by severity</h2>
<svg role="img" aria-label="Failing findings by severity, on a fixed logarithmic scale" width="{{.ChartW}}" height="168" viewBox="0 0 {{.ChartW}} 168">
<title>Failing findings by severity (fixed scale: 0 to 10,000, logarithmic)</title>
{{range .Ticks}}<line x1="{{.X}}" y1="4" x2="{{.X}}" y2="146" stroke="#dde2e8"/><text x="{{.X}}" y="160" font-size="10" fill="#5f6b7a" text-anchor="middle">{{.Label}}</text>
{{end}}{{range .Bars}}<text x="0" y="{{add .Y 14}}" font-size="12" fill="#1d2330">{{.Sev}}</text>
{{if .N}}<rect class="bar" data-sev="{{.Sev}}" data-n="{{.N}}" x="80" y="{{.Y}}" width="{{.W}}" height="18" rx="2" fill="{{.Color}}"><title>{{.N}} {{.Sev}}</title></rect>{{end}}
<text x="{{.LabelX}}" y="{{add .Y 14}}" font-size="12" fill="#1d2330">{{.N}}</text>
{{end}}</svg>
<div class="scale">Same scale in every report: a bar the full width is 10,000 findings.</div>
</div>
<div class="panel" id="area-scores"><h2>Score by area</h2>
<table class="areas"><tbody>
{{range .AreaScore}}<tr><td>{{.Area}}</td>{{if .HasCheck}}<td class="n">{{.Score}}%</td><td><span class="scoretrack"><span class="scorebar" style="width:{{.Score}}%"></span></span></td><td class="n">{{.Fail}} of {{.Checked}} failing</td>{{else}}<td class="n">–</td><td></td><td class="n">not checked</td>{{end}}</tr>
{{end}}</tbody></table>
<div class="scale">Share of the area's checks that pass, weighted by severity.</div>
</div>
{{if .Risks}}<div class="panel risks" id="top-risks"><h2>Top risks: fix these first</h2><ol>
{{range .Risks}}<li><div class="what"><span class="sevdot" style="background:{{index $.Colors .Sev}}"></span>{{.Title}}: {{.Target}}</div>
{{if .Why}}<div class="why">{{.Why}}</div>{{end}}
<div class="how">One change closes {{.Closes}} finding{{if ne .Closes 1}}s{{end}} ({{.Counts}}; {{.RuleList}}){{if .Apply}}, then {{.Apply}}{{end}}:</div>
<pre>{{.Change}}</pre></li>
{{end}}</ol></div>{{end}}
</section>
<h2>Findings by rule</h2>
<div class="filters" role="search">
<input type="search" id="q" placeholder="Filter by rule, object, evidence…" aria-label="Search findings">
<label>Status <select id="status"><option value="">any</option><option value="fail"{{if not .O.Print}} selected{{end}}>fail</option><option value="waived">waived</option><option value="not_checked">not checked</option><option value="pass">pass</option></select></label>
<label>Area <select id="area"><option value="">any</option>{{range .Areas}}<option>{{.}}</option>{{end}}</select></label>
{{range .Sevs}}<label><input type="checkbox" class="sev" value="{{.}}" checked> {{.}}</label>{{end}}
<span id="count"></span>
</div>
<div id="findings">
{{range .Groups}}<details class="finding" data-status="{{.Status}}" data-area="{{.Area}}" data-sev="{{.SevName}}" style="--sev:{{index $.Colors .SevName}}"{{if $.O.Print}} open{{end}}>
<summary><span class="badge">{{.SevName}}</span><span class="status">{{.Status}}</span><span class="rule">{{.Rule}}</span><span>{{.Title}}</span><span class="obj">{{if .Single}}{{(index .Findings 0).Object}}{{else}}{{len .Findings}} objects{{end}}</span></summary>
<div class="body"><dl>
{{if .Rationale}}<dt>Why it matters</dt><dd>{{.Rationale}}</dd>{{end}}
{{if .Single}}{{with index .Findings 0}}
{{if .Object}}<dt>Object</dt><dd>{{.Object}}</dd>{{end}}{{if .Objects}}<dt>Objects</dt><dd>{{objects .}}{{if manyObjects .}}<details class="showall"><summary>show all {{len .Objects}}</summary>{{allObjects .}}</details>{{end}}</dd>{{end}}
{{if .Location}}<dt>Location</dt><dd><code>{{.Location}}</code></dd>{{end}}
{{if .Evidence}}<dt>Evidence</dt><dd><pre>{{.Evidence}}</pre></dd>{{end}}
{{if .Expected}}<dt>Expected</dt><dd>{{.Expected}}</dd>{{end}}
{{if .Fix}}<dt>Fix ({{.FixKind}}{{if .FixApply}}, then {{.FixApply}}{{end}})</dt><dd><pre>{{.Fix}}</pre></dd>{{end}}
{{if .Reason}}<dt>Why not checked</dt><dd>{{.Reason}}</dd>{{end}}
{{with .Waiver}}<dt>Waiver</dt><dd>{{.Reason}} (until {{.Expires}}{{if .Expired}}, expired{{end}}{{if .Owner}}, {{.Owner}}{{end}})</dd>{{end}}
{{end}}{{else}}
{{if .SameExpected}}<dt>Expected</dt><dd>{{.SameExpected}}</dd>{{end}}
{{if .SameFix}}<dt>Fix, for every object</dt><dd><pre>{{.SameFix}}</pre></dd>{{end}}
{{if .SharedSQL}}<dt>Fix, for every object (and each one's own below)</dt><dd><pre>{{.SharedSQL}}</pre></dd>{{end}}
<dt>{{len .Findings}} objects</dt><dd>
<table class="objs"><thead><tr><th>Object</th><th>Location</th><th>Detail</th>{{if not .SameFix}}<th>Fix</th>{{end}}</tr></thead><tbody>
{{$g := .}}{{range $i, $f := .Shown}}{{with $f}}<tr><td>{{.Object}}{{if ne (sevs .Severity) $g.SevName}} ({{sevs .Severity}}){{end}}{{if .Objects}}<br>{{objects .}}{{if manyObjects .}}<details class="showall"><summary>show all {{len .Objects}}</summary>{{allObjects .}}</details>{{end}}{{end}}</td><td>{{if .Location}}<code>{{.Location}}</code>{{end}}</td><td>{{if .Reason}}{{.Reason}}{{else}}{{.Evidence}}{{if and .Expected (not $g.SameExpected)}}<br>expected: {{.Expected}}{{end}}{{end}}{{with .Waiver}}<br>waived: {{.Reason}} (until {{.Expires}}){{end}}</td>{{if not $g.SameFix}}<td>{{if .Fix}}<pre>{{$g.OwnFix $i}}</pre>{{end}}</td>{{end}}</tr>
{{end}}{{end}}</tbody></table>
{{if .Rest}}<details class="showall"><summary>show all {{len .Findings}} objects ({{len .Rest}} more)</summary>
<table class="objs"><tbody>
{{range $i, $f := .Rest}}{{with $f}}<tr><td>{{.Object}}{{if .Objects}}<br>{{objects .}}{{if manyObjects .}}<details class="showall"><summary>show all {{len .Objects}}</summary>{{allObjects .}}</details>{{end}}{{end}}</td><td>{{if .Location}}<code>{{.Location}}</code>{{end}}</td><td>{{if .Reason}}{{.Reason}}{{else}}{{.Evidence}}{{end}}</td>{{if not $g.SameFix}}<td>{{if .Fix}}<pre>{{$g.OwnFix (add $i (len $g.Shown))}}</pre>{{end}}</td>{{end}}</tr>
{{end}}{{end}}</tbody></table></details>{{end}}
</dd>{{end}}
{{if .References}}<dt>References</dt><dd>{{join .References}}</dd>{{end}}
</dl></div>
</details>
{{end}}</div>
{{if .PassHidden}}<p class="scale">{{.PassHidden}} passing checks are not listed here (the HTML report lists them).</p>{{end}}
</main>
<script>
(function () {
  var q = document.getElementById('q'), st = document.getElementById('status'), ar = document.getElementById('area');
  var sevs = Array.prototype.slice.call(document.querySelectorAll('input.sev'));
  var items = Array.prototype.slice.call(document.querySelectorAll('#findings .finding'));
  var count = document.getElementById('count');
  function apply() {
    var text = q.value.toLowerCase(), want = {}, shown = 0;
    sevs.forEach(function (c) { want[c.value] = c.checked; });
    items.forEach(function (el) {
      var ok = (!st.value || el.dataset.status === st.value) && (!ar.value || el.dataset.area === ar.value) &&
        want[el.dataset.sev] && (!text || el.textContent.toLowerCase().indexOf(text) >= 0);
      el.classList.toggle('hidden', !ok);
      if (ok) { shown++; }
    });
    count.textContent = shown + ' of ' + items.length + ' rules shown';
  }
  [q, st, ar].concat(sevs).forEach(function (el) { el.addEventListener('input', apply); el.addEventListener('change', apply); });
  // Paper cannot be clicked: open what the filters show before printing.
  window.addEventListener('beforeprint', function () {
    items.forEach(function (el) { if (!el.classList.contains('hidden')) { el.open = true; } });
  });
  apply();
})();
</script>
</body>
</html>
`))
