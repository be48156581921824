package web

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"sort"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
)

// Metric names /metrics exports (docs/serve.md, docs/grafana-dashboard.json).
var (
	mServers     = prometheus.NewDesc("pgaegis_servers", "Servers in the store.", nil, nil)
	mFailing     = prometheus.NewDesc("pgaegis_findings_failing", "Failing findings in the server's latest reached scan, by severity and area (only combinations with failures).", []string{"server", "severity", "area"}, nil)
	mFailTotal   = prometheus.NewDesc("pgaegis_server_failing_findings", "Failing findings in the server's latest reached scan (0 when none: always present).", []string{"server"}, nil)
	mScore       = prometheus.NewDesc("pgaegis_server_score", "The server's score (0-100, severity-weighted share of passing checks) in its latest reached scan.", []string{"server"}, nil)
	mLastScan    = prometheus.NewDesc("pgaegis_server_last_scan_timestamp_seconds", "Start of the server's latest scan.", []string{"server"}, nil)
	mLastOK      = prometheus.NewDesc("pgaegis_server_last_ok_scan_timestamp_seconds", "Start of the server's latest scan that reached it.", []string{"server"}, nil)
	mReached     = prometheus.NewDesc("pgaegis_server_reached", "1 when the server's latest scan reached it, else 0 (unreachable, timeout, error).", []string{"server"}, nil)
	mCertDays    = prometheus.NewDesc("pgaegis_certificate_expiry_days", "Days until the server certificate its latest reached scan saw expires (negative: expired).", []string{"server"}, nil)
	mDrift       = prometheus.NewDesc("pgaegis_drift_findings", "Failures new or fixed in the server's latest reached scan against the previous one.", []string{"server", "change"}, nil)
	mRuleFailing = prometheus.NewDesc("pgaegis_rule_failing_findings", "Failing findings per rule in the server's latest reached scan (only with ?detail=rules).", []string{"server", "rule"}, nil)
	mBuild       = prometheus.NewDesc("pgaegis_dashboard_fleet_build_seconds", "Time the last fleet view took to read from the store.", nil, nil)
)

// MetricNames lists every metric name the collector exports.
func MetricNames() []string {
	return []string{"pgaegis_servers", "pgaegis_findings_failing", "pgaegis_server_failing_findings", "pgaegis_server_score", "pgaegis_server_last_scan_timestamp_seconds",
		"pgaegis_server_last_ok_scan_timestamp_seconds", "pgaegis_server_reached", "pgaegis_certificate_expiry_days",
		"pgaegis_drift_findings", "pgaegis_rule_failing_findings", "pgaegis_dashboard_fleet_build_seconds"}
}

// collector reads the (briefly cached) fleet view at scrape time.
type collector struct {
	s     *Server
	f     *fleet
	rules bool
}

func (c *collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{mServers, mFailing, mFailTotal, mScore, mLastScan, mLastOK, mReached, mCertDays, mDrift, mRuleFailing, mBuild} {
		ch <- d
	}
}

func (c *collector) Collect(ch chan<- prometheus.Metric) {
	f := c.f
	g := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	g(mServers, float64(len(f.rows)))
	g(mBuild, f.build.Seconds())
	for _, r := range f.rows {
		if r.Latest != nil {
			g(mLastScan, float64(r.Latest.StartedAt.UnixMilli())/1000, r.Name)
			reached := 0.0
			if r.Latest.Status == "ok" {
				reached = 1
			}
			g(mReached, reached, r.Name)
		}
		if r.LatestOK == nil {
			continue
		}
		g(mLastOK, float64(r.LatestOK.StartedAt.UnixMilli())/1000, r.Name)
		if r.HasScore {
			g(mScore, float64(r.Score), r.Name)
		}
		// Only combinations with failures (a server has a few of the 40):
		// the per-server total is always there, so a server whose last
		// failure is fixed reads 0 instead of vanishing.
		total := 0
		for k, n := range r.Sum.bySevArea {
			g(mFailing, float64(n), r.Name, k[0], k[1])
			total += n
		}
		g(mFailTotal, float64(total), r.Name)
		if r.Cert != nil {
			g(mCertDays, r.Cert.DaysLeft, r.Name)
		}
		if r.Drift != nil {
			g(mDrift, float64(len(r.Drift.New)), r.Name, "new")
			g(mDrift, float64(len(r.Drift.Fixed)), r.Name, "fixed")
		}
		if c.rules {
			names := make([]string, 0, len(r.Sum.byRule))
			for n := range r.Sum.byRule {
				names = append(names, n)
			}
			sort.Strings(names)
			for _, n := range names {
				g(mRuleFailing, float64(r.Sum.byRule[n]), r.Name, n)
			}
		}
	}
}

// metrics serves the Prometheus text format. Per-rule series (one per
// failing rule per server: thousands on a fleet) only with ?detail=rules
// or --rule-metrics. The rendered text is kept with the fleet view it
// came from: scrapes within the cache period cost a copy, not an
// encoding of every series.
func (s *Server) metrics(w http.ResponseWriter, r *http.Request) {
	detail := s.ruleMetrics || r.URL.Query().Get("detail") == "rules"
	f, err := s.fleet(r.Context())
	if err != nil {
		s.fail(w, err)
		return
	}
	s.mmu.Lock()
	c := s.mcache[detail]
	s.mmu.Unlock()
	if c == nil || c.fleet != f {
		reg := prometheus.NewRegistry()
		reg.MustRegister(&collector{s: s, f: f, rules: detail})
		mfs, err := reg.Gather()
		if err != nil {
			s.fail(w, err)
			return
		}
		var plain, gz bytes.Buffer
		enc := expfmt.NewEncoder(&plain, expfmt.NewFormat(expfmt.TypeTextPlain))
		for _, mf := range mfs {
			if err := enc.Encode(mf); err != nil {
				s.fail(w, err)
				return
			}
		}
		zw := gzip.NewWriter(&gz)
		zw.Write(plain.Bytes())
		zw.Close()
		c = &metricsCache{fleet: f, plain: plain.Bytes(), gzip: gz.Bytes()}
		s.mmu.Lock()
		s.mcache[detail] = c
		s.mmu.Unlock()
	}
	w.Header().Set("Content-Type", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	body := c.plain
	if strings.Contains(r.Header.Get("Accept-Encoding"), "gzip") {
		w.Header().Set("Content-Encoding", "gzip")
		body = c.gzip
	}
	w.Header().Set("Vary", "Accept-Encoding")
	_, _ = w.Write(body)
}

type metricsCache struct {
	fleet       *fleet
	plain, gzip []byte
}
