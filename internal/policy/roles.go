package policy

import (
	"fmt"
	"strings"

	"github.com/pgaegis/pgaegis/internal/plan"
	"github.com/pgaegis/pgaegis/internal/quote"
)

// attribute is one boolean role attribute: its SQL words and its CREATE
// ROLE default.
type attribute struct {
	on, off string
	def     bool
	get     func(*Role) *bool
	guarded bool // never lowered for the executing or bootstrap role
}

var attributes = []attribute{
	{"SUPERUSER", "NOSUPERUSER", false, func(r *Role) *bool { return r.Superuser }, true},
	{"CREATEDB", "NOCREATEDB", false, func(r *Role) *bool { return r.CreateDB }, false},
	{"CREATEROLE", "NOCREATEROLE", false, func(r *Role) *bool { return r.CreateRole }, true},
	{"INHERIT", "NOINHERIT", true, func(r *Role) *bool { return r.Inherit }, false},
	{"LOGIN", "NOLOGIN", false, func(r *Role) *bool { return r.Login }, true},
	{"REPLICATION", "NOREPLICATION", false, func(r *Role) *bool { return r.Replication }, false},
	{"BYPASSRLS", "NOBYPASSRLS", false, func(r *Role) *bool { return r.BypassRLS }, false},
}

func boolOr(b *bool, def bool) bool {
	if b == nil {
		return def
	}
	return *b
}

// verifierPrefix starts every SCRAM-SHA-256 verifier.
const verifierPrefix = "SCRAM-SHA-256$"

// roles plans the cluster part: roles created, altered and dropped,
// memberships and settings.
func (d *differ) roles() error {
	for _, name := range sortedKeys(d.f.Roles) {
		if d.ignored(name) {
			return fmt.Errorf("role %q: predefined roles and ignore_roles are never managed; remove it from roles:", oneLineText(name))
		}
		if name == "" || strings.EqualFold(name, Public) {
			return fmt.Errorf("role %q: not a role name", oneLineText(name))
		}
		want := d.f.Roles[name]
		if want == nil {
			want = &Role{}
		}
		have := d.l.Roles[name]
		if err := d.role(name, want, have); err != nil {
			return err
		}
	}
	// Every membership names a role the file or the server knows.
	for _, name := range sortedKeys(d.f.Roles) {
		if r := d.f.Roles[name]; r != nil {
			for _, m := range r.MemberOf {
				if !d.exists(m.Role) || m.Role == Public {
					return &unknownRole{role: m.Role, text: fmt.Sprintf("role %s: member_of %q: no such role in the file or on the server", oneLineText(name), oneLineText(m.Role))}
				}
				if m.Grantor != "" && !d.exists(m.Grantor) {
					return &unknownRole{role: m.Grantor, text: fmt.Sprintf("role %s: member_of %s: grantor %q: no such role in the file or on the server", oneLineText(name), oneLineText(m.Role), oneLineText(m.Grantor))}
				}
			}
		}
	}
	if d.f.Roles != nil && d.mode == Authoritative {
		for _, name := range sortedKeys(d.l.Roles) {
			if _, ok := d.f.Roles[name]; ok || d.ignored(name) {
				continue
			}
			d.remove(name)
		}
	}
	return nil
}

func (d *differ) role(name string, want, have *Role) error {
	q := quote.Ident(name)
	additive := d.mode == Additive
	if have == nil {
		var opts []string
		for _, a := range attributes {
			if v := boolOr(a.get(want), a.def); v != a.def {
				opts = append(opts, map[bool]string{true: a.on, false: a.off}[v])
			}
		}
		if want.ConnectionLimit != nil && *want.ConnectionLimit != -1 {
			opts = append(opts, fmt.Sprintf("CONNECTION LIMIT %d", *want.ConnectionLimit))
		}
		if want.ValidUntil != "" {
			opts = append(opts, "VALID UNTIL "+quote.Literal(want.ValidUntil))
		}
		stmt := "CREATE ROLE " + q
		if len(opts) > 0 {
			stmt += " WITH " + strings.Join(opts, " ")
		}
		d.roleCreates = append(d.roleCreates, stmt) // before any membership names it
		if strings.HasPrefix(want.Password, verifierPrefix) {
			d.setVerifier(q, want.Password)
		}
		have = &Role{}
		if err := d.memberships(name, want, have, true); err != nil {
			return err
		}
		d.settings(name, want, have)
		return nil
	}
	var raise, lower []string
	for _, a := range attributes {
		w := a.get(want)
		if w == nil && additive {
			continue
		}
		wv, hv := boolOr(w, a.def), boolOr(a.get(have), a.def)
		switch {
		case wv == hv:
		case wv:
			raise = append(raise, a.on)
		case additive:
		case a.guarded && d.protected(name):
			d.note(NoteHeld, "role "+name, "%s is kept: pgaegis runs as this role or it is the bootstrap superuser", a.on)
		default:
			lower = append(lower, a.off)
		}
	}
	if want.ConnectionLimit != nil || !additive {
		wl, hl := -1, -1
		if want.ConnectionLimit != nil {
			wl = *want.ConnectionLimit
		}
		if have.ConnectionLimit != nil {
			hl = *have.ConnectionLimit
		}
		if wl != hl {
			s := fmt.Sprintf("CONNECTION LIMIT %d", wl)
			if wl == -1 || hl != -1 && wl > hl {
				raise = append(raise, s)
			} else if !additive {
				lower = append(lower, s)
			}
		}
	}
	if noExpiry(want.ValidUntil) != noExpiry(have.ValidUntil) || !noExpiry(want.ValidUntil) && want.ValidUntil != have.ValidUntil {
		switch {
		case want.ValidUntil != "":
			raise = append(raise, "VALID UNTIL "+quote.Literal(want.ValidUntil))
		case !additive:
			raise = append(raise, "VALID UNTIL 'infinity'")
		}
	}
	if len(raise) > 0 {
		d.clusterAdd = append(d.clusterAdd, "ALTER ROLE "+q+" WITH "+strings.Join(raise, " "))
	}
	if len(lower) > 0 {
		d.clusterRemove = append(d.clusterRemove, "ALTER ROLE "+q+" WITH "+strings.Join(lower, " "))
	}
	unknown := d.live.HasPassword == nil || d.live.Unreadable["passwords"] != ""
	switch pw := want.Password; {
	case pw == "none":
		if unknown {
			d.note(NoteWarning, "role "+name, "whether it has a password could not be read: PASSWORD NULL is planned")
		}
		if (unknown || d.live.HasPassword[name]) && !additive {
			d.clusterRemove = append(d.clusterRemove, "ALTER ROLE "+q+" PASSWORD NULL")
		}
	case strings.HasPrefix(pw, verifierPrefix):
		// The live state never holds the verifier, so one that is set is
		// not compared: pgaegis rotate (a service account) or psql's
		// \password (a person) changes it.
		// A verifier is set only where none is known to be: a role that
		// has one (or may have one, when pg_authid is unreadable) keeps
		// it, so a second run never plans it again.
		switch {
		case unknown:
			d.note(NoteWarning, "role "+name, "password not compared: whether the role has one could not be read (%s); the file's verifier is not set on an existing role (set it with 'pgaegis rotate %s' for a service account or psql's \\password %s for a person, or plan as a superuser)", d.passwordsWhy(), name, name)
		case !d.live.HasPassword[name]:
			d.setVerifier(q, pw)
		default:
			d.note(NoteInfo, "role "+name, "has a password; the file's verifier is not compared with it (to change it: 'pgaegis rotate %s' for a service account, which proves the login and delivers the password; psql's \\password %s for a person; both compute the verifier on the client)", name, name)
		}
	}
	if err := d.memberships(name, want, have, false); err != nil {
		return err
	}
	d.settings(name, want, have)
	return nil
}

// passwordsWhy says why pg_authid's passwords could not be read.
func (d *differ) passwordsWhy() string {
	if why := d.live.Unreadable["passwords"]; why != "" {
		return why
	}
	return "pg_authid is readable only by a superuser"
}

func noExpiry(v string) bool { return v == "" || strings.EqualFold(v, "infinity") }

// setVerifier plans ALTER ROLE ... PASSWORD '<verifier>' as a statement
// of its own, so text output can mask it (MaskVerifiers).
func (d *differ) setVerifier(q, verifier string) {
	d.clusterAdd = append(d.clusterAdd, "ALTER ROLE "+q+" PASSWORD "+quote.Literal(verifier))
	d.verifier = true
}

// MaskVerifiers returns a copy of p whose password verifiers read
// '********', for text output and logs; the SQL and JSON forms keep them
// (a verifier is not a clear text, and apply needs it).
func MaskVerifiers(p *plan.Plan) *plan.Plan {
	if p == nil {
		return nil
	}
	c := *p
	c.Steps = make([]plan.Step, len(p.Steps))
	for i, s := range p.Steps {
		s.SQL = append([]string(nil), s.SQL...)
		for j, q := range s.SQL {
			if k := strings.Index(q, " PASSWORD '"+verifierPrefix); k >= 0 && strings.HasPrefix(q, "ALTER ROLE ") {
				s.SQL[j] = q[:k] + " PASSWORD '********'"
			}
		}
		c.Steps[i] = s
	}
	return &c
}

// memberships diffs the roles name is a member of (member_of given is
// exact for name, the minimum in additive mode).
func (d *differ) memberships(name string, want, have *Role, created bool) error {
	if want.MemberOf == nil {
		return nil
	}
	q := quote.Ident(name)
	v16 := d.major == 0 || d.major >= 16
	haveBy := map[string]Membership{}
	for _, m := range have.MemberOf {
		if _, ok := haveBy[m.Role]; !ok {
			haveBy[m.Role] = m
		}
	}
	wantBy := map[string]bool{}
	for _, m := range want.MemberOf {
		if wantBy[m.Role] {
			return fmt.Errorf("role %s: member_of lists %q twice", oneLineText(name), oneLineText(m.Role))
		}
		wantBy[m.Role] = true
		if m.Role == name {
			return fmt.Errorf("role %s: cannot be a member of itself", oneLineText(name))
		}
		if !v16 {
			if err := d.before16(name, m, want, have); err != nil {
				return err
			}
		}
		h, ok := haveBy[m.Role]
		if !ok {
			var opts []string
			if boolOr(m.Admin, false) {
				opts = append(opts, "ADMIN")
			}
			if v16 {
				if m.Inherit != nil {
					opts = append(opts, "INHERIT "+strings.ToUpper(fmt.Sprint(*m.Inherit)))
				}
				if m.Set != nil {
					opts = append(opts, "SET "+strings.ToUpper(fmt.Sprint(*m.Set)))
				}
				if len(opts) > 0 && opts[0] == "ADMIN" {
					opts[0] = "ADMIN TRUE"
				}
			}
			stmt := "GRANT " + quote.Ident(m.Role) + " TO " + q
			if len(opts) > 0 {
				if v16 {
					stmt += " WITH " + strings.Join(opts, ", ")
				} else {
					stmt += " WITH ADMIN OPTION"
				}
			}
			if v16 && m.Grantor != "" {
				stmt += " GRANTED BY " + quote.Ident(m.Grantor)
			}
			d.clusterAdd = append(d.clusterAdd, stmt)
			continue
		}
		// An existing membership changes option by option, never revoked
		// and granted again (which would cut access mid-apply).
		type opt struct {
			word       string
			want, have *bool
			def        bool
			only16     bool
		}
		for _, o := range []opt{{"ADMIN", m.Admin, h.Admin, false, false}, {"INHERIT", m.Inherit, h.Inherit, true, true}, {"SET", m.Set, h.Set, true, true}} {
			if o.only16 && !v16 || o.want == nil && o.word != "ADMIN" {
				continue // INHERIT and SET left out are not managed
			}
			if o.word == "INHERIT" && o.have == nil {
				// The live read leaves it out when it is what a plain
				// GRANT gives: the member's own INHERIT attribute.
				inh := boolOr(have.Inherit, true)
				o.have = &inh
			}
			wv, hv := boolOr(o.want, o.def), boolOr(o.have, o.def)
			if wv == hv {
				continue
			}
			by := ""
			if v16 && h.Grantor != "" {
				by = " GRANTED BY " + quote.Ident(h.Grantor)
			}
			if wv {
				w := " WITH " + o.word + " OPTION"
				if v16 {
					w = " WITH " + o.word + " TRUE"
				}
				d.clusterAdd = append(d.clusterAdd, "GRANT "+quote.Ident(m.Role)+" TO "+q+w+by)
			} else if d.mode != Additive {
				if d.protected(name) {
					d.note(NoteHeld, "role "+name, "%s option of its membership in %s is kept: pgaegis relies on it", o.word, m.Role)
					continue
				}
				d.clusterRemove = append(d.clusterRemove, "REVOKE "+o.word+" OPTION FOR "+quote.Ident(m.Role)+" FROM "+q+by)
			}
		}
	}
	if d.mode == Additive || created {
		return nil
	}
	for _, m := range have.MemberOf {
		if wantBy[m.Role] {
			continue
		}
		if d.protected(name) {
			if v16 && m.Admin != nil && *m.Admin && m.Inherit != nil && !*m.Inherit && m.Set != nil && !*m.Set {
				// 16+ gives a CREATEROLE role ADMIN (only) on every role
				// it creates: no privilege, and nothing to hold back.
				d.note(NoteInfo, "role "+name, "membership in %s (ADMIN only, as 16+ gives a CREATEROLE role on the roles it creates) is kept: pgaegis runs as this role", m.Role)
				continue
			}
			d.note(NoteHeld, "role "+name, "membership in %s is kept: pgaegis runs as this role or it is the bootstrap superuser", m.Role)
			continue
		}
		stmt := "REVOKE " + quote.Ident(m.Role) + " FROM " + q
		if v16 && m.Grantor != "" {
			stmt += " GRANTED BY " + quote.Ident(m.Grantor)
		}
		d.clusterRemove = append(d.clusterRemove, stmt)
	}
	return nil
}

// before16 refuses a membership option a server before 16 cannot give:
// a plain GRANT there inherits as the member's INHERIT attribute says
// and always allows SET ROLE, so planning it would grant more (or less)
// than the file asks, and a later plan would call it a match.
func (d *differ) before16(name string, m Membership, want, have *Role) error {
	attr := want.Inherit
	if attr == nil && d.mode == Additive {
		attr = have.Inherit
	}
	inherits := boolOr(attr, true)
	switch {
	case m.Inherit != nil && *m.Inherit != inherits:
		word := map[bool]string{true: "INHERIT", false: "NOINHERIT"}[*m.Inherit]
		return fmt.Errorf("role %s: member_of %s: inherit: %v needs PostgreSQL 16 (the server is %d); there a membership inherits as its member's attribute says: give role %s inherit: %v (%s, for all its memberships) and leave inherit out of the membership",
			oneLineText(name), oneLineText(m.Role), *m.Inherit, d.major, oneLineText(name), *m.Inherit, word)
	case m.Set != nil && !*m.Set:
		return fmt.Errorf("role %s: member_of %s: set: false needs PostgreSQL 16 (the server is %d); before 16 every member may SET ROLE to a role it is granted: leave set out or drop the membership",
			oneLineText(name), oneLineText(m.Role), d.major)
	case m.Grantor != "":
		d.note(NoteWarning, "role "+name, "membership in %s: GRANTED BY is planned from PostgreSQL 16 only; the grantor is not compared", m.Role)
	}
	return nil
}

// settings diffs ALTER ROLE ... [IN DATABASE ...] SET / RESET.
func (d *differ) settings(name string, want, have *Role) {
	q := quote.Ident(name)
	d.settingsIn(&d.clusterAdd, q, "", want.Settings, have.Settings)
	for _, db := range sortedKeys(want.DatabaseSettings) {
		var h Settings
		if have.DatabaseSettings != nil {
			h = have.DatabaseSettings[db]
		}
		into := &d.clusterAdd
		if !d.onServer(db) {
			// A database the plan creates: its settings wait for it.
			into = &d.afterCreate
		}
		d.settingsIn(into, q, " IN DATABASE "+quote.Ident(db), want.DatabaseSettings[db], h)
	}
}

func (d *differ) settingsIn(into *[]string, q, in string, want, have Settings) {
	if want == nil {
		return
	}
	for _, k := range sortedKeys(want) {
		if h, ok := have[k]; ok && sameSetting(k, want[k], h) {
			continue
		}
		*into = append(*into, "ALTER ROLE "+q+in+" SET "+settingName(k)+" = "+settingValue(k, want[k]))
	}
	if d.mode == Additive {
		return
	}
	for _, k := range sortedKeys(have) {
		if _, ok := want[k]; !ok {
			d.clusterRemove = append(d.clusterRemove, "ALTER ROLE "+q+in+" RESET "+settingName(k))
		}
	}
}

// settingName quotes each dotted part (pgaudit.log).
func settingName(k string) string {
	return quote.Qualified(strings.Split(k, ".")...)
}

// settingValue writes a list setting (search_path) one literal per
// element, as the server reads it back; others as one literal.
func settingValue(k, v string) string {
	elems := plan.SplitList(k, v)
	if !plan.ListSetting(k) || len(elems) == 0 {
		return quote.Literal(v)
	}
	q := make([]string, len(elems))
	for i, e := range elems {
		q[i] = quote.Literal(e)
	}
	return strings.Join(q, ", ")
}

func sameSetting(k, a, b string) bool {
	if a == b {
		return true
	}
	if plan.ListSetting(k) {
		return strings.Join(plan.SplitList(k, a), "\x00") == strings.Join(plan.SplitList(k, b), "\x00")
	}
	return false
}

// remove plans dropping a role the authoritative file does not name,
// after the preflight: what it owns or holds in every database, live
// sessions, the executing role. A role that owns nothing and is named in
// no policy goes in one apply: in each database where it still holds
// privileges, DROP OWNED BY (which, for a role owning nothing, only
// revokes its privileges and default ACL entries), guarded by a check in
// the same transaction that it still owns nothing there. Only a role
// that owns objects, or is named in RLS policies, is held for
// --reassign-owned-to / --drop-owned; the note names only that, never a
// privilege the plan revokes anyway.
func (d *differ) remove(name string) {
	obj := "role " + name
	if d.protected(name) {
		d.note(NoteHeld, obj, "not in the file but kept: pgaegis runs as this role or it is the bootstrap superuser")
		return
	}
	if n := d.live.Sessions[name]; n > 0 {
		d.note(NoteWarning, obj, "has %d live session(s); they keep running until they end", n)
	}
	deps := d.live.Dependents[name]
	var owns []string
	dbs := map[string]bool{} // databases where something holds it
	for _, db := range sortedKeys(deps) {
		c := deps[db]
		label := db
		if db == "" {
			label = "(shared objects)"
		}
		if c.Owned > 0 {
			owns = append(owns, fmt.Sprintf("%s: owns %d object(s)", label, c.Owned))
		}
		if c.Policies > 0 {
			owns = append(owns, fmt.Sprintf("%s: named in %d RLS policy(ies)", label, c.Policies))
		}
		if c.Owned+c.Privileges+c.Policies > 0 {
			dbs[db] = true
		}
	}
	if len(owns) > 0 && d.o.ReassignOwnedTo == "" && !d.o.DropOwned {
		d.note(NoteHeld, obj, "not in the file but kept: %s; give --reassign-owned-to ROLE and/or --drop-owned", strings.Join(owns, "; "))
		return
	}
	for _, db := range sortedKeys(dbs) {
		if db != "" && d.live.Unreadable[db] != "" {
			d.note(NoteHeld, obj, "not in the file but kept: it has dependents in database %s, which could not be read (so DROP OWNED cannot run there)", db)
			return
		}
	}
	if dbs[""] {
		// Privileges on shared objects (databases, tablespaces) go with a
		// DROP OWNED run in any database.
		delete(dbs, "")
		if len(dbs) == 0 {
			dbs[d.clusterDB()] = true
		}
	}
	q := quote.Ident(name)
	for _, db := range sortedKeys(dbs) {
		if d.reassign == nil {
			d.reassign = map[string][]string{}
		}
		if d.o.ReassignOwnedTo != "" {
			d.reassign[db] = append(d.reassign[db], "REASSIGN OWNED BY "+q+" TO "+quote.Ident(d.o.ReassignOwnedTo))
			d.needPrivs(name, "REASSIGN OWNED BY "+q)
			d.needSet(d.o.ReassignOwnedTo, "REASSIGN OWNED ... TO "+quote.Ident(d.o.ReassignOwnedTo))
		}
		if !d.o.DropOwned {
			// Something may have been created since the read: then the
			// transaction fails rather than dropping it.
			d.reassign[db] = append(d.reassign[db], ownsNothingGuard(name))
		}
		d.reassign[db] = append(d.reassign[db], "DROP OWNED BY "+q)
		d.needPrivs(name, "DROP OWNED BY "+q)
	}
	d.drops = append(d.drops, "DROP ROLE "+q)
}

// ownsNothingGuard is a statement that fails when role owns anything in
// the current database or among shared objects (pg_shdepend deptype 'o').
func ownsNothingGuard(role string) string {
	body := "BEGIN IF EXISTS (SELECT 1 FROM pg_catalog.pg_shdepend s JOIN pg_catalog.pg_roles r ON r.oid = s.refobjid" +
		" WHERE s.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass AND s.deptype = 'o' AND r.rolname = " + quote.Literal(role) +
		" AND s.dbid IN (0, (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())))" +
		" THEN RAISE EXCEPTION 'role % now owns objects in database %: not dropped (plan again)', " + quote.Literal(role) +
		", pg_catalog.current_database(); END IF; END"
	return "DO " + quote.Literal(body)
}

// needSet notes that what (CREATE DATABASE ... OWNER, ALTER ... OWNER TO,
// REASSIGN OWNED ... TO) needs the executing role to be able to SET ROLE
// role: a non-superuser on 16+ is refused otherwise, and a role it
// created gives it ADMIN but not SET (createrole_self_grant aside).
func (d *differ) needSet(role, what string) { d.needRole(role, what, false) }

// needPrivs is needSet for what needs the privileges of role (DROP
// OWNED BY, REASSIGN OWNED BY: memberships with INHERIT).
func (d *differ) needPrivs(role, what string) { d.needRole(role, what, true) }

func (d *differ) needRole(role, what string, inherit bool) {
	me := d.live.CurrentUser
	if d.live.Superuser || me == "" || role == "" || role == me || d.major > 0 && d.major < 16 || d.reaches(me, role, inherit) {
		return
	}
	need, opt := "to be able to SET ROLE "+quote.Ident(role), "SET"
	if inherit {
		need, opt = "to have the privileges of "+quote.Ident(role), "INHERIT"
	}
	d.note(NoteWarning, "role "+role, "%s needs %s %s (PostgreSQL 16+, not a superuser): the server refuses it otherwise; GRANT %s TO %s WITH %s TRUE first (%s has ADMIN on a role it created), or run as a superuser",
		what, quote.Ident(me), need, quote.Ident(role), quote.Ident(me), opt, quote.Ident(me))
}

// reaches: from is, through memberships with SET (inherit false) or
// INHERIT (inherit true), live or the file's (the plan adds those
// first), able to act as to.
func (d *differ) reaches(from, to string, inherit bool) bool {
	seen := map[string]bool{from: true}
	queue := []string{from}
	for len(queue) > 0 {
		r := queue[0]
		queue = queue[1:]
		var ms []Membership
		if lr := d.l.Roles[r]; lr != nil {
			ms = append(ms, lr.MemberOf...)
		}
		if fr := d.f.Roles[r]; fr != nil {
			ms = append(ms, fr.MemberOf...)
		}
		for _, m := range ms {
			opt := m.Set
			if inherit {
				opt = m.Inherit
			}
			if opt != nil && !*opt || seen[m.Role] {
				continue
			}
			if m.Role == to {
				return true
			}
			seen[m.Role] = true
			queue = append(queue, m.Role)
		}
	}
	return false
}
