package report

import (
	"html/template"
	"io"
	"strings"

	"github.com/pgaegis/pgaegis/internal/rules"
)

// WriteHTML writes one self-contained page (no external resources): a
// summary with a chart of failures by area and severity, filters, and each
// finding with its evidence and fix.
func WriteHTML(w io.Writer, r *Report) error {
	r = safeCopy(r) // every string escaped for the reader (safe.go)
	return htmlTmpl.Execute(w, htmlData(r))
}

type htmlBar struct {
	Area      string
	Y, LabelY int
	TotalX    int
	Segments  []htmlSegment
	Total     int
}

type htmlSegment struct {
	X, Y, W int
	Color   string
	Sev     string
	N       int
}

type htmlView struct {
	R        *Report
	Bars     []htmlBar
	ChartH   int
	Sevs     []string
	Colors   map[string]string
	Areas    []string
	Findings []rules.Finding
}

var sevColors = map[string]string{"critical": "#7b1fa2", "high": "#d32f2f", "medium": "#f57c00", "low": "#1976d2", "info": "#757575"}

func htmlData(r *Report) htmlView {
	v := htmlView{R: r, Colors: sevColors, Findings: r.Findings}
	for s := rules.Critical; s >= rules.Info; s-- {
		v.Sevs = append(v.Sevs, s.String())
	}
	counts := map[string]map[string]int{}
	maxBar := 1
	for _, f := range r.Findings {
		if f.Status != rules.Fail {
			continue
		}
		if counts[f.Area] == nil {
			counts[f.Area] = map[string]int{}
		}
		counts[f.Area][f.Severity.String()]++
	}
	seen := map[string]bool{}
	for _, f := range r.Findings {
		seen[f.Area] = true
	}
	for _, a := range rules.AreaOrder {
		if seen[a] {
			v.Areas = append(v.Areas, a)
		}
	}
	for _, a := range v.Areas {
		t := 0
		for _, n := range counts[a] {
			t += n
		}
		if t > maxBar {
			maxBar = t
		}
	}
	const width = 460
	for i, a := range v.Areas {
		bar := htmlBar{Area: a, Y: 8 + i*26, LabelY: 22 + i*26}
		x := 0
		for _, s := range v.Sevs {
			n := counts[a][s]
			if n == 0 {
				continue
			}
			w := n * width / maxBar
			if w < 3 {
				w = 3
			}
			bar.Segments = append(bar.Segments, htmlSegment{X: 130 + x, Y: bar.Y, W: w, Color: sevColors[s], Sev: s, N: n})
			x += w
			bar.Total += n
		}
		bar.TotalX = 136 + x
		v.Bars = append(v.Bars, bar)
	}
	v.ChartH = 16 + len(v.Areas)*26
	return v
}

var htmlTmpl = template.Must(template.New("report").Funcs(template.FuncMap{
	"upper": strings.ToUpper,
	"sevs":  func(s rules.Severity) string { return s.String() },
	"refs": func(refs []rules.Reference) string {
		var out []string
		for _, r := range refs {
			out = append(out, r.Source+" "+r.ID)
		}
		return strings.Join(out, "; ")
	},
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
header { background:#233044; color:#fff; padding:18px 28px; }
header h1 { margin:0 0 4px; font-size:20px; }
header .meta { color:#c8d1dc; font-size:13px; }
main { padding:20px 28px; max-width:1200px; }
.cards { display:flex; gap:12px; flex-wrap:wrap; margin-bottom:18px; }
.card { background:#fff; border:1px solid var(--line); border-radius:8px; padding:12px 16px; min-width:120px; }
.card .n { font-size:26px; font-weight:600; }
.card .l { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
.result-fail { border-left:5px solid #d32f2f; } .result-pass { border-left:5px solid #2e7d32; }
section.chart { background:#fff; border:1px solid var(--line); border-radius:8px; padding:12px 16px; margin-bottom:18px; }
.legend span { display:inline-block; margin-right:14px; font-size:12px; }
.legend i { display:inline-block; width:10px; height:10px; border-radius:2px; margin-right:4px; vertical-align:middle; }
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
pre { background:#f0f3f6; border-radius:5px; padding:8px 10px; white-space:pre-wrap; word-break:break-word; margin:4px 0; font:12.5px ui-monospace,Menlo,monospace; }
.hidden { display:none; }
#count { color:var(--muted); font-size:13px; }
</style>
</head>
<body>
<header>
<h1>pgaegis audit</h1>
<div class="meta">{{.R.Target.Description}}{{if .R.ServerVersion}} · PostgreSQL {{.R.ServerVersion}}{{end}}{{if .R.AuditRole}} · as {{.R.AuditRole}}{{end}} · collected {{.R.CollectedAt.Format "2006-01-02 15:04 MST"}} · {{.R.Tool}} {{.R.ToolVersion}}</div>
</header>
<main>
<div class="cards">
<div class="card {{if eq .R.Summary.Result "pass"}}result-pass{{else}}result-fail{{end}}"><div class="n">{{upper .R.Summary.Result}}</div><div class="l">fail-on {{.R.Summary.FailOn}}</div></div>
<div class="card"><div class="n" id="n-fail">{{.R.Summary.Fail}}</div><div class="l">failed</div></div>
{{range .Sevs}}{{$n := index $.R.Summary.FailBySev .}}<div class="card" style="border-top:3px solid {{index $.Colors .}}"><div class="n">{{$n}}</div><div class="l">{{.}}</div></div>{{end}}
<div class="card"><div class="n">{{.R.Summary.Pass}}</div><div class="l">passed</div></div>
<div class="card"><div class="n">{{.R.Summary.NotChecked}}</div><div class="l">not checked</div></div>
<div class="card"><div class="n">{{.R.Summary.Waived}}</div><div class="l">waived</div></div>
</div>
<section class="chart" aria-label="Failures by area and severity">
<div class="legend">{{range .Sevs}}<span><i style="background:{{index $.Colors .}}"></i>{{.}}</span>{{end}}</div>
<svg role="img" width="640" height="{{.ChartH}}" viewBox="0 0 640 {{.ChartH}}">
<title>Failing findings by area and severity</title>
{{range .Bars}}<text x="0" y="{{.LabelY}}" font-size="12" fill="#1d2330">{{.Area}}</text>
<line x1="128" y1="{{.Y}}" x2="128" y2="{{.LabelY}}" stroke="#dde2e8"/>
{{range .Segments}}<rect x="{{.X}}" y="{{.Y}}" width="{{.W}}" height="18" fill="{{.Color}}"><title>{{.N}} {{.Sev}}</title></rect>{{end}}
<text x="{{.TotalX}}" y="{{.LabelY}}" font-size="12" fill="#5f6b7a">{{.Total}}</text>
{{end}}
</svg>
</section>
<div class="filters" role="search">
<input type="search" id="q" placeholder="Filter by rule, object, evidence…" aria-label="Search findings">
<label>Status <select id="status"><option value="">any</option><option value="fail" selected>fail</option><option value="waived">waived</option><option value="not_checked">not checked</option><option value="pass">pass</option></select></label>
<label>Area <select id="area"><option value="">any</option>{{range .Areas}}<option>{{.}}</option>{{end}}</select></label>
{{range .Sevs}}<label><input type="checkbox" class="sev" value="{{.}}" checked> {{.}}</label>{{end}}
<span id="count"></span>
</div>
<div id="findings">
{{range .Findings}}<details class="finding" data-status="{{.Status}}" data-area="{{.Area}}" data-sev="{{sevs .Severity}}" style="--sev:{{index $.Colors (sevs .Severity)}}">
<summary><span class="badge">{{sevs .Severity}}</span><span class="status">{{.Status}}</span><span class="rule">{{.Rule}}</span><span>{{.Title}}</span><span class="obj">{{.Object}}</span></summary>
<div class="body"><dl>
{{if .Object}}<dt>Object</dt><dd>{{.Object}}</dd>{{end}}
{{if .Location}}<dt>Location</dt><dd><code>{{.Location}}</code></dd>{{end}}
{{if .Evidence}}<dt>Evidence</dt><dd><pre>{{.Evidence}}</pre></dd>{{end}}
{{if .Expected}}<dt>Expected</dt><dd>{{.Expected}}</dd>{{end}}
{{if .Fix}}<dt>Fix ({{.FixKind}}{{if .FixApply}}, then {{.FixApply}}{{end}})</dt><dd><pre>{{.Fix}}</pre></dd>{{end}}
{{if .Reason}}<dt>Why not checked</dt><dd>{{.Reason}}</dd>{{end}}
{{with .Waiver}}<dt>Waiver</dt><dd>{{.Reason}} (until {{.Expires}}{{if .Expired}}, expired{{end}}{{if .Owner}}, {{.Owner}}{{end}})</dd>{{end}}
<dt>References</dt><dd>{{refs .References}}</dd>
</dl></div>
</details>
{{end}}</div>
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
    count.textContent = shown + ' of ' + items.length + ' shown';
  }
  [q, st, ar].concat(sevs).forEach(function (el) { el.addEventListener('input', apply); el.addEventListener('change', apply); });
  apply();
})();
</script>
</body>
</html>
`))
