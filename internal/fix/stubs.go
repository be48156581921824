package fix

import (
	"github.com/pgaegis/pgaegis/internal/plan"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// Placeholders, each replaced by its own file (files.go, sql.go,
// settings.go, hba.go) by whoever builds that part.

func planFiles(s *snapshot.Snapshot, items []item) ([]built, []plan.Held)    { return nil, nil }
func planSQL(s *snapshot.Snapshot, items []item) ([]built, []plan.Held)      { return nil, nil }
func planSettings(s *snapshot.Snapshot, items []item) ([]built, []plan.Held) { return nil, nil }
func planHBA(s *snapshot.Snapshot, items []item) ([]built, []plan.Held)      { return nil, nil }

// stepText renders a step for a finding's fix (placeholder: plan.Render owns it).
func stepText(s plan.Step) string { return s.Summary }
