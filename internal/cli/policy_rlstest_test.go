package cli

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// access policy test: exit 0 when every test passes, 1 when one fails
// (the text names table, test, role, settings and the failure), 2 for a
// file whose expression would escape its wrapping.
func TestPolicyTestCommand(t *testing.T) {
	srv := pgtest.Shared(t)
	ctx := context.Background()
	// The shared server's other tests audit it: leave nothing behind.
	t.Cleanup(func() {
		if err := srv.Exec(ctx, "DROP SCHEMA IF EXISTS rlscli CASCADE", "DROP ROLE IF EXISTS rls_app"); err != nil {
			t.Error(err)
		}
	})
	if err := srv.Exec(ctx,
		"CREATE ROLE rls_app",
		"CREATE SCHEMA rlscli",
		"CREATE TABLE rlscli.t (id int PRIMARY KEY, tenant_id int)",
		"INSERT INTO rlscli.t SELECT g, g % 4 FROM generate_series(1, 40) g",
		"GRANT USAGE ON SCHEMA rlscli TO rls_app",
		"GRANT SELECT, INSERT ON rlscli.t TO rls_app",
		"ALTER TABLE rlscli.t ENABLE ROW LEVEL SECURITY",
		"CREATE POLICY tenant ON rlscli.t USING (tenant_id = current_setting('app.tenant_id')::int)",
	); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	write := func(name, tests string) string {
		p := filepath.Join(dir, name)
		body := `version: 1
databases:
  postgres:
    schemas:
      rlscli:
        rls:
          t:
            enabled: true
            policies:
              tenant: {using: "tenant_id = current_setting('app.tenant_id')::int"}
            tests:
` + tests
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	pass := write("pass.yaml", `              - {name: tenant 2, as: rls_app, set: {app.tenant_id: "2"}, sees: "tenant_id = 2",
                 insert: [{values: {id: "100", tenant_id: "3"}, expect: denied}]}
`)
	fail := write("fail.yaml", `              - {name: tenant 2, as: rls_app, set: {app.tenant_id: "2"}, sees: "tenant_id IN (2, 3)",
                 insert: [{values: {id: "100", tenant_id: "2"}, expect: denied}]}
`)
	evil := write("evil.yaml", `              - {as: rls_app, sees: "true); DROP TABLE rlscli.t; --"}
`)
	// rls_app has no UPDATE: the server refuses by privileges, which
	// proves nothing about the policy.
	privs := write("privs.yaml", `              - {name: no update, as: rls_app, set: {app.tenant_id: "2"}, sees: "tenant_id = 2",
                 update: [{values: {tenant_id: "3"}, where: "id = 2", expect: denied}, {values: {tenant_id: "2"}, where: "id = 2", expect: allowed}]}
`)
	cannot := write("cannot.yaml", `              - {name: ghost, as: rls_no_such_role, sees: "true"}
              - {name: tenant 2, as: rls_app, set: {app.tenant_id: "2"}, sees: "tenant_id = 2"}
`)
	conn := connArgs(t, srv, srv.AdminUser, srv.Password)
	code, out, errs := runCLI(t, append([]string{"access", "policy", "test", privs}, conn...)...)
	if code != ExitFindings || !strings.Contains(out, "UPDATE #1 is inconclusive (expected denied): denied by privileges, not by row-level security: the test proves nothing about the policy (ERROR: permission denied for table t") ||
		!strings.Contains(out, "UPDATE #2 is inconclusive (expected allowed): denied by privileges") {
		t.Errorf("privileges: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = runCLI(t, append([]string{"access", "policy", "test", cannot}, conn...)...)
	if code != ExitError || !strings.Contains(out, "ERROR postgres.rlscli.t test ghost: as rls_no_such_role\n") ||
		!strings.Contains(out, `error: SET ROLE rls_no_such_role: ERROR: role "rls_no_such_role" does not exist`) ||
		!strings.Contains(out, "PASS postgres.rlscli.t test tenant 2") || !strings.Contains(out, "1 of 2 tests passed, 1 could not run") {
		t.Errorf("a test that cannot run: exit %d\n%s%s", code, out, errs)
	}
	noTable := filepath.Join(dir, "notable.yaml")
	if err := os.WriteFile(noTable, []byte("version: 1\ndatabases:\n  postgres:\n    schemas:\n      rlscli:\n        rls:\n          nope:\n            enabled: true\n            tests: [{name: gone, as: rls_app, sees: \"true\"}]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	code, out, errs = runCLI(t, append([]string{"access", "policy", "test", noTable}, conn...)...)
	if code != ExitError || !strings.Contains(out, "ERROR postgres.rlscli.nope test gone") || !strings.Contains(out, "error: table rlscli.nope does not exist") || strings.Contains(out, "rows expected") {
		t.Errorf("a missing table: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = runCLI(t, append([]string{"access", "policy", "test", pass}, conn...)...)
	if code != ExitOK || !strings.Contains(out, "PASS postgres.rlscli.t test tenant 2: as rls_app with app.tenant_id=2 (10 rows expected, 10 visible)") ||
		!strings.Contains(out, `warning: table postgres.rlscli.t: policy "tenant" USING: current_setting('app.tenant_id') is called without missing_ok`) {
		t.Errorf("pass: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = runCLI(t, append([]string{"access", "policy", "test", fail}, conn...)...)
	if code != ExitFindings || !strings.Contains(out, "FAIL postgres.rlscli.t test tenant 2") ||
		!strings.Contains(out, "hidden: 10 rows matching sees are not visible: id=11, id=15, id=19, id=23, id=27") ||
		!strings.Contains(out, "INSERT #1 passed but should be denied") {
		t.Errorf("fail: exit %d\n%s%s", code, out, errs)
	}
	code, out, errs = runCLI(t, append([]string{"access", "policy", "test", fail, "--format", "json"}, conn...)...)
	var doc struct {
		Failed int `json:"failed"`
		Tests  []struct {
			Hidden int `json:"hidden"`
		} `json:"tests"`
	}
	if err := json.Unmarshal([]byte(out), &doc); code != ExitFindings || err != nil || doc.Failed != 1 || doc.Tests[0].Hidden != 10 {
		t.Errorf("json: exit %d %v\n%s%s", code, err, out, errs)
	}
	code, out, errs = runCLI(t, append([]string{"access", "policy", "test", evil}, conn...)...)
	if code != ExitError || !strings.Contains(errs, "table postgres.rlscli.t, test #1: sees: unbalanced") {
		t.Errorf("evil: exit %d\n%s%s", code, out, errs)
	}
	for _, s := range []string{out, errs} {
		if strings.Contains(s, srv.Password) {
			t.Error("the password leaked into the output")
		}
	}
}
