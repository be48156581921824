package cli

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// As a CREATEROLE non-superuser (pg_authid unreadable): a verifier on a
// role the plan creates is set and the apply verifies; the second plan
// is empty (the password is not compared, and a note says so), and an
// existing role's password is never overwritten.
func TestPolicyApplyVerifierAsNonSuperuser(t *testing.T) {
	srv := pgtest.StartMajor(t, 17, localpg.Options{}) // 16+: the creator is the new role's ADMIN member
	ctx := pgtest.Ctx(t)
	if err := srv.Exec(ctx, `SET password_encryption = 'scram-sha-256'`,
		`CREATE ROLE pv_admin LOGIN CREATEROLE CREATEDB PASSWORD 'pv-admin-test-secret'`,
		`CREATE ROLE pv_tmp PASSWORD 'pv-only-in-a-test'`, `CREATE ROLE pv_old LOGIN PASSWORD 'pv-old-test-secret'`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Exec(ctx, `DROP ROLE IF EXISTS pv_new`, `DROP ROLE IF EXISTS pv_old`, `DROP ROLE IF EXISTS pv_tmp`, `DROP ROLE IF EXISTS pv_admin`)
	})
	c := pgtest.Conn(t, srv, "postgres")
	var v, oldBefore string
	if err := c.QueryRow(ctx, `SELECT (SELECT rolpassword FROM pg_authid WHERE rolname = 'pv_tmp'), (SELECT rolpassword FROM pg_authid WHERE rolname = 'pv_old')`).Scan(&v, &oldBefore); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "policy.yaml")
	body := "version: 1\nmode: additive\nroles:\n  pv_new: {login: true, password: '" + v + "'}\n  pv_old: {login: true, password: '" + v + "'}\n"
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	conn := connArgs(t, srv, "pv_admin", "pv-admin-test-secret")
	journal := t.TempDir()
	code, out, errs := runCLIInput(t, "", append([]string{"access", "policy", "apply", file, "--yes", "--journal-dir", journal}, conn...)...)
	m := regexp.MustCompile(`plan (\S+) applied and verified`).FindStringSubmatch(out)
	if code != ExitOK || m == nil {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errs)
	}
	if !strings.Contains(out, "role pv_old: password not compared") || strings.Contains(out, "ALTER ROLE pv_old PASSWORD") {
		t.Fatalf("the existing role's password is planned, or no note says why not:\n%s", out)
	}
	var newPw, oldAfter string
	if err := c.QueryRow(ctx, `SELECT (SELECT rolpassword FROM pg_authid WHERE rolname = 'pv_new'), (SELECT rolpassword FROM pg_authid WHERE rolname = 'pv_old')`).Scan(&newPw, &oldAfter); err != nil {
		t.Fatal(err)
	}
	if newPw != v || oldAfter != oldBefore {
		t.Fatal("the new role does not have the file's verifier, or the existing role's password changed")
	}
	// A real login with the new role's password.
	lc := srv.ConnConfig("postgres")
	lc.User, lc.Password = "pv_new", "pv-only-in-a-test"
	lconn, err := pgx.ConnectConfig(ctx, lc)
	if err != nil {
		t.Fatalf("login as the new role: %v", err)
	}
	lconn.Close(context.Background())
	code, out, errs = runCLIInput(t, "", append([]string{"access", "policy", "plan", file}, conn...)...)
	if code != ExitOK || strings.Contains(out, "PASSWORD") {
		t.Fatalf("second plan: exit %d\n%s\n%s", code, out, errs)
	}
	if strings.Contains(out+errs, "SCRAM-SHA-256$") {
		t.Fatal("a verifier is in the output")
	}
	// A database owned by a role the plan creates: on 16+ the creator has
	// ADMIN on it but cannot SET ROLE to it, which CREATE DATABASE ...
	// OWNER needs. The plan says so, with the GRANT that makes it work;
	// the server is asked whether that is so.
	owned := filepath.Join(t.TempDir(), "owned.yaml")
	if err := os.WriteFile(owned, []byte("version: 1\nmode: additive\nroles:\n  pv_own: {}\ndatabases:\n  pv_newdb: {owner: pv_own}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runCLIInput(t, "", append([]string{"access", "policy", "plan", owned}, conn...)...)
	if code != ExitFindings || !strings.Contains(out, "GRANT pv_own TO pv_admin WITH SET TRUE") {
		t.Fatalf("plan with a new owner: exit %d\n%s\n%s", code, out, errs)
	}
	ac := srv.ConnConfig("postgres")
	ac.User, ac.Password = "pv_admin", "pv-admin-test-secret"
	aconn, err := pgx.ConnectConfig(ctx, ac)
	if err != nil {
		t.Fatal(err)
	}
	defer aconn.Close(context.Background())
	t.Cleanup(func() { srv.Exec(ctx, `DROP DATABASE IF EXISTS pv_newdb`, `DROP ROLE IF EXISTS pv_own`) })
	if _, err := aconn.Exec(ctx, `CREATE ROLE pv_own`); err != nil {
		t.Fatal(err)
	}
	if _, err := aconn.Exec(ctx, `CREATE DATABASE pv_newdb OWNER pv_own`); err == nil {
		t.Fatal("the server let CREATE DATABASE ... OWNER run without SET on the owner: the note is wrong")
	}
	if _, err := aconn.Exec(ctx, `GRANT pv_own TO pv_admin WITH SET TRUE`); err != nil {
		t.Fatal(err)
	}
	if _, err := aconn.Exec(ctx, `CREATE DATABASE pv_newdb OWNER pv_own`); err != nil {
		t.Fatalf("with the GRANT the note gives, CREATE DATABASE still fails: %v", err)
	}

	// The rollback drops the role the apply created, and says so; the
	// role it runs as (on 16+ the new role's automatic ADMIN member) is
	// never announced as dropped.
	code, out, errs = runCLIInput(t, "", append([]string{"access", "policy", "rollback", m[1], "--yes", "--journal-dir", journal}, conn...)...)
	if code != ExitOK || !strings.Contains(out, "rolled back and verified") || strings.Contains(out, "then: role pv_admin") {
		t.Fatalf("rollback: exit %d\n%s\n%s", code, out, errs)
	}
	var gone bool
	if err := c.QueryRow(ctx, `SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pv_new') AND EXISTS (SELECT FROM pg_roles WHERE rolname = 'pv_admin')`).Scan(&gone); err != nil || !gone {
		t.Fatalf("after the rollback pv_new is still there or pv_admin is gone (%v)", err)
	}
}

// A database the file names whose read hits a lock timeout (a table
// locked ACCESS EXCLUSIVE): plan shows the warning naming the lock and
// its holder; apply refuses before anything changes.
func TestPolicyApplyRefusesUnreadableDatabase(t *testing.T) {
	srv := pgtest.Shared(t)
	ctx := pgtest.Ctx(t)
	if err := srv.Exec(ctx, `CREATE DATABASE pu_db`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Exec(ctx, `DROP DATABASE IF EXISTS pu_db WITH (FORCE)`, `DROP ROLE IF EXISTS pu_new`) })
	if err := srv.ExecIn(ctx, "pu_db", `CREATE TABLE t (id int)`, `CREATE POLICY p ON t USING (id > 0)`); err != nil {
		t.Fatal(err)
	}
	lc := srv.ConnConfig("pu_db")
	lc.RuntimeParams["application_name"] = "pu-locker"
	locker, err := pgx.ConnectConfig(ctx, lc)
	if err != nil {
		t.Fatal(err)
	}
	defer locker.Close(context.Background())
	tx, err := locker.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, `LOCK TABLE t IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "policy.yaml")
	body := "version: 1\nroles:\n  pu_new: {}\ndatabases:\n  pu_db:\n    schemas:\n      public:\n        tables:\n          t: {grants: {pu_new: [SELECT]}}\n"
	if err := os.WriteFile(file, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	conn := connArgs(t, srv, srv.AdminUser, srv.Password)
	code, out, errs := runCLIInput(t, "", append([]string{"access", "policy", "apply", file, "--mode", "additive", "--yes", "--journal-dir", t.TempDir()}, conn...)...)
	if code != ExitError || !strings.Contains(errs, "refusing to apply, nothing changed") || !strings.Contains(errs, "a lock timeout") || !strings.Contains(out, "held by pid") ||
		!strings.Contains(errs, "application 'pu-locker'") || !strings.Contains(out, "could not be read") {
		t.Fatalf("apply: exit %d\n%s\n%s", code, out, errs)
	}
	var exists bool
	if err := pgtest.Conn(t, srv, "postgres").QueryRow(ctx, `SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pu_new')`).Scan(&exists); err != nil || exists {
		t.Fatalf("the refused apply created a role (%v)", err)
	}
}
