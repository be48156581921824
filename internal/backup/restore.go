package backup

import (
	"context"
	"errors"

	"filippo.io/age"

	"github.com/pgaegis/pgaegis/internal/pgclient"
)

// RestoreOptions for Restore.
type RestoreOptions struct {
	Identities []age.Identity
	Target     pgclient.Target
	Databases  []string // which of the set's databases; empty = all
	Globals    bool     // also run the globals script (psql) first
	Create     bool     // pg_restore --create (the database is created from the dump)
	Clean      bool     // pg_restore --clean --if-exists
	Jobs       int      // pg_restore -j is not possible from a pipe; parts of a parallel dump are restored concurrently
	Progress   Progress
}

// Restore checks the set first (a full decrypting pass: sha256, MAC,
// archive completeness) and refuses it on any mismatch; only then streams
// it a second time into pg_restore against the target.
func Restore(ctx context.Context, dir string, o RestoreOptions) error {
	return errors.New("backup: not implemented")
}
