package web

import (
	"context"
	"encoding/json"
	"math"
	"os"
	"regexp"
	"slices"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/pgaegis/pgaegis/internal/drift"
	"github.com/pgaegis/pgaegis/internal/rules"
	"github.com/pgaegis/pgaegis/internal/store"
)

// scrape fetches /metrics (with query) and parses it with Prometheus's
// own text-format parser.
func scrape(t *testing.T, base, tok, query string) map[string]*dto.MetricFamily {
	t.Helper()
	resp := get(t, noRedirect(nil), base+"/metrics"+query, tok)
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/metrics: %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mf, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("/metrics does not parse: %v", err)
	}
	return mf
}

func labelsOf(m *dto.Metric) map[string]string {
	l := map[string]string{}
	for _, p := range m.GetLabel() {
		l[p.GetName()] = p.GetValue()
	}
	return l
}

// series returns the values of a family by their label sets, rendered
// as "k=v,k=v" in label order.
func series(mf map[string]*dto.MetricFamily, name string) map[string]float64 {
	out := map[string]float64{}
	for _, m := range mf[name].GetMetric() {
		var key []string
		for _, p := range m.GetLabel() {
			key = append(key, p.GetName()+"="+p.GetValue())
		}
		out[joinComma(key)] = m.GetGauge().GetValue()
	}
	return out
}

func joinComma(s []string) string {
	r := ""
	for i, x := range s {
		if i > 0 {
			r += ","
		}
		r += x
	}
	return r
}

// TestMetricsAgainstTheStore: every series is checked against what the
// store says directly (Servers, Findings, LoadScan).
func TestMetricsAgainstTheStore(t *testing.T) {
	_, hs := dashboard(t, Options{})
	st := fleetStore(t)
	tok := token(t, st, store.RoleReadOnly)
	mf := scrape(t, hs.URL, tok, "")
	ctx := context.Background()
	servers, err := st.Servers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v := series(mf, "pgaegis_servers")[""]; int(v) != len(servers) {
		t.Errorf("pgaegis_servers %v, store has %d", v, len(servers))
	}
	failing := series(mf, "pgaegis_findings_failing")
	last := series(mf, "pgaegis_server_last_scan_timestamp_seconds")
	reached := series(mf, "pgaegis_server_reached")
	for _, sv := range servers {
		if got := last["server="+sv.Name]; got != float64(sv.Latest.StartedAt.UnixMilli())/1000 {
			t.Errorf("%s last scan %v, store %v", sv.Name, got, sv.Latest.StartedAt)
		}
		want := 0.0
		if sv.Latest.Status == store.OK {
			want = 1
		}
		if reached["server="+sv.Name] != want {
			t.Errorf("%s reached %v, latest scan %s", sv.Name, reached["server="+sv.Name], sv.Latest.Status)
		}
		if sv.LatestOK == nil {
			for k := range failing {
				if regexp.MustCompile(`,server=` + sv.Name + `,`).MatchString("," + k + ",") {
					t.Errorf("findings series for %s, never reached: %s", sv.Name, k)
				}
			}
			continue
		}
		rows, err := st.Findings(ctx, sv.LatestOK.ID)
		if err != nil {
			t.Fatal(err)
		}
		want2 := map[string]float64{}
		for _, f := range rows {
			if f.Status == rules.Fail {
				want2["area="+f.Area+",server="+sv.Name+",severity="+f.Severity.String()]++
			}
		}
		got := map[string]float64{}
		for k, v := range failing {
			if regexp.MustCompile(`(^|,)server=`+regexp.QuoteMeta(sv.Name)+`(,|$)`).MatchString(k) && v > 0 {
				got[k] = v
			}
		}
		if len(got) != len(want2) {
			t.Errorf("%s: failing series %v, store %v", sv.Name, got, want2)
		}
		for k, v := range want2 {
			if got[k] != v {
				t.Errorf("%s: %s = %v, store %v", sv.Name, k, got[k], v)
			}
		}
	}
	// Certificates: days to the stored NotAfter at the fixture's now.
	days := series(mf, "pgaegis_certificate_expiry_days")
	for name, d := range certDays {
		// (gen-d's latest scan was unreachable: its latest reached one holds the certificate.)
		got, ok := days["server="+name]
		if !ok || math.Abs(got-(float64(d)+1.0/24)) > 1e-6 {
			t.Errorf("%s certificate days %v (present %v), want %v", name, got, ok, float64(d)+1.0/24)
		}
	}
	// Drift: the real server's second scan (a superuser role created)
	// has new failures; gen-b fixed one and got rule 5's.
	drifts := series(mf, "pgaegis_drift_findings")
	if drifts["change=new,server="+realServer] < 1 {
		t.Errorf("no new failure on %s after CREATE ROLE web_boss SUPERUSER: %v", realServer, drifts)
	}
	if drifts["change=new,server=gen-b"] != 0 || drifts["change=fixed,server=gen-b"] != 1 {
		t.Errorf("gen-b drift: new %v fixed %v, want 0 and 1", drifts["change=new,server=gen-b"], drifts["change=fixed,server=gen-b"])
	}
	// The new failures name the role.
	pair, err := st.LatestScans(ctx, realServer, 2)
	if err != nil || len(pair) != 2 {
		t.Fatal(err)
	}
	cur, _ := st.Findings(ctx, pair[0].ID)
	prev, _ := st.Findings(ctx, pair[1].ID)
	n, f := drift.Change(summarize(prev).failing, summarize(cur).failing)
	if float64(len(n)) != drifts["change=new,server="+realServer] || float64(len(f)) != drifts["change=fixed,server="+realServer] {
		t.Errorf("drift series %v, store pair gives %d new %d fixed", drifts, len(n), len(f))
	}
	if !slices.ContainsFunc(n, func(d drift.Finding) bool { return regexp.MustCompile(`web_boss`).MatchString(d.Object) }) {
		t.Errorf("no new finding about web_boss: %+v", n)
	}
	// Per-rule detail only when asked.
	if _, ok := mf["pgaegis_rule_failing_findings"]; ok {
		t.Error("per-rule series without ?detail=rules")
	}
	mf = scrape(t, hs.URL, tok, "?detail=rules")
	rulesSeries := series(mf, "pgaegis_rule_failing_findings")
	if rulesSeries["rule=GEN-05,server=gen-a"] != 1 {
		t.Errorf("rule detail for gen-a GEN-05: %v", rulesSeries["rule=GEN-05,server=gen-a"])
	}
}

// TestGrafanaDashboard: docs/grafana-dashboard.json is JSON and queries
// only metrics the collector exports.
func TestGrafanaDashboard(t *testing.T) {
	b, err := os.ReadFile("../../docs/grafana-dashboard.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Title  string `json:"title"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("docs/grafana-dashboard.json: %v", err)
	}
	if d.Title == "" || len(d.Panels) < 4 {
		t.Fatalf("dashboard %q with %d panels", d.Title, len(d.Panels))
	}
	known := MetricNames()
	used := 0
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			for _, m := range regexp.MustCompile(`pgaegis_[a-z_]+`).FindAllString(tg.Expr, -1) {
				used++
				if !slices.Contains(known, m) {
					t.Errorf("panel %q uses %s, which /metrics does not export", p.Title, m)
				}
			}
		}
	}
	if used == 0 {
		t.Error("no panel queries a pgaegis metric")
	}
	// And the collector exports what MetricNames says.
	_, hs := dashboard(t, Options{})
	mf := scrape(t, hs.URL, token(t, fleetStore(t), store.RoleReadOnly), "?detail=rules")
	for _, n := range known {
		if _, ok := mf[n]; !ok {
			t.Errorf("MetricNames lists %s, /metrics has none", n)
		}
	}
}
