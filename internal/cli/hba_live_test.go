package cli

import (
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
)

// The live hba commands read pg_hba_file_rules, which drops quotes: a role
// that cannot read the file itself must be told that "all" may be a name,
// not be answered as if it were certainly the keyword.
func TestHBALiveWarnsWhenQuotingIsHidden(t *testing.T) {
	srv := pgtest.Start(t, localpg.Options{HBA: "local all all scram-sha-256\nhost all all 127.0.0.1/32 scram-sha-256\nhost \"all\" \"all\" 10.1.0.0/16 md5\n"})
	ctx := pgtest.Ctx(t)
	if err := srv.Exec(ctx, `CREATE ROLE hba_viewer LOGIN PASSWORD 'hba-viewer-pw-7'`,
		`GRANT SELECT ON pg_hba_file_rules TO hba_viewer`, `GRANT EXECUTE ON FUNCTION pg_hba_file_rules() TO hba_viewer`); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"hba", "explain"}, connArgs(t, srv, "hba_viewer", "hba-viewer-pw-7")...)
	args = append(args, "--user", "app", "--database", "shop", "--address", "10.1.2.3")
	_, out, errs := runCLI(t, args...)
	if !strings.Contains(errs, "does not show quoting") || !strings.Contains(errs, "1, 2, 3") {
		t.Errorf("no warning about hidden quoting on stderr: %q", errs)
	}
	if strings.Contains(out+errs, "hba-viewer-pw-7") {
		t.Error("the password was printed")
	}
	// The superuser reads the file through the server: no warning.
	args = append([]string{"hba", "explain"}, connArgs(t, srv, srv.AdminUser, srv.Password)...)
	args = append(args, "--user", "app", "--database", "shop", "--address", "10.1.2.3")
	if _, _, errs := runCLI(t, args...); strings.Contains(errs, "does not show quoting") {
		t.Errorf("a superuser got the warning: %q", errs)
	}
}
