package privileges

import (
	"fmt"
	"strings"

	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// Step is one link of an escalation chain, with its evidence.
type Step struct {
	What     string `json:"what"`
	Evidence string `json:"evidence"`
}

// Chain is a way for a non-superuser login role to gain superuser power or
// reach the server's operating system.
type Chain struct {
	Role  string `json:"role"`
	Gains string `json:"gains"` // "superuser", "OS command execution", "server file access", "server configuration"
	Kind  string `json:"kind"`  // membership, createrole, admin, security-definer, language, parameter, untrusted-function
	// Severity is "medium" for a chain that is a review rather than a
	// proven path (a plain superuser SECURITY DEFINER function anyone may
	// call); empty means critical.
	Severity string `json:"severity,omitempty"`
	Steps    []Step `json:"steps"`
	Object   string `json:"object,omitempty"`
	// The object again, structured, for fixes: Object is for people, and
	// re-parsing it would split a schema named "a.b" in the wrong place.
	Database string `json:"database,omitempty"`
	Schema   string `json:"schema,omitempty"`
	Name     string `json:"name,omitempty"` // role, function, language or parameter name
	Args     string `json:"args,omitempty"` // function identity arguments, as the server renders them
	// Target is the superuser or OS role an "admin" chain (or a
	// "createrole" one through another role) ends at; Name is the role
	// granted, whose ADMIN OPTION the fix revokes.
	Target string `json:"target,omitempty"`
}

// 17's pg_maintain (and MAINTAIN on a relation) is no chain: its
// commands run the owner's index expressions and materialized view
// queries as the owner, but under a security-restricted operation with
// search_path = pg_catalog, pg_temp, so nothing the holder wrote is
// found; escalate_oracle_test.go checks this on 17 and 18.

// osRoles are predefined roles that reach the host.
var osRoles = map[string]string{
	"pg_execute_server_program": "OS command execution (COPY ... PROGRAM)",
	"pg_write_server_files":     "server file access (writes any file the server can)",
	"pg_read_server_files":      "server file access (reads any file the server can)",
}

// dangerousParams let whoever may ALTER SYSTEM them run code as the server.
var dangerousParams = map[string]bool{"archive_command": true, "archive_library": true, "restore_command": true,
	"shared_preload_libraries": true, "session_preload_libraries": true, "local_preload_libraries": true,
	"dynamic_library_path": true, "ssl_passphrase_command": true, "recovery_end_command": true, "archive_cleanup_command": true}

var untrusted = map[string]bool{"plperlu": true, "plpythonu": true, "plpython2u": true, "plpython3u": true, "pltclu": true, "plsh": true, "plr": true, "pljavau": true, "plv8u": true}

// RuntimeTrustCheck lists untrusted languages whose handler reads
// lanpltrusted when it compiles a function: marked trusted, PL/Perl runs
// functions in its restricted (Safe) interpreter, so the flag alone gives
// no OS access. The others ignore the flag and stay unrestricted.
var RuntimeTrustCheck = map[string]bool{"plperlu": true}

// Escalations finds the chains for every non-superuser login role.
func (m *Model) Escalations(s *snapshot.Snapshot) []Chain {
	var out []Chain
	// Targets: superuser roles and the OS roles (few, whatever the size).
	var targets []int
	for ti := range m.Roles {
		if _, os := osRoles[m.Roles[ti].Name]; m.Roles[ti].Super || os {
			targets = append(targets, ti)
		}
	}
	for ri := range m.Roles {
		r := &m.Roles[ri]
		if r.Super || !r.Login || r.Predefined {
			continue
		}
		// 1. Membership: SET ROLE (or inheritance) into a superuser or an OS role.
		for _, ti := range targets {
			t := &m.Roles[ti]
			if ti == ri {
				continue
			}
			viaSet := m.CanSetRole(ri, ti)
			viaInherit := m.HasPrivsOfRole(ri, ti)
			if !viaSet && !viaInherit {
				continue
			}
			gain := ""
			if t.Super {
				if !viaSet {
					// The superuser attribute is never inherited: a 16+
					// grant WITH SET FALSE gives the role's grants and
					// objects, which has_*_privilege already counts.
					continue
				}
				gain = "superuser"
			} else if g, ok := osRoles[t.Name]; ok {
				gain = g
			}
			if gain == "" {
				continue
			}
			path := m.membershipPath(ri, ti)
			how := "SET ROLE " + t.Name
			if !viaSet {
				how = "inherits " + t.Name
			}
			out = append(out, Chain{Role: r.Name, Gains: gain, Kind: "membership", Object: "role " + t.Name, Name: t.Name,
				Steps: []Step{{What: "membership", Evidence: strings.Join(path, " → ")}, {What: how, Evidence: fmt.Sprintf("%s is %s", t.Name, gainWord(t.Super, gain))}}})
		}
		// 2. CREATEROLE before 16 can grant itself any non-superuser role.
		if r.CreateRole && m.Version > 0 && m.Version < 16 {
			out = append(out, Chain{Role: r.Name, Gains: osRoles["pg_execute_server_program"], Kind: "createrole", Object: "role " + r.Name, Name: r.Name,
				Steps: []Step{{What: "CREATEROLE", Evidence: fmt.Sprintf("%s has CREATEROLE on PostgreSQL %d", r.Name, m.Version)},
					{What: "GRANT pg_execute_server_program TO " + quote.Ident(r.Name), Evidence: fmt.Sprintf("PostgreSQL %d (before 16): CREATEROLE may grant any non-superuser role, the predefined OS roles included, to anyone, itself too, and change the password of any role that is neither a superuser nor a replication role, and then log in as it; from 16 it needs ADMIN OPTION on the role", m.Version)}}})
		}
		// 3. From 16, ADMIN OPTION on a role without SET or INHERIT is no
		// membership a path above follows, yet it lets the holder grant
		// that role to itself WITH SET, INHERIT, with or without
		// CREATEROLE. The role granted may be the OS role itself or any
		// role whose own memberships reach an OS role or a superuser.
		// Before 16 a member may always SET ROLE, so ADMIN OPTION adds
		// nothing there, but CREATEROLE may grant itself a non-superuser
		// role that is a member of a superuser (the OS roles are chain 2).
		if m.Version >= 16 || (r.CreateRole && m.Version > 0) {
			out = append(out, m.adminChains(ri)...)
		}
	}
	for _, d := range s.Databases {
		if !d.Collected {
			continue
		}
		// Inside the database: its owner has pg_database_owner's grants.
		out = append(out, m.InDatabase(d.Name).secdefChains(s, &d)...)
		out = append(out, m.InDatabase(d.Name).languageChains(&d)...)
		out = append(out, m.InDatabase(d.Name).untrustedChains(&d)...)
	}
	out = append(out, m.parameterChains(s)...)
	return out
}

// adminChains: what role ri reaches by granting itself, WITH SET TRUE,
// INHERIT TRUE, a role it holds ADMIN OPTION on (16+). A self-granted
// role y gives ri y's privileges and every SET ROLE y may do, so the
// target t is reached when y is t, y may SET ROLE t, or (for an OS role,
// whose privileges are what counts) y inherits t. One chain per target,
// through the first such y; targets ri already reaches are the
// membership chains' business.
func (m *Model) adminChains(ri int) []Chain {
	r := &m.Roles[ri]
	var out []Chain
	for ti := range m.Roles {
		t := &m.Roles[ti]
		gain, os := osRoles[t.Name]
		if t.Super {
			gain = "superuser"
		} else if !os || m.Version < 16 {
			continue
		}
		if ti == ri || m.CanSetRole(ri, ti) || (!t.Super && m.HasPrivsOfRole(ri, ti)) {
			continue
		}
		for yi := range m.Roles {
			y := &m.Roles[yi]
			if yi == ri || y.Super {
				continue
			}
			if yi != ti && !m.CanSetRole(yi, ti) && (t.Super || !m.HasPrivsOfRole(yi, ti)) {
				continue
			}
			ok, why := m.CanGrantSelf(ri, yi)
			if !ok {
				continue
			}
			steps := []Step{{What: "ADMIN OPTION on " + y.Name, Evidence: why},
				{What: "GRANT " + quote.Ident(y.Name) + " TO " + quote.Ident(r.Name) + " WITH SET TRUE, INHERIT TRUE", Evidence: fmt.Sprintf("PostgreSQL %d: ADMIN OPTION lets a role grant the role to anyone, itself included, with SET and INHERIT, CREATEROLE or not", m.Version)}}
			kind := "admin"
			if m.Version < 16 {
				kind = "createrole"
				steps[0].What = "CREATEROLE"
				steps[1] = Step{What: "GRANT " + quote.Ident(y.Name) + " TO " + quote.Ident(r.Name), Evidence: fmt.Sprintf("PostgreSQL %d (before 16): CREATEROLE may grant any non-superuser role, to itself too", m.Version)}
			}
			if yi != ti {
				how := "inherits " + t.Name
				if m.CanSetRole(yi, ti) {
					how = "SET ROLE " + t.Name
				}
				steps = append(steps[:1], Step{What: how + " through " + y.Name, Evidence: strings.Join(m.membershipPath(yi, ti), " → ") + ": " + t.Name + " is " + gainWord(t.Super, gain)}, steps[1])
			}
			out = append(out, Chain{Role: r.Name, Gains: gain, Kind: kind, Object: "role " + y.Name, Name: y.Name, Target: t.Name, Steps: steps})
			break
		}
	}
	return out
}

// CanGrantSelf reports whether role x may run GRANT y TO x, as
// AddRoleMems decides on the model's major, and why: no one but a
// superuser grants a superuser role, and pg_database_owner (14+) takes
// no explicit members. Before 16, CREATEROLE grants any other role, and
// so does ADMIN OPTION held through any membership path; from 16
// CREATEROLE alone grants nothing, and the ADMIN OPTION must be held by x
// or a role whose privileges x inherits (select_best_admin), not merely
// by a role x is a member of.
func (m *Model) CanGrantSelf(x, y int) (bool, string) {
	xr, yr := &m.Roles[x], &m.Roles[y]
	switch {
	case xr.Super:
		return true, xr.Name + " is a superuser"
	case yr.Super:
		return false, yr.Name + " is a superuser: only superusers grant it"
	case yr.Name == "pg_database_owner" && m.Version >= 14:
		return false, "pg_database_owner takes no explicit members"
	case x == y || m.memberSet(y).has(x):
		return false, fmt.Sprintf("%s is a member of %s: the grant would be circular", yr.Name, xr.Name)
	}
	if m.Version < 16 {
		if xr.CreateRole {
			return true, fmt.Sprintf("%s has CREATEROLE, and before 16 CREATEROLE grants any non-superuser role (PostgreSQL %d)", xr.Name, m.Version)
		}
		if m.IsAdminOfRole(x, y) {
			return true, fmt.Sprintf("%s holds ADMIN OPTION on %s (PostgreSQL %d)", xr.Name, yr.Name, m.Version)
		}
		return false, fmt.Sprintf("%s has neither CREATEROLE nor ADMIN OPTION on %s", xr.Name, yr.Name)
	}
	var via = -1
	m.privsOf[x].each(func(r int) {
		for _, e := range m.edges[r] {
			if e.to == y && e.admin && via < 0 {
				via = r
			}
		}
	})
	if via < 0 {
		return false, fmt.Sprintf("%s holds no ADMIN OPTION on %s, itself or through a role whose privileges it inherits; from 16 CREATEROLE alone does not let it grant a role (PostgreSQL %d)", xr.Name, yr.Name, m.Version)
	}
	if via == x {
		return true, fmt.Sprintf("%s was granted %s WITH ADMIN OPTION (PostgreSQL %d)", xr.Name, yr.Name, m.Version)
	}
	return true, fmt.Sprintf("%s inherits the privileges of %s, which was granted %s WITH ADMIN OPTION (PostgreSQL %d)", xr.Name, m.Roles[via].Name, yr.Name, m.Version)
}

// CanAlterPassword reports whether role x may change role y's password
// (AlterRole's checks): its own always; a superuser's never; before 16
// CREATEROLE changes any other role's, except a replication role's
// (a BYPASSRLS role's it may: only the attribute itself needs a
// superuser); from 16 CREATEROLE needs ADMIN OPTION on the role as well.
func (m *Model) CanAlterPassword(x, y int) (bool, string) {
	xr, yr := &m.Roles[x], &m.Roles[y]
	switch {
	case xr.Super:
		return true, xr.Name + " is a superuser"
	case x == y:
		return true, "a role may change its own password"
	case yr.Super:
		return false, yr.Name + " is a superuser"
	case !xr.CreateRole:
		return false, xr.Name + " has no CREATEROLE"
	}
	if m.Version < 16 {
		if yr.Replication {
			return false, fmt.Sprintf("before 16 only superusers alter replication roles (PostgreSQL %d)", m.Version)
		}
		return true, fmt.Sprintf("before 16 CREATEROLE alters any role that is neither a superuser nor a replication role (PostgreSQL %d)", m.Version)
	}
	if m.IsAdminOfRole(x, y) {
		return true, fmt.Sprintf("%s has CREATEROLE and ADMIN OPTION on %s (PostgreSQL %d)", xr.Name, yr.Name, m.Version)
	}
	return false, fmt.Sprintf("from 16 CREATEROLE alters only roles it holds ADMIN OPTION on (PostgreSQL %d)", m.Version)
}

// CreatedRoleGrants says what a non-superuser CREATEROLE role holds on a
// role it has just created: before 16 nothing (CREATEROLE alone lets it
// grant the role to itself later); from 16 ADMIN OPTION always (granted
// by the bootstrap superuser), and a second grant with SET and/or INHERIT
// only when its createrole_self_grant setting lists them.
func CreatedRoleGrants(version int, selfGrant string) (admin, set, inherit bool) {
	if version < 16 {
		return false, false, false
	}
	for _, w := range strings.Split(selfGrant, ",") {
		switch strings.ToLower(strings.TrimSpace(w)) {
		case "set":
			set = true
		case "inherit":
			inherit = true
		}
	}
	return true, set, inherit
}

func gainWord(super bool, gain string) string {
	if super {
		return "a superuser"
	}
	return "a role granting " + gain
}

// membershipPath is a membership path (any kind) for evidence.
func (m *Model) membershipPath(from, to int) []string {
	if p := m.PrivPath(from, to); p != nil {
		return p
	}
	// SET-only path: search again over all memberships.
	parent := map[int]int{from: -1}
	queue := []int{from}
	for len(queue) > 0 {
		cur := queue[0]
		queue = queue[1:]
		if cur == to {
			break
		}
		for _, e := range m.edges[cur] {
			if _, seen := parent[e.to]; !seen {
				parent[e.to] = cur
				queue = append(queue, e.to)
			}
		}
	}
	var rev []string
	for cur := to; cur != -1; cur = parent[cur] {
		rev = append(rev, m.Roles[cur].Name)
		if _, ok := parent[cur]; !ok {
			break
		}
	}
	for i, j := 0, len(rev)-1; i < j; i, j = i+1, j-1 {
		rev[i], rev[j] = rev[j], rev[i]
	}
	return rev
}

// secdefChains: SECURITY DEFINER functions owned by a superuser that a
// login role may execute, and that run dynamic SQL or resolve names
// through a search_path the caller can write to.
func (m *Model) secdefChains(s *snapshot.Snapshot, d *snapshot.Database) []Chain {
	var out []Chain
	for _, f := range d.Functions {
		if !f.SecDef || f.Extension != "" || f.Schema == "pg_catalog" {
			continue
		}
		oi, ok := m.RoleIndex(f.Owner)
		if !ok || !m.Roles[oi].Super {
			continue
		}
		pinned := false
		for _, c := range f.Config {
			if strings.HasPrefix(strings.ToLower(c), "search_path=") {
				pinned = true
			}
		}
		fa := m.Compile(Function, f.Owner, f.ACL, f.ACLDefault)
		wide := m.everyLoginRoleMay(fa)
		for ri, r := range m.Roles {
			if r.Super || !r.Login || r.Predefined {
				continue
			}
			ex := m.Check(ri, Function, fa, Execute, false)
			if !ex.Allowed {
				continue
			}
			var weak Step
			sev := ""
			gains := "superuser"
			schema := ""
			if !f.DynamicSQL && !pinned {
				schema = m.writableSearchPathSchema(ri, r.Name, d)
			}
			switch {
			case f.DynamicSQL:
				weak = Step{What: "dynamic SQL", Evidence: "the body runs EXECUTE, with the owner's (superuser) rights"}
			case schema != "":
				weak = Step{What: "search_path not pinned", Evidence: fmt.Sprintf("%s can create objects in schema %q, which is on the default search_path: a function or operator planted there runs as the owner", r.Name, schema)}
			case f.Untrusted:
				// The untrusted-function chain reports it, as critical.
				continue
			case wide != "":
				// No proven path, but whatever the body does it does as a
				// superuser for everyone: a review.
				weak = Step{What: "callable by every login role", Evidence: wide + ": review what the body lets a caller do with superuser rights, and grant EXECUTE only to the roles that need it"}
				sev, gains = "medium", "superuser rights inside the function (review)"
			default:
				continue
			}
			out = append(out, Chain{Role: r.Name, Gains: gains, Kind: "security-definer", Severity: sev, Object: fmt.Sprintf("function %s.%s", d.Name, f.Signature()),
				Database: d.Name, Schema: f.Schema, Name: f.Name, Args: f.Args,
				Steps: []Step{{What: "EXECUTE " + f.Signature(), Evidence: fmt.Sprintf("%s (database %s)", ex.Text, d.Name)},
					{What: "SECURITY DEFINER", Evidence: fmt.Sprintf("runs as its owner %s, a superuser", f.Owner)}, weak}})
		}
	}
	return out
}

// everyLoginRoleMay says why every non-superuser login role may EXECUTE
// under the ACL (PUBLIC holds it, or each one reaches it), or "".
func (m *Model) everyLoginRoleMay(fa ACL) string {
	for _, e := range fa.Entries {
		if e.Grantee == -1 && e.Privs&Execute != 0 {
			return "EXECUTE is granted to PUBLIC"
		}
	}
	n := 0
	for ri, r := range m.Roles {
		if r.Super || !r.Login || r.Predefined {
			continue
		}
		if !m.Check(ri, Function, fa, Execute, false).Allowed {
			return ""
		}
		n++
	}
	if n < 2 {
		// One login role is no "everyone": a grant made for it.
		return ""
	}
	return fmt.Sprintf("all %d non-superuser login roles may EXECUTE it", n)
}

// broadACL keeps the entries of an ACL that reach many roles: PUBLIC's
// and those of roles without LOGIN (groups). A grant to one login role,
// or the owner's own, is a decision made for that role.
func (m *Model) broadACL(fa ACL) ACL {
	out := ACL{Owner: fa.Owner}
	for _, e := range fa.Entries {
		if e.Grantee == fa.Owner {
			continue
		}
		if e.Grantee == -1 || (e.Grantee >= 0 && !m.Roles[e.Grantee].Login) {
			out.Entries = append(out.Entries, e)
		}
	}
	return out
}

// setRoleGrantee names a grantee of EXECUTE in the ACL that role ri may
// SET ROLE to, or "".
func (m *Model) setRoleGrantee(ri int, fa ACL) string {
	for _, e := range fa.Entries {
		if e.Grantee >= 0 && e.Privs&Execute != 0 && m.CanSetRole(ri, e.Grantee) {
			return fmt.Sprintf("may SET ROLE %s, which is granted EXECUTE", m.Roles[e.Grantee].Name)
		}
	}
	return ""
}

// untrustedChains: a function in an untrusted language (C, plpython3u,
// plperlu, ...) runs its body as the server's OS user, whoever calls it;
// one PUBLIC or a group may EXECUTE hands that to every such caller.
// Extension members (pgcrypto's C functions) were vetted with the
// extension and are left alone.
func (m *Model) untrustedChains(d *snapshot.Database) []Chain {
	var out []Chain
	for _, f := range d.Functions {
		if !f.Untrusted || f.Extension != "" || f.Schema == "pg_catalog" || f.Schema == "information_schema" {
			continue
		}
		broad := m.broadACL(m.Compile(Function, f.Owner, f.ACL, f.ACLDefault))
		if len(broad.Entries) == 0 {
			continue
		}
		lang := f.Language
		tail := []Step{{What: "untrusted language " + lang, Evidence: fmt.Sprintf("the body of %s runs as the server's OS user, with its file system and programs", f.Signature())}}
		if oi, ok := m.RoleIndex(f.Owner); ok && f.SecDef && m.Roles[oi].Super {
			tail = append(tail, Step{What: "SECURITY DEFINER", Evidence: fmt.Sprintf("runs as its owner %s, a superuser", f.Owner)})
		}
		for ri, r := range m.Roles {
			if r.Super || !r.Login || r.Predefined {
				continue
			}
			ex := m.Check(ri, Function, broad, Execute, false)
			why := ex.Text
			if !ex.Allowed {
				// Without inheritance, SET ROLE to the group does it too.
				why = m.setRoleGrantee(ri, broad)
				if why == "" {
					continue
				}
			}
			st := append([]Step{{What: "EXECUTE " + f.Signature(), Evidence: fmt.Sprintf("%s (database %s)", why, d.Name)}}, tail...)
			out = append(out, Chain{Role: r.Name, Gains: "OS command execution (function in " + lang + ")", Kind: "untrusted-function",
				Object: fmt.Sprintf("function %s.%s", d.Name, f.Signature()), Database: d.Name, Schema: f.Schema, Name: f.Name, Args: f.Args, Steps: st})
		}
	}
	return out
}

// writableSearchPathSchema returns a schema on the default search_path
// ("$user", public) in which the role may CREATE.
func (m *Model) writableSearchPathSchema(ri int, name string, d *snapshot.Database) string {
	for _, sc := range d.Schemas {
		if sc.Name != "public" && sc.Name != name {
			continue
		}
		if m.Check(ri, Schema, m.Compile(Schema, sc.Owner, sc.ACL, sc.ACLDefault), Create, false).Allowed {
			return sc.Name
		}
	}
	return ""
}

// languageChains: an untrusted language marked trusted, or USAGE on one,
// lets a role write functions that run as the server's OS user.
func (m *Model) languageChains(d *snapshot.Database) []Chain {
	var out []Chain
	for _, l := range d.Languages {
		if !untrusted[l.Name] {
			continue
		}
		la := m.Compile(Language, l.Owner, l.ACL, l.ACLDefault)
		for ri, r := range m.Roles {
			if r.Super || !r.Login || r.Predefined {
				continue
			}
			// Creating a function in a language needs USAGE, and the
			// language must be trusted for non-superusers.
			if !l.Trusted || RuntimeTrustCheck[l.Name] {
				continue
			}
			if u := m.Check(ri, Language, la, Usage, false); u.Allowed {
				out = append(out, Chain{Role: r.Name, Gains: "OS command execution (functions in " + l.Name + ")", Kind: "language", Object: fmt.Sprintf("language %s.%s", d.Name, l.Name),
					Database: d.Name, Name: l.Name,
					Steps: []Step{{What: "USAGE ON LANGUAGE " + l.Name, Evidence: u.Text}, {What: "untrusted language marked trusted", Evidence: l.Name + " has lanpltrusted = true in database " + d.Name}}})
			}
		}
	}
	return out
}

// parameterChains: ALTER SYSTEM on a parameter that runs commands or
// loads libraries.
func (m *Model) parameterChains(s *snapshot.Snapshot) []Chain {
	var out []Chain
	for _, p := range s.ParamACLs {
		pa := m.Compile(Parameter, "", p.ACL, false)
		for ri, r := range m.Roles {
			if r.Super || !r.Login || r.Predefined {
				continue
			}
			res := m.Check(ri, Parameter, pa, AlterSystem, false)
			if !res.Allowed {
				continue
			}
			gain := "server configuration (" + p.Name + ")"
			if dangerousParams[strings.ToLower(p.Name)] {
				gain = "OS command execution (through " + p.Name + ")"
			}
			out = append(out, Chain{Role: r.Name, Gains: gain, Kind: "parameter", Object: "parameter " + p.Name, Name: p.Name,
				Steps: []Step{{What: "ALTER SYSTEM SET " + p.Name, Evidence: res.Text}}})
		}
	}
	return out
}
