package backup

import (
	"context"
	"encoding/json"
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
	// Create: each database is restored under its own name, created by
	// pgaegis (CREATE DATABASE ... TEMPLATE template0) while connected to
	// the target's database; postgres and template1 that exist already
	// are restored into in place, as pg_dumpall's restore does. Without
	// it, the one selected database is restored into the target's
	// database (pg_restore's convention: -d is where it goes).
	Create   bool
	Clean    bool     // pg_restore --clean --if-exists; with Create, an existing database is dropped and created again
	Progress Progress // how far the checking pass is (may be nil)
	// Say gets every line that says what is written where, before it is
	// written, and what was kept of the target (may be nil).
	Say Progress
}

// dbStep is one database of the set and where it goes.
type dbStep struct {
	db      backupset.Database
	into    string // database on the target
	create  bool   // CREATE DATABASE into first
	drop    bool   // DROP DATABASE into first (Clean with Create)
	inPlace bool   // postgres or template1 that exist: restored into
}

// targetState is what the target said before anything was written.
type targetState struct {
	Database  string   `json:"db"`   // the database the connection options name
	User      string   `json:"user"` // session_user
	Databases []string `json:"dbs"`
}

// inPlaceDatabases are those pg_dumpall's restore never creates: they
// exist on every fresh cluster and are restored into.
var inPlaceDatabases = []string{"postgres", "template1"}

// planRestore decides where each database goes, or refuses the whole
// restore before anything is written.
func planRestore(dbs []backupset.Database, o RestoreOptions, ts *targetState, server string) ([]dbStep, error) {
	if !o.Create {
		if len(dbs) > 1 {
			return nil, fmt.Errorf("the set holds %d databases (%s): without --create they would all be restored into one database; give --create to restore each under its own name, or --database NAME to restore one of them into the database -d names (%s)", len(dbs), nameList(dbs), ts.Database)
		}
		return []dbStep{{db: dbs[0], into: ts.Database}}, nil
	}
	var steps []dbStep
	var exist []string
	for _, d := range dbs {
		st := dbStep{db: d, into: d.Name}
		have := slices.Contains(ts.Databases, d.Name)
		switch {
		case have && slices.Contains(inPlaceDatabases, d.Name):
			st.inPlace = true
		case have && d.Name == ts.Database:
			return nil, fmt.Errorf("-d names %q, which --create would drop and create again: connect to another database of %s (-d postgres, for example)", d.Name, server)
		case have && !o.Clean:
			exist = append(exist, d.Name)
		case have:
			st.drop, st.create = true, true
		default:
			st.create = true
		}
		steps = append(steps, st)
	}
	if len(exist) > 0 {
		return nil, fmt.Errorf("database %s already exists on %s, and --create does not write into an existing database: give --clean as well to drop and create it again (its present content is lost), or --database NAME to restore only the others; nothing was restored", quoteList(exist), server)
	}
	return steps, nil
}

func nameList(dbs []backupset.Database) string {
	var n []string
	for _, d := range dbs {
		n = append(n, d.Name)
	}
	return quoteList(n)
}

// inspectTarget asks the target, through psql and the same connection
// options as the restore itself, which database and role it connects as
// and which databases it holds.
func inspectTarget(ctx context.Context, t pgclient.Target, psql pgclient.Tool) (*targetState, error) {
	const q = "select json_build_object('db', current_database(), 'user', session_user, 'dbs', (select json_agg(datname order by datname) from pg_database))"
	cmd, closer, err := t.Command(ctx, psql, "", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-c", q)
	if err != nil {
		return nil, err
	}
	defer closer()
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, fmt.Errorf("connecting to the target before restoring (nothing was restored): %v: %s", err, strings.TrimSpace(stderr.String()))
	}
	var ts targetState
	if err := json.Unmarshal(out, &ts); err != nil || ts.Database == "" || ts.User == "" {
		return nil, fmt.Errorf("reading the target's databases: unexpected psql output (%v)", err)
	}
	return &ts, nil
}

// serverName is host:port for the messages (no user, no secrets).
func serverName(t pgclient.Target) string {
	if t.Config == nil {
		return "the target server"
	}
	return fmt.Sprintf("%s:%d", t.Config.Host, t.Config.Port)
}

// Restore checks the set first (a full decrypting pass: sha256, MAC,
// archive completeness) and refuses it on any mismatch; only then streams
// it a second time into pg_restore against the target. Where each
// database goes is decided, and a conflict refused, before either pass.
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
	if len(dbs) == 0 && !o.Globals {
		return &Fault{Set: dir, Problem: "the set holds no database", Err: errors.New("nothing to restore")}
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
	server := serverName(o.Target)
	ts, err := inspectTarget(ctx, o.Target, psql)
	if err != nil {
		return err
	}
	var steps []dbStep
	if len(dbs) > 0 {
		if steps, err = planRestore(dbs, o, ts, server); err != nil {
			return err
		}
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
	// What will be written where, all of it before the first write.
	if o.Globals {
		say(o.Say, "restoring the globals (roles, tablespaces) of the set into %s, connected as %q", server, ts.User)
	}
	for _, st := range steps {
		switch {
		case st.drop:
			say(o.Say, "dropping database %q on %s and creating it again (--clean --create), then restoring %q (from the set) into it", st.into, server, st.db.Name)
		case st.create:
			say(o.Say, "creating database %q on %s (from template0), then restoring %q (from the set) into it", st.into, server, st.db.Name)
		case st.inPlace:
			say(o.Say, "restoring %q (from the set) into the existing %q on %s (not created again, as pg_dumpall's restore does)", st.db.Name, st.into, server)
		default:
			say(o.Say, "restoring %q (from the set) into %q on %s", st.db.Name, st.into, server)
		}
	}
	// Pass 2.
	if o.Globals {
		say(o.Progress, "%s: restoring globals", dir)
		kept, err := runGlobalsAs(ctx, dir, *m.Globals, o.Identities, o.Target, psql, "", ts.User)
		if kept != "" {
			say(o.Say, "globals: %s", kept)
		}
		if err != nil {
			return restoreFault(dir, err)
		}
		say(o.Say, "globals: restored")
	}
	var extra []string
	if o.Clean {
		extra = append(extra, "--clean", "--if-exists")
	}
	var done []string
	for i, st := range steps {
		// pg_restore refuses --create with --single-transaction, and the
		// single transaction is what keeps a file that changed since
		// pass 1 from committing anything: the database is created here,
		// connected to the target's own database.
		if st.drop {
			if err := psqlCommand(ctx, o.Target, psql, "", "DROP DATABASE IF EXISTS "+quote.Ident(st.into)); err != nil {
				return partial(err, done, steps[i:])
			}
		}
		if st.create {
			if err := psqlCommand(ctx, o.Target, psql, "", "CREATE DATABASE "+quote.Ident(st.into)+" TEMPLATE template0"); err != nil {
				return partial(err, done, steps[i:])
			}
		}
		say(o.Progress, "%s: restoring database %q into %q", dir, st.db.Name, st.into)
		if err := restoreDatabaseInto(ctx, dir, st.db, st.into, o.Identities, o.Target, pgRestore, extra); err != nil {
			if st.create {
				psqlCommand(context.WithoutCancel(ctx), o.Target, psql, "", "DROP DATABASE IF EXISTS "+quote.Ident(st.into))
			}
			return partial(restoreFault(dir, err), done, steps[i:])
		}
		done = append(done, st.into)
		say(o.Say, "database %q: restored into %q", st.db.Name, st.into)
	}
	return nil
}

// partial says, with a failure after some databases were restored,
// which ones were and which were not.
func partial(err error, done []string, left []dbStep) error {
	if len(done) == 0 {
		return err
	}
	var not []string
	for _, st := range left {
		not = append(not, st.into)
	}
	return fmt.Errorf("%w (restored before the failure: %s; not restored: %s)", err, quoteList(done), quoteList(not))
}

func restoreFault(dir string, err error) error {
	if strings.Contains(err.Error(), "the manifest says") {
		return &Fault{Set: dir, Problem: err.Error(), Err: err}
	}
	return err
}
