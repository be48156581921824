// Package fixtest proves planned fixes on real servers in tests: audit a
// throwaway server, plan, apply the steps, restart, audit again, and check
// that the findings are gone, that nothing that passed now fails and that
// a second plan has nothing left to do.
//
// Its applier is deliberately naive (it runs the plan's steps as they
// are, with no journal or guard): it checks the planner's output. The
// product's engine, internal/apply, has its own tests.
package fixtest

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/pgaegis/pgaegis/internal/collect"
	"github.com/pgaegis/pgaegis/internal/fix"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/plan"
	"github.com/pgaegis/pgaegis/internal/rules"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// Audit collects srv (live, and its files) and runs every rule.
func Audit(tb testing.TB, srv *localpg.Server) (*snapshot.Snapshot, []rules.Finding) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	snap, err := collect.Collect(ctx, collect.Options{Conn: srv.ConnConfig("postgres"), DataDir: srv.DataDir})
	if err != nil {
		tb.Fatalf("collect: %v", err)
	}
	return snap, rules.Run(snap)
}

// Options shape a proof.
type Options struct {
	// RunCommand runs a KindCommand step (argv[0] is "pgaegis"); without
	// it a command step fails the test.
	RunCommand func(tb testing.TB, argv []string)
	// AllowNewFailures lists rules that may newly fail after the fix
	// because the fix is meant to trade them (rare; say why at the call).
	AllowNewFailures []string
}

// Proof is what a proof saw.
type Proof struct {
	Before, After []rules.Finding
	Plan          *plan.Plan
	// Second is the plan built after the fix, for the same rules.
	Second *plan.Plan
}

// Prove plants nothing: the caller has made srv weak for the rules in
// only. It checks that those rules fail, plans their fixes, applies them,
// restarts the server and audits again.
func Prove(tb testing.TB, srv *localpg.Server, only []string, o Options) *Proof {
	tb.Helper()
	snap, before := Audit(tb, srv)
	if len(failing(before, only)) == 0 {
		tb.Fatalf("the weakness is not planted: no failing finding of %v", only)
	}
	res := fix.Build(snap, before, fix.Options{Only: only})
	if res.Plan.Empty() {
		tb.Logf("plan for %v has no steps (manual: %d, held: %d)", only, len(res.Plan.Manual), len(res.Plan.Held))
		return &Proof{Before: before, Plan: res.Plan}
	}
	return Verify(tb, srv, before, res.Plan, only, o)
}

// Verify applies p (planned from the failing findings in before) to srv,
// restarts it, audits again and checks the plan's claims: every finding
// it closes is gone, nothing that passed fails, and a second plan for the
// same rules is empty.
func Verify(tb testing.TB, srv *localpg.Server, before []rules.Finding, p *plan.Plan, only []string, o Options) *Proof {
	tb.Helper()
	pr := &Proof{Before: before, Plan: p}
	Apply(tb, srv, p, o)
	snap2, after := Audit(tb, srv)
	pr.After = after
	closed := map[string]bool{}
	for _, s := range p.Steps {
		for _, c := range s.Closes {
			closed[c.Rule+"\x00"+c.Object] = true
		}
	}
	now := failing(after, nil)
	for k := range closed {
		if f, ok := now[k]; ok {
			tb.Errorf("%s %s still fails after its fix: %s", f.Rule, f.Object, f.Evidence)
		}
	}
	allowed := map[string]bool{}
	for _, r := range o.AllowNewFailures {
		allowed[r] = true
	}
	var news []string
	for _, f := range fix.Regressions(before, after) {
		if !allowed[f.Rule] {
			news = append(news, fmt.Sprintf("%s %s (%s)", f.Rule, f.Object, f.Evidence))
		}
	}
	sort.Strings(news)
	for _, n := range news {
		tb.Errorf("passed before and fails after the fix of %v: %s", only, n)
	}
	pr.Second = fix.Build(snap2, after, fix.Options{Only: only}).Plan
	for _, s := range pr.Second.Steps {
		tb.Errorf("second plan for %v is not empty: step %s %s closes %v", only, s.ID, s.Summary, s.Closes)
	}
	return pr
}

// failing indexes the failing findings (of the given rules and their
// sub-rules, or all when rules is nil) by key.
func failing(fs []rules.Finding, only []string) map[string]*rules.Finding {
	out := map[string]*rules.Finding{}
	for i := range fs {
		f := &fs[i]
		if f.Status != rules.Fail || rules.IsVolatile(f.Rule) {
			continue
		}
		if only != nil && !matches(only, f.Rule) {
			continue
		}
		out[f.Key()] = f
	}
	return out
}

func matches(ids []string, rule string) bool {
	for _, id := range ids {
		if rule == id || strings.HasPrefix(rule, id+".") {
			return true
		}
	}
	return false
}

// Apply runs every step of p on srv as written, then checks that the
// server would load the files (pg_file_settings, pg_hba_file_rules),
// reloads and restarts it.
func Apply(tb testing.TB, srv *localpg.Server, p *plan.Plan, o Options) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	restartIDs := map[string]bool{}
	for _, s := range p.Steps {
		if s.Apply == plan.ApplyRestart {
			restartIDs[s.ID] = true
		}
	}
	restarted := map[string]bool{}
	for _, s := range p.Steps {
		// A step after a restart step needs that restart first (a
		// library's own settings are refused until it is loaded).
		for _, a := range s.After {
			if restartIDs[a] && !restarted[a] {
				restartNow(tb, srv)
				for id := range restartIDs {
					restarted[id] = true
				}
			}
		}
		switch s.Kind {
		case plan.KindFileMode:
			for _, m := range s.Modes {
				if err := os.Chmod(m.Path, m.To); err != nil {
					tb.Fatalf("step %s: %v", s.ID, err)
				}
			}
		case plan.KindSQL:
			db := s.Database
			if db == "" {
				db = "postgres"
			}
			stmts := append([]string{"BEGIN"}, s.SQL...)
			if err := srv.ExecIn(ctx, db, append(stmts, "COMMIT")...); err != nil {
				tb.Fatalf("step %s in database %q: %v", s.ID, db, err)
			}
		case plan.KindSettings:
			var stmts []string
			for _, c := range s.Settings {
				stmts = append(stmts, plan.AlterSystem(c))
			}
			if err := srv.Exec(ctx, stmts...); err != nil {
				tb.Fatalf("step %s: %v", s.ID, err)
			}
		case plan.KindHBA:
			if s.HBA == nil {
				tb.Fatalf("step %s: hba step without a rewrite", s.ID)
			}
			// WriteFile on the existing file keeps its owner and mode.
			if err := os.WriteFile(s.HBA.Path, []byte(s.HBA.Content), 0o600); err != nil {
				tb.Fatalf("step %s: %v", s.ID, err)
			}
		case plan.KindCommand:
			if o.RunCommand == nil {
				tb.Fatalf("step %s is a command (%v) and the test gave no RunCommand", s.ID, s.Command)
			}
			o.RunCommand(tb, s.Command)
		default:
			tb.Fatalf("step %s: unknown kind %q", s.ID, s.Kind)
		}
	}
	restartNow(tb, srv)
}

// restartNow checks that the server would load its files, reloads and
// restarts it.
func restartNow(tb testing.TB, srv *localpg.Server) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	CheckLoads(tb, srv)
	if err := srv.Exec(ctx, "SELECT pg_reload_conf()"); err != nil {
		tb.Fatalf("reload: %v", err)
	}
	if err := srv.Restart(ctx); err != nil {
		tb.Fatalf("the server does not restart after the plan: %v", err)
	}
}

// CheckLoads fails the test when the server reports errors in the
// configuration files on disk (what the next reload or start reads). A
// restart-only setting that differs from the running value shows as "could
// not be applied" until the restart: that is not an error.
func CheckLoads(tb testing.TB, srv *localpg.Server) {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c, err := srv.Connect(ctx, "postgres")
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	defer c.Close(ctx)
	for _, q := range []string{
		`SELECT coalesce(sourcefile,'') || ':' || coalesce(sourceline,0) || ': ' || error FROM pg_file_settings WHERE error IS NOT NULL AND error <> 'setting could not be applied'`,
		`SELECT 'pg_hba.conf:' || line_number || ': ' || error FROM pg_hba_file_rules WHERE error IS NOT NULL`,
	} {
		rows, err := c.Query(ctx, q)
		if err != nil {
			tb.Fatalf("%s: %v", q, err)
		}
		for rows.Next() {
			var e string
			if err := rows.Scan(&e); err != nil {
				tb.Fatal(err)
			}
			tb.Errorf("the server rejects the new configuration: %s", e)
		}
		rows.Close()
	}
}
