package policy_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/plan"
	. "github.com/pgaegis/pgaegis/internal/policy"
	"github.com/pgaegis/pgaegis/internal/policy/inspect"
	"github.com/pgaegis/pgaegis/internal/quote"
)

func bp(b bool) *bool { return &b }

func TestMain(m *testing.M) {
	code := m.Run()
	pgtest.StopShared()
	os.Exit(code)
}

// execute runs a plan as the policy executor would: each step in one
// transaction in its database, autocommit steps statement by statement.
func execute(t *testing.T, srv *localpg.Server, p *plan.Plan) {
	t.Helper()
	ctx := pgtest.Ctx(t)
	for _, s := range p.Steps {
		c, err := srv.Connect(ctx, s.Database)
		if err != nil {
			t.Fatalf("step %s: connect %s: %v", s.ID, s.Database, err)
		}
		run := func() error {
			if s.Autocommit {
				for _, q := range s.SQL {
					if _, err := c.Exec(ctx, q); err != nil {
						return fmt.Errorf("%s: %w", q, err)
					}
				}
				return nil
			}
			tx, err := c.Begin(ctx)
			if err != nil {
				return err
			}
			defer tx.Rollback(ctx)
			for _, q := range s.SQL {
				if _, err := tx.Exec(ctx, q); err != nil {
					return fmt.Errorf("%s: %w", q, err)
				}
			}
			return tx.Commit(ctx)
		}
		err = run()
		c.Close(ctx)
		if err != nil {
			t.Fatalf("step %s (%s): %v", s.ID, s.Summary, err)
		}
	}
}

// check is one question to the server and the answer the file implies.
type check struct {
	query string
	want  bool
}

func oracle(t *testing.T, srv *localpg.Server, name string, db string, checks []check) {
	t.Helper()
	ctx := pgtest.Ctx(t)
	c := pgtest.Conn(t, srv, db)
	start := time.Now()
	bad := 0
	for _, ch := range checks {
		var got bool
		if err := c.QueryRow(ctx, "SELECT "+ch.query).Scan(&got); err != nil {
			t.Errorf("%s: %v", ch.query, err)
			bad++
			continue
		}
		if got != ch.want {
			t.Errorf("%s = %v, the file says %v", ch.query, got, ch.want)
			bad++
		}
	}
	t.Logf("ORACLE %s pg%d: cases=%d disagreements=%d seconds=%.1f", name, srv.Major, len(checks), bad, time.Since(start).Seconds())
}

// TestDiffOnServer plans a file against a server whose state the test
// built (and describes by hand until the live read lands), applies the
// plan and asks the server whether it now holds exactly the file.
func TestDiffOnServer(t *testing.T) {
	srv := pgtest.Shared(t)
	ctx := pgtest.Ctx(t)
	admin := srv.AdminUser
	must := func(db string, sql ...string) {
		t.Helper()
		if err := srv.ExecIn(ctx, db, sql...); err != nil {
			t.Fatal(err)
		}
	}
	must("postgres", `CREATE ROLE app_owner`, `CREATE ROLE app LOGIN`, `CREATE ROLE stray`, `CREATE ROLE nobody`,
		`CREATE DATABASE appdb OWNER app_owner`)
	must("appdb", `ALTER SCHEMA public OWNER TO app_owner`, `SET ROLE app_owner`,
		`CREATE TABLE a (id serial, tenant int)`, `CREATE TABLE "we""ird.na me" (x int)`, `CREATE TABLE b (x int)`,
		`GRANT SELECT ON b TO stray`, `CREATE FUNCTION f(integer) RETURNS int LANGUAGE sql AS 'SELECT 1'`)
	live := &Live{
		Major: srv.Major, CurrentUser: admin, Superuser: true, Bootstrap: admin, HasPassword: map[string]bool{admin: true},
		Databases:  []string{"postgres", "appdb", "template1"},
		Dependents: map[string]map[string]Dependents{"stray": {"appdb": {Privileges: 1}}},
		File: &File{Version: 1, Roles: Roles{
			admin:       {Superuser: bp(true), Login: bp(true), CreateDB: bp(true), CreateRole: bp(true), Replication: bp(true), BypassRLS: bp(true)},
			"app_owner": {}, "app": {Login: bp(true)}, "stray": {}, "nobody": {},
		}, Databases: map[string]*Database{
			"appdb": {Owner: "app_owner", Grants: Grants{Public: {"CONNECT", "TEMPORARY"}}, Schemas: map[string]*Schema{
				"public": {Owner: "app_owner", Grants: Grants{Public: {"USAGE"}},
					Tables: Objects{
						"a": {Owner: "app_owner", Grants: Grants{}}, `we"ird.na me`: {Owner: "app_owner", Grants: Grants{}},
						"b": {Owner: "app_owner", Grants: Grants{"stray": {"SELECT"}}},
					},
					Sequences: Objects{"a_id_seq": {Owner: "app_owner", Grants: Grants{}}},
					Functions: Objects{"f(integer)": {Owner: "app_owner", Grants: Grants{Public: {"EXECUTE"}}}},
				},
			}},
		}},
	}
	file := fmt.Sprintf(`version: 1
mode: authoritative
roles:
  %s: {superuser: true, login: true, createdb: true, createrole: true, replication: true, bypassrls: true}
  app_owner: {}
  app: {login: true, connection_limit: 10, member_of: [app_rw], settings: {search_path: "public, pg_catalog"}}
  reader: {}
  app_rw: {}
  new_role: {login: true, password: none, member_of: [{role: reader, admin: true}]}
  nobody: {}
databases:
  appdb:
    grants: {PUBLIC: [], app: [CONNECT], reader: [CONNECT]}
    default_privileges:
      app_owner: {tables: {reader: [SELECT]}, functions: {}}
    schemas:
      public:
        grants: {PUBLIC: [], app: [USAGE], reader: [USAGE]}
        tables:
          "*": {grants: {app: [SELECT, INSERT, UPDATE, DELETE], reader: [SELECT]}}
          b: {grants: {reader: [SELECT WITH GRANT OPTION]}}
        sequences:
          "*": {grants: {app: [USAGE, SELECT]}}
        functions:
          "*": {grants: {app: [EXECUTE]}}
        default_privileges:
          app_owner: {sequences: {app: [USAGE]}}
        rls:
          a:
            enabled: true
            policies:
              tenant: {roles: [app], using: "tenant = current_setting('app.tenant', true)::int"}
  newdb:
    owner: app_owner
    grants: {PUBLIC: [], app: [CONNECT]}
`, admin)
	f, err := Parse("server.yaml", []byte(file))
	if err != nil {
		t.Fatal(err)
	}
	p, notes, err := Diff(f, live, Options{DropOwned: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range notes {
		t.Logf("note: %s %s: %s", n.Level, n.Object, n.Text)
	}
	for _, s := range p.Steps {
		t.Logf("step %s %s in %s: %q", s.ID, s.Summary, s.Database, s.SQL)
	}
	execute(t, srv, p)

	var checks []check
	add := func(q string, want bool) { checks = append(checks, check{q, want}) }
	for _, c := range []struct {
		role string
		priv string
		want bool
	}{{"app", "CONNECT", true}, {"reader", "CONNECT", true}, {"new_role", "CONNECT", true}, {"nobody", "CONNECT", false}, {"nobody", "TEMPORARY", false}, {"app", "CREATE", false}} {
		add(fmt.Sprintf("has_database_privilege('%s', 'appdb', '%s')", c.role, c.priv), c.want)
	}
	add("has_database_privilege('app', 'newdb', 'CONNECT')", true)
	add("has_database_privilege('nobody', 'newdb', 'CONNECT')", false)
	add("(SELECT pg_get_userbyid(datdba) = 'app_owner' FROM pg_database WHERE datname = 'newdb')", true)
	add("has_schema_privilege('app', 'public', 'USAGE')", true)
	add("has_schema_privilege('nobody', 'public', 'USAGE')", false)
	add("has_schema_privilege('app', 'public', 'CREATE')", false)
	for _, tbl := range []string{"public.a", `public."we""ird.na me"`} {
		for _, pr := range []string{"SELECT", "INSERT", "UPDATE", "DELETE"} {
			add(fmt.Sprintf("has_table_privilege('app', '%s', '%s')", tbl, pr), true)
		}
		add(fmt.Sprintf("has_table_privilege('app', '%s', 'TRUNCATE')", tbl), false)
		add(fmt.Sprintf("has_table_privilege('reader', '%s', 'SELECT')", tbl), true)
		add(fmt.Sprintf("has_table_privilege('reader', '%s', 'INSERT')", tbl), false)
	}
	add("has_table_privilege('app', 'public.b', 'SELECT')", false)
	add("has_table_privilege('reader', 'public.b', 'SELECT WITH GRANT OPTION')", true)
	add("has_sequence_privilege('app', 'public.a_id_seq', 'USAGE')", true)
	add("has_sequence_privilege('app', 'public.a_id_seq', 'UPDATE')", false)
	add("has_function_privilege('app', 'public.f(integer)', 'EXECUTE')", true)
	add("has_function_privilege('nobody', 'public.f(integer)', 'EXECUTE')", false)
	add("NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'stray')", true)
	add("EXISTS (SELECT FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid JOIN pg_roles u ON u.oid = m.member WHERE r.rolname = 'reader' AND u.rolname = 'new_role' AND m.admin_option)", true)
	add("pg_has_role('app', 'app_rw', 'MEMBER')", true)
	add("pg_has_role('app', 'app_owner', 'MEMBER')", false)
	add("(SELECT rolconnlimit = 10 AND rolcanlogin FROM pg_roles WHERE rolname = 'app')", true)
	add("(SELECT setconfig = '{\"search_path=public, pg_catalog\"}' FROM pg_db_role_setting WHERE setrole = 'app'::regrole AND setdatabase = 0)", true)
	add("(SELECT relrowsecurity FROM pg_class WHERE oid = 'public.a'::regclass)", true)
	add("EXISTS (SELECT FROM pg_policies WHERE tablename = 'a' AND policyname = 'tenant' AND roles = '{app}')", true)
	oracle(t, srv, "policy-apply", "appdb", checks)
	// Normalize's rolled-back CREATE POLICY must not run event triggers:
	// this one would make it fail, and the second plan would not be empty.
	must("appdb", `CREATE SCHEMA traps`, `CREATE FUNCTION traps.trap() RETURNS event_trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'event trigger ran'; END $$`,
		`CREATE EVENT TRIGGER trap ON ddl_command_start WHEN TAG IN ('CREATE POLICY') EXECUTE FUNCTION traps.trap()`)
	again(t, srv, f, Options{})
	must("appdb", `DROP EVENT TRIGGER trap`)

	// Default privileges: what app_owner creates next.
	c := pgtest.Conn(t, srv, "appdb")
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	for _, q := range []string{`SET ROLE app_owner`, `CREATE TABLE c (x int)`, `CREATE SEQUENCE s2`, `CREATE FUNCTION g() RETURNS int LANGUAGE sql AS 'SELECT 1'`, `RESET ROLE`} {
		if _, err := tx.Exec(ctx, q); err != nil {
			t.Fatal(q, err)
		}
	}
	for _, ch := range []check{
		{"has_table_privilege('reader', 'public.c', 'SELECT')", true},
		{"has_table_privilege('app', 'public.c', 'SELECT')", false},
		{"has_sequence_privilege('app', 'public.s2', 'USAGE')", true},
		{"has_function_privilege('nobody', 'public.g()', 'EXECUTE')", false},
	} {
		var got bool
		if err := tx.QueryRow(ctx, "SELECT "+ch.query).Scan(&got); err != nil || got != ch.want {
			t.Errorf("default privileges: %s = %v (%v), want %v", ch.query, got, err, ch.want)
		}
	}
}

// again reads the server and diffs the file once more: after an apply
// the plan must be empty.
func again(t *testing.T, srv *localpg.Server, f *File, o Options) {
	t.Helper()
	live, err := inspect.Read(pgtest.Ctx(t), srv.ConnConfig("postgres"), inspect.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := Normalize(pgtest.Ctx(t), srv.Connect, f, live); err != nil {
		t.Fatal(err)
	}
	p, notes, err := Diff(f, live, o)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range p.Steps {
		t.Errorf("second plan not empty: step %s %s in %s: %q", s.ID, s.Summary, s.Database, s.SQL)
	}
	for _, n := range notes {
		t.Logf("second plan note: %s %s: %s", n.Level, n.Object, n.Text)
	}
}

// TestDiffMajors: memberships with their per-grant options (16+), an
// option changed in place, MAINTAIN (17+), on every major; after each
// apply the server holds the file and a second plan is empty.
func TestDiffMajors(t *testing.T) {
	pgtest.EachMajor(t, func(t *testing.T, major int) {
		srv := pgtest.StartMajor(t, major, localpg.Options{})
		ctx := pgtest.Ctx(t)
		if err := srv.Exec(ctx, `CREATE ROLE grp`, `CREATE ROLE m1 LOGIN`, `CREATE TABLE t (x int)`); err != nil {
			t.Fatal(err)
		}
		opts := "admin: true"
		if major >= 16 {
			opts += ", inherit: false, set: false"
		}
		privs := "SELECT"
		if major >= 17 {
			privs += ", MAINTAIN"
		}
		file := func(o string) *File {
			f, err := Parse("majors.yaml", []byte(fmt.Sprintf(`version: 1
mode: adopt
roles:
  grp: {}
  m1: {login: true, member_of: [{role: grp, %s}]}
  m2: {member_of: [grp]}
databases:
  postgres:
    schemas:
      public:
        tables:
          t: {grants: {m2: [%s], PUBLIC: []}}
`, o, privs)))
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
		apply := func(f *File) *plan.Plan {
			p := readDiffApply(t, srv, "postgres", f)
			again(t, srv, f, Options{})
			return p
		}
		apply(file(opts))
		member := `(SELECT %s FROM pg_auth_members m WHERE m.roleid = 'grp'::regrole AND m.member = '%s'::regrole)`
		checks := []check{
			{fmt.Sprintf(member, "admin_option", "m1"), true},
			{fmt.Sprintf(member, "NOT admin_option", "m2"), true},
			{"has_table_privilege('m2', 'public.t', 'SELECT')", true},
			{"has_table_privilege('m1', 'public.t', 'SELECT')", false},
		}
		if major >= 16 {
			checks = append(checks, check{fmt.Sprintf(member, "NOT inherit_option AND NOT set_option", "m1"), true},
				check{fmt.Sprintf(member, "inherit_option AND set_option", "m2"), true})
		}
		if major >= 17 {
			checks = append(checks, check{"has_table_privilege('m2', 'public.t', 'MAINTAIN')", true})
		}
		oracle(t, srv, "policy-memberships", "postgres", checks)

		// One option changed: in place, the membership never revoked.
		changed := "admin: false"
		if major >= 16 {
			changed += ", inherit: false, set: true"
		}
		p := apply(file(changed))
		for _, s := range p.Steps {
			for _, q := range s.SQL {
				if q == "REVOKE grp FROM m1" {
					t.Errorf("the membership was revoked to change an option: %q", s.SQL)
				}
			}
		}
		checks = []check{{fmt.Sprintf(member, "NOT admin_option", "m1"), true}}
		if major >= 16 {
			checks = append(checks, check{fmt.Sprintf(member, "NOT inherit_option AND set_option", "m1"), true})
		}
		oracle(t, srv, "policy-membership-change", "postgres", checks)
	})
}

// TestDiffHostileNames: names with quotes, dots, newlines and non-ASCII
// letters go through the plan to the server and back (the live read),
// and a second plan is empty.
func TestDiffHostileNames(t *testing.T) {
	srv := pgtest.Shared(t)
	ctx := pgtest.Ctx(t)
	role, schema, table, col, fn := "h\"o.le\nü", "s\"c.h ü", "t\"a\nb.c", "c\"ol.ü", "f\"n.x"
	if err := srv.Exec(ctx, `CREATE DATABASE hostile`, "CREATE ROLE "+quote.Ident(role)); err != nil {
		t.Fatal(err)
	}
	if err := srv.ExecIn(ctx, "hostile", "CREATE SCHEMA "+quote.Ident(schema),
		"CREATE TABLE "+quote.Qualified(schema, table)+" ("+quote.Ident(col)+" int)",
		"CREATE FUNCTION "+quote.Qualified(schema, fn)+"(integer) RETURNS int LANGUAGE sql AS 'SELECT 1'"); err != nil {
		t.Fatal(err)
	}
	f := &File{Version: 1, Mode: Adopt, Roles: Roles{role: {MemberOf: Memberships{}}}, Databases: map[string]*Database{"hostile": {
		Grants: Grants{role: {"CONNECT"}},
		Schemas: map[string]*Schema{schema: {
			Grants:    Grants{role: {"USAGE"}},
			Tables:    Objects{table: {Grants: Grants{role: {"SELECT"}}, Columns: map[string]Grants{col: {role: {"UPDATE"}}}}},
			Functions: Objects{"*": {Grants: Grants{Public: {}, role: {"EXECUTE"}}}},
			RLS: map[string]*RLS{table: {Enabled: true, Policies: RowPolicies{"p\"o.l\nü": {Roles: []string{role},
				Using: quote.Ident(col) + " > 0"}}}},
		}},
	}}}
	readDiffApply(t, srv, "hostile", f)
	r := quote.Literal(role)
	// A regclass literal cannot hold the U&"" form Ident gives a name with
	// a newline: the oracle finds the table by its names.
	tbl := "(SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = " +
		quote.Literal(schema) + " AND c.relname = " + quote.Literal(table) + ")"
	oracle(t, srv, "policy-hostile", "hostile", []check{
		{"has_database_privilege(" + r + ", 'hostile', 'CONNECT')", true},
		{"has_schema_privilege(" + r + ", " + quote.Literal(schema) + ", 'USAGE')", true},
		{"has_table_privilege(" + r + ", " + tbl + ", 'SELECT')", true},
		{"has_table_privilege(" + r + ", " + tbl + ", 'INSERT')", false},
		{"has_column_privilege(" + r + ", " + tbl + ", " + quote.Literal(col) + ", 'UPDATE')", true},
		{"has_function_privilege(" + r + ", " + quote.Literal(quote.Qualified(schema, fn)+"(integer)") + ", 'EXECUTE')", true},
		{"has_function_privilege('pg_monitor', " + quote.Literal(quote.Qualified(schema, fn)+"(integer)") + ", 'EXECUTE')", false},
		{"(SELECT relrowsecurity FROM pg_class WHERE oid = " + tbl + ")", true},
	})
	again(t, srv, f, Options{})
}

// readDiffApply reads database db's live state, diffs f and applies the plan.
func readDiffApply(t *testing.T, srv *localpg.Server, db string, f *File) *plan.Plan {
	t.Helper()
	live, err := inspect.Read(pgtest.Ctx(t), srv.ConnConfig("postgres"), inspect.Options{Databases: []string{db}})
	if err != nil {
		t.Fatal(err)
	}
	p, _, err := Diff(f, live, Options{})
	if err != nil {
		t.Fatal(err)
	}
	execute(t, srv, p)
	return p
}

// TestDiffRemoveOnServer: a role the authoritative file drops is held
// while it owns or holds anything (the live read's pg_shdepend counts);
// with --reassign-owned-to and --drop-owned it goes, its objects kept
// under the new owner.
func TestDiffRemoveOnServer(t *testing.T) {
	srv := pgtest.Shared(t)
	ctx := pgtest.Ctx(t)
	if err := srv.Exec(ctx, `CREATE ROLE gone`, `CREATE DATABASE rm`); err != nil {
		t.Fatal(err)
	}
	if err := srv.ExecIn(ctx, "rm", `CREATE TABLE kept (x int)`, `GRANT SELECT ON kept TO gone`,
		`CREATE TABLE owned (x int)`, `ALTER TABLE owned OWNER TO gone`); err != nil {
		t.Fatal(err)
	}
	live, err := inspect.Read(ctx, srv.ConnConfig("postgres"), inspect.Options{Databases: []string{"rm"}})
	if err != nil {
		t.Fatal(err)
	}
	// The file: every role there is but gone, as it is.
	f := &File{Version: 1, Roles: Roles{}}
	for n, r := range live.File.Roles {
		if n != "gone" && !strings.HasPrefix(n, "pg_") {
			f.Roles[n] = r
		}
	}
	p, notes, err := Diff(f, live, Options{})
	if err != nil {
		t.Fatal(err)
	}
	held := false
	for _, n := range notes {
		held = held || n.Level == NoteHeld && n.Object == "role gone" && strings.Contains(n.Text, "rm: owns 1 object(s)") && !strings.Contains(n.Text, "privilege")
	}
	if !p.Empty() || !held {
		t.Fatalf("want nothing planned and gone held: %+v %+v", p.Steps, notes)
	}
	p, _, err = Diff(f, live, Options{ReassignOwnedTo: srv.AdminUser, DropOwned: true})
	if err != nil {
		t.Fatal(err)
	}
	execute(t, srv, p)
	oracle(t, srv, "policy-remove", "rm", []check{
		{"NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'gone')", true},
		{"(SELECT pg_get_userbyid(relowner) = current_user FROM pg_class WHERE oid = 'public.owned'::regclass)", true},
		{"(SELECT relacl IS NULL OR NOT relacl::text LIKE '%gone%' FROM pg_class WHERE oid = 'public.kept'::regclass)", true},
	})
}

// TestDiffRemoveWithGrants: a role that owns nothing but holds grants in
// two databases (and CONNECT on one) is removed from an export in one
// edit: the plan revokes and drops it in one apply, the next plan is
// empty. A role that comes to own something after the read makes the
// guarded DROP OWNED fail instead of dropping the object.
func TestDiffRemoveWithGrants(t *testing.T) {
	srv := pgtest.Shared(t)
	ctx := pgtest.Ctx(t)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(srv.Exec(ctx, `CREATE ROLE rg_gone`, `CREATE ROLE rg_late`, `CREATE DATABASE rg_a`, `CREATE DATABASE rg_b`, `GRANT CONNECT ON DATABASE rg_a TO rg_gone`))
	t.Cleanup(func() {
		srv.Exec(ctx, `DROP DATABASE IF EXISTS rg_a`, `DROP DATABASE IF EXISTS rg_b`, `DROP ROLE IF EXISTS rg_gone`, `DROP ROLE IF EXISTS rg_late`)
	})
	for _, db := range []string{"rg_a", "rg_b"} {
		must(srv.ExecIn(ctx, db, `CREATE TABLE t (x int)`, `GRANT SELECT, UPDATE ON t TO rg_gone, rg_late`, `GRANT USAGE ON SCHEMA public TO rg_gone`))
	}
	dbs := []string{"rg_a", "rg_b"}
	read := func() *Live {
		t.Helper()
		live, err := inspect.Read(ctx, srv.ConnConfig("postgres"), inspect.Options{Databases: dbs})
		must(err)
		return live
	}
	// The edit: the export without the roles and every grant to them.
	edit := func(live *Live, gone ...string) *File {
		f := inspect.Export(live, inspect.ExportOptions{Databases: dbs})
		var strip func(g Grants)
		strip = func(g Grants) {
			for _, r := range gone {
				delete(g, r)
			}
		}
		for _, r := range gone {
			delete(f.Roles, r)
		}
		for _, d := range f.Databases {
			strip(d.Grants)
			for _, s := range d.Schemas {
				strip(s.Grants)
				for _, objs := range []Objects{s.Tables, s.Sequences, s.Functions} {
					for _, o := range objs {
						strip(o.Grants)
					}
				}
			}
		}
		return f
	}
	p, notes, err := Diff(edit(read(), "rg_gone"), read(), Options{})
	must(err)
	for _, n := range notes {
		if n.Level == NoteHeld {
			t.Errorf("held: %+v", n)
		}
	}
	execute(t, srv, p)
	oracle(t, srv, "policy-remove-grants", "rg_b", []check{
		{"NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rg_gone')", true},
		{"has_table_privilege('rg_late', 'public.t', 'UPDATE')", true},
	})
	live := read()
	if p2, notes, err := Diff(edit(live), live, Options{}); err != nil || !p2.Empty() {
		t.Fatalf("second plan not empty: %v %+v %+v", err, p2, notes)
	}
	// rg_late holds grants when read, then comes to own a table: the
	// guard stops the apply.
	live = read()
	p, _, err = Diff(edit(live, "rg_late"), live, Options{})
	must(err)
	must(srv.ExecIn(ctx, "rg_a", `CREATE TABLE late (x int)`, `ALTER TABLE late OWNER TO rg_late`))
	var failed error
	for _, s := range p.Steps {
		c, err := srv.Connect(ctx, s.Database)
		must(err)
		tx, err := c.Begin(ctx)
		must(err)
		for _, q := range s.SQL {
			if _, err := tx.Exec(ctx, q); err != nil {
				failed = err
				break
			}
		}
		if failed == nil {
			must(tx.Commit(ctx))
		}
		tx.Rollback(ctx)
		c.Close(ctx)
		if failed != nil {
			break
		}
	}
	if failed == nil || !strings.Contains(failed.Error(), "now owns objects") {
		t.Fatalf("the guard did not stop the drop: %v", failed)
	}
	oracle(t, srv, "policy-remove-guard", "rg_a", []check{
		{"EXISTS (SELECT FROM pg_roles WHERE rolname = 'rg_late')", true},
		{"to_regclass('public.late') IS NOT NULL", true},
	})
}

// TestDiffUnreadableAsCreateRole: a CREATEROLE non-superuser that cannot
// CONNECT to a database the file names plans nothing for it (not the
// owner it already has, not a GRANT it cannot run), says so, and what it
// does plan runs.
func TestDiffUnreadableAsCreateRole(t *testing.T) {
	srv := pgtest.Shared(t)
	ctx := pgtest.Ctx(t)
	if err := srv.Exec(ctx, `CREATE ROLE ur_admin LOGIN CREATEROLE PASSWORD 'ur-Admin-pw-9'`, `CREATE ROLE ur_owner`, `CREATE ROLE ur_app`,
		`CREATE DATABASE ur_closed OWNER ur_owner`, `REVOKE CONNECT ON DATABASE ur_closed FROM PUBLIC`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Exec(ctx, `DROP DATABASE IF EXISTS ur_closed`, `DROP ROLE IF EXISTS ur_new`, `DROP ROLE IF EXISTS ur_app`, `DROP ROLE IF EXISTS ur_owner`, `DROP ROLE IF EXISTS ur_admin`)
	})
	cfg := srv.ConnConfig("postgres")
	cfg.User, cfg.Password = "ur_admin", "ur-Admin-pw-9"
	live, err := inspect.Read(ctx, cfg, inspect.Options{Databases: []string{"postgres", "ur_closed"}})
	if err != nil {
		t.Fatal(err)
	}
	if live.Superuser || live.Unreadable["ur_closed"] == "" {
		t.Fatalf("want ur_closed unreadable for a non-superuser: %+v", live.Unreadable)
	}
	f := &File{Version: 1, Mode: Adopt, Roles: Roles{"ur_new": {}}, Databases: map[string]*Database{
		"ur_closed": {Owner: "ur_owner", Grants: Grants{"ur_app": {"CONNECT"}}},
	}}
	p, notes, err := Diff(f, live, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var sql []string
	for _, s := range p.Steps {
		sql = append(sql, s.SQL...)
	}
	if len(sql) != 1 || sql[0] != "CREATE ROLE ur_new" {
		t.Fatalf("want only CREATE ROLE ur_new, got %q", sql)
	}
	noted := false
	for _, n := range notes {
		noted = noted || n.Object == "database ur_closed" && strings.Contains(n.Text, "nothing is planned for it")
	}
	if !noted {
		t.Fatalf("no note for ur_closed: %+v", notes)
	}
	c, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	for _, q := range sql {
		if _, err := c.Exec(ctx, q); err != nil {
			t.Fatalf("%s as ur_admin: %v", q, err)
		}
	}
}
