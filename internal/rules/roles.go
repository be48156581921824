package rules

import (
	"fmt"
	"sort"
	"strings"

	"github.com/pgaegis/pgaegis/internal/acl"
	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/snapshot"
	"github.com/pgaegis/pgaegis/internal/textsafe"
)

// bootstrapOID is the role initdb creates; it is always a superuser.
const bootstrapOID = 10

// powerfulPredefined are predefined roles that reach the server's OS.
var powerfulPredefined = []string{"pg_execute_server_program", "pg_read_server_files", "pg_write_server_files"}

func (c *Check) roles() ([]snapshot.Role, bool) {
	if c.S.Server == nil && c.S.Roles == nil {
		c.NotChecked("roles", "roles are only known from a live server or a snapshot of one")
		return nil, false
	}
	if g := c.S.Gap(snapshot.GapRoles); g != "" {
		c.NotChecked("roles", g)
		return nil, false
	}
	return c.S.Roles, true
}

// reachable returns the roles a role can become or inherit from, with the
// path to each (SET ROLE works through any membership that has SET).
// byMember indexes the snapshot's memberships by member (memberIndex):
// a scan of every membership per step made the rules over all roles
// quadratic.
func reachable(byMember map[string][]snapshot.Membership, role string) map[string][]string {
	paths := map[string][]string{role: {role}}
	queue := []string{role}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		for _, m := range byMember[cur] {
			if !(m.Set || m.Inherit) {
				continue
			}
			if _, seen := paths[m.Role]; seen {
				continue
			}
			paths[m.Role] = append(append([]string(nil), paths[cur]...), m.Role)
			queue = append(queue, m.Role)
		}
	}
	return paths
}

// memberIndex groups the memberships by member, in snapshot order.
func memberIndex(s *snapshot.Snapshot) map[string][]snapshot.Membership {
	idx := map[string][]snapshot.Membership{}
	for _, m := range s.Memberships {
		idx[m.Member] = append(idx[m.Member], m)
	}
	return idx
}

func init() {
	register(&Rule{
		ID: "PRIV-01", Title: "Only designated administrators hold SUPERUSER, CREATEROLE, BYPASSRLS or REPLICATION", Area: AreaRoles, Severity: High,
		Rationale: "Each extra superuser is a full-control account; CREATEROLE, BYPASSRLS and REPLICATION are nearly as powerful in their own ways. " +
			"CREATEROLE differs by major: before 16 it may grant itself every role that is not a superuser (pg_execute_server_program among them), so it is rated high there; from 16 it administers only the roles it created or was given ADMIN on, " +
			"and createrole_self_grant (16+) decides whether it also gets SET and INHERIT on each role it creates ('set, inherit' gives it their privileges as its own): the evidence says which applies.",
		References: refs(cis("4.3"), stig("V-233520", "V-233534", "V-233588", "V-233593", "V-233597", "V-233607"), devsec("postgres-08")),
		Check: func(c *Check) {
			roles, ok := c.roles()
			if !ok {
				return
			}
			var ps problems
			for _, r := range roles {
				if r.Predefined() || r.OID == bootstrapOID {
					continue
				}
				var attrs []string
				sev := Medium
				if r.Superuser {
					attrs = append(attrs, "SUPERUSER")
					sev = High
				}
				if r.CreateRole && !r.Superuser {
					attrs = append(attrs, "CREATEROLE")
					if m := c.S.MajorVersion(); m > 0 && m < 16 {
						// Before 16 CREATEROLE may grant itself any role that
						// is not a superuser, pg_execute_server_program and
						// pg_write_server_files included: a superuser in waiting.
						sev = High
					}
				}
				if r.BypassRLS && !r.Superuser {
					attrs = append(attrs, "BYPASSRLS")
				}
				if r.Replication && !r.Superuser {
					attrs = append(attrs, "REPLICATION")
				}
				if len(attrs) == 0 {
					continue
				}
				// A dedicated replication role (LOGIN REPLICATION and nothing
				// else: what REPL-01 and CIS 7.1 ask for) is a designated role,
				// not an excess attribute; REPL-01 checks there is one per purpose.
				if len(attrs) == 1 && attrs[0] == "REPLICATION" && r.CanLogin && !r.CreateDB {
					continue
				}
				login := "NOLOGIN"
				if r.CanLogin {
					login = "LOGIN"
				}
				p := Problem{Object: "role " + r.Name, Evidence: fmt.Sprintf("role %q (%s) has %s%s", r.Name, login, strings.Join(attrs, ", "), createRoleNote(c.S, r)),
					Expected: "only the designated administrator roles hold these attributes (waive this finding for them)",
					Severity: sev, SevSet: true}
				breaks := fmt.Sprintf("role %s loses %s: whatever it does with them (and its sessions that rely on them) fails", quote.Ident(r.Name), strings.Join(attrs, ", "))
				stmts := []sqlStmt{roleAttrStmt(r.Name, attrs...)}
				// A login role that stops being a superuser falls under
				// NET-05 (superusers are exempt from connection limits):
				// the same change sets its limit, or the next plan would.
				if r.Superuser && r.CanLogin && !r.Replication && r.ConnLimit < 0 {
					stmts = append(stmts, connLimitStmt(r))
					breaks += fmt.Sprintf("; sessions beyond %d at once are refused", connLimit)
				}
				// Thousands of roles with the same attributes are one finding:
				// a provisioning pattern, not thousands of decisions.
				ps.add(login+" "+strings.Join(attrs, ", "), sqlProblem(p, sqlChange("", true, breaks, stmts...)))
			}
			c.failRepeated(&ps, func(k string, members []Problem) (string, string, string) {
				return "roles with " + k, fmt.Sprintf("%s %s roles have %s: %s", textsafe.Thousands(len(members)), strings.Fields(k)[0], strings.SplitN(k, " ", 2)[1], someNames(stripRole(memberNames(members)))), ""
			})
		},
	})

	register(&Rule{
		ID: "PRIV-02", Title: "No login role reaches superuser through role membership", Area: AreaRoles, Severity: Critical,
		Rationale:  "A member of a superuser role can SET ROLE to it: the login role is a superuser in all but name, and attribute-only checks miss it.",
		References: cis("4.8"),
		Check: func(c *Check) {
			roles, ok := c.roles()
			if !ok {
				return
			}
			if g := c.S.Gap(snapshot.GapMemberships); g != "" {
				c.NotChecked("memberships", g)
				return
			}
			byName := map[string]snapshot.Role{}
			for _, r := range roles {
				byName[r.Name] = r
			}
			byMember := memberIndex(c.S)
			var ps problems
			for _, r := range roles {
				if !r.CanLogin || r.Superuser {
					continue
				}
				paths := reachable(byMember, r.Name)
				var targets []string
				for t := range paths {
					if t != r.Name && byName[t].Superuser {
						targets = append(targets, t)
					}
				}
				sort.Strings(targets)
				for _, t := range targets {
					path := paths[t]
					// Login roles that share the route after themselves (all
					// members of one group) are one finding once they are many.
					ps.add(strings.Join(path[1:], "\x00"), sqlProblem(Problem{Object: "role " + r.Name,
						Evidence: fmt.Sprintf("login role %q is a member of superuser %q: %s", r.Name, t, strings.Join(path, " → ")),
						Expected: "no membership path from a login role to a superuser role"},
						sqlChange("", true, fmt.Sprintf("role %s is no longer a member of %s: what it did through that role fails", quote.Ident(r.Name), quote.Ident(path[1])),
							revokeMembershipStmt(c.S, path[1], r.Name))))
				}
			}
			c.failRepeated(&ps, func(k string, members []Problem) (string, string, string) {
				route := strings.Split(k, "\x00")
				return "login roles via " + strings.Join(route, " → "), fmt.Sprintf("%s login roles (%s) are members of superuser %q: each → %s",
					textsafe.Thousands(len(members)), someNames(stripRole(memberNames(members))), route[len(route)-1], strings.Join(route, " → ")), ""
			})
		},
	})

	register(&Rule{
		ID: "PRIV-17", Title: "Ordinary roles do not hold server-file or program-execution roles", Area: AreaRoles, Severity: High,
		Rationale:  "pg_execute_server_program runs shell commands as the server's OS user; pg_read_server_files and pg_write_server_files read and write any file it can.",
		References: stig("V-233547", "V-233593", "V-233597", "V-233614"),
		Check: func(c *Check) {
			roles, ok := c.roles()
			if !ok {
				return
			}
			if g := c.S.Gap(snapshot.GapMemberships); g != "" {
				c.NotChecked("memberships", g)
				return
			}
			byMember := memberIndex(c.S)
			var ps problems
			for _, r := range roles {
				if r.Superuser || r.Predefined() {
					continue
				}
				paths := reachable(byMember, r.Name)
				for _, p := range powerfulPredefined {
					if path, ok := paths[p]; ok {
						ps.add(strings.Join(path[1:], "\x00"), sqlProblem(Problem{Object: "role " + r.Name,
							Evidence: fmt.Sprintf("role %q reaches %s: %s", r.Name, p, strings.Join(path, " → ")),
							Expected: "only administrators reach " + p},
							sqlChange("", true, fmt.Sprintf("role %s is no longer a member of %s: what it did through that role fails", quote.Ident(r.Name), quote.Ident(path[1])),
								revokeMembershipStmt(c.S, path[1], r.Name))))
					}
				}
			}
			c.failRepeated(&ps, func(k string, members []Problem) (string, string, string) {
				route := strings.Split(k, "\x00")
				return "roles via " + strings.Join(route, " → "), fmt.Sprintf("%s roles (%s) reach %s: each → %s",
					textsafe.Thousands(len(members)), someNames(stripRole(memberNames(members))), route[len(route)-1], strings.Join(route, " → ")), ""
			})
		},
	})

	register(&Rule{
		ID: "AUTH-11", Title: "New passwords are stored as SCRAM verifiers (password_encryption = scram-sha-256)", Area: AreaAuth, Severity: High,
		Rationale: "md5 verifiers are unsalted by anything but the role name and, once stolen, log in directly (pass-the-hash). " +
			"PostgreSQL 18 deprecates md5 passwords and warns when CREATE/ALTER ROLE stores one (md5_password_warnings, on by default). " +
			"md5_password_warnings = off only silences that warning to the session storing the password: it weakens nothing by itself, so it is reported as evidence here, not failed; the md5 verifiers themselves fail AUTH-11.verifiers on every major.",
		References: refs(stig("V-233596"), devsec("postgres-07")),
		Check: func(c *Check) {
			v, ok := c.setting("password_encryption")
			if !ok {
				return
			}
			quiet := ""
			if w, ok := c.S.Setting("md5_password_warnings"); ok && c.S.MajorVersion() >= 18 && !isOn(w.Value) {
				quiet = "; md5_password_warnings = off: the server does not warn whoever stores an md5 password"
			}
			if v.Value == "scram-sha-256" {
				c.Pass("setting password_encryption", settingEvidence(v)+quiet)
				return
			}
			p := c.setProblem(v, "scram-sha-256", "password_encryption = scram-sha-256")
			if c.S.MajorVersion() >= 18 {
				p.Evidence += " (md5 passwords are deprecated in PostgreSQL 18)"
			}
			p.Evidence += quiet
			c.Fail(p)
		},
	})

	register(&Rule{
		ID: "AUTH-11.verifiers", Title: "No role has an md5 or plaintext password stored", Area: AreaAuth, Severity: High,
		Rationale:  "An md5 verifier in pg_authid is as good as the password to anyone who reads it, and blocks moving the role to scram-sha-256 authentication.",
		References: refs(stig("V-233596"), devsec("postgres-07")),
		Check: func(c *Check) {
			roles, ok := c.roles()
			if !ok {
				return
			}
			if g := c.S.Gap(snapshot.GapPasswords); g != "" {
				c.NotChecked("pg_authid", g)
				return
			}
			var ps problems
			for _, r := range roles {
				switch r.Password {
				case snapshot.PasswordMD5, snapshot.PasswordPlaintext:
					sev := High
					if r.Password == snapshot.PasswordPlaintext {
						sev = Critical
					}
					ev := fmt.Sprintf("role %q has a %s password verifier in pg_authid", r.Name, r.Password)
					if r.Password == snapshot.PasswordMD5 && c.S.MajorVersion() >= 18 {
						ev += " (md5 passwords are deprecated in PostgreSQL 18 and will stop working in a later major)"
					}
					ps.add(string(r.Password), manualProblem(Problem{Object: "role " + r.Name, Evidence: ev,
						Expected: "a SCRAM-SHA-256 verifier (or no password for peer/cert-only roles)",
						Fix:      passwordFix(r.Name, "with password_encryption = scram-sha-256; the new password is hashed client-side"),
						FixKind:  FixShell, Severity: sev, SevSet: true}, passwordManual(r.Name)))
				}
			}
			c.failRepeated(&ps, func(kind string, members []Problem) (string, string, string) {
				ev := fmt.Sprintf("%s roles have a %s password verifier in pg_authid: %s", textsafe.Thousands(len(members)), kind, someNames(stripRole(memberNames(members))))
				if kind == snapshot.PasswordMD5 && c.S.MajorVersion() >= 18 {
					ev += " (md5 passwords are deprecated in PostgreSQL 18)"
				}
				return "roles with " + kind + " passwords", ev,
					"set a new password for each of these roles with psql's \\password (hashed client-side with scram-sha-256), then update the clients that use them"
			})
		},
	})

	register(&Rule{
		ID: "PRIV-09", Title: "PUBLIC cannot create objects in any schema", Area: AreaRoles, Severity: High,
		Rationale:  "CREATE for PUBLIC on a schema in everyone's search_path lets any role plant functions and operators that run with the rights of whoever calls them (CVE-2018-1058).",
		References: stig("V-233587", "V-233597"),
		Check: func(c *Check) {
			if c.S.Server == nil {
				c.NotChecked("schemas", "schemas are only known from a live server or a snapshot of one")
				return
			}
			for _, d := range c.S.Databases {
				if !d.Collected {
					if d.AllowConn {
						c.NotChecked("database "+d.Name, d.Gap)
					}
					continue
				}
				for _, sc := range d.Schemas {
					if acl.Holds(sc.ACL, acl.Public, "CREATE") {
						it, _ := itemOf(sc.ACL, false, acl.Public)
						c.Fail(sqlProblem(Problem{Object: fmt.Sprintf("schema %s.%s", d.Name, sc.Name),
							Evidence: fmt.Sprintf("database %q schema %q grants CREATE to PUBLIC (ACL %s)", d.Name, sc.Name, aclText(sc.ACL)),
							Expected: "no CREATE for PUBLIC (PostgreSQL 15+ default for new databases)"},
							sqlChange(d.Name, false, fmt.Sprintf("roles that relied on the PUBLIC grant lose it: only the owner and roles granted CREATE may create objects in schema %s of %s", quote.Ident(sc.Name), quote.Ident(d.Name)),
								revokeStmt(it, []string{"CREATE"}, "ON SCHEMA "+quote.Ident(sc.Name)).as(it.Grantor, sc.Owner))))
					}
				}
			}
		},
	})

	register(&Rule{
		ID: "PRIV-12", Title: "Databases do not grant CREATE to PUBLIC", Area: AreaRoles, Severity: High,
		Rationale:  "CREATE on a database lets any role create schemas (and so objects others may resolve through search_path).",
		References: stig("V-233597"),
		Check: func(c *Check) {
			if c.S.Server == nil {
				c.NotChecked("databases", "databases are only known from a live server or a snapshot of one")
				return
			}
			for _, d := range c.S.Databases {
				if acl.Holds(d.ACL, acl.Public, "CREATE") {
					it, _ := itemOf(d.ACL, false, acl.Public)
					p := sqlProblem(Problem{Object: "database " + d.Name, Evidence: fmt.Sprintf("database %q grants CREATE to PUBLIC (ACL %s)", d.Name, aclText(d.ACL)),
						Expected: "CREATE only for the owner and designated roles"},
						sqlChange("", false, fmt.Sprintf("roles that relied on the PUBLIC grant lose it: only the owner and roles granted CREATE may create schemas in %s", quote.Ident(d.Name)),
							revokeStmt(it, []string{"CREATE"}, "ON DATABASE "+quote.Ident(d.Name)).as(it.Grantor, d.Owner)))
					p.Database = d.Name
					c.Fail(p)
				}
			}
		},
	})
}

func aclText(items []acl.Item) string {
	var parts []string
	for _, it := range items {
		parts = append(parts, it.String())
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// eventRunsAs says whose rights an event trigger's function has: the
// function runs as the session's role (unless SECURITY DEFINER), so a
// login trigger runs as every role that logs in and a DDL trigger as every
// role that runs DDL, superusers included.
func eventRunsAs(event string) string {
	if event == "login" {
		return "every role that logs in, superusers included (PostgreSQL 17+)"
	}
	return "every role that runs the DDL it fires on, superusers included"
}

// superuserFor picks the superuser that takes over an event trigger or its
// function: the trigger's owner when it still is one, else the bootstrap
// superuser (which cannot lose SUPERUSER).
func superuserFor(s *snapshot.Snapshot, t snapshot.EventTrigger) string {
	if t.OwnerSuper {
		return t.Owner
	}
	for _, r := range s.Roles {
		if r.OID == bootstrapOID {
			return r.Name
		}
	}
	return ""
}

func init() {
	register(&Rule{
		ID: "PRIV-02.event-triggers", Title: "Event triggers run only code that superusers alone can change", Area: AreaRoles, Severity: Critical,
		Rationale: "An event trigger's function runs with the rights of whoever fires it: a login trigger (PostgreSQL 17+) as every role that logs in, a ddl_command_start/ddl_command_end/sql_drop/table_rewrite trigger as every role that runs DDL, superusers included. " +
			"Only a superuser can create an event trigger, but the function it runs may belong to (or later be handed to) a role that is not one, and a trigger's owner may be demoted: " +
			"whoever can act as the function's owner replaces its body with CREATE OR REPLACE FUNCTION and runs that code as the next superuser to log in or run DDL; a demoted owner can still disable or drop the trigger. " +
			"Before 16 every CREATEROLE role can grant itself any role that is not a superuser, so it counts among those who can act as such an owner.",
		References: []Reference{{"PostgreSQL docs", "CREATE EVENT TRIGGER; event-trigger-database-login (17)"}},
		Access:     "any login (pg_event_trigger, pg_proc, pg_roles and pg_has_role are readable by every role)",
		Check: func(c *Check) {
			dbs, ok := c.databases()
			if !ok {
				return
			}
			for _, d := range dbs {
				for _, t := range d.EventTriggers {
					checkEventTrigger(c, d.Name, t)
				}
			}
		},
	})
}

func checkEventTrigger(c *Check, db string, t snapshot.EventTrigger) {
	obj := fmt.Sprintf("event trigger %s.%s", db, t.Name)
	state := map[string]string{"O": "enabled", "D": "disabled", "R": "enabled on replicas only", "A": "always enabled"}[t.Enabled]
	desc := fmt.Sprintf("event trigger %q in database %q (ON %s, %s) runs %s owned by %q", t.Name, db, t.Event, state, t.Function, t.FunctionOwner)
	if t.SecDef {
		desc += " (SECURITY DEFINER)"
	} else {
		desc += " as " + eventRunsAs(t.Event)
	}
	if t.SearchPath == "" {
		desc += "; it pins no search_path"
	}
	super := superuserFor(c.S, t)
	failed := false
	if len(t.OwnerActors) > 0 {
		failed = true
		sev, how := Critical, fmt.Sprintf("roles that are not superusers and can replace its body: %s", someNames(t.Replacers))
		if len(t.Replacers) == 0 {
			// Without CREATE on the function's schema the body stays, but
			// the owner's ALTER FUNCTION still changes its search_path
			// (names in the body then resolve to objects of the owner's
			// choosing) and its ownership; CREATE on a schema is one grant away.
			sev, how = High, fmt.Sprintf("roles that are not superusers and can act as its owner (ALTER FUNCTION: search_path, owner; its body too once they get CREATE on its schema): %s", someNames(t.OwnerActors))
		}
		if t.Enabled == "D" || t.SecDef {
			// A disabled trigger runs nothing until a superuser enables it;
			// a SECURITY DEFINER function runs as its owner, who is not a
			// superuser here: the code is still foreign, the rights are not.
			sev = High
		}
		p := Problem{Object: obj, Database: db, Severity: sev, SevSet: true, Evidence: desc + "; " + how,
			Expected: "the trigger's function owned by a superuser, with no role that is not a superuser able to act as its owner"}
		if !t.FunctionOwnerSuper && super != "" {
			p = sqlProblem(p, sqlChange(db, true, fmt.Sprintf("role %s can no longer change %s: review the function's body, its old owner may already have replaced it", quote.Ident(t.FunctionOwner), t.Function),
				sqlStmt{do: fmt.Sprintf("ALTER FUNCTION %s OWNER TO %s", t.Function, quote.Ident(super)),
					undo: fmt.Sprintf("ALTER FUNCTION %s OWNER TO %s", t.Function, quote.Ident(t.FunctionOwner))}))
		} else {
			// The owner is a superuser and the others reach it through
			// membership: that is PRIV-02's escalation, revoked there.
			p = manualProblem(p, fmt.Sprintf("revoke from %s the membership (or ADMIN) that lets them act as %s (see PRIV-02), then review the body of %s", strings.Join(t.OwnerActors, ", "), t.FunctionOwner, t.Function))
		}
		c.Fail(p)
	}
	if !t.OwnerSuper {
		failed = true
		p := Problem{Object: obj + " owner", Database: db, Severity: High, SevSet: true,
			Evidence: fmt.Sprintf("%s; the trigger's owner %q is no longer a superuser and can still disable, rename or drop it", desc, t.Owner),
			Expected: "event triggers owned by superusers"}
		if super != "" {
			// The server refuses a non-superuser as an event trigger's new
			// owner: the old ownership cannot be restored, the undo says so.
			p = sqlProblem(p, sqlChange(db, true, fmt.Sprintf("role %s can no longer disable or drop the trigger", quote.Ident(t.Owner)),
				sqlStmt{do: fmt.Sprintf("ALTER EVENT TRIGGER %s OWNER TO %s", quote.Ident(t.Name), quote.Ident(super)),
					undo: "SELECT " + quote.Literal(fmt.Sprintf("event trigger %s cannot be given back to %s, which is not a superuser", t.Name, t.Owner))}))
		} else {
			p = manualProblem(p, fmt.Sprintf("ALTER EVENT TRIGGER %s OWNER TO a superuser", quote.Ident(t.Name)))
		}
		c.Fail(p)
	}
	if !failed {
		c.Pass(obj, desc+"; only superusers can change it")
	}
}

// createRoleNote says what CREATEROLE means for r on the audited major.
func createRoleNote(s *snapshot.Snapshot, r snapshot.Role) string {
	if !r.CreateRole || r.Superuser {
		return ""
	}
	m := s.MajorVersion()
	switch {
	case m == 0:
		return ""
	case m < 16:
		return fmt.Sprintf(" (on PostgreSQL %d CREATEROLE can grant itself any role that is not a superuser, pg_execute_server_program and pg_write_server_files included)", m)
	}
	note := " (from 16 CREATEROLE administers only the roles it created or holds ADMIN on"
	if v, ok := s.Setting("createrole_self_grant"); ok && strings.TrimSpace(v.Value) != "" {
		note += fmt.Sprintf("; createrole_self_grant = %q: it is granted %s on each role it creates", v.Value, v.Value)
		if strings.Contains(strings.ToLower(v.Value), "inherit") {
			note += ", so it uses their privileges as its own"
		}
	}
	return note + ")"
}
