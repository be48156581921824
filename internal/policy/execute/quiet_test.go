package execute

import (
	"os"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/policy"
)

// With every statement logged (log_statement, log_min_duration_statement,
// pgaudit), an apply, a check and a failing apply that set a password
// leave no verifier in the server log; a non-superuser who may not turn
// logging off is warned, with the GRANT that would let it.
func TestPasswordStatementsStayOutOfTheLog(t *testing.T) {
	t.Parallel()
	srv := pgtest.Start(t, localpg.Options{Version: "15", Conf: []string{
		"shared_preload_libraries = 'pgaudit'", "log_statement = 'all'", "log_min_duration_statement = 0",
		"pgaudit.log = 'all'", "log_min_error_statement = 'error'",
	}})
	c := pgtest.Conn(t, srv, "postgres")
	var loaded *string
	if err := c.QueryRow(pgtest.Ctx(t), "SELECT current_setting('pgaudit.log', true)").Scan(&loaded); err != nil || loaded == nil {
		t.Skipf("pgaudit is not loaded on this server (%v)", err)
	}
	v := verifier(t, srv)
	exec(t, srv, "postgres", "SET password_encryption = 'scram-sha-256'", "CREATE ROLE ql_r LOGIN PASSWORD 'ql-r-only-in-a-test'")
	// verifier itself read rolpassword: start the grep after it.
	logStart := fileSize(t, srv.LogFile)
	cfg := srv.ConnConfig("postgres")
	ctx := pgtest.Ctx(t)
	before := &policy.File{Version: 1, Roles: policy.Roles{}}
	o := Options{JournalRoot: t.TempDir()}

	if _, err := Apply(ctx, cfg, newPlan(sqlStep("1", "postgres", true, "CREATE ROLE ql_a LOGIN", "ALTER ROLE ql_a PASSWORD '"+v+"'")), before, o); err != nil {
		t.Fatalf("apply: %v", err)
	}
	co := o
	co.Check = true
	if res, err := Apply(ctx, cfg, newPlan(sqlStep("1", "postgres", true, "CREATE ROLE ql_b LOGIN", "ALTER ROLE ql_b PASSWORD '"+v+"'")), before, co); err != nil || len(res.CheckErrors) > 0 {
		t.Fatalf("check: %v %v", err, res.CheckErrors)
	}
	// Fails at the password statement itself: the error must not log it.
	if _, err := Apply(ctx, cfg, newPlan(sqlStep("1", "postgres", true, "CREATE ROLE ql_c LOGIN", "ALTER ROLE ql_missing PASSWORD '"+v+"'")), before, o); err == nil {
		t.Fatal("the failing apply succeeded")
	}
	if _, err := Apply(ctx, cfg, newPlan(sqlStep("1", "postgres", true, "CREATE ROLE ql_d LOGIN", "ALTER ROLE ql_d PASSWORD '"+v+"'", "ALTER ROLE ql_missing LOGIN")), before, o); err == nil {
		t.Fatal("the failing apply succeeded")
	}
	// A restore that sets the dropped role's journalled verifier again.
	yesT := true
	res, err := Apply(ctx, cfg, newPlan(sqlStep("1", "postgres", true, "DROP ROLE ql_r"), sqlStep("2", "postgres", true, "ALTER ROLE ql_missing LOGIN")),
		&policy.File{Version: 1, Roles: policy.Roles{"ql_r": {Login: &yesT}}}, o)
	if err == nil || !res.RolledBack {
		t.Fatalf("the failing apply was not restored: %v %+v", err, res)
	}
	if !yes(t, c, `SELECT EXISTS (SELECT FROM pg_authid WHERE rolname = 'ql_r' AND starts_with(rolpassword, 'SCRAM-SHA-256' || chr(36)))`) {
		t.Fatal("the restore did not set the verifier again")
	}
	log := readFrom(t, srv.LogFile, logStart)
	if !strings.Contains(log, "ql_missing") {
		t.Fatalf("the server log does not show the failing applies, so it proves nothing:\n%s", log)
	}
	if strings.Contains(log, "SCRAM-SHA-256$") {
		for _, l := range strings.Split(log, "\n") {
			if i := strings.Index(l, "SCRAM-SHA-256$"); i >= 0 {
				t.Log(l[:i])
			}
		}
		t.Fatalf("a verifier reached the server log (%d time(s))", strings.Count(log, "SCRAM-SHA-256$"))
	}

	// A CREATEROLE non-superuser may not change these settings: warned.
	exec(t, srv, "postgres", "CREATE ROLE ql_admin LOGIN CREATEROLE PASSWORD 'ql-admin-secret'")
	ac := cfg.Copy()
	ac.User, ac.Password = "ql_admin", "ql-admin-secret"
	res, err = Apply(ctx, ac, newPlan(sqlStep("1", "postgres", true, "CREATE ROLE ql_e LOGIN", "ALTER ROLE ql_e PASSWORD '"+v+"'")), before, o)
	if err != nil {
		t.Fatalf("apply as a non-superuser: %v", err)
	}
	all := strings.Join(res.Notes, "\n")
	for _, want := range []string{"log_statement is all", "GRANT SET ON PARAMETER log_statement TO ql_admin", "or apply as a superuser", "pgaudit.log", "log_min_error_statement", "track_activities is on"} {
		if !strings.Contains(all, want) {
			t.Errorf("the warnings do not say %q:\n%s", want, all)
		}
	}
	if strings.Contains(all, "SCRAM-SHA-256$") {
		t.Error("a warning holds the verifier")
	}
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

func readFrom(t *testing.T, path string, off int64) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b[off:])
}
