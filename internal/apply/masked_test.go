package apply

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pgaegis/pgaegis/internal/localpg"
	"github.com/pgaegis/pgaegis/internal/pgtest"
	"github.com/pgaegis/pgaegis/internal/plan"
)

// A plan shows pg_hba.conf lines with their credentials masked; the
// engine's check that the file has not changed since the plan must read
// the file's line masked the same way, or a plan that touches a line with
// ldapbindpasswd could never apply.
func TestApplyEditsLineWithMaskedSecret(t *testing.T) {
	const secret = "bind-s3cret"
	ldap := `host nobody_db nobody 10.9.9.9/32 ldap ldapserver=ldap.invalid ldapbasedn="dc=x" ldapbinddn="cn=y" ldapbindpasswd=` + secret + ` ldapsearchattribute=uid`
	s := pgtest.Start(t, localpg.Options{HBA: "host all all 127.0.0.1/32 scram-sha-256\n" + ldap + "\n"})
	hbaPath := filepath.Join(s.DataDir, "pg_hba.conf")
	masked := strings.Replace(ldap, secret, "xxxxx", 1)
	newLine := strings.Replace(ldap, "host ", "hostssl ", 1)
	p := &plan.Plan{Target: "test", Steps: []plan.Step{{ID: "1", Kind: plan.KindHBA, Apply: plan.ApplyReload,
		HBA: &plan.HBARewrite{Path: hbaPath, Content: "host all all 127.0.0.1/32 scram-sha-256\n" + newLine + "\n",
			Lines: []plan.LineChange{{Line: 2, Old: masked, New: strings.Replace(masked, "host ", "hostssl ", 1), Rules: []string{"AUTH-05"}}}}}}}
	if _, err := Apply(pgtest.Ctx(t), p, opts(t, s)); err != nil {
		t.Fatalf("apply of a plan that edits a line with a masked secret: %v", err)
	}
	got, _ := os.ReadFile(hbaPath)
	if !strings.Contains(string(got), "hostssl nobody_db") || !strings.Contains(string(got), secret) {
		t.Errorf("pg_hba.conf after the apply:\n%s", got)
	}
}
