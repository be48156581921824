package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/policy"
	"github.com/pgaegis/pgaegis/internal/policy/inspect"
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
	if code != ExitFindings || strings.Contains(out, "BEGIN;\nCREATE DATABASE") || !strings.Contains(out, "CREATE DATABASE pp_db") ||
		!strings.Contains(out, "(as the role it was planned for, "+srv.AdminUser+")") || strings.Contains(out, "as a superuser") {
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
	ghost := writeFile(t, "g.yaml", "version: 1\nmode: adopt\ndatabases:\n  postgres:\n    grants:\n      pp_ghost_role: [CONNECT]\n")
	if code, out, errs := runCLI(t, append([]string{"access", "policy", "plan", ghost}, args...)...); code != ExitError || !strings.Contains(errs, `g.yaml:6: database postgres: grantee "pp_ghost_role"`) {
		t.Fatalf("grant to an unknown role: exit %d\n%s%s", code, out, errs)
	}
	bad := writeFile(t, "b.yaml", "version: 1\nroles:\n  x: {password: hunter2hunter2}\n")
	if code, out, errs := runCLI(t, append([]string{"access", "policy", "plan", bad}, args...)...); code != ExitError || strings.Contains(out+errs, "hunter2") || !strings.Contains(errs, "b.yaml:3") {
		t.Fatalf("bad file: exit %d\n%s%s", code, out, errs)
	}
}

// An export limited by --role names one role in roles:; planned back it
// must change nothing (adopt mode), whatever other roles the server has,
// with --database and --schema limits too.
func TestPolicyExportRoleRoundTrip(t *testing.T) {
	srv := pgtest.Shared(t)
	ctx := pgtest.Ctx(t)
	must(t, srv.Exec(ctx, `CREATE ROLE "we""ird name" LOGIN`, `CREATE ROLE rt_other`, `CREATE DATABASE rt_db`))
	t.Cleanup(func() {
		srv.Exec(ctx, `DROP DATABASE IF EXISTS rt_db`, `DROP ROLE IF EXISTS "we""ird name"`, `DROP ROLE IF EXISTS rt_other`)
	})
	db := pgtest.Conn(t, srv, "rt_db")
	if _, err := db.Exec(ctx, `CREATE SCHEMA s; CREATE TABLE s.t (a int); CREATE TABLE public.u (a int);
		GRANT SELECT ON s.t TO "we""ird name"; GRANT INSERT, SELECT ON public.u TO rt_other; GRANT USAGE ON SCHEMA s TO "we""ird name"`); err != nil {
		t.Fatal(err)
	}
	args := connArgs(t, srv, srv.AdminUser, srv.Password)
	for _, limit := range [][]string{
		{"--database", "rt_db"},
		{"--database", "rt_db", "--schema", "s"},
		{"--database", "rt_db", "--schema", "public"},
	} {
		file := writeFile(t, "rt.yaml", "")
		exp := append(append([]string{"access", "policy", "export", "--role", `we"ird name`, "-o", file}, limit...), args...)
		if code, out, errs := runCLI(t, exp...); code != ExitOK {
			t.Fatalf("export %v: exit %d %s%s", limit, code, out, errs)
		}
		if data, _ := os.ReadFile(file); !strings.Contains(string(data), "# mode: adopt (") || !strings.Contains(string(data), "\nmode: adopt\n") {
			t.Fatalf("export %v is not in adopt mode:\n%s", limit, data)
		}
		if code, out, errs := runCLI(t, append([]string{"access", "policy", "plan", file}, args...)...); code != ExitOK || strings.Contains(out, "DROP ROLE") {
			t.Errorf("plan of export %v: exit %d (%s)\n%s", limit, code, errs, out)
		}
	}
}

// Removing a role and its grants from an export in one edit: plan shows
// the revocations and the DROP ROLE (nothing held), --check and apply
// succeed in one run, the next plan is empty.
func TestPolicyRemoveRoleOneApply(t *testing.T) {
	srv := pgtest.Start(t, localpg.Options{}) // its own: an authoritative file drops roles it does not name
	ctx := pgtest.Ctx(t)
	must(t, srv.Exec(ctx, `CREATE ROLE rr_gone LOGIN`, `CREATE ROLE rr_kept`, `CREATE DATABASE rr_a`, `CREATE DATABASE rr_b`,
		`GRANT CONNECT ON DATABASE rr_a TO rr_gone`))
	for _, db := range []string{"rr_a", "rr_b"} {
		must(t, srv.ExecIn(ctx, db, `CREATE TABLE t (x int)`, `GRANT SELECT, UPDATE ON t TO rr_gone, rr_kept`, `GRANT USAGE ON SCHEMA public TO rr_gone`))
	}
	conn := connArgs(t, srv, srv.AdminUser, srv.Password)
	dir := t.TempDir()
	file := filepath.Join(dir, "p.yaml")
	if code, out, errs := runCLI(t, append([]string{"access", "policy", "export", "--database", "rr_a", "--database", "rr_b", "-o", file}, conn...)...); code != ExitOK {
		t.Fatalf("export: exit %d %s%s", code, out, errs)
	}
	f, err := policy.Load(file)
	must(t, err)
	delete(f.Roles, "rr_gone")
	for _, d := range f.Databases {
		delete(d.Grants, "rr_gone")
		for _, s := range d.Schemas {
			delete(s.Grants, "rr_gone")
			for _, o := range s.Tables {
				delete(o.Grants, "rr_gone")
			}
		}
	}
	data, err := inspect.Marshal(f, nil)
	must(t, err)
	must(t, os.WriteFile(file, data, 0o600))
	code, out, errs := runCLI(t, append([]string{"access", "policy", "plan", file}, conn...)...)
	if code != ExitFindings || !strings.Contains(out, "DROP OWNED BY rr_gone") || !strings.Contains(out, "DROP ROLE rr_gone") ||
		strings.Contains(out, "held") || !strings.Contains(out, "roles (shared catalogs, run from database") {
		t.Fatalf("plan: exit %d (%s)\n%s", code, errs, out)
	}
	apply := append([]string{"access", "policy", "apply", file, "--journal-dir", filepath.Join(dir, "j")}, conn...)
	if code, out, errs := runCLIInput(t, "", append(slices.Clone(apply), "--check")...); code != ExitOK {
		t.Fatalf("apply --check: exit %d %s%s", code, out, errs)
	}
	if code, out, errs := runCLIInput(t, "", append(apply, "--yes")...); code != ExitOK {
		t.Fatalf("apply: exit %d %s%s", code, out, errs)
	}
	if code, out, errs := runCLI(t, append([]string{"access", "policy", "plan", file}, conn...)...); code != ExitOK {
		t.Fatalf("second plan: exit %d (%s)\n%s", code, errs, out)
	}
	c := pgtest.Conn(t, srv, "rr_b")
	var gone, kept bool
	must(t, c.QueryRow(ctx, `SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'rr_gone'), has_table_privilege('rr_kept', 'public.t', 'UPDATE')`).Scan(&gone, &kept))
	if !gone || !kept {
		t.Fatalf("rr_gone dropped %v, rr_kept keeps UPDATE %v", gone, kept)
	}
}
