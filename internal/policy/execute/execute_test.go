package execute

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/plan"
	"github.com/pgaegis/pgaegis/internal/policy"
)

var tmpRoles atomic.Int64

// verifier makes the server compute a SCRAM verifier (so no plan ever
// carries a clear text) and returns it.
func verifier(t *testing.T, srv *localpg.Server) string {
	t.Helper()
	name := fmt.Sprintf("pgaegis_tmp_pw_%d", tmpRoles.Add(1))
	exec(t, srv, "postgres", "SET password_encryption = 'scram-sha-256'", "CREATE ROLE "+name+" PASSWORD 'only-in-a-test'")
	c := pgtest.Conn(t, srv, "postgres")
	var v string
	if err := c.QueryRow(pgtest.Ctx(t), `SELECT rolpassword FROM pg_authid WHERE rolname = $1`, name).Scan(&v); err != nil {
		t.Fatal(err)
	}
	exec(t, srv, "postgres", "DROP ROLE "+name)
	return v
}

// Every step runs in its database, in plan order, statements pipelined
// in several round trips; the journal holds the plan, the before file and
// the verifier of the role the plan drops (and not of a new role), all
// 0600.
func TestApplyRunsStepsAndJournals(t *testing.T) {
	t.Parallel()
	srv := pgtest.Shared(t) // its own databases and roles, rs_*
	exec(t, srv, "postgres", "CREATE DATABASE rs_db1", "CREATE DATABASE rs_db2", "CREATE ROLE rs_gone LOGIN PASSWORD 'rs_gone-secret'")
	for _, db := range []string{"rs_db1", "rs_db2"} {
		exec(t, srv, db, "CREATE TABLE t1 (id int)", "CREATE TABLE t2 (id int)")
	}
	v := verifier(t, srv)
	many := []string{"GRANT CONNECT ON DATABASE rs_db1 TO rs_app", "GRANT USAGE ON SCHEMA public TO rs_app", "GRANT SELECT ON t1 TO rs_app"}
	for range 1100 {
		many = append(many, "GRANT SELECT ON TABLE t2 TO rs_app")
	}
	p := newPlan(
		sqlStep("1", "postgres", true, "CREATE ROLE rs_app LOGIN", "ALTER ROLE rs_app PASSWORD '"+v+"'"),
		sqlStep("2", "rs_db1", false, many...),
		sqlStep("3", "rs_db2", false, "GRANT SELECT, INSERT ON t1 TO rs_app"),
		sqlStep("4", "postgres", true, "DROP ROLE rs_gone"),
	)
	before := &policy.File{Version: 1, Roles: policy.Roles{"rs_gone": {}}}
	root := t.TempDir()
	res, err := Apply(pgtest.Ctx(t), srv.ConnConfig("postgres"), p, before, Options{JournalRoot: root, BatchSize: 400})
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	if !slices.Equal(res.Applied, []string{"1", "2", "3", "4"}) || res.Statements != 2+len(many)+2 || res.Failed || res.RolledBack {
		t.Fatalf("result %+v", res)
	}
	c1, c2 := pgtest.Conn(t, srv, "rs_db1"), pgtest.Conn(t, srv, "rs_db2")
	if !yes(t, c1, `SELECT has_table_privilege('rs_app', 't1', 'SELECT') AND has_table_privilege('rs_app', 't2', 'SELECT') AND NOT has_table_privilege('rs_app', 't1', 'INSERT')`) ||
		!yes(t, c2, `SELECT has_table_privilege('rs_app', 't1', 'INSERT') AND NOT has_table_privilege('rs_app', 't2', 'SELECT')`) ||
		yes(t, c1, `SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rs_gone')`) {
		t.Fatal("the server does not hold what the plan says")
	}
	j, err := plan.OpenJournal(root, res.PlanID)
	if err != nil {
		t.Fatal(err)
	}
	st, _ := j.State()
	if st.State != plan.StateApplied || len(st.Applied) != 4 {
		t.Fatalf("journal state %+v", st)
	}
	for _, name := range []string{"plan.json", beforeFile, verifiersFile} {
		fi, err := os.Stat(filepath.Join(j.Dir, name))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Fatalf("%s: %v %v", name, fi, err)
		}
	}
	saved, err := readVerifiers(j)
	if err != nil || len(saved) != 1 || saved[0].Role != "rs_gone" || saved[0].Verifier == nil || !strings.HasPrefix(*saved[0].Verifier, "SCRAM-SHA-256$") {
		t.Fatalf("verifiers %v %v", saved, err)
	}
	// Applied once: the same plan id cannot run again.
	if _, err := Apply(pgtest.Ctx(t), srv.ConnConfig("postgres"), p, before, Options{JournalRoot: root}); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("second apply of the same plan: %v", err)
	}
}

// A statement that fails names itself (first line, secrets masked), its
// database and its step; nothing of the failing transaction lands.
func TestApplyErrorNamesStatement(t *testing.T) {
	t.Parallel()
	srv := pgtest.Shared(t) // its own database and role, en_*
	exec(t, srv, "postgres", "CREATE DATABASE en_db")
	exec(t, srv, "en_db", "CREATE TABLE t1 (id int)", "CREATE ROLE en_r")
	stmts := []string{}
	for range 700 {
		stmts = append(stmts, "GRANT SELECT ON t1 TO en_r")
	}
	stmts = append(stmts, "GRANT SELECT ON missing_table\nTO r", "ALTER ROLE en_r PASSWORD 'SCRAM-SHA-256$never-shown'")
	p := newPlan(sqlStep("1", "en_db", false, stmts...))
	before := &policy.File{Version: 1}
	root := t.TempDir()
	res, err := Apply(pgtest.Ctx(t), srv.ConnConfig("postgres"), p, before, Options{JournalRoot: root, BatchSize: 300})
	if err == nil {
		t.Fatal("apply succeeded")
	}
	for _, want := range []string{"step 1", `database en_db`, "GRANT SELECT ON missing_table …", "42P01"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if res.Changed || res.RolledBack || !res.Failed || res.Statements != 0 {
		t.Fatalf("result %+v", res)
	}
	c := pgtest.Conn(t, srv, "en_db")
	if yes(t, c, `SELECT has_table_privilege('en_r', 't1', 'SELECT')`) {
		t.Fatal("a statement of the failed transaction landed")
	}
	j, _ := plan.OpenJournal(root, res.PlanID)
	st, _ := j.State()
	if st.State != plan.StateFailed || !strings.Contains(st.Problem, "missing_table") {
		t.Fatalf("journal state %+v", st)
	}
	// A secret in the failing statement is never shown.
	p2 := newPlan(sqlStep("1", "en_db", false, "ALTER ROLE nobody_here PASSWORD 'SCRAM-SHA-256$4096:c2VjcmV0'"))
	_, err = Apply(pgtest.Ctx(t), srv.ConnConfig("postgres"), p2, before, Options{JournalRoot: root})
	if err == nil || strings.Contains(err.Error(), "c2VjcmV0") || !strings.Contains(err.Error(), "'*****'") {
		t.Fatalf("error %v", err)
	}
}

// A lock wait longer than the lock timeout fails the step and names the
// session holding the lock (pid, role, application), never its query.
func TestLockTimeoutNamesBlockers(t *testing.T) {
	t.Parallel()
	srv := pgtest.Shared(t) // its own database and role, lt_*
	exec(t, srv, "postgres", "CREATE DATABASE lt_db", "CREATE ROLE lt_holder LOGIN")
	exec(t, srv, "lt_db", "CREATE TABLE t (id int)", "GRANT SELECT ON t TO lt_holder")
	ctx := pgtest.Ctx(t)
	cfg := srv.ConnConfig("lt_db")
	cfg.RuntimeParams["application_name"] = "nightly report"
	h, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close(context.Background())
	for _, q := range []string{"BEGIN", "SET ROLE lt_holder", "SELECT /* secret-query-text */ count(*) FROM t"} {
		if _, err := h.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	p := newPlan(sqlStep("1", "lt_db", false, "GRANT SELECT ON t TO PUBLIC", "ALTER TABLE t ENABLE ROW LEVEL SECURITY"))
	_, err = Apply(ctx, srv.ConnConfig("lt_db"), p, &policy.File{Version: 1}, Options{JournalRoot: t.TempDir(), LockTimeout: 600 * time.Millisecond})
	if err == nil {
		t.Fatal("apply did not time out")
	}
	for _, want := range []string{"55P03", "blocked by pid", "role postgres", "'nightly report'", "ALTER TABLE t ENABLE ROW LEVEL SECURITY"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "secret-query-text") {
		t.Errorf("error shows the blocker's query: %v", err)
	}
}

// --check runs every statement and rolls everything back: the catalogs
// are byte-identical afterwards, nothing is journalled, CREATE DATABASE
// is only checked for a free name, a DROP ROLE whose dependents other
// databases' rolled-back steps remove is "not checkable", and a failing
// statement is reported with its step while the other steps are still
// checked.
func TestCheckLeavesCatalogsIdentical(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t, localpg.Options{})
	exec(t, srv, "postgres", "CREATE DATABASE db1", "CREATE DATABASE db2", "CREATE ROLE old LOGIN PASSWORD 'old-secret'", "CREATE ROLE keep LOGIN",
		"GRANT CONNECT ON DATABASE db1 TO old")
	for _, db := range []string{"db1", "db2"} {
		exec(t, srv, db, "CREATE TABLE t (id int)", "CREATE TABLE owned_by_old (id int)", "ALTER TABLE owned_by_old OWNER TO old",
			"GRANT SELECT, UPDATE ON t TO old", "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1'")
	}
	v := verifier(t, srv)
	dbStep := func(id, db string, extra ...string) plan.Step {
		return sqlStep(id, db, false, append([]string{
			"GRANT CONNECT ON DATABASE " + db + " TO grp", "GRANT USAGE ON SCHEMA public TO grp", "GRANT SELECT, INSERT ON t TO grp",
			"GRANT SELECT (id) ON t TO keep", "REVOKE ALL ON t FROM old",
			"ALTER DEFAULT PRIVILEGES FOR ROLE grp IN SCHEMA public GRANT SELECT ON TABLES TO keep",
			"ALTER DEFAULT PRIVILEGES FOR ROLE grp REVOKE EXECUTE ON FUNCTIONS FROM PUBLIC",
			"ALTER TABLE t ENABLE ROW LEVEL SECURITY", "ALTER TABLE t FORCE ROW LEVEL SECURITY",
			"CREATE POLICY p ON t TO grp USING (id > 0)", "ALTER TABLE t OWNER TO grp",
			"REVOKE EXECUTE ON FUNCTION f() FROM PUBLIC", "ALTER SCHEMA public OWNER TO grp",
			"ALTER ROLE newapp IN DATABASE " + db + " SET work_mem = '8MB'",
		}, extra...)...)
	}
	full := newPlan(
		sqlStep("1", "postgres", true, "CREATE ROLE grp", "CREATE ROLE newapp LOGIN CONNECTION LIMIT 5", "GRANT grp TO newapp",
			"ALTER ROLE newapp SET search_path = public", "ALTER ROLE keep PASSWORD '"+v+"'", "ALTER ROLE keep CREATEDB"),
		plan.Step{ID: "2", Kind: plan.KindSQL, Database: "postgres", Autocommit: true, SQL: []string{"CREATE DATABASE db3 OWNER grp"}},
		dbStep("3", "db1"),
		dbStep("4", "db2"),
		sqlStep("5", "db3", false, "GRANT CONNECT ON DATABASE db3 TO newapp"),
		sqlStep("6", "db1", true, "REASSIGN OWNED BY old TO grp", "DROP OWNED BY old"),
		sqlStep("7", "db2", true, "REASSIGN OWNED BY old TO grp", "DROP OWNED BY old"),
		sqlStep("8", "postgres", true, "DROP ROLE old"),
	)
	broken := newPlan(full.Steps[0], dbStep("3", "db1", "GRANT SELECT ON nope TO grp"), dbStep("4", "db2"))
	oneDB := newPlan(sqlStep("1", "db1", true, "CREATE ROLE grp", "GRANT SELECT ON t TO grp", "DROP ROLE old"))

	for _, tc := range []struct {
		name       string
		p          *plan.Plan
		checked    []string
		notChecked []string
		errors     []string
	}{
		{"full", full, []string{"1", "3", "4", "6", "7"}, []string{"step 2: CREATE DATABASE db3 not checked", "step 5: database db3 does not exist yet", "step 8: DROP ROLE old: not checkable"}, nil},
		{"broken", broken, []string{"1", "4"}, nil, []string{"step 3: in database db1: GRANT SELECT ON nope TO grp: relation \"nope\" does not exist (SQLSTATE 42P01)"}},
		{"one database", oneDB, nil, nil, []string{"step 1: in database db1: DROP ROLE old: role \"old\" cannot be dropped because some objects depend on it (SQLSTATE 2BP01)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := catalogs(t, srv, "db1", "db2")
			root := t.TempDir()
			res, err := Apply(pgtest.Ctx(t), srv.ConnConfig("postgres"), tc.p, nil, Options{Check: true, JournalRoot: root})
			if err != nil {
				t.Fatalf("check: %v", err)
			}
			sameCatalogs(t, tc.name, before, catalogs(t, srv, "db1", "db2"))
			if ents, _ := os.ReadDir(root); len(ents) != 0 {
				t.Errorf("check mode journalled %d entries", len(ents))
			}
			if !slices.Equal(res.Checked, tc.checked) {
				t.Errorf("checked %v, want %v", res.Checked, tc.checked)
			}
			if len(res.NotChecked) != len(tc.notChecked) || len(res.CheckErrors) != len(tc.errors) || res.Failed != (len(tc.errors) > 0) {
				t.Fatalf("not checked %q, errors %q", res.NotChecked, res.CheckErrors)
			}
			for i, w := range tc.notChecked {
				if !strings.HasPrefix(res.NotChecked[i], w) {
					t.Errorf("not checked %q, want %q...", res.NotChecked[i], w)
				}
			}
			for i, w := range tc.errors {
				if !strings.HasPrefix(res.CheckErrors[i], w) {
					t.Errorf("error %q, want %q...", res.CheckErrors[i], w)
				}
			}
		})
	}
}

// moved is the changed file of the mid-traffic test: the app's
// privileges move from direct grants to a group role's membership, the
// group also gets t3, and other loses t2.
const moved = `version: 1
mode: adopt
roles:
  mt_app: {login: true, member_of: [mt_rw]}
  mt_rw: {}
  mt_other: {login: true}
databases:
  mt_db:
    schemas:
      app:
        grants: {mt_rw: [USAGE], mt_app: [], mt_other: [USAGE]}
        tables:
          "*": {grants: {mt_rw: [SELECT, INSERT, UPDATE], mt_app: [], mt_other: [SELECT]}}
          t2: {grants: {mt_rw: [SELECT, INSERT, UPDATE], mt_app: [], mt_other: []}}
        sequences:
          "*": {grants: {mt_rw: [USAGE], mt_app: []}}
`

// The application keeps working while its privileges move: a loop of
// queries as the app role in another connection sees no permission
// error while the changed file is applied.
func TestApplyMidTrafficNoPermissionError(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t, localpg.Options{}) // its own: the live read must not meet other tests' roles coming and going
	exec(t, srv, "postgres", "CREATE DATABASE mt_db", "CREATE ROLE mt_app LOGIN PASSWORD 'app-test-secret'", "CREATE ROLE mt_other LOGIN")
	exec(t, srv, "mt_db", "CREATE SCHEMA app",
		"CREATE TABLE app.t1 (id int PRIMARY KEY, n int)", "CREATE TABLE app.t2 (id serial, v text)", "CREATE TABLE app.t3 (id int)",
		"INSERT INTO app.t1 VALUES (1, 0)",
		"GRANT USAGE ON SCHEMA app TO mt_app, mt_other",
		"GRANT SELECT, INSERT, UPDATE ON app.t1, app.t2 TO mt_app", "GRANT USAGE ON SEQUENCE app.t2_id_seq TO mt_app",
		"GRANT SELECT ON app.t1, app.t2 TO mt_other")
	ctx := pgtest.Ctx(t)

	acfg := srv.ConnConfig("mt_db")
	acfg.User, acfg.Password = "mt_app", "app-test-secret"
	app, err := pgx.ConnectConfig(ctx, acfg)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close(context.Background())
	const minQueries = 3000
	warm, applied := make(chan struct{}), make(chan struct{})
	type outcome struct {
		n      int
		errors []string
	}
	loop := make(chan outcome)
	go func() {
		var o outcome
		qs := []string{"SELECT count(*) FROM app.t1", "INSERT INTO app.t2 (v) VALUES ('x')", "UPDATE app.t1 SET n = n + 1 WHERE id = 1", "SELECT max(id) FROM app.t2"}
		for done := false; !done || o.n < minQueries; o.n++ {
			if _, err := app.Exec(ctx, qs[o.n%len(qs)]); err != nil {
				o.errors = append(o.errors, err.Error())
				if len(o.errors) > 5 || ctx.Err() != nil {
					break
				}
			}
			if o.n == 300 {
				close(warm)
			}
			select {
			case <-applied:
				done = true
			default:
			}
		}
		loop <- o
	}()
	<-warm
	res, err := applyFile(t, ctx, srv.ConnConfig("postgres"), moved, t.TempDir(), nil)
	close(applied)
	o := <-loop
	if err != nil {
		t.Fatalf("apply: %v", err)
	}
	t.Logf("%d application queries around an apply of %d statements", o.n, res.Statements)
	if len(o.errors) > 0 {
		t.Fatalf("the application saw errors mid-apply: %q", o.errors)
	}
	c := pgtest.Conn(t, srv, "mt_db")
	if !yes(t, c, `SELECT has_table_privilege('mt_app', 'app.t3', 'SELECT') AND NOT has_table_privilege('mt_other', 'app.t2', 'SELECT')
		AND NOT EXISTS (SELECT FROM pg_class WHERE relname IN ('t1','t2') AND relacl::text LIKE '%mt_app=%')`) {
		t.Fatal("the server does not hold the file")
	}
	if _, err := app.Exec(ctx, "SELECT count(*) FROM app.t3"); err != nil {
		t.Fatalf("app after the apply: %v", err)
	}
}

// A non-superuser with CREATEROLE that owns the database's objects (all a
// managed service gives) applies and checks a plan: pg_authid is not
// readable, which the result says instead of failing.
func TestApplyAsCreateRoleNonSuperuser(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t, localpg.Options{})
	exec(t, srv, "postgres", "CREATE ROLE admin LOGIN CREATEROLE PASSWORD 'admin-test-secret'", "CREATE DATABASE appdb OWNER admin")
	acfg := srv.ConnConfig("appdb")
	acfg.User, acfg.Password = "admin", "admin-test-secret"
	ctx := pgtest.Ctx(t)
	ac, err := pgx.ConnectConfig(ctx, acfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{"CREATE ROLE leaving", "CREATE SCHEMA app", "CREATE TABLE app.t (id int)", "GRANT SELECT ON app.t TO leaving"} {
		if _, err := ac.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	ac.Close(ctx)
	p := newPlan(
		sqlStep("1", "appdb", true, "CREATE ROLE reader", "CREATE ROLE web LOGIN", "GRANT reader TO web"),
		sqlStep("2", "appdb", false, "GRANT USAGE ON SCHEMA app TO reader", "GRANT SELECT ON app.t TO reader", "REVOKE SELECT ON app.t FROM leaving"),
		sqlStep("3", "appdb", true, "DROP ROLE leaving"),
	)
	before := catalogs(t, srv, "appdb")
	chk, err := Apply(ctx, acfg, p, nil, Options{Check: true})
	if err != nil || len(chk.CheckErrors) > 0 || !slices.Equal(chk.Checked, []string{"1", "2", "3"}) {
		t.Fatalf("check as admin: %+v %v", chk, err)
	}
	sameCatalogs(t, "check as admin", before, catalogs(t, srv, "appdb"))
	res, err := Apply(ctx, acfg, p, &policy.File{Version: 1, Roles: policy.Roles{"admin": {}, "leaving": {}}}, Options{JournalRoot: t.TempDir()})
	if err != nil {
		t.Fatalf("apply as admin: %v", err)
	}
	if len(res.Notes) != 1 || !strings.Contains(res.Notes[0], "pg_authid is not readable") {
		t.Fatalf("notes %q", res.Notes)
	}
	c := pgtest.Conn(t, srv, "appdb")
	if !yes(t, c, `SELECT has_table_privilege('web', 'app.t', 'SELECT') AND NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'leaving')`) {
		t.Fatal("the server does not hold the plan's end state")
	}
}
