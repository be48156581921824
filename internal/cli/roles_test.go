package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/policy/execute"
	"github.com/pgaegis/pgaegis/internal/policy/template"
	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/scram"
)

// as connects to database as role over TCP (scram-sha-256, as every
// throwaway cluster's pg_hba requires) with its clear password.
func as(t *testing.T, srv *localpg.Server, role, password, database string) (*pgx.Conn, error) {
	t.Helper()
	cfg := srv.ConnConfig(database)
	cfg.User, cfg.Password = role, password
	c, err := pgx.ConnectConfig(pgtest.Ctx(t), cfg)
	if err == nil {
		t.Cleanup(func() { c.Close(context.Background()) })
	}
	return c, err
}

func mustAs(t *testing.T, srv *localpg.Server, role, password, database string) *pgx.Conn {
	t.Helper()
	c, err := as(t, srv, role, password, database)
	if err != nil {
		t.Fatalf("%s cannot connect to %s: %v", role, database, err)
	}
	return c
}

// denied runs q and wants insufficient_privilege (42501).
func denied(t *testing.T, c *pgx.Conn, who, q string) {
	t.Helper()
	_, err := c.Exec(pgtest.Ctx(t), q)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "42501" {
		t.Errorf("%s: %s: want permission denied, got %v", who, q, err)
	}
}

func allowed(t *testing.T, c *pgx.Conn, who string, qs ...string) {
	t.Helper()
	for _, q := range qs {
		if _, err := c.Exec(pgtest.Ctx(t), q); err != nil {
			t.Errorf("%s: %s: %v", who, q, err)
		}
	}
}

// passwordFile writes a 0600 file holding one password line.
func passwordFile(t *testing.T, pw string) string {
	p := filepath.Join(t.TempDir(), "pw")
	if err := os.WriteFile(p, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// setPassword gives a role a password the way pgaegis does: a verifier.
func setPassword(t *testing.T, srv *localpg.Server, role, pw string) {
	t.Helper()
	v, err := scram.Verifier([]byte(pw), 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Exec(pgtest.Ctx(t), "ALTER ROLE "+quote.Ident(role)+" PASSWORD "+quote.Literal(v)); err != nil {
		t.Fatal(err)
	}
}

// TestRolesInitGuideLayout is the seed guide's Step 4 done with one
// command, then proven by logging in as each role.
func TestRolesInitGuideLayout(t *testing.T) {
	srv := pgtest.Start(t, localpg.Options{})
	ctx := pgtest.Ctx(t)
	const appPW, roPW, migPW, depPW, strangerPW = "app-Pw'1;x", `report "pw" 2`, "mig-pw-3", "dep-pw-4", "stranger-pw-5"
	must(t, srv.Exec(ctx, `CREATE DATABASE appdb`, `CREATE ROLE deployer LOGIN`, `CREATE ROLE stranger LOGIN`))
	must(t, srv.ExecIn(ctx, "appdb",
		`CREATE TABLE public.orders (id serial PRIMARY KEY, note text)`,
		`INSERT INTO public.orders (note) VALUES ('first')`,
		`GRANT CREATE, USAGE ON SCHEMA public TO deployer`))
	setPassword(t, srv, "deployer", depPW)
	setPassword(t, srv, "stranger", strangerPW)

	conn := connArgs(t, srv, srv.AdminUser, srv.Password)
	layout := []string{"roles", "init", "--database", "appdb", "--app", "app", "--readonly", "report", "--owner", "app_owner", "--migration", "migrator",
		"--monitoring", "monitor", "--app-audit", "write,ddl"}
	args := append(append(layout, "--app-password-file", passwordFile(t, appPW), "--readonly-password-file", passwordFile(t, roPW)), conn...)
	code, out, errOut := runCLI(t, append(args, "--format", "sql")...)
	if code != ExitFindings {
		t.Fatalf("plan: exit %d\n%s\n%s", code, out, errOut)
	}
	for _, secret := range []string{appPW, roPW} {
		if strings.Contains(out+errOut, secret) {
			t.Fatal("the clear password is in the output")
		}
	}
	for _, want := range []string{"SCRAM-SHA-256$4096:", "FOR ROLE", "FROM PUBLIC", "CREATE ROLE"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q:\n%s", want, out)
		}
	}
	code, out, errOut = runCLI(t, append(args, "--apply", "--yes")...)
	if code != ExitOK {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errOut)
	}
	setPassword(t, srv, "migrator", migPW)

	app := mustAs(t, srv, "app", appPW, "appdb")
	allowed(t, app, "app",
		`SELECT * FROM public.orders`,
		`INSERT INTO public.orders (note) VALUES ('by app')`,
		`UPDATE public.orders SET note = 'x' WHERE id = 1`,
		`DELETE FROM public.orders WHERE note = 'by app'`,
		`SELECT nextval('public.orders_id_seq')`)
	denied(t, app, "app", `CREATE TABLE public.app_table (i int)`)
	denied(t, app, "app", `DROP TABLE public.orders`)
	denied(t, app, "app", `ALTER TABLE public.orders ADD COLUMN extra int`)
	denied(t, app, "app", `TRUNCATE public.orders`)

	ro := mustAs(t, srv, "report", roPW, "appdb")
	allowed(t, ro, "report", `SELECT * FROM public.orders`)
	denied(t, ro, "report", `INSERT INTO public.orders (note) VALUES ('ro')`)
	denied(t, ro, "report", `UPDATE public.orders SET note = 'ro'`)
	denied(t, ro, "report", `DELETE FROM public.orders`)
	denied(t, ro, "report", `CREATE TABLE public.ro_table (i int)`)

	// PUBLIC's CONNECT is gone: a login role the file does not name
	// cannot even connect.
	if _, err := as(t, srv, "stranger", strangerPW, "appdb"); err == nil || !strings.Contains(err.Error(), "permission denied for database") {
		t.Errorf("stranger connects to appdb: %v", err)
	}

	// Objects created later, by each kind of creator, need no new GRANT.
	must(t, srv.ExecIn(ctx, "appdb", `SET ROLE app_owner`, `CREATE TABLE public.t_owner (id serial, v text)`))
	mig := mustAs(t, srv, "migrator", migPW, "appdb")
	denied(t, mig, "migrator before SET ROLE", `CREATE TABLE public.t_nope (i int)`)
	allowed(t, mig, "migrator", `SET ROLE app_owner`, `CREATE TABLE public.t_mig (id serial, v text)`, `RESET ROLE`)
	dep := mustAs(t, srv, "deployer", depPW, "appdb")
	allowed(t, dep, "deployer", `CREATE TABLE public.t_dep (id serial, v text)`)
	for _, tb := range []string{"t_owner", "t_mig", "t_dep"} {
		allowed(t, app, "app on "+tb,
			`INSERT INTO public.`+tb+` (v) VALUES ('a')`,
			`UPDATE public.`+tb+` SET v = 'b'`,
			`SELECT * FROM public.`+tb,
			`DELETE FROM public.`+tb)
		allowed(t, ro, "report on "+tb, `SELECT * FROM public.`+tb)
		denied(t, ro, "report on "+tb, `INSERT INTO public.`+tb+` (v) VALUES ('r')`)
	}
	var migOwner string
	must(t, mig.QueryRow(ctx, `SELECT tableowner FROM pg_tables WHERE tablename = 't_mig'`).Scan(&migOwner))
	if migOwner != "app_owner" {
		t.Errorf("t_mig belongs to %s, want app_owner", migOwner)
	}

	// The server's own answer agrees, role by role.
	admin := pgtest.Conn(t, srv, "appdb")
	for _, c := range []struct {
		q    string
		want bool
	}{
		{`has_database_privilege('app', 'appdb', 'CONNECT')`, true},
		{`has_database_privilege('report', 'appdb', 'CONNECT')`, true},
		{`has_database_privilege('stranger', 'appdb', 'CONNECT')`, false},
		{`has_database_privilege('stranger', 'appdb', 'TEMPORARY')`, false},
		{`has_schema_privilege('stranger', 'public', 'CREATE')`, false},
		{`has_schema_privilege('stranger', 'public', 'USAGE')`, false},
		{`has_schema_privilege('app', 'public', 'CREATE')`, false},
		{`has_schema_privilege('report', 'public', 'USAGE')`, true},
		{`has_table_privilege('app', 'public.t_dep', 'SELECT,INSERT,UPDATE,DELETE')`, true},
		{`has_table_privilege('app', 'public.t_dep', 'TRUNCATE')`, false},
		{`has_table_privilege('report', 'public.t_mig', 'SELECT')`, true},
		{`has_table_privilege('report', 'public.t_mig', 'INSERT')`, false},
		{`has_sequence_privilege('app', 'public.t_owner_id_seq', 'USAGE')`, true},
		{`has_sequence_privilege('report', 'public.orders_id_seq', 'USAGE')`, false},
		{`(SELECT rolconnlimit FROM pg_roles WHERE rolname = 'app') = ` + strconv.Itoa(template.DefaultAppConnLimit), true},
		{`(SELECT rolcanlogin FROM pg_roles WHERE rolname = 'app_owner')`, false},
		{`(SELECT datdba::regrole::text FROM pg_database WHERE datname = 'appdb') = 'app_owner'`, true},
		{`pg_has_role('monitor', 'pg_monitor', 'USAGE') AND has_database_privilege('monitor', 'appdb', 'CONNECT')`, true},
		{`pg_has_role('app', 'app_owner', 'USAGE') OR pg_has_role('report', 'app_owner', 'MEMBER')`, false},
		{`EXISTS (SELECT FROM pg_db_role_setting WHERE setrole = 'app'::regrole AND setdatabase = 0 AND 'pgaudit.log=write,ddl' = ANY (setconfig))`, true},
		{`(SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'public') = 'app_owner'`, true},
	} {
		var got bool
		if err := admin.QueryRow(ctx, "SELECT "+c.q).Scan(&got); err != nil || got != c.want {
			t.Errorf("%s = %v (%v), want %v", c.q, got, err, c.want)
		}
	}

	// A second run plans nothing.
	code, out, errOut = runCLI(t, append(layout, conn...)...)
	if code != ExitOK {
		t.Errorf("second run: exit %d, want 0 (nothing to do)\n%s\n%s", code, out, errOut)
	}
}

// TestRolesInitTenant: the tenant template keeps tenants apart, for the
// app and the read-only role; init on a database in use only adds: the
// table's other policies and the app's memberships stay, and the login
// roles PUBLIC's CONNECT was all they had are named.
func TestRolesInitTenant(t *testing.T) {
	srv := pgtest.Start(t, localpg.Options{})
	ctx := pgtest.Ctx(t)
	const pw, roPW, migPW = "tenant-app-pw", "tenant-ro-pw", "tenant-mig-pw"
	must(t, srv.Exec(ctx, `CREATE DATABASE tenants`, `CREATE ROLE devs`, `CREATE ROLE tapp LOGIN`, `GRANT devs TO tapp`,
		`CREATE ROLE auditor`, `CREATE ROLE tenants_owner`, `CREATE ROLE lurker LOGIN`, `CREATE ROLE keeper LOGIN`, `GRANT CONNECT ON DATABASE tenants TO keeper`))
	must(t, srv.ExecIn(ctx, "tenants",
		`CREATE TABLE public.docs (id serial PRIMARY KEY, "Tenant Id" bigint NOT NULL, body text)`,
		`INSERT INTO public.docs ("Tenant Id", body) VALUES (1, 'a'), (1, 'b'), (2, 'c'), (3, 'd')`,
		`ALTER TABLE public.docs ENABLE ROW LEVEL SECURITY`,
		`CREATE POLICY audit_all ON public.docs FOR SELECT TO auditor USING (true)`,
		`ALTER TABLE public.docs OWNER TO tenants_owner`))
	conn := connArgs(t, srv, srv.AdminUser, srv.Password)
	args := append([]string{"roles", "init", "--database", "tenants", "--app", "tapp", "--readonly", "treport", "--migration", "tmig", "--monitoring", "tmon",
		"--tenant-table", "docs", "--tenant-column", "Tenant Id", "--app-password-file", passwordFile(t, pw),
		"--readonly-password-file", passwordFile(t, roPW), "--migration-password-file", passwordFile(t, migPW)}, conn...)
	code, out, errOut := runCLI(t, append(args, "--format", "yaml")...)
	if code != ExitFindings || !strings.Contains(out, "tenant_isolation:") || !strings.Contains(out, "tenant_isolation_read:") || !strings.Contains(out, "audit_all:") ||
		!strings.Contains(out, "::bigint") || !strings.Contains(out, "as: treport") {
		t.Fatalf("yaml: exit %d\n%s\n%s", code, out, errOut)
	}
	code, out, errOut = runCLI(t, append(args, "--format", "sql")...)
	for _, want := range []string{
		"warning: database tenants: the plan locks out 1 LOGIN role(s) that connect now: with PUBLIC's CONNECT revoked and the database owned by tenants_owner they have no CONNECT of their own or through a role they inherit from: lurker;",
		"role tapp: stays a member of devs",
		"table public.docs: keeps its existing policies audit_all unchanged",
		"no password set: give --monitoring-password-file",
		"the table's owner tenants_owner (and a migration role after SET ROLE) matches no policy, so it sees and changes no rows at all",
	} {
		if !strings.Contains(errOut, want) {
			t.Errorf("plan notes lack %q:\n%s", want, errOut)
		}
	}
	for _, bad := range []string{"REVOKE devs", "DROP POLICY audit_all", "no password set: give --migration-password-file", "rotate"} {
		if strings.Contains(out+errOut, bad) {
			t.Errorf("plan has %q:\n%s\n%s", bad, out, errOut)
		}
	}
	file := filepath.Join(t.TempDir(), "tenants.yaml")
	if code, out, errOut = runCLI(t, append(args, "--apply", "--yes", "--format", "yaml", "-o", file)...); code != ExitOK {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errOut)
	}
	// The RLS test the file carries passes on the server.
	if code, out, errOut = runCLI(t, append([]string{"access", "policy", "test", file}, conn...)...); code != ExitOK {
		t.Errorf("access policy test on the file: exit %d\n%s\n%s", code, out, errOut)
	}
	app := mustAs(t, srv, "tapp", pw, "tenants")
	ro := mustAs(t, srv, "treport", roPW, "tenants")
	for who, rc := range map[string]*pgx.Conn{"tapp": app, "treport": ro} {
		for _, c := range []struct {
			tenant string
			rows   int
		}{{"", 0}, {"1", 2}, {"2", 1}, {"4", 0}, {"", 0}} {
			tx, err := rc.Begin(ctx)
			must(t, err)
			if c.tenant != "" {
				_, err = tx.Exec(ctx, `SELECT set_config('app.tenant_id', $1, true)`, c.tenant)
				must(t, err)
			}
			var n, others int
			must(t, tx.QueryRow(ctx, `SELECT count(*), count(*) FILTER (WHERE "Tenant Id"::text IS DISTINCT FROM $1) FROM public.docs`, c.tenant).Scan(&n, &others))
			if n != c.rows || others != 0 {
				t.Errorf("%s: tenant %q sees %d rows (%d of others), want %d", who, c.tenant, n, others, c.rows)
			}
			tx.Rollback(ctx)
		}
	}
	denied(t, ro, "treport", `UPDATE public.docs SET body = 'x'`)
	mustAs(t, srv, "tmig", migPW, "tenants")
	// What the notes say, the server says: the owner sees no row, lurker
	// lost CONNECT, keeper kept its own, tapp is still in devs, the
	// auditor's policy is there.
	admin := pgtest.Conn(t, srv, "tenants")
	var ownerRows int
	var lurker, keeper, devs, audit bool
	tx, err := admin.Begin(ctx)
	must(t, err)
	_, err = tx.Exec(ctx, `SET LOCAL ROLE tenants_owner`)
	must(t, err)
	must(t, tx.QueryRow(ctx, `SELECT count(*) FROM public.docs`).Scan(&ownerRows))
	must(t, tx.Rollback(ctx))
	must(t, admin.QueryRow(ctx, `SELECT has_database_privilege('lurker', 'tenants', 'CONNECT'), has_database_privilege('keeper', 'tenants', 'CONNECT'),
		pg_has_role('tapp', 'devs', 'MEMBER'), EXISTS (SELECT FROM pg_policy WHERE polname = 'audit_all')`).Scan(&lurker, &keeper, &devs, &audit))
	if ownerRows != 0 || lurker || !keeper || !devs || !audit {
		t.Errorf("owner rows %d, lurker connects %v, keeper connects %v, tapp in devs %v, audit_all kept %v", ownerRows, lurker, keeper, devs, audit)
	}
	tx, err = app.Begin(ctx)
	must(t, err)
	_, err = tx.Exec(ctx, `SELECT set_config('app.tenant_id', '1', true)`)
	must(t, err)
	_, err = tx.Exec(ctx, `INSERT INTO public.docs ("Tenant Id", body) VALUES (2, 'smuggled')`)
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "42501" {
		t.Errorf("tenant 1 writes a row of tenant 2: %v", err)
	}
	tx.Rollback(ctx)
	if code, out, errOut = runCLI(t, append([]string{"roles", "init", "--database", "tenants", "--app", "tapp", "--readonly", "treport", "--migration", "tmig", "--monitoring", "tmon",
		"--tenant-table", "docs", "--tenant-column", "Tenant Id"}, conn...)...); code != ExitOK {
		t.Errorf("second run: exit %d\n%s\n%s", code, out, errOut)
	}
}

// TestRolesInitHostileNames: every name reaches the server quoted.
func TestRolesInitHostileNames(t *testing.T) {
	srv := pgtest.Start(t, localpg.Options{})
	ctx := pgtest.Ctx(t)
	db, app, ro, owner, schema := `we"ird db;`, `Ap"p x`, `rO'; DROP ROLE postgres; --`, `own er\`, `Sch"ema $1`
	must(t, srv.Exec(ctx, `CREATE DATABASE `+quote.Ident(db)))
	must(t, srv.ExecIn(ctx, db, `CREATE SCHEMA `+quote.Ident(schema), `CREATE TABLE `+quote.Qualified(schema, `T"1`)+` (i int)`))
	conn := connArgs(t, srv, srv.AdminUser, srv.Password)
	args := append([]string{"roles", "init", "--database", db, "--app", app, "--readonly", ro, "--owner", owner, "--schema", schema, "--schema", "public"}, conn...)
	if code, out, errOut := runCLI(t, append(args, "--apply", "--yes")...); code != ExitOK {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errOut)
	}
	admin := pgtest.Conn(t, srv, db)
	tbl := quote.Qualified(schema, `T"1`)
	for _, c := range []struct {
		q    string
		args []any
		want bool
	}{
		{`SELECT has_table_privilege($1, $2, 'SELECT,INSERT,UPDATE,DELETE')`, []any{app, tbl}, true},
		{`SELECT has_table_privilege($1, $2, 'SELECT')`, []any{ro, tbl}, true},
		{`SELECT has_table_privilege($1, $2, 'INSERT')`, []any{ro, tbl}, false},
		{`SELECT has_schema_privilege($1, $2, 'USAGE')`, []any{ro, schema}, true},
		{`SELECT pg_get_userbyid(nspowner) = $2 FROM pg_namespace WHERE nspname = $1`, []any{schema, owner}, true},
		{`SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = 'postgres')`, nil, true},
	} {
		var got bool
		if err := admin.QueryRow(ctx, c.q, c.args...).Scan(&got); err != nil || got != c.want {
			t.Errorf("%s %q = %v (%v), want %v", c.q, c.args, got, err, c.want)
		}
	}
	if code, out, errOut := runCLI(t, args...); code != ExitOK {
		t.Errorf("second run: exit %d\n%s\n%s", code, out, errOut)
	}
}

// TestRolesInitMigrationMajors: the migration role's membership on 16
// and 17 is INHERIT FALSE, SET TRUE, and behaves so.
func TestRolesInitMigrationMajors(t *testing.T) {
	for _, major := range []int{16, 17} {
		t.Run(fmt.Sprintf("pg%d", major), func(t *testing.T) {
			t.Parallel()
			if _, err := localpg.FindBinDir(strconv.Itoa(major)); err != nil {
				pgtest.Unavailable(t, err)
			}
			srv := pgtest.StartMajor(t, major, localpg.Options{})
			ctx := pgtest.Ctx(t)
			must(t, srv.Exec(ctx, `CREATE DATABASE appdb`))
			o := template.Options{Database: "appdb", App: "app", ReadOnly: "report", Owner: "app_owner", Migration: "migrator"}
			cfg := srv.ConnConfig("postgres")
			rp, err := planRoles(ctx, cfg, o)
			must(t, err)
			if r, err := rp.apply(ctx, cfg, execute.Options{JournalRoot: t.TempDir()}); err != nil || r.Failed {
				t.Fatalf("apply: %v %+v", err, r)
			}
			admin := pgtest.Conn(t, srv, "appdb")
			var inherit, set, admin_ bool
			must(t, admin.QueryRow(ctx, `SELECT inherit_option, set_option, admin_option FROM pg_auth_members
				WHERE roleid = 'app_owner'::regrole AND member = 'migrator'::regrole`).Scan(&inherit, &set, &admin_))
			if inherit || !set || admin_ {
				t.Errorf("membership inherit=%v set=%v admin=%v, want false, true, false", inherit, set, admin_)
			}
			setPassword(t, srv, "migrator", "mig-pw")
			mig := mustAs(t, srv, "migrator", "mig-pw", "appdb")
			denied(t, mig, "migrator before SET ROLE", `CREATE TABLE public.t_nope (i int)`)
			allowed(t, mig, "migrator", `SET ROLE app_owner`, `CREATE TABLE public.t_mig (i int)`)
			var ok bool
			must(t, admin.QueryRow(ctx, `SELECT has_table_privilege('report', 'public.t_mig', 'SELECT') AND has_table_privilege('app', 'public.t_mig', 'INSERT')
				AND NOT has_table_privilege('migrator', 'public.t_mig', 'SELECT')`).Scan(&ok))
			if !ok {
				t.Error("the migration's table lacks the default privileges, or the migrator inherits the owner's")
			}
			again, err := planRoles(ctx, cfg, o)
			must(t, err)
			if !again.plan.Empty() {
				t.Errorf("second run plans %d step(s)", len(again.plan.Steps))
			}
		})
	}
}

// TestRolesPasswordFiles: what a password file may hold, and that the
// clear text never shows in an error.
func TestRolesPasswordFiles(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		must(t, os.WriteFile(p, []byte(content), 0o600))
		return p
	}
	for _, tc := range []struct {
		name, path, stdin, want string
		ok                      bool
	}{
		{"line", write("a", "s3cret-A\n"), "", "s3cret-A", true},
		{"crlf", write("b", "s3cret-B\r\nsecond line\n"), "", "s3cret-B", true},
		{"no newline", write("c", "s3cret-C"), "", "s3cret-C", true},
		{"stdin", "-", "s3cret-D\n", "s3cret-D", true},
		{"empty", write("e", "\nsecond"), "", "empty", false},
		{"nul", write("f", "s3cret\x00F\n"), "", "NUL", false},
		{"missing", filepath.Join(dir, "nope"), "", "no such file", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := &Env{Stdin: strings.NewReader(tc.stdin), Stdout: &strings.Builder{}, Stderr: &strings.Builder{}}
			v, err := verifierFrom(env, "--app-password-file", tc.path)
			if !tc.ok {
				if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "s3cret") {
					t.Fatalf("error %v, want one naming %q without the password", err, tc.want)
				}
				return
			}
			if err != nil || !scram.IsVerifier(v) {
				t.Fatalf("%q, %v", v, err)
			}
			// The verifier is of exactly the first line.
			if !scram.Matches(v, []byte(tc.want)) || scram.Matches(v, []byte(tc.want+"\n")) {
				t.Fatal("the verifier is not the first line's")
			}
		})
	}
	code, _, errOut := runCLI(t, "roles", "init", "--database", "d", "--app", "a", "--readonly", "r", "--app-password-file", "-", "--readonly-password-file", "-")
	if code != ExitError || !strings.Contains(errOut, "standard input") {
		t.Errorf("both from stdin: exit %d %s", code, errOut)
	}
	loose := write("loose", "s3cret-G\n")
	must(t, os.Chmod(loose, 0o644))
	env := &Env{Stdin: strings.NewReader(""), Stdout: &strings.Builder{}, Stderr: &strings.Builder{}}
	if _, err := verifierFrom(env, "--app-password-file", loose); err != nil || !strings.Contains(env.Stderr.(*strings.Builder).String(), "readable by others") {
		t.Errorf("a world-readable file is not warned about: %v %q", err, env.Stderr)
	}
}
