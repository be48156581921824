package cli

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/pgaegis/pgaegis/internal/collect"
	"github.com/pgaegis/pgaegis/internal/plan"
	"github.com/pgaegis/pgaegis/internal/policy"
	"github.com/pgaegis/pgaegis/internal/policy/execute"
	"github.com/pgaegis/pgaegis/internal/quote"
)

func policyApplyCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "apply FILE [connection options] [--mode M] [--check] [--yes]",
		Short: "apply a policy file: one transaction per database, journalled, verified, restored on failure",
		Long: `Apply a policy file to the server: read the live state of the databases the
file names, diff, print the plan and its notes, then (after a confirmation
on a terminal, or with --yes) run it: the plan, the state it starts from
(as a policy file) and the password verifiers of roles it drops or
re-passwords are journalled first (0600); the cluster-wide additions
(roles, memberships) commit first, then each database's grants, ownership,
default privileges and RLS in ONE transaction (grants before revokes, so a
privilege a role keeps is never missing mid-apply), then the removals.
Statements are pipelined; each waits at most --lock-timeout for a lock,
and a lock timeout names the sessions that held it. Afterwards the server
is read again and diffed: nothing may be left. A failure after anything
committed restores the journalled state.

--check executes the whole plan and rolls every transaction back, so
errors show before anything lands (CREATE DATABASE cannot be rolled back:
only its name is checked). 'pgaegis access policy rollback ID' undoes an
applied plan.

Exit codes: 0 applied and verified, nothing to do, or the check passed;
1 the check found errors; 2 an error, a refusal or a failure (restored).`,
		Example: `  pgaegis access policy apply policy.yaml -h db.example.com -U admin --check
  pgaegis access policy apply policy.yaml -h db.example.com -U admin --yes --lock-timeout 2s
  pgaegis access policy rollback 20261202-143000-1a2b -h db.example.com -U admin`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("give one policy file")
			}
			return nil
		},
	}
	var f policyDiffFlags
	f.register(cmd)
	fs := cmd.Flags()
	doCheck := fs.Bool("check", false, "execute the plan and roll it back: show errors before anything lands")
	yes := fs.BoolP("yes", "y", false, "apply without asking (needed when standard input is not a terminal)")
	lockTimeout := fs.Duration("lock-timeout", 5*time.Second, "how long each statement may wait for a lock")
	journalDir := fs.String("journal-dir", "", "journal directory (default: $XDG_STATE_HOME/pgaegis/plans, as fix --apply)")
	cmd.MarkFlagDirname("journal-dir")
	cmd.MarkFlagFilename("", "yaml", "yml")
	cmd.RunE = runE(env, func(ctx context.Context, env *Env, args []string) (int, error) {
		switch f.mode {
		case "", policy.Authoritative, policy.Adopt, policy.Additive:
		default:
			return ExitError, usagef("unknown --mode %q (authoritative, adopt or additive)", f.mode)
		}
		if *lockTimeout <= 0 {
			return ExitError, usagef("--lock-timeout must be positive")
		}
		if *yes && *doCheck {
			return ExitError, usagef("--yes means nothing with --check (a check changes nothing)")
		}
		if !*doCheck && !*yes && !stdinTerminal(env) {
			return ExitError, usagef("apply changes the server: standard input is not a terminal to ask on, so give --yes (after reviewing the plan with --check)")
		}
		r, err := f.load(ctx, env, args[0])
		if err != nil {
			return ExitError, err
		}
		p := r.plan
		if err := writePolicyPlan(env, "text", p, r.notes); err != nil {
			return ExitError, err
		}
		o := execute.Options{JournalRoot: *journalDir, LockTimeout: *lockTimeout, Check: *doCheck}
		if isTerminal(env.Stderr) {
			o.Progress = env.Stderr
		}
		if err := refuseUnreadable(r.desired, r.live); err != nil {
			return ExitError, err
		}
		if p.Empty() {
			fmt.Fprintln(env.Stderr, "pgaegis access policy apply: nothing to apply")
			return ExitOK, nil
		}
		if *doCheck {
			res, err := execute.Apply(ctx, r.cfg, p, nil, o)
			if err != nil {
				return ExitError, err
			}
			return checkOutcome(textEnv(env), res), nil
		}
		if !*yes {
			ok, err := confirm(env, fmt.Sprintf("apply plan %s (%d step(s)) to %s? [y/N] ", p.ID, len(p.Steps), p.Target))
			if err != nil {
				return ExitError, err
			}
			if !ok {
				fmt.Fprintln(env.Stderr, "pgaegis access policy apply: not applied")
				return ExitError, nil
			}
		}
		before := execute.Before(r.desired, r.live)
		o.Verify = func(ctx context.Context) error {
			// Read what the file names again, databases it created included.
			names, err := existingDatabases(ctx, r.cfg)
			if err != nil {
				return err
			}
			r.dbs = fileScope(r.desired, names, r.cfg.Database)
			if err := f.diff(ctx, r); err != nil {
				return err
			}
			if !r.plan.Empty() {
				var s []string
				for _, st := range r.plan.Steps {
					s = append(s, st.Summary)
				}
				return fmt.Errorf("the server does not match the file yet: %d step(s) left (%s)", len(r.plan.Steps), strings.Join(s, "; "))
			}
			return nil
		}
		res, err := execute.Apply(ctx, r.cfg, p, before, o)
		return policyOutcome(env, "applied", res, err)
	})
	return cmd
}

func policyRollbackCmd(env *Env) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "rollback PLAN-ID [connection options] [--yes]",
		Short: "put back the state a policy apply started from, from its journal",
		Long: `Put back the state policy plan PLAN-ID started from: the journalled policy
file of the databases it touched is diffed against the server
(authoritatively: roles the apply created are dropped, what it revoked is
granted again, ownership and default privileges as they were), that plan
is applied (journalled as PLAN-ID-restore), the password verifiers of
roles it recreates are restored, and the server is read again to prove
it. What cannot come back is said plainly: objects DROP OWNED removed,
passwords that were not journalled.

The restoring plan is printed first and runs after a confirmation on a
terminal, or with --yes (needed when standard input is not a terminal),
as apply does.

Exit codes: 0 rolled back and verified; 2 an error, a refusal, or not
confirmed.`,
		Example: `  pgaegis access policy rollback 20261202-143000-1a2b -h db.example.com -U admin
  pgaegis access policy rollback 20261202-143000-1a2b -h db.example.com -U admin --yes`,
		Args: func(c *cobra.Command, args []string) error {
			if len(args) != 1 {
				return usagef("policy rollback needs one plan id (see pgaegis fix history)")
			}
			return nil
		},
	}
	var conn connFlags
	conn.register(cmd)
	fs := cmd.Flags()
	journalDir := fs.String("journal-dir", "", "journal directory (default: $XDG_STATE_HOME/pgaegis/plans, as fix --apply)")
	dropOwned := fs.Bool("drop-owned", false, "let roles the apply created be dropped even when they now hold privileges or own objects (DROP OWNED)")
	lockTimeout := fs.Duration("lock-timeout", 5*time.Second, "how long each statement may wait for a lock")
	yes := fs.BoolP("yes", "y", false, "roll back without asking (needed when standard input is not a terminal)")
	cmd.MarkFlagDirname("journal-dir")
	cmd.RunE = runE(env, func(ctx context.Context, env *Env, args []string) (int, error) {
		if *lockTimeout <= 0 {
			return ExitError, usagef("--lock-timeout must be positive")
		}
		if !*yes && !stdinTerminal(env) {
			return ExitError, usagef("rollback changes the server: standard input is not a terminal to ask on, so give --yes")
		}
		cfg, err := conn.config(env)
		if err != nil {
			return ExitError, err
		}
		o := execute.Options{LockTimeout: *lockTimeout, DropOwned: *dropOwned}
		if isTerminal(env.Stderr) {
			o.Progress = env.Stderr
		}
		// What the restore will run is shown before it runs, as apply's
		// plan is.
		o.Confirm = func(p *plan.Plan, notes []policy.Note) (bool, error) {
			fmt.Fprintf(env.Stdout, "restoring the state plan %s started from:\n", esc(args[0]))
			// A held role is one the apply created: the restore's second
			// pass drops it once this plan has revoked what it holds, so
			// the diff's advice (flags of apply) is not what applies here.
			var shown, held []policy.Note
			for _, n := range notes {
				if droppedLater(n) {
					held = append(held, n)
				} else {
					shown = append(shown, n)
				}
			}
			if err := writePolicyPlan(env, "text", p, shown); err != nil { // verifiers masked
				return false, err
			}
			for _, n := range held {
				fmt.Fprintf(env.Stdout, "then: %s is dropped by a second pass once this plan has revoked what it holds (what it owns by then is kept unless --drop-owned, and said)\n", esc(n.Object))
			}
			if *yes {
				return true, nil
			}
			return confirm(env, fmt.Sprintf("run restore plan %s (%d step(s)) on %s? [y/N] ", p.ID, len(p.Steps), p.Target))
		}
		r, err := execute.Rollback(ctx, collect.WithoutEventTriggers(ctx, cfg), *journalDir, args[0], o)
		if errors.Is(err, execute.ErrNotConfirmed) {
			fmt.Fprintln(env.Stderr, "pgaegis access policy rollback: not rolled back")
			return ExitError, nil
		}
		return policyOutcome(env, "rolled back", r, err)
	})
	return cmd
}

// droppedLater: a held note on a role the restore leaves to its second
// pass (one the apply created that still holds something). The held
// notes on the executing or bootstrap role, and on memberships, options
// and CONNECT, are about what stays: they are shown as they are.
func droppedLater(n policy.Note) bool {
	return n.Level == policy.NoteHeld && strings.HasPrefix(n.Object, "role ") &&
		strings.HasPrefix(n.Text, "not in the file but kept:") && !strings.Contains(n.Text, "pgaegis runs as this role")
}

// checkOutcome prints what --check found: 0 when every checkable step
// ran, 1 when the server refused a statement.
func checkOutcome(env *Env, r *execute.Result) int {
	fmt.Fprintf(env.Stdout, "\ncheck (everything rolled back): %d step(s) ran cleanly", len(r.Checked))
	if len(r.Checked) > 0 {
		fmt.Fprintf(env.Stdout, " (step %s)", strings.Join(r.Checked, ", "))
	}
	fmt.Fprintln(env.Stdout)
	for _, s := range r.NotChecked {
		fmt.Fprintf(env.Stdout, "  not checked: %s\n", esc(s))
	}
	for _, s := range r.CheckErrors {
		fmt.Fprintf(env.Stdout, "  ERROR: %s\n", esc(s))
	}
	if len(r.CheckErrors) > 0 {
		return ExitFindings
	}
	return ExitOK
}

// policyOutcome reports an apply or a rollback: what ran, what was
// restored, what cannot come back.
func policyOutcome(env *Env, verb string, r *execute.Result, err error) (int, error) {
	if r == nil {
		return ExitError, err
	}
	for _, n := range r.Notes {
		fmt.Fprintf(env.Stderr, "pgaegis access policy: note: %s\n", esc(n))
	}
	for _, l := range r.Lost {
		fmt.Fprintf(env.Stderr, "pgaegis access policy: cannot come back: %s\n", esc(l))
	}
	switch {
	case r.Failed && r.RolledBack:
		fmt.Fprintf(env.Stderr, "pgaegis access policy: plan %s failed and was restored: %s (journal %s)\n", esc(r.PlanID), esc(r.Problem), esc(r.JournalDir))
		return ExitError, nil
	case r.Failed && r.Changed:
		fmt.Fprintf(env.Stderr, "pgaegis access policy: plan %s FAILED and was not fully restored: %s; see the journal %s\n", esc(r.PlanID), esc(r.Problem), esc(r.JournalDir))
		return ExitError, nil
	case r.Failed:
		fmt.Fprintf(env.Stderr, "pgaegis access policy: plan %s failed, nothing changed: %s\n", esc(r.PlanID), esc(r.Problem))
		return ExitError, nil
	case err != nil:
		return ExitError, err
	}
	what := fmt.Sprintf("%d statement(s)", r.Statements)
	if len(r.Applied) > 0 {
		what = fmt.Sprintf("step %s; %s", strings.Join(r.Applied, ", "), what)
	}
	if len(r.RestorePlans) > 0 {
		what += ", restore journal " + strings.Join(r.RestorePlans, ", ")
	}
	fmt.Fprintf(env.Stdout, "plan %s %s and verified (%s) in %s; journal %s\n", esc(r.PlanID), verb, esc(what), r.Took.Round(time.Millisecond), esc(r.JournalDir))
	return ExitOK, nil
}

// refuseUnreadable stops an apply before anything changes when a
// database in the file's scope could not be read: its plan would be
// built blind (re-planning what is true, missing what is not).
func refuseUnreadable(desired *policy.File, live *policy.Live) error {
	scope := make([]string, 0, len(desired.Databases))
	for n := range desired.Databases {
		scope = append(scope, n)
	}
	if desired.Databases[policy.AllDatabases] != nil {
		scope = live.Databases
	}
	slices.Sort(scope)
	var bad []string
	for _, n := range scope {
		if why := live.Unreadable[n]; why != "" && n != policy.AllDatabases {
			bad = append(bad, fmt.Sprintf("database %s could not be read (%s)", n, why))
		}
	}
	if len(bad) == 0 {
		return nil
	}
	return fmt.Errorf("refusing to apply, nothing changed: %s; its plan would be built blind: apply again once it can be read", strings.Join(bad, "; "))
}

// explainLockTimeouts says, for each database whose read hit a lock
// timeout, that it was one and which sessions hold an ACCESS EXCLUSIVE
// lock there (pid, role, application; never their query text), read
// from a second connection.
func explainLockTimeouts(ctx context.Context, cfg *pgx.ConnConfig, live *policy.Live) {
	for db, why := range live.Unreadable {
		if !strings.Contains(why, "55P03") || strings.HasPrefix(why, "a lock timeout") {
			continue
		}
		msg := "a lock timeout (SQLSTATE 55P03), no lock holder seen any more"
		if b := lockHolders(ctx, cfg, db); b != "" {
			msg = "a lock timeout (SQLSTATE 55P03), ACCESS EXCLUSIVE held by " + b
		}
		live.Unreadable[db] = msg
	}
}

func lockHolders(ctx context.Context, cfg *pgx.ConnConfig, db string) string {
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return ""
	}
	defer c.Close(context.Background())
	rows, err := c.Query(ctx, `SELECT DISTINCT a.pid, coalesce(a.usename::text, ''), coalesce(a.application_name, '')
		FROM pg_catalog.pg_locks l JOIN pg_catalog.pg_stat_activity a ON a.pid = l.pid
		JOIN pg_catalog.pg_database d ON d.oid = l.database
		WHERE d.datname = $1 AND l.granted AND l.locktype = 'relation' AND l.mode = 'AccessExclusiveLock'
		  AND a.pid <> pg_catalog.pg_backend_pid()
		ORDER BY 1 LIMIT 10`, db)
	if err != nil {
		return ""
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var pid int32
		var user, app string
		if rows.Scan(&pid, &user, &app) != nil {
			return ""
		}
		s := fmt.Sprintf("pid %d role %s", pid, quote.Ident(user))
		if app != "" {
			s += " application " + quote.Literal(app)
		}
		out = append(out, s)
	}
	return strings.Join(out, ", ")
}
