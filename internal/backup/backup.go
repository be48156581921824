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

	"filippo.io/age"

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

// VerifyOptions for Verify.
type VerifyOptions struct {
	Identities  []age.Identity
	RestoreTest bool   // restore into a throwaway server of the dump's major and compare rows
	BinDir      string // server binaries for the restore test; found by major when empty
	Progress    Progress
	Now         func() time.Time
}

// Verify decrypts every file of the set in dir, checks its sha256 and
// size against the manifest, the key against the manifest's MAC, each
// dump's archive for completeness and per-table rows against the
// manifest, and with RestoreTest restores it and compares count(*) per
// table. It writes verification.json (ok or not) and returns a *Fault
// when anything did not match.
func Verify(ctx context.Context, dir string, o VerifyOptions) (*backupset.Verification, error) {
	return nil, errors.New("backup: not implemented")
}

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

// Rekey re-encrypts every file of the set in dir to recipients, writing
// a new manifest (Recipients updated, same key, re-signed); old files are
// replaced only after every new one is committed.
func Rekey(ctx context.Context, dir string, identities []age.Identity, recipients []agekeys.Recipient) (*backupset.Manifest, error) {
	return nil, errors.New("backup: not implemented")
}

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
