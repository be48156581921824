package fix

import "github.com/pgaegis/pgaegis/internal/rules"

// Regressions are the findings failing in after that a fix may have
// caused: the same rule and object passed in before, or the rule passed
// as a whole (nothing failed or went unchecked). A finding that was not
// checked before (logging_collector was off, so where logs go did not
// apply) or that names an object the fix created or renamed (a rewritten
// pg_hba.conf line) is a finding to plan next, not a fix undoing another:
// the second plan shows it. Volatile rules are left out.
func Regressions(before, after []rules.Finding) []rules.Finding {
	passed := map[string]bool{}
	unclean := map[string]bool{}
	for _, f := range before {
		switch f.Status {
		case rules.Pass:
			passed[f.Key()] = true
		default:
			unclean[f.Rule] = true
		}
	}
	var out []rules.Finding
	for _, f := range after {
		if f.Status != rules.Fail || rules.IsVolatile(f.Rule) {
			continue
		}
		if passed[f.Key()] || !unclean[f.Rule] {
			out = append(out, f)
		}
	}
	return out
}

// Verifiable are the failing findings after a change that an apply
// judges: those that failed before (a step that claimed one must have
// closed it) and the Regressions. A finding that only became visible
// (newly applicable, or a rewritten line's new name) is for the next
// plan, not a reason to roll back.
func Verifiable(before, after []rules.Finding) []rules.Finding {
	was := map[string]bool{}
	for _, f := range before {
		if f.Status == rules.Fail {
			was[f.Key()] = true
		}
	}
	var keep []rules.Finding
	for _, f := range after {
		if f.Status == rules.Fail && was[f.Key()] {
			keep = append(keep, f)
		}
	}
	return append(keep, Regressions(before, after)...)
}
