package fix

import "github.com/pgaegis/pgaegis/internal/plan"

// stepText renders a step for a finding's fix text.
func stepText(s plan.Step) string { return plan.StepText(s) }
