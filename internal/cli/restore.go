package cli

import (
	"context"
	"errors"
	"fmt"
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
to disk.

Each database of the set is restored into the database of the same name
on the server -d connects to: without --create it must exist; with
--create pgaegis creates it (from template0) and drops it again if the
restore fails. Each database is restored in one transaction, so a failed
restore leaves nothing of it. --clean drops the objects of the dump
before creating them (with IF EXISTS).
--database restores only the named databases of the set (repeatable).

The password, when one is needed, reaches pg_restore and psql through an
in-memory pgpass file: never in their arguments or environment.

Exit codes: 0 restored; 2 a usage error, a set refused (it does not match
its manifest, or the identity does not open it) or a failed restore (the
message says which stage).`,
		Example: `  pgaegis restore /var/backups/pgaegis/db-20261203T020000Z --identity /etc/pgaegis/identity -h /var/run/postgresql -U postgres -d postgres --create
  pgaegis restore /var/backups/pgaegis/db-20261203T020000Z --identity /etc/pgaegis/identity -d "host=db.example.com dbname=shop sslmode=verify-full" --clean
  pgaegis restore /var/backups/pgaegis/db-20261203T020000Z --identity /etc/pgaegis/identity -h /var/run/postgresql -U postgres --globals --database shop --create`,
		Args: setDirArg("restore"),
	}
	var conn connFlags
	conn.register(cmd)
	fs := cmd.Flags()
	identity := fs.String("identity", "", "open the set with the age identities in `FILE` (as age -i; not readable by group or others)")
	databases := fs.StringArray("database", nil, "restore only this database `NAME` of the set (repeatable; default all of them)")
	globals := fs.Bool("globals", false, "also restore the set's globals (roles, tablespaces) with psql, first")
	create := fs.Bool("create", false, "create each database from the dump (pg_restore --create), connecting first to -d")
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
		if *globals && m.Globals == nil {
			return ExitError, usagef("--globals: the set %s holds no globals (it was made without --globals or --all)", dir)
		}
		cfg, err := conn.config(env)
		if err != nil {
			return ExitError, err
		}
		err = backup.Restore(ctx, dir, backup.RestoreOptions{
			Identities: ids, Target: pgclient.Target{Flags: conn.f, Config: cfg},
			Databases: *databases, Globals: *globals, Create: *create, Clean: *clean,
			Progress: backupProgress(env, "restore"),
		})
		if err != nil {
			var fault *backup.Fault
			if errors.As(err, &fault) {
				return ExitError, fmt.Errorf("not restored: %w", err)
			}
			return ExitError, err
		}
		names := *databases
		if len(names) == 0 {
			for _, d := range m.Databases {
				names = append(names, d.Name)
			}
		}
		w := textOut(env)
		fmt.Fprintf(w, "restored %s on the server at %s (each database under its own name)\n", esc(dir), esc(fmt.Sprintf("%s:%d", cfg.Host, cfg.Port)))
		if *globals {
			fmt.Fprintln(w, "  globals: restored")
		}
		for _, n := range names {
			fmt.Fprintf(w, "  database %s: restored\n", esc(n))
		}
		return ExitOK, nil
	})
	return cmd
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
