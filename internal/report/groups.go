package report

import "github.com/pgaegis/pgaegis/internal/rules"

// GroupByRule groups findings by rule and status the way the human
// reports show them (first appearance order, each group's findings by
// location), for other front ends (the dashboard of pgaegis serve).
// SortFindings first gives the reports' order.
func GroupByRule(fs []rules.Finding) []*RuleGroup { return groupByRule(fs) }
