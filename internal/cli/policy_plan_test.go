package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// TestPolicyPlanCLI: plan's formats and exit codes, the verifier masked
// in text, check on the same engine. The roles are new ones on the
// shared server, in adopt mode, so nothing else there is touched.
func TestPolicyPlanCLI(t *testing.T) {
	srv := pgtest.Shared(t)
	args := connArgs(t, srv, srv.AdminUser, srv.Password)
	verifier := "SCRAM-SHA-256$4096:c2FsdHNhbHQ=$c3RvcmVka2V5:c2VydmVya2V5"
	file := writeFile(t, "p.yaml", `version: 1
mode: adopt
roles:
  pp_owner: {}
  pp_app: {login: true, password: `+verifier+`, member_of: [pp_owner]}
databases:
  pp_db: {owner: pp_owner, grants: {PUBLIC: [], pp_app: [CONNECT]}}
`)
	code, out, errs := runCLI(t, append([]string{"access", "policy", "plan", file}, args...)...)
	if code != ExitFindings || !strings.Contains(out, "sets a password verifier") || strings.Contains(out, verifier) ||
		!strings.Contains(out, "CREATE DATABASE pp_db OWNER pp_owner") || !strings.Contains(out, "notes:") {
		t.Fatalf("text plan: exit %d (%s)\n%s", code, errs, out)
	}
	code, out, _ = runCLI(t, append([]string{"access", "policy", "plan", file, "--format", "json"}, args...)...)
	var res struct {
		Plan struct {
			Steps []struct {
				SQL        []string `json:"sql"`
				Autocommit bool     `json:"autocommit"`
				Cluster    bool     `json:"cluster"`
			} `json:"steps"`
		} `json:"plan"`
		Notes []struct{ Level, Object, Text string } `json:"notes"`
	}
	must(t, json.Unmarshal([]byte(out), &res))
	if code != ExitFindings || len(res.Plan.Steps) != 3 || !res.Plan.Steps[0].Cluster || !res.Plan.Steps[1].Autocommit || len(res.Notes) == 0 {
		t.Fatalf("json plan: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, append([]string{"access", "policy", "plan", file, "--format", "sql"}, args...)...)
	if code != ExitFindings || strings.Contains(out, "BEGIN;\nCREATE DATABASE") || !strings.Contains(out, "CREATE DATABASE pp_db") {
		t.Fatalf("sql plan: exit %d\n%s", code, out)
	}
	code, out, _ = runCLI(t, append([]string{"access", "policy", "check", file, "--format", "json"}, args...)...)
	var chk struct {
		Differences []struct{ Database, Object, Role, Missing, Extra string } `json:"differences"`
		SQL         []string                                                  `json:"sql"`
	}
	must(t, json.Unmarshal([]byte(out), &chk))
	if code != ExitFindings || len(chk.SQL) == 0 || strings.Contains(out, verifier) || len(chk.Differences) == 0 {
		t.Fatalf("check: exit %d\n%s", code, out)
	}
	empty := writeFile(t, "e.yaml", "version: 1\nmode: adopt\n")
	if code, out, errs := runCLI(t, append([]string{"access", "policy", "plan", empty}, args...)...); code != ExitOK {
		t.Fatalf("empty plan: exit %d (%s)\n%s", code, errs, out)
	}
	bad := writeFile(t, "b.yaml", "version: 1\nroles:\n  x: {password: hunter2hunter2}\n")
	if code, out, errs := runCLI(t, append([]string{"access", "policy", "plan", bad}, args...)...); code != ExitError || strings.Contains(out+errs, "hunter2") || !strings.Contains(errs, "b.yaml:3") {
		t.Fatalf("bad file: exit %d\n%s%s", code, out, errs)
	}
}
