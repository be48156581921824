package fix

import (
	"github.com/pgaegis/pgaegis/internal/plan"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// planSettings is a placeholder until its part of the planner is built.
func planSettings(s *snapshot.Snapshot, items []item) ([]built, []plan.Held) { return nil, nil }
