package fix_test

import (
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/fixtest"
	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/rules"
)

// TestPrivilegeFixesEveryMajor proves the privilege fixes whose SQL
// depends on the major: from 16 a membership may have several grantors,
// and a REVOKE names the one it undoes (GRANTED BY) or does nothing; a
// role whose ADMIN OPTION others' grants depend on is left to a person
// (16 refuses without CASCADE). Before 16, CREATEROLE is a chain to the
// OS roles and its fix, NOCREATEROLE, is proven there.
func TestPrivilegeFixesEveryMajor(t *testing.T) {
	pgtest.EachMajor(t, func(t *testing.T, major int) {
		srv := pgtest.StartMajor(t, major, localpg.Options{})
		ctx := pgtest.Ctx(t)
		plant := []string{
			"CREATE ROLE grp NOLOGIN", "CREATE ROLE lead LOGIN", "CREATE ROLE mem LOGIN",
			"GRANT grp TO lead WITH ADMIN OPTION",
			"GRANT grp TO mem WITH ADMIN OPTION GRANTED BY lead",
			"CREATE ROLE maker LOGIN CREATEROLE",
		}
		if err := srv.Exec(ctx, plant...); err != nil {
			t.Fatal(err)
		}
		only := []string{"PRIV-10"}
		if major < 16 {
			only = append(only, "PRIV-02.chains")
		}
		p := fixtest.Prove(t, srv, only, fixtest.Options{})
		var manual []string
		for _, m := range p.Plan.Manual {
			manual = append(manual, m.Object+": "+m.What)
		}
		leadManual := strings.Contains(strings.Join(manual, "\n"), "role lead")
		if major >= 16 != leadManual {
			t.Errorf("pg%d: lead's ADMIN OPTION, on which mem's grant depends from 16, manual: %v (%v)", major, leadManual, manual)
		}
		_, after := fixtest.Audit(t, srv)
		for _, f := range after {
			if f.Rule == "PRIV-10" && f.Status == rules.Fail && f.Object == "role mem" {
				t.Errorf("pg%d: mem still holds ADMIN OPTION: %s", major, f.Evidence)
			}
		}
	})
}
