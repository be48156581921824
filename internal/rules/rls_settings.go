package rules

import (
	"fmt"
	"strings"

	"github.com/pgaegis/pgaegis/internal/policy/rlstest/missingok"
	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/textsafe"
)

func init() {
	register(&Rule{
		ID: "PRIV-20", Title: "Row-level security policies read session settings with missing_ok", Area: AreaRoles, Severity: Low,
		Rationale: "A policy keyed on current_setting('app.tenant_id') without missing_ok makes every session that never set it fail with an error instead of seeing no rows: pg_dump as a non-bypassing role, monitoring queries, a new code path. " +
			"And after a SET LOCAL ends the placeholder stays defined as '' for the rest of the session (a pooled connection), so a cast such as ::int errors there too. " +
			"nullif(current_setting('app.tenant_id', true), '') gives NULL, so no rows, in both cases. Low: the failure is closed (an error, not a leak), but it breaks what should merely see nothing.",
		References: refs(seeds("001: RLS", "004: RLS"), []Reference{{"PostgreSQL", "current_setting(setting_name, missing_ok)"}}),
		Check: func(c *Check) {
			dbs, ok := c.databases()
			if !ok {
				return
			}
			var ps problems
			for _, d := range dbs {
				for _, t := range d.RLSTables {
					qt := quote.Qualified(t.Schema, t.Name)
					for _, p := range t.Policies {
						using, u := missingok.Rewrite(p.Using)
						check, w := missingok.Rewrite(p.WithCheck)
						if !u && !w {
							continue
						}
						var calls []string
						for _, x := range append(missingok.Unsafe(p.Using), missingok.Unsafe(p.WithCheck)...) {
							calls = append(calls, "current_setting("+x.Setting+")")
						}
						do, undo := alterPolicy(p.Name, qt, using, check, u, w), alterPolicy(p.Name, qt, p.Using, p.WithCheck, u, w)
						obj := fmt.Sprintf("policy %s on table %s.%s.%s", p.Name, d.Name, t.Schema, t.Name)
						ps.add(d.Name+"\x00"+t.Schema, sqlProblem(Problem{Object: obj,
							Evidence: fmt.Sprintf("policy %q on %s calls %s without missing_ok: a session that has not set it gets an error instead of no rows", p.Name, qt, strings.Join(calls, ", ")),
							Expected: "nullif(current_setting('<name>', true), '')"},
							sqlChange(d.Name, false, fmt.Sprintf("sessions that have not set the setting see no rows of %s (and their writes fail the policy) instead of failing with an error", qt),
								sqlStmt{do: do, undo: undo})))
					}
				}
			}
			c.failRepeated(&ps, func(k string, members []Problem) (string, string, string) {
				db, schema, _ := strings.Cut(k, "\x00")
				return fmt.Sprintf("policies of schema %s.%s reading settings without missing_ok", db, schema),
					fmt.Sprintf("%s row-level security policies in %s.%s call current_setting without missing_ok: %s", textsafe.Thousands(len(members)), db, schema, someNames(memberNames(members))), ""
			})
		},
	})
}

// alterPolicy is ALTER POLICY with the clauses that change (an INSERT
// policy takes no USING, a SELECT or DELETE one no WITH CHECK).
func alterPolicy(name, table, using, check string, u, w bool) string {
	s := "ALTER POLICY " + quote.Ident(name) + " ON " + table
	if u {
		s += " USING (" + using + ")"
	}
	if w {
		s += " WITH CHECK (" + check + ")"
	}
	return s
}
