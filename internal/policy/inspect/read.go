package inspect

import (
	"context"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

	"github.com/pgaegis/pgaegis/internal/acl"
	"github.com/pgaegis/pgaegis/internal/policy"
)

// Options shape a Read.
type Options struct {
	// Databases: only these (empty: every database that allows
	// connections, templates excluded).
	Databases []string
	// Progress, when set, is told which database is being read.
	Progress io.Writer
	// StatementTimeout bounds each query (default 60s: a catalog pull of
	// 140k relations takes a second or two).
	StatementTimeout time.Duration
}

// UnreadablePasswords is the Live.Unreadable key set when pg_authid (and
// so which roles have a password) could not be read. A database that
// could not be read is keyed by its name.
const UnreadablePasswords = "passwords"

// cluster is what the first connection learns that every database's read
// needs.
type cluster struct {
	major int
	names map[uint32]string // role OID -> name
	in    *acl.Interner
}

// Read returns the live state: the cluster's roles, memberships and
// settings from the connection's database, then, one connection and one
// query per catalog each, the databases' schemas, objects, grants,
// default privileges and RLS. What cannot be read is named in
// Live.Unreadable, never silently left out.
func Read(ctx context.Context, cfg *pgx.ConnConfig, o Options) (*policy.Live, error) {
	if o.StatementTimeout <= 0 {
		o.StatementTimeout = 60 * time.Second
	}
	se, err := openSession(ctx, cfg, "", o.StatementTimeout)
	if err != nil {
		return nil, err
	}
	live := &policy.Live{
		File:        &policy.File{Version: policy.FormatVersion, Mode: policy.Authoritative, Roles: policy.Roles{}, Databases: map[string]*policy.Database{}},
		HasPassword: map[string]bool{},
		Dependents:  map[string]map[string]policy.Dependents{},
		Sessions:    map[string]int{},
		Unreadable:  map[string]string{},
	}
	cl, dbs, err := readCluster(ctx, se.tx, live)
	se.close()
	if err != nil {
		return nil, err
	}
	want := map[string]bool{}
	for _, d := range o.Databases {
		want[d] = true
	}
	for _, d := range o.Databases {
		if !slices.Contains(live.Databases, d) {
			return nil, fmt.Errorf("database %q does not exist", d)
		}
	}
	for _, d := range dbs {
		if len(want) > 0 && !want[d.name] {
			continue
		}
		if len(o.Databases) == 0 && (d.template || !d.allowConn) {
			continue
		}
		if !d.allowConn {
			live.Unreadable[d.name] = "the database does not allow connections (datallowconn is false)"
			continue
		}
		if o.Progress != nil {
			fmt.Fprintf(o.Progress, "reading database %s\n", d.name)
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if reason := readDatabase(ctx, cfg, o, cl, d, live); reason != "" {
			delete(live.File.Databases, d.name)
			live.Unreadable[d.name] = reason
		}
	}
	return live, nil
}

type dbInfo struct {
	oid                 uint32
	name                string
	template, allowConn bool
	db                  *policy.Database
}

func readCluster(ctx context.Context, tx pgx.Tx, live *policy.Live) (*cluster, []*dbInfo, error) {
	var num int
	if err := tx.QueryRow(ctx, `SELECT current_user, coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = current_user), false),
		current_setting('server_version_num')::int, coalesce((SELECT rolname FROM pg_roles WHERE oid = 10), '')`).
		Scan(&live.CurrentUser, &live.Superuser, &num, &live.Bootstrap); err != nil {
		return nil, nil, fmt.Errorf("reading the server version: %s", errString(err))
	}
	live.Major = num / 10000
	cl := &cluster{major: live.Major, names: map[uint32]string{}}
	f := live.File

	// Roles. Predefined pg_* roles are never managed: kept only as names.
	rows, err := tx.Query(ctx, `SELECT oid, rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin,
		rolreplication, rolbypassrls, rolconnlimit, coalesce(rolvaliduntil::text, '') FROM pg_roles`)
	if err != nil {
		return nil, nil, fmt.Errorf("reading pg_roles: %s", errString(err))
	}
	inherit := map[string]bool{}
	var all []string
	for rows.Next() {
		var oid uint32
		var name string
		var r policy.Role
		var super, inh, crole, cdb, login, repl, bypass bool
		var limit int
		if err := rows.Scan(&oid, &name, &super, &inh, &crole, &cdb, &login, &repl, &bypass, &limit, &r.ValidUntil); err != nil {
			rows.Close()
			return nil, nil, fmt.Errorf("reading pg_roles: %s", errString(err))
		}
		cl.names[oid] = name
		all = append(all, name)
		inherit[name] = inh
		if isPredefined(name) {
			continue
		}
		r.Superuser, r.Inherit, r.CreateRole, r.CreateDB, r.Login, r.Replication, r.BypassRLS = &super, &inh, &crole, &cdb, &login, &repl, &bypass
		r.ConnectionLimit = &limit
		r.MemberOf = policy.Memberships{}
		f.Roles[name] = &r
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("reading pg_roles: %s", errString(err))
	}
	cl.in = acl.NewInterner(all...)
	name := func(oid uint32) string {
		if n, ok := cl.names[oid]; ok {
			return n
		}
		return fmt.Sprintf("#%d", oid) // dropped concurrently: never matches a role
	}

	// Passwords: whether one is set, never the verifier; pg_authid is
	// readable by superusers only.
	var canAuthid bool
	if err := tx.QueryRow(ctx, `SELECT has_column_privilege('pg_authid', 'rolpassword', 'SELECT')`).Scan(&canAuthid); err != nil {
		return nil, nil, fmt.Errorf("checking pg_authid: %s", errString(err))
	}
	if canAuthid {
		if err := eachRow(ctx, tx, `SELECT rolname FROM pg_authid WHERE rolpassword IS NOT NULL`, func(r pgx.Rows) error {
			var n string
			if err := r.Scan(&n); err != nil {
				return err
			}
			live.HasPassword[n] = true
			return nil
		}); err != nil {
			return nil, nil, fmt.Errorf("reading pg_authid: %s", errString(err))
		}
	} else {
		live.HasPassword = nil
		live.Unreadable[UnreadablePasswords] = "pg_authid is not readable by " + live.CurrentUser + " (superuser only): which roles have a password is unknown"
	}

	// Memberships, on the member's entry. Options only where they differ
	// from a plain GRANT's: ADMIN false, SET true, INHERIT the member's
	// attribute; a grantor only on 16+ (where it is a dependency) and
	// only when it is not the bootstrap superuser a superuser's GRANT
	// records.
	q := `SELECT roleid, member, grantor, admin_option, true, true FROM pg_auth_members`
	if live.Major >= 16 {
		q = `SELECT roleid, member, grantor, admin_option, inherit_option, set_option FROM pg_auth_members`
	}
	if err := eachRow(ctx, tx, q, func(r pgx.Rows) error {
		var role, member, grantor uint32
		var admin, inh, set bool
		if err := r.Scan(&role, &member, &grantor, &admin, &inh, &set); err != nil {
			return err
		}
		mr := f.Roles[name(member)]
		if mr == nil {
			return nil // a predefined role's membership
		}
		m := policy.Membership{Role: name(role)}
		if admin {
			m.Admin = ptr(true)
		}
		if live.Major >= 16 {
			if inh != inherit[name(member)] {
				m.Inherit = ptr(inh)
			}
			if !set {
				m.Set = ptr(false)
			}
			if g := name(grantor); g != live.Bootstrap {
				m.Grantor = g
			}
		}
		mr.MemberOf = append(mr.MemberOf, m)
		return nil
	}); err != nil {
		return nil, nil, fmt.Errorf("reading pg_auth_members: %s", errString(err))
	}
	for _, r := range f.Roles {
		sort.Slice(r.MemberOf, func(i, j int) bool {
			a, b := r.MemberOf[i], r.MemberOf[j]
			if a.Role != b.Role {
				return a.Role < b.Role
			}
			return a.Grantor < b.Grantor
		})
	}

	// Databases.
	var dbs []*dbInfo
	dbName := map[uint32]string{}
	dcache := newGrantCache(cl.in, live.Major)
	if err := eachRow(ctx, tx, `SELECT oid, datname, datdba, datistemplate, datallowconn, coalesce(datacl::text, chr(1)) FROM pg_database`, func(r pgx.Rows) error {
		d := &dbInfo{}
		var owner uint32
		var a []byte
		if err := r.Scan(&d.oid, &d.name, &owner, &d.template, &d.allowConn, &a); err != nil {
			return err
		}
		g, err := dcache.get(acl.KindDatabase, name(owner), nullText(a), false)
		if err != nil {
			return fmt.Errorf("database %q: %v", d.name, err)
		}
		d.db = &policy.Database{Owner: name(owner), Grants: g, Schemas: map[string]*policy.Schema{}, DefaultPrivileges: policy.DefaultPrivilegesByRole{}}
		dbs = append(dbs, d)
		dbName[d.oid] = d.name
		live.Databases = append(live.Databases, d.name)
		return nil
	}); err != nil {
		return nil, nil, fmt.Errorf("reading pg_database: %s", errString(err))
	}
	sort.Strings(live.Databases)
	sort.Slice(dbs, func(i, j int) bool { return dbs[i].name < dbs[j].name })

	// Role settings: cluster-wide and IN DATABASE. Settings of a database
	// for every role (setrole 0) have no place in the model.
	if err := eachRow(ctx, tx, `SELECT setdatabase, setrole, setconfig FROM pg_db_role_setting WHERE setrole <> 0`, func(r pgx.Rows) error {
		var db, role uint32
		var conf []string
		if err := r.Scan(&db, &role, &conf); err != nil {
			return err
		}
		ro := f.Roles[name(role)]
		if ro == nil {
			return nil
		}
		s := policy.Settings{}
		for _, c := range conf {
			k, v, _ := strings.Cut(c, "=")
			s[k] = v
		}
		if db == 0 {
			ro.Settings = s
			return nil
		}
		if ro.DatabaseSettings == nil {
			ro.DatabaseSettings = map[string]policy.Settings{}
		}
		ro.DatabaseSettings[dbName[db]] = s
		return nil
	}); err != nil {
		return nil, nil, fmt.Errorf("reading pg_db_role_setting: %s", errString(err))
	}

	// Dependents for the removal preflight.
	if err := eachRow(ctx, tx, `SELECT dbid, refobjid, deptype::text, count(*) FROM pg_shdepend
		WHERE refclassid = 'pg_authid'::regclass AND deptype IN ('o', 'a', 'r') GROUP BY 1, 2, 3`, func(r pgx.Rows) error {
		var db, role uint32
		var kind string
		var n int
		if err := r.Scan(&db, &role, &kind, &n); err != nil {
			return err
		}
		rn := name(role)
		m := live.Dependents[rn]
		if m == nil {
			m = map[string]policy.Dependents{}
			live.Dependents[rn] = m
		}
		dn := ""
		if db != 0 {
			dn = dbName[db]
		}
		d := m[dn]
		switch kind {
		case "o":
			d.Owned += n
		case "a":
			d.Privileges += n
		case "r":
			d.Policies += n
		}
		m[dn] = d
		return nil
	}); err != nil {
		return nil, nil, fmt.Errorf("reading pg_shdepend: %s", errString(err))
	}

	if err := eachRow(ctx, tx, `SELECT usename, count(*) FROM pg_stat_activity WHERE usename IS NOT NULL GROUP BY 1`, func(r pgx.Rows) error {
		var n string
		var c int
		if err := r.Scan(&n, &c); err != nil {
			return err
		}
		live.Sessions[n] = c
		return nil
	}); err != nil {
		return nil, nil, fmt.Errorf("reading pg_stat_activity: %s", errString(err))
	}
	return cl, dbs, nil
}

// nullText maps the query's NULL marker (a lone \x01 byte, which no
// aclitem[] text is) to the cache's.
func nullText(b []byte) []byte {
	if len(b) == 1 && b[0] == 1 {
		return []byte(nullACL)
	}
	return b
}

func isPredefined(name string) bool { return strings.HasPrefix(name, "pg_") }

func ptr[T any](v T) *T { return &v }

func eachRow(ctx context.Context, tx pgx.Tx, q string, fn func(pgx.Rows) error) error {
	rows, err := tx.Query(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}

// readDatabase reads one database's objects into live (the database's
// entry is added first). It returns why the database could not be read,
// or "".
func readDatabase(ctx context.Context, base *pgx.ConnConfig, o Options, cl *cluster, d *dbInfo, live *policy.Live) string {
	se, err := openSession(ctx, base, d.name, o.StatementTimeout)
	if err != nil {
		return err.Error()
	}
	defer se.close()
	live.File.Databases[d.name] = d.db
	if err := readObjects(ctx, se.tx, cl, d.db); err != nil {
		return errString(err)
	}
	return ""
}

type relInfo struct {
	schema *policy.Schema
	name   string
	obj    *policy.Object
}

func readObjects(ctx context.Context, tx pgx.Tx, cl *cluster, db *policy.Database) error {
	name := func(oid uint32) string {
		if n, ok := cl.names[oid]; ok {
			return n
		}
		return fmt.Sprintf("#%d", oid)
	}
	// The interner is per database: reads may one day run in parallel.
	in := acl.NewInterner()
	for _, n := range cl.names {
		in.Name(n)
	}
	cache := newGrantCache(in, cl.major)

	// What extensions own is not exported or managed.
	ext := map[byte]map[uint32]bool{'n': {}, 'r': {}, 'f': {}}
	if err := eachRow(ctx, tx, `SELECT CASE classid WHEN 'pg_namespace'::regclass THEN 'n' WHEN 'pg_class'::regclass THEN 'r' ELSE 'f' END, objid
		FROM pg_depend WHERE deptype = 'e' AND classid IN ('pg_namespace'::regclass, 'pg_class'::regclass, 'pg_proc'::regclass)`, func(r pgx.Rows) error {
		var k string
		var oid uint32
		if err := r.Scan(&k, &oid); err != nil {
			return err
		}
		ext[k[0]][oid] = true
		return nil
	}); err != nil {
		return fmt.Errorf("reading pg_depend: %w", err)
	}

	schemas := map[uint32]*policy.Schema{}
	if err := eachRow(ctx, tx, `SELECT n.oid, n.nspname, n.nspowner, coalesce(n.nspacl::text, chr(1)) FROM pg_namespace n
		WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'`, func(r pgx.Rows) error {
		var oid, owner uint32
		var n string
		var a []byte
		if err := r.Scan(&oid, &n, &owner, &a); err != nil {
			return err
		}
		if ext['n'][oid] {
			return nil
		}
		g, err := cache.get(acl.KindSchema, name(owner), nullText(a), false)
		if err != nil {
			return fmt.Errorf("schema %q: %v", n, err)
		}
		s := &policy.Schema{Owner: name(owner), Grants: g, Tables: policy.Objects{}, Sequences: policy.Objects{}, Functions: policy.Objects{},
			DefaultPrivileges: policy.DefaultPrivilegesByRole{}, RLS: map[string]*policy.RLS{}}
		schemas[oid] = s
		db.Schemas[n] = s
		return nil
	}); err != nil {
		return fmt.Errorf("reading pg_namespace: %w", err)
	}

	// Relations: owners as OIDs and ACLs as one text value, the cheapest
	// form to produce and read at 140k rows; system schemas dropped here.
	rels := map[uint32]relInfo{}
	rlsOn := map[uint32][2]bool{}
	if err := eachRow(ctx, tx, `SELECT oid, relnamespace, relname, relkind, relowner, coalesce(relacl::text, chr(1)), relrowsecurity, relforcerowsecurity
		FROM pg_class WHERE relkind IN ('r', 'p', 'v', 'm', 'f', 'S')`, func(r pgx.Rows) error {
		var oid, ns, owner uint32
		var n string
		var kind byte
		var a pgtype.DriverBytes
		var rls, force bool
		if err := r.Scan(&oid, &ns, &n, &kind, &owner, &a, &rls, &force); err != nil {
			return err
		}
		s := schemas[ns]
		if s == nil || ext['r'][oid] {
			return nil
		}
		k, objs := byte(acl.KindRelation), s.Tables
		if kind == 'S' {
			k, objs = acl.KindSequence, s.Sequences
		}
		on := name(owner)
		g, err := cache.get(k, on, nullText(a), false)
		if err != nil {
			return fmt.Errorf("relation %q: %v", n, err)
		}
		obj := &policy.Object{Owner: on, Grants: g}
		if kind != 'S' {
			// Column ACLs are read below for every table: none is a
			// managed {} (so a restore to this state revokes any added).
			obj.Columns = policy.ColumnGrants{}
		}
		objs[n] = obj
		rels[oid] = relInfo{s, n, obj}
		if rls || force {
			rlsOn[oid] = [2]bool{rls, force}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("reading pg_class: %w", err)
	}

	// Column privileges: only columns that have any.
	if err := eachRow(ctx, tx, `SELECT attrelid, attname, attacl::text FROM pg_attribute WHERE attacl IS NOT NULL AND attnum > 0 AND NOT attisdropped`, func(r pgx.Rows) error {
		var rel uint32
		var col string
		var a pgtype.DriverBytes
		if err := r.Scan(&rel, &col, &a); err != nil {
			return err
		}
		ri, ok := rels[rel]
		if !ok {
			return nil
		}
		g, err := cache.get(acl.KindColumn, "", a, true)
		if err != nil {
			return fmt.Errorf("column %q of %q: %v", col, ri.name, err)
		}
		if len(g) == 0 {
			return nil // an ACL emptied by revokes: same as none
		}
		ri.obj.Columns[col] = g
		return nil
	}); err != nil {
		return fmt.Errorf("reading pg_attribute: %w", err)
	}

	// Functions, procedures and aggregates, keyed "name(identity args)".
	if err := eachRow(ctx, tx, `SELECT p.oid, p.pronamespace, p.proname, pg_get_function_identity_arguments(p.oid), p.proowner, coalesce(p.proacl::text, chr(1))
		FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		WHERE n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp\_%'`, func(r pgx.Rows) error {
		var oid, ns, owner uint32
		var n, args string
		var a pgtype.DriverBytes
		if err := r.Scan(&oid, &ns, &n, &args, &owner, &a); err != nil {
			return err
		}
		s := schemas[ns]
		if s == nil || ext['f'][oid] {
			return nil
		}
		on := name(owner)
		g, err := cache.get(acl.KindFunction, on, nullText(a), false)
		if err != nil {
			return fmt.Errorf("function %q: %v", n, err)
		}
		s.Functions[n+"("+args+")"] = &policy.Object{Owner: on, Grants: g}
		return nil
	}); err != nil {
		return fmt.Errorf("reading pg_proc: %w", err)
	}

	// Default privileges: database-wide entries hold the whole default
	// ACL (they replace the built-in one, the creator's own privileges
	// included); IN SCHEMA entries are added to it.
	if err := eachRow(ctx, tx, `SELECT defaclrole, defaclnamespace, defaclobjtype, coalesce(defaclacl::text, '{}') FROM pg_default_acl`, func(r pgx.Rows) error {
		var role, ns uint32
		var typ byte
		var a pgtype.DriverBytes
		if err := r.Scan(&role, &ns, &typ, &a); err != nil {
			return err
		}
		var by policy.DefaultPrivilegesByRole
		if ns == 0 {
			by = db.DefaultPrivileges
		} else if s := schemas[ns]; s != nil {
			by = s.DefaultPrivileges
		} else {
			return nil
		}
		rn := name(role)
		dp := by[rn]
		if dp == nil {
			dp = &policy.DefaultPrivileges{}
		}
		var kind byte
		var field *policy.Grants
		switch typ {
		case 'r':
			kind, field = acl.KindRelation, &dp.Tables
		case 'S':
			kind, field = acl.KindSequence, &dp.Sequences
		case 'f':
			kind, field = acl.KindFunction, &dp.Functions
		case 'T':
			kind, field = acl.KindType, &dp.Types
		case 'n':
			kind, field = acl.KindSchema, &dp.Schemas
		default:
			return nil // a kind this model has no place for (large objects, 18+)
		}
		by[rn] = dp
		items, err := in.ParseArrayText(string(a))
		if err != nil {
			return fmt.Errorf("default privileges of %q: %v", rn, err)
		}
		if ns == 0 {
			*field = toGrants(items, rn, cache.fullFor(kind))
		} else {
			*field = toGrants(items, rn, nil)
			if own, ok := (*field)[rn]; ok && sameAsFull(own, cache.fullFor(kind)) {
				delete(*field, rn) // adds nothing the creator lacks
			}
		}
		return nil
	}); err != nil {
		return fmt.Errorf("reading pg_default_acl: %w", err)
	}

	// RLS: the switches and the policies, expressions as the server
	// prints them.
	rlsOf := func(rel uint32) *policy.RLS {
		ri, ok := rels[rel]
		if !ok {
			return nil
		}
		x := ri.schema.RLS[ri.name]
		if x == nil {
			x = &policy.RLS{}
			ri.schema.RLS[ri.name] = x
		}
		return x
	}
	for rel, on := range rlsOn {
		if x := rlsOf(rel); x != nil {
			x.Enabled, x.Force = on[0], on[1]
		}
	}
	if err := eachRow(ctx, tx, `SELECT polrelid, polname, polcmd, polpermissive, polroles, coalesce(pg_get_expr(polqual, polrelid), ''),
		coalesce(pg_get_expr(polwithcheck, polrelid), '') FROM pg_policy`, func(r pgx.Rows) error {
		var rel uint32
		var n string
		var cmd byte
		var permissive bool
		var roles []uint32
		p := &policy.RowPolicy{}
		if err := r.Scan(&rel, &n, &cmd, &permissive, &roles, &p.Using, &p.Check); err != nil {
			return err
		}
		x := rlsOf(rel)
		if x == nil {
			return nil
		}
		p.Command = map[byte]string{'r': "SELECT", 'a': "INSERT", 'w': "UPDATE", 'd': "DELETE"}[cmd] // "" is ALL
		p.Restrictive = !permissive
		for _, ro := range roles {
			if ro == 0 {
				continue // PUBLIC, the default
			}
			p.Roles = append(p.Roles, name(ro))
		}
		sort.Strings(p.Roles)
		if x.Policies == nil {
			x.Policies = policy.RowPolicies{}
		}
		x.Policies[n] = p
		return nil
	}); err != nil {
		return fmt.Errorf("reading pg_policy: %w", err)
	}
	return nil
}

func (c *grantCache) fullFor(kind byte) map[string]bool {
	f := c.full[kind]
	if f == nil {
		f = ownerFull(kind, c.major)
		c.full[kind] = f
	}
	return f
}

func sameAsFull(privs []string, full map[string]bool) bool {
	if len(privs) != len(full) {
		return false
	}
	for _, p := range privs {
		if !full[p] {
			return false
		}
	}
	return true
}
