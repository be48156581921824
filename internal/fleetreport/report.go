package fleetreport

import (
	"context"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/pgaegis/pgaegis/internal/inventory"
	"github.com/pgaegis/pgaegis/internal/rules"
	"github.com/pgaegis/pgaegis/internal/score"
	"github.com/pgaegis/pgaegis/internal/store"
)

// Options choose what a fleet report covers.
type Options struct {
	// Now is the report's time (default time.Now).
	Now time.Time
	// OlderThan: findings open longer than this are listed (default 30 days).
	OlderThan time.Duration
	// From, To bound the evidence period [From, To) (default: the 90 days
	// before Now).
	From, To time.Time
	// Limit bounds the worst-servers and common-failures lists (default 20).
	Limit int
	// NoEvidence skips the held-controls query.
	NoEvidence bool
}

// Report is the fleet across a period; its JSON form is this struct.
type Report struct {
	GeneratedAt   time.Time           `json:"generated_at"`
	Servers       int                 `json:"servers"`
	Worst         []ServerScore       `json:"worst_servers"`
	Common        []store.RuleCount   `json:"common_failures"`
	OlderThanDays int                 `json:"older_than_days"`
	Old           []store.OpenFinding `json:"open_longer"`
	Evidence      *store.Evidence     `json:"evidence,omitempty"`
	Unreachable   []ServerState       `json:"unreachable"`
}

// ServerScore is a server's latest reached scan, scored.
type ServerScore struct {
	Server string            `json:"server"`
	Labels map[string]string `json:"labels,omitempty"`
	ScanID int64             `json:"scan_id"`
	At     time.Time         `json:"at"`
	// Score is the dashboard's score (internal/score): 0 to 100, lower is
	// worse; null when the scan decided no check.
	Score  *int           `json:"score"`
	Failed map[string]int `json:"failed_by_severity"`
	Pass   int            `json:"pass"`
}

// ServerState is a server whose latest scan did not reach it.
type ServerState struct {
	Server  string       `json:"server"`
	Status  store.Status `json:"status"`
	Message string       `json:"message,omitempty"`
	At      time.Time    `json:"at"`
	// LastOK is its latest reached scan's time (zero: never reached).
	LastOK time.Time `json:"last_ok,omitzero"`
}

// Build asks the store for the report.
func Build(ctx context.Context, st store.Store, o Options) (*Report, error) {
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.OlderThan <= 0 {
		o.OlderThan = 30 * 24 * time.Hour
	}
	if o.To.IsZero() {
		o.To = o.Now
	}
	if o.From.IsZero() {
		o.From = o.To.Add(-90 * 24 * time.Hour)
	}
	if o.Limit <= 0 {
		o.Limit = 20
	}
	r := &Report{GeneratedAt: o.Now.UTC(), OlderThanDays: int(o.OlderThan / (24 * time.Hour))}
	servers, err := st.Servers(ctx)
	if err != nil {
		return nil, err
	}
	r.Servers = len(servers)
	for _, s := range servers {
		if s.Latest != nil && s.Latest.Status != store.OK {
			u := ServerState{Server: s.Name, Status: s.Latest.Status, Message: s.Latest.Message, At: s.Latest.StartedAt}
			if s.LatestOK != nil {
				u.LastOK = s.LatestOK.StartedAt
			}
			r.Unreachable = append(r.Unreachable, u)
		}
		if s.LatestOK == nil {
			continue
		}
		c := s.LatestOK.Counts
		w := ServerScore{Server: s.Name, Labels: s.Labels, ScanID: s.LatestOK.ID, At: s.LatestOK.StartedAt,
			Failed: c.FailBySeverity, Pass: c.Pass}
		if n, ok := score.Of(c); ok {
			w.Score = &n
		}
		r.Worst = append(r.Worst, w)
	}
	// Lowest score first; servers without one last, by name throughout.
	sort.SliceStable(r.Worst, func(i, j int) bool {
		a, b := r.Worst[i], r.Worst[j]
		if (a.Score == nil) != (b.Score == nil) {
			return b.Score == nil
		}
		if a.Score != nil && *a.Score != *b.Score {
			return *a.Score < *b.Score
		}
		return a.Server < b.Server
	})
	if len(r.Worst) > o.Limit {
		r.Worst = r.Worst[:o.Limit]
	}
	if r.Common, err = st.CommonFailures(ctx, time.Time{}, o.Limit); err != nil {
		return nil, err
	}
	if r.Old, err = st.OpenLongerThan(ctx, o.OlderThan, o.Now); err != nil {
		return nil, err
	}
	if !o.NoEvidence {
		if r.Evidence, err = st.HeldControls(ctx, o.From, o.To); err != nil {
			return nil, err
		}
	}
	return r, nil
}

// WriteReport renders a fleet report in format.
func WriteReport(w io.Writer, format string, r *Report) error {
	return write(w, format, reportDoc(r), r)
}

func sevCounts(m map[string]int) string {
	var parts []string
	for _, s := range []rules.Severity{rules.Critical, rules.High, rules.Medium, rules.Low, rules.Info} {
		if n := m[s.String()]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, s))
		}
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func reportDoc(r *Report) doc {
	d := doc{Title: "Fleet report", Meta: []string{"generated " + ts(r.GeneratedAt), fmt.Sprintf("%d servers in the store", r.Servers)}}
	var worst [][]string
	for _, s := range r.Worst {
		sc := "-"
		if s.Score != nil {
			sc = strconv.Itoa(*s.Score)
		}
		worst = append(worst, []string{s.Server, sc, sevCounts(s.Failed), strconv.Itoa(s.Pass), ts(s.At), inventory.FormatLabels(s.Labels)})
	}
	d.Tables = append(d.Tables, table{Title: "Worst servers", Note: "latest reached scan of each server, lowest score first: the dashboard's score, 100 × passing / (passing + 10 per critical, 5 per high, 2 per medium, 1 per low failure)",
		Empty: "no server was reached", Head: []string{"server", "score", "failing", "passing", "scanned", "labels"}, Rows: worst})
	var common [][]string
	for _, c := range r.Common {
		common = append(common, []string{c.Rule, c.Severity.String(), strconv.Itoa(c.Servers), strconv.Itoa(c.Findings), c.Title})
	}
	d.Tables = append(d.Tables, table{Title: "Most common failing rules", Note: "over each server's latest reached scan",
		Empty: "no failing rule", Head: []string{"rule", "severity", "servers", "findings", "title"}, Rows: common})
	var old [][]string
	for _, o := range r.Old {
		days := int(r.GeneratedAt.Sub(o.OpenSince).Hours() / 24)
		old = append(old, []string{o.Server, o.Rule, o.Severity.String(), o.Object, ts(o.OpenSince), strconv.Itoa(days)})
	}
	d.Tables = append(d.Tables, table{Title: fmt.Sprintf("Findings open longer than %d days", r.OlderThanDays), Note: "failing in the latest reached scan, without a break since",
		Empty: "none", Head: []string{"server", "rule", "severity", "object", "open since", "days"}, Rows: old})
	if e := r.Evidence; e != nil {
		var held [][]string
		for _, h := range e.Held {
			held = append(held, []string{h.Rule, strconv.Itoa(h.Servers), strconv.Itoa(h.Scans), h.Title})
		}
		note := fmt.Sprintf("%s to %s: %d reached scans of %d servers; %d scans did not reach their server (nothing is proven for their time)",
			ts(e.From), ts(e.To), e.Scans, e.Servers, e.Unreached)
		d.Tables = append(d.Tables, table{Title: "Controls that held for the whole period", Note: note,
			Empty: "no control passed in every reached scan", Head: []string{"rule", "servers", "scans", "title"}, Rows: held})
	}
	var un [][]string
	for _, u := range r.Unreachable {
		un = append(un, []string{u.Server, string(u.Status), ts(u.At), ts(u.LastOK), u.Message})
	}
	d.Tables = append(d.Tables, table{Title: "Servers not reached by their latest scan", Empty: "none",
		Head: []string{"server", "status", "at", "last reached", "message"}, Rows: un})
	return d
}
