package fix

import (
	"github.com/pgaegis/pgaegis/internal/plan"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// planFiles is a placeholder until its part of the planner is built.
func planFiles(s *snapshot.Snapshot, items []item) ([]built, []plan.Held) { return nil, nil }
