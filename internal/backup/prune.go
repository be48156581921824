package backup

import (
	"errors"
	"time"

	"github.com/pgaegis/pgaegis/internal/backupset"
)

// PruneOptions for Prune.
type PruneOptions struct {
	Keep     backupset.Keep
	DryRun   bool
	Now      func() time.Time
	Progress Progress
}

// Prune lists root, applies backupset.Select, and removes the sets not
// kept (unless DryRun). It returns every decision.
func Prune(root string, o PruneOptions) ([]backupset.Decision, error) {
	return nil, errors.New("backup: not implemented")
}
