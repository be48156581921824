package rules

import (
	"fmt"
	"strings"

	"github.com/pgaegis/pgaegis/internal/privileges"
	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

func init() {
	register(&Rule{
		ID: "PRIV-02.chains", Title: "No login role can escalate through functions, languages, parameters or CREATEROLE", Area: AreaRoles, Severity: Critical,
		Rationale:  "Attribute checks miss chains: a superuser-owned SECURITY DEFINER function with dynamic SQL that a login role may call, an untrusted language marked trusted, ALTER SYSTEM on archive_command, CREATEROLE before 16. Each is superuser or OS access in a few steps. (Membership chains: PRIV-02 and PRIV-17.)",
		References: refs(cis("4.8"), stig("V-233614")),
		Check: func(c *Check) {
			if c.S.Server == nil || c.S.Roles == nil {
				c.NotChecked("roles", "escalation paths need the server's roles and catalogs (a live audit or a snapshot)")
				return
			}
			m := privileges.Build(c.S)
			for _, ch := range m.Escalations(c.S) {
				if ch.Kind == "membership" {
					continue
				}
				var steps []string
				for i, s := range ch.Steps {
					steps = append(steps, fmt.Sprintf("%d. %s: %s", i+1, s.What, s.Evidence))
				}
				c.Fail(Problem{Object: fmt.Sprintf("role %s via %s", ch.Role, ch.Object),
					Evidence: fmt.Sprintf("login role %q can gain %s:\n%s", ch.Role, ch.Gains, strings.Join(steps, "\n")),
					Expected: "no path from a login role to superuser or OS access", Fix: chainFix(ch), FixKind: FixSQL, Database: ch.Database})
			}
			if c.S.Gap(snapshot.GapDatabases) != "" {
				c.NotChecked("databases", c.S.Gap(snapshot.GapDatabases))
			}
		},
	})
}

func chainFix(ch privileges.Chain) string {
	switch ch.Kind {
	case "security-definer":
		fn, err := quote.Function(ch.Schema, ch.Name, ch.Args)
		if err != nil {
			return "-- " + err.Error() + ": fix it by hand"
		}
		return fmt.Sprintf("REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC, %s;  ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp;  -- in database %s; and rewrite its dynamic SQL", fn, quote.Ident(ch.Role), fn, quote.Ident(ch.Database))
	case "language":
		return untrustLanguageFix(ch.Name, ch.Database)
	case "parameter":
		return fmt.Sprintf("REVOKE ALTER SYSTEM ON PARAMETER %s FROM %s;", paramSQL(ch.Name), quote.Ident(ch.Role))
	case "createrole":
		return fmt.Sprintf("ALTER ROLE %s NOCREATEROLE;", quote.Ident(ch.Role))
	}
	return "remove the step that grants the access"
}
