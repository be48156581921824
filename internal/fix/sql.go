package fix

import (
	"github.com/pgaegis/pgaegis/internal/plan"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// planSQL is a placeholder until its part of the planner is built.
func planSQL(s *snapshot.Snapshot, items []item) ([]built, []plan.Held) { return nil, nil }
