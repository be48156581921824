package cli

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/collect"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/report"
	"github.com/pgaegis/pgaegis/internal/rules"
)

// Defect 16(b): a snapshot that holds nothing passed with every rule not
// checked. An audit that saw nothing, or whose reads failed, is
// incomplete: the report says so and the exit code is 2.
func TestAuditThatSawNothingIsIncomplete(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name, snapshot, want string
	}{
		{"empty snapshot", `{"format_version":1}`, "nothing was audited"},
		{"collection errors", `{"format_version":1,"server":{"version":"15.8","version_num":150008,"current_user":"a","superuser":true},
			"roles":[{"oid":10,"name":"a","superuser":true,"login":true}],
			"gaps":{"memberships":"reading pg_auth_members failed: boom"},
			"collection_errors":{"memberships":"reading pg_auth_members failed: boom"}}`, "collection error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, strings.ReplaceAll(tc.name, " ", "_")+".json")
			if err := os.WriteFile(path, []byte(tc.snapshot), 0o600); err != nil {
				t.Fatal(err)
			}
			code, out, errs := runCLI(t, "audit", "--snapshot", path, "--format", "json", "--fail-on", "critical")
			if code != ExitError {
				t.Errorf("exit %d, want %d", code, ExitError)
			}
			var rep report.Report
			if err := json.Unmarshal([]byte(out), &rep); err != nil {
				t.Fatalf("no report written before the error: %v", err)
			}
			if rep.Summary.Result != "incomplete" || !strings.Contains(rep.Summary.IncompleteReason, tc.want) {
				t.Errorf("result %q (%q), want incomplete (%q)", rep.Summary.Result, rep.Summary.IncompleteReason, tc.want)
			}
			if !strings.Contains(errs, "incomplete") {
				t.Errorf("stderr does not say the audit is incomplete: %s", errs)
			}
			if code, out, _ := runCLI(t, "audit", "--snapshot", path, "--color", "never"); code != ExitError || !strings.Contains(out, "\nincomplete: ") || !strings.Contains(out, tc.want) {
				t.Errorf("text report: exit %d, does not say it is incomplete:\n%s", code, out)
			}
			code, _, errs = runCLI(t, "escalations", "--snapshot", path)
			if code != ExitError {
				t.Errorf("escalations on %s: exit %d, want %d (%s)", tc.name, code, ExitError, errs)
			}
		})
	}
}

// Defect 2 through the commands: a role VALID UNTIL 'infinity' made the
// role read fail, and escalations, access and audit answered from the
// missing data with a confident "nothing found".
func TestInfiniteValidUntilStillSeesEscalation(t *testing.T) {
	srv := pgtest.Shared(t)
	ctx := pgtest.Ctx(t)
	if err := srv.Exec(ctx, `CREATE ROLE cli_inf_boss SUPERUSER NOLOGIN`, `CREATE ROLE cli_inf_app LOGIN VALID UNTIL 'infinity'`,
		`CREATE ROLE cli_inf_past LOGIN VALID UNTIL '-infinity'`, `GRANT cli_inf_boss TO cli_inf_app`); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		srv.Exec(context.Background(), `DROP ROLE IF EXISTS cli_inf_app`, `DROP ROLE IF EXISTS cli_inf_past`, `DROP ROLE IF EXISTS cli_inf_boss`)
	})
	conn := connArgs(t, srv, srv.AdminUser, srv.Password)

	code, out, errs := runCLI(t, append([]string{"escalations"}, conn...)...)
	if code != ExitFindings || !strings.Contains(out, "cli_inf_app") {
		t.Errorf("escalations: exit %d, want %d naming cli_inf_app\n%s%s", code, ExitFindings, out, errs)
	}
	code, out, errs = runCLI(t, append([]string{"access", "--role", "cli_inf_app"}, conn...)...)
	if code != ExitOK || !strings.Contains(out, "cli_inf_app") {
		t.Errorf("access --role cli_inf_app: exit %d\n%s%s", code, out, errs)
	}
	rep, code, _ := auditJSON(t, append([]string{"--fail-on", "critical", "--no-probe", "--password-check-budget", "0"}, conn...)...)
	if code != ExitFindings {
		t.Errorf("audit --fail-on critical: exit %d, want %d", code, ExitFindings)
	}
	expectFail(t, rep, "PRIV-02", "cli_inf_app")
}

// Defect 2 (second half) through the commands: a read that fails makes
// the audit exit 2 after writing a report where the rules that needed it
// are not checked with the error; escalations and access refuse to answer.
func TestFailedReadFailsLoudly(t *testing.T) {
	srv := pgtest.Shared(t)
	collect.QueryFault = func(sql string) error {
		if strings.Contains(sql, "FROM pg_auth_members") {
			return errors.New("injected membership failure")
		}
		return nil
	}
	defer func() { collect.QueryFault = nil }()
	conn := connArgs(t, srv, srv.AdminUser, srv.Password)

	out := filepath.Join(t.TempDir(), "report.json")
	code, _, errs := runCLI(t, append([]string{"audit", "--format", "json", "-o", out, "--fail-on", "critical", "--no-probe", "--password-check-budget", "0"}, conn...)...)
	if code != ExitError || !strings.Contains(errs, "injected membership failure") {
		t.Errorf("audit: exit %d, want %d with the error; stderr: %s", code, ExitError, errs)
	}
	data, err := os.ReadFile(out)
	if err != nil {
		t.Fatalf("the report was not written before the error: %v", err)
	}
	var rep report.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		t.Fatal(err)
	}
	var seen bool
	for _, f := range rep.Findings {
		if f.Rule != "PRIV-02" {
			continue
		}
		seen = true
		if f.Status != rules.NotChecked || !strings.Contains(f.Reason, "injected membership failure") {
			t.Errorf("PRIV-02 %s (%s), want not_checked with the error", f.Status, f.Reason)
		}
	}
	if !seen {
		t.Error("no PRIV-02 finding")
	}

	for _, args := range [][]string{{"escalations"}, {"access", "--role", srv.AdminUser}} {
		code, stdout, errs := runCLI(t, append(args, conn...)...)
		if code != ExitError || !strings.Contains(errs, "injected membership failure") {
			t.Errorf("%v: exit %d, want %d with the error\n%s%s", args, code, ExitError, stdout, errs)
		}
	}

	snapPath := filepath.Join(t.TempDir(), "snap.json")
	code, _, errs = runCLI(t, append([]string{"collect", "-o", snapPath, "--no-probe", "--password-check-budget", "0"}, conn...)...)
	if code != ExitError {
		t.Errorf("collect: exit %d, want %d (%s)", code, ExitError, errs)
	}
	if _, err := os.Stat(snapPath); err != nil {
		t.Errorf("collect did not write the snapshot before the error: %v", err)
	}
}
