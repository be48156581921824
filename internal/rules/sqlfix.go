package rules

import (
	"fmt"
	"strings"

	"github.com/pgaegis/pgaegis/internal/acl"
	"github.com/pgaegis/pgaegis/internal/quote"
	"github.com/pgaegis/pgaegis/internal/remedy"
	"github.com/pgaegis/pgaegis/internal/snapshot"
)

// sqlStmt is one statement of a SQL fix and the statement that undoes it,
// computed from the snapshot (the state the statement changes). The
// planner (internal/fix) relies on the pairing: Statements[i] is undone by
// Undo[i], so a statement two findings share is run, and undone, once.
type sqlStmt struct{ do, undo string }

// sqlChange is a remedy.SQL change of statement pairs in database db (""
// for cluster-wide objects).
func sqlChange(db string, super bool, breaks string, stmts ...sqlStmt) remedy.Change {
	s := &remedy.SQL{Database: db, Superuser: super}
	for _, st := range stmts {
		s.Statements = append(s.Statements, st.do)
		s.Undo = append(s.Undo, st.undo)
	}
	return remedy.Change{SQL: s, Breaks: breaks}
}

// sqlProblem fills p's Fix (the text a report falls back to, identical to
// the statements the plan runs), FixKind and Changes from one SQL change.
func sqlProblem(p Problem, c remedy.Change) Problem {
	p.Changes = []remedy.Change{c}
	p.Fix = strings.Join(c.SQL.Statements, ";\n") + ";"
	if c.SQL.Database != "" {
		p.Fix += "    -- in database " + quote.Ident(c.SQL.Database)
		p.Database = c.SQL.Database
	}
	p.FixKind = FixSQL
	return p
}

// manualProblem marks p as a fix that must be done by hand: what to do.
func manualProblem(p Problem, what string) Problem {
	p.Changes = []remedy.Change{{Manual: what}}
	if p.Fix == "" {
		p.Fix = what
	}
	return p
}

// grantText renders the privileges of one grantee for GRANT: the plain
// ones and the ones it held WITH GRANT OPTION, as two statements when both
// occur. on is "ON ... " with the object, to is the grantee already
// rendered.
func grantStatements(privs []acl.Grant, on, to string) []string {
	var plain, opt []string
	for _, g := range privs {
		if g.GrantOption {
			opt = append(opt, g.Privilege)
		} else {
			plain = append(plain, g.Privilege)
		}
	}
	var out []string
	if len(plain) > 0 {
		out = append(out, fmt.Sprintf("GRANT %s %s TO %s", strings.Join(plain, ", "), on, to))
	}
	if len(opt) > 0 {
		out = append(out, fmt.Sprintf("GRANT %s %s TO %s WITH GRANT OPTION", strings.Join(opt, ", "), on, to))
	}
	return out
}

// revokeStmt revokes privileges of one ACL item on an object and restores
// them exactly (with the grant option where the item had it). The server
// records the object's owner as grantor for a superuser's GRANT, as it was
// for the owner's own grants.
func revokeStmt(it acl.Item, privs []string, on string) sqlStmt {
	who := granteeSQL(it.Grantee)
	var held []acl.Grant
	for _, p := range privs {
		for _, g := range it.Grants {
			if g.Privilege == p {
				held = append(held, g)
			}
		}
	}
	undo := strings.Join(grantStatements(held, on, who), "; ")
	return sqlStmt{do: fmt.Sprintf("REVOKE %s %s FROM %s", strings.Join(privs, ", "), on, who), undo: undo}
}

// as runs the statement and its undo as the grantor of the privilege when
// that is not the object's owner: a superuser's GRANT and REVOKE act as
// the owner, and would neither remove nor restore a grant another role
// made with its grant option.
func (s sqlStmt) as(grantor, owner string) sqlStmt {
	if grantor == "" || grantor == owner || owner == "" {
		return s
	}
	set := "SET ROLE " + quote.Ident(grantor) + "; "
	return sqlStmt{do: set + s.do + "; RESET ROLE", undo: set + s.undo + "; RESET ROLE"}
}

// itemOf returns the ACL item of grantee; a NULL ACL (def) stands for the
// built-in default, in which PUBLIC holds defPublic.
func itemOf(items []acl.Item, def bool, grantee string, defPublic ...string) (acl.Item, bool) {
	if def {
		if grantee != acl.Public || len(defPublic) == 0 {
			return acl.Item{}, false
		}
		it := acl.Item{Grantee: acl.Public}
		for _, p := range defPublic {
			it.Grants = append(it.Grants, acl.Grant{Privilege: p})
		}
		return it, true
	}
	for _, it := range items {
		if it.Grantee == grantee {
			return it, true
		}
	}
	return acl.Item{}, false
}

// roleAttrStmt turns role attributes off (NOSUPERUSER ...) and back on.
func roleAttrStmt(role string, attrs ...string) sqlStmt {
	var neg []string
	for _, a := range attrs {
		if strings.HasPrefix(a, "NO") {
			neg = append(neg, strings.TrimPrefix(a, "NO"))
		} else {
			neg = append(neg, "NO"+a)
		}
	}
	r := quote.Ident(role)
	return sqlStmt{do: fmt.Sprintf("ALTER ROLE %s %s", r, strings.Join(neg, " ")), undo: fmt.Sprintf("ALTER ROLE %s %s", r, strings.Join(attrs, " "))}
}

// revokeMembershipStmt removes role from member and restores the
// membership with the options it had.
func revokeMembershipStmt(s *snapshot.Snapshot, role, member string) sqlStmt {
	undo := fmt.Sprintf("GRANT %s TO %s", quote.Ident(role), quote.Ident(member))
	for _, m := range s.Memberships {
		if m.Role == role && m.Member == member && m.Admin {
			undo += " WITH ADMIN OPTION"
		}
	}
	return sqlStmt{do: fmt.Sprintf("REVOKE %s FROM %s", quote.Ident(role), quote.Ident(member)), undo: undo}
}

// revokeExecuteStmt revokes EXECUTE on function fn (already quoted) from
// grantee; a NULL proacl means PUBLIC holds it by default.
func revokeExecuteStmt(f snapshot.Function, fn, grantee string) (sqlStmt, bool) {
	it, ok := itemOf(f.ACL, f.ACLDefault, grantee, "EXECUTE")
	if !ok || !it.Has("EXECUTE") {
		return sqlStmt{}, false
	}
	return revokeStmt(it, []string{"EXECUTE"}, "ON FUNCTION "+fn).as(it.Grantor, f.Owner), true
}

// pinSearchPathStmt pins a function's search_path and restores the
// setting it had (or none).
func pinSearchPathStmt(f snapshot.Function, fn string) sqlStmt {
	undo := fmt.Sprintf("ALTER FUNCTION %s RESET search_path", fn)
	for _, cfg := range f.Config {
		if k, v, ok := strings.Cut(cfg, "="); ok && strings.EqualFold(k, "search_path") {
			undo = fmt.Sprintf("ALTER FUNCTION %s SET search_path = %s", fn, quote.Literal(v))
		}
	}
	return sqlStmt{do: fmt.Sprintf("ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp", fn), undo: undo}
}

// untrustLanguageStmt marks an untrusted language untrusted again (the
// one statement EXT-02 and the escalation chain share).
func untrustLanguageStmt(lang string) sqlStmt {
	return sqlStmt{do: fmt.Sprintf("UPDATE pg_catalog.pg_language SET lanpltrusted = false WHERE lanname = %s", quote.Literal(lang)),
		undo: fmt.Sprintf("UPDATE pg_catalog.pg_language SET lanpltrusted = true WHERE lanname = %s", quote.Literal(lang))}
}

// dropExtensionStmt drops an extension and recreates it at the same
// version in the same schema; grants on a language it provides are
// restored too (the drop takes them with it).
func dropExtensionStmt(d *snapshot.Database, e snapshot.Extension) sqlStmt {
	undo := fmt.Sprintf("CREATE EXTENSION %s WITH SCHEMA %s VERSION %s", quote.Ident(e.Name), quote.Ident(e.Schema), quote.Literal(e.Version))
	for _, l := range d.Languages {
		if l.Name != e.Name {
			continue
		}
		var grants []string
		for _, it := range l.ACL {
			if it.Grantee != l.Owner && !l.ACLDefault {
				grants = append(grants, grantStatements(it.Grants, "ON LANGUAGE "+quote.Ident(l.Name), granteeSQL(it.Grantee))...)
			}
		}
		// The server refuses GRANT on an untrusted language: the grants
		// go back while it is marked trusted, then its mark is restored.
		st := untrustLanguageStmt(l.Name)
		if len(grants) > 0 || l.Trusted {
			undo += "; " + st.undo
		}
		for _, g := range grants {
			undo += "; " + g
		}
		if len(grants) > 0 && !l.Trusted {
			undo += "; " + st.do
		}
	}
	return sqlStmt{do: fmt.Sprintf("DROP EXTENSION %s", quote.Ident(e.Name)), undo: undo}
}

// extensionUsers names what keeps an extension from being dropped without
// CASCADE: foreign servers of its wrapper, functions in its language.
func extensionUsers(d *snapshot.Database, ext string) []string {
	var out []string
	for _, fs := range d.ForeignServers {
		if fs.Wrapper == ext {
			out = append(out, "foreign server "+quote.Ident(fs.Name))
		}
	}
	seen := map[string]bool{}
	for _, fns := range [][]snapshot.Function{d.Functions, d.Routines} {
		for _, f := range fns {
			if f.Language == ext && f.Extension != ext && !seen[f.Signature()] {
				seen[f.Signature()] = true
				fn, err := quote.Function(f.Schema, f.Name, f.Args)
				if err != nil {
					fn = quote.Qualified(f.Schema, f.Name)
				}
				out = append(out, "function "+fn)
			}
		}
	}
	return out
}

// findFunction looks a function up by schema, name and identity arguments.
func findFunction(d *snapshot.Database, schema, name, args string) (snapshot.Function, bool) {
	for _, fns := range [][]snapshot.Function{d.Functions, d.Routines} {
		for _, f := range fns {
			if f.Schema == schema && f.Name == name && f.Args == args {
				return f, true
			}
		}
	}
	return snapshot.Function{}, false
}

// function is findFunction with an index per database, for rules that
// look up a function per role (the chains of every login role).
func (c *Check) function(d *snapshot.Database, schema, name, args string) (snapshot.Function, bool) {
	if c.funcs == nil {
		c.funcs = map[*snapshot.Database]map[[3]string]snapshot.Function{}
	}
	idx, ok := c.funcs[d]
	if !ok {
		idx = map[[3]string]snapshot.Function{}
		for _, fns := range [][]snapshot.Function{d.Routines, d.Functions} {
			// Functions last, so they win over routines as findFunction's
			// order does.
			for _, f := range fns {
				idx[[3]string{f.Schema, f.Name, f.Args}] = f
			}
		}
		c.funcs[d] = idx
	}
	f, ok := idx[[3]string{schema, name, args}]
	return f, ok
}

// relationsIn returns the indexes in d.Relations of the relations of one
// schema: PRIV-08 and PRIV-10 look at one schema per grant summary, and a
// scan of every relation for each made them quadratic.
func (c *Check) relationsIn(d *snapshot.Database, schema string) []int {
	if c.rels == nil {
		c.rels = map[*snapshot.Database]map[string][]int{}
	}
	idx, ok := c.rels[d]
	if !ok {
		idx = map[string][]int{}
		for i := range d.Relations {
			idx[d.Relations[i].Schema] = append(idx[d.Relations[i].Schema], i)
		}
		c.rels[d] = idx
	}
	return idx[schema]
}

// database looks a database up by name.
func (c *Check) database(name string) *snapshot.Database {
	for i := range c.S.Databases {
		if c.S.Databases[i].Name == name {
			return &c.S.Databases[i]
		}
	}
	return nil
}

// passwordManual is the manual step for a role whose password must change.
func passwordManual(role string) string {
	id := quote.Ident(role)
	if strings.HasPrefix(id, "U&") {
		return "role " + id + " has control characters in its name, which psql's \\password cannot take: rename it (ALTER ROLE " + id + " RENAME TO ...), then set a new password with \\password"
	}
	return "set a new password with psql's \\password " + id + " (hashed client-side with scram-sha-256), then update the clients that use it"
}

// listSome names the first few of a list of objects, and how many more.
func listSome(names []string) string {
	const few = 5
	if len(names) <= few {
		return strings.Join(names, ", ")
	}
	return fmt.Sprintf("%s and %d more", strings.Join(names[:few], ", "), len(names)-few)
}

// grantOptionStmts revokes a grant option summarised by g from each
// relation that has it; passedOn names the relations where the grantee
// has already granted the privilege on (RESTRICT would refuse there).
func (c *Check) grantOptionStmts(d *snapshot.Database, g snapshot.GrantSummary) (stmts []sqlStmt, passedOn, names []string) {
	for _, ri := range c.relationsIn(d, g.Schema) {
		r := &d.Relations[ri]
		it, ok := itemOf(r.ACL, false, g.Grantee)
		if !ok {
			continue
		}
		has := false
		for _, gr := range it.Grants {
			if gr.Privilege == g.Privilege && gr.GrantOption {
				has = true
			}
		}
		if !has {
			continue
		}
		qn := quote.Qualified(r.Schema, r.Name)
		names = append(names, qn)
		on := "ON TABLE "
		if r.Kind == "S" {
			on = "ON SEQUENCE "
		}
		for _, other := range r.ACL {
			if other.Grantor != g.Grantee || !other.Has(g.Privilege) {
				continue
			}
			if other.Grantee != acl.Public {
				passedOn = append(passedOn, qn)
				break
			}
			// Passed on to PUBLIC: PRIV-08 revokes that anyway, with this
			// same statement (run once), so the option can go after it.
			stmts = append(stmts, revokeStmt(other, []string{g.Privilege}, on+qn).as(other.Grantor, r.Owner))
		}
		stmts = append(stmts, sqlStmt{do: fmt.Sprintf("REVOKE GRANT OPTION FOR %s %s%s FROM %s", g.Privilege, on, qn, granteeSQL(g.Grantee)),
			undo: fmt.Sprintf("GRANT %s %s%s TO %s WITH GRANT OPTION", g.Privilege, on, qn, granteeSQL(g.Grantee))})
	}
	return stmts, passedOn, names
}

// untrustLanguageChange marks a language untrusted again (superuser: it
// is a catalog update).
func untrustLanguageChange(lang, database string) remedy.Change {
	return sqlChange(database, true, fmt.Sprintf("only superusers may create functions in %s from now on (existing functions keep working)", quote.Ident(lang)),
		untrustLanguageStmt(lang))
}

// dropExtensionProblem drops extension name from database d when nothing
// depends on it, and recreates it on undo; otherwise what uses it must be
// removed by hand first.
func dropExtensionProblem(p Problem, d *snapshot.Database, name string) Problem {
	var ext *snapshot.Extension
	for i := range d.Extensions {
		if d.Extensions[i].Name == name {
			ext = &d.Extensions[i]
		}
	}
	if ext == nil {
		return manualProblem(p, fmt.Sprintf("%s is not installed as an extension in database %s: DROP LANGUAGE %s there once nothing uses it", quote.Ident(name), quote.Ident(d.Name), quote.Ident(name)))
	}
	if users := extensionUsers(d, name); len(users) > 0 {
		return manualProblem(p, fmt.Sprintf("%s is in use in database %s (%s): remove what uses it, then DROP EXTENSION %s", quote.Ident(name), quote.Ident(d.Name), listSome(users), quote.Ident(name)))
	}
	return sqlProblem(p, sqlChange(d.Name, true, fmt.Sprintf("anything that calls the functions of %s in database %s fails (no object in the catalogs depends on it)", quote.Ident(name), quote.Ident(d.Name)),
		dropExtensionStmt(d, *ext)))
}

// untrustAndDropChange marks a language untrusted and, when nothing uses
// it, drops its extension too: an untrusted language left installed is the
// next EXT-02 finding, and a plan must close what it touches in one go.
// The UPDATE comes first and is the statement the escalation chain shares.
func untrustAndDropChange(d *snapshot.Database, lang string) remedy.Change {
	ch := untrustLanguageChange(lang, d.Name)
	var ext *snapshot.Extension
	for i := range d.Extensions {
		if d.Extensions[i].Name == lang {
			ext = &d.Extensions[i]
		}
	}
	if ext == nil || len(extensionUsers(d, lang)) > 0 {
		return ch
	}
	drop := dropExtensionStmt(d, *ext)
	// Undone backwards: the extension comes back (untrusted, with its
	// grants), then the UPDATE undo marks it trusted as it was.
	ch.SQL.Statements = append(ch.SQL.Statements, drop.do)
	ch.SQL.Undo = append(ch.SQL.Undo, drop.undo)
	ch.Breaks = fmt.Sprintf("language %s is removed from database %s (no function uses it)", quote.Ident(lang), quote.Ident(d.Name))
	return ch
}
