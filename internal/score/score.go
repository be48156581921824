// Package score rates a scan's security posture as one number, 0 to 100,
// from its counts: the same number on the dashboard, in /metrics and in
// fleet report, so that a server ranks the same wherever it is read.
package score

import (
	"math"

	"github.com/pgaegis/pgaegis/internal/store"
)

// Weights is what one failing check of each severity costs, counted in
// passing checks. Info failures are notes, not weaknesses: they cost
// nothing.
var Weights = map[string]int{"critical": 10, "high": 5, "medium": 2, "low": 1, "info": 0}

// Of is the share of decided checks that pass, failures weighted by
// severity: 100 × good / (good + Σ weight × fail), where good is passing
// plus waived. 100 is all passing, 0 all failing; a server with many
// checks and one critical failure stays high, one whose few checks fail
// critically drops low. ok is false when nothing was decided (no score).
// Rounded down, so that 100 means no weighted failure at all.
func Of(c store.Counts) (n int, ok bool) {
	var wf float64
	for sev, k := range c.FailBySeverity {
		wf += float64(Weights[sev] * k)
	}
	good := float64(c.Pass + c.Waived)
	if good+wf == 0 {
		return 0, false
	}
	return int(math.Floor(100 * good / (good + wf))), true
}
