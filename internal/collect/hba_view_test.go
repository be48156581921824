package collect

import (
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/rules"
)

const quotedHBA = `local all all scram-sha-256
host all all 127.0.0.1/32 scram-sha-256
host "all" "all" 10.1.0.0/16 md5
`

// Defect 14: pg_hba_file_rules drops quotes, so host "all" "all" (a
// database and a role named all) read as the keywords: the audit claimed
// the superuser matches and printed a fix that widens access.
func TestServerViewKeepsOrAdmitsQuoting(t *testing.T) {
	srv := pgtest.Start(t, localpg.Options{HBA: quotedHBA})
	ctx := pgtest.Ctx(t)
	if err := srv.Exec(ctx, `CREATE ROLE hba_reader LOGIN PASSWORD 'hba-reader-pw-1'`,
		`GRANT SELECT ON pg_hba_file_rules TO hba_reader`, `GRANT EXECUTE ON FUNCTION pg_hba_file_rules() TO hba_reader`); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, user, password string
		resolved             bool
	}{
		{"superuser reads the file through the server", srv.AdminUser, srv.Password, true},
		{"view only: uncertain", "hba_reader", "hba-reader-pw-1", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tcpConfig(t, srv, "disable")
			cfg.User, cfg.Password = tc.user, tc.password
			snap, err := Collect(ctx, quick(cfg))
			if err != nil {
				t.Fatal(err)
			}
			if snap.HBA == nil {
				t.Fatalf("no hba: %v", snap.Gaps)
			}
			var line3 string
			for _, r := range snap.HBA.Rules {
				if r.Line == 3 {
					line3 = r.Text
				}
			}
			if tc.resolved {
				if len(snap.HBA.Ambiguous) != 0 || line3 != `host "all" "all" 10.1.0.0/16 md5` {
					t.Errorf("line 3 = %q, ambiguous %v; want the quoted form resolved", line3, snap.HBA.Ambiguous)
				}
			} else if len(snap.HBA.Ambiguous) == 0 {
				t.Errorf("line 3 = %q with no ambiguity recorded", line3)
			}
			uncertain := 0
			for _, f := range rules.Run(snap) {
				text := f.Object + f.Location + f.Evidence + f.Fix
				if strings.Contains(f.Reason, "uncertain") {
					uncertain++
				}
				if !strings.Contains(text, "10.1.0.0") {
					continue
				}
				if strings.Contains(f.Fix, "all all 10.1") {
					t.Errorf("%s prints a fix that widens line 3: %s", f.Rule, f.Fix)
				}
				if f.Status == rules.Fail && strings.Contains(f.Evidence, "superuser") {
					t.Errorf("%s claims a superuser matches line 3: %s", f.Rule, f.Evidence)
				}
			}
			if !tc.resolved && uncertain == 0 {
				t.Error("no finding reports the uncertainty")
			}
		})
	}
}
