package execute

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/plan"
	"github.com/pgaegis/pgaegis/internal/policy"
	"github.com/pgaegis/pgaegis/internal/policy/inspect"
)

// estate plants what the round-trip tests change: two databases, an app
// role with direct grants, a role the file drops (with a password and a
// membership), a reporting role, settings, default privileges and RLS.
func estate(t *testing.T, srv *localpg.Server) {
	t.Helper()
	exec(t, srv, "postgres", "CREATE DATABASE db1", "CREATE DATABASE db2",
		"CREATE ROLE app LOGIN PASSWORD 'app-test-secret' CONNECTION LIMIT 10", "CREATE ROLE report",
		"CREATE ROLE old LOGIN PASSWORD 'old-test-secret'", "GRANT report TO old", "ALTER ROLE old SET work_mem = '4MB'")
	for _, db := range []string{"db1", "db2"} {
		exec(t, srv, db, "CREATE SCHEMA app", "CREATE TABLE app.t1 (id int, tenant int)", "CREATE TABLE app.t2 (id int)",
			"CREATE SEQUENCE app.s", "CREATE FUNCTION app.f(int) RETURNS int LANGUAGE sql AS 'SELECT $1'",
			"GRANT USAGE ON SCHEMA app TO app, report", "GRANT SELECT, INSERT ON app.t1, app.t2 TO app", "GRANT SELECT ON app.t1 TO report",
			"ALTER DEFAULT PRIVILEGES IN SCHEMA app GRANT SELECT ON TABLES TO report",
			"ALTER TABLE app.t1 ENABLE ROW LEVEL SECURITY", "CREATE POLICY tenant ON app.t1 TO app USING (tenant = 1)")
	}
}

// startEstate starts a server with the estate, and returns it with its
// catalogs (as privilege sets) and a journal root.
func startEstate(t *testing.T) (*localpg.Server, string, string) {
	srv := pgtest.Start(t, localpg.Options{})
	estate(t, srv)
	return srv, catalogSets(t, srv, "db1", "db2"), t.TempDir()
}

// changed is the file the tests apply: app's privileges move to a group
// role, report loses t1 in db2, old is dropped, RLS changes.
const changed = `version: 1
mode: authoritative
roles:
  app: {login: true, connection_limit: 20, member_of: [app_rw]}
  app_rw: {}
  report: {}
databases:
  %[1]s:
    schemas:
      app:
        grants: {app_rw: [USAGE], report: [USAGE]}
        tables:
          "*": {grants: {app_rw: [SELECT, INSERT, UPDATE], report: [SELECT]}, columns: {}}
          t1: {columns: {tenant: {report: [UPDATE], app: [INSERT, UPDATE]}, id: {app: [UPDATE]}}}
        sequences:
          "*": {grants: {app_rw: [USAGE]}}
        default_privileges:
          postgres: {tables: {report: [SELECT], app_rw: [SELECT]}}
        rls:
          t1:
            enabled: true
            policies:
              tenant: {roles: [app_rw], using: "(tenant = 2)"}
  %[2]s:
    schemas:
      app:
        grants: {app_rw: [USAGE]}
        tables:
          "*": {grants: {app_rw: [SELECT]}}
`

// applyFile plans file against the server and applies it the way the
// CLI does (the before file of its scope, a verification by a second
// read and diff); mutate may break the plan first.
func applyFile(t *testing.T, ctx context.Context, cfg *pgx.ConnConfig, file, root string, mutate func(*plan.Plan)) (*Result, error) {
	t.Helper()
	desired, err := policy.Parse("changed.yaml", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	var dbs []string
	for d := range desired.Databases {
		dbs = append(dbs, d)
	}
	live, err := inspect.Read(ctx, cfg, inspect.Options{Databases: dbs})
	if err != nil {
		t.Fatal(err)
	}
	p, notes, err := policy.Diff(desired, live, policy.Options{ConnectDatabase: "postgres"})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range notes {
		t.Logf("note: %s %s: %s", n.Level, n.Object, n.Text)
	}
	if p.Empty() {
		t.Fatal("the changed file plans nothing")
	}
	if mutate != nil {
		mutate(p)
	}
	o := Options{JournalRoot: root, Verify: func(ctx context.Context) error {
		live, err := inspect.Read(ctx, cfg, inspect.Options{Databases: dbs})
		if err != nil {
			return err
		}
		left, _, err := policy.Diff(desired, live, policy.Options{ConnectDatabase: "postgres"})
		if err != nil {
			return err
		}
		if !left.Empty() {
			return fmt.Errorf("%d step(s) left: %s", len(left.Steps), stepSummaries(left))
		}
		return nil
	}}
	return Apply(ctx, cfg, p, Before(desired, live), o)
}

// Apply, then rollback by id: the catalogs (roles with their password
// verifiers, memberships, settings, ACLs, owners, default ACLs, RLS) are
// what they were before, the dropped role's password included.
func TestApplyRollbackRoundTrip(t *testing.T) {
	t.Parallel()
	srv, before, root := startEstate(t)
	ctx, cfg := pgtest.Ctx(t), srv.ConnConfig("postgres")
	res, err := applyFile(t, ctx, cfg, fmt.Sprintf(changed, "db1", "db2"), root, nil)
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if !res.Verified || res.Failed {
		t.Fatalf("result %+v", res)
	}
	c := pgtest.Conn(t, srv, "db1")
	if !yes(t, c, `SELECT pg_has_role('app', 'app_rw', 'USAGE') AND has_table_privilege('app', 'app.t2', 'UPDATE')
		AND has_column_privilege('report', 'app.t1', 'tenant', 'UPDATE') AND has_column_privilege('app', 'app.t1', 'id', 'UPDATE')
		AND NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'old')`) {
		t.Fatal("the server does not hold the file")
	}
	if before == catalogSets(t, srv, "db1", "db2") {
		t.Fatal("the apply changed nothing")
	}
	// Someone else's role, made after the apply, is not the rollback's to
	// drop, nor are its grants its to revoke.
	exec(t, srv, "postgres", "CREATE ROLE bystander")
	exec(t, srv, "db1", "GRANT SELECT ON app.t2 TO bystander")
	// A role the apply created that owns an object by now is held by
	// the removal preflight: the rollback is not verified, says why,
	// and may be run again once that is dealt with.
	exec(t, srv, "db2", "CREATE TABLE app.held (id int)", "ALTER TABLE app.held OWNER TO app_rw")
	rb, err := Rollback(ctx, cfg, root, res.PlanID, Options{})
	if !errors.Is(err, ErrNotVerified) || !strings.Contains(err.Error(), "app_rw") || rb.Verified || rb.RolledBack || !rb.Failed {
		t.Fatalf("rollback with a held role: %v (%+v)", err, rb)
	}
	j, _ := plan.OpenJournal(root, res.PlanID)
	if st, _ := j.State(); st.State != plan.StateApplied || !strings.Contains(st.Problem, "not verified") {
		t.Fatalf("journal state after an unverified rollback: %+v", st)
	}
	exec(t, srv, "db2", "DROP TABLE app.held")
	rb, err = Rollback(ctx, cfg, root, res.PlanID, Options{})
	if err != nil {
		t.Fatalf("rollback: %v (%+v)", err, rb)
	}
	if !rb.RolledBack || !rb.Verified || len(rb.RestorePlans) == 0 {
		t.Fatalf("rollback result %+v", rb)
	}
	if !yes(t, c, `SELECT has_table_privilege('bystander', 'app.t2', 'SELECT')`) {
		t.Fatal("the rollback touched a role made after the apply")
	}
	exec(t, srv, "db1", "REVOKE ALL ON app.t2 FROM bystander", "DROP ROLE bystander")
	sameCatalogs(t, "after rollback", before, catalogSets(t, srv, "db1", "db2"))
	if !yes(t, c, `SELECT NOT has_column_privilege('report', 'app.t1', 'tenant', 'UPDATE') AND NOT has_column_privilege('app', 'app.t1', 'id', 'UPDATE')`) {
		t.Fatal("the rollback left the column grants the apply added")
	}
	if st, _ := j.State(); st.State != plan.StateRolledBack {
		t.Fatalf("journal state %s", st.State)
	}
	if _, err := Rollback(ctx, cfg, root, res.PlanID, Options{}); err == nil || !strings.Contains(err.Error(), "already rolled back") {
		t.Fatalf("second rollback: %v", err)
	}
}

// An apply whose second database step fails changes nothing: the
// cluster step and the first database's step had committed, and the
// journalled state is restored.
func TestApplyFailingHalfwayChangesNothing(t *testing.T) {
	t.Parallel()
	srv, before, root := startEstate(t)
	ctx, cfg := pgtest.Ctx(t), srv.ConnConfig("postgres")
	res, err := applyFile(t, ctx, cfg, fmt.Sprintf(changed, "db1", "db2"), root, func(p *plan.Plan) {
		n := 0
		for i := range p.Steps {
			if s := &p.Steps[i]; !s.Cluster && !s.Autocommit && s.Database != "" {
				if n++; n == 2 {
					s.SQL = append(s.SQL, "GRANT SELECT ON TABLE app.no_such_table TO app_rw")
				}
			}
		}
		if n < 2 {
			t.Fatalf("the plan has %d database steps, want 2", n)
		}
	})
	if err == nil {
		t.Fatal("apply succeeded")
	}
	if !res.Failed || !res.Changed || !res.RolledBack || !strings.Contains(err.Error(), "no_such_table") {
		t.Fatalf("result %+v: %v", res, err)
	}
	sameCatalogs(t, "after a failed apply", before, catalogSets(t, srv, "db1", "db2"))
	j, _ := plan.OpenJournal(root, res.PlanID)
	if st, _ := j.State(); st.State != plan.StateFailed {
		t.Fatalf("journal state %s", st.State)
	}
}
