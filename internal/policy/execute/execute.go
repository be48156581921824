// Package execute applies a policy plan (internal/policy's Diff) to a
// server: journal first (the plan, the state it starts from as a policy
// file, the password verifiers it could lose), then each step in one
// transaction in its database, statements pipelined, lock waits bounded;
// then a verification that nothing is left to do. Anything that fails
// after a step committed is restored from the journal. --check runs the
// same statements and rolls every transaction back.
package execute

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/apply"
	"github.com/pgaegis/pgaegis/internal/plan"
	"github.com/pgaegis/pgaegis/internal/policy"
	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/textsafe"
)

// Journal extra files.
const (
	// beforeFile is the scope's state before the plan, a policy File as
	// JSON: machine state, and encoding/json keeps nil (not managed) and
	// empty apart as the YAML does, at a fraction of yaml.v3's cost on
	// 140k tables.
	beforeFile    = "before.json"
	verifiersFile = "verifiers.json" // password verifiers of roles the plan drops or re-passwords
)

// Options shape one apply, check or rollback.
type Options struct {
	// JournalRoot holds one directory per plan; empty means the fix
	// flow's (apply.DefaultJournalRoot()).
	JournalRoot string
	// LockTimeout bounds each statement's wait for a lock (default 5s);
	// StatementTimeout each statement's run (default 5m).
	LockTimeout      time.Duration
	StatementTimeout time.Duration
	// BatchSize is how many statements go in one pipeline (default 500).
	BatchSize int
	// Check executes the plan and rolls every transaction back.
	Check bool
	// Verify re-reads the server after the last step and fails when the
	// desired state is not reached (a plan that is not empty).
	Verify func(ctx context.Context) error
	// DropOwned lets a rollback drop what roles created by the apply
	// still own or hold (DROP OWNED) so they can be dropped.
	DropOwned bool
	// Progress receives one line per action; nil for none.
	Progress io.Writer
	// Confirm, for a rollback, is shown the first restoring plan and its
	// notes before anything runs; false stops the rollback with
	// ErrNotConfirmed, nothing changed.
	Confirm func(p *plan.Plan, notes []policy.Note) (bool, error)
	// Warnings collects what was warned about while running (statement
	// logging that could not be turned off for a password statement).
	Warnings []string
	warned   map[string]bool
}

// ErrNotConfirmed: Confirm said no.
var ErrNotConfirmed = errors.New("not confirmed")

func (o *Options) lockTimeout() time.Duration {
	if o.LockTimeout > 0 {
		return o.LockTimeout
	}
	return defaultLockTimeout
}

func (o *Options) statementTimeout() time.Duration {
	if o.StatementTimeout > 0 {
		return o.StatementTimeout
	}
	return defaultStmtTimeout
}

func (o *Options) batchSize() int {
	if o.BatchSize > 0 {
		return o.BatchSize
	}
	return defaultBatchSize
}

func (o *Options) root() string {
	if o.JournalRoot != "" {
		return o.JournalRoot
	}
	return apply.DefaultJournalRoot()
}

func (o *Options) logf(format string, args ...any) {
	if o.Progress != nil {
		fmt.Fprintln(o.Progress, textsafe.String(fmt.Sprintf(format, args...)))
	}
}

// Result says what happened.
type Result struct {
	PlanID     string   `json:"plan_id"`
	JournalDir string   `json:"journal_dir,omitempty"`
	Applied    []string `json:"applied_steps,omitempty"`
	Statements int      `json:"statements"`
	Verified   bool     `json:"verified,omitempty"`
	// Check mode: the steps run and rolled back, what could not be run
	// (and why), and the errors the server gave.
	Checked     []string `json:"checked_steps,omitempty"`
	NotChecked  []string `json:"not_checked,omitempty"`
	CheckErrors []string `json:"check_errors,omitempty"`
	// Failed: the plan did not hold; Changed: something had committed
	// when it failed; RolledBack: that was restored (RestorePlans are the
	// restoring plans' journals, when anything differed).
	Failed       bool     `json:"failed,omitempty"`
	Changed      bool     `json:"changed,omitempty"`
	RolledBack   bool     `json:"rolled_back,omitempty"`
	RestorePlans []string `json:"restore_plans,omitempty"`
	Problem      string   `json:"problem,omitempty"`
	// Lost says what a restore cannot bring back; Notes anything else
	// worth knowing (verifiers that could not be saved).
	Lost  []string      `json:"lost,omitempty"`
	Notes []string      `json:"notes,omitempty"`
	Took  time.Duration `json:"took_ns"`
}

// Apply runs p against the server cfg reaches. before is the live state
// of the plan's scope as a policy file (inspect.Export): the journal
// keeps it, and a failure after a commit restores it.
func Apply(ctx context.Context, cfg *pgx.ConnConfig, p *plan.Plan, before *policy.File, o Options) (*Result, error) {
	start := time.Now()
	res := &Result{}
	defer func() {
		res.Took = time.Since(start)
		res.Notes = append(res.Notes, o.Warnings...)
	}()
	if cfg == nil {
		return res, errors.New("policy apply: no connection settings")
	}
	if p == nil {
		return res, errors.New("policy apply: no plan")
	}
	for _, s := range p.Steps {
		if s.Kind != plan.KindSQL {
			return res, fmt.Errorf("policy apply: step %s is a %s step; a policy plan has SQL steps only", s.ID, s.Kind)
		}
	}
	res.PlanID = p.ID
	if o.Check {
		return res, check(ctx, cfg, p, &o, res)
	}
	if p.Empty() {
		return res, nil
	}
	if before == nil {
		return res, errors.New("policy apply: no before state to journal (a failure could not be restored)")
	}
	beforeJSON, err := json.Marshal(before)
	if err != nil {
		return res, fmt.Errorf("policy apply: before state: %w", err)
	}
	j, err := plan.CreateJournal(o.root(), p)
	if err != nil {
		return res, err
	}
	res.PlanID, res.JournalDir = j.ID, j.Dir
	st, err := j.State()
	if err != nil {
		return res, err
	}
	fail := func(problem string) (*Result, error) {
		res.Failed, res.Problem = true, problem
		st.State, st.Problem = plan.StateFailed, problem
		if werr := j.WriteState(st); werr != nil {
			res.Problem += "; " + werr.Error()
		}
		return res, errors.New(res.Problem)
	}
	if err := j.WriteExtra(beforeFile, beforeJSON); err != nil {
		return fail(err.Error())
	}
	notes, err := saveVerifiers(ctx, cfg, j, p, before, &o)
	if err != nil {
		return fail(err.Error())
	}
	res.Notes = append(res.Notes, notes...)
	m := &plan.Manifest{}
	for _, s := range p.Steps {
		m.SQL = append(m.SQL, plan.SavedSQL{Step: s.ID, Database: s.Database})
	}
	if err := j.WriteManifest(m); err != nil {
		return fail(err.Error())
	}

	runErr := run(ctx, cfg, p, &o, res, func(i int) error {
		m.SQL[i].Done = true
		st.Applied = append(st.Applied, p.Steps[i].ID)
		if err := j.WriteManifest(m); err != nil {
			return err
		}
		return j.WriteState(st)
	})
	if runErr == nil && o.Verify != nil {
		o.logf("verifying: reading the server again")
		if err := o.Verify(ctx); err != nil {
			runErr = fmt.Errorf("verification: %w", err)
		} else {
			res.Verified = true
		}
	}
	if runErr == nil {
		st.State = plan.StateApplied
		return res, j.WriteState(st)
	}
	if !res.Changed {
		return fail(runErr.Error())
	}
	o.logf("restoring the state before the plan: %s", runErr)
	// An interrupt that stopped the apply must not stop the restore too;
	// statement_timeout still bounds each of its statements.
	rr, rerr := restore(context.WithoutCancel(ctx), cfg, j, &o)
	res.Lost = append(res.Lost, rr.Lost...)
	res.RestorePlans = rr.RestorePlans
	problem := runErr.Error()
	if rerr != nil {
		problem += "; the restore failed too: " + rerr.Error() + " (see the journal " + j.Dir + ")"
	} else {
		res.RolledBack = true
		st.RolledBack = time.Now().UTC()
		problem += "; restored the state before the plan"
	}
	return fail(problem)
}

// run executes the steps in plan order; done is called after each step
// committed (with its index).
func run(ctx context.Context, cfg *pgx.ConnConfig, p *plan.Plan, o *Options, res *Result, done func(int) error) error {
	for i, s := range p.Steps {
		o.logf("step %s: %s (%d statement(s) in database %s)", s.ID, s.Summary, len(s.SQL), quote.Ident(dbName(cfg, s.Database)))
		ss, err := connect(ctx, cfg, s.Database, o)
		if err != nil {
			return fmt.Errorf("step %s: %w", s.ID, err)
		}
		if s.Autocommit {
			n, err := ss.autocommit(ctx, s.SQL)
			ss.close()
			res.Statements += n
			if n > 0 {
				res.Changed = true
			}
			if err != nil {
				if n > 0 {
					// Part of the step is in: the restore must see it.
					if derr := done(i); derr != nil {
						return derr
					}
				}
				return fmt.Errorf("step %s: %w", s.ID, err)
			}
		} else {
			err := ss.inTx(ctx, true, func(pgx.Tx) error { return ss.execBatches(ctx, s.SQL) })
			ss.close()
			if err != nil {
				return fmt.Errorf("step %s: %w", s.ID, err)
			}
			res.Statements += len(s.SQL)
			res.Changed = true
		}
		res.Applied = append(res.Applied, s.ID)
		if err := done(i); err != nil {
			return err
		}
	}
	return nil
}

// databasesThatExist lists the server's databases.
func databasesThatExist(ctx context.Context, cfg *pgx.ConnConfig, o *Options) (map[string]bool, error) {
	ss, err := connect(ctx, cfg, "", o)
	if err != nil {
		return nil, err
	}
	defer ss.close()
	rows, err := ss.conn.Query(ctx, "SELECT datname FROM pg_catalog.pg_database")
	if err != nil {
		return nil, fmt.Errorf("listing databases: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("listing databases: %w", err)
	}
	out := make(map[string]bool, len(names))
	for _, n := range names {
		out[n] = true
	}
	return out, nil
}

func dbName(cfg *pgx.ConnConfig, db string) string {
	if db != "" {
		return db
	}
	return cfg.Database
}

// savedVerifier is one role's password before the plan: the verifier,
// or none.
type savedVerifier struct {
	Role     string  `json:"role"`
	Verifier *string `json:"verifier"`
}

// saveVerifiers keeps the password verifiers of the roles the plan drops
// or re-passwords, when the connection can read pg_authid; otherwise it
// says what a rollback will not restore.
func saveVerifiers(ctx context.Context, cfg *pgx.ConnConfig, j *plan.Journal, p *plan.Plan, before *policy.File, o *Options) ([]string, error) {
	want := map[string]bool{}
	all := false
	for _, s := range p.Steps {
		for _, q := range s.SQL {
			d, pw, ok := roleStatement(q)
			if !ok {
				all = true
			}
			for _, r := range append(d, pw...) {
				want[r] = true
			}
		}
	}
	if all { // a name we could not decode: keep every role's in scope
		for r := range before.Roles {
			want[r] = true
		}
	}
	if len(want) == 0 {
		return nil, nil
	}
	names := make([]string, 0, len(want))
	for r := range want {
		names = append(names, r)
	}
	ss, err := connect(ctx, cfg, "", o)
	if err != nil {
		return nil, err
	}
	defer ss.close()
	rows, err := ss.conn.Query(ctx, `SELECT rolname::text, rolpassword FROM pg_authid WHERE rolname = ANY ($1) ORDER BY 1`, names)
	var saved []savedVerifier
	if err == nil {
		for rows.Next() {
			var v savedVerifier
			if err = rows.Scan(&v.Role, &v.Verifier); err != nil {
				break
			}
			saved = append(saved, v)
		}
		rows.Close()
		if err == nil {
			err = rows.Err()
		}
	}
	if err != nil {
		if sqlState(err) == codeInsufficientPriv {
			return []string{fmt.Sprintf("pg_authid is not readable as %s: the passwords of %d role(s) the plan drops or changes are not journalled, so a rollback cannot restore them", quote.Ident(cfg.User), len(names))}, nil
		}
		return nil, fmt.Errorf("reading password verifiers: %w", err)
	}
	b, err := json.MarshalIndent(saved, "", "  ")
	if err != nil {
		return nil, err
	}
	return nil, j.WriteExtra(verifiersFile, append(b, '\n'))
}

// Before is the live state of the desired file's scope as a policy file,
// for Apply's journal: every role (so a rollback drops those the apply
// creates), the databases the file names and, inside them, the schemas
// it names, every object named (live.File is not compacted, so nothing
// is reinterpreted on the way back).
func Before(desired *policy.File, live *policy.Live) *policy.File {
	f := *live.File
	f.Mode, f.IgnoreRoles = policy.Authoritative, desired.IgnoreRoles
	f.Databases = map[string]*policy.Database{}
	for name, db := range live.File.Databases {
		want, ok := desired.Databases[name]
		if !ok {
			want, ok = desired.Databases[policy.AllDatabases] // a legacy file's every database
		}
		if !ok || db == nil {
			continue
		}
		d := *db
		if want == nil || want.Schemas == nil {
			d.Schemas = nil
		} else {
			d.Schemas = map[string]*policy.Schema{}
			for s, sc := range db.Schemas {
				if _, ok := want.Schemas[s]; ok {
					d.Schemas[s] = sc
				}
			}
		}
		f.Databases[name] = &d
	}
	return &f
}
