package fix

import (
	"github.com/pgaegis/pgaegis/internal/plan"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// planHBA is a placeholder until its part of the planner is built.
func planHBA(s *snapshot.Snapshot, items []item) ([]built, []plan.Held) { return nil, nil }
