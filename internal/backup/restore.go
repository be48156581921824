package backup

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"filippo.io/age"

	"github.com/pgaegis/pgaegis/internal/backupset"
	"github.com/pgaegis/pgaegis/internal/pgclient"
	"github.com/pgaegis/pgaegis/internal/quote"
)

// RestoreOptions for Restore.
type RestoreOptions struct {
	Identities []age.Identity
	Target     pgclient.Target
	Databases  []string // which of the set's databases; empty = all
	Globals    bool     // also run the globals script (psql) first
	Create     bool     // pg_restore --create (the database is created from the dump)
	Clean      bool     // pg_restore --clean --if-exists
	Progress   Progress
}

// Restore checks the set first (a full decrypting pass: sha256, MAC,
// archive completeness) and refuses it on any mismatch; only then streams
// it a second time into pg_restore against the target.
//
// The second pass hashes the ciphertext again and holds back each file's
// last buffer until its sha256 matches the manifest (the file may have
// changed since pass 1): on a mismatch pg_restore is killed before its
// input ends, so its single transaction never commits.
func Restore(ctx context.Context, dir string, o RestoreOptions) error {
	m, err := backupset.ReadManifest(dir)
	if err != nil {
		return &Fault{Set: dir, Problem: err.Error(), Err: err}
	}
	var dbs []backupset.Database
	for _, d := range m.Databases {
		if len(o.Databases) == 0 || slices.Contains(o.Databases, d.Name) {
			dbs = append(dbs, d)
		}
	}
	for _, n := range o.Databases {
		if !slices.ContainsFunc(dbs, func(d backupset.Database) bool { return d.Name == n }) {
			return &Fault{Set: dir, Problem: fmt.Sprintf("the set has no database %q", n), Err: errors.New("no such database in the set")}
		}
	}
	if o.Globals && m.Globals == nil {
		return &Fault{Set: dir, Problem: "the set has no globals", Err: errors.New("no globals in the set")}
	}
	// Pass 1: the same checks as Verify, nothing sent to the target.
	p := &proof{dir: dir, m: m, ids: o.Identities, sums: map[string]string{}}
	p.unlock(m.AllFiles())
	if p.keyOK && len(p.problems) == 0 {
		say(o.Progress, "%s: checking every file before restoring", dir)
		p.content(dbs, o.Globals)
	}
	if len(p.problems) > 0 {
		return &Fault{Set: dir, Problem: strings.Join(p.problems, "; "), Err: errors.New("backup set did not verify; nothing restored")}
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	major := m.Server.VersionNum / 10000
	if _, mj, err := pgclient.ParseVersion("pg_dump (PostgreSQL) " + m.PgDump.Version); err == nil {
		major = mj
	}
	pgRestore, err := pgclient.Find("pg_restore", major)
	if err != nil {
		return err
	}
	psql, err := pgclient.Find("psql", major)
	if err != nil {
		return err
	}
	// Pass 2.
	if o.Globals {
		say(o.Progress, "%s: restoring globals", dir)
		if err := runGlobals(ctx, dir, *m.Globals, o.Identities, o.Target, psql); err != nil {
			return restoreFault(dir, err)
		}
	}
	var extra []string
	if o.Clean {
		extra = append(extra, "--clean", "--if-exists")
	}
	for _, d := range dbs {
		// pg_restore refuses --create with --single-transaction, and the
		// single transaction is what keeps a file that changed since
		// pass 1 from committing anything: the database is created here.
		if o.Create {
			if err := psqlCommand(ctx, o.Target, psql, "postgres", "CREATE DATABASE "+quote.Ident(d.Name)+" TEMPLATE template0"); err != nil {
				return err
			}
		}
		say(o.Progress, "%s: restoring database %q", dir, d.Name)
		if err := restoreDatabase(ctx, dir, d, o.Identities, o.Target, pgRestore, extra); err != nil {
			if o.Create {
				psqlCommand(context.WithoutCancel(ctx), o.Target, psql, "postgres", "DROP DATABASE IF EXISTS "+quote.Ident(d.Name))
			}
			return restoreFault(dir, err)
		}
	}
	return nil
}

func restoreFault(dir string, err error) error {
	if strings.Contains(err.Error(), "the manifest says") {
		return &Fault{Set: dir, Problem: err.Error(), Err: err}
	}
	return err
}
