package report

import (
	"encoding/json"
	"fmt"

	"github.com/pgaegis/pgaegis/internal/rules"
	"github.com/pgaegis/pgaegis/internal/safefile"
)

// BaselineDiff says what changed since a previous report.
type BaselineDiff struct {
	Path        string          `json:"path"`
	CollectedAt string          `json:"previous_collected_at"`
	New         int             `json:"new"`
	Unchanged   int             `json:"unchanged"`
	Fixed       []rules.Finding `json:"fixed"`
}

// LoadBaseline reads a previous JSON report.
func LoadBaseline(path string) (*Report, error) {
	data, err := safefile.ReadFile(path, safefile.SnapshotMax) // regular files only, capped
	if err != nil {
		return nil, err
	}
	var r Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("%s: not a pgaegis JSON report: %v", path, err)
	}
	if r.SchemaVersion != SchemaVersion {
		return nil, fmt.Errorf("%s: report schema %d, this pgaegis reads %d", path, r.SchemaVersion, SchemaVersion)
	}
	return &r, nil
}

// failing reports whether a finding counts as an open problem.
func failing(f rules.Finding) bool { return f.Status == rules.Fail || f.Status == rules.Waived }

// ApplyBaseline keeps only what is new since prev (failures absent from
// it) and lists what prev had that is now fixed. The summary and result
// then speak of new findings only, so CI fails on regressions.
func ApplyBaseline(r *Report, prev *Report, path string, failOn rules.Severity) {
	before := map[string]bool{}
	for _, f := range prev.Findings {
		if failing(f) {
			before[f.Key()] = true
		}
	}
	now := map[string]bool{}
	diff := &BaselineDiff{Path: path, CollectedAt: prev.CollectedAt.Format("2006-01-02T15:04:05Z07:00")}
	var kept []rules.Finding
	for _, f := range r.Findings {
		if !failing(f) {
			continue
		}
		now[f.Key()] = true
		if before[f.Key()] {
			diff.Unchanged++
			continue
		}
		f.Change = "new"
		diff.New++
		kept = append(kept, f)
	}
	for _, f := range prev.Findings {
		if failing(f) && !now[f.Key()] {
			diff.Fixed = append(diff.Fixed, f)
		}
	}
	r.Findings = kept
	r.Baseline = diff
	// Recount over what is reported.
	sum := Summary{FailBySev: map[string]int{}, FailOn: failOn.String(), Result: "pass", Rules: r.Summary.Rules, Findings: len(kept)}
	for _, f := range kept {
		switch f.Status {
		case rules.Fail:
			sum.Fail++
			sum.FailBySev[f.Severity.String()]++
			if f.Severity >= failOn {
				sum.Result = "fail"
			}
		case rules.Waived:
			sum.Waived++
		}
	}
	// What was not seen stays unseen whatever the baseline says.
	sum.settle(r.Summary.IncompleteReason)
	r.Summary = sum
}
