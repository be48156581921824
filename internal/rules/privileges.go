package rules

import (
	"fmt"
	"net/netip"
	"sort"
	"strings"
	"time"

	"github.com/pgaegis/pgaegis/internal/acl"
	"github.com/pgaegis/pgaegis/internal/conninfo"
	"github.com/pgaegis/pgaegis/internal/privileges"
	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/remedy"
	"github.com/pgaegis/pgaegis/internal/snapshot"
	"github.com/pgaegis/pgaegis/internal/textsafe"
)

// databases returns the databases whose insides were read, reporting the
// others as not checked.
func (c *Check) databases() ([]*snapshot.Database, bool) {
	if c.S.Server == nil {
		c.NotChecked("databases", "database contents are only known from a live server or a snapshot of one")
		return nil, false
	}
	var out []*snapshot.Database
	for i := range c.S.Databases {
		d := &c.S.Databases[i]
		if d.Collected {
			out = append(out, d)
		} else if d.AllowConn {
			c.NotChecked("database "+d.Name, d.Gap)
		}
	}
	return out, true
}

// isAdmin: superusers and the roles that own databases administer them.
func isAdmin(s *snapshot.Snapshot, name string) bool {
	if r, ok := s.Role(name); ok && (r.Superuser || r.OID == bootstrapOID) {
		return true
	}
	return false
}

// untrustedLanguages are procedural languages that reach the OS.
var untrustedLanguages = map[string]bool{"plperlu": true, "plpythonu": true, "plpython2u": true, "plpython3u": true, "pltclu": true, "plsh": true, "plr": true, "pljavau": true, "plv8u": true}

// riskyExtensions: what each one exposes, and since/until which version it matters.
var riskyExtensions = map[string]struct {
	sev  Severity
	why  string
	note string
}{
	"adminpack":          {High, "reads, writes and deletes server files (pg_file_write ...)", "removed in PostgreSQL 17"},
	"dblink":             {Medium, "opens connections from the server: SSRF, and loopback logins that trust or peer rules accept", ""},
	"postgres_fdw":       {Medium, "opens connections from the server; user mappings store passwords", ""},
	"file_fdw":           {High, "reads server files and, with program, runs commands (pg_read_server_files / pg_execute_server_program)", ""},
	"lo":                 {Low, "large-object helpers; large objects bypass table privileges when lo_compat_privileges is on", ""},
	"pageinspect":        {Medium, "reads raw pages, including deleted rows", ""},
	"pg_buffercache":     {Low, "shows which relations are in memory across all databases", ""},
	"plperlu":            {High, "untrusted language: functions run as the server's OS user", ""},
	"plpython3u":         {High, "untrusted language: functions run as the server's OS user", ""},
	"plpythonu":          {High, "untrusted language: functions run as the server's OS user", ""},
	"pltclu":             {High, "untrusted language: functions run as the server's OS user", ""},
	"xml2":               {Low, "deprecated; XSLT processing of untrusted input", ""},
	"pg_stat_statements": {Info, "query texts of all roles are visible to pg_read_all_stats members", ""},
}

func init() {
	register(&Rule{
		ID: "AUTH-11.dictionary", Title: "No role has a password that is its own name or a common password", Area: AreaAuth, Severity: High,
		Rationale:  "pgaegis tries the role name and a small dictionary against the stored verifiers offline (as an attacker with a copy of pg_authid would); a hit means the password falls to the first guessing attempt.",
		References: []Reference{{"pgaegis", "weak passwords from verifiers"}},
		Access:     "superuser (pg_authid)",
		Check: func(c *Check) {
			roles, ok := c.roles()
			if !ok {
				return
			}
			if g := c.S.Gap(snapshot.GapWeakPasswords); g != "" && !strings.Contains(g, "budget") {
				c.NotChecked("pg_authid", g)
				return
			}
			for _, r := range roles {
				if r.WeakPassword == "" {
					continue
				}
				sev := High
				if r.Superuser || strings.HasPrefix(r.WeakPassword, "equal to the role name") {
					sev = Critical
				}
				c.Fail(manualProblem(Problem{Object: "role " + r.Name, Evidence: fmt.Sprintf("the password of %q is %s (found offline from its verifier; not shown)", r.Name, r.WeakPassword),
					Expected: "a long random password, or certificate/GSS authentication", Severity: sev, SevSet: true,
					Fix: passwordFix(r.Name, "set a new random password (hashed client-side)"), FixKind: FixShell}, passwordManual(r.Name)))
			}
			if g := c.S.Gap(snapshot.GapWeakPasswords); g != "" {
				c.NotChecked("pg_authid", g)
			}
		},
	})

	register(&Rule{
		ID: "AUTH-12", Title: "No login role without a password is reachable through trust", Area: AreaAuth, Severity: High,
		Rationale:  "A login role with no password that a trust rule matches can be used by anyone who reaches that rule.",
		References: devsec("postgres-06"),
		Check: func(c *Check) {
			roles, ok := c.roles()
			if !ok {
				return
			}
			rules, ok := c.hbaRules()
			if !ok {
				return
			}
			if g := c.S.Gap(snapshot.GapPasswords); g != "" {
				c.NotChecked("pg_authid", g)
				return
			}
			for _, r := range roles {
				if !r.CanLogin || (r.Password != snapshot.PasswordNone && r.Password != "") {
					continue
				}
				for i := range rules {
					h := &rules[i]
					if h.Method != "trust" || userCouldBe(c.S, h, r.Name) != "yes" {
						continue
					}
					sev := High
					if !h.IsHost() {
						sev = Medium
					}
					c.Fail(Problem{Object: "role " + r.Name, Location: h.Location(), Severity: sev, SevSet: true,
						Evidence: fmt.Sprintf("login role %q has no password and matches %s", r.Name, hbaEvidence(h)),
						Expected: "no trust rule for it (peer, scram-sha-256 or cert)", Fix: fmt.Sprintf("replace trust on %s with peer or scram-sha-256, then reload", h.Location()), FixKind: FixConfig, FixApply: "reload",
						Changes: trustLineChange(h, r.Name)})
					break
				}
			}
		},
	})

	register(&Rule{
		ID: "AUTH-19", Title: "Password lifetimes are managed (VALID UNTIL set, nothing expired still enabled)", Area: AreaAuth, Severity: Low,
		Rationale:  "Passwords without an expiry are never rotated; an expired role that keeps LOGIN is forgotten access waiting to be re-enabled.",
		References: []Reference{{"credcheck", "#5"}},
		Check: func(c *Check) {
			roles, ok := c.roles()
			if !ok {
				return
			}
			now := Now()
			var ps problems
			for _, r := range roles {
				if !r.CanLogin || r.Superuser || r.Password == snapshot.PasswordNone || r.Password == "" {
					continue
				}
				switch {
				case r.ValidUntil == nil || r.ValidUntil.Infinity > 0: // VALID UNTIL 'infinity' never expires
					ev := fmt.Sprintf("password role %q has no VALID UNTIL", r.Name)
					if r.ValidUntil != nil {
						ev = fmt.Sprintf("password role %q is VALID UNTIL 'infinity' (never expires)", r.Name)
					}
					// The expiry date is the rotation policy's choice, and a date
					// set without a new password locks the role out when it comes.
					ps.add("no expiry", manualProblem(Problem{Object: "role " + r.Name, Evidence: ev, Expected: "VALID UNTIL per the rotation policy",
						Fix: fmt.Sprintf("ALTER ROLE %s VALID UNTIL '%s';", quote.Ident(r.Name), now.AddDate(0, 6, 0).Format("2006-01-02")), FixKind: FixSQL},
						fmt.Sprintf("choose an expiry from your rotation policy and set it with the next password change: ALTER ROLE %s VALID UNTIL 'YYYY-MM-DD'", quote.Ident(r.Name))))
				case r.ValidUntil.Before(now):
					ps.add("expired", sqlProblem(Problem{Object: "role " + r.Name, Evidence: fmt.Sprintf("role %q expired on %s but keeps LOGIN", r.Name, r.ValidUntil.Format("2006-01-02")),
						Expected: "NOLOGIN once expired", Severity: Medium, SevSet: true},
						sqlChange("", false, fmt.Sprintf("role %s can no longer log in, even with certificate or peer authentication (its password expired on %s)", quote.Ident(r.Name), r.ValidUntil.Format("2006-01-02")),
							roleAttrStmt(r.Name, "LOGIN"))))
				}
			}
			c.failRepeated(&ps, func(k string, members []Problem) (string, string, string) {
				names := someNames(stripRole(memberNames(members)))
				if k == "expired" {
					return "expired login roles", fmt.Sprintf("%s roles whose password expired keep LOGIN: %s", textsafe.Thousands(len(members)), names), ""
				}
				return "password roles without an expiry", fmt.Sprintf("%s password roles have no VALID UNTIL (or 'infinity'): %s", textsafe.Thousands(len(members)), names),
					"choose an expiry from your rotation policy and set it with each role's next password change: ALTER ROLE <role> VALID UNTIL 'YYYY-MM-DD'"
			})
		},
	})

	register(&Rule{
		ID: "AUTH-15", Title: "Login roles are individual, not generic shared accounts", Area: AreaAuth, Severity: Low,
		Rationale:  "Shared accounts (admin, test, guest, dba) make the audit trail useless: nobody can tell who did what.",
		References: stig("V-233524", "V-233612"),
		Check: func(c *Check) {
			roles, ok := c.roles()
			if !ok {
				return
			}
			generic := map[string]bool{"admin": true, "administrator": true, "test": true, "testing": true, "guest": true, "demo": true, "user": true, "dba": true, "root": true, "sa": true, "shared": true, "temp": true, "dev": true}
			for _, r := range roles {
				if r.CanLogin && generic[strings.ToLower(r.Name)] {
					c.Fail(manualProblem(Problem{Object: "role " + r.Name, Evidence: fmt.Sprintf("login role %q has a generic name", r.Name), Expected: "one role per person or service; shared roles NOLOGIN, reached with SET ROLE",
						Fix: fmt.Sprintf("ALTER ROLE %s NOLOGIN;    -- after giving each user a role and GRANT %s TO <user>", quote.Ident(r.Name), quote.Ident(r.Name)), FixKind: FixSQL},
						fmt.Sprintf("give each person or service its own login role with GRANT %s TO that role, move the clients to them, then ALTER ROLE %s NOLOGIN", quote.Ident(r.Name), quote.Ident(r.Name))))
				}
			}
		},
	})

	register(&Rule{
		ID: "AUTH-10", Title: "User-name maps are explicit and do not map onto privileged roles by pattern", Area: AreaAuth, Severity: Medium,
		Rationale:  "A regular-expression map that can produce a superuser name lets any matching OS or certificate identity become that superuser.",
		References: stig("V-233615"),
		Check: func(c *Check) {
			if c.S.Ident == nil {
				reason := c.S.Gap(snapshot.GapIdent)
				if reason == "" {
					reason = "pg_ident.conf was not read"
				}
				c.NotChecked("pg_ident.conf", reason)
				return
			}
			maps := map[string]bool{}
			for _, m := range c.S.Ident.Maps {
				maps[m.Map] = true
				target := m.PGUser
				r, known := c.S.Role(target)
				privileged := known && r.Superuser
				if m.Regex && (privileged || strings.Contains(target, `\1`) || target == "all") {
					sev := Medium
					if privileged {
						sev = High
					}
					loc := fmt.Sprintf("%s:%d", m.File, m.Line)
					c.Fail(manualProblem(Problem{Object: "ident map " + m.Map, Location: loc, Severity: sev, SevSet: true,
						Evidence: fmt.Sprintf("%s: %s %s %s maps a pattern onto %s", loc, m.Map, m.SystemUser, m.PGUser, target),
						Expected: "explicit system-user to role lines for privileged roles", Fix: "replace the pattern at " + loc + " with explicit lines, then reload", FixKind: FixConfig, FixApply: "reload"},
						"replace the pattern at "+loc+" with one line per system user and role it must map (only you know which identities are meant), then reload"))
				}
			}
			if c.S.HBA != nil {
				for _, h := range c.S.HBA.Rules {
					if m, ok := h.Option("map"); ok && !maps[m] {
						c.Fail(manualProblem(Problem{Object: hbaObject(&h), Location: h.Location(), Evidence: fmt.Sprintf("%s uses map=%s, which pg_ident.conf does not define (every login through it fails)", hbaEvidence(&h), m),
							Expected: "the map defined in pg_ident.conf", Fix: "define map " + m + " in pg_ident.conf, then reload", FixKind: FixConfig, FixApply: "reload"},
							"define map "+m+" in pg_ident.conf with the system users it must accept, then reload"))
					}
				}
			}
		},
	})

	register(&Rule{
		ID: "AUTH-09", Title: "Accounts authenticate through an organisation-level mechanism (STIG)", Area: AreaAuth, Severity: Medium,
		Rationale:  "The STIG wants accounts managed centrally (Kerberos/GSS, LDAP, certificates, RADIUS) so that leavers lose access everywhere at once.",
		References: stig("V-233515"),
		Check: func(c *Check) {
			if c.Profile != "stig" {
				c.NotChecked("pg_hba.conf", "a STIG policy (scram-sha-256 is strong elsewhere): evaluated with --profile stig")
				return
			}
			rules, ok := c.hbaRules()
			if !ok {
				return
			}
			for i := range rules {
				r := &rules[i]
				switch r.Method {
				case "gss", "sspi", "ldap", "cert", "radius", "reject", "peer", "pam":
					continue
				}
				c.Fail(manualProblem(Problem{Object: hbaObject(r), Location: r.Location(), Evidence: hbaEvidence(r) + " authenticates with " + r.Method,
					Expected: "gss, ldap, cert or radius (document exceptions as waivers)", Fix: "use an organisation-level method on " + r.Location(), FixKind: FixConfig, FixApply: "reload", Severity: High, SevSet: true},
					"set up Kerberos, LDAP or client certificates for these roles, then use that method on "+r.Location()+" and reload"))
			}
		},
	})

	register(&Rule{
		ID: "PRIV-03", Title: "Superusers do not log in directly (set_user or NOLOGIN superuser roles)", Area: AreaRoles, Severity: Low,
		Rationale:  "CIS 4.8: administrators log in as themselves and escalate with set_user, which logs the switch; a superuser that logs in directly leaves no trail of who it was.",
		References: cis("4.8"),
		Check: func(c *Check) {
			roles, ok := c.roles()
			if !ok {
				return
			}
			_, setUser := c.S.AvailableExtensions["set_user"]
			for _, r := range roles {
				if r.Superuser && r.CanLogin && r.OID != bootstrapOID {
					c.Fail(manualProblem(Problem{Object: "role " + r.Name, Evidence: fmt.Sprintf("superuser %q can log in directly (set_user available: %v)", r.Name, setUser),
						Expected: "NOLOGIN superuser roles reached through set_user", Fix: fmt.Sprintf("ALTER ROLE %s NOLOGIN;    -- after installing set_user for escalation", quote.Ident(r.Name)), FixKind: FixSQL},
						fmt.Sprintf("install set_user and give each administrator a login role that may escalate with it; then ALTER ROLE %s NOLOGIN (done first, it locks the administrators out)", quote.Ident(r.Name))))
				}
			}
		},
	})

	register(&Rule{
		ID: "PRIV-06", Title: "SECURITY DEFINER functions pin search_path and are not executable by PUBLIC", Area: AreaRoles, Severity: High,
		Rationale:  "A SECURITY DEFINER function runs with its owner's rights: without a fixed search_path a caller can plant objects it resolves; executable by PUBLIC it is open to everyone.",
		References: refs(cis("4.5"), stig("V-233543"), devsec("postgres-19")),
		Check: func(c *Check) {
			dbs, ok := c.databases()
			if !ok {
				return
			}
			for _, d := range dbs {
				for _, f := range d.Functions {
					if !f.SecDef || f.Extension != "" || f.Schema == "pg_catalog" || f.Schema == "information_schema" {
						continue
					}
					pinned := false
					for _, cfg := range f.Config {
						if strings.HasPrefix(strings.ToLower(cfg), "search_path=") {
							pinned = true
						}
					}
					public := f.ACLDefault || acl.Holds(f.ACL, acl.Public, "EXECUTE")
					owner, _ := c.S.Role(f.Owner)
					powerful := owner != nil && (owner.Superuser || owner.BypassRLS)
					var why []string
					if !pinned {
						why = append(why, "no SET search_path")
					}
					if public {
						why = append(why, "EXECUTE for PUBLIC")
					}
					if f.DynamicSQL && powerful {
						why = append(why, "dynamic SQL (EXECUTE) with superuser rights")
					}
					if len(why) == 0 {
						continue
					}
					sev := Medium
					if (!pinned || f.DynamicSQL) && (public || powerful) {
						sev = High
					}
					if !pinned && public && powerful {
						sev = Critical
					}
					p := Problem{Database: d.Name, Object: fmt.Sprintf("function %s.%s", d.Name, f.Signature()), Severity: sev, SevSet: true,
						Evidence: fmt.Sprintf("SECURITY DEFINER function %s in database %q owned by %s: %s", f.Signature(), d.Name, f.Owner, strings.Join(why, ", ")),
						Expected: "SET search_path pinned, EXECUTE only for the roles that need it", FixKind: FixSQL}
					fn, fnErr := quote.Function(f.Schema, f.Name, f.Args)
					var stmts []sqlStmt
					if fnErr == nil && !pinned {
						stmts = append(stmts, pinSearchPathStmt(f, fn))
					}
					var breaks string
					if public && fnErr == nil {
						if st, ok := revokeExecuteStmt(f, fn, acl.Public); ok {
							stmts = append(stmts, st)
							breaks = fmt.Sprintf("roles that relied on the PUBLIC grant lose it: only the owner and roles granted EXECUTE may call %s", fn)
						}
					}
					switch {
					case fnErr != nil:
						c.Fail(manualProblem(p, fnErr.Error()+": fix it by hand"))
					case len(stmts) == 0:
						c.Fail(manualProblem(p, fmt.Sprintf("review the dynamic SQL of %s for injection (format() with %%I/%%L) and reduce its owner's rights", fn)))
					case f.DynamicSQL && powerful:
						// Pinning and revoking leave the dynamic SQL with its
						// owner's rights: that part stays a review.
						p = sqlProblem(p, sqlChange(d.Name, false, breaks, stmts...))
						// Say what the plan really does, no more.
						var does []string
						if !pinned {
							does = append(does, "pins its search_path")
						}
						if breaks != "" {
							does = append(does, "revokes EXECUTE from PUBLIC")
						}
						p.Changes = append(p.Changes, remedy.Change{Manual: fmt.Sprintf("review the dynamic SQL of %s for injection (format() with %%I/%%L) and reduce its owner's rights (the plan %s; roles granted EXECUTE keep it)", fn, strings.Join(does, " and "))})
						c.Fail(p)
					default:
						c.Fail(sqlProblem(p, sqlChange(d.Name, false, breaks, stmts...)))
					}
				}
			}
		},
	})

	register(&Rule{
		ID: "PRIV-17.functions", Title: "File, large-object and admin functions are not granted to ordinary roles", Area: AreaRoles, Severity: High,
		Rationale:  "EXECUTE on pg_read_file, lo_import, pg_ls_dir and similar gives a role the server's file system; on pg_terminate_backend or pg_reload_conf, control over the server.",
		References: stig("V-233547", "V-233593", "V-233597", "V-233614"),
		Check: func(c *Check) {
			dbs, ok := c.databases()
			if !ok {
				return
			}
			defaultGrantees := map[string]bool{"pg_monitor": true, "pg_signal_backend": true, "pg_checkpoint": true, "pg_read_server_files": true, "pg_write_server_files": true, "pg_execute_server_program": true, "pg_read_all_stats": true}
			for _, d := range dbs {
				for _, f := range d.Functions {
					// Untrusted user functions are PRIV-02.chains' (any grant, not only these names).
					if (f.SecDef || f.Untrusted) && f.Schema != "pg_catalog" {
						continue
					}
					for _, it := range f.ACL {
						if !it.Has("EXECUTE") || it.Grantee == f.Owner || defaultGrantees[it.Grantee] || isAdmin(c.S, it.Grantee) {
							continue
						}
						p := Problem{Database: d.Name, Object: fmt.Sprintf("function %s.%s", d.Name, f.Signature()),
							Evidence: fmt.Sprintf("%s can execute %s in database %q", it.Grantee, f.Signature(), d.Name),
							Expected: "only superusers and the matching predefined roles", FixKind: FixSQL}
						fn, err := quote.Function(f.Schema, f.Name, f.Args)
						if err != nil {
							c.Fail(manualProblem(p, err.Error()+": fix it by hand"))
							continue
						}
						// Built-ins belong to the bootstrap superuser.
						c.Fail(sqlProblem(p, sqlChange(d.Name, f.Schema == "pg_catalog", fmt.Sprintf("%s can no longer call %s", granteeSQL(it.Grantee), fn),
							revokeStmt(it, []string{"EXECUTE"}, "ON FUNCTION "+fn).as(it.Grantor, f.Owner))))
					}
				}
			}
		},
	})

	register(&Rule{
		ID: "PRIV-17.parameters", Title: "No ordinary role may SET or ALTER SYSTEM sensitive parameters", Area: AreaRoles, Severity: High,
		Rationale:  "GRANT SET / ALTER SYSTEM on a parameter (PostgreSQL 15+) lets a role change server behaviour, including turning logging and auditing off.",
		References: refs(stig("V-233547", "V-233597", "V-233600"), []Reference{{"pgaegis", "LOG-30"}}),
		Check: func(c *Check) {
			if c.S.Server == nil {
				c.NotChecked("pg_parameter_acl", "only known from a live server")
				return
			}
			if m := c.S.MajorVersion(); m < 15 {
				c.NotChecked("pg_parameter_acl", fmt.Sprintf("not applicable to PostgreSQL %d (parameter grants arrived in 15)", m))
				return
			}
			for _, p := range c.S.ParamACLs {
				for _, it := range p.ACL {
					if isAdmin(c.S, it.Grantee) {
						continue
					}
					var privs []string
					for _, g := range it.Grants {
						privs = append(privs, g.Privilege)
					}
					sev := Medium
					lname := strings.ToLower(p.Name)
					if strings.HasPrefix(lname, "log") || strings.HasPrefix(lname, "pgaudit") || it.Has("ALTER SYSTEM") {
						sev = High
					}
					c.Fail(sqlProblem(Problem{Object: "parameter " + p.Name, Severity: sev, SevSet: true,
						Evidence: fmt.Sprintf("%s holds %s on parameter %s", it.Grantee, strings.Join(privs, ", "), p.Name),
						Expected: "parameter privileges only for administrators"},
						sqlChange("", true, fmt.Sprintf("%s can no longer %s %s", granteeSQL(it.Grantee), strings.Join(privs, "/"), p.Name),
							revokeStmt(it, privs, "ON PARAMETER "+paramSQL(p.Name)))))
				}
			}
		},
	})

	register(&Rule{
		ID: "PRIV-08", Title: "Nothing in user schemas is granted to PUBLIC", Area: AreaRoles, Severity: High,
		Rationale:  "A grant to PUBLIC is a grant to every current and future role, including ones created for other applications.",
		References: refs(stig("V-233587"), devsec("postgres-17"), seeds("004: revoke PUBLIC")),
		Check: func(c *Check) {
			dbs, ok := c.databases()
			if !ok {
				return
			}
			for _, d := range dbs {
				for _, g := range d.PublicGrants {
					sev := High
					if g.Privilege == "SELECT" || g.Privilege == "REFERENCES" {
						sev = Medium
					}
					// One REVOKE per relation that really has the grant (USAGE is
					// a sequence privilege: ON ALL TABLES would not even parse).
					var stmts []sqlStmt
					var names []string
					for _, ri := range c.relationsIn(d, g.Schema) {
						r := &d.Relations[ri]
						if r.ACLDefault {
							continue
						}
						on := "ON TABLE "
						if r.Kind == "S" {
							on = "ON SEQUENCE "
						}
						qn := quote.Qualified(r.Schema, r.Name)
						// One item per grantor: each grant is revoked as the
						// role that made it.
						for _, it := range r.ACL {
							if it.Grantee == acl.Public && it.Has(g.Privilege) {
								stmts = append(stmts, revokeStmt(it, []string{g.Privilege}, on+qn).as(it.Grantor, r.Owner))
								if len(names) == 0 || names[len(names)-1] != qn {
									names = append(names, qn)
								}
							}
						}
					}
					// One finding per privilege, each its own object: they differ
					// in severity, and a fix of one must not be judged by the other.
					p := Problem{Database: d.Name, Object: fmt.Sprintf("schema %s.%s (%s)", d.Name, g.Schema, g.Privilege), Severity: sev, SevSet: true,
						Evidence: fmt.Sprintf("PUBLIC has %s on %d relation(s) in %s.%s (e.g. %s)", g.Privilege, g.Count, d.Name, g.Schema, g.Example),
						Expected: "grants to named roles only", FixKind: FixSQL, Objects: names}
					if len(stmts) == 0 {
						c.Fail(manualProblem(p, fmt.Sprintf("REVOKE %s ON <each relation> FROM PUBLIC in schema %s of database %s (the relations were not listed in the snapshot)", g.Privilege, quote.Ident(g.Schema), quote.Ident(d.Name))))
						continue
					}
					c.Fail(sqlProblem(p, sqlChange(d.Name, false, fmt.Sprintf("roles that relied on the PUBLIC grant lose it: %s on %s", g.Privilege, listSome(names)), stmts...)))
				}
				for _, l := range d.Languages {
					if untrustedLanguages[l.Name] && !l.Trusted && acl.Holds(l.ACL, acl.Public, "USAGE") {
						it, _ := itemOf(l.ACL, false, acl.Public)
						// The server refuses REVOKE (and GRANT) on an untrusted
						// language: both run while it is briefly marked trusted,
						// inside the step's transaction.
						rv := revokeStmt(it, []string{"USAGE"}, "ON LANGUAGE "+quote.Ident(l.Name)).as(it.Grantor, l.Owner)
						tr := untrustLanguageStmt(l.Name)
						rv.do = tr.undo + "; " + rv.do + "; " + tr.do
						rv.undo = tr.undo + "; " + rv.undo + "; " + tr.do
						c.Fail(sqlProblem(Problem{Object: fmt.Sprintf("language %s.%s", d.Name, l.Name), Severity: Critical, SevSet: true,
							Evidence: fmt.Sprintf("PUBLIC has USAGE on untrusted language %s in %q: any role can run code as the server's OS user", l.Name, d.Name),
							Expected: "no USAGE on untrusted languages"},
							sqlChange(d.Name, true, fmt.Sprintf("roles that relied on the PUBLIC grant lose it: only superusers may create functions in %s", quote.Ident(l.Name)), rv)))
					}
				}
				for _, fs := range d.ForeignServers {
					if acl.Holds(fs.ACL, acl.Public, "USAGE") {
						it, _ := itemOf(fs.ACL, false, acl.Public)
						c.Fail(sqlProblem(Problem{Object: fmt.Sprintf("foreign server %s.%s", d.Name, fs.Name), Severity: Medium, SevSet: true,
							Evidence: fmt.Sprintf("PUBLIC has USAGE on foreign server %s (%s)", fs.Name, fs.Wrapper),
							Expected: "USAGE for named roles"},
							sqlChange(d.Name, false, fmt.Sprintf("roles that relied on the PUBLIC grant lose it: USAGE on foreign server %s (their user mappings and foreign tables stop working)", quote.Ident(fs.Name)),
								revokeStmt(it, []string{"USAGE"}, "ON FOREIGN SERVER "+quote.Ident(fs.Name)).as(it.Grantor, fs.Owner))))
					}
				}
			}
		},
	})

	register(&Rule{
		ID: "PRIV-10", Title: "Privileges are not re-grantable by non-administrators", Area: AreaRoles, Severity: Medium,
		Rationale:  "WITH GRANT OPTION and WITH ADMIN OPTION let a role hand its access to others, outside any review.",
		References: devsec("postgres-18"),
		Check: func(c *Check) {
			dbs, ok := c.databases()
			if !ok {
				return
			}
			for _, d := range dbs {
				for _, g := range d.GrantOptions {
					if isAdmin(c.S, g.Grantee) {
						continue
					}
					p := Problem{Database: d.Name, Object: fmt.Sprintf("role %s", g.Grantee), Evidence: fmt.Sprintf("%s holds %s WITH GRANT OPTION on %d relation(s) in %s.%s (e.g. %s)", g.Grantee, g.Privilege, g.Count, d.Name, g.Schema, g.Example),
						Expected: "no grant option for non-administrators", FixKind: FixSQL}
					stmts, passedOn, names := c.grantOptionStmts(d, g)
					// Every relation the option is held on, in the finding.
					p.Objects = names
					if len(passedOn) > 0 {
						// Revoking the option would need CASCADE, which takes the
						// grants it made with it: who keeps them is a decision.
						c.Fail(manualProblem(p, fmt.Sprintf("%s has passed %s on to other roles on %s: decide who keeps it, then REVOKE GRANT OPTION FOR %s ... FROM %s CASCADE", granteeSQL(g.Grantee), g.Privilege, listSome(passedOn), g.Privilege, granteeSQL(g.Grantee))))
						continue
					}
					if len(stmts) == 0 {
						c.Fail(manualProblem(p, fmt.Sprintf("REVOKE GRANT OPTION FOR %s ON <each relation> of schema %s FROM %s (the relations were not listed in the snapshot)", g.Privilege, quote.Ident(g.Schema), granteeSQL(g.Grantee))))
						continue
					}
					c.Fail(sqlProblem(p, sqlChange(d.Name, false, fmt.Sprintf("%s can no longer grant %s to other roles", granteeSQL(g.Grantee), g.Privilege), stmts...)))
				}
			}
			for _, m := range c.S.Memberships {
				if m.Admin && !isAdmin(c.S, m.Member) && !strings.HasPrefix(m.Role, "pg_") {
					if r, ok := c.S.Role(m.Member); ok && r.CreateRole && c.S.MajorVersion() >= 16 {
						continue // 16+: CREATEROLE grants itself ADMIN on the roles it creates
					}
					p := Problem{Object: "role " + m.Member, Evidence: fmt.Sprintf("%s is a member of %s WITH ADMIN OPTION", m.Member, m.Role),
						Expected: "ADMIN OPTION only for administrators"}
					// From 16 a membership may have several grantors, and a
					// REVOKE undoes only the grant of the grantor it names (the
					// current role's by default, which does nothing here), and
					// refuses, short of CASCADE, while grants made with this
					// ADMIN OPTION depend on it.
					by := ""
					if v := c.S.MajorVersion(); v >= 16 {
						p.Evidence += fmt.Sprintf(" (granted by %s; PostgreSQL %d records each grantor's grant)", m.Grantor, v)
						if m.Grantor != "" {
							by = " GRANTED BY " + quote.Ident(m.Grantor)
						}
						if dep := grantsBy(c.S, m.Role, m.Member); len(dep) > 0 {
							c.Fail(manualProblem(p, fmt.Sprintf("%s has granted %s on to %s with this ADMIN OPTION: decide who keeps those grants, then REVOKE ADMIN OPTION FOR %s FROM %s%s CASCADE", quote.Ident(m.Member), quote.Ident(m.Role), listSome(dep), quote.Ident(m.Role), quote.Ident(m.Member), by)))
							continue
						}
					}
					c.Fail(sqlProblem(p,
						sqlChange("", false, fmt.Sprintf("%s can no longer grant %s to other roles", quote.Ident(m.Member), quote.Ident(m.Role)),
							sqlStmt{do: fmt.Sprintf("REVOKE ADMIN OPTION FOR %s FROM %s%s", quote.Ident(m.Role), quote.Ident(m.Member), by),
								undo: fmt.Sprintf("GRANT %s TO %s WITH ADMIN OPTION%s", quote.Ident(m.Role), quote.Ident(m.Member), by)})))
				}
			}
		},
	})

	register(&Rule{
		ID: "PRIV-11", Title: "Credential and statistics catalogs are readable only by administrators", Area: AreaRoles, Severity: High,
		Rationale:  "pg_authid holds every password verifier; pg_statistic holds samples of every column's values; pg_user_mapping holds foreign passwords.",
		References: refs(stig("V-233546"), devsec("postgres-09")),
		Check: func(c *Check) {
			if c.S.Server == nil || c.S.Gap("catalog.catalog ACLs") != "" {
				c.NotChecked("system catalogs", "catalog ACLs are only known from a live server")
				return
			}
			for _, cat := range c.S.CatalogACLs {
				for _, it := range cat.ACL {
					if it.Grantee == cat.Owner || isAdmin(c.S, it.Grantee) || !it.Has("SELECT") {
						continue
					}
					c.Fail(sqlProblem(Problem{Object: "catalog pg_catalog." + cat.Name, Evidence: fmt.Sprintf("%s can read pg_catalog.%s", it.Grantee, cat.Name),
						Expected: "the default ACL (superuser only)", Severity: Critical, SevSet: true},
						sqlChange("", true, fmt.Sprintf("%s can no longer read pg_catalog.%s", granteeSQL(it.Grantee), quote.Ident(cat.Name)),
							revokeStmt(it, []string{"SELECT"}, "ON TABLE pg_catalog."+quote.Ident(cat.Name)).as(it.Grantor, cat.Owner))))
				}
			}
		},
	})

	register(&Rule{
		ID: "PRIV-13", Title: "Objects are owned by owner roles, not by login roles", Area: AreaRoles, Severity: Low,
		Rationale:  "An application login role that owns its tables can drop them, disable RLS on them and grant them away; ownership belongs to a NOLOGIN owner role.",
		References: stig("V-233518", "V-233530", "V-233539"),
		Check: func(c *Check) {
			dbs, ok := c.databases()
			if !ok {
				return
			}
			for _, d := range dbs {
				for _, o := range d.Owners {
					r, ok := c.S.Role(o.Owner)
					if !ok || !r.CanLogin || r.Superuser {
						continue
					}
					c.Fail(manualProblem(Problem{Database: d.Name, Object: fmt.Sprintf("role %s", o.Owner), Evidence: fmt.Sprintf("login role %q owns %d relation(s) in database %q", o.Owner, o.Count, d.Name),
						Expected: "a NOLOGIN owner role owns them; the login role is granted what it needs", FixKind: FixSQL,
						Fix: fmt.Sprintf("CREATE ROLE %s NOLOGIN; REASSIGN OWNED BY %s TO %s;    -- in database %s, then grant back", quote.Ident(o.Owner+"_owner"), quote.Ident(o.Owner), quote.Ident(o.Owner+"_owner"), quote.Ident(d.Name))},
						// What the login role must keep (DML, DDL for migrations) is
						// the application's choice: a plain REASSIGN breaks it.
						fmt.Sprintf("create a NOLOGIN owner role (CREATE ROLE %s NOLOGIN), REASSIGN OWNED BY %s TO it in database %s, then grant %s the privileges the application needs (migrations may need SET ROLE to the owner)", quote.Ident(o.Owner+"_owner"), quote.Ident(o.Owner), quote.Ident(d.Name), quote.Ident(o.Owner))))
				}
			}
		},
	})

	register(&Rule{
		ID: "PRIV-14", Title: "Only owner roles can create objects in schemas", Area: AreaRoles, Severity: Medium,
		Rationale:  "A role that can create in a shared schema can plant functions and operators that others resolve through search_path.",
		References: stig("V-233587"),
		Check: func(c *Check) {
			dbs, ok := c.databases()
			if !ok {
				return
			}
			var ps problems
			for _, d := range dbs {
				for _, sc := range d.Schemas {
					if strings.HasPrefix(sc.Name, "pg_") || sc.Name == "information_schema" {
						continue
					}
					for _, it := range sc.ACL {
						if it.Grantee == acl.Public || it.Grantee == sc.Owner || it.Grantee == "pg_database_owner" || isAdmin(c.S, it.Grantee) || !it.Has("CREATE") {
							continue // PUBLIC is PRIV-09
						}
						r, _ := c.S.Role(it.Grantee)
						if r != nil && !r.CanLogin {
							continue // a NOLOGIN owner group is the intended pattern
						}
						ps.add(d.Name+"\x00"+it.Grantee, sqlProblem(Problem{Object: fmt.Sprintf("schema %s.%s", d.Name, sc.Name), Evidence: fmt.Sprintf("login role %s can create objects in %s.%s", it.Grantee, d.Name, sc.Name),
							Expected: "CREATE only for the schema's owner role"},
							sqlChange(d.Name, false, fmt.Sprintf("%s can no longer create objects in schema %s (migrations run as it fail)", quote.Ident(it.Grantee), quote.Ident(sc.Name)),
								revokeStmt(it, []string{"CREATE"}, "ON SCHEMA "+quote.Ident(sc.Name)).as(it.Grantor, sc.Owner))))
					}
				}
			}
			c.failRepeated(&ps, func(k string, members []Problem) (string, string, string) {
				db, role, _ := strings.Cut(k, "\x00")
				return fmt.Sprintf("schemas of %s where login role %s can create", db, role), fmt.Sprintf("login role %s can create objects in %s schemas of %s: %s", role, textsafe.Thousands(len(members)), db, someNames(memberNames(members))), ""
			})
		},
	})

	register(&Rule{
		ID: "PRIV-15", Title: "Default privileges do not grant future objects to PUBLIC", Area: AreaRoles, Severity: High,
		Rationale:  "ALTER DEFAULT PRIVILEGES ... TO PUBLIC silently exposes every table created from then on.",
		References: []Reference{{"pgaegis", "default privileges"}},
		Check: func(c *Check) {
			dbs, ok := c.databases()
			if !ok {
				return
			}
			kinds := map[string]string{"r": "TABLES", "S": "SEQUENCES", "f": "FUNCTIONS", "T": "TYPES", "n": "SCHEMAS"}
			for _, d := range dbs {
				for _, da := range d.DefaultACLs {
					for _, it := range da.ACL {
						if it.Grantee != acl.Public {
							continue
						}
						// PUBLIC EXECUTE on functions and USAGE on types are the built-in defaults.
						if (da.ObjType == "f" && len(it.Grants) == 1 && it.Has("EXECUTE")) || (da.ObjType == "T" && len(it.Grants) == 1 && it.Has("USAGE")) {
							continue
						}
						var privs []string
						for _, g := range it.Grants {
							privs = append(privs, g.Privilege)
						}
						in := ""
						if da.Schema != "" {
							in = " IN SCHEMA " + quote.Ident(da.Schema)
						}
						head := fmt.Sprintf("ALTER DEFAULT PRIVILEGES FOR ROLE %s%s ", quote.Ident(da.Role), in)
						c.Fail(sqlProblem(Problem{Object: fmt.Sprintf("default privileges of %s in %s", da.Role, d.Name),
							Evidence: fmt.Sprintf("future %s created by %s%s are granted %s to PUBLIC", strings.ToLower(kinds[da.ObjType]), da.Role, in, strings.Join(privs, ", ")),
							Expected: "default privileges for named roles only"},
							sqlChange(d.Name, false, fmt.Sprintf("roles that relied on the PUBLIC grant lose it: %s created by %s from now on are not granted %s to everyone (existing objects keep their grants)", strings.ToLower(kinds[da.ObjType]), quote.Ident(da.Role), strings.Join(privs, ", ")),
								sqlStmt{do: head + fmt.Sprintf("REVOKE %s ON %s FROM PUBLIC", strings.Join(privs, ", "), kinds[da.ObjType]),
									undo: head + fmt.Sprintf("GRANT %s ON %s TO PUBLIC", strings.Join(privs, ", "), kinds[da.ObjType])})))
					}
				}
			}
		},
	})

	register(&Rule{
		ID: "PRIV-16", Title: "Row-level security is enabled with real policies where tables hold several tenants", Area: AreaRoles, Severity: Medium,
		Rationale:  "RLS without a policy denies everything (or nothing for the owner); USING (true) allows everything; a tenant column without RLS relies on every query remembering its WHERE clause.",
		References: refs(cis("4.7"), stig("V-233521", "V-233525", "V-233595"), seeds("000: row-level security", "001: RLS", "004: RLS")),
		Check: func(c *Check) {
			dbs, ok := c.databases()
			if !ok {
				return
			}
			var ps problems
			for _, d := range dbs {
				for _, t := range d.RLSTables {
					obj := fmt.Sprintf("table %s.%s.%s", d.Name, t.Schema, t.Name)
					qn := quote.Ident(t.Schema) + "." + quote.Ident(t.Name)
					switch {
					case !t.Enabled && len(t.TenantColumns) > 0:
						// Which setting carries the tenant, its type and which roles
						// the policy binds are the application's: a template, never
						// applied automatically (rows vanish for every query at once).
						tmpl := fmt.Sprintf("write the tenant policy with the application, for example in database %s:\n"+
							"CREATE POLICY tenant_isolation ON %s USING (%s = current_setting('app.tenant_id', true)::bigint) WITH CHECK (%s = current_setting('app.tenant_id', true)::bigint);\n"+
							"ALTER TABLE %s ENABLE ROW LEVEL SECURITY;\n"+
							"(adjust the type; with missing_ok = true a session that has not run SET app.tenant_id sees no rows instead of failing, so deploy the application change that sets it first)",
							quote.Ident(d.Name), qn, quote.Ident(t.TenantColumns[0]), quote.Ident(t.TenantColumns[0]), qn)
						ps.add("tenant\x00"+d.Name+"\x00"+t.Schema, manualProblem(Problem{Database: d.Name, Object: obj, Evidence: fmt.Sprintf("%s has tenant column(s) %s but row-level security is off", qn, strings.Join(t.TenantColumns, ", ")),
							Expected: "ENABLE ROW LEVEL SECURITY with a policy on the tenant column (waive for single-tenant tables)", FixKind: FixSQL,
							Fix: fmt.Sprintf("ALTER TABLE %s ENABLE ROW LEVEL SECURITY;\nCREATE POLICY tenant_isolation ON %s USING (%s = current_setting('app.tenant_id', true)::%s);    -- in database %s; adjust the type; rows are hidden until the application sets app.tenant_id", qn, qn, quote.Ident(t.TenantColumns[0]), "bigint", quote.Ident(d.Name))}, tmpl))
					case t.Enabled && len(t.Policies) == 0:
						ps.add("nopolicy\x00"+d.Name+"\x00"+t.Schema, manualProblem(Problem{Database: d.Name, Object: obj, Evidence: fmt.Sprintf("%s has row-level security enabled and no policy: other roles see no rows, the owner sees all", qn),
							Expected: "policies that say who sees what", Fix: fmt.Sprintf("CREATE POLICY ... ON %s ...;    -- in database %s", qn, quote.Ident(d.Name)), FixKind: FixSQL, Severity: Low, SevSet: true},
							fmt.Sprintf("write the policies that say who sees which rows of %s (CREATE POLICY ... ON %s ...) in database %s", qn, qn, quote.Ident(d.Name))))
					}
					for _, p := range t.Policies {
						trivially := strings.TrimSpace(p.Using) == "true" || (p.Using == "" && strings.TrimSpace(p.WithCheck) == "true")
						if trivially && p.Permissive {
							c.Fail(manualProblem(Problem{Database: d.Name, Object: obj, Evidence: fmt.Sprintf("policy %q on %s is USING (true) for %s: it admits every row", p.Name, qn, strings.Join(p.Roles, ", ")),
								Expected: "a condition on the tenant or user", Fix: fmt.Sprintf("ALTER POLICY %s ON %s USING (<tenant condition>);    -- in database %s", quote.Ident(p.Name), qn, quote.Ident(d.Name)), FixKind: FixSQL},
								fmt.Sprintf("replace USING (true) with the tenant or user condition, for example ALTER POLICY %s ON %s USING (tenant_id = current_setting('app.tenant_id', true)::bigint) in database %s (rows are hidden until the application sets app.tenant_id)", quote.Ident(p.Name), qn, quote.Ident(d.Name))))
						}
						if (p.Command == "*" || p.Command == "a" || p.Command == "w") && p.WithCheck == "" && p.Using == "" {
							c.Fail(manualProblem(Problem{Object: obj, Evidence: fmt.Sprintf("write policy %q on %s has no USING or WITH CHECK", p.Name, qn),
								Expected: "WITH CHECK on the tenant condition", Fix: fmt.Sprintf("ALTER POLICY %s ON %s WITH CHECK (<tenant condition>);    -- in database %s", quote.Ident(p.Name), qn, quote.Ident(d.Name)), FixKind: FixSQL, Database: d.Name, Severity: Low, SevSet: true},
								fmt.Sprintf("add the tenant condition as WITH CHECK: ALTER POLICY %s ON %s WITH CHECK (tenant_id = current_setting('app.tenant_id', true)::bigint) in database %s", quote.Ident(p.Name), qn, quote.Ident(d.Name))))
						}
					}
					if t.Enabled && !t.Forced {
						if r, ok := c.S.Role(t.Owner); ok && r.CanLogin && !r.Superuser {
							ps.add("force\x00"+d.Name+"\x00"+t.Owner, sqlProblem(Problem{Object: obj, Evidence: fmt.Sprintf("%s is owned by login role %q and RLS is not forced: that role bypasses the policies", qn, t.Owner),
								Expected: "FORCE ROW LEVEL SECURITY, or a NOLOGIN owner"},
								sqlChange(d.Name, false, fmt.Sprintf("the owner %s becomes subject to the policies of %s: its queries see and change only the rows they allow", quote.Ident(t.Owner), qn),
									sqlStmt{do: fmt.Sprintf("ALTER TABLE %s FORCE ROW LEVEL SECURITY", qn), undo: fmt.Sprintf("ALTER TABLE %s NO FORCE ROW LEVEL SECURITY", qn)})))
						}
					}
				}
			}
			c.failRepeated(&ps, func(k string, members []Problem) (string, string, string) {
				parts := strings.Split(k, "\x00")
				n := textsafe.Thousands(len(members))
				switch parts[0] {
				case "tenant":
					return fmt.Sprintf("schema %s.%s (tenant tables without RLS)", parts[1], parts[2]),
						fmt.Sprintf("%s tables in %s.%s have a tenant column but row-level security off: %s", n, parts[1], parts[2], someNames(memberNames(members))),
						fmt.Sprintf("write the tenant policy of each table with the application, in database %s, for example: CREATE POLICY tenant_isolation ON <table> USING (tenant_id = current_setting('app.tenant_id', true)::bigint) WITH CHECK (...); ALTER TABLE <table> ENABLE ROW LEVEL SECURITY (deploy the application change that sets app.tenant_id first: with missing_ok a session that has not set it sees no rows)", quote.Ident(parts[1]))
				case "nopolicy":
					return fmt.Sprintf("schema %s.%s (RLS without policies)", parts[1], parts[2]),
						fmt.Sprintf("%s tables in %s.%s have row-level security enabled and no policy (other roles see no rows, the owner sees all): %s", n, parts[1], parts[2], someNames(memberNames(members))),
						fmt.Sprintf("write the policies that say who sees which rows of each table (CREATE POLICY ... ON <table> ...) in database %s", quote.Ident(parts[1]))
				}
				return fmt.Sprintf("tables of role %s in %s (RLS not forced)", parts[2], parts[1]),
					fmt.Sprintf("%s row-secured tables in database %q are owned by login role %q and RLS is not forced, so that role bypasses their policies: %s", n, parts[1], parts[2], someNames(memberNames(members))), ""
			})
			for _, r := range c.S.Roles {
				if r.BypassRLS && !r.Superuser && !r.Predefined() {
					c.Fail(sqlProblem(Problem{Object: "role " + r.Name, Evidence: fmt.Sprintf("role %q has BYPASSRLS: every policy is ignored for it", r.Name),
						Expected: "BYPASSRLS only for backup/maintenance roles", Severity: Low, SevSet: true},
						sqlChange("", true, fmt.Sprintf("role %s becomes subject to row-level security: a backup (pg_dump) run as it fails on tables with policies", quote.Ident(r.Name)),
							roleAttrStmt(r.Name, "BYPASSRLS"))))
				}
			}
		},
	})

	register(&Rule{
		ID: "PRIV-18", Title: "Views over row-secured tables run with the caller's rights", Area: AreaRoles, Severity: Medium,
		Rationale:  "A view reads its tables with its owner's rights: owned by a superuser or the table owner, it shows every row to whoever may read the view (security_invoker fixes this on 15+).",
		References: []Reference{{"Supabase splinter", "security_definer_view"}},
		Check: func(c *Check) {
			dbs, ok := c.databases()
			if !ok {
				return
			}
			var ps problems
			for _, d := range dbs {
				for _, v := range d.ViewsOverRLS {
					sev := Medium
					if r, ok := c.S.Role(v.Owner); ok && (r.Superuser || r.BypassRLS) {
						sev = High
					}
					p := Problem{Object: fmt.Sprintf("view %s.%s.%s", d.Name, v.Schema, v.Name), Severity: sev, SevSet: true,
						Evidence: fmt.Sprintf("view %s.%s (owner %s) reads row-secured table %s with its owner's rights", v.Schema, v.Name, v.Owner, v.Table),
						Expected: "security_invoker = true", FixKind: FixSQL, Database: d.Name}
					if c.S.MajorVersion() > 0 && c.S.MajorVersion() < 15 {
						ps.add(d.Name+"\x00"+v.Schema, manualProblem(p, "give the view an owner without BYPASSRLS that is subject to the table's policies"))
						continue
					}
					qv := quote.Qualified(v.Schema, v.Name)
					ps.add(d.Name+"\x00"+v.Schema, sqlProblem(p, sqlChange(d.Name, false, fmt.Sprintf("readers of %s need their own privileges on %s and see only the rows its policies allow them", qv, textsafe.String(v.Table)),
						sqlStmt{do: fmt.Sprintf("ALTER VIEW %s SET (security_invoker = true)", qv), undo: fmt.Sprintf("ALTER VIEW %s RESET (security_invoker)", qv)})))
				}
			}
			c.failRepeated(&ps, func(k string, members []Problem) (string, string, string) {
				db, schema, _ := strings.Cut(k, "\x00")
				return fmt.Sprintf("views of schema %s.%s over row-secured tables", db, schema),
					fmt.Sprintf("%s views in %s.%s read row-secured tables with their owner's rights: %s", textsafe.Thousands(len(members)), db, schema, someNames(memberNames(members))),
					"give the views an owner without BYPASSRLS that is subject to the tables' policies"
			})
		},
	})

	register(&Rule{
		ID: "EXT-02", Title: "Untrusted procedural languages are absent, and never marked trusted", Area: AreaHardening, Severity: High,
		Rationale:  "Functions in plperlu, plpython3u or pltclu run as the server's OS user; a language marked trusted lets any role with USAGE write such functions.",
		References: refs(stig("V-233614"), devsec("postgres-04", "postgres-05")),
		Check: func(c *Check) {
			dbs, ok := c.databases()
			if !ok {
				return
			}
			for _, d := range dbs {
				for _, l := range d.Languages {
					if !untrustedLanguages[l.Name] {
						continue
					}
					obj := fmt.Sprintf("language %s.%s", d.Name, l.Name)
					if l.Trusted && privileges.RuntimeTrustCheck[l.Name] {
						c.Fail(sqlProblem(Problem{Object: obj, Severity: Medium, SevSet: true,
							Evidence: fmt.Sprintf("untrusted language %s is marked trusted in %q: its handler then runs functions restricted like plperl, but any role with USAGE can create them", l.Name, d.Name),
							Expected: "lanpltrusted = false"}, untrustAndDropChange(d, l.Name)))
						continue
					}
					if l.Trusted {
						c.Fail(sqlProblem(Problem{Object: obj, Severity: Critical, SevSet: true,
							Evidence: fmt.Sprintf("untrusted language %s is marked trusted in %q: any role with USAGE runs code as the OS user", l.Name, d.Name),
							Expected: "lanpltrusted = false"}, untrustAndDropChange(d, l.Name)))
						continue
					}
					p := Problem{Database: d.Name, Object: obj, Evidence: fmt.Sprintf("untrusted language %s is installed in %q", l.Name, d.Name),
						Expected: "only trusted languages (plpgsql, sql)", Fix: fmt.Sprintf("DROP EXTENSION %s;    -- in database %s, if unused", quote.Ident(l.Name), quote.Ident(d.Name)), FixKind: FixSQL, Severity: Medium, SevSet: true}
					c.Fail(dropExtensionProblem(p, d, l.Name))
				}
			}
		},
	})

	register(&Rule{
		ID: "EXT-01", Title: "No risky extensions are installed", Area: AreaHardening, Severity: Medium,
		Rationale:  "Some extensions hand out file, network or raw-page access; every installed extension is code running in the server.",
		References: refs(stig("V-233592", "V-233593", "V-233594"), []Reference{{"pgdsat", "1.8"}}, seeds("004: remove unused extensions")),
		Check: func(c *Check) {
			dbs, ok := c.databases()
			if !ok {
				return
			}
			for _, d := range dbs {
				var others []string
				for _, e := range d.Extensions {
					risk, risky := riskyExtensions[e.Name]
					if !risky {
						if e.Name != "plpgsql" {
							others = append(others, e.Name+" "+e.Version)
						}
						continue
					}
					if untrustedLanguages[e.Name] {
						continue // EXT-02
					}
					note := ""
					if risk.note != "" {
						note = " (" + risk.note + ")"
					}
					c.Fail(dropExtensionProblem(Problem{Database: d.Name, Object: fmt.Sprintf("extension %s.%s", d.Name, e.Name), Severity: risk.sev, SevSet: true,
						Evidence: fmt.Sprintf("extension %s %s is installed in %q: %s%s", e.Name, e.Version, d.Name, risk.why, note),
						Expected: "only approved extensions (waive the ones you need)", Fix: fmt.Sprintf("DROP EXTENSION %s;    -- in database %s, if unused", quote.Ident(e.Name), quote.Ident(d.Name)), FixKind: FixSQL}, d, e.Name))
				}
				if len(others) > 0 {
					sort.Strings(others)
					c.Pass("database "+d.Name, "other extensions: "+strings.Join(others, ", "))
				}
			}
		},
	})

	register(&Rule{
		ID: "EXT-11", Title: "Foreign servers do not store passwords or waive password checks", Area: AreaHardening, Severity: Medium,
		Rationale:  "password_required=false lets a non-superuser connect out as the server's OS identity (peer/trust on the remote); stored user-mapping passwords are readable by the mapping's owner and superusers.",
		References: []Reference{{"pgaudit", "#166"}},
		Check: func(c *Check) {
			dbs, ok := c.databases()
			if !ok {
				return
			}
			for _, d := range dbs {
				for _, fs := range d.ForeignServers {
					for _, m := range fs.Mappings {
						obj := fmt.Sprintf("user mapping %s for %s in %s", fs.Name, m.User, d.Name)
						if m.PasswordOptional {
							head := fmt.Sprintf("ALTER USER MAPPING FOR %s SERVER %s OPTIONS ", granteeSQL(m.User), quote.Ident(fs.Name))
							c.Fail(sqlProblem(Problem{Object: obj, Severity: High, SevSet: true, Evidence: fmt.Sprintf("user mapping for %s on %s sets password_required=false", m.User, fs.Name),
								Expected: "password_required left on for non-superusers"},
								sqlChange(d.Name, true, fmt.Sprintf("%s must now send a password to the remote server through %s: connections that relied on peer or trust there fail", granteeSQL(m.User), quote.Ident(fs.Name)),
									sqlStmt{do: head + "(DROP password_required)", undo: head + "(ADD password_required 'false')"})))
						}
						for _, n := range m.OptionNames {
							if n == "password" {
								c.Fail(manualProblem(Problem{Object: obj, Evidence: fmt.Sprintf("user mapping for %s on %s stores a password (value not read)", m.User, fs.Name),
									Expected: "certificate or Kerberos authentication to the remote, or a documented exception", Fix: "use sslcert/sslkey options (postgres_fdw) instead of a stored password", FixKind: FixSQL, Severity: Low, SevSet: true},
									"issue a client certificate for the remote role (pgaegis tls issue client), set the mapping's sslcert/sslkey options and DROP its password option"))
							}
						}
					}
				}
			}
		},
	})

	register(&Rule{
		ID: "EXT-03", Title: "pgcrypto is available for column encryption (CIS 17)", Area: AreaHardening, Severity: Low,
		Rationale:  "Where data must be encrypted column by column, pgcrypto provides the functions; CIS 17 checks that it is available.",
		References: refs(cis("6.11"), stig("V-233586", "V-233590", "V-233605"), []Reference{{"pgdsat", "6.9"}}),
		Check: func(c *Check) {
			if c.S.Server == nil || c.S.AvailableExtensions == nil {
				c.NotChecked("pg_available_extensions", "only known from a live server")
				return
			}
			if _, ok := c.S.AvailableExtensions["pgcrypto"]; ok {
				c.Pass("pgcrypto", "available")
				return
			}
			c.Fail(manualProblem(Problem{Object: "pgcrypto", Evidence: "pgcrypto is not available on the server", Expected: "the contrib package installed",
				Fix: "apt-get install postgresql-contrib", FixKind: FixShell}, "install the server's contrib package (apt-get install postgresql-contrib on Debian) on the database host"))
		},
	})

	register(&Rule{
		ID: "REPL-01", Title: "Replication uses a dedicated role that is not a superuser", Area: AreaRoles, Severity: Medium,
		Rationale:  "Streaming as a superuser gives the standby (and anyone with its credentials) full control of the primary.",
		References: cis("7.1", "7.5"),
		Check: func(c *Check) {
			roles, ok := c.roles()
			if !ok {
				return
			}
			if c.S.Replication != nil {
				for _, w := range c.S.Replication.Senders {
					if r, ok := c.S.Role(w.User); ok && r.Superuser {
						c.Fail(manualProblem(Problem{Object: "role " + w.User, Evidence: fmt.Sprintf("a standby at %s streams as superuser %q", w.Client, w.User),
							Expected: "a NOSUPERUSER REPLICATION role", Fix: "CREATE ROLE replicator LOGIN REPLICATION PASSWORD <new password>;  -- then point primary_conninfo at it", FixKind: FixSQL},
							"create a dedicated role (CREATE ROLE replicator LOGIN REPLICATION, then \\password replicator), allow it in pg_hba.conf (hostssl replication replicator <standby>/32 scram-sha-256) and point the standby's primary_conninfo at it"))
					}
				}
			}
			n := 0
			for _, r := range roles {
				if r.Replication && !r.Superuser && r.CanLogin {
					n++
				}
			}
			if n > 1 {
				c.Fail(manualProblem(Problem{Object: "replication roles", Evidence: fmt.Sprintf("%d login roles have REPLICATION", n), Expected: "one replication role per purpose",
					Fix: "ALTER ROLE <unneeded> NOREPLICATION;", FixKind: FixSQL, Severity: Low, SevSet: true}, "find which replication roles standbys and backup tools use (pg_stat_replication), then ALTER ROLE ... NOREPLICATION the others"))
			}
		},
	})

	register(&Rule{
		ID: "REPL-03", Title: "Replication connections are encrypted", Area: AreaTLS, Severity: High,
		Rationale:  "A replication stream carries every change to every table; without TLS it can be read and altered on the network.",
		References: cis("7.5"),
		Check: func(c *Check) {
			if c.S.Replication != nil {
				for _, w := range c.S.Replication.Senders {
					if !w.SSL && w.Client != "" && w.Client != "127.0.0.1" && w.Client != "::1" {
						c.Fail(manualProblem(Problem{Object: "walsender " + w.Client, Evidence: fmt.Sprintf("standby %s streams as %q without TLS", w.Client, w.User),
							Expected: "hostssl replication rule and sslmode=verify-full in primary_conninfo", Fix: replicationHBA(w.User, w.Client), FixKind: FixConfig, FixApply: "reload"},
							// The standby must be changed first (sslmode, its CA), or
							// it is cut off: not something this server's plan can do.
							"set sslmode=verify-full and sslrootcert in the standby's primary_conninfo, then allow it with "+replicationHBA(w.User, w.Client)))
					}
				}
			}
			if v, ok := c.S.Setting("primary_conninfo"); ok && v.Value != "" {
				mode := ""
				for _, kv := range strings.Fields(v.Value) {
					if k, val, ok := strings.Cut(kv, "="); ok && k == "sslmode" {
						mode = strings.Trim(val, "'")
					}
				}
				if mode != "require" && mode != "verify-ca" && mode != "verify-full" {
					p := c.setProblem(v, "", "sslmode=verify-full in primary_conninfo")
					p.Evidence = fmt.Sprintf("primary_conninfo has sslmode=%q (value redacted)", mode)
					p.Fix, p.FixKind = "add sslmode=verify-full sslrootcert=... to primary_conninfo", FixConfig
					c.Fail(manualProblem(p, "add sslmode=verify-full sslrootcert=<the primary's CA> to primary_conninfo (the value holds connection secrets: edit it by hand), then reload"))
				}
			}
		},
	})

	register(&Rule{
		ID: "REPL-05", Title: "primary_conninfo does not embed a password", Area: AreaAuth, Severity: Medium,
		Rationale:  "A password in primary_conninfo sits in postgresql.auto.conf and is visible to anyone who can read settings; a passfile keeps it out.",
		References: []Reference{{"pgaegis", "CIS 7.5 example embeds a password"}},
		Check: func(c *Check) {
			v, ok := c.S.Setting("primary_conninfo")
			if !ok || v.Value == "" {
				c.NotChecked("setting primary_conninfo", "not a standby (primary_conninfo is empty)")
				return
			}
			// The value is already masked here; its shape still shows where a
			// password was (password=, sslpassword=, or a URI's user:password@).
			if len(conninfo.SecretSpans(v.Value)) > 0 {
				p := c.setProblem(v, "", "no password=; use passfile=/var/lib/postgresql/.pgpass (0600)")
				p.Evidence = "primary_conninfo contains a password (value redacted)"
				p.Fix, p.FixKind = "remove password= from primary_conninfo and add passfile=<path to a 0600 .pgpass>", FixConfig
				c.Fail(manualProblem(p, "move the password from primary_conninfo into a .pgpass file (mode 0600) and set passfile=<its path> instead, then reload"))
				return
			}
			c.Pass("setting primary_conninfo", "no embedded password")
		},
	})

	register(&Rule{
		ID: "BKP-02", Title: "WAL archiving is on and healthy", Area: AreaHardening, Severity: Medium,
		Rationale:  "Without archiving there is no point-in-time recovery; an archiver that keeps failing fills the disk and silently stops protecting you.",
		References: cis("7.4"),
		Check: func(c *Check) {
			v, ok := c.setting("archive_mode")
			if !ok {
				return
			}
			// A files-only audit may not have them: the name stays, the
			// value is the built-in default (empty).
			cmd, found := c.S.Setting("archive_command")
			if !found {
				cmd = snapshot.Setting{Name: "archive_command", Origin: snapshot.FromDefault}
			}
			if cmd.Value == "(disabled)" && c.S.Config != nil {
				// The server shows "(disabled)" while archive_mode is off;
				// the files have the command itself.
				cmd.Value = ""
				if e, ok := c.S.Config.Get("archive_command"); ok {
					cmd.Value = e.Value
				}
			}
			lib, _ := c.S.Setting("archive_library")
			noArchiver := strings.TrimSpace(cmd.Value) == "" || cmd.Value == "(disabled)"
			noArchiver = noArchiver && strings.TrimSpace(lib.Value) == ""
			if !isOn(v.Value) && !strings.EqualFold(v.Value, "always") {
				// The planner proposes archive_mode = on only with an
				// archiver configured (Requires archive-command): without
				// one, WAL piles up in pg_wal until the disk is full.
				p := c.setProblem(v, "on", "archive_mode = on with a working archive_command or archive_library (your backup tool's)")
				if noArchiver {
					comment := "# "
					if p.FixKind == FixSQL {
						comment = "-- "
					}
					p.Fix = comment + "first set archive_command (or archive_library) to your backup tool's archive command, then:\n" + p.Fix
				}
				c.Fail(p)
				return
			}
			if noArchiver {
				p := c.setProblem(cmd, "", "an archive_command or archive_library")
				p.Evidence += ": archive_mode is on and WAL segments pile up in pg_wal"
				p.Fix, p.FixKind = "# set archive_command (or archive_library) to your backup tool's archive command, then reload", FixConfig
				c.Fail(p)
				return
			}
			if r := c.S.Replication; r != nil && r.FailedCount > 0 && r.LastFailed != nil && (r.LastArchived == nil || r.LastFailed.After(*r.LastArchived)) {
				c.Fail(Problem{Object: "archiver", Evidence: fmt.Sprintf("the archiver's last attempt failed (%d failures, last at %s)", r.FailedCount, r.LastFailed.Format(time.RFC3339)),
					Expected: "archiving succeeding", Fix: "# check the server log for archive_command errors", FixKind: FixShell, Severity: High, SevSet: true,
					Changes: manualChange("find why archive_command fails in the server log and pg_stat_archiver, and repair it: until then WAL piles up in pg_wal")})
				return
			}
			c.Pass("archiver", "archive_mode on, archiving configured")
		},
	})

}

// passwordFix is the psql command that sets a role's password with the
// hash made client-side. psql's \password reads its argument as an SQL
// name in double quotes but knows no U&"..." form, so a role whose name
// holds a control character gets an explanation instead of a command that
// would name another role.
func passwordFix(role, why string) string {
	id := quote.Ident(role)
	if strings.HasPrefix(id, "U&") {
		return "# role " + id + " has control characters in its name, which psql's \\password cannot take: rename it (ALTER ROLE " + id + " RENAME TO ...), then set its password with \\password"
	}
	return fmt.Sprintf("psql -c %s    # %s", quote.Shell(`\password `+id), why)
}

// paramSQL renders a parameter name for GRANT/REVOKE ... ON PARAMETER: a
// dotted custom name is a list of identifiers.
// grantsBy lists the members of role whose grant was made by grantor
// (16+: a grant depends on its grantor's ADMIN OPTION).
func grantsBy(s *snapshot.Snapshot, role, grantor string) []string {
	var out []string
	for _, m := range s.Memberships {
		if m.Role == role && m.Grantor == grantor && m.Member != grantor {
			out = append(out, m.Member)
		}
	}
	return out
}

func paramSQL(name string) string { return quote.Qualified(strings.Split(name, ".")...) }

// funcFix renders a fix about a function through sql(signature), or, when
// the argument list is not the server's rendering (a hand-edited snapshot),
// a note that names the function without being executable.
func funcFix(f snapshot.Function, sql func(fn string) string) string {
	fn, err := quote.Function(f.Schema, f.Name, f.Args)
	if err != nil {
		return "-- " + err.Error() + ": fix it by hand"
	}
	return sql(fn)
}

// replicationHBA is the pg_hba.conf line for a standby's role and address,
// or an explanation when the role cannot be written as an hba token.
func replicationHBA(user, client string) string {
	tok, err := quote.HBAToken(user)
	if err != nil {
		return "add a hostssl replication line for role " + quote.Ident(user) + " (" + err.Error() + ": rename the role first)"
	}
	addr, perr := netip.ParseAddr(client)
	if perr != nil {
		return "hostssl replication " + tok + " <standby-ip>/32 scram-sha-256    # and reject plain replication"
	}
	return "hostssl replication " + tok + " " + netip.PrefixFrom(addr, addr.BitLen()).String() + " scram-sha-256    # and reject plain replication"
}

// granteeSQL renders a grantee for GRANT/REVOKE.
func granteeSQL(name string) string {
	if name == acl.Public {
		return "PUBLIC"
	}
	return quote.Ident(name)
}

// untrustLanguageFix is the one text of the fix for a language marked
// trusted (EXT-02 and the escalation chain print the same statement, so the
// report can show it once).
func untrustLanguageFix(lang, database string) string {
	return fmt.Sprintf("UPDATE pg_language SET lanpltrusted = false WHERE lanname = %s;    -- as superuser in database %s", quote.Literal(lang), quote.Ident(database))
}
