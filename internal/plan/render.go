package plan

// StepText renders one step the way a report shows it as a finding's fix
// (placeholder until the renderers are built: the summary only).
func StepText(s Step) string { return s.Summary }
