package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/report"
)

// TestPlainRoleGapsNameTheRole: an audit by a role with no privileges
// reports what it could not see, and each gap names the role (or
// predefined role) that would see it.
func TestPlainRoleGapsNameTheRole(t *testing.T) {
	srv := pgtest.Start(t, localpg.Options{})
	if err := srv.Exec(pgtest.Ctx(t), "CREATE ROLE plain LOGIN PASSWORD 'plain-pw-1'"); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"audit", "--format", "json", "--no-files", "--no-probe"}, connArgs(t, srv, "plain", "plain-pw-1")...)
	code, out, errs := runCLI(t, args...)
	var rep report.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("exit %d, not JSON: %v\n%s", code, err, errs)
	}
	if len(rep.Gaps) == 0 {
		t.Fatal("no gaps reported for an unprivileged audit")
	}
	t.Logf("exit %d; stderr: %s", code, errs)
	for k, g := range rep.Gaps {
		t.Logf("gap %s: %s", k, g)
		named := false
		for _, r := range []string{"superuser", "pg_read_all_settings", "pg_read_all_stats", "pg_monitor", "pg_read_server_files", "--password-check-budget", "verify-full"} {
			named = named || strings.Contains(g, r)
		}
		if !named {
			t.Errorf("gap %s does not say which role would see it: %s", k, g)
		}
	}
}
