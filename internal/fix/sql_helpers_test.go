package fix_test

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/fix"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/plan"
	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/rules"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// failingKeys is the set of failing findings by key.
func failingKeys(fs []rules.Finding) map[string]rules.Finding {
	out := map[string]rules.Finding{}
	for _, f := range fs {
		if f.Status == rules.Fail {
			out[f.Key()] = f
		}
	}
	return out
}

// sqlSteps are the plan's KindSQL steps.
func sqlSteps(p *plan.Plan) []plan.Step {
	var out []plan.Step
	for _, s := range p.Steps {
		if s.Kind == plan.KindSQL {
			out = append(out, s)
		}
	}
	return out
}

func stepDB(s plan.Step) string {
	if s.Database == "" {
		return "postgres"
	}
	return s.Database
}

// runInTx runs statements in one transaction in database db, as the
// apply engine runs a SQL step.
func runInTx(t *testing.T, srv *localpg.Server, db string, stmts []string) error {
	t.Helper()
	ctx := context.Background()
	c, err := srv.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	for _, st := range stmts {
		if _, err := tx.Exec(ctx, st); err != nil {
			return &stmtError{stmt: st, err: err}
		}
	}
	return tx.Commit(ctx)
}

type stmtError struct {
	stmt string
	err  error
}

func (e *stmtError) Error() string { return quote.Literal(e.stmt) + ": " + e.err.Error() }

// undoSQL rolls the SQL steps of p back: steps in reverse order, each
// step's undo backwards, in one transaction per step.
func undoSQL(t *testing.T, srv *localpg.Server, p *plan.Plan) {
	t.Helper()
	steps := sqlSteps(p)
	for i := len(steps) - 1; i >= 0; i-- {
		s := steps[i]
		var undo []string
		for j := len(s.Undo) - 1; j >= 0; j-- {
			undo = append(undo, s.Undo[j])
		}
		if err := runInTx(t, srv, stepDB(s), undo); err != nil {
			t.Fatalf("undo of step %s (%s): %v", s.ID, s.Summary, err)
		}
	}
}

// sortedACL renders an ACL column as a sorted set with NULL as its
// default: a REVOKE and the GRANT undoing it give back the same
// privileges, but the item may move in the array.
func sortedACL(col, kind, owner string) string {
	return "(SELECT array_agg(a::text ORDER BY a::text) FROM unnest(coalesce(" + col + ", acldefault(" + kind + ", " + owner + "))) a)"
}

// catalogStateSQL is every catalog row a SQL fix may change, by name.
var catalogStateSQL = `
SELECT 'role ' || rolname, row(rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolreplication, rolbypassrls, rolconnlimit, rolvaliduntil)::text FROM pg_roles
UNION ALL SELECT 'member ' || roleid::regrole || ' ' || member::regrole, row(admin_option)::text FROM pg_auth_members
UNION ALL SELECT 'database ' || datname, row(` + sortedACL("datacl", "'d'", "datdba") + `, datconnlimit)::text FROM pg_database
UNION ALL SELECT 'namespace ' || nspname, row(` + sortedACL("nspacl", "'n'", "nspowner") + `, nspowner::regrole)::text FROM pg_namespace
UNION ALL SELECT 'class ' || c.oid::regclass::text, row(` + sortedACL("c.relacl", `CASE c.relkind WHEN 'S' THEN 's' ELSE 'r' END::"char"`, "c.relowner") + `, c.relrowsecurity, c.relforcerowsecurity, c.reloptions, c.relowner::regrole)::text
  FROM pg_class c WHERE c.relkind IN ('r', 'v', 'm', 'S', 'f', 'p')
UNION ALL SELECT 'proc ' || p.oid::regprocedure::text, row(` + sortedACL("p.proacl", "'f'", "p.proowner") + `, p.proconfig, p.prosecdef)::text FROM pg_proc p
UNION ALL SELECT 'language ' || lanname, row(` + sortedACL("lanacl", "'l'", "lanowner") + `, lanpltrusted)::text FROM pg_language
UNION ALL SELECT 'defacl ' || defaclrole::regrole || ' ' || coalesce(defaclnamespace::regnamespace::text, '') || ' ' || defaclobjtype::text, row((SELECT array_agg(a::text ORDER BY a::text) FROM unnest(defaclacl) a))::text FROM pg_default_acl
UNION ALL SELECT 'policy ' || polrelid::regclass || ' ' || polname, row(pg_get_expr(polqual, polrelid), pg_get_expr(polwithcheck, polrelid))::text FROM pg_policy
UNION ALL SELECT 'paracl ' || parname, row((SELECT array_agg(a::text ORDER BY a::text) FROM unnest(paracl) a))::text FROM pg_parameter_acl
UNION ALL SELECT 'fserver ' || srvname, row(` + sortedACL("srvacl", "'S'", "srvowner") + `)::text FROM pg_foreign_server
UNION ALL SELECT 'umapping ' || srvname || ' ' || usename, row((SELECT array_agg(o ORDER BY o) FROM unnest(umoptions) o))::text FROM pg_user_mappings
UNION ALL SELECT 'extension ' || extname, row(extversion, extnamespace::regnamespace)::text FROM pg_extension`

// catalogState reads the catalogs of the given databases.
func catalogState(t *testing.T, srv *localpg.Server, dbs ...string) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	for _, db := range dbs {
		c, err := srv.Connect(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := c.Query(ctx, catalogStateSQL)
		if err != nil {
			c.Close(ctx)
			t.Fatal(err)
		}
		for rows.Next() {
			var k, v string
			if err := rows.Scan(&k, &v); err != nil {
				t.Fatal(err)
			}
			out[db+": "+k] = v
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		c.Close(ctx)
	}
	return out
}

// catalogDiff lists the rows added, removed or changed.
func catalogDiff(before, after map[string]string) []string {
	var out []string
	for k, b := range before {
		if a, ok := after[k]; !ok {
			out = append(out, "removed "+k)
		} else if a != b {
			out = append(out, "changed "+k+": "+b+" → "+a)
		}
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			out = append(out, "added "+k)
		}
	}
	sort.Strings(out)
	return out
}

// mentions reports whether any catalog key of the diff names s.
func mentions(diff []string, subs ...string) bool {
	for _, d := range diff {
		for _, s := range subs {
			if strings.Contains(d, s) {
				return true
			}
		}
	}
	return false
}

// A finding that stands for many roles (NET-05 over every login role)
// whose change includes the connection's own role: only that role's
// statement is held, the others still run, and the finding is not
// reported closed by the step.
func TestAggregatedChangeHoldsOnlyOwnRole(t *testing.T) {
	snap := &snapshot.Snapshot{Server: &snapshot.Server{CurrentUser: "auditor", Superuser: true}}
	f := sqlFinding("NET-05", "login roles", rules.Low, sqlCh("", false, "",
		"ALTER ROLE a CONNECTION LIMIT 50", "ALTER ROLE a CONNECTION LIMIT -1",
		"ALTER ROLE auditor CONNECTION LIMIT 50", "ALTER ROLE auditor CONNECTION LIMIT -1",
		"ALTER ROLE b CONNECTION LIMIT 50", "ALTER ROLE b CONNECTION LIMIT -1"))
	f.Objects, f.Count = []string{"role a", "role auditor", "role b"}, 3
	res := fix.Build(snap, []rules.Finding{f}, fix.Options{})
	steps := sqlSteps(res.Plan)
	if len(steps) != 1 || strings.Join(steps[0].SQL, "; ") != "ALTER ROLE a CONNECTION LIMIT 50; ALTER ROLE b CONNECTION LIMIT 50" {
		t.Fatalf("steps: %+v", steps)
	}
	if strings.Join(steps[0].Undo, "; ") != "ALTER ROLE a CONNECTION LIMIT -1; ALTER ROLE b CONNECTION LIMIT -1" {
		t.Errorf("undo not paired: %q", steps[0].Undo)
	}
	if len(steps[0].Closes) != 0 {
		t.Errorf("the step closes %+v, but the connection's own role is left", steps[0].Closes)
	}
	if len(res.Plan.Held) != 1 || !strings.Contains(res.Plan.Held[0].Why, "your own access") {
		t.Errorf("held: %+v", res.Plan.Held)
	}
}
