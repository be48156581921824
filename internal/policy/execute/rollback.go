package execute

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/plan"
	"github.com/pgaegis/pgaegis/internal/policy"
	"github.com/pgaegis/pgaegis/internal/policy/inspect"
	"github.com/pgaegis/pgaegis/internal/quote"
)

// readLive reads the live state of the databases named.
func readLive(ctx context.Context, cfg *pgx.ConnConfig, databases []string) (*policy.Live, error) {
	return inspect.Read(ctx, cfg, inspect.Options{Databases: databases})
}

// Rollback puts back the state plan id started from: it diffs the
// journalled before file (authoritative: roles the apply created are
// dropped, what it revoked is granted again) against the server, applies
// that plan (journalled as <id>-restore, and <id>-restore-2 when a second pass
// drops roles the first freed), restores the password verifiers
// of roles it recreates or whose password the plan changed, and marks
// the plan rolled back. Result.Lost says what cannot come back.
func Rollback(ctx context.Context, cfg *pgx.ConnConfig, root, id string, o Options) (*Result, error) {
	start := time.Now()
	if root != "" {
		o.JournalRoot = root
	}
	res := &Result{PlanID: id}
	defer func() { res.Took = time.Since(start) }()
	if cfg == nil {
		return res, errors.New("policy rollback: no connection settings")
	}
	j, st, err := plan.OpenApplied(o.root(), id)
	if j != nil {
		res.JournalDir = j.Dir
	}
	if err != nil {
		return res, err
	}
	if _, err := j.ReadExtra(beforeFile); err != nil {
		return res, fmt.Errorf("plan %s has no %s: it is not a policy plan (see pgaegis fix rollback)", id, beforeFile)
	}
	rr, err := restore(ctx, cfg, j, &o)
	res.RestorePlans, res.Statements, res.Lost, res.Notes = rr.RestorePlans, rr.Statements, rr.Lost, rr.Notes
	if errors.Is(err, ErrNotConfirmed) {
		return res, err
	}
	if err != nil {
		res.Failed, res.Problem = true, err.Error()
		// The plan had committed, so its state is not back: said as
		// "not fully restored", and in the journal (still applied, so a
		// later rollback may finish the job).
		res.Changed = true
		st.Problem = "rollback: " + err.Error()
		if werr := j.WriteState(st); werr != nil {
			return res, fmt.Errorf("%w; %v", err, werr)
		}
		return res, err
	}
	res.RolledBack, res.Verified = true, rr.Verified
	st.State, st.RolledBack = plan.StateRolledBack, time.Now().UTC()
	return res, j.WriteState(st)
}

// restore brings the scope of journal j back to its before file; the
// result's RestorePlans are the journals of the restoring plans.
func restore(ctx context.Context, cfg *pgx.ConnConfig, j *plan.Journal, o *Options) (*Result, error) {
	res := &Result{}
	data, err := j.ReadExtra(beforeFile)
	if err != nil {
		return res, err
	}
	var before policy.File
	if err := json.Unmarshal(data, &before); err != nil {
		return res, fmt.Errorf("journal %s: %w", beforeFile, err)
	}
	orig, err := j.Plan()
	if err != nil {
		return res, err
	}
	exists, err := databasesThatExist(ctx, cfg, o)
	if err != nil {
		return res, err
	}
	res.Lost = lost(orig, exists)
	verifiers, err := readVerifiers(j)
	if err != nil {
		return res, err
	}
	if verifiers == nil && passwordsTouched(orig) {
		res.Lost = append(res.Lost, "passwords: the verifiers were not journalled (pg_authid was not readable), so roles the plan dropped or re-passworded keep no password or the new one")
	}
	dopt := policy.Options{Mode: policy.Authoritative, ConnectDatabase: cfg.Database, DropOwned: o.DropOwned}
	// A role the apply created is held by the removal preflight while it
	// still holds what the first pass revokes: a second pass, reading the
	// server again, drops it. Each pass is proven by the next read; the
	// last read must plan nothing.
	created := map[string]bool{}
	for _, s := range orig.Steps {
		for _, q := range s.SQL {
			if r, ok := createdRole(q); ok {
				created[r] = true
			}
		}
	}
	ignore := before.IgnoreRoles
	journalN := 1
	for pass := 1; ; pass++ {
		live, err := readLive(ctx, cfg, scopeDatabases(&before))
		if err != nil {
			return res, err
		}
		// Roles made since the apply by anyone else are not the plan's to
		// drop, nor are their grants its to revoke.
		before.IgnoreRoles = slices.Clone(ignore)
		for r := range live.File.Roles {
			if _, had := before.Roles[r]; !had && !created[r] {
				before.IgnoreRoles = append(before.IgnoreRoles, matchLiteral(r))
			}
		}
		slices.Sort(before.IgnoreRoles[len(ignore):])
		rp, notes, err := policy.Diff(&before, live, dopt)
		if err != nil {
			return res, fmt.Errorf("planning the restore: %w", err)
		}
		if rp.Empty() {
			// A held note is a difference the diff would not plan (a
			// role kept because it owns objects, ...): the server is not
			// in the before state, so the restore is not verified.
			// The guard's notes on the role pgaegis runs as (and the
			// bootstrap superuser) are not: the apply could never have
			// changed what they keep (on 16+, the creator's automatic
			// membership in each role it creates, or one granted since).
			guarded := map[string]bool{"role " + live.CurrentUser: true, "role " + live.Bootstrap: true}
			var held []string
			for _, n := range notes {
				if n.Level == policy.NoteHeld && !guarded[n.Object] {
					held = append(held, fmt.Sprintf("%s: %s", n.Object, n.Text))
				}
			}
			if len(held) > 0 {
				return res, fmt.Errorf("%w: %s", ErrNotVerified, strings.Join(held, "; "))
			}
			res.Verified = true
			return res, nil
		}
		if pass > maxRestorePasses {
			return res, fmt.Errorf("the restore left %d step(s) to do: %s", len(rp.Steps), stepSummaries(rp))
		}
		rp.Target = orig.Target
		// <id>-restore, then -restore-2, ...: a rollback tried again
		// (after one that was not verified) journals its passes after
		// the earlier ones.
		for ; ; journalN++ {
			rp.ID = j.ID + "-restore"
			if journalN > 1 {
				rp.ID = fmt.Sprintf("%s-restore-%d", j.ID, journalN)
			}
			if _, err := os.Lstat(filepath.Join(o.root(), rp.ID)); errors.Is(err, fs.ErrNotExist) {
				break
			}
		}
		if pass == 1 && o.Confirm != nil {
			ok, err := o.Confirm(rp, notes)
			if err != nil {
				return res, err
			}
			if !ok {
				return res, ErrNotConfirmed
			}
		}
		if err := runRestorePass(ctx, cfg, rp, data, o, res); err != nil {
			return res, err
		}
		if err := restoreVerifiers(ctx, cfg, o, verifiers); err != nil {
			return res, err
		}
	}
}

// ErrNotVerified: the restore ran but the server still differs from the
// before state in what the diff holds back (a role it cannot drop).
var ErrNotVerified = errors.New("the restore is not verified")

// maxRestorePasses bounds the restore's passes: the first restores, the
// second drops roles the first freed of what they held.
const maxRestorePasses = 2

// runRestorePass applies one restoring plan, journalled like any apply.
func runRestorePass(ctx context.Context, cfg *pgx.ConnConfig, rp *plan.Plan, before []byte, o *Options, res *Result) error {
	rj, err := plan.CreateJournal(o.root(), rp)
	if err != nil {
		return err
	}
	res.RestorePlans = append(res.RestorePlans, rj.ID)
	if err := rj.WriteExtra(beforeFile, before); err != nil {
		return err
	}
	rst, err := rj.State()
	if err != nil {
		return err
	}
	err = run(ctx, cfg, rp, o, res, func(i int) error {
		rst.Applied = append(rst.Applied, rp.Steps[i].ID)
		return rj.WriteState(rst)
	})
	if err != nil {
		rst.State, rst.Problem = plan.StateFailed, err.Error()
		if werr := rj.WriteState(rst); werr != nil {
			return fmt.Errorf("%w; %v", err, werr)
		}
		return err
	}
	rst.State = plan.StateApplied
	return rj.WriteState(rst)
}

func stepSummaries(p *plan.Plan) string {
	var s []string
	for _, st := range p.Steps {
		s = append(s, st.Summary)
	}
	return strings.Join(s, "; ")
}

// scopeDatabases are the databases a before file names.
func scopeDatabases(f *policy.File) []string {
	var out []string
	for d := range f.Databases {
		out = append(out, d)
	}
	sort.Strings(out)
	return out
}

// lost names what a restore cannot bring back: what DROP OWNED removed,
// and databases the plan created (a restore never drops a database),
// those that exist (a CREATE DATABASE that failed left none).
func lost(p *plan.Plan, exists map[string]bool) []string {
	var out []string
	for _, s := range p.Steps {
		for _, q := range s.SQL {
			if name, ok := createdDatabase(q); ok && s.Autocommit && exists[name] {
				out = append(out, fmt.Sprintf("database %s was created by the plan and is left in place (drop it by hand if it is not wanted)", quote.Ident(name)))
			}
			if ownedStatement(q) == "drop" {
				out = append(out, fmt.Sprintf("database %s: %s removed the objects those roles owned and their privileges there; they cannot be restored from the journal (use a backup)", quote.Ident(s.Database), firstLine(q)))
			}
		}
	}
	return out
}

func passwordsTouched(p *plan.Plan) bool {
	for _, s := range p.Steps {
		for _, q := range s.SQL {
			if d, pw, ok := roleStatement(q); len(d)+len(pw) > 0 || !ok {
				return true
			}
		}
	}
	return false
}

func readVerifiers(j *plan.Journal) ([]savedVerifier, error) {
	if _, err := os.Lstat(filepath.Join(j.Dir, verifiersFile)); errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	b, err := j.ReadExtra(verifiersFile)
	if err != nil {
		return nil, err
	}
	var v []savedVerifier
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, fmt.Errorf("journal %s: %v", verifiersFile, err)
	}
	if v == nil {
		v = []savedVerifier{}
	}
	return v, nil
}

// restoreVerifiers sets each saved role's password back where it differs
// now: the verifier itself, never a clear text, in statements that are
// never printed or put in an error.
func restoreVerifiers(ctx context.Context, cfg *pgx.ConnConfig, o *Options, saved []savedVerifier) error {
	if len(saved) == 0 {
		return nil
	}
	ss, err := connect(ctx, cfg, "", o)
	if err != nil {
		return err
	}
	defer ss.close()
	names := make([]string, len(saved))
	for i, v := range saved {
		names[i] = v.Role
	}
	cur := map[string]*string{}
	rows, err := ss.conn.Query(ctx, `SELECT rolname::text, rolpassword FROM pg_authid WHERE rolname = ANY ($1)`, names)
	if err != nil {
		return fmt.Errorf("reading password verifiers: %s", serverMessage(err))
	}
	for rows.Next() {
		var r string
		var v *string
		if err := rows.Scan(&r, &v); err != nil {
			rows.Close()
			return err
		}
		cur[r] = v
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	var stmts []string
	for _, v := range saved {
		now, exists := cur[v.Role]
		if !exists || (now == nil) == (v.Verifier == nil) && (now == nil || *now == *v.Verifier) {
			continue
		}
		pw := "NULL"
		if v.Verifier != nil {
			pw = quote.Literal(*v.Verifier)
		}
		stmts = append(stmts, fmt.Sprintf("ALTER ROLE %s PASSWORD %s", quote.Ident(v.Role), pw))
	}
	if len(stmts) == 0 {
		return nil
	}
	o.logf("restoring the password verifiers of %d role(s)", len(stmts))
	return ss.inTx(ctx, true, func(pgx.Tx) error { return ss.execBatches(ctx, stmts) })
}
