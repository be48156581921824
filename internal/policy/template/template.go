// Package template builds the guides' least-privilege layouts as policy
// files (ADOPT mode, so roles the file does not name are left alone): a
// NOLOGIN owner owning the database and its schemas, an application role
// with CRUD, a read-only role, PUBLIC's database and schema privileges
// revoked, and default privileges FOR ROLE every role that creates objects
// there, so future tables and sequences get the same grants. The guides
// run ALTER DEFAULT PRIVILEGES without FOR ROLE, which only covers objects
// the role running it creates; that gap is what this fixes.
package template

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/pgaegis/pgaegis/internal/policy"
	"github.com/pgaegis/pgaegis/internal/quote"
)

// Default connection limits: enough for an application pool, a few
// report sessions, one migration at a time and a monitoring agent.
const (
	DefaultAppConnLimit        = 50
	DefaultReadOnlyConnLimit   = 10
	DefaultMigrationConnLimit  = 2
	DefaultMonitoringConnLimit = 3
)

// PolicyName is the tenant template's row policy for the app;
// ReadPolicyName the read-only role's (SELECT only).
const (
	PolicyName     = "tenant_isolation"
	ReadPolicyName = "tenant_isolation_read"
)

// Options name the roles and what the template grants them. Zero
// connection limits mean the defaults above (-1 is no limit).
type Options struct {
	Database string
	Owner    string // "<database>_owner" when empty
	App      string
	ReadOnly string
	Schemas  []string // ["public"] when empty
	// AppExecute grants EXECUTE on the schemas' functions to the app.
	AppExecute bool
	// Migration is a LOGIN role that does DDL after SET ROLE <owner>:
	// member of the owner WITH INHERIT FALSE, SET TRUE (16+; NOINHERIT
	// before), so the objects it creates belong to the owner.
	Migration string
	// Monitoring is a LOGIN role, member of pg_monitor, with CONNECT.
	Monitoring string

	AppConnLimit, ReadOnlyConnLimit, MigrationConnLimit, MonitoringConnLimit int

	// AppAudit and ReadOnlyAudit are pgaudit.log values for the role
	// ("write,ddl"); empty leaves the setting alone.
	AppAudit, ReadOnlyAudit string
	// AppVerifier, ReadOnlyVerifier, MigrationVerifier and
	// MonitoringVerifier are SCRAM verifiers (never clear text); empty
	// leaves the password as it is.
	AppVerifier, ReadOnlyVerifier, MigrationVerifier, MonitoringVerifier string

	// Tenant, when set, adds row-level security keyed on a setting.
	Tenant *Tenant
}

// Tenant is the per-tenant RLS template: on each table, ENABLE and FORCE
// RLS, one policy for the app (ALL) and one for the read-only role
// (SELECT), Column = current_setting(Setting, true) cast to the column's
// type (no tenant set: no rows). The table's other live policies are kept.
type Tenant struct {
	// Tables are "table" (in the first schema) or "schema.table".
	Tables  []string
	Column  string
	Setting string // "app.tenant_id" when empty
	// TestValue is the tenant the file's RLS test sets; a value for the
	// column's type when empty.
	TestValue string
	// ColumnType returns the column's type as format_type spells it, or
	// an error when the table or column does not exist.
	ColumnType func(schema, table, column string) (string, error)
	// Deparse, when set, returns an expression over the table's columns
	// as the server prints it back (pg_get_expr), so the file holds what
	// a later read sees and a second run plans nothing.
	Deparse func(schema, table, expr string) (string, error)
}

// Init builds the layout as a policy file for live (the server as read).
func Init(o Options, live *policy.Live) (*policy.File, []policy.Note, error) {
	if live == nil || live.File == nil {
		return nil, nil, errors.New("template: no live state")
	}
	if err := o.normalize(); err != nil {
		return nil, nil, err
	}
	var notes []policy.Note
	crud := []string{"SELECT", "INSERT", "UPDATE", "DELETE"}
	seq := []string{"USAGE", "SELECT"}

	f := &policy.File{Version: policy.FormatVersion, Mode: policy.Adopt, Roles: policy.Roles{}}
	f.Roles[o.Owner] = &policy.Role{Login: ptr(false)}
	// The app's and read-only role's memberships are not the template's:
	// MemberOf stays nil (not managed), so adopt mode revokes none of them.
	f.Roles[o.App] = loginRole(o.AppConnLimit, o.AppVerifier)
	f.Roles[o.ReadOnly] = loginRole(o.ReadOnlyConnLimit, o.ReadOnlyVerifier)
	liveRoles := live.File.Roles
	dbGrants := policy.Grants{"PUBLIC": {}, o.App: {"CONNECT"}, o.ReadOnly: {"CONNECT"}}
	if o.Migration != "" {
		r := loginRole(o.MigrationConnLimit, o.MigrationVerifier)
		m := policy.Membership{Role: o.Owner}
		if live.Major >= 16 {
			m.Inherit, m.Set = ptr(false), ptr(true)
		} else {
			// Before 16 a membership has no INHERIT option: the role's
			// NOINHERIT gives the same "only after SET ROLE".
			r.Inherit = ptr(false)
		}
		r.MemberOf = keepMemberships(liveRoles[o.Migration], m)
		f.Roles[o.Migration] = r
		dbGrants[o.Migration] = []string{"CONNECT"}
	}
	if o.Monitoring != "" {
		r := loginRole(o.MonitoringConnLimit, o.MonitoringVerifier)
		r.MemberOf = keepMemberships(liveRoles[o.Monitoring], policy.Membership{Role: "pg_monitor"})
		f.Roles[o.Monitoring] = r
		dbGrants[o.Monitoring] = []string{"CONNECT"}
	}
	for _, a := range []struct{ role, audit string }{{o.App, o.AppAudit}, {o.ReadOnly, o.ReadOnlyAudit}} {
		if a.audit == "" {
			continue
		}
		// Settings are exact once given: keep the role's other ones.
		s := policy.Settings{}
		if lr := liveRoles[a.role]; lr != nil {
			for k, v := range lr.Settings {
				s[k] = v
			}
		}
		s["pgaudit.log"] = a.audit
		f.Roles[a.role].Settings = s
	}
	for _, p := range []struct{ role, verifier, flag string }{
		{o.App, o.AppVerifier, "--app-password-file"}, {o.ReadOnly, o.ReadOnlyVerifier, "--readonly-password-file"},
		{o.Migration, o.MigrationVerifier, "--migration-password-file"}, {o.Monitoring, o.MonitoringVerifier, "--monitoring-password-file"},
	} {
		if p.role == "" || p.verifier != "" || live.HasPassword[p.role] {
			continue
		}
		notes = append(notes, policy.Note{Level: "info", Object: "role " + p.role,
			Text: fmt.Sprintf("no password set: give %s FILE (or - for stdin) so pgaegis sends only a SCRAM verifier, or run psql's \\password %s, which also computes it on the client; never ALTER ROLE ... PASSWORD 'clear text', which reaches the server log", p.flag, p.role)})
	}
	if o.AppAudit != "" || o.ReadOnlyAudit != "" {
		notes = append(notes, policy.Note{Level: "info", Object: "pgaudit.log",
			Text: "the per-role pgaudit.log setting takes effect only where pgaudit is in shared_preload_libraries"})
	}

	db := &policy.Database{Owner: o.Owner, Grants: dbGrants, Schemas: map[string]*policy.Schema{}}
	others := map[string]bool{} // creators the template does not otherwise name
	f.Databases = map[string]*policy.Database{o.Database: db}
	liveDB := live.File.Databases[o.Database]
	for _, name := range o.Schemas {
		s := &policy.Schema{
			Owner:     o.Owner,
			Grants:    policy.Grants{"PUBLIC": {}, o.App: {"USAGE"}, o.ReadOnly: {"USAGE"}},
			Tables:    policy.Objects{"*": {Grants: policy.Grants{o.App: crud, o.ReadOnly: {"SELECT"}}}},
			Sequences: policy.Objects{"*": {Grants: policy.Grants{o.App: seq}}},
		}
		def := func() *policy.DefaultPrivileges {
			d := &policy.DefaultPrivileges{
				Tables:    policy.Grants{o.App: crud, o.ReadOnly: {"SELECT"}},
				Sequences: policy.Grants{o.App: seq},
			}
			if o.AppExecute {
				d.Functions = policy.Grants{o.App: {"EXECUTE"}}
			}
			return d
		}
		if o.AppExecute {
			s.Functions = policy.Objects{"*": {Grants: policy.Grants{o.App: {"EXECUTE"}}}}
		}
		var ls *policy.Schema
		if liveDB != nil {
			ls = liveDB.Schemas[name]
		}
		s.DefaultPrivileges = policy.DefaultPrivilegesByRole{}
		for _, c := range creators(o, ls) {
			s.DefaultPrivileges[c] = def()
			if _, ours := f.Roles[c]; !ours {
				others[c] = true
			}
		}
		for _, c := range []string{o.App, o.ReadOnly} {
			if n := owned(ls, c); n > 0 {
				notes = append(notes, policy.Note{Level: "warning", Object: "schema " + name,
					Text: fmt.Sprintf("%s owns %d objects here, so it can ALTER and DROP them whatever the grants: move them to %s (ALTER ... OWNER TO, or REASSIGN OWNED BY %s TO %s in this database)", c, n, o.Owner, c, o.Owner)})
			}
		}
		db.Schemas[name] = s
	}
	notes = append(notes, keepCreators(o, live, db, others)...)
	notes = append(notes, membershipNotes(o, f, live)...)
	notes = append(notes, connectLosers(o, f, live)...)
	if o.Tenant != nil {
		tn, err := tenantRLS(o, db, live)
		if err != nil {
			return nil, nil, err
		}
		notes = append(notes, tn...)
	}
	return f, notes, nil
}

func loginRole(limit int, verifier string) *policy.Role {
	return &policy.Role{Login: ptr(true), ConnectionLimit: ptr(limit), Password: verifier}
}

// keepMemberships is the template's membership m plus the role's live
// ones: a member_of list is exact in adopt mode, and the template means
// to add m, not to revoke what the role already belongs to.
func keepMemberships(lr *policy.Role, m policy.Membership) policy.Memberships {
	out := policy.Memberships{m}
	if lr == nil {
		return out
	}
	for _, l := range lr.MemberOf {
		if l.Role != m.Role {
			out = append(out, l)
		}
	}
	return out
}

// membershipNotes names the memberships the layout's roles keep: their
// privileges add to what the layout grants.
func membershipNotes(o Options, f *policy.File, live *policy.Live) []policy.Note {
	var notes []policy.Note
	for _, name := range []string{o.App, o.ReadOnly, o.Migration, o.Monitoring} {
		lr := live.File.Roles[name]
		if name == "" || lr == nil || len(lr.MemberOf) == 0 {
			continue
		}
		var kept []string
		for _, m := range lr.MemberOf {
			if name == o.Migration && m.Role == o.Owner || name == o.Monitoring && m.Role == "pg_monitor" {
				continue
			}
			kept = append(kept, m.Role)
		}
		if len(kept) == 0 {
			continue
		}
		slices.Sort(kept)
		notes = append(notes, policy.Note{Level: "info", Object: "role " + name,
			Text: fmt.Sprintf("stays a member of %s (the layout revokes no membership): what those roles may do, %s may do too; revoke them yourself if that is not meant", strings.Join(kept, ", "), name)})
	}
	return notes
}

// creators are the roles whose future objects need default privileges:
// the owner, the migration role, and whoever owns objects in the schema
// or holds CREATE on it now. Predefined roles (pg_database_owner owns
// public on 15+) and PUBLIC are left out; the app and read-only roles
// too, unless they already create there.
func creators(o Options, ls *policy.Schema) []string {
	set := map[string]bool{o.Owner: true}
	if o.Migration != "" {
		set[o.Migration] = true
	}
	if ls != nil {
		set[ls.Owner] = true
		for grantee, privs := range ls.Grants {
			for _, p := range privs {
				p = strings.TrimSuffix(strings.ToUpper(p), " WITH GRANT OPTION")
				if p == "CREATE" || p == "ALL" || p == "ALL PRIVILEGES" {
					set[grantee] = true
				}
			}
		}
		for _, objs := range []policy.Objects{ls.Tables, ls.Sequences, ls.Functions} {
			for _, ob := range objs {
				if ob != nil {
					set[ob.Owner] = true
				}
			}
		}
	}
	var out []string
	for r := range set {
		if r == "" || r == "PUBLIC" || strings.HasPrefix(r, "pg_") {
			continue
		}
		out = append(out, r)
	}
	slices.Sort(out)
	return out
}

// keepCreators keeps the login roles that create objects here able to
// connect once PUBLIC's CONNECT is gone. Naming a role in a Grants map
// makes all of its grants in the file's scope exact (adopt mode), so its
// live database and schema grants are carried over with CONNECT added;
// a role that also holds grants on objects it does not own is left out
// and named in a warning instead.
func keepCreators(o Options, live *policy.Live, db *policy.Database, others map[string]bool) []policy.Note {
	liveDB := live.File.Databases[o.Database]
	if liveDB == nil {
		return nil
	}
	var notes []policy.Note
	for _, c := range slices.Sorted(maps.Keys(others)) {
		if lr := live.File.Roles[c]; lr == nil || lr.Login == nil || !*lr.Login {
			continue // its members connect as themselves
		}
		if objectGrantee(liveDB, o.Schemas, c) {
			notes = append(notes, policy.Note{Level: "warning", Object: "role " + c,
				Text: fmt.Sprintf("creates objects in %s but is not part of the layout: with PUBLIC's CONNECT revoked it needs its own (GRANT CONNECT ON DATABASE, or name it with --migration)", o.Database)})
			continue
		}
		db.Grants[c] = union(liveDB.Grants[c], "CONNECT")
		for name, s := range db.Schemas {
			if ls := liveDB.Schemas[name]; ls != nil && len(ls.Grants[c]) > 0 {
				s.Grants[c] = slices.Clone(ls.Grants[c])
			}
		}
	}
	return notes
}

// objectGrantee: role holds a grant on a table, sequence or function of
// the schemas (the file's "*" entries would revoke it).
func objectGrantee(db *policy.Database, schemas []string, role string) bool {
	for _, name := range schemas {
		ls := db.Schemas[name]
		if ls == nil {
			continue
		}
		for _, objs := range []policy.Objects{ls.Tables, ls.Sequences, ls.Functions} {
			for _, ob := range objs {
				if ob == nil {
					continue
				}
				if len(ob.Grants[role]) > 0 {
					return true
				}
				for _, cg := range ob.Columns {
					if len(cg[role]) > 0 {
						return true
					}
				}
			}
		}
	}
	return false
}

func union(privs []string, add string) []string {
	out := slices.Clone(privs)
	for _, p := range privs {
		if strings.EqualFold(strings.TrimSuffix(p, " WITH GRANT OPTION"), add) || strings.EqualFold(p, "ALL") {
			return out
		}
	}
	return append(out, add)
}

// owned counts the objects role owns in the live schema.
func owned(ls *policy.Schema, role string) int {
	if ls == nil {
		return 0
	}
	n := 0
	for _, objs := range []policy.Objects{ls.Tables, ls.Sequences, ls.Functions} {
		for _, ob := range objs {
			if ob != nil && ob.Owner == role {
				n++
			}
		}
	}
	return n
}

func tenantRLS(o Options, db *policy.Database, live *policy.Live) ([]policy.Note, error) {
	liveDB := live.File.Databases[o.Database]
	t := o.Tenant
	if len(t.Tables) == 0 || t.Column == "" {
		return nil, errors.New("template: the tenant template needs --tenant-table and --tenant-column")
	}
	if t.ColumnType == nil {
		return nil, errors.New("template: the tenant template needs the column types from the server")
	}
	setting := t.Setting
	if setting == "" {
		setting = "app.tenant_id"
	}
	if !validSetting(setting) {
		return nil, fmt.Errorf("template: --tenant-setting %q: want a custom setting name like app.tenant_id (letters, digits, _ and one or more dots)", setting)
	}
	var notes []policy.Note
	for _, spec := range t.Tables {
		schema, table := splitTable(spec, o.Schemas)
		if table == "" {
			return nil, fmt.Errorf("template: --tenant-table %q: empty table name", spec)
		}
		typ, err := t.ColumnType(schema, table, t.Column)
		if err != nil {
			return nil, fmt.Errorf("template: tenant table %s: %w", quote.Qualified(schema, table), err)
		}
		value := t.TestValue
		if value == "" {
			value = sampleValue(typ)
		}
		col := quote.Ident(t.Column)
		// NULLIF: once a transaction has SET LOCAL the setting, the
		// session keeps it as '' afterwards, and ''::integer is an error,
		// not "no tenant".
		expr := fmt.Sprintf("%s = NULLIF(current_setting(%s, true), '')::%s", col, quote.Literal(setting), typ)
		if t.Deparse != nil {
			if expr, err = t.Deparse(schema, table, expr); err != nil {
				return nil, fmt.Errorf("template: tenant table %s: %w", quote.Qualified(schema, table), err)
			}
		}
		sees := fmt.Sprintf("%s = %s::%s", col, quote.Literal(value), typ)
		rls := &policy.RLS{
			Enabled: true,
			Force:   true,
			Policies: policy.RowPolicies{
				PolicyName:     {Command: "ALL", Roles: []string{o.App}, Using: expr, Check: expr},
				ReadPolicyName: {Command: "SELECT", Roles: []string{o.ReadOnly}, Using: expr},
			},
			Tests: []policy.RLSTest{
				{Name: "tenant " + value + " sees only its rows", As: o.App, Set: map[string]string{setting: value}, Sees: sees},
				{Name: "read-only: tenant " + value + " sees only its rows", As: o.ReadOnly, Set: map[string]string{setting: value}, Sees: sees},
			},
		}
		// The policies map is exact (adopt mode): the table's other live
		// policies are carried over unchanged, so init only adds.
		var kept []string
		tableOwner := ""
		if liveDB != nil {
			if ls := liveDB.Schemas[schema]; ls != nil {
				if lt := ls.Tables[table]; lt != nil {
					tableOwner = lt.Owner
				}
				if lr := ls.RLS[table]; lr != nil {
					for name, lp := range lr.Policies {
						if _, ours := rls.Policies[name]; !ours && lp != nil {
							cp := *lp
							cp.Roles = slices.Clone(lp.Roles)
							rls.Policies[name] = &cp
							kept = append(kept, name)
						}
					}
				}
			}
		}
		if len(kept) > 0 {
			slices.Sort(kept)
			notes = append(notes, policy.Note{Level: "info", Object: "table " + quote.Qualified(schema, table),
				Text: fmt.Sprintf("keeps its existing policies %s unchanged; permissive policies are OR-ed, so one broader than %s still shows other tenants' rows to the roles it names (access policy test proves what each role sees)", strings.Join(kept, ", "), PolicyName)})
		}
		s := db.Schemas[schema]
		if s.RLS == nil {
			s.RLS = map[string]*policy.RLS{}
		}
		s.RLS[table] = rls
		notes = append(notes, policy.Note{Level: "info", Object: "table " + quote.Qualified(schema, table),
			Text: fmt.Sprintf("FORCE ROW LEVEL SECURITY with policies for %s (read and write) and %s (SELECT) only: both see just the rows of the tenant in %s, none when it is unset; %s", o.App, o.ReadOnly, setting, ownerRows(o, live, tableOwner))})
	}
	return notes, nil
}

// ownerRows says what the table's owner and the layout's other roles see
// under FORCE with no policy for them: nothing, unless RLS never applies
// to the role (superuser, BYPASSRLS).
func ownerRows(o Options, live *policy.Live, tableOwner string) string {
	others := o.Owner + " (and a migration role after SET ROLE)"
	if tableOwner == "" || tableOwner == o.Owner {
		return "the table's owner " + others + " matches no policy, so it sees and changes no rows at all (data fixes: as " + o.App + " with the setting, or as a role with BYPASSRLS); DDL is not affected"
	}
	own := "its owner " + tableOwner + " matches no policy, so it sees and changes no rows at all (data fixes: as " + o.App + " with the setting, or as a role with BYPASSRLS)"
	if r := live.File.Roles[tableOwner]; r != nil && (r.Superuser != nil && *r.Superuser || r.BypassRLS != nil && *r.BypassRLS) {
		own = "its owner " + tableOwner + " is a superuser or has BYPASSRLS, so row-level security never applies to it: it sees every row"
	}
	return own + "; " + others + " matches no policy either and sees no rows"
}

// splitTable takes "schema.table" when the prefix is one of the
// template's schemas (longest first, so names with dots work), else the
// whole spec as a table in the first schema.
func splitTable(spec string, schemas []string) (string, string) {
	best := ""
	for _, s := range schemas {
		if strings.HasPrefix(spec, s+".") && len(s) > len(best) {
			best = s
		}
	}
	if best != "" {
		return best, spec[len(best)+1:]
	}
	return schemas[0], spec
}

func sampleValue(typ string) string {
	switch {
	case typ == "uuid":
		return "00000000-0000-0000-0000-000000000001"
	case strings.Contains(typ, "int"), strings.HasPrefix(typ, "numeric"):
		return "1"
	default:
		return "tenant1"
	}
}

func validSetting(s string) bool {
	if !strings.Contains(s, ".") || strings.HasPrefix(s, ".") || strings.HasSuffix(s, ".") || strings.Contains(s, "..") {
		return false
	}
	for _, c := range s {
		if !(c == '.' || c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

var auditClasses = map[string]bool{"READ": true, "WRITE": true, "FUNCTION": true, "ROLE": true, "DDL": true, "MISC": true, "MISC_SET": true, "ALL": true, "NONE": true}

func validAudit(v string) error {
	for _, c := range strings.Split(v, ",") {
		c = strings.TrimPrefix(strings.TrimSpace(c), "-")
		if !auditClasses[strings.ToUpper(c)] {
			return fmt.Errorf("unknown pgaudit.log class %q (want read, write, function, role, ddl, misc, misc_set, all or none, comma-separated, each optionally prefixed with -)", c)
		}
	}
	return nil
}

// normalize fills the defaults and rejects what the server would refuse
// or silently change (truncated names, reserved pg_ prefixes).
func (o *Options) normalize() error {
	if o.Database == "" {
		return errors.New("template: --database is required")
	}
	if o.App == "" || o.ReadOnly == "" {
		return errors.New("template: --app and --readonly are required")
	}
	if o.Owner == "" {
		o.Owner = o.Database + "_owner"
	}
	if len(o.Schemas) == 0 {
		o.Schemas = []string{"public"}
	}
	for _, l := range []*int{&o.AppConnLimit, &o.ReadOnlyConnLimit, &o.MigrationConnLimit, &o.MonitoringConnLimit} {
		if *l < -1 {
			return fmt.Errorf("template: connection limit %d: want -1 (none) or more", *l)
		}
	}
	def := func(l *int, d int) {
		if *l == 0 {
			*l = d
		}
	}
	def(&o.AppConnLimit, DefaultAppConnLimit)
	def(&o.ReadOnlyConnLimit, DefaultReadOnlyConnLimit)
	def(&o.MigrationConnLimit, DefaultMigrationConnLimit)
	def(&o.MonitoringConnLimit, DefaultMonitoringConnLimit)

	seen := map[string]string{}
	for _, r := range []struct{ flag, name string }{{"--owner", o.Owner}, {"--app", o.App}, {"--readonly", o.ReadOnly}, {"--migration", o.Migration}, {"--monitoring", o.Monitoring}} {
		if r.name == "" {
			continue
		}
		if err := validName(r.flag, r.name); err != nil {
			return err
		}
		if strings.HasPrefix(r.name, "pg_") || r.name == "public" || strings.EqualFold(r.name, "PUBLIC") {
			return fmt.Errorf("template: %s %q: names starting with pg_ and PUBLIC are reserved", r.flag, r.name)
		}
		if other, ok := seen[r.name]; ok {
			return fmt.Errorf("template: %s and %s name the same role %q: each needs its own", other, r.flag, r.name)
		}
		seen[r.name] = r.flag
	}
	if err := validName("--database", o.Database); err != nil {
		return err
	}
	seenSchema := map[string]bool{}
	for _, s := range o.Schemas {
		if err := validName("--schema", s); err != nil {
			return err
		}
		if s == "pg_catalog" || s == "information_schema" || strings.HasPrefix(s, "pg_toast") || strings.HasPrefix(s, "pg_temp") {
			return fmt.Errorf("template: --schema %q is a system schema", s)
		}
		if seenSchema[s] {
			return fmt.Errorf("template: --schema %q given twice", s)
		}
		seenSchema[s] = true
	}
	for _, a := range []struct{ flag, v string }{{"--app-audit", o.AppAudit}, {"--readonly-audit", o.ReadOnlyAudit}} {
		if a.v == "" {
			continue
		}
		if err := validAudit(a.v); err != nil {
			return fmt.Errorf("template: %s: %w", a.flag, err)
		}
	}
	return nil
}

// validName rejects names PostgreSQL would truncate (63 bytes) or
// cannot hold (NUL).
func validName(flag, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("template: %s: empty name", flag)
	case len(name) > 63:
		return fmt.Errorf("template: %s %q: longer than 63 bytes, PostgreSQL would truncate it", flag, name)
	case strings.ContainsRune(name, 0):
		return fmt.Errorf("template: %s: the name contains a NUL byte", flag)
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

// connectLosers warns about the LOGIN roles that can connect to the
// database now and cannot once the plan has revoked PUBLIC's CONNECT: no
// CONNECT of their own or from a role whose privileges they inherit, not
// a superuser, not (a member of) the database owner.
func connectLosers(o Options, f *policy.File, live *policy.Live) []policy.Note {
	liveDB := live.File.Databases[o.Database]
	if liveDB == nil {
		return nil // created by the plan: nobody connects to it yet
	}
	db := f.Databases[o.Database]
	before := connectState{major: live.Major, roles: live.File.Roles, grants: liveDB.Grants, owner: liveDB.Owner}
	after := connectState{major: live.Major, roles: policy.Roles{}, grants: policy.Grants{}, owner: db.Owner}
	maps.Copy(after.roles, live.File.Roles)
	maps.Copy(after.grants, liveDB.Grants)
	for k, v := range db.Grants {
		after.grants[k] = v
	}
	for name, r := range f.Roles {
		// Adopt mode: attributes the file leaves out are the defaults;
		// memberships it leaves out (nil) stay as they are.
		nr := *r
		if lr := live.File.Roles[name]; lr != nil && nr.MemberOf == nil {
			nr.MemberOf = lr.MemberOf
		}
		after.roles[name] = &nr
	}
	var lose []string
	for _, name := range slices.Sorted(maps.Keys(live.File.Roles)) {
		r := live.File.Roles[name]
		if r.Login == nil || !*r.Login || strings.HasPrefix(name, "pg_") {
			continue
		}
		if before.can(name) && !after.can(name) {
			lose = append(lose, name)
		}
	}
	if len(lose) == 0 {
		return nil
	}
	shown := lose
	more := ""
	if len(shown) > 20 {
		shown, more = shown[:20], fmt.Sprintf(" and %d more", len(lose)-20)
	}
	return []policy.Note{{Level: "warning", Object: "database " + o.Database,
		Text: fmt.Sprintf("the plan locks out %d LOGIN role(s) that connect now: with PUBLIC's CONNECT revoked and the database owned by %s they have no CONNECT of their own or through a role they inherit from: %s%s; GRANT CONNECT ON DATABASE %s TO each that still needs it (after the plan: init leaves roles it does not name alone)",
			len(lose), db.Owner, strings.Join(shown, ", "), more, quote.Ident(o.Database))}}
}

// connectState is who holds CONNECT on one database, before or after.
type connectState struct {
	major  int
	roles  policy.Roles
	grants policy.Grants
	owner  string
}

// can: role may connect (superuser, PUBLIC, or a role it inherits
// privileges from, itself included, owns the database or holds CONNECT).
func (s connectState) can(role string) bool {
	if r := s.roles[role]; r != nil && r.Superuser != nil && *r.Superuser {
		return true
	}
	if hasConnect(s.grants["PUBLIC"]) {
		return true
	}
	seen := map[string]bool{}
	queue := []string{role}
	for len(queue) > 0 {
		n := queue[0]
		queue = queue[1:]
		if seen[n] {
			continue
		}
		seen[n] = true
		if n == s.owner || hasConnect(s.grants[n]) {
			return true
		}
		r := s.roles[n]
		if r == nil {
			continue
		}
		roleInherits := r.Inherit == nil || *r.Inherit
		for _, m := range r.MemberOf {
			inherit := roleInherits
			if s.major >= 16 && m.Inherit != nil {
				inherit = *m.Inherit
			}
			if inherit {
				queue = append(queue, m.Role)
			}
		}
	}
	return false
}

func hasConnect(privs []string) bool {
	for _, p := range privs {
		p = strings.TrimSuffix(strings.ToUpper(p), " WITH GRANT OPTION")
		if p == "CONNECT" || p == "ALL" || p == "ALL PRIVILEGES" {
			return true
		}
	}
	return false
}
