// Package report turns findings into documents: the stable JSON form and
// the human-readable text report. Writers never see connection secrets:
// the snapshot's target description is already redacted.
package report

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"
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
	// CollectionErrors are reads that failed (not for lack of privilege);
	// they make the report incomplete.
	CollectionErrors map[string]string `json:"collection_errors,omitempty"`
	Warnings         []string          `json:"warnings,omitempty"`
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
	// Result is "fail" when a failing finding is at or above FailOn, else
	// "incomplete" when Incomplete, else "pass".
	Result string `json:"result"`
	// Incomplete is set when the audit cannot vouch for what it did not
	// see: a read failed (CollectionErrors), the snapshot holds nothing
	// from a server or files, or no rule of the profile could be decided.
	// The audit then exits 2 (after writing the report).
	Incomplete       bool   `json:"incomplete,omitempty"`
	IncompleteReason string `json:"incomplete_reason,omitempty"`
}

// incomplete says why an audit of s with these findings cannot pass
// ("" when it can).
func incomplete(s *snapshot.Snapshot, findings []rules.Finding) string {
	if n := len(s.Errors); n > 0 {
		return fmt.Sprintf("%d collection error(s): what could not be read is reported not_checked (see collection_errors)", n)
	}
	// Settings or roles alone (a trimmed or hand-made snapshot) are not a
	// source: an audit must have seen a server or the server's files.
	if s.Server == nil && s.Config == nil && s.HBA == nil && s.Ident == nil && len(s.Files) == 0 {
		return "nothing was audited: the snapshot holds no server, configuration file, hba file or file modes"
	}
	// A database the audit could not enter may hold exactly what the rules
	// look for (a SECURITY DEFINER backdoor, a PUBLIC CREATE schema).
	var unread []string
	for _, d := range s.Databases {
		if d.AllowConn && !d.Collected {
			unread = append(unread, strconv.Quote(d.Name))
		}
	}
	if len(unread) > 0 {
		return fmt.Sprintf("%d database(s) could not be read (%s): their rules are not_checked; let the audit role connect to them (CONNECT privilege and a pg_hba.conf line)", len(unread), strings.Join(unread, ", "))
	}
	for _, f := range findings {
		if f.Status != rules.NotChecked {
			return ""
		}
	}
	return "no rule of the profile could be checked"
}

// settle sets the result from the counts and the incompleteness.
func (sum *Summary) settle(reason string) {
	sum.Incomplete, sum.IncompleteReason = reason != "", reason
	if sum.Incomplete && sum.Result != "fail" {
		sum.Result = "incomplete"
	}
}

// Build assembles a report; findings are sorted worst first.
func Build(s *snapshot.Snapshot, findings []rules.Finding, failOn rules.Severity) *Report {
	r := &Report{SchemaVersion: SchemaVersion, Tool: s.Tool, ToolVersion: s.ToolVersion, Target: s.Target,
		CollectedAt: s.CollectedAt, Findings: append([]rules.Finding(nil), findings...), Gaps: s.Gaps, CollectionErrors: s.Errors, Warnings: s.Warnings}
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
	sum.settle(incomplete(s, findings))
	r.Summary = sum
	return r
}

// Failed reports whether the report crosses its fail-on threshold.
func (r *Report) Failed() bool { return r.Summary.Result == "fail" }

// Incomplete reports whether the audit could not vouch for its result.
func (r *Report) Incomplete() bool { return r.Summary.Incomplete }

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
