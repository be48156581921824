// Package backup is pgaegis's backup flow: dump a server through
// pg_dump into a sealed backup set (Backup), prove a set (Verify, with a
// restore into a throwaway server), bring one back (Restore), re-encrypt
// one to new recipients (Rekey) and apply retention (Prune).
//
// Every fault (a stage's exit status, an incomplete archive, a wrong
// identity, a hash or MAC that does not match, a row count that differs)
// is a *Fault, which the CLI turns into exit status 2.
package backup

import (
	"context"
	"errors"
	"time"

	"github.com/pgaegis/pgaegis/internal/agekeys"
	"github.com/pgaegis/pgaegis/internal/backupset"
	"github.com/pgaegis/pgaegis/internal/pgclient"
)

// Fault is a backup that failed or a set that did not prove itself.
type Fault struct {
	Set     string // set directory, when known
	Problem string // what was wrong, for the user
	Err     error
}

func (f *Fault) Error() string {
	s := f.Problem
	if f.Set != "" {
		s = f.Set + ": " + s
	}
	return s
}
func (f *Fault) Unwrap() error { return f.Err }

// Progress receives one line per stage (nil: silent).
type Progress func(format string, args ...any)

// Options for Backup.
type Options struct {
	Target        pgclient.Target
	Recipients    []agekeys.Recipient
	Out           string   // backup root; the set is Out/NAME-YYYYMMDDTHHMMSSZ
	Name          string   // set name prefix; default the target's host (or "local")
	Databases     []string // empty with !All: the target's database
	All           bool     // every connectable database except templates, plus globals
	Globals       bool     // globals (roles, tablespaces) even without All
	WithPasswords bool     // include roles' password verifiers in globals
	Jobs          int      // >1: parallel dump (see parallel.go)
	Level         int      // zstd level (sealedfile.Options.Level)
	Progress      Progress
	Now           func() time.Time // for tests; time.Now when nil
}

// Result is a finished backup.
type Result struct {
	Dir      string
	Manifest *backupset.Manifest
}

// Backup dumps and seals; the set directory holds nothing but sealed
// files and the manifest, written last. On any fault the set directory is
// removed and a *Fault returned.
func Backup(ctx context.Context, o Options) (*Result, error) {
	return nil, errors.New("backup: not implemented")
}
