package execute

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/plan"
	"github.com/pgaegis/pgaegis/internal/quote"
)

// stmt is one statement of a check transaction and the step it is from.
type stmt struct {
	step string
	sql  string
}

// checkGroup is one rolled-back transaction of a check: everything the
// plan runs in one database, after the cluster additions (a later
// database's transaction cannot see roles an earlier, rolled-back one
// created, so each runs them again).
type checkGroup struct {
	db    string
	steps []string
	stmts []stmt
}

// check executes the plan with every transaction rolled back; nothing is
// journalled. Errors of the plan's statements go in res.CheckErrors; the
// returned error is for what kept the check from running.
func check(ctx context.Context, cfg *pgx.ConnConfig, p *plan.Plan, o *Options, res *Result) error {
	first := slices.IndexFunc(p.Steps, func(s plan.Step) bool { return !s.Cluster })
	if first < 0 {
		first = len(p.Steps)
	}
	var additions []stmt
	var addIDs []string
	for _, s := range p.Steps[:first] {
		addIDs = append(addIDs, s.ID)
		for _, q := range s.SQL {
			additions = append(additions, stmt{s.ID, q})
		}
	}
	created := map[string]bool{}
	var groups []*checkGroup
	group := func(db string) *checkGroup {
		for _, g := range groups {
			if g.db == db {
				return g
			}
		}
		g := &checkGroup{db: db, steps: slices.Clone(addIDs), stmts: slices.Clone(additions)}
		groups = append(groups, g)
		return g
	}
	databases := map[string]bool{}
	uncheckable := map[string]bool{}
	for _, s := range p.Steps[first:] {
		db := dbName(cfg, s.Database)
		if s.Autocommit {
			for _, q := range s.SQL {
				if err := checkCreateDatabase(ctx, cfg, o, s, q, res, created); err != nil {
					return err
				}
			}
			continue
		}
		if created[db] {
			res.NotChecked = append(res.NotChecked, fmt.Sprintf("step %s: database %s does not exist yet, so its statements were not run", s.ID, quote.Ident(db)))
			continue
		}
		databases[db] = true
		g := group(db)
		g.steps = append(g.steps, s.ID)
		for _, q := range s.SQL {
			g.stmts = append(g.stmts, stmt{s.ID, q})
		}
	}
	if len(groups) == 0 && len(additions) > 0 {
		db := dbName(cfg, p.Steps[0].Database)
		group(db)
		databases[db] = true
	}
	for _, g := range groups {
		o.logf("checking step(s) %v in database %s (rolled back)", g.steps, quote.Ident(g.db))
		ss, err := connect(ctx, cfg, g.db, o)
		if err != nil {
			return err
		}
		var failed *stmtError
		var failedStep string
		err = ss.inTx(ctx, false, func(tx pgx.Tx) error {
			var run []stmt
			flush := func() error {
				if len(run) == 0 {
					return nil
				}
				qs := make([]string, len(run))
				for i, s := range run {
					qs[i] = s.sql
				}
				err := ss.execBatches(ctx, qs)
				if err != nil && errors.As(err, &failed) {
					for _, s := range run {
						if s.sql == failed.stmt {
							failedStep = s.step
							break
						}
					}
				}
				run = run[:0]
				return err
			}
			for _, s := range g.stmts {
				if !isDropRole(s.sql) || len(databases) < 2 {
					run = append(run, s)
					continue
				}
				if err := flush(); err != nil {
					return err
				}
				// A role dropped here may still hold what the plan's other
				// databases revoke or reassign, in transactions this one
				// cannot see: try it under a savepoint and tell that apart.
				if err := ss.execBatches(ctx, []string{"SAVEPOINT pgaegis_check"}); err != nil {
					return err
				}
				err := ss.execBatches(ctx, []string{s.sql})
				if err != nil && sqlState(err) == codeDependentsExist {
					uncheckable[s.step] = true
					res.NotChecked = append(res.NotChecked, fmt.Sprintf("step %s: %s: not checkable: the role still has dependents the other databases' rolled-back steps would remove (%s)", s.step, firstLine(s.sql), serverMessage(errors.Unwrap(err))))
					if err := ss.execBatches(ctx, []string{"ROLLBACK TO SAVEPOINT pgaegis_check"}); err != nil {
						return err
					}
					continue
				}
				if err != nil {
					if errors.As(err, &failed) {
						failedStep = s.step
					}
					return err
				}
			}
			return flush()
		})
		ss.close()
		switch {
		case err == nil:
			for _, id := range g.steps {
				if !slices.Contains(res.Checked, id) && !uncheckable[id] {
					res.Checked = append(res.Checked, id)
				}
			}
		case failed != nil:
			res.CheckErrors = append(res.CheckErrors, fmt.Sprintf("step %s: %s", failedStep, failed.Error()))
		default:
			return err
		}
	}
	res.Failed = len(res.CheckErrors) > 0
	slices.SortStableFunc(res.Checked, func(a, b string) int { return stepIndex(p, a) - stepIndex(p, b) })
	return nil
}

func stepIndex(p *plan.Plan, id string) int {
	return slices.IndexFunc(p.Steps, func(s plan.Step) bool { return s.ID == id })
}

// checkCreateDatabase stands in for a CREATE DATABASE, which cannot run
// in a transaction to roll back: it checks the name is free.
func checkCreateDatabase(ctx context.Context, cfg *pgx.ConnConfig, o *Options, s plan.Step, q string, res *Result, created map[string]bool) error {
	name, ok := createdDatabase(q)
	if !ok {
		res.NotChecked = append(res.NotChecked, fmt.Sprintf("step %s: %s: not checked (it cannot run in a transaction)", s.ID, firstLine(q)))
		return nil
	}
	ss, err := connect(ctx, cfg, s.Database, o)
	if err != nil {
		return err
	}
	defer ss.close()
	var exists bool
	if err := ss.conn.QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_database WHERE datname = $1)`, name).Scan(&exists); err != nil {
		return fmt.Errorf("step %s: %w", s.ID, err)
	}
	if exists {
		res.CheckErrors = append(res.CheckErrors, fmt.Sprintf("step %s: database %s already exists", s.ID, quote.Ident(name)))
		return nil
	}
	created[name] = true
	res.NotChecked = append(res.NotChecked, fmt.Sprintf("step %s: CREATE DATABASE %s not checked (it cannot run in a transaction); the name is free", s.ID, quote.Ident(name)))
	return nil
}
