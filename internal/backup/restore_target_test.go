package backup

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/agekeys"
	"github.com/pgaegis/pgaegis/internal/conninfo"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgclient"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// targetOf connects to srv's database db ("" = libpq's default) as its
// admin, the password handed over as pgclient does for the CLI.
func targetOf(srv *localpg.Server, db string) pgclient.Target {
	return pgclient.Target{
		Flags:  conninfo.Flags{Host: "127.0.0.1", Port: strconv.Itoa(srv.Port), User: srv.AdminUser, DSN: db},
		Config: srv.ConnConfig(db),
	}
}

// canLogin is a fresh password login as user.
func canLogin(t *testing.T, srv *localpg.Server, user, password string) error {
	t.Helper()
	cfg := srv.ConnConfig("postgres")
	cfg.User, cfg.Password = user, password
	c, err := pgx.ConnectConfig(pgtest.Ctx(t), cfg)
	if err != nil {
		return err
	}
	return c.Close(pgtest.Ctx(t))
}

func rows(t *testing.T, srv *localpg.Server, db, table string) int64 {
	t.Helper()
	return count(t, pgtest.Conn(t, srv, db), "public", table)
}

func hasDatabase(t *testing.T, srv *localpg.Server, db string) bool {
	t.Helper()
	var n int
	if err := pgtest.Conn(t, srv, "postgres").QueryRow(pgtest.Ctx(t), "select count(*) from pg_database where datname = $1", db).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}

// TestRestoreTargets restores one --all --with-passwords set into fresh
// servers: the connecting role keeps its password, an --all set restores
// with --create (postgres in place), a database the target has already
// is refused before anything is written, and one database goes into
// another database's name.
// ORACLE: fresh password logins on the targets, and their catalogs and
// count(*), after the real psql and pg_restore ran.
func TestRestoreTargets(t *testing.T) {
	e := newEnv(t)
	ctx := pgtest.Ctx(t)
	const oddAdmin = "Ad min-X" // the second target's admin: fmtId quotes it
	e.exec(t, "postgres",
		fmt.Sprintf("create role %s login superuser password 'source-admin-pw'", pgx.Identifier{oddAdmin}.Sanitize()),
		"create role app_login login password 'app-login-pw'",
		"create table public.marker (x int)", "insert into public.marker values (1)",
		"create database hr", "create database app")
	e.exec(t, "hr", "create table public.staff (id int)", "insert into public.staff select generate_series(1, 10)")
	e.exec(t, "app", "create table public.t (id int)", "insert into public.t select generate_series(1, 7)")
	ids, err := agekeys.ParseIdentitiesFile(e.identity)
	if err != nil {
		t.Fatal(err)
	}
	res, err := Backup(ctx, e.options("postgres", func(o *Options) { o.All = true; o.WithPasswords = true }))
	if err != nil {
		t.Fatalf("Backup --all --with-passwords: %v", err)
	}
	set := res.Dir
	var said []string
	opts := func(target pgclient.Target, mod func(*RestoreOptions)) RestoreOptions {
		said = nil
		o := RestoreOptions{Identities: ids, Target: target, Say: func(f string, a ...any) { said = append(said, fmt.Sprintf(f, a...)) }}
		mod(&o)
		return o
	}
	noVerifier := func(t *testing.T) {
		for _, l := range said {
			if strings.Contains(l, "SCRAM-SHA-256$") || strings.Contains(l, "md5") {
				t.Fatalf("a verifier in the output: %q", l)
			}
		}
	}

	t.Run("GlobalsKeepTheConnectingRolesPassword", func(t *testing.T) {
		dst := pgtest.Start(t, localpg.Options{})
		err := Restore(ctx, set, opts(targetOf(dst, "postgres"), func(o *RestoreOptions) { o.Globals, o.Create = true, true }))
		if err != nil {
			t.Fatalf("Restore --globals --create of an --all set into a fresh server: %v\n%s", err, strings.Join(said, "\n"))
		}
		noVerifier(t)
		if err := canLogin(t, dst, "postgres", dst.Password); err != nil {
			t.Fatalf("the target's admin lost its password: %v", err)
		}
		if err := canLogin(t, dst, "app_login", "app-login-pw"); err != nil {
			t.Fatalf("another role's verifier was not restored: %v", err)
		}
		if n := rows(t, dst, "hr", "staff"); n != 10 {
			t.Fatalf("hr.staff: %d rows", n)
		}
		if n := rows(t, dst, "postgres", "marker"); n != 1 {
			t.Fatalf("postgres (in place): marker has %d rows", n)
		}
		if !strings.Contains(strings.Join(said, "\n"), `kept the target's password and its login, superuser, connection limit and expiry attributes for role "postgres"`) {
			t.Fatalf("output does not say the password was kept:\n%s", strings.Join(said, "\n"))
		}
	})

	t.Run("QuotedConnectingRole", func(t *testing.T) {
		dst := pgtest.Start(t, localpg.Options{AdminUser: oddAdmin})
		err := Restore(ctx, set, opts(targetOf(dst, "postgres"), func(o *RestoreOptions) {
			o.Globals, o.Create, o.Databases = true, true, []string{"hr"}
		}))
		if err != nil {
			t.Fatalf("Restore: %v\n%s", err, strings.Join(said, "\n"))
		}
		noVerifier(t)
		if err := canLogin(t, dst, oddAdmin, dst.Password); err != nil {
			t.Fatalf("the target's admin %q lost its password: %v", oddAdmin, err)
		}
		// The source's postgres is just another role here: its verifier
		// is restored.
		if err := canLogin(t, dst, "postgres", e.srv.Password); err != nil {
			t.Fatalf("postgres did not get the set's verifier: %v", err)
		}
	})

	dst := pgtest.Start(t, localpg.Options{})
	if err := dst.Exec(ctx, "create database app"); err != nil {
		t.Fatal(err)
	}
	t.Run("ExistingDatabaseRefusedFirst", func(t *testing.T) {
		err := Restore(ctx, set, opts(targetOf(dst, "postgres"), func(o *RestoreOptions) { o.Create = true }))
		if err == nil || !strings.Contains(err.Error(), `"app" already exists`) || !strings.Contains(err.Error(), "--clean") || !strings.Contains(err.Error(), "--database") {
			t.Fatalf("Restore --create over an existing app: %v", err)
		}
		if hasDatabase(t, dst, "hr") || len(said) > 0 {
			t.Fatalf("something was restored before the refusal (hr exists: %v; said %q)", hasDatabase(t, dst, "hr"), said)
		}
		var n int
		if err := pgtest.Conn(t, dst, "postgres").QueryRow(ctx, "select count(*) from pg_tables where tablename = 'marker'").Scan(&n); err != nil || n != 0 {
			t.Fatalf("postgres was written: %d %v", n, err)
		}
		// --clean drops and creates it again.
		if err := Restore(ctx, set, opts(targetOf(dst, "postgres"), func(o *RestoreOptions) { o.Create, o.Clean = true, true })); err != nil {
			t.Fatalf("Restore --create --clean: %v", err)
		}
		if n := rows(t, dst, "app", "t"); n != 7 {
			t.Fatalf("app.t: %d rows", n)
		}
	})

	t.Run("IntoAnotherDatabase", func(t *testing.T) {
		if err := dst.Exec(ctx, "create database hr_copy"); err != nil {
			t.Fatal(err)
		}
		if err := dst.ExecIn(ctx, "hr", "insert into public.staff values (11)"); err != nil {
			t.Fatal(err)
		}
		err := Restore(ctx, set, opts(targetOf(dst, "hr_copy"), func(o *RestoreOptions) { o.Databases, o.Clean = []string{"hr"}, true }))
		if err != nil {
			t.Fatalf("Restore --database hr -d hr_copy: %v", err)
		}
		if n := rows(t, dst, "hr_copy", "staff"); n != 10 {
			t.Fatalf("hr_copy.staff: %d rows, want the set's 10", n)
		}
		if n := rows(t, dst, "hr", "staff"); n != 11 {
			t.Fatalf("the live hr was overwritten: %d rows, want 11", n)
		}
		want := fmt.Sprintf(`restoring "hr" (from the set) into "hr_copy" on 127.0.0.1:%d`, dst.Port)
		if len(said) == 0 || said[0] != want {
			t.Fatalf("first line %q, want %q", said, want)
		}
	})

	t.Run("SeveralWithoutCreate", func(t *testing.T) {
		err := Restore(ctx, set, opts(targetOf(dst, "hr_copy"), func(o *RestoreOptions) {}))
		if err == nil || !strings.Contains(err.Error(), "give --create") || len(said) > 0 {
			t.Fatalf("an --all set without --create: %v %q", err, said)
		}
	})

	t.Run("CreateWhileConnectedToIt", func(t *testing.T) {
		err := Restore(ctx, set, opts(targetOf(dst, "hr"), func(o *RestoreOptions) { o.Databases, o.Create, o.Clean = []string{"hr"}, true, true }))
		if err == nil || !strings.Contains(err.Error(), `-d names "hr"`) || len(said) > 0 {
			t.Fatalf("--create --clean of the -d database: %v %q", err, said)
		}
		if n := rows(t, dst, "hr", "staff"); n != 11 {
			t.Fatalf("hr was written: %d rows", n)
		}
	})
}
