package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/pgaegis/pgaegis/internal/backup"
	"github.com/pgaegis/pgaegis/internal/backupset"
	"github.com/pgaegis/pgaegis/internal/pgclient"
)

// restoreCmd is 'pgaegis restore SET_DIR' (docs/backup.md).
func restoreCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "restore SET_DIR --identity FILE [connection options]",
		Short: "check a backup set against its manifest, then stream it back through pg_restore",
		Long: `Restore the backup set in SET_DIR into the server the connection options
name. The set is checked first, in a full decrypting pass (each file's
sha256 and size, the manifest's MAC, each archive's completeness); a set
that does not match its manifest is refused and nothing is restored. Only
then is it decrypted a second time and streamed into pg_restore (and, with
--globals, the globals script into psql first). No plaintext is written
to disk. Before anything is written, pgaegis asks the target which
databases it holds, refuses a conflict, and prints which database of the
set goes into which database on which server.

Where each database goes follows pg_restore's convention:
  without --create  the one database selected (the set's only one, or
                    --database NAME) is restored INTO the database -d
                    names, under that name: a set of hr restored with
                    -d hr_copy fills hr_copy and leaves hr alone. A set
                    of several databases needs --create or --database.
  with --create     -d is only the database to connect to first; each
                    database is created under its own name (pgaegis runs
                    CREATE DATABASE ... TEMPLATE template0, and drops it
                    again if its restore fails). postgres and template1,
                    which every cluster has, are restored into in place,
                    as pg_dumpall's restore does. Any other database that
                    exists already is refused before anything is
                    restored: add --clean to drop and create it again
                    (its present content is then lost, even if the
                    restore fails), or pick the others with --database.
Each database is restored in one transaction, so a failed restore leaves
nothing of it. --clean drops the objects of the dump before creating them
(pg_restore --clean --if-exists).

--globals runs pg_dumpall's roles and tablespaces script first. The role
this restore connects as keeps its password, login, superuser, connection
limit and expiry on the target: its ALTER ROLE from the set is applied
without them (a set made --with-passwords would otherwise replace the
password pgaegis is logged in with). The output says so when it happens.

The password, when one is needed, reaches pg_restore and psql through an
in-memory pgpass file: never in their arguments or environment.

Exit codes: 0 restored; 2 a usage error, a conflict with the target, a
set refused (it does not match its manifest, or the identity does not
open it) or a failed restore (the message says which stage, and which
databases were restored before it).`,
		Example: `  pgaegis restore /var/backups/pgaegis/db-20261203T020000Z --identity /etc/pgaegis/identity -h /var/run/postgresql -U postgres -d postgres --create
  pgaegis restore /var/backups/pgaegis/db-20261203T020000Z --identity /etc/pgaegis/identity -d "host=db.example.com dbname=shop sslmode=verify-full" --clean
  pgaegis restore /var/backups/pgaegis/all-20261203T020000Z --identity /etc/pgaegis/identity -h /var/run/postgresql -U postgres --database hr -d hr_copy
  pgaegis restore /var/backups/pgaegis/all-20261203T020000Z --identity /etc/pgaegis/identity -h /var/run/postgresql -U postgres -d postgres --globals --create`,
		Args: setDirArg("restore"),
	}
	var conn connFlags
	conn.register(cmd)
	fs := cmd.Flags()
	identity := fs.String("identity", "", "open the set with the age identities in `FILE` (as age -i; not readable by group or others)")
	databases := fs.StringArray("database", nil, "restore only this database `NAME` of the set (repeatable; default all of them)")
	globals := fs.Bool("globals", false, "also restore the set's globals (roles, tablespaces) with psql, first")
	create := fs.Bool("create", false, "restore each database under its own name, creating it (CREATE DATABASE ... TEMPLATE template0; postgres and template1 in place), connected to -d")
	clean := fs.Bool("clean", false, "drop the dump's objects before creating them (pg_restore --clean --if-exists)")
	cmd.MarkFlagFilename("identity")
	cmd.RunE = runE(env, func(ctx context.Context, env *Env, args []string) (int, error) {
		for _, d := range *databases {
			if d == "" {
				return ExitError, usagef("--database: an empty name")
			}
		}
		ids, err := identities(*identity)
		if err != nil {
			return ExitError, err
		}
		dir := args[0]
		// A manifest that cannot be read is refused before connecting; the
		// full check (MAC, hashes) is Restore's.
		m, err := backupset.ReadManifest(dir)
		if err != nil {
			return ExitError, fmt.Errorf("refused: %w", err)
		}
		if err := restoreDatabasesKnown(m, *databases); err != nil {
			return ExitError, err
		}
		if n := selectedCount(m, *databases); !*create && n > 1 {
			return ExitError, usagef("the set %s holds %d databases: without --create they would all go into the one database -d names; give --create to restore each under its own name, or --database NAME to restore one of them into the -d database", dir, n)
		}
		if *globals && m.Globals == nil {
			return ExitError, usagef("--globals: the set %s holds no globals (it was made without --globals or --all)", dir)
		}
		cfg, err := conn.config(env)
		if err != nil {
			return ExitError, err
		}
		w := textOut(env)
		sayLine := func(format string, a ...any) { fmt.Fprintf(w, format+"\n", a...) }
		err = backup.Restore(ctx, dir, backup.RestoreOptions{
			Identities: ids, Target: pgclient.Target{Flags: conn.f, Config: cfg},
			Databases: *databases, Globals: *globals, Create: *create, Clean: *clean,
			Progress: backupProgress(env, "restore"), Say: sayLine,
		})
		if err != nil {
			var fault *backup.Fault
			if errors.As(err, &fault) {
				return ExitError, fmt.Errorf("not restored: %w", err)
			}
			return ExitError, err
		}
		fmt.Fprintf(w, "restored %s on the server at %s\n", esc(dir), esc(fmt.Sprintf("%s:%d", cfg.Host, cfg.Port)))
		return ExitOK, nil
	})
	return cmd
}

// selectedCount is how many of the set's databases a restore writes.
func selectedCount(m *backupset.Manifest, want []string) int {
	n := 0
	for _, d := range m.Databases {
		if len(want) == 0 || slices.Contains(want, d.Name) {
			n++
		}
	}
	return n
}

// restoreDatabasesKnown refuses a --database the set does not hold.
func restoreDatabasesKnown(m *backupset.Manifest, want []string) error {
	have := map[string]bool{}
	var names []string
	for _, d := range m.Databases {
		have[d.Name] = true
		names = append(names, esc(d.Name))
	}
	for _, w := range want {
		if !have[w] {
			return usagef("--database %s: the set holds no such database (it holds: %s)", esc(w), strings.Join(names, ", "))
		}
	}
	return nil
}
