package rules

import (
	"fmt"
	"strings"

	"github.com/pgaegis/pgaegis/internal/acl"
	"github.com/pgaegis/pgaegis/internal/privileges"
	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/snapshot"
	"github.com/pgaegis/pgaegis/internal/textsafe"
)

func init() {
	register(&Rule{
		ID: "PRIV-02.chains", Title: "No login role can escalate through functions, languages, parameters or CREATEROLE", Area: AreaRoles, Severity: Critical,
		Rationale:  "Attribute checks miss chains: a superuser-owned SECURITY DEFINER function with dynamic SQL that a login role may call, an untrusted language marked trusted, a function in an untrusted language (C, plpython3u, plperlu; not an extension's) that PUBLIC or a group role may execute (its body runs as the server's OS user), ALTER SYSTEM on archive_command, CREATEROLE before 16 (it grants itself any non-superuser role, pg_execute_server_program included; from 16 only roles it holds ADMIN OPTION on), and from 16 ADMIN OPTION on an OS role in a grant without SET or INHERIT (the holder grants the role to itself). Each is superuser or OS access in a few steps. A superuser-owned SECURITY DEFINER function every login role may call, with neither dynamic SQL nor a writable search_path, is no proven chain but runs whatever it does as a superuser for everyone: it is reported as a medium review. (Membership chains: PRIV-02 and PRIV-17.)",
		References: refs(cis("4.8"), stig("V-233614")),
		Check: func(c *Check) {
			if c.S.Server == nil || c.S.Roles == nil {
				c.NotChecked("roles", "escalation paths need the server's roles and catalogs (a live audit or a snapshot)")
				return
			}
			m := privileges.Build(c.S)
			// The roles a chain can start from: every one of them reaching a
			// function is PUBLIC's doing, one weakness, reported once.
			eligible := 0
			for _, r := range m.Roles {
				if !r.Super && r.Login && !r.Predefined {
					eligible++
				}
			}
			var ps problems
			chains := map[string][]privileges.Chain{}
			for _, ch := range m.Escalations(c.S) {
				if ch.Kind == "membership" {
					continue
				}
				var steps []string
				for i, s := range ch.Steps {
					steps = append(steps, fmt.Sprintf("%d. %s: %s", i+1, s.What, s.Evidence))
				}
				p := Problem{Object: fmt.Sprintf("role %s via %s", ch.Role, ch.Object),
					Evidence: fmt.Sprintf("login role %q can gain %s:\n%s", ch.Role, ch.Gains, strings.Join(steps, "\n")),
					Expected: "no path from a login role to superuser or OS access", Fix: chainFix(ch), FixKind: FixSQL, Database: ch.Database}
				if ch.Severity == "medium" {
					p.Severity, p.SevSet = Medium, true
					p.Expected = "superuser SECURITY DEFINER functions callable only by the roles that need them"
				}
				// One finding per weakness: the same object, gain and weak link.
				key := ch.Kind + "\x00" + ch.Object + "\x00" + ch.Gains + "\x00" + ch.Steps[len(ch.Steps)-1].What
				ps.add(key, c.chainProblem(p, ch))
				chains[key] = append(chains[key], ch)
			}
			for _, k := range ps.keys {
				members, chs := ps.by[k], chains[k]
				if len(members) == 1 {
					c.Fail(members[0])
					continue
				}
				// By member, so that a waiver splitting the finding can
				// describe each part (Finding.Split).
				chainOf := map[string]privileges.Chain{}
				for i, m := range members {
					if _, dup := chainOf[m.Object]; !dup {
						chainOf[m.Object] = chs[i]
					}
				}
				describe := func(ms []Problem) (string, string, string) {
					ch := chainOf[ms[0].Object]
					who := "login roles"
					if len(ms) == eligible {
						who = "every login role"
					}
					names := make([]string, len(ms))
					for i, m := range ms {
						names[i] = chainOf[m.Object].Role
					}
					var steps []string
					for i, s := range ch.Steps {
						steps = append(steps, fmt.Sprintf("%d. %s: %s", i+1, s.What, s.Evidence))
					}
					ev := fmt.Sprintf("%s (%s: %s) can gain %s (the steps of role %q):\n%s", who, textsafe.Thousands(len(ms)), someNames(names), ch.Gains, ch.Role, strings.Join(steps, "\n"))
					manual := ""
					if fn, err := quote.Function(ch.Schema, ch.Name, ch.Args); err == nil {
						switch ch.Kind {
						case "security-definer":
							manual = fmt.Sprintf("revoke EXECUTE on %s from the roles through which these login roles reach it, and rewrite its dynamic SQL (format() with %%I/%%L)", fn)
						case "untrusted-function":
							manual = fmt.Sprintf("revoke EXECUTE on %s from PUBLIC and from the group roles through which these login roles reach it", fn)
						}
					}
					return who + " via " + ch.Object, ev, manual
				}
				obj, ev, manual := describe(members)
				p := merged(obj, ev, manual, members)
				p.describe = describe
				c.Fail(p)
			}
			if c.S.Gap(snapshot.GapDatabases) != "" {
				c.NotChecked("databases", c.S.Gap(snapshot.GapDatabases))
			}
		},
	})
}

// ChainFix is the fix an audit prints for an escalation chain, for
// `pgaegis escalations`, which lists the chains without auditing.
func ChainFix(ch privileges.Chain) string { return chainFix(ch) }

func chainFix(ch privileges.Chain) string {
	switch ch.Kind {
	case "security-definer":
		fn, err := quote.Function(ch.Schema, ch.Name, ch.Args)
		if err != nil {
			return "-- " + err.Error() + ": fix it by hand"
		}
		also := "rewrite its dynamic SQL"
		if ch.Severity == "medium" {
			also = "review what it lets a caller do as a superuser"
		}
		return fmt.Sprintf("REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC, %s;  ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp;  -- in database %s; and %s", fn, quote.Ident(ch.Role), fn, quote.Ident(ch.Database), also)
	case "untrusted-function":
		fn, err := quote.Function(ch.Schema, ch.Name, ch.Args)
		if err != nil {
			return "-- " + err.Error() + ": fix it by hand"
		}
		return fmt.Sprintf("REVOKE EXECUTE ON FUNCTION %s FROM PUBLIC;  -- in database %s; and from each group role granted EXECUTE on it", fn, quote.Ident(ch.Database))
	case "language":
		return untrustLanguageFix(ch.Name, ch.Database)
	case "parameter":
		return fmt.Sprintf("REVOKE ALTER SYSTEM ON PARAMETER %s FROM %s;", paramSQL(ch.Name), quote.Ident(ch.Role))
	case "createrole":
		return fmt.Sprintf("ALTER ROLE %s NOCREATEROLE;", quote.Ident(ch.Role))
	case "admin":
		return fmt.Sprintf("REVOKE ADMIN OPTION FOR %s FROM %s GRANTED BY <its grantor>; -- or from the role %s inherits it through (pg_auth_members shows the grant)", quote.Ident(ch.Name), quote.Ident(ch.Role), quote.Ident(ch.Role))
	}
	return "remove the step that grants the access"
}

// chainFunction is the function a chain runs through, and its quoted name.
func (c *Check) chainFunction(ch privileges.Chain) (snapshot.Function, string, bool) {
	d := c.database(ch.Database)
	fn, err := quote.Function(ch.Schema, ch.Name, ch.Args)
	if d == nil || err != nil {
		return snapshot.Function{}, "", false
	}
	f, ok := c.function(d, ch.Schema, ch.Name, ch.Args)
	return f, fn, ok
}

// chainProblem attaches the change that cuts a chain: the same statements
// the rule of the chain's link would run (PRIV-06, EXT-02, PRIV-17.
// parameters), so the planner runs them once for both findings.
func (c *Check) chainProblem(p Problem, ch privileges.Chain) Problem {
	switch ch.Kind {
	case "security-definer":
		f, fn, ok := c.chainFunction(ch)
		if !ok {
			break
		}
		var stmts []sqlStmt
		pinned := false
		for _, cfg := range f.Config {
			if strings.HasPrefix(strings.ToLower(cfg), "search_path=") {
				pinned = true
			}
		}
		if !pinned {
			stmts = append(stmts, pinSearchPathStmt(f, fn))
		}
		for _, g := range []string{acl.Public, ch.Role} {
			if st, ok := revokeExecuteStmt(f, fn, g); ok {
				stmts = append(stmts, st)
			}
		}
		if len(stmts) == 0 {
			// Reached through a group's grant: which group keeps it is a decision.
			also := "rewrite its dynamic SQL (format() with %I/%L)"
			if ch.Severity == "medium" {
				also = "review what it lets a caller do as a superuser"
			}
			return manualProblem(p, fmt.Sprintf("revoke EXECUTE on %s from the role through which %s reaches it, and %s", fn, quote.Ident(ch.Role), also))
		}
		return sqlProblem(p, sqlChange(ch.Database, false, fmt.Sprintf("roles that relied on the PUBLIC grant lose it: only the owner and roles granted EXECUTE may call %s", fn), stmts...))
	case "untrusted-function":
		f, fn, ok := c.chainFunction(ch)
		if !ok {
			break
		}
		// Every broad grant goes (PUBLIC's and each group's, as the chain
		// reads them), so that the second audit finds no other way in;
		// grants to single login roles stay.
		var stmts []sqlStmt
		if st, ok := revokeExecuteStmt(f, fn, acl.Public); ok {
			stmts = append(stmts, st)
		}
		for _, it := range f.ACL {
			if it.Grantee == acl.Public || it.Grantee == f.Owner || !it.Has("EXECUTE") {
				continue
			}
			if r, _ := c.S.Role(it.Grantee); r != nil && r.CanLogin {
				continue
			}
			if st, ok := revokeExecuteStmt(f, fn, it.Grantee); ok {
				stmts = append(stmts, st)
			}
		}
		if len(stmts) == 0 {
			break
		}
		return sqlProblem(p, sqlChange(ch.Database, false, fmt.Sprintf("only the owner and login roles granted EXECUTE directly may call %s", fn), stmts...))
	case "language":
		// The same change as EXT-02's, so both findings share one text
		// and the planner runs it once.
		if d := c.database(ch.Database); d != nil {
			return sqlProblem(p, untrustAndDropChange(d, ch.Name))
		}
		return sqlProblem(p, untrustLanguageChange(ch.Name, ch.Database))
	case "parameter":
		for _, pa := range c.S.ParamACLs {
			if pa.Name != ch.Name {
				continue
			}
			if it, ok := itemOf(pa.ACL, false, ch.Role); ok && it.Has("ALTER SYSTEM") {
				return sqlProblem(p, sqlChange("", true, fmt.Sprintf("%s can no longer ALTER SYSTEM %s", quote.Ident(ch.Role), ch.Name),
					revokeStmt(it, []string{"ALTER SYSTEM"}, "ON PARAMETER "+paramSQL(ch.Name))))
			}
		}
	case "createrole":
		return sqlProblem(p, sqlChange("", false, fmt.Sprintf("role %s can no longer create or alter roles", quote.Ident(ch.Role)), roleAttrStmt(ch.Role, "CREATEROLE")))
	}
	return manualProblem(p, chainFix(ch))
}
