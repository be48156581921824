// Package report turns findings into documents: the stable JSON form and
// the human-readable text report. Writers never see connection secrets:
// the snapshot's target description is already redacted.
package report

import (
	"encoding/json"
	"io"
	"sort"
	"time"

	"github.com/pgaegis/pgaegis/internal/rules"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// SchemaVersion versions the JSON report (docs/json-report.md).
const SchemaVersion = 1

// Report is the document every writer renders.
type Report struct {
	SchemaVersion int             `json:"schema_version"`
	Tool          string          `json:"tool"`
	ToolVersion   string          `json:"tool_version"`
	Target        snapshot.Target `json:"target"`
	ServerVersion string          `json:"server_version,omitempty"`
	AuditRole     string          `json:"audit_role,omitempty"`
	CollectedAt   time.Time       `json:"collected_at"`
	Summary       Summary         `json:"summary"`
	Findings      []rules.Finding `json:"findings"`
	// Baseline is set with --baseline: what changed since a previous report.
	Baseline *BaselineDiff     `json:"baseline,omitempty"`
	Gaps     map[string]string `json:"gaps,omitempty"`
	Warnings []string          `json:"warnings,omitempty"`
}

// Summary counts findings.
type Summary struct {
	Rules      int            `json:"rules"`
	Findings   int            `json:"findings"`
	Fail       int            `json:"fail"`
	Pass       int            `json:"pass"`
	NotChecked int            `json:"not_checked"`
	Waived     int            `json:"waived"`
	FailBySev  map[string]int `json:"fail_by_severity"`
	FailOn     string         `json:"fail_on"`
	// Result is "fail" when a failing finding is at or above FailOn.
	Result string `json:"result"`
}

// Build assembles a report; findings are sorted worst first.
func Build(s *snapshot.Snapshot, findings []rules.Finding, failOn rules.Severity) *Report {
	r := &Report{SchemaVersion: SchemaVersion, Tool: s.Tool, ToolVersion: s.ToolVersion, Target: s.Target,
		CollectedAt: s.CollectedAt, Findings: append([]rules.Finding(nil), findings...), Gaps: s.Gaps, Warnings: s.Warnings}
	if s.Server != nil {
		r.ServerVersion = s.Server.Version
		r.AuditRole = s.Server.CurrentUser
	}
	SortFindings(r.Findings)
	sum := Summary{FailBySev: map[string]int{}, FailOn: failOn.String(), Result: "pass", Findings: len(findings)}
	ids := map[string]bool{}
	for _, f := range findings {
		ids[f.Rule] = true
		switch f.Status {
		case rules.Fail:
			sum.Fail++
			sum.FailBySev[f.Severity.String()]++
			if f.Severity >= failOn {
				sum.Result = "fail"
			}
		case rules.Pass:
			sum.Pass++
		case rules.NotChecked:
			sum.NotChecked++
		case rules.Waived:
			sum.Waived++
		}
	}
	sum.Rules = len(ids)
	r.Summary = sum
	return r
}

// Failed reports whether the report crosses its fail-on threshold.
func (r *Report) Failed() bool { return r.Summary.Result == "fail" }

func statusRank(s rules.Status) int {
	switch s {
	case rules.Fail:
		return 0
	case rules.Waived:
		return 1
	case rules.NotChecked:
		return 2
	}
	return 3
}

func areaRank(a string) int {
	for i, x := range rules.AreaOrder {
		if x == a {
			return i
		}
	}
	return len(rules.AreaOrder)
}

// SortFindings orders findings: failures first, worst severity first, then
// by area, rule and object, so reports are stable.
func SortFindings(fs []rules.Finding) {
	sort.SliceStable(fs, func(i, j int) bool {
		a, b := fs[i], fs[j]
		if statusRank(a.Status) != statusRank(b.Status) {
			return statusRank(a.Status) < statusRank(b.Status)
		}
		if a.Severity != b.Severity {
			return a.Severity > b.Severity
		}
		if areaRank(a.Area) != areaRank(b.Area) {
			return areaRank(a.Area) < areaRank(b.Area)
		}
		if a.Rule != b.Rule {
			return a.Rule < b.Rule
		}
		if a.Location != b.Location {
			return a.Location < b.Location
		}
		return a.Object < b.Object
	})
}

// WriteJSON writes the stable JSON form.
func WriteJSON(w io.Writer, r *Report) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(r)
}
