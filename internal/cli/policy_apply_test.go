package cli

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/pgtest"
)

const paFile = `version: 1
mode: adopt
roles:
  pa_app: {login: true, member_of: [pa_rw]}
  pa_rw: {}
databases:
  pa_db:
    schemas:
      s:
        grants: {pa_rw: [USAGE], pa_app: []}
        tables:
          "*": {grants: {pa_rw: [SELECT, INSERT], pa_app: []}}
`

// The apply and rollback commands end to end: --check changes nothing,
// no terminal and no --yes is refused, --yes applies and verifies, a
// second apply has nothing to do, rollback puts the state back, twice
// is refused.
func TestPolicyApplyCommand(t *testing.T) {
	srv := pgtest.Shared(t)
	ctx := pgtest.Ctx(t)
	if err := srv.Exec(ctx, `CREATE ROLE pa_app LOGIN`, `CREATE DATABASE pa_db`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Exec(ctx, `DROP DATABASE IF EXISTS pa_db`, `DROP ROLE IF EXISTS pa_app`, `DROP ROLE IF EXISTS pa_rw`)
	})
	if err := srv.ExecIn(ctx, "pa_db", `CREATE SCHEMA s`, `CREATE TABLE s.t (id int)`, `GRANT USAGE ON SCHEMA s TO pa_app`, `GRANT SELECT ON s.t TO pa_app`); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	file, journal := filepath.Join(dir, "policy.yaml"), filepath.Join(dir, "journal")
	if err := os.WriteFile(file, []byte(paFile), 0o600); err != nil {
		t.Fatal(err)
	}
	conn := connArgs(t, srv, srv.AdminUser, srv.Password)
	apply := append([]string{"access", "policy", "apply", file, "--journal-dir", journal}, conn...)
	holds := func(q string) bool {
		c := pgtest.Conn(t, srv, "pa_db")
		var ok bool
		if err := c.QueryRow(ctx, q).Scan(&ok); err != nil {
			t.Fatal(err)
		}
		return ok
	}
	const rwExists = `SELECT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pa_rw')`

	code, out, errs := runCLIInput(t, "", append(apply, "--check")...)
	if code != ExitOK || !strings.Contains(out, "check (everything rolled back)") || !strings.Contains(out, "CREATE ROLE pa_rw") {
		t.Fatalf("--check: exit %d\n%s\n%s", code, out, errs)
	}
	if holds(rwExists) {
		t.Fatal("--check left a role behind")
	}
	if code, _, errs := runCLIInput(t, "", apply...); code != ExitError || !strings.Contains(errs, "give --yes") {
		t.Fatalf("without --yes or a terminal: exit %d: %s", code, errs)
	}
	code, out, errs = runCLIInput(t, "", append(apply, "--yes")...)
	m := regexp.MustCompile(`plan (\S+) applied and verified`).FindStringSubmatch(out)
	if code != ExitOK || m == nil {
		t.Fatalf("--yes: exit %d\n%s\n%s", code, out, errs)
	}
	if !holds(`SELECT has_table_privilege('pa_app', 's.t', 'INSERT') AND pg_has_role('pa_app', 'pa_rw', 'MEMBER')
		AND NOT EXISTS (SELECT FROM pg_class WHERE relname = 't' AND relacl::text LIKE '%pa_app=%')`) {
		t.Fatal("the server does not hold the file")
	}
	if code, _, errs := runCLIInput(t, "", append(apply, "--yes")...); code != ExitOK || !strings.Contains(errs, "nothing to apply") {
		t.Fatalf("second apply: exit %d: %s", code, errs)
	}
	rollback := append([]string{"access", "policy", "rollback", m[1], "--journal-dir", journal}, conn...)
	if code, _, errs := runCLIInput(t, "", rollback...); code != ExitError || !strings.Contains(errs, "give --yes") {
		t.Fatalf("rollback without --yes or a terminal: exit %d: %s", code, errs)
	}
	if !holds(rwExists) {
		t.Fatal("a refused rollback changed the server")
	}
	rollback = append(rollback, "--yes")
	if code, out, errs := runCLIInput(t, "", rollback...); code != ExitOK || !strings.Contains(out, "rolled back and verified") ||
		!strings.Contains(out, "restoring the state plan "+m[1]+" started from:") || !strings.Contains(out, "REVOKE pa_rw FROM pa_app;") ||
		!strings.Contains(out, "DROP ROLE pa_rw;") || strings.Contains(out, "then: role") { // it owns nothing: dropped in the first pass
		t.Fatalf("rollback: exit %d\n%s\n%s", code, out, errs)
	}
	if holds(rwExists) || !holds(`SELECT has_table_privilege('pa_app', 's.t', 'SELECT') AND NOT has_table_privilege('pa_app', 's.t', 'INSERT')`) {
		t.Fatal("the rollback did not put the state back")
	}
	if code, _, errs := runCLI(t, rollback...); code != ExitError || !strings.Contains(errs, "already rolled back") {
		t.Fatalf("second rollback: exit %d: %s", code, errs)
	}
	// A role that may not create roles: the check runs the plan and
	// reports what the server refused, exit 1.
	if err := srv.Exec(ctx, `CREATE ROLE pa_lim LOGIN PASSWORD 'pa-lim-test-secret'`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Exec(ctx, `DROP ROLE IF EXISTS pa_lim`) })
	limited := append([]string{"access", "policy", "apply", file, "--check"}, connArgs(t, srv, "pa_lim", "pa-lim-test-secret")...)
	if code, out, errs := runCLIInput(t, "", limited...); code != ExitFindings || !strings.Contains(out, "ERROR: step 1: in database") || !strings.Contains(out, "42501") {
		t.Fatalf("check as a role without CREATEROLE: exit %d\n%s\n%s", code, out, errs)
	}
	conn = connArgs(t, srv, srv.AdminUser, srv.Password)
	for _, bad := range [][]string{{"--check", "--yes"}, {"--lock-timeout", "0s", "--check"}, {"--mode", "sloppy", "--check"}} {
		if code, _, errs := runCLIInput(t, "", append(apply, bad...)...); code != ExitError || !strings.Contains(errs, "see '") {
			t.Errorf("%v: exit %d: %s", bad, code, errs)
		}
	}
}
